"""Retention: drop old history without breaking reconstruction.

``prune(before=...)`` removes, per object, the object deltas older than the
cut-off (keeping at least the last ``keep_last``), but never the past that
kept deltas need: the newest removed delta stays, rewritten as a baseline
Create holding every field's value at that point, so ``ObjectSnapshot`` at
any kept delta rebuilds exactly the object it rebuilt before. An object
whose whole history is older than the cut-off and ends with its deletion is
removed entirely. Revisions left without deltas go too.

``REVY_RETENTION`` gives per-model defaults, read lazily::

    REVY_RETENTION = {
        "ledger.Transaction": {"keep_days": 365, "keep_last": 5},
        "*": {"keep_days": 3650},  # every other model
    }

Work goes by content type, then by batches of objects (keyset on the
content id), each batch in its own transaction: memory stays flat, an
interrupted run keeps what it did and the next run continues.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from django.apps import apps
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core import checks
from django.db import router, transaction
from django.db.models import Exists, Model, OuterRef
from django.utils import timezone

from revy_core.conf import (
    get_attribute_delta_model,
    get_object_delta_model,
    get_revision_model,
)

__all__ = [
    "BASELINE_DESCRIPTION",
    "PruneResult",
    "RetentionPolicy",
    "check_retention",
    "policy_for",
    "prune",
]

BASELINE_DESCRIPTION = "Baseline: state at the retention cut-off {cutoff}"
BATCH_SIZE = 500
_CHUNK = 500
ALL_MODELS = "*"

T = TypeVar("T")
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class RetentionPolicy:
    """How long one model's history is kept: days, and a minimum of deltas."""

    keep_days: int | None = None
    keep_last: int = 0


@dataclass
class PruneResult:
    """What a prune removed or rewrote."""

    objects: int = 0
    baselines: int = 0
    erased_objects: int = 0
    object_deltas: int = 0
    attribute_deltas: int = 0
    revisions: int = 0


def _setting() -> Any:
    return getattr(settings, "REVY_RETENTION", {})


def policy_for(model: type[Model]) -> RetentionPolicy | None:
    """The ``REVY_RETENTION`` entry of ``model`` (or of ``"*"``), if any."""
    raw = _setting() or {}
    lowered = {str(key).lower(): value for key, value in raw.items()}
    entry = lowered.get(model._meta.label_lower, lowered.get(ALL_MODELS))
    if entry is None:
        return None
    return RetentionPolicy(
        keep_days=entry.get("keep_days"), keep_last=entry.get("keep_last", 0)
    )


def check_retention(**kwargs: Any) -> list[checks.CheckMessage]:
    """``revy.E006``: ``REVY_RETENTION`` is malformed."""
    raw = _setting()
    if raw is None:
        return []

    def error(message: str) -> checks.Error:
        return checks.Error(
            message,
            hint='Use {"app_label.Model" or "*": '
            '{"keep_days": int, "keep_last": int}}.',
            id="revy.E006",
        )

    if not isinstance(raw, dict):
        return [error("REVY_RETENTION must be a dict.")]
    errors: list[checks.CheckMessage] = []
    for label, entry in raw.items():
        if label != ALL_MODELS:
            try:
                apps.get_model(label)
            except (LookupError, ValueError, TypeError):
                errors.append(
                    error(f"REVY_RETENTION names {label!r}, not an installed model.")
                )
                continue
        if not isinstance(entry, dict) or set(entry) - {"keep_days", "keep_last"}:
            errors.append(
                error(
                    f"REVY_RETENTION[{label!r}] must be a dict with only "
                    "'keep_days' and 'keep_last'."
                )
            )
            continue
        for key in ("keep_days", "keep_last"):
            value = entry.get(key, 0)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                errors.append(
                    error(
                        f"REVY_RETENTION[{label!r}][{key!r}] must be an integer "
                        f">= 0, not {value!r}."
                    )
                )
    return errors


def _chunks(items: Sequence[T], size: int = _CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _plans(
    models: Iterable[type[Model]] | None,
    before: datetime.datetime | None,
    keep_last: int | None,
    using: str,
) -> list[tuple[ContentType, datetime.datetime, int]]:
    content_types = ContentType.objects.db_manager(using)
    if models is None:
        if before is None:
            labels = [k for k in (_setting() or {}) if k != ALL_MODELS]
            if ALL_MODELS in (_setting() or {}):
                models = None
            else:
                models = [apps.get_model(label) for label in labels]
        if models is None:
            ids = (
                get_object_delta_model()
                ._default_manager.db_manager(using)
                .order_by()
                .values_list("content_type", flat=True)
                .distinct()
            )
            found = [content_types.get_for_id(pk).model_class() for pk in ids]
            models = [model for model in found if model is not None]
    plans = []
    now = timezone.now()
    for model in models:
        policy = policy_for(model) or RetentionPolicy()
        cutoff = before
        if cutoff is None:
            if policy.keep_days is None:
                continue
            cutoff = now - datetime.timedelta(days=policy.keep_days)
        keep = keep_last if keep_last is not None else policy.keep_last
        content_type = content_types.get_for_model(model, for_concrete_model=True)
        plans.append((content_type, cutoff, keep))
    return plans


def prune(
    before: datetime.datetime | None = None,
    *,
    models: Iterable[type[Model]] | None = None,
    keep_last: int | None = None,
    using: str | None = None,
    batch_size: int = BATCH_SIZE,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> PruneResult:
    """Remove history older than ``before`` (or each model's ``REVY_RETENTION``).

    ``models`` defaults to every model with history when ``before`` is given,
    otherwise to the models ``REVY_RETENTION`` names. ``keep_last`` keeps at
    least that many of each object's latest deltas (default: the setting's,
    else 0). With ``dry_run`` each batch is rolled back and the result tells
    what would have been done. ``progress(label, done, total)`` is called
    after each batch of objects.
    """
    using = using or router.db_for_write(get_object_delta_model())
    result = PruneResult()
    for content_type, cutoff, keep in _plans(models, before, keep_last, using):
        _prune_content_type(
            content_type, cutoff, keep, using, batch_size, dry_run, progress, result
        )
    return result


def _prune_content_type(
    content_type: ContentType,
    cutoff: datetime.datetime,
    keep_last: int,
    using: str,
    batch_size: int,
    dry_run: bool,
    progress: Progress | None,
    result: PruneResult,
) -> None:
    object_delta = get_object_delta_model()
    old = object_delta._default_manager.db_manager(using).filter(
        content_type=content_type, created_at__lt=cutoff
    )
    label = f"{content_type.app_label}.{content_type.model}"
    total = old.order_by().values("content_id").distinct().count()
    done = 0
    last: str | None = None
    while True:
        ids = old.order_by("content_id").values_list("content_id", flat=True)
        if last is not None:
            ids = ids.filter(content_id__gt=last)
        batch = list(ids.distinct()[:batch_size])
        if not batch:
            break
        last = batch[-1]
        with transaction.atomic(using=using):
            _prune_batch(content_type, batch, cutoff, keep_last, using, result)
            if dry_run:
                transaction.set_rollback(True, using=using)
        done += len(batch)
        if progress is not None:
            progress(label, done, total)


def _prune_batch(
    content_type: ContentType,
    content_ids: Sequence[str],
    cutoff: datetime.datetime,
    keep_last: int,
    using: str,
    result: PruneResult,
) -> None:
    from revy_core.erasure import ERASE

    object_delta = get_object_delta_model()
    attribute_delta = get_attribute_delta_model()
    create = object_delta.ACTION_CREATE  # type: ignore[attr-defined]
    delete = object_delta.ACTION_DELETE  # type: ignore[attr-defined]
    set_ = attribute_delta.ACTION_SET  # type: ignore[attr-defined]
    od_manager = object_delta._default_manager.db_manager(using)
    ad_manager = attribute_delta._default_manager.db_manager(using)

    histories: dict[str, list[tuple[int, str, datetime.datetime, int]]] = {}
    for chunk in _chunks(content_ids):
        rows = (
            od_manager.filter(content_type=content_type, content_id__in=chunk)
            .order_by("pk")
            .values_list("content_id", "pk", "action", "created_at", "revision_id")
        )
        for content_id, pk, action, created_at, revision_id in rows:
            histories.setdefault(content_id, []).append(
                (pk, action, created_at, revision_id)
            )

    removed: list[int] = []  # object deltas to delete with their attributes
    baselines: dict[int, tuple[str, datetime.datetime, int]] = {}
    for content_id, deltas in histories.items():
        old = 0
        while old < len(deltas) and deltas[old][2] < cutoff:
            old += 1
        count = min(old, max(0, len(deltas) - keep_last))
        if count == 0:
            continue
        actions = [d[1] for d in deltas if d[1] != ERASE]
        if count == len(deltas) and (not actions or actions[-1] == delete):
            removed.extend(d[0] for d in deltas)
            result.erased_objects += 1
            result.objects += 1
            continue
        if count == 1 and deltas[0][1] == create:
            continue
        kept = deltas[count - 1]
        removed.extend(d[0] for d in deltas[:count])
        baselines[kept[0]] = (content_id, kept[2], kept[3])
        result.objects += 1

    # The state of each object at its baseline: the last value of each field.
    states: dict[int, dict[str, tuple[Any, ...]]] = {anchor: {} for anchor in baselines}
    anchor_of = {content_id: anchor for anchor, (content_id, _, _) in baselines.items()}
    for ids in _chunks(list(anchor_of)):
        rows = (
            ad_manager.filter(
                content_type=content_type,
                content_id__in=ids,
                parent__lte=max(anchor_of[c] for c in ids),
            )
            .order_by("parent", "pk")
            .values_list(
                "content_id",
                "parent",
                "field_name",
                "action",
                "old_value",
                "new_value",
                "actor_type",
                "actor_id",
                "description",
            )
        )
        for row in rows.iterator(chunk_size=2000):
            content_id, parent, name, action, old_value, new_value = row[:6]
            anchor = anchor_of[content_id]
            if parent > anchor:
                continue
            value = new_value if action == set_ else old_value
            states[anchor][name] = (value, row[6], row[7], row[8])

    revision_ids: set[int] = set()
    for pks in _chunks(removed):
        revision_ids.update(
            od_manager.filter(pk__in=pks).values_list("revision_id", flat=True)
        )
        deleted, _ = ad_manager.filter(parent__in=pks).delete()
        result.attribute_deltas += deleted
        gone = [pk for pk in pks if pk not in baselines]
        deleted, _ = od_manager.filter(pk__in=gone).delete()
        result.object_deltas += deleted

    fresh = []
    for anchor, (content_id, created_at, revision_id) in baselines.items():
        for name, (value, actor_type_id, actor_id, text) in states[anchor].items():
            fresh.append(
                attribute_delta(
                    revision_id=revision_id,
                    parent_id=anchor,
                    actor_type_id=actor_type_id,
                    actor_id=actor_id,
                    action=set_,
                    description=text,
                    content_type_id=content_type.pk,
                    content_id=content_id,
                    created_at=created_at,
                    field_name=name,
                    old_value=None,
                    new_value=value,
                )
            )
    ad_manager.bulk_create(fresh, batch_size=1000)
    result.attribute_deltas -= len(fresh)
    description = BASELINE_DESCRIPTION.format(cutoff=cutoff.isoformat())
    for pks in _chunks(list(baselines)):
        od_manager.filter(pk__in=pks).update(action=create, description=description)
    result.baselines += len(baselines)

    revision_model = get_revision_model()
    for pks in _chunks(sorted(revision_ids)):
        empty = (
            revision_model._default_manager.db_manager(using)
            .filter(pk__in=pks)
            .exclude(Exists(od_manager.filter(revision=OuterRef("pk"))))
            .exclude(Exists(ad_manager.filter(revision=OuterRef("pk"))))
        )
        deleted, _ = empty.delete()
        result.revisions += deleted
