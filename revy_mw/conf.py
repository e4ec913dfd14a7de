"""Settings of revy_mw: one ``REVY_MW`` dict, read lazily.

Nothing here writes to ``django.conf.settings``: a key that is missing from
``REVY_MW`` reads as its default, and ``override_settings`` is followed
because every read goes back to ``settings.REVY_MW``. The few values the
middleware needs on every request are gathered once in :func:`get_config`,
whose cache is cleared when ``REVY_MW`` changes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

__all__ = [
    "DEFAULTS",
    "DEFAULT_ACTOR_RESOLVERS",
    "INVALID_COMMIT_MESSAGE_CHOICES",
    "Config",
    "Settings",
    "get_config",
    "meta_key",
    "mw_settings",
]

DEFAULT_ACTOR_RESOLVERS: tuple[str, ...] = (
    "revy_mw.resolvers.OrganizationHeaderResolver",
    "revy_mw.resolvers.UserResolver",
    "revy_mw.resolvers.SystemResolver",
)

#: What to do with a commit message that is undecodable, holds control
#: characters or is too long: answer 400, or store a repaired copy.
INVALID_COMMIT_MESSAGE_CHOICES = ("reject", "repair")

DEFAULTS: Mapping[str, Any] = {
    "ACTOR_RESOLVERS": DEFAULT_ACTOR_RESOLVERS,
    "COMMIT_MESSAGE_HEADER": "X-Commit-Message",
    "COMMIT_MESSAGE_MAX_LENGTH": 1000,
    "INVALID_COMMIT_MESSAGE": "reject",
    "ORGANIZATION_HEADER": "X-Perform-As-Organization",
    "ORGANIZATION_MODEL": None,
    "ORGANIZATION_LOOKUP_FIELD": "pk",
    "CAN_ACT_FOR_ORGANIZATION": None,
    "SYSTEM_ACTOR": None,
}


def meta_key(header: str) -> str:
    """The ``request.META`` key of an HTTP header (``X-A`` -> ``HTTP_X_A``)."""
    return "HTTP_" + header.upper().replace("-", "_")


def _callable(value: Any) -> Callable[..., Any] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = import_string(value)
    if not callable(value):
        raise TypeError(f"{value!r} is not callable.")
    return value  # type: ignore[no-any-return]


class Settings:
    """Typed, lazy view of ``REVY_MW``; follows override_settings."""

    def _raw(self) -> Mapping[str, Any]:
        value = getattr(settings, "REVY_MW", None)
        return value if isinstance(value, Mapping) else {}

    def _get(self, key: str) -> Any:
        return self._raw().get(key, DEFAULTS[key])

    @property
    def actor_resolvers(self) -> Sequence[str]:
        return list(self._get("ACTOR_RESOLVERS"))

    @property
    def commit_message_header(self) -> str:
        return str(self._get("COMMIT_MESSAGE_HEADER"))

    @property
    def commit_message_max_length(self) -> int:
        return int(self._get("COMMIT_MESSAGE_MAX_LENGTH"))

    @property
    def invalid_commit_message(self) -> str:
        return str(self._get("INVALID_COMMIT_MESSAGE"))

    @property
    def organization_header(self) -> str:
        return str(self._get("ORGANIZATION_HEADER"))

    @property
    def organization_model(self) -> str | None:
        value = self._get("ORGANIZATION_MODEL")
        return None if value is None else str(value)

    @property
    def organization_lookup_field(self) -> str:
        return str(self._get("ORGANIZATION_LOOKUP_FIELD"))

    @property
    def can_act_for_organization(self) -> Callable[..., Any] | None:
        """The ``(user, organization) -> bool`` callable, imported."""
        return _callable(self._get("CAN_ACT_FOR_ORGANIZATION"))

    @property
    def system_actor(self) -> Callable[[], Any] | None:
        """The zero-argument callable returning the system actor, imported."""
        return _callable(self._get("SYSTEM_ACTOR"))


mw_settings = Settings()


@dataclass(frozen=True)
class Config:
    """What the middleware reads on every request, computed once."""

    commit_message_header: str
    commit_message_key: str
    commit_message_max_length: int
    repair_commit_message: bool


@functools.cache
def get_config() -> Config:
    return Config(
        commit_message_header=mw_settings.commit_message_header,
        commit_message_key=meta_key(mw_settings.commit_message_header),
        commit_message_max_length=mw_settings.commit_message_max_length,
        repair_commit_message=mw_settings.invalid_commit_message == "repair",
    )


def _reset(*, setting: str, **kwargs: Any) -> None:
    if setting == "REVY_MW":
        get_config.cache_clear()


setting_changed.connect(_reset, dispatch_uid="revy_mw.conf.reset")
