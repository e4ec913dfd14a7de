"""The HTTP API, end to end through the middleware, under WSGI and ASGI."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import pytest
from django.test import Client

from revy_core.models import AttributeDelta, ObjectDelta, Revision
from sample_site.ledger import services
from sample_site.ledger.models import Account, Organization, Transaction
from sample_site.tests.conftest import Api, history_counts

# Authentication ------------------------------------------------------------


def test_no_credentials_is_401_with_a_json_message(api: Api) -> None:
    response = api.get("/api/accounts")
    assert response.status_code == 401
    body = response.json()
    assert body["code"] == "unauthorized"
    assert "Authorization: Bearer" in body["detail"]


def test_unknown_token_is_401(api: Api) -> None:
    response = api.get("/api/me", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401


def test_bearer_token(api: Api) -> None:
    response = api.get("/api/me", user="bob")
    assert response.status_code == 200
    assert response.json() == {
        "username": "bob",
        "is_superuser": False,
        "memberships": [
            {"organization": "acme", "name": "Acme Corp", "role": "member"},
            {"organization": "globex", "name": "Globex", "role": "viewer"},
        ],
    }


def test_session(api: Api, people: dict[str, Any]) -> None:
    api.login(people["carol"])
    assert api.get("/api/me").json()["username"] == "carol"
    response = api.post(
        "/api/accounts",
        {"organization": "globex", "name": "Petty cash"},
        message="Open petty cash",
    )
    assert response.status_code == 201
    delta = ObjectDelta.objects.get(content_type__model="account")
    assert delta.actor == people["carol"]
    assert delta.revision.description == "Open petty cash"


def test_session_writes_need_the_csrf_token(people: dict[str, Any]) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(people["carol"])
    response = client.post(
        "/api/accounts",
        {"organization": "globex", "name": "Petty cash"},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert response.json() == {"code": "forbidden", "detail": "CSRF check Failed"}
    assert not Account.objects.exists()


# Accounts ------------------------------------------------------------------------


def test_create_account_records_the_user_and_the_commit_message(
    api: Api, account: dict[str, Any], people: dict[str, Any]
) -> None:
    assert account == {
        "id": account["id"],
        "organization": "acme",
        "name": "Operating",
        "currency": "EUR",
        "manager": None,
        "balance": "0.00",
    }
    delta = ObjectDelta.objects.get(content_type__model="account")
    assert delta.action == ObjectDelta.ACTION_CREATE
    assert delta.actor == people["alice"]
    assert delta.revision.description == "Open the operating account"
    assert delta.content_id == str(account["id"])


def test_acting_as_an_organization_records_the_organization(
    api: Api, people: dict[str, Any]
) -> None:
    response = api.post(
        "/api/accounts",
        {"organization": "acme", "name": "Travel", "manager": "erin"},
        user="alice",
        organization="acme",
        message="Open a travel budget",
    )
    assert response.status_code == 201, response.content
    assert response.json()["manager"] == "erin"
    delta = ObjectDelta.objects.get(content_type__model="account")
    assert delta.actor == Organization.objects.get(slug="acme")
    assert {a.actor for a in delta.attribute_deltas.all()} == {delta.actor}


@pytest.mark.parametrize(
    ("user", "organization"),
    [
        ("bob", "globex"),  # a viewer of globex
        ("carol", "acme"),  # not a member of acme
        ("alice", "no-such-organization"),
        ("alice", "1 OR 1=1"),
    ],
)
def test_acting_for_a_forbidden_organization_is_403_and_writes_nothing(
    api: Api, user: str, organization: str
) -> None:
    before = history_counts()
    response = api.post(
        "/api/accounts",
        {"organization": "acme", "name": "Sneaky"},
        user=user,
        organization=organization,
        message="Sneaky",
    )
    assert response.status_code == 403, response.content
    body = response.json()
    assert body["code"]
    assert body["detail"]
    assert history_counts() == before


def test_forbidden_organization_on_a_read_is_403_too(api: Api) -> None:
    response = api.get(
        "/api/accounts",
        user="bob",
        organization="globex",
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 403
    assert "globex" in response.json()["detail"]
    # Without JSON in Accept or Content-Type, revy_mw answers in plain text.
    response = api.get("/api/accounts", user="bob", organization="globex")
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/plain")
    assert "globex" in response.content.decode()


def test_list_accounts_shows_only_your_organizations(
    api: Api, account: dict[str, Any]
) -> None:
    api.post(
        "/api/accounts",
        {"organization": "globex", "name": "Main", "currency": "USD"},
        user="carol",
    )
    assert [a["name"] for a in api.get("/api/accounts", user="bob").json()] == [
        "Operating",
        "Main",
    ]
    assert [a["name"] for a in api.get("/api/accounts", user="carol").json()] == [
        "Main"
    ]
    response = api.get("/api/accounts?organization=globex", user="bob")
    assert [a["name"] for a in response.json()] == ["Main"]


def test_get_account(api: Api, account: dict[str, Any]) -> None:
    response = api.get(f"/api/accounts/{account['id']}", user="bob")
    assert response.status_code == 200
    assert response.json() == account


def test_an_account_of_another_organization_is_404(
    api: Api, account: dict[str, Any]
) -> None:
    response = api.get(f"/api/accounts/{account['id']}", user="carol")
    assert response.status_code == 404
    assert response.json() == {
        "code": "not_found",
        "detail": f"There is no account {account['id']}.",
    }


def test_missing_account_is_404(api: Api) -> None:
    response = api.get("/api/accounts/999", user="alice")
    assert response.status_code == 404
    assert response.json()["detail"] == "There is no account 999."


def test_creating_in_an_organization_you_do_not_belong_to_is_404(api: Api) -> None:
    response = api.post(
        "/api/accounts", {"organization": "globex", "name": "X"}, user="alice"
    )
    assert response.status_code == 404
    assert response.json()["detail"] == "There is no organization 'globex'."


def test_viewers_cannot_write(api: Api) -> None:
    before = history_counts()
    response = api.post(
        "/api/accounts", {"organization": "globex", "name": "X"}, user="bob"
    )
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert "read only" in response.json()["detail"]
    assert history_counts() == before


def test_validation_errors_are_422_and_name_the_fields(api: Api) -> None:
    before = history_counts()
    response = api.post(
        "/api/accounts",
        {"organization": "acme", "name": "", "currency": "euro"},
        user="alice",
    )
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_error"
    assert body["detail"].startswith("The request is not valid: ")
    assert {e["field"] for e in body["errors"]} == {"name", "currency"}
    assert history_counts() == before


def test_unknown_manager_is_404(api: Api) -> None:
    response = api.post(
        "/api/accounts",
        {"organization": "acme", "name": "X", "manager": "nobody"},
        user="alice",
    )
    assert response.status_code == 404
    assert response.json()["detail"] == "There is no user named 'nobody'."
    assert not Account.objects.exists()


def test_patch_account(
    api: Api, account: dict[str, Any], people: dict[str, Any]
) -> None:
    path = f"/api/accounts/{account['id']}"
    response = api.patch(
        path, {"name": "Main", "manager": "bob"}, user="alice", message="Rename"
    )
    assert response.status_code == 200
    assert response.json()["name"] == "Main"
    assert response.json()["manager"] == "bob"
    response = api.patch(path, {"manager": None}, user="alice")
    assert response.json()["manager"] is None
    changes = AttributeDelta.objects.filter(
        parent__action=ObjectDelta.ACTION_UPDATE, content_type__model="account"
    ).order_by("pk")
    bob = people["bob"].pk
    assert [(c.field_name, c.old_value, c.new_value) for c in changes] == [
        ("name", "Operating", "Main"),
        ("manager", None, bob),
        ("manager", bob, None),
    ]


def test_delete_account_cascades_to_its_transactions(
    api: Api, account: dict[str, Any]
) -> None:
    for amount in ("10.00", "20.00"):
        api.post(
            "/api/transactions",
            {"account": account["id"], "description": "x", "amount": amount},
            user="alice",
        )
    response = api.delete(
        f"/api/accounts/{account['id']}", user="alice", message="Close it"
    )
    assert response.status_code == 204
    assert not Transaction.objects.exists()
    revision = Revision.objects.get(description="Close it")
    deltas = revision.object_deltas.order_by("pk")
    assert sorted((d.content_type.model, d.actor_id is None) for d in deltas) == [
        ("account", False),
        ("transaction", True),
        ("transaction", True),
    ]
    cascaded = [d for d in deltas if d.content_type.model == "transaction"]
    assert {d.description for d in cascaded} == {services.CASCADE_DESCRIPTION}


def test_write_nothing_record_nothing(api: Api, account: dict[str, Any]) -> None:
    before = history_counts()
    api.get(f"/api/accounts/{account['id']}", user="alice", message="Just looking")
    api.patch(f"/api/accounts/{account['id']}", {"name": "Operating"}, user="alice")
    assert history_counts() == before


# Transactions --------------------------------------------------------------------


def test_the_system_corrects_a_wrong_local_amount(
    api: Api, account: dict[str, Any], people: dict[str, Any]
) -> None:
    response = api.post(
        "/api/transactions",
        {
            "account": account["id"],
            "description": "Conference tickets",
            "amount": "-250.00",
            "currency": "USD",
            "exchange_rate": "0.92",
            "local_amount": "-250.00",
        },
        user="bob",
        message="Book the conference tickets",
    )
    assert response.status_code == 201, response.content
    assert response.json()["local_amount"] == "-230.00"
    revision = Revision.objects.get(description="Book the conference tickets")
    create = revision.object_deltas.get(content_type__model="transaction")
    assert create.actor == people["bob"]
    by_field = {a.field_name: a for a in create.attribute_deltas.all()}
    assert by_field["amount"].actor == people["bob"]
    assert by_field["local_amount"].actor is None
    assert by_field["local_amount"].new_value == "-230.00"
    assert by_field["local_amount"].description == services.CORRECTED_DESCRIPTION
    # The balance is kept by the system, in the same revision.
    balance = revision.object_deltas.get(content_type__model="account")
    assert balance.actor is None
    assert balance.description == services.BALANCE_DESCRIPTION
    assert [
        (a.field_name, a.old_value, a.new_value) for a in balance.attribute_deltas.all()
    ] == [("balance", "0.00", "-230.00")]
    assert api.get(f"/api/accounts/{account['id']}", user="bob").json()["balance"] == (
        "-230.00"
    )


def test_a_right_local_amount_is_left_to_the_user(
    api: Api, account: dict[str, Any], people: dict[str, Any]
) -> None:
    api.post(
        "/api/transactions",
        {
            "account": account["id"],
            "description": "x",
            "amount": "-10.00",
            "currency": "USD",
            "exchange_rate": "0.5",
            "local_amount": "-5.00",
        },
        user="bob",
    )
    local = AttributeDelta.objects.get(
        field_name="local_amount", content_type__model="transaction"
    )
    assert local.actor == people["bob"]
    assert local.description == ""


def test_transaction_crud(api: Api, account: dict[str, Any]) -> None:
    response = api.post(
        "/api/transactions",
        {
            "account": account["id"],
            "description": "Chairs",
            "amount": "-480.00",
            "booked_on": "2026-01-15",
        },
        user="bob",
    )
    assert response.status_code == 201
    created = response.json()
    assert created == {
        "id": created["id"],
        "account": account["id"],
        "description": "Chairs",
        "amount": "-480.00",
        "currency": "EUR",
        "exchange_rate": "1.000000",
        "local_amount": "-480.00",
        "booked_on": "2026-01-15",
    }
    path = f"/api/transactions/{created['id']}"
    assert api.get(path, user="alice").json() == created
    assert [t["id"] for t in api.get("/api/transactions", user="alice").json()] == [
        created["id"]
    ]
    listed = api.get(f"/api/transactions?account={account['id']}", user="alice")
    assert len(listed.json()) == 1
    response = api.patch(path, {"exchange_rate": "1.1"}, user="alice")
    assert response.status_code == 200
    assert response.json()["local_amount"] == "-528.00"
    recomputed = AttributeDelta.objects.filter(field_name="local_amount").last()
    assert recomputed is not None
    assert recomputed.actor is None
    assert recomputed.description == services.COMPUTED_DESCRIPTION
    assert api.delete(path, user="alice").status_code == 204
    assert api.get(path, user="alice").status_code == 404
    assert Account.objects.get().balance == Decimal("0.00")


def test_transaction_validation(api: Api, account: dict[str, Any]) -> None:
    response = api.post(
        "/api/transactions",
        {
            "account": account["id"],
            "description": "x",
            "amount": "1.234",
            "exchange_rate": "0",
        },
        user="alice",
    )
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {
        "amount",
        "exchange_rate",
    }


def test_transactions_of_other_organizations_are_404(
    api: Api, account: dict[str, Any]
) -> None:
    response = api.post(
        "/api/transactions",
        {"account": account["id"], "description": "x", "amount": "1.00"},
        user="carol",
    )
    assert response.status_code == 404
    assert not Transaction.objects.exists()


# History --------------------------------------------------------------------------


def test_account_history(
    api: Api, account: dict[str, Any], people: dict[str, Any]
) -> None:
    path = f"/api/accounts/{account['id']}"
    api.patch(
        path,
        {"name": "Main"},
        user="alice",
        organization="acme",
        message="Rename the account",
    )
    response = api.get(f"{path}/history", user="bob")
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == {"type": "account", "id": str(account["id"])}
    assert body["exists"] is True
    created, renamed = body["entries"]
    assert created["action"] == "create"
    assert created["message"] == "Open the operating account"
    assert created["actor"] == {
        "type": "user",
        "id": str(people["alice"].pk),
        "name": "Alice Archer",
    }
    assert {c["field"]: c["new"] for c in created["changes"]}["name"] == "Operating"
    assert renamed["action"] == "update"
    assert renamed["message"] == "Rename the account"
    assert renamed["actor"]["type"] == "organization"
    assert renamed["actor"]["name"] == "Acme Corp"
    assert [(c["field"], c["old"], c["new"]) for c in renamed["changes"]] == [
        ("name", "Operating", "Main")
    ]
    assert datetime.datetime.fromisoformat(renamed["at"])


def test_history_of_a_deleted_object_and_its_cascade(
    api: Api, account: dict[str, Any]
) -> None:
    created = api.post(
        "/api/transactions",
        {"account": account["id"], "description": "x", "amount": "5.00"},
        user="alice",
    ).json()
    api.delete(f"/api/accounts/{account['id']}", user="alice", message="Close")
    body = api.get(f"/api/transactions/{created['id']}/history", user="bob").json()
    assert body["exists"] is False
    deleted = body["entries"][-1]
    assert deleted["action"] == "delete"
    assert deleted["actor"] == {"type": "system", "id": None, "name": "System"}
    assert deleted["description"] == services.CASCADE_DESCRIPTION
    assert deleted["message"] == "Close"
    # Not visible to another organization, even once deleted.
    response = api.get(f"/api/transactions/{created['id']}/history", user="carol")
    assert response.status_code == 404


def test_history_of_nothing_is_404(api: Api) -> None:
    response = api.get("/api/accounts/42/history", user="alice")
    assert response.status_code == 404
    assert response.json()["detail"] == "There is no account 42, and no history of it."


def test_revision(api: Api, account: dict[str, Any], people: dict[str, Any]) -> None:
    api.post(
        "/api/transactions",
        {
            "account": account["id"],
            "description": "x",
            "amount": "-10.00",
            "currency": "USD",
            "exchange_rate": "0.5",
            "local_amount": "-10.00",
        },
        user="bob",
        message="Book it",
    )
    revision = Revision.objects.get(description="Book it")
    response = api.get(f"/api/revisions/{revision.pk}", user="alice")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == revision.pk
    assert body["message"] == "Book it"
    transaction, balance = body["entries"]
    assert transaction["object"]["type"] == "transaction"
    assert transaction["actor"]["name"] == "Bob Baker"
    local = next(c for c in transaction["changes"] if c["field"] == "local_amount")
    assert local["actor"]["type"] == "system"
    assert local["new"] == "-5.00"
    assert balance["object"] == {"type": "account", "id": str(account["id"])}
    assert balance["actor"]["type"] == "system"
    assert api.get(f"/api/revisions/{revision.pk}", user="carol").status_code == 404
    assert api.get("/api/revisions/999", user="alice").status_code == 404


def test_state_as_of_a_revision_and_a_time(
    api: Api, account: dict[str, Any], acme: Any
) -> None:
    path = f"/api/accounts/{account['id']}"
    first = Revision.objects.get(description="Open the operating account")
    api.patch(path, {"name": "Main"}, user="alice", message="Rename")
    renamed = Revision.objects.get(description="Rename")
    api.delete(path, user="alice", message="Close")
    closed = Revision.objects.get(description="Close")

    body = api.get(f"{path}/state?revision={first.pk}", user="alice").json()
    assert body["exists"] is True
    assert body["revision"] == first.pk
    assert body["values"]["name"] == "Operating"
    assert body["values"]["organization"] == acme.pk

    body = api.get(f"{path}/state?revision={renamed.pk}", user="alice").json()
    assert body["values"]["name"] == "Main"

    body = api.get(f"{path}/state?revision={closed.pk}", user="alice").json()
    assert body["exists"] is False
    assert body["values"]["name"] == "Main"

    at = ObjectDelta.objects.get(revision=renamed).created_at
    body = api.get(f"{path}/state?at={quote(at.isoformat())}", user="alice").json()
    assert body["revision"] == renamed.pk
    assert body["values"]["name"] == "Main"


def test_state_needs_one_point_in_time(api: Api, account: dict[str, Any]) -> None:
    path = f"/api/accounts/{account['id']}/state"
    for query in ("", "?revision=1&at=2026-01-01T00:00:00Z"):
        response = api.get(path + query, user="alice")
        assert response.status_code == 400
        assert "exactly one of" in response.json()["detail"]
    response = api.get(path + "?at=yesterday", user="alice")
    assert response.status_code == 422
    response = api.get(path + "?at=2000-01-01T00:00:00Z", user="alice")
    assert response.status_code == 404
    assert "no history as of" in response.json()["detail"]


def test_account_diff_between_revisions_and_times(
    api: Api, account: dict[str, Any], acme: Any
) -> None:
    path = f"/api/accounts/{account['id']}"
    opened = Revision.objects.get(description="Open the operating account")
    api.patch(path, {"name": "Main"}, user="alice", message="Rename")
    renamed = Revision.objects.get(description="Rename")
    api.post(
        "/api/transactions",
        {"account": account["id"], "description": "x", "amount": "7.50"},
        user="alice",
        message="Book",
    )
    booked = Revision.objects.get(description="Book")

    response = api.get(f"{path}/diff?start={opened.pk}&end={renamed.pk}", user="bob")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["object"] == {"type": "account", "id": str(account["id"])}
    assert body["start"]["exists"] is True
    assert body["start"]["revision"] == opened.pk
    assert body["end"]["revision"] == renamed.pk
    assert body["changed"] is True
    assert body["changes"] == [{"field": "name", "old": "Operating", "new": "Main"}]

    # From before its history to its latest state: every field.
    body = api.get(f"{path}/diff", user="alice").json()
    assert body["start"] == {"exists": False, "revision": None, "at": None}
    assert body["end"]["revision"] == booked.pk
    changes = {c["field"]: (c["old"], c["new"]) for c in body["changes"]}
    assert changes["name"] == (None, "Main")
    assert changes["organization"] == (None, acme.pk)
    assert changes["balance"] == (None, "7.50")

    # A time: the account as it was then, here right after the rename.
    at = ObjectDelta.objects.get(revision=renamed).created_at
    body = api.get(f"{path}/diff?start={quote(at.isoformat())}", user="alice").json()
    assert body["start"]["revision"] == renamed.pk
    # JSON keeps milliseconds.
    start_at = datetime.datetime.fromisoformat(body["start"]["at"])
    assert abs(start_at - at) < datetime.timedelta(milliseconds=1)
    assert body["changes"] == [{"field": "balance", "old": "0.00", "new": "7.50"}]

    body = api.get(f"{path}/diff?start={renamed.pk}&end={renamed.pk}", user="alice")
    assert body.json()["changed"] is False
    assert body.json()["changes"] == []


def test_transaction_diff_through_its_deletion(
    api: Api, account: dict[str, Any]
) -> None:
    created = api.post(
        "/api/transactions",
        {"account": account["id"], "description": "x", "amount": "5.00"},
        user="alice",
        message="Book",
    ).json()
    path = f"/api/transactions/{created['id']}"
    api.patch(path, {"description": "y"}, user="alice", message="Describe")
    api.delete(path, user="alice", message="Drop")
    booked = Revision.objects.get(description="Book")
    dropped = Revision.objects.get(description="Drop")

    body = api.get(f"{path}/diff?start={booked.pk}", user="bob").json()
    assert body["start"]["exists"] is True
    assert body["end"] == {
        "exists": False,
        "revision": dropped.pk,
        "at": body["end"]["at"],
    }
    assert body["changed"] is True
    assert body["changes"] == [{"field": "description", "old": "x", "new": "y"}]

    assert api.get(f"{path}/diff", user="carol").status_code == 404
    assert api.get("/api/transactions/999/diff", user="alice").status_code == 404
    response = api.get(f"{path}/diff?start=yesterday", user="alice")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"].startswith("start")


# Restore --------------------------------------------------------------------------


def test_restore_an_account_with_its_transactions(
    api: Api, account: dict[str, Any], people: dict[str, Any]
) -> None:
    for amount in ("10.00", "20.00"):
        api.post(
            "/api/transactions",
            {"account": account["id"], "description": "x", "amount": amount},
            user="alice",
        )
    api.delete(f"/api/accounts/{account['id']}", user="alice")
    response = api.post(
        f"/api/accounts/{account['id']}/restore", user="bob", message="Bring it back"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert [r["type"] for r in body["restored"]] == [
        "account",
        "transaction",
        "transaction",
    ]
    restored = Account.objects.get(pk=account["id"])
    assert restored.name == "Operating"
    assert restored.balance == Decimal("30.00")
    assert restored.transactions.count() == 2
    revision = Revision.objects.get(pk=body["revision"])
    assert revision.description == "Bring it back"
    creates = revision.object_deltas.all()
    assert {d.action for d in creates} == {ObjectDelta.ACTION_CREATE}
    assert {d.actor for d in creates} == {people["bob"]}
    assert all(d.description.startswith("Restored from its deletion") for d in creates)
    # Restoring what exists is a conflict.
    response = api.post(f"/api/accounts/{account['id']}/restore", user="bob")
    assert response.status_code == 409
    assert response.json()["code"] == "conflict"


def test_restore_without_a_message_describes_itself(
    api: Api, account: dict[str, Any]
) -> None:
    api.delete(f"/api/accounts/{account['id']}", user="alice")
    body = api.post(f"/api/accounts/{account['id']}/restore", user="alice").json()
    assert Revision.objects.get(pk=body["revision"]).description == (
        f"Restore account {account['id']}."
    )


def test_restore_a_transaction(api: Api, account: dict[str, Any]) -> None:
    created = api.post(
        "/api/transactions",
        {"account": account["id"], "description": "x", "amount": "7.00"},
        user="alice",
    ).json()
    path = f"/api/transactions/{created['id']}"
    api.delete(path, user="alice")
    assert Account.objects.get().balance == Decimal("0.00")
    response = api.post(f"{path}/restore", user="alice")
    assert response.status_code == 201
    assert api.get(path, user="alice").json() == created


def test_restore_refusals(api: Api, account: dict[str, Any]) -> None:
    created = api.post(
        "/api/transactions",
        {"account": account["id"], "description": "x", "amount": "7.00"},
        user="alice",
    ).json()
    api.delete(f"/api/accounts/{account['id']}", user="alice")
    response = api.post(f"/api/transactions/{created['id']}/restore", user="alice")
    assert response.status_code == 409
    assert "restore the account first" in response.json()["detail"]
    response = api.post(f"/api/accounts/{account['id']}/restore", user="carol")
    assert response.status_code == 404
    response = api.post("/api/accounts/999/restore", user="alice")
    assert response.status_code == 404


# Headers ---------------------------------------------------------------------------


def test_non_ascii_commit_message(api: Api, account: dict[str, Any]) -> None:
    response = api.patch(
        f"/api/accounts/{account['id']}",
        {"name": "Kasse"},
        user="alice",
        message="UTF-8''D%C3%BCzeltme%20%E2%9C%93",
    )
    assert response.status_code == 200
    assert Revision.objects.filter(description="Düzeltme ✓").exists()


def test_a_commit_message_with_control_characters_is_refused(
    api: Api, account: dict[str, Any]
) -> None:
    before = history_counts()
    response = api.patch(
        f"/api/accounts/{account['id']}",
        {"name": "Kasse"},
        user="alice",
        message="bad\x07message",
    )
    assert response.status_code == 400
    assert response.json()["detail"]
    assert history_counts() == before


# Docs ------------------------------------------------------------------------------


def test_openapi_docs(api: Api) -> None:
    assert api.get("/api/docs").status_code == 200
    schema = api.get("/api/openapi.json").json()
    assert {
        "/api/accounts",
        "/api/accounts/{account_id}",
        "/api/accounts/{account_id}/history",
        "/api/accounts/{account_id}/state",
        "/api/accounts/{account_id}/diff",
        "/api/accounts/{account_id}/restore",
        "/api/transactions",
        "/api/transactions/{transaction_id}",
        "/api/transactions/{transaction_id}/history",
        "/api/transactions/{transaction_id}/state",
        "/api/transactions/{transaction_id}/diff",
        "/api/transactions/{transaction_id}/restore",
        "/api/revisions/{revision_id}",
        "/api/me",
    } <= set(schema["paths"])
    create = schema["paths"]["/api/transactions"]["post"]
    headers = {p["name"] for p in create["parameters"] if p["in"] == "header"}
    assert headers == {"X-Commit-Message", "X-Perform-As-Organization"}
