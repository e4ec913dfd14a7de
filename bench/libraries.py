"""What each library needs to be measured: its request scope and history API.

Each adapter gives, for the library of this process:

- ``context(actor)``: the library's request context with the actor set, as
  its middleware opens it per request;
- ``unit(actor)``: that context around a transaction: one web request's
  write (every timed write runs in one);
- ``history_rows()``: rows in the library's history tables;
- ``change_id(obj, n)``: the id of the object's n-th change, as a history
  page links to it (read untimed);
- ``state_as_of(obj, change_id)``: the object as it was after that change
  (libraries that cannot rebuild a past state have ``supports_state``
  false);
- ``history(obj)``: the object's history, listed as a history page would
  show it (what changed, not only that something did).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from django.apps import apps
from django.db import transaction

__all__ = ["LIBRARIES", "Library", "get_library"]


class Library:
    name = "untracked"
    label = "untracked (A/A)"
    distribution: str | None = None
    postgres_only = False
    supports_state = True
    supports_history = True

    def setup(self) -> None:
        """Called once the database is migrated."""

    def context(self, actor: Any) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def unit(self, actor: Any) -> Iterator[None]:
        with self.context(actor), transaction.atomic():
            yield

    def get_actor(self) -> Callable[[], Any] | None:
        return None

    def bare_context(self) -> contextlib.AbstractContextManager[Any] | None:
        """The library's context with nothing set, where it has one."""
        return None

    def history_rows(self) -> int:
        return 0

    def change_id(self, obj: Any, n: int) -> Any:
        return obj.pk

    def state_as_of(self, obj: Any, change_id: Any) -> Any:
        # The A/A control: the same read as the untracked side.
        return type(obj).objects.get(pk=change_id)

    def history(self, obj: Any) -> list[Any]:
        return list(type(obj).objects.filter(owner_id=obj.owner_id).order_by("pk"))


class Revy(Library):
    name = "revy"
    label = "revy"
    distribution = "revy"

    def setup(self) -> None:
        from revy_core import Context
        from revy_core.conf import get_revision_model

        self.Context = Context
        self.revision_model = get_revision_model()

    def context(self, actor: Any) -> contextlib.AbstractContextManager[Any]:
        # What revy_mw opens per request: the actor and a lazy revision,
        # created by the first change only.
        return self.Context(actor=actor, revision=self.revision_model)

    def bare_context(self) -> contextlib.AbstractContextManager[Any] | None:
        return self.Context()

    def get_actor(self) -> Callable[[], Any] | None:
        return self.Context.get_actor  # type: ignore[no-any-return]

    def history_rows(self) -> int:
        from revy_core.models import AttributeDelta, ObjectDelta, Revision

        return (
            Revision.objects.count()
            + ObjectDelta.objects.count()
            + AttributeDelta.objects.count()
        )

    def _deltas(self, obj: Any) -> Any:
        from django.contrib.contenttypes.models import ContentType

        from revy_core.models import ObjectDelta

        return ObjectDelta.objects.filter(
            content_type=ContentType.objects.get_for_model(type(obj)),
            content_id=str(obj.pk),
        ).order_by("pk")

    def change_id(self, obj: Any, n: int) -> Any:
        return self._deltas(obj).values_list("pk", flat=True)[n - 1]

    def state_as_of(self, obj: Any, change_id: Any) -> Any:
        from revy_core.models import ObjectDelta, ObjectSnapshot

        delta = (
            ObjectDelta.objects.filter(pk=change_id)
            .annotate(snapshot=ObjectSnapshot(type(obj)))
            .get()
        )
        return delta.snapshot

    def history(self, obj: Any) -> list[Any]:
        # What README tells users to read a history with: every object delta
        # with its revision's message and its attribute deltas (field, old
        # and new value, actor). Actors' names are read on first use.
        from revy_core.history import object_history

        return list(object_history(type(obj), obj.pk))


class _Request:
    def __init__(self, user: Any) -> None:
        self.user = user


class SimpleHistory(Library):
    name = "simple_history"
    label = "simple-history"
    distribution = "django-simple-history"

    def setup(self) -> None:
        from simple_history.models import HistoricalRecords

        self.local = HistoricalRecords.context

    @contextlib.contextmanager
    def context(self, actor: Any) -> Iterator[None]:
        # What HistoryRequestMiddleware does per request.
        self.local.request = _Request(actor)
        try:
            yield
        finally:
            del self.local.request

    def get_actor(self) -> Callable[[], Any] | None:
        from simple_history.models import HistoricalRecords

        return lambda: HistoricalRecords.context.request.user

    def _model(self) -> Any:
        return apps.get_model("benchapp", "HistoricalTracked")

    def history_rows(self) -> int:
        return int(self._model().objects.count())

    def change_id(self, obj: Any, n: int) -> Any:
        return (
            self._model()
            .objects.filter(id=obj.pk)
            .order_by("history_id")
            .values_list("history_id", flat=True)[n - 1]
        )

    def state_as_of(self, obj: Any, change_id: Any) -> Any:
        return self._model().objects.get(history_id=change_id).instance

    def history(self, obj: Any) -> list[Any]:
        return list(obj.history.all())


class Reversion(Library):
    name = "reversion"
    label = "reversion"
    distribution = "django-reversion"

    def setup(self) -> None:
        import reversion

        self.reversion = reversion

    @contextlib.contextmanager
    def context(self, actor: Any) -> Iterator[None]:
        with self.reversion.create_revision(atomic=False):
            self.reversion.set_user(actor)
            yield

    @contextlib.contextmanager
    def unit(self, actor: Any) -> Iterator[None]:
        import reversion

        # create_revision is itself the transaction (atomic=True, its default).
        with reversion.create_revision():
            reversion.set_user(actor)
            yield

    def get_actor(self) -> Callable[[], Any] | None:
        import reversion

        return reversion.get_user

    def history_rows(self) -> int:
        from reversion.models import Revision, Version

        return int(Revision.objects.count() + Version.objects.count())

    def change_id(self, obj: Any, n: int) -> Any:
        from reversion.models import Version

        return (
            Version.objects.get_for_object(obj)
            .order_by("pk")
            .values_list("pk", flat=True)[n - 1]
        )

    def state_as_of(self, obj: Any, change_id: Any) -> Any:
        from reversion.models import Version

        return Version.objects.get(pk=change_id)._object_version.object

    def history(self, obj: Any) -> list[Any]:
        from reversion.models import Version

        return list(Version.objects.get_for_object(obj).select_related("revision"))


class Auditlog(Library):
    name = "auditlog"
    label = "auditlog"
    distribution = "django-auditlog"
    supports_state = False

    def setup(self) -> None:
        from auditlog.context import set_actor

        self.set_actor = set_actor

    def context(self, actor: Any) -> contextlib.AbstractContextManager[Any]:
        return self.set_actor(actor)  # type: ignore[no-any-return]

    def get_actor(self) -> Callable[[], Any] | None:
        from auditlog.context import auditlog_value

        return lambda: auditlog_value.get()["actor"]

    def history_rows(self) -> int:
        from auditlog.models import LogEntry

        return int(LogEntry.objects.count())

    def history(self, obj: Any) -> list[Any]:
        from auditlog.models import LogEntry

        return list(LogEntry.objects.get_for_object(obj))


class Pghistory(Library):
    name = "pghistory"
    label = "pghistory"
    distribution = "django-pghistory"
    postgres_only = True

    def setup(self) -> None:
        import pghistory
        import pgtrigger

        pgtrigger.install()
        self.pghistory = pghistory

    def context(self, actor: Any) -> contextlib.AbstractContextManager[Any]:
        # What pghistory's HistoryMiddleware records per request.
        return self.pghistory.context(user=actor.pk, url="/bench/")  # type: ignore[no-any-return]

    def _model(self) -> Any:
        return apps.get_model("benchapp", "TrackedEvent")

    def history_rows(self) -> int:
        from pghistory.models import Context

        return int(self._model().objects.count() + Context.objects.count())

    def change_id(self, obj: Any, n: int) -> Any:
        return (
            self._model()
            .objects.filter(pgh_obj_id=obj.pk)
            .order_by("pgh_id")
            .values_list("pgh_id", flat=True)[n - 1]
        )

    def state_as_of(self, obj: Any, change_id: Any) -> Any:
        # An event row is a full snapshot of the tracked row.
        return self._model().objects.get(pgh_id=change_id)

    def history(self, obj: Any) -> list[Any]:
        return list(self._model().objects.filter(pgh_obj_id=obj.pk).order_by("pgh_id"))


LIBRARIES: dict[str, type[Library]] = {
    cls.name: cls
    for cls in (Library, Revy, SimpleHistory, Reversion, Auditlog, Pghistory)
}


def get_library(name: str) -> Library:
    return LIBRARIES[name]()
