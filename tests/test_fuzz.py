"""Hostile input: the commit message and organization headers, fuzzed.

Header values are generated as servers hand them to Django: any bytes (up
to 64 KiB), read as latin-1 text, sent raw or as RFC 8187, repeated (servers
join repeats with a comma), under any case of the header name; and, through
Django's Client only, any Unicode text. Every request goes through Django's
Client (WSGI handler) and AsyncClient (ASGI handler) to views that write.

Whatever arrives: never a 5xx; a description stored is never longer than
the limit and holds no control character; nothing is written unless the
request succeeds; and the actor is the one the rules allow (the user
without the header, an organization the user may act for with it, never
the user when the header is there).
"""

from __future__ import annotations

import os
import unicodedata
from typing import Any
from urllib.parse import quote_from_bytes

import pytest
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from revy_core.models import ObjectDelta, Revision
from tests.mwapp.helpers import Caller, actor_of, label, make_world
from tests.mwapp.models import Membership
from tests.testapp.models import Account

pytestmark = pytest.mark.django_db(transaction=True)

MAX_LENGTH = 1000
#: Bidirectional overrides and isolates, line and paragraph separators.
FORMAT_CONTROLS = frozenset(
    "\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
#: Pieces that exercise the decoder: invalid UTF-8, controls, RFC 8187.
PIECES = [
    b"\xff",
    b"\xc3",
    b"\xc3\xa9",
    b"\x00",
    b"\x07",
    b"\r\n",
    b"\t",
    b"\x7f",
    b"\xc2\x85",
    "\u202e".encode(),
    "\u2028".encode(),
    b"%",
    b"%C3%A9",
    b"%0A",
    b"%zz",
    b"UTF-8''",
    b"utf-8'en'",
    b",",
    b" ",
    "✓".encode(),
    "𝄞".encode(),
    b"\xed\xa0\x80",  # an encoded surrogate
]
FUZZ = settings(
    max_examples=int(os.environ.get("REVY_FUZZ_EXAMPLES", "15")),
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
ROUTES = ["/sync/write", "/async/write", "/ninja/bearer/accounts"]


def is_control(char: str) -> bool:
    return unicodedata.category(char) == "Cc" or char in FORMAT_CONTROLS


#: Any bytes, up to 64 KiB: a short mix of pieces and random bytes, repeated.
header_bytes = st.builds(
    lambda parts, times: (b"".join(parts) * times)[:65536],
    st.lists(st.sampled_from(PIECES) | st.binary(max_size=40), max_size=12),
    st.sampled_from([1, 1, 1, 2, 50, 2000, 65536]),
)


@st.composite
def header_values(draw: Any, *, text: bool) -> str:
    """One header value as Django sees it (repeats joined with a comma)."""
    values = []
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        form = draw(
            st.sampled_from(["raw", "rfc8187", "text"] if text else ["raw", "rfc8187"])
        )
        if form == "text":
            values.append(draw(st.text(max_size=300)))
            continue
        data = draw(header_bytes)
        if form == "rfc8187":
            values.append("UTF-8''" + quote_from_bytes(data, safe=""))
        else:
            values.append(data.decode("latin-1"))
    return ",".join(values)


header_names = st.sampled_from(
    ["X-Commit-Message", "x-commit-message", "X-COMMIT-MESSAGE", "x-Commit-message"]
)


@pytest.fixture
def world(transactional_db: None) -> Any:
    return make_world()


def _send(transport: str, route: str, world: Any, headers: dict[str, str]) -> Any:
    caller = Caller(transport)
    if route.startswith("/ninja/"):
        return caller.post(
            route,
            data={"name": "fuzz"},
            content_type="application/json",
            headers={"Authorization": f"Bearer {world.alice_token}", **headers},
        )
    caller.login(world.alice)
    return caller.post(f"{route}?name=fuzz", headers=headers)


def _written_since(last_revision: int) -> tuple[list[Revision], list[ObjectDelta]]:
    revisions = list(Revision.objects.filter(pk__gt=last_revision))
    deltas = list(
        ObjectDelta.objects.filter(revision__pk__gt=last_revision).select_related(
            "actor_type"
        )
    )
    return revisions, deltas


def _last_revision() -> int:
    last = Revision.objects.order_by("-pk").values_list("pk", flat=True).first()
    return last or 0


def _assert_clean(revisions: list[Revision], limit: int = MAX_LENGTH) -> None:
    for revision in revisions:
        text = revision.description
        assert len(text) <= limit, len(text)
        assert not [c for c in text if is_control(c)], ascii(text[:200])


@pytest.mark.parametrize("transport", ["wsgi", "asgi"])
@FUZZ
@given(
    value=st.data(),
    name=header_names,
    route=st.sampled_from(ROUTES),
)
def test_commit_message_fuzz_never_5xx_never_a_control_character(
    transport, world, value, name, route
):
    message = value.draw(header_values(text=transport == "wsgi"))
    last = _last_revision()
    accounts = Account.objects.count()
    response = _send(transport, route, world, {name: message})
    assert response.status_code in (200, 400), response.content[:300]
    revisions, deltas = _written_since(last)
    if response.status_code == 400:
        assert revisions == []
        assert Account.objects.count() == accounts
        return
    _assert_clean(revisions)
    assert len(revisions) == 1
    assert {actor_of(d) for d in deltas} == {label(world.alice)}


@pytest.mark.parametrize("transport", ["wsgi", "asgi"])
@FUZZ
@given(value=st.data(), route=st.sampled_from(ROUTES))
def test_commit_message_fuzz_in_repair_mode_always_stores_a_clean_message(
    transport, world, value, route
):
    message = value.draw(header_values(text=transport == "wsgi"))
    last = _last_revision()
    with override_settings(
        REVY_MW={
            "ORGANIZATION_MODEL": "testapp.Organization",
            "CAN_ACT_FOR_ORGANIZATION": "tests.mwapp.rules.can_act_for_organization",
            "INVALID_COMMIT_MESSAGE": "repair",
            "COMMIT_MESSAGE_MAX_LENGTH": 200,
        }
    ):
        response = _send(transport, route, world, {"X-Commit-Message": message})
    assert response.status_code == 200, response.content[:300]
    revisions, deltas = _written_since(last)
    assert len(revisions) == 1
    _assert_clean(revisions, limit=200)
    assert {actor_of(d) for d in deltas} == {label(world.alice)}


@st.composite
def organization_values(draw: Any, world: Any, *, text: bool) -> str:
    """Identifiers of organizations alice may and may not act for, decorated,
    or any bytes; repeats joined with a comma."""
    known = [
        str(world.acme.pk),
        str(world.other.pk),
        str(world.other.pk + 1000),
        "0",
        "-1",
        str(2**63),
    ]
    values = []
    for _ in range(draw(st.integers(min_value=1, max_value=2))):
        kind = draw(st.sampled_from(["known", "decorated", "bytes", "text"]))
        if kind == "known":
            values.append(draw(st.sampled_from(known)))
        elif kind == "decorated":
            value = draw(st.sampled_from(known))
            prefix = draw(st.sampled_from(["", " ", "+", "0", "\t", "\x00", "%"]))
            suffix = draw(st.sampled_from(["", " ", ".0", "\x00", "\n", "e0", "_"]))
            values.append(prefix + value + suffix)
        elif kind == "text" and text:
            values.append(draw(st.text(max_size=50)))
        else:
            values.append(draw(header_bytes).decode("latin-1"))
    return ",".join(values)


@pytest.mark.parametrize("transport", ["wsgi", "asgi"])
@FUZZ
@given(
    value=st.data(),
    name=st.sampled_from(
        [
            "X-Perform-As-Organization",
            "x-perform-as-organization",
            "X-PERFORM-AS-ORGANIZATION",
        ]
    ),
    route=st.sampled_from(ROUTES),
)
def test_organization_header_fuzz_credits_only_an_allowed_organization(
    transport, world, value, name, route
):
    header = value.draw(organization_values(world, text=transport == "wsgi"))
    last = _last_revision()
    accounts = Account.objects.count()
    response = _send(transport, route, world, {name: header})
    assert response.status_code in (200, 403), response.content[:300]
    revisions, deltas = _written_since(last)
    if response.status_code == 403:
        assert revisions == []
        assert Account.objects.count() == accounts
        return
    allowed = {
        label(membership.organization)
        for membership in Membership.objects.filter(user=world.alice)
    }
    actors = {actor_of(d) for d in deltas}
    assert actors, "a successful write wrote nothing"
    assert actors <= allowed, (header, actors)
    # Only acme's identifier, in its canonical form, is accepted.
    assert header.strip() == str(world.acme.pk)
