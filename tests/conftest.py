from __future__ import annotations

import pytest

from revy_core import Context


@pytest.fixture(autouse=True)
def _clean_context():
    """Every test starts and ends outside any context."""
    assert Context.depth() == 0
    yield
    assert Context.depth() == 0
