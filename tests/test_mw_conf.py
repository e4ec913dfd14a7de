"""The lazy REVY_MW settings view."""

from __future__ import annotations

from django.conf import settings
from django.test import override_settings

from revy_mw.conf import DEFAULT_ACTOR_RESOLVERS, get_config, meta_key, mw_settings
from tests.mwapp.rules import can_act_for_organization


def test_defaults_are_read_not_written():
    with override_settings(REVY_MW={}):
        assert mw_settings.actor_resolvers == list(DEFAULT_ACTOR_RESOLVERS)
        assert mw_settings.commit_message_header == "X-Commit-Message"
        assert mw_settings.commit_message_max_length == 1000
        assert mw_settings.invalid_commit_message == "reject"
        assert mw_settings.organization_header == "X-Perform-As-Organization"
        assert mw_settings.organization_model is None
        assert mw_settings.organization_lookup_field == "pk"
        assert mw_settings.can_act_for_organization is None
        assert mw_settings.system_actor is None
        assert settings.REVY_MW == {}
    with override_settings():
        del settings.REVY_MW
        assert mw_settings.commit_message_header == "X-Commit-Message"
        assert not hasattr(settings, "REVY_MW")


def test_follows_override_settings():
    assert mw_settings.organization_model == "testapp.Organization"
    assert mw_settings.can_act_for_organization is can_act_for_organization
    with override_settings(REVY_MW={"COMMIT_MESSAGE_HEADER": "X-Why"}):
        assert mw_settings.commit_message_header == "X-Why"
        assert get_config().commit_message_key == "HTTP_X_WHY"
    assert get_config().commit_message_key == "HTTP_X_COMMIT_MESSAGE"


def test_callables_may_be_given_directly():
    with override_settings(REVY_MW={"SYSTEM_ACTOR": can_act_for_organization}):
        assert mw_settings.system_actor is can_act_for_organization  # type: ignore[comparison-overlap]


def test_meta_key():
    assert meta_key("X-Perform-As-Organization") == "HTTP_X_PERFORM_AS_ORGANIZATION"
