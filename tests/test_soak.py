"""Soak: long runs under real servers, and the time-travel property at scale.

Run by ``make soak`` (``pytest -m soak``), never by ``make test``.

Each server (uvicorn with several workers, and Django's threaded WSGI
server) serves ``REVY_SOAK_REQUESTS`` requests (20,000 by default) from 50
concurrent clients, each on its own keep-alive connection, on a PostgreSQL
database of its own. The WSGI server's threads keep their database
connections (CONN_MAX_AGE); under uvicorn each request opens its own.
The requests mix reads, writes as a user and as an organization, probes of
the request's context, and errors provoked on purpose: a forbidden
organization (403), an anonymous organization claim (403), a bad commit
message (400), a wrong bearer token (401) and a view that raises after
writing (500). Afterwards:

- every response has the status its kind of request must have: no 5xx but
  the provoked ones;
- every delta of every account is credited to the actor of the request that
  wrote it, with that request's commit message, one revision per request;
- history and data agree (``tests.reliability_server audit``);
- no request started or ended inside a context (the servers report any);
- the workers' resident memory after the run is within 10% of what it was
  after the first 1,000 requests.

Where the time goes is printed with the figures: the servers' CPU time per
request (Django, revy and psycopg; under uvicorn also a new PostgreSQL
connection per request) against the client's.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.client import HTTPConnection, HTTPException
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import reliability
from tests.test_mw_servers import encoded
from tests.test_property import _run as run_property_example

pytestmark = [pytest.mark.soak, pytest.mark.filterwarnings("ignore::ResourceWarning")]

REQUESTS = int(os.environ.get("REVY_SOAK_REQUESTS", "20000"))
CLIENTS = 50
USERS = 50
ORGANIZATIONS = 10
ASGI_WORKERS = 2
#: Memory is compared with what it was after this many requests.
WARM_UP = 1_000
MESSAGE = "Soak ✓"

#: kind of request: (weight, expected status)
KINDS: dict[str, tuple[int, int]] = {
    "write": (40, 200),
    "read": (25, 200),
    "probe": (10, 200),
    "forbidden": (6, 403),
    "anonymous": (3, 403),
    "bad message": (6, 400),
    "bad token": (6, 401),
    "fail": (4, 500),
}
WRITES = [
    ("/sync/write", "session"),
    ("/async/write", "session"),
    ("/decorated/write", "session"),
    ("/ninja/bearer/accounts", "bearer"),
    ("/ninja/sync/accounts", "bearer"),
]
READS = [
    ("GET", "/sync/read", "session"),
    ("GET", "/async/read", "session"),
    ("GET", "/ninja/bearer/read", "bearer"),
]


@dataclass
class Call:
    seq: int
    kind: str
    method: str
    path: str
    headers: dict[str, str | bytes]
    body: bytes = b""
    #: The actor deltas must be credited to; the account the request names.
    actor: str | None = None
    description: str | None = None
    name: str | None = None
    status: int = 0
    answer: bytes = b""
    problems: list[str] = field(default_factory=list)


def plan(world: dict[str, Any], count: int, seed: int) -> list[Call]:
    rng = random.Random(seed)
    users = world["users"]
    organizations = world["organizations"]
    kinds = list(KINDS)
    weights = [KINDS[k][0] for k in kinds]
    calls = []
    for seq in range(count):
        kind = rng.choices(kinds, weights)[0]
        user = rng.choice(users)
        description = f"m{seq} {MESSAGE}"
        headers: dict[str, str | bytes] = {
            "Accept": "application/json",
            "X-Commit-Message": encoded(description, seq),
        }
        actor = f"auth.user:{user['id']}"
        name = f"r{seq}"
        if kind in ("read", "probe"):
            if kind == "read":
                method, path, authentication = rng.choice(READS)
            else:
                method, authentication = "GET", "session"
                path = rng.choice(["/sync/probe", "/async/probe"])
            body = b""
        else:
            method = "POST"
            path, authentication = rng.choice(WRITES)
            if kind == "anonymous":  # ninja would answer 401 first
                path, authentication = rng.choice(WRITES[:3])
            if kind == "fail":
                path, authentication = "/sync/fail", "session"
            body = b""
            if path.startswith("/ninja/"):
                headers["Content-Type"] = "application/json"
                body = json.dumps({"name": name}).encode()
            else:
                path = f"{path}?name={name}"
        if kind in ("write", "probe") and rng.random() < 0.4:
            headers["X-Perform-As-Organization"] = str(user["organization"])
            actor = f"testapp.organization:{user['organization']}"
        elif kind == "forbidden":
            others = [o for o in organizations if o != user["organization"]]
            headers["X-Perform-As-Organization"] = str(rng.choice(others))
        elif kind == "anonymous":
            headers["X-Perform-As-Organization"] = str(user["organization"])
            authentication = "none"
        elif kind == "bad message":
            headers["X-Commit-Message"] = f"m{seq}\x07bell"
        if authentication == "session":
            headers["Cookie"] = f"sessionid={user['session']}"
        elif authentication == "bearer":
            token = "wrong" if kind == "bad token" else user["token"]
            headers["Authorization"] = f"Bearer {token}"
        if kind == "bad token" and authentication != "bearer":
            path, method = "/ninja/bearer/read", "GET"
            headers["Authorization"] = "Bearer wrong"
            body = b""
        written = kind in ("write", "fail")
        calls.append(
            Call(
                seq,
                kind,
                method,
                path,
                headers,
                body,
                actor=actor if kind in ("write", "fail", "probe") else None,
                description=description,
                name=f"{name}!" if written else None,
            )
        )
    return calls


def _check_answer(call: Call) -> None:
    expected = KINDS[call.kind][1]
    if call.status != expected:
        call.problems.append(f"status {call.status}, expected {expected}")
        return
    if call.kind == "write":
        answer = json.loads(call.answer)
        depth = 2 if call.path.startswith("/decorated") else 1
        if answer["description"] != call.description or answer["depth"] != depth:
            call.problems.append(f"context {answer}")
    elif call.kind == "probe":
        answer = json.loads(call.answer)
        if (answer["depth"], answer["actor"], answer["description"]) != (
            1,
            call.actor,
            call.description,
        ):
            call.problems.append(f"probe {answer}")


@dataclass
class Load:
    server: reliability.Server
    calls: list[Call]
    done: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: Requests sent again: the server had closed an idle connection first.
    resent: int = 0
    rss_warm: dict[int, int] = field(default_factory=dict)

    def finished_one(self) -> None:
        with self.lock:
            self.done += 1
            if self.done == WARM_UP:
                self.rss_warm = self.server.rss()

    def client(self, calls: list[Call]) -> None:
        connection: HTTPConnection | None = None
        for call in calls:
            for attempt in range(2):
                reused = connection is not None
                if connection is None:
                    connection = HTTPConnection(
                        "127.0.0.1", self.server.port, timeout=120
                    )
                try:
                    connection.putrequest(
                        call.method, call.path, skip_accept_encoding=True
                    )
                    for name, value in call.headers.items():
                        connection.putheader(name, value)
                    connection.putheader("Content-Length", str(len(call.body)))
                    connection.endheaders(call.body)
                    response = connection.getresponse()
                    call.status, call.answer = response.status, response.read()
                    if response.will_close:
                        connection.close()
                        connection = None
                    break
                except (OSError, HTTPException) as error:
                    if connection is not None:
                        connection.close()
                    connection = None
                    # Only a request the server never read may be sent again:
                    # a keep-alive connection it closed while idle.
                    if (
                        reused
                        and not attempt
                        and isinstance(error, (ConnectionResetError, BrokenPipeError))
                    ):
                        with self.lock:
                            self.resent += 1
                        continue
                    call.problems.append(repr(error))
                    break
            if not call.problems:
                _check_answer(call)
            self.finished_one()
        if connection is not None:
            connection.close()

    def run(self) -> float:
        started = time.monotonic()
        shares = [self.calls[index::CLIENTS] for index in range(CLIENTS)]
        threads = [
            threading.Thread(target=self.client, args=(share,)) for share in shares
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.monotonic() - started


def check_history(env: dict[str, str], calls: list[Call]) -> dict[str, int]:
    rows = reliability.report(env)
    expected = {c.name: c for c in calls if c.name is not None}
    misattributed = [
        row
        for row in rows
        if row["name"] not in expected
        or row["actor"] != expected[row["name"]].actor
        or row["description"] != expected[row["name"]].description
    ]
    assert not misattributed, misattributed[:10]
    objects = [row for row in rows if row["kind"] == "ObjectDelta"]
    per_account = Counter(row["name"] for row in objects)
    assert set(per_account) == set(expected)
    assert set(per_account.values()) == {2}  # created, then renamed
    revisions: dict[str, set[int]] = {}
    for row in objects:
        revisions.setdefault(row["name"], set()).add(row["revision"])
    assert all(len(ids) == 1 for ids in revisions.values())
    assert len({min(ids) for ids in revisions.values()}) == len(expected)
    found = reliability.audit(env)
    for key in (
        "orphan_object_deltas",
        "untracked_accounts",
        "object_deltas_without_attributes",
        "empty_revisions",
    ):
        assert found[key] == [], (key, found[key][:10])
    return {"deltas": len(rows), "misattributed": len(misattributed)}


@pytest.fixture
def pg_env(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """A database of this run's own (other runs may share the server)."""
    name = f"revy_soak_{request.node.callspec.id}_{os.getpid()}"
    reliability.create_pg_database(name)
    try:
        yield reliability.server_env(tmp_path / "unused.sqlite3", pg_name=name)
    finally:
        reliability.drop_pg_database(name)


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
def test_soak(kind, pg_env, tmp_path, capsys):
    started = time.monotonic()
    world = reliability.setup(pg_env, USERS, ORGANIZATIONS)
    calls = plan(world, REQUESTS, seed=8)
    workers = ASGI_WORKERS if kind == "asgi" else 1
    env = dict(pg_env)
    if kind == "wsgi":
        # Each keep-alive connection has a thread that keeps its database
        # connection, as a WSGI deployment with CONN_MAX_AGE does. Under ASGI
        # every request runs in a thread of its own: nothing to keep.
        env["REVY_SOAK_PG_CONN_MAX_AGE"] = "600"
    with reliability.running(
        kind, env, tmp_path / "server.log", workers=workers, lifetime=900
    ) as server:
        set_up = time.monotonic() - started
        load = Load(server, calls)
        cpu = server.cpu(), time.process_time()
        elapsed = load.run()
        server_cpu, client_cpu = server.cpu() - cpu[0], time.process_time() - cpu[1]
        time.sleep(1)
        rss_end = server.rss()
        log = server.log_text()
    statuses = Counter(call.status for call in calls)
    kinds = Counter(call.kind for call in calls)
    problems = [(c.seq, c.kind, c.path, c.problems, c.answer[:200]) for c in calls]
    problems = [p for p in problems if p[3]]
    figures = {
        "server": f"{kind} ({workers} worker{'s' if workers > 1 else ''})",
        "requests": len(calls),
        "seconds": round(elapsed, 1),
        "per second": round(len(calls) / elapsed),
        "server CPU ms per request": round(1000 * server_cpu / len(calls), 1),
        "client CPU ms per request": round(1000 * client_cpu / len(calls), 1),
        "statuses": dict(sorted(statuses.items())),
        "provoked 5xx": kinds["fail"],
        "sent again": load.resent,
        "rss after warm-up KiB": sum(load.rss_warm.values()),
        "rss after run KiB": sum(rss_end.values()),
    }
    with capsys.disabled():
        print(f"\n  soak: {figures}", flush=True)
    assert not problems, (len(problems), problems[:10])
    unprovoked = (
        sum(n for status, n in statuses.items() if status >= 500) - kinds["fail"]
    )
    assert unprovoked == 0
    assert "revy-depth" not in log, log[-3000:]
    assert "did not open" not in log
    assert log.count("Traceback") == kinds["fail"], log[-3000:]
    started = time.monotonic()
    checked = check_history(pg_env, calls)
    with capsys.disabled():
        print(
            f"  soak history: {checked}, set up in {set_up:.1f} s,"
            f" checked in {time.monotonic() - started:.1f} s",
            flush=True,
        )
    assert load.rss_warm
    assert set(load.rss_warm) == set(rss_end)
    assert sum(rss_end.values()) <= 1.10 * sum(load.rss_warm.values()), figures


# Time travel at scale ------------------------------------------------------


@settings(
    max_examples=500,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
@pytest.mark.django_db
def test_snapshot_at_every_object_delta_equals_the_recorded_state_500(data):
    """tests/test_property.py's property, 500 examples (PostgreSQL in make soak)."""
    with transaction.atomic():
        run_property_example(data)
        transaction.set_rollback(True)
