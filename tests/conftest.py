from __future__ import annotations

from contextlib import contextmanager

import pytest
from django.db import connections

from revy_core import Context
from revy_core.writer import flush


@pytest.fixture
def django_assert_num_queries(django_assert_num_queries):
    """pytest-django's, counting only the block: history still waiting from
    earlier work (inside the test's transaction) is written first, as a
    commit would have written it."""

    @contextmanager
    def counted(*args, **kwargs):
        for connection in connections.all(initialized_only=True):
            flush(connection.alias)
        with django_assert_num_queries(*args, **kwargs) as captured:
            yield captured

    return counted


@pytest.fixture(autouse=True)
def _clean_context():
    """Every test starts and ends outside any context."""
    assert Context.depth() == 0
    yield
    assert Context.depth() == 0


def pytest_collection_modifyitems(config, items):
    """Tests marked ``soak`` run only when selected: ``-m soak`` (make soak)."""
    if "soak" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="a soak test: make soak (pytest -m soak)")
    for item in items:
        if item.get_closest_marker("soak") is not None:
            item.add_marker(skip)


# Secrets: no password hash, session key or masked value in history ----------

#: Findings of every test, reported at the end of the session.
_secrets_found: list[str] = []
_DB_FIXTURES = frozenset(
    {
        "db",
        "transactional_db",
        "django_db_reset_sequences",
        "django_db_serialized_rollback",
    }
)


@pytest.fixture(scope="session", autouse=True)
def _history_holds_no_secret():
    """Fails the session if any test left a secret in history."""
    yield
    assert not _secrets_found, "secrets in history:\n" + "\n".join(_secrets_found)


@pytest.fixture(autouse=True)
def _scan_history_for_secrets(request):
    """After each test that used the database, before its data is rolled back
    or flushed, scan revy's tables for secrets."""
    uses_db = request.node.get_closest_marker("django_db") is not None or bool(
        _DB_FIXTURES & set(request.fixturenames)
    )
    if not uses_db:
        yield
        return
    # Set up the database first, so that this scan runs before its teardown.
    request.getfixturevalue("_django_db_helper")
    yield
    from django.db import DatabaseError

    from tests.history_secrets import scan

    try:
        found = scan()
    except (DatabaseError, AssertionError, RuntimeError):
        # The test left its transaction broken, or barred this database.
        return
    _secrets_found.extend(f"{request.node.nodeid}: {item}" for item in found)
