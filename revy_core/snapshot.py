"""``ObjectSnapshot``: rebuild an instance from history in one query.

Annotated on an ``ObjectDelta`` queryset, ``ObjectSnapshot(Model)`` gives,
for each object delta, an instance of ``Model`` as it was right after that
delta (for a Delete delta: as it was when it was deleted). Each field is
one correlated subquery on the attribute-delta index (content type, content
id, field name, object delta), so the whole rebuild is the one SELECT that
loads the object deltas.

Fields history knows nothing of are left deferred; excluded and masked
fields come back with their default, so a deleted object can always be
saved again. Object deltas of other models give ``None``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.db.models import (
    Case,
    Expression,
    F,
    Func,
    OuterRef,
    Q,
    Subquery,
    TextField,
    Value,
    When,
)
from django.db.models.base import DEFERRED
from django.db.models.functions import Coalesce

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models import Model
    from django.db.models.sql.compiler import SQLCompiler

__all__ = ["ObjectSnapshot"]


class _Cell(Func):
    """``[value]`` as JSON text, where value is the row's field value."""

    output_field = TextField()

    def as_sql(
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> tuple[str, tuple[Any, ...]]:
        sql, params = compiler.compile(self.source_expressions[0])
        if connection.vendor == "postgresql":
            sql = f"({sql})::text"
        if connection.vendor == "mysql":
            return f"CONCAT('[', COALESCE({sql}, 'null'), ']')", tuple(params)
        return f"('[' || COALESCE({sql}, 'null') || ']')", tuple(params)


class _Join(Func):
    """Flat string concatenation of text parts that are never NULL."""

    def as_sql(
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> tuple[str, tuple[Any, ...]]:
        parts: list[str] = []
        params: list[Any] = []
        for expression in self.source_expressions:
            sql, part_params = compiler.compile(expression)
            parts.append(sql)
            params.extend(part_params)
        if connection.vendor == "mysql":
            return f"CONCAT({', '.join(parts)})", tuple(params)
        return f"({' || '.join(parts)})", tuple(params)


class SnapshotField(TextField):  # type: ignore[type-arg]
    """Turns the JSON text of a snapshot into a model instance."""

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


def build_instance(model: type[Model], cells: dict[str, list[Any]], db: str) -> Model:
    """An unsaved-looking instance of ``model`` from the stored cells."""
    from revy_core import values as value_codec
    from revy_core.tracking import build_tracker, tracker_for

    tracker = tracker_for(model) or build_tracker(model)
    args = []
    for field in model._meta.concrete_fields:
        tracked = tracker.by_name.get(field.name)
        cell = cells.get(field.name, [])
        if tracked is None or tracked.masked:
            args.append(field.get_default())
        elif cell:
            args.append(value_codec.load(field, cell[0]))
        else:
            args.append(DEFERRED)
    instance = model(*args)
    instance._state.adding = False
    instance._state.db = db
    return instance


_expressions: dict[tuple[type[Model], type[Model]], Any] = {}


def _snapshot_expression(model: type[Model], attribute_delta: type[Model]) -> Any:
    """The unresolved SQL expression of a snapshot of ``model``."""
    set_ = attribute_delta.ACTION_SET  # type: ignore[attr-defined]
    value = Case(
        When(action=set_, then=F("new_value")),
        default=F("old_value"),
    )
    parts: list[Any] = [Value("{")]
    for index, field in enumerate(model._meta.concrete_fields):
        cell = (
            attribute_delta._default_manager.filter(
                content_type=OuterRef("content_type"),
                content_id=OuterRef("content_id"),
                field_name=field.name,
                parent__lte=OuterRef("pk"),
            )
            .order_by("-parent", "-pk")
            .annotate(cell=_Cell(value))
            .values("cell")[:1]
        )
        key = json.dumps(field.name)
        parts.append(Value(("," if index else "") + key + ":"))
        parts.append(Coalesce(Subquery(cell, output_field=TextField()), Value("[]")))
    parts.append(Value("}"))
    # Deltas of other models (a queryset not filtered by content type)
    # give None rather than an instance built from unrelated fields.
    meta = (model._meta.concrete_model or model)._meta
    return Case(
        When(
            Q(
                content_type__app_label=meta.app_label,
                content_type__model=meta.model_name,
            ),
            then=_Join(*parts, output_field=SnapshotField(model)),
        ),
        default=Value(None),
        output_field=SnapshotField(model),
    )


class ObjectSnapshot(Expression):
    """The instance of ``model`` as of each annotated object delta."""

    def __init__(self, model: type[Model]) -> None:
        from revy_core.conf import get_attribute_delta_model

        self.model = model
        # Building the per-field subqueries is most of the cost of a
        # snapshot; the expression is built once per model and resolved (a
        # copy) on every use.
        key = (model, get_attribute_delta_model())
        expression = _expressions.get(key)
        if expression is None:
            expression = _expressions[key] = _snapshot_expression(model, key[1])
        self.expression = expression
        super().__init__(output_field=SnapshotField(model))

    def get_source_expressions(self) -> list[Any]:
        return [self.expression]

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        (self.expression,) = exprs

    def resolve_expression(self, *args: Any, **kwargs: Any) -> Any:
        return self.expression.resolve_expression(*args, **kwargs)

    def __repr__(self) -> str:
        return f"ObjectSnapshot({self.model._meta.label})"
