"""System checks of revy_core's settings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core import checks

__all__ = ["register"]

_MODEL_SETTINGS = (
    "REVY_REVISION_MODEL",
    "REVY_OBJECT_DELTA_MODEL",
    "REVY_ATTRIBUTE_DELTA_MODEL",
)


def _is_label(value: Any) -> bool:
    return isinstance(value, str) and value.count(".") <= 1 and bool(value)


def check_history_models(**kwargs: Any) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    for name in _MODEL_SETTINGS:
        value = getattr(settings, name, None)
        if value is None:
            continue
        try:
            if not isinstance(value, str):
                raise TypeError(value)
            apps.get_model(value)
        except (LookupError, ValueError, TypeError):
            errors.append(
                checks.Error(
                    f"{name} refers to {value!r}, which is not an installed model.",
                    hint="Use 'app_label.ModelName' of a model of an installed app.",
                    id="revy.E001",
                )
            )
    return errors


def _labels(name: str, value: Any, error_id: str) -> list[checks.CheckMessage]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Sequence | set | frozenset):
        return [
            checks.Error(
                f"{name} must be a list of 'app_label' or 'app_label.Model' strings.",
                id=error_id,
            )
        ]
    errors: list[checks.CheckMessage] = []
    for label in value:
        if not _is_label(label):
            errors.append(
                checks.Error(f"{name} holds {label!r}, not a model label.", id=error_id)
            )
            continue
        found = (
            apps.is_installed(label)
            or any(c.label == label for c in apps.get_app_configs())
            if "." not in label
            else _model_exists(label)
        )
        if not found:
            errors.append(
                checks.Error(
                    f"{name} names {label!r}, which is not an installed app or model.",
                    id=error_id,
                )
            )
    return errors


def _model_exists(label: str) -> bool:
    try:
        apps.get_model(label)
    except (LookupError, ValueError):
        return False
    return True


def check_model_lists(**kwargs: Any) -> list[checks.CheckMessage]:
    return _labels(
        "REVY_MODELS", getattr(settings, "REVY_MODELS", None), "revy.E002"
    ) + _labels(
        "REVY_EXCLUDE_MODELS",
        getattr(settings, "REVY_EXCLUDE_MODELS", None),
        "revy.E003",
    )


def _field_map(name: str, error_id: str) -> list[checks.CheckMessage]:
    value = getattr(settings, name, None)
    if value is None:
        return []
    if not isinstance(value, dict):
        return [
            checks.Error(
                f"{name} must be a dict of 'app_label.Model' to a list of field names.",
                id=error_id,
            )
        ]
    errors: list[checks.CheckMessage] = []
    for label, names in value.items():
        try:
            model = apps.get_model(label)
        except (LookupError, ValueError, TypeError):
            errors.append(
                checks.Error(
                    f"{name} names {label!r}, which is not an installed model.",
                    id=error_id,
                )
            )
            continue
        known = {f.name for f in model._meta.concrete_fields} | {
            f.attname for f in model._meta.concrete_fields
        }
        if isinstance(names, str):
            names = [names]
        for field_name in names:
            if field_name not in known:
                errors.append(
                    checks.Error(
                        f"{name}[{label!r}] names {field_name!r}, which is not a "
                        f"concrete field of {model._meta.label}.",
                        id=error_id,
                    )
                )
    return errors


def check_field_settings(**kwargs: Any) -> list[checks.CheckMessage]:
    return _field_map("REVY_EXCLUDE_FIELDS", "revy.E004") + _field_map(
        "REVY_MASKED_FIELDS", "revy.E005"
    )


def register() -> None:
    from revy_core.retention import check_retention

    checks.register(check_history_models)
    checks.register(check_retention)
    checks.register(check_model_lists)
    checks.register(check_field_settings)
