"""Reading one object's history back, delta by delta.

``object_history(Model, pk)`` yields one ``Entry`` per object delta, oldest
first, with the revision's message, the actor and each field's old and new
value. It reads in batches of object deltas, two queries per batch (the
object deltas with their revision's message, then their attribute deltas),
so an object with a long history never sits in memory whole. Rows are read
as tuples and the stored JSON values of a batch are decoded in one pass;
actors' names are read when first asked for, one query per actor.
``label_model`` and ``model_from_label`` are the ``app_label.Model``
spelling the management commands use.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ObjectDoesNotExist
from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model

from revy_core.conf import (
    get_attribute_delta_model,
    get_object_delta_model,
    get_revision_model,
)

__all__ = [
    "Entry",
    "FieldChange",
    "actor_name",
    "model_from_label",
    "object_history",
]

BATCH_SIZE = 500


@dataclass(slots=True)
class FieldChange:
    """One attribute delta: ``field``, ``old`` → ``new`` as stored (JSON).

    ``actor`` is how the attribute delta's actor reads (``actor_name``); it
    is looked up on first use.
    """

    field: str
    action: str
    old: Any
    new: Any
    actor_type_id: int | None
    actor_id: str | None
    description: str
    _names: _ActorNames | None = dataclasses.field(
        default=None, repr=False, compare=False
    )

    @property
    def actor(self) -> str:
        return _name(self._names, self.actor_type_id, self.actor_id)


@dataclass(slots=True)
class Entry:
    """One object delta of an object's history.

    ``actor`` is how the object delta's actor reads (``actor_name``); it is
    looked up on first use.
    """

    object_delta_id: int
    revision_id: int
    created_at: datetime.datetime
    action: str
    actor_type_id: int | None
    actor_id: str | None
    message: str
    description: str
    changes: list[FieldChange] = dataclasses.field(default_factory=list)
    _names: _ActorNames | None = dataclasses.field(
        default=None, repr=False, compare=False
    )

    @property
    def actor(self) -> str:
        return _name(self._names, self.actor_type_id, self.actor_id)

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


def _name(names: _ActorNames | None, type_id: int | None, actor_id: str | None) -> str:
    if names is None:
        names = _ActorNames(router.db_for_read(ContentType))
    return names(type_id, actor_id)


class _Reader:
    """The SQL of a history listing on one database (no connection kept:
    connections belong to their thread)."""

    def __init__(self, connection: BaseDatabaseWrapper) -> None:
        qn = connection.ops.quote_name
        object_delta = get_object_delta_model()._meta
        attribute_delta = get_attribute_delta_model()._meta
        revision = get_revision_model()._meta

        def column(meta: Any, name: str, alias: str) -> str:
            field = meta.pk if name == "pk" else meta.get_field(name)
            return f"{qn(alias)}.{qn(field.column)}"

        def od(name: str) -> str:
            return column(object_delta, name, "revy_od")

        def ad(name: str) -> str:
            return column(attribute_delta, name, "revy_ad")

        self.deltas = (
            f"SELECT {od('pk')}, {od('revision')}, {od('created_at')},"
            f" {od('action')}, {od('actor_type')}, {od('actor_id')},"
            f" {od('description')}, {column(revision, 'description', 'revy_r')}"
            f" FROM {qn(object_delta.db_table)} {qn('revy_od')}"
            f" INNER JOIN {qn(revision.db_table)} {qn('revy_r')}"
            f" ON {od('revision')} = {column(revision, 'pk', 'revy_r')}"
            f" WHERE {od('content_type')} = %s AND {od('content_id')} = %s"
            f" AND {od('pk')} > %s ORDER BY {od('pk')} LIMIT %s"
        )
        # The attribute deltas of a batch: its object deltas, found again on
        # revy_od_content_idx by their id range, then their attribute deltas
        # by their object delta.
        self.attributes = (
            f"SELECT {ad('parent')}, {ad('field_name')}, {ad('action')},"
            f" {ad('old_value')}, {ad('new_value')}, {ad('actor_type')},"
            f" {ad('actor_id')}, {ad('description')}"
            f" FROM {qn(attribute_delta.db_table)} {qn('revy_ad')}"
            f" INNER JOIN {qn(object_delta.db_table)} {qn('revy_od')}"
            f" ON {ad('parent')} = {od('pk')}"
            f" WHERE {od('content_type')} = %s AND {od('content_id')} = %s"
            f" AND {od('pk')} > %s AND {od('pk')} <= %s"
            f" ORDER BY {ad('parent')}, {ad('pk')}"
        )
        self.created_at = object_delta.get_field("created_at")
        self.value = attribute_delta.get_field("new_value")


def _converter(
    field: Any, connection: BaseDatabaseWrapper
) -> Callable[[Any], Any] | None:
    """What Django does to a value of ``field`` read from the database."""
    col = field.get_col(field.model._meta.db_table)
    converters = [
        *connection.ops.get_db_converters(col),
        *field.get_db_converters(connection),
    ]
    if not converters:
        return None

    def convert(value: Any) -> Any:
        for converter in converters:
            value = converter(value, col, connection)
        return value

    return convert


def _decoder(
    field: Any, connection: BaseDatabaseWrapper
) -> Callable[[Sequence[Any]], list[Any]]:
    """Decodes a batch of stored JSON values as the JSON field would."""
    convert = _converter(field, connection)
    col = field.get_col(field.model._meta.db_table)
    # The database gives a JSON value as its text: the values of a batch can
    # be decoded in one json.loads.
    batch = (
        not connection.ops.get_db_converters(col)
        and getattr(field, "decoder", None) is None
    )

    def decode(raw: Sequence[Any]) -> list[Any]:
        if batch and all(type(v) is str for v in raw if v is not None):
            texts = [v for v in raw if v is not None]
            try:
                decoded = json.loads("[" + ",".join(texts) + "]")
            except ValueError:
                decoded = None
            if decoded is not None and len(decoded) == len(texts):
                values = iter(decoded)
                return [None if v is None else next(values) for v in raw]
        return list(raw) if convert is None else [convert(v) for v in raw]

    return decode


_readers: dict[tuple[Any, ...], _Reader] = {}


def _reader(connection: BaseDatabaseWrapper) -> _Reader:
    key = (
        connection.alias,
        connection.vendor,
        get_object_delta_model(),
        get_attribute_delta_model(),
        get_revision_model(),
    )
    reader = _readers.get(key)
    if reader is None:
        reader = _readers[key] = _Reader(connection)
    return reader


def object_history(
    model: type[Model],
    pk: Any,
    *,
    using: str | None = None,
    batch_size: int = BATCH_SIZE,
) -> Iterator[Entry]:
    """Every object delta of one object, oldest first, with its field changes.

    Two queries per ``batch_size`` object deltas; the actors' names, read
    on first use of ``actor``, one more per actor.
    """
    using = using or router.db_for_read(get_object_delta_model())
    content_type = ContentType.objects.db_manager(using).get_for_model(
        model, for_concrete_model=True
    )
    connection = connections[using]
    reader = _reader(connection)
    convert = _converter(reader.created_at, connection)
    decode = _decoder(reader.value, connection)
    names = _ActorNames(using)
    key = (content_type.pk, str(pk))
    # Below every key: a backfilled baseline placed before an object's first
    # delta has a negative one.
    last = -(2**63)
    while True:
        with connection.cursor() as cursor:
            cursor.execute(reader.deltas, (*key, last, batch_size))
            rows = cursor.fetchall()
            if not rows:
                return
            first, last = last, rows[-1][0]
            cursor.execute(reader.attributes, (*key, first, last))
            attributes = cursor.fetchall()
        entries: dict[int, Entry] = {}
        for delta, revision, when, action, type_id, actor_id, text, message in rows:
            entries[delta] = Entry(
                delta,
                revision,
                when if convert is None else convert(when),
                action,
                type_id,
                actor_id,
                message,
                text,
                [],
                names,
            )
        values = decode([value for row in attributes for value in row[3:5]])
        for index, (parent, name, action, _, _, type_id, actor_id, text) in enumerate(
            attributes
        ):
            entries[parent].changes.append(
                FieldChange(
                    name,
                    action,
                    values[2 * index],
                    values[2 * index + 1],
                    type_id,
                    actor_id,
                    text,
                    names,
                )
            )
        yield from entries.values()
        if len(rows) < batch_size:
            return
