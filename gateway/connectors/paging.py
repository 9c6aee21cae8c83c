"""Page-number pagination (pms `page`/`page_size`, MyCRM `page`/`per_page`), as one strategy.

A connector's position is an absolute offset in its provider's ordered
stream; this module turns "`limit` records from offset `o`" into as few page
requests as possible, and filters locally what the provider cannot filter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["FetchPage", "Scan", "each", "scan", "window"]

T = TypeVar("T")
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


def window(offset: int, limit: int, max_size: int) -> tuple[int, int]:
    """(page, size) whose one page covers [offset, offset + limit), when a size allows it.

    Page sizes need not stay fixed between requests: any size maps an offset to
    a page, so the smallest size that avoids a second request is chosen.
    """
    for size in range(min(limit, max_size), max_size + 1):
        if offset // size == (offset + limit - 1) // size:
            return offset // size + 1, size
    return offset // max_size + 1, max_size


async def scan(
    fetch: FetchPage[T],
    *,
    offset: int,
    limit: int,
    max_size: int,
    keep: Callable[[T], bool] | None = None,
    count: bool = False,
) -> Scan[T]:
    """Up to `limit` rows from `offset`; with `keep`, only matching rows, scanning on as needed.

    With `keep` and `count`, the provider cannot count matches, so the count
    reads the whole (provider-filtered) stream: correct, and documented as costly.
    """
    page, size = (
        window(offset, limit, max_size) if keep is None else (offset // max_size + 1, max_size)
    )
    skip = offset - (page - 1) * size
    rows: list[T] = []
    positions: list[int] = []
    total: int | None = None
    while True:
        batch, provider_total = await fetch(page, size)
        total = provider_total if keep is None else None
        start = (page - 1) * size
        for index in range(skip, len(batch)):
            if len(rows) == limit:
                break
            if keep is None or keep(batch[index]):
                rows.append(batch[index])
                positions.append(start + index + 1)
        last = len(batch) < size or (
            provider_total is not None and start + len(batch) >= provider_total
        )
        if len(rows) == limit or last:
            break
        page, skip = page + 1, 0
    if keep is not None and count:
        total = await _count(fetch, max_size, keep)
    return Scan(rows, positions, last and len(rows) < limit, total)


async def _count(fetch: FetchPage[T], size: int, keep: Callable[[T], bool]) -> int:
    matched, page = 0, 1
    while True:
        batch, provider_total = await fetch(page, size)
        matched += sum(1 for row in batch if keep(row))
        if len(batch) < size or (provider_total is not None and page * size >= provider_total):
            return matched
        page += 1


async def each(keys: Iterable[K], one: Callable[[K], Awaitable[V | None]]) -> Mapping[K, V]:
    """One call per key, all at once: for providers that cannot batch. The transport bounds them."""
    unique = list(dict.fromkeys(keys))
    found = await asyncio.gather(*(one(key) for key in unique))
    return {key: value for key, value in zip(unique, found, strict=True) if value is not None}
