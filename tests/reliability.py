"""Real servers for the crash and soak tests: start, measure, audit.

The servers are those of :mod:`tests.mwapp.serve` (uvicorn for ASGI,
Django's ThreadedWSGIServer for WSGI) with the settings of
:mod:`tests.reliability_settings`: a file-based SQLite database, or the
PostgreSQL database named by ``pg_name``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SERVE = [sys.executable, "-m", "tests.mwapp.serve"]
AUDIT = [sys.executable, "-m", "tests.reliability_server", "audit"]


def server_env(db: Path, pg_name: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.reliability_settings",
        REVY_MW_SERVER_DB=str(db),
        PYTHONPATH=str(ROOT),
    )
    env.pop("REVY_SOAK_PG_NAME", None)
    if pg_name is not None:
        env["REVY_SOAK_PG_NAME"] = pg_name
    return env


def _run_json(command: list[str], env: dict[str, str], timeout: int = 300) -> Any:
    done = subprocess.run(
        command,
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def setup(env: dict[str, str], users: int, organizations: int) -> dict[str, Any]:
    """Migrate and seed (users, sessions, tokens, organizations, memberships)."""
    seeded: dict[str, Any] = _run_json(
        [*SERVE, "setup", str(users), str(organizations)], env
    )
    return seeded


def audit(env: dict[str, str]) -> dict[str, Any]:
    """The findings of ``tests.reliability_server audit``."""
    found: dict[str, Any] = _run_json(AUDIT, env)
    return found


def report(env: dict[str, str]) -> list[dict[str, Any]]:
    """Every delta of every account, with its actor and revision message."""
    rows: list[dict[str, Any]] = _run_json([*SERVE, "report"], env)
    return rows


def create_pg_database(name: str, template: str | None = None) -> None:
    """An empty PostgreSQL database: created, or emptied if it exists.

    Emptying drops the ``public`` schema instead of the database, because
    DROP DATABASE waits for a checkpoint of the whole server. With
    ``template``, a new database that is a copy of that one (nobody may be
    connected to it).
    """
    import psycopg

    with psycopg.connect(
        host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True
    ) as connection:
        if template is not None:
            connection.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            return
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if exists is None:
            connection.execute(f'CREATE DATABASE "{name}"')
            return
    with psycopg.connect(
        host="127.0.0.1", user="postgres", dbname=name, autocommit=True
    ) as connection:
        connection.execute("DROP SCHEMA public CASCADE")
        connection.execute("CREATE SCHEMA public")


def pg_sessions(name: str) -> list[str]:
    """The state of every session connected to the PostgreSQL database
    ``name`` (``idle``, ``active``, ``idle in transaction``...)."""
    import psycopg

    with psycopg.connect(
        host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True
    ) as connection:
        rows = connection.execute(
            "SELECT coalesce(state, '') FROM pg_stat_activity WHERE datname = %s",
            [name],
        ).fetchall()
    return [str(row[0]) for row in rows]


def drop_pg_database(name: str) -> None:
    import psycopg

    with psycopg.connect(
        host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True
    ) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses.
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def descendants(pid: int) -> list[int]:
    tree = _children()
    found: list[int] = []
    pending = [pid]
    while pending:
        current = pending.pop()
        for child in tree.get(current, []):
            found.append(child)
            pending.append(child)
    return found


def _cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline")
            .read_bytes()
            .replace(b"\0", b" ")
            .decode(errors="replace")
        )
    except OSError:
        return ""


def rss_kib(pid: int) -> int:
    """Resident memory of one process, in KiB (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system) one process has used so far (0 once gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    kind: str
    port: int
    log: Path
    process: subprocess.Popen[bytes]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def python_processes(self) -> list[int]:
        """The server's Python processes (uvicorn's workers, or the one WSGI)."""
        return [
            pid
            for pid in descendants(self.process.pid)
            if "python" in _cmdline(pid) or "uvicorn" in _cmdline(pid)
        ]

    def workers(self) -> list[int]:
        """The processes that serve requests."""
        processes = self.python_processes()
        spawned = [pid for pid in processes if "spawn_main" in _cmdline(pid)]
        # uvicorn --workers: the supervisor spawns the workers.
        return spawned or processes[:1]

    def rss(self) -> dict[int, int]:
        return {pid: rss_kib(pid) for pid in self.workers()}

    def cpu(self) -> float:
        """CPU seconds the workers have used so far."""
        return sum(cpu_seconds(pid) for pid in self.workers())

    def kill_workers(self) -> list[int]:
        """SIGKILL every worker, as the OOM killer or a crash would."""
        pids = self.workers()
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        return pids


@contextmanager
def running(
    kind: str,
    env: dict[str, str],
    log: Path,
    *,
    workers: int = 1,
    lifetime: int = 300,
) -> Iterator[Server]:
    """A server (``asgi``: uvicorn, ``wsgi``: threaded WSGI) until the block ends.

    ``timeout`` ends the server after ``lifetime`` seconds whatever happens.
    """
    port = free_port()
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
            "--lifespan",
            "off",
        ]
        if workers > 1:
            command += ["--workers", str(workers)]
    else:
        command = [*SERVE, "wsgi", str(port)]
    prefix = ["timeout", str(lifetime)] if shutil.which("timeout") else []
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*prefix, *command],
            env=env,
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, log.read_text()
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "server did not start"
                    time.sleep(0.05)
            server = Server(kind, port, log, process)
            if kind == "asgi" and workers > 1:
                deadline = time.monotonic() + 60
                while len(server.workers()) < workers:
                    assert time.monotonic() < deadline, "workers did not start"
                    time.sleep(0.1)
            yield server
        finally:
            pids = descendants(process.pid)
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)
            for pid in pids:
                if any(mark in _cmdline(pid) for mark in ("uvicorn", "serve")):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
