"""``Tracked`` and its identical, never tracked twin ``Untracked``.

Each has its own owner model, so that deleting an owner cascades to the rows
of one of them only. Only ``Tracked`` is registered with the library of this
process (``BENCH_LIB``); with ``untracked`` both are plain models, which
makes every tracked/untracked ratio an A/A control.
"""

from __future__ import annotations

import datetime
import decimal
import os
from typing import Any

from django.db import models

LIB = os.environ.get("BENCH_LIB", "untracked")

_EPOCH = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)


def row_values(i: int) -> dict[str, Any]:
    """The field values of row ``i`` (all but the owner)."""
    return {
        "title": f"Row {i}",
        "body": f"Body of row {i}. " * 4,
        "price": decimal.Decimal(i % 10_000) / 100,
        "quantity": i,
        "active": i % 2 == 0,
        "happened_at": _EPOCH + datetime.timedelta(seconds=i),
        "data": {"i": i, "tags": ["a", "b"], "nested": {"ok": True}},
    }


class Owner(models.Model):
    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.name


class OwnerTwin(models.Model):
    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.name


class Row(models.Model):
    title = models.CharField(max_length=200)
    body = models.TextField()
    price = models.DecimalField(max_digits=12, decimal_places=2)
    quantity = models.IntegerField()
    active = models.BooleanField(default=True)
    happened_at = models.DateTimeField()
    data = models.JSONField(default=dict)

    class Meta:
        abstract = True


class Tracked(Row):
    owner = models.ForeignKey(Owner, models.CASCADE, related_name="rows")

    def __str__(self) -> str:
        return self.title


class Untracked(Row):
    owner = models.ForeignKey(OwnerTwin, models.CASCADE, related_name="rows")

    def __str__(self) -> str:
        return self.title


if LIB == "simple_history":
    import simple_history

    simple_history.register(Tracked)
elif LIB == "reversion":
    import reversion

    reversion.register(Tracked)
elif LIB == "auditlog":
    from auditlog.registry import auditlog

    auditlog.register(Tracked)
elif LIB == "pghistory":
    import pghistory

    pghistory.track(
        pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent()
    )(Tracked)
