"""Operating history at scale: backfill, prune, erase, revert, history, diff.

``python -m bench.operations [--objects 20000] [--database sqlite|postgres]
[--only OPERATION ...]``

Builds 100,000 object deltas (with 5 attribute deltas each for the
baselines) on ``tests.testapp.Account`` in a throwaway database, runs each
operation over them and prints a Markdown table: the time per 10,000 rows
and the process's resident memory (RSS) before, at its highest during (read
at every batch) and after each operation. Flat memory shows as a small
"grew" figure whatever the number of rows. ``--only`` runs just the named
operations (``backfill`` always runs: it builds the history the others
read).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PAGE = os.sysconf("SC_PAGE_SIZE")
OPERATIONS = ["backfill", "history", "diff", "revert", "prune", "erase"]


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE / 2**20


def configure(database: str, directory: str) -> None:
    import django
    from django.conf import settings

    sys.path.insert(0, str(ROOT))
    os.environ["REVY_TEST_DATABASE"] = database
    from tests import settings as test_settings

    options = {
        name: getattr(test_settings, name)
        for name in dir(test_settings)
        if name.isupper()
    }
    db = dict(test_settings.DATABASES["default"])
    db["TEST"] = {"NAME": "revy_bench_operations"}
    if database == "sqlite":
        db["TEST"] = {"NAME": str(Path(directory) / "operations.sqlite3")}
    options["DATABASES"] = {"default": db}
    options["DEBUG"] = False
    settings.configure(**options)
    django.setup()


class Meter:
    """Time and RSS of one operation; ``tick`` is called at every batch."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, int, float, float, float, float]] = []

    def run(
        self, name: str, rows: int, work: Callable[[Callable[..., None]], Any]
    ) -> Any:
        import gc

        gc.collect()
        before = rss_mb()
        peak = [before]

        def tick(*args: Any) -> None:
            peak[0] = max(peak[0], rss_mb())

        started = time.perf_counter()
        result = work(tick)
        elapsed = time.perf_counter() - started
        after = rss_mb()
        peak[0] = max(peak[0], after)
        self.rows.append((name, rows, elapsed, before, peak[0], after))
        return result

    def table(self) -> str:
        lines = [
            "| operation | rows | total (s) | per 10,000 rows (s) | RSS before (MB) "
            "| RSS peak (MB) | grew (MB) |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for name, rows, elapsed, before, peak, _after in self.rows:
            per = f"{elapsed / rows * 10_000:.2f}" if rows >= 1000 else "—"
            lines.append(
                f"| {name} | {rows:,} | {elapsed:.2f} | {per} "
                f"| {before:.0f} | {peak:.0f} | {peak - before:.1f} |"
            )
        return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=20_000)
    parser.add_argument("--updates", type=int, default=4, help="updates per object")
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=OPERATIONS,
        default=OPERATIONS,
        help="the operations to run (default: all)",
    )
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        configure(arguments.database, directory)
        from django.db import connection

        old_name = connection.creation.create_test_db(verbosity=0, keepdb=False)
        try:
            print(
                run(
                    arguments.objects,
                    arguments.updates,
                    arguments.database,
                    set(arguments.only),
                )
            )
            load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
            print(f"\nLoad average at the end: {load} on {os.cpu_count()} CPUs.")
        finally:
            connection.creation.destroy_test_db(old_name, verbosity=0)


def run(objects: int, updates: int, database: str, only: set[str] | None = None) -> str:
    import decimal

    from django.contrib.auth.models import User
    from django.utils import timezone

    from revy_core import Context
    from revy_core.backfill import backfill
    from revy_core.context import current_frame
    from revy_core.diff import diff
    from revy_core.erasure import erase_actor, erase_object
    from revy_core.history import object_history
    from revy_core.models import AttributeDelta, ObjectDelta, Revision
    from revy_core.retention import prune
    from revy_core.revert import revert
    from revy_core.tracking import AttributeChange, ObjectChange, write_history
    from tests.testapp.models import Account

    meter = Meter()
    only = set(OPERATIONS) if only is None else only
    Account.objects.bulk_create(
        Account(name=f"account {i}", balance=decimal.Decimal(i)) for i in range(objects)
    )
    clerk = User.objects.create_user("clerk")
    pks = list(Account.objects.order_by("pk").values_list("pk", flat=True))

    meter.run("backfill", objects, lambda tick: backfill([Account], progress=tick))

    # Updates, written in bulk as tracked saves would write them: one revision
    # per round, the clerk as actor.
    cutoff = None
    for round_ in range(updates):
        if round_ == updates // 2:
            cutoff = timezone.now()
        with Context(
            enabled=True, actor=clerk, revision=Revision(description=f"round {round_}")
        ):
            frame = current_frame()
            assert frame is not None
            for start in range(0, objects, 1000):
                write_history(
                    "default",
                    [
                        ObjectChange(
                            Account,
                            pk,
                            ObjectDelta.ACTION_UPDATE,
                            clerk,
                            "",
                            [
                                AttributeChange(
                                    "balance",
                                    f"{pk + round_}.00",
                                    f"{pk + round_ + 1}.00",
                                    AttributeDelta.ACTION_SET,
                                    clerk,
                                    "",
                                )
                            ],
                        )
                        for pk in pks[start : start + 1000]
                    ],
                    frame,
                )
    total = ObjectDelta.objects.count()
    attributes = AttributeDelta.objects.count()

    sample = pks[: min(2000, objects)]

    def histories(tick: Callable[..., None]) -> None:
        for index, pk in enumerate(sample):
            for _ in object_history(Account, pk):
                pass
            if index % 100 == 0:
                tick()

    if "history" in only:
        meter.run(
            f"history ({len(sample):,} objects, rows = deltas)",
            len(sample) * (updates + 1),
            histories,
        )

    def diffs(tick: Callable[..., None]) -> None:
        for index, pk in enumerate(sample):
            diff(Account, pk)
            if index % 100 == 0:
                tick()

    if "diff" in only:
        meter.run(
            f"diff ({len(sample):,} objects, rows = deltas)",
            len(sample) * (updates + 1),
            diffs,
        )
    if "revert" in only:
        last_round = Revision.objects.get(description=f"round {updates - 1}")
        result = meter.run(
            f"revert (revision of {objects:,} updates)",
            objects,
            lambda tick: revert(last_round, dry_run=True),
        )
        assert len(result.updated) == objects
    assert cutoff is not None
    left = total
    baselines = removed = unlinked = 0
    if "prune" in only:
        pruned = meter.run(
            "prune (rows = object deltas examined)",
            total,
            lambda tick: prune(cutoff, models=[Account], progress=tick),
        )
        left = ObjectDelta.objects.count()
        baselines, removed = pruned.baselines, pruned.object_deltas
    if "erase" in only:
        erased = meter.run(
            "erase one object (its deltas)",
            ObjectDelta.objects.filter(content_id=str(pks[0])).count(),
            lambda tick: erase_object(Account, pks[0], reason="bench", progress=tick),
        )
        assert erased.attribute_deltas
        unlinked = meter.run(
            "erase actor (rows = deltas unlinked)",
            ObjectDelta.objects.filter(actor_id=str(clerk.pk)).count()
            + AttributeDelta.objects.filter(actor_id=str(clerk.pk)).count(),
            lambda tick: erase_actor(clerk, reason="bench"),
        ).unlinked_deltas
    return "\n".join(
        [
            f"Database: {database}. {objects:,} objects, {total:,} object deltas and "
            f"{attributes:,} attribute deltas before pruning; {left:,} object deltas "
            f"after ({baselines:,} baselines kept, {removed:,} removed); "
            f"{unlinked:,} deltas unlinked from the erased actor.",
            "",
            meter.table(),
        ]
    )


if __name__ == "__main__":
    main()
