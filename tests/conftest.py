from __future__ import annotations

import pytest

from revy_core import Context


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
