"""System checks of revy_core's settings: one test per check ID."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import checks
from django.test import override_settings

from revy_core.checks import (
    check_field_settings,
    check_history_models,
    check_model_lists,
)


def ids(messages: list[checks.CheckMessage]) -> list[str | None]:
    return [message.id for message in messages]


def run() -> list[checks.CheckMessage]:
    """Every registered check, as ``manage.py check`` runs them."""
    return [m for m in checks.run_checks() if (m.id or "").startswith("revy.")]


def test_default_settings_pass():
    assert run() == []


# revy.E001 -------------------------------------------------------------------


@pytest.mark.parametrize(
    "setting",
    ["REVY_REVISION_MODEL", "REVY_OBJECT_DELTA_MODEL", "REVY_ATTRIBUTE_DELTA_MODEL"],
)
@pytest.mark.parametrize("value", ["nope.Revision", "revy.Missing", "no_dot", 42])
def test_e001_history_model_is_not_an_installed_model(setting, value):
    with override_settings(**{setting: value}):
        messages = check_history_models()
        assert ids(messages) == ["revy.E001"]
        assert setting in messages[0].msg
        assert repr(value) in messages[0].msg
        if isinstance(value, str):
            # (Django's own swappable machinery cannot take a non-string.)
            assert ids(run()) == ["revy.E001"]


def test_e001_passes_for_installed_models():
    with override_settings(
        REVY_REVISION_MODEL="revy.Revision",
        REVY_OBJECT_DELTA_MODEL="revy.ObjectDelta",
        REVY_ATTRIBUTE_DELTA_MODEL="revy.AttributeDelta",
    ):
        assert check_history_models() == []


# revy.E002 and revy.E003 -------------------------------------------------------

LIST_CHECKS = [("REVY_MODELS", "revy.E002"), ("REVY_EXCLUDE_MODELS", "revy.E003")]


@pytest.mark.parametrize(("setting", "error_id"), LIST_CHECKS)
@pytest.mark.parametrize(
    ("value", "count"),
    [
        ("testapp", 1),  # a string, not a list
        (42, 1),
        (["nope"], 1),
        (["testapp.Nope"], 1),
        (["a.b.c"], 1),
        ([""], 1),
        ([42, "testapp"], 1),
        (["nope", "testapp.nope"], 2),
    ],
)
def test_model_lists_name_unknown_or_malformed_labels(setting, error_id, value, count):
    with override_settings(**{setting: value}):
        messages = check_model_lists()
        assert ids(messages) == [error_id] * count
        assert all(setting in m.msg for m in messages)
        assert ids(run()) == [error_id] * count


@pytest.mark.parametrize(("setting", "error_id"), LIST_CHECKS)
@pytest.mark.parametrize(
    "value",
    [
        [],
        ["testapp"],
        ["testapp.account", "auth.User"],
        ("testapp.Everything",),
        {"auth"},
        None,
    ],
)
def test_model_lists_accept_app_and_model_labels(setting, error_id, value):
    with override_settings(**{setting: value}):
        assert check_model_lists() == []


# revy.E004 and revy.E005 -------------------------------------------------------

FIELD_CHECKS = [
    ("REVY_EXCLUDE_FIELDS", "revy.E004"),
    ("REVY_MASKED_FIELDS", "revy.E005"),
]


@pytest.mark.parametrize(("setting", "error_id"), FIELD_CHECKS)
@pytest.mark.parametrize(
    ("value", "count"),
    [
        (["testapp.profile"], 1),  # not a dict
        ("testapp.profile", 1),
        ({"testapp.nope": ["x"]}, 1),
        ({"nope": ["x"]}, 1),
        ({"testapp.profile": ["nope"]}, 1),
        ({"testapp.profile": "nope"}, 1),
        ({"testapp.profile": ["bio", "nope", "other"]}, 2),
        ({"testapp.account": ["transactions"]}, 1),  # a reverse relation
    ],
)
def test_field_maps_name_unknown_models_or_fields(setting, error_id, value, count):
    with override_settings(**{setting: value}):
        messages = check_field_settings()
        assert ids(messages) == [error_id] * count
        assert all(setting in m.msg for m in messages)
        assert ids(run()) == [error_id] * count


@pytest.mark.parametrize(("setting", "error_id"), FIELD_CHECKS)
@pytest.mark.parametrize(
    "value",
    [
        {},
        {"testapp.profile": ["secret"]},
        {"testapp.Profile": ["user", "user_id"]},
        {"auth.user": "email"},
        None,
    ],
)
def test_field_maps_accept_concrete_fields(setting, error_id, value):
    with override_settings(**{setting: value}):
        assert check_field_settings() == []


def test_every_check_id_is_tested():
    import inspect

    from revy_core import checks as module

    source = inspect.getsource(module)
    found = {f"revy.E00{i}" for i in range(10) if f'"revy.E00{i}"' in source}
    tested: set[Any] = {"revy.E001"} | {e for _, e in LIST_CHECKS + FIELD_CHECKS}
    assert found == tested
