"""revy_erase: personal data replaced by a marker, the erasure recorded."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.core.management import CommandError, call_command
from django.test import override_settings

from revy_core import Context
from revy_core.erasure import ERASE, erase_actor, erase_object
from revy_core.models import AttributeDelta, ObjectDelta, ObjectSnapshot, Revision
from tests.testapp.history import history_counts, object_deltas
from tests.testapp.models import Account, Comment

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin() -> User:
    return User.objects.create_user("admin")


@pytest.fixture
def alice() -> User:
    with Context():
        user = User.objects.create_user("alice", email="alice@example.com")
        user.first_name = "Alice"
        user.save()
    return user


def values(instance) -> list[object]:
    return [
        v
        for a in AttributeDelta.objects.filter(
            content_type=ContentType.objects.get_for_model(instance),
            content_id=str(instance.pk),
        )
        for v in (a.old_value, a.new_value)
    ]


def test_object_values_become_the_marker_and_the_erasure_is_recorded(admin):
    with Context.via_revision_description("opened for Jane Roe"):
        account = Account.objects.create(name="Jane Roe", balance=7)
    with Context():
        account.name = "Jane R."
        account.save()
    result = erase_object(Account, account.pk, reason="GDPR request 12", by=admin)
    stored = {
        (a.field_name, a.old_value, a.new_value)
        for a in AttributeDelta.objects.filter(content_id=str(account.pk))
    }
    assert ("name", None, "[erased]") in stored
    assert ("name", "[erased]", "[erased]") in stored
    assert ("balance", None, None) in stored  # non-text: None, snapshots still load
    assert ("id", None, account.pk) in stored  # which object it was stays
    assert "Jane Roe" not in values(account)
    assert result.revision_id is not None
    revision = Revision.objects.get(pk=result.revision_id)
    assert revision.description == "GDPR request 12"
    erasure = object_deltas(account)[-1]
    assert erasure.action == ERASE
    assert erasure.revision_id == revision.pk
    assert erasure.actor_id == str(admin.pk)
    # The description copied the name: listed, not changed.
    opened = Revision.objects.get(description="opened for Jane Roe")
    assert [(x.kind, x.pk, x.value) for x in result.leftovers] == [
        ("revision", opened.pk, "Jane Roe")
    ]
    snapshot = (
        ObjectDelta.objects.filter(pk=object_deltas(account)[0].pk)
        .annotate(snapshot=ObjectSnapshot(Account))
        .get()
        .snapshot
    )
    assert snapshot.name == "[erased]"


def test_only_chosen_fields(alice):
    erase_object(User, alice.pk, reason="r", fields=["email"])
    stored = dict(
        AttributeDelta.objects.filter(
            content_id=str(alice.pk), parent__action="create"
        ).values_list("field_name", "new_value")
    )
    assert stored["email"] == "[erased]"
    assert stored["username"] == "alice"


def test_actor_erasure_unlinks_the_actor_and_erases_its_object(alice, admin):
    with Context.via_actor(alice):
        comment = Comment.objects.create(text="hello")
    result = erase_actor(alice, reason="account closed", by=admin)
    assert "alice" not in values(alice)
    assert "alice@example.com" not in values(alice)
    assert not ObjectDelta.objects.filter(actor_id=str(alice.pk)).exists()
    assert not AttributeDelta.objects.filter(actor_id=str(alice.pk)).exists()
    assert object_deltas(comment)[0].actor_id is None
    assert (
        result.unlinked_deltas
        == 1 + AttributeDelta.objects.filter(parent__in=object_deltas(comment)).count()
    )


def test_keeping_actor_links(alice):
    with Context.via_actor(alice):
        comment = Comment.objects.create(text="hello")
    erase_actor(alice, reason="r", unlink=False)
    assert object_deltas(comment)[0].actor_id == str(alice.pk)


@override_settings(REVY_ERASED_MARK="***")
def test_marker_setting_and_short_fields(alice):
    erase_object(User, alice.pk, reason="r")
    assert "***" in values(alice)


def test_reason_required_and_dry_run(alice):
    with pytest.raises(ValueError, match="needs a reason"):
        erase_object(User, alice.pk, reason=" ")
    counts = history_counts()
    before = values(alice)
    result = erase_object(User, alice.pk, reason="r", dry_run=True)
    assert result.attribute_deltas > 0
    assert history_counts() == counts
    assert values(alice) == before


def test_command(alice, admin):
    out = StringIO()
    with Context.via_revision_description("note about alice@example.com"):
        Comment.objects.create(text="x")
    call_command(
        "revy_erase",
        "--actor",
        "auth.User",
        str(alice.pk),
        "--reason",
        "request 7",
        "--by",
        "auth.User",
        str(admin.pk),
        stdout=out,
        stderr=StringIO(),
    )
    text = out.getvalue()
    assert "attribute delta(s) erased" in text
    assert "Not erased (free-text descriptions containing an erased value):" in text
    assert "'alice@example.com'" in text
    with pytest.raises(CommandError, match=r"No auth\.User with pk '999'"):
        call_command(
            "revy_erase", "--actor", "auth.User", "999", "--reason", "r", stdout=out
        )


def test_actor_leftovers_include_its_own_text_fields():
    bob = User.objects.create_user("bob", first_name="Robert", last_name="Roe")
    with Context.via_revision_description("Changed at ROBERT's request"):
        Comment.objects.create(text="x")
    result = erase_actor(bob, reason="r")
    described = Revision.objects.get(description__startswith="Changed at")
    assert ("revision", described.pk, "Robert") in {
        (x.kind, x.pk, x.value) for x in result.leftovers
    }
    assert all(x.value != bob.password for x in result.leftovers)
