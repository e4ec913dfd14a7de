"""``ObjectSnapshot``: rebuild an instance from history in one query.

Annotated on an ``ObjectDelta`` queryset, ``ObjectSnapshot(Model)`` gives,
for each object delta, an instance of ``Model`` as it was right after that
delta (for a Delete delta: as it was when it was deleted). Each field is
one lookup on the attribute-delta index (content type, content id, field
name, object delta, id), read backwards to the newest value at or before the
delta; the lookups run in one correlated subquery over the model's field
names (on MariaDB, one per field), so the whole rebuild is the one SELECT
that loads the object deltas, and its cost follows the number of fields,
not the length of the history.

The SQL of a snapshot depends only on the database, the model and how the
outer query names the object delta's columns, so it is written once per
such combination and kept: compiling the annotation again is a dictionary
lookup. Fields history knows nothing of are left deferred; excluded and
masked fields come back with their default, so a deleted object can always
be saved again. Object deltas of other models give ``None``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist
from django.db.models import Expression, TextField
from django.db.models.base import DEFERRED

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models import Field, Model
    from django.db.models.sql.compiler import SQLCompiler
    from django.db.models.sql.query import Query

    from revy_core.tracking import Tracker

__all__ = ["ObjectSnapshot"]

# The object delta's columns the snapshot reads, by field name.
_REFERENCES = ("content_type", "content_id", "pk")
# The attribute delta table's alias inside each per-field subquery.
_CELL_ALIAS = "revy_ad"
# The field names' alias.
_FIELD_ALIAS = "revy_field"


class SnapshotField(TextField):  # type: ignore[type-arg]
    """Turns the JSON text of a snapshot into a model instance.

    The text is a JSON object with one cell per concrete field of the model,
    by field name: ``[value]`` for the value history holds (as stored, see
    ``revy_core.values``), ``[]`` when it holds none.
    """

    def __init__(self, model: type[Model], *args: Any, **kwargs: Any) -> None:
        self.snapshot_model = model
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        return name, path, [self.snapshot_model, *args], kwargs

    def from_db_value(
        self, value: Any, expression: Any, connection: BaseDatabaseWrapper
    ) -> Model | None:
        if value is None:
            return None
        return build_instance(self.snapshot_model, json.loads(value), connection.alias)


# Building instances ------------------------------------------------------


class _Plan:
    """How each concrete field of a model comes back from its cell."""

    def __init__(self, model: type[Model], tracker: Tracker) -> None:
        from revy_core import values

        self.tracker = tracker
        self.fields: list[tuple[Field[Any, Any], Callable[[Any], Any] | None]] = []
        for field in model._meta.concrete_fields:
            tracked = tracker.by_name.get(field.name)
            if tracked is None or tracked.masked:
                # Not in history (or only as a mask): the field's default.
                self.fields.append((field, None))
            else:
                self.fields.append((field, functools.partial(values.load, field)))


_plans: dict[type[Model], _Plan] = {}


def _plan(model: type[Model]) -> _Plan:
    from revy_core.tracking import build_tracker, tracker_for

    tracker = tracker_for(model)
    if tracker is None:
        # Not tracked (any more): read the settings every time, as saving does.
        return _Plan(model, build_tracker(model))
    plan = _plans.get(model)
    if plan is None or plan.tracker is not tracker:
        plan = _plans[model] = _Plan(model, tracker)
    return plan


def build_instance(model: type[Model], cells: dict[str, list[Any]], db: str) -> Model:
    """An unsaved-looking instance of ``model`` from the stored cells."""
    args = []
    for field, load in _plan(model).fields:
        if load is None:
            args.append(field.get_default())
        else:
            cell = cells.get(field.name)
            args.append(load(cell[0]) if cell else DEFERRED)
    instance = model(*args)
    instance._state.adding = False
    instance._state.db = db
    return instance


# The SQL -----------------------------------------------------------------

_sql: dict[tuple[Any, ...], tuple[str, tuple[Any, ...]]] = {}


def _column(model: type[Model], name: str) -> str:
    meta = model._meta
    field = meta.pk if name == "pk" else meta.get_field(name)
    return str(field.column)  # type: ignore[union-attr]


def _concat(vendor: str, parts: Sequence[str]) -> str:
    if vendor == "mysql":
        return f"CONCAT({', '.join(parts)})"
    return f"({' || '.join(parts)})"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _snapshot_sql(
    model: type[Model],
    attribute_delta: type[Model],
    connection: BaseDatabaseWrapper,
    references: Sequence[tuple[str, Sequence[Any]]],
) -> tuple[str, tuple[Any, ...]]:
    """The SQL of a snapshot of ``model`` and its parameters.

    ``references`` are the compiled content type, content id and primary key
    columns of the object delta the snapshot is annotated on. The result is
    a JSON object text, ``{"field": cell, ...}``, or NULL for an object
    delta of another model.
    """
    qn = connection.ops.quote_name
    vendor = connection.vendor
    (ct_sql, ct_params), (id_sql, id_params), (pk_sql, pk_params) = references
    meta = attribute_delta._meta
    alias = qn(_CELL_ALIAS)

    def column(name: str) -> str:
        return f"{alias}.{qn(_column(attribute_delta, name))}"

    def cell(field_name: str) -> str:
        """``[value]`` of the newest attribute delta of one field, or ``[]``."""
        value = (
            f"CASE WHEN {column('action')} = %s THEN {column('new_value')}"
            f" ELSE {column('old_value')} END"
        )
        if vendor == "postgresql":
            value = f"({value})::text"
        wrapped = _concat(vendor, ["'['", f"COALESCE({value}, 'null')", "']'"])
        return (
            f"COALESCE((SELECT {wrapped}"
            f" FROM {qn(meta.db_table)} {alias}"
            f" WHERE {column('content_type')} = {ct_sql}"
            f" AND {column('content_id')} = {id_sql}"
            f" AND {column('field_name')} = {field_name}"
            f" AND {column('parent')} <= {pk_sql}"
            f" ORDER BY {column('parent')} DESC, {column('pk')} DESC LIMIT 1), '[]')"
        )

    set_ = attribute_delta.ACTION_SET  # type: ignore[attr-defined]
    cell_params = [set_, *ct_params, *id_params, *pk_params]
    names = [field.name for field in model._meta.concrete_fields]
    params: list[Any]
    if vendor == "mysql":
        # One cell per field, concatenated: GROUP_CONCAT would cut long
        # values at group_concat_max_len.
        parts = ["'{'"]
        for index, name in enumerate(names):
            key = ("," if index else "") + json.dumps(name) + ":"
            parts += [_literal(key), cell(_literal(name))]
        parts.append("'}'")
        values = _concat(vendor, parts)
        params = cell_params * len(names)
    else:
        # One subquery over the field names: the statement stays short
        # whatever the number of fields (SQLite's backend rewrites the
        # placeholders of every statement with a regular expression).
        field = qn(_FIELD_ALIAS)
        if vendor == "postgresql":
            aggregate = "string_agg"
            array = _literal("{" + ",".join(json.dumps(name) for name in names) + "}")
            field_names = f"unnest({array}::text[]) {field}({qn('name')})"
        else:
            aggregate = "group_concat"
            rows = " UNION ALL ".join(
                f"SELECT {_literal(name)} AS {qn('name')}" for name in names
            )
            field_names = f"({rows}) {field}"
        name = f"{field}.{qn('name')}"
        entry = _concat(vendor, ["'\"'", name, "'\":'", cell(name)])
        entries = _concat(vendor, ["'{'", f"{aggregate}({entry}, ',')", "'}'"])
        values = f"(SELECT {entries} FROM {field_names})"
        params = cell_params
    # Deltas of other models (a queryset not filtered by content type) give
    # None rather than an instance built from unrelated fields.
    concrete = (model._meta.concrete_model or model)._meta
    is_model = (
        f"{ct_sql} = (SELECT {qn(_column(ContentType, 'pk'))}"
        f" FROM {qn(ContentType._meta.db_table)}"
        f" WHERE {qn(_column(ContentType, 'app_label'))} = %s"
        f" AND {qn(_column(ContentType, 'model'))} = %s)"
    )
    sql = f"CASE WHEN {is_model} THEN {values} ELSE NULL END"
    params = [*ct_params, concrete.app_label, concrete.model_name, *params]
    return sql, tuple(params)


class ObjectSnapshot(Expression):
    """The instance of ``model`` as of each annotated object delta."""

    contains_aggregate = False
    contains_over_clause = False

    def __init__(self, model: type[Model]) -> None:
        self.model = model
        # The object delta's columns, resolved against the annotated query.
        self.references: list[Any] = []
        super().__init__(output_field=_output_field(model))

    def get_source_expressions(self) -> list[Any]:
        return list(self.references)

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        self.references = list(exprs)

    def resolve_expression(
        self,
        query: Query | None = None,
        allow_joins: bool = True,
        reuse: Any = None,
        summarize: bool = False,
        for_save: bool = False,
    ) -> ObjectSnapshot:
        if self.references:
            # Already resolved, e.g. in a subquery resolved again against
            # its outer query: keep the columns of the inner query.
            return super().resolve_expression(
                query, allow_joins, reuse, summarize, for_save
            )
        if query is None:
            raise ValueError("ObjectSnapshot is annotated on an ObjectDelta queryset.")
        resolved = self.copy()
        resolved.is_summary = summarize
        meta = query.get_meta()
        try:
            fields = [
                meta.pk if name == "pk" else meta.get_field(name)
                for name in _REFERENCES
            ]
        except FieldDoesNotExist:
            fields = []
        if (
            summarize
            or not fields
            or any(getattr(f, "model", None) is not meta.concrete_model for f in fields)
        ):
            resolved.references = [
                query.resolve_ref(name, allow_joins, reuse, summarize)
                for name in _REFERENCES
            ]
        else:
            # The object delta's own columns: what resolve_ref gives, without
            # its join machinery.
            alias = query.get_initial_alias()
            resolved.references = [field.get_col(alias) for field in fields]  # type: ignore[union-attr]
        return resolved

    def as_sql(
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        **extra_context: Any,
    ) -> tuple[str, tuple[Any, ...]]:
        from revy_core.conf import get_attribute_delta_model

        references = []
        for reference in self.references:
            sql, params = compiler.compile(reference)
            references.append((sql, tuple(params)))
        attribute_delta = get_attribute_delta_model()
        key = (
            connection.alias,
            connection.vendor,
            self.model,
            attribute_delta,
            *references,
        )
        compiled = _sql.get(key)
        if compiled is None:
            compiled = _sql[key] = _snapshot_sql(
                self.model, attribute_delta, connection, references
            )
        return compiled

    def __repr__(self) -> str:
        return f"ObjectSnapshot({self.model._meta.label})"


_output_fields: dict[type[Model], SnapshotField] = {}


def _output_field(model: type[Model]) -> SnapshotField:
    field = _output_fields.get(model)
    if field is None:
        field = _output_fields[model] = SnapshotField(model)
    return field
