"""Deletions: revy's drop-in ``on_delete`` handlers and the collector hooks.

Every deletion of a tracked instance inside an enabled context, through
``Model.delete()``, ``QuerySet.delete()`` or a cascade, is recorded as a
Delete object delta holding the final value of every field, in the same
transaction as the deletion and in bulk: a handful of statements whatever
the number of rows. Field updates a deletion causes through Django's own
``SET*`` handlers are recorded as well, credited to the context's actor.

``CASCADE``, ``SET``, ``SET_NULL`` and ``SET_DEFAULT`` behave as Django's
handlers of the same name, and additionally mark what they cause: cascaded
deletions are credited to the system with the deletion description, and
each ``SET*`` assignment is recorded as an attribute delta with the deletion
description. Outside a context, or in a disabled one, they are Django's
handlers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from django.db import models, transaction
from django.db.models.deletion import Collector

from revy_core.context import Frame, current_frame

if TYPE_CHECKING:
    from django.db.models import Field, Model

    from revy_core.tracking import ObjectChange

__all__ = ["CASCADE", "SET", "SET_DEFAULT", "SET_NULL", "install"]

_CASCADED = "_revy_cascaded"
_UPDATES = "_revy_updates"

Handler = Callable[[Collector, "Field[Any, Any]", Any, str], None]


def _tracking(model: type[Model]) -> Frame | None:
    from revy_core.tracking import is_tracked

    frame = current_frame()
    if frame is None or not frame.tracking or not is_tracked(model):
        return None
    return frame


def CASCADE(
    collector: Collector, field: Field[Any, Any], sub_objs: Any, using: str
) -> None:
    """Django's ``CASCADE``; the cascaded deletions are credited to the system."""
    if _tracking(field.model) is not None:
        keys = collector.__dict__.setdefault(_CASCADED, set())
        for obj in sub_objs:
            keys.add((obj._meta.concrete_model, obj.pk))
    models.CASCADE(collector, field, sub_objs, using)


def _record_update(
    collector: Collector,
    field: Field[Any, Any],
    value: Any,
    sub_objs: Any,
    by_handler: bool,
) -> None:
    """Remember a field update a deletion causes, to record it.

    ``by_handler``: caused by one of revy's handlers (credited to the system
    with the deletion description) rather than by one of Django's (credited
    to the context's actor, as the deletion itself is).
    """
    if _tracking(field.model) is None:
        return
    # Evaluating a lazy queryset here makes Django update exactly these rows
    # by primary key, so what is recorded is what is written.
    objs = list(sub_objs)
    if objs:
        collector.__dict__.setdefault(_UPDATES, []).append(
            (field, value, objs, by_handler)
        )


def _add_field_update(
    collector: Collector, field: Field[Any, Any], value: Any, sub_objs: Any
) -> None:
    _record_update(collector, field, value, sub_objs, True)
    _original_add_field_update(collector, field, value, sub_objs)


def SET(value: Any) -> Handler:
    """Django's ``SET(value)``; each assignment is recorded."""

    def set_on_delete(
        collector: Collector, field: Field[Any, Any], sub_objs: Any, using: str
    ) -> None:
        resolved = value() if callable(value) else value
        _add_field_update(collector, field, resolved, sub_objs)

    set_on_delete.deconstruct = lambda: ("revy_core.models.SET", (value,), {})  # type: ignore[attr-defined]
    set_on_delete.lazy_sub_objs = True  # type: ignore[attr-defined]
    return set_on_delete


def SET_NULL(
    collector: Collector, field: Field[Any, Any], sub_objs: Any, using: str
) -> None:
    """Django's ``SET_NULL``; each assignment is recorded."""
    _add_field_update(collector, field, None, sub_objs)


def SET_DEFAULT(
    collector: Collector, field: Field[Any, Any], sub_objs: Any, using: str
) -> None:
    """Django's ``SET_DEFAULT``; each assignment is recorded."""
    _add_field_update(collector, field, field.get_default(), sub_objs)


SET_NULL.lazy_sub_objs = True  # type: ignore[attr-defined]
SET_DEFAULT.lazy_sub_objs = True  # type: ignore[attr-defined]


# Collector hooks ------------------------------------------------------------


def _final_values(
    model: type[Model], instances: Iterable[Model], using: str
) -> dict[Any, dict[str, Any]]:
    """The last stored value of every tracked field, by primary key."""
    from revy_core.tracking import baseline, tracker_for

    tracker = tracker_for(model)
    assert tracker is not None
    result: dict[Any, dict[str, Any]] = {}
    missing: dict[Any, list[str]] = {}
    for obj in instances:
        base = baseline(obj) or {}
        values = {a: base[a] for a in tracker.attnames if a in base}
        if len(values) < len(tracker.attnames):
            missing[obj.pk] = [a for a in tracker.attnames if a not in values]
        result[obj.pk] = values
    if missing:
        attnames = sorted({a for names in missing.values() for a in names})
        rows = (
            model._base_manager.db_manager(using)
            .filter(pk__in=list(missing))
            .values_list("pk", *attnames)
        )
        for pk, *row in rows:
            values = result[pk]
            for attname, value in zip(attnames, row, strict=False):
                values.setdefault(attname, value)
    return result


def _deletion_changes(collector: Collector, frame: Frame) -> list[ObjectChange]:
    from revy_core.tracking import (
        AttributeChange,
        ObjectChange,
        baseline,
        deletion_change,
        stored_value,
        tracker_for,
    )

    values = frame.values
    cascaded = collector.__dict__.get(_CASCADED, set())
    deletion_description = values.get("deletion_description") or ""
    actor = values.get("actor")
    description = values.get("object_delta_description") or ""
    attribute_description = values.get("attribute_delta_description") or ""
    # A multi-table child's deletion also deletes its parents' rows: the
    # child's delta covers them. A proxy's "parent" is its own concrete
    # model, which covers nothing.
    covered = {
        (parent._meta.concrete_model, obj.pk)
        for model, instances in collector.data.items()
        for parent in model._meta.get_parent_list()
        if parent._meta.concrete_model is not model._meta.concrete_model
        for obj in instances
    }
    seen: set[tuple[Any, Any]] = set()
    changes: list[ObjectChange] = []
    for model, instances in collector.data.items():
        tracker = tracker_for(model)
        if tracker is None or not instances:
            continue
        concrete = model._meta.concrete_model
        kept = []
        for obj in instances:
            key = (concrete, obj.pk)
            if key not in covered and key not in seen:
                seen.add(key)
                kept.append(obj)
        final = _final_values(model, kept, collector.using)
        for obj in sorted(kept, key=lambda o: str(o.pk)):
            if (concrete, obj.pk) in cascaded:
                change = deletion_change(
                    tracker,
                    obj.pk,
                    final[obj.pk],
                    None,
                    deletion_description,
                    deletion_description,
                )
            else:
                change = deletion_change(
                    tracker,
                    obj.pk,
                    final[obj.pk],
                    actor,
                    description,
                    attribute_description,
                )
            changes.append(change)
    deleted = {
        (m._meta.concrete_model, o.pk)
        for m, objs in collector.data.items()
        for o in objs
    }
    from revy_core.conf import get_attribute_delta_model, get_object_delta_model

    set_ = get_attribute_delta_model().ACTION_SET  # type: ignore[attr-defined]
    update = get_object_delta_model().ACTION_UPDATE  # type: ignore[attr-defined]
    by_object: dict[tuple[Any, Any], ObjectChange] = {}
    for field, value, objs, by_handler in collector.__dict__.get(_UPDATES, ()):
        if by_handler:
            who, why, attribute_why = None, deletion_description, deletion_description
        else:
            who, why, attribute_why = actor, description, attribute_description
        for obj in objs:
            key = (obj._meta.concrete_model, obj.pk)
            if key in deleted:
                continue
            tracker = tracker_for(type(obj))
            if tracker is None or field.attname not in tracker.attnames:
                continue
            old = (baseline(obj) or {}).get(field.attname, getattr(obj, field.attname))
            old_stored = stored_value(tracker, field.attname, old)
            new_stored = stored_value(tracker, field.attname, value)
            if old_stored == new_stored:
                continue
            update_change = by_object.get(key)
            if update_change is None:
                update_change = ObjectChange(
                    model=type(obj),
                    pk=obj.pk,
                    action=update,
                    actor=who,
                    description=why,
                )
                by_object[key] = update_change
                changes.append(update_change)
            update_change.attributes.append(
                AttributeChange(
                    field.name, old_stored, new_stored, set_, who, attribute_why
                )
            )
    return [c for c in changes if c.attributes or c.action != update]


_original_has_signal_listeners = Collector._has_signal_listeners  # type: ignore[attr-defined]
_original_delete = Collector.delete
_original_add_field_update = Collector.add_field_update


def _has_signal_listeners(self: Collector, model: type[Model]) -> bool:
    # Tracked models are collected row by row, with every field loaded, so
    # their final values can be recorded; Django does the same for models
    # with delete signal receivers.
    if _tracking(model) is not None:
        return True
    return bool(_original_has_signal_listeners(self, model))


def _collector_add_field_update(
    self: Collector, field: Field[Any, Any], value: Any, objs: Any
) -> None:
    # Updates scheduled by Django's own handlers (models.SET_NULL ...) are
    # recorded too, so history never disagrees with the rows.
    _record_update(self, field, value, objs, False)
    _original_add_field_update(self, field, value, objs)


def _delete(self: Collector) -> tuple[int, dict[str, int]]:
    frame = current_frame()
    if frame is None or not frame.tracking:
        return _original_delete(self)
    from revy_core.tracking import write_history

    with transaction.atomic(using=self.using, savepoint=False):
        changes = _deletion_changes(self, frame)
        write_history(self.using, changes, frame)
        return _original_delete(self)


def install() -> None:
    """Hook Django's deletion collector (runs in ``ready()``)."""
    Collector._has_signal_listeners = _has_signal_listeners  # type: ignore[attr-defined]
    Collector.delete = _delete  # type: ignore[method-assign]
    Collector.add_field_update = _collector_add_field_update  # type: ignore[method-assign]
