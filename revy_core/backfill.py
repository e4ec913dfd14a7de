"""Baseline history for rows that existed before tracking began.

``backfill()`` writes, for every row of a tracked model that has no Create
object delta, a Create delta holding each tracked field's value, so every
object's history starts with its full state. All baselines of one run
share one revision, described as a backfill and credited to the system.

- A row without any history gets a Create holding its current values.
- A row whose history starts with Updates (it was changed after tracking
  began, but created before) gets a Create placed *before* its first
  delta, holding the values it had then: each field's old value in the
  first attribute delta that changed it, or its current value if history
  never changed it. ``ObjectSnapshot`` orders an object's deltas by primary
  key, so the baseline's object delta takes the primary key ``-P``, where
  ``P`` is the primary key of the object's first delta (unique: each object
  has its own first delta, and a row with a Create is never backfilled
  again), and that delta's ``created_at``. Snapshots at every recorded
  delta are then complete.
- An object deleted since whose history has no Create (Updates and a
  Delete, or only the Delete) gets the same placed baseline, walked back
  from the final values its Delete holds. These are found after the rows,
  in pages of content ids (keyset) of objects with history and no Create.

It walks each table by primary key in batches: one query for the rows, one
for which of them have history and a Create, and for the rows whose history
starts with Updates three more (their first deltas, and the first attribute
delta of each field); then bulk inserts. Each batch commits on its own, so
an interrupted run keeps what it wrote and a second run only does what is
left (it is idempotent: rows with a Create are skipped).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import router, transaction
from django.db.models import Count, Min, Model, Q

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
    """Baselines of rows without history: their current values."""
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


@dataclass(frozen=True)
class _First:
    """The first recorded delta of an object that has no Create."""

    pk: int
    created_at: Any


def _history_of(
    content_type: ContentType, db: str, ids: list[str]
) -> tuple[set[str], dict[str, _First]]:
    """Of ``ids``: those with a Create, and the first delta of those with
    history but no Create."""
    object_delta = get_object_delta_model()
    create = object_delta.ACTION_CREATE  # type: ignore[attr-defined]
    od = object_delta._default_manager.db_manager(db)
    rows = (
        od.filter(content_type=content_type, content_id__in=ids)
        .order_by()
        .values("content_id")
        .annotate(first=Min("pk"), creates=Count("pk", filter=Q(action=create)))
        .values_list("content_id", "first", "creates")
    )
    created: set[str] = set()
    firsts: dict[int, str] = {}
    for content_id, first, creates in rows:
        if creates:
            created.add(content_id)
        else:
            firsts[first] = content_id
    started: dict[str, _First] = {}
    if firsts:
        for pk, created_at in od.filter(pk__in=list(firsts)).values_list(
            "pk", "created_at"
        ):
            started[firsts[pk]] = _First(pk, created_at)
    return created, started


def _first_old_values(
    content_type: ContentType, db: str, ids: list[str]
) -> dict[tuple[str, str], Any]:
    """``{(content_id, field): value}``: each field's old value in the first
    attribute delta that changed it, for the objects ``ids``."""
    ad = get_attribute_delta_model()._default_manager.db_manager(db)
    of_objects = ad.filter(content_type=content_type, content_id__in=ids)
    firsts = {
        (content_id, name): parent
        for content_id, name, parent in of_objects.order_by()
        .values("content_id", "field_name")
        .annotate(parent=Min("parent"))
        .values_list("content_id", "field_name", "parent")
    }
    values: dict[tuple[str, str], Any] = {}
    rows = (
        of_objects.filter(parent__in=set(firsts.values()))
        .order_by("pk")
        .values_list("content_id", "field_name", "parent", "old_value")
    )
    for content_id, name, parent, old in rows:
        key = (content_id, name)
        if firsts[key] == parent and key not in values:
            values[key] = old
    return values


def _write_placed(
    model: type[Model],
    content_type: ContentType,
    db: str,
    objects: list[tuple[str, Model | None]],
    started: dict[str, _First],
    revision: Model,
) -> None:
    """Baselines placed before the first delta of objects whose history
    starts with Updates (or a Delete): the values before that delta, walked
    back from the row (``None`` for a row deleted since: walked back from the
    final values its Delete holds)."""
    tracker = tracker_for(model)
    assert tracker is not None
    object_delta = get_object_delta_model()
    attribute_delta = get_attribute_delta_model()
    set_ = attribute_delta.ACTION_SET  # type: ignore[attr-defined]
    olds = _first_old_values(content_type, db, [pk for pk, _ in objects])
    object_deltas = []
    attribute_deltas = []
    for content_id, row in objects:
        first = started[content_id]
        object_deltas.append(
            object_delta(
                pk=-first.pk,
                revision=revision,
                actor_type_id=None,
                actor_id=None,
                action=object_delta.ACTION_CREATE,  # type: ignore[attr-defined]
                description=DESCRIPTION,
                content_type_id=content_type.pk,
                content_id=content_id,
                created_at=first.created_at,
            )
        )
        d = row.__dict__ if row is not None else {}
        for tf in tracker.fields:
            key = (content_id, tf.name)
            if key in olds:
                value = olds[key]
            elif tf.attname in d:
                value = stored_value(tracker, tf.attname, d[tf.attname])
            else:
                continue
            attribute_deltas.append(
                attribute_delta(
                    revision=revision,
                    parent_id=-first.pk,
                    actor_type_id=None,
                    actor_id=None,
                    action=set_,
                    description="",
                    content_type_id=content_type.pk,
                    content_id=content_id,
                    created_at=first.created_at,
                    field_name=tf.name,
                    old_value=None,
                    new_value=value,
                )
            )
    object_delta._default_manager.db_manager(db).bulk_create(object_deltas)
    attribute_delta._default_manager.db_manager(db).bulk_create(attribute_deltas)


def _deleted_without_create(
    model: type[Model],
    content_type: ContentType,
    db: str,
    after: str | None,
    batch_size: int,
) -> tuple[str | None, dict[str, _First]]:
    """The next page (keyset on content id) of objects with history, no
    Create and no row: the last content id read, and each one's first delta."""
    object_delta = get_object_delta_model()
    create = object_delta.ACTION_CREATE  # type: ignore[attr-defined]
    od = object_delta._default_manager.db_manager(db).filter(content_type=content_type)
    if after is not None:
        od = od.filter(content_id__gt=after)
    page = list(
        od.order_by()
        .values("content_id")
        .annotate(first=Min("pk"), creates=Count("pk", filter=Q(action=create)))
        .filter(creates=0)
        .order_by("content_id")
        .values_list("content_id", "first")[:batch_size]
    )
    if not page:
        return None, {}
    firsts = dict(page)
    pk_field = model._meta.pk
    assert pk_field is not None
    keys = []
    for content_id in firsts:
        try:
            keys.append(pk_field.to_python(content_id))
        except ValidationError:
            continue
    for pk in (
        model._base_manager.db_manager(db)
        .filter(pk__in=keys)
        .values_list("pk", flat=True)
    ):
        firsts.pop(str(pk), None)
    created_at = dict(
        object_delta._default_manager.db_manager(db)
        .filter(pk__in=list(firsts.values()))
        .values_list("pk", "created_at")
    )
    started = {
        content_id: _First(first, created_at[first])
        for content_id, first in firsts.items()
    }
    return page[-1][0], started


class _Writer:
    """Writes each batch in its own transaction, all in one revision per
    database (rolled back with ``dry_run``)."""

    def __init__(self, result: BackfillResult, dry_run: bool) -> None:
        self.result = result
        self.dry_run = dry_run
        self.revision: Model | None = None

    def write(
        self,
        model: type[Model],
        content_type: ContentType,
        db: str,
        fresh: list[Model],
        placed: list[tuple[str, Model | None]],
        started: dict[str, _First],
    ) -> None:
        if not fresh and not placed:
            return
        with transaction.atomic(using=db):
            revision = self.revision
            if revision is None or revision._state.db != db:
                revision = get_revision_model()(description=DESCRIPTION)
                revision.save(using=db)
            if fresh:
                with Context(enabled=True, revision=revision, actor=None):
                    frame = current_frame()
                    assert frame is not None
                    write_history(db, _changes(model, fresh), frame)
            if placed:
                _write_placed(model, content_type, db, placed, started, revision)
            if self.dry_run:
                transaction.set_rollback(True, using=db)
                revision = None
        self.revision = revision
        if revision is not None:
            self.result.revision_id = revision.pk
        label = model._meta.label
        self.result.created[label] += len(fresh) + len(placed)


def backfill(
    models: Iterable[type[Model]] | None = None,
    *,
    batch_size: int = BATCH_SIZE,
    using: str | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> BackfillResult:
    """Write a baseline Create for each object of ``models`` that has none;
    see the module doc.

    ``models`` defaults to every tracked model (non-tracked models raise
    ``ValueError``). ``progress(model, done, total)`` is called after each
    batch of rows. With ``dry_run`` every batch is rolled back: the result
    says what would be written.
    """
    chosen = list(models) if models is not None else tracked_models()
    for model in chosen:
        if tracker_for(model) is None:
            raise ValueError(f"{model._meta.label} is not tracked by revy.")
    result = BackfillResult()
    writer = _Writer(result, dry_run)
    for model in chosen:
        if model._meta.proxy:
            continue
        result.created[model._meta.label] = 0
        db = using or router.db_for_write(model)
        content_type = ContentType.objects.db_manager(db).get_for_model(model)
        rows = model._base_manager.db_manager(db).order_by("pk")
        total = rows.count()
        done = 0
        last: Any = None
        while True:
            page = rows if last is None else rows.filter(pk__gt=last)
            batch = list(page[:batch_size])
            if not batch:
                break
            last = batch[-1].pk
            done += len(batch)
            have, started = _history_of(
                content_type, db, [str(row.pk) for row in batch]
            )
            missing = [row for row in batch if str(row.pk) not in have]
            writer.write(
                model,
                content_type,
                db,
                [row for row in missing if str(row.pk) not in started],
                [(str(row.pk), row) for row in missing if str(row.pk) in started],
                started,
            )
            if progress is not None:
                progress(model, done, total)
        after: str | None = None
        while True:
            after, started = _deleted_without_create(
                model, content_type, db, after, batch_size
            )
            if after is None:
                break
            writer.write(
                model,
                content_type,
                db,
                [],
                [(content_id, None) for content_id in started],
                started,
            )
    return result
