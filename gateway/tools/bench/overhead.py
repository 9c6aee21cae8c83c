"""The bench's main run: the mix through the gateway, then the ideal client, side by side,
at each number of clients asked for."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from gateway.tools.bench.drive import drive
from gateway.tools.bench.ideal import drive_direct, record, round_trip
from gateway.tools.bench.mix import MIX, BenchQuery
from gateway.tools.bench.process import tree_cpu_seconds
from gateway.tools.bench.report import save, summary
from gateway.tools.bench.serving import KEY, serving
from gateway.tools.bench.vary import with_variants

__all__ = ["run"]


async def _gc_seconds(gateway: str) -> float | None:
    """What the gateway says it spent collecting garbage so far (its `/metrics`), which
    profilers attribute to whatever allocated last."""
    async with httpx.AsyncClient(timeout=30, headers={"X-API-Key": KEY}) as http:
        answer = await http.get(f"{gateway}/metrics")
    if answer.status_code != 200:
        return None
    return sum(
        sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
        if sample.name == "propgate_gc_seconds_total"
    )


def run(
    *,
    latency: float,
    jitter: float,
    clients: list[int],
    seconds: float,
    workers: int,
    buildings: int,
    units: int,
    out: Path | None,
    mix: list[BenchQuery] = MIX,
    compiled: bool = True,
) -> dict[str, Any]:
    """The mix at each number of `clients`, each time followed by the ideal client at the
    same number, on one gateway (with compiled execution, or all through graphql-core).
    The first number's summary is the result's top level; `runs` holds every number's."""
    settings = {
        "latency": latency,
        "jitter": jitter,
        "clients": clients,
        "seconds": seconds,
        "workers": workers,
        "buildings": buildings,
        "units_per_building": units,
        "queries": [item.name for item in mix],
        "compiled_execution": compiled,
    }
    runs = []
    with serving(
        latency=latency,
        jitter=jitter,
        workers=workers,
        buildings=buildings,
        units=units,
        max_page=1000,
        compiled=compiled,
    ) as (gateway, sandbox, pid):
        sys.stderr.write("reading variants, measuring upstream requests and one round trip...\n")
        mix = asyncio.run(with_variants(gateway, mix))
        asyncio.run(drive(gateway, 1, 2, mix))
        plans = asyncio.run(record(gateway, sandbox, mix, latency, jitter))
        trip = asyncio.run(round_trip(sandbox))
        for concurrency in clients:
            gc_before = asyncio.run(_gc_seconds(gateway)) if workers == 1 else None
            cpu_before = tree_cpu_seconds(pid)
            sys.stderr.write(f"driving the mix: {concurrency} clients for {seconds:.0f} s\n")
            driven = asyncio.run(drive(gateway, concurrency, seconds, mix))
            cpu_after = tree_cpu_seconds(pid)
            gc_after = asyncio.run(_gc_seconds(gateway)) if workers == 1 else None
            sys.stderr.write(
                f"the ideal client, straight to the sandbox: {concurrency} clients "
                f"for {seconds:.0f} s\n"
            )
            direct = asyncio.run(drive_direct(sandbox, concurrency, seconds, mix, plans))
            run = summary(
                driven,
                direct,
                plans,
                trip,
                cpu_before,
                cpu_after,
                mix,
                {**settings, "concurrency": concurrency},
            )
            if gc_before is not None and gc_after is not None and driven["queries"]:
                spent = (gc_after - gc_before) / driven["queries"]
                run["gc_us_per_query"] = round(spent * 1e6, 1)
            runs.append(run)
    result = {**runs[0], "runs": runs}
    save(result, out)
    return result
