"""The ideal client: a query's upstream requests, recorded from the gateway, replayed
straight at the sandbox, each level's at once."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass
from typing import Any

import httpx

from gateway.sandbox import PROVIDERS
from gateway.sandbox.primmo import token_request
from gateway.tools.bench.drive import client, load
from gateway.tools.bench.mix import BenchQuery
from gateway.tools.bench.serving import KEY

__all__ = [
    "RECORDING_LATENCY",
    "Plans",
    "ReceivedRequest",
    "drive_direct",
    "levels",
    "record",
    "round_trip",
]


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as a provider received it, to be sent again as it was."""

    provider: str
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: str
    arrived: float
    answered: float


def levels(requests: list[ReceivedRequest]) -> list[list[ReceivedRequest]]:
    """The requests as an ideal client sends them: one that arrived after another was
    answered may have needed that answer, so it waits for it; the others go together."""
    ordered = sorted(requests, key=lambda r: r.arrived)
    level_of: list[int] = []
    for index, request in enumerate(ordered):
        after = [level_of[i] + 1 for i in range(index) if ordered[i].answered <= request.arrived]
        level_of.append(max(after, default=0))
    grouped: list[list[ReceivedRequest]] = [[] for _ in range(max(level_of, default=-1) + 1)]
    for request, level in zip(ordered, level_of, strict=True):
        grouped[level].append(request)
    return grouped


Plans = dict[str, list[list[list[ReceivedRequest]]]]
"""Each query's upstream requests, by variant, grouped by level."""

RECORDING_LATENCY = 0.05
"""Upstream latency while a query's requests are recorded: long enough that the requests
sent together arrive together, long before any answer, whatever the bench's own latency."""


async def record(
    gateway: str, sandbox: str, mix: list[BenchQuery], latency: float, jitter: float
) -> Plans:
    """Each variant of each query alone, with every provider's record cleared before and
    read after: its upstream requests, grouped as an ideal client would send them. Token
    requests are left out: an ideal client, like the gateway, holds its tokens already."""
    plans: Plans = {}
    async with httpx.AsyncClient(timeout=60, headers={"X-API-Key": KEY}) as http:

        async def slow_down(seconds: float, spread: float) -> None:
            for name in PROVIDERS:
                await http.post(
                    f"{sandbox}/sandbox/{name}/_sandbox/latency",
                    params={"seconds": seconds, "jitter": spread},
                )

        await slow_down(RECORDING_LATENCY, 0)
        for item in mix:
            plans[item.name] = []
            for variant in range(max(len(item.variants), 1)):
                for name in PROVIDERS:
                    await http.post(f"{sandbox}/sandbox/{name}/_sandbox/requests/reset")
                await http.post(f"{gateway}/graphql", json={"query": item.text(variant)})
                made = []
                for name in PROVIDERS:
                    seen = await http.get(f"{sandbox}/sandbox/{name}/_sandbox/requests/recent")
                    made += [
                        ReceivedRequest(
                            name,
                            r["method"],
                            r["target"],
                            [tuple(h) for h in r["headers"]],
                            r["body"],
                            r["arrived"],
                            r["answered"],
                        )
                        for r in seen.json()["requests"]
                        if r["answered"] is not None and not r["token"]
                    ]
                plans[item.name].append(levels(made))
        await slow_down(latency, jitter)
    return plans


async def round_trip(sandbox: str, samples: int = 20) -> float:
    """One upstream round trip as an ideal client sees it: Primmo's token endpoint, direct."""
    login = token_request(f"{sandbox}/sandbox/primmo")
    times = []
    async with httpx.AsyncClient(timeout=30) as http:
        for _ in range(samples):
            started = time.perf_counter()
            await http.post(**login)
            times.append(time.perf_counter() - started)
    return statistics.median(times)


async def drive_direct(
    sandbox: str,
    concurrency: int,
    seconds: float,
    mix: list[BenchQuery],
    plans: Plans,
) -> dict[str, Any]:
    """The ideal client: each query's upstream requests, sent straight to the sandbox, every
    level's at once, the same variants in the same turns as the gateway's clients. It reads
    each answer whole but spends nothing on making sense of it."""
    widest = max(
        (len(level) for variants in plans.values() for plan in variants for level in plan),
        default=1,
    )
    async with client(concurrency * widest) as http:

        async def send(request: ReceivedRequest) -> bool:
            try:
                response = await http.request(
                    request.method,
                    f"{sandbox}/sandbox/{request.provider}{request.target}",
                    headers=request.headers,
                    content=request.body.encode(),
                )
            except httpx.HTTPError:
                return True
            return response.status_code >= 400

        async def ask(item: BenchQuery, variant: int) -> tuple[bool, Any]:
            failed = False
            variants = plans[item.name]
            for level in variants[variant % len(variants)]:
                failed |= any(await asyncio.gather(*(send(request) for request in level)))
            return failed, None

        return await load(concurrency, seconds, mix, ask)
