"""`gateway bench --fault-run` runs, and sorts its queries by phase: no timing asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from gateway.tools.bench.fault_run import phases


def test_the_fault_run_reports_each_phase_and_the_time_to_shed(tmp_path: Path) -> None:
    out = tmp_path / "fault.json"

    printed = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "bench",
            "--fault-run",
            "--seconds",
            "3",
            "--concurrency",
            "2",
            "--latency",
            "0",
            "--jitter",
            "0",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=240,
    ).stdout

    result = json.loads(out.read_text(encoding="utf-8"))
    assert [phase["phase"] for phase in result["phases"]] == ["before", "during", "after"]
    assert result["phases"][0]["others_ok_per_second"] > 0
    assert result["settings"]["stall"] == "primmo" and "time to shed" in printed


def test_a_query_counts_in_the_phase_it_ended_in() -> None:
    timeline = [
        (0.0, 0.5, "leap", False),
        (0.5, 0.2, "primmo", False),
        (0.9, 1.5, "primmo", True),
        (1.2, 0.3, "mycrm", False),
        (2.5, 0.1, "primmo", True),
    ]

    before, during = phases(timeline, "primmo", [("before", 0.0, 1.0), ("during", 1.0, 3.0)])

    assert before["others_ok_per_second"] == 1.0 and before["stalled_ok_per_second"] == 1.0
    assert during["others_ok_per_second"] == 0.5 and during["stalled_failed_per_second"] == 1.0
    assert during["stalled_p50_ms"] == 800.0
