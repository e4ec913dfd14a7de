"""RevyASGIMiddleware and RevyWSGIMiddleware, in process (see
test_mw_servers.py for the same under real servers)."""

from __future__ import annotations

import json
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from asgiref.sync import async_to_sync

from revy_core import Context
from revy_core.models import ObjectDelta, Revision
from revy_mw.asgi import RevyASGIMiddleware, ScopeRequest
from revy_mw.resolvers import SystemResolver, UnsupportedRequest, UserResolver
from revy_mw.wsgi import EnvironRequest, RevyWSGIMiddleware
from tests.mwapp.helpers import actor_of, assert_nothing_written, label, make_world
from tests.mwapp.plain import asgi_app, wsgi_app
from tests.mwapp.resolvers import ApiTokenResolver
from tests.testapp.models import Account

pytestmark = pytest.mark.django_db(transaction=True)

HEADER_RESOLVERS = [ApiTokenResolver, SystemResolver]
MESSAGE = "Düzeltme ✓"


@pytest.fixture
def world(transactional_db):
    return make_world()


# ASGI -------------------------------------------------------------------------


def asgi_headers(**headers: str) -> list[tuple[bytes, bytes]]:
    return [
        (name.replace("_", "-").lower().encode(), value.encode())
        for name, value in headers.items()
    ]


def run_asgi(app: Any, scope: dict[str, Any], incoming: list[dict[str, Any]]):
    """Drive an ASGI app: feed ``incoming``, collect what it sends."""
    sent: list[dict[str, Any]] = []
    depths: list[int] = []
    queue = list(incoming)

    async def receive():
        depths.append(Context.depth())
        if queue:
            return queue.pop(0)
        disconnect = (
            "http.disconnect" if scope["type"] == "http" else "websocket.disconnect"
        )
        return {"type": disconnect}

    async def send(message):
        depths.append(Context.depth())
        sent.append(message)

    async_to_sync(app)(scope, receive, send)
    return sent, depths


def http_scope(path: str = "/plain", **headers: str) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": asgi_headers(**headers),
    }


def test_asgi_http_with_a_header_resolver(world):
    app = RevyASGIMiddleware(asgi_app, resolvers=HEADER_RESOLVERS)
    sent, depths = run_asgi(
        app,
        http_scope(X_Api_Token="bob-token", X_Commit_Message="plain"),
        [{"type": "http.request", "body": b""}],
    )
    assert sent[0]["status"] == 200
    assert json.loads(sent[1]["body"])["depth"] == 1
    # The server's receive and send never run inside the request's context.
    assert set(depths) == {0}
    revision = Revision.objects.get()
    assert revision.description == "plain"
    assert {actor_of(d) for d in ObjectDelta.objects.all()} == {label(world.bob)}
    assert Context.depth() == 0


def test_asgi_http_raw_utf8_message(world):
    app = RevyASGIMiddleware(asgi_app, resolvers=HEADER_RESOLVERS)
    scope = http_scope()
    scope["headers"] = [(b"x-commit-message", MESSAGE.encode())]
    sent, _ = run_asgi(app, scope, [{"type": "http.request"}])
    assert sent[0]["status"] == 200
    assert Revision.objects.get().description == MESSAGE


def test_asgi_http_refused_and_bad_message(world):
    app = RevyASGIMiddleware(asgi_app, resolvers=HEADER_RESOLVERS)
    sent, _ = run_asgi(app, http_scope(X_Api_Token="nope"), [{"type": "http.request"}])
    assert sent[0]["status"] == 403
    assert b"unknown token" in sent[1]["body"]
    sent, _ = run_asgi(
        app, http_scope(X_Commit_Message="UTF-8''%07"), [{"type": "http.request"}]
    )
    assert sent[0]["status"] == 400
    assert b"U+0007" in sent[1]["body"]
    assert_nothing_written()


def test_asgi_resolvers_that_need_a_user_say_so(world):
    app = RevyASGIMiddleware(asgi_app, resolvers=[UserResolver])
    with pytest.raises(UnsupportedRequest, match="has no user"):
        run_asgi(app, http_scope(), [{"type": "http.request"}])
    assert_nothing_written()


def test_asgi_scope_user_counts(world):
    app = RevyASGIMiddleware(asgi_app)  # the default chain
    scope = http_scope()
    scope["user"] = world.alice
    sent, _ = run_asgi(app, scope, [{"type": "http.request"}])
    assert sent[0]["status"] == 200
    assert {actor_of(d) for d in ObjectDelta.objects.all()} == {label(world.alice)}
    request = ScopeRequest(scope)
    assert request.user == world.alice
    assert async_to_sync(request.auser)() == world.alice


def test_asgi_scope_user_acting_for_an_organization(world):
    app = RevyASGIMiddleware(asgi_app)
    scope = http_scope(X_Perform_As_Organization=str(world.other.pk))
    scope["user"] = world.alice
    sent, _ = run_asgi(app, scope, [{"type": "http.request"}])
    assert sent[0]["status"] == 403
    assert_nothing_written()


def ws_scope(**headers: str) -> dict[str, Any]:
    return {"type": "websocket", "path": "/ws", "headers": asgi_headers(**headers)}


def test_asgi_websocket_one_context_per_connection(world):
    app = RevyASGIMiddleware(asgi_app, resolvers=HEADER_RESOLVERS)
    messages = [
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "text": "one"},
        {"type": "websocket.receive", "text": "two"},
    ]
    for token in ("alice-token", "bob-token"):
        sent, depths = run_asgi(
            app, ws_scope(X_Api_Token=token, X_Commit_Message=token), list(messages)
        )
        assert [m["type"] for m in sent] == ["websocket.accept"] + [
            "websocket.send"
        ] * 2
        assert set(depths) == {0}
    revisions = list(Revision.objects.order_by("pk"))
    assert [r.description for r in revisions] == ["alice-token", "bob-token"]
    for revision, user in zip(revisions, (world.alice, world.bob), strict=True):
        deltas = list(ObjectDelta.objects.filter(revision=revision))
        assert len(deltas) == 2
        assert {actor_of(d) for d in deltas} == {label(user)}


def test_asgi_websocket_refused_at_the_handshake(world):
    app = RevyASGIMiddleware(asgi_app, resolvers=HEADER_RESOLVERS)
    sent, _ = run_asgi(
        app, ws_scope(X_Api_Token="nope"), [{"type": "websocket.connect"}]
    )
    assert sent[0]["type"] == "websocket.close"
    assert sent[0]["code"] == 1008
    sent, _ = run_asgi(
        app, ws_scope(X_Commit_Message="UTF-8''%00"), [{"type": "websocket.connect"}]
    )
    assert sent == [
        {"type": "websocket.close", "code": 1008, "reason": sent[0]["reason"]}
    ]
    assert_nothing_written()


def test_asgi_lifespan_passes_through():
    seen = []

    async def app(scope, receive, send):
        seen.append((scope["type"], Context.depth()))

    async_to_sync(RevyASGIMiddleware(app))({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == [("lifespan", 0)]


# WSGI -------------------------------------------------------------------------


def wsgi_environ(path: str = "/plain", **headers: str) -> dict[str, Any]:
    environ: dict[str, Any] = {"PATH_INFO": path, "REQUEST_METHOD": "POST"}
    setup_testing_defaults(environ)
    for name, value in headers.items():
        environ[f"HTTP_{name.upper()}"] = value
    return environ


def run_wsgi(app: Any, environ: dict[str, Any]) -> tuple[str, bytes]:
    started: list[str] = []

    def start_response(status, headers, exc_info=None):
        started.append(status)
        return lambda data: None

    result = app(environ, start_response)
    try:
        content = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    assert Context.depth() == 0
    return started[-1], content


def test_wsgi_each_chunk_in_a_fresh_context(world):
    app = RevyWSGIMiddleware(wsgi_app, resolvers=HEADER_RESOLVERS)
    status, content = run_wsgi(
        app,
        wsgi_environ(
            X_API_TOKEN="alice-token",
            X_COMMIT_MESSAGE=MESSAGE.encode().decode("latin-1"),
        ),
    )
    assert status == "200 OK"
    assert [line.split(b":")[1] for line in content.split()] == [b"1", b"1"]
    revision = Revision.objects.get()
    assert revision.description == MESSAGE
    assert ObjectDelta.objects.filter(revision=revision).count() == 2
    assert {actor_of(d) for d in ObjectDelta.objects.all()} == {label(world.alice)}


def test_wsgi_refused_and_bad_message(world):
    app = RevyWSGIMiddleware(wsgi_app, resolvers=HEADER_RESOLVERS)
    status, content = run_wsgi(app, wsgi_environ(X_API_TOKEN="nope"))
    assert status == "403 Forbidden"
    assert b"unknown token" in content
    status, content = run_wsgi(app, wsgi_environ(X_COMMIT_MESSAGE="x\x01"))
    assert status == "400 Bad Request"
    assert_nothing_written()


def test_wsgi_refusal_during_the_body_before_start_response(world):
    def lazy_app(environ, start_response):
        Account.objects.create(name="x")  # refused: raises
        start_response("200 OK", [])
        return [b"never"]

    def generator_app(environ, start_response):
        yield from wsgi_app(environ, start_response)

    for app in (lazy_app, generator_app):
        wrapped = RevyWSGIMiddleware(app, resolvers=HEADER_RESOLVERS)
        status, content = run_wsgi(wrapped, wsgi_environ(X_API_TOKEN="nope"))
        assert status == "403 Forbidden"
        assert b"unknown token" in content
    assert_nothing_written()


def test_wsgi_resolvers_that_need_a_user_say_so(world):
    app = RevyWSGIMiddleware(wsgi_app)
    with pytest.raises(UnsupportedRequest):
        run_wsgi(app, wsgi_environ())
    assert_nothing_written()
    request = EnvironRequest(wsgi_environ(X_API_TOKEN="t"))
    assert request.headers["X-Api-Token"] == "t"
