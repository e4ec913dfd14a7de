"""revy_history and revy_core.history: one object's history, readable."""

from __future__ import annotations

import decimal
import json
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from revy_core import Context
from revy_core.history import object_history
from tests.testapp.models import Account

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("revy_history", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.fixture
def account_pk() -> int:
    alice = User.objects.create_user("alice")
    with Context.via_actor(alice), Context.via_revision_description("Open"):
        account = Account.objects.create(name="savings", balance=decimal.Decimal(1))
    with Context.via_actor(None), Context.via_revision_description("Interest"):
        account.balance = decimal.Decimal("1.50")
        account.save()
    pk = account.pk
    with Context.via_actor(alice), Context.via_revision_description("Close"):
        account.delete()
    return pk


def test_entries_oldest_first_with_actor_message_and_changes(account_pk):
    entries = list(object_history(Account, account_pk, batch_size=2))
    assert [e.action for e in entries] == ["create", "update", "delete"]
    assert [e.message for e in entries] == ["Open", "Interest", "Close"]
    assert entries[0].actor.startswith("alice (auth.user:")
    assert entries[1].actor == "system"
    update = entries[1].changes
    assert [(c.field, c.old, c.new) for c in update] == [("balance", "1.00", "1.50")]
    created = {c.field: c.new for c in entries[0].changes}
    assert created["name"] == "savings"


def test_table_shows_when_who_message_and_old_to_new(account_pk):
    text = run("testapp.Account", str(account_pk))
    lines = text.splitlines()
    assert lines[0].split() == [
        "when",
        "revision",
        "action",
        "who",
        "message",
        "change",
    ]
    assert 'balance: "1.00" → "1.50"' in text
    assert "Interest" in text
    assert "system" in text
    assert 'name: "savings" → ∅' in text


def test_json_lines(account_pk):
    rows = [
        json.loads(line)
        for line in run("testapp.Account", str(account_pk), "--json").splitlines()
    ]
    assert [r["action"] for r in rows] == ["create", "update", "delete"]
    assert rows[1]["changes"] == [
        {
            "field": "balance",
            "action": "set",
            "old": "1.00",
            "new": "1.50",
            "actor": "system",
            "description": "",
        }
    ]


def test_no_history_and_unknown_model():
    assert "No history for testapp.Account 999." in run("testapp.Account", "999")
    with pytest.raises(CommandError, match="not an installed model"):
        run("testapp.Nope", "1")
