"""The bench's main run: the mix through the gateway, then the ideal client, side by side."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from gateway.tools.bench.drive import drive
from gateway.tools.bench.ideal import drive_direct, record, round_trip
from gateway.tools.bench.mix import MIX, BenchQuery
from gateway.tools.bench.process import cpu_seconds
from gateway.tools.bench.report import save, summary
from gateway.tools.bench.serving import serving

__all__ = ["run"]


def run(
    *,
    latency: float,
    jitter: float,
    concurrency: int,
    seconds: float,
    workers: int,
    buildings: int,
    units: int,
    out: Path | None,
    mix: list[BenchQuery] = MIX,
) -> dict[str, Any]:
    with serving(
        latency=latency,
        jitter=jitter,
        workers=workers,
        buildings=buildings,
        units=units,
        max_page=1000,
    ) as (gateway, sandbox, pid):
        sys.stderr.write("measuring upstream requests per query and one round trip...\n")
        asyncio.run(drive(gateway, 1, 2, mix))
        plans = asyncio.run(record(gateway, sandbox, mix, latency, jitter))
        trip = asyncio.run(round_trip(sandbox))
        cpu_before = cpu_seconds(pid)
        sys.stderr.write(f"driving the mix: {concurrency} clients for {seconds:.0f} s\n")
        driven = asyncio.run(drive(gateway, concurrency, seconds, mix))
        cpu_after = cpu_seconds(pid)
        sys.stderr.write(
            f"the ideal client, straight to the sandbox: {concurrency} clients "
            f"for {seconds:.0f} s\n"
        )
        direct = asyncio.run(drive_direct(sandbox, concurrency, seconds, mix, plans))
    result = summary(
        driven,
        direct,
        plans,
        trip,
        cpu_before,
        cpu_after,
        workers,
        mix,
        {
            "latency": latency,
            "jitter": jitter,
            "concurrency": concurrency,
            "seconds": seconds,
            "workers": workers,
            "buildings": buildings,
            "units_per_building": units,
            "queries": [item.name for item in mix],
        },
    )
    save(result, out)
    return result
