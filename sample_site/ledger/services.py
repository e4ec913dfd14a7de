"""Writing to the ledger: the operations the API and the admin share.

Each runs in one database transaction, inside the revy context the request
middleware opened, so all its changes land in the request's revision with the
request's actor, except where the system steps in under its own actor: it
corrects a transaction's local amount and keeps account balances, as in the
collaborative-revision pattern::

    with Context.via_actor(None), Context.via_attribute_delta_description(...):
        transaction.local_amount = expected
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction as db
from django.db.models import Sum

from revy_core import Context
from sample_site.ledger.errors import NotFound
from sample_site.ledger.models import Account, Organization, Transaction

__all__ = [
    "BALANCE_DESCRIPTION",
    "CASCADE_DESCRIPTION",
    "COMPUTED_DESCRIPTION",
    "CORRECTED_DESCRIPTION",
    "create_account",
    "create_transaction",
    "delete_account",
    "delete_transaction",
    "recalculate_balance",
    "save_transaction",
    "update_account",
    "update_transaction",
]

CORRECTED_DESCRIPTION = (
    "Corrected by the system: local amount = amount times exchange rate."
)
COMPUTED_DESCRIPTION = (
    "Computed by the system: local amount = amount times exchange rate."
)
BALANCE_DESCRIPTION = "Balance recalculated by the system."
CASCADE_DESCRIPTION = "Deleted with its account."


def _user_by_username(username: str | None) -> Any:
    if username is None:
        return None
    user = get_user_model()._default_manager.filter(username=username).first()
    if user is None:
        raise NotFound(f"There is no user named {username!r}.")
    return user


def recalculate_balance(account: Account) -> None:
    """Set the account's balance to the sum of its transactions, as the system."""
    total = account.transactions.aggregate(total=Sum("local_amount"))["total"]
    balance = (total or Decimal("0")).quantize(Decimal("0.01"))
    if balance == account.balance:
        return
    with (
        Context.via_actor(None),
        Context.via_object_delta_description(BALANCE_DESCRIPTION),
        Context.via_attribute_delta_description(BALANCE_DESCRIPTION),
    ):
        account.balance = balance
        account.save(update_fields=["balance"])


def _correct_local_amount(transaction: Transaction, sent: Decimal | None) -> None:
    """The seed's collaborative pattern: the system fixes a derived amount."""
    expected = transaction.expected_local_amount()
    if sent is not None and Decimal(sent) == expected:
        return
    if (
        sent is None
        and transaction.pk is not None
        and Decimal(transaction.local_amount) == expected
    ):
        return
    description = COMPUTED_DESCRIPTION if sent is None else CORRECTED_DESCRIPTION
    with (
        Context.via_actor(None),
        Context.via_attribute_delta_description(description),
    ):
        transaction.local_amount = expected


def create_account(
    *,
    organization: Organization,
    name: str,
    currency: str,
    manager: str | None = None,
) -> Account:
    with db.atomic():
        account = Account(
            organization=organization,
            name=name,
            currency=currency,
            manager=_user_by_username(manager),
        )
        account.save()
        return account


def update_account(account: Account, changes: Mapping[str, Any]) -> Account:
    with db.atomic():
        for name, value in changes.items():
            if name == "manager":
                account.manager = _user_by_username(value)
            else:
                setattr(account, name, value)
        account.save()
        return account


def delete_account(account: Account) -> None:
    """Delete an account; its transactions go with it (revy's ``CASCADE``)."""
    with db.atomic(), Context.via_deletion_description(CASCADE_DESCRIPTION):
        account.delete()


def save_transaction(transaction: Transaction, local_amount: Any = None) -> None:
    """Save a new or changed transaction and keep its account's balance.

    ``local_amount`` is what the client sent, or ``None``; the system sets
    the right value under its own actor when that is missing or wrong.
    """
    with db.atomic():
        if local_amount is not None:
            transaction.local_amount = local_amount
        _correct_local_amount(transaction, local_amount)
        transaction.save()
        recalculate_balance(
            Account.objects.select_for_update().get(pk=transaction.account_id)
        )


def create_transaction(account: Account, data: Mapping[str, Any]) -> Transaction:
    data = dict(data)
    sent = data.pop("local_amount", None)
    if data.get("currency") is None:
        data["currency"] = account.currency
    if data.get("booked_on") is None:
        data.pop("booked_on", None)
    transaction = Transaction(account=account, **data)
    save_transaction(transaction, sent)
    return transaction


def update_transaction(
    transaction: Transaction, changes: Mapping[str, Any]
) -> Transaction:
    changes = dict(changes)
    sent = changes.pop("local_amount", None)
    for name, value in changes.items():
        setattr(transaction, name, value)
    save_transaction(transaction, sent)
    return transaction


def delete_transaction(transaction: Transaction) -> None:
    with db.atomic():
        account_id = transaction.account_id
        transaction.delete()
        recalculate_balance(Account.objects.select_for_update().get(pk=account_id))
