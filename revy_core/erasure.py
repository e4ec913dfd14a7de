"""Erasure of personal data from history, for data-protection requests.

``erase_object(Model, pk, reason=...)`` replaces every value history holds
for one object (each attribute delta's old and new value) with a marker:
``REVY_ERASED_MARK`` (default ``"[erased]"``) on text fields, ``None`` on
other fields, so snapshots still load. ``erase_actor(actor, reason=...)``
does the same for the actor's own object and unlinks the actor from every
delta it made (those deltas then read as made by the system).

The erasure is itself recorded: one revision, described with the reason,
holding an object delta with action ``"erase"`` per erased object, credited
to ``by`` (who asked for it) at the time it ran.

History cannot erase what it does not structure: values copied into the
free-text descriptions of revisions and deltas. Those are found and listed
in ``ErasureResult.leftovers`` for the operator, never changed silently.
The live row is the application's to anonymize or delete.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models, router, transaction
from django.db.models import Model, Q
from django.utils import timezone

from revy_core.conf import (
    get_attribute_delta_model,
    get_object_delta_model,
    get_revision_model,
)

__all__ = [
    "DEFAULT_MARK",
    "ERASE",
    "ErasureResult",
    "Leftover",
    "erase_actor",
    "erase_object",
]

#: The object delta action that records an erasure.
ERASE = "erase"
DEFAULT_MARK = "[erased]"
BATCH_SIZE = 1000
#: Shorter values are too common to search descriptions for.
MIN_SEARCH_LENGTH = 3
MAX_SEARCHED_VALUES = 200

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Leftover:
    """A description that still contains an erased value."""

    kind: str  # "revision", "object delta" or "attribute delta"
    pk: int
    value: str


@dataclass
class ErasureResult:
    revision_id: int | None = None
    attribute_deltas: int = 0
    unlinked_deltas: int = 0
    leftovers: list[Leftover] = field(default_factory=list)


def erased_mark() -> str:
    return str(getattr(settings, "REVY_ERASED_MARK", DEFAULT_MARK))


def _marker(model: type[Model] | None, name: str, mark: str) -> Any:
    if model is None:
        return None
    try:
        model_field = model._meta.get_field(name)
    except Exception:
        return None
    if isinstance(model_field, models.CharField | models.TextField) and not (
        model_field.choices
    ):
        max_length = model_field.max_length
        return mark[:max_length] if max_length else mark
    return None


def _erase_values(
    content_type: ContentType,
    content_id: str,
    fields: Sequence[str] | None,
    using: str,
    batch_size: int,
    searched: set[str],
    progress: Progress | None,
) -> int:
    attribute_delta = get_attribute_delta_model()
    manager = attribute_delta._default_manager.db_manager(using)
    model = content_type.model_class()
    pk_name = model._meta.pk.name if model is not None and model._meta.pk else "id"
    mark = erased_mark()
    rows = manager.filter(content_type=content_type, content_id=content_id).exclude(
        field_name=pk_name
    )
    if fields is not None:
        rows = rows.filter(field_name__in=list(fields))
    total = rows.count()
    done = 0
    last = 0
    while True:
        batch = list(rows.filter(pk__gt=last).order_by("pk")[:batch_size])
        if not batch:
            break
        last = batch[-1].pk
        for delta in batch:
            marker = _marker(model, delta.field_name, mark)  # type: ignore[attr-defined]
            for attr in ("old_value", "new_value"):
                value = getattr(delta, attr)
                if value is not None and value != marker:
                    if (
                        isinstance(value, str)
                        and len(searched) < MAX_SEARCHED_VALUES
                        and len(value) >= MIN_SEARCH_LENGTH
                        and value != mark
                    ):
                        searched.add(value)
                    setattr(delta, attr, marker)
        manager.bulk_update(batch, ["old_value", "new_value"])
        done += len(batch)
        if progress is not None:
            progress(done, total)
    return total


def _identifying_values(instance: Model) -> list[str]:
    """The text values of an instance's own fields (masked fields left out)."""
    from revy_core.tracking import tracker_for

    tracker = tracker_for(type(instance))
    masked = {"password"}
    if tracker is not None:
        masked |= {f.name for f in tracker.fields if f.masked}
    found = []
    for model_field in instance._meta.concrete_fields:
        if model_field.name in masked or not isinstance(
            model_field, models.CharField | models.TextField
        ):
            continue
        value = getattr(instance, model_field.attname, None)
        if isinstance(value, str) and len(value) >= MIN_SEARCH_LENGTH:
            found.append(value)
    return found


def _leftovers(values: Iterable[str], using: str) -> list[Leftover]:
    found: list[Leftover] = []
    unique: dict[str, str] = {}
    for value in sorted(values):
        unique.setdefault(value.casefold(), value)
    sources = [
        ("revision", get_revision_model()),
        ("object delta", get_object_delta_model()),
        ("attribute delta", get_attribute_delta_model()),
    ]
    for value in unique.values():
        for kind, model in sources:
            pks = (
                model._default_manager.db_manager(using)
                .filter(description__icontains=value)
                .order_by("pk")
                .values_list("pk", flat=True)
            )
            found.extend(Leftover(kind, pk, value) for pk in pks[:100])
    return found


def _record(
    targets: Sequence[tuple[ContentType, str]],
    reason: str,
    by: Model | None,
    using: str,
) -> Model:
    revision = get_revision_model()(description=reason)
    revision.save(using=using)
    actor_type = (
        None
        if by is None
        else ContentType.objects.db_manager(using).get_for_model(by).pk
    )
    actor_id = None if by is None else str(by.pk)
    now = timezone.now()
    get_object_delta_model()._default_manager.db_manager(using).bulk_create(
        [
            get_object_delta_model()(
                revision=revision,
                actor_type_id=actor_type,
                actor_id=actor_id,
                action=ERASE,
                description=reason,
                content_type=content_type,
                content_id=content_id,
                created_at=now,
            )
            for content_type, content_id in targets
        ]
    )
    return revision


def erase_object(
    model: type[Model],
    pk: Any,
    *,
    reason: str,
    by: Model | None = None,
    fields: Sequence[str] | None = None,
    using: str | None = None,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> ErasureResult:
    """Replace every stored value of one object (or of ``fields``) with the marker.

    The primary key is kept (history must still say *which* object). Runs
    in one transaction; with ``dry_run`` it is rolled back.
    """
    if not reason.strip():
        raise ValueError("An erasure needs a reason; it is recorded.")
    using = using or router.db_for_write(get_attribute_delta_model())
    content_type = ContentType.objects.db_manager(using).get_for_model(
        model, for_concrete_model=True
    )
    result = ErasureResult()
    searched: set[str] = set()
    with transaction.atomic(using=using):
        result.attribute_deltas = _erase_values(
            content_type, str(pk), fields, using, batch_size, searched, progress
        )
        revision = _record([(content_type, str(pk))], reason, by, using)
        result.revision_id = None if dry_run else revision.pk
        result.leftovers = _leftovers(searched, using)
        if dry_run:
            transaction.set_rollback(True, using=using)
    return result


def erase_actor(
    actor: Model,
    *,
    reason: str,
    by: Model | None = None,
    unlink: bool = True,
    using: str | None = None,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> ErasureResult:
    """Erase an actor's own history and (``unlink``) its name on every delta.

    The actor's values are erased as by ``erase_object``; each object and
    attribute delta the actor made gets ``actor = None``. The erasure
    revision is credited to ``by``.
    """
    if not reason.strip():
        raise ValueError("An erasure needs a reason; it is recorded.")
    using = using or router.db_for_write(get_attribute_delta_model())
    content_type = ContentType.objects.db_manager(using).get_for_model(
        actor, for_concrete_model=True
    )
    result = ErasureResult()
    searched: set[str] = set()
    with transaction.atomic(using=using):
        result.attribute_deltas = _erase_values(
            content_type, str(actor.pk), None, using, batch_size, searched, progress
        )
        if unlink:
            by_actor = Q(actor_type=content_type, actor_id=str(actor.pk))
            for model in (get_object_delta_model(), get_attribute_delta_model()):
                result.unlinked_deltas += (
                    model._default_manager.db_manager(using)
                    .filter(by_actor)
                    .update(actor_type=None, actor_id=None)
                )
        revision = _record([(content_type, str(actor.pk))], reason, by, using)
        result.revision_id = None if dry_run else revision.pk
        searched.add(str(actor))
        searched.update(_identifying_values(actor))
        result.leftovers = _leftovers(
            [v for v in searched if len(v) >= MIN_SEARCH_LENGTH], using
        )
        if dry_run:
            transaction.set_rollback(True, using=using)
    return result
