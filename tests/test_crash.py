"""Crashes under real servers: a worker killed with SIGKILL, a view that raises.

The servers (uvicorn, Django's threaded WSGI server) run as subprocesses on
a file-based SQLite database; afterwards ``tests.reliability_server audit``
checks that history and the data agree: no orphan delta, no change without
its history, no empty revision.
"""

from __future__ import annotations

import json
import random
import threading
import time
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


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    db = tmp_path_factory.mktemp("crash") / "seed.sqlite3"
    return db, reliability.setup(reliability.server_env(db), 4, 2)


@pytest.fixture
def env(seeded: tuple[Path, dict[str, Any]], tmp_path: Path) -> dict[str, str]:
    db = tmp_path / "server.sqlite3"
    db.write_bytes(seeded[0].read_bytes())
    return reliability.server_env(db)


@pytest.fixture
def users(seeded: tuple[Path, dict[str, Any]]) -> list[dict[str, Any]]:
    people: list[dict[str, Any]] = seeded[1]["users"]
    return people


def assert_consistent(env: dict[str, str]) -> dict[str, Any]:
    found = reliability.audit(env)
    assert found["orphan_object_deltas"] == []
    assert found["untracked_accounts"] == []
    assert found["object_deltas_without_attributes"] == []
    assert found["empty_revisions"] == []
    return found


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
        killed = server.kill_workers()
        client.join(timeout=30)
    assert killed
    assert failures, "the request finished although its worker was killed"
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
        time.sleep(random.uniform(0.5, 1.5))
        server.kill_workers()
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert statuses, "no request was served before the kill"
    assert set(statuses) == {200}
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
