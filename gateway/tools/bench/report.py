"""What the runs found: the overhead run's summary, each run's table, and their JSON."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from gateway.tools.bench.ideal import Plans
from gateway.tools.bench.mix import BenchQuery

__all__ = ["fault_table", "percentile", "save", "scale_table", "summary", "table"]


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def save(result: dict[str, Any], out: Path | None) -> None:
    """The result as JSON at `out`, where one is given, for a later run to compare with."""
    if out is not None:
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def summary(
    driven: dict[str, Any],
    direct: dict[str, Any],
    plans: Plans,
    trip: float,
    cpu_before: float | None,
    cpu_after: float | None,
    mix: list[BenchQuery],
    settings: dict[str, Any],
) -> dict[str, Any]:
    """One run's figures. A query's upstream requests and levels are its first variant's
    (the first page, the first id), with the fewest and most over all its variants."""
    queries = []
    for item in mix:
        samples = driven["latencies"].get(item.name, [])
        p50 = statistics.median(samples) if samples else 0.0
        ideal = item.depth * trip
        count = len(samples)
        replayed = direct["latencies"].get(item.name, [])
        direct_p50 = statistics.median(replayed) if replayed else 0.0
        variants = plans.get(item.name) or [[]]
        plan = variants[0]
        spread = [sum(len(level) for level in variant) for variant in variants]
        queries.append(
            {
                "name": item.name,
                "count": count,
                "errors": driven["errors"].get(item.name, 0),
                "p50_ms": round(p50 * 1000, 2),
                "p95_ms": round(percentile(samples, 0.95) * 1000, 2),
                "p99_ms": round(percentile(samples, 0.99) * 1000, 2),
                "ideal_ms": round(ideal * 1000, 2),
                "overhead_ratio": round(p50 / ideal, 3) if ideal > 0.001 else None,
                "direct_p50_ms": round(direct_p50 * 1000, 2),
                "direct_errors": direct["errors"].get(item.name, 0),
                "ratio_to_direct": round(p50 / direct_p50, 3) if direct_p50 else None,
                "upstream_requests": sum(len(level) for level in plan),
                "upstream_requests_over_variants": [min(spread), max(spread)],
                "variants": len(variants),
                "upstream_levels": len(plan),
                "minimum_upstream_requests": item.minimum,
                "objects_per_query": round(driven["objects"].get(item.name, 0) / count, 1)
                if count
                else 0,
            }
        )
    total_objects = sum(driven["objects"].values())
    cpu = cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None
    result = {
        "settings": settings,
        "round_trip_ms": round(trip * 1000, 2),
        "requests_per_second": round(driven["queries"] / driven["seconds"], 1),
        "direct_requests_per_second": round(direct["queries"] / direct["seconds"], 1),
        "queries": queries,
        "gateway_cpu_seconds": round(cpu, 3) if cpu is not None else None,
        "cpu_us_per_query": round(cpu / driven["queries"] * 1e6, 1)
        if cpu is not None and driven["queries"]
        else None,
        "cpu_us_per_object": round(cpu / total_objects * 1e6, 2)
        if cpu is not None and total_objects
        else None,
    }
    return result


def table(result: dict[str, Any]) -> str:
    """Each run's table; with several numbers of clients, then the ratio to the ideal client
    for each query at each number."""
    runs = result.get("runs") or [result]
    tables = [_run_table(run) for run in runs]
    if len(runs) > 1:
        tables.append(_ratio_table(runs))
    return "\n\n".join(tables)


def _ratio_table(runs: list[dict[str, Any]]) -> str:
    rows = [
        f"{'query':26} {'clients':>7} {'req/s':>8} {'p50 ms':>8} {'direct':>8} {'ratio':>6} "
        f"{'CPU/query':>10}"
    ]
    for query in runs[0]["queries"]:
        for run in runs:
            found = next(q for q in run["queries"] if q["name"] == query["name"])
            ratio = found["ratio_to_direct"]
            rows.append(
                f"{found['name']:26} {run['settings']['concurrency']:7d} "
                f"{run['requests_per_second']:8.1f} {found['p50_ms']:8.2f} "
                f"{found['direct_p50_ms']:8.2f} {ratio if ratio is not None else '-':>6} "
                f"{run['cpu_us_per_query']!s:>10}"
            )
    rows.append("req/s and CPU/query (µs, the gateway's processes) are the whole mix's")
    return "\n".join(rows)


def _run_table(result: dict[str, Any]) -> str:
    rows = [
        f"{result['settings']['concurrency']} clients",
        f"{'query':26} {'n':>6} {'err':>4} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
        f"{'ideal':>7} {'ratio':>6} {'direct':>8} {'ratio':>6} {'upstream':>8}",
    ]
    for q in result["queries"]:
        ratio = f"{q['overhead_ratio']:.2f}" if q["overhead_ratio"] is not None else "-"
        to_direct = f"{q['ratio_to_direct']:.2f}" if q["ratio_to_direct"] is not None else "-"
        rows.append(
            f"{q['name']:26} {q['count']:6d} {q['errors']:4d} {q['p50_ms']:8.2f} "
            f"{q['p95_ms']:8.2f} {q['p99_ms']:8.2f} {q['ideal_ms']:7.2f} {ratio:>6} "
            f"{q['direct_p50_ms']:8.2f} {to_direct:>6} {q['upstream_requests']!s:>8}"
        )
    rows.append(
        f"requests/s {result['requests_per_second']} (the ideal client: "
        f"{result['direct_requests_per_second']}), one upstream round trip "
        f"{result['round_trip_ms']} ms, gateway CPU {result['cpu_us_per_query']} µs/query, "
        f"{result['cpu_us_per_object']} µs/object, of which garbage collection "
        f"{result.get('gc_us_per_query', '-')} µs/query"
    )
    rows.append(
        "ideal: depth x round trip; direct: p50 of the ideal client, which replays the "
        "query's upstream requests straight to the sandbox at the same concurrency"
    )
    return "\n".join(rows)


def scale_table(result: dict[str, Any]) -> str:
    rows = [
        f"gateway process at rest: {result['idle_rss_mb']} MB",
        f"{'units':>7} {'p50 ms':>8} {'CPU ms':>8} {'µs/object':>10} {'peak MB':>8}",
    ]
    for row in result["sizes"]:
        rows.append(
            f"{row['units']:7d} {row['p50_ms']:8.1f} {row['cpu_ms_per_query']!s:>8} "
            f"{row['cpu_us_per_object']!s:>10} {row['peak_rss_mb']!s:>8}"
        )
    rows.append(
        f"{'clients':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'nested p50':>11} "
        f"{'errors':>7} {'peak MB':>8}"
    )
    for row in result["clients"]:
        rows.append(
            f"{row['clients']:7d} {row['requests_per_second']:8.1f} {row['p50_ms']!s:>8} "
            f"{row['p99_ms']!s:>8} {row['nested_p50_ms']!s:>11} {row['errors']:7d} "
            f"{row['peak_rss_mb']!s:>8}"
        )
    return "\n".join(rows)


def fault_table(result: dict[str, Any]) -> str:
    stall = result["settings"]["stall"]
    rows = [
        f"{'phase':8} {'others ok/s':>12} {'others p50 ms':>14} {stall + ' ok/s':>12} "
        f"{stall + ' failed/s':>14} {stall + ' p50 ms':>14}"
    ]
    for row in result["phases"]:
        rows.append(
            f"{row['phase']:8} {row['others_ok_per_second']:12.1f} {row['others_p50_ms']!s:>14} "
            f"{row['stalled_ok_per_second']:12.1f} {row['stalled_failed_per_second']:14.1f} "
            f"{row['stalled_p50_ms']!s:>14}"
        )
    rows.append(
        f"time to shed {result['shed_seconds']} s; the others' queries each second of the "
        f"stall: {result['others_ok_each_second_of_the_stall']} "
        f"({result['seconds_below_half']} s below half the rate before)"
    )
    return "\n".join(rows)
