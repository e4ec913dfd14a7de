"""Faults: a database error at each step of a tracked write.

A tracked write is, in order: the revision's INSERT (when the context has
no revision yet), the change itself (INSERT, UPDATE or DELETE of the row),
the object delta's INSERT, the attribute deltas' INSERT, and the COMMIT.
Each step is made to fail in turn, by the database itself: an
``execute_wrapper`` raises the backend's error instead of running the
statement, and the COMMIT fails on a deferred foreign key (a row pointing
to an account that does not exist), checked by the database at commit.

Afterwards the database holds either the change with its complete history
or neither: the whole database is compared with its state before the write.
Runs on SQLite (``make test``) and PostgreSQL (``make soak``).
"""

from __future__ import annotations

import decimal
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import DatabaseError, IntegrityError, connection, transaction

from revy_core import Context
from revy_core.models import AttributeDelta, ObjectDelta, Revision
from tests.testapp.models import Account, Transaction

pytestmark = pytest.mark.django_db(transaction=True)

#: Where a tracked write can fail: (step, statement verb, table).
STEPS = {
    "revision": ("INSERT INTO", "revy_revision"),
    "object delta": ("INSERT INTO", "revy_object_delta"),
    "attribute delta": ("INSERT INTO", "revy_attribute_delta"),
}
#: The change itself, per operation.
CHANGE = {"create": "INSERT INTO", "update": "UPDATE", "delete": "DELETE FROM"}
OPERATIONS = ["create", "update", "delete"]
#: The largest id no account has (the deferred foreign key of the commit fault).
MISSING_ACCOUNT = 2_000_000_000


class FailStatement:
    """Raises the database's error instead of one kind of statement."""

    def __init__(self, verb: str, table: str) -> None:
        self.start = f"{verb} {connection.ops.quote_name(table)}"
        self.raised = 0

    def __call__(
        self, execute: Any, sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        # On PostgreSQL both delta inserts are one statement (WITH ...).
        if self.start in sql:
            self.raised += 1
            raise DatabaseError(f"injected failure: {self.start}")
        return execute(sql, params, many, context)


def database_state() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the tables a tracked write touches."""
    return {
        "accounts": sorted(Account.objects.values_list("pk", "name", "balance")),
        "transactions": sorted(Transaction.objects.values_list("pk", "account_id")),
        "revisions": sorted(Revision.objects.values_list("pk", "description")),
        "object deltas": sorted(
            ObjectDelta.objects.values_list(
                "pk", "revision_id", "action", "content_type_id", "content_id"
            )
        ),
        "attribute deltas": sorted(
            AttributeDelta.objects.values_list(
                "pk", "parent_id", "field_name", "old_value", "new_value"
            )
        ),
    }


def assert_complete_history() -> None:
    """Every account has history that rebuilds it; every delta has its change."""
    accounts = {str(pk): name for pk, name in Account.objects.values_list("pk", "name")}
    last: dict[str, Any] = {}
    account_type = ContentType.objects.get_for_model(Account)
    for delta in ObjectDelta.objects.filter(content_type=account_type).order_by("pk"):
        assert delta.revision_id is not None
        names = {a.field_name: a for a in AttributeDelta.objects.filter(parent=delta)}
        if delta.action == ObjectDelta.ACTION_DELETE:
            assert delta.content_id not in accounts, "a delete of a row that exists"
            last.pop(delta.content_id, None)
        else:
            assert names, "an object delta without its attribute deltas"
            if "name" in names:
                last[delta.content_id] = names["name"].new_value
    assert last == accounts


@pytest.fixture
def account() -> Account:
    """An account with history (created inside a context)."""
    with Context(revision_description="opened"):
        return Account.objects.create(name="savings", balance=decimal.Decimal("1"))


def _operate(operation: str, account: Account) -> None:
    if operation == "create":
        Account.objects.create(name="new")
    elif operation == "update":
        account.name = "renamed"
        account.save()
    else:
        account.delete()


def _expected_after(operation: str, before: dict[str, Any]) -> int:
    """How many accounts a successful ``operation`` leaves."""
    count = len(before["accounts"])
    return {"create": count + 1, "update": count, "delete": count - 1}[operation]


def _each_step() -> list[Any]:
    cases = []
    for operation in OPERATIONS:
        for step in [*STEPS, "change"]:
            cases.append(pytest.param(operation, step, id=f"{operation}-{step}"))
    return cases


def _failing(operation: str, step: str) -> FailStatement:
    if step == "change":
        return FailStatement(CHANGE[operation], "testapp_account")
    return FailStatement(*STEPS[step])


def _run(
    operation: str, step: str, account: Account, around: Callable[[], Any]
) -> None:
    before = database_state()
    pk = account.pk
    failure = _failing(operation, step)
    with (
        Context(revision_description="faulty"),
        connection.execute_wrapper(failure),
        pytest.raises(DatabaseError),
    ):
        around()
    assert failure.raised == 1, "the fault was not reached"
    assert database_state() == before
    assert_complete_history()
    # The same write succeeds afterwards, with its complete history.
    with Context(revision_description="retried"):
        # Django leaves a deleted instance without its primary key even when
        # the transaction then fails to commit: retry from the database.
        fresh = Account.objects.get(pk=pk)
        _operate(operation, fresh)
    after = database_state()
    assert len(after["accounts"]) == _expected_after(operation, before)
    assert len(after["object deltas"]) == len(before["object deltas"]) + 1
    assert len(after["revisions"]) == len(before["revisions"]) + 1
    assert_complete_history()


@pytest.mark.parametrize(("operation", "step"), _each_step())
def test_fault_in_autocommit_leaves_neither_change_nor_history(
    operation, step, account
):
    """The save's own transaction: the fault undoes the change and its history."""
    _run(operation, step, account, lambda: _operate(operation, account))


@pytest.mark.parametrize(("operation", "step"), _each_step())
def test_fault_inside_a_transaction_leaves_neither(operation, step, account):
    """Inside the caller's transaction, with an untracked write before it."""

    def work() -> None:
        with transaction.atomic():
            with Context.as_disabled():
                Transaction.objects.create(account=account, amount=decimal.Decimal("2"))
            _operate(operation, account)

    _run(operation, step, account, work)


@pytest.mark.parametrize("operation", OPERATIONS)
def test_commit_failure_inside_a_transaction_leaves_neither(operation, account):
    """The COMMIT fails (a deferred foreign key): nothing of the change stays."""
    before = database_state()
    table = connection.ops.quote_name(Transaction._meta.db_table)
    columns = ", ".join(
        connection.ops.quote_name(c)
        for c in ("account_id", "amount", "exchange_rate", "local_amount", "note")
    )

    def work() -> None:
        with transaction.atomic():
            _operate(operation, account)
            with connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {table} ({columns}) VALUES (%s, 1, 1, 1, '')",
                    [MISSING_ACCOUNT],
                )

    with Context(revision_description="faulty"), pytest.raises(IntegrityError):
        work()
    assert database_state() == before
    assert_complete_history()


def test_commit_failure_of_the_tracked_save_itself_leaves_neither(account):
    """In autocommit the save's own atomic block commits: make that COMMIT fail.

    A Transaction pointing to a missing account is inserted (the foreign key
    is deferred), its history is written, and the COMMIT refuses it all.
    """
    before = database_state()
    with Context(revision_description="faulty"), pytest.raises(IntegrityError):
        Transaction.objects.create(
            account_id=MISSING_ACCOUNT, amount=decimal.Decimal("1")
        )
    assert database_state() == before
    assert_complete_history()


def test_fault_after_an_earlier_committed_save_keeps_the_earlier_one(account):
    """Two saves in autocommit: the first commits with its history, the
    second fails at its attribute deltas and leaves nothing."""
    failure = FailStatement("INSERT INTO", "revy_attribute_delta")
    with Context(revision_description="two saves"):
        Account.objects.create(name="first")
        with connection.execute_wrapper(failure), pytest.raises(DatabaseError):
            Account.objects.create(name="second")
    assert failure.raised == 1
    assert sorted(Account.objects.values_list("name", flat=True)) == [
        "first",
        "savings",
    ]
    assert_complete_history()
