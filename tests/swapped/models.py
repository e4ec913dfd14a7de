"""A project's own history models, swapped in through the REVY_*_MODEL settings."""

from __future__ import annotations

from typing import ClassVar

from django.db import models

from revy_core.models import (
    AbstractAttributeDelta,
    AbstractObjectDelta,
    AbstractRevision,
)


class CustomRevision(AbstractRevision):
    request_id = models.CharField(max_length=64, blank=True, default="")

    objects: ClassVar[models.Manager[CustomRevision]] = models.Manager()

    class Meta(AbstractRevision.Meta):
        db_table = "custom_revision"


class CustomObjectDelta(AbstractObjectDelta):
    objects: ClassVar[models.Manager[CustomObjectDelta]] = models.Manager()

    class Meta(AbstractObjectDelta.Meta):
        db_table = "custom_object_delta"


class CustomAttributeDelta(AbstractAttributeDelta):
    objects: ClassVar[models.Manager[CustomAttributeDelta]] = models.Manager()

    class Meta(AbstractAttributeDelta.Meta):
        db_table = "custom_attribute_delta"
