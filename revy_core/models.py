"""History models, the deletion handlers and the snapshot expression.

``Revision`` groups deltas. ``ObjectDelta`` records that one instance was
created, updated or deleted; each holds ``AttributeDelta`` rows, one per
field, with the old and the new value. Every delta carries its actor (any
model instance, through a generic foreign key; ``NULL`` is the system) and a
description. Each model has an abstract base, so a project can swap in its
own model with ``REVY_REVISION_MODEL``, ``REVY_OBJECT_DELTA_MODEL`` and
``REVY_ATTRIBUTE_DELTA_MODEL``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal, overload

from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone

from revy_core.conf import revy_settings
from revy_core.deletion import CASCADE, SET, SET_DEFAULT, SET_NULL
from revy_core.snapshot import ObjectSnapshot

if TYPE_CHECKING:
    from revy_core.revert import RevertResult

__all__ = [
    "CASCADE",
    "SET",
    "SET_DEFAULT",
    "SET_NULL",
    "AbstractAttributeDelta",
    "AbstractObjectDelta",
    "AbstractRevision",
    "AttributeDelta",
    "ObjectDelta",
    "ObjectSnapshot",
    "Revision",
]


class AbstractRevision(models.Model):
    """A group of deltas made together, by one or more actors."""

    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.description or f"Revision {self.pk}"

    def revert(self, **kwargs: Any) -> RevertResult:
        """Undo this revision's changes as a new revision (``revy_core.revert``)."""
        from revy_core.revert import revert

        return revert(self, **kwargs)

    async def arevert(self, **kwargs: Any) -> RevertResult:
        """``revert`` for async code."""
        from revy_core.revert import arevert

        return await arevert(self, **kwargs)


@overload
def _type_reference(
    *, null: Literal[True], db_index: bool = ...
) -> models.ForeignKey[ContentType | None, ContentType | None]: ...


@overload
def _type_reference(
    *, null: Literal[False], db_index: bool = ...
) -> models.ForeignKey[ContentType, ContentType]: ...


def _type_reference(*, null: bool, db_index: bool = True) -> Any:
    """The content type half of a generic reference (an actor, a content).

    Like the id half beside it, it carries no database constraint: every
    delta would pay a foreign key check at commit, for content types that
    are never deleted while history refers to them (``PROTECT`` still stops
    deleting one through Django).
    """
    return models.ForeignKey(
        ContentType,
        on_delete=models.PROTECT,
        null=null,
        blank=null,
        related_name="+",
        db_constraint=False,
        db_index=db_index,
    )


class AbstractDelta(models.Model):
    """What object and attribute deltas share: who, what, when, why."""

    actor_type = _type_reference(null=True)
    actor_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    actor = GenericForeignKey("actor_type", "actor_id")
    action = models.CharField(max_length=16)
    description = models.TextField(blank=True, default="")
    content_type = _type_reference(null=False)
    content_id = models.CharField(max_length=255)
    content = GenericForeignKey("content_type", "content_id")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True


class AbstractObjectDelta(AbstractDelta):
    """The creation, update or deletion of one instance."""

    ACTION_CREATE = "create"
    ACTION_UPDATE = "update"
    ACTION_DELETE = "delete"
    ACTIONS: ClassVar[list[tuple[str, str]]] = [
        (ACTION_CREATE, "create"),
        (ACTION_UPDATE, "update"),
        (ACTION_DELETE, "delete"),
    ]

    revision = models.ForeignKey(
        revy_settings.revision_model,
        on_delete=models.CASCADE,
        related_name="object_deltas",
    )

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.action} {self.content_type_id}:{self.content_id}"


class AbstractAttributeDelta(AbstractDelta):
    """One field of one instance: its old value and its new value."""

    ACTION_SET = "set"
    ACTION_UNSET = "unset"
    ACTIONS: ClassVar[list[tuple[str, str]]] = [
        (ACTION_SET, "set"),
        (ACTION_UNSET, "unset"),
    ]

    # Always its parent's revision, which the database checks through the
    # parent: a constraint here would check the same row again at commit,
    # once per attribute delta.
    revision = models.ForeignKey(
        revy_settings.revision_model,
        on_delete=models.CASCADE,
        related_name="attribute_deltas",
        db_constraint=False,
    )
    parent = models.ForeignKey(
        revy_settings.object_delta_model,
        on_delete=models.CASCADE,
        related_name="attribute_deltas",
    )
    field_name = models.CharField(max_length=255)
    old_value = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    new_value = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.field_name}: {self.old_value!r} -> {self.new_value!r}"


class Revision(AbstractRevision):
    class Meta(AbstractRevision.Meta):
        swappable = "REVY_REVISION_MODEL"
        db_table = "revy_revision"


# The concrete models index a generic reference with its id (the indexes in
# Meta), which also serves every lookup by content type alone.


class ObjectDelta(AbstractObjectDelta):
    actor_type = _type_reference(null=True, db_index=False)
    content_type = _type_reference(null=False, db_index=False)

    class Meta(AbstractObjectDelta.Meta):
        swappable = "REVY_OBJECT_DELTA_MODEL"
        db_table = "revy_object_delta"
        indexes = [
            models.Index(
                fields=["content_type", "content_id", "id"],
                name="revy_od_content_idx",
            ),
            models.Index(fields=["actor_type", "actor_id"], name="revy_od_actor_idx"),
        ]


class AttributeDelta(AbstractAttributeDelta):
    actor_type = _type_reference(null=True, db_index=False)
    content_type = _type_reference(null=False, db_index=False)

    class Meta(AbstractAttributeDelta.Meta):
        swappable = "REVY_ATTRIBUTE_DELTA_MODEL"
        db_table = "revy_attribute_delta"
        indexes = [
            # Ends with the primary key, as SQLite and InnoDB indexes do
            # implicitly: read backwards, it gives a field's newest value at
            # or before an object delta without sorting its history.
            models.Index(
                fields=["content_type", "content_id", "field_name", "parent", "id"],
                name="revy_ad_content_idx",
            ),
            models.Index(fields=["actor_type", "actor_id"], name="revy_ad_actor_idx"),
        ]
