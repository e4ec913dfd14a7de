"""Crashes under real servers: a worker killed with SIGKILL, a view that raises.

The servers (uvicorn, Django's threaded WSGI server) run as subprocesses on
a database of each test's own: a file-based SQLite database, and in ``make
soak`` (tests marked ``soak``) a PostgreSQL database at 127.0.0.1:5432 too,
copied from one seeded for the module. Afterwards ``tests.reliability_server
audit`` reads that database and checks that history and the data agree: no
orphan delta, no change without its history, no empty revision. On
PostgreSQL, the killed worker's sessions must also be gone, its transaction
rolled back rather than left open.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import pytest

from tests import reliability
from tests.test_mw_servers import send

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

KINDS = ["asgi", "wsgi"]


def kinds(fast: str) -> list[Any]:
    """Both servers: ``fast`` in ``make test``, the other in ``make soak``."""
    return [
        kind if kind == fast else pytest.param(kind, marks=pytest.mark.soak)
        for kind in KINDS
    ]


@dataclass
class Seed:
    database: str
    #: The SQLite file, or the PostgreSQL database, to copy for each test.
    source: Path | str
    world: dict[str, Any]


_copies = itertools.count()


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.soak)],
)
def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Seed]:
    directory = tmp_path_factory.mktemp("crash")
    if request.param == "sqlite":
        db = directory / "seed.sqlite3"
        yield Seed("sqlite", db, reliability.setup(reliability.server_env(db), 4, 2))
        return
    name = f"revy_crash_seed_{os.getpid()}"
    reliability.create_pg_database(name)
    try:
        env = reliability.server_env(directory / "unused.sqlite3", pg_name=name)
        yield Seed("postgres", name, reliability.setup(env, 4, 2))
    finally:
        reliability.drop_pg_database(name)


@pytest.fixture
def env(seeded: Seed, tmp_path: Path) -> Iterator[dict[str, str]]:
    if isinstance(seeded.source, Path):
        db = tmp_path / "server.sqlite3"
        db.write_bytes(seeded.source.read_bytes())
        yield reliability.server_env(db)
        return
    name = f"revy_crash_{os.getpid()}_{next(_copies)}"
    reliability.create_pg_database(name, template=seeded.source)
    try:
        yield reliability.server_env(tmp_path / "unused.sqlite3", pg_name=name)
    finally:
        reliability.drop_pg_database(name)


@pytest.fixture
def users(seeded: Seed) -> list[dict[str, Any]]:
    people: list[dict[str, Any]] = seeded.world["users"]
    return people


def assert_consistent(env: dict[str, str]) -> dict[str, Any]:
    found = reliability.audit(env)
    assert found["vendor"] == ("postgresql" if _pg_name(env) else "sqlite")
    assert found["orphan_object_deltas"] == []
    assert found["untracked_accounts"] == []
    assert found["object_deltas_without_attributes"] == []
    assert found["empty_revisions"] == []
    return found


def _pg_name(env: dict[str, str]) -> str | None:
    return env.get("REVY_SOAK_PG_NAME")


def assert_killed_sessions_are_gone(env: dict[str, str]) -> None:
    """On PostgreSQL: no session of the killed worker is left, in particular
    none idle in its transaction (holding locks, never committed)."""
    name = _pg_name(env)
    if name is None:
        return
    deadline = time.monotonic() + 30
    while sessions := reliability.pg_sessions(name):
        assert time.monotonic() < deadline, sessions
        time.sleep(0.1)


def _cookie(user: dict[str, Any]) -> dict[str, str | bytes]:
    return {"Cookie": f"sessionid={user['session']}", "Accept": "application/json"}


@pytest.mark.parametrize("kind", kinds("asgi"))
def test_sigkill_inside_a_writing_transaction_leaves_nothing(
    kind, env, users, tmp_path
):
    marker = tmp_path / "marker"
    failures: list[BaseException] = []

    def held(port: int) -> None:
        try:
            send(
                port,
                "GET",
                f"/reliability/hold?name=held&marker={marker}",
                {**_cookie(users[0]), "X-Commit-Message": "held"},
            )
        except Exception as error:  # the worker dies under the request
            failures.append(error)

    with reliability.running(kind, env, tmp_path / "server.log") as server:
        client = threading.Thread(target=held, args=(server.port,))
        client.start()
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert time.monotonic() < deadline, server.log_text()
            time.sleep(0.01)
        name = _pg_name(env)
        if name is not None:  # the writes are done, their transaction open
            assert "idle in transaction" in reliability.pg_sessions(name)
        killed = server.kill_workers()
        client.join(timeout=30)
    assert killed
    assert failures, "the request finished although its worker was killed"
    assert_killed_sessions_are_gone(env)
    found = assert_consistent(env)
    assert found["accounts"] == 0
    assert found["object_deltas"] == 0
    # The database is usable afterwards: the same write goes through whole.
    with reliability.running(kind, env, tmp_path / "again.log") as server:
        status, answer = send(
            server.port, "POST", "/sync/write?name=after", _cookie(users[0])
        )
    assert status == 200, answer
    found = assert_consistent(env)
    assert found["accounts"] == 1
    assert found["object_deltas"] == 2


@pytest.mark.parametrize("kind", kinds("wsgi"))
def test_sigkill_at_a_random_moment_of_concurrent_writes(kind, env, users, tmp_path):
    """Eight clients write as fast as they can; the worker is killed at a
    random moment. Whatever was committed has its history, nothing else."""
    stop = threading.Event()
    statuses: list[int] = []

    def client(index: int, port: int) -> None:
        user = users[index % len(users)]
        path = "/sync/write" if index % 2 else "/async/write"
        seq = 0
        while not stop.is_set():
            seq += 1
            try:
                status, _ = send(
                    port,
                    "POST",
                    f"{path}?name=c{index}-{seq}",
                    {**_cookie(user), "X-Commit-Message": f"c{index}-{seq}"},
                )
            except OSError:
                return
            statuses.append(status)

    with reliability.running(kind, env, tmp_path / "server.log") as server:
        threads = [
            threading.Thread(target=client, args=(index, server.port))
            for index in range(8)
        ]
        for thread in threads:
            thread.start()
        # Once writes go through (however slow the machine), a random moment.
        deadline = time.monotonic() + 60
        while not statuses:
            assert time.monotonic() < deadline, server.log_text()
            time.sleep(0.01)
        time.sleep(random.uniform(0, 1))
        server.kill_workers()
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert statuses, "no request was served before the kill"
    assert set(statuses) == {200}
    assert_killed_sessions_are_gone(env)
    found = assert_consistent(env)
    assert found["accounts"] >= len(statuses)


@pytest.mark.parametrize("kind", kinds("asgi"))
def test_a_view_that_raises_after_writing_then_the_next_request_starts_clean(
    kind, env, users, tmp_path
):
    """No ATOMIC_REQUESTS: the writes before the exception are committed with
    their history; the next requests on the same worker (and connection)
    start on an empty context stack, with their own actor."""
    alice, bob = users[0], users[1]
    with reliability.running(kind, env, tmp_path / "server.log") as server:
        connection = HTTPConnection("127.0.0.1", server.port, timeout=60)
        status, _ = send(
            server.port,
            "POST",
            "/sync/fail?name=failed",
            {**_cookie(alice), "X-Commit-Message": "then it fails"},
            connection=connection,
        )
        assert status == 500
        answers = []
        for user, path in [(bob, "/sync/probe"), (alice, "/async/probe")] * 3:
            if connection.sock is None:  # the server closed it after the 500
                connection = HTTPConnection("127.0.0.1", server.port, timeout=60)
            status, answer = send(
                server.port,
                "GET",
                path,
                {**_cookie(user), "X-Commit-Message": f"probe {user['id']}"},
                connection=connection,
            )
            assert status == 200, answer
            answers.append((user, json.loads(answer)))
        connection.close()
        rows = reliability.report(env)
        log = server.log_text()
    for user, answer in answers:
        assert answer["depth"] == 1
        assert answer["actor"] == f"auth.user:{user['id']}"
        assert answer["description"] == f"probe {user['id']}"
    assert "revy-depth" not in log
    assert {row["name"] for row in rows} == {"failed!"}
    assert {row["actor"] for row in rows} == {f"auth.user:{alice['id']}"}
    assert {row["description"] for row in rows} == {"then it fails"}
    assert_consistent(env)
