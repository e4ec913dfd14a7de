"""Writing history rows: prepared multi-row INSERTs, without model instances.

History rows are many and plain: building a model instance for each and
compiling Django's insert query for each batch costs several times what the
database spends storing them. revy prepares, once per history model and
database vendor, the column list and how each value reaches the database
(``Field.get_db_prep_save`` wherever the field's own code matters, the value
itself for plain text and integer columns), and writes rows as parameter
tuples in one multi-row ``INSERT`` per table, with the primary keys returned
where the database can return them.

Fields of a swapped history model that revy does not fill take their
defaults (``auto_now``/``auto_now_add`` fields take the current time), as an
``objects.create`` would give them. No ``pre_save``/``post_save`` signals are
sent for object and attribute deltas (``bulk_create`` sends none either); a
revision is saved through ``Model.save`` whenever its model or its receivers
could care.
"""

from __future__ import annotations

import datetime
import functools
import json
from collections.abc import Callable, Sequence
from typing import Any

from django.db import connections
from django.db.models import (
    AutoField,
    BigAutoField,
    BigIntegerField,
    CharField,
    Field,
    ForeignKey,
    IntegerField,
    JSONField,
    Model,
    PositiveIntegerField,
    PositiveSmallIntegerField,
    SmallAutoField,
    SmallIntegerField,
    TextField,
)
from django.db.models.signals import post_save, pre_save
from django.utils import timezone

__all__ = [
    "Insert",
    "defer_revision",
    "flush",
    "holds",
    "insert_for",
    "install",
    "json_adapter",
    "materialize",
    "restore_on_rollback",
    "save_revision",
    "write",
]

# Fields whose database value is the Python value itself, for str, int and
# None. Exact types only: a subclass may convert in get_prep_value.
_PLAIN_TYPES = (
    AutoField,
    BigAutoField,
    BigIntegerField,
    CharField,
    IntegerField,
    PositiveIntegerField,
    PositiveSmallIntegerField,
    SmallAutoField,
    SmallIntegerField,
    TextField,
)


def _is_plain(field: Field[Any, Any]) -> bool:
    if type(field) is ForeignKey:
        return _is_plain(field.target_field)
    return type(field) in _PLAIN_TYPES


def _default(field: Field[Any, Any]) -> Callable[[], Any]:
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return timezone.now
    return field.get_default


def json_adapter(field: Field[Any, Any], connection: Any) -> Callable[[Any, Any], Any]:
    """How a value (not ``None``) of a JSON column reaches the database:
    ``adapter(value, connection)``.

    Where Django would call ``json.dumps(value, cls=encoder)`` (a new encoder
    per value), one encoder instance serves every value: same text, a
    fraction of the time. Elsewhere (PostgreSQL's ``Jsonb``, a custom field
    or backend) the field's own ``get_db_prep_save``.
    """
    from django.db.backends.base.operations import BaseDatabaseOperations

    adapt = getattr(type(connection.ops), "adapt_json_value", None)
    if (
        type(field) is JSONField
        and adapt is BaseDatabaseOperations.adapt_json_value
        and JSONField.get_prep_value is Field.get_prep_value
    ):
        encode = (field.encoder or json.JSONEncoder)().encode

        def dumps(value: Any, connection: Any) -> Any:
            return encode(value)

        return dumps
    return field.get_db_prep_save


class Insert:
    """A prepared multi-row ``INSERT`` of one history model on one database.

    ``given`` names (by attname) the columns every row supplies, in row
    order; the model's other concrete fields take their defaults. ``prepare``
    turns a row of Python values into database parameters; ``execute``
    writes prepared rows and returns their primary keys when asked.
    """

    def __init__(
        self, model: type[Model], connection: Any, given: Sequence[str]
    ) -> None:
        meta = model._meta
        by_attname = {f.attname: f for f in meta.concrete_fields}
        pk = meta.pk
        assert pk is not None
        self.model = model
        self.pk = pk
        self.given = tuple(by_attname[name] for name in given)
        self.by_attname = {f.attname: f for f in self.given}
        # A primary key the database assigns is left out and returned; one
        # with a default (a UUID, say) is filled in like any other default.
        self.returns_pk = bool(getattr(pk, "db_returning", False))
        self.defaults = tuple(
            f
            for f in meta.concrete_fields
            if f.attname not in given
            and not (f is pk and self.returns_pk)
            and not getattr(f, "generated", False)
        )
        self.fields = list(self.given + self.defaults)
        self.plain = tuple(_is_plain(f) for f in self.given)
        self.default_makers = tuple(_default(f) for f in self.defaults)
        self.prep_indexes = tuple(i for i, plain in enumerate(self.plain) if not plain)
        qn = connection.ops.quote_name
        self.table = qn(meta.db_table)
        self.columns = ", ".join(qn(str(f.column)) for f in self.fields)
        self.row_sql = "(" + ", ".join(["%s"] * len(self.fields)) + ")"
        self.pk_column = str(pk.column)
        self.vendor = connection.vendor
        self._json: dict[str, Callable[[Any, Any], Any]] = {}

    def prepare(self, values: Sequence[Any], connection: Any) -> tuple[Any, ...]:
        """Database parameters for one row of Python values in ``given`` order."""
        values = list(values)
        given = self.given
        for i in self.prep_indexes:
            values[i] = given[i].get_db_prep_save(values[i], connection)
        return self.complete(values, connection)

    def complete(self, values: Sequence[Any], connection: Any) -> tuple[Any, ...]:
        """A row of database parameters for the ``given`` columns, defaults added."""
        if not self.defaults:
            return tuple(values)
        return (
            *values,
            *(
                field.get_db_prep_save(make(), connection)
                for field, make in zip(self.defaults, self.default_makers, strict=True)
            ),
        )

    def json(self, attname: str, connection: Any) -> Callable[[Any, Any], Any]:
        """How values of the JSON column ``attname`` reach the database."""
        adapter = self._json.get(attname)
        if adapter is None:
            adapter = self._json[attname] = json_adapter(
                self.field(attname), connection
            )
        return adapter

    def field(self, attname: str) -> Field[Any, Any]:
        """The field of a given column."""
        return self.by_attname[attname]

    @functools.lru_cache(maxsize=8)  # noqa: B019 - inserts live as long as the process
    def position(self, attname: str) -> int:
        """Where column ``attname`` sits in a row of ``fields``."""
        return next(i for i, f in enumerate(self.fields) if f.attname == attname)

    @functools.cached_property
    def created_at(self) -> Field[Any, Any]:
        return self.by_attname["created_at"]

    @functools.cached_property
    def json_indexes(self) -> frozenset[int]:
        """Positions of the JSON columns in a row of ``fields``."""
        return frozenset(
            i for i, f in enumerate(self.fields) if isinstance(f, JSONField)
        )

    def execute(
        self, rows: Sequence[Sequence[Any]], connection: Any, *, returning: bool
    ) -> list[Any]:
        """Insert prepared ``rows``; their primary keys, in order, if ``returning``."""
        if not rows:
            return []
        if not (returning and self.returns_pk):
            self._insert(rows, connection, batch=True, returning=False)
            return []
        if len(rows) > 1 and connection.features.can_return_rows_from_bulk_insert:
            return self._insert(rows, connection, batch=True, returning=True)
        pks: list[Any] = []
        for row in rows:
            pks.extend(self._insert([row], connection, batch=False, returning=True))
        return pks

    def _insert(
        self,
        rows: Sequence[Sequence[Any]],
        connection: Any,
        *,
        batch: bool,
        returning: bool,
    ) -> list[Any]:
        ops: Any = connection.ops
        size = max(ops.bulk_batch_size(self.fields, rows), 1) if batch else 1
        head = f"INSERT INTO {self.table} ({self.columns}) VALUES "
        # Keys come back with the insert where the backend can say them,
        # else (one row at a time) from the cursor.
        returned = returning and (
            connection.features.can_return_rows_from_bulk_insert
            if batch
            else connection.features.can_return_columns_from_insert
        )
        tail = " " + ops.return_insert_columns([self.pk])[0] if returned else ""
        pks: list[Any] = []
        with connection.cursor() as cursor:
            for start in range(0, len(rows), size):
                chunk = rows[start : start + size]
                sql = head + ", ".join([self.row_sql] * len(chunk)) + tail
                cursor.execute(sql, [value for row in chunk for value in row])
                if returned:
                    pks.extend(row[0] for row in ops.fetch_returned_insert_rows(cursor))
                elif returning:
                    pks.append(
                        ops.last_insert_id(
                            cursor, self.model._meta.db_table, self.pk_column
                        )
                    )
        return pks


_inserts: dict[tuple[type[Model], str, tuple[str, ...]], Insert] = {}


def insert_for(model: type[Model], connection: Any, given: Sequence[str]) -> Insert:
    """The prepared insert of ``model`` on ``connection`` for ``given`` columns."""
    key = (model, connection.alias, tuple(given))
    insert = _inserts.get(key)
    if insert is None or insert.vendor != connection.vendor:
        insert = _inserts[key] = Insert(model, connection, given)
    return insert


def _plain_save(model: type[Model]) -> bool:
    """Whether saving ``model`` is nothing but an insert revy can do itself."""
    meta = model._meta
    return (
        model.save is Model.save
        and not meta.parents
        and not pre_save.has_listeners(model)
        and not post_save.has_listeners(model)
    )


def _revision_insert(
    revision: Model, connection: Any
) -> tuple[Insert, tuple[Any, ...]]:
    """The prepared insert of an unsaved revision and its row of parameters."""
    model = type(revision)
    meta = model._meta
    pk = meta.pk
    assert pk is not None
    fields = [
        f
        for f in meta.concrete_fields
        if not (f is pk and getattr(pk, "db_returning", False))
        and not getattr(f, "generated", False)
    ]
    insert = insert_for(model, connection, [f.attname for f in fields])
    values = [f.pre_save(revision, True) for f in fields]
    return insert, insert.prepare(values, connection)


def _saved(revision: Model, pk: Any, using: str) -> None:
    if pk is not None:
        revision.pk = pk
    revision._state.adding = False
    revision._state.db = using


def save_revision(revision: Model, using: str) -> None:
    """Insert an unsaved revision, as ``revision.save(using=using)`` would."""
    if not _plain_save(type(revision)) or revision.pk is not None:
        revision.save(using=using)
        return
    connection = connections[using]
    insert, row = _revision_insert(revision, connection)
    pks = insert.execute([row], connection, returning=True)
    _saved(revision, pks[0] if pks else None, using)


def defer_revision(revision: Model, using: str) -> bool:
    """Leave an unsaved revision to be inserted with the history that needs it.

    On PostgreSQL, inside a transaction whose history waits for its commit,
    the revision is inserted by the statement that writes the deltas (one
    statement less a unit of work); until then its key is ``None``.
    ``materialize`` inserts it at once where its key is needed sooner.
    Returns whether it was deferred (if not, the caller saves it).
    """
    connection = connections[using]
    return bool(
        connection.vendor == "postgresql"
        and revision.pk is None
        and getattr(type(revision)._meta.pk, "db_returning", False)
        and _plain_save(type(revision))
        and _holds(connection)
    )


def materialize(revision: Model, using: str) -> None:
    """Give a deferred revision its key now: write the history waiting for
    it (which inserts it), or insert it alone if nothing waits for it."""
    if revision.pk is not None:
        return
    flush(using)
    if revision.pk is None:
        save_revision(revision, using)


# Held until commit -----------------------------------------------------------
#
# Inside a transaction, history rows wait on the connection and are written
# in one insert per table just before the transaction commits, so a unit of
# work that saves many objects pays three history statements, not three per
# save. Rows are prepared when the change is made (errors in values surface
# there, in the save); the flush only runs the inserts. What a rolled back
# savepoint or transaction captured is dropped with it, as Django drops its
# on-commit callbacks. Any statement on the connection that names a history
# table writes what is waiting first, so reads inside the transaction see
# every change made so far.

_PENDING = "_revy_pending"
_JOINED = "_revy_joined"
# A long transaction writes what it holds whenever this many attribute rows
# wait, so memory stays bounded.
FLUSH_EVERY = 5000


class _Batch:
    __slots__ = (
        "attribute_rows",
        "attributes",
        "object_rows",
        "objects",
        "revision",
        "sids",
    )

    def __init__(
        self,
        sids: set[str | None],
        objects: Insert,
        object_rows: list[tuple[Any, ...]],
        attributes: Insert,
        attribute_rows: list[list[tuple[Any, ...]]],
        revision: Model | None = None,
    ) -> None:
        self.sids = sids
        self.objects = objects
        self.object_rows = object_rows
        self.attributes = attributes
        self.attribute_rows = attribute_rows
        # A deferred revision: the rows' revision column holds None until
        # it is inserted.
        self.revision = revision


class _Pending:
    """History waiting on one connection for its transaction to commit.

    Also what to put back on instances if it rolls back instead: a save
    moves the instance's baseline to the saved values, which a rollback
    makes false again.
    """

    __slots__ = (
        "batches",
        "revision_table",
        "revisions",
        "rows",
        "tables",
        "undo",
        "written",
    )

    def __init__(self, tables: tuple[str, ...], revision_table: str) -> None:
        self.batches: list[_Batch] = []
        self.rows = 0
        self.tables = tables
        self.revision_table = revision_table
        self.undo: list[tuple[set[str | None], Model, str, Any]] = []
        # Batches written inside a savepoint they were not made in: if that
        # savepoint rolls back, their rows go with it and must be written
        # again.
        self.written: list[tuple[set[str | None], _Batch]] = []
        # Deferred revisions a flush inserted, with the savepoints active
        # then: if one of them rolls back, the revision is unsaved again.
        self.revisions: list[tuple[set[str | None], Model]] = []

    def __call__(
        self,
        execute: Callable[..., Any],
        sql: Any,
        params: Any,
        many: bool,
        context: dict[str, Any],
    ) -> Any:
        # An execute wrapper: a statement naming a history table sees the
        # history of every change made before it.
        if self.batches and self._may_read_waiting(sql):
            _flush(context["connection"], self)
        return execute(sql, params, many, context)

    def _may_read_waiting(self, sql: Any) -> bool:
        """Whether ``sql`` names a delta table, or the revision table while a
        deferred revision waits (revisions are otherwise written at once)."""
        if not isinstance(sql, str) or any(table in sql for table in self.tables):
            return True
        return self.revision_table in sql and any(
            batch.revision is not None and batch.revision.pk is None
            for batch in self.batches
        )

    def take(self) -> list[_Batch]:
        batches = self.batches
        self.batches = []
        self.rows = 0
        return batches

    def committed(self) -> None:
        self.take()
        self.undo = []
        self.written = []
        self.revisions = []

    def rolled_back(self, sid: str | None = None) -> None:
        """Forget what the transaction (or savepoint ``sid``) held; undo its saves."""
        if sid is None:
            self.take()
            undone, self.undo = self.undo, []
            self.written = []
            unsaved, self.revisions = self.revisions, []
        else:
            again = [
                batch
                for inside, batch in self.written
                if sid in inside and sid not in batch.sids
            ]
            self.written = [entry for entry in self.written if sid not in entry[0]]
            kept = again + [batch for batch in self.batches if sid not in batch.sids]
            self.batches = kept
            self.rows = _rows(kept)
            undone = [entry for entry in self.undo if sid in entry[0]]
            self.undo = [entry for entry in self.undo if sid not in entry[0]]
            unsaved = [entry for entry in self.revisions if sid in entry[0]]
            self.revisions = [e for e in self.revisions if sid not in e[0]]
        for _, revision in unsaved:
            revision.pk = None
            revision._state.adding = True
        for _, instance, attribute, value in reversed(undone):
            if value is MISSING:
                instance.__dict__.pop(attribute, None)
            else:
                instance.__dict__[attribute] = value


MISSING = object()


def _rows(batches: Sequence[_Batch]) -> int:
    """Attribute delta rows the batches hold."""
    return sum(len(rows) for batch in batches for rows in batch.attribute_rows)


def _new_pending() -> _Pending:
    from revy_core.conf import (
        get_attribute_delta_model,
        get_object_delta_model,
        get_revision_model,
    )

    deltas = (get_object_delta_model(), get_attribute_delta_model())
    return _Pending(
        tuple(model._meta.db_table for model in deltas),
        get_revision_model()._meta.db_table,
    )


def _holds(connection: Any) -> bool:
    """Whether history should wait for this connection's commit.

    It waits when the transaction outlives the atomic block writing it
    (more work may follow and join the same inserts). The block that
    commits right after writing (a save in autocommit mode) writes at once,
    so a failure surfaces before Django changes the instance (a deleted
    instance's primary key, say).
    """
    return (
        connection.in_atomic_block
        and (
            len(connection.atomic_blocks) > 1
            or not connection.commit_on_exit
            or connection.__dict__.get(_JOINED)
        )
        and getattr(type(connection).commit, "_revy", False)
    )


def join(connection: Any) -> None:
    """Note that what follows writes inside the current atomic block without
    opening one of its own (``leave`` undoes it): that block is the
    caller's, so the transaction outlives the write and history waits."""
    d = connection.__dict__
    d[_JOINED] = d.get(_JOINED, 0) + 1


def leave(connection: Any) -> None:
    connection.__dict__[_JOINED] -= 1


def write(
    connection: Any,
    objects: Insert,
    object_rows: list[tuple[Any, ...]],
    attributes: Insert,
    attribute_rows: list[list[tuple[Any, ...]]],
    revision: Model | None = None,
) -> None:
    """Write object delta rows and, under each, its attribute delta rows.

    ``attribute_rows[i]`` are the rows of ``object_rows[i]`` without their
    leading parent column. Inside a transaction they wait for its commit.
    ``revision`` is a deferred revision (``defer_revision``) whose key the
    rows' revision column lacks.
    """
    if not _holds(connection):
        _execute(
            connection,
            [_Batch(set(), objects, object_rows, attributes, attribute_rows, revision)],
        )
        return
    pending = _pending(connection)
    if pending.rows >= FLUSH_EVERY:
        _flush(connection, pending)
    pending.batches.append(
        _Batch(
            set(connection.savepoint_ids),
            objects,
            object_rows,
            attributes,
            attribute_rows,
            revision,
        )
    )
    pending.rows += sum(len(rows) for rows in attribute_rows)


def _pending(connection: Any) -> _Pending:
    pending: _Pending | None = connection.__dict__.get(_PENDING)
    if pending is None:
        pending = _new_pending()
        connection.__dict__[_PENDING] = pending
        connection.execute_wrappers.insert(0, pending)
    return pending


def holds(connection: Any) -> bool:
    """Whether history written now on ``connection`` waits for a later commit."""
    return bool(_holds(connection))


def restore_on_rollback(
    connection: Any, instance: Model, attribute: str, value: Any
) -> None:
    """Put ``value`` back in ``instance.__dict__[attribute]`` if the current
    transaction (or the savepoint active now) rolls back; ``MISSING``
    removes the attribute."""
    _pending(connection).undo.append(
        (set(connection.savepoint_ids), instance, attribute, value)
    )


def _flush(connection: Any, pending: _Pending) -> None:
    batches = pending.take()
    if not batches:
        return
    try:
        _execute(connection, batches)
    except BaseException:
        # The history still waits, and the transaction may not commit
        # without it: whatever catches the error, the atomic block must roll
        # back (a savepoint's rollback drops the history of what it undid,
        # and the rest waits for the commit again).
        pending.batches[:0] = batches
        pending.rows += _rows(batches)
        if connection.in_atomic_block:
            connection.needs_rollback = True
        raise
    inside = set(connection.savepoint_ids)
    for batch in batches:
        if not inside <= batch.sids:
            pending.written.append((inside, batch))


def flush(using: str | None = None) -> None:
    """Write the history waiting for the current transaction on ``using`` now.

    revy writes it anyway before the transaction commits, and before any
    statement on the same connection that names a history table; call this
    before reading history some other way (another connection, a database
    trigger).
    """
    from django.db import DEFAULT_DB_ALIAS

    connection = connections[using or DEFAULT_DB_ALIAS]
    pending = connection.__dict__.get(_PENDING)
    if pending is not None:
        _flush(connection, pending)


def _execute(connection: Any, batches: Sequence[_Batch]) -> None:
    groups: dict[tuple[Insert, Insert], list[_Batch]] = {}
    for batch in batches:
        groups.setdefault((batch.objects, batch.attributes), []).append(batch)
    for (objects, attributes), group in groups.items():
        unsaved = list(
            {
                id(batch.revision): batch.revision
                for batch in group
                if batch.revision is not None and batch.revision.pk is None
            }.values()
        )
        rows_of = [rows for batch in group for rows in batch.attribute_rows]
        spans = _chunks(rows_of)
        together = _together(connection, objects, attributes, rows_of)
        # One deferred revision is inserted by the statement writing the
        # deltas; any other first, on its own.
        fold = None
        if together and len(unsaved) == 1 and len(spans) == 1:
            fold = unsaved[0]
        for revision in unsaved:
            if revision is not fold:
                _insert_revision(connection, revision)
        if together:
            object_rows, rows_of = _keyed(group, objects, attributes)
            chunks = [
                _document(
                    objects, attributes, object_rows[start:stop], rows_of[start:stop]
                )
                for start, stop in spans
            ]
            if all(chunk is not None for chunk in chunks):
                if fold is not None:
                    (document,) = chunks
                    assert document is not None
                    single = len(object_rows) == 1
                    _execute_folded(
                        connection, objects, attributes, fold, document, single
                    )
                    continue
                with connection.cursor() as cursor:
                    for (start, stop), chunk in zip(spans, chunks, strict=True):
                        single = stop - start == 1
                        sql = _together_sql(
                            objects, attributes, connection.alias, None, single
                        )
                        cursor.execute(sql, chunk)
                continue
            if fold is not None:
                _insert_revision(connection, fold)
        object_rows, rows_of = _keyed(group, objects, attributes)
        pks = objects.execute(object_rows, connection, returning=True)
        params = [
            (pk, *row) for pk, rows in zip(pks, rows_of, strict=True) for row in rows
        ]
        attributes.execute(params, connection, returning=False)


def _insert_revision(connection: Any, revision: Model) -> None:
    save_revision(revision, connection.alias)
    _inserted(connection, revision)


def _inserted(connection: Any, revision: Model) -> None:
    """Note a deferred revision just inserted, to unsave it on rollback."""
    pending: _Pending | None = connection.__dict__.get(_PENDING)
    if pending is not None and connection.in_atomic_block:
        pending.revisions.append((set(connection.savepoint_ids), revision))


def _keyed(
    group: Sequence[_Batch], objects: Insert, attributes: Insert
) -> tuple[list[tuple[Any, ...]], list[list[tuple[Any, ...]]]]:
    """The group's object rows and attribute rows, with the key of each
    batch's deferred revision put in where it now has one."""
    object_rows: list[tuple[Any, ...]] = []
    rows_of: list[list[tuple[Any, ...]]] = []
    for batch in group:
        revision = batch.revision
        if revision is None or revision.pk is None:
            object_rows.extend(batch.object_rows)
            rows_of.extend(batch.attribute_rows)
            continue
        pk = revision.pk
        at = objects.position(_REVISION)
        object_rows.extend(_put(row, at, pk) for row in batch.object_rows)
        # Attribute rows lack their leading parent column.
        at = attributes.position(_REVISION) - 1
        rows_of.extend(
            [_put(row, at, pk) for row in rows] for rows in batch.attribute_rows
        )
    return object_rows, rows_of


_REVISION = "revision_id"


def _put(row: tuple[Any, ...], index: int, value: Any) -> tuple[Any, ...]:
    return (*row[:index], value, *row[index + 1 :])


def _execute_folded(
    connection: Any,
    objects: Insert,
    attributes: Insert,
    revision: Model,
    documents: list[str],
    single: bool,
) -> None:
    insert, row = _revision_insert(revision, connection)
    sql = _together_sql(objects, attributes, connection.alias, insert, single)
    with connection.cursor() as cursor:
        cursor.execute(sql, [*row, *documents])
        pk = cursor.fetchone()[0]
    _saved(revision, pk, connection.alias)
    _inserted(connection, revision)


# PostgreSQL: object deltas and their attribute deltas in one statement.
#
# A data-modifying ``WITH`` reads the rows from two JSON documents, arrays of
# rows (``jsonb_array_elements``): the statement's text and its two
# parameters are the same whatever the number of rows, so neither the driver
# nor the server parses more as a batch grows, and the rows are encoded by
# one call of the C JSON encoder. The object deltas are inserted in the order
# given and return their keys, numbered in that order (keys come from the
# sequence in row order); each attribute delta row starts with the number of
# its object delta and joins its key; rows are inserted in the order given.
# Rows holding a value JSON cannot carry as it is (a custom field's, say)
# go as two plain inserts instead.

# Attribute delta rows per statement: a statement's documents stay within
# some tens of megabytes.
TOGETHER_ROWS = 100_000
_SCALARS = frozenset({str, int, bool, type(None)})


def _together(
    connection: Any,
    objects: Insert,
    attributes: Insert,
    rows_of: Sequence[Sequence[Sequence[Any]]],
) -> bool:
    """Whether object and attribute deltas can go in one statement."""
    return (
        connection.vendor == "postgresql"
        and objects.returns_pk
        and _json_encoder(objects, attributes) is not None
        and any(rows_of)
    )


def _chunks(rows_of: Sequence[Sequence[Sequence[Any]]]) -> list[tuple[int, int]]:
    """Slices of object deltas holding at most ``TOGETHER_ROWS`` attribute
    deltas each (more only when one object delta alone has more)."""
    chunks = []
    start = count = 0
    for index, rows in enumerate(rows_of):
        if count and count + len(rows) > TOGETHER_ROWS:
            chunks.append((start, index))
            start, count = index, 0
        count += len(rows)
    chunks.append((start, len(rows_of)))
    return chunks


@functools.lru_cache(maxsize=64)
def _json_encoder(objects: Insert, attributes: Insert) -> type[json.JSONEncoder] | None:
    """The one encoder of every JSON column of both inserts; ``None`` when
    they differ or a JSON column is a subclass's (whose own code may prepare
    its values)."""
    encoders = set()
    for insert in (objects, attributes):
        for i in insert.json_indexes:
            field = insert.fields[i]
            if type(field) is not JSONField:
                return None
            encoders.add(getattr(field, "encoder", None) or json.JSONEncoder)
    if len(encoders) > 1:
        return None
    return encoders.pop() if encoders else json.JSONEncoder


def _plain_rows(
    rows: Sequence[Sequence[Any]], json_indexes: frozenset[int]
) -> list[list[Any]] | None:
    """Rows of parameters as JSON can carry them: JSON columns' wrapped
    values unwrapped, datetimes as ISO 8601 text; ``None`` if a value is of
    another kind."""
    out = []
    stamp: Any = None
    text = ""
    for row in rows:
        values = list(row)
        for i, value in enumerate(values):
            kind = type(value)
            if kind in _SCALARS:
                continue
            if i in json_indexes:
                # psycopg's Jsonb wraps .obj, psycopg2's Json .adapted.
                inner = getattr(value, "obj", getattr(value, "adapted", _NONE))
                if inner is _NONE:
                    return None
                values[i] = inner
            elif kind is datetime.datetime:
                if value is not stamp:
                    stamp, text = value, value.isoformat()
                values[i] = text
            else:
                return None
        out.append(values)
    return out


_NONE = object()


def _document(
    objects: Insert,
    attributes: Insert,
    object_rows: Sequence[Sequence[Any]],
    rows_of: Sequence[Sequence[Sequence[Any]]],
) -> list[str] | None:
    """The two JSON parameters of the statement; ``None`` if a row holds a
    value JSON cannot carry."""
    plain_objects = _plain_rows(object_rows, objects.json_indexes)
    # Each attribute row starts with the number of its object delta, in the
    # place of the parent column it lacks.
    numbered = [
        (number, *row) for number, rows in enumerate(rows_of, start=1) for row in rows
    ]
    plain_attributes = _plain_rows(numbered, attributes.json_indexes)
    if plain_objects is None or plain_attributes is None:
        return None
    encoder = _json_encoder(objects, attributes)
    dumps = encoder(separators=(",", ":")).encode  # type: ignore[misc]
    return [dumps(plain_objects), dumps(plain_attributes)]


def _cell(field: Field[Any, Any], row: str, index: int, connection: Any) -> str:
    """The expression reading ``field``'s value from element ``index`` of the
    JSON array ``row``."""
    if isinstance(field, JSONField):
        return f"NULLIF({row} -> {index}, 'null'::jsonb)"
    db_type = str(field.cast_db_type(connection))
    if db_type.startswith(("varchar", "char")):
        # Left as text: the column's own length check applies (a cast
        # would cut the value short).
        return f"({row} ->> {index})"
    return f"CAST({row} ->> {index} AS {db_type})"


@functools.lru_cache(maxsize=64)
def _together_sql(
    objects: Insert,
    attributes: Insert,
    alias: str,
    revision: Insert | None,
    single: bool,
) -> str:
    """The statement writing object and attribute deltas; with ``revision``
    (the insert of a deferred revision), it inserts the revision first,
    fills the revision column where rows leave it null, and returns the
    revision's key. ``single``: there is one object delta (a unit of work
    changing one object, the most common), the parent of every attribute
    delta, so no join numbers the object deltas."""
    connection = connections[alias]
    qn = connection.ops.quote_name
    pk = qn(str(objects.pk.column))

    def cells(insert: Insert, row: str, start: int) -> str:
        out = []
        for i, f in enumerate(insert.fields[start:], start=start):
            cell = _cell(f, row, i, connection)
            if revision is not None and f.attname == _REVISION:
                cell = f"COALESCE({cell}, (SELECT {revision_pk} FROM rev))"
            out.append(cell)
        return ", ".join(out)

    head = ""
    tail = ""
    if revision is not None:
        revision_pk = qn(str(revision.pk.column))
        head = (
            f"rev AS (INSERT INTO {revision.table} ({revision.columns}) "
            f"VALUES {revision.row_sql} RETURNING {revision_pk}), "
        )
        tail = f" SELECT {revision_pk} FROM rev"
    # The parent column comes from the join; element 0 is the number of
    # the row's object delta.
    if single:
        parent, numbers, join = f"(SELECT {pk} FROM o)", "", ""
    else:
        parent = "n.id"
        numbers = (
            f", n AS (SELECT {pk} AS id, row_number() OVER (ORDER BY {pk}) "
            "AS number FROM o)"
        )
        join = "JOIN n ON n.number = CAST(v.r ->> 0 AS bigint) "
    attributes_insert = (
        f"INSERT INTO {attributes.table} ({attributes.columns}) "
        f"SELECT {parent}, {cells(attributes, 'v.r', 1)} "
        "FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS v(r, ord) "
        f"{join}ORDER BY v.ord"
    )
    return (
        f"WITH {head}o AS (INSERT INTO {objects.table} ({objects.columns}) "
        f"SELECT {cells(objects, 'u.r', 0)} "
        "FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS u(r, ord) "
        f"ORDER BY u.ord RETURNING {pk}){numbers}"
        + (f", a AS ({attributes_insert}){tail}" if tail else f" {attributes_insert}")
    )


def _patched(method: Callable[..., Any]) -> Callable[..., Any]:
    method._revy = True  # type: ignore[attr-defined]
    return method


def install() -> None:
    """Hook commit, rollback, savepoint rollback and close of every backend."""
    from django.db.backends.base.base import BaseDatabaseWrapper

    wrapper = BaseDatabaseWrapper
    if getattr(wrapper.commit, "_revy", False):
        return
    commit = wrapper.commit
    rollback = wrapper.rollback
    savepoint_rollback = wrapper.savepoint_rollback
    close = wrapper.close
    set_autocommit = wrapper.set_autocommit

    @_patched
    def revy_commit(self: Any) -> None:
        pending = self.__dict__.get(_PENDING)
        if pending is None or self.in_atomic_block:
            commit(self)
            return
        _flush(self, pending)
        commit(self)
        pending.committed()

    @_patched
    def revy_rollback(self: Any) -> None:
        try:
            rollback(self)
        finally:
            pending = self.__dict__.get(_PENDING)
            if pending is not None and not self.in_atomic_block:
                pending.rolled_back()

    @_patched
    def revy_savepoint_rollback(self: Any, sid: str) -> None:
        savepoint_rollback(self, sid)
        pending = self.__dict__.get(_PENDING)
        if pending is not None and self._savepoint_allowed():
            pending.rolled_back(sid)

    @_patched
    def revy_close(self: Any) -> None:
        try:
            close(self)
        finally:
            pending = self.__dict__.get(_PENDING)
            if pending is not None:
                pending.rolled_back()

    @_patched
    def revy_set_autocommit(
        self: Any, autocommit: bool, *args: Any, **kwargs: Any
    ) -> None:
        # Turning autocommit on commits (SQLite does it implicitly).
        pending = self.__dict__.get(_PENDING)
        if autocommit and pending is not None and not self.in_atomic_block:
            _flush(self, pending)
            set_autocommit(self, autocommit, *args, **kwargs)
            pending.committed()
            return
        set_autocommit(self, autocommit, *args, **kwargs)

    wrapper.commit = revy_commit  # type: ignore[method-assign]
    wrapper.rollback = revy_rollback  # type: ignore[method-assign]
    wrapper.savepoint_rollback = revy_savepoint_rollback  # type: ignore[method-assign]
    wrapper.close = revy_close  # type: ignore[method-assign]
    wrapper.set_autocommit = revy_set_autocommit  # type: ignore[method-assign]
