"""`gateway bench` runs end to end and counts what it claims: a short run, no timing asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.tools.bench import MIX, ReceivedRequest, levels, pick


def test_the_bench_runs_the_mix_and_counts_upstream_requests(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"

    printed = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "bench",
            "--seconds",
            "2",
            "--concurrency",
            "2",
            "--latency",
            "0",
            "--jitter",
            "0",
            "--buildings",
            "30",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=240,
    ).stdout

    result = json.loads(out.read_text(encoding="utf-8"))
    queries = {q["name"]: q for q in result["queries"]}
    assert set(queries) == {
        "nested buildings",
        "units for rent",
        "landlords with buildings",
        "node by id",
        "1,000 units",
        "create tenant",
    }
    assert all(q["count"] > 0 and q["errors"] == 0 for q in queries.values())
    assert {name: q["upstream_requests"] for name, q in queries.items()} == {
        "nested buildings": 2,
        "units for rent": 2,
        "landlords with buildings": 7,
        "node by id": 1,
        "1,000 units": 1,
        "create tenant": 2,
    }
    assert {name: q["upstream_levels"] for name, q in queries.items()} == {
        "nested buildings": 2,
        "units for rent": 2,
        "landlords with buildings": 2,
        "node by id": 1,
        "1,000 units": 1,
        "create tenant": 2,
    }
    assert all(q["direct_p50_ms"] > 0 and q["direct_errors"] == 0 for q in queries.values())
    assert result["requests_per_second"] > 0 and "requests/s" in printed


def test_query_picks_part_of_the_mix_and_refuses_a_name_it_does_not_know() -> None:
    assert [item.name for item in pick(["1,000"])] == ["1,000 units"]
    assert [item.name for item in pick(["node", "tenant"])] == ["node by id", "create tenant"]
    assert pick(None) == MIX
    with pytest.raises(SystemExit, match="no query of the mix matches"):
        pick(["no such query"])


def _request(target: str, arrived: float, answered: float) -> ReceivedRequest:
    return ReceivedRequest("primmo", "GET", target, [], "", arrived, answered)


def test_a_request_waits_only_for_those_answered_before_it_arrived() -> None:
    units = _request("/api/Units", 0.0, 1.0)
    buildings = _request("/api/Buildings", 0.1, 0.9)
    tenants = _request("/api/Tenants", 1.2, 2.0)
    leases = _request("/api/Leases", 2.1, 2.5)
    unrelated = _request("/api/LedgerDivisions", 0.95, 1.5)

    grouped = levels([tenants, leases, unrelated, buildings, units])

    assert grouped == [[units, buildings], [unrelated, tenants], [leases]]
    assert levels([]) == []
