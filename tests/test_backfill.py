"""revy_backfill: baseline Creates for rows that existed before tracking."""

from __future__ import annotations

import decimal
from io import StringIO
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.management import CommandError, call_command

from revy_core import Context
from revy_core.backfill import DESCRIPTION, backfill
from revy_core.history import object_history
from revy_core.models import AttributeDelta, ObjectDelta, ObjectSnapshot, Revision
from tests.testapp.history import changes, history_counts, object_deltas
from tests.testapp.models import Account, Organization, Profile, Untracked

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("revy_backfill", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_rows_without_a_create_get_one_with_current_values():
    old = [Account.objects.create(name=f"a{i}", balance=i) for i in range(7)]
    with Context():
        tracked = Account.objects.create(name="tracked")
    result = backfill([Account], batch_size=3)
    assert result.created == {"testapp.Account": 7}
    assert result.revision_id is not None
    revision = Revision.objects.get(pk=result.revision_id)
    assert revision.description == DESCRIPTION
    for account in old:
        (delta,) = object_deltas(account)
        assert delta.action == ObjectDelta.ACTION_CREATE
        assert delta.revision_id == revision.pk
        assert delta.actor_id is None
        assert changes(delta)["name"] == (None, account.name)
        assert changes(delta)["balance"] == (None, f"{account.balance}.00")
    assert len(object_deltas(tracked)) == 1


def test_snapshot_of_the_baseline_is_the_row():
    account = Account.objects.create(name="old", balance=decimal.Decimal("3.25"))
    backfill([Account])
    delta = (
        ObjectDelta.objects.filter(
            content_type=ContentType.objects.get_for_model(Account),
            content_id=str(account.pk),
        )
        .annotate(snapshot=ObjectSnapshot(Account))
        .get()
    )
    assert delta.snapshot.name == "old"
    assert delta.snapshot.balance == decimal.Decimal("3.25")


def test_idempotent_and_resumable():
    for i in range(5):
        Account.objects.create(name=f"a{i}")
    backfill([Account], batch_size=2)
    counts = history_counts()
    assert backfill([Account]).total == 0
    assert history_counts() == counts
    # Rows added later (or left by an interrupted run) are done by the next run.
    Account.objects.create(name="late")
    assert backfill([Account]).total == 1


def _snapshots(model, pk) -> list[tuple[str, dict[str, Any]]]:
    """Each delta of one object, oldest first: its action and the snapshot's
    field values (None for a field the snapshot does not know)."""
    deltas = (
        ObjectDelta.objects.filter(
            content_type=ContentType.objects.get_for_model(model),
            content_id=str(pk),
        )
        .annotate(snapshot=ObjectSnapshot(model))
        .order_by("pk")
    )
    result = []
    for delta in deltas:
        deferred = delta.snapshot.get_deferred_fields()
        values = {
            f.attname: None
            if f.attname in deferred
            else getattr(delta.snapshot, f.attname)
            for f in model._meta.concrete_fields
        }
        result.append((delta.action, values))
    return result


def _state(account: Account) -> dict[str, Any]:
    account.refresh_from_db()
    return {
        f.attname: getattr(account, f.attname) for f in Account._meta.concrete_fields
    }


def test_rows_whose_history_starts_with_updates_get_a_baseline_before_it(
    django_user_model,
):
    owner = django_user_model.objects.create_user("owner")
    organization = Organization.objects.create(name="org")
    account = Account.objects.create(
        name="before", balance=decimal.Decimal("1.50"), owner=owner
    )
    states = [_state(account)]
    with Context():
        account.name = "renamed"
        account.save()
    states.append(_state(account))
    with Context():
        account.balance = decimal.Decimal("9.25")
        account.organization = organization
        account.save()
    states.append(_state(account))
    with Context():
        account.name = "renamed again"
        account.save()
    states.append(_state(account))
    first = object_deltas(account)[0]
    # Before the backfill, the snapshot at the first update knows only the
    # field it changed.
    assert _snapshots(Account, account.pk)[0][1]["balance"] is None

    result = backfill([Account])

    assert result.created == {"testapp.Account": 1}
    baseline = object_deltas(account)[0]
    assert baseline.pk == -first.pk
    assert baseline.action == ObjectDelta.ACTION_CREATE
    assert baseline.revision_id == result.revision_id
    assert baseline.created_at == first.created_at
    assert baseline.actor_id is None
    assert baseline.description == DESCRIPTION
    assert changes(baseline) == {
        "id": (None, account.pk),
        "owner": (None, owner.pk),
        "organization": (None, None),
        "name": (None, "before"),
        "balance": (None, "1.50"),
    }
    snapshots = _snapshots(Account, account.pk)
    assert [action for action, _ in snapshots] == [
        "create",
        "update",
        "update",
        "update",
    ]
    assert [values for _, values in snapshots] == states
    listed = list(object_history(Account, account.pk))
    assert [entry.action for entry in listed] == ["create", *["update"] * 3]
    assert listed[0].object_delta_id == baseline.pk


def test_placed_baselines_in_batches_deleted_rows_included_idempotent():
    accounts = [Account.objects.create(name=f"a{i}", balance=i) for i in range(5)]
    for account in accounts[:3]:
        with Context():
            account.balance = 100
            account.save()
    deleted = accounts[2].pk
    with Context():
        accounts[2].delete()
    # Rows that existed before tracking and were deleted under it: three
    # more pages of two.
    old = [Account.objects.create(name=f"old{i}") for i in range(5)]
    old_pks = [account.pk for account in old]
    with Context():
        Account.objects.filter(pk__in=old_pks).delete()
    with Context():
        gone = Account.objects.create(name="created and deleted in history")
        gone_pk = gone.pk
        gone.delete()
    before = history_counts()
    dry = backfill([Account], batch_size=2, dry_run=True)
    assert dry.created == {"testapp.Account": 10}
    assert dry.revision_id is None
    assert history_counts() == before
    result = backfill([Account], batch_size=2)
    assert result.created == {"testapp.Account": 10}
    for index, account in enumerate(accounts[:2]):
        deltas = object_deltas(account)
        assert [d.action for d in deltas] == ["create", "update"]
        assert changes(deltas[0])["balance"] == (None, f"{index}.00")
        assert changes(deltas[1])["balance"] == (f"{index}.00", "100.00")
    for account in accounts[3:]:
        assert [d.action for d in object_deltas(account)] == ["create"]
    # A row deleted since: walked back from the final values of its Delete.
    deltas = object_deltas(Account, deleted)
    assert [d.action for d in deltas] == ["create", "update", "delete"]
    assert deltas[0].pk == -deltas[1].pk
    assert changes(deltas[0]) == {
        "id": (None, deleted),
        "owner": (None, None),
        "organization": (None, None),
        "name": (None, "a2"),
        "balance": (None, "2.00"),
    }
    snapshots = _snapshots(Account, deleted)
    assert [values["balance"] for _, values in snapshots] == [
        decimal.Decimal("2.00"),
        decimal.Decimal("100.00"),
        decimal.Decimal("100.00"),
    ]
    assert {values["name"] for _, values in snapshots} == {"a2"}
    for pk, account in zip(old_pks, old, strict=True):
        deltas = object_deltas(Account, pk)
        assert [d.action for d in deltas] == ["create", "delete"]
        assert changes(deltas[0])["name"] == (None, account.name)
    # An object whose history has its Create is left alone.
    assert [d.action for d in object_deltas(Account, gone_pk)] == ["create", "delete"]
    counts = history_counts()
    assert backfill([Account], batch_size=2).total == 0
    assert history_counts() == counts


def test_masked_and_excluded_fields_follow_the_settings(django_user_model):
    user = django_user_model.objects.create_user("u", password="pw")
    profile = Profile.objects.create(user=user, secret="s3", cache="c", bio="b")
    backfill([Profile])
    recorded = changes(object_deltas(profile)[0])
    assert recorded["secret"] == (None, "[masked]")
    assert "cache" not in recorded


def test_dry_run_writes_nothing():
    Account.objects.create(name="a")
    before = history_counts()
    result = backfill([Account], dry_run=True)
    assert result.created == {"testapp.Account": 1}
    assert result.revision_id is None
    assert history_counts() == before


def test_untracked_model_is_refused():
    with pytest.raises(ValueError, match="not tracked"):
        backfill([Untracked])
    with pytest.raises(CommandError, match="not tracked"):
        run("testapp.Untracked")


def test_command_reports_and_progress():
    for i in range(3):
        Account.objects.create(name=f"a{i}")
    err = StringIO()
    out = StringIO()
    call_command("revy_backfill", "testapp.Account", stdout=out, stderr=err)
    assert "testapp.Account: 3 baseline(s)" in out.getvalue()
    assert "3 row(s) given a baseline in revision" in out.getvalue()
    assert "testapp.Account [" in err.getvalue()
    assert AttributeDelta.objects.filter(field_name="name").count() == 3
    out = StringIO()
    err = StringIO()
    call_command("revy_backfill", "testapp.Account", "--quiet", stdout=out, stderr=err)
    assert out.getvalue() == err.getvalue() == ""
