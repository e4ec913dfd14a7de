"""What a save of a tracked model records, and what it costs."""

from __future__ import annotations

import contextlib
import copy
import datetime
import decimal
import json
import uuid
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db import DatabaseError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from revy_core import Context
from revy_core.models import AttributeDelta, ObjectDelta, Revision
from revy_core.writer import flush
from tests.testapp.history import (
    actor_of,
    attributes,
    changes,
    delta_inserts,
    history_counts,
    object_deltas,
    revision_inserts,
)
from tests.testapp.models import (
    Account,
    Everything,
    Organization,
    Place,
    PlaceProxy,
    Profile,
    Restaurant,
    Transaction,
    Untracked,
)

pytestmark = pytest.mark.django_db


def _statement(verb: str, table: str) -> str:
    """How a statement on ``table`` starts, quoted as the backend quotes."""
    return f"{verb} {connection.ops.quote_name(table)}"


@pytest.fixture
def user():
    return User.objects.create_user("alice", password="correct horse")


@pytest.fixture
def other_user():
    return User.objects.create_user("bob", password="battery staple")


@pytest.fixture
def account():
    """An account created outside any context: history knows nothing of it."""
    return Account.objects.create(name="savings", balance=decimal.Decimal("10.50"))


def _warm_up() -> None:
    """Fill Django's content type cache so query counts measure revy only."""
    for model in (User, Account, Everything, Organization, Revision):
        ContentType.objects.get_for_model(model)


# Create --------------------------------------------------------------------


def test_create_records_one_object_delta_and_one_set_per_concrete_field(user):
    with Context.via_actor(user), Context.via_object_delta_description("opened"):
        account = Account.objects.create(
            name="current", balance=decimal.Decimal("1.5"), owner=user
        )

    (delta,) = object_deltas(account)
    assert delta.action == ObjectDelta.ACTION_CREATE
    assert delta.description == "opened"
    assert actor_of(delta) == user
    assert delta.content_type == ContentType.objects.get_for_model(Account)
    assert delta.content_id == str(account.pk)
    assert changes(delta) == {
        "id": (None, account.pk),
        "owner": (None, user.pk),
        "organization": (None, None),
        "name": (None, "current"),
        "balance": (None, "1.50"),
    }
    for attribute in attributes(delta):
        assert attribute.action == AttributeDelta.ACTION_SET
        assert attribute.revision_id == delta.revision_id
        assert attribute.content_type_id == delta.content_type_id
        assert attribute.content_id == delta.content_id
        assert actor_of(attribute) == user
    assert history_counts() == (1, 1, 5)


def test_create_of_every_field_type_stores_json_values():
    moment = datetime.datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=datetime.UTC)
    token = uuid.UUID("12345678-1234-5678-1234-567812345678")
    with Context():
        thing = Everything.objects.create(
            char="c",
            integer=7,
            big=2**40,
            flag=True,
            maybe=None,
            decimal=decimal.Decimal("3.14159"),
            number=0.5,
            day=datetime.date(2024, 1, 2),
            moment=moment,
            clock=datetime.time(3, 4, 5),
            span=datetime.timedelta(days=1, seconds=3),
            token=token,
            data={"a": [1, {"b": None}]},
            blob=b"\x00\xff",
            ip="2001:db8::1",
        )
    (delta,) = object_deltas(thing)
    new = {name: values[1] for name, values in changes(delta).items()}
    assert new["id"] == str(thing.pk)
    assert new["decimal"] == "3.1416"
    assert new["big"] == 2**40
    assert new["moment"] == "2024-02-29T23:59:58.123456+00:00"
    assert new["day"] == "2024-01-02"
    assert new["clock"] == "03:04:05"
    assert new["span"] == "P1DT00H00M03S"
    assert new["token"] == str(token)
    assert new["data"] == {"a": [1, {"b": None}]}
    assert new["blob"] == "AP8="
    assert new["maybe"] is None
    assert new["flag"] is True
    assert new["number"] == 0.5
    assert new["organization"] is None
    assert len(new) == len(Everything._meta.concrete_fields)


# Update --------------------------------------------------------------------


def test_update_records_only_changed_fields_with_old_values_loaded_outside(
    account, user
):
    loaded = Account.objects.get(pk=account.pk)
    with Context.via_actor(user):
        loaded.name = "renamed"
        loaded.balance = decimal.Decimal("10.5")  # same value, other spelling
        loaded.save()

    (delta,) = object_deltas(account)
    assert delta.action == ObjectDelta.ACTION_UPDATE
    assert actor_of(delta) == user
    assert changes(delta) == {"name": ("savings", "renamed")}


def test_update_of_an_instance_created_outside_any_context(account):
    account.balance = decimal.Decimal("99")
    with Context():
        account.save()
    (delta,) = object_deltas(account)
    assert changes(delta) == {"balance": ("10.50", "99.00")}


def test_old_values_follow_each_save(user):
    with Context.via_actor(user):
        account = Account.objects.create(name="a")
        account.name = "b"
        account.save()
        account.name = "c"
        account.save()
    create, first, second = object_deltas(account)
    assert create.action == ObjectDelta.ACTION_CREATE
    assert changes(first) == {"name": ("a", "b")}
    assert changes(second) == {"name": ("b", "c")}


def test_save_outside_a_context_moves_the_baseline(account):
    account.name = "outside"
    account.save()
    account.name = "inside"
    with Context():
        account.save()
    (delta,) = object_deltas(account)
    assert changes(delta) == {"name": ("outside", "inside")}


def test_save_that_changes_nothing_records_nothing(account, django_assert_num_queries):
    _warm_up()
    account = Account.objects.get(pk=account.pk)
    account.name = "savings"
    with Context(), django_assert_num_queries(1):
        account.save()
    assert history_counts() == (0, 0, 0)


def test_update_fields_records_only_those_fields(account):
    account.name = "renamed"
    account.balance = decimal.Decimal("1")
    with Context():
        account.save(update_fields=["name"])
    (delta,) = object_deltas(account)
    assert changes(delta) == {"name": ("savings", "renamed")}

    # balance was never written: its old value is still the stored one.
    with Context():
        account.save()
    _, delta = object_deltas(account)
    assert changes(delta) == {"balance": ("10.50", "1.00")}


def test_update_fields_by_attname(account, user):
    account.owner = user
    with Context():
        account.save(update_fields=["owner_id"])
    (delta,) = object_deltas(account)
    assert changes(delta) == {"owner": (None, user.pk)}


def test_json_mutated_in_place_is_recorded():
    thing = Everything.objects.create(data={"tags": ["a"]})
    thing = Everything.objects.get(pk=thing.pk)
    assert isinstance(thing.data, dict)
    thing.data["tags"].append("b")
    with Context():
        thing.save()
    (delta,) = object_deltas(thing)
    assert changes(delta) == {"data": ({"tags": ["a"]}, {"tags": ["a", "b"]})}


def test_foreign_key_assigned_through_the_relation(account):
    organization = Organization.objects.create(name="acme")
    with Context():
        account.organization = organization
        account.save()
    (delta,) = object_deltas(account)
    assert changes(delta) == {"organization": (None, organization.pk)}


# Actors and descriptions ---------------------------------------------------


def test_each_attribute_keeps_the_actor_and_description_of_its_assignment(
    account, user
):
    with Context.via_actor(user), Context.via_object_delta_description("edit"):
        account.name = "by alice"
        with (
            Context.via_actor(None),
            Context.via_attribute_delta_description("Corrected by the system."),
        ):
            account.balance = decimal.Decimal("0")
        account.save()

    (delta,) = object_deltas(account)
    assert actor_of(delta) == user
    assert delta.description == "edit"
    by_name = {a.field_name: a for a in attributes(delta)}
    assert set(by_name) == {"name", "balance"}
    assert actor_of(by_name["name"]) == user
    assert by_name["name"].description == ""
    assert actor_of(by_name["balance"]) is None
    assert by_name["balance"].description == "Corrected by the system."
    assert (by_name["balance"].old_value, by_name["balance"].new_value) == (
        "10.50",
        "0.00",
    )


def test_repeated_assignments_under_one_actor_collapse(account, user):
    with Context.via_actor(user):
        for name in ("one", "two", "three"):
            account.name = name
        account.save()
    (delta,) = object_deltas(account)
    (attribute,) = attributes(delta)
    assert (attribute.field_name, attribute.old_value, attribute.new_value) == (
        "name",
        "savings",
        "three",
    )
    assert actor_of(attribute) == user


def test_different_actors_on_one_field_give_a_chain(account, user, other_user):
    with Context.via_actor(user):
        account.name = "alice's"
        account.name = "alice's final"
        with Context.via_actor(other_user):
            account.name = "bob's"
        with Context.via_actor(None):
            account.name = "system's"
        account.save()
    (delta,) = object_deltas(account)
    chain = [(a.old_value, a.new_value, actor_of(a)) for a in attributes(delta)]
    assert chain == [
        ("savings", "alice's final", user),
        ("alice's final", "bob's", other_user),
        ("bob's", "system's", None),
    ]


def test_chain_is_forgotten_after_the_save(account, user, other_user):
    with Context.via_actor(user):
        account.name = "a"
        with Context.via_actor(other_user):
            account.name = "b"
        account.save()
        account.name = "c"
        account.save()
    _, second = object_deltas(account)
    ((old, new, actor),) = [
        (a.old_value, a.new_value, actor_of(a)) for a in attributes(second)
    ]
    assert (old, new, actor) == ("b", "c", user)


def test_assignment_outside_a_context_is_credited_to_the_saving_actor(account, user):
    account.name = "assigned outside"
    with Context.via_actor(user):
        account.save()
    (delta,) = object_deltas(account)
    (attribute,) = attributes(delta)
    assert actor_of(attribute) == user


# Revisions -----------------------------------------------------------------


def test_without_a_revision_each_change_gets_its_own(account):
    with Context.via_revision_description("why"):
        account.name = "one"
        account.save()
        account.name = "two"
        account.save()
    first, second = object_deltas(account)
    assert first.revision_id != second.revision_id
    assert [r.description for r in Revision.objects.order_by("pk")] == ["why", "why"]
    for delta in (first, second):
        assert set(delta.attribute_deltas.values_list("revision", flat=True)) == {
            delta.revision_id
        }


@pytest.mark.django_db(transaction=True)
def test_saves_with_revisions_of_their_own_write_their_deltas_at_commit():
    _warm_up()
    account = Account.objects.create(name="a")
    with Context(), CaptureQueriesContext(connection) as captured, transaction.atomic():
        for name in ("one", "two", "three"):
            account.name = name
            account.save()
    sql = [q["sql"] for q in captured.captured_queries]
    update = _statement("UPDATE", "testapp_account")
    deltas = _statement("INSERT INTO", "revy_object_delta")
    last_update = max(i for i, q in enumerate(sql) if q.startswith(update))
    assert all(i > last_update for i, q in enumerate(sql) if deltas in q)
    history = [q for q in sql if "revy_" in q and "INSERT" in q]
    assert len(history) == 3 + delta_inserts(3, 3)
    assert Revision.objects.count() == 3


def test_via_revision_groups_changes(account):
    revision = Revision.objects.create(description="grouped")
    with Context.via_revision(revision):
        account.name = "one"
        account.save()
        other = Account.objects.create(name="other")
    (first,) = object_deltas(account)
    (second,) = object_deltas(other)
    assert first.revision == second.revision == revision
    assert set(
        AttributeDelta.objects.values_list("revision", flat=True).distinct()
    ) == {revision.pk}
    assert Revision.objects.count() == 1


def test_unsaved_revision_is_saved_on_first_change(account):
    revision = Revision(description="unsaved")
    with Context.via_revision(revision):
        account.name = "one"
        account.save()
        account.name = "two"
        account.save()
    assert revision.pk is not None
    assert {d.revision_id for d in object_deltas(account)} == {revision.pk}


def _create_then_fail(name: str) -> None:
    with transaction.atomic():
        Account.objects.create(name=name)
        raise ZeroDivisionError


def test_unsaved_revision_is_saved_again_after_a_rollback():
    revision = Revision(description="unsaved")
    with Context.via_revision(revision):
        with pytest.raises(ZeroDivisionError):
            _create_then_fail("rolled back")
        kept = Account.objects.create(name="kept")
        Account.objects.create(name="also kept")
    (stored,) = Revision.objects.all()
    assert stored.pk == revision.pk
    assert stored.description == "unsaved"
    assert object_deltas(kept)[0].revision_id == stored.pk
    assert ObjectDelta.objects.filter(revision=stored).count() == 2


@pytest.mark.django_db(transaction=True)
def test_unsaved_revision_is_saved_again_after_a_rollback_in_autocommit():
    revision = Revision(description="unsaved")
    with Context.via_revision(revision):
        with pytest.raises(ZeroDivisionError):
            _create_then_fail("rolled back")
        assert not Revision.objects.exists()
        kept = Account.objects.create(name="kept")
        Account.objects.create(name="also kept")
    (stored,) = Revision.objects.all()
    assert object_deltas(kept)[0].revision_id == stored.pk == revision.pk
    assert ObjectDelta.objects.filter(revision=stored).count() == 2


def test_lazy_revision_is_created_once(account):
    calls: list[int] = []

    def make() -> Revision:
        calls.append(1)
        return Revision(description="lazy")

    with Context.via_revision(make):
        assert calls == []
        account.name = "one"
        account.save()
        Account.objects.create(name="two")
    assert calls == [1]
    (revision,) = Revision.objects.all()
    assert revision.description == "lazy"
    assert ObjectDelta.objects.filter(revision=revision).count() == 2


def test_lazy_revision_is_not_created_when_nothing_changes(account):
    with Context.via_revision(lambda: Revision(description="lazy")):
        account.save()
    assert history_counts() == (0, 0, 0)


def test_lazy_revision_is_recreated_after_a_rollback(account):
    calls: list[int] = []

    def make() -> Revision:
        calls.append(1)
        return Revision(description=f"lazy {len(calls)}")

    def create_then_fail() -> None:
        with transaction.atomic():
            Account.objects.create(name="rolled back")
            raise ZeroDivisionError

    with Context.via_revision(make):
        with pytest.raises(ZeroDivisionError):
            create_then_fail()
        created = Account.objects.create(name="kept")
    assert calls == [1, 1]
    (revision,) = Revision.objects.all()
    assert revision.description == "lazy 2"
    (delta,) = object_deltas(created)
    assert delta.revision == revision
    assert ObjectDelta.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_lazy_revision_in_autocommit_is_reused_after_commit_and_not_after_rollback():
    calls: list[int] = []

    def make() -> Revision:
        calls.append(1)
        return Revision(description=f"lazy {len(calls)}")

    with Context.via_revision(make):
        with pytest.raises(ZeroDivisionError):
            _create_then_fail("rolled back")
        assert not Revision.objects.exists()
        with transaction.atomic():
            first = Account.objects.create(name="committed")
        second = Account.objects.create(name="autocommit")
    assert calls == [1, 1]
    (revision,) = Revision.objects.all()
    assert revision.description == "lazy 2"
    assert object_deltas(first)[0].revision == revision
    assert object_deltas(second)[0].revision == revision


def test_lazy_revision_takes_the_revision_description(account):
    with (
        Context.via_revision(lambda: Revision()),
        Context.via_revision_description("described"),
    ):
        account.name = "x"
        account.save()
    (delta,) = object_deltas(account)
    assert delta.revision.description == "described"


# Where tracking happens ----------------------------------------------------


def test_nothing_is_recorded_outside_a_context(account):
    account.name = "x"
    account.save()
    Account.objects.create(name="y")
    Account.objects.filter(pk=account.pk).delete()
    assert history_counts() == (0, 0, 0)


def test_nothing_is_recorded_in_a_disabled_context(account):
    with Context(), Context.as_disabled():
        account.name = "x"
        account.save()
        Account.objects.create(name="y")
        account.delete()
    with Context():
        Context.disable()
        Account.objects.create(name="z")
        Context.enable()
    assert history_counts() == (0, 0, 0)


def test_enabled_again_records_with_the_true_old_value(account):
    with Context():
        with Context.as_disabled():
            account.name = "while disabled"
            account.save()
        with Context.as_enabled():
            account.name = "enabled"
            account.save()
    (delta,) = object_deltas(account)
    assert changes(delta) == {"name": ("while disabled", "enabled")}


def test_assignment_in_a_disabled_context_is_credited_to_the_saver(account, user):
    with Context.via_actor(None), Context.as_disabled():
        account.name = "x"
    with Context.via_actor(user):
        account.save()
    (attribute,) = attributes(object_deltas(account)[0])
    assert actor_of(attribute) == user


def test_excluded_models_are_not_tracked():
    with Context():
        thing = Untracked.objects.create(name="a")
        thing.name = "b"
        thing.save()
        thing.delete()
    assert history_counts() == (0, 0, 0)


def test_excluded_field_is_never_stored(user):
    with Context():
        profile = Profile.objects.create(user=user, cache="c1", bio="b1")
        profile.cache = "c2"
        profile.save()
        profile.cache = "c3"
        profile.bio = "b2"
        profile.save()
    create, update = object_deltas(profile)
    assert "cache" not in changes(create)
    assert changes(update) == {"bio": ("b1", "b2")}
    assert not AttributeDelta.objects.filter(field_name="cache").exists()
    assert "c1" not in _all_stored_text()


def test_masked_fields_are_recorded_without_their_value(user):
    with Context():
        profile = Profile.objects.create(user=user, secret="hunter2")
        profile.secret = "hunter3"
        profile.save()
    create, update = object_deltas(profile)
    assert changes(create)["secret"] == (None, "[masked]")
    assert changes(update) == {"secret": ("[masked]", "[masked]")}
    text = _all_stored_text()
    assert "hunter2" not in text
    assert "hunter3" not in text


def test_password_hashes_never_land_in_history():
    with Context():
        user = User.objects.create_user("carol", password="first password")
        first_hash = user.password
        user.set_password("second password")
        user.save()
        second_hash = user.password
        pk = user.pk
        user.delete()
    create, update, delete = object_deltas(User, pk)
    assert changes(create)["password"] == (None, "[masked]")
    assert changes(update) == {"password": ("[masked]", "[masked]")}
    assert changes(delete)["password"] == ("[masked]", None)
    text = _all_stored_text()
    for secret in (first_hash, second_hash, "first password", "second password"):
        assert secret not in text
    # The hash's salt and digest parts are not stored either.
    for part in first_hash.split("$") + second_hash.split("$"):
        if len(part) > 8:
            assert part not in text


def _all_stored_text() -> str:
    return json.dumps(
        list(AttributeDelta.objects.values_list("old_value", "new_value"))
    )


# Model shapes --------------------------------------------------------------


def test_multi_table_inheritance_records_one_object_delta():
    with Context():
        restaurant = Restaurant.objects.create(name="Luigi's", serves_pizza=True)
    (delta,) = ObjectDelta.objects.all()
    assert delta.content_type == ContentType.objects.get_for_model(Restaurant)
    assert changes(delta) == {
        "id": (None, restaurant.pk),
        "name": (None, "Luigi's"),
        "place_ptr": (None, restaurant.pk),
        "serves_pizza": (None, True),
    }

    with Context():
        restaurant.name = "Mario's"
        restaurant.serves_pizza = False
        restaurant.save()
    _, update = object_deltas(restaurant)
    assert changes(update) == {
        "name": ("Luigi's", "Mario's"),
        "serves_pizza": (True, False),
    }
    assert ObjectDelta.objects.count() == 2


def test_parent_of_multi_table_child_is_tracked_on_its_own():
    restaurant = Restaurant.objects.create(name="Luigi's")
    place = Place.objects.get(pk=restaurant.pk)
    with Context():
        place.name = "Chez Luigi"
        place.save()
    (delta,) = object_deltas(place)
    assert delta.content_type == ContentType.objects.get_for_model(Place)
    assert changes(delta) == {"name": ("Luigi's", "Chez Luigi")}


def test_proxy_model_is_recorded_as_its_concrete_model():
    with Context():
        place = PlaceProxy.objects.create(name="proxied")
        place.name = "renamed"
        place.save()
    create, update = object_deltas(Place, place.pk)
    assert create.content_type == ContentType.objects.get_for_model(Place)
    assert changes(create) == {"id": (None, place.pk), "name": (None, "proxied")}
    assert changes(update) == {"name": ("proxied", "renamed")}


# Loading and reloading -----------------------------------------------------


def test_refresh_from_db_resets_the_baseline(account):
    Account.objects.filter(pk=account.pk).update(name="changed elsewhere")
    account.refresh_from_db()
    with Context():
        account.name = "mine"
        account.save()
    (delta,) = object_deltas(account)
    assert changes(delta) == {"name": ("changed elsewhere", "mine")}


def test_refresh_from_db_discards_unsaved_assignments(account, user):
    with Context.via_actor(user):
        account.name = "discarded"
        account.refresh_from_db()
        account.save()
    assert history_counts() == (0, 0, 0)


def test_refresh_of_some_fields_resets_only_those(account):
    Account.objects.filter(pk=account.pk).update(
        name="elsewhere", balance=decimal.Decimal("2")
    )
    account.refresh_from_db(fields=["name"])
    account.balance = decimal.Decimal("3")
    with Context():
        account.save()
    (delta,) = object_deltas(account)
    # The stale balance was overwritten: the recorded old value is the one
    # this instance last knew, and only changed fields are recorded.
    assert changes(delta) == {"balance": ("10.50", "3.00")}


def test_deferred_field_loaded_later_has_its_true_old_value(account):
    partial = Account.objects.only("name").get(pk=account.pk)
    assert partial.get_deferred_fields() == {"balance", "owner_id", "organization_id"}
    with Context():
        partial.balance = decimal.Decimal("20")
        partial.save()
    (delta,) = object_deltas(account)
    assert changes(delta) == {"balance": ("10.50", "20.00")}
    account.refresh_from_db()
    assert account.balance == decimal.Decimal("20")


def test_deferred_fields_that_were_not_touched_are_not_recorded(account):
    partial = Account.objects.only("name").get(pk=account.pk)
    with Context():
        partial.name = "partial"
        partial.save()
    (delta,) = object_deltas(account)
    assert changes(delta) == {"name": ("savings", "partial")}


def test_deferred_field_read_then_changed(account):
    partial = Account.objects.only("name").get(pk=account.pk)
    assert partial.balance == decimal.Decimal("10.50")  # loads it
    with Context():
        partial.balance = decimal.Decimal("1")
        partial.save()
    (delta,) = object_deltas(account)
    assert changes(delta) == {"balance": ("10.50", "1.00")}


def test_values_and_iterator_loads_keep_baselines(account):
    (loaded,) = list(Account.objects.filter(pk=account.pk).iterator())
    loaded.name = "iterated"
    with Context():
        loaded.save()
    (delta,) = object_deltas(account)
    assert changes(delta) == {"name": ("savings", "iterated")}


# Databases -----------------------------------------------------------------


@pytest.mark.django_db(databases=["default", "other"])
def test_save_using_writes_history_to_that_database(user):
    other_database = "other"
    with Context(), Context.via_revision_description("elsewhere"):
        account = Account(name="remote")
        account.save(using=other_database)
        account.name = "renamed remotely"
        account.save(using=other_database)
    assert history_counts() == (0, 0, 0)
    deltas = list(ObjectDelta.objects.using(other_database).order_by("pk"))
    assert [d.action for d in deltas] == [
        ObjectDelta.ACTION_CREATE,
        ObjectDelta.ACTION_UPDATE,
    ]
    assert Revision.objects.using(other_database).count() == 2
    update = AttributeDelta.objects.using(other_database).get(parent=deltas[1])
    assert (update.old_value, update.new_value) == ("remote", "renamed remotely")


# Async ORM -----------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_async_orm_is_recorded_with_the_right_actor():
    try:
        await _async_orm_is_recorded_with_the_right_actor()
    finally:
        # Close the worker thread's connection, so the test database can be
        # dropped at the end of the session.
        await sync_to_async(connections.close_all)()


async def _async_orm_is_recorded_with_the_right_actor() -> None:
    alice = await User.objects.acreate(username="alice")
    bob = await User.objects.acreate(username="bob")

    with Context.via_actor(alice):
        account = await Account.objects.acreate(name="async")
        account.name = "asaved"
        await account.asave()
    with Context.via_actor(bob):
        _, created = await Account.objects.aget_or_create(name="gotten")
        assert created
        _, created = await Account.objects.aget_or_create(name="gotten")
        assert not created
        _, created = await Account.objects.aupdate_or_create(
            name="gotten", defaults={"balance": decimal.Decimal("5")}
        )
        assert not created
        await account.adelete()

    def read() -> list[tuple[str, str | None, dict[str, tuple[object, object]]]]:
        return [
            (d.action, d.actor_id, changes(d))
            for d in ObjectDelta.objects.order_by("pk")
            if d.content_type.model_class() is Account
        ]

    rows = await sync_to_async(read)()
    assert [(action, actor) for action, actor, _ in rows] == [
        ("create", str(alice.pk)),
        ("update", str(alice.pk)),
        ("create", str(bob.pk)),
        ("update", str(bob.pk)),
        ("delete", str(bob.pk)),
    ]
    assert rows[1][2] == {"name": ("async", "asaved")}
    assert rows[3][2] == {"balance": ("0.00", "5.00")}
    assert rows[4][2]["name"] == ("asaved", None)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_async_concurrent_tasks_keep_their_own_actors():
    try:
        await _async_concurrent_tasks_keep_their_own_actors()
    finally:
        await sync_to_async(connections.close_all)()


async def _async_concurrent_tasks_keep_their_own_actors() -> None:
    import asyncio

    users = [await User.objects.acreate(username=f"u{i}") for i in range(8)]

    async def work(actor: User) -> int:
        with Context.via_actor(actor):
            account = await Account.objects.acreate(name=actor.username)
            await asyncio.sleep(0)
            account.balance = decimal.Decimal(actor.pk)
            await account.asave()
            return account.pk

    pks = await asyncio.gather(*(work(u) for u in users))

    def read() -> dict[int, set[str | None]]:
        result: dict[int, set[str | None]] = {}
        for pk in pks:
            deltas = object_deltas(Account, pk)
            result[pk] = {d.actor_id for d in deltas} | {
                a.actor_id for d in deltas for a in attributes(d)
            }
        return result

    by_pk = await sync_to_async(read)()
    for actor, pk in zip(users, pks, strict=True):
        assert by_pk[pk] == {str(actor.pk)}


# Atomicity -----------------------------------------------------------------


class _FailAttributeDeltaInsert:
    """A database error on every INSERT into the attribute delta table."""

    def __init__(self) -> None:
        self.raised = 0

    def __call__(self, execute, sql, params, many, context):
        if _statement("INSERT INTO", "revy_attribute_delta") in sql:
            self.raised += 1
            raise DatabaseError("injected failure")
        return execute(sql, params, many, context)


def _assert_failed_write_leaves_nothing(account: Account) -> None:
    account.refresh_from_db()
    assert account.name == "savings"
    assert Account.objects.count() == 1
    assert history_counts() == (0, 0, 0)


@pytest.mark.django_db(transaction=True)
def test_failed_history_write_rolls_back_the_update_in_autocommit(account):
    failure = _FailAttributeDeltaInsert()
    account.name = "never stored"
    with (
        connection.execute_wrapper(failure),
        Context(),
        pytest.raises(DatabaseError),
    ):
        account.save()
    assert failure.raised == 1
    _assert_failed_write_leaves_nothing(account)


@pytest.mark.django_db(transaction=True)
def test_failed_history_write_rolls_back_the_create_in_autocommit(account):
    failure = _FailAttributeDeltaInsert()
    with (
        connection.execute_wrapper(failure),
        Context(),
        pytest.raises(DatabaseError),
    ):
        Account.objects.create(name="never stored")
    assert failure.raised == 1
    _assert_failed_write_leaves_nothing(account)


@pytest.mark.django_db(transaction=True)
def test_failed_history_write_rolls_back_the_delete_in_autocommit(account):
    failure = _FailAttributeDeltaInsert()
    with (
        connection.execute_wrapper(failure),
        Context(),
        pytest.raises(DatabaseError),
    ):
        account.delete()
    assert failure.raised == 1
    assert Account.objects.filter(pk=account.pk).exists()
    assert history_counts() == (0, 0, 0)


@pytest.mark.django_db(transaction=True)
def test_failed_history_write_rolls_back_inside_an_outer_atomic(account):
    failure = _FailAttributeDeltaInsert()
    account.name = "never stored"

    def work() -> None:
        with transaction.atomic():
            Organization.objects.create(name="in the same transaction")
            account.save()

    with (
        Context(),
        connection.execute_wrapper(failure),
        pytest.raises(DatabaseError),
    ):
        work()
    assert failure.raised == 1
    assert not Organization.objects.exists()
    _assert_failed_write_leaves_nothing(account)


@pytest.mark.django_db(transaction=True)
def test_failed_history_write_at_commit_keeps_the_instance_retryable(account):
    """Inside a transaction history waits for the commit; if writing it fails
    there, the whole transaction rolls back and the instance's baseline goes
    back to what the database holds."""
    failure = _FailAttributeDeltaInsert()
    account.name = "first try"

    def work() -> None:
        with transaction.atomic():
            with transaction.atomic():
                account.save()
            Organization.objects.create(name="later work")

    with (
        Context(),
        connection.execute_wrapper(failure),
        pytest.raises(DatabaseError),
    ):
        work()
    assert failure.raised == 1
    assert not Organization.objects.exists()
    _assert_failed_write_leaves_nothing(account.__class__.objects.get())
    # The baseline is back: a retry records the true old value.
    with Context():
        account.save()
    (delta,) = object_deltas(account)
    assert changes(delta) == {"name": ("savings", "first try")}


@pytest.mark.parametrize(
    "rolled_back",
    [
        pytest.param("transaction", marks=pytest.mark.django_db(transaction=True)),
        "savepoint",
    ],
)
def test_rolled_back_save_leaves_the_baseline_as_the_database_has_it(
    account, rolled_back
):
    class Undo(Exception):
        pass

    def save_then_fail() -> None:
        with transaction.atomic():
            account.name = "undone"
            account.save()
            raise Undo

    with Context():
        if rolled_back == "transaction":
            with pytest.raises(Undo):
                save_then_fail()
        else:
            with transaction.atomic():
                with pytest.raises(Undo):
                    save_then_fail()
                assert not object_deltas(account)
        account.save()
        account.refresh_from_db()
    assert account.name == "undone"
    (delta,) = object_deltas(account)
    assert changes(delta) == {"name": ("savings", "undone")}


def test_savepoint_rollback_keeps_the_history_of_earlier_saves(account):
    def save_then_fail() -> None:
        with transaction.atomic():
            account.name = "undone"
            account.save()
            # A read of history inside the savepoint writes what waits,
            # the earlier save's history included.
            assert len(object_deltas(account)) == 2
            raise DatabaseError("undo the savepoint")

    with Context(), transaction.atomic():
        account.name = "kept"
        account.save()
        with pytest.raises(DatabaseError):
            save_then_fail()
    history = [changes(delta) for delta in object_deltas(account)]
    assert history == [{"name": ("savings", "kept")}]
    with Context():
        account.save()
    assert changes(object_deltas(account)[-1]) == {"name": ("kept", "undone")}


# Query counts --------------------------------------------------------------


def test_tracked_update_with_a_revision_costs_three_statements(
    account, user, django_assert_num_queries
):
    _warm_up()
    revision = Revision.objects.create()
    with Context.via_actor(user), Context.via_revision(revision):
        account.name = "counted"
        # 3 statements; on PostgreSQL 2 (both delta inserts in one WITH).
        with django_assert_num_queries(1 + delta_inserts(1, 1)) as captured:
            account.save()
            flush()
    sql = [q["sql"] for q in captured.captured_queries]
    assert sql[0].startswith(_statement("UPDATE", "testapp_account"))
    assert _statement("INSERT INTO", "revy_object_delta") in sql[1]
    assert _statement("INSERT INTO", "revy_attribute_delta") in sql[-1]


def test_tracked_update_without_a_revision_inserts_its_own(
    account, user, django_assert_num_queries
):
    _warm_up()
    with Context.via_actor(user):
        account.name = "counted"
        statements = 1 + revision_inserts() + delta_inserts(1, 1)
        with django_assert_num_queries(statements) as captured:
            account.save()
            flush()
    sql = [q["sql"] for q in captured.captured_queries]
    assert _statement("INSERT INTO", "revy_revision") in sql[1]


@pytest.mark.django_db(transaction=True)
def test_saves_in_one_transaction_share_the_history_statements():
    """A unit of work's history goes in one insert per history table (on
    PostgreSQL one statement for all three), written just before the
    transaction commits, in the order of the changes."""
    _warm_up()
    accounts = [Account.objects.create(name=f"a{i}") for i in range(20)]
    with (
        Context(revision=Revision),
        CaptureQueriesContext(connection) as captured,
        transaction.atomic(),
    ):
        for account in accounts:
            account.name += "!"
            account.save()
    sql = [q["sql"] for q in captured.captured_queries]
    updates = [q for q in sql if q.startswith(_statement("UPDATE", "testapp_account"))]
    history = [q for q in sql if "revy_" in q]
    assert len(updates) == 20
    assert _statement("INSERT INTO", "revy_revision") in history[0]
    assert (
        _statement("INSERT INTO", "revy_object_delta")
        in history[-1 - (delta_inserts(20, 20) > 1)]
    )
    assert _statement("INSERT INTO", "revy_attribute_delta") in history[-1]
    assert len(history) == revision_inserts() + delta_inserts(20, 20)
    statements = [q for q in sql if q not in ("BEGIN", "COMMIT")]
    assert len(statements) == 20 + len(history)
    (revision,) = Revision.objects.all()
    assert set(ObjectDelta.objects.values_list("revision", flat=True)) == {revision.pk}
    assert set(AttributeDelta.objects.values_list("revision", flat=True)) == {
        revision.pk
    }
    deltas = ObjectDelta.objects.order_by("pk")
    assert [delta.content_id for delta in deltas] == [str(a.pk) for a in accounts]
    for account in accounts:
        (delta,) = object_deltas(account)
        assert changes(delta) == {"name": (account.name[:-1], account.name)}


def test_tracked_create_with_a_revision_costs_three_statements(
    user, django_assert_num_queries
):
    _warm_up()
    revision = Revision.objects.create()
    with (
        Context.via_actor(user),
        Context.via_revision(revision),
        django_assert_num_queries(1 + delta_inserts(1, 5)),
    ):
        Account.objects.create(name="counted", owner=user)
        flush()
    assert AttributeDelta.objects.count() == 5


def test_statements_do_not_grow_with_the_number_of_fields(
    django_assert_num_queries,
):
    _warm_up()
    organization = Organization.objects.create(name="o")
    thing = Everything.objects.create()
    revision = Revision.objects.create()
    with Context.via_revision(revision):
        with django_assert_num_queries(1 + delta_inserts(1, 1)):
            thing.char = "x"
            thing.save()
            flush()
        with django_assert_num_queries(1 + delta_inserts(1, 19)):
            thing.char = "y"
            thing.text = "t"
            thing.integer = 1
            thing.big = 2
            thing.flag = True
            thing.maybe = False
            thing.decimal = decimal.Decimal("1.5")
            thing.number = 2.5
            thing.day = datetime.date(2020, 1, 1)
            thing.moment = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
            thing.clock = datetime.time(1)
            thing.span = datetime.timedelta(1)
            thing.token = uuid.uuid4()
            thing.data = [1, 2]
            thing.blob = b"b"
            thing.email = "a@example.com"
            thing.slug = "s"
            thing.ip = "127.0.0.1"
            thing.organization = organization
            thing.save()
            flush()
    _, last = object_deltas(thing)
    assert len(attributes(last)) == 19


@pytest.mark.parametrize(
    ("returns_keys", "returns_columns"),
    [(True, True), (False, True), (False, False)],
    ids=["bulk", "one_by_one", "last_insert_id"],
)
def test_object_deltas_of_one_write_go_in_bulk_where_the_backend_returns_keys(
    returns_keys, returns_columns, monkeypatch
):
    """One insert of object deltas where the backend returns the keys of a bulk
    insert (PostgreSQL, SQLite, MariaDB 10.5+), one insert each where it cannot
    (MySQL, older MariaDB); attribute deltas always go in one insert."""
    if returns_keys:
        assert connection.features.can_return_rows_from_bulk_insert
    else:
        monkeypatch.setattr(
            type(connection.features), "can_return_rows_from_bulk_insert", False
        )
    if not returns_columns:
        # No RETURNING at all (MySQL): each key read from the cursor after its
        # insert. PostgreSQL always returns keys; its driver has no lastrowid.
        if connection.vendor == "postgresql":
            pytest.skip("PostgreSQL always returns inserted keys")
        monkeypatch.setattr(
            type(connection.features), "can_return_columns_from_insert", False
        )
    accounts = [Account.objects.create(name=f"a{i}") for i in range(3)]
    _warm_up()
    with Context(), CaptureQueriesContext(connection) as captured:
        Account.objects.filter(pk__in=[a.pk for a in accounts]).update(name="b")
        flush()
    sql = [q["sql"] for q in captured.captured_queries]
    object_inserts = [
        q for q in sql if _statement("INSERT INTO", "revy_object_delta") in q
    ]
    attribute_inserts = [
        q for q in sql if _statement("INSERT INTO", "revy_attribute_delta") in q
    ]
    # PostgreSQL writes both in one statement, keys returned or not.
    together = connection.vendor == "postgresql"
    assert (len(object_inserts), len(attribute_inserts)) == (
        1 if returns_keys or together else 3,
        1,
    )
    for account in accounts:
        (delta,) = object_deltas(account)
        assert delta.action == ObjectDelta.ACTION_UPDATE
        assert changes(delta) == {"name": (account.name, "b")}
        (attribute,) = attributes(delta)
        assert attribute.content_id == str(account.pk)


def test_tracked_load_costs_no_extra_queries(account, django_assert_num_queries):
    with Context(), django_assert_num_queries(1):
        list(Account.objects.all())


def test_transaction_records_decimal_changes_with_field_precision():
    with Context():
        item = Transaction.objects.create(
            account=Account.objects.create(name="a"),
            amount=decimal.Decimal("2"),
            exchange_rate=decimal.Decimal("1.5"),
        )
        item.local_amount = item.amount * item.exchange_rate
        item.save()
    _, update = object_deltas(item)
    assert changes(update) == {"local_amount": ("0.00", "3.00")}


def test_new_instance_saved_over_an_existing_row_records_the_stored_old_values(
    account,
):
    replacement = Account(pk=account.pk, name="replacement")
    with Context():
        replacement.save()
    (delta,) = object_deltas(account)
    assert delta.action == ObjectDelta.ACTION_UPDATE
    assert changes(delta) == {
        "name": ("savings", "replacement"),
        "balance": ("10.50", "0.00"),
    }


# Which models and fields ----------------------------------------------------


def test_never_tracked_models():
    from django.contrib.admin.models import LogEntry
    from django.contrib.auth.models import Permission
    from django.contrib.sessions.models import Session

    from revy_core.tracking import is_tracked

    for model in (
        ContentType,
        Session,
        LogEntry,
        Permission,
        Revision,
        ObjectDelta,
        AttributeDelta,
        Untracked,
    ):
        assert not is_tracked(model), model
    for tracked in (User, Account, Everything, Place, Restaurant, PlaceProxy):
        assert is_tracked(tracked), tracked


def test_model_selection_follows_the_settings():
    from django.test import override_settings

    from revy_core.tracking import _wanted

    with override_settings(REVY_MODELS=["testapp.account", "auth"]):
        assert _wanted(Account)
        assert _wanted(User)
        assert not _wanted(Organization)
    with override_settings(REVY_MODELS=None, REVY_EXCLUDE_MODELS=["testapp"]):
        assert not _wanted(Account)
        assert _wanted(User)
    with override_settings(REVY_EXCLUDE_MODELS=["testapp.Account"]):
        assert not _wanted(Account)
        assert _wanted(Organization)


def test_field_selection_follows_the_settings():
    from django.test import override_settings

    from revy_core.tracking import build_tracker

    with override_settings(
        REVY_EXCLUDE_FIELDS={"testapp.account": ["balance"]},
        REVY_MASKED_FIELDS={"testapp.Account": ["name"]},
    ):
        tracker = build_tracker(Account)
    assert "balance" not in tracker.by_name
    assert tracker.by_name["name"].masked
    assert not tracker.by_name["owner"].masked
    # Settings of a parent apply to its multi-table children.
    with override_settings(REVY_MASKED_FIELDS={"testapp.place": ["name"]}):
        assert build_tracker(Restaurant).by_name["name"].masked
    assert build_tracker(User).by_name["password"].masked


def test_mask_is_read_when_history_is_written(user):
    from django.test import override_settings

    with override_settings(REVY_MASK="***"), Context():
        profile = Profile.objects.create(user=user, secret="s")
    (delta,) = object_deltas(profile)
    assert changes(delta)["secret"] == (None, "***")


def test_a_models_own_from_db_runs_on_every_load(account, monkeypatch):
    from django.db.models import Model

    from revy_core import tracking

    loads: list[tuple[str, ...]] = []

    def own_from_db(cls, db, field_names, values):
        instance = Model.from_db.__func__(cls, db, field_names, values)  # type: ignore[attr-defined]
        loads.append(tuple(field_names))
        instance._loaded_values = dict(zip(field_names, values, strict=True))
        return instance

    monkeypatch.setattr(Account, "from_db", classmethod(own_from_db))
    tracking._patch(Account, "from_db", tracking._wrap_from_db)
    tracker = tracking.tracker_for(Account)
    assert tracker is not None
    monkeypatch.setattr(tracker, "fast_load", None)
    (loaded,) = Account.objects.all()
    assert len(loads) == 1
    assert loaded._loaded_values["name"] == "savings"  # type: ignore[attr-defined]
    loaded.name = "renamed"
    with Context():
        loaded.save()
    (delta,) = object_deltas(account)
    assert changes(delta) == {"name": ("savings", "renamed")}


@pytest.mark.parametrize("signal_name", ["pre_init", "post_init"])
def test_init_receivers_connected_after_the_first_load_are_called(account, signal_name):
    from django.db.models import signals

    signal = getattr(signals, signal_name)
    list(Account.objects.all())  # the first load picks the fast path
    seen: list[object] = []

    def receiver(sender, **kwargs):
        seen.append(sender)

    signal.connect(receiver, sender=Account)
    try:
        (loaded,) = Account.objects.all()
    finally:
        signal.disconnect(receiver, sender=Account)
    assert seen == [Account]
    # Loaded through Model.__init__, the instance still has its baseline.
    loaded.name = "renamed"
    with Context():
        loaded.save()
    (delta,) = object_deltas(account)
    assert changes(delta) == {"name": ("savings", "renamed")}
    # Disconnected: loads skip __init__ again and are still tracked.
    (again,) = Account.objects.all()
    assert seen == [Account]
    again.name = "again"
    with Context():
        again.save()
    _, delta = object_deltas(account)
    assert changes(delta) == {"name": ("renamed", "again")}


# History held until commit -------------------------------------------------


def test_raw_sql_on_the_same_connection_sees_waiting_history(account):
    with Context(), transaction.atomic():
        account.name = "seen"
        account.save()
        table = connection.ops.quote_name(AttributeDelta._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM {table}")
            (count,) = cursor.fetchone()
    assert count == 1


@pytest.mark.django_db(transaction=True)
def test_manual_transaction_commit_writes_waiting_history(account):
    transaction.set_autocommit(False)
    try:
        with Context():
            account.name = "manual"
            account.save()
        transaction.commit()
    finally:
        transaction.set_autocommit(True)
    (delta,) = object_deltas(account)
    assert changes(delta) == {"name": ("savings", "manual")}


@pytest.mark.django_db(transaction=True)
def test_manual_transaction_rollback_drops_waiting_history(account):
    transaction.set_autocommit(False)
    try:
        with Context():
            account.name = "dropped"
            account.save()
        transaction.rollback()
    finally:
        transaction.set_autocommit(True)
    assert object_deltas(account) == []
    assert Account.objects.get().name == "savings"


def _create_accounts_counting_delta_inserts(count: int) -> tuple[list[Account], int]:
    """Create ``count`` accounts in one transaction; how many statements
    inserted object deltas."""
    _warm_up()
    with (
        Context(revision=Revision),
        CaptureQueriesContext(connection) as captured,
        transaction.atomic(),
    ):
        accounts = [Account.objects.create(name=f"a{i}") for i in range(count)]
        flush()
    inserts = [
        q["sql"]
        for q in captured.captured_queries
        if _statement("INSERT INTO", "revy_object_delta") in q["sql"]
    ]
    return accounts, len(inserts)


def test_long_transactions_write_what_waits_in_steps(monkeypatch):
    from revy_core import writer

    monkeypatch.setattr(writer, "FLUSH_EVERY", 10)
    _, inserts = _create_accounts_counting_delta_inserts(12)
    # Each create writes 5 attribute deltas: two saves fill a step.
    assert inserts == 6
    assert ObjectDelta.objects.count() == 12


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="object and attribute deltas share a statement on PostgreSQL only",
)
def test_one_statement_per_chunk_of_attribute_deltas_each_under_its_object(
    monkeypatch,
):
    from revy_core import writer

    monkeypatch.setattr(writer, "TOGETHER_ROWS", 12)
    accounts, inserts = _create_accounts_counting_delta_inserts(5)
    # 5 attribute deltas per create, at most 12 per statement: 2, 2 and 1.
    assert inserts == 3
    for i, account in enumerate(accounts):
        (delta,) = object_deltas(account)
        assert changes(delta)["name"] == (None, f"a{i}")
        names = list(
            delta.attribute_deltas.order_by("pk").values_list("field_name", flat=True)
        )
        assert names == [
            f.name for f in Account._meta.concrete_fields if f.name in names
        ]


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="object and attribute deltas share a statement on PostgreSQL only",
)
def test_rows_json_cannot_carry_go_as_two_plain_inserts(monkeypatch):
    from revy_core import writer

    # As if text were a kind of value the JSON document cannot hold.
    monkeypatch.setattr(writer, "_SCALARS", frozenset({int, bool, type(None)}))
    _warm_up()
    with (
        Context(revision=Revision),
        CaptureQueriesContext(connection) as captured,
        transaction.atomic(),
    ):
        account = Account.objects.create(name="plain")
        flush()
    inserts = [q["sql"] for q in captured.captured_queries if "revy_" in q["sql"]]
    assert len(inserts) == 3  # the revision, object deltas, attribute deltas
    assert not any("jsonb_array_elements" in sql for sql in inserts)
    (delta,) = object_deltas(account)
    assert changes(delta)["name"] == (None, "plain")


@pytest.mark.skipif(
    connection.vendor == "sqlite", reason="SQLite does not check lengths"
)
def test_a_value_too_long_for_its_history_column_fails_not_cut_short():
    from revy_core.tracking import record

    _warm_up()
    key = "k" * 300  # content_id holds 255 characters

    def record_it() -> None:
        with Context(revision=Revision), transaction.atomic():
            record(Account, key, ObjectDelta.ACTION_UPDATE, {"name": ("a", "b")})
            flush()

    with pytest.raises(DatabaseError):
        record_it()
    assert not ObjectDelta.objects.filter(content_id__startswith="kkk").exists()


def _fail_object_delta_inserts(execute, sql, params, many, context):
    table = connection.ops.quote_name(ObjectDelta._meta.db_table)
    if f"INSERT INTO {table}" in sql:
        raise DatabaseError("injected")
    return execute(sql, params, many, context)


def _read_history_while_its_write_fails() -> None:
    with (
        transaction.atomic(),
        connection.execute_wrapper(_fail_object_delta_inserts),
    ):
        list(ObjectDelta.objects.all())


def test_waiting_history_whose_write_fails_in_a_savepoint_is_written_at_commit(
    account,
):
    with Context(), transaction.atomic():
        account.name = "renamed"
        account.save()
        with pytest.raises(DatabaseError):
            _read_history_while_its_write_fails()
        account.balance = decimal.Decimal("1.00")
        account.save()
    first, second = object_deltas(account)
    assert changes(first) == {"name": ("savings", "renamed")}
    assert changes(second) == {"balance": ("10.50", "1.00")}


def test_waiting_history_whose_write_fails_dooms_the_transaction(account):
    def swallow_the_error() -> None:
        with (
            connection.execute_wrapper(_fail_object_delta_inserts),
            contextlib.suppress(DatabaseError),
        ):
            flush()

    def rename() -> None:
        with Context(), transaction.atomic():
            account.name = "renamed"
            account.save()
            swallow_the_error()
            Account.objects.count()

    with pytest.raises(transaction.TransactionManagementError):
        rename()
    assert Account.objects.get().name == "savings"
    assert object_deltas(account) == []


def test_unserializable_value_fails_the_save_not_the_commit(account):
    class Opaque:
        pass

    with Context(), transaction.atomic():
        account.name = "fine"
        account.save()
        thing = Everything.objects.create()
        thing.data = {"value": Opaque()}
        with pytest.raises(TypeError), transaction.atomic():
            thing.save()
    (delta,) = object_deltas(account)
    assert changes(delta) == {"name": ("savings", "fine")}


@pytest.mark.parametrize(
    "value",
    [
        {"a": [1, 2.5, {"b": None, "c": True}], "s": "é"},
        [[1], {"x": "y"}],
        {"when": datetime.date(2020, 1, 1), "amount": decimal.Decimal("1.5")},
    ],
    ids=["json", "nested-list", "non-json-inside"],
)
def test_baseline_copies_of_mutable_values_are_deep_and_equal(value):
    from revy_core.tracking import _copy_value

    copied = _copy_value(value)
    assert copied == value
    assert type(copied) is type(value)
    stack = [(value, copied)]
    while stack:
        original, copy_ = stack.pop()
        if isinstance(original, (dict, list)):
            assert copy_ is not original
            pairs = (
                zip(original.values(), copy_.values(), strict=True)
                if isinstance(original, dict)
                else zip(original, copy_, strict=True)
            )
            stack.extend(pairs)


def test_baseline_copy_keeps_dict_subclasses():
    from revy_core.tracking import _copy_value

    class Tagged(dict[str, list[int]]):
        pass

    copied = _copy_value({"inner": Tagged(x=[1])})
    assert type(copied["inner"]) is Tagged
    assert copied["inner"]["x"] == [1]


class _Tagged(dict[str, list[int]]):
    pass


@pytest.mark.parametrize(
    "loaded",
    [
        {"tags": ["a"], "inner": {"n": 1}},
        {"amount": decimal.Decimal("1.5"), "tags": ["a"]},
        {"inner": _Tagged(x=[1]), "tags": ["a"]},
        _Tagged(tags=[1]),
        ["a", ["b"]],
        "text",
        None,
    ],
    ids=[
        "json",
        "non-json-inside",
        "subclass-inside",
        "subclass",
        "list",
        "str",
        "null",
    ],
)
@pytest.mark.parametrize("pickled", [False, True], ids=["kept", "pickled"])
def test_a_loaded_row_keeps_what_it_was_loaded_with(loaded, pickled):
    import pickle

    from revy_core.tracking import baseline

    expected = copy.deepcopy(loaded)
    names = [f.attname for f in Everything._meta.concrete_fields]
    values: list[Any] = [None] * len(names)
    values[names.index("id")] = uuid.uuid4()
    values[names.index("data")] = loaded
    thing = Everything.from_db("default", names, values)
    assert thing.data is loaded
    if isinstance(loaded, dict):
        loaded["tags"].append("changed in place")
    elif isinstance(loaded, list):
        loaded[1].append("changed in place")
    if pickled:
        thing = pickle.loads(pickle.dumps(thing))
    base = baseline(thing)
    assert base is not None
    assert base["data"] == expected
    assert type(base["data"]) is type(expected)
    if isinstance(loaded, (dict, list)):
        assert base["data"] is not thing.data
    assert base["id"] == thing.id
    assert baseline(thing) is base


def test_a_loaded_row_read_by_two_threads_at_once_gives_both_its_baseline():
    import sys
    import threading

    from revy_core.tracking import baseline

    names = [f.attname for f in Everything._meta.concrete_fields]
    things = []
    for _ in range(5000):
        values: list[Any] = [None] * len(names)
        values[names.index("id")] = uuid.uuid4()
        values[names.index("data")] = {"k": [1, 2]}
        things.append(Everything.from_db("default", names, values))
    bad: list[str] = []
    start = threading.Barrier(2)

    def read() -> None:
        start.wait()
        for thing in things:
            try:
                base = baseline(thing)
            except Exception as error:
                bad.append(repr(error))
                continue
            if not isinstance(base, dict) or base["data"] != {"k": [1, 2]}:
                bad.append(repr(base))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=read) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert not bad, f"{len(bad)} bad reads, e.g. {bad[:3]}"


def test_an_instance_pickled_with_the_earlier_form_of_a_loaded_row_saves(account):
    import pickle

    loaded = Account.objects.get(pk=account.pk)
    d = loaded.__dict__
    names, values = d.pop("_revy_base_names"), d.pop("_revy_base")
    d.pop("_revy_base_frozen", None)
    d["_revy_base"] = (names, values, {})
    loaded = pickle.loads(pickle.dumps(loaded))
    loaded.name = "renamed"
    with Context():
        loaded.save()
    (delta,) = object_deltas(account)
    assert changes(delta) == {"name": ("savings", "renamed")}


def test_a_loaded_row_saved_in_a_rolled_back_transaction_keeps_its_old_values(
    account,
):
    class Undo(Exception):
        pass

    def save_then_fail(loaded: Account) -> None:
        with transaction.atomic():
            loaded.name = "undone"
            loaded.save()
            raise Undo

    loaded = Account.objects.get(pk=account.pk)
    with Context():
        with pytest.raises(Undo):
            save_then_fail(loaded)
        loaded.save()
    (delta,) = object_deltas(account)
    assert changes(delta) == {"name": ("savings", "undone")}


# The revision of a unit of work -------------------------------------------
#
# On PostgreSQL the statement writing a unit of work's deltas inserts its new
# revision too; these hold on every database.


def test_the_revision_read_inside_a_transaction_has_its_key(account):
    with Context(revision=Revision), transaction.atomic():
        account.name = "renamed"
        account.save()
        revision = Context.get_revision()
        assert revision.pk is not None
        assert Revision.objects.filter(pk=revision.pk).exists()
        Account.objects.create(name="second")
    (stored,) = Revision.objects.all()
    assert stored.pk == revision.pk
    assert object_deltas(account)[0].revision_id == revision.pk
    assert ObjectDelta.objects.filter(revision=revision).count() == 2
    assert AttributeDelta.objects.exclude(revision=revision).count() == 0


def test_a_revision_written_in_a_savepoint_that_rolls_back_is_written_again(
    account,
):
    with Context(revision=Revision), transaction.atomic():
        account.name = "renamed"
        account.save()
        with contextlib.suppress(ZeroDivisionError), transaction.atomic():
            # Reading history writes what waits, the revision with it.
            assert ObjectDelta.objects.count() == 1
            raise ZeroDivisionError
        Account.objects.create(name="second")
    (revision,) = Revision.objects.all()
    (first,) = object_deltas(account)
    assert first.revision_id == revision.pk
    assert changes(first) == {"name": ("savings", "renamed")}
    assert ObjectDelta.objects.filter(revision=revision).count() == 2
    assert AttributeDelta.objects.exclude(revision=revision).count() == 0


def test_changes_of_two_revisions_in_one_transaction_keep_their_own(account):
    with (
        Context(revision=lambda: Revision(description="outer")),
        transaction.atomic(),
    ):
        account.name = "outer"
        account.save()
        with Context(revision=lambda: Revision(description="inner")):
            inner = Account.objects.create(name="inner")
    outer_revision = Revision.objects.get(description="outer")
    inner_revision = Revision.objects.get(description="inner")
    assert object_deltas(account)[0].revision_id == outer_revision.pk
    assert object_deltas(inner)[0].revision_id == inner_revision.pk
    for revision in (outer_revision, inner_revision):
        (delta,) = ObjectDelta.objects.filter(revision=revision)
        assert set(delta.attribute_deltas.values_list("revision", flat=True)) == {
            revision.pk
        }
