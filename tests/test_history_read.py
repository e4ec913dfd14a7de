"""object_history: what it reads, in how many queries, on every database."""

from __future__ import annotations

import datetime
import decimal
import os
import subprocess
import sys
import textwrap
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db import connections
from django.db.models import Model

from revy_core import Context
from revy_core.history import Entry, object_history
from revy_core.models import ObjectDelta, Revision
from tests.testapp.models import Account, Everything, Organization

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[1]


def changed(count: int) -> Account:
    """An account created, then renamed ``count - 1`` times, one save each."""
    with Context(), Context.via_revision_description("open"):
        account = Account.objects.create(name="v0", balance=decimal.Decimal(1))
    for i in range(1, count):
        with Context(), Context.via_revision_description(f"rename {i}"):
            account.name = f"v{i}"
            account.save()
    return account


def as_orm_reads_it(model: type[Model], pk: Any) -> list[tuple[Any, ...]]:
    """The history as the models give it, for comparison."""
    deltas = (
        ObjectDelta.objects.filter(
            content_type=ContentType.objects.get_for_model(model),
            content_id=str(pk),
        )
        .select_related("revision")
        .prefetch_related("attribute_deltas")
        .order_by("pk")
    )
    return [
        (
            d.pk,
            d.revision_id,
            d.created_at,
            d.action,
            d.actor_type_id,
            d.actor_id,
            d.revision.description,
            d.description,
            [
                (
                    a.field_name,
                    a.action,
                    a.old_value,
                    a.new_value,
                    a.actor_type_id,
                    a.actor_id,
                    a.description,
                )
                for a in sorted(d.attribute_deltas.all(), key=lambda a: a.pk)
            ],
        )
        for d in deltas
    ]


def as_read(entries: list[Entry]) -> list[tuple[Any, ...]]:
    return [
        (
            e.object_delta_id,
            e.revision_id,
            e.created_at,
            e.action,
            e.actor_type_id,
            e.actor_id,
            e.message,
            e.description,
            [
                (
                    c.field,
                    c.action,
                    c.old,
                    c.new,
                    c.actor_type_id,
                    c.actor_id,
                    c.description,
                )
                for c in e.changes
            ],
        )
        for e in entries
    ]


# Queries -------------------------------------------------------------------


@pytest.mark.parametrize("count", [10, 100])
def test_a_listing_is_two_queries_whatever_its_length(count, django_assert_num_queries):
    account = changed(count)
    ContentType.objects.get_for_model(Account)
    with django_assert_num_queries(2):
        entries = list(object_history(Account, account.pk))
    assert len(entries) == count
    assert [e.changes[-1].new for e in entries[1:]] == [
        f"v{i}" for i in range(1, count)
    ]


def test_actor_names_cost_one_query_per_actor_when_read(django_assert_num_queries):
    alice = User.objects.create_user("alice")
    bob = User.objects.create_user("bob")
    with Context.via_actor(alice):
        account = Account.objects.create(name="a")
    for actor in [bob, None, alice, bob]:
        with Context.via_actor(actor):
            account.name += "!"
            account.save()
    ContentType.objects.get_for_model(Account)
    ContentType.objects.get_for_model(User)
    with django_assert_num_queries(2):
        entries = list(object_history(Account, account.pk))
    with django_assert_num_queries(2):
        names = [e.actor for e in entries]
        names += [c.actor for e in entries for c in e.changes]
    assert names[:5] == [
        f"alice (auth.user:{alice.pk})",
        f"bob (auth.user:{bob.pk})",
        "system",
        f"alice (auth.user:{alice.pk})",
        f"bob (auth.user:{bob.pk})",
    ]


@pytest.mark.parametrize(("count", "queries"), [(7, 6), (6, 5), (2, 2)])
def test_batches_are_two_queries_each(count, queries, django_assert_num_queries):
    account = changed(count)
    ContentType.objects.get_for_model(Account)
    with django_assert_num_queries(queries):
        entries = list(object_history(Account, account.pk, batch_size=3))
    assert [e.message for e in entries] == ["open"] + [
        f"rename {i}" for i in range(1, count)
    ]
    assert as_read(entries) == as_orm_reads_it(Account, account.pk)


# What it reads ---------------------------------------------------------------


TRICKY_TEXTS = [
    'comma, "quote", bracket ] brace } backslash \\',
    '","',
    "]",
    "null",
    "",
    "ünïcode ✓ \u2028",
]


def test_every_value_reads_as_stored():
    organization = Organization.objects.create(name="acme")
    with Context():
        thing = Everything.objects.create(
            organization=organization,
            char=TRICKY_TEXTS[0],
            text="line\nline",
            integer=-1,
            decimal=decimal.Decimal("-12.5"),
            number=1.0000000000000002,
            moment=datetime.datetime(2024, 3, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
            token=uuid.UUID("c0ffee00-0000-4000-8000-000000000001"),
            data={"nested": [1, 2.5, None, True, "s", {"x": []}], "null": None},
            blob=b"\x00\xff",
        )
        for text in TRICKY_TEXTS[1:]:
            thing.char = text
            thing.data = [text, {"text": text}]
            thing.save()
        thing.data = None
        thing.save()
        pk = thing.pk
        thing.delete()
    entries = list(object_history(Everything, pk))
    assert as_read(entries) == as_orm_reads_it(Everything, pk)
    created = {c.field: c.new for c in entries[0].changes}
    assert created["char"] == TRICKY_TEXTS[0]
    assert created["decimal"] == "-12.5000"
    assert created["data"] == {
        "nested": [1, 2.5, None, True, "s", {"x": []}],
        "null": None,
    }
    assert created["maybe"] is None
    assert [e.changes[0].new for e in entries[1:6]] == TRICKY_TEXTS[1:]
    assert entries[-2].changes == [entries[-2].changes[0]]
    assert (entries[-2].changes[0].old, entries[-2].changes[0].new) == (
        [TRICKY_TEXTS[-1], {"text": TRICKY_TEXTS[-1]}],
        None,
    )
    assert entries[-1].action == ObjectDelta.ACTION_DELETE
    for entry in entries:
        assert entry.created_at.utcoffset() == datetime.timedelta(0)


def test_actor_message_and_descriptions_of_each_change():
    alice = User.objects.create_user("alice")
    bob = User.objects.create_user("bob")
    with (
        Context.via_actor(alice),
        Context.via_revision_description("shared"),
        Context.via_object_delta_description("by alice"),
    ):
        account = Account.objects.create(name="a")
        account.name = "alice's"
        with (
            Context.via_actor(bob),
            Context.via_attribute_delta_description("bob's edit"),
        ):
            account.balance = decimal.Decimal("2")
        account.save()
    _, update = object_history(Account, account.pk)
    assert (update.message, update.description) == ("shared", "by alice")
    assert update.actor == f"alice (auth.user:{alice.pk})"
    by_field = {c.field: c for c in update.changes}
    assert by_field["name"].actor == f"alice (auth.user:{alice.pk})"
    assert by_field["balance"].actor == f"bob (auth.user:{bob.pk})"
    assert by_field["balance"].description == "bob's edit"
    assert (by_field["balance"].old, by_field["balance"].new) == ("0.00", "2.00")
    assert update.as_dict()["changes"][-1]["actor"] == by_field["balance"].actor


def test_a_deleted_actor_reads_as_its_label():
    gone = User.objects.create_user("gone")
    with Context.via_actor(gone):
        account = Account.objects.create(name="a")
    gone_pk = gone.pk
    with Context():
        gone.delete()
    (entry,) = object_history(Account, account.pk)
    assert entry.actor == f"auth.user:{gone_pk}"


def test_an_object_delta_without_attribute_deltas_and_other_objects():
    with Context():
        account = Account.objects.create(name="a")
        Organization.objects.create(pk=account.pk, name="same pk, other model")
        Account.objects.create(name="another account")
    revision = Revision.objects.create(description="by hand")
    ObjectDelta.objects.create(
        revision=revision,
        action=ObjectDelta.ACTION_UPDATE,
        content_type=ContentType.objects.get_for_model(Account),
        content_id=str(account.pk),
        description="nothing changed",
    )
    create, empty = object_history(Account, account.pk)
    assert {c.field for c in create.changes} >= {"id", "name"}
    assert (empty.message, empty.description, empty.changes) == (
        "by hand",
        "nothing changed",
        [],
    )
    assert empty.actor == "system"
    assert list(object_history(Account, "no such pk")) == []


@pytest.mark.django_db(databases=["default", "other"])
def test_each_database_lists_its_own_history(django_assert_num_queries):
    with Context(), Context.via_revision_description("elsewhere"):
        there = Account(name="there")
        there.save(using="other")
        there.name = "there, renamed"
        there.save(using="other")
    with Context(), Context.via_revision_description("here"):
        here = Account.objects.create(name="here")
    assert [e.message for e in object_history(Account, here.pk)] == ["here"]
    entries = list(object_history(Account, there.pk, using="other"))
    assert [e.message for e in entries] == ["elsewhere", "elsewhere"]
    assert entries[1].changes[0].new == "there, renamed"
    assert entries[1].actor == "system"


def test_swapped_history_models_are_listed(tmp_path):
    script = textwrap.dedent(
        """
        import django
        django.setup()
        from django.core.management import call_command
        call_command("migrate", verbosity=0)
        from revy_core import Context
        from revy_core.history import object_history
        from tests.testapp.models import Account
        with Context(), Context.via_revision_description("swapped"):
            account = Account.objects.create(name="a")
            account.name = "b"
            account.save()
        entries = list(object_history(Account, account.pk))
        assert [e.message for e in entries] == ["swapped", "swapped"], entries
        assert [(c.field, c.old, c.new) for c in entries[1].changes] == [
            ("name", "a", "b")
        ], entries
        print("ok")
        """
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.swapped.settings",
        "REVY_SWAPPED_DATABASE": str(tmp_path / "swapped.sqlite3"),
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == "ok"


@pytest.mark.django_db(transaction=True)
def test_each_thread_reads_on_its_own_connection():
    account = changed(3)
    assert len(list(object_history(Account, account.pk))) == 3
    found: list[Any] = []

    def read() -> None:
        try:
            found.append([e.message for e in object_history(Account, account.pk)])
        except Exception as error:
            found.append(error)
        finally:
            connections.close_all()

    thread = threading.Thread(target=read)
    thread.start()
    thread.join()
    assert found == [["open", "rename 1", "rename 2"]]
