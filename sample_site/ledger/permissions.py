"""Who may see and change what.

A member of an organization sees its accounts and transactions; owners and
members (not viewers) change them and may act on the organization's behalf.
Superusers may do everything.
"""

from __future__ import annotations

from typing import Any

from sample_site.ledger.models import Membership, Organization

__all__ = [
    "can_act_for_organization",
    "readable_organization_ids",
    "writable_organization_ids",
]


def _is_superuser(user: Any) -> bool:
    return bool(getattr(user, "is_superuser", False) and user.is_active)


def can_act_for_organization(user: Any, organization: Organization) -> bool:
    """``REVY_MW["CAN_ACT_FOR_ORGANIZATION"]``: may ``user`` act as ``organization``?"""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if _is_superuser(user):
        return True
    return Membership.objects.filter(
        user=user, organization=organization, role__in=Membership.WRITERS
    ).exists()


def readable_organization_ids(user: Any) -> set[int] | None:
    """Organizations whose ledger ``user`` may read; ``None`` means all."""
    if _is_superuser(user):
        return None
    return set(
        Membership.objects.filter(user=user).values_list("organization_id", flat=True)
    )


def writable_organization_ids(user: Any) -> set[int] | None:
    """Organizations whose ledger ``user`` may change; ``None`` means all."""
    if _is_superuser(user):
        return None
    return set(
        Membership.objects.filter(user=user, role__in=Membership.WRITERS).values_list(
            "organization_id", flat=True
        )
    )
