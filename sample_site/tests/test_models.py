"""The ledger's models: migrations in step, secrets kept out of history."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from revy_core.models import AttributeDelta
from sample_site.ledger import demo
from sample_site.ledger.models import ApiToken


@pytest.mark.django_db
def test_migrations_match_the_models() -> None:
    call_command("makemigrations", "--check", "--dry-run", stdout=StringIO())


def test_secrets_never_land_in_history(people: dict[str, Any]) -> None:
    stored = json.dumps(
        list(AttributeDelta.objects.values_list("old_value", "new_value")),
        default=str,
    )
    for user in people.values():
        assert user.password not in stored
    for digest in ApiToken.objects.values_list("digest", flat=True):
        assert digest not in stored
    for _, _, _, token in demo.PEOPLE:
        assert token not in stored
    assert not AttributeDelta.objects.filter(content_type__model="apitoken").exists()
    passwords = AttributeDelta.objects.filter(field_name="password")
    assert passwords.exists()
    assert {p.new_value for p in passwords} == {"[masked]"}
