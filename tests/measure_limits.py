"""What the operation limits cost, in numbers: `python -m tests.measure_limits`.

The gateway runs in this process on the sandbox, reached over ASGI as in the tests.
It prints how long a fragment bomb (each of twenty fragments spreading the next one
twice: a million fields once expanded) takes to be refused, median over distinct
texts, end to end and for the limits' walk alone; this process's resident memory
before and after a thousand distinct 190 kB refused queries of each kind; then, against
a `gateway serve` process, another caller's latency alone and with hostile queries
arriving beside it, in interleaved rounds.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
from graphql import parse

from gateway.clock import ManualClock
from gateway.config import GatewaySettings, Limits, Settings
from gateway.edge.callers import DEV_KEY
from gateway.sandbox import Sandbox
from gateway.tools.loopback import free_port, running
from schema import build_schema
from schema.limits import measure
from tests.conftest import Client, error_codes, serving

RUNS = 31
QUERIES = 1000


def bomb(levels: int = 20, under_building: bool = True) -> str:
    """A fresh text each time, so that nothing is reused from one run to the next."""
    on = "Building" if under_building else "Query"
    leaf = "name" if under_building else "__typename"
    fragments = " ".join(
        f"fragment B{n} on {on} {{ ...B{n + 1} ...B{n + 1} }}" for n in range(levels)
    )
    operation = (
        "{ buildings(first: 1) { edges { node { ...B0 } } } }" if under_building else "{ ...B0 }"
    )
    return (
        f"query Q{uuid.uuid4().hex} {operation} {fragments} fragment B{levels} on {on} {{ {leaf} }}"
    )


def resident_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def one_letter_fields(characters: int) -> str:
    """`query Q… { a a a … }`: the densest text there is, two characters a field."""
    head = f"query Q{uuid.uuid4().hex} {{ "
    return head + "a " * ((characters - len(head) - 1) // 2) + "}"


async def refusal_ms(client: Client, under_building: bool) -> tuple[float, str]:
    times, codes = [], set()
    for _ in range(RUNS):
        text = bomb(under_building=under_building)
        started = time.perf_counter()
        body = await client.query(text)
        times.append(time.perf_counter() - started)
        codes.update(error_codes(body))
    return statistics.median(times) * 1000, ",".join(sorted(codes))


def walk_ms() -> float:
    schema = build_schema()._schema
    document = parse(bomb())
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        measure(schema, document, {}, Limits(), 20)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


async def beside(url: str, hostile: bool, seconds: float = 5.0) -> tuple[float, float, int]:
    """Another caller's `{ __typename }` latency (median, worst) against a gateway process
    while, if `hostile`, bombs and 190 kB refused queries arrive back to back beside it
    over their own connection: a stall of the gateway's loop shows as that caller's worst."""
    latencies: list[float] = []
    sent = 0
    stop = time.perf_counter() + seconds
    key = {"X-API-Key": DEV_KEY}

    async def other_caller(http: httpx.AsyncClient) -> None:
        while time.perf_counter() < stop:
            started = time.perf_counter()
            await http.post("/graphql", json={"query": "{ __typename }"})
            latencies.append(time.perf_counter() - started)

    async def attacker(http: httpx.AsyncClient) -> None:
        nonlocal sent
        texts: list[Callable[[], str]] = [
            bomb,
            lambda: bomb(under_building=False),
            lambda: one_letter_fields(190_000),
        ]
        while time.perf_counter() < stop:
            await http.post("/graphql", json={"query": texts[sent % len(texts)]()})
            sent += 1

    async with (
        httpx.AsyncClient(base_url=url, headers=key, timeout=60) as calm,
        httpx.AsyncClient(base_url=url, headers=key, timeout=60) as hostile_http,
    ):
        await asyncio.gather(other_caller(calm), *([attacker(hostile_http)] if hostile else []))
    return statistics.median(latencies) * 1000, max(latencies) * 1000, sent


def interleaved(rounds: int = 3) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(["serve", "--port", str(port)], f"{url}/healthz", seconds=30):
        for _ in range(rounds):
            for hostile in (False, True):
                median, worst, sent = asyncio.run(beside(url, hostile))
                said = f"beside {sent} hostile queries" if hostile else "alone"
                print(  # noqa: T201
                    f"another caller {said}: median {median:.2f} ms, worst {worst:.2f} ms"
                )


async def memory(client: Client, label: str, characters: int) -> None:
    before = resident_mb()
    codes: set[str] = set()
    started = time.perf_counter()
    for _ in range(QUERIES):
        codes.update(error_codes(await client.query(one_letter_fields(characters))))
    seconds = time.perf_counter() - started
    after = resident_mb()
    print(  # noqa: T201
        f"{QUERIES} distinct {characters / 1000:.0f} kB queries, {label}: refused as "
        f"{','.join(sorted(codes))}; RSS {before:.0f} MB -> {after:.0f} MB "
        f"({after - before:+.1f} MB) in {seconds:.1f} s"
    )


async def main() -> None:
    clock = ManualClock()
    defaults = Settings(gateway=GatewaySettings(subscribe_at_start=False))
    async with serving(Sandbox(seed=7, clock=clock), clock, defaults) as client:
        await client.query("{ providers { name } }")
        for under_building in (True, False):
            median, codes = await refusal_ms(client, under_building)
            where = "under Building" if under_building else "at the root"
            print(f"fragment bomb {where}: refused as {codes}, median {median:.2f} ms")  # noqa: T201
        print(f"the limits' walk alone over the bomb: median {walk_ms():.3f} ms")  # noqa: T201
        await memory(client, "default limits", 190_000)
    longer = Settings(
        gateway=GatewaySettings(subscribe_at_start=False, limits=Limits(max_characters=200_000))
    )
    async with serving(Sandbox(seed=7, clock=clock), clock, longer) as client:
        await memory(client, "max_characters = 200000", 190_000)
        await memory(client, "max_characters = 200000, within max_tokens", 5_980)


if __name__ == "__main__":
    asyncio.run(main())
    interleaved()
