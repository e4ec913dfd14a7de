"""Fixtures of the sample site's tests: people, organizations, and an API
client that goes through the whole middleware stack, under WSGI (Django's
``Client``) or ASGI (``AsyncClient``).

As in revy's suite, every test that uses the database has revy's tables
scanned for secrets before its data goes, and the session fails on any
finding (:mod:`tests.history_secrets`; tests/test_secrets.py shows that a
planted secret fails this suite)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.test import AsyncClient, Client

from revy_core import Context
from revy_core.models import ObjectDelta, Revision
from sample_site.ledger import demo
from sample_site.ledger.models import Account, Organization
from tests.history_secrets import (  # noqa: F401 (fixtures, applied to every test)
    history_holds_no_secret,
    scan_history_for_secrets,
)

TOKENS = {name: token for name, _, _, token in demo.PEOPLE}


@pytest.fixture(autouse=True)
def _outside_any_context() -> Iterator[None]:
    """Every test starts and ends outside any revy context."""
    assert Context.depth() == 0
    yield
    assert Context.depth() == 0


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def people(db: None) -> dict[str, Any]:
    """admin, alice (acme owner), bob (acme member, globex viewer), carol
    (globex owner), erin (acme member), with API tokens ``<name>-token``."""
    demo.create_people()
    return {u.username: u for u in get_user_model()._default_manager.all()}


class Api:
    """Calls the API as a client would, and returns the response."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.client: Client | AsyncClient = (
            Client() if mode == "wsgi" else AsyncClient()
        )

    def login(self, user: Any) -> None:
        # Client.force_login, then the same session cookie for AsyncClient
        # (AsyncClient.aforce_login only exists from Django 5.0 on).
        client = Client()
        client.force_login(user)
        self.client.cookies = client.cookies

    def __call__(
        self,
        method: str,
        path: str,
        data: Any = None,
        *,
        user: str | None = None,
        message: str | None = None,
        organization: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        all_headers = dict(headers or {})
        if user is not None:
            all_headers["Authorization"] = f"Bearer {TOKENS[user]}"
        if message is not None:
            all_headers["X-Commit-Message"] = message
        if organization is not None:
            all_headers["X-Perform-As-Organization"] = organization
        kwargs: dict[str, Any] = {"headers": all_headers}
        if data is not None:
            kwargs["data"] = json.dumps(data)
            kwargs["content_type"] = "application/json"
        call = getattr(self.client, method)
        if self.mode == "wsgi":
            return call(path, **kwargs)

        async def acall() -> Any:
            return await call(path, **kwargs)

        return async_to_sync(acall)()

    def get(self, path: str, **kwargs: Any) -> Any:
        return self("get", path, **kwargs)

    def post(self, path: str, data: Any = None, **kwargs: Any) -> Any:
        return self("post", path, data, **kwargs)

    def patch(self, path: str, data: Any = None, **kwargs: Any) -> Any:
        return self("patch", path, data, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self("delete", path, **kwargs)


@pytest.fixture(params=["wsgi", "asgi"])
def api(request: pytest.FixtureRequest, people: dict[str, Any]) -> Api:
    """The API through Django's Client (WSGI) and AsyncClient (ASGI)."""
    return Api(request.param)


@pytest.fixture
def acme(people: dict[str, Any]) -> Organization:
    return Organization.objects.get(slug="acme")


@pytest.fixture
def account(api: Api) -> dict[str, Any]:
    """Acme's operating account, opened by alice."""
    response = api.post(
        "/api/accounts",
        {"organization": "acme", "name": "Operating", "currency": "EUR"},
        user="alice",
        message="Open the operating account",
    )
    assert response.status_code == 201, response.content
    return response.json()  # type: ignore[no-any-return]


def history_counts() -> tuple[int, int, int]:
    """Rows of ledger accounts, revisions and object deltas."""
    return (
        Account.objects.count(),
        Revision.objects.count(),
        ObjectDelta.objects.count(),
    )
