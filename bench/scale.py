"""History at scale on PostgreSQL: one object's history, 1,000 vs 1,000,000 deltas.

    python -m bench.scale [--objects 10000] [--repeat 30] [--keep]

Seeds revy's tables with COPY, straight from the rows revy itself writes for
one tracked ``auth.User`` (a create, then updates up to 100 attribute deltas
in 11 object deltas), repeated for 10 and then for 10,000 users, with the
users' deltas interleaved as they would be in a busy database. For each size
it times, on the user in the middle:

- ``snapshot``: every past state of the user, ``ObjectSnapshot`` annotated on
  its object deltas (one query);
- ``history``: ``object_history`` listed whole (object deltas with their
  revisions, then their attribute deltas);

prints each query's ``EXPLAIN (ANALYZE, BUFFERS)`` at the large size, checks
that the plans use ``revy_od_content_idx`` and ``revy_ad_content_idx``, and
prints a Markdown table: the best of --repeat runs as the client sees it, and
the server's execution time from the plans. It exits non-zero when an index is
not used or when the large size is more than 2x slower than the small one.

The database (``REVY_BENCH_SCALE_DB``, default ``revy_bench_scale``, on
127.0.0.1:5432 as ``postgres``) is created and dropped by the script; this is
a benchmark, not a test: ``make bench-scale``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import django
from django.conf import settings

DB_NAME = os.environ.get("REVY_BENCH_SCALE_DB", "revy_bench_scale")
ATTRIBUTES_PER_OBJECT = 100
INDEXES = ("revy_od_content_idx", "revy_ad_content_idx")
LIMIT = 2.0


def configure() -> None:
    settings.configure(
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": DB_NAME,
                "HOST": "127.0.0.1",
                "PORT": "5432",
                "USER": "postgres",
                "TEST": {"NAME": DB_NAME},
            }
        },
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "revy_core",
        ],
        USE_TZ=True,
        TIME_ZONE="UTC",
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        SECRET_KEY="bench-only",
    )
    django.setup()


# Seeding ---------------------------------------------------------------------


def template() -> tuple[list[tuple[str, str]], list[tuple[int, str, str, Any, Any]]]:
    """The rows revy writes for one user: a create and updates, 100 attributes.

    Object deltas as ``(action, description)``; attribute deltas as
    ``(object delta index, field name, action, old JSON, new JSON)``.
    """
    from django.contrib.auth.models import User
    from django.db import connection

    from revy_core import Context
    from revy_core.models import AttributeDelta, ObjectDelta

    changeable = ["first_name", "last_name", "email", "is_staff", "is_active"]
    changeable += ["is_superuser", "last_login", "date_joined", "username"]
    start = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    with Context():
        user = User.objects.create(username="template", email="t@example.com")
        step = 0
        while AttributeDelta.objects.count() < ATTRIBUTES_PER_OBJECT:
            step += 1
            left = ATTRIBUTES_PER_OBJECT - AttributeDelta.objects.count()
            for name in changeable[:left]:
                if name in ("is_staff", "is_active", "is_superuser"):
                    setattr(user, name, not getattr(user, name))
                elif name in ("last_login", "date_joined"):
                    setattr(user, name, start + datetime.timedelta(days=step))
                elif name == "email":
                    user.email = f"step{step}@example.com"
                else:
                    setattr(user, name, f"{name} {step}")
            with Context.via_revision_description(f"step {step}"):
                user.save()
    deltas = list(ObjectDelta.objects.order_by("pk"))
    index = {delta.pk: i for i, delta in enumerate(deltas)}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT parent_id, field_name, action, old_value::text, new_value::text"
            " FROM revy_attribute_delta ORDER BY id"
        )
        attributes = [(index[row[0]], *row[1:]) for row in cursor.fetchall()]
    assert len(attributes) == ATTRIBUTES_PER_OBJECT, len(attributes)
    rows = [(d.action, d.description) for d in deltas]  # type: ignore[attr-defined]
    return rows, attributes


def seed(objects: int, rows: Any, attributes: Any) -> float:
    """Replace revy's tables with ``objects`` users' history; seconds taken."""
    from django.contrib.auth.models import User
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection

    started = time.perf_counter()
    content_type = ContentType.objects.get_for_model(User).pk
    now = datetime.datetime.now(datetime.UTC)
    by_delta: dict[int, list[Any]] = {}
    for attribute in attributes:
        by_delta.setdefault(attribute[0], []).append(attribute[1:])
    per_revision = 10  # users changed by one revision

    def object_deltas() -> Iterator[tuple[Any, ...]]:
        for step, (action, description) in enumerate(rows):
            for obj in range(objects):
                pk = step * objects + obj + 1
                revision = (step * objects + obj) // per_revision + 1
                yield (
                    pk,
                    revision,
                    None,
                    None,
                    action,
                    description,
                    content_type,
                    str(obj + 1),
                    now,
                )

    def attribute_deltas() -> Iterator[tuple[Any, ...]]:
        pk = 0
        for step in range(len(rows)):
            for obj in range(objects):
                parent = step * objects + obj + 1
                revision = (step * objects + obj) // per_revision + 1
                for name, action, old, new in by_delta[step]:
                    pk += 1
                    if name == "id":
                        new = str(obj + 1)
                    yield (
                        pk,
                        revision,
                        parent,
                        None,
                        None,
                        action,
                        "",
                        content_type,
                        str(obj + 1),
                        now,
                        name,
                        old,
                        new,
                    )

    revisions = (len(rows) * objects + per_revision - 1) // per_revision
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE revy_attribute_delta, revy_object_delta, revy_revision"
        )
        raw = cursor.cursor
        with raw.copy(
            "COPY revy_revision (id, description, created_at) FROM STDIN"
        ) as copy:
            for pk in range(1, revisions + 1):
                copy.write_row((pk, f"revision {pk}", now))
        with raw.copy(
            "COPY revy_object_delta (id, revision_id, actor_type_id, actor_id,"
            " action, description, content_type_id, content_id, created_at)"
            " FROM STDIN"
        ) as copy:
            for row in object_deltas():
                copy.write_row(row)
        with raw.copy(
            "COPY revy_attribute_delta (id, revision_id, parent_id, actor_type_id,"
            " actor_id, action, description, content_type_id, content_id,"
            " created_at, field_name, old_value, new_value) FROM STDIN"
        ) as copy:
            for row in attribute_deltas():
                copy.write_row(row)
        for table in ("revy_revision", "revy_object_delta", "revy_attribute_delta"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                f" (SELECT max(id) FROM {table}))"
            )
    with connection.cursor() as cursor:
        cursor.execute(
            "VACUUM ANALYZE revy_revision, revy_object_delta, revy_attribute_delta"
        )
        cursor.execute("SELECT count(*) FROM revy_attribute_delta")
        (count,) = cursor.fetchone()
    assert count == objects * ATTRIBUTES_PER_OBJECT, count
    return time.perf_counter() - started


# Measuring -------------------------------------------------------------------


def operations(pk: int) -> dict[str, Callable[[], int]]:
    from django.contrib.auth.models import User
    from django.contrib.contenttypes.models import ContentType

    from revy_core.history import object_history
    from revy_core.models import ObjectDelta, ObjectSnapshot

    content_type = ContentType.objects.get_for_model(User)

    def snapshot() -> int:
        built = [
            delta.snapshot
            for delta in ObjectDelta.objects.filter(
                content_type=content_type, content_id=str(pk)
            )
            .annotate(snapshot=ObjectSnapshot(User))
            .order_by("pk")
        ]
        assert built[-1].pk == pk, built[-1].pk
        return len(built)

    def history() -> int:
        entries = list(object_history(User, pk))
        assert sum(len(e.changes) for e in entries) == ATTRIBUTES_PER_OBJECT
        return len(entries)

    return {"snapshot": snapshot, "history": history}


def best_ms(operation: Callable[[], int], repeat: int) -> float:
    """The best of ``repeat`` runs, in milliseconds: noise only adds time."""
    for _ in range(3):
        operation()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        operation()
        times.append(time.perf_counter() - started)
    return min(times) * 1000


def execution_ms(plan: str) -> float:
    """The server's own time in an EXPLAIN ANALYZE plan."""
    (line,) = (line for line in plan.splitlines() if "Execution Time:" in line)
    return float(line.split(":")[1].split()[0])


def plans(operation: Callable[[], int]) -> list[tuple[str, str]]:
    """``(query, EXPLAIN ANALYZE plan)`` for each query the operation runs."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        operation()
    result = []
    with connection.cursor() as cursor:
        for query in captured.captured_queries:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + query["sql"])
            plan = "\n".join(line for (line,) in cursor.fetchall())
            result.append((query["sql"], plan))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args(argv)

    configure()
    from django.db import connection

    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    failures = []
    # {operation: {attribute deltas: (best wall ms, server ms)}}
    timings: dict[str, dict[int, tuple[float, float]]] = {}
    try:
        rows, attributes = template()
        for objects in (args.small, args.objects):
            seconds = seed(objects, rows, attributes)
            total = objects * ATTRIBUTES_PER_OBJECT
            print(
                f"seeded {total:,} attribute deltas, {objects:,} objects"
                f" in {seconds:.1f} s"
            )
            for name, operation in operations(objects // 2 + 1).items():
                wall = best_ms(operation, args.repeat)
                explained = plans(operation)
                server = sum(execution_ms(plan) for _, plan in explained)
                timings.setdefault(name, {})[total] = (wall, server)
                if objects == args.objects:
                    failures += report_plans(name, total, explained)
        failures += report_table(timings)
    finally:
        if not args.keep:
            connection.creation.destroy_test_db(DB_NAME, verbosity=0)
    for failure in failures:
        print(f"FAIL {failure}", file=sys.stderr)
    return 1 if failures else 0


def report_plans(name: str, total: int, explained: list[tuple[str, str]]) -> list[str]:
    """Print the plans; what is wrong with them."""
    failures = []
    print(f"\n### {name}: query plans at {total:,} attribute deltas\n")
    used = set()
    for sql, plan in explained:
        print(f"```sql\n{sql}\n```\n```\n{plan}\n```\n")
        used.update(index for index in INDEXES if index in plan)
        for table in ("revy_object_delta", "revy_attribute_delta"):
            if f"Seq Scan on {table}" in plan:
                failures.append(f"{name}: a sequential scan of {table}")
    wanted = set(INDEXES) if name == "snapshot" else {"revy_od_content_idx"}
    if not wanted <= used:
        failures.append(f"{name}: uses {sorted(used)}, not {sorted(wanted)}")
    return failures


def report_table(timings: dict[str, dict[int, tuple[float, float]]]) -> list[str]:
    """Print the Markdown table; the operations more than 2x slower at scale."""
    failures = []
    small, large = sorted(next(iter(timings.values())))
    print(
        f"\n| one object's | {small:,} deltas | {large:,} deltas | ratio"
        f" | server, {small:,} | server, {large:,} |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, by_size in timings.items():
        (wall_small, server_small), (wall_large, server_large) = (
            by_size[small],
            by_size[large],
        )
        ratio = wall_large / wall_small
        print(
            f"| {name} | {wall_small:.2f} ms | {wall_large:.2f} ms | {ratio:.2f}x"
            f" | {server_small:.2f} ms | {server_large:.2f} ms |"
        )
        if ratio > LIMIT:
            failures.append(f"{name}: {ratio:.2f}x slower at {large:,} deltas")
    return failures


if __name__ == "__main__":
    sys.exit(main())
