"""Deletions: revy's on_delete handlers and the deletion collector hooks."""

from __future__ import annotations

import decimal
import importlib
import math
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection, models
from django.db.migrations.writer import MigrationWriter
from django.test.utils import CaptureQueriesContext

from revy_core import Context
from revy_core import deletion as revy_deletion
from revy_core.models import (
    CASCADE,
    SET,
    SET_DEFAULT,
    SET_NULL,
    AttributeDelta,
    ObjectDelta,
    Revision,
)
from revy_core.writer import flush
from tests.testapp.history import (
    actor_of,
    attributes,
    changes,
    history_counts,
    object_deltas,
)
from tests.testapp.models import (
    Account,
    Comment,
    Everything,
    Organization,
    Place,
    PlaceProxy,
    Post,
    Profile,
    Restaurant,
    Transaction,
    default_category,
)

pytestmark = pytest.mark.django_db


def _statement(verb: str, table: str) -> str:
    """How a statement on ``table`` starts, quoted as the backend quotes."""
    return f"{verb} {connection.ops.quote_name(table)}"


DELETION = "Deleted because the owner's account has been closed."
OBJECT = "The account has been closed at the owner's request."


@pytest.fixture
def admin():
    return User.objects.create_user("admin")


@pytest.fixture
def owner():
    return User.objects.create_user("owner")


def _deleting(actor: Any) -> Context:
    """A context with an actor and both descriptions of a deletion."""
    return Context(
        actor=actor,
        object_delta_description=OBJECT,
        deletion_description=DELETION,
    )


# The handlers are Django's --------------------------------------------------


def test_handlers_are_the_ones_the_test_models_use():
    def on_delete(model: type[models.Model], name: str) -> Any:
        remote: Any = model._meta.get_field(name).remote_field
        return remote.on_delete

    assert on_delete(Account, "owner") is CASCADE
    assert on_delete(Account, "organization") is SET_NULL
    assert on_delete(Comment, "category_owner") is SET_DEFAULT
    assert on_delete(Comment, "reviewer").deconstruct() == (
        "revy_core.models.SET",
        (None,),
        {},
    )
    assert CASCADE is revy_deletion.CASCADE


# CASCADE ---------------------------------------------------------------------


def test_cascade_records_the_cascaded_deletions_as_the_system(admin, owner):
    account = Account.objects.create(
        owner=owner, name="current", balance=decimal.Decimal("3")
    )
    item = Transaction.objects.create(account=account, amount=decimal.Decimal("1"))
    owner_pk, account_pk, item_pk = owner.pk, account.pk, item.pk

    with _deleting(admin):
        owner.delete()

    assert not Account.objects.exists()
    assert not Transaction.objects.exists()
    (owner_delta,) = object_deltas(User, owner_pk)
    assert owner_delta.action == ObjectDelta.ACTION_DELETE
    assert actor_of(owner_delta) == admin
    assert owner_delta.description == OBJECT

    for model, pk in ((Account, account_pk), (Transaction, item_pk)):
        (delta,) = object_deltas(model, pk)
        assert delta.action == ObjectDelta.ACTION_DELETE
        assert actor_of(delta) is None
        assert delta.description == DELETION
        assert delta.revision_id == owner_delta.revision_id
        for attribute in attributes(delta):
            assert attribute.action == AttributeDelta.ACTION_UNSET
            assert actor_of(attribute) is None
            assert attribute.description == DELETION
            assert attribute.new_value is None

    (account_delta,) = object_deltas(Account, account_pk)
    assert changes(account_delta) == {
        "id": (account_pk, None),
        "owner": (owner_pk, None),
        "organization": (None, None),
        "name": ("current", None),
        "balance": ("3.00", None),
    }
    assert Revision.objects.count() == 1


def test_cascade_of_a_one_to_one(owner):
    profile = Profile.objects.create(user=owner, bio="hi", secret="s", cache="c")
    owner_pk = owner.pk
    with _deleting(None):
        owner.delete()
    (delta,) = object_deltas(profile)
    assert delta.description == DELETION
    assert actor_of(delta) is None
    assert changes(delta) == {
        "id": (profile.pk, None),
        "user": (owner_pk, None),
        "secret": ("[masked]", None),
        "bio": ("hi", None),
    }


def test_cascade_outside_a_context_is_djangos(owner):
    account = Account.objects.create(owner=owner, name="a")
    Transaction.objects.create(account=account, amount=1)
    Post.objects.create(author=owner)
    owner.delete()
    assert not Account.objects.exists()
    assert not Transaction.objects.exists()
    assert not Post.objects.exists()
    assert history_counts() == (0, 0, 0)


def test_cascade_in_a_disabled_context_is_djangos(owner):
    account = Account.objects.create(owner=owner, name="a")
    Transaction.objects.create(account=account, amount=1)
    with Context(), Context.as_disabled():
        owner.delete()
    assert not Account.objects.exists()
    assert not Transaction.objects.exists()
    assert history_counts() == (0, 0, 0)


def test_djangos_own_cascade_on_a_tracked_model_is_recorded(admin):
    account = Account.objects.create(name="a")
    comment = Comment.objects.create(account=account, text="on a")
    comment_pk, account_pk = comment.pk, account.pk
    with _deleting(admin):
        account.delete()
    assert not Comment.objects.exists()
    (account_delta,) = object_deltas(Account, account_pk)
    (comment_delta,) = object_deltas(Comment, comment_pk)
    assert comment_delta.action == ObjectDelta.ACTION_DELETE
    assert comment_delta.revision_id == account_delta.revision_id
    assert changes(comment_delta)["text"] == ("on a", None)
    assert changes(comment_delta)["account"] == (account_pk, None)


# SET, SET_NULL, SET_DEFAULT ---------------------------------------------------


def _organization_with_dependants() -> tuple[Organization, Account, Comment]:
    organization = Organization.objects.create(name="acme")
    account = Account.objects.create(name="a", organization=organization)
    comment = Comment.objects.create(
        text="c", reviewer=organization, category_owner=organization
    )
    return organization, account, comment


def test_set_null_records_the_assignment(admin):
    organization, account, _ = _organization_with_dependants()
    organization_pk = organization.pk
    with _deleting(admin):
        organization.delete()
    account.refresh_from_db()
    assert account.organization_id is None
    (delta,) = object_deltas(account)
    assert delta.action == ObjectDelta.ACTION_UPDATE
    assert actor_of(delta) is None
    assert delta.description == DELETION
    (attribute,) = attributes(delta)
    assert (attribute.field_name, attribute.old_value, attribute.new_value) == (
        "organization",
        organization_pk,
        None,
    )
    assert attribute.action == AttributeDelta.ACTION_SET
    assert attribute.description == DELETION
    assert actor_of(attribute) is None
    (organization_delta,) = object_deltas(Organization, organization_pk)
    assert actor_of(organization_delta) == admin
    assert organization_delta.description == OBJECT
    assert delta.revision_id == organization_delta.revision_id


def test_set_and_set_default_record_the_assignments(admin):
    organization, _, comment = _organization_with_dependants()
    organization_pk = organization.pk
    with _deleting(admin):
        organization.delete()
    comment.refresh_from_db()
    assert comment.reviewer_id is None
    assert comment.category_owner_id is None
    (delta,) = object_deltas(comment)
    assert actor_of(delta) is None
    assert delta.description == DELETION
    assert changes(delta) == {
        "reviewer": (organization_pk, None),
        "category_owner": (organization_pk, None),
    }
    for attribute in attributes(delta):
        assert attribute.description == DELETION
        assert actor_of(attribute) is None


def test_set_handlers_outside_a_context_are_djangos():
    organization, account, comment = _organization_with_dependants()
    organization.delete()
    account.refresh_from_db()
    comment.refresh_from_db()
    assert account.organization_id is None
    assert comment.reviewer_id is None
    assert comment.category_owner_id is None
    assert history_counts() == (0, 0, 0)


def test_set_handlers_in_a_disabled_context_are_djangos():
    organization, account, comment = _organization_with_dependants()
    with Context():
        Context.disable()
        organization.delete()
        Context.enable()
    account.refresh_from_db()
    comment.refresh_from_db()
    assert account.organization_id is None
    assert comment.reviewer_id is None
    assert history_counts() == (0, 0, 0)


def test_set_with_a_callable_value():
    field = models.ForeignKey(Organization, on_delete=SET(default_category))
    handler: Any = field.remote_field.on_delete
    assert handler.deconstruct() == (
        "revy_core.models.SET",
        (default_category,),
        {},
    )


def test_later_save_after_set_null_records_from_the_new_value(admin):
    organization, account, _ = _organization_with_dependants()
    with _deleting(admin):
        organization.delete()
    account = Account.objects.get(pk=account.pk)
    other = Organization.objects.create(name="other")
    with Context():
        account.organization = other
        account.save()
    _, update = object_deltas(account)
    assert changes(update) == {"organization": (None, other.pk)}


# Deleting -------------------------------------------------------------------


def test_delete_records_final_stored_values_not_unsaved_ones(admin):
    account = Account.objects.create(name="stored", balance=decimal.Decimal("2"))
    pk = account.pk
    account.name = "unsaved"
    with Context.via_actor(admin), Context.via_object_delta_description("closed"):
        account.delete()
    (delta,) = object_deltas(Account, pk)
    assert delta.action == ObjectDelta.ACTION_DELETE
    assert actor_of(delta) == admin
    assert delta.description == "closed"
    assert changes(delta) == {
        "id": (pk, None),
        "owner": (None, None),
        "organization": (None, None),
        "name": ("stored", None),
        "balance": ("2.00", None),
    }


def test_delete_of_a_partially_loaded_instance_records_every_field():
    account = Account.objects.create(name="partial", balance=decimal.Decimal("7"))
    partial = Account.objects.only("name").get(pk=account.pk)
    with Context():
        partial.delete()
    (delta,) = object_deltas(account)
    assert changes(delta)["balance"] == ("7.00", None)
    assert changes(delta)["name"] == ("partial", None)


def test_queryset_delete_records_a_delta_per_row(admin):
    accounts = [
        Account.objects.create(name=f"a{i}", balance=decimal.Decimal(i))
        for i in range(3)
    ]
    survivor = Account.objects.create(name="kept")
    with Context.via_actor(admin):
        deleted, _ = Account.objects.exclude(pk=survivor.pk).delete()
    assert deleted == 3
    revisions = set()
    for account in accounts:
        (delta,) = object_deltas(account)
        assert delta.action == ObjectDelta.ACTION_DELETE
        assert actor_of(delta) == admin
        assert changes(delta)["name"] == (account.name, None)
        assert changes(delta)["balance"] == (f"{account.balance}.00", None)
        revisions.add(delta.revision_id)
    assert len(revisions) == 1
    assert object_deltas(survivor) == []


def test_queryset_delete_outside_a_context_records_nothing():
    Account.objects.create(name="a")
    Account.objects.all().delete()
    assert history_counts() == (0, 0, 0)


def test_delete_of_a_multi_table_child_records_one_object_delta():
    restaurant = Restaurant.objects.create(name="Luigi's", serves_pizza=True)
    pk = restaurant.pk
    with Context():
        restaurant.delete()
    assert not Place.objects.exists()
    (delta,) = ObjectDelta.objects.all()
    assert delta.content_type.model_class() is Restaurant
    assert delta.content_id == str(pk)
    assert changes(delta) == {
        "id": (pk, None),
        "name": ("Luigi's", None),
        "place_ptr": (pk, None),
        "serves_pizza": (True, None),
    }


def test_delete_of_a_uuid_pk_model():
    thing = Everything.objects.create(char="x")
    pk = thing.pk
    with Context():
        thing.delete()
    (delta,) = object_deltas(Everything, pk)
    assert delta.content_id == str(pk)
    assert changes(delta)["id"] == (str(pk), None)


# Query counts -----------------------------------------------------------------


def _warm_up() -> None:
    for model in (User, Account, Transaction, Organization, Comment, Post):
        ContentType.objects.get_for_model(model)


def _split(sql: list[str]) -> tuple[list[str], list[str]]:
    """Statements other than attribute delta inserts, and those inserts."""
    inserts = [q for q in sql if _statement("INSERT INTO", "revy_attribute_delta") in q]
    return [q for q in sql if q not in inserts], inserts


def _max_batches(rows: int) -> int:
    """Inserts of ``rows`` attribute deltas the backend's parameter limit needs."""
    fields = [f for f in AttributeDelta._meta.concrete_fields if not f.primary_key]
    batch = connection.ops.bulk_batch_size(fields, [None] * rows)
    return math.ceil(rows / batch)


def _cascade_queries(children: int) -> list[str]:
    owner = User.objects.create_user(f"owner{children}")
    accounts = Account.objects.bulk_create(
        [Account(owner=owner, name=f"a{i}") for i in range(children)]
    )
    Transaction.objects.bulk_create(
        [Transaction(account=a, amount=1) for a in accounts for _ in range(2)]
    )
    revision = Revision.objects.create()
    _warm_up()
    with (
        Context.via_revision(revision),
        Context.via_deletion_description("cascade"),
        CaptureQueriesContext(connection) as captured,
    ):
        owner.delete()
        flush()
    assert ObjectDelta.objects.filter(revision=revision).count() == 1 + 3 * children
    rows = AttributeDelta.objects.filter(revision=revision).count()
    sql = [q["sql"] for q in captured.captured_queries]
    _, inserts = _split(sql)
    assert len(inserts) == _max_batches(rows), (rows, len(inserts))
    return sql


def test_cascades_cost_a_constant_number_of_queries():
    few, _ = _split(_cascade_queries(2))
    many, _ = _split(_cascade_queries(30))
    assert len(few) == len(many)
    history = [q for q in many if "revy_" in q]
    # One insert of all the object deltas (SQLite returns the primary keys of
    # bulk inserts); attribute deltas go in as few inserts as the backend's
    # parameter limit allows. PostgreSQL writes both in one statement.
    if connection.vendor == "postgresql":
        assert history == []
    else:
        assert len(history) == 1, history
        assert history[0].startswith(_statement("INSERT INTO", "revy_object_delta"))


def test_queryset_delete_costs_a_constant_number_of_queries():
    def count(rows: int) -> int:
        Organization.objects.bulk_create(
            [Organization(name=f"o{i}") for i in range(rows)]
        )
        _warm_up()
        with Context(), CaptureQueriesContext(connection) as captured:
            Organization.objects.all().delete()
            flush()
        other, inserts = _split([q["sql"] for q in captured.captured_queries])
        assert len(inserts) == _max_batches(2 * rows)
        return len(other)

    assert count(2) == count(60)


# Migrations -------------------------------------------------------------------


def test_the_test_app_migrations_import():
    for name in ("0001_initial", "0002_post"):
        module = importlib.import_module(f"tests.testapp.migrations.{name}")
        assert module.Migration.operations


@pytest.mark.parametrize(
    "on_delete",
    [CASCADE, SET_NULL, SET_DEFAULT, SET(None), SET(default_category)],
    ids=["CASCADE", "SET_NULL", "SET_DEFAULT", "SET(None)", "SET(callable)"],
)
def test_migration_writer_serializes_handlers_to_importable_code(on_delete):
    field = models.ForeignKey(
        "testapp.Organization", null=True, default=None, on_delete=on_delete
    )
    source, imports = MigrationWriter.serialize(field)
    namespace: dict[str, Any] = {}
    exec("\n".join(sorted(imports)), namespace)
    rebuilt = eval(source, namespace)
    assert rebuilt.remote_field.on_delete is on_delete or (
        rebuilt.remote_field.on_delete.deconstruct() == on_delete.deconstruct()
    )
    assert "revy_core" in source


def test_makemigrations_has_nothing_to_write():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_djangos_own_set_null_on_a_tracked_model_is_recorded(admin):
    organization = Organization.objects.create(name="acme")
    thing = Everything.objects.create(organization=organization)
    organization_pk = organization.pk
    with Context.via_actor(admin), Context.via_attribute_delta_description("why"):
        organization.delete()
    thing.refresh_from_db()
    assert thing.organization_id is None
    (delta,) = object_deltas(thing)
    assert delta.action == ObjectDelta.ACTION_UPDATE
    assert actor_of(delta) == admin
    (attribute,) = attributes(delta)
    assert (attribute.field_name, attribute.old_value, attribute.new_value) == (
        "organization",
        organization_pk,
        None,
    )
    assert actor_of(attribute) == admin
    assert attribute.description == "why"


def test_delete_of_a_proxy_instance_is_recorded_once():
    first = PlaceProxy.objects.create(name="first")
    second = Place.objects.create(name="second")
    first_pk, second_pk = first.pk, second.pk
    with Context():
        first.delete()
        PlaceProxy.objects.filter(pk=second_pk).delete()
    for pk, name in ((first_pk, "first"), (second_pk, "second")):
        (delta,) = object_deltas(Place, pk)
        assert delta.action == ObjectDelta.ACTION_DELETE
        assert changes(delta) == {"id": (pk, None), "name": (name, None)}
    assert ObjectDelta.objects.count() == 2


def test_a_whole_migration_using_every_handler_is_importable(tmp_path):
    import sys
    from typing import ClassVar

    from django.db import migrations
    from django.db.migrations.operations.base import Operation

    class Migration(migrations.Migration):
        operations: ClassVar[list[Operation]] = [
            migrations.CreateModel(
                name="Dependant",
                fields=[
                    ("id", models.BigAutoField(primary_key=True)),
                    (
                        "a",
                        models.ForeignKey("testapp.Organization", on_delete=CASCADE),
                    ),
                    (
                        "b",
                        models.ForeignKey(
                            "testapp.Organization",
                            null=True,
                            on_delete=SET_NULL,
                            related_name="+",
                        ),
                    ),
                    (
                        "c",
                        models.ForeignKey(
                            "testapp.Organization",
                            null=True,
                            default=None,
                            on_delete=SET_DEFAULT,
                            related_name="+",
                        ),
                    ),
                    (
                        "d",
                        models.ForeignKey(
                            "testapp.Organization",
                            null=True,
                            on_delete=SET(default_category),
                            related_name="+",
                        ),
                    ),
                ],
            )
        ]

    migration = Migration("0001_handlers", "handlersapp")
    path = tmp_path / "handlers_migration.py"
    path.write_text(MigrationWriter(migration).as_string())
    sys.path.insert(0, str(tmp_path))
    try:
        module = importlib.import_module("handlers_migration")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("handlers_migration", None)
    (operation,) = module.Migration.operations
    handlers = {
        name: field.remote_field.on_delete
        for name, field in operation.fields
        if name != "id"
    }
    assert handlers["a"] is CASCADE
    assert handlers["b"] is SET_NULL
    assert handlers["c"] is SET_DEFAULT
    assert handlers["d"].deconstruct() == (
        "revy_core.models.SET",
        (default_category,),
        {},
    )


def test_a_content_type_history_refers_to_cannot_be_deleted(admin):
    # The content type columns carry no database constraint; PROTECT still
    # stops deleting a content type through Django.
    with Context.via_actor(admin):
        account = Account.objects.create(name="acme", balance=decimal.Decimal("1"))
    content_type = ContentType.objects.get_for_model(Account)
    with pytest.raises(models.ProtectedError):
        content_type.delete()
    assert ContentType.objects.filter(pk=content_type.pk).exists()
    assert object_deltas(account)


def _foreign_keys(model: type[models.Model]) -> dict[str, str]:
    """The database's foreign key constraints of ``model``: column -> table."""
    table = model._meta.db_table
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return {
        column: constraint["foreign_key"][0]
        for constraint in constraints.values()
        if constraint["foreign_key"]
        for column in constraint["columns"]
    }


def test_an_attribute_delta_reaches_its_revision_through_its_constrained_parent(
    admin,
):
    # The attribute delta's revision is its parent's: the database checks the
    # parent, and the parent's revision, at commit; not the copy.
    assert _foreign_keys(ObjectDelta) == {"revision_id": Revision._meta.db_table}
    assert _foreign_keys(AttributeDelta) == {"parent_id": ObjectDelta._meta.db_table}
    with Context.via_actor(admin):
        account = Account.objects.create(name="acme", balance=decimal.Decimal("1"))
    delta = object_deltas(account)[0]
    assert {a.revision_id for a in delta.attribute_deltas.all()} == {delta.revision_id}
    # Deleting the revision through Django takes every delta with it.
    delta.revision.delete()
    assert not ObjectDelta.objects.filter(pk=delta.pk).exists()
    assert not AttributeDelta.objects.filter(parent_id=delta.pk).exists()
    assert not AttributeDelta.objects.filter(revision_id=delta.revision_id).exists()
