"""Resolvers, and the organization authorization matrix end to end."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import RequestFactory, override_settings

from revy_core.models import Revision
from revy_mw.resolvers import (
    NOT_MINE,
    ActorRefused,
    OrganizationHeaderResolver,
    SystemResolver,
    UnsupportedRequest,
    UserResolver,
    aresolve_actor,
    get_resolvers,
    resolve_actor,
)
from tests.mwapp.helpers import (
    Caller,
    actor_of,
    assert_nothing_written,
    body,
    counting_queries,
    history,
    label,
    make_world,
)
from tests.mwapp.models import Team
from tests.mwapp.resolvers import ApiTokenResolver
from tests.testapp.models import Account, Organization

pytestmark = pytest.mark.django_db(transaction=True)

ORG = "X-Perform-As-Organization"


@pytest.fixture
def world(transactional_db):
    return make_world()


# The authorization matrix -----------------------------------------------------

#: (transport, path, authentication)
ROUTES = [
    ("wsgi", "/sync/write", "session"),
    ("asgi", "/async/write", "session"),
    ("wsgi", "/ninja/bearer/accounts", "bearer"),
    ("asgi", "/ninja/bearer/accounts", "bearer"),
]

#: case -> (who, header value or a callable of the world, expected code)
CASES: dict[str, tuple[str | None, Callable[[Any], str], str | None]] = {
    "member": ("alice", lambda w: str(w.acme.pk), None),
    "non-member": ("alice", lambda w: str(w.other.pk), "organization_forbidden"),
    "anonymous": (None, lambda w: str(w.acme.pk), "organization_anonymous"),
    "unknown id": ("alice", lambda w: "987654", "organization_forbidden"),
    "malformed abc": ("alice", lambda w: "abc", "organization_malformed"),
    "malformed sql": ("alice", lambda w: "1 OR 1=1", "organization_malformed"),
    "malformed overlong": ("alice", lambda w: "1" * 300, "organization_malformed"),
    "malformed huge": ("alice", lambda w: "9" * 40, "organization_malformed"),
    "malformed negative": ("alice", lambda w: "-1", "organization_forbidden"),
    "empty": ("alice", lambda w: "", "organization_malformed"),
    "repeated": (
        "alice",
        lambda w: f"{w.acme.pk},{w.other.pk}",
        "organization_malformed",
    ),
}


def _send(
    world: Any, transport: str, path: str, authentication: str, who: Any, value: str
) -> Any:
    caller = Caller(transport)
    headers = {ORG: value, "X-Commit-Message": "as org", "Accept": "application/json"}
    user = getattr(world, who) if who else None
    if authentication == "session" and user is not None:
        caller.login(user)
    if authentication == "bearer" and user is not None:
        headers["Authorization"] = f"Bearer {who}-token"
    return caller.post(
        path, data={"name": "n"}, content_type="application/json", headers=headers
    )


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize(("transport", "path", "authentication"), ROUTES)
def test_organization_matrix(world, transport, path, authentication, case):
    who, value, code = CASES[case]
    response = _send(world, transport, path, authentication, who, value(world))

    if code is None:
        assert response.status_code == 200, response.content
        found = history()
        assert len(found["revisions"]) == 1
        deltas = found["objects"] + found["attributes"]
        assert deltas
        assert {actor_of(d) for d in deltas} == {label(world.acme)}
        return
    if authentication == "bearer" and who is None:
        # django-ninja refuses the request itself before the view runs.
        assert response.status_code == 401
    else:
        assert response.status_code == 403, response.content
        assert response["Content-Type"] == "application/json"
        assert body(response)["code"] == code
        assert ORG in body(response)["detail"]
    assert_nothing_written()


@pytest.mark.parametrize("transport", ["wsgi", "asgi"])
def test_forbidden_organization_text_body(world, transport):
    caller = Caller(transport)
    caller.login(world.alice)
    path = "/sync/write" if transport == "wsgi" else "/async/write"
    response = caller.post(path, headers={ORG: str(world.other.pk)})
    assert response.status_code == 403
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert "may not act for organization" in response.content.decode()
    assert_nothing_written()


@pytest.mark.parametrize("transport", ["wsgi", "asgi"])
@pytest.mark.parametrize("path", ["/sync/read", "/async/read"])
def test_forged_header_is_refused_even_when_nothing_is_written(world, transport, path):
    caller = Caller(transport)
    caller.login(world.alice)
    assert caller.get(path, headers={ORG: str(world.other.pk)}).status_code == 403
    assert caller.get(path, headers={ORG: "abc"}).status_code == 403
    assert caller.get(path, headers={ORG: str(world.acme.pk)}).status_code == 200
    assert Revision.objects.count() == 0


@pytest.mark.parametrize("transport", ["wsgi", "asgi"])
def test_ninja_read_decides_after_bearer_auth(world, transport):
    caller = Caller(transport)
    ok = {"Authorization": "Bearer alice-token", ORG: str(world.acme.pk)}
    bad = {"Authorization": "Bearer alice-token", ORG: str(world.other.pk)}
    assert caller.get("/ninja/bearer/read", headers=ok).status_code == 200
    assert caller.get("/ninja/bearer/read", headers=bad).status_code == 403


def test_a_view_that_swallows_the_refusal_still_answers_403(world):
    caller = Caller("wsgi")
    caller.login(world.alice)
    response = caller.post("/sync/swallow", headers={ORG: str(world.other.pk)})
    assert response.status_code == 403
    assert_nothing_written()


@pytest.mark.parametrize("transport", ["wsgi", "asgi"])
def test_no_header_costs_no_query_on_a_read(world, transport):
    caller = Caller(transport)
    caller.login(world.alice)
    with counting_queries() as queries:
        caller.get("/sync/read")
    assert len(queries) == 0


@pytest.mark.parametrize("transport", ["wsgi", "asgi"])
@override_settings(
    REVY_MW={
        "ORGANIZATION_MODEL": "mwapp.Team",
        "ORGANIZATION_LOOKUP_FIELD": "slug",
        "CAN_ACT_FOR_ORGANIZATION": "tests.mwapp.rules.acan_act_for_team",
    }
)
def test_lookup_field_and_async_rule(world, transport):
    mine = Team.objects.create(slug="alice-team", name="A")
    Team.objects.create(slug="bob-team", name="B")
    caller = Caller(transport)
    caller.login(world.alice)
    path = "/sync/write" if transport == "wsgi" else "/async/write"
    assert caller.post(path, headers={ORG: "bob-team"}).status_code == 403
    assert Account.objects.count() == 0
    assert caller.post(path, headers={ORG: "alice-team"}).status_code == 200
    deltas = history()["objects"]
    assert {actor_of(d) for d in deltas if d.content_type.model == "account"} == {
        label(mine)
    }


@override_settings(REVY_MW={})
def test_without_an_organization_model_the_header_is_refused(world):
    caller = Caller("wsgi")
    caller.login(world.alice)
    response = caller.post("/sync/write", headers={ORG: "1"})
    assert response.status_code == 403
    assert b"does not let requests act for an organization" in response.content
    assert caller.post("/sync/write").status_code == 200


@override_settings(
    REVY_MW={
        "ORGANIZATION_MODEL": "testapp.Organization",
        "ORGANIZATION_HEADER": "X-Org",
        "CAN_ACT_FOR_ORGANIZATION": "tests.mwapp.rules.can_act_for_organization",
    }
)
def test_organization_header_name_is_configurable(world):
    caller = Caller("wsgi")
    caller.login(world.alice)
    assert caller.post("/sync/write", headers={ORG: "abc"}).status_code == 200
    assert caller.post("/sync/write", headers={"X-Org": "abc"}).status_code == 403


# Resolver units ---------------------------------------------------------------


def test_user_resolver_prefers_request_auth(world):
    request = RequestFactory().get("/")
    request.user = world.bob
    request.auth = world.alice  # type: ignore[attr-defined]
    assert UserResolver().resolve(request) == world.alice
    assert async_to_sync(UserResolver().aresolve)(request) == world.alice
    request.auth = "not a user"  # type: ignore[attr-defined]
    assert UserResolver().resolve(request) == world.bob


def test_user_resolver_anonymous_is_not_mine(world):
    from django.contrib.auth.models import AnonymousUser

    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    assert UserResolver().resolve(request) is NOT_MINE
    assert not NOT_MINE
    assert repr(NOT_MINE) == "NOT_MINE"


def test_user_resolver_without_a_user_is_a_clear_error():
    class Bare:
        META: dict[str, str] = {}

    with pytest.raises(UnsupportedRequest, match="has no user"):
        UserResolver().resolve(Bare())
    with pytest.raises(UnsupportedRequest, match="has no user"):
        async_to_sync(UserResolver().aresolve)(Bare())


def test_chain_order_and_fallback_to_the_system(world):
    request = RequestFactory().get("/", headers={"X-Api-Token": "bob-token"})
    request.user = world.alice
    chain = [ApiTokenResolver(), UserResolver(), SystemResolver()]
    assert resolve_actor(request, chain) == world.bob
    assert async_to_sync(aresolve_actor)(request, chain) == world.bob
    assert resolve_actor(RequestFactory().get("/"), [ApiTokenResolver()]) is None
    bad = RequestFactory().get("/", headers={"X-Api-Token": "nope"})
    with pytest.raises(ActorRefused) as refused:
        resolve_actor(bad, chain)
    assert refused.value.code == "bad_token"
    assert refused.value.status_code == 403


def test_organization_resolver_units(world):
    resolver = OrganizationHeaderResolver()
    request = RequestFactory().get("/", headers={ORG: str(world.acme.pk)})
    request.user = world.alice
    assert resolver.requires_decision(request)
    assert resolver.resolve(request) == world.acme
    assert async_to_sync(resolver.aresolve)(request) == world.acme
    request.user = world.bob
    with pytest.raises(ActorRefused):
        resolver.resolve(request)
    with pytest.raises(ActorRefused):
        async_to_sync(resolver.aresolve)(request)
    plain = RequestFactory().get("/")
    assert not resolver.requires_decision(plain)
    assert resolver.resolve(plain) is NOT_MINE


def test_resolvers_are_instantiated_once_and_follow_settings():
    first = get_resolvers()
    assert get_resolvers() is first
    assert [type(r) for r in first] == [
        OrganizationHeaderResolver,
        UserResolver,
        SystemResolver,
    ]
    with override_settings(
        REVY_MW={"ACTOR_RESOLVERS": ["tests.mwapp.resolvers.ApiTokenResolver"]}
    ):
        assert [type(r) for r in get_resolvers()] == [ApiTokenResolver]
    assert [type(r) for r in get_resolvers()] == [type(r) for r in first]


@override_settings(
    REVY_MW={
        "ACTOR_RESOLVERS": [
            "tests.mwapp.resolvers.ApiTokenResolver",
            "revy_mw.resolvers.UserResolver",
        ]
    }
)
@pytest.mark.parametrize("transport", ["wsgi", "asgi"])
def test_a_custom_resolver_end_to_end(world, transport):
    caller = Caller(transport)
    caller.login(world.alice)
    path = "/sync/write" if transport == "wsgi" else "/async/write"
    assert caller.post(path, headers={"X-Api-Token": "bob-token"}).status_code == 200
    assert {actor_of(d) for d in history()["objects"]} == {label(world.bob)}
    assert caller.get("/sync/read", headers={"X-Api-Token": "nope"}).status_code == 403
    assert Organization.objects.count() == 2


def test_the_actor_is_the_user_instance_not_a_lazy_object(world):
    from django.contrib.auth.models import User
    from django.utils.functional import SimpleLazyObject

    request = RequestFactory().get("/")
    request.user = SimpleLazyObject(lambda: User.objects.get(pk=world.alice.pk))  # type: ignore[assignment]
    actor = UserResolver().resolve(request)
    assert type(actor) is User
    request.user = SimpleLazyObject(lambda: User.objects.get(pk=world.alice.pk))  # type: ignore[assignment]
    request.auth = request.user  # type: ignore[attr-defined]
    assert type(UserResolver().resolve(request)) is User
