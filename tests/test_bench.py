"""`gateway bench` runs end to end and counts what it claims: a short run, no timing asserted."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.tools.bench import MIX, BenchQuery, ReceivedRequest, levels, pick
from gateway.tools.bench.drive import load
from gateway.tools.bench.mix import VARY
from gateway.tools.bench.process import cpu_seconds, tree_cpu_seconds
from gateway.tools.bench.wire import wire, wire_table
from gateway.tools.loopback import free_ports


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
            "--clients",
            "1,2",
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
    assert [run["settings"]["concurrency"] for run in result["runs"]] == [1, 2]
    assert all(run["cpu_us_per_query"] > 0 for run in result["runs"])
    assert queries["node by id"]["variants"] > 1 and queries["units for rent"]["variants"] > 1
    assert queries["node by id"]["upstream_requests_over_variants"] == [1, 1]
    assert queries["units for rent"]["upstream_requests_over_variants"][1] <= 2
    assert "ratio" in printed.splitlines()[-len(MIX) * 2 - 2]


def test_the_wire_bench_times_both_transports_on_the_same_pages(tmp_path: Path) -> None:
    out = tmp_path / "wire.json"
    result = wire(rounds=1, requests=3, out=out)

    one, thousand = result["pages"]
    assert (one["page"], thousand["page"]) == ("one unit", "1,000 units")
    assert thousand["bytes"] > 500 * one["bytes"] > 0
    for page in result["pages"]:
        assert set(page["us_per_request"]) == {"httpcore", "aiohttp"}
        assert all(us > 0 for us in page["us_per_request"].values())
    assert json.loads(out.read_text()) == result
    assert "| 1,000 units |" in wire_table(result)


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


async def test_clients_asking_the_same_query_at_once_ask_different_variants() -> None:
    """Identical reads in flight are sent upstream once: clients that all asked the same
    thing would flatter the gateway. Each client starts from its own variant."""
    item = BenchQuery("q", f"{{ a({VARY}) }}", 1, "1").varied([f"x: {n}" for n in range(8)])
    asked: list[str] = []

    async def ask(query: BenchQuery, variant: int) -> tuple[bool, Any]:
        asked.append(query.text(variant))
        await asyncio.sleep(1)
        return False, None

    await load(4, 0.01, [item], ask)

    assert asked == ["{ a(x: 0) }", "{ a(x: 1) }", "{ a(x: 2) }", "{ a(x: 3) }"]
    assert all(VARY in query.query for query in MIX if query.vary)


def test_the_cpu_of_a_process_tree_counts_its_children() -> None:
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\nt = time.process_time()\n"
            "while time.process_time() - t < 0.3: pass\ntime.sleep(30)",
        ]
    )
    try:
        while (cpu_seconds(child.pid) or 0) < 0.3:
            time.sleep(0.05)
        own = cpu_seconds(os.getpid())
        tree = tree_cpu_seconds(os.getpid())
    finally:
        child.kill()
        child.wait()

    assert own is not None and tree is not None and tree >= own + 0.3


def test_ports_picked_together_are_all_different_and_free() -> None:
    """The sandbox and the gateways of one run each need a port of their own: probed one
    after the other, a released port could come back (a gateway once found the sandbox on
    its port, and took the sandbox's health answer for its own)."""
    ports = free_ports(40)

    assert len(set(ports)) == 40
    for port in ports:
        with socket.socket() as server:
            server.bind(("127.0.0.1", port))
