"""Bulk writes: ``QuerySet.update``, ``bulk_create`` and ``bulk_update``.

revy replaces these three methods of Django's ``QuerySet`` once, at startup.
Outside an enabled context, or on a model that is not tracked, each costs
one ``ContextVar`` read (and one dictionary lookup) before Django's own
method runs. Inside one, the write and its history share a transaction, and
history is written in bulk:

- ``update(**kwargs)`` reads the affected rows' primary keys and old values
  (``SELECT ... FOR UPDATE`` where the database has row locks), runs the
  update, reads the new values back when a value is an expression (``F()``,
  ``Case`` ...), and records one Update object delta per row that changed
  with one attribute delta per changed field;
- ``bulk_create(objs)`` records a Create object delta per inserted object,
  with the primary key the database assigned. Where the backend cannot
  return primary keys from a bulk insert, objects without one are inserted
  one statement each so that each gets its key. With ``ignore_conflicts``,
  rows that conflict with an existing row (on the primary key or a unique
  field set) are found first and record nothing; with ``update_conflicts``
  they record an Update of ``update_fields``;
- ``bulk_update(objs, fields)`` records an Update object delta per object
  whose fields changed, against the values read from the database.

The async twins (``aupdate``, ``abulk_create``, ``abulk_update``) run these
methods through ``sync_to_async``, so they are recorded as well.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from django.core.exceptions import FieldDoesNotExist
from django.db import connections, transaction
from django.db.models import Model, QuerySet

from revy_core.context import Frame, current_frame

if TYPE_CHECKING:
    from revy_core.tracking import ObjectChange, TrackedField, Tracker

__all__ = ["install"]

#: Set while revy runs Django's own bulk method, whose inner ``update`` calls
#: are recorded by the outer method instead.
_recording: ContextVar[bool] = ContextVar("revy_recording", default=False)

_original_update = QuerySet.update
_original_bulk_create = QuerySet.bulk_create
_original_bulk_update = QuerySet.bulk_update


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _chunk_size(using: str) -> int:
    limit = connections[using].features.max_query_params
    return 10_000 if limit is None else max(1, limit - 10)


def _is_expression(value: Any) -> bool:
    return hasattr(value, "resolve_expression")


def _sort_key(pk: Any) -> Any:
    return (str(type(pk)), pk)


def _lockable(queryset: QuerySet[Any]) -> QuerySet[Any]:
    connection = connections[queryset.db]
    query = queryset.query
    if (
        not connection.features.has_select_for_update
        or query.distinct
        or query.combinator
        or query.group_by is not None
    ):
        return queryset
    if connection.features.has_select_for_update_of:
        return queryset.select_for_update(of=("self",))
    return queryset.select_for_update()


def _rows_by_pk(
    model: type[Model], using: str, pks: Sequence[Any], attnames: Sequence[str]
) -> dict[Any, tuple[Any, ...]]:
    """``{pk: (value, ...)}`` of ``attnames`` for ``pks``, locked, in chunks."""
    result: dict[Any, tuple[Any, ...]] = {}
    manager = model._base_manager.db_manager(using)
    for chunk in _chunks(pks, _chunk_size(using)):
        rows = _lockable(manager.filter(pk__in=chunk)).values_list("pk", *attnames)
        for pk, *values in rows:
            result[pk] = tuple(values)
    return result


def _update_changes(
    tracker: Tracker,
    tracked: Sequence[TrackedField],
    before: Mapping[Any, Sequence[Any]],
    after: Callable[[Any], Sequence[Any] | None],
    frame: Frame,
    who: Callable[[Any, TrackedField], tuple[Any, str]] | None = None,
) -> list[ObjectChange]:
    from revy_core.conf import get_attribute_delta_model, get_object_delta_model
    from revy_core.tracking import AttributeChange, ObjectChange, stored_value

    set_ = get_attribute_delta_model().ACTION_SET  # type: ignore[attr-defined]
    update = get_object_delta_model().ACTION_UPDATE  # type: ignore[attr-defined]
    values = frame.values
    actor = values.get("actor")
    description = values.get("object_delta_description") or ""
    attribute_description = values.get("attribute_delta_description") or ""
    changes: list[ObjectChange] = []
    for pk in sorted(before, key=_sort_key):
        new_row = after(pk)
        if new_row is None:
            continue
        change = ObjectChange(
            model=tracker.model,
            pk=pk,
            action=update,
            actor=actor,
            description=description,
        )
        for tf, old, new in zip(tracked, before[pk], new_row, strict=True):
            if tf.dump(old) == tf.dump(new):
                continue
            if who is None:
                attribute_actor, why = actor, attribute_description
            else:
                attribute_actor, why = who(pk, tf)
            change.attributes.append(
                AttributeChange(
                    tf.name,
                    stored_value(tracker, tf.attname, old),
                    stored_value(tracker, tf.attname, new),
                    set_,
                    attribute_actor,
                    why,
                )
            )
        if change.attributes:
            changes.append(change)
    return changes


def _tracking(queryset: QuerySet[Any]) -> tuple[Frame, Tracker] | None:
    from revy_core.tracking import tracker_for

    frame = current_frame()
    if frame is None or not frame.tracking:
        return None
    tracker = tracker_for(queryset.model)
    if tracker is None or _recording.get():
        return None
    return frame, tracker


# QuerySet.update ------------------------------------------------------------


def update(self: QuerySet[Any], **kwargs: Any) -> int:
    frame = current_frame()
    if frame is None or not frame.tracking:
        return _original_update(self, **kwargs)
    tracking = _tracking(self)
    if tracking is None:
        return _original_update(self, **kwargs)
    return _tracked_update(self, kwargs, *tracking)


update._revy = True  # type: ignore[attr-defined]


def _tracked_update(
    queryset: QuerySet[Any], kwargs: Mapping[str, Any], frame: Frame, tracker: Tracker
) -> int:
    from revy_core.tracking import write_history

    if queryset.query.is_sliced:
        return _original_update(queryset, **kwargs)  # Django's error
    meta = queryset.model._meta
    tracked: list[TrackedField] = []
    given: list[Any] = []
    for name, value in kwargs.items():
        try:
            tf = tracker.by_name.get(meta.get_field(name).name)
        except FieldDoesNotExist:
            return _original_update(queryset, **kwargs)  # Django's error
        if tf is not None:
            tracked.append(tf)
            given.append(value)
    if not tracked:
        return _original_update(queryset, **kwargs)
    using = queryset.db
    attnames = [tf.attname for tf in tracked]
    with transaction.atomic(using=using, savepoint=False):
        reader = _lockable(queryset.order_by())
        before = {pk: tuple(row) for pk, *row in reader.values_list("pk", *attnames)}
        count = _original_update(queryset, **kwargs)
        if not before:
            return count
        if any(_is_expression(v) for v in given):
            rows = _rows_by_pk(queryset.model, using, list(before), attnames)
            after: Callable[[Any], Sequence[Any] | None] = rows.get
        else:
            constant = tuple(v.pk if isinstance(v, Model) else v for v in given)

            def after(pk: Any) -> Sequence[Any]:
                return constant

        write_history(
            using, _update_changes(tracker, tracked, before, after, frame), frame
        )
    return count


# QuerySet.bulk_update -------------------------------------------------------


def bulk_update(
    self: QuerySet[Any],
    objs: Iterable[Model],
    fields: Sequence[str],
    batch_size: int | None = None,
) -> int:
    frame = current_frame()
    if frame is None or not frame.tracking:
        return _original_bulk_update(self, objs, fields, batch_size)
    tracking = _tracking(self)
    if tracking is None:
        return _original_bulk_update(self, objs, fields, batch_size)
    return _tracked_bulk_update(self, list(objs), fields, batch_size, *tracking)


bulk_update._revy = True  # type: ignore[attr-defined]


def _tracked_bulk_update(
    queryset: QuerySet[Any],
    objs: list[Model],
    fields: Sequence[str],
    batch_size: int | None,
    frame: Frame,
    tracker: Tracker,
) -> int:
    from revy_core.tracking import _MARKS, forget_baseline, rebaseline, write_history

    meta = queryset.model._meta
    tracked = [
        tf
        for tf in (tracker.by_name.get(meta.get_field(name).name) for name in fields)
        if tf is not None
    ]
    if not tracked or not objs:
        return _original_bulk_update(queryset, objs, fields, batch_size)
    using = queryset.db
    attnames = [tf.attname for tf in tracked]
    by_pk = {obj.pk: obj for obj in objs}
    with transaction.atomic(using=using, savepoint=False):
        before = _rows_by_pk(queryset.model, using, list(by_pk), attnames)
        token = _recording.set(True)
        try:
            count = _original_bulk_update(queryset, objs, fields, batch_size)
        finally:
            _recording.reset(token)
        expressions = any(
            _is_expression(obj.__dict__.get(a)) for obj in objs for a in attnames
        )
        if expressions:
            rows = _rows_by_pk(queryset.model, using, list(before), attnames)
            after: Callable[[Any], Sequence[Any] | None] = rows.get
        else:

            def after(pk: Any) -> Sequence[Any]:
                d = by_pk[pk].__dict__
                return tuple(d.get(a) for a in attnames)

        values = frame.values
        default = (values.get("actor"), values.get("attribute_delta_description") or "")

        def who(pk: Any, tf: TrackedField) -> tuple[Any, str]:
            marks = by_pk[pk].__dict__.get(_MARKS) or {}
            mark = marks.get(tf.attname)
            if mark is None:
                return default
            return mark.get("actor"), mark.get("attribute_delta_description") or ""

        changes = _update_changes(tracker, tracked, before, after, frame, who)
        write_history(using, changes, frame)
    for obj in objs:
        if expressions:
            forget_baseline(obj, attnames)
        else:
            rebaseline(obj, tracker, attnames)
    return count


# QuerySet.bulk_create -------------------------------------------------------


def bulk_create(
    self: QuerySet[Any],
    objs: Iterable[Model],
    batch_size: int | None = None,
    ignore_conflicts: bool = False,
    update_conflicts: bool = False,
    update_fields: Sequence[str] | None = None,
    unique_fields: Sequence[str] | None = None,
) -> list[Model]:
    frame = current_frame()
    tracking = None
    if frame is not None and frame.tracking:
        tracking = _tracking(self)
    if tracking is None:
        return _original_bulk_create(
            self,
            objs,
            batch_size=batch_size,
            ignore_conflicts=ignore_conflicts,
            update_conflicts=update_conflicts,
            update_fields=update_fields,
            unique_fields=unique_fields,
        )
    return _tracked_bulk_create(
        self,
        list(objs),
        batch_size,
        ignore_conflicts,
        update_conflicts,
        update_fields,
        unique_fields,
        *tracking,
    )


bulk_create._revy = True  # type: ignore[attr-defined]


def _unique_sets(
    model: type[Model], unique_fields: Sequence[str] | None
) -> list[tuple[str, ...]]:
    """The attnames of each unique field set a conflict can happen on."""
    meta = model._meta
    if unique_fields:
        return [
            tuple(
                meta.pk.attname if name == "pk" else meta.get_field(name).attname  # type: ignore[union-attr]
                for name in unique_fields
            )
        ]
    sets: list[tuple[str, ...]] = []
    for f in meta.concrete_fields:
        if f.unique and not f.primary_key:
            sets.append((f.attname,))
    for names in meta.unique_together:
        sets.append(tuple(_attname(model, n) for n in names))
    for constraint in meta.total_unique_constraints:
        sets.append(tuple(_attname(model, n) for n in constraint.fields))
    return list(dict.fromkeys(sets))


def _attname(model: type[Model], name: str) -> str:
    return model._meta.get_field(name).attname  # type: ignore[union-attr]


def _key(obj: Model, attnames: Sequence[str]) -> tuple[Any, ...] | None:
    d = obj.__dict__
    key = tuple(d.get(a) for a in attnames)
    return None if any(v is None for v in key) else key


def _existing(
    model: type[Model],
    using: str,
    objs: Sequence[Model],
    sets: Sequence[tuple[str, ...]],
    attnames: Sequence[str],
) -> dict[int, tuple[Any, tuple[Any, ...]]]:
    """For each object that matches a stored row on a unique set, that row.

    ``{index of the object: (the row's pk, its values of attnames)}``, read
    with row locks, one query per unique set and chunk of objects.
    """
    found: dict[int, tuple[Any, tuple[Any, ...]]] = {}
    manager = model._base_manager.db_manager(using)
    size = max(1, _chunk_size(using) // 2)
    for unique in sets:
        wanted: dict[tuple[Any, ...], list[int]] = {}
        for index, obj in enumerate(objs):
            if index in found:
                continue
            key = _key(obj, unique)
            if key is not None:
                wanted.setdefault(key, []).append(index)
        keys = list(wanted)
        for chunk in _chunks(keys, size):
            lookups = {
                f"{attname}__in": sorted({k[i] for k in chunk}, key=_sort_key)
                for i, attname in enumerate(unique)
            }
            rows = _lockable(manager.filter(**lookups)).values_list(
                "pk", *unique, *attnames
            )
            for pk, *row in rows:
                key = tuple(row[: len(unique)])
                for index in wanted.get(key, ()):
                    found[index] = (pk, tuple(row[len(unique) :]))
    return found


def _pks_by_unique_set(
    model: type[Model],
    using: str,
    objs: Sequence[Model],
    sets: Sequence[tuple[str, ...]],
) -> None:
    """Give each object without a primary key the key of its stored row."""
    pk_attname = model._meta.pk.attname
    for unique in sets:
        if all(o.pk is not None for o in objs):
            return
        missing = [o for o in objs if o.pk is None and _key(o, unique) is not None]
        for index, (pk, _) in _existing(model, using, missing, [unique], []).items():
            setattr(missing[index], pk_attname, pk)


def _insert_one_by_one(queryset: QuerySet[Any], objs: Sequence[Model]) -> None:
    """Insert objects one statement each, so each gets its primary key."""
    meta = queryset.model._meta
    using = queryset.db
    fields = [
        f
        for f in meta.concrete_fields
        if not getattr(f, "generated", False) and f is not meta.auto_field
    ]
    returning = meta.db_returning_fields
    for obj in objs:
        obj._prepare_related_fields_for_save(  # type: ignore[attr-defined]
            operation_name="bulk_create"
        )
        rows = queryset._insert(  # type: ignore[attr-defined]
            [obj], fields=fields, returning_fields=returning, using=using
        )
        if rows:
            for value, f in zip(rows[0], returning, strict=False):
                setattr(obj, f.attname, value)
        obj._state.adding = False
        obj._state.db = using


def _tracked_bulk_create(
    queryset: QuerySet[Any],
    objs: list[Model],
    batch_size: int | None,
    ignore_conflicts: bool,
    update_conflicts: bool,
    update_fields: Sequence[str] | None,
    unique_fields: Sequence[str] | None,
    frame: Frame,
    tracker: Tracker,
) -> list[Model]:
    from revy_core.tracking import create_change, rebaseline, write_history

    model = queryset.model
    using = queryset.db
    features = connections[using].features
    if not objs:
        return objs
    meta = model._meta
    updated = [
        tracker.by_name[meta.get_field(name).name]
        for name in update_fields or ()
        if meta.get_field(name).name in tracker.by_name
    ]
    attnames = [tf.attname for tf in updated]
    with transaction.atomic(using=using, savepoint=False):
        existing: dict[int, tuple[Any, tuple[Any, ...]]] = {}
        sets: list[tuple[str, ...]] = []
        if ignore_conflicts or update_conflicts:
            sets = _unique_sets(model, unique_fields if update_conflicts else None)
            if any(o.pk is not None for o in objs):
                sets.insert(0, (meta.pk.attname,))
            if ignore_conflicts and not sets:
                # Nothing can conflict: insert normally, to get primary keys.
                ignore_conflicts = False
            else:
                existing = _existing(model, using, objs, sets, attnames)
        conflicts = ignore_conflicts or update_conflicts
        if not conflicts and not features.can_return_rows_from_bulk_insert:
            without_pk = [o for o in objs if o.pk is None]
            with_pk = [o for o in objs if o.pk is not None]
            if with_pk:
                _original_bulk_create(queryset, with_pk, batch_size=batch_size)
            _insert_one_by_one(queryset, without_pk)
            result = objs
        else:
            result = _original_bulk_create(
                queryset,
                objs,
                batch_size=batch_size,
                ignore_conflicts=ignore_conflicts,
                update_conflicts=update_conflicts,
                update_fields=update_fields,
                unique_fields=unique_fields,
            )
        created = [o for i, o in enumerate(objs) if i not in existing]
        if conflicts:
            _pks_by_unique_set(model, using, created, sets)
        changes = [create_change(obj, tracker, frame) for obj in created]
        if update_conflicts and existing:
            before = dict(existing.values())
            new = {
                existing[i][0]: tuple(o.__dict__.get(a) for a in attnames)
                for i, o in enumerate(objs)
                if i in existing
            }
            changes += _update_changes(tracker, updated, before, new.get, frame)
        write_history(using, changes, frame)
    for obj in created:
        rebaseline(obj, tracker, tracker.attnames)
    return result


def install() -> None:
    """Replace Django's bulk write methods (runs in ``ready()``)."""
    for name, method in (
        ("update", update),
        ("bulk_update", bulk_update),
        ("bulk_create", bulk_create),
    ):
        if not getattr(getattr(QuerySet, name), "_revy", False):
            setattr(QuerySet, name, method)
