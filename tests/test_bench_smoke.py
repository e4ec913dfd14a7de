"""The benchmark harness works: one tiny scenario in its own process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_worker_measures_a_tracked_create(tmp_path):
    out = tmp_path / "result.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.worker",
            "--lib",
            "revy",
            "--db",
            "sqlite",
            "--smoke",
            "--only",
            "create",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        check=True,
        timeout=120,
    )
    run = json.loads(out.read_text())
    assert run["errors"] == {}
    create = run["scenarios"]["create"]
    assert create["repeats"] == len(create["ratios"]) > 0
    assert create["ratio_min"] <= create["ratio_median"] <= create["ratio_max"]
    # The untracked twin writes one INSERT and no history; the tracked model
    # writes its row and its history.
    assert create["statements_per_op_untracked"] == 1
    assert create["history_rows_per_op_untracked"] == 0
    assert create["statements_per_op"] > 1
    assert create["history_rows_per_op"] > 0

    from bench.report import render

    report = {
        "date": "2026-01-01T00:00:00+00:00",
        "seconds": run["seconds"],
        "machine": {"nproc": 2, "cpu": "cpu", "python": "3", "platform": "linux"},
        "runs": [run],
    }
    markdown = render(report)
    assert "| create 1 row | SQLite |" in markdown
    assert "revy's missed targets" in markdown
