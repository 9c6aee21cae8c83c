"""`gateway bench --wire`: what one upstream request costs the gateway's CPU on httpx's own
transport (httpcore) and on the one the gateway sends with (aiohttp's, `gateway.upstream.wire`).

The sandbox runs as its own process, so the CPU this process spends is the client's alone.
Each turn sends GETs one after another as a connector does (one httpx client, a kept
connection, a bearer token): a page of one Primmo unit, then a page of 1,000. The transports
take turns, each figure is the median of the rounds, and both must have read the same bodies.
"""

from __future__ import annotations

import asyncio
import hashlib
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from gateway.config import Traffic
from gateway.tools.bench.report import save
from gateway.tools.bench.serving import primmo_token
from gateway.tools.loopback import free_port, running
from gateway.upstream.client import connections

__all__ = ["wire", "wire_table"]

PAGES = {"one unit": "api/Units?$top=1", "1,000 units": "api/Units?$top=1000"}

TRANSPORTS: dict[str, Callable[[], httpx.AsyncBaseTransport]] = {
    "httpcore": httpx.AsyncHTTPTransport,
    "aiohttp": lambda: connections(Traffic()),
}
"""httpx's own, and what a provider's stack ends in (`upstream.client.connections`)."""

_WARM_UP = 20


async def _turn(
    make: Callable[[], httpx.AsyncBaseTransport], url: str, token: str, requests: int
) -> tuple[float, int, str]:
    """CPU seconds per request, the body's size and its digest, after a warm-up."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(transport=make(), headers=headers, timeout=30) as http:
        for _ in range(_WARM_UP):
            body = (await http.get(url)).raise_for_status().content
        started = time.process_time()
        for _ in range(requests):
            body = (await http.get(url)).content
        spent = time.process_time() - started
    return spent / requests, len(body), hashlib.sha256(body).hexdigest()


def wire(*, rounds: int, requests: int, out: Path | None) -> dict[str, Any]:
    """`rounds` turns of `requests` each, per page and transport, on one sandbox."""
    port = free_port()
    sandbox = f"http://127.0.0.1:{port}"
    args = ["sandbox", "--port", str(port), "--latency", "0", "--jitter", "0"]
    args += ["--buildings", "750", "--min-units", "4", "--max-units", "4"]
    pages = []
    with running(args, f"{sandbox}/healthz"):
        token = primmo_token(sandbox)
        for page, path in PAGES.items():
            spent: dict[str, list[float]] = {name: [] for name in TRANSPORTS}
            bodies: set[tuple[int, str]] = set()
            for number in range(rounds):
                for name, make in TRANSPORTS.items():
                    sys.stderr.write(f"{page}: round {number + 1}, {name}\n")
                    url = f"{sandbox}/sandbox/primmo/{path}"
                    cpu, size, digest = asyncio.run(_turn(make, url, token, requests))
                    spent[name].append(cpu)
                    bodies.add((size, digest))
            if len(bodies) != 1:
                raise SystemExit(f"gateway bench --wire: the transports read different {page}")
            ((size, _),) = bodies
            medians = {name: statistics.median(cpu) * 1e6 for name, cpu in spent.items()}
            pages.append(
                {
                    "page": page,
                    "bytes": size,
                    "us_per_request": {name: round(us, 1) for name, us in medians.items()},
                    "ratio": round(medians["aiohttp"] / medians["httpcore"], 2),
                }
            )
    result = {"settings": {"rounds": rounds, "requests": requests}, "pages": pages}
    save(result, out)
    return result


def wire_table(result: dict[str, Any]) -> str:
    rows = [
        "| page | bytes | httpx's own transport (httpcore) | aiohttp's | ratio |",
        "|---|---|---|---|---|",
    ]
    for page in result["pages"]:
        us = page["us_per_request"]
        rows.append(
            f"| {page['page']} | {page['bytes']:,} | {us['httpcore']:,.0f} µs | "
            f"{us['aiohttp']:,.0f} µs | {page['ratio']:.2f} |"
        )
    settings = result["settings"]
    rows.append(
        f"CPU of the client per request, medians of {settings['rounds']} turns of "
        f"{settings['requests']} requests each"
    )
    return "\n".join(rows)
