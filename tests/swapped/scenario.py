"""Run with ``DJANGO_SETTINGS_MODULE=tests.swapped.settings``: a project with
its own history models migrates a fresh database and records into them.

Exits non-zero (an AssertionError) when anything is off; prints ``ok``.
"""

from __future__ import annotations

import decimal

import django


def main() -> None:
    django.setup()

    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    call_command("check", fail_level="WARNING")
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)

    from django.contrib.auth.models import User
    from django.contrib.contenttypes.models import ContentType

    from revy_core import Context
    from revy_core.conf import (
        get_attribute_delta_model,
        get_object_delta_model,
        get_revision_model,
    )
    from revy_core.models import ObjectSnapshot
    from tests.swapped.models import (
        CustomAttributeDelta,
        CustomObjectDelta,
        CustomRevision,
    )
    from tests.testapp.models import Account

    assert get_revision_model() is CustomRevision
    assert get_object_delta_model() is CustomObjectDelta
    assert get_attribute_delta_model() is CustomAttributeDelta

    tables = set(connection.introspection.table_names())
    assert {"custom_revision", "custom_object_delta", "custom_attribute_delta"} <= (
        tables
    ), tables
    assert not tables & {"revy_revision", "revy_object_delta", "revy_attribute_delta"}

    user = User.objects.create_user("alice")
    revision = CustomRevision.objects.create(request_id="req-1")
    with Context.via_actor(user), Context.via_revision(revision):
        account = Account.objects.create(name="swapped", balance=decimal.Decimal("1"))
        account.name = "renamed"
        account.save()
        pk = account.pk
        account.delete()

    deltas = list(CustomObjectDelta.objects.order_by("pk"))
    assert [d.action for d in deltas] == ["create", "update", "delete"], deltas
    assert {d.revision_id for d in deltas} == {revision.pk}
    assert {d.actor_id for d in deltas} == {str(user.pk)}
    update = CustomAttributeDelta.objects.get(parent=deltas[1])
    assert (update.field_name, update.old_value, update.new_value) == (
        "name",
        "swapped",
        "renamed",
    )
    assert CustomAttributeDelta.objects.filter(revision=revision).count() == 11

    # Lazily created revisions are of the custom model too.
    with Context():
        User.objects.create_user("bob")
    assert CustomRevision.objects.count() == 2

    snapshot = (
        CustomObjectDelta.objects.filter(
            action=CustomObjectDelta.ACTION_DELETE,
            content_type=ContentType.objects.get_for_model(Account),
            content_id=pk,
        )
        .annotate(snapshot=ObjectSnapshot(Account))
        .get()
        .snapshot
    )
    snapshot.save()
    restored = Account.objects.get(pk=pk)
    assert (restored.name, restored.balance) == ("renamed", decimal.Decimal("1"))
    print("ok")


if __name__ == "__main__":
    main()
