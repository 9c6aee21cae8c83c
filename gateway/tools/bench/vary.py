"""Each query's variants, read from the world the bench measures: page cursors, ids, dates.

Read through the gateway before anything is measured, as a caller would find them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any

import httpx

from gateway.tools.bench.mix import BenchQuery
from gateway.tools.bench.serving import KEY

__all__ = ["VARIANTS", "with_variants"]

VARIANTS = 64
"""Variants per query, where the world has that many: twice the bench's usual 32 clients."""

Ask = Callable[[str], Awaitable[dict[str, Any]]]


async def _windows(ask: Ask, field: str, arguments: str, size: int) -> list[str]:
    """`, after: "…"` for pages of `size` starting one record further each time (the first:
    nothing), so that there are many more pages than the list's length divided by `size`."""
    data = await ask(f"{{ {field}({arguments}first: {VARIANTS + size}) {{ edges {{ cursor }} }} }}")
    cursors = [edge["cursor"] for edge in data[field]["edges"]]
    starts = cursors[: max(len(cursors) - size, 0)]
    return ["", *(f', after: "{cursor}"' for cursor in starts)][:VARIANTS]


async def _ids(ask: Ask, field: str) -> list[str]:
    data = await ask(
        f'{{ {field}(first: {VARIANTS}, providers: ["primmo"]) {{ edges {{ node {{ id }} }} }} }}'
    )
    return [edge["node"]["id"] for edge in data[field]["edges"]]


async def _rent_windows(_: Ask) -> list[str]:
    """Three months from the first of 2027, then from a week later each time."""
    start = date(2027, 1, 1)
    return [
        f'from: "{start + timedelta(weeks=n)}", to: "{start + timedelta(weeks=n, days=89)}"'
        for n in range(VARIANTS)
    ]


async def _counts(_: Ask) -> list[str]:
    return [str(1000 - n) for n in range(VARIANTS)]


_KINDS: dict[str, Callable[[Ask], Awaitable[list[str]]]] = {
    "after: building pages": lambda ask: _windows(ask, "buildings", 'providers: ["primmo"], ', 20),
    "from, to: rent windows": _rent_windows,
    "after: landlord pages": lambda ask: _windows(ask, "landlords", "", 10),
    "id: primmo buildings": lambda ask: _ids(ask, "buildings"),
    "first: 1,000 less a few": _counts,
    "unitId: primmo units": lambda ask: _ids(ask, "units"),
}


async def with_variants(gateway: str, mix: list[BenchQuery]) -> list[BenchQuery]:
    """The mix with each query's variants filled in from the gateway's answers."""
    async with httpx.AsyncClient(timeout=60, headers={"X-API-Key": KEY}) as http:

        async def ask(query: str) -> dict[str, Any]:
            body = (await http.post(f"{gateway}/graphql", json={"query": query})).json()
            if body.get("errors"):
                raise SystemExit(f"gateway bench: reading the variants failed: {body['errors']}")
            data: dict[str, Any] = body["data"]
            return data

        return [item.varied(await _KINDS[item.vary](ask)) if item.vary else item for item in mix]
