"""Baseline history for rows that existed before tracking began.

``backfill()`` writes, for every row of a tracked model that has no Create
object delta, a Create delta holding each tracked field's current value, so
every object's history starts with its full state. All baselines of one run
share one revision, described as a backfill and credited to the system.

It walks each table by primary key in batches: one query for the rows, one
for which of them already have a Create, and the bulk inserts of
``write_history``; each batch commits on its own, so an interrupted run
keeps what it wrote and a second run only does what is left (it is
idempotent: rows with a Create are skipped).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import router, transaction
from django.db.models import Model

from revy_core.conf import (
    get_attribute_delta_model,
    get_object_delta_model,
    get_revision_model,
)
from revy_core.context import Context, current_frame
from revy_core.tracking import (
    AttributeChange,
    ObjectChange,
    stored_value,
    tracked_models,
    tracker_for,
    write_history,
)

__all__ = ["DESCRIPTION", "BackfillResult", "backfill"]

DESCRIPTION = "Baseline of rows that existed before history was kept (backfill)"
BATCH_SIZE = 1000

Progress = Callable[[type[Model], int, int], None]


@dataclass
class BackfillResult:
    """Rows given a baseline, per model label, and the revision holding them."""

    created: dict[str, int] = field(default_factory=dict)
    revision_id: int | None = None

    @property
    def total(self) -> int:
        return sum(self.created.values())


def _changes(model: type[Model], rows: Iterable[Model]) -> list[ObjectChange]:
    tracker = tracker_for(model)
    assert tracker is not None
    object_delta = get_object_delta_model()
    set_ = get_attribute_delta_model().ACTION_SET  # type: ignore[attr-defined]
    changes = []
    for row in rows:
        d = row.__dict__
        changes.append(
            ObjectChange(
                model=model,
                pk=row.pk,
                action=object_delta.ACTION_CREATE,  # type: ignore[attr-defined]
                actor=None,
                description=DESCRIPTION,
                attributes=[
                    AttributeChange(
                        tf.name,
                        None,
                        stored_value(tracker, tf.attname, d[tf.attname]),
                        set_,
                        None,
                        "",
                    )
                    for tf in tracker.fields
                    if tf.attname in d
                ],
            )
        )
    return changes


def backfill(
    models: Iterable[type[Model]] | None = None,
    *,
    batch_size: int = BATCH_SIZE,
    using: str | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> BackfillResult:
    """Write a baseline Create for each row of ``models`` that has none.

    ``models`` defaults to every tracked model (non-tracked models raise
    ``ValueError``). ``progress(model, done, total)`` is called after each
    batch. With ``dry_run`` every batch is rolled back: the result says what
    would be written.
    """
    chosen = list(models) if models is not None else tracked_models()
    for model in chosen:
        if tracker_for(model) is None:
            raise ValueError(f"{model._meta.label} is not tracked by revy.")
    result = BackfillResult()
    revision: Model | None = None
    object_delta = get_object_delta_model()
    create = object_delta.ACTION_CREATE  # type: ignore[attr-defined]
    for model in chosen:
        if model._meta.proxy:
            continue
        db = using or router.db_for_write(model)
        content_type = ContentType.objects.db_manager(db).get_for_model(model)
        rows = model._base_manager.db_manager(db).order_by("pk")
        total = rows.count()
        done = 0
        written = 0
        last: Any = None
        while True:
            page = rows if last is None else rows.filter(pk__gt=last)
            batch = list(page[:batch_size])
            if not batch:
                break
            last = batch[-1].pk
            done += len(batch)
            have = set(
                object_delta._default_manager.db_manager(db)
                .filter(
                    content_type=content_type,
                    action=create,
                    content_id__in=[str(row.pk) for row in batch],
                )
                .values_list("content_id", flat=True)
            )
            missing = [row for row in batch if str(row.pk) not in have]
            if missing:
                with transaction.atomic(using=db):
                    if revision is None or revision._state.db != db:
                        revision = get_revision_model()(description=DESCRIPTION)
                        revision.save(using=db)
                    with Context(enabled=True, revision=revision, actor=None):
                        frame = current_frame()
                        assert frame is not None
                        write_history(db, _changes(model, missing), frame)
                    if dry_run:
                        transaction.set_rollback(True, using=db)
                        revision = None
                if not dry_run and revision is not None:
                    result.revision_id = revision.pk
                written += len(missing)
            if progress is not None:
                progress(model, done, total)
        result.created[model._meta.label] = written
    return result
