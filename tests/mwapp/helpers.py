"""Helpers shared by the tests/test_mw_*.py modules."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync
from django.contrib.auth.models import User
from django.db import connections
from django.db.backends.signals import connection_created
from django.test import AsyncClient, Client

from revy_core.models import AttributeDelta, ObjectDelta, Revision
from tests.mwapp.models import ApiToken, Membership
from tests.testapp.models import Account, Organization

#: Transports: Django's Client (WSGI handler) and AsyncClient (ASGI handler).
TRANSPORTS = ["wsgi", "asgi"]


class Caller:
    """Django's Client or AsyncClient behind one synchronous interface."""

    def __init__(self, transport: str) -> None:
        self.transport = transport
        self.client: Client | AsyncClient = (
            Client(raise_request_exception=False)
            if transport == "wsgi"
            else AsyncClient(raise_request_exception=False)
        )

    def __repr__(self) -> str:
        return f"<Caller {self.transport}>"

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        call = getattr(self.client, method)
        if self.transport == "wsgi":
            return call(path, **kwargs)

        async def run() -> Any:
            # AsyncClient.get/post are plain functions returning a coroutine
            # on Django 4.2.
            return await call(path, **kwargs)

        return async_to_sync(run)()

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("get", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("post", path, **kwargs)

    def login(self, user: User) -> None:
        self.client.force_login(user)


@dataclass
class World:
    alice: User
    bob: User
    acme: Organization
    other: Organization
    alice_token: str
    bob_token: str


def make_world() -> World:
    alice = User.objects.create_user("alice")
    bob = User.objects.create_user("bob")
    acme = Organization.objects.create(name="Acme")
    other = Organization.objects.create(name="Other")
    Membership.objects.create(user=alice, organization=acme)
    Membership.objects.create(user=bob, organization=other)
    ApiToken.objects.create(key="alice-token", user=alice)
    ApiToken.objects.create(key="bob-token", user=bob)
    return World(alice, bob, acme, other, "alice-token", "bob-token")


def actor_of(delta: Any) -> Any:
    """(app label, pk) of a delta's actor, without loading it."""
    if delta.actor_type_id is None:
        return None
    return (delta.actor_type.model_class()._meta.label_lower, delta.actor_id)


def label(instance: Any) -> tuple[str, str]:
    return (instance._meta.label_lower, str(instance.pk))


def history() -> dict[str, Any]:
    """Every revision and delta, for assertions."""
    return {
        "revisions": list(Revision.objects.order_by("pk")),
        "objects": list(
            ObjectDelta.objects.select_related("actor_type").order_by("pk")
        ),
        "attributes": list(
            AttributeDelta.objects.select_related("actor_type").order_by("pk")
        ),
    }


def assert_nothing_written() -> None:
    assert Account.objects.count() == 0
    assert Revision.objects.count() == 0
    assert ObjectDelta.objects.count() == 0
    assert AttributeDelta.objects.count() == 0


def body(response: Any) -> Any:
    return json.loads(response.content)


class QueryCounter:
    """Counts queries on every connection, including those opened by threads."""

    def __init__(self) -> None:
        self.queries: list[str] = []
        self._wrapped: list[Any] = []

    def _wrapper(
        self, execute: Any, sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        self.queries.append(sql)
        return execute(sql, params, many, context)

    def _attach(self, connection: Any) -> None:
        connection.execute_wrappers.append(self._wrapper)
        self._wrapped.append(connection)

    def _created(self, sender: Any, connection: Any, **kwargs: Any) -> None:
        self._attach(connection)

    def __enter__(self) -> QueryCounter:
        for connection in connections.all():
            self._attach(connection)
        connection_created.connect(self._created)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        connection_created.disconnect(self._created)
        for connection in self._wrapped:
            if self._wrapper in connection.execute_wrappers:
                connection.execute_wrappers.remove(self._wrapper)

    def __len__(self) -> int:
        return len(self.queries)


@contextmanager
def counting_queries() -> Iterator[QueryCounter]:
    with QueryCounter() as counter:
        yield counter
