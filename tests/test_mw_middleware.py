"""RevyMiddleware through Django's Client (WSGI) and AsyncClient (ASGI)."""

from __future__ import annotations

import logging
import threading

import pytest
from asgiref.sync import SyncToAsync
from django.test import override_settings

from revy_core import Context
from revy_core.models import ObjectDelta, Revision
from revy_mw import RevyMiddleware
from tests.mwapp.helpers import (
    TRANSPORTS,
    Caller,
    QueryCounter,
    actor_of,
    assert_nothing_written,
    body,
    counting_queries,
    history,
    label,
    make_world,
)
from tests.testapp.history import delta_inserts
from tests.testapp.models import Account

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=TRANSPORTS)
def caller(request):
    return Caller(request.param)


@pytest.fixture
def world(transactional_db):
    return make_world()


WRITE_VIEWS = ["/sync/write", "/async/write", "/decorated/write"]
READ_VIEWS = ["/sync/read", "/async/read"]
WITHOUT_REVY = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]


@pytest.mark.parametrize("path", WRITE_VIEWS)
def test_one_revision_per_request_with_actor_and_message(caller, world, path):
    caller.login(world.alice)

    response = caller.post(path, headers={"X-Commit-Message": "Fix the name"})

    assert response.status_code == 200, response.content
    assert body(response)["description"] == "Fix the name"
    found = history()
    assert len(found["revisions"]) == 1
    revision = found["revisions"][0]
    assert revision.description == "Fix the name"
    actions = [d.action for d in found["objects"]]
    assert actions == [ObjectDelta.ACTION_CREATE, ObjectDelta.ACTION_UPDATE]
    deltas = found["objects"] + found["attributes"]
    assert {d.revision_id for d in deltas} == {revision.pk}
    assert {actor_of(d) for d in deltas} == {label(world.alice)}


@pytest.mark.parametrize("path", WRITE_VIEWS)
def test_each_request_gets_its_own_revision(caller, world, path):
    caller.login(world.alice)
    caller.post(path, headers={"X-Commit-Message": "one"})
    caller.post(path, headers={"X-Commit-Message": "two"})

    revisions = list(Revision.objects.order_by("pk"))
    assert [r.description for r in revisions] == ["one", "two"]
    for revision in revisions:
        assert ObjectDelta.objects.filter(revision=revision).count() == 2


def test_decorated_view_keeps_its_own_values(caller, world):
    caller.login(world.alice)
    caller.post("/decorated/write")
    deltas = list(ObjectDelta.objects.all())
    assert {d.description for d in deltas} == {"decorated"}
    assert {actor_of(d) for d in deltas} == {label(world.alice)}


@pytest.mark.parametrize("path", WRITE_VIEWS)
def test_anonymous_request_is_the_system(caller, world, path):
    response = caller.post(path)
    assert response.status_code == 200
    deltas = history()["objects"]
    assert len(deltas) == 2
    assert {actor_of(d) for d in deltas} == {None}


@pytest.mark.parametrize("path", READ_VIEWS)
def test_a_request_that_writes_nothing_costs_no_query(caller, world, path):
    caller.login(world.alice)
    with counting_queries() as with_revy:
        response = caller.get(path, headers={"X-Commit-Message": "just looking"})
    assert response.status_code == 200
    plain = Caller(caller.transport)
    plain.login(world.alice)
    with override_settings(MIDDLEWARE=WITHOUT_REVY), counting_queries() as without:
        assert plain.get(path).status_code == 200

    assert len(with_revy) == len(without) == 0, with_revy.queries
    assert Revision.objects.count() == 0


@pytest.mark.parametrize("path", ["/sync/write", "/async/write"])
def test_a_writing_request_costs_a_fixed_number_of_extra_queries(caller, world, path):
    caller.login(world.alice)
    caller.post(path)  # warm the content type cache
    plain = Caller(caller.transport)
    plain.login(world.alice)
    with override_settings(MIDDLEWARE=WITHOUT_REVY), counting_queries() as without:
        plain.post(path)
    with counting_queries() as with_revy:
        caller.post(path)
    # Two saves (each its own transaction), each with one object delta and
    # one bulk insert of attribute deltas (one statement on PostgreSQL); one
    # revision; and the actor, loaded once: the session and its user.
    # (Transaction statements differ between backends: not counted.)
    extra = len(statements(with_revy)) - len(statements(without))
    assert extra == 2 * delta_inserts(1, 1) + 1 + 2, (
        with_revy.queries,
        without.queries,
    )


def statements(counter: QueryCounter) -> list[str]:
    return [
        sql
        for sql in counter.queries
        if not sql.upper().startswith(("BEGIN", "SAVEPOINT", "RELEASE", "COMMIT"))
    ]


def test_actor_is_resolved_once_per_request(caller, world):
    caller.login(world.alice)
    with counting_queries() as queries:
        caller.post("/sync/write")
    user_loads = [
        q for q in statements(queries) if q.startswith("SELECT") and "auth_user" in q
    ]
    assert len(user_loads) == 1


@pytest.mark.parametrize(
    ("path", "token"),
    [
        ("/ninja/bearer/accounts", "alice-token"),
        ("/ninja/sync/accounts", "alice-token"),
    ],
)
def test_ninja_bearer_auth_inside_the_view_is_seen(caller, world, path, token):
    response = caller.post(
        path,
        data={"name": "via-ninja"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}", "X-Commit-Message": "api"},
    )
    assert response.status_code == 200, response.content
    found = history()
    assert [r.description for r in found["revisions"]] == ["api"]
    assert {actor_of(d) for d in found["objects"] + found["attributes"]} == {
        label(world.alice)
    }


def test_ninja_session_auth_is_seen(caller, world):
    caller.login(world.bob)
    response = caller.post(
        "/ninja/session/accounts",
        data={"name": "via-session"},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    assert {actor_of(d) for d in history()["objects"]} == {label(world.bob)}


def test_ninja_auth_failure_writes_nothing(caller, world):
    response = caller.post(
        "/ninja/bearer/accounts",
        data={"name": "x"},
        content_type="application/json",
        headers={"Authorization": "Bearer wrong"},
    )
    assert response.status_code == 401
    assert_nothing_written()


def test_context_is_closed_after_an_exception(caller, world):
    caller.login(world.alice)
    response = caller.post("/sync/fail")
    assert response.status_code == 500
    assert Context.depth() == 0
    # The changes made before the failure were committed with their history.
    assert Account.objects.count() == 1
    assert {actor_of(d) for d in history()["objects"]} == {label(world.alice)}


def test_sync_streaming_body_writes_in_a_fresh_context_per_chunk(world):
    client = Caller("wsgi")
    client.login(world.alice)
    response = client.get("/sync/stream", headers={"X-Commit-Message": "stream"})
    assert Context.depth() == 0
    lines = b"".join(response.streaming_content).decode().split()
    assert Context.depth() == 0
    assert [line.split(":")[1] for line in lines] == ["1", "1", "1"]
    found = history()
    assert len(found["revisions"]) == 1
    assert found["revisions"][0].description == "stream"
    assert len(found["objects"]) == 3
    assert {actor_of(d) for d in found["objects"]} == {label(world.alice)}


def test_a_stream_closed_early_leaves_no_context(world):
    client = Caller("wsgi")
    client.login(world.alice)
    response = client.get("/sync/stream")
    chunks = iter(response.streaming_content)
    first = next(chunks)
    assert first.endswith(b":1\n")
    assert Context.depth() == 0
    response.close()
    assert Context.depth() == 0
    assert Account.objects.count() == 1
    assert {actor_of(d) for d in history()["objects"]} == {label(world.alice)}


def test_async_streaming_body_writes_in_a_fresh_context_per_chunk(world):
    client = Caller("asgi")
    client.login(world.alice)
    response = client.get("/async/stream", headers={"X-Commit-Message": "stream"})

    async def consume():
        return b"".join([chunk async for chunk in response.streaming_content])

    from asgiref.sync import async_to_sync

    lines = async_to_sync(consume)().decode().split()
    assert Context.depth() == 0
    assert [line.split(":")[1] for line in lines] == ["1", "1", "1"]
    found = history()
    assert len(found["revisions"]) == 1
    assert len(found["objects"]) == 3
    assert {actor_of(d) for d in found["objects"]} == {label(world.alice)}


class RecordingMiddleware(RevyMiddleware):
    threads: list[int] = []

    async def __acall__(self, request):
        self.threads.append(threading.get_ident())
        return await super().__acall__(request)


def test_no_thread_hop_under_asgi(world, monkeypatch):
    wrapped = []
    original = SyncToAsync.__init__

    def recording_init(self, func, *args, **kwargs):
        wrapped.append(func)
        original(self, func, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__init__", recording_init)
    RecordingMiddleware.threads = []
    middleware = [
        "tests.test_mw_middleware.RecordingMiddleware" if "Revy" in path else path
        for path in [*WITHOUT_REVY[:2], "revy_mw.RevyMiddleware", WITHOUT_REVY[2]]
    ]
    client = Caller("asgi")
    with override_settings(MIDDLEWARE=middleware):
        response = client.get("/async/probe")
    assert response.status_code == 200
    view_thread = body(response)["thread"]
    assert RecordingMiddleware.threads == [view_thread]
    assert not [f for f in wrapped if "revy_mw" in getattr(f, "__module__", "")]
    assert not [
        f for f in wrapped if isinstance(getattr(f, "__self__", None), RevyMiddleware)
    ]


def test_middleware_is_sync_and_async_capable():
    assert RevyMiddleware.sync_capable
    assert RevyMiddleware.async_capable

    def sync_view(request):
        return None

    async def async_view(request):
        return None

    from asgiref.sync import iscoroutinefunction

    assert not iscoroutinefunction(RevyMiddleware(sync_view))
    assert iscoroutinefunction(RevyMiddleware(async_view))


def test_a_stale_context_around_the_request_is_hidden(caller, world, caplog):
    caller.login(world.alice)
    import revy_mw.middleware as module

    module._polluted_reported = False
    with (
        caplog.at_level(logging.WARNING, logger="revy_mw"),
        Context(
            actor=world.bob,
            revision_description="stale",
            object_delta_description="stale",
        ),
    ):
        response = caller.post("/sync/write")
        path = "/sync/probe" if caller.transport == "wsgi" else "/async/probe"
        probe = body(caller.get(path))
    assert response.status_code == 200
    # The request runs on a stack of its own: the stale context is not in it.
    assert probe["depth"] == 1
    deltas = history()["objects"]
    assert {actor_of(d) for d in deltas} == {label(world.alice)}
    assert {d.description for d in deltas} == {""}
    assert Revision.objects.get().description == ""
    if caller.transport == "wsgi":
        assert "did not open" in caplog.text


def test_context_values_inside_the_view(caller, world):
    caller.login(world.alice)
    path = "/sync/probe" if caller.transport == "wsgi" else "/async/probe"
    data = body(caller.get(path, headers={"X-Commit-Message": "peek"}))
    assert data["depth"] == 1
    assert data["description"] == "peek"
    assert data["actor"] == f"auth.user:{world.alice.pk}"
    assert data["enabled"] is True
    assert Context.depth() == 0
    assert Revision.objects.count() == 0


@override_settings(REVY_MW={"ACTOR_RESOLVERS": ["revy_mw.resolvers.SystemResolver"]})
def test_resolvers_follow_override_settings(caller, world):
    caller.login(world.alice)
    caller.post("/sync/write")
    assert {actor_of(d) for d in history()["objects"]} == {None}


@override_settings(
    REVY_MW={
        "ACTOR_RESOLVERS": ["revy_mw.resolvers.SystemResolver"],
        "SYSTEM_ACTOR": "tests.mwapp.rules.system_actor",
    }
)
def test_configured_system_actor(caller, world):
    caller.post("/sync/write")
    from tests.testapp.models import Organization

    system = Organization.objects.get(name="system")
    actors = {
        actor_of(d) for d in history()["objects"] if d.content_type.model == "account"
    }
    assert actors == {label(system)}
