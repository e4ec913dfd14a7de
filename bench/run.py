"""``make bench``: every (library, database) pair in its own process.

``python -m bench.run [--quick] [--libs revy untracked] [--dbs sqlite]``

Writes ``bench/results/latest.json`` and ``bench/results/latest.md`` and
prints the Markdown report.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.report import render

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
LIBS = ["untracked", "revy", "simple_history", "reversion", "auditlog", "pghistory"]
MODULES = {
    "revy": "revy_core",
    "simple_history": "simple_history",
    "reversion": "reversion",
    "auditlog": "auditlog",
    "pghistory": "pghistory",
}


def _postgres_available() -> str | None:
    """``None`` when the local server answers, else why it does not."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed"
    try:
        with psycopg.connect(
            host="127.0.0.1",
            port=5432,
            user="postgres",
            dbname="postgres",
            connect_timeout=3,
        ):
            return None
    except Exception as error:
        return f"PostgreSQL is not reachable at 127.0.0.1:5432 ({error})"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _work(
    lib: str, db: str, quick: bool, only: list[str] | None, *extra: str
) -> dict[str, Any]:
    """Runs ``bench.worker`` for one pair and returns what it wrote."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [sys.executable, "-m", "bench.worker", "--lib", lib, "--db", db]
        command += ["--out", out.name, *extra]
        if quick:
            command.append("--quick")
        if only:
            command += ["--only", *only]
        code = subprocess.call(command, cwd=ROOT, env=os.environ.copy())
        try:
            run: dict[str, Any] = json.loads(Path(out.name).read_text())
        except (OSError, ValueError):
            run = {"lib": lib, "db": db, "errors": {}}
    if code:
        run.setdefault("errors", {})["process"] = f"exit {code}"
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke run")
    parser.add_argument("--libs", nargs="*")
    parser.add_argument("--dbs", nargs="*")
    parser.add_argument("--only", nargs="*", help="scenario groups")
    parser.add_argument(
        "--big",
        action="store_true",
        help="also time revy's snapshot and history at 1,000 and 1,000,000 "
        "stored deltas (PostgreSQL; slow to seed)",
    )
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)

    libs = args.libs or (["untracked", "revy"] if args.quick else LIBS)
    dbs = args.dbs or (["sqlite"] if args.quick else ["sqlite", "postgres"])
    notes: list[str] = []
    if "postgres" in dbs:
        reason = _postgres_available()
        if reason:
            notes.append(f"PostgreSQL skipped: {reason}.")
            dbs = [db for db in dbs if db != "postgres"]
    runs: list[dict[str, Any]] = []
    started = time.perf_counter()
    load_before = os.getloadavg()
    for lib in libs:
        module = MODULES.get(lib)
        if module and importlib.util.find_spec(module) is None:
            notes.append(f"{lib} skipped: not installed in {sys.prefix}.")
            continue
        for db in dbs:
            if lib == "pghistory" and db != "postgres":
                continue
            print(f"bench: {lib} on {db} ...", file=sys.stderr, flush=True)
            run = _work(lib, db, args.quick, args.only)
            print(
                f"bench: {lib} on {db}: {run.get('seconds', 0):.0f} s",
                file=sys.stderr,
                flush=True,
            )
            runs.append(run)
    history_size = None
    if args.big and ("postgres" in dbs or not args.dbs):
        reason = _postgres_available()
        if reason:
            notes.append(f"--big skipped: {reason}.")
        else:
            print("bench: revy history size on postgres ...", file=sys.stderr)
            history_size = _work(
                "revy",
                "postgres",
                args.quick,
                ["history_size"],
                "--db-name",
                "revy_bench_revy_size",
            )
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "quick": args.quick,
        "seconds": time.perf_counter() - started,
        "machine": {
            "nproc": os.cpu_count(),
            "cpu": _cpu_model(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "load_average": {"start": load_before, "end": os.getloadavg()},
        "notes": notes,
        "runs": runs,
        "history_size": history_size,
    }
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "latest.json").write_text(json.dumps(report, indent=2))
    markdown = render(report)
    (out_dir / "latest.md").write_text(markdown)
    print(markdown)
    return 1 if any(run.get("errors") for run in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
