"""What the API reads and writes."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from ninja import Field, Schema

CurrencyCode = Field(pattern=r"^[A-Z]{3}$", examples=["EUR"])


class ErrorOut(Schema):
    code: str = Field(examples=["not_found"])
    detail: str = Field(examples=["There is no account 42."])


class ValidationErrorOut(ErrorOut):
    errors: list[dict[str, Any]]


class AccountIn(Schema):
    organization: str = Field(
        description="Slug of the organization that owns the account.",
        examples=["acme"],
    )
    name: str = Field(min_length=1, max_length=100)
    currency: str = Field("EUR", pattern=r"^[A-Z]{3}$")
    manager: str | None = Field(None, description="Username of the account's manager.")


class AccountPatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=100)
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    manager: str | None = Field(
        None, description="Username of the manager; null removes the manager."
    )


class AccountOut(Schema):
    id: int
    organization: str
    name: str
    currency: str
    manager: str | None
    balance: Decimal


class TransactionIn(Schema):
    account: int = Field(description="Id of the account.")
    description: str = Field(min_length=1, max_length=200)
    amount: Decimal = Field(max_digits=14, decimal_places=2)
    currency: str | None = Field(
        None, pattern=r"^[A-Z]{3}$", description="Defaults to the account's currency."
    )
    exchange_rate: Decimal = Field(Decimal("1"), gt=0, max_digits=12, decimal_places=6)
    local_amount: Decimal | None = Field(
        None,
        max_digits=14,
        decimal_places=2,
        description=(
            "amount times exchange_rate in the account's currency. Optional: the "
            "system computes it, and corrects it when it is wrong."
        ),
    )
    booked_on: datetime.date | None = None


class TransactionPatch(Schema):
    description: str | None = Field(None, min_length=1, max_length=200)
    amount: Decimal | None = Field(None, max_digits=14, decimal_places=2)
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    exchange_rate: Decimal | None = Field(None, gt=0, max_digits=12, decimal_places=6)
    local_amount: Decimal | None = Field(None, max_digits=14, decimal_places=2)
    booked_on: datetime.date | None = None


class TransactionOut(Schema):
    id: int
    account: int
    description: str
    amount: Decimal
    currency: str
    exchange_rate: Decimal
    local_amount: Decimal
    booked_on: datetime.date


class ActorOut(Schema):
    type: str = Field(description="user, organization or system", examples=["user"])
    id: str | None
    name: str


class ChangeOut(Schema):
    field: str
    old: Any = None
    new: Any = None
    action: str = Field(description="set or unset")
    actor: ActorOut
    description: str


class ObjectRef(Schema):
    type: str = Field(examples=["account"])
    id: str


class EntryOut(Schema):
    revision: int
    at: datetime.datetime
    message: str = Field(description="The revision's commit message.")
    action: str = Field(description="create, update or delete")
    actor: ActorOut
    description: str
    object: ObjectRef
    changes: list[ChangeOut]


class HistoryOut(Schema):
    object: ObjectRef
    exists: bool
    entries: list[EntryOut]


class RevisionOut(Schema):
    id: int
    at: datetime.datetime
    message: str
    entries: list[EntryOut]


class StateOut(Schema):
    object: ObjectRef
    exists: bool = Field(description="false when the object was deleted by then")
    revision: int = Field(description="The revision of the last change by then.")
    at: datetime.datetime = Field(description="When that change was made.")
    values: dict[str, Any]


class RestoreOut(Schema):
    revision: int
    restored: list[ObjectRef]
