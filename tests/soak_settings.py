"""Settings of ``make soak``: the test settings on PostgreSQL.

The test database gets its own name (REVY_SOAK_TEST_DB, default
``test_revy_soak_<process id>``), so that a soak run and other runs on the
same server do not collide.
"""

from __future__ import annotations

import os

os.environ.setdefault("REVY_TEST_DATABASE", "postgres")

from tests.settings import *  # noqa: F403
from tests.settings import DATABASES

DATABASES["default"]["TEST"] = {
    "NAME": os.environ.get("REVY_SOAK_TEST_DB", f"test_revy_soak_{os.getpid()}")
}
