"""Secrets that must never appear in history: found by scanning revy's tables.

:func:`scan` reads every revision and delta in the database and reports any
that holds a password hash (by its hasher's prefix), the key of a live
session, a live user's password hash, or the value of a live field that
``REVY_MASKED_FIELDS`` masks. tests/conftest.py runs it at the end of every
test that used the database (before its data is rolled back or flushed) and
fails the session if anything was found.

:func:`scan_history_for_secrets` and :func:`history_holds_no_secret` are
those two fixtures, for a suite to import into its conftest.py (the sample
site's does).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings
from django.db import DatabaseError, connections

__all__ = [
    "HASH_PREFIX",
    "history_holds_no_secret",
    "scan",
    "scan_history_for_secrets",
]

#: What Django's password hashers start a hash with.
HASH_PREFIX = re.compile(
    r"(?:md5|sha1|unsalted_md5|unsalted_sha1|crypt|scrypt|argon2|"
    r"bcrypt|bcrypt_sha256)\$|pbkdf2_"
)
#: Shorter live values are too common to tell a leak from a coincidence.
MIN_SECRET_LENGTH = 6


def _rows(cursor: Any, sql: str) -> Iterator[tuple[str, str]]:
    cursor.execute(sql)
    for row in cursor.fetchall():
        yield row[0], " ".join("" if v is None else str(v) for v in row[1:])


def _history(alias: str) -> list[tuple[str, str]]:
    """(where, text) of every revision and delta on one database."""
    connection = connections[alias]
    quote = connection.ops.quote_name
    found: list[tuple[str, str]] = []
    with connection.cursor() as cursor:
        for table, columns in (
            ("revy_revision", ["description"]),
            ("revy_object_delta", ["description"]),
            (
                "revy_attribute_delta",
                ["field_name", "description", "old_value", "new_value"],
            ),
        ):
            selected = ", ".join(quote(c) for c in ["id", *columns])
            sql = f"SELECT {selected} FROM {quote(table)}"
            found.extend((f"{table} {pk}", text) for pk, text in _rows(cursor, sql))
    return found


def _live_secrets(alias: str) -> dict[str, str]:
    """Secret values the database holds now, by what they are."""
    secrets: dict[str, str] = {}
    user_model = apps.get_model(settings.AUTH_USER_MODEL)
    for pk, password in user_model._default_manager.using(alias).values_list(
        "pk", "password"
    ):
        if password and not password.startswith("!"):
            secrets[password] = f"the password hash of user {pk}"
    if apps.is_installed("django.contrib.sessions"):
        from django.contrib.sessions.models import Session

        for key in Session.objects.using(alias).values_list("session_key", flat=True):
            secrets[key] = "a session key"
    masked: dict[str, list[str]] = getattr(settings, "REVY_MASKED_FIELDS", {})
    for label, fields in masked.items():
        model = apps.get_model(label)
        for row in model._default_manager.using(alias).values_list("pk", *fields):
            for name, value in zip(fields, row[1:], strict=True):
                if isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH:
                    secrets[value] = f"{label}.{name} of {row[0]} (masked)"
    return {k: v for k, v in secrets.items() if len(k) >= MIN_SECRET_LENGTH}


def scan(alias: str = "default") -> list[str]:
    """Every secret found in history on one database, described."""
    history = _history(alias)
    if not history:
        return []
    secrets = _live_secrets(alias)
    findings = []
    for where, text in history:
        match = HASH_PREFIX.search(text)
        if match is not None:
            findings.append(f"{where}: a password hash ({match.group()}...)")
        for secret, what in secrets.items():
            if secret in text:
                findings.append(f"{where}: {what}")
    return findings


# Fixtures: scan after every test that used the database, fail the session -----

#: pytest-django's fixtures that give a test the database.
DB_FIXTURES = frozenset(
    {
        "db",
        "transactional_db",
        "django_db_reset_sequences",
        "django_db_serialized_rollback",
    }
)
#: Findings of every test of the session, reported when it ends.
FOUND: list[str] = []


@pytest.fixture(scope="session", autouse=True)
def history_holds_no_secret() -> Iterator[None]:
    """Fails the session if any test left a secret in history."""
    yield
    assert not FOUND, "secrets in history:\n" + "\n".join(FOUND)


@pytest.fixture(autouse=True)
def scan_history_for_secrets(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test that used the database, before its data is rolled back
    or flushed, scan revy's tables for secrets."""
    uses_db = request.node.get_closest_marker("django_db") is not None or bool(
        DB_FIXTURES & set(request.fixturenames)
    )
    if not uses_db:
        yield
        return
    # Set up the database first, so that this scan runs before its teardown.
    request.getfixturevalue("_django_db_helper")
    yield
    try:
        found = scan()
    except (DatabaseError, AssertionError, RuntimeError):
        # The test left its transaction broken, or barred this database.
        return
    FOUND.extend(f"{request.node.nodeid}: {item}" for item in found)
