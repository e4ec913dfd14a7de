"""Reverting a revision: undo each of its changes as a new revision.

For every object delta of the revision, newest first:

- a Create is undone by deleting the object;
- an Update by setting each changed field back to its old value;
- a Delete by saving the object again, rebuilt with ``ObjectSnapshot``,
  with its primary key.

The undo is recorded like any change, in one new revision described as
``Revert revision <pk>: <its description>``, inside one transaction. It is
refused with ``RevertConflict``, listing every conflict, when a later delta
changed the same fields (or recreated, deleted or changed a created or
deleted object), unless ``force=True``: then conflicting fields are
overwritten and objects that can no longer be undone are skipped.

Masked fields cannot be restored (history holds the mask, not the value):
they are left as they are and listed in ``RevertResult.skipped``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.contenttypes.models import ContentType
from django.db import router, transaction
from django.db.models import Model

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
        for _, _, _, found_here in _steps(revision_pk, using, batch_size, check=True):
            found += len(found_here)
            conflicts.extend(found_here[: MAX_CONFLICTS - len(conflicts)])
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
            for delta, model, old, _ in _steps(
                revision_pk, using, batch_size, check=False
            ):
                _undo(delta, model, old, using, result)
        if od.filter(revision=new_revision).exists():
            result.revision_id = new_revision.pk
        else:
            new_revision.delete(using=using)
        if dry_run:
            transaction.set_rollback(True, using=using)
            result.revision_id = None
    return result


def _steps(
    revision_pk: int, using: str, batch_size: int, *, check: bool
) -> Iterator[tuple[Model, type[Model], dict[str, Any], list[Conflict]]]:
    """The revision's object deltas, newest first, in batches (keyset on pk).

    Each comes with its model, the old value of each field it changed, and
    (with ``check``) what later deltas conflict with undoing it.
    """
    object_delta = get_object_delta_model()
    od = object_delta._default_manager.db_manager(using)
    ad = get_attribute_delta_model()._default_manager.db_manager(using)
    content_types = ContentType.objects.db_manager(using)
    create = object_delta.ACTION_CREATE  # type: ignore[attr-defined]
    delete = object_delta.ACTION_DELETE  # type: ignore[attr-defined]
    deltas = od.filter(revision_id=revision_pk).exclude(action=ERASE).order_by("-pk")
    last: int | None = None
    while True:
        page = deltas if last is None else deltas.filter(pk__lt=last)
        batch = list(page[:batch_size])
        if not batch:
            return
        last = batch[-1].pk
        olds: dict[int, dict[str, Any]] = {delta.pk: {} for delta in batch}
        rows = (
            ad.filter(parent__in=list(olds))
            .order_by("pk")
            .values_list("parent", "field_name", "old_value")
        )
        for parent, name, value in rows:
            olds[parent].setdefault(name, value)
        for delta in batch:
            type_id = delta.content_type_id  # type: ignore[attr-defined]
            object_id = delta.content_id  # type: ignore[attr-defined]
            model = content_types.get_for_id(type_id).model_class()
            if model is None:
                continue
            old = olds[delta.pk]
            found: list[Conflict] = []
            label = model._meta.label
            if not check:
                pass
            elif delta.action in (create, delete):  # type: ignore[attr-defined]
                first_later = (
                    od.filter(
                        content_type_id=type_id, content_id=object_id, pk__gt=delta.pk
                    )
                    .exclude(action=ERASE)
                    .order_by("pk")
                    .values_list("revision_id", flat=True)
                    .first()
                )
                if first_later is not None:
                    found.append(Conflict(label, object_id, None, first_later))
            else:
                changed = (
                    ad.filter(
                        content_type_id=type_id,
                        content_id=object_id,
                        parent__gt=delta.pk,
                        field_name__in=list(old),
                    )
                    .order_by("pk")
                    .values_list("field_name", "revision_id")
                )
                seen: set[str] = set()
                for name, later_revision in changed:
                    if name not in seen:
                        seen.add(name)
                        found.append(Conflict(label, object_id, name, later_revision))
            yield delta, model, old, found


def _undo(
    delta: Model,
    model: type[Model],
    old: dict[str, Any],
    using: str,
    result: RevertResult,
) -> None:
    object_delta = get_object_delta_model()
    pk = delta.content_id  # type: ignore[attr-defined]
    label = _label(model, pk)
    manager = model._base_manager.db_manager(using)
    action = delta.action  # type: ignore[attr-defined]
    if action == object_delta.ACTION_CREATE:  # type: ignore[attr-defined]
        instance = manager.filter(pk=pk).first()
        if instance is None:
            result.skipped.append(f"{label}: already deleted")
            return
        instance.delete(using=using)
        result.deleted.append(label)
        return
    if action == object_delta.ACTION_DELETE:  # type: ignore[attr-defined]
        if manager.filter(pk=pk).exists():
            result.skipped.append(f"{label}: exists again")
            return
        snapshot = (
            object_delta._default_manager.db_manager(using)
            .filter(pk=delta.pk)
            .annotate(snapshot=ObjectSnapshot(model))
            .values_list("snapshot", flat=True)
            .get()
        )
        snapshot.save(using=using, force_insert=True)
        result.restored.append(label)
        return
    instance = manager.filter(pk=pk).first()
    if instance is None:
        result.skipped.append(f"{label}: deleted since")
        return
    tracker = tracker_for(model)
    names = []
    for name, value in old.items():
        tracked = tracker.by_name.get(name) if tracker is not None else None
        if tracked is None:
            continue
        if tracked.masked:
            result.skipped.append(f"{label} field {name!r}: masked in history")
            continue
        setattr(instance, tracked.attname, value_codec.load(tracked.field, value))
        names.append(name)
    if names:
        instance.save(using=using, update_fields=names)
        result.updated[label] = names


async def arevert(revision: Model | int, **kwargs: Any) -> RevertResult:
    """``revert`` for async code (runs it in a worker thread); same arguments."""
    return await sync_to_async(revert)(revision, **kwargs)
