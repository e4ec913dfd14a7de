"""Reading one object's history back, delta by delta.

``object_history(Model, pk)`` yields one ``Entry`` per object delta, oldest
first, with the revision's message, the actor and each field's old and new
value. It reads in batches, so an object with a long history never sits in
memory whole. ``label_model`` and ``model_from_label`` are the
``app_label.Model`` spelling the management commands use.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ObjectDoesNotExist
from django.db import router
from django.db.models import Model

from revy_core.conf import get_attribute_delta_model, get_object_delta_model

__all__ = [
    "Entry",
    "FieldChange",
    "actor_name",
    "model_from_label",
    "object_history",
]

BATCH_SIZE = 500


@dataclass(frozen=True)
class FieldChange:
    """One attribute delta: ``field``, ``old`` → ``new`` as stored (JSON)."""

    field: str
    action: str
    old: Any
    new: Any
    actor: str
    description: str


@dataclass
class Entry:
    """One object delta of an object's history."""

    object_delta_id: int
    revision_id: int
    created_at: datetime.datetime
    action: str
    actor: str
    message: str
    description: str
    changes: list[FieldChange] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "object_delta": self.object_delta_id,
            "revision": self.revision_id,
            "created_at": self.created_at.isoformat(),
            "action": self.action,
            "actor": self.actor,
            "message": self.message,
            "description": self.description,
            "changes": [
                {
                    "field": c.field,
                    "action": c.action,
                    "old": c.old,
                    "new": c.new,
                    "actor": c.actor,
                    "description": c.description,
                }
                for c in self.changes
            ],
        }


def model_from_label(label: str) -> type[Model]:
    """The model of ``"app_label.Model"``; ``LookupError`` with a clear message."""
    try:
        return apps.get_model(label)
    except (LookupError, ValueError) as error:
        raise LookupError(
            f"{label!r} is not an installed model; use 'app_label.Model'."
        ) from error


class _ActorNames:
    """``str()`` of actors, one query per actor model and id, remembered."""

    def __init__(self, using: str) -> None:
        self.using = using
        self.names: dict[tuple[int | None, str | None], str] = {(None, None): "system"}

    def __call__(self, type_id: int | None, actor_id: str | None) -> str:
        key = (type_id, actor_id)
        if key not in self.names:
            self.names[key] = self._load(type_id, actor_id)
        return self.names[key]

    def _load(self, type_id: int | None, actor_id: str | None) -> str:
        if type_id is None or actor_id is None:
            return "system"
        content_type = ContentType.objects.db_manager(self.using).get_for_id(type_id)
        model = content_type.model_class()
        label = f"{content_type.app_label}.{content_type.model}:{actor_id}"
        if model is None:
            return label
        try:
            instance = model._base_manager.db_manager(self.using).get(pk=actor_id)
        except (ObjectDoesNotExist, ValueError, TypeError):
            return label
        return f"{instance} ({label})"


def actor_name(delta: Model) -> str:
    """How a delta's actor reads: ``str(actor) (app.model:pk)`` or ``system``."""
    names = _ActorNames(delta._state.db or "default")
    return names(delta.actor_type_id, delta.actor_id)  # type: ignore[attr-defined]


def object_history(
    model: type[Model],
    pk: Any,
    *,
    using: str | None = None,
    batch_size: int = BATCH_SIZE,
) -> Iterator[Entry]:
    """Every object delta of one object, oldest first, with its field changes."""
    object_delta_model = get_object_delta_model()
    attribute_delta_model = get_attribute_delta_model()
    using = using or router.db_for_read(object_delta_model)
    content_type = ContentType.objects.db_manager(using).get_for_model(
        model, for_concrete_model=True
    )
    names = _ActorNames(using)
    deltas = object_delta_model._default_manager.db_manager(using).filter(
        content_type=content_type, content_id=str(pk)
    )
    last = 0
    while True:
        batch = list(
            deltas.filter(pk__gt=last)
            .select_related("revision")
            .order_by("pk")[:batch_size]
        )
        if not batch:
            return
        last = batch[-1].pk
        entries: dict[int, Entry] = {}
        for delta in batch:
            entries[delta.pk] = Entry(
                object_delta_id=delta.pk,
                revision_id=delta.revision_id,  # type: ignore[attr-defined]
                created_at=delta.created_at,  # type: ignore[attr-defined]
                action=delta.action,  # type: ignore[attr-defined]
                actor=names(delta.actor_type_id, delta.actor_id),  # type: ignore[attr-defined]
                message=delta.revision.description,  # type: ignore[attr-defined]
                description=delta.description,  # type: ignore[attr-defined]
            )
        attributes = (
            attribute_delta_model._default_manager.db_manager(using)
            .filter(parent__in=list(entries))
            .order_by("parent", "pk")
            .values_list(
                "parent",
                "field_name",
                "action",
                "old_value",
                "new_value",
                "actor_type",
                "actor_id",
                "description",
            )
        )
        for parent, name, action, old, new, type_id, actor_id, text in attributes:
            entries[parent].changes.append(
                FieldChange(name, action, old, new, names(type_id, actor_id), text)
            )
        yield from entries.values()
