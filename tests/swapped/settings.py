"""Settings of a project that swaps in its own history models."""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.swapped"]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("REVY_SWAPPED_DATABASE", ":memory:"),
    }
}

REVY_REVISION_MODEL = "swapped.CustomRevision"
REVY_OBJECT_DELTA_MODEL = "swapped.CustomObjectDelta"
REVY_ATTRIBUTE_DELTA_MODEL = "swapped.CustomAttributeDelta"
