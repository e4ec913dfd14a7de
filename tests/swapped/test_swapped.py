"""A project can swap in its own Revision, ObjectDelta and AttributeDelta.

The swapped settings need their own process: swappable models are chosen
when the app registry is built.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_swapped_history_models_migrate_and_record(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.swapped.settings",
        "REVY_SWAPPED_DATABASE": str(tmp_path / "swapped.sqlite3"),
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(
        [sys.executable, "-m", "tests.swapped.scenario"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == "ok"
    assert (tmp_path / "swapped.sqlite3").exists()
