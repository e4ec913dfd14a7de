"""The ledger's HTTP API: async django-ninja endpoints under ``/api/``.

Requests are authenticated by the Django session or a bearer token. revy_mw
records every change with the request's actor (the user, or the organization
named in ``X-Perform-As-Organization``) and the ``X-Commit-Message`` header as
the revision's message. Errors are JSON, ``{"code": ..., "detail": ...}``, the
shape revy_mw uses for the 400 and 403 it answers itself.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import ninja
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Field, NinjaAPI, Query, Router, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError

from revy_core import Context
from sample_site.ledger import history, services
from sample_site.ledger.auth import BearerTokenAuth, SessionAuth
from sample_site.ledger.errors import Forbidden, LedgerError, NotFound
from sample_site.ledger.models import Account, Membership, Organization, Transaction
from sample_site.ledger.permissions import (
    readable_organization_ids,
    writable_organization_ids,
)
from sample_site.ledger.schemas import (
    AccountIn,
    AccountOut,
    AccountPatch,
    ErrorOut,
    HistoryOut,
    ObjectRef,
    RestoreOut,
    RevisionOut,
    StateOut,
    TransactionIn,
    TransactionOut,
    TransactionPatch,
    ValidationErrorOut,
)

__all__ = ["api"]

DESCRIPTION = """\
A small ledger whose every change is recorded by **revy**.

Authenticate with the session of the admin (log in at `/admin/`) or with
`Authorization: Bearer <token>`. Two headers shape the history:

- `X-Commit-Message: <text>`: the message of the revision the request writes.
- `X-Perform-As-Organization: <slug>`: act on behalf of an organization you
  are an owner or member of; anything else is refused with 403 and nothing
  is written.

Send `local_amount` wrong or not at all, and the system corrects it under its
own name in the same revision.
"""

#: The headers revy_mw reads, shown on every operation of the docs so that
#: "Try it out" can send them.
HEADER_PARAMETERS = [
    {
        "name": "X-Commit-Message",
        "in": "header",
        "required": False,
        "description": "The message of the revision this request writes.",
        "schema": {"type": "string"},
    },
    {
        "name": "X-Perform-As-Organization",
        "in": "header",
        "required": False,
        "description": (
            "Slug of an organization to act for (you must be its owner or a "
            "member); anything else is refused with 403."
        ),
        "schema": {"type": "string"},
    },
]


class LedgerAPI(NinjaAPI):
    def get_openapi_schema(self, **kwargs: Any) -> Any:
        schema = super().get_openapi_schema(**kwargs)
        for operations in schema["paths"].values():
            for operation in operations.values():
                operation.setdefault("parameters", []).extend(HEADER_PARAMETERS)
        return schema


api = LedgerAPI(
    title="revy sample ledger",
    version="1.0",
    description=DESCRIPTION,
    auth=[BearerTokenAuth(), SessionAuth()],
    urls_namespace="api",
)

#: ninja.Status, where django-ninja has it (returning a tuple is deprecated).
Status: Any = getattr(ninja, "Status", None)

ERRORS: dict[int, Any] = {
    401: ErrorOut,
    403: ErrorOut,
    404: ErrorOut,
    422: ValidationErrorOut,
}


# Errors -----------------------------------------------------------------------


def _error(request: HttpRequest, status: int, code: str, message: str) -> HttpResponse:
    return api.create_response(
        request, {"code": code, "detail": message}, status=status
    )


@api.exception_handler(LedgerError)
def _ledger_error(request: HttpRequest, exc: LedgerError) -> HttpResponse:
    return _error(request, exc.status, exc.code, exc.message)


@api.exception_handler(PermissionDenied)
def _permission_denied(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    return _error(request, 403, "forbidden", str(exc) or "Forbidden.")


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _error(request, 404, "not_found", str(exc) or "Not found.")


@api.exception_handler(AuthenticationError)
def _unauthorized(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return _error(
        request,
        401,
        "unauthorized",
        "Authentication required: send 'Authorization: Bearer <token>' or log in "
        "at /admin/ for a session.",
    )


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    code = "forbidden" if exc.status_code == 403 else "http_error"
    return _error(request, exc.status_code, code, exc.message)


def _location(loc: Any) -> str:
    parts = [str(p) for p in loc if p not in ("body", "payload", "query", "path")]
    return ".".join(parts) or "request"


@api.exception_handler(ValidationError)
def _invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    problems = "; ".join(
        f"{_location(e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in exc.errors
    )
    errors = [
        {"field": _location(e.get("loc", ())), "message": e.get("msg", "")}
        for e in exc.errors
    ]
    return api.create_response(
        request,
        {
            "code": "validation_error",
            "detail": f"The request is not valid: {problems}.",
            "errors": errors,
        },
        status=422,
    )


# Permissions --------------------------------------------------------------------


def _check(user: Any, organization_id: int | None, *, write: bool, what: str) -> None:
    """Raise NotFound if ``user`` cannot see ``what``, Forbidden if it cannot
    change it."""
    readable = readable_organization_ids(user)
    if readable is not None and organization_id not in readable:
        raise NotFound(f"There is no {what}.")
    if write:
        writable = writable_organization_ids(user)
        if writable is not None and organization_id not in writable:
            raise Forbidden(
                f"You may read the {what} but not change it: your role in its "
                "organization is read only."
            )


def _account_out(account: Account) -> dict[str, Any]:
    return {
        "id": account.pk,
        "organization": account.organization.slug,
        "name": account.name,
        "currency": account.currency,
        "manager": account.manager.get_username() if account.manager else None,
        "balance": _decimal(account, "balance"),
    }


def _decimal(instance: models.Model, name: str) -> Decimal:
    """A decimal field's value as the database stores it (with all its places)."""
    places = instance._meta.get_field(name).decimal_places  # type: ignore[union-attr]
    return Decimal(getattr(instance, name)).quantize(Decimal(1).scaleb(-places))


def _transaction_out(transaction: Transaction) -> dict[str, Any]:
    return {
        "id": transaction.pk,
        "account": transaction.account_id,
        "description": transaction.description,
        "amount": _decimal(transaction, "amount"),
        "currency": transaction.currency,
        "exchange_rate": _decimal(transaction, "exchange_rate"),
        "local_amount": _decimal(transaction, "local_amount"),
        "booked_on": transaction.booked_on,
    }


def _get_account(user: Any, pk: int, *, write: bool = False) -> Account:
    account = (
        Account.objects.select_related("organization", "manager").filter(pk=pk).first()
    )
    if account is None:
        raise NotFound(f"There is no account {pk}.")
    _check(user, account.organization_id, write=write, what=f"account {pk}")
    return account


def _get_transaction(user: Any, pk: int, *, write: bool = False) -> Transaction:
    transaction = Transaction.objects.select_related("account").filter(pk=pk).first()
    if transaction is None:
        raise NotFound(f"There is no transaction {pk}.")
    _check(
        user,
        transaction.account.organization_id,
        write=write,
        what=f"transaction {pk}",
    )
    return transaction


def created(body: Any) -> Any:
    """A 201 response carrying ``body``."""
    if Status is None:  # django-ninja before 1.5
        return 201, body
    return Status(201, body)


def no_content() -> Any:
    """An empty 204 response."""
    if Status is None:
        return no_content()
    return Status(204, None)


def _decided(function: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        # The actor first: revy_mw's resolvers refuse a forbidden
        # X-Perform-As-Organization with a 403 before anything else is said.
        Context.get_actor()
        return function(*args, **kwargs)

    return call


def run(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run blocking ORM work off the event loop, in the request's context,
    once the request's actor is known."""
    return sync_to_async(_decided(function))(*args, **kwargs)


# Who am I ---------------------------------------------------------------------------


class MembershipOut(Schema):
    organization: str
    name: str
    role: str


class MeOut(Schema):
    username: str
    is_superuser: bool
    memberships: list[MembershipOut]


@api.get("/me", response={200: MeOut, 401: ErrorOut}, tags=["me"])
async def me(request: HttpRequest) -> dict[str, Any]:
    """The authenticated user and the organizations they belong to."""
    user: Any = request.auth  # type: ignore[attr-defined]
    memberships = [
        {
            "organization": m.organization.slug,
            "name": m.organization.name,
            "role": m.role,
        }
        async for m in Membership.objects.filter(user=user).select_related(
            "organization"
        )
    ]
    return {
        "username": user.get_username(),
        "is_superuser": user.is_superuser,
        "memberships": memberships,
    }


# Accounts ---------------------------------------------------------------------------

accounts = Router(tags=["accounts"])


@accounts.get("", response={200: list[AccountOut], 401: ErrorOut})
async def list_accounts(
    request: HttpRequest, organization: str | None = None
) -> list[dict[str, Any]]:
    """The accounts you can see, optionally of one organization (by slug)."""
    readable = await run(readable_organization_ids, request.auth)  # type: ignore[attr-defined]
    queryset = Account.objects.select_related("organization", "manager")
    if readable is not None:
        queryset = queryset.filter(organization_id__in=readable)
    if organization is not None:
        queryset = queryset.filter(organization__slug=organization)
    return [_account_out(account) async for account in queryset.order_by("pk")]


def _create_account(user: Any, payload: AccountIn) -> dict[str, Any]:
    organization = Organization.objects.filter(slug=payload.organization).first()
    if organization is None:
        raise NotFound(f"There is no organization {payload.organization!r}.")
    _check(
        user,
        organization.pk,
        write=True,
        what=f"organization {payload.organization!r}",
    )
    account = services.create_account(
        organization=organization,
        name=payload.name,
        currency=payload.currency,
        manager=payload.manager,
    )
    return _account_out(account)


@accounts.post("", response={201: AccountOut, **ERRORS})
async def create_account(request: HttpRequest, payload: AccountIn) -> Any:
    """Open an account for an organization you are an owner or member of."""
    return created(await run(_create_account, request.auth, payload))  # type: ignore[attr-defined]


@accounts.get("/{int:account_id}", response={200: AccountOut, **ERRORS})
async def get_account(request: HttpRequest, account_id: int) -> Any:
    account = await run(_get_account, request.auth, account_id)  # type: ignore[attr-defined]
    return _account_out(account)


def _update_account(user: Any, pk: int, payload: AccountPatch) -> dict[str, Any]:
    account = _get_account(user, pk, write=True)
    changes = payload.model_dump(exclude_unset=True)
    for name in ("name", "currency"):
        if name in changes and changes[name] is None:
            del changes[name]
    account = services.update_account(account, changes)
    return _account_out(_get_account(user, pk))


@accounts.patch("/{int:account_id}", response={200: AccountOut, **ERRORS})
async def update_account(
    request: HttpRequest, account_id: int, payload: AccountPatch
) -> Any:
    """Change an account's name, currency or manager."""
    return await run(_update_account, request.auth, account_id, payload)  # type: ignore[attr-defined]


def _delete_account(user: Any, pk: int) -> None:
    services.delete_account(_get_account(user, pk, write=True))


@accounts.delete("/{int:account_id}", response={204: None, **ERRORS})
async def delete_account(request: HttpRequest, account_id: int) -> Any:
    """Delete an account and, with it, its transactions."""
    await run(_delete_account, request.auth, account_id)  # type: ignore[attr-defined]
    return no_content()


# Transactions -----------------------------------------------------------------------

transactions = Router(tags=["transactions"])


@transactions.get("", response={200: list[TransactionOut], 401: ErrorOut})
async def list_transactions(
    request: HttpRequest, account: int | None = None
) -> list[dict[str, Any]]:
    """The transactions you can see, optionally of one account."""
    readable = await run(readable_organization_ids, request.auth)  # type: ignore[attr-defined]
    queryset = Transaction.objects.all()
    if readable is not None:
        queryset = queryset.filter(account__organization_id__in=readable)
    if account is not None:
        queryset = queryset.filter(account_id=account)
    return [_transaction_out(t) async for t in queryset.order_by("pk")]


def _create_transaction(user: Any, payload: TransactionIn) -> dict[str, Any]:
    account = _get_account(user, payload.account, write=True)
    data = payload.model_dump(exclude={"account"})
    return _transaction_out(services.create_transaction(account, data))


@transactions.post("", response={201: TransactionOut, **ERRORS})
async def create_transaction(request: HttpRequest, payload: TransactionIn) -> Any:
    """Book a transaction. A missing or wrong `local_amount` is corrected by the
    system, recorded under its own name in the same revision."""
    return created(await run(_create_transaction, request.auth, payload))  # type: ignore[attr-defined]


@transactions.get("/{int:transaction_id}", response={200: TransactionOut, **ERRORS})
async def get_transaction(request: HttpRequest, transaction_id: int) -> Any:
    transaction = await run(_get_transaction, request.auth, transaction_id)  # type: ignore[attr-defined]
    return _transaction_out(transaction)


def _update_transaction(
    user: Any, pk: int, payload: TransactionPatch
) -> dict[str, Any]:
    transaction = _get_transaction(user, pk, write=True)
    changes = {
        name: value
        for name, value in payload.model_dump(exclude_unset=True).items()
        if value is not None
    }
    return _transaction_out(services.update_transaction(transaction, changes))


@transactions.patch("/{int:transaction_id}", response={200: TransactionOut, **ERRORS})
async def update_transaction(
    request: HttpRequest, transaction_id: int, payload: TransactionPatch
) -> Any:
    return await run(_update_transaction, request.auth, transaction_id, payload)  # type: ignore[attr-defined]


def _delete_transaction(user: Any, pk: int) -> None:
    services.delete_transaction(_get_transaction(user, pk, write=True))


@transactions.delete("/{int:transaction_id}", response={204: None, **ERRORS})
async def delete_transaction(request: HttpRequest, transaction_id: int) -> Any:
    await run(_delete_transaction, request.auth, transaction_id)  # type: ignore[attr-defined]
    return no_content()


# History ---------------------------------------------------------------------------


def _actor_out(actor: history.Actor) -> dict[str, Any]:
    return {"type": actor.kind, "id": actor.id, "name": actor.name}


def _entry_out(entry: history.Entry) -> dict[str, Any]:
    return {
        "revision": entry.revision_id,
        "at": entry.created_at,
        "message": entry.message,
        "action": entry.action,
        "actor": _actor_out(entry.actor),
        "description": entry.description,
        "object": {"type": entry.object_type, "id": entry.object_id},
        "changes": [
            {
                "field": change.field,
                "old": change.old,
                "new": change.new,
                "action": change.action,
                "actor": _actor_out(change.actor),
                "description": change.description,
            }
            for change in entry.changes
        ],
    }


def _name(model: type[models.Model]) -> str:
    return model._meta.model_name or ""


def _check_history(
    user: Any, model: type[models.Model], pk: int, *, write: bool
) -> None:
    what = f"{_name(model)} {pk}"
    organization_id = history.organization_id_of(model, pk)
    if organization_id is None:
        raise NotFound(f"There is no {what}, and no history of it.")
    _check(user, organization_id, write=write, what=what)


def _history(user: Any, model: type[models.Model], pk: int) -> dict[str, Any]:
    _check_history(user, model, pk, write=False)
    entries = history.object_history(model, pk)
    return {
        "object": {"type": _name(model), "id": str(pk)},
        "exists": model._default_manager.filter(pk=pk).exists(),
        "entries": [_entry_out(entry) for entry in entries],
    }


class StateQuery(Schema):
    revision: int | None = None
    at: datetime.datetime | None = None


def _state(
    user: Any, model: type[models.Model], pk: int, query: StateQuery
) -> dict[str, Any]:
    if (query.revision is None) == (query.at is None):
        raise LedgerError(
            "Give exactly one of `revision` (a revision id) or `at` (an ISO 8601 "
            "timestamp)."
        )
    _check_history(user, model, pk, write=False)
    point = query.revision if query.revision is not None else _aware(query.at)
    assert point is not None
    state = history.state(model, pk, point)
    return {
        "object": {"type": _name(model), "id": str(pk)},
        "exists": state.exists,
        "revision": state.revision_id,
        "at": state.created_at,
        "values": state.values,
    }


def _aware(at: datetime.datetime | None) -> datetime.datetime | None:
    """A time without a zone is in the site's time zone."""
    if at is None or timezone.is_aware(at):
        return at
    return timezone.make_aware(at)


POINT = (
    "A revision id (the object as that revision left it) or an ISO 8601 time "
    "(the object as it was then)."
)


class DiffQuery(Schema):
    start: int | datetime.datetime | None = Field(
        None, description=POINT + " Default: before the object's history."
    )
    end: int | datetime.datetime | None = Field(
        None, description=POINT + " Default: its latest state."
    )


class PointOut(Schema):
    exists: bool = Field(description="false before its history, or once deleted")
    revision: int | None = Field(
        description="The revision of the last change by then; null before its history."
    )
    at: datetime.datetime | None = Field(description="When that change was made.")


class FieldDiffOut(Schema):
    field: str
    old: Any = Field(None, description="The value at `start`, as history stores it.")
    new: Any = Field(None, description="The value at `end`.")


class DiffOut(Schema):
    object: ObjectRef
    start: PointOut
    end: PointOut
    changed: bool = Field(description="Anything changed, existence included.")
    changes: list[FieldDiffOut]


def _point_out(state: history.State) -> dict[str, Any]:
    return {
        "exists": state.exists,
        "revision": state.revision_id,
        "at": state.created_at,
    }


def _diff(
    user: Any, model: type[models.Model], pk: int, query: DiffQuery
) -> dict[str, Any]:
    _check_history(user, model, pk, write=False)
    start, end, difference = history.difference(
        model,
        pk,
        query.start if isinstance(query.start, int) else _aware(query.start),
        query.end if isinstance(query.end, int) else _aware(query.end),
    )
    return {
        "object": {"type": _name(model), "id": str(pk)},
        "start": _point_out(start),
        "end": _point_out(end),
        "changed": bool(difference),
        "changes": [
            {"field": name, "old": old, "new": new}
            for name, (old, new) in difference.changes.items()
        ],
    }


def _restore(user: Any, model: type[models.Model], pk: int) -> dict[str, Any]:
    _check_history(user, model, pk, write=True)
    restored = history.restore(model, pk)
    latest = history.object_history(model, pk)[-1]
    return {
        "revision": latest.revision_id,
        "restored": [{"type": _name(type(obj)), "id": str(obj.pk)} for obj in restored],
    }


STATE_ERRORS: dict[int, Any] = {**ERRORS, 400: ErrorOut}
RESTORE_ERRORS: dict[int, Any] = {**ERRORS, 409: ErrorOut}


@accounts.get("/{int:account_id}/history", response={200: HistoryOut, **ERRORS})
async def account_history(request: HttpRequest, account_id: int) -> Any:
    """Every revision that touched the account, oldest first, also once deleted."""
    return await run(_history, request.auth, Account, account_id)  # type: ignore[attr-defined]


@accounts.get("/{int:account_id}/state", response={200: StateOut, **STATE_ERRORS})
async def account_state(
    request: HttpRequest, account_id: int, query: Query[StateQuery]
) -> Any:
    """The account as it was after a revision (`?revision=`) or at a time (`?at=`)."""
    return await run(_state, request.auth, Account, account_id, query)  # type: ignore[attr-defined]


@accounts.get("/{int:account_id}/diff", response={200: DiffOut, **ERRORS})
async def account_diff(
    request: HttpRequest, account_id: int, query: Query[DiffQuery]
) -> Any:
    """What changed in the account, field by field, between two points of its
    history (`?start=` and `?end=`: revision ids or times)."""
    return await run(_diff, request.auth, Account, account_id, query)  # type: ignore[attr-defined]


@accounts.post(
    "/{int:account_id}/restore", response={201: RestoreOut, **RESTORE_ERRORS}
)
async def restore_account(request: HttpRequest, account_id: int) -> Any:
    """Bring back a deleted account with its id, and the transactions deleted
    with it, as a new revision."""
    return created(await run(_restore, request.auth, Account, account_id))  # type: ignore[attr-defined]


@transactions.get("/{int:transaction_id}/history", response={200: HistoryOut, **ERRORS})
async def transaction_history(request: HttpRequest, transaction_id: int) -> Any:
    """Every revision that touched the transaction, oldest first."""
    return await run(_history, request.auth, Transaction, transaction_id)  # type: ignore[attr-defined]


@transactions.get(
    "/{int:transaction_id}/state", response={200: StateOut, **STATE_ERRORS}
)
async def transaction_state(
    request: HttpRequest, transaction_id: int, query: Query[StateQuery]
) -> Any:
    """The transaction as it was after a revision or at a time."""
    return await run(_state, request.auth, Transaction, transaction_id, query)  # type: ignore[attr-defined]


@transactions.get("/{int:transaction_id}/diff", response={200: DiffOut, **ERRORS})
async def transaction_diff(
    request: HttpRequest, transaction_id: int, query: Query[DiffQuery]
) -> Any:
    """What changed in the transaction, field by field, between two points."""
    return await run(_diff, request.auth, Transaction, transaction_id, query)  # type: ignore[attr-defined]


@transactions.post(
    "/{int:transaction_id}/restore", response={201: RestoreOut, **RESTORE_ERRORS}
)
async def restore_transaction(request: HttpRequest, transaction_id: int) -> Any:
    """Bring back a deleted transaction with its id, as a new revision."""
    return created(await run(_restore, request.auth, Transaction, transaction_id))  # type: ignore[attr-defined]


# Revisions ---------------------------------------------------------------------------

revisions = Router(tags=["revisions"])


def _visible(user: Any, entry: history.Entry) -> bool:
    readable = readable_organization_ids(user)
    if readable is None:
        return True
    if entry.model is get_user_model():
        return entry.object_id == str(user.pk)
    if entry.model is None:
        return False
    return history.organization_id_of(entry.model, entry.object_id) in readable


def _revision(user: Any, pk: int) -> dict[str, Any]:
    revision, entries = history.revision_history(pk)
    visible = [entry for entry in entries if _visible(user, entry)]
    if not visible:
        raise NotFound(f"There is no revision {pk}.")
    return {
        "id": revision.pk,
        "at": revision.created_at,
        "message": revision.description,
        "entries": [_entry_out(entry) for entry in visible],
    }


@revisions.get("/{int:revision_id}", response={200: RevisionOut, **ERRORS})
async def get_revision(request: HttpRequest, revision_id: int) -> Any:
    """Everything one revision changed (what you may see of it), in order."""
    return await run(_revision, request.auth, revision_id)  # type: ignore[attr-defined]


api.add_router("/accounts", accounts)
api.add_router("/transactions", transactions)
api.add_router("/revisions", revisions)
