"""Settings of the sample site.

SQLite by default, in ``sample_site/var/db.sqlite3`` (git-ignored). The
environment can move it and the rest of what a local run needs:

==========================  ===================================================
``REVY_SAMPLE_DB``          path of the SQLite database file
``REVY_SAMPLE_DEBUG``       ``1`` for Django's debug mode (default: off)
``REVY_SAMPLE_SECRET_KEY``  the secret key (default: a fixed, local-only key)
==========================  ===================================================
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = os.environ.get(
    "REVY_SAMPLE_SECRET_KEY", "sample-site-local-only-never-use-in-production"
)
DEBUG = os.environ.get("REVY_SAMPLE_DEBUG", "") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", "testserver"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",
    "revy_core",
    "revy_mw",
    "sample_site.ledger",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "revy_mw.RevyMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "sample_site.urls"
ASGI_APPLICATION = "sample_site.asgi.application"
WSGI_APPLICATION = "sample_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASE_PATH = Path(os.environ.get("REVY_SAMPLE_DB", BASE_DIR / "var" / "db.sqlite3"))
DATABASE_PATH.parent.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(DATABASE_PATH),
        "OPTIONS": {"timeout": 20},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
USE_I18N = True

STATIC_URL = "static/"

LOGIN_URL = "admin:login"

# revy: what is tracked. API tokens are credentials, never history; a login
# only touches ``last_login``, which is not worth a revision.
REVY_EXCLUDE_MODELS = ["ledger.apitoken"]
REVY_EXCLUDE_FIELDS = {"auth.user": ["last_login"]}

# revy_mw: who acts. The default resolver chain (organization header, user,
# system) applies; organizations are named by their slug in the header.
REVY_MW = {
    "ORGANIZATION_MODEL": "ledger.Organization",
    "ORGANIZATION_LOOKUP_FIELD": "slug",
    "CAN_ACT_FOR_ORGANIZATION": (
        "sample_site.ledger.permissions.can_act_for_organization"
    ),
    "COMMIT_MESSAGE_HEADER": "X-Commit-Message",
    "ORGANIZATION_HEADER": "X-Perform-As-Organization",
}
