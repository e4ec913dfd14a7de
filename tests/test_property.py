"""Property: a snapshot at any past object delta is the state at that step.

Steps mix every write path: ``create``, ``bulk_create``, ``save``,
``QuerySet.update`` (plain values and an expression), ``bulk_update``,
``Model.delete`` and ``QuerySet.delete``.
"""

from __future__ import annotations

import datetime
import string
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models.functions import Upper
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from revy_core import Context
from revy_core.models import ObjectDelta, ObjectSnapshot
from tests.testapp.models import Everything, Organization

pytestmark = pytest.mark.django_db

_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\x00"),
    max_size=20,
)
_JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT
)
_JSON = st.recursive(
    _JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(_TEXT, children, max_size=3)
    ),
    max_leaves=8,
)
_OFFSETS = st.sampled_from(
    [datetime.UTC]
    + [
        datetime.timezone(datetime.timedelta(minutes=m))
        for m in (-720, -330, -60, 60, 345, 840)
    ]
)


def _nullable(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "char": st.text(
        alphabet=st.characters(codec="utf-8", exclude_characters="\x00"),
        max_size=50,
    ),
    "text": _TEXT,
    "integer": _nullable(st.integers(min_value=-(2**31), max_value=2**31 - 1)),
    "big": _nullable(st.integers(min_value=-(2**63), max_value=2**63 - 1)),
    "flag": st.booleans(),
    "maybe": _nullable(st.booleans()),
    "decimal": _nullable(
        st.decimals(
            min_value=-(10**10) + 1,
            max_value=10**10 - 1,
            places=4,
            allow_nan=False,
            allow_infinity=False,
        )
    ),
    "number": _nullable(st.floats(allow_nan=False, allow_infinity=False)),
    "day": _nullable(
        st.dates(min_value=datetime.date(1, 1, 1), max_value=datetime.date(9999, 1, 1))
    ),
    "moment": _nullable(
        st.datetimes(
            min_value=datetime.datetime(1901, 1, 1),
            max_value=datetime.datetime(2099, 12, 31),
            timezones=_OFFSETS,
        )
    ),
    "clock": _nullable(st.times()),
    "span": _nullable(
        st.timedeltas(
            min_value=datetime.timedelta(days=-(10**6)),
            max_value=datetime.timedelta(days=10**6),
        )
    ),
    "token": _nullable(st.uuids(version=4)),
    "data": _JSON,
    "blob": _nullable(st.binary(max_size=16)),
    "email": st.sampled_from(["", "a@example.com", "first.last+tag@example.org"]),
    "slug": st.text(alphabet=string.ascii_letters + string.digits + "-_", max_size=20),
    "ip": _nullable(st.ip_addresses().map(str)),
}


def state(instance: Everything) -> dict[str, Any]:
    result = {}
    for field in Everything._meta.concrete_fields:
        value = getattr(instance, field.attname)
        if isinstance(value, memoryview):
            value = bytes(value)
        result[field.attname] = value
    return result


@settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_snapshot_at_every_object_delta_equals_the_recorded_state(data):
    with transaction.atomic():
        _run(data)
        transaction.set_rollback(True)


def _run(data: Any) -> None:
    actors: list[Any] = [
        None,
        User.objects.create_user("alice"),
        User.objects.create_user("bob"),
        Organization.objects.create(name="acme"),
    ]
    organizations = [None, *Organization.objects.all()]
    fields = {
        **FIELDS,
        "organization_id": st.sampled_from([o and o.pk for o in organizations]),
    }
    live: list[Everything] = []
    # Object delta pk -> (the state right after it, its actor).
    expected: dict[int, tuple[dict[str, Any], Any]] = {}

    def last_delta(pk: Any) -> ObjectDelta | None:
        return ObjectDelta.objects.filter(content_id=str(pk)).order_by("-pk").first()

    steps = data.draw(st.integers(min_value=1, max_value=12), label="steps")
    for _ in range(steps):
        actor = data.draw(st.sampled_from(actors), label="actor")
        operations = ["create", "bulk_create"] + (
            [
                "update",
                "queryset_update",
                "expression_update",
                "bulk_update",
                "delete",
                "queryset_delete",
                "reload",
            ]
            if live
            else []
        )
        operation = data.draw(st.sampled_from(operations), label="operation")
        if operation == "reload":
            index = data.draw(st.integers(0, len(live) - 1), label="reload")
            if data.draw(st.booleans(), label="refresh"):
                live[index].refresh_from_db()
            else:
                live[index] = Everything.objects.get(pk=live[index].pk)
            continue
        before = ObjectDelta.objects.count()
        with Context.via_actor(actor):
            if operation in ("create", "bulk_create"):
                values = data.draw(st.fixed_dictionaries(fields), label="create")
                if operation == "create":
                    instance = Everything.objects.create(**values)
                else:
                    (instance,) = Everything.objects.bulk_create([Everything(**values)])
                live.append(instance)
                pk = instance.pk
            elif operation in ("update", "bulk_update"):
                index = data.draw(st.integers(0, len(live) - 1), label="update")
                instance = live[index]
                # Assignments, possibly repeated, each under the operation's
                # actor or another one (collaborative changes, chains).
                assignments = data.draw(
                    st.lists(
                        st.tuples(st.sampled_from(sorted(fields)), st.booleans()),
                        min_size=1,
                        max_size=6,
                    ),
                    label="assignments",
                )
                for name, by_other in assignments:
                    value = data.draw(fields[name], label=name)
                    if by_other:
                        other = data.draw(st.sampled_from(actors), label="other")
                        with Context.via_actor(other):
                            setattr(instance, name, value)
                    else:
                        setattr(instance, name, value)
                if operation == "update":
                    instance.save()
                else:
                    names = sorted({name for name, _ in assignments})
                    Everything.objects.bulk_update([instance], names)
                pk = instance.pk
            elif operation in ("queryset_update", "expression_update"):
                index = data.draw(st.integers(0, len(live) - 1), label="update")
                pk = live[index].pk
                if operation == "queryset_update":
                    names = data.draw(
                        st.lists(st.sampled_from(sorted(fields)), min_size=1),
                        label="names",
                    )
                    values = {
                        name: data.draw(fields[name], label=name) for name in names
                    }
                    Everything.objects.filter(pk=pk).update(**values)
                else:
                    Everything.objects.filter(pk=pk).update(slug=Upper("slug"))
                # The instance in memory is stale: reload it, as a program
                # that keeps using it must.
                live[index].refresh_from_db()
            else:
                index = data.draw(st.integers(0, len(live) - 1), label="delete")
                instance = live.pop(index)
                pk = instance.pk
                final = state(Everything.objects.get(pk=pk))
                if operation == "delete":
                    instance.delete()
                else:
                    Everything.objects.filter(pk=pk).delete()
        if operation not in ("delete", "queryset_delete"):
            final = state(Everything.objects.get(pk=pk))
        delta = last_delta(pk)
        if ObjectDelta.objects.count() == before:
            # A write that changed nothing records nothing.
            assert operation in {
                "update",
                "bulk_update",
                "queryset_update",
                "expression_update",
            }
            continue
        assert ObjectDelta.objects.count() == before + 1
        assert delta is not None
        assert (
            delta.action
            == {
                "create": ObjectDelta.ACTION_CREATE,
                "bulk_create": ObjectDelta.ACTION_CREATE,
                "update": ObjectDelta.ACTION_UPDATE,
                "bulk_update": ObjectDelta.ACTION_UPDATE,
                "queryset_update": ObjectDelta.ACTION_UPDATE,
                "expression_update": ObjectDelta.ACTION_UPDATE,
                "delete": ObjectDelta.ACTION_DELETE,
                "queryset_delete": ObjectDelta.ACTION_DELETE,
            }[operation]
        )
        expected[delta.pk] = (final, actor)

    content_type = ContentType.objects.get_for_model(Everything)
    rows = (
        ObjectDelta.objects.filter(content_type=content_type)
        .annotate(snapshot=ObjectSnapshot(Everything))
        .order_by("pk")
    )
    seen = 0
    for row in rows:
        truth, actor = expected[row.pk]
        snapshot = row.snapshot
        assert snapshot.get_deferred_fields() == set()
        assert state(snapshot) == truth
        assert row.actor == actor
        seen += 1
    assert seen == len(expected)
