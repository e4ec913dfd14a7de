"""Models the middleware tests need beside tests.testapp."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Membership(models.Model):
    """A user may act for the organizations they are a member of."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    organization = models.ForeignKey("testapp.Organization", on_delete=models.CASCADE)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "organization"], name="mwapp_membership_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.organization_id}"


class ApiToken(models.Model):
    """A bearer token for the django-ninja endpoints."""

    key = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)

    def __str__(self) -> str:
        return self.key


class Team(models.Model):
    """An organization model looked up by a unique slug."""

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.slug
