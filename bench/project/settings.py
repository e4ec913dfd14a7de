"""Settings of the benchmark project.

The environment chooses what this process measures:

- ``BENCH_LIB``: ``untracked`` (no library: the A/A control), ``revy``,
  ``simple_history``, ``reversion``, ``auditlog`` or ``pghistory``;
- ``BENCH_DB``: ``sqlite`` (a file in WAL mode) or ``postgres``;
- ``BENCH_SQLITE_PATH`` / ``BENCH_PG_NAME``: the database this process owns;
- ``BENCH_MIGRATIONS``: the package the benchmark app's migrations are
  written to (made fresh by the worker, so pgtrigger and the history
  libraries see an ordinary migrated app).
"""

from __future__ import annotations

import os
from typing import Any

LIB = os.environ.get("BENCH_LIB", "untracked")
DB = os.environ.get("BENCH_DB", "sqlite")

SECRET_KEY = "bench-only"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["*"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
ROOT_URLCONF = "bench.project.urls"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

if DB == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("BENCH_PG_NAME", f"revy_bench_{LIB}"),
            "HOST": os.environ.get("BENCH_PG_HOST", "127.0.0.1"),
            "PORT": os.environ.get("BENCH_PG_PORT", "5432"),
            "USER": os.environ.get("BENCH_PG_USER", "postgres"),
            "CONN_MAX_AGE": None,
            # Like SQLite's synchronous=NORMAL in WAL mode below: a commit
            # does not wait for the disk, so that neither database measures
            # the disk of a shared machine instead of the library's work.
            "OPTIONS": {"options": "-c synchronous_commit=off"},
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("BENCH_SQLITE_PATH", "bench.sqlite3"),
            "CONN_MAX_AGE": None,
        }
    }

    from django.db.backends.signals import connection_created

    def _sqlite_wal(sender: object, connection: Any, **kwargs: object) -> None:
        # WAL with synchronous=NORMAL, set per connection (the sqlite3
        # "init_command" option exists from Django 5.1 only).
        if connection.vendor == "sqlite":
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")

    connection_created.connect(_sqlite_wal, weak=False)

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "bench.benchapp",
]

BASE_MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
LIBRARY_MIDDLEWARE = {
    "untracked": [],
    "revy": ["revy_mw.RevyMiddleware"],
    "simple_history": ["simple_history.middleware.HistoryRequestMiddleware"],
    "reversion": ["reversion.middleware.RevisionMiddleware"],
    "auditlog": ["auditlog.middleware.AuditlogMiddleware"],
    "pghistory": ["pghistory.middleware.HistoryMiddleware"],
}
MIDDLEWARE = BASE_MIDDLEWARE + LIBRARY_MIDDLEWARE[LIB]

if LIB == "revy":
    INSTALLED_APPS += ["revy_core", "revy_mw"]
    # The twin and everything that is not the measured model stay untracked.
    REVY_EXCLUDE_MODELS = [
        "auth",
        "sessions",
        "benchapp.owner",
        "benchapp.ownertwin",
        "benchapp.untracked",
    ]
    REVY_MW = {
        "ACTOR_RESOLVERS": [
            "revy_mw.resolvers.UserResolver",
            "revy_mw.resolvers.SystemResolver",
        ],
    }
elif LIB == "simple_history":
    INSTALLED_APPS += ["simple_history"]
elif LIB == "reversion":
    INSTALLED_APPS += ["reversion"]
elif LIB == "auditlog":
    INSTALLED_APPS += ["auditlog"]
elif LIB == "pghistory":
    INSTALLED_APPS += ["pgtrigger", "pghistory"]

MIGRATION_MODULES = {"benchapp": os.environ.get("BENCH_MIGRATIONS", "bench_migrations")}
