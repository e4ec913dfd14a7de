"""How field values are stored in history, and how they come back.

History keeps each value as JSON. ``dump`` turns a field's Python value into
a JSON value that compares equal exactly when the database would store the
same thing (``"1.5"`` and ``Decimal("1.50")`` on a two-place decimal field
are one value); ``load`` turns it back into the Python type the field gives
when read from the database.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import math
import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.fields.files import FieldFile
from django.utils import timezone
from django.utils.duration import duration_iso_string

__all__ = ["dump", "dumper", "load", "target_field"]


def target_field(field: models.Field[Any, Any]) -> models.Field[Any, Any]:
    """The field whose values a (chain of) foreign key(s) stores."""
    while field.many_to_one or field.one_to_one:
        target = getattr(field, "target_field", None)
        if target is None or target is field:
            break
        field = target
    return field


def dump(field: models.Field[Any, Any], value: Any) -> Any:
    """The JSON value history stores for ``value`` of ``field``."""
    if value is None:
        return None
    if isinstance(field, models.JSONField):
        return value
    field = target_field(field)
    if isinstance(value, FieldFile):
        return value.name or None
    try:
        value = field.to_python(value)
    except (ValidationError, TypeError, ValueError):
        return str(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, decimal.Decimal):
        places = getattr(field, "decimal_places", None)
        if places is not None and value.is_finite():
            value = value.quantize(decimal.Decimal(1).scaleb(-places))
        return str(value)
    if isinstance(value, datetime.datetime):
        if settings.USE_TZ and timezone.is_naive(value):
            value = timezone.make_aware(value, timezone.get_default_timezone())
        return value.isoformat()
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return duration_iso_string(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


# Field classes (exact types) whose values of one Python type are stored
# as they are: ``dump`` would return them unchanged.
_AS_IS: dict[type[models.Field[Any, Any]], type] = {
    models.CharField: str,
    models.TextField: str,
    models.SlugField: str,
    models.EmailField: str,
    models.BooleanField: bool,
    models.IntegerField: int,
    models.BigIntegerField: int,
    models.SmallIntegerField: int,
    models.PositiveIntegerField: int,
    models.PositiveBigIntegerField: int,
    models.PositiveSmallIntegerField: int,
    models.AutoField: int,
    models.BigAutoField: int,
    models.SmallAutoField: int,
}


def dumper(field: models.Field[Any, Any]) -> Any:
    """``dump`` for one field: values stored as they are skip the general path."""
    kind = _AS_IS.get(type(target_field(field)))
    if kind is None or isinstance(field, models.JSONField):

        def dump_value(value: Any) -> Any:
            return dump(field, value)

        return dump_value

    def dump_plain(value: Any) -> Any:
        if value is None or type(value) is kind:
            return value
        return dump(field, value)

    return dump_plain


def load(field: models.Field[Any, Any], value: Any) -> Any:
    """The Python value of ``field`` that ``dump`` stored as ``value``."""
    if value is None or isinstance(field, models.JSONField):
        return value
    field = target_field(field)
    if isinstance(field, models.BinaryField):
        return base64.b64decode(value)
    if isinstance(field, models.FloatField) and isinstance(value, str):
        return float(value)
    return field.to_python(value)
