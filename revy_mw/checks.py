"""System checks of ``REVY_MW`` and of the middleware's place.

Each check has a stable ID and names the key it is about:

========== ==================================================================
ID         Problem
========== ==================================================================
E001       ``REVY_MW`` is not a dict
E002       ``REVY_MW`` has a key revy_mw does not know
E003       ``ACTOR_RESOLVERS`` is not a non-empty list of dotted paths
E004       an ``ACTOR_RESOLVERS`` entry cannot be imported
E005       an ``ACTOR_RESOLVERS`` entry is not an ``ActorResolver`` subclass
E006       ``COMMIT_MESSAGE_HEADER`` is not a valid header name
E007       ``ORGANIZATION_HEADER`` is not a valid header name, or is the
           commit message header
E008       ``COMMIT_MESSAGE_MAX_LENGTH`` is not a positive integer
E009       ``INVALID_COMMIT_MESSAGE`` is not ``"reject"`` or ``"repair"``
E010       ``ORGANIZATION_MODEL`` is not an installed model
E011       ``ORGANIZATION_LOOKUP_FIELD`` is not a unique field of it
E012       ``CAN_ACT_FOR_ORGANIZATION`` is not (a dotted path to) a callable
E013       ``SYSTEM_ACTOR`` is not (a dotted path to) a callable
E014       ``RevyMiddleware`` comes before ``AuthenticationMiddleware``
W001       ``OrganizationHeaderResolver`` is used, but ``ORGANIZATION_MODEL`` or
           ``CAN_ACT_FOR_ORGANIZATION`` is not set: the header is always refused
========== ==================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.core.exceptions import FieldDoesNotExist
from django.utils.module_loading import import_string

from revy_mw.conf import DEFAULTS, INVALID_COMMIT_MESSAGE_CHOICES
from revy_mw.headers import is_valid_header_name

__all__ = ["register"]


def _raw() -> Any:
    return getattr(settings, "REVY_MW", {})


def _options() -> Mapping[str, Any]:
    raw = _raw()
    return raw if isinstance(raw, Mapping) else {}


def _get(key: str) -> Any:
    return _options().get(key, DEFAULTS[key])


def check_settings_dict(**kwargs: Any) -> list[checks.CheckMessage]:
    raw = _raw()
    if not isinstance(raw, Mapping):
        return [
            checks.Error(
                f"REVY_MW must be a dict, not {type(raw).__name__}.",
                id="revy_mw.E001",
            )
        ]
    return [
        checks.Error(
            f"REVY_MW has the unknown key {key!r}.",
            hint=f"The keys are: {', '.join(DEFAULTS)}.",
            id="revy_mw.E002",
        )
        for key in raw
        if key not in DEFAULTS
    ]


def check_actor_resolvers(**kwargs: Any) -> list[checks.CheckMessage]:
    from revy_mw.resolvers import ActorResolver

    value = _get("ACTOR_RESOLVERS")
    if (
        isinstance(value, str)
        or not isinstance(value, list | tuple)
        or not value
        or not all(isinstance(item, str) for item in value)
    ):
        return [
            checks.Error(
                "REVY_MW['ACTOR_RESOLVERS'] must be a non-empty list of dotted "
                "paths to ActorResolver classes.",
                id="revy_mw.E003",
            )
        ]
    errors: list[checks.CheckMessage] = []
    for path in value:
        try:
            found = import_string(path)
        except ImportError as error:
            errors.append(
                checks.Error(
                    f"REVY_MW['ACTOR_RESOLVERS'] names {path!r}, which cannot be "
                    f"imported: {error}",
                    id="revy_mw.E004",
                )
            )
            continue
        if not (isinstance(found, type) and issubclass(found, ActorResolver)):
            errors.append(
                checks.Error(
                    f"REVY_MW['ACTOR_RESOLVERS'] names {path!r}, which is not a "
                    "subclass of revy_mw.resolvers.ActorResolver.",
                    id="revy_mw.E005",
                )
            )
    return errors


def check_headers(**kwargs: Any) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    hint = "Use letters, digits and single hyphens, e.g. 'X-Commit-Message'."
    commit = _get("COMMIT_MESSAGE_HEADER")
    if not is_valid_header_name(commit):
        errors.append(
            checks.Error(
                f"REVY_MW['COMMIT_MESSAGE_HEADER'] is {commit!r}, not a valid "
                "header name.",
                hint=hint,
                id="revy_mw.E006",
            )
        )
    organization = _get("ORGANIZATION_HEADER")
    if not is_valid_header_name(organization):
        errors.append(
            checks.Error(
                f"REVY_MW['ORGANIZATION_HEADER'] is {organization!r}, not a valid "
                "header name.",
                hint=hint,
                id="revy_mw.E007",
            )
        )
    elif isinstance(commit, str) and organization.lower() == commit.lower():
        errors.append(
            checks.Error(
                "REVY_MW['ORGANIZATION_HEADER'] is the same header as "
                "REVY_MW['COMMIT_MESSAGE_HEADER'].",
                id="revy_mw.E007",
            )
        )
    return errors


def check_commit_message(**kwargs: Any) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    length = _get("COMMIT_MESSAGE_MAX_LENGTH")
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        errors.append(
            checks.Error(
                f"REVY_MW['COMMIT_MESSAGE_MAX_LENGTH'] is {length!r}, not a "
                "positive integer.",
                id="revy_mw.E008",
            )
        )
    policy = _get("INVALID_COMMIT_MESSAGE")
    if policy not in INVALID_COMMIT_MESSAGE_CHOICES:
        errors.append(
            checks.Error(
                f"REVY_MW['INVALID_COMMIT_MESSAGE'] is {policy!r}; it must be "
                "'reject' or 'repair'.",
                id="revy_mw.E009",
            )
        )
    return errors


def check_organization(**kwargs: Any) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    label = _get("ORGANIZATION_MODEL")
    if label is not None:
        try:
            model = apps.get_model(label)
        except (LookupError, ValueError, TypeError, AttributeError):
            errors.append(
                checks.Error(
                    f"REVY_MW['ORGANIZATION_MODEL'] is {label!r}, which is not an "
                    "installed model.",
                    hint="Use 'app_label.ModelName' of a model of an installed app.",
                    id="revy_mw.E010",
                )
            )
        else:
            lookup = _get("ORGANIZATION_LOOKUP_FIELD")
            try:
                field: Any = (
                    model._meta.pk if lookup == "pk" else model._meta.get_field(lookup)
                )
            except (FieldDoesNotExist, TypeError):
                field = None
            if (
                field is None
                or not getattr(field, "concrete", False)
                or not (field.unique or field.primary_key)
            ):
                errors.append(
                    checks.Error(
                        f"REVY_MW['ORGANIZATION_LOOKUP_FIELD'] is {lookup!r}, which "
                        f"is not a unique field of {model._meta.label}.",
                        hint="Use 'pk' or the name of a unique field.",
                        id="revy_mw.E011",
                    )
                )
    errors += _callable_check("CAN_ACT_FOR_ORGANIZATION", "revy_mw.E012")
    errors += _callable_check("SYSTEM_ACTOR", "revy_mw.E013")
    if label is None or _get("CAN_ACT_FOR_ORGANIZATION") is None:
        resolvers = _get("ACTOR_RESOLVERS")
        if isinstance(resolvers, list | tuple) and any(
            _is_organization_resolver(path) for path in resolvers
        ):
            missing = (
                "ORGANIZATION_MODEL" if label is None else "CAN_ACT_FOR_ORGANIZATION"
            )
            errors.append(
                checks.Warning(
                    "REVY_MW['ACTOR_RESOLVERS'] uses OrganizationHeaderResolver but "
                    f"REVY_MW['{missing}'] is not set: every request that sends "
                    "the organization header is refused.",
                    hint="Set it, or remove OrganizationHeaderResolver.",
                    id="revy_mw.W001",
                )
            )
    return errors


def _is_organization_resolver(path: Any) -> bool:
    from revy_mw.resolvers import OrganizationHeaderResolver

    try:
        found = import_string(path) if isinstance(path, str) else path
    except ImportError:
        return False
    return isinstance(found, type) and issubclass(found, OrganizationHeaderResolver)


def _callable_check(key: str, error_id: str) -> list[checks.CheckMessage]:
    value = _get(key)
    if value is None:
        return []
    problem = ""
    if isinstance(value, str):
        try:
            value = import_string(value)
        except ImportError as error:
            problem = f"cannot be imported: {error}"
    if not problem and not callable(value):
        problem = "is not callable"
    if not problem:
        return []
    return [
        checks.Error(
            f"REVY_MW['{key}'] {problem}.",
            hint="Use a dotted path to a function, or the function itself.",
            id=error_id,
        )
    ]


def check_middleware_order(**kwargs: Any) -> list[checks.CheckMessage]:
    from django.contrib.auth.middleware import AuthenticationMiddleware

    from revy_mw.middleware import RevyMiddleware

    revy = auth = None
    for index, path in enumerate(getattr(settings, "MIDDLEWARE", None) or ()):
        try:
            found = import_string(path)
        except ImportError:
            continue
        if not isinstance(found, type):
            continue
        if revy is None and issubclass(found, RevyMiddleware):
            revy = index
        if auth is None and issubclass(found, AuthenticationMiddleware):
            auth = index
    if revy is not None and auth is not None and revy < auth:
        return [
            checks.Error(
                "MIDDLEWARE lists revy_mw.RevyMiddleware before "
                "AuthenticationMiddleware; the user would not be known.",
                hint="Move 'revy_mw.RevyMiddleware' after "
                "'django.contrib.auth.middleware.AuthenticationMiddleware'.",
                id="revy_mw.E014",
            )
        ]
    return []


def register() -> None:
    for check in (
        check_settings_dict,
        check_actor_resolvers,
        check_headers,
        check_commit_message,
        check_organization,
        check_middleware_order,
    ):
        checks.register(check)
