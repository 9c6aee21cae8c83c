"""How time and memory grow with the size of a result, then with the number of clients."""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from gateway.tools.bench.drive import drive
from gateway.tools.bench.mix import MIX
from gateway.tools.bench.process import cpu_seconds, memory_mb
from gateway.tools.bench.report import percentile, save
from gateway.tools.bench.serving import KEY, serving
from gateway.tools.bench.vary import with_variants

__all__ = ["CLIENTS", "SIZES", "scale"]


SIZES = (100, 1_000, 10_000)
CLIENTS = (1, 8, 32, 128)


def _units(size: int) -> str:
    return (
        f'{{ units(first: {size}, providers: ["primmo"]) '
        "{ edges { node { sourceId unitCode rooms } } } }"
    )


async def _by_size(gateway: str, pid: int, repeats: int) -> list[dict[str, Any]]:
    """Each size after the one before, so the process's peak memory so far is this size's."""
    rows = []
    async with httpx.AsyncClient(timeout=300, headers={"X-API-Key": KEY}) as http:
        for size in SIZES:
            query = {"query": _units(size)}
            body = (await http.post(f"{gateway}/graphql", json=query)).json()
            if body.get("errors"):
                raise SystemExit(f"gateway bench: the {size}-unit query failed: {body['errors']}")
            returned = len(body["data"]["units"]["edges"])
            times = []
            cpu = cpu_seconds(pid)
            for _ in range(repeats):
                started = time.perf_counter()
                (await http.post(f"{gateway}/graphql", json=query)).raise_for_status()
                times.append(time.perf_counter() - started)
            spent = cpu_seconds(pid)
            per_query = (spent - cpu) / repeats if spent is not None and cpu is not None else None
            rows.append(
                {
                    "units": returned,
                    "p50_ms": round(statistics.median(times) * 1000, 1),
                    "cpu_ms_per_query": round(per_query * 1000, 1) if per_query else None,
                    "cpu_us_per_object": round(per_query / returned * 1e6, 1)
                    if per_query and returned
                    else None,
                    "peak_rss_mb": memory_mb(pid, "VmHWM"),
                }
            )
    return rows


def scale(*, latency: float, jitter: float, seconds: float, out: Path | None) -> dict[str, Any]:
    """How time and memory grow with the size of a result, then with the number of clients.

    Sizes are served by a world of 7,500 buildings (10,000 Primmo units) on one gateway
    process; clients drive the usual mix against the usual world, one gateway process
    each time, so each row starts from the same state.
    """
    sizes: list[dict[str, Any]] = []
    with serving(
        latency=latency, jitter=jitter, workers=1, buildings=7500, units=4, max_page=10_000
    ) as (gateway, _, pid):
        idle = memory_mb(pid, "VmRSS")
        sys.stderr.write(f"result sizes {', '.join(map(str, SIZES))} units...\n")
        sizes = asyncio.run(_by_size(gateway, pid, repeats=5))
    clients: list[dict[str, Any]] = []
    for concurrency in CLIENTS:
        with serving(
            latency=latency, jitter=jitter, workers=1, buildings=750, units=4, max_page=1000
        ) as (gateway, _, pid):
            mix = asyncio.run(with_variants(gateway, MIX))
            asyncio.run(drive(gateway, 1, 2, mix))
            sys.stderr.write(f"driving the mix: {concurrency} clients for {seconds:.0f} s\n")
            driven = asyncio.run(drive(gateway, concurrency, seconds, mix))
            every = [t for samples in driven["latencies"].values() for t in samples]
            nested = driven["latencies"].get(MIX[0].name, [])
            clients.append(
                {
                    "clients": concurrency,
                    "requests_per_second": round(driven["queries"] / driven["seconds"], 1),
                    "p50_ms": round(statistics.median(every) * 1000, 1) if every else None,
                    "p99_ms": round(percentile(every, 0.99) * 1000, 1) if every else None,
                    "nested_p50_ms": round(statistics.median(nested) * 1000, 1) if nested else None,
                    "errors": sum(driven["errors"].values()),
                    "peak_rss_mb": memory_mb(pid, "VmHWM"),
                }
            )
    result = {
        "settings": {"latency": latency, "jitter": jitter, "seconds": seconds},
        "idle_rss_mb": idle,
        "sizes": sizes,
        "clients": clients,
    }
    save(result, out)
    return result
