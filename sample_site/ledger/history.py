"""Reading history back: per object, per revision, at a point in time, the
difference between two points, and restoring deleted objects. Shared by the
API and the admin.

Everything here uses revy's public API: the state of an object at a point
and the difference between two points come from ``revy_core.diff``
(``state_at``, ``diff``); the per-delta listings read ``ObjectDelta`` (with
its ``attribute_deltas``) themselves, because they show who made each
change as an object (user, organization or system) where
``revy_core.history`` gives a display string; restores rebuild instances
with ``ObjectSnapshot``.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db import transaction as db

from revy_core import Context
from revy_core.diff import Diff, diff, state_at
from revy_core.models import AttributeDelta, ObjectDelta, ObjectSnapshot, Revision
from sample_site.ledger.errors import Conflict, NotFound
from sample_site.ledger.models import Account, Membership, Organization, Transaction

__all__ = [
    "Actor",
    "Entry",
    "FieldChange",
    "Point",
    "State",
    "actors",
    "difference",
    "display_name",
    "last_deletion",
    "object_history",
    "organization_id_of",
    "restore",
    "revision_history",
    "state",
]

SYSTEM_NAME = "System"


@dataclass(frozen=True)
class Actor:
    """Who made a change: ``kind`` is ``user``, ``organization`` or ``system``."""

    kind: str
    id: str | None
    name: str


SYSTEM = Actor("system", None, SYSTEM_NAME)


@dataclass
class FieldChange:
    field: str
    label: str
    old: Any
    new: Any
    action: str
    actor: Actor
    description: str


@dataclass
class Entry:
    """One object delta: what one revision did to one object."""

    revision_id: int
    created_at: datetime.datetime
    message: str
    action: str
    actor: Actor
    description: str
    model: type[models.Model] | None
    object_id: str
    changes: list[FieldChange] = field(default_factory=list)

    @property
    def object_type(self) -> str:
        return _type_name(self.model)


#: A point of an object's history: a revision id or an aware datetime.
Point = int | datetime.datetime


@dataclass
class State:
    """An object at a point of its history: whether it existed, its values as
    history stores them (related objects by primary key), and the revision
    and time of the last change by then (``None`` before its history)."""

    exists: bool
    values: dict[str, Any]
    revision_id: int | None
    created_at: datetime.datetime | None


def _type_name(model: type[models.Model] | None) -> str:
    if model is None:
        return "unknown"
    if model is get_user_model():
        return "user"
    return model._meta.model_name or model.__name__.lower()


def _actor_name(instance: models.Model) -> str:
    if isinstance(instance, get_user_model()):
        full_name = instance.get_full_name()
        return full_name or instance.get_username()
    return str(instance)


class _Actors:
    """Loads the actors of many deltas with one query per actor model."""

    def __init__(self, deltas: Iterable[Any]) -> None:
        wanted: dict[int, set[str]] = {}
        for delta in deltas:
            if delta.actor_type_id is not None:
                wanted.setdefault(delta.actor_type_id, set()).add(delta.actor_id)
        self._actors: dict[tuple[int, str], Actor] = {}
        for type_id, ids in wanted.items():
            model = ContentType.objects.get_for_id(type_id).model_class()
            found: dict[Any, Any] = {}
            if model is not None:
                pk_field = model._meta.pk
                assert pk_field is not None
                found = model._default_manager.in_bulk(
                    [pk_field.to_python(pk) for pk in ids]
                )
            for actor_id in ids:
                instance = None
                if model is not None:
                    pk_field = model._meta.pk
                    assert pk_field is not None
                    instance = found.get(pk_field.to_python(actor_id))
                kind = _type_name(model)
                if instance is not None:
                    name = _actor_name(instance)
                else:
                    name = _deleted_name(model, actor_id, _actor_name)
                self._actors[(type_id, actor_id)] = Actor(kind, actor_id, name)

    def of(self, delta: Any) -> Actor:
        if delta.actor_type_id is None:
            return SYSTEM
        return self._actors[(delta.actor_type_id, delta.actor_id)]


def _deleted_name(
    model: type[models.Model] | None,
    pk: Any,
    name: Callable[[models.Model], str] = str,
) -> str:
    """How to call an object that is gone: by its last recorded state."""
    kind = _type_name(model)
    deletion = None if model is None else last_deletion(model, pk)
    if deletion is not None:
        try:
            return f"{name(deletion.snapshot)} (deleted)"
        except Exception:  # its own related objects are gone too
            pass
    return f"{kind} #{pk} (deleted)"


def actors(deltas: Iterable[Any]) -> Callable[[Any], Actor]:
    """``actor_of(delta)`` for many deltas, loading the actors in bulk."""
    return _Actors(deltas).of


def display_name(model: type[models.Model], pk: Any) -> str:
    """``str()`` of an object, or of its last recorded state once deleted."""
    instance = model._default_manager.filter(pk=pk).first()
    if instance is not None:
        try:
            return str(instance)
        except Exception:
            return f"{_type_name(model)} #{pk}"
    return _deleted_name(model, pk)


def _label(model: type[models.Model] | None, name: str) -> str:
    if model is None:
        return name
    try:
        return str(getattr(model._meta.get_field(name), "verbose_name", name))
    except Exception:
        return name


def _entries(object_deltas: Sequence[Any]) -> list[Entry]:
    attribute_deltas = [a for d in object_deltas for a in d.attribute_deltas.all()]
    actors = _Actors([*object_deltas, *attribute_deltas])
    entries = []
    for delta in object_deltas:
        model = ContentType.objects.get_for_id(delta.content_type_id).model_class()
        entry = Entry(
            revision_id=delta.revision_id,
            created_at=delta.created_at,
            message=delta.revision.description,
            action=delta.action,
            actor=actors.of(delta),
            description=delta.description,
            model=model,
            object_id=delta.content_id,
        )
        for attribute in delta.attribute_deltas.all():
            entry.changes.append(
                FieldChange(
                    field=attribute.field_name,
                    label=_label(model, attribute.field_name),
                    old=attribute.old_value,
                    new=attribute.new_value,
                    action=attribute.action,
                    actor=actors.of(attribute),
                    description=attribute.description,
                )
            )
        entries.append(entry)
    return entries


def _deltas_of(model: type[models.Model], pk: Any) -> models.QuerySet[Any]:
    return ObjectDelta.objects.filter(
        content_type=ContentType.objects.get_for_model(model),
        content_id=str(pk),
    )


def _with_details(queryset: models.QuerySet[Any]) -> list[Any]:
    return list(
        queryset.select_related("revision")
        .prefetch_related(
            models.Prefetch(
                "attribute_deltas", queryset=AttributeDelta.objects.order_by("pk")
            )
        )
        .order_by("pk")
    )


def object_history(model: type[models.Model], pk: Any) -> list[Entry]:
    """Every delta of one object, oldest first."""
    return _entries(_with_details(_deltas_of(model, pk)))


def revision_history(revision_id: int) -> tuple[Any, list[Entry]]:
    """A revision and everything it changed, in the order it happened."""
    revision = Revision.objects.filter(pk=revision_id).first()
    if revision is None:
        raise NotFound(f"There is no revision {revision_id}.")
    return revision, _entries(
        _with_details(ObjectDelta.objects.filter(revision=revision))
    )


def _when(object_delta_ids: Iterable[int | None]) -> dict[int, tuple[int, Any]]:
    """``{object delta id: (revision id, created_at)}``, in one query."""
    ids = [pk for pk in object_delta_ids if pk is not None]
    rows = ObjectDelta.objects.filter(pk__in=ids).values_list(
        "pk", "revision_id", "created_at"
    )
    return {pk: (revision_id, created_at) for pk, revision_id, created_at in rows}


def _state(found: Any, when: dict[int, tuple[int, Any]]) -> State:
    revision_id, created_at = when.get(found.object_delta_id, (None, None))
    return State(found.exists, found.values, revision_id, created_at)


def state(model: type[models.Model], pk: Any, point: Point) -> State:
    """The object as it was after revision ``point``, or at time ``point``
    (``revy_core.diff.state_at``)."""
    found = state_at(model, pk, point)
    if found.object_delta_id is None:
        when = f"revision {point}" if isinstance(point, int) else f"{point}"
        raise NotFound(f"The {_type_name(model)} {pk} has no history as of {when}.")
    return _state(found, _when([found.object_delta_id]))


def difference(
    model: type[models.Model], pk: Any, start: Point | None, end: Point | None
) -> tuple[State, State, Diff]:
    """What changed in an object between two points (``revy_core.diff.diff``):
    ``start`` defaults to before its history, ``end`` to its latest state."""
    found = diff(model, pk, start, end)
    when = _when([found.start.object_delta_id, found.end.object_delta_id])
    return _state(found.start, when), _state(found.end, when), found


def last_deletion(model: type[models.Model], pk: Any) -> Any:
    """The last Delete delta of an object, with its ``snapshot``; or ``None``."""
    return (
        _deltas_of(model, pk)
        .filter(action=ObjectDelta.ACTION_DELETE)
        .annotate(snapshot=ObjectSnapshot(model))
        .order_by("-pk")
        .first()
    )


def organization_id_of(model: type[models.Model], pk: Any) -> int | None:
    """The organization an object belongs to, now or when it was last seen."""
    if model is Organization:
        return int(pk)
    if model is Transaction:
        account_id = _current_or_last(Transaction, pk, "account_id")
        return None if account_id is None else organization_id_of(Account, account_id)
    if model is Account or model is Membership:
        organization_id = _current_or_last(model, pk, "organization_id")
        return None if organization_id is None else int(organization_id)
    return None


def _current_or_last(model: type[models.Model], pk: Any, attname: str) -> Any:
    current = model._default_manager.filter(pk=pk).values_list(attname, flat=True)
    value = current.first()
    if value is not None:
        return value
    return state_at(model, pk).values.get(attname.removesuffix("_id"))


def _restore_one(delta: Any) -> models.Model:
    instance = delta.snapshot
    with Context.via_object_delta_description(
        f"Restored from its deletion in revision {delta.revision_id}."
    ):
        instance.save(force_insert=True)
    return instance  # type: ignore[no-any-return]


def restore(model: type[models.Model], pk: Any) -> list[models.Model]:
    """Bring back a deleted object, with its primary key, as a new revision.

    The object is rebuilt from its last Delete delta. Restoring an account
    also restores the transactions that were deleted with it. Returns the
    restored instances, the requested one first.
    """
    name = _type_name(model)
    if model._default_manager.filter(pk=pk).exists():
        raise Conflict(f"The {name} {pk} exists; there is nothing to restore.")
    deletion = last_deletion(model, pk)
    if deletion is None:
        raise NotFound(f"There is no deleted {name} {pk} in history.")
    instance = deletion.snapshot
    _check_references(instance, name, pk)
    message = f"Restore {name} {pk}."
    with ExitStack() as stack:
        stack.enter_context(db.atomic())
        if Context.get_revision() is None:
            # Outside a request: one revision for the whole restore.
            stack.enter_context(
                Context.via_revision(lambda: Revision(description=message))
            )
        elif not Context.get_revision_description():
            stack.enter_context(Context.via_revision_description(message))
        restored = [_restore_one(deletion)]
        if isinstance(instance, Account):
            restored += _restore_cascaded(deletion, instance)
    return restored


def _check_references(instance: models.Model, name: str, pk: Any) -> None:
    """Refuse to restore what points to deleted objects; a nullable reference
    to a deleted object is restored empty."""
    for f in instance._meta.concrete_fields:
        if not f.many_to_one or f.related_model is None:
            continue
        value = getattr(instance, f.attname, None)
        if value is None or f.attname in instance.get_deferred_fields():
            continue
        related = f.related_model
        assert not isinstance(related, str)
        if related._default_manager.filter(pk=value).exists():
            continue
        if f.null:
            setattr(instance, f.attname, None)
            continue
        other = _type_name(related)
        raise Conflict(
            f"The {name} {pk} belonged to the {other} {value}, which is deleted: "
            f"restore the {other} first."
        )


def _restore_cascaded(deletion: Any, account: Account) -> list[models.Model]:
    transaction_type = ContentType.objects.get_for_model(Transaction)
    deltas = (
        ObjectDelta.objects.filter(
            revision_id=deletion.revision_id,
            content_type=transaction_type,
            action=ObjectDelta.ACTION_DELETE,
        )
        .annotate(snapshot=ObjectSnapshot(Transaction))
        .order_by("pk")
    )
    restored = []
    for delta in deltas:
        snapshot = delta.snapshot
        if snapshot.account_id != account.pk:
            continue
        if Transaction.objects.filter(pk=snapshot.pk).exists():
            continue
        restored.append(_restore_one(delta))
    return restored
