"""Snapshot and history time against the size of revy's tables (PostgreSQL).

Optional (``python -m bench.run --big``): measures, for one object with 100
changes, ``state as of change 50`` and ``list the history`` while the history
tables hold 1,000 and then 1,000,000 object deltas of other objects (one
attribute delta each, so twice as many rows in all), and keeps the
``EXPLAIN ANALYZE`` plans. The other deltas are written straight into revy's
tables with ``INSERT ... SELECT generate_series`` (no ORM, no Python loop).
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import connection

from bench.benchapp.models import Tracked

__all__ = ["SIZES", "history_size"]

SIZES = (1_000, 1_000_000)
CHANGES_PER_OBJECT = 100


def _fill(target: int, done: int) -> None:
    """Adds object deltas (and one attribute delta each) up to ``target``."""
    from revy_core.models import AttributeDelta, ObjectDelta, Revision

    count = target - done
    if count <= 0:
        return
    content_type = ContentType.objects.get_for_model(Tracked).pk
    revision = Revision._meta.db_table
    object_delta = ObjectDelta._meta.db_table
    attribute_delta = AttributeDelta._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {revision} (description, created_at) VALUES ('bench', now())"
        )
        cursor.execute(f"SELECT max(id) FROM {revision}")
        last_revision = cursor.fetchone()[0]
        # Other objects: content ids far above the measured object's, 100
        # changes each, like the measured one.
        cursor.execute(
            f"INSERT INTO {object_delta} (revision_id, actor_type_id, actor_id, "
            "action, description, content_type_id, content_id, created_at) "
            "SELECT %s, NULL, NULL, 'update', '', %s, "
            "(1000000000 + g / %s)::text, now() "
            "FROM generate_series(%s, %s) AS g",
            [
                last_revision,
                content_type,
                CHANGES_PER_OBJECT,
                done,
                target - 1,
            ],
        )
        cursor.execute(
            f"INSERT INTO {attribute_delta} (revision_id, parent_id, actor_type_id, "
            "actor_id, action, description, content_type_id, content_id, "
            "created_at, field_name, old_value, new_value) "
            "SELECT d.revision_id, d.id, NULL, NULL, 'set', '', d.content_type_id, "
            "d.content_id, d.created_at, 'quantity', '1', '2' "
            f"FROM {object_delta} d WHERE d.content_id::bigint >= 1000000000 "
            f"AND NOT EXISTS (SELECT 1 FROM {attribute_delta} a "
            "WHERE a.parent_id = d.id)",
        )
        cursor.execute(f"ANALYZE {revision}, {object_delta}, {attribute_delta}")


def _median_us(run: Callable[[], Any], reads: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        for _ in range(reads):
            run()
        times.append((time.perf_counter() - start) / reads * 1e6)
    return statistics.median(times)


def history_size(bench: Any) -> None:
    if connection.vendor != "postgresql" or bench.library.name != "revy":
        bench.skipped["history_size"] = "revy on PostgreSQL only"
        return
    from revy_core.models import AttributeDelta, ObjectSnapshot

    library = bench.library
    obj, _ = bench._history_subjects()
    deltas = library._deltas(obj)
    change = library.change_id(obj, 50)
    state = deltas.filter(pk=change).annotate(snapshot=ObjectSnapshot(Tracked))
    ids = list(deltas.values_list("pk", flat=True))
    attributes = AttributeDelta.objects.filter(parent_id__in=ids)
    results: dict[str, Any] = {}
    done = 0
    for size in SIZES:
        _fill(size, done)
        done = size
        entry = {
            "state_as_of_us": _median_us(
                lambda: library.state_as_of(obj, change), 20, bench.sizes.repeats
            ),
            "history_list_us": _median_us(
                lambda: library.history(obj), 5, bench.sizes.repeats
            ),
            "plans": {
                "state_as_of": state.explain(analyze=True),
                "history_list (object deltas)": deltas.explain(analyze=True),
                "history_list (attribute deltas)": attributes.explain(analyze=True),
            },
        }
        results[str(size)] = entry
    small, large = (results[str(size)] for size in SIZES)
    results["growth"] = {
        key: large[key] / small[key] for key in ("state_as_of_us", "history_list_us")
    }
    bench.results["history_size"] = results
