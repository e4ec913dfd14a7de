"""A property-based fuzzer over the sample site's OpenAPI schema: no 5xx.

Every operation of ``/api/openapi.json`` is called with values generated
from its schema (path and query parameters, JSON bodies built from the
component schemas), mixed with values of the wrong type, out of range ids,
bodies that are not JSON, and the headers revy reads (commit message and
organization, any text), as alice, bob, carol, anonymous or with a bad
token, through Django's Client (WSGI) and AsyncClient (ASGI). Whatever is
sent, the answer is never a server error.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sample_site.tests.conftest import TOKENS, Api

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("REVY_FUZZ_EXAMPLES", "15"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=6,
)
IDS = st.integers(min_value=1, max_value=8) | st.integers(
    min_value=-(2**70), max_value=2**70
)


def schema() -> dict[str, Any]:
    response = Client().get("/api/openapi.json")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def values(spec: dict[str, Any], components: dict[str, Any], depth: int = 0) -> Any:
    """A strategy for values of a JSON schema, sometimes of the wrong type."""
    if "$ref" in spec:
        name = spec["$ref"].rsplit("/", 1)[1]
        return values(components[name], components, depth)
    for key in ("anyOf", "oneOf"):
        if key in spec:
            return st.one_of([values(s, components, depth) for s in spec[key]])
    if "allOf" in spec and len(spec["allOf"]) == 1:
        return values(spec["allOf"][0], components, depth)
    if "enum" in spec:
        return st.sampled_from(spec["enum"])
    kind = spec.get("type")
    strategy: Any
    if kind == "string":
        if spec.get("format") == "date":
            strategy = st.dates().map(str)
        elif spec.get("format") == "date-time":
            strategy = st.datetimes().map(lambda d: d.isoformat())
        elif "pattern" in spec:
            strategy = st.from_regex(spec["pattern"], fullmatch=True)
        else:
            strategy = st.text(
                min_size=spec.get("minLength", 0), max_size=spec.get("maxLength", 60)
            )
        strategy |= st.text(max_size=300)
    elif kind == "integer":
        strategy = IDS
    elif kind == "number":
        strategy = (
            st.decimals(allow_nan=False, allow_infinity=False, places=2).map(str)
            | st.floats(allow_nan=False, allow_infinity=False)
            | st.sampled_from(["1e400", "-0", "NaN", "Infinity", "1" * 40])
        )
    elif kind == "boolean":
        strategy = st.booleans()
    elif kind == "null":
        strategy = st.none()
    elif kind == "array" and depth < 3:
        strategy = st.lists(
            values(spec.get("items", {}), components, depth + 1), max_size=3
        )
    elif kind == "object" and depth < 3:
        properties = {
            name: values(sub, components, depth + 1)
            for name, sub in spec.get("properties", {}).items()
        }
        required = set(spec.get("required", []))
        strategy = st.fixed_dictionaries(
            {k: v for k, v in properties.items() if k in required},
            optional={k: v for k, v in properties.items() if k not in required},
        )
    else:
        strategy = JSON
    return strategy | JSON


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


@st.composite
def requests(draw: Any, document: dict[str, Any]) -> dict[str, Any]:
    components = document.get("components", {}).get("schemas", {})
    method, path, operation = draw(st.sampled_from(operations(document)))
    query: dict[str, Any] = {}
    headers: dict[str, str] = {}
    for parameter in operation.get("parameters", []):
        name, where = parameter["name"], parameter["in"]
        if where == "header":
            if draw(st.booleans()):
                headers[name] = draw(
                    st.sampled_from(["acme", "globex", "nope", "1", "acme,globex"])
                    | st.text(max_size=80)
                    | st.binary(max_size=80).map(lambda b: b.decode("latin-1"))
                )
            continue
        value = draw(values(parameter.get("schema", {}), components))
        if where == "path":
            text = str(value) if value is not None else ""
            path = path.replace("{" + name + "}", quote(text, safe="") or "0")
        elif where == "query" and value is not None and draw(st.booleans()):
            query[name] = value if isinstance(value, str) else json.dumps(value)
    body: bytes | None = None
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        spec = content["application/json"].get("schema", {})
        shape = draw(st.sampled_from(["schema", "schema", "json", "bytes"]))
        if shape == "bytes":
            body = draw(st.binary(max_size=200))
        else:
            document_value = draw(
                values(spec, components) if shape == "schema" else JSON
            )
            body = json.dumps(document_value).encode()
    who = draw(st.sampled_from([*TOKENS, None, "bad"]))
    if who == "bad":
        headers["Authorization"] = "Bearer not-a-token"
    elif who is not None:
        headers["Authorization"] = f"Bearer {TOKENS[who]}"
    if query:
        path = f"{path}?{urlencode(query)}"
    return {"method": method, "path": path, "body": body, "headers": headers}


def _send(mode: str, request: dict[str, Any]) -> Any:
    client: Client | AsyncClient = Client() if mode == "wsgi" else AsyncClient()
    call = getattr(client, request["method"])
    headers = request["headers"]
    if mode == "asgi":
        # Over ASGI headers are bytes: text is sent as UTF-8, as clients do.
        headers = {k: v.encode().decode("latin-1") for k, v in headers.items()}
    kwargs: dict[str, Any] = {"headers": headers}
    if request["body"] is not None:
        kwargs["data"] = request["body"]
        kwargs["content_type"] = "application/json"
    if mode == "wsgi":
        return call(request["path"], **kwargs)

    async def acall() -> Any:
        return await call(request["path"], **kwargs)

    return async_to_sync(acall)()


DOCUMENT: dict[str, Any] = {}


@pytest.fixture
def ledger(people: dict[str, Any]) -> dict[str, Any]:
    """The people, and an account with transactions (some deleted)."""
    api = Api("wsgi")
    account = api.post(
        "/api/accounts",
        {"organization": "acme", "name": "Operating", "currency": "EUR"},
        user="alice",
    ).json()
    for amount in ("-1.00", "2.50"):
        api.post(
            "/api/transactions",
            {"account": account["id"], "description": "t", "amount": amount},
            user="alice",
        )
    api.delete("/api/transactions/1", user="alice")
    if not DOCUMENT:
        DOCUMENT.update(schema())
    return people


def _fuzz(mode: str, data: Any) -> None:
    request = data.draw(requests(DOCUMENT))
    response = _send(mode, request)
    assert response.status_code < 500, (request, response.content[:500])


@pytest.mark.parametrize("mode", ["wsgi", "asgi"])
@FUZZ
@given(data=st.data())
def test_no_operation_of_the_schema_answers_a_server_error(mode, ledger, data):
    _fuzz(mode, data)
