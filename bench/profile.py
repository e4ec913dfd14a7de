"""Where the time of a tracked pass goes: cProfile of one scenario.

``python -m bench.profile --lib revy --db sqlite create update``

Sets up the same project as ``bench.worker`` (with its own database), runs
each named scenario group's tracked pass once to warm up, then once under
cProfile, and prints the functions with the most time of their own and the
most cumulative time. ``--dump DIR`` keeps the ``.prof`` files (for snakeviz,
``python -m pstats`` ...).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lib", default="revy")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--dump", help="directory for the .prof files")
    parser.add_argument("--full", action="store_true", help="full-size passes")
    parser.add_argument("groups", nargs="+", help="scenario groups (bench.scenarios)")
    args = parser.parse_args(argv)

    from bench.worker import _pg

    workdir = Path(tempfile.mkdtemp(prefix="revy-bench-profile-"))
    (workdir / "bench_migrations").mkdir()
    (workdir / "bench_migrations" / "__init__.py").write_text("")
    sys.path.insert(0, str(workdir))
    db_name = f"revy_bench_profile_{args.lib}"
    os.environ.update(
        BENCH_LIB=args.lib,
        BENCH_DB=args.db,
        BENCH_SQLITE_PATH=str(workdir / "bench.sqlite3"),
        BENCH_PG_NAME=db_name,
        BENCH_MIGRATIONS="bench_migrations",
        DJANGO_SETTINGS_MODULE="bench.project.settings",
    )
    if args.db == "postgres":
        _pg(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        _pg(f'CREATE DATABASE "{db_name}"')
    try:
        import django
        from django.core.management import call_command

        django.setup()
        from django.db import connection

        from bench.libraries import get_library
        from bench.scenarios import FULL, QUICK, SCENARIOS, Bench, Side

        call_command("makemigrations", "benchapp", verbosity=0)
        call_command("migrate", verbosity=0)

        class ProfilingBench(Bench):
            def paired(
                self,
                name: str,
                prepare: Callable[[Side], Callable[[], None]],
                ops: int,
                **kwargs: Any,
            ) -> Any:
                prepare(self.tracked)()
                run = prepare(self.tracked)
                profile = cProfile.Profile()
                profile.runcall(run)
                if args.dump:
                    Path(args.dump).mkdir(parents=True, exist_ok=True)
                    profile.dump_stats(str(Path(args.dump) / f"{name}.prof"))
                for sort in ("tottime", "cumulative"):
                    out = io.StringIO()
                    stats = pstats.Stats(profile, stream=out)
                    stats.sort_stats(sort).print_stats(args.top)
                    print(f"==== {name}: {ops} ops, sorted by {sort}")
                    text = out.getvalue()
                    print(text[text.find("   ncalls") :])
                return None

        library = get_library(args.lib)
        library.setup()
        bench = ProfilingBench(library, FULL if args.full else QUICK)
        bench.setup()
        for group in args.groups:
            SCENARIOS[group](bench)
        connection.close()
    finally:
        if args.db == "postgres":
            _pg(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
