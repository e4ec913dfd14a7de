"""Helpers the test modules share to read what history holds."""

from __future__ import annotations

from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db.models import Model

from revy_core.models import AttributeDelta, ObjectDelta, Revision

__all__ = [
    "actor_of",
    "attributes",
    "changes",
    "history_counts",
    "object_deltas",
]


def object_deltas(
    model_or_instance: type[Model] | Model, pk: Any = None
) -> list[ObjectDelta]:
    """The object deltas of one instance (or of a model and a pk), oldest first."""
    if isinstance(model_or_instance, Model):
        pk = model_or_instance.pk
    content_type = ContentType.objects.get_for_model(model_or_instance)
    return list(
        ObjectDelta.objects.filter(
            content_type=content_type, content_id=str(pk)
        ).order_by("pk")
    )


def attributes(object_delta: ObjectDelta) -> list[AttributeDelta]:
    return list(object_delta.attribute_deltas.order_by("pk"))


def changes(object_delta: ObjectDelta) -> dict[str, tuple[Any, Any]]:
    """``{field_name: (old_value, new_value)}`` of an object delta."""
    result: dict[str, tuple[Any, Any]] = {}
    for attribute in attributes(object_delta):
        assert attribute.field_name not in result, attribute.field_name
        result[attribute.field_name] = (attribute.old_value, attribute.new_value)
    return result


def actor_of(delta: ObjectDelta | AttributeDelta) -> Model | None:
    """The actor of a delta, ``None`` for the system."""
    if delta.actor_type_id is None:
        assert delta.actor_id is None
        return None
    assert delta.actor_type is not None
    model = delta.actor_type.model_class()
    assert model is not None
    return model._default_manager.get(pk=delta.actor_id)


def history_counts() -> tuple[int, int, int]:
    """How many revisions, object deltas and attribute deltas exist."""
    return (
        Revision.objects.count(),
        ObjectDelta.objects.count(),
        AttributeDelta.objects.count(),
    )


def revision_inserts(using: str = "default") -> int:
    """Statements of their own that a unit of work's new revision costs
    when its history waits for the commit: none on PostgreSQL, where the
    statement writing the deltas inserts it."""
    from django.db import connections

    return 0 if connections[using].vendor == "postgresql" else 1


def delta_inserts(objects: int, attributes: int, using: str = "default") -> int:
    """Statements revy needs to write ``objects`` object deltas holding
    ``attributes`` attribute deltas (spread evenly): on PostgreSQL one
    (``WITH``) per ``revy_core.writer.TOGETHER_ROWS`` attribute deltas,
    elsewhere a bulk insert per table, split where the backend's parameter
    limit requires."""
    import math

    from django.db import connections

    from revy_core.writer import TOGETHER_ROWS

    connection = connections[using]
    if connection.vendor == "postgresql" and attributes:
        per_object = max(attributes // objects, 1)
        return math.ceil(objects / max(TOGETHER_ROWS // per_object, 1))
    total = 0
    for model, rows in ((ObjectDelta, objects), (AttributeDelta, attributes)):
        if rows:
            fields = [f for f in model._meta.concrete_fields if not f.primary_key]
            batch = max(connection.ops.bulk_batch_size(fields, [None] * rows), 1)
            total += math.ceil(rows / batch)
    return total
