"""revy_prune: retention that keeps every kept snapshot intact."""

from __future__ import annotations

import datetime
import decimal
from io import StringIO
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

from revy_core import Context
from revy_core.models import AttributeDelta, ObjectDelta, ObjectSnapshot, Revision
from revy_core.retention import (
    RetentionPolicy,
    check_retention,
    policy_for,
    prune,
)
from tests.testapp.history import history_counts, object_deltas
from tests.testapp.models import Account, Comment

pytestmark = pytest.mark.django_db

NOW = timezone.now()
CUTOFF = NOW - datetime.timedelta(days=100)


def age(days_ago: list[int]) -> None:
    """Date the object deltas, oldest first, to these many days ago."""
    deltas = list(ObjectDelta.objects.order_by("pk"))
    assert len(deltas) == len(days_ago)
    for delta, days in zip(deltas, days_ago, strict=True):
        ObjectDelta.objects.filter(pk=delta.pk).update(
            created_at=NOW - datetime.timedelta(days=days)
        )


def snapshots(pk: Any) -> dict[int, dict[str, Any]]:
    deltas = (
        ObjectDelta.objects.filter(
            content_type=ContentType.objects.get_for_model(Account), content_id=str(pk)
        )
        .annotate(snapshot=ObjectSnapshot(Account))
        .order_by("pk")
    )
    return {
        d.pk: {
            f.attname: d.snapshot.__dict__.get(f.attname, "<deferred>")
            for f in Account._meta.concrete_fields
        }
        for d in deltas
    }


def edit(account: Account, description: str, **values: Any) -> None:
    with Context.via_revision_description(description):
        for name, value in values.items():
            setattr(account, name, value)
        account.save()


def make_history() -> Account:
    with Context.via_revision_description("open"):
        account = Account.objects.create(name="a", balance=decimal.Decimal(1))
    edit(account, "rename", name="b")
    edit(account, "pay", balance=decimal.Decimal(2))
    edit(account, "rename again", name="c")
    edit(account, "pay again", balance=decimal.Decimal(3))
    return account


def test_kept_snapshots_are_unchanged_and_the_cutoff_state_is_a_baseline():
    account = make_history()
    age([400, 300, 200, 50, 10])
    before = snapshots(account.pk)
    result = prune(CUTOFF)
    after = snapshots(account.pk)
    deltas = object_deltas(account)
    assert len(deltas) == 3
    baseline, *_kept = deltas
    assert baseline.action == ObjectDelta.ACTION_CREATE
    assert baseline.description.startswith("Baseline: state at the retention cut-off")
    recorded = {
        a.field_name: (a.action, a.old_value, a.new_value)
        for a in baseline.attribute_deltas.all()
    }
    assert recorded["name"] == ("set", None, "b")
    assert recorded["balance"] == ("set", None, "2.00")
    assert after == {pk: before[pk] for pk in after}
    assert set(after) == {d.pk for d in deltas}
    assert result.objects == 1
    assert result.baselines == 1
    assert result.object_deltas == 2
    assert list(
        Revision.objects.values_list("description", flat=True).order_by("pk")
    ) == [
        "pay",
        "rename again",
        "pay again",
    ]


def test_object_that_existed_before_tracking_keeps_its_partial_baseline():
    account = Account.objects.create(name="untracked", balance=5)
    edit(account, "rename", name="b")
    edit(account, "rename 2", name="c")
    edit(account, "pay", balance=decimal.Decimal(6))
    age([300, 200, 10])
    before = snapshots(account.pk)
    prune(CUTOFF)
    after = snapshots(account.pk)
    assert after == {pk: before[pk] for pk in after}
    assert len(after) == 2
    assert next(iter(after.values()))["balance"] == "<deferred>"


def test_deleted_objects_past_retention_go_entirely():
    account = make_history()
    with Context.via_revision_description("close"):
        account.delete()
    age([400, 300, 200, 150, 120, 110])
    prune(CUTOFF)
    assert history_counts() == (0, 0, 0)


def test_deleted_and_restored_object_keeps_a_rebuildable_history():
    account = make_history()
    pk = account.pk
    with Context():
        account.delete()
    delta = (
        ObjectDelta.objects.filter(action="delete")
        .annotate(snapshot=ObjectSnapshot(Account))
        .get()
    )
    with Context():
        delta.snapshot.save()
    edit(Account.objects.get(pk=pk), "after", name="z")
    age([400, 300, 200, 150, 120, 110, 60, 5])
    before = snapshots(pk)
    prune(CUTOFF)
    after = snapshots(pk)
    assert after == {k: before[k] for k in after}
    assert len(after) == 3


def test_keep_last_keeps_the_last_deltas_of_each_object():
    account = make_history()
    age([400, 300, 200, 150, 120])
    before = snapshots(account.pk)
    prune(CUTOFF, keep_last=2)
    after = snapshots(account.pk)
    assert len(after) == 3  # baseline + the last two
    assert after == {k: before[k] for k in after}


def test_nothing_older_than_the_cutoff_changes_nothing():
    make_history()
    age([50, 40, 30, 20, 10])
    counts = history_counts()
    result = prune(CUTOFF)
    assert result.objects == 0
    assert history_counts() == counts


def test_a_lone_old_create_stays_and_a_second_prune_is_a_no_op():
    account = make_history()
    age([400, 300, 200, 150, 120])
    prune(CUTOFF)
    counts = history_counts()
    assert prune(CUTOFF).objects == 0
    assert history_counts() == counts
    assert len(object_deltas(account)) == 1


def test_only_chosen_models_and_batches_of_objects():
    accounts = [make_history() for _ in range(3)]
    with Context():
        comment = Comment.objects.create(text="x")
        comment.text = "y"
        comment.save()
    deltas = ObjectDelta.objects.order_by("pk")
    for delta in deltas:
        ObjectDelta.objects.filter(pk=delta.pk).update(
            created_at=NOW - datetime.timedelta(days=300)
        )
    befores = {a.pk: snapshots(a.pk) for a in accounts}
    prune(CUTOFF, models=[Account], batch_size=2)
    for account in accounts:
        after = snapshots(account.pk)
        assert len(after) == 1
        ((_pk, state),) = after.items()
        assert state == befores[account.pk][max(befores[account.pk])]
    assert len(object_deltas(comment)) == 2


def test_dry_run_changes_nothing():
    make_history()
    age([400, 300, 200, 150, 10])
    counts = history_counts()
    result = prune(CUTOFF, dry_run=True)
    assert result.objects == 1
    assert result.object_deltas == 3
    assert history_counts() == counts


@override_settings(REVY_RETENTION={"testapp.Account": {"keep_days": 100}})
def test_setting_gives_per_model_defaults():
    account = make_history()
    with Context():
        comment = Comment.objects.create(text="x")
        comment.text = "y"
        comment.save()
    age([400, 300, 200, 150, 10, 400, 300])
    prune()
    assert len(object_deltas(account)) == 2
    assert len(object_deltas(comment)) == 2
    assert policy_for(Account) == RetentionPolicy(keep_days=100)
    assert policy_for(Comment) is None


@override_settings(REVY_RETENTION={"*": {"keep_days": 100, "keep_last": 3}})
def test_default_entry_for_every_model():
    account = make_history()
    age([400, 300, 200, 150, 120])
    prune()
    assert len(object_deltas(account)) == 4  # baseline + the last three


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "must be a dict"),
        ({"testapp.Nope": {}}, "not an installed model"),
        ({"testapp.Account": 3}, "must be a dict with only"),
        ({"testapp.Account": {"days": 3}}, "must be a dict with only"),
        ({"testapp.Account": {"keep_days": -1}}, "must be an integer >= 0"),
        ({"*": {"keep_last": "2"}}, "must be an integer >= 0"),
    ],
)
def test_check_e006(value, message):
    with override_settings(REVY_RETENTION=value):
        errors = check_retention()
    assert [e.id for e in errors] == ["revy.E006"]
    assert message in errors[0].msg


def test_check_passes_on_good_values():
    with override_settings(REVY_RETENTION={"testapp.Account": {"keep_days": 30}}):
        assert check_retention() == []
    assert check_retention() == []


def test_command():
    make_history()
    age([400, 300, 200, 150, 10])
    out = StringIO()
    err = StringIO()
    call_command(
        "revy_prune",
        "--before",
        CUTOFF.date().isoformat(),
        "--model",
        "testapp.Account",
        "--dry-run",
        stdout=out,
        stderr=err,
    )
    assert out.getvalue().startswith("[dry run] 1 object(s) pruned: 1 baseline(s)")
    assert "testapp.account [" in err.getvalue()
    assert ObjectDelta.objects.count() == 5
    call_command("revy_prune", "--before", CUTOFF.isoformat(), "--quiet", stdout=out)
    assert ObjectDelta.objects.count() == 2
    assert AttributeDelta.objects.filter(parent__action="create").count() == 5
    with pytest.raises(CommandError, match="not a date"):
        call_command("revy_prune", "--before", "last year")
    with pytest.raises(CommandError, match="Give --before, or set REVY_RETENTION"):
        call_command("revy_prune")


def test_old_erasure_records_of_objects_without_other_history_go():
    from revy_core.erasure import erase_object

    account = Account.objects.create(name="never tracked")
    erase_object(Account, account.pk, reason="request")
    age([300])
    prune(CUTOFF)
    assert history_counts() == (0, 0, 0)


def test_check_is_registered():
    from django.core.checks import run_checks

    with override_settings(REVY_RETENTION={"testapp.Nope": {}}):
        ids = [message.id for message in run_checks()]
    assert "revy.E006" in ids
