"""Authorization: no delta is ever credited to an organization the user may
not act for, whatever the path.

bob is a member of "Other" only; alice of "Acme" only. Every way a request
can name an organization is tried: every view kind (sync, async, decorated,
streaming, read-only, a view that swallows the refusal, django-ninja with
session and bearer auth, sync and async endpoints), both handlers (Client
and AsyncClient), every resolver order, the header name in any case,
repeated headers, decorated values, mixed credentials, real servers
(uvicorn and the threaded WSGI server), and the ASGI wrapper.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from asgiref.sync import async_to_sync
from django.test import override_settings

from revy_core.models import AttributeDelta, ObjectDelta
from revy_mw.asgi import RevyASGIMiddleware, ScopeRequest
from tests import reliability
from tests.mwapp.helpers import TRANSPORTS, Caller, actor_of, label, make_world
from tests.mwapp.plain import asgi_app
from tests.testapp.models import Account

pytestmark = pytest.mark.django_db(transaction=True)

ORG = "revy_mw.resolvers.OrganizationHeaderResolver"
USER = "revy_mw.resolvers.UserResolver"
SYSTEM = "revy_mw.resolvers.SystemResolver"
RULE = "tests.mwapp.rules.can_act_for_organization"

#: (method, path, authentication, JSON body)
ROUTES = [
    ("post", "/sync/write", "session", None),
    ("post", "/async/write", "session", None),
    ("post", "/decorated/write", "session", None),
    ("post", "/sync/swallow", "session", None),
    ("get", "/sync/stream", "session", None),
    ("get", "/async/stream", "session", None),
    ("get", "/sync/read", "session", None),
    ("get", "/async/read", "session", None),
    ("get", "/sync/probe", "session", None),
    ("post", "/ninja/session/accounts", "session", {"name": "n"}),
    ("post", "/ninja/bearer/accounts", "bearer", {"name": "n"}),
    ("post", "/ninja/sync/accounts", "bearer", {"name": "n"}),
    ("get", "/ninja/bearer/read", "bearer", None),
]
HEADER_NAMES = [
    "X-Perform-As-Organization",
    "x-perform-as-organization",
    "X-PERFORM-AS-ORGANIZATION",
    "x-PERFORM-as-Organization",
]


@pytest.fixture
def world(transactional_db: None) -> Any:
    return make_world()


def _claims(world: Any) -> list[str]:
    """Values naming acme (which bob may not act for), as sent or as a
    server joins repeated headers."""
    acme, other = world.acme.pk, world.other.pk
    return [
        str(acme),
        f" {acme} ",
        f"+{acme}",
        f"0{acme}",
        f"{other},{acme}",
        f"{acme},{other}",
        f"{acme},{acme}",
    ]


def _call(
    caller: Caller,
    world: Any,
    route: tuple[str, str, str, Any],
    headers: dict[str, str],
    *,
    user: str = "bob",
) -> Any:
    method, path, authentication, payload = route
    kwargs: dict[str, Any] = {"headers": dict(headers)}
    if authentication == "session":
        caller.login(getattr(world, user))
    else:
        token = getattr(world, f"{user}_token")
        kwargs["headers"]["Authorization"] = f"Bearer {token}"
    if payload is not None:
        kwargs["data"] = payload
        kwargs["content_type"] = "application/json"
    response = caller.request(method, path, **kwargs)
    if getattr(response, "streaming", False):
        b"".join(response.streaming_content)  # writes happen while streaming
    return response


def credited() -> set[Any]:
    """Every actor any delta is credited to."""
    return {
        actor_of(d)
        for model in (ObjectDelta, AttributeDelta)
        for d in model.objects.select_related("actor_type")
    }


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_bob_claiming_acme_is_refused_on_every_route_and_writes_nothing(
    transport, world
):
    caller = Caller(transport)
    wrong = []
    combinations = itertools.product(ROUTES, HEADER_NAMES, _claims(world))
    for index, (route, name, value) in enumerate(combinations):
        if index % 4 and name != HEADER_NAMES[0]:
            continue  # every name, but not with every value and route
        response = _call(caller, world, route, {name: value})
        if response.status_code != 403:
            wrong.append((route[1], name, value, response.status_code))
    assert wrong == []
    assert Account.objects.count() == 0
    assert credited() == set()


def _settings(resolvers: list[str]) -> Any:
    return override_settings(
        REVY_MW={
            "ORGANIZATION_MODEL": "testapp.Organization",
            "CAN_ACT_FOR_ORGANIZATION": RULE,
            "ACTOR_RESOLVERS": resolvers,
        }
    )


ORDERS = [
    list(order)
    for size in (1, 2, 3)
    for order in itertools.permutations([ORG, USER, SYSTEM], size)
]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_every_resolver_order_credits_acme_only_to_its_member(transport, world):
    """In every order of the resolvers (and with some left out), a claim for
    acme is credited to acme only when alice makes it; bob's claim is refused
    or credited to bob or the system, never to acme."""
    caller = Caller(transport)
    routes = [ROUTES[0], ROUTES[10]]
    for order, route in itertools.product(ORDERS, routes):
        for user in ("alice", "bob"):
            before = ObjectDelta.objects.count()
            with _settings(order):
                response = _call(
                    caller,
                    world,
                    route,
                    {"X-Perform-As-Organization": str(world.acme.pk)},
                    user=user,
                )
            new = ObjectDelta.objects.select_related("actor_type").order_by("pk")[
                before:
            ]
            actors = {actor_of(d) for d in new}
            first = order[0]
            if user == "bob" and first == ORG:
                assert response.status_code == 403, (order, route)
                assert actors == set()
            else:
                assert response.status_code == 200, (order, route, user)
                if first == ORG:
                    expected = label(world.acme)
                elif first == USER:
                    expected = label(getattr(world, user))
                else:
                    expected = None
                assert actors == {expected}, (order, route, user)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_mixed_credentials_act_as_the_user_ninja_authenticated(transport, world):
    """alice's session cookie with bob's bearer token: the endpoint is bob's
    (django-ninja's request.auth), so bob may not claim acme, and alice's
    session does not lend him her organizations."""
    caller = Caller(transport)
    caller.login(world.alice)
    route = "/ninja/bearer/accounts"
    headers = {"Authorization": f"Bearer {world.bob_token}"}
    refused = caller.post(
        route,
        data={"name": "mixed"},
        content_type="application/json",
        headers={**headers, "X-Perform-As-Organization": str(world.acme.pk)},
    )
    assert refused.status_code == 403
    assert credited() == set()
    allowed = caller.post(
        route,
        data={"name": "mixed"},
        content_type="application/json",
        headers={**headers, "X-Perform-As-Organization": str(world.other.pk)},
    )
    assert allowed.status_code == 200
    assert credited() == {label(world.other)}
    plain = caller.post(
        route, data={"name": "mixed"}, content_type="application/json", headers=headers
    )
    assert plain.status_code == 200
    assert credited() == {label(world.other), label(world.bob)}


def test_asgi_wrapper_ignores_header_names_with_underscores():
    """X_Api_Token is not X-Api-Token: a proxy that filters one lets the other
    through, so the wrapper drops it, as Django's handlers do."""
    request = ScopeRequest(
        {
            "type": "http",
            "headers": [
                (b"x_api_token", b"token0"),
                (b"x-commit-message", b"kept"),
                (b"content_type", b"text/evil"),
            ],
        }
    )
    assert request.META == {"HTTP_X_COMMIT_MESSAGE": "kept"}


def test_asgi_wrapper_does_not_credit_an_underscored_token(world):
    app = RevyASGIMiddleware(
        asgi_app,
        resolvers=["tests.mwapp.resolvers.ApiTokenResolver", SYSTEM],
    )
    sent: list[Any] = []

    async def receive() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def collect(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/plain/underscore",
        "headers": [(b"x_api_token", world.alice_token.encode())],
    }
    async_to_sync(app)(scope, receive, collect)
    assert sent[0]["status"] == 200
    assert credited() == {None}


# Real servers ----------------------------------------------------------------


def _real_server_claims(
    kind: str, tmp_path: Path, users: int = 2
) -> tuple[list[tuple[str, int, bytes]], list[dict[str, Any]], dict[str, Any]]:
    db = tmp_path / "server.sqlite3"
    env = reliability.server_env(db)
    world = reliability.setup(env, users, 2)
    bob = world["users"][1]  # a member of organizations[1] only
    mine, theirs = world["organizations"][1], world["organizations"][0]
    results = []
    cases: list[tuple[str, list[tuple[str, str]]]] = [
        ("single", [("X-Perform-As-Organization", str(theirs))]),
        ("lower", [("x-perform-as-organization", str(theirs))]),
        ("upper", [("X-PERFORM-AS-ORGANIZATION", str(theirs))]),
        (
            "repeated, theirs last",
            [
                ("X-Perform-As-Organization", str(mine)),
                ("X-Perform-As-Organization", str(theirs)),
            ],
        ),
        (
            "repeated, theirs first",
            [
                ("x-perform-as-organization", str(theirs)),
                ("X-Perform-As-Organization", str(mine)),
            ],
        ),
        ("underscores", [("X_Perform_As_Organization", str(theirs))]),
        (
            "underscores beside",
            [
                ("X-Perform-As-Organization", str(mine)),
                ("X_Perform_As_Organization", str(theirs)),
            ],
        ),
    ]
    with reliability.running(kind, env, tmp_path / "server.log") as server:
        for name, headers in cases:
            for path in ("/sync/write", "/async/write"):
                status, answer = _send_repeated(
                    server.port, f"{path}?name={quote(name)}", bob["session"], headers
                )
                results.append((f"{name} {path}", status, answer))
    return results, reliability.report(env), {"bob": bob, "mine": mine}


def _send_repeated(
    port: int, path: str, session: str, headers: list[tuple[str, str]]
) -> tuple[int, bytes]:
    from http.client import HTTPConnection

    connection = HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.putrequest("POST", path, skip_accept_encoding=True)
        connection.putheader("Cookie", f"sessionid={session}")
        connection.putheader("Accept", "application/json")
        for name, value in headers:
            connection.putheader(name, value)
        connection.putheader("Content-Length", "0")
        connection.putheader("Connection", "close")
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.soak
@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
def test_real_servers_refuse_every_spelling_and_repetition_of_a_claim(kind, tmp_path):
    results, rows, who = _real_server_claims(kind, tmp_path)
    statuses = {name: status for name, status, _ in results}
    for name, status, answer in results:
        if name.startswith("underscores beside"):
            # The underscored header is dropped: bob acts for his own.
            assert status == 200, (name, answer)
        elif name.startswith("underscores"):
            # Dropped too: bob acts as himself.
            assert status == 200, (name, answer)
        else:
            assert status == 403, (name, answer)
            assert json.loads(answer)["code"].startswith("organization_")
    assert statuses
    written = {row["name"].rstrip("!"): row["actor"] for row in rows}
    assert written == {
        "underscores beside": f"testapp.organization:{who['mine']}",
        "underscores": f"auth.user:{who['bob']['id']}",
    }


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_only_the_canonical_form_of_an_integer_identifier_is_accepted(transport, world):
    """int() reads "+7", "07", "0_7" and other scripts' digits as 7: a proxy
    that filters "7" would let them through, so they are malformed, even
    for alice, who may act for acme."""
    caller = Caller(transport)
    pk = str(world.acme.pk)
    arabic = "".join(chr(0x0660 + int(digit)) for digit in pk)
    if transport == "asgi":  # header bytes, as a server hands them to Django
        arabic = arabic.encode().decode("latin-1")
    for value in (f"+{pk}", f"0{pk}", f"0_{pk}", arabic, f"{pk}.0"):
        response = _call(
            caller,
            world,
            ROUTES[0],
            {"X-Perform-As-Organization": value, "Accept": "application/json"},
            user="alice",
        )
        assert response.status_code == 403, value
        assert json.loads(response.content)["code"] == "organization_malformed"
    response = _call(
        caller, world, ROUTES[0], {"X-Perform-As-Organization": f" {pk} "}, user="alice"
    )
    assert response.status_code == 200
    assert credited() == {label(world.acme)}
