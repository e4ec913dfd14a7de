"""Settings of the servers that tests/test_mw_servers.py starts.

The test settings, with a file-based SQLite database (REVY_MW_SERVER_DB)
that the server process and the checking process share.
"""

from __future__ import annotations

import os

import django

from tests.settings import *  # noqa: F403

_OPTIONS: dict[str, object] = {"timeout": 60}
if django.VERSION >= (5, 1):
    _OPTIONS["transaction_mode"] = "IMMEDIATE"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("REVY_MW_SERVER_DB", "revy-mw-server.sqlite3"),
        "OPTIONS": _OPTIONS,
    }
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {
        "revy_mw": {"handlers": ["stderr"], "level": "WARNING"},
        "django.request": {"handlers": ["stderr"], "level": "ERROR"},
    },
}
