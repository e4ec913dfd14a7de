"""Settings of the test suite. The database comes from REVY_TEST_DATABASE."""

from __future__ import annotations

import os

SECRET_KEY = "tests-only"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["*"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

_DATABASES = {
    "sqlite": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
    "postgres": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "revy",
        "HOST": "127.0.0.1",
        "PORT": "5432",
        "USER": "postgres",
    },
    "mariadb": {
        "ENGINE": "django.db.backends.mysql",
        "NAME": "revy",
        "HOST": "127.0.0.1",
        "PORT": "3306",
        "USER": "root",
        "PASSWORD": "",
        "OPTIONS": {"charset": "utf8mb4"},
        "TEST": {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"},
    },
}
DATABASE = os.environ.get("REVY_TEST_DATABASE", "sqlite")
if DATABASE == "mariadb":
    import pymysql

    pymysql.install_as_MySQLdb()
DATABASES = {"default": _DATABASES[DATABASE]}

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
