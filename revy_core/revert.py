"""Reverting a revision: undo each of its changes as a new revision.

For every object delta of the revision, newest first:

- a Create is undone by deleting the object;
- an Update by setting each changed field back to its old value;
- a Delete by saving the object again, rebuilt with ``ObjectSnapshot``,
  with its primary key.

The work goes in batches of object deltas (keyset on their primary key),
and within a batch in runs of consecutive deltas of one model and one
action, each undone with one tracked bulk write: ``QuerySet.delete()`` for
Creates, ``bulk_create`` for Deletes, ``bulk_update`` for Updates. Conflicts
are found with two queries per batch (a correlated subquery per delta on the
history indexes), so the number of queries does not grow with the number of
objects. As with any bulk write, models' ``save()`` methods and
``pre_save``/``post_save`` signals are not run.

The undo is recorded like any change, in one new revision described as
``Revert revision <pk>: <its description>``, inside one transaction. It is
refused with ``RevertConflict``, listing every conflict, when a later delta
of another revision changed the same fields (or recreated, deleted or
changed a created or deleted object), unless ``force=True``: then
conflicting fields are overwritten and objects that can no longer be undone
are skipped.

Masked fields cannot be restored (history holds the mask, not the value):
they are left as they are and listed in ``RevertResult.skipped``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.contenttypes.models import ContentType
from django.db import router, transaction
from django.db.models import Case, Model, OuterRef, Subquery, Value, When

from revy_core import values as value_codec
from revy_core.conf import (
    get_attribute_delta_model,
    get_object_delta_model,
    get_revision_model,
)
from revy_core.context import Context
from revy_core.erasure import ERASE
from revy_core.snapshot import ObjectSnapshot
from revy_core.tracking import tracker_for

__all__ = ["RevertConflict", "RevertResult", "arevert", "revert"]

DESCRIPTION = "Revert revision {pk}: {description}"
BATCH_SIZE = 500
#: Conflicts listed in the error; the rest are counted.
MAX_CONFLICTS = 100


@dataclass(frozen=True)
class Conflict:
    """A later delta that changed what the revert would undo."""

    label: str
    object_id: str
    field: str | None
    later_revision_id: int

    def __str__(self) -> str:
        what = f"{self.label} {self.object_id}"
        if self.field:
            what += f" field {self.field!r}"
        return f"{what} was changed later by revision {self.later_revision_id}"


class RevertConflict(Exception):
    """Later revisions changed what a revert would undo."""

    def __init__(
        self, revision_id: int, conflicts: list[Conflict], count: int | None = None
    ) -> None:
        self.revision_id = revision_id
        self.conflicts = conflicts
        self.count = len(conflicts) if count is None else count
        lines = "\n".join(f"- {c}" for c in conflicts)
        if self.count > len(conflicts):
            lines += f"\n- ... and {self.count - len(conflicts)} more"
        super().__init__(
            f"Cannot revert revision {revision_id}: later revisions changed the "
            f"same data (use force to overwrite):\n{lines}"
        )


@dataclass
class RevertResult:
    revision_id: int | None = None
    deleted: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    updated: dict[str, list[str]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def _label(model: type[Model], pk: str) -> str:
    return f"{model._meta.label} {pk}"


def revert(
    revision: Model | int,
    *,
    actor: Model | None = None,
    force: bool = False,
    description: str | None = None,
    using: str | None = None,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
) -> RevertResult:
    """Undo every change of ``revision`` as a new revision; see the module doc."""
    object_delta = get_object_delta_model()
    revision_pk = revision if isinstance(revision, int) else revision.pk
    using = using or (
        revision._state.db
        if isinstance(revision, Model) and revision._state.db
        else router.db_for_write(object_delta)
    )
    od = object_delta._default_manager.db_manager(using)
    description_of = (
        description
        if description is not None
        else DESCRIPTION.format(
            pk=revision_pk,
            description=(
                get_revision_model()
                ._default_manager.db_manager(using)
                .filter(pk=revision_pk)
                .values_list("description", flat=True)
                .first()
            )
            or "",
        )
    )
    conflicts: list[Conflict] = []
    found = 0
    if not force:
        for batch in _batches(revision_pk, using, batch_size, check=True):
            for step in batch:
                found += len(step.conflicts)
                conflicts.extend(step.conflicts[: MAX_CONFLICTS - len(conflicts)])
    if found:
        raise RevertConflict(revision_pk, conflicts, found)

    result = RevertResult()
    with transaction.atomic(using=using):
        new_revision = get_revision_model()(description=description_of)
        new_revision.save(using=using)
        with Context(
            enabled=True,
            revision=new_revision,
            actor=actor,
            revision_description=description_of,
        ):
            for batch in _batches(revision_pk, using, batch_size, check=False):
                for run in _runs(batch):
                    _undo(run, using, result)
        if od.filter(revision=new_revision).exists():
            result.revision_id = new_revision.pk
        else:
            new_revision.delete(using=using)
        if dry_run:
            transaction.set_rollback(True, using=using)
            result.revision_id = None
    return result


@dataclass
class _Step:
    """One object delta of the reverted revision, with what undoing it needs."""

    delta_id: int
    model: type[Model]
    object_id: str
    action: str
    #: The old value of each field an Update changed (the first one stored).
    old: dict[str, Any]
    conflicts: list[Conflict]


def _batches(
    revision_pk: int, using: str, batch_size: int, *, check: bool
) -> Iterator[list[_Step]]:
    """The revision's object deltas, newest first, in batches (keyset on pk).

    Two queries per batch: the object deltas, and the attribute deltas of
    its Updates. With ``check``, each query also carries, per row, the first
    later delta that conflicts with undoing it (a correlated subquery on the
    content indexes).
    """
    object_delta = get_object_delta_model()
    attribute_delta = get_attribute_delta_model()
    od = object_delta._default_manager.db_manager(using)
    ad = attribute_delta._default_manager.db_manager(using)
    content_types = ContentType.objects.db_manager(using)
    create = object_delta.ACTION_CREATE  # type: ignore[attr-defined]
    delete = object_delta.ACTION_DELETE  # type: ignore[attr-defined]
    update = object_delta.ACTION_UPDATE  # type: ignore[attr-defined]
    deltas = od.filter(revision_id=revision_pk).exclude(action=ERASE).order_by("-pk")
    columns = ["pk", "content_type_id", "content_id", "action"]
    if check:
        later_delta = (
            od.filter(
                content_type_id=OuterRef("content_type_id"),
                content_id=OuterRef("content_id"),
                pk__gt=OuterRef("pk"),
            )
            .exclude(action=ERASE)
            .exclude(revision_id=OuterRef("revision_id"))
            .order_by("pk")
            .values("revision_id")[:1]
        )
        deltas = deltas.annotate(
            later=Case(
                When(action__in=[create, delete], then=Subquery(later_delta)),
                default=Value(None),
            )
        )
        columns.append("later")
    last: int | None = None
    while True:
        page = deltas if last is None else deltas.filter(pk__lt=last)
        rows = list(page.values_list(*columns)[:batch_size])
        if not rows:
            return
        last = rows[-1][0]
        steps: dict[int, _Step] = {}
        for row in rows:
            delta_id, type_id, object_id, action = row[:4]
            model = content_types.get_for_id(type_id).model_class()
            if model is None:
                continue
            steps[delta_id] = step = _Step(delta_id, model, object_id, action, {}, [])
            if check and row[4] is not None:
                step.conflicts.append(
                    Conflict(model._meta.label, object_id, None, row[4])
                )
        updates = [pk for pk, step in steps.items() if step.action == update]
        if updates:
            attributes = ad.filter(parent__in=updates).order_by("pk")
            fields = ["parent", "field_name", "old_value"]
            if check:
                later_attribute = (
                    ad.filter(
                        content_type_id=OuterRef("content_type_id"),
                        content_id=OuterRef("content_id"),
                        field_name=OuterRef("field_name"),
                        parent__gt=OuterRef("parent"),
                    )
                    .exclude(revision_id=OuterRef("revision_id"))
                    .order_by("parent", "pk")
                    .values("revision_id")[:1]
                )
                attributes = attributes.annotate(later=Subquery(later_attribute))
                fields.append("later")
            for parent, name, value, *later in attributes.values_list(*fields):
                step = steps[parent]
                if name in step.old:
                    continue
                step.old[name] = value
                if later and later[0] is not None:
                    step.conflicts.append(
                        Conflict(step.model._meta.label, step.object_id, name, later[0])
                    )
        yield list(steps.values())


def _runs(steps: Sequence[_Step]) -> Iterator[list[_Step]]:
    """Consecutive steps of one model and one action, each object at most once
    (a revision that changed an object twice is undone in two runs)."""
    run: list[_Step] = []
    seen: set[str] = set()
    for step in steps:
        if run and (
            step.model is not run[0].model
            or step.action != run[0].action
            or step.object_id in seen
        ):
            yield run
            run, seen = [], set()
        run.append(step)
        seen.add(step.object_id)
    if run:
        yield run


def _undo(run: list[_Step], using: str, result: RevertResult) -> None:
    object_delta = get_object_delta_model()
    action = run[0].action
    if action == object_delta.ACTION_CREATE:  # type: ignore[attr-defined]
        _delete_created(run, using, result)
    elif action == object_delta.ACTION_DELETE:  # type: ignore[attr-defined]
        _restore_deleted(run, using, result)
    else:
        _set_back(run, using, result)


def _existing(model: type[Model], using: str, ids: Sequence[str]) -> dict[str, Model]:
    """The rows of ``ids`` (primary keys as text) that exist, by that text."""
    manager = model._base_manager.db_manager(using)
    return {str(pk): row for pk, row in manager.in_bulk(list(ids)).items()}


def _delete_created(run: list[_Step], using: str, result: RevertResult) -> None:
    model = run[0].model
    manager = model._base_manager.db_manager(using)
    pk_field = model._meta.pk
    assert pk_field is not None
    ids = [step.object_id for step in run]
    existing = {
        str(pk)
        for pk in manager.filter(pk__in=ids).values_list(pk_field.attname, flat=True)
    }
    for step in run:
        label = _label(model, step.object_id)
        if step.object_id in existing:
            result.deleted.append(label)
        else:
            result.skipped.append(f"{label}: already deleted")
    if existing:
        manager.filter(pk__in=list(existing)).delete()


def _restore_deleted(run: list[_Step], using: str, result: RevertResult) -> None:
    object_delta = get_object_delta_model()
    model = run[0].model
    manager = model._base_manager.db_manager(using)
    pk_field = model._meta.pk
    assert pk_field is not None
    ids = [step.object_id for step in run]
    existing = {
        str(pk)
        for pk in manager.filter(pk__in=ids).values_list(pk_field.attname, flat=True)
    }
    wanted = [step for step in run if step.object_id not in existing]
    snapshots = dict(
        object_delta._default_manager.db_manager(using)
        .filter(pk__in=[step.delta_id for step in wanted])
        .annotate(snapshot=ObjectSnapshot(model))
        .values_list("pk", "snapshot")
    )
    instances = []
    for step in run:
        label = _label(model, step.object_id)
        if step.object_id in existing:
            result.skipped.append(f"{label}: exists again")
            continue
        instances.append(snapshots[step.delta_id])
        result.restored.append(label)
    if not instances:
        return
    if model._meta.parents or any(i.get_deferred_fields() for i in instances):
        # bulk_create cannot insert multi-table children nor deferred fields:
        # their own saves say why.
        for instance in instances:
            instance.save(using=using, force_insert=True)
    else:
        manager.bulk_create(instances)


def _set_back(run: list[_Step], using: str, result: RevertResult) -> None:
    model = run[0].model
    manager = model._base_manager.db_manager(using)
    tracker = tracker_for(model)
    pk_name = model._meta.pk.name if model._meta.pk is not None else None
    rows = _existing(model, using, [step.object_id for step in run])
    groups: dict[tuple[str, ...], list[Model]] = {}
    for step in run:
        label = _label(model, step.object_id)
        instance = rows.get(step.object_id)
        if instance is None:
            result.skipped.append(f"{label}: deleted since")
            continue
        names = []
        for name, value in step.old.items():
            tracked = tracker.by_name.get(name) if tracker is not None else None
            if tracked is None or name == pk_name:
                continue
            if tracked.masked:
                result.skipped.append(f"{label} field {name!r}: masked in history")
                continue
            setattr(instance, tracked.attname, value_codec.load(tracked.field, value))
            names.append(name)
        if names:
            groups.setdefault(tuple(names), []).append(instance)
            result.updated[label] = names
    for fields, instances in groups.items():
        manager.bulk_update(instances, list(fields))


async def arevert(revision: Model | int, **kwargs: Any) -> RevertResult:
    """``revert`` for async code (runs it in a worker thread); same arguments."""
    return await sync_to_async(revert)(revision, **kwargs)
