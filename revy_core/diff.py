"""The field-by-field difference between two points of an object's history.

A *point* is a revision (instance or primary key: the object as that
revision left it), an object delta, an aware ``datetime`` (the object as it
was at that moment), or ``None`` (before its history for the first point,
its latest state for the second). ``state_at`` gives the object's stored
values at one point; ``diff`` compares two.

Values are the stored JSON values (``revy_core.values.dump``); masked
fields compare as the mask, so a masked change shows as changed only when
one side is unknown.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import router
from django.db.models import Model, QuerySet

from revy_core.conf import (
    get_attribute_delta_model,
    get_object_delta_model,
    get_revision_model,
)

__all__ = ["Diff", "State", "diff", "state_at"]

Point = Model | int | datetime.datetime | None


@dataclass
class State:
    """An object at one point: whether it existed, and each known field value."""

    object_delta_id: int | None
    exists: bool
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class Diff:
    """``changes`` maps each differing field to ``(value at start, value at end)``.

    A field history knows nothing of at one side shows as ``None`` there.
    """

    start: State
    end: State
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.changes) or self.start.exists != self.end.exists


def _object_deltas(model: type[Model], pk: Any, using: str) -> QuerySet[Model]:
    content_type = ContentType.objects.db_manager(using).get_for_model(
        model, for_concrete_model=True
    )
    return (
        get_object_delta_model()
        ._default_manager.db_manager(using)
        .filter(content_type=content_type, content_id=str(pk))
    )


def _delta_at(deltas: QuerySet[Model], point: Point, latest: bool) -> Model | None:
    if point is None:
        return deltas.order_by("-pk").first() if latest else None
    if isinstance(point, datetime.datetime):
        return deltas.filter(created_at__lte=point).order_by("-pk").first()
    if isinstance(point, get_object_delta_model()):
        return deltas.filter(pk__lte=point.pk).order_by("-pk").first()
    if isinstance(point, get_revision_model()):
        point = point.pk
    if isinstance(point, int):
        return deltas.filter(revision_id__lte=point).order_by("-pk").first()
    raise TypeError(
        f"A point of history is a revision, an object delta, a datetime or "
        f"None, not {point!r}."
    )


def _state(delta: Model | None, using: str) -> State:
    if delta is None:
        return State(object_delta_id=None, exists=False)
    attribute_delta = get_attribute_delta_model()
    set_ = attribute_delta.ACTION_SET  # type: ignore[attr-defined]
    values: dict[str, Any] = {}
    rows = (
        attribute_delta._default_manager.db_manager(using)
        .filter(
            content_type_id=delta.content_type_id,  # type: ignore[attr-defined]
            content_id=delta.content_id,  # type: ignore[attr-defined]
            parent__lte=delta.pk,
        )
        .order_by("parent", "pk")
        .values_list("field_name", "action", "old_value", "new_value")
    )
    for name, action, old, new in rows.iterator(chunk_size=2000):
        values[name] = new if action == set_ else old
    delete = get_object_delta_model().ACTION_DELETE  # type: ignore[attr-defined]
    return State(
        object_delta_id=delta.pk,
        exists=delta.action != delete,  # type: ignore[attr-defined]
        values=values,
    )


def state_at(
    model: type[Model], pk: Any, point: Point = None, *, using: str | None = None
) -> State:
    """The stored values of one object at ``point`` (``None``: its latest)."""
    using = using or router.db_for_read(get_object_delta_model())
    deltas = _object_deltas(model, pk, using)
    return _state(_delta_at(deltas, point, latest=True), using)


def diff(
    model: type[Model],
    pk: Any,
    start: Point = None,
    end: Point = None,
    *,
    using: str | None = None,
) -> Diff:
    """What changed in one object between ``start`` and ``end``."""
    using = using or router.db_for_read(get_object_delta_model())
    deltas = _object_deltas(model, pk, using)
    before = _state(_delta_at(deltas, start, latest=False), using)
    after = _state(_delta_at(deltas, end, latest=True), using)
    result = Diff(start=before, end=after)
    for name in [*before.values, *(n for n in after.values if n not in before.values)]:
        old, new = before.values.get(name), after.values.get(name)
        if old != new:
            result.changes[name] = (old, new)
    return result
