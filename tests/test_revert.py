"""Revision.revert(): undo a revision as a new revision."""

from __future__ import annotations

import decimal
from io import StringIO

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from revy_core import Context
from revy_core.models import ObjectDelta, Revision
from revy_core.revert import RevertConflict
from revy_core.writer import flush
from tests.testapp.history import changes, history_counts, object_deltas
from tests.testapp.models import Account, Profile, Transaction

pytestmark = pytest.mark.django_db


def latest() -> Revision:
    return Revision.objects.latest("pk")


@pytest.fixture
def account() -> Account:
    with Context.via_revision_description("open"):
        return Account.objects.create(name="a", balance=decimal.Decimal(1))


def test_update_is_set_back(account):
    with Context.via_revision_description("typo"):
        account.name = "b"
        account.balance = decimal.Decimal(5)
        account.save()
    typo = latest()
    actor = User.objects.create_user("fixer")
    result = typo.revert(actor=actor)
    account.refresh_from_db()
    assert (account.name, account.balance) == ("a", decimal.Decimal(1))
    assert result.revision_id is not None
    new = Revision.objects.get(pk=result.revision_id)
    assert new.description == f"Revert revision {typo.pk}: typo"
    delta = object_deltas(account)[-1]
    assert delta.revision_id == new.pk
    assert delta.actor_id == str(actor.pk)
    assert changes(delta) == {"name": ("b", "a"), "balance": ("5.00", "1.00")}
    assert result.updated == {f"testapp.Account {account.pk}": ["name", "balance"]}


def test_create_is_deleted_and_delete_is_restored(account):
    opened = latest()
    pk = account.pk
    opened.revert()
    assert not Account.objects.filter(pk=pk).exists()
    deletion = latest()
    assert deletion.description == f"Revert revision {opened.pk}: open"
    result = deletion.revert()
    restored = Account.objects.get(pk=pk)
    assert (restored.name, restored.balance) == ("a", decimal.Decimal(1))
    assert result.restored == [f"testapp.Account {pk}"]
    assert object_deltas(restored)[-1].action == ObjectDelta.ACTION_CREATE


def test_later_change_of_the_same_field_is_refused_unless_forced(account):
    with Context.via_revision_description("rename"):
        account.name = "b"
        account.save()
    rename = latest()
    with Context.via_revision_description("rename again"):
        account.name = "c"
        account.save()
    again = latest()
    counts = history_counts()
    with pytest.raises(RevertConflict) as caught:
        rename.revert()
    message = str(caught.value)
    assert f"Cannot revert revision {rename.pk}" in message
    assert f"field 'name' was changed later by revision {again.pk}" in message
    assert history_counts() == counts
    rename.revert(force=True)
    account.refresh_from_db()
    assert account.name == "a"


def test_later_change_of_another_field_is_no_conflict(account):
    with Context():
        account.name = "b"
        account.save()
    rename = latest()
    with Context():
        account.balance = decimal.Decimal(9)
        account.save()
    rename.revert()
    account.refresh_from_db()
    assert (account.name, account.balance) == ("a", decimal.Decimal(9))


def test_later_deletion_conflicts_and_force_skips(account):
    with Context():
        account.name = "b"
        account.save()
    rename = latest()
    with Context():
        account.delete()
    with pytest.raises(RevertConflict):
        rename.revert()
    result = rename.revert(force=True)
    assert result.skipped
    assert "deleted since" in result.skipped[0]
    assert result.revision_id is None


def test_masked_fields_are_not_restored(django_user_model):
    user = django_user_model.objects.create_user("u")
    with Context():
        profile = Profile.objects.create(user=user, secret="one", bio="x")
    with Context():
        profile.secret = "two"
        profile.bio = "y"
        profile.save()
    result = latest().revert()
    profile.refresh_from_db()
    assert (profile.secret, profile.bio) == ("two", "x")
    assert result.skipped == [
        f"testapp.Profile {profile.pk} field 'secret': masked in history"
    ]


def test_dry_run(account):
    with Context():
        account.name = "b"
        account.save()
    counts = history_counts()
    result = latest().revert(dry_run=True)
    assert result.updated
    assert result.revision_id is None
    account.refresh_from_db()
    assert account.name == "b"
    assert history_counts() == counts


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_arevert():
    try:
        await _arevert()
    finally:
        # Close the worker thread's connection, so the test database can be
        # dropped at the end of the session.
        await sync_to_async(connections.close_all)()


async def _arevert() -> None:
    with Context():
        account = await Account.objects.acreate(name="a")
    with Context():
        account.name = "b"
        await account.asave()
    revision = await Revision.objects.alatest("pk")
    await revision.arevert()
    await account.arefresh_from_db()
    assert account.name == "a"


def test_command(account):
    with Context():
        account.name = "b"
        account.save()
    rename = latest()
    with Context():
        account.name = "c"
        account.save()
    out = StringIO()
    with pytest.raises(CommandError, match="later by revision"):
        call_command("revy_revert", str(rename.pk), stdout=out)
    fixer = User.objects.create_user("fixer")
    call_command(
        "revy_revert",
        str(rename.pk),
        "--force",
        "--message",
        "undo",
        "--by",
        "auth.User",
        str(fixer.pk),
        stdout=out,
    )
    assert f"set back testapp.Account {account.pk}: name" in out.getvalue()
    assert latest().description == "undo"
    assert object_deltas(account)[-1].actor_id == str(fixer.pk)


def test_large_revision_in_batches():
    imported = Revision(description="import")
    with Context.via_revision(imported):
        accounts = [Account.objects.create(name=f"a{i}") for i in range(5)]
    with Context.via_revision(Revision(description="rename some")):
        for account in accounts[:3]:
            account.name = "renamed"
            account.save()
    with pytest.raises(RevertConflict) as caught:
        imported.revert(batch_size=2)
    assert caught.value.count == 3
    result = imported.revert(batch_size=2, force=True)
    assert len(result.deleted) == 5
    assert not Account.objects.exists()


def test_objects_of_several_models_are_undone_newest_first(account):
    fixer = User.objects.create_user("fixer")
    other = Account.objects.create(name="other")
    pk = account.pk
    with Context.via_revision(Revision(description="mixed")):
        opened = Account.objects.create(name="opened")
        booked = Transaction.objects.create(account=opened, amount=5)
        other.name = "renamed"
        other.save()
        account.delete()
    result = latest().revert(actor=fixer)
    assert not Account.objects.filter(pk=opened.pk).exists()
    assert not Transaction.objects.filter(pk=booked.pk).exists()
    assert Account.objects.get(pk=other.pk).name == "other"
    assert Account.objects.get(pk=pk).name == "a"
    assert result.deleted == [
        f"testapp.Transaction {booked.pk}",
        f"testapp.Account {opened.pk}",
    ]
    assert result.restored == [f"testapp.Account {pk}"]
    # The transaction was deleted by the revert itself, not as a cascade of
    # its account's deletion.
    undone = [
        object_deltas(Transaction, booked.pk)[-1],
        object_deltas(opened)[-1],
        object_deltas(other)[-1],
        object_deltas(Account, pk)[-1],
    ]
    assert [d.action for d in undone] == ["delete", "delete", "update", "create"]
    assert {d.revision_id for d in undone} == {result.revision_id}
    assert {d.actor_id for d in undone} == {str(fixer.pk)}
    assert {d.description for d in undone} == {""}


def test_an_object_changed_twice_in_the_revision_is_set_back_to_its_first_value(
    account,
):
    with Context.via_revision(Revision(description="twice")):
        account.name = "b"
        account.save()
        account.name = "c"
        account.save()
    latest().revert()
    account.refresh_from_db()
    assert account.name == "a"
    assert [changes(d)["name"] for d in object_deltas(account)[-2:]] == [
        ("c", "b"),
        ("b", "a"),
    ]


def _revision_of(action: str, count: int) -> Revision:
    revision = Revision(description=f"{action} {count}")
    with Context():
        accounts = [Account.objects.create(name=f"a{i}") for i in range(count)]
    with Context.via_revision(revision):
        if action == "create":
            Account.objects.bulk_create(Account(name=f"n{i}") for i in range(count))
        elif action == "update":
            for account in accounts:
                account.name = "renamed"
            Account.objects.bulk_update(accounts, ["name"])
        else:
            Account.objects.filter(pk__in=[a.pk for a in accounts]).delete()
    return revision


def _statements(revision: Revision) -> list[str]:
    """The statements of reverting ``revision``; a bulk insert that Django
    split at the backend's parameter limit (999 on SQLite) into consecutive
    statements counts as one. History still waiting from the set-up is
    written first."""
    flush()
    with CaptureQueriesContext(connection) as queries:
        result = revision.revert()
    assert result.revision_id is not None
    statements: list[str] = []
    for query in queries.captured_queries:
        sql = query["sql"]
        table = sql.split("(", 1)[0] if sql.startswith("INSERT INTO") else None
        if table and statements and statements[-1].startswith(table):
            continue
        statements.append(sql)
    return statements


@pytest.mark.parametrize("action", ["create", "update", "delete"])
def test_queries_do_not_grow_with_the_number_of_objects(action):
    ContentType.objects.get_for_model(Account)
    small = _statements(_revision_of(action, 10))
    large = _statements(_revision_of(action, 100))
    assert len(large) == len(small) <= 17
