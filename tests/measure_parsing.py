"""What reading amounts exactly costs, in numbers: `python -m tests.measure_parsing`.

A provider's body is parsed by orjson (doubles) and, only when a number in it may not fit a
double, again by the standard library with `Decimal`s (`gateway.upstream.client.parse_json`).
This prints, for a sandbox Primmo page of 1,000 invoices as the provider sends it (CPU time,
median of 51 runs): orjson alone, the check every body now pays, the whole fast path, and
the slow path (what every body would cost if all were read with `Decimal`s); then the CPU of
a whole `charges(first: 500)` query through the gateway, which the check is a part of.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Callable
from decimal import Decimal

import orjson

from gateway.clock import ManualClock
from gateway.config import GatewaySettings, Settings
from gateway.sandbox import Sandbox
from gateway.upstream.client import _LONG, _NUMERALS, parse_json
from tests.conftest import primmo_itself, serving

RUNS = 51


def median_ms(work: Callable[[], object], runs: int = RUNS) -> float:
    spent = []
    for _ in range(runs):
        started = time.process_time()
        work()
        spent.append(time.process_time() - started)
    return statistics.median(spent) * 1000


async def invoices_page(sandbox: Sandbox) -> bytes:
    async with primmo_itself(sandbox) as http:
        answer = await http.get("/api/Invoices?$top=1000")
        answer.raise_for_status()
        return answer.content


async def query_ms(sandbox: Sandbox) -> float:
    settings = Settings(gateway=GatewaySettings(max_page_size=500, subscribe_at_start=False))
    query = (
        '{ charges(first: 500, providers: ["primmo"]) '
        "{ edges { node { number dueOn amount { amount currency } balance { amount } } } } }"
    )
    async with serving(sandbox, ManualClock(), settings) as client:
        await client.data(query)
        spent = []
        for _ in range(11):
            started = time.process_time()
            await client.data(query)
            spent.append(time.process_time() - started)
    return statistics.median(spent) * 1000


async def main() -> None:
    sandbox = Sandbox(seed=7, clock=ManualClock())
    raw = await invoices_page(sandbox)
    rows = len(orjson.loads(raw)["value"])
    figures = {
        "orjson alone": median_ms(lambda: orjson.loads(raw)),
        "the check (a run of 16 digits?)": median_ms(lambda: _LONG in raw.translate(_NUMERALS)),
        "parse_json (orjson and the check)": median_ms(lambda: parse_json(raw)),
        "the standard library, Decimals": median_ms(lambda: json.loads(raw, parse_float=Decimal)),
    }
    say(f"a Primmo page of {rows} invoices, {len(raw) / 1024:.0f} kB, CPU medians:")
    for name, spent in figures.items():
        say(f"  {name + ':':36} {spent:.2f} ms")
    say(f"a charges(first: 500) query through the gateway: {await query_ms(sandbox):.1f} ms CPU")


def say(line: str) -> None:
    print(line)  # noqa: T201


if __name__ == "__main__":
    asyncio.run(main())
