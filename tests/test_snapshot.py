"""ObjectSnapshot: instances rebuilt from history in one query."""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db.models import Model, OuterRef, Subquery
from django.db.utils import ConnectionHandler

from revy_core import Context
from revy_core.models import ObjectDelta, ObjectSnapshot
from revy_core.writer import flush
from tests.testapp.history import object_deltas
from tests.testapp.models import (
    Account,
    Everything,
    Organization,
    PlaceProxy,
    Profile,
    Restaurant,
)

pytestmark = pytest.mark.django_db


def snapshots(model: type[Model], pk: Any) -> list[Any]:
    """The snapshot at each object delta of one instance, oldest first."""
    return [
        delta.snapshot
        for delta in ObjectDelta.objects.filter(
            content_type=ContentType.objects.get_for_model(model),
            content_id=str(pk),
        )
        .annotate(snapshot=ObjectSnapshot(model))
        .order_by("pk")
    ]


def state(instance: Model) -> dict[str, Any]:
    """Every concrete field value of an instance, binary values as bytes."""
    result = {}
    for field in instance._meta.concrete_fields:
        value = getattr(instance, field.attname)
        if isinstance(value, memoryview):
            value = bytes(value)
        result[field.attname] = value
    return result


def typed(value: Any) -> tuple[type, Any]:
    return type(value), value


def typed_state(instance: Model) -> dict[str, tuple[type, Any]]:
    return {name: (type(value), value) for name, value in state(instance).items()}


EVERYTHING: dict[str, Any] = {
    "char": 'quote " backslash \\ bracket ] brace } ünïcode ✓',
    "text": "line one\nline two\ttab",
    "integer": -42,
    "big": -(2**62),
    "flag": True,
    "maybe": False,
    "decimal": decimal.Decimal("-1234567890.1234"),
    "number": 1.0000000000000002,
    "day": datetime.date(1999, 12, 31),
    "moment": datetime.datetime(
        2024,
        3,
        31,
        1,
        30,
        15,
        999999,
        tzinfo=datetime.timezone(datetime.timedelta(hours=-5, minutes=-30)),
    ),
    "clock": datetime.time(23, 59, 59, 500),
    "span": datetime.timedelta(days=-3, seconds=5, microseconds=7),
    "token": uuid.UUID("c0ffee00-0000-4000-8000-000000000001"),
    "data": {"nested": {"list": [1, 2.5, None, True, "s", []]}, "null": None},
    "blob": bytes(range(256)),
    "email": "someone@example.com",
    "slug": "a-slug",
    "ip": "2001:db8::ff00:42:8329",
}


def test_snapshot_is_one_query(django_assert_num_queries):
    organization = Organization.objects.create(name="acme")
    with Context():
        thing = Everything.objects.create(organization=organization, **EVERYTHING)
        for i in range(3):
            thing.integer = i
            thing.save()
    ContentType.objects.get_for_model(Everything)
    flush()
    with django_assert_num_queries(1):
        built = snapshots(Everything, thing.pk)
        assert len(built) == 4
        for snapshot in built:
            assert snapshot.get_deferred_fields() == set()
            state(snapshot)


def test_every_field_type_round_trips():
    organization = Organization.objects.create(name="acme")
    with Context():
        thing = Everything.objects.create(organization=organization, **EVERYTHING)
    (snapshot,) = snapshots(Everything, thing.pk)
    stored = Everything.objects.get(pk=thing.pk)
    assert typed_state(snapshot) == typed_state(stored)
    # The same Python values on every database: what was saved, type for type.
    assert {name: typed(getattr(snapshot, name)) for name in EVERYTHING} == {
        name: typed(value) for name, value in EVERYTHING.items()
    }
    assert snapshot.moment == EVERYTHING["moment"]
    assert snapshot.moment.utcoffset() is not None
    assert isinstance(snapshot.pk, uuid.UUID)
    assert snapshot.pk == thing.pk
    assert snapshot.organization_id == organization.pk
    assert snapshot.organization == organization


def test_nulls_round_trip():
    with Context():
        thing = Everything.objects.create()
    (snapshot,) = snapshots(Everything, thing.pk)
    stored = Everything.objects.get(pk=thing.pk)
    assert typed_state(snapshot) == typed_state(stored)
    for name in ("integer", "maybe", "decimal", "moment", "data", "blob", "ip"):
        assert getattr(snapshot, name) is None, name


@pytest.mark.parametrize(
    "data",
    [
        [],
        {},
        [1, [2, [3, {"x": None}]]],
        "a string",
        0,
        -1.5,
        True,
        {"": "", "ü": ["\n", "\u2028"]},
    ],
)
def test_json_values_round_trip(data):
    with Context():
        thing = Everything.objects.create(data=data)
    (snapshot,) = snapshots(Everything, thing.pk)
    assert snapshot.data == data
    assert type(snapshot.data) is type(data)


def test_snapshot_at_each_update_equals_the_state_then():
    with Context():
        thing = Everything.objects.create(char="v0", decimal=decimal.Decimal("0"))
        states = [state(Everything.objects.get(pk=thing.pk))]
        for i in range(1, 4):
            thing.char = f"v{i}"
            if i % 2:
                thing.decimal = decimal.Decimal(i) / 4
            thing.data = {"step": i}
            thing.save()
            states.append(state(Everything.objects.get(pk=thing.pk)))
    assert [state(s) for s in snapshots(Everything, thing.pk)] == states


def test_snapshot_of_a_chain_takes_the_last_value():
    alice = User.objects.create_user("alice")
    bob = User.objects.create_user("bob")
    account = Account.objects.create(name="a")
    pk = account.pk
    with Context.via_actor(alice):
        account.name = "alice's"
        with Context.via_actor(bob):
            account.name = "bob's"
        account.save()
    with Context():
        account.delete()
    update, delete = snapshots(Account, pk)
    assert update.name == "bob's"
    assert delete.name == "bob's"


def test_deleted_object_is_restored_with_its_primary_key():
    organization = Organization.objects.create(name="acme")
    with Context():
        thing = Everything.objects.create(organization=organization, **EVERYTHING)
        pk = thing.pk
        expected = state(Everything.objects.get(pk=pk))
        thing.delete()
    assert not Everything.objects.filter(pk=pk).exists()
    _, deleted = snapshots(Everything, pk)
    deleted.save()
    assert state(Everything.objects.get(pk=pk)) == expected


def test_object_from_before_tracking_can_be_rebuilt_after_deletion():
    account = Account.objects.create(name="old", balance=decimal.Decimal("5.25"))
    account.name = "older"
    account.save()
    expected = state(Account.objects.get(pk=account.pk))
    pk = account.pk
    with Context():
        Account.objects.get(pk=pk).delete()
    (deleted,) = snapshots(Account, pk)
    assert state(deleted) == expected
    deleted.save()
    assert state(Account.objects.get(pk=pk)) == expected


def test_object_from_before_tracking_updated_then_deleted():
    account = Account.objects.create(name="old", balance=decimal.Decimal("5"))
    pk = account.pk
    with Context():
        account.name = "new"
        account.save()
        account.delete()
    update, delete = snapshots(Account, pk)
    # History knows only the changed field at the update.
    assert update.name == "new"
    assert update.get_deferred_fields() == {
        "id",
        "owner_id",
        "organization_id",
        "balance",
    }
    assert state(delete) == {
        "id": pk,
        "owner_id": None,
        "organization_id": None,
        "name": "new",
        "balance": decimal.Decimal("5.00"),
    }


def test_masked_and_excluded_fields_come_back_with_their_default():
    user = User.objects.create_user("alice")
    with Context():
        profile = Profile.objects.create(user=user, secret="s", cache="c", bio="b")
        pk = profile.pk
        profile.delete()
    (_, deleted) = snapshots(Profile, pk)
    assert (deleted.secret, deleted.cache, deleted.bio) == ("", "", "b")
    assert deleted.user_id == user.pk


def test_multi_table_child_is_rebuilt_with_parent_fields():
    with Context():
        restaurant = Restaurant.objects.create(name="Luigi's", serves_pizza=True)
        pk = restaurant.pk
        restaurant.delete()
    _, deleted = snapshots(Restaurant, pk)
    assert (deleted.pk, deleted.name, deleted.serves_pizza) == (pk, "Luigi's", True)
    deleted.save()
    restored = Restaurant.objects.get(pk=pk)
    assert (restored.name, restored.serves_pizza) == ("Luigi's", True)


def test_rollback_to_a_middle_state_of_a_live_object():
    with Context():
        account = Account.objects.create(name="v1", balance=decimal.Decimal("1"))
        account.name = "v2"
        account.balance = decimal.Decimal("2")
        account.save()
        account.name = "v3"
        account.save()
    _, middle, _ = snapshots(Account, account.pk)
    with Context():
        middle.save()
    account.refresh_from_db()
    assert (account.name, account.balance) == ("v2", decimal.Decimal("2"))
    (*_, rollback) = object_deltas(account)
    assert rollback.action == ObjectDelta.ACTION_UPDATE


def test_snapshot_of_a_delta_of_another_model_is_none():
    with Context():
        account = Account.objects.create(name="a")
        organization = Organization.objects.create(pk=account.pk, name="o")
    deltas = list(
        ObjectDelta.objects.filter(content_id=str(account.pk))
        .annotate(snapshot=ObjectSnapshot(Organization))
        .order_by("pk")
    )
    assert [d.snapshot for d in deltas] == [None, organization]
    assert deltas[1].snapshot.name == "o"


def test_snapshot_of_a_proxy_model():
    with Context():
        place = PlaceProxy.objects.create(name="proxied")
        pk = place.pk
        place.delete()
    _, deleted = snapshots(PlaceProxy, pk)
    assert type(deleted) is PlaceProxy
    assert (deleted.pk, deleted.name) == (pk, "proxied")


# One query; the SQL is written once per database, model and column names ---


def test_state_as_of_one_delta_is_one_query(django_assert_num_queries):
    with Context():
        account = Account.objects.create(name="v1", balance=decimal.Decimal("1"))
        account.name = "v2"
        account.save()
    first, second = object_deltas(account)
    for delta, name in [(first, "v1"), (second, "v2"), (first, "v1")]:
        with django_assert_num_queries(1):
            snapshot = (
                ObjectDelta.objects.filter(pk=delta.pk)
                .annotate(snapshot=ObjectSnapshot(Account))
                .get()
                .snapshot
            )
        assert (snapshot.pk, snapshot.name) == (account.pk, name)
        assert snapshot.balance == decimal.Decimal("1.00")


def test_two_models_annotated_on_one_queryset():
    with Context():
        account = Account.objects.create(name="a")
        organization = Organization.objects.create(pk=account.pk, name="o")
    deltas = (
        ObjectDelta.objects.filter(content_id=str(account.pk))
        .annotate(
            account=ObjectSnapshot(Account),
            organization=ObjectSnapshot(Organization),
        )
        .order_by("pk")
    )
    assert [(d.account, d.organization) for d in deltas] == [
        (account, None),
        (None, organization),
    ]
    assert [(d.account and d.account.name) for d in deltas] == ["a", None]


@pytest.mark.django_db(databases=["default", "other"])
def test_each_database_rebuilds_from_its_own_history():
    with Context():
        here = Account.objects.create(name="here")
        there = Account(name="there")
        there.save(using="other")
        there.name = "there, renamed"
        there.save(using="other")
    for database, pk, names in [
        ("default", here.pk, ["here"]),
        ("other", there.pk, ["there", "there, renamed"]),
        ("default", here.pk, ["here"]),
    ]:
        content_type = ContentType.objects.db_manager(database).get_for_model(Account)
        built = [
            delta.snapshot
            for delta in ObjectDelta.objects.using(database)
            .filter(content_type=content_type, content_id=str(pk))
            .annotate(snapshot=ObjectSnapshot(Account))
            .order_by("pk")
        ]
        assert [snapshot.name for snapshot in built] == names
        assert {snapshot._state.db for snapshot in built} == {database}


def test_snapshot_in_a_subquery_reads_the_inner_object_delta():
    with Context():
        first = Account.objects.create(name="v1")
        first.name = "v2"
        first.save()
        second = Account.objects.create(name="w1")
    content_type = ContentType.objects.get_for_model(Account)
    deltas = ObjectDelta.objects.filter(content_type=content_type)
    # Each delta with the latest state of its object: the inner query's
    # tables are renamed (U0 ...), the snapshot must follow.
    latest = (
        deltas.filter(content_id=OuterRef("content_id"))
        .annotate(snapshot=ObjectSnapshot(Account))
        .order_by("-pk")
        .values("snapshot")[:1]
    )
    rows = list(
        deltas.annotate(
            snapshot=ObjectSnapshot(Account), latest=Subquery(latest)
        ).order_by("pk")
    )
    assert [(r.snapshot.name, r.latest.name) for r in rows] == [
        ("v1", "v2"),
        ("v2", "v2"),
        ("w1", "w1"),
    ]
    assert [r.latest.pk for r in rows] == [first.pk, first.pk, second.pk]


def test_snapshot_on_a_filtered_and_joined_queryset():
    alice = User.objects.create_user("alice")
    with Context.via_actor(alice), Context.via_revision_description("open"):
        account = Account.objects.create(name="v1")
    with Context(), Context.via_revision_description("rename"):
        account.name = "v2"
        account.save()
    rows = (
        ObjectDelta.objects.filter(
            revision__description="rename",
            attribute_deltas__field_name="name",
            content_id=str(account.pk),
        )
        .select_related("revision")
        .annotate(snapshot=ObjectSnapshot(Account))
    )
    ((delta, snapshot),) = [(r, r.snapshot) for r in rows]
    assert (delta.revision.description, snapshot.name) == ("rename", "v2")
    assert [
        d.snapshot.name
        for d in ObjectDelta.objects.filter(
            actor_id=str(alice.pk), content_id=str(account.pk)
        ).annotate(snapshot=ObjectSnapshot(Account))
    ] == ["v1"]


def test_sql_is_written_for_each_database_vendor():
    pytest.importorskip("psycopg")
    with Context():
        account = Account.objects.create(name="v1")
    # Real backends, never connected: compiling needs no server.
    backends = ConnectionHandler(
        {
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
            "revy_postgresql": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": "never_connected",
            },
            "revy_sqlite": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
        }
    )
    queryset = ObjectDelta.objects.filter(content_id=str(account.pk)).annotate(
        snapshot=ObjectSnapshot(Account)
    )

    def sql(using: Any) -> str:
        return str(queryset.query.get_compiler(connection=using).as_sql()[0])

    for _ in range(2):
        postgresql = sql(backends["revy_postgresql"])
        sqlite = sql(backends["revy_sqlite"])
        assert "unnest(" in postgresql
        assert "::text" in postgresql
        assert "group_concat(" not in postgresql
        assert "group_concat(" in sqlite
        assert "::text" not in sqlite
        # The database the tests run on still gets its own SQL.
        assert [d.snapshot.name for d in queryset.all()] == ["v1"]
