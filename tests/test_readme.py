"""Every example of the seed README, as written, with only imports changed.

Placeholders of the README (``...``, ``deserialize``, the view's request)
are filled in by the tests; the example code itself is unchanged.
"""

from __future__ import annotations

import decimal
from types import SimpleNamespace
from typing import Any, cast

import pytest
from django.contrib.auth.models import User
from django.test import RequestFactory

from revy_core import Context
from revy_core.models import AttributeDelta, ObjectDelta, Revision
from tests.testapp.history import actor_of, attributes, changes, object_deltas
from tests.testapp.models import (
    Account,
    Comment,
    Organization,
    Post,
    Profile,
    Transaction,
)

pytestmark = pytest.mark.django_db


# Setup -----------------------------------------------------------------------


def test_setup():
    from django.apps import apps
    from django.conf import settings

    # INSTALLED_APPS = ['revy_core']
    assert "revy_core" in settings.INSTALLED_APPS
    assert apps.get_app_config("revy").name == "revy_core"


# Usage ---------------------------------------------------------------------


def test_usage():
    comment = Comment.objects.create(text="Buy cheap watches")

    with (
        Context.via_actor(None),
        Context.via_revision_description("Detected by the system."),
    ):
        # Changes made in this block will be tracked automatically.
        comment.is_marked_as_spam = True
        # Saving the instance will create a new revision.
        comment.save()

    (delta,) = object_deltas(comment)
    assert delta.action == ObjectDelta.ACTION_UPDATE
    assert actor_of(delta) is None
    assert delta.revision.description == "Detected by the system."
    assert changes(delta) == {"is_marked_as_spam": (False, True)}
    assert Revision.objects.count() == 1


# Polymorphic Actor Types ---------------------------------------------------


def _polymorphic_view(account: Account):
    """The README's view; the account save stands for the view's work."""

    @Context()
    def view(request):
        # If the request was made on behalf of an organization,
        # set the actor as the organization.
        if (
            # Check if the request has an HTTP header to perform as an organization.
            request.META.get("HTTP_X_PERFORM_AS_ORGANIZATION")
            and request.organization is not None
        ):
            Context.set_actor(request.organization)
        else:
            Context.set_actor(request.user)
        # The view's work:
        account.name = f"{account.name}!"
        account.save()

    return view


def test_polymorphic_actor_types():
    user = User.objects.create_user("alice")
    organization = Organization.objects.create(name="acme")
    account = Account.objects.create(name="shared")
    view = _polymorphic_view(account)
    factory = RequestFactory()

    as_organization = factory.get("/", HTTP_X_PERFORM_AS_ORGANIZATION="acme")
    as_organization.user = user
    as_organization.organization = organization  # type: ignore[attr-defined]
    view(as_organization)

    as_user = factory.get("/")
    as_user.user = user
    as_user.organization = None  # type: ignore[attr-defined]
    view(as_user)

    by_organization, by_user = object_deltas(account)
    assert actor_of(by_organization) == organization
    assert by_organization.actor_type is not None
    assert by_organization.actor_type.model_class() is Organization
    assert actor_of(by_user) == user
    assert by_user.actor_type is not None
    assert by_user.actor_type.model_class() is User
    assert [actor_of(a) for a in attributes(by_organization)] == [organization]
    assert Context.depth() == 0


# Collaborative Revisions ---------------------------------------------------


from revy_core import Context as C  # noqa: E402


def _collaborative_view(deserialize: Any) -> Any:
    def view(request):
        with C.via_actor(request.user):
            # <-- The actor is `request.user` in this block.
            C.set_revision_description(
                request.META.get("HTTP_X_COMMIT_MESSAGE"),
            )
            instance = deserialize(request.data)
            local_amount = instance.amount * instance.exchange_rate
            if instance.local_amount != local_amount:
                with (
                    # Assume that `None` is the system.
                    C.via_actor(None),
                    C.via_attribute_delta_description(
                        "Corrected by the system.",
                    ),
                ):
                    # <-- The actor is the system in this block.
                    instance.local_amount = local_amount
                # <-- The actor here is `request.user` again.
            instance.save()

    return view


def _request(user: User, data: dict[str, Any]) -> Any:
    request = RequestFactory().post("/", HTTP_X_COMMIT_MESSAGE="Paid the invoice.")
    request.user = user
    request.data = data  # type: ignore[attr-defined]
    return request


def test_collaborative_revisions_on_create():
    user = User.objects.create_user("alice")
    account = Account.objects.create(name="current")

    def deserialize(data):
        return Transaction(**data)

    view = _collaborative_view(deserialize)
    view(
        _request(
            user,
            {
                "account": account,
                "amount": decimal.Decimal("10.00"),
                "exchange_rate": decimal.Decimal("1.5"),
                "local_amount": decimal.Decimal("10.00"),
            },
        )
    )

    (delta,) = ObjectDelta.objects.all()
    assert delta.action == ObjectDelta.ACTION_CREATE
    assert actor_of(delta) == user
    assert delta.revision.description == "Paid the invoice."
    by_name = {a.field_name: a for a in attributes(delta)}
    assert by_name["local_amount"].new_value == "15.00"
    assert actor_of(by_name["local_amount"]) is None
    assert by_name["local_amount"].description == "Corrected by the system."
    for name in ("amount", "exchange_rate", "account", "note", "id"):
        assert actor_of(by_name[name]) == user, name
        assert by_name[name].description == ""
    assert Transaction.objects.get().local_amount == decimal.Decimal("15.00")


def test_collaborative_revisions_on_update():
    user = User.objects.create_user("alice")
    account = Account.objects.create(name="current")
    existing = Transaction.objects.create(
        account=account, amount=decimal.Decimal("1"), local_amount=decimal.Decimal("1")
    )

    def deserialize(data):
        instance = Transaction.objects.get(pk=data["id"])
        for name, value in data.items():
            setattr(instance, name, value)
        return instance

    view = _collaborative_view(deserialize)
    view(
        _request(
            user,
            {
                "id": existing.pk,
                "amount": decimal.Decimal("4"),
                "exchange_rate": decimal.Decimal("0.5"),
            },
        )
    )

    (delta,) = object_deltas(existing)
    assert delta.action == ObjectDelta.ACTION_UPDATE
    assert actor_of(delta) == user
    assert delta.revision.description == "Paid the invoice."
    rows = {
        a.field_name: (a.old_value, a.new_value, actor_of(a), a.description)
        for a in attributes(delta)
    }
    assert rows == {
        "amount": ("1.00", "4.00", user, ""),
        "exchange_rate": ("1.0000", "0.5000", user, ""),
        "local_amount": ("1.00", "2.00", None, "Corrected by the system."),
    }


def test_collaborative_revisions_without_a_correction():
    user = User.objects.create_user("alice")
    account = Account.objects.create(name="current")

    def deserialize(data):
        return Transaction(**data)

    view = _collaborative_view(deserialize)
    view(
        _request(
            user,
            {
                "account": account,
                "amount": decimal.Decimal("2"),
                "local_amount": decimal.Decimal("2"),
            },
        )
    )
    assert {actor_of(a) for a in AttributeDelta.objects.all()} == {user}


# Foreign Key Deletion Handlers ---------------------------------------------


def test_foreign_key_deletion_handlers():
    # `Post` of the README is `tests.testapp.models.Post`:
    #
    #     from revy_core.models import CASCADE
    #
    #     class Post(Model):
    #         author = ForeignKey(User, on_delete=CASCADE)
    from revy_core.models import CASCADE

    assert Post._meta.get_field("author").remote_field.on_delete is CASCADE

    user = User.objects.create_user("alice")
    user_pk = user.pk
    posts = [Post.objects.create(author=user, title=f"post {i}") for i in range(3)]

    with (
        Context.via_object_delta_description(
            "The account has been closed at the owner's request.",
        ),
        Context.via_deletion_description(
            "Deleted because the owner's account has been closed.",
        ),
    ):
        user.delete()

    assert not Post.objects.exists()
    (user_delta,) = object_deltas(User, user_pk)
    assert user_delta.action == ObjectDelta.ACTION_DELETE
    assert (
        user_delta.description == "The account has been closed at the owner's request."
    )
    for post in posts:
        (post_delta,) = object_deltas(Post, post.pk)
        assert post_delta.action == ObjectDelta.ACTION_DELETE
        assert actor_of(post_delta) is None
        assert (
            post_delta.description
            == "Deleted because the owner's account has been closed."
        )
        assert post_delta.revision_id == user_delta.revision_id
        assert changes(post_delta) == {
            "id": (post.pk, None),
            "author": (user_pk, None),
            "title": (post.title, None),
        }
        for attribute in attributes(post_delta):
            assert attribute.action == AttributeDelta.ACTION_UNSET
            assert attribute.description == post_delta.description


# Snapshots and Rollbacks ---------------------------------------------------


def test_snapshots_and_rollbacks():
    user = User.objects.create_user(
        "alice",
        email="alice@example.com",
        first_name="Alice",
        password="secret",
        id=1,
    )
    Profile.objects.create(user=user, bio="hello")
    with Context():
        user.delete()
    assert not User.objects.filter(pk=1).exists()

    from django.contrib.contenttypes.models import ContentType

    from revy_core.models import (
        ObjectDelta,
        ObjectSnapshot,
    )

    DELETED_USER_ID = 1

    object_delta = (
        ObjectDelta.objects.filter(
            action=ObjectDelta.ACTION_DELETE,
            content_type=ContentType.objects.get_for_model(User),
            content_id=DELETED_USER_ID,
        )
        .annotate(snapshot=ObjectSnapshot(User))
        .order_by(
            "-pk",
        )
        .first()
    )

    # object_delta.snapshot is an instance of User class.
    # And it is ready to be saved again, with the same ID if you don't change it.
    object_delta.snapshot.save()  # type: ignore[union-attr]

    restored = User.objects.get(pk=1)
    assert restored.username == "alice"
    assert restored.email == "alice@example.com"
    assert restored.first_name == "Alice"
    assert restored.date_joined == user.date_joined
    assert restored.is_active
    # The password hash is never stored in history: it is not restored.
    assert restored.password != user.password
    assert not restored.check_password("secret")


def test_rollback_inside_a_context_records_a_create():
    user = User.objects.create_user("alice")
    pk = user.pk
    with Context():
        user.delete()
    from django.contrib.contenttypes.models import ContentType

    from revy_core.models import ObjectSnapshot

    object_delta = (
        ObjectDelta.objects.filter(
            action=ObjectDelta.ACTION_DELETE,
            content_type=ContentType.objects.get_for_model(User),
            content_id=pk,
        )
        .annotate(snapshot=ObjectSnapshot(User))
        .order_by("-pk")
        .first()
    )
    assert object_delta is not None
    with Context():
        object_delta.snapshot.save()
    _, restore = object_deltas(User, pk)
    assert restore.action == ObjectDelta.ACTION_CREATE
    assert changes(restore)["username"] == (None, "alice")


# Disabling Tracking Temporarily --------------------------------------------


def test_disabling_tracking_with_disable_and_enable():
    account = Account.objects.create(name="a")
    seen: dict[str, bool] = {}

    @Context()
    def some_task():
        Context.disable()
        # ...
        seen["disabled"] = Context.is_disabled()
        account.name = "not recorded"
        account.save()
        Context.enable()
        seen["enabled"] = Context.is_enabled()
        account.name = "recorded"
        account.save()

    cast(Any, some_task)()
    assert seen == {"disabled": True, "enabled": True}
    (delta,) = object_deltas(account)
    assert changes(delta) == {"name": ("not recorded", "recorded")}


def test_disabling_tracking_with_as_disabled():
    account = Account.objects.create(name="a")
    seen = SimpleNamespace(inside=None, after=None)

    @Context()
    def some_task():
        with Context.as_disabled():
            # <-- Context is disabled in this block.
            seen.inside = Context.is_disabled()
            account.name = "not recorded"
            account.save()
        # <-- Here context is re-enabled.
        seen.after = Context.is_enabled()
        account.name = "recorded"
        account.save()

    cast(Any, some_task)()
    assert (seen.inside, seen.after) == (True, True)
    (delta,) = object_deltas(account)
    assert changes(delta) == {"name": ("not recorded", "recorded")}
