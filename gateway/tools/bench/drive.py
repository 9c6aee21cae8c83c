"""The load: clients running a mix in turn for a while, timing every query."""

from __future__ import annotations

import asyncio
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from gateway.tools.bench.mix import BenchQuery
from gateway.tools.bench.serving import KEY

__all__ = ["Ask", "client", "drive", "load"]

Ask = Callable[[BenchQuery, int], Awaitable[tuple[bool, Any]]]
"""Runs one variant of a query; whether it failed, and the data whose objects it returned."""


def _objects(value: Any) -> int:
    if isinstance(value, dict):
        return ("sourceId" in value) + sum(_objects(v) for v in value.values())
    if isinstance(value, list):
        return sum(_objects(v) for v in value)
    return 0


async def load(concurrency: int, seconds: float, mix: list[BenchQuery], ask: Ask) -> dict[str, Any]:
    """`concurrency` clients, each running the mix in turn (each from its own place in it,
    each query's variants in turn from its own place in them) for `seconds`, with a progress
    line. The timeline holds every query as (start on `time.perf_counter()`, seconds, name,
    failed), for runs whose conditions change."""
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    objects: dict[str, int] = defaultdict(int)
    timeline: list[tuple[float, float, str, bool]] = []
    done = 0
    stop = time.monotonic() + seconds

    async def worker(offset: int) -> None:
        nonlocal done
        turn = offset
        while time.monotonic() < stop:
            item = mix[turn % len(mix)]
            started = time.perf_counter()
            failed, data = await ask(item, turn)
            turn += 1
            elapsed = time.perf_counter() - started
            latencies[item.name].append(elapsed)
            timeline.append((started, elapsed, item.name, failed))
            errors[item.name] += failed
            objects[item.name] += _objects(data)
            done += 1

    async def progress() -> None:
        started = time.monotonic()
        while time.monotonic() < stop:
            await asyncio.sleep(1)
            elapsed = time.monotonic() - started
            sys.stderr.write(f"\r  {elapsed:5.0f} s  {done:7d} queries  {done / elapsed:8.1f}/s")
        sys.stderr.write("\n")

    started = time.monotonic()
    await asyncio.gather(progress(), *(worker(n) for n in range(concurrency)))
    elapsed = time.monotonic() - started
    return {
        "latencies": latencies,
        "errors": errors,
        "objects": objects,
        "queries": done,
        "seconds": elapsed,
        "timeline": timeline,
    }


def client(connections: int, **options: Any) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(timeout=60, limits=limits, **options)


async def drive(
    gateway: str, concurrency: int, seconds: float, mix: list[BenchQuery]
) -> dict[str, Any]:
    """The mix through the gateway's `/graphql`, as the bench's caller."""
    async with client(concurrency, headers={"X-API-Key": KEY}) as http:

        async def ask(item: BenchQuery, variant: int) -> tuple[bool, Any]:
            try:
                query = item.text(variant)
                response = await http.post(f"{gateway}/graphql", json={"query": query})
                body = response.json()
            except (httpx.HTTPError, ValueError):
                return True, None
            return response.status_code != 200 or bool(body.get("errors")), body.get("data")

        return await load(concurrency, seconds, mix, ask)
