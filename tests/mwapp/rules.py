"""The CAN_ACT_FOR_ORGANIZATION rule of the test settings."""

from __future__ import annotations

from typing import Any


def can_act_for_organization(user: Any, organization: Any) -> bool:
    """Members may act for their organization."""
    from tests.mwapp.models import Membership

    return Membership.objects.filter(user=user, organization=organization).exists()


async def acan_act_for_team(user: Any, team: Any) -> bool:
    """An async rule: a team's slug starting with the username."""
    return bool(team.slug.startswith(user.get_username()))


def system_actor() -> Any:
    """The system actor used by the SYSTEM_ACTOR tests."""
    from tests.testapp.models import Organization

    return Organization.objects.get_or_create(name="system")[0]
