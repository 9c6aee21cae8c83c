"""Offset and page-number pagination (LEAP `limit`/`offset`; pms, MyCRM `page`/size), as one.

A connector's position is an absolute offset in its provider's ordered
stream; this module turns "`limit` records from offset `o`" into as few
requests as possible, and filters locally what the provider cannot filter.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from gateway.resilience import fan_out

__all__ = [
    "FetchPage",
    "FetchRange",
    "Scan",
    "drain",
    "each",
    "merge",
    "pages",
    "scan",
    "window",
]

T = TypeVar("T")
C = TypeVar("C")
P = TypeVar("P")
K = TypeVar("K")
V = TypeVar("V")
FetchPage = Callable[[int, int], Awaitable[tuple[Sequence[T], int | None]]]
"""(page number from 1, page size) -> (rows, the provider's total if it says)."""


@dataclass(frozen=True)
class Scan(Generic[T]):
    rows: list[T]
    positions: list[int]
    exhausted: bool
    total: int | None


FetchRange = Callable[[int, int], Awaitable[tuple[Sequence[T], bool, int | None]]]
"""(offset, at most n) -> (rows from that offset, whether the stream ends there, total if known)."""


def window(offset: int, limit: int, max_size: int) -> tuple[int, int]:
    """(page, size) whose one page covers [offset, offset + limit), when a size allows it.

    Page sizes need not stay fixed between requests: any size maps an offset to
    a page, so the smallest size that avoids a second request is chosen.
    """
    for size in range(min(limit, max_size), max_size + 1):
        if offset // size == (offset + limit - 1) // size:
            return offset // size + 1, size
    return offset // max_size + 1, max_size


def pages(fetch: FetchPage[T], max_size: int) -> FetchRange[T]:
    """Offsets over a page-number API (pms `page`/`page_size`, MyCRM `page`/`per_page`)."""

    async def fetch_range(offset: int, limit: int) -> tuple[Sequence[T], bool, int | None]:
        page, size = window(offset, limit, max_size)
        batch, total = await fetch(page, size)
        start = (page - 1) * size
        skip = offset - start
        rows = batch[skip : skip + limit]
        last_page = len(batch) < size or (total is not None and start + len(batch) >= total)
        return rows, last_page and skip + len(rows) >= len(batch), total

    return fetch_range


async def scan(
    fetch: FetchRange[T],
    *,
    offset: int,
    limit: int,
    max_size: int,
    keep: Callable[[T], bool] | None = None,
    count: bool = False,
) -> Scan[T]:
    """Up to `limit` rows from `offset`, in requests of at most `max_size` rows; with `keep`,
    only matching rows, reading on as needed.

    When `count` is asked and the provider gives no total (it cannot count what is
    filtered here, or does not count at all), the count reads the whole
    (provider-filtered) stream: correct, and documented as costly.
    """
    rows: list[T] = []
    positions: list[int] = []
    total: int | None = None
    at, ended = offset, False
    while len(rows) < limit and not ended:
        want = min(max_size, limit - len(rows)) if keep is None else max_size
        batch, ended, provider_total = await fetch(at, want)
        total = provider_total if keep is None else None
        for index, row in enumerate(batch):
            if len(rows) == limit:
                ended = False
                break
            if keep is None or keep(row):
                rows.append(row)
                positions.append(at + index + 1)
        at += len(batch)
        ended = ended or not batch
    if count and total is None:
        total = await _count(fetch, max_size, keep)
    return Scan(rows, positions, ended and len(rows) < limit, total)


async def _count(fetch: FetchRange[T], size: int, keep: Callable[[T], bool] | None) -> int:
    matched, at = 0, 0
    while True:
        batch, ended, _ = await fetch(at, size)
        matched += sum(1 for row in batch if keep is None or keep(row))
        at += len(batch)
        if ended or not batch:
            return matched


async def drain(
    fetch: Callable[[C | None], Awaitable[tuple[Sequence[T], C | None]]],
    *,
    max_pages: int = 1000,
) -> list[T]:
    """Every item of a list read page by page until the provider says it has no more.

    A provider that says "more" without moving (no items, or the same cursor)
    ends the read instead of looping; so does `max_pages`.
    """
    items: list[T] = []
    cursor: C | None = None
    for _ in range(max_pages):
        batch, following = await fetch(cursor)
        items.extend(batch)
        if following is None or not batch or following == cursor:
            break
        cursor = following
    return items


def merge(
    streams: Mapping[str, Sequence[tuple[Any, P, T]]], limit: int
) -> tuple[list[tuple[str, P, T]], dict[str, int]]:
    """The first `limit` items of several ordered streams, merged by their sort keys.

    Each stream is consumed in its own order whatever its keys say, so what is
    taken from a stream is always a prefix of it: the position after the last
    taken item is where that stream resumes, and nothing is skipped or repeated.
    """
    tagged = [
        [(key, name, index, position, item) for index, (key, position, item) in enumerate(stream)]
        for name, stream in streams.items()
    ]
    taken: list[tuple[str, P, T]] = []
    counts = dict.fromkeys(streams, 0)
    for _, name, _, position, item in heapq.merge(*tagged, key=lambda entry: entry[:3]):
        if len(taken) == limit:
            break
        taken.append((name, position, item))
        counts[name] += 1
    return taken, counts


async def each(keys: Iterable[K], one: Callable[[K], Awaitable[V | None]]) -> Mapping[K, V]:
    """One call per key, for providers that cannot batch.

    Such fan-outs are what spend a provider's quota fastest (a `nodes` of 500 ids would
    be 500 calls), so each is charged to the query's budget for the provider, and refused
    whole before any call is sent if it does not fit; it runs a few calls at a time, so
    one query does not take every connection to the provider; and its first failure stops
    the calls not yet sent, which would most likely fail alike.
    """
    unique = list(dict.fromkeys(keys))
    slots = asyncio.Semaphore(fan_out(len(unique)))

    async def bounded(key: K) -> V | None:
        async with slots:
            return await one(key)

    calls = [asyncio.ensure_future(bounded(key)) for key in unique]
    try:
        found = await asyncio.gather(*calls)
    except BaseException:
        for call in calls:
            call.cancel()
        raise
    return {key: value for key, value in zip(unique, found, strict=True) if value is not None}
