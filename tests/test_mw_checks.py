"""System checks of REVY_MW: one test per check ID."""

from __future__ import annotations

import pytest
from django.core import checks
from django.test import override_settings

from revy_mw import checks as mw_checks

AUTH = "django.contrib.auth.middleware.AuthenticationMiddleware"
SESSION = "django.contrib.sessions.middleware.SessionMiddleware"


def run_checks() -> list[checks.CheckMessage]:
    found: list[checks.CheckMessage] = []
    for check in (
        mw_checks.check_settings_dict,
        mw_checks.check_actor_resolvers,
        mw_checks.check_headers,
        mw_checks.check_commit_message,
        mw_checks.check_organization,
        mw_checks.check_middleware_order,
    ):
        found += check()
    return found


def ids(**revy_mw) -> list[str]:
    with override_settings(REVY_MW=revy_mw):
        return [str(message.id) for message in run_checks()]


def test_the_test_settings_pass():
    assert run_checks() == []


def test_checks_are_registered():
    registered: list[object] = list(checks.registry.registry.get_checks())
    assert mw_checks.check_settings_dict in registered
    assert mw_checks.check_middleware_order in registered


def test_defaults_pass_with_a_warning_about_organizations():
    assert ids() == ["revy_mw.W001"]


def test_e001_not_a_dict():
    with override_settings(REVY_MW=["ACTOR_RESOLVERS"]):
        messages = run_checks()
    assert "revy_mw.E001" in [m.id for m in messages]
    assert "REVY_MW" in messages[0].msg


def test_e002_unknown_key():
    with override_settings(REVY_MW={"ORGANISATION_MODEL": "testapp.Organization"}):
        messages = [m for m in run_checks() if m.id == "revy_mw.E002"]
    assert len(messages) == 1
    assert "ORGANISATION_MODEL" in messages[0].msg


@pytest.mark.parametrize(
    "value", ["revy_mw.resolvers.UserResolver", [], [3], None, {"a": 1}]
)
def test_e003_resolvers_not_a_list_of_paths(value):
    assert "revy_mw.E003" in ids(ACTOR_RESOLVERS=value)


def test_e004_resolver_not_importable():
    with override_settings(REVY_MW={"ACTOR_RESOLVERS": ["revy_mw.resolvers.Nope"]}):
        messages = [m for m in run_checks() if m.id == "revy_mw.E004"]
    assert len(messages) == 1
    assert "ACTOR_RESOLVERS" in messages[0].msg
    assert "revy_mw.resolvers.Nope" in messages[0].msg


@pytest.mark.parametrize(
    "path", ["revy_mw.resolvers.resolve_actor", "revy_mw.middleware.RevyMiddleware"]
)
def test_e005_resolver_of_the_wrong_type(path):
    assert "revy_mw.E005" in ids(ACTOR_RESOLVERS=[path])


@pytest.mark.parametrize("name", ["X_Commit", "X Commit", "", 5])
def test_e006_bad_commit_message_header(name):
    assert "revy_mw.E006" in ids(COMMIT_MESSAGE_HEADER=name)


@pytest.mark.parametrize("name", ["X_Org", "x-commit-message"])
def test_e007_bad_organization_header(name):
    assert "revy_mw.E007" in ids(ORGANIZATION_HEADER=name)


@pytest.mark.parametrize("value", [0, -1, "100", 1.5, True])
def test_e008_bad_max_length(value):
    assert "revy_mw.E008" in ids(COMMIT_MESSAGE_MAX_LENGTH=value)


def test_e009_bad_policy():
    assert "revy_mw.E009" in ids(INVALID_COMMIT_MESSAGE="truncate")


@pytest.mark.parametrize("label", ["testapp.Nope", "nope.Organization", "Organization"])
def test_e010_organization_model_not_installed(label):
    assert "revy_mw.E010" in ids(ORGANIZATION_MODEL=label)


@pytest.mark.parametrize(
    ("model", "field", "error"),
    [
        ("testapp.Organization", "pk", False),
        ("testapp.Organization", "id", False),
        ("testapp.Organization", "name", True),
        ("testapp.Organization", "nope", True),
        ("testapp.Organization", "account", True),
        ("mwapp.Team", "slug", False),
    ],
)
def test_e011_lookup_field(model, field, error):
    found = ids(ORGANIZATION_MODEL=model, ORGANIZATION_LOOKUP_FIELD=field)
    assert ("revy_mw.E011" in found) is error


@pytest.mark.parametrize("value", ["tests.mwapp.rules.nope", "tests.mwapp", 42])
def test_e012_can_act_not_callable(value):
    found = ids(
        ORGANIZATION_MODEL="testapp.Organization", CAN_ACT_FOR_ORGANIZATION=value
    )
    assert "revy_mw.E012" in found


def test_e012_accepts_a_callable_object():
    from tests.mwapp.rules import can_act_for_organization

    found = ids(
        ORGANIZATION_MODEL="testapp.Organization",
        CAN_ACT_FOR_ORGANIZATION=can_act_for_organization,
    )
    assert found == []


@pytest.mark.parametrize("value", ["tests.mwapp.rules.nope", 42])
def test_e013_system_actor_not_callable(value):
    assert "revy_mw.E013" in ids(SYSTEM_ACTOR=value)


def test_e014_middleware_before_authentication():
    with override_settings(MIDDLEWARE=[SESSION, "revy_mw.RevyMiddleware", AUTH]):
        messages = [m for m in run_checks() if m.id == "revy_mw.E014"]
    assert len(messages) == 1
    assert "AuthenticationMiddleware" in messages[0].msg
    with override_settings(MIDDLEWARE=[SESSION, AUTH, "revy_mw.RevyMiddleware"]):
        assert "revy_mw.E014" not in [m.id for m in run_checks()]
    with override_settings(MIDDLEWARE=["revy_mw.RevyMiddleware"]):
        assert "revy_mw.E014" not in [m.id for m in run_checks()]


def test_w001_organization_resolver_without_rule():
    found = ids(ORGANIZATION_MODEL="testapp.Organization")
    assert found == ["revy_mw.W001"]
    assert ids(ACTOR_RESOLVERS=["revy_mw.resolvers.UserResolver"]) == []


def test_checks_run_through_django():
    with override_settings(REVY_MW={"COMMIT_MESSAGE_MAX_LENGTH": 0}):
        messages = checks.run_checks()
    assert "revy_mw.E008" in [m.id for m in messages]
