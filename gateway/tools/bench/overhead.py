"""The bench's main run: the mix through the gateway, then the ideal client, side by side,
at each number of clients asked for."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from gateway.tools.bench.drive import drive
from gateway.tools.bench.ideal import drive_direct, record, round_trip
from gateway.tools.bench.mix import MIX, BenchQuery
from gateway.tools.bench.process import tree_cpu_seconds
from gateway.tools.bench.report import save, summary
from gateway.tools.bench.serving import serving
from gateway.tools.bench.vary import with_variants

__all__ = ["run"]


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
) -> dict[str, Any]:
    """The mix at each number of `clients`, each time followed by the ideal client at the
    same number, on one gateway. The first number's summary is the result's top level;
    `runs` holds every number's."""
    settings = {
        "latency": latency,
        "jitter": jitter,
        "clients": clients,
        "seconds": seconds,
        "workers": workers,
        "buildings": buildings,
        "units_per_building": units,
        "queries": [item.name for item in mix],
    }
    runs = []
    with serving(
        latency=latency,
        jitter=jitter,
        workers=workers,
        buildings=buildings,
        units=units,
        max_page=1000,
    ) as (gateway, sandbox, pid):
        sys.stderr.write("reading variants, measuring upstream requests and one round trip...\n")
        mix = asyncio.run(with_variants(gateway, mix))
        asyncio.run(drive(gateway, 1, 2, mix))
        plans = asyncio.run(record(gateway, sandbox, mix, latency, jitter))
        trip = asyncio.run(round_trip(sandbox))
        for concurrency in clients:
            cpu_before = tree_cpu_seconds(pid)
            sys.stderr.write(f"driving the mix: {concurrency} clients for {seconds:.0f} s\n")
            driven = asyncio.run(drive(gateway, concurrency, seconds, mix))
            cpu_after = tree_cpu_seconds(pid)
            sys.stderr.write(
                f"the ideal client, straight to the sandbox: {concurrency} clients "
                f"for {seconds:.0f} s\n"
            )
            direct = asyncio.run(drive_direct(sandbox, concurrency, seconds, mix, plans))
            runs.append(
                summary(
                    driven,
                    direct,
                    plans,
                    trip,
                    cpu_before,
                    cpu_after,
                    mix,
                    {**settings, "concurrency": concurrency},
                )
            )
    result = {**runs[0], "runs": runs}
    save(result, out)
    return result
