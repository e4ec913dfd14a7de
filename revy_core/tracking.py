"""How changes to tracked models are captured and written to history.

revy patches each tracked model class once, at startup:

- ``from_db`` fills loaded instances without per-field ``setattr`` and keeps
  a reference to the loaded values as the baseline (no copy, except for
  mutable values such as JSON);
- ``__setattr__`` notes, for fields assigned inside an enabled context, the
  actor and attribute description active at that moment;
- ``save_base`` diffs the saved fields against the baseline and writes the
  object delta and its attribute deltas in the same transaction as the save,
  in a fixed number of statements;
- ``refresh_from_db`` resets the baseline of the fields it reloads.

Outside a context, or in a disabled one, nothing is written; the baseline is
still kept current, so the first tracked save records the true old values.
"""

from __future__ import annotations

import copy
import functools
import marshal
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.db import connections, router, transaction
from django.db.models import JSONField, Model
from django.db.models.base import ModelState
from django.db.models.signals import post_init, post_migrate, pre_init
from django.utils import timezone

from revy_core import values as value_codec
from revy_core import writer
from revy_core.conf import (
    ALWAYS_EXCLUDED_APPS,
    ALWAYS_EXCLUDED_MODELS,
    get_attribute_delta_model,
    get_object_delta_model,
    get_revision_model,
    revy_settings,
)
from revy_core.context import Frame, LazyRevision, current_frame, resolve_actor

if TYPE_CHECKING:
    from django.db.models import Field

__all__ = [
    "AttributeChange",
    "ObjectChange",
    "Tracker",
    "baseline",
    "create_change",
    "deletion_change",
    "forget_baseline",
    "install",
    "is_tracked",
    "rebaseline",
    "record",
    "tracker_for",
    "write_history",
]

_BASE = "_revy_base"
_BASE_NAMES = "_revy_base_names"
_BASE_FROZEN = "_revy_base_frozen"
_MARKS = "_revy_marks"
_CHAINS = "_revy_chain"
_SAVING = "_revy_saving"
_UPDATED = "_revy_updated"
_SAVED_IN = "_revy_saved_in"

_object_setattr = object.__setattr__
_marshal = marshal.dumps
_unmarshal = marshal.loads
_trackers: dict[type[Model], Tracker] = {}


@dataclass(frozen=True)
class TrackedField:
    field: Field[Any, Any]
    name: str
    attname: str
    masked: bool
    mutable: bool
    dump: Callable[[Any], Any]


class Tracker:
    """What revy knows about one tracked model class."""

    def __init__(self, model: type[Model], fields: Sequence[TrackedField]) -> None:
        self.model = model
        self.fields = tuple(fields)
        self.by_attname = {f.attname: f for f in self.fields}
        self.by_name = {f.name: f for f in self.fields}
        self.attnames = frozenset(self.by_attname)
        self.mutable = tuple(f.attname for f in self.fields if f.mutable)
        self.mutable_names = frozenset(self.mutable)
        self.attname_order = tuple(f.attname for f in self.fields)
        self.pk_attname = model._meta.pk.attname if model._meta.pk else "pk"
        self.plain_init = model.__init__ in (Model.__init__, _construct)
        self.fast_load: bool | None = None
        #: The field names of the last loaded query, and where each mutable
        #: field is in them.
        self.mutable_positions: tuple[Sequence[str], list[tuple[str, int]]] | None = (
            None
        )

    def __repr__(self) -> str:
        return f"<Tracker {self.model._meta.label}>"

    def select(self, update_fields: Iterable[str] | None) -> Sequence[TrackedField]:
        if update_fields is None:
            return self.fields
        wanted = set(update_fields)
        return [f for f in self.fields if f.name in wanted or f.attname in wanted]


def tracker_for(model: type[Model]) -> Tracker | None:
    """The tracker of a model class, or ``None`` when it is not tracked."""
    return _trackers.get(model)


def is_tracked(model: type[Model]) -> bool:
    return model in _trackers


# Baselines -------------------------------------------------------------


def _frozen(value: Any) -> Any:
    """What a mutable value is now, kept apart from it so in-place changes
    show in the diff; ``None`` for an immutable value (kept as it is).

    JSON values (dicts and lists of strings, numbers, booleans and ``None``)
    are kept as ``marshal`` bytes: one call in C, and bytes are no work for
    the garbage collector. Values holding anything else are kept as a
    ``(copy,)`` made by a plain recursive walk, several times faster than
    ``copy.deepcopy``, which is left for other mutable types.
    """
    kind = type(value)
    if kind is dict or kind is list:
        try:
            return _marshal(value)
        except ValueError:  # not only JSON types inside
            return (_walk(value),)
    if isinstance(value, (dict, list)):
        return (copy.deepcopy(value),)
    return None


def _thawed(kept: Any) -> Any:
    """A fresh copy of a value ``_frozen`` kept."""
    return _unmarshal(kept) if type(kept) is bytes else kept[0]


def _copy_value(value: Any) -> Any:
    """A copy of a mutable value (``value`` itself when immutable)."""
    kept = _frozen(value)
    return value if kept is None else _thawed(kept)


def _walk(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        return {key: _walk(item) for key, item in value.items()}
    if kind is list:
        return [_walk(item) for item in value]
    if isinstance(value, (dict, list)):
        return copy.deepcopy(value)
    return value


def baseline(instance: Model) -> dict[str, Any] | None:
    """The values of ``instance`` as the database last had them, by attname."""
    d = instance.__dict__
    base = d.get(_BASE)
    if base is None or type(base) is dict:
        return base
    # A loaded row, kept as it came (see ``from_db``): made a dict now. Nothing
    # is removed, so two threads reading it at once build the same dict.
    names = d.get(_BASE_NAMES)
    frozen = d.get(_BASE_FROZEN)
    if names is None:
        # (names, values, copies): the form in which earlier versions kept
        # a loaded row, still found in instances they pickled.
        names, base, copies = base
        frozen = None
    else:
        copies = None
    built = dict(zip(names, base, strict=False))
    if frozen:
        for attname, kept in frozen.items():
            built[attname] = _thawed(kept)
    if copies:
        built.update(copies)
    d[_BASE] = built
    return built


def _rebaseline(instance: Model, tracker: Tracker, attnames: Iterable[str]) -> None:
    d = instance.__dict__
    base = dict(baseline(instance) or ())
    marks = d.get(_MARKS)
    chains = d.get(_CHAINS)
    mutable = tracker.mutable_names
    for attname in attnames:
        if attname in d:
            value = d[attname]
            base[attname] = _copy_value(value) if attname in mutable else value
        if marks:
            marks.pop(attname, None)
        if chains:
            chains.pop(attname, None)
    d[_BASE] = base


def rebaseline(instance: Model, tracker: Tracker, attnames: Iterable[str]) -> None:
    """Take the current values of ``attnames`` as what the database holds."""
    _rebaseline(instance, tracker, attnames)


def forget_baseline(instance: Model, attnames: Iterable[str]) -> None:
    """Forget the stored values of ``attnames`` (the next save reads them)."""
    d = instance.__dict__
    base = dict(baseline(instance) or ())
    marks = d.get(_MARKS)
    for attname in attnames:
        base.pop(attname, None)
        if marks:
            marks.pop(attname, None)
    d[_BASE] = base


def _freeze(
    tracker: Tracker, field_names: Sequence[str], values: Sequence[Any]
) -> dict[str, Any] | None:
    """What a loaded row's mutable values were (``_frozen``), taken before
    anyone can change them in place; ``None`` when all are immutable."""
    positions = tracker.mutable_positions
    if positions is None or positions[0] is not field_names:
        # Django passes one list of names for every row of a query.
        positions = tracker.mutable_positions = (
            field_names,
            [(a, field_names.index(a)) for a in tracker.mutable if a in field_names],
        )
    frozen = None
    for attname, index in positions[1]:
        kept = _frozen(values[index])
        if kept is None:
            continue
        if frozen is None:
            frozen = {attname: kept}
        else:
            frozen[attname] = kept
    return frozen


# Patched methods ---------------------------------------------------------


def _wrap_from_db(original: Callable[..., Model]) -> Callable[..., Model]:
    # A model's own from_db (Django's documented hook) always runs.
    djangos = original is Model.from_db.__func__  # type: ignore[attr-defined]

    def from_db(
        cls: type[Model], db: str, field_names: Sequence[str], values: Sequence[Any]
    ) -> Model:
        tracker = _trackers.get(cls)
        if tracker is None:
            return original(cls, db, field_names, values)
        if tracker.fast_load is None:
            tracker.fast_load = (
                djangos
                and tracker.plain_init
                and not (pre_init.has_listeners(cls) or post_init.has_listeners(cls))
            )
        if tracker.fast_load:
            new = cls.__new__(cls)
            state = ModelState()
            state.adding = False
            state.db = db
            d = new.__dict__
            d["_state"] = state
            d.update(zip(field_names, values, strict=False))
        else:
            new = original(cls, db, field_names, values)
            d = new.__dict__
            d.pop(_MARKS, None)
            d.pop(_CHAINS, None)
        # The row itself is the baseline until something reads it
        # (``baseline``): no dict per row, and no copies but of mutable values.
        d[_BASE] = values
        d[_BASE_NAMES] = field_names
        if tracker.mutable:
            frozen = _freeze(tracker, field_names, values)
            if frozen is not None:
                d[_BASE_FROZEN] = frozen
        return new

    from_db._revy = True  # type: ignore[attr-defined]
    return from_db


def _same_actor(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return a.get("actor") == b.get("actor") and a.get(
        "attribute_delta_description"
    ) == b.get("attribute_delta_description")


def _mark(d: dict[str, Any], name: str, values: Mapping[str, Any]) -> None:
    marks = d.get(_MARKS)
    if marks is None:
        d[_MARKS] = {name: values}
        return
    previous = marks.get(name)
    if (
        previous is not None
        and previous is not values
        and name in d
        and not _same_actor(previous, values)
    ):
        d.setdefault(_CHAINS, {}).setdefault(name, []).append((previous, d[name]))
    marks[name] = values


def _setattr(self: Model, name: str, value: Any) -> None:
    frame = current_frame()
    if frame is not None and frame.tracking:
        tracker = _trackers.get(type(self))
        if tracker is not None and name in tracker.attnames:
            _mark(self.__dict__, name, frame.values)
    _object_setattr(self, name, value)


_setattr._revy = True  # type: ignore[attr-defined]


def _constructor() -> Callable[..., None]:
    """``Model.__init__`` that assigns fields without going through the hook.

    Django's ``__init__`` assigns each field through the builtin ``setattr``,
    which on a tracked model calls revy's Python ``__setattr__``: a Python
    call per field for every instance built in code. This is the same code
    object with ``setattr`` bound to ``object.__setattr__`` (which still runs
    descriptors such as foreign key setters), so building an instance costs
    what it costs on a plain model. Values given at construction are credited
    to the actor of the context that saves the instance.
    """
    init = Model.__init__
    if "setattr" not in init.__code__.co_names:  # pragma: no cover - future Django
        return init
    namespace = dict(init.__globals__)
    namespace["setattr"] = object.__setattr__
    construct = types.FunctionType(
        init.__code__, namespace, init.__name__, init.__defaults__, init.__closure__
    )
    construct.__kwdefaults__ = init.__kwdefaults__
    construct.__qualname__ = init.__qualname__
    construct.__doc__ = init.__doc__
    construct.__module__ = init.__module__
    return construct


_construct = _constructor()


def _wrap_save_table(original: Callable[..., bool]) -> Callable[..., bool]:
    def _save_table(self: Model, *args: Any, **kwargs: Any) -> bool:
        updated = original(self, *args, **kwargs)
        self.__dict__[_UPDATED] = updated
        return updated

    _save_table._revy = True  # type: ignore[attr-defined]
    return _save_table


def _wrap_refresh_from_db(original: Callable[..., None]) -> Callable[..., None]:
    def refresh_from_db(self: Model, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        tracker = _trackers.get(type(self))
        if tracker is None:
            return
        fields = kwargs.get("fields", args[1] if len(args) > 1 else None)
        attnames = [f.attname for f in tracker.select(fields)]
        _rebaseline(self, tracker, attnames)

    refresh_from_db._revy = True  # type: ignore[attr-defined]
    return refresh_from_db


def _wrap_save_base(original: Callable[..., None]) -> Callable[..., None]:
    def save_base(
        self: Model,
        raw: bool = False,
        force_insert: Any = False,
        force_update: bool = False,
        using: str | None = None,
        update_fields: Iterable[str] | None = None,
    ) -> None:
        tracker = _trackers.get(type(self))
        d = self.__dict__
        if tracker is None or d.get(_SAVING):
            original(self, raw, force_insert, force_update, using, update_fields)
            return
        fields = tracker.select(update_fields)
        frame = current_frame()
        if frame is None or not frame.tracking:
            original(self, raw, force_insert, force_update, using, update_fields)
            _rebaseline(self, tracker, _attnames(tracker, fields))
            return
        using = using or router.db_for_write(type(self), instance=self)
        connection = connections[using]
        args = (raw, force_insert, force_update, using, update_fields)
        if connection.in_atomic_block:
            # What ``atomic(savepoint=False)`` does inside a transaction, and
            # Django's own ``save_base`` there, without its bookkeeping: a
            # failure marks the transaction, which can then only roll back.
            writer.join(connection)
            try:
                held = writer.holds(connection)
                fields = _save(self, tracker, fields, frame, connection, original, args)
            except BaseException:
                connection.needs_rollback = True
                raise
            finally:
                writer.leave(connection)
        else:
            with transaction.atomic(using=using, savepoint=False):
                held = writer.holds(connection)
                fields = _save(self, tracker, fields, frame, connection, original, args)
        if held:
            # Should the caller's transaction roll back, the database holds
            # the old values again: so must the baseline.
            old = baseline(self)
            writer.restore_on_rollback(
                connection, self, _BASE, writer.MISSING if old is None else old
            )
        _rebaseline(self, tracker, _attnames(tracker, fields))

    save_base._revy = True  # type: ignore[attr-defined]
    return save_base


def _save(
    instance: Model,
    tracker: Tracker,
    fields: Sequence[TrackedField],
    frame: Frame,
    connection: Any,
    original: Callable[..., None],
    args: tuple[Any, ...],
) -> Sequence[TrackedField]:
    """Save ``instance`` and write its change, in the caller's transaction;
    return the fields whose baseline moves."""
    raw, force_insert, _, using, _ = args
    d = instance.__dict__
    prior = _prior_values(instance, tracker, fields, using, raw, force_insert)
    d[_SAVING] = True
    try:
        original(instance, *args)
    finally:
        d.pop(_SAVING, None)
    if d.pop(_UPDATED, True):
        change = _update_change(instance, tracker, fields, prior, frame)
    else:
        fields = tracker.fields
        change = create_change(instance, tracker, frame)
    if change is not None:
        write_history(using, [change], frame, connection)
    return fields


def _attnames(tracker: Tracker, fields: Sequence[TrackedField]) -> Sequence[str]:
    if fields is tracker.fields:
        return tracker.attname_order
    return [f.attname for f in fields]


def _prior_values(
    instance: Model,
    tracker: Tracker,
    fields: Sequence[TrackedField],
    using: str,
    raw: bool,
    force_insert: Any,
) -> dict[str, Any]:
    """Values the database holds for fields the baseline does not know."""
    pk = instance.pk
    if pk is None or force_insert:
        return {}
    meta = instance._meta
    if instance._state.adding and meta.pk is not None and meta.pk.has_default():
        return {}
    base = baseline(instance)
    missing = [f.attname for f in fields if base is None or f.attname not in base]
    if not missing:
        return {}
    queryset = type(instance)._base_manager.db_manager(using).filter(pk=pk)
    if connections[using].features.has_select_for_update:
        queryset = queryset.select_for_update()
    row = queryset.values(*missing).first()
    return row or {}


# Building changes ----------------------------------------------------------


@dataclass
class AttributeChange:
    name: str
    old: Any
    new: Any
    action: str
    actor: Model | None
    description: str


@dataclass
class ObjectChange:
    model: type[Model]
    pk: Any
    action: str
    actor: Model | None
    description: str
    attributes: list[AttributeChange] = field(default_factory=list)


def _stored(tf: TrackedField, value: Any) -> Any:
    return _masked(tf, tf.dump(value))


def _masked(tf: TrackedField, dumped: Any) -> Any:
    """What history stores of a dumped value: the mask for a masked field."""
    if tf.masked and dumped is not None:
        return revy_settings.mask
    return dumped


def _who(values: Mapping[str, Any]) -> tuple[Model | None, str]:
    return values.get("actor"), values.get("attribute_delta_description") or ""


def create_change(instance: Model, tracker: Tracker, frame: Frame) -> ObjectChange:
    """A Create object delta holding the initial value of every field."""
    object_delta = get_object_delta_model()
    set_ = get_attribute_delta_model().ACTION_SET  # type: ignore[attr-defined]
    d = instance.__dict__
    marks = d.get(_MARKS) or {}
    change = ObjectChange(
        model=type(instance),
        pk=instance.pk,
        action=object_delta.ACTION_CREATE,  # type: ignore[attr-defined]
        actor=frame.values.get("actor"),
        description=frame.values.get("object_delta_description") or "",
    )
    for tf in tracker.fields:
        if tf.attname not in d:
            continue
        actor, description = _who(marks.get(tf.attname, frame.values))
        change.attributes.append(
            AttributeChange(
                tf.name, None, _stored(tf, d[tf.attname]), set_, actor, description
            )
        )
    return change


def _update_change(
    instance: Model,
    tracker: Tracker,
    fields: Sequence[TrackedField],
    prior: Mapping[str, Any],
    frame: Frame,
) -> ObjectChange | None:
    set_ = get_attribute_delta_model().ACTION_SET  # type: ignore[attr-defined]
    d = instance.__dict__
    base = baseline(instance) or {}
    marks = d.get(_MARKS) or {}
    chains = d.get(_CHAINS) or {}
    attributes: list[AttributeChange] = []
    for tf in fields:
        attname = tf.attname
        if attname not in d:
            continue
        old = base[attname] if attname in base else prior.get(attname)
        new = d[attname]
        if old is new:
            continue
        dump = tf.dump
        previous_dumped = dump(old)
        new_dumped = dump(new)
        if previous_dumped == new_dumped:
            continue
        steps = [*chains.get(attname, ()), (marks.get(attname, frame.values), new)]
        previous = _masked(tf, previous_dumped)
        for values, value in steps:
            dumped = new_dumped if value is new else dump(value)
            if dumped == previous_dumped:
                continue
            stored = _masked(tf, dumped)
            actor, description = _who(values)
            attributes.append(
                AttributeChange(tf.name, previous, stored, set_, actor, description)
            )
            previous, previous_dumped = stored, dumped
    if not attributes:
        return None
    return ObjectChange(
        model=type(instance),
        pk=instance.pk,
        action=get_object_delta_model().ACTION_UPDATE,  # type: ignore[attr-defined]
        actor=frame.values.get("actor"),
        description=frame.values.get("object_delta_description") or "",
        attributes=attributes,
    )


def deletion_change(
    tracker: Tracker,
    pk: Any,
    values: Mapping[str, Any],
    actor: Model | None,
    description: str,
    attribute_description: str,
) -> ObjectChange:
    """A Delete object delta holding the final value of every field."""
    unset = get_attribute_delta_model().ACTION_UNSET  # type: ignore[attr-defined]
    change = ObjectChange(
        model=tracker.model,
        pk=pk,
        action=get_object_delta_model().ACTION_DELETE,  # type: ignore[attr-defined]
        actor=actor,
        description=description,
    )
    for tf in tracker.fields:
        if tf.attname in values:
            change.attributes.append(
                AttributeChange(
                    tf.name,
                    _stored(tf, values[tf.attname]),
                    None,
                    unset,
                    actor,
                    attribute_description,
                )
            )
    return change


def stored_value(tracker: Tracker, attname: str, value: Any) -> Any:
    return _stored(tracker.by_attname[attname], value)


# Writing history -----------------------------------------------------------


def _resolve_revision(using: str, frame: Frame, connection: Any) -> Model:
    """The revision of the changes being written: saved, or deferred (no key
    yet) where the statement writing the deltas will insert it."""
    value = frame.values.get("revision")
    description = frame.values.get("revision_description") or ""
    if isinstance(value, LazyRevision):
        return value.resolve(using, description, defer=True, connection=connection)
    if value is None:
        revision = get_revision_model()(description=description)
        if not writer.defer_revision(revision, using):
            writer.save_revision(revision, using)
        return revision
    if value.pk is None or _rolled_back(value, using):
        if description and not getattr(value, "description", ""):
            value.description = description
        value.pk = None
        value._state.adding = True
        writer.save_revision(value, using)
        _remember_transaction(value, using)
    return value  # type: ignore[no-any-return]


def _remember_transaction(revision: Model, using: str) -> None:
    """Note the transaction that saved a context's revision instance.

    If it rolls back, the next change saves the revision again rather than
    pointing to a row that does not exist. Django drops the on-commit
    callbacks of a rolled back transaction or savepoint, so the revision is
    alive exactly while its callback waits (or once it has run).
    """
    d = revision.__dict__
    connection = connections[using]
    if not connection.in_atomic_block:
        d.pop(_SAVED_IN, None)
        return

    def committed() -> None:
        d.pop(_SAVED_IN, None)

    transaction.on_commit(committed, using=using)
    d[_SAVED_IN] = (using, committed)


def _rolled_back(revision: Model, using: str) -> bool:
    entry = revision.__dict__.get(_SAVED_IN)
    if entry is None or entry[0] != using:
        return False
    connection = connections[using]
    marker = entry[1]
    return not (
        connection.in_atomic_block
        and any(item[1] is marker for item in connection.run_on_commit)
    )


def _actor_key(content_types: Any, value: Any) -> tuple[int | None, str | None]:
    actor = resolve_actor(value)
    if actor is None:
        return None, None
    if actor.pk is None:
        raise ValueError(f"The actor {actor!r} must be saved before it can act.")
    return content_types.get_for_model(actor).pk, str(actor.pk)


_OBJECT_COLUMNS = (
    "revision_id",
    "actor_type_id",
    "actor_id",
    "action",
    "description",
    "content_type_id",
    "content_id",
    "created_at",
)
_ATTRIBUTE_COLUMNS = (
    "parent_id",
    *_OBJECT_COLUMNS,
    "field_name",
    "old_value",
    "new_value",
)


_managers: dict[str, Any] = {}


def _content_types(using: str) -> Any:
    """``ContentType.objects`` on ``using``, made once per alias (the copies
    share the manager's cache)."""
    manager = _managers.get(using)
    if manager is None:
        manager = _managers[using] = ContentType.objects.db_manager(using)
    return manager


def write_history(
    using: str,
    changes: Sequence[ObjectChange],
    frame: Frame,
    connection: Any = None,
) -> None:
    """Write object and attribute deltas for ``changes`` in bulk.

    One revision (unless the context already has one), one insert of object
    deltas (one per change where the backend cannot return bulk primary
    keys) and one bulk insert of attribute deltas, written from prepared
    parameter rows (``revy_core.writer``), not model instances.
    ``connection`` is ``connections[using]``, where the caller has it.
    """
    if not changes:
        return
    if connection is None:
        connection = connections[using]
    revision = _resolve_revision(using, frame, connection)
    revision_pk = revision.pk
    objects = writer.insert_for(get_object_delta_model(), connection, _OBJECT_COLUMNS)
    attributes = writer.insert_for(
        get_attribute_delta_model(), connection, _ATTRIBUTE_COLUMNS
    )
    now = objects.created_at.get_db_prep_save(timezone.now(), connection)
    old_json = attributes.json("old_value", connection)
    new_json = attributes.json("new_value", connection)
    content_types = _content_types(using)
    actors: dict[int, tuple[int | None, str | None]] = {}
    type_ids: dict[type[Model], int] = {}

    def actor_key(actor: Model | None) -> tuple[int | None, str | None]:
        key = id(actor)
        if key not in actors:
            actors[key] = _actor_key(content_types, actor)
        return actors[key]

    object_rows = []
    attribute_rows = []
    complete_object = objects.complete
    for change in changes:
        actor_type_id, actor_id = actor_key(change.actor)
        type_id = type_ids.get(change.model)
        if type_id is None:
            type_id = type_ids[change.model] = content_types.get_for_model(
                change.model
            ).pk
        content_id = str(change.pk)
        object_rows.append(
            complete_object(
                (
                    revision_pk,
                    actor_type_id,
                    actor_id,
                    change.action,
                    change.description,
                    type_id,
                    content_id,
                    now,
                ),
                connection,
            )
        )
        rows = []
        for attribute in change.attributes:
            actor_type_id, actor_id = actor_key(attribute.actor)
            old, new = attribute.old, attribute.new
            rows.append(
                (
                    revision_pk,
                    actor_type_id,
                    actor_id,
                    attribute.action,
                    attribute.description,
                    type_id,
                    content_id,
                    now,
                    attribute.name,
                    None if old is None else old_json(old, connection),
                    None if new is None else new_json(new, connection),
                )
            )
        if attributes.defaults:
            rows = [attributes.complete(row, connection) for row in rows]
        attribute_rows.append(rows)
    writer.write(
        connection,
        objects,
        object_rows,
        attributes,
        attribute_rows,
        revision if revision_pk is None else None,
    )


def record(
    model: type[Model],
    pk: Any,
    action: str,
    values: Mapping[str, tuple[Any, Any]],
    *,
    using: str | None = None,
) -> None:
    """Record a change made where revy cannot see it (raw SQL, ``QuerySet.raw``).

    ``action`` is an ``ObjectDelta`` action; ``values`` maps field names to
    ``(old, new)`` Python values (``None`` for the side a Create or Delete
    lacks). The change is written in the current context, with its actor and
    descriptions, inside the caller's transaction; outside an enabled
    context nothing is written.
    """
    frame = current_frame()
    tracker = _trackers.get(model)
    if frame is None or not frame.tracking or tracker is None:
        return
    object_delta = get_object_delta_model()
    attribute_delta = get_attribute_delta_model()
    unset = action == object_delta.ACTION_DELETE  # type: ignore[attr-defined]
    attribute_action = (
        attribute_delta.ACTION_UNSET  # type: ignore[attr-defined]
        if unset
        else attribute_delta.ACTION_SET  # type: ignore[attr-defined]
    )
    actor, description = _who(frame.values)
    change = ObjectChange(
        model=model,
        pk=pk,
        action=action,
        actor=actor,
        description=frame.values.get("object_delta_description") or "",
    )
    for name, (old, new) in values.items():
        tf = tracker.by_name.get(name) or tracker.by_attname[name]
        change.attributes.append(
            AttributeChange(
                tf.name,
                None if old is None else _stored(tf, old),
                None if new is None else _stored(tf, new),
                attribute_action,
                actor,
                description,
            )
        )
    using = using or router.db_for_write(model)
    with transaction.atomic(using=using, savepoint=False):
        write_history(using, [change], frame)


# Installation ---------------------------------------------------------------


def _labels(model: type[Model]) -> list[str]:
    meta = model._meta
    return [meta.label_lower] + [p._meta.label_lower for p in meta.get_parent_list()]


def _wanted(model: type[Model]) -> bool:
    meta = model._meta
    if meta.abstract or meta.swapped:
        return False
    if meta.auto_created:
        # A many-to-many table Django creates is tracked with its model.
        owner = meta.auto_created
        return isinstance(owner, type) and owner is not model and _wanted(owner)
    label = meta.label_lower
    history = {
        revy_settings.revision_model.lower(),
        revy_settings.object_delta_model.lower(),
        revy_settings.attribute_delta_model.lower(),
    }
    if (
        meta.app_label in ALWAYS_EXCLUDED_APPS
        or label in ALWAYS_EXCLUDED_MODELS
        or label in history
    ):
        return False
    chosen = revy_settings.models
    if chosen is not None:
        chosen_lower = {name.lower() for name in chosen}
        if label not in chosen_lower and meta.app_label.lower() not in chosen_lower:
            return False
    excluded = {name.lower() for name in revy_settings.exclude_models}
    return label not in excluded and meta.app_label.lower() not in excluded


def _field_names_by_label(setting: Mapping[str, Sequence[str]]) -> dict[str, set[str]]:
    return {label.lower(): set(names) for label, names in setting.items()}


def build_tracker(model: type[Model]) -> Tracker:
    from django.contrib.auth.base_user import AbstractBaseUser

    labels = _labels(model)
    excluded = _field_names_by_label(revy_settings.exclude_fields)
    masked = _field_names_by_label(revy_settings.masked_fields)
    excluded_names = set().union(*(excluded.get(label, ()) for label in labels))
    masked_names = set().union(*(masked.get(label, ()) for label in labels))
    if issubclass(model, AbstractBaseUser):
        masked_names.add("password")
    fields = [
        TrackedField(
            field=f,
            name=f.name,
            attname=f.attname,
            masked=f.name in masked_names or f.attname in masked_names,
            mutable=isinstance(f, JSONField)
            or f.get_internal_type() in {"ArrayField", "HStoreField"},
            dump=value_codec.dumper(f),
        )
        for f in model._meta.concrete_fields
        if not getattr(f, "generated", False)
        and f.name not in excluded_names
        and f.attname not in excluded_names
    ]
    return Tracker(model, fields)


def _patch(model: type[Model], name: str, wrap: Callable[[Any], Any]) -> None:
    current = getattr(model, name)
    if getattr(current, "_revy", False):
        return
    if name == "from_db":
        setattr(model, name, classmethod(wrap(current.__func__)))
    else:
        setattr(model, name, wrap(current))


def install() -> None:
    """Track every wanted model of the app registry (runs in ``ready()``)."""
    from revy_core import queryset

    for model in apps.get_models(include_auto_created=True):
        if not _wanted(model):
            continue
        _trackers[model] = build_tracker(model)
        _patch(model, "from_db", _wrap_from_db)
        _patch(model, "save_base", _wrap_save_base)
        _patch(model, "_save_table", _wrap_save_table)
        _patch(model, "refresh_from_db", _wrap_refresh_from_db)
        if not getattr(model.__setattr__, "_revy", False):
            model.__setattr__ = _setattr  # type: ignore[assignment,method-assign]
        if model.__init__ is Model.__init__:
            model.__init__ = _construct  # type: ignore[method-assign]
    _watch_init_signals()
    queryset.install()
    writer.install()
    post_migrate.connect(
        _create_through_content_types, dispatch_uid="revy_through_content_types"
    )


def _create_through_content_types(
    app_config: Any, using: str = "default", apps: Any = apps, **kwargs: Any
) -> None:
    """Content types for the tracked many-to-many tables Django creates.

    Django's ``migrate`` creates a content type for every model but these;
    created on first use instead, inside a transaction that may roll back,
    a content type would stay in Django's cache without its row.
    """
    try:
        content_type_model = apps.get_model("contenttypes", "ContentType")
    except LookupError:
        return
    for model in app_config.get_models(include_auto_created=True):
        if model._meta.auto_created and model in _trackers:
            content_type_model.objects.using(using).get_or_create(
                app_label=model._meta.app_label, model=model._meta.model_name
            )


def _forget_fast_load() -> None:
    for tracker in _trackers.values():
        tracker.fast_load = None


def _watch_init_signals() -> None:
    """Decide the fast load path again whenever init receivers change.

    ``from_db`` skips ``Model.__init__`` (and so ``pre_init``/``post_init``)
    for models without receivers of those signals, a decision it takes on
    the first load and keeps. A receiver connected later must still be
    called, so connecting or disconnecting one forgets the decision; the
    load path itself pays nothing for this.
    """
    for signal in (pre_init, post_init):
        if getattr(signal, "_revy_watched", False):
            continue
        for name in ("connect", "disconnect"):
            signal.__dict__[name] = _watched(getattr(signal, name))
        signal.__dict__["_revy_watched"] = True


def _watched(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def watched(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        finally:
            _forget_fast_load()

    return watched


def tracked_models() -> list[type[Model]]:
    return list(_trackers)
