"""``make run`` itself: on a fresh database it migrates, loads the demo data,
prints how to try it and serves under uvicorn; the headers work end to end."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 90


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _request(
    url: str, data: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    body = None if data is None else json.dumps(data).encode()
    request = urllib.request.Request(url, data=body, headers=headers or {})
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class Server:
    def __init__(self, process: subprocess.Popen[str], url: str, log: Path) -> None:
        self.process = process
        self.url = url
        self.log = log

    def output(self) -> str:
        return self.log.read_text()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "DJANGO_SETTINGS_MODULE"}
    }
    env["REVY_SAMPLE_DB"] = str(tmp_path / "db.sqlite3")
    venv = os.path.relpath(sys.prefix, ROOT)
    log = tmp_path / "make-run.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                "make",
                "--no-print-directory",
                "run",
                f"VENV={venv}",
                f"SAMPLE_PORT={port}",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            text=True,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        yield server
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _wait_until_up(server: Server) -> float:
    started = time.monotonic()
    while time.monotonic() - started < STARTUP_SECONDS:
        if server.process.poll() is not None:
            pytest.fail(f"make run exited early:\n{server.output()}")
        try:
            status, _ = _request(f"{server.url}/api/docs")
        except OSError:
            status = 0
        if status == 200:
            return time.monotonic() - started
        time.sleep(0.25)
    pytest.fail(f"make run did not answer in {STARTUP_SECONDS}s:\n{server.output()}")


def test_make_run(server: Server) -> None:
    seconds = _wait_until_up(server)
    print(f"make run answered after {seconds:.1f}s on a fresh database")
    output = server.output()
    assert "Demo data loaded" in output
    assert "admin / admin" in output
    assert output.count("curl -s -X POST") == 3
    assert "X-Perform-As-Organization: acme" in output

    status, body = _request(f"{server.url}/api/docs")
    assert status == 200
    assert b"swagger" in body.lower()

    token = {"Authorization": "Bearer alice-token"}
    status, body = _request(
        f"{server.url}/api/transactions",
        {
            "account": 1,
            "description": "Hosting",
            "amount": "-120.00",
            "currency": "USD",
            "exchange_rate": "0.92",
            "local_amount": "-120.00",
        },
        {
            **token,
            "X-Commit-Message": "Pay the US hosting invoice",
            "X-Perform-As-Organization": "acme",
        },
    )
    assert status == 201, body
    created = json.loads(body)
    assert created["local_amount"] == "-110.40"

    status, body = _request(
        f"{server.url}/api/transactions/{created['id']}/history", headers=token
    )
    assert status == 200
    (entry,) = json.loads(body)["entries"]
    assert entry["message"] == "Pay the US hosting invoice"
    assert entry["actor"]["type"] == "organization"
    local = next(c for c in entry["changes"] if c["field"] == "local_amount")
    assert local["actor"]["type"] == "system"

    status, body = _request(
        f"{server.url}/api/transactions",
        {"account": 1, "description": "Sneaky", "amount": "1.00"},
        {
            "Authorization": "Bearer bob-token",
            "X-Perform-As-Organization": "globex",
            "Accept": "application/json",
        },
    )
    assert status == 403
    assert "globex" in json.loads(body)["detail"]

    _concurrent_writes_are_attributed_right(server.url)


def _concurrent_writes_are_attributed_right(url: str) -> None:
    """30 requests at once from three clients, two acting for organizations:
    each change is recorded with its own request's actor and message."""
    acting = {"alice": "acme", "bob": None, "carol": "globex"}
    names = {"alice": "Acme Corp", "bob": "Bob Baker", "carol": "Globex"}

    def book(i: int) -> tuple[str, int, int, Any]:
        who = ["alice", "bob", "carol"][i % 3]
        headers = {
            "Authorization": f"Bearer {who}-token",
            "X-Commit-Message": f"Booking {i}",
        }
        if acting[who]:
            headers["X-Perform-As-Organization"] = str(acting[who])
        account = 3 if who == "carol" else 1
        status, body = _request(
            f"{url}/api/transactions",
            {
                "account": account,
                "description": f"Booking {i}",
                "amount": "2.00",
                "currency": "USD",
                "exchange_rate": "0.5",
            },
            headers,
        )
        return who, i, status, body

    with ThreadPoolExecutor(max_workers=15) as pool:
        results = list(pool.map(book, range(30)))
    assert {status for _, _, status, _ in results} == {201}
    for who, i, _, body in results:
        reader = "carol" if who == "carol" else "alice"
        status, history = _request(
            f"{url}/api/transactions/{json.loads(body)['id']}/history",
            headers={"Authorization": f"Bearer {reader}-token"},
        )
        assert status == 200
        (entry,) = json.loads(history)["entries"]
        assert entry["message"] == f"Booking {i}"
        assert entry["actor"]["name"] == names[who]
