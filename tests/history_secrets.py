"""Secrets that must never appear in history: found by scanning revy's tables.

:func:`scan` reads every revision and delta in the database and reports any
that holds a password hash (by its hasher's prefix), the key of a live
session, a live user's password hash, or the value of a live field that
``REVY_MASKED_FIELDS`` masks. tests/conftest.py runs it at the end of every
test that used the database (before its data is rolled back or flushed) and
fails the session if anything was found.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import connections

__all__ = ["HASH_PREFIX", "scan"]

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
