"""One (library, database) pair, in its own process.

``python -m bench.worker --lib revy --db sqlite --out result.json``

Creates the process's own database (a SQLite file in WAL mode, or a
PostgreSQL database ``revy_bench_<lib>``), writes the benchmark app's
migrations to a temporary package, migrates, runs the scenarios and writes
what it measured as JSON. The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import resource
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

PG_ADMIN = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "postgres"}


def _pg(sql: str) -> None:
    import psycopg

    with psycopg.connect(**PG_ADMIN, autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute(sql)


def _version(distribution: str | None) -> str | None:
    if distribution is None:
        return None
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lib", required=True)
    parser.add_argument("--db", choices=["sqlite", "postgres"], required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (tests)")
    parser.add_argument("--db-name", help="PostgreSQL database (revy_bench_<lib>)")
    parser.add_argument("--only", nargs="*", help="scenario groups to run")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix=f"revy-bench-{args.lib}-{args.db}-"))
    package = "bench_migrations"
    (workdir / package).mkdir()
    (workdir / package / "__init__.py").write_text("")
    sys.path.insert(0, str(workdir))
    db_name = args.db_name or f"revy_bench_{args.lib}"
    os.environ.update(
        BENCH_LIB=args.lib,
        BENCH_DB=args.db,
        BENCH_SQLITE_PATH=str(workdir / "bench.sqlite3"),
        BENCH_PG_NAME=db_name,
        BENCH_MIGRATIONS=package,
        DJANGO_SETTINGS_MODULE="bench.project.settings",
    )
    if args.db == "postgres":
        _pg(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        _pg(f'CREATE DATABASE "{db_name}"')
    output: dict[str, Any] = {"lib": args.lib, "db": args.db}
    started = time.perf_counter()
    try:
        import django
        from django.core.management import call_command

        django.setup()
        from django.db import connection

        from bench.libraries import get_library
        from bench.scenarios import FULL, QUICK, SCENARIOS, SMOKE, Bench

        call_command("makemigrations", "benchapp", verbosity=0)
        call_command("migrate", verbosity=0)
        library = get_library(args.lib)
        library.setup()
        sizes = SMOKE if args.smoke else QUICK if args.quick else FULL
        bench = Bench(library, sizes)
        bench.setup()
        output.update(
            label=library.label,
            versions={
                "django": django.get_version(),
                "library": _version(library.distribution),
                "database": connection.Database.sqlite_version
                if args.db == "sqlite"
                else ".".join(
                    str(connection.pg_version // 10_000**i % 10_000) for i in (1, 0)
                ),
            },
        )
        from bench.big import history_size

        errors = {}
        groups = {**SCENARIOS, "history_size": history_size}
        for name, scenario in groups.items():
            if name == "history_size" and name not in (args.only or ()):
                continue
            if args.only and name not in args.only:
                continue
            try:
                scenario(bench)
            except Exception:
                errors[name] = traceback.format_exc()
                print(f"[{args.lib}/{args.db}] {name} failed", file=sys.stderr)
                traceback.print_exc()
        output.update(scenarios=bench.results, skipped=bench.skipped, errors=errors)
        connection.close()
    finally:
        output["seconds"] = time.perf_counter() - started
        output["peak_rss_mb"] = (
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        )
        Path(args.out).write_text(json.dumps(output, indent=2, default=str))
        if args.db == "postgres":
            _pg(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
