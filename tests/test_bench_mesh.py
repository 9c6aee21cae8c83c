"""`gateway bench --mesh`: what it tells Mesh to do, and how it sums up the turns.

Running Mesh itself needs 330 MB from npm, too much for every test run; the command is
run by hand for the README's numbers (README: Performance)."""

from __future__ import annotations

from typing import Any

from gateway.tools.bench.mesh import _CONFIG, _MESH_QUERY, _medians, mesh_table
from gateway.tools.bench.mix import VARY, BenchQuery


def _turn(side: str, number: int, rps: float, cpu: float, upstream: float) -> dict[str, Any]:
    return {
        "round": number,
        "side": side,
        "queries": 10,
        "errors": 0,
        "requests_per_second": rps,
        "p50_ms": 1000 / rps,
        "p95_ms": 2000 / rps,
        "upstream_per_query": upstream,
        "cpu_ms_per_query": cpu,
    }


def test_the_ratios_are_of_each_sides_medians_over_its_turns() -> None:
    turns = [
        _turn("propgate", 1, 40.0, 9.0, 2.0),
        _turn("mesh", 1, 10.0, 50.0, 81.0),
        _turn("propgate", 2, 60.0, 7.0, 2.0),
        _turn("mesh", 2, 8.0, 40.0, 81.0),
        _turn("propgate", 3, 50.0, 8.0, 2.0),
        _turn("mesh", 3, 12.0, 45.0, 81.0),
    ]

    medians = _medians(turns)

    assert medians["propgate"]["requests_per_second"] == 50.0
    assert medians["mesh"]["requests_per_second"] == 10.0
    assert medians["ratios"]["requests_per_second"] == 5.0
    assert medians["ratios"]["cpu_ms_per_query"] == round(8.0 / 45.0, 2)
    table = mesh_table({"turns": turns, "medians": medians, "settings": {"rounds": 3}})
    assert table.splitlines()[-2].split()[:3] == ["ratio", "prop/mesh", "5.0"]


def test_mesh_is_bound_to_loopback_and_reads_the_sandboxs_own_metadata() -> None:
    config = _CONFIG.format(endpoint="http://127.0.0.1:1/sandbox/primmo/api/", token="t", port=9)

    assert "hostname: 127.0.0.1" in config and "port: 9" in config
    assert "endpoint: http://127.0.0.1:1/sandbox/primmo/api/" in config
    assert 'Authorization: "Bearer t"' in config
    assert "expandNavProps: true" in config
    assert "{root.UnitCode}" in config and "{{" not in config


def test_mesh_pages_through_the_buildings_as_propgates_clients_do() -> None:
    item = BenchQuery("nested", _MESH_QUERY, 2, "").varied(["0", "20"])

    assert VARY in _MESH_QUERY
    assert [text.count("skip: ") for text in item.variants] == [1, 1]
    assert "skip: 20," in item.text(1) and "top: 20" in item.text(1)
