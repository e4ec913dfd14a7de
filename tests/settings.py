"""Settings of the test suite.

REVY_TEST_DATABASE picks the database: ``sqlite`` (the default, in memory),
``postgres`` (127.0.0.1:5432, user postgres) or ``mariadb`` (127.0.0.1:3306,
user root). REVY_TEST_DB_NAME names the test database the run creates and
drops on a server (default ``test_revy``): give parallel runs different names.
REVY_TEST_SERVER_SIDE_BINDING (PostgreSQL): psycopg binds parameters on the
server and prepares statements.
"""

from __future__ import annotations

import os
from typing import Any

SECRET_KEY = "tests-only"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["*"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

_NAME = os.environ.get("REVY_TEST_DB_NAME", "test_revy")
_DATABASES: dict[str, dict[str, Any]] = {
    "sqlite": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
    "postgres": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _NAME,
        "HOST": "127.0.0.1",
        "PORT": "5432",
        "USER": "postgres",
        "TEST": {"NAME": _NAME},
    },
    "mariadb": {
        "ENGINE": "django.db.backends.mysql",
        "NAME": _NAME,
        "HOST": "127.0.0.1",
        "PORT": "3306",
        "USER": "root",
        "PASSWORD": "",
        "OPTIONS": {"charset": "utf8mb4"},
        "TEST": {
            "NAME": _NAME,
            "CHARSET": "utf8mb4",
            "COLLATION": "utf8mb4_unicode_ci",
        },
    },
}
DATABASE = os.environ.get("REVY_TEST_DATABASE", "sqlite")
if DATABASE == "postgres" and os.environ.get("REVY_TEST_SERVER_SIDE_BINDING"):
    # psycopg 3 binds parameters on the server and prepares a statement the
    # second time it runs (what a deployment may choose for speed).
    _DATABASES["postgres"]["OPTIONS"] = {
        "server_side_binding": True,
        "prepare_threshold": 1,
    }
if DATABASE == "mariadb":
    import pymysql

    pymysql.install_as_MySQLdb()
# "other": a second database of the same kind, for writes with ``using=``.
_OTHER = {**_DATABASES[DATABASE], "NAME": f"{_NAME}_other"}
if DATABASE != "sqlite":
    _OTHER["TEST"] = {**_OTHER["TEST"], "NAME": f"{_NAME}_other"}
DATABASES = {"default": _DATABASES[DATABASE], "other": _OTHER}

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.admin",
    "revy_core",
    "tests.testapp",
    "revy_mw",
    "tests.mwapp",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "revy_mw.RevyMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.request",
            ]
        },
    }
]

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

REVY_EXCLUDE_MODELS = ["testapp.untracked"]
REVY_MASKED_FIELDS = {"testapp.profile": ["secret"]}
REVY_EXCLUDE_FIELDS = {"testapp.profile": ["cache"]}

ROOT_URLCONF = "tests.mw_urls"

REVY_MW = {
    "ORGANIZATION_MODEL": "testapp.Organization",
    "CAN_ACT_FOR_ORGANIZATION": "tests.mwapp.rules.can_act_for_organization",
}

# Django builds its static files storage lazily; a URL is needed once anything
# (an admin or ninja docs view) touches it.
STATIC_URL = "static/"
