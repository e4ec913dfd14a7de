"""``make bench``: every (library, database) pair in its own process.

``python -m bench.run [--quick] [--libs revy untracked] [--dbs sqlite]``

Writes ``bench/results/latest.json`` and ``bench/results/latest.md`` and
prints the Markdown report.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
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
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="pairs run at once (default 1; more only on a machine already "
        "shared with other work, where ratios are all that is kept anyway)",
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
    if args.jobs > 1:
        notes.append(f"{args.jobs} pairs ran at once.")
    pairs: list[tuple[str, str, list[str] | None, tuple[str, ...]]] = []
    for lib in libs:
        module = MODULES.get(lib)
        if module and importlib.util.find_spec(module) is None:
            notes.append(f"{lib} skipped: not installed in {sys.prefix}.")
            continue
        pairs += [
            (lib, db, args.only, ())
            for db in dbs
            if lib != "pghistory" or db == "postgres"
        ]
    if args.big and ("postgres" in dbs or not args.dbs):
        reason = _postgres_available()
        if reason:
            notes.append(f"--big skipped: {reason}.")
        else:
            pairs.append(
                (
                    "revy",
                    "postgres",
                    ["history_size"],
                    ("--db-name", "revy_bench_revy_size"),
                )
            )
    report: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "quick": args.quick,
        "seconds": 0.0,
        "machine": {
            "nproc": os.cpu_count(),
            "cpu": _cpu_model(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "load_average": {"start": os.getloadavg(), "end": os.getloadavg()},
        "notes": notes,
        "runs": [],
        "history_size": None,
        "complete": False,
    }
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    lock = threading.Lock()

    def one(pair: tuple[str, str, list[str] | None, tuple[str, ...]]) -> None:
        lib, db, only, extra = pair
        what = "history size " if only == ["history_size"] else ""
        print(f"bench: {lib} {what}on {db} ...", file=sys.stderr, flush=True)
        run = _work(lib, db, args.quick, only, *extra)
        print(
            f"bench: {lib} {what}on {db}: {run.get('seconds', 0):.0f} s",
            file=sys.stderr,
            flush=True,
        )
        with lock:
            if only == ["history_size"]:
                report["history_size"] = run
            else:
                report["runs"].append(run)
            _write(report, out_dir, started)

    with concurrent.futures.ThreadPoolExecutor(max(args.jobs, 1)) as pool:
        for future in [pool.submit(one, pair) for pair in pairs]:
            future.result()
    report["complete"] = True
    markdown = _write(report, out_dir, started)
    print(markdown)
    failed = [run for run in report["runs"] if run.get("errors")]
    return 1 if failed else 0


def _write(report: dict[str, Any], out_dir: Path, started: float) -> str:
    """Writes the results so far (a partial run is still a readable report)."""
    order = {lib: i for i, lib in enumerate(LIBS)}
    report["runs"].sort(key=lambda run: (order.get(run["lib"], 99), run["db"]))
    report["seconds"] = time.perf_counter() - started
    report["load_average"]["end"] = os.getloadavg()
    (out_dir / "latest.json").write_text(json.dumps(report, indent=2))
    markdown = render(report)
    (out_dir / "latest.md").write_text(markdown)
    return markdown


if __name__ == "__main__":
    sys.exit(main())
