"""Every write path of a tracked model, sync and async: the deltas it writes."""

from __future__ import annotations

import decimal
import math
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models import Count, F, Model, Value
from django.db.models.functions import Concat
from django.test.utils import CaptureQueriesContext

from revy_core import Context
from revy_core.models import AttributeDelta, ObjectDelta, Revision
from revy_core.tracking import record
from revy_core.writer import flush
from tests.testapp.history import (
    actor_of,
    changes,
    delta_inserts,
    history_counts,
    object_deltas,
    revision_inserts,
)
from tests.testapp.models import (
    Account,
    Article,
    ArticleMember,
    Code,
    Comment,
    Everything,
    Label,
    Organization,
    Place,
    PlaceProxy,
    Restaurant,
    Transaction,
    Untracked,
)

pytestmark = pytest.mark.django_db

CREATE = ObjectDelta.ACTION_CREATE
UPDATE = ObjectDelta.ACTION_UPDATE
DELETE = ObjectDelta.ACTION_DELETE


@pytest.fixture(params=["sync", "async"])
def call(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """Call a method by its sync name, or its ``a``-prefixed async twin."""

    def run(target: Any, name: str, /, *args: Any, **kwargs: Any) -> Any:
        if request.param == "sync":
            return getattr(target, name)(*args, **kwargs)

        async def twin() -> Any:
            return await getattr(target, f"a{name}")(*args, **kwargs)

        return async_to_sync(twin)()

    return run


@pytest.fixture(autouse=True)
def _fresh_content_types():
    """Content types of through tables are created on first use, inside a
    test's transaction: forget them when it rolls back."""
    ContentType.objects.clear_cache()
    yield
    ContentType.objects.clear_cache()


@pytest.fixture
def user() -> User:
    return User.objects.create_user("alice")


def _warm_up() -> None:
    """Fill Django's content type cache so query counts measure revy only."""
    for model in (
        User,
        Account,
        Transaction,
        Everything,
        Organization,
        Label,
        Article,
        Article.labels.through,
        ArticleMember,
        Revision,
        Restaurant,
        Place,
        Code,
    ):
        ContentType.objects.get_for_model(model)


def _inserts(model: type[Model], rows: int) -> int:
    """How many INSERT statements Django needs to bulk insert ``rows``."""
    if rows == 0:
        return 0
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    batch = max(connection.ops.bulk_batch_size(fields, [None] * rows), 1)
    return math.ceil(rows / batch)


def _history(model: type[Model]) -> list[tuple[str, Any, dict[str, Any]]]:
    """``(action, content_id, {field: (old, new)})`` of a model, oldest first."""
    content_type = ContentType.objects.get_for_model(model)
    return [
        (delta.action, delta.content_id, changes(delta))
        for delta in ObjectDelta.objects.filter(content_type=content_type).order_by(
            "pk"
        )
    ]


# QuerySet.update ------------------------------------------------------------


def test_update_records_each_changed_row_with_true_old_values(call, user):
    a = Account.objects.create(name="a", balance=1)
    b = Account.objects.create(name="b", balance=2)
    c = Account.objects.create(name="x", balance=3)
    with Context.via_actor(user), Context.via_object_delta_description("rename"):
        count = call(
            Account.objects.filter(pk__in=[a.pk, b.pk, c.pk]), "update", name="x"
        )
    assert count == 3
    assert _history(Account) == [
        (UPDATE, str(a.pk), {"name": ("a", "x")}),
        (UPDATE, str(b.pk), {"name": ("b", "x")}),
    ]
    delta = object_deltas(a)[0]
    assert actor_of(delta) == user
    assert delta.description == "rename"
    assert actor_of(delta.attribute_deltas.get()) == user


def test_update_with_expressions_records_the_resulting_values(call):
    a = Account.objects.create(name="a", balance=decimal.Decimal("1.25"))
    b = Account.objects.create(name="b", balance=decimal.Decimal("2.00"))
    with Context():
        call(
            Account.objects.all(),
            "update",
            balance=F("balance") + 1,
            name=Concat(F("name"), Value("!")),
        )
    assert _history(Account) == [
        (UPDATE, str(a.pk), {"name": ("a", "a!"), "balance": ("1.25", "2.25")}),
        (UPDATE, str(b.pk), {"name": ("b", "b!"), "balance": ("2.00", "3.00")}),
    ]


def test_update_of_a_foreign_key_with_an_instance_records_its_key(call):
    organization = Organization.objects.create(name="acme")
    account = Account.objects.create(name="a")
    with Context():
        call(Account.objects.all(), "update", organization=organization)
    assert _history(Account) == [
        (UPDATE, str(account.pk), {"organization": (None, organization.pk)}),
    ]


def test_update_of_a_multi_table_child_records_one_delta_per_instance(call):
    pizza = Restaurant.objects.create(name="Luigi's")
    Place.objects.create(name="park")
    with Context():
        call(Restaurant.objects.all(), "update", name="Mario's", serves_pizza=True)
    assert _history(Restaurant) == [
        (
            UPDATE,
            str(pizza.pk),
            {"name": ("Luigi's", "Mario's"), "serves_pizza": (False, True)},
        )
    ]
    assert _history(Place) == []


def test_update_of_a_proxy_is_recorded_on_the_concrete_model(call):
    place = Place.objects.create(name="park")
    with Context():
        call(PlaceProxy.objects.all(), "update", name="garden")
    assert _history(Place) == [(UPDATE, str(place.pk), {"name": ("park", "garden")})]


def test_update_with_custom_primary_keys(call):
    code = Code.objects.create(code="EUR", name="euro")
    everything = Everything.objects.create(char="old")
    with Context():
        call(Code.objects.all(), "update", name="Euro")
        call(Everything.objects.all(), "update", char="new")
    assert _history(Code) == [(UPDATE, "EUR", {"name": ("euro", "Euro")})]
    assert code.pk == "EUR"
    assert _history(Everything) == [
        (UPDATE, str(everything.pk), {"char": ("old", "new")})
    ]


def test_update_outside_a_context_or_of_untracked_models_records_nothing(call):
    Account.objects.create(name="a")
    Untracked.objects.create(name="u")
    call(Account.objects.all(), "update", name="b")
    with Context():
        call(Untracked.objects.all(), "update", name="v")
        with Context.as_disabled():
            call(Account.objects.all(), "update", name="c")
    assert history_counts() == (0, 0, 0)


def test_update_that_matches_nothing_or_changes_nothing_records_nothing(call):
    Account.objects.create(name="a")
    with Context():
        assert call(Account.objects.filter(name="zzz"), "update", name="b") == 0
        assert call(Account.objects.all(), "update", name="a") == 1
    assert history_counts() == (0, 0, 0)


def test_update_outside_a_context_costs_the_update_alone():
    Account.objects.create(name="a")
    with CaptureQueriesContext(connection) as captured:
        Account.objects.update(name="b")
    assert len(captured) == 1


def test_update_rolls_back_with_its_history():
    Account.objects.create(name="a")

    def fail() -> None:
        with transaction.atomic():
            Account.objects.update(name="b")
            raise RuntimeError

    with Context(), pytest.raises(RuntimeError):
        fail()
    assert history_counts() == (0, 0, 0)
    assert Account.objects.get().name == "a"


@pytest.mark.parametrize("rows", [1000, 10_000])
def test_update_of_many_rows_costs_a_handful_of_queries(rows):
    Organization.objects.bulk_create([Organization(name=f"o{i}") for i in range(rows)])
    _warm_up()
    with Context(), CaptureQueriesContext(connection) as captured:
        Organization.objects.update(name="same")
        flush()
    # SELECT ... FOR UPDATE, UPDATE, the revision (on PostgreSQL in the
    # deltas' statement), then the deltas in as few inserts as the backend's
    # parameter limit allows.
    expected = 2 + revision_inserts() + delta_inserts(rows, rows)
    assert len(captured) == expected, [q["sql"][:60] for q in captured]
    assert ObjectDelta.objects.count() == rows
    assert AttributeDelta.objects.count() == rows


def test_update_with_an_expression_reads_the_new_values_back_in_chunks():
    rows = 2000
    Account.objects.bulk_create([Account(name=f"a{i}") for i in range(rows)])
    _warm_up()
    with Context(), CaptureQueriesContext(connection) as captured:
        Account.objects.update(balance=F("balance") + 1)
        flush()
    limit = connection.features.max_query_params
    reads = 1 if limit is None else math.ceil(rows / (limit - 10))
    expected = 2 + revision_inserts() + reads + delta_inserts(rows, rows)
    assert len(captured) == expected
    assert set(AttributeDelta.objects.values_list("new_value", flat=True)) == {"1.00"}


# QuerySet.bulk_create -------------------------------------------------------


def test_bulk_create_records_a_create_delta_per_object_with_its_key(call, user):
    with Context.via_actor(user):
        accounts = call(
            Account.objects,
            "bulk_create",
            [Account(name="a", balance=1), Account(name="b", balance=2)],
        )
    a, b = accounts
    assert a.pk is not None
    assert b.pk is not None
    fields = {"id", "owner", "organization", "name", "balance"}
    history = _history(Account)
    assert [(action, pk) for action, pk, _ in history] == [
        (CREATE, str(a.pk)),
        (CREATE, str(b.pk)),
    ]
    assert history[0][2] == {
        "id": (None, a.pk),
        "owner": (None, None),
        "organization": (None, None),
        "name": (None, "a"),
        "balance": (None, "1.00"),
    }
    assert set(history[1][2]) == fields
    assert actor_of(object_deltas(a)[0]) == user
    # The baseline is what was inserted: a later save records a true update.
    with Context():
        a.name = "c"
        a.save()
    assert changes(object_deltas(a)[1]) == {"name": ("a", "c")}


def test_bulk_create_with_custom_primary_keys(call):
    token = uuid.uuid4()
    with Context():
        call(Code.objects, "bulk_create", [Code(code="EUR"), Code(code="USD")])
        (everything,) = call(Everything.objects, "bulk_create", [Everything(id=token)])
    assert [(a, pk) for a, pk, _ in _history(Code)] == [
        (CREATE, "EUR"),
        (CREATE, "USD"),
    ]
    assert _history(Everything)[0][1] == str(token) == str(everything.pk)


def test_bulk_create_of_a_proxy(call):
    with Context():
        (place,) = call(PlaceProxy.objects, "bulk_create", [PlaceProxy(name="park")])
    assert _history(Place) == [
        (CREATE, str(place.pk), {"id": (None, place.pk), "name": (None, "park")})
    ]


def test_bulk_create_without_returned_keys_inserts_one_by_one(monkeypatch):
    """Where a backend cannot return keys from a bulk insert (MySQL), revy
    inserts objects without a key one statement each to learn their keys."""
    monkeypatch.setattr(
        type(connection.features), "can_return_rows_from_bulk_insert", False
    )
    _warm_up()
    with Context(), CaptureQueriesContext(connection) as captured:
        labels = Label.objects.bulk_create([Label(name=f"l{i}") for i in range(5)])
        flush()
    inserts = [
        q
        for q in captured
        if q["sql"].startswith("INSERT INTO") and "testapp_label" in q["sql"]
    ]
    assert len(inserts) == 5
    assert [pk for _, pk, _ in _history(Label)] == [str(label.pk) for label in labels]
    assert list(Label.objects.order_by("pk").values_list("name", flat=True)) == [
        f"l{i}" for i in range(5)
    ]


def test_bulk_create_ignore_conflicts_records_only_the_inserted_rows(call):
    old = Label.objects.create(name="old")
    with Context():
        call(
            Label.objects,
            "bulk_create",
            [Label(name="old"), Label(name="new"), Label(id=old.pk, name="other")],
            ignore_conflicts=True,
        )
    new = Label.objects.get(name="new")
    assert not Label.objects.filter(name="other").exists()
    assert _history(Label) == [
        (CREATE, str(new.pk), {"id": (None, new.pk), "name": (None, "new")})
    ]


def test_bulk_create_ignore_conflicts_without_unique_fields_gets_keys(call):
    with Context():
        (account,) = call(
            Account.objects, "bulk_create", [Account(name="a")], ignore_conflicts=True
        )
    assert account.pk is not None
    assert [pk for _, pk, _ in _history(Account)] == [str(account.pk)]


@pytest.mark.skipif(
    not connection.features.supports_update_conflicts, reason="no upsert"
)
def test_bulk_create_update_conflicts_records_updates_and_creates(call):
    Article.objects.create(title="t")
    existing = Label.objects.create(name="kept")
    member = ArticleMember.objects.create(
        article=Article.objects.get(), organization=Organization.objects.create()
    )
    unique = (
        {"unique_fields": ["article", "organization"]}
        if connection.features.supports_update_conflicts_with_target
        else {}
    )
    organization = Organization.objects.create(name="other")
    with Context():
        call(
            ArticleMember.objects,
            "bulk_create",
            [
                ArticleMember(
                    article=member.article,
                    organization=member.organization,
                    role="owner",
                ),
                ArticleMember(article=member.article, organization=organization),
            ],
            update_conflicts=True,
            update_fields=["role"],
            **unique,
        )
    created = ArticleMember.objects.get(organization=organization)
    assert ArticleMember.objects.get(pk=member.pk).role == "owner"
    assert _history(ArticleMember) == [
        (
            CREATE,
            str(created.pk),
            {
                "id": (None, created.pk),
                "article": (None, member.article_id),
                "organization": (None, organization.pk),
                "role": (None, "member"),
            },
        ),
        (UPDATE, str(member.pk), {"role": ("member", "owner")}),
    ]
    assert existing.name == "kept"


@pytest.mark.parametrize("rows", [1000, 10_000])
def test_bulk_create_of_many_rows_costs_a_handful_of_queries(rows):
    _warm_up()
    with Context(), CaptureQueriesContext(connection) as captured:
        Organization.objects.bulk_create(
            [Organization(name=f"o{i}") for i in range(rows)]
        )
        flush()
    expected = (
        _inserts(Organization, rows)
        + revision_inserts()
        + delta_inserts(rows, 2 * rows)
    )
    assert len(captured) == expected
    assert ObjectDelta.objects.filter(action=CREATE).count() == rows


# QuerySet.bulk_update -------------------------------------------------------


def test_bulk_update_records_the_fields_that_changed(call, user):
    a = Account.objects.create(name="a", balance=1)
    b = Account.objects.create(name="b", balance=2)
    c = Account.objects.create(name="c", balance=3)
    other = User.objects.create_user("bob")
    with Context.via_actor(user):
        a.name = "A"
        b.balance = decimal.Decimal("5")
        with Context.via_actor(other):
            b.name = "B"
        count = call(Account.objects, "bulk_update", [a, b, c], ["name", "balance"])
    assert count == 3
    assert _history(Account) == [
        (UPDATE, str(a.pk), {"name": ("a", "A")}),
        (UPDATE, str(b.pk), {"name": ("b", "B"), "balance": ("2.00", "5.00")}),
    ]
    delta = object_deltas(b)[0]
    assert actor_of(delta) == user
    by_field = {d.field_name: actor_of(d) for d in delta.attribute_deltas.all()}
    assert by_field == {"name": other, "balance": user}
    assert Revision.objects.count() == 1
    # The baseline follows: saving again records nothing new.
    with Context():
        b.save()
    assert len(object_deltas(b)) == 1


def test_bulk_update_with_expressions_records_the_resulting_values(call):
    a = Account.objects.create(name="a", balance=1)
    a.balance = F("balance") + 2
    with Context():
        call(Account.objects, "bulk_update", [a], ["balance"])
    assert _history(Account) == [(UPDATE, str(a.pk), {"balance": ("1.00", "3.00")})]
    a.refresh_from_db()
    with Context():
        a.balance = 4
        a.save()
    assert changes(object_deltas(a)[1]) == {"balance": ("3.00", "4.00")}


def test_bulk_update_in_several_batches_writes_one_revision():
    accounts = Account.objects.bulk_create([Account(name=f"a{i}") for i in range(5)])
    for account in accounts:
        account.name += "!"
    with Context():
        Account.objects.bulk_update(accounts, ["name"], batch_size=2)
    assert history_counts() == (1, 5, 5)


def test_bulk_update_of_many_rows_costs_a_handful_of_queries():
    rows = 1000
    accounts = Account.objects.bulk_create([Account(name=f"a{i}") for i in range(rows)])
    for account in accounts:
        account.name += "!"
    _warm_up()
    with Context(), CaptureQueriesContext(connection) as captured:
        Account.objects.bulk_update(accounts, ["name"])
        flush()
    history = [q for q in captured if "revy_" in q["sql"] and "INSERT" in q["sql"]]
    assert len(history) == revision_inserts() + delta_inserts(rows, rows)
    assert ObjectDelta.objects.count() == rows


# QuerySet.delete ------------------------------------------------------------


def test_queryset_delete_records_final_values_and_cascades(call):
    owner = User.objects.create_user("owner")
    account = Account.objects.create(owner=owner, name="a", balance=1)
    comment = Comment.objects.create(account=account, text="hi")
    payment = Transaction.objects.create(account=account, amount=2)
    with Context(), Context.via_deletion_description("owner left"):
        call(User.objects.filter(pk=owner.pk), "delete")
    assert {
        (m, a) for m in (Account, Comment, Transaction) for a, _, _ in _history(m)
    } == {
        (Account, DELETE),
        (Comment, DELETE),
        (Transaction, DELETE),
    }
    (delta,) = object_deltas(account)
    assert delta.description == "owner left"
    assert actor_of(delta) is None
    assert changes(object_deltas(comment)[0])["text"] == ("hi", None)
    assert changes(object_deltas(payment)[0])["amount"] == ("2.00", None)


def _cascade(children: int) -> tuple[list[str], list[str], int]:
    """Delete a user owning ``children`` accounts: revy's inserts, Django's
    own statements, and how many attribute deltas were written."""
    owner = User.objects.create_user(f"owner{children}")
    Account.objects.bulk_create(
        [Account(owner=owner, name=f"a{i}") for i in range(children)]
    )
    _warm_up()
    revision = Revision.objects.create()
    with Context.via_revision(revision), CaptureQueriesContext(connection) as captured:
        User.objects.filter(pk=owner.pk).delete()
        flush()
    assert ObjectDelta.objects.filter(revision=revision).count() == 1 + children
    rows = AttributeDelta.objects.filter(revision=revision).count()
    sql = [q["sql"] for q in captured]
    history = [q for q in sql if "revy_" in q]
    return history, [q for q in sql if "revy_" not in q], rows


@pytest.mark.parametrize("children", [1000, 10_000])
def test_cascade_delete_of_many_children_costs_a_handful_of_queries(children):
    _, few, _ = _cascade(2)
    history, django, rows = _cascade(children)
    # History: the object deltas and attribute deltas in as few inserts as
    # the backend allows.
    assert len(history) == delta_inserts(1 + children, rows)
    # Django's own statements: the collector's batches (deletes of 100 rows,
    # one select per relation and batch of keys) and a constant rest.
    table = connection.ops.quote_name(Account._meta.db_table)

    def batched(sql: list[str]) -> int:
        # On MySQL, Django also empties the nullable key of the rows before
        # deleting them (no deferred constraint checks), 100 rows a statement.
        starts = (
            f"DELETE FROM {table}",
            f"UPDATE {table}",
            'SELECT "testapp_transaction"',
            'SELECT "testapp_comment"',
            "SELECT `testapp_transaction`",
            "SELECT `testapp_comment`",
        )
        return sum(q.startswith(starts) for q in sql)

    assert len(django) - batched(django) == len(few) - batched(few)


# Many-to-many ---------------------------------------------------------------


def _through_history() -> list[tuple[str, dict[str, Any]]]:
    return [
        (action, {k: new if action == CREATE else old for k, (old, new) in c.items()})
        for action, _, c in _history(Article.labels.through)
    ]


def test_many_to_many_add_remove_set_clear_from_the_owner(call, user):
    article = Article.objects.create(title="t")
    x, y, z = (Label.objects.create(name=n) for n in "xyz")
    through = Article.labels.through
    with Context.via_actor(user):
        call(article.labels, "add", x, y)
        call(article.labels, "add", x)  # already there: nothing
        call(article.labels, "remove", x)
        call(article.labels, "set", [y, z])
        call(article.labels, "clear")
    rows = [(action, c["label"]) for action, c in _through_history()]
    assert rows == [
        (CREATE, x.pk),
        (CREATE, y.pk),
        (DELETE, x.pk),
        (CREATE, z.pk),
        (DELETE, y.pk),
        (DELETE, z.pk),
    ]
    assert all(c["article"] == article.pk for _, c in _through_history())
    assert all(
        actor_of(d) == user
        for d in ObjectDelta.objects.filter(
            content_type=ContentType.objects.get_for_model(through)
        )
    )
    assert not through.objects.exists()


def test_many_to_many_from_the_other_side(call):
    article = Article.objects.create(title="t")
    label = Label.objects.create(name="x")
    with Context():
        call(label.articles, "add", article)
        call(label.articles, "remove", article)
        call(label.articles, "set", [article])
        call(label.articles, "clear")
    assert [(a, c["article"], c["label"]) for a, c in _through_history()] == [
        (CREATE, article.pk, label.pk),
        (DELETE, article.pk, label.pk),
        (CREATE, article.pk, label.pk),
        (DELETE, article.pk, label.pk),
    ]


def test_many_to_many_through_a_custom_model(call):
    article = Article.objects.create(title="t")
    acme, other = (Organization.objects.create(name=n) for n in ("acme", "other"))
    with Context():
        call(article.members, "add", acme, through_defaults={"role": "owner"})
        call(article.members, "set", [other])
        call(other.articles, "clear")
    history = _history(ArticleMember)
    assert [(a, c.get("organization")) for a, _, c in history] == [
        (CREATE, (None, acme.pk)),
        (DELETE, (acme.pk, None)),
        (CREATE, (None, other.pk)),
        (DELETE, (other.pk, None)),
    ]
    assert history[0][2]["role"] == (None, "owner")


def test_deleting_an_owner_records_its_many_to_many_rows():
    article = Article.objects.create(title="t")
    label = Label.objects.create(name="x")
    article.labels.add(label)
    with Context():
        article.delete()
    assert [a for a, _ in _through_history()] == [DELETE]


def test_many_to_many_add_of_many_costs_a_handful_of_queries():
    article = Article.objects.create(title="t")
    labels = Label.objects.bulk_create([Label(name=f"l{i}") for i in range(300)])
    _warm_up()
    with Context(), CaptureQueriesContext(connection) as captured:
        article.labels.add(*labels)
        flush()
    history = [q for q in captured if "revy_" in q["sql"]]
    through = Article.labels.through
    assert len(history) == revision_inserts() + delta_inserts(300, 900)
    assert len(captured) - len(history) <= 3 + _inserts(through, 300)
    assert ObjectDelta.objects.count() == 300


# get_or_create, update_or_create, refresh_from_db ---------------------------


def test_get_or_create(call):
    with Context():
        account, created = call(
            Account.objects, "get_or_create", name="a", defaults={"balance": 1}
        )
        assert created
        again, created = call(Account.objects, "get_or_create", name="a")
        assert not created
    assert _history(Account) == [
        (
            CREATE,
            str(account.pk),
            {
                "id": (None, account.pk),
                "owner": (None, None),
                "organization": (None, None),
                "name": (None, "a"),
                "balance": (None, "1.00"),
            },
        )
    ]
    assert again.pk == account.pk


def test_update_or_create(call):
    account = Account.objects.create(name="a", balance=1)
    with Context():
        _, created = call(
            Account.objects, "update_or_create", name="a", defaults={"balance": 2}
        )
        assert not created
        new, created = call(
            Account.objects, "update_or_create", name="b", defaults={"balance": 3}
        )
        assert created
    history = _history(Account)
    assert history[0] == (UPDATE, str(account.pk), {"balance": ("1.00", "2.00")})
    assert history[1][0] == CREATE
    assert history[1][1] == str(new.pk)


def test_refresh_from_db_resets_the_baseline(call):
    account = Account.objects.create(name="a")
    Account.objects.update(name="changed elsewhere")
    call(account, "refresh_from_db")
    with Context():
        account.name = "b"
        account.save()
    assert _history(Account) == [
        (UPDATE, str(account.pk), {"name": ("changed elsewhere", "b")})
    ]


def test_multi_table_and_proxy_saves_record_one_delta_per_instance(call):
    with Context():
        restaurant = call(Restaurant.objects, "create", name="r", serves_pizza=True)
        proxy = call(PlaceProxy.objects, "create", name="p")
    assert [a for a, _, _ in _history(Restaurant)] == [CREATE]
    assert set(_history(Restaurant)[0][2]) == {
        "id",
        "name",
        "place_ptr",
        "serves_pizza",
    }
    assert _history(Place) == [
        (CREATE, str(proxy.pk), {"id": (None, proxy.pk), "name": (None, "p")})
    ]
    assert restaurant.pk != proxy.pk


# Raw SQL ----------------------------------------------------------------------


def test_raw_sql_is_not_recorded_but_can_be_recorded_by_hand(user):
    account = Account.objects.create(name="a")
    table = connection.ops.quote_name(Account._meta.db_table)
    with Context.via_actor(user), connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET name = %s", ["raw"])
        assert history_counts() == (0, 0, 0)
        record(Account, account.pk, UPDATE, {"name": ("a", "raw")})
    (delta,) = object_deltas(account)
    assert delta.action == UPDATE
    assert changes(delta) == {"name": ("a", "raw")}
    assert actor_of(delta) == user
    # Outside a context, recording by hand does nothing, as a save would.
    record(Account, account.pk, UPDATE, {"name": ("raw", "x")})
    assert len(object_deltas(account)) == 1


def test_update_of_a_sliced_queryset_fails_as_in_django():
    Account.objects.create(name="a")
    with Context(), pytest.raises(TypeError, match="slice"):
        Account.objects.all()[:1].update(name="b")
    assert history_counts() == (0, 0, 0)


def test_update_of_an_annotated_queryset(call):
    account = Account.objects.create(name="a")
    Transaction.objects.create(account=account, amount=1)
    queryset = Account.objects.annotate(n=Count("transactions")).filter(n__gt=0)
    with Context():
        call(queryset, "update", name="b")
    assert _history(Account) == [(UPDATE, str(account.pk), {"name": ("a", "b")})]


def test_migrate_creates_content_types_of_tracked_through_tables():
    through = Article.labels.through._meta
    assert ContentType.objects.filter(
        app_label=through.app_label, model=through.model_name
    ).exists()
