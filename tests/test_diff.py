"""revy_core.diff: the difference between two points of an object's history."""

from __future__ import annotations

import datetime
import decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from revy_core import Context
from revy_core.diff import diff, state_at
from revy_core.models import ObjectDelta, Revision
from tests.testapp.models import Account

pytestmark = pytest.mark.django_db


@pytest.fixture
def history() -> tuple[Account, list[Revision]]:
    revisions = []
    with Context.via_revision_description("open"):
        account = Account.objects.create(name="a", balance=decimal.Decimal(1))
    revisions.append(Revision.objects.latest("pk"))
    with Context.via_revision_description("rename"):
        account.name = "b"
        account.save()
    revisions.append(Revision.objects.latest("pk"))
    with Context.via_revision_description("pay"):
        account.balance = decimal.Decimal(2)
        account.save()
    revisions.append(Revision.objects.latest("pk"))
    return account, revisions


def test_between_revisions(history):
    account, (opened, renamed, paid) = history
    assert diff(Account, account.pk, opened, renamed).changes == {"name": ("a", "b")}
    assert diff(Account, account.pk, renamed.pk, paid.pk).changes == {
        "balance": ("1.00", "2.00")
    }
    both = diff(Account, account.pk, opened, paid)
    assert both.changes == {"name": ("a", "b"), "balance": ("1.00", "2.00")}
    assert not diff(Account, account.pk, paid, paid)


def test_from_the_beginning_and_to_the_end(history):
    account, (opened, _, _) = history
    whole = diff(Account, account.pk)
    assert not whole.start.exists
    assert whole.end.exists
    assert whole.changes["name"] == (None, "b")
    assert whole.changes["balance"] == (None, "2.00")
    assert diff(Account, account.pk, opened).changes == {
        "name": ("a", "b"),
        "balance": ("1.00", "2.00"),
    }


def test_between_timestamps(history):
    account, _ = history
    base = timezone.now() - datetime.timedelta(days=10)
    for days, delta in enumerate(ObjectDelta.objects.order_by("pk")):
        ObjectDelta.objects.filter(pk=delta.pk).update(
            created_at=base + datetime.timedelta(days=days)
        )
    day = datetime.timedelta(days=1)
    assert diff(Account, account.pk, base, base + day + day / 2).changes == {
        "name": ("a", "b")
    }
    assert state_at(Account, account.pk, base - day).exists is False
    assert state_at(Account, account.pk, base).values["name"] == "a"


def test_deletion_is_visible_and_keeps_final_values(history):
    account, (_, _, paid) = history
    pk = account.pk
    with Context():
        account.delete()
    result = diff(Account, pk, paid)
    assert result.start.exists
    assert not result.end.exists
    assert result.changes == {}
    assert bool(result)


def test_rejects_unknown_points(history):
    account, _ = history
    with pytest.raises(TypeError, match="point of history"):
        diff(Account, account.pk, "yesterday")  # type: ignore[arg-type]


def test_command(history):
    account, (opened, renamed, _) = history
    out = StringIO()
    call_command(
        "revy_diff",
        "testapp.Account",
        str(account.pk),
        "--from",
        str(opened.pk),
        "--to",
        str(renamed.pk),
        stdout=out,
    )
    assert out.getvalue().splitlines() == ["object: exists → exists", 'name: "a" → "b"']
