"""Settings of revy_core, read lazily so ``override_settings`` just works.

=============================  ===============================================
Setting                        Meaning
=============================  ===============================================
``REVY_REVISION_MODEL``        swap in your own revision model
``REVY_OBJECT_DELTA_MODEL``    swap in your own object delta model
``REVY_ATTRIBUTE_DELTA_MODEL`` swap in your own attribute delta model
``REVY_MODELS``                labels of the only models to track (``None``:
                               every installed model but the never-tracked)
``REVY_EXCLUDE_MODELS``        labels of models not to track
``REVY_EXCLUDE_FIELDS``        ``{"app.Model": ["field", ...]}`` never recorded
``REVY_MASKED_FIELDS``         ``{"app.Model": ["field", ...]}`` recorded as
                               changed, with the value replaced by the mask
``REVY_MASK``                  the stored stand-in for masked values
=============================  ===============================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.conf import settings
from django.core.signals import setting_changed

if TYPE_CHECKING:
    from django.db.models import Model

__all__ = [
    "ALWAYS_EXCLUDED_APPS",
    "ALWAYS_EXCLUDED_MODELS",
    "DEFAULT_MASK",
    "get_attribute_delta_model",
    "get_object_delta_model",
    "get_revision_model",
    "revy_settings",
]

DEFAULT_REVISION_MODEL = "revy.Revision"
DEFAULT_OBJECT_DELTA_MODEL = "revy.ObjectDelta"
DEFAULT_ATTRIBUTE_DELTA_MODEL = "revy.AttributeDelta"
DEFAULT_MASK = "[masked]"

#: Apps whose models are never tracked: bookkeeping, not data.
ALWAYS_EXCLUDED_APPS = frozenset({"revy", "contenttypes", "sessions", "admin"})
#: Models never tracked, wherever they come from.
ALWAYS_EXCLUDED_MODELS = frozenset({"auth.permission", "migrations.migration"})
#: Fields masked on every model that has them (password hashes).
ALWAYS_MASKED_FIELDS: Mapping[str, Sequence[str]] = {}


class Settings:
    """Typed, lazy view of the ``REVY_*`` settings; follows override_settings."""

    @property
    def revision_model(self) -> str:
        return str(getattr(settings, "REVY_REVISION_MODEL", DEFAULT_REVISION_MODEL))

    @property
    def object_delta_model(self) -> str:
        return str(
            getattr(settings, "REVY_OBJECT_DELTA_MODEL", DEFAULT_OBJECT_DELTA_MODEL)
        )

    @property
    def attribute_delta_model(self) -> str:
        return str(
            getattr(
                settings, "REVY_ATTRIBUTE_DELTA_MODEL", DEFAULT_ATTRIBUTE_DELTA_MODEL
            )
        )

    @property
    def models(self) -> Sequence[str] | None:
        value = getattr(settings, "REVY_MODELS", None)
        return None if value is None else list(value)

    @property
    def exclude_models(self) -> Sequence[str]:
        return list(getattr(settings, "REVY_EXCLUDE_MODELS", ()))

    @property
    def exclude_fields(self) -> Mapping[str, Sequence[str]]:
        return dict(getattr(settings, "REVY_EXCLUDE_FIELDS", {}))

    @property
    def masked_fields(self) -> Mapping[str, Sequence[str]]:
        return dict(getattr(settings, "REVY_MASKED_FIELDS", {}))

    @property
    def mask(self) -> Any:
        return getattr(settings, "REVY_MASK", DEFAULT_MASK)


revy_settings = Settings()


# The history models, by setting name, as every write looks them up: a
# missing setting costs ``getattr`` an exception each time. Forgotten when
# a REVY_ setting changes (``override_settings`` says so).
_history_models: dict[str, type[Model]] = {}


def _history_model(setting: str) -> type[Model]:
    model = _history_models.get(setting)
    if model is None:
        label = getattr(revy_settings, setting)
        model = apps.get_model(label, require_ready=False)
        # Kept once the registry is complete.
        if apps.models_ready:
            _history_models[setting] = model
    return model


def _forget(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("REVY_"):
        _history_models.clear()


setting_changed.connect(_forget, dispatch_uid="revy_core.conf")


def get_revision_model() -> type[Model]:
    return _history_model("revision_model")


def get_object_delta_model() -> type[Model]:
    return _history_model("object_delta_model")


def get_attribute_delta_model() -> type[Model]:
    return _history_model("attribute_delta_model")
