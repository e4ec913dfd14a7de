"""The demo data: people, organizations, and a history made through the API.

People, organizations and memberships are created directly, as the system.
Everything else goes through the HTTP API with Django's test client, so it
passes through the whole middleware stack exactly as a client's request
would: commit messages, an organization acting, a system correction, a
cascade delete. ``manage.py load_demo_data`` runs it on an empty database.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client

from revy_core import Context
from revy_core.models import Revision
from sample_site.ledger.models import ApiToken, Membership, Organization

__all__ = [
    "ADMIN",
    "ORGANIZATIONS",
    "PASSWORD",
    "PEOPLE",
    "DemoError",
    "book_history",
    "create_people",
    "load",
]

PASSWORD = "demo"
ADMIN = ("admin", "admin")
#: username, first name, last name, API token.
PEOPLE = [
    ("alice", "Alice", "Archer", "alice-token"),
    ("bob", "Bob", "Baker", "bob-token"),
    ("carol", "Carol", "Chen", "carol-token"),
    ("erin", "Erin", "Evans", "erin-token"),
]
#: organization slug: (name, {username: role}).
ORGANIZATIONS = {
    "acme": ("Acme Corp", {"alice": "owner", "bob": "member", "erin": "member"}),
    "globex": ("Globex", {"carol": "owner", "bob": "viewer"}),
}


class DemoError(RuntimeError):
    """An API call of the demo failed."""


def load() -> bool:
    """Load the demo data unless the database has users; whether it did."""
    if get_user_model()._default_manager.exists():
        return False
    create_people()
    book_history()
    return True


def create_people() -> None:
    """Create the admin, the demo users with their API tokens, the organizations
    and memberships, in one revision made by the system."""
    user_model = get_user_model()
    with (
        transaction.atomic(),
        Context.via_actor(None),
        Context.via_revision(
            lambda: Revision(description="Demo data: people and organizations.")
        ),
    ):
        user_model._default_manager.create_superuser(
            username=ADMIN[0], password=ADMIN[1], email="admin@example.com"
        )
        users = {}
        for username, first, last, token in PEOPLE:
            users[username] = user_model._default_manager.create_user(
                username=username,
                password=PASSWORD,
                first_name=first,
                last_name=last,
                email=f"{username}@example.com",
            )
            ApiToken.objects.issue(users[username], "demo", raw=token)
        for slug, (name, roles) in ORGANIZATIONS.items():
            organization = Organization.objects.create(name=name, slug=slug)
            for username, role in roles.items():
                Membership.objects.create(
                    user=users[username], organization=organization, role=role
                )


def book_history() -> None:
    """Make the ledger's history through the API, as its users would."""
    api = _Api()
    operating = api.post(
        "alice",
        "/api/accounts",
        {
            "organization": "acme",
            "name": "Operating",
            "currency": "EUR",
            "manager": "erin",
        },
        message="Open the operating account",
    )
    travel = api.post(
        "alice",
        "/api/accounts",
        {"organization": "acme", "name": "Travel", "currency": "EUR"},
        message="Open a travel budget",
        organization="acme",
    )
    api.post(
        "bob",
        "/api/transactions",
        {
            "account": operating["id"],
            "description": "Office chairs",
            "amount": "-480.00",
        },
        message="Book the office chairs",
    )
    # bob sends a wrong local amount: the system corrects it.
    conference = api.post(
        "bob",
        "/api/transactions",
        {
            "account": operating["id"],
            "description": "Conference tickets",
            "amount": "-250.00",
            "currency": "USD",
            "exchange_rate": "0.92",
            "local_amount": "-250.00",
        },
        message="Book the conference tickets (USD)",
    )
    api.patch(
        "alice",
        f"/api/transactions/{conference['id']}",
        {"description": "DjangoCon tickets"},
        message="Name the conference",
        organization="acme",
    )
    api.post(
        "alice",
        "/api/transactions",
        {
            "account": operating["id"],
            "description": "Invoice 2026-001 paid",
            "amount": "5200.00",
        },
        message="Customer payment",
        organization="acme",
    )
    for description, amount in [("Train to Lyon", "-89.90"), ("Hotel", "-240.00")]:
        api.post(
            "erin",
            "/api/transactions",
            {"account": travel["id"], "description": description, "amount": amount},
            message=f"Book {description.lower()}",
        )
    # Deleting the account deletes its transactions (revy's CASCADE).
    api.delete(
        "alice",
        f"/api/accounts/{travel['id']}",
        message="Close the travel budget: travel is booked on Operating now",
        organization="acme",
    )
    globex = api.post(
        "carol",
        "/api/accounts",
        {"organization": "globex", "name": "Main", "currency": "USD"},
        message="Open the Globex main account",
    )
    api.post(
        "carol",
        "/api/transactions",
        {"account": globex["id"], "description": "Seed funding", "amount": "10000.00"},
        message="Seed funding arrived",
        organization="globex",
    )
    # A user leaves: the account they managed keeps going without a
    # manager (revy's SET_NULL), and their memberships go (CASCADE).
    admin = get_user_model()._default_manager.get(username=ADMIN[0])
    with (
        transaction.atomic(),
        Context.via_actor(admin),
        Context.via_revision(
            lambda: Revision(description="Erin left Acme: remove her account")
        ),
        Context.via_deletion_description("Erin's user account was removed."),
    ):
        get_user_model()._default_manager.get(username="erin").delete()


class _Api:
    """Calls the API like a client: bearer token, commit message, organization."""

    def __init__(self) -> None:
        self.client = Client(SERVER_NAME="localhost")

    def request(
        self,
        method: str,
        user: str,
        path: str,
        data: dict[str, Any] | None = None,
        *,
        message: str,
        organization: str | None = None,
    ) -> Any:
        token = next(t for name, _, _, t in PEOPLE if name == user)
        headers = {"Authorization": f"Bearer {token}", "X-Commit-Message": message}
        if organization is not None:
            headers["X-Perform-As-Organization"] = organization
        response = getattr(self.client, method)(
            path,
            data=json.dumps(data) if data is not None else None,
            content_type="application/json",
            headers=headers,
        )
        if response.status_code >= 300:
            raise DemoError(
                f"{method.upper()} {path} answered {response.status_code}: "
                f"{response.content.decode(errors='replace')}"
            )
        return response.json() if response.content else None

    def post(self, user: str, path: str, data: dict[str, Any], **kw: Any) -> Any:
        return self.request("post", user, path, data, **kw)

    def patch(self, user: str, path: str, data: dict[str, Any], **kw: Any) -> Any:
        return self.request("patch", user, path, data, **kw)

    def delete(self, user: str, path: str, **kw: Any) -> Any:
        return self.request("delete", user, path, **kw)
