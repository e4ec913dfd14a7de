"""Settings of the servers the crash and soak tests start.

The server settings of tests/test_mw_servers.py (a file-based SQLite
database named by REVY_MW_SERVER_DB), with the views of
:mod:`tests.reliability_server`; with REVY_SOAK_PG_NAME set, a PostgreSQL
database of that name instead (several worker processes need a server),
whose connections live REVY_SOAK_PG_CONN_MAX_AGE seconds (CONN_MAX_AGE,
default 0: one connection per request).

CommonMiddleware, as in every project ``startproject`` makes, gives each
response its Content-Length: without it Django's WSGI server closes the
connection after every response, and keep-alive clients reconnect each time.
"""

from __future__ import annotations

import os

from tests.mwapp.server_settings import *  # noqa: F403
from tests.mwapp.server_settings import DATABASES, MIDDLEWARE

ROOT_URLCONF = "tests.reliability_server"
MIDDLEWARE = ["django.middleware.common.CommonMiddleware", *MIDDLEWARE]

if os.environ.get("REVY_SOAK_PG_NAME"):
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ["REVY_SOAK_PG_NAME"],
            "HOST": os.environ.get("REVY_SOAK_PG_HOST", "127.0.0.1"),
            "PORT": os.environ.get("REVY_SOAK_PG_PORT", "5432"),
            "USER": os.environ.get("REVY_SOAK_PG_USER", "postgres"),
            "CONN_MAX_AGE": int(os.environ.get("REVY_SOAK_PG_CONN_MAX_AGE", "0")),
        }
    }
