"""The ledger's models.

Every model here is tracked by revy. Foreign keys use revy's deletion
handlers, so what a deletion causes is recorded too: deleting an account
deletes its transactions (``CASCADE``, credited to the system), and deleting
a user who manages an account leaves the account without a manager
(``SET_NULL``, recorded as a change of the account).
"""

from __future__ import annotations

import hashlib
import secrets
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.validators import MinLengthValidator
from django.db import models
from django.utils import timezone

from revy_core.models import CASCADE, SET_NULL

__all__ = ["Account", "ApiToken", "Membership", "Organization", "Transaction"]

CENT = Decimal("0.01")


class Organization(models.Model):
    """A company or team that owns accounts and can act on its own."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(
        unique=True,
        help_text="Names the organization in the X-Perform-As-Organization header.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A user's role in an organization."""

    ROLE_OWNER = "owner"
    ROLE_MEMBER = "member"
    ROLE_VIEWER = "viewer"
    ROLES = [
        (ROLE_OWNER, "Owner"),
        (ROLE_MEMBER, "Member"),
        (ROLE_VIEWER, "Viewer (read only)"),
    ]
    #: Roles that may write, and act on behalf of the organization.
    WRITERS = (ROLE_OWNER, ROLE_MEMBER)

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=CASCADE, related_name="memberships"
    )
    organization = models.ForeignKey(
        Organization, on_delete=CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=ROLES, default=ROLE_MEMBER)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "organization"], name="ledger_one_membership"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"


class Account(models.Model):
    """A ledger account of an organization; its balance is kept by the system."""

    organization = models.ForeignKey(
        Organization, on_delete=CASCADE, related_name="accounts"
    )
    name = models.CharField(max_length=100)
    currency = models.CharField(
        max_length=3, default="EUR", validators=[MinLengthValidator(3)]
    )
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=SET_NULL,
        null=True,
        blank=True,
        related_name="managed_accounts",
    )
    balance = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        default=Decimal("0.00"),
        help_text="Sum of the local amounts of its transactions, kept by the system.",
    )

    class Meta:
        ordering = ["organization", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.organization})"


class Transaction(models.Model):
    """A booking on an account, possibly in a foreign currency.

    ``local_amount`` is ``amount times exchange_rate`` in the account's currency.
    Clients may send it; the system corrects it when it is missing or wrong.
    """

    account = models.ForeignKey(Account, on_delete=CASCADE, related_name="transactions")
    description = models.CharField(max_length=200)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3, validators=[MinLengthValidator(3)])
    exchange_rate = models.DecimalField(
        max_digits=12, decimal_places=6, default=Decimal("1")
    )
    local_amount = models.DecimalField(
        max_digits=14, decimal_places=2, default=Decimal("0.00")
    )
    booked_on = models.DateField(default=timezone.localdate)

    class Meta:
        ordering = ["booked_on", "pk"]

    def __str__(self) -> str:
        return f"{self.description}: {self.amount} {self.currency}"

    def expected_local_amount(self) -> Decimal:
        return (Decimal(self.amount) * Decimal(self.exchange_rate)).quantize(CENT)


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiTokenManager(models.Manager["ApiToken"]):
    def issue(self, user: Any, name: str, raw: str | None = None) -> str:
        """Create a token for ``user`` and return its secret (shown once)."""
        raw = raw or secrets.token_urlsafe(32)
        self.create(user=user, name=name, digest=_digest(raw))
        return raw

    def for_secret(self, raw: str) -> ApiToken | None:
        return self.select_related("user").filter(digest=_digest(raw)).first()

    async def afor_secret(self, raw: str) -> ApiToken | None:
        return await self.select_related("user").filter(digest=_digest(raw)).afirst()


class ApiToken(models.Model):
    """A bearer token for the API. Only its SHA-256 digest is stored."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = ApiTokenManager()

    def __str__(self) -> str:
        return f"{self.name} ({self.user})"
