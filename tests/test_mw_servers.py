"""RevyMiddleware and the wrappers under real servers, with concurrent load.

Each server is a subprocess (uvicorn for ASGI, Django's ThreadedWSGIServer
for WSGI) on a file-based SQLite database seeded with 25 users, 5
organizations, sessions and API tokens. Requests come from a pool of client
threads over real sockets; afterwards every delta of every account is
checked against who sent the request that created it.

Servers are started under ``timeout`` so they stop by themselves, and every
client call has a timeout.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.client import HTTPConnection
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVE = [sys.executable, "-m", "tests.mwapp.serve"]
#: A server never outlives this many seconds, whatever happens to the tests.
SERVER_LIFETIME = 150
USERS = 25
ORGANIZATIONS = 5
MESSAGE = "Düzeltme ✓"

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def _env(db: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.mwapp.server_settings",
        REVY_MW_SERVER_DB=str(db),
        PYTHONPATH=str(ROOT),
    )
    return env


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    db = tmp_path_factory.mktemp("servers") / "seed.sqlite3"
    done = subprocess.run(
        [*SERVE, "setup", str(USERS), str(ORGANIZATIONS)],
        env=_env(db),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return db, json.loads(done.stdout)


@pytest.fixture
def database(seeded: tuple[Path, dict[str, Any]], tmp_path: Path) -> Path:
    db = tmp_path / "server.sqlite3"
    shutil.copy(seeded[0], db)
    return db


@pytest.fixture
def world(seeded: tuple[Path, dict[str, Any]]) -> dict[str, Any]:
    return seeded[1]


#: ``timeout`` ends the server even if this process is killed.
_LIFETIME = ["timeout", str(SERVER_LIFETIME)] if shutil.which("timeout") else []


def _reset_flag_supported() -> bool:
    done = subprocess.run(
        [sys.executable, "-m", "uvicorn", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return "--reset-contextvars" in done.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    port: int
    log: Path
    db: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def report(self) -> list[dict[str, Any]]:
        done = subprocess.run(
            [*SERVE, "report"],
            env=_env(self.db),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        rows: list[dict[str, Any]] = json.loads(done.stdout)
        return rows


@contextmanager
def running(kind: str, db: Path, *args: str) -> Iterator[Server]:
    port = _free_port()
    if kind == "asgi":
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "tests.mwapp.serve:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
            "--backlog",
            "2048",
            *args,
        ]
    else:
        command = [*SERVE, "wsgi", str(port)]
    log = db.with_suffix(".log")
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*_LIFETIME, *command],
            env=_env(db),
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                assert process.poll() is None, log.read_text()
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "server did not start"
                    time.sleep(0.05)
            yield Server(port, log, db)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)


def send(
    port: int,
    method: str,
    path: str,
    headers: dict[str, str | bytes],
    body: bytes = b"",
    connection: HTTPConnection | None = None,
) -> tuple[int, bytes]:
    own = connection is None
    conn = connection or HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(body)))
        if own:
            conn.putheader("Connection", "close")
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        if own:
            conn.close()


# The load --------------------------------------------------------------------

#: (path, authentication)
ROUTES = [
    ("/sync/write", "session"),
    ("/async/write", "session"),
    ("/decorated/write", "session"),
    ("/ninja/bearer/accounts", "bearer"),
]


@dataclass
class Call:
    seq: int
    path: str
    headers: dict[str, str | bytes]
    body: bytes
    actor: str | None
    description: str
    allowed: bool
    status: int = 0
    answer: bytes = b""
    errors: list[str] = field(default_factory=list)


def encoded(message: str, seq: int) -> str | bytes:
    """Raw UTF-8 for even requests, RFC 8187 for odd ones."""
    if seq % 2 == 0:
        return message.encode()
    return "UTF-8''" + quote(message, safe="")


def plan(
    world: dict[str, Any], count: int, routes: list[tuple[str, str]]
) -> list[Call]:
    """``count`` requests from the users in turn; every third user acts for
    its organization, and every 25th request claims someone else's."""
    calls = []
    users = world["users"]
    organizations = world["organizations"]
    for seq in range(count):
        index = seq % len(users)
        user = users[index]
        path, authentication = routes[seq % len(routes)]
        name = f"r{seq}"
        description = f"m{seq} {MESSAGE}"
        headers: dict[str, str | bytes] = {
            "X-Commit-Message": encoded(description, seq),
            "Accept": "application/json",
        }
        if authentication == "session":
            headers["Cookie"] = f"sessionid={user['session']}"
        else:
            headers["Authorization"] = f"Bearer {user['token']}"
        actor = f"auth.user:{user['id']}"
        allowed = True
        if seq % 25 == 24:
            other = organizations[
                (organizations.index(user["organization"]) + 1) % len(organizations)
            ]
            headers["X-Perform-As-Organization"] = str(other)
            allowed = False
        elif index % 3 == 0:
            headers["X-Perform-As-Organization"] = str(user["organization"])
            actor = f"testapp.organization:{user['organization']}"
        body = b""
        if path.startswith("/ninja/"):
            headers["Content-Type"] = "application/json"
            body = json.dumps({"name": name}).encode()
        else:
            path = f"{path}?name={name}"
        calls.append(Call(seq, path, headers, body, actor, description, allowed))
    return calls


def fire(port: int, calls: list[Call], concurrency: int) -> float:
    def one(call: Call) -> None:
        try:
            call.status, call.answer = send(
                port, "POST", call.path, call.headers, call.body
            )
        except OSError as error:
            call.errors.append(repr(error))

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, calls, timeout=120))
    return time.monotonic() - started


def check(server: Server, calls: list[Call]) -> dict[str, Any]:
    """Responses and history against the plan; returns the figures."""
    statuses = Counter(call.status for call in calls)
    failures = [c for c in calls if c.errors or c.status >= 500]
    assert not failures, [(c.seq, c.status, c.errors, c.answer[:300]) for c in failures]
    for call in calls:
        if not call.allowed:
            assert call.status == 403, (call.seq, call.answer)
            continue
        assert call.status == 200, (call.seq, call.path, call.answer)
        answer = json.loads(call.answer)
        assert answer["description"] == call.description
        assert answer["depth"] == (2 if call.path.startswith("/decorated") else 1)
    rows = server.report()
    expected = {f"r{c.seq}!": c for c in calls if c.allowed}
    refused = {f"r{c.seq}!" for c in calls if not c.allowed}
    misattributed = [
        row
        for row in rows
        if row["name"] not in expected
        or row["actor"] != expected[row["name"]].actor
        or row["description"] != expected[row["name"]].description
    ]
    assert not misattributed, misattributed[:10]
    assert not refused & {row["name"] for row in rows}
    objects = [row for row in rows if row["kind"] == "ObjectDelta"]
    per_account = Counter(row["name"] for row in objects)
    assert set(per_account) == set(expected)
    assert set(per_account.values()) == {2}  # created, then renamed
    revisions = {row["name"]: row["revision"] for row in objects}
    assert len(set(revisions.values())) == len(expected)  # one per request
    assert server.log_text().count("Traceback") == 0, server.log_text()[-3000:]
    assert "revy-depth" not in server.log_text()
    return {
        "requests": len(calls),
        "statuses": dict(statuses),
        "deltas checked": len(rows),
        "misattributed": len(misattributed),
    }


def probes(server: Server, world: dict[str, Any], count: int = 20) -> None:
    """Sequential requests that must each start clean."""
    for seq in range(count):
        user = world["users"][seq % len(world["users"])]
        path = "/async/probe" if seq % 2 else "/sync/probe"
        status, answer = send(
            server.port,
            "GET",
            path,
            {
                "Cookie": f"sessionid={user['session']}",
                "X-Commit-Message": f"probe {seq}",
            },
        )
        assert status == 200, answer
        data = json.loads(answer)
        assert data == {
            **data,
            "depth": 1,
            "description": f"probe {seq}",
            "actor": f"auth.user:{user['id']}",
            "enabled": True,
        }


# Tests ---------------------------------------------------------------------------


def test_uvicorn_500_requests_from_25_users(database, world, capsys):
    calls = plan(world, 500, ROUTES)
    with running("asgi", database) as server:
        elapsed = fire(server.port, calls, concurrency=100)
        probes(server, world)
        figures = check(server, calls)
    assert "did not open" not in server.log_text()
    with capsys.disabled():
        print(f"\n  uvicorn: {figures}, {elapsed:.1f} s")


def test_uvicorn_200_concurrent_with_reset_contextvars(database, world, capsys):
    if not _reset_flag_supported():
        pytest.skip("this uvicorn has no --reset-contextvars")
    routes = ROUTES[:3]
    calls = plan(world, 200, routes)
    with running("asgi", database, "--reset-contextvars") as server:
        elapsed = fire(server.port, calls, concurrency=200)
        probes(server, world)
        figures = check(server, calls)
    with capsys.disabled():
        print(f"\n  uvicorn --reset-contextvars: {figures}, {elapsed:.1f} s")


def test_threaded_wsgi_500_requests_from_25_users(database, world, capsys):
    calls = plan(world, 500, ROUTES)
    with running("wsgi", database) as server:
        elapsed = fire(server.port, calls, concurrency=50)
        probes(server, world)
        figures = check(server, calls)
    assert "did not open" not in server.log_text()
    with capsys.disabled():
        print(f"\n  threaded WSGI: {figures}, {elapsed:.1f} s")


def test_two_large_posts_on_one_keep_alive_connection(database, world):
    """ISOLATION.md test 16: the second request still starts clean."""
    user = world["users"][1]
    body = b"x" * (100 * 1024)
    with running("asgi", database) as server:
        for path in ("/async/probe", "/plain/keepalive"):
            connection = HTTPConnection("127.0.0.1", server.port, timeout=60)
            answers = []
            for seq in range(2):
                headers: dict[str, str | bytes] = {
                    "Cookie": f"sessionid={user['session']}",
                    "X-Api-Token": user["token"],
                    "X-Commit-Message": f"large {seq}",
                    "Content-Type": "application/octet-stream",
                }
                status, answer = send(
                    server.port, "POST", path, headers, body, connection=connection
                )
                assert status == 200, answer
                answers.append(json.loads(answer))
            connection.close()
            assert [a["depth"] for a in answers] == [1, 1], path
            if path == "/async/probe":
                assert [a["description"] for a in answers] == ["large 0", "large 1"]
        rows = server.report()
    assert "did not open" not in server.log_text()
    assert "revy-depth" not in server.log_text()
    plain = [r for r in rows if r["name"] == "/plain/keepalive"]
    assert [r["description"] for r in plain if r["kind"] == "ObjectDelta"] == [
        "large 0",
        "large 1",
    ]
    assert {r["actor"] for r in plain} == {f"auth.user:{user['id']}"}


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
def test_wrappers_and_non_ascii_messages_under_real_servers(database, world, kind):
    user = world["users"][2]
    with running(kind, database) as server:
        ok = send(
            server.port,
            "POST",
            "/plain/wrapped",
            {"X-Api-Token": user["token"], "X-Commit-Message": MESSAGE.encode()},
        )
        refused = send(server.port, "POST", "/plain/refused", {"X-Api-Token": "nope"})
        bad = send(
            server.port, "POST", "/plain/bad", {"X-Commit-Message": b"D\xfczeltme"}
        )
        django_ok = send(
            server.port,
            "POST",
            "/sync/write?name=django",
            {"X-Commit-Message": "UTF-8''" + quote(MESSAGE, safe="")},
        )
        control = send(
            server.port,
            "POST",
            "/sync/write?name=control",
            {"X-Commit-Message": "a\x07"},
        )
        rows = server.report()
    assert ok[0] == 200
    assert refused[0] == 403
    assert b"unknown token" in refused[1]
    assert bad[0] == 400
    assert django_ok[0] == 200
    assert json.loads(django_ok[1])["description"] == MESSAGE
    assert control[0] == 400
    by_name = {(r["name"], r["kind"]): r for r in rows}
    wrapped = [r for r in rows if r["name"].startswith("/plain/wrapped")]
    assert wrapped
    assert {r["actor"] for r in wrapped} == {f"auth.user:{user['id']}"}
    assert {r["description"] for r in wrapped} == {MESSAGE}
    assert by_name[("django!", "ObjectDelta")]["description"] == MESSAGE
    assert not [
        r for r in rows if r["name"].startswith(("/plain/refused", "/plain/bad"))
    ]
    assert not [r for r in rows if r["name"].startswith("control")]


def test_websocket_per_connection_under_uvicorn(database, world):
    wsproto = pytest.importorskip("wsproto")
    from wsproto.events import (
        AcceptConnection,
        CloseConnection,
        RejectConnection,
        Request,
        TextMessage,
    )

    def session(port: int, token: str, texts: list[str]) -> list[Any]:
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        sock.sendall(
            ws.send(
                Request(
                    host="127.0.0.1",
                    target="/plain/ws",
                    extra_headers=[
                        (b"x-api-token", token.encode()),
                        (b"x-commit-message", f"ws {token}".encode()),
                    ],
                )
            )
        )
        seen: list[Any] = []
        pending = list(texts)
        replies = 0
        while True:
            data = sock.recv(65536)
            ws.receive_data(data or None)
            for event in ws.events():
                seen.append(event)
                if isinstance(event, AcceptConnection) and pending:
                    sock.sendall(ws.send(TextMessage(data=pending.pop(0))))
                elif isinstance(event, TextMessage):
                    replies += 1
                    if pending:
                        sock.sendall(ws.send(TextMessage(data=pending.pop(0))))
                    else:
                        sock.sendall(ws.send(CloseConnection(code=1000)))
                elif isinstance(event, (RejectConnection, CloseConnection)):
                    sock.close()
                    return seen
            if not data:
                sock.close()
                return seen

    alice, bob = world["users"][3], world["users"][4]
    with running("asgi", database) as server:
        session(server.port, alice["token"], ["a1", "a2"])
        session(server.port, bob["token"], ["b1", "b2"])
        refused = session(server.port, "nope", ["x"])
        rows = server.report()
    assert any(isinstance(e, (RejectConnection, CloseConnection)) for e in refused)
    objects = [r for r in rows if r["kind"] == "ObjectDelta"]
    by_name = {r["name"]: r for r in objects}
    assert set(by_name) == {"a1", "a2", "b1", "b2"}
    assert by_name["a1"]["revision"] == by_name["a2"]["revision"]
    assert by_name["b1"]["revision"] == by_name["b2"]["revision"]
    assert by_name["a1"]["revision"] != by_name["b1"]["revision"]
    assert {by_name[n]["actor"] for n in ("a1", "a2")} == {f"auth.user:{alice['id']}"}
    assert {by_name[n]["actor"] for n in ("b1", "b2")} == {f"auth.user:{bob['id']}"}
    assert by_name["a1"]["description"] == f"ws {alice['token']}"
