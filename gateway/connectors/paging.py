"""How a provider's lists are read, one strategy per way of paging, and how lists merge.

- `PageNumbers` (pms `page`/`page_size`, MyCRM `page`/`per_page`) and `Offsets`
  (LEAP `limit`/`offset`): a connector's position is an absolute offset in its
  provider's ordered stream; "`limit` records from offset `o`" becomes as few
  requests as possible, and what the provider cannot filter is filtered here.
- `RelayCursor` (SCOM's `first`/`after` connections): the position is the cursor.
- `NextLinks` (OData's `@odata.nextLink`): the server decides where pages end.
- `Standings`: where each of several merged streams stands, shared by the
  federation's cursor over providers and SCOM's over landlords.

A provider that says "more" without moving (no items, the same cursor) ends a
read instead of looping; so does a budget of pages per answer.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx

from gateway.connectors.base import ListRequest, Page, offset_of
from gateway.errors import InvalidCursor, NotFound, UpstreamInvalidResponse
from gateway.model import Record
from gateway.upstream.resilience import fan_out

__all__ = [
    "MAX_PAGES",
    "Answer",
    "FetchAfter",
    "FetchPage",
    "FetchRange",
    "NextLinks",
    "Offsets",
    "PageNumbers",
    "RelayCursor",
    "Scan",
    "Standings",
    "Trail",
    "each",
    "merge",
    "pages",
    "scan",
    "window",
]

MAX_PAGES = 1000
"""Pages read for one answer at most: a provider whose pages never end (or loop) is
refused, or its read cut short, rather than read forever."""

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


@dataclass(frozen=True)
class Offsets(Generic[T]):
    """A list whose positions are offsets, read by offset and limit (LEAP's `offset`/`limit`)."""

    fetch: FetchRange[T]
    max_size: int

    async def page(
        self,
        request: ListRequest,
        build: Callable[[T], Record],
        keep: Callable[[T], bool] | None = None,
    ) -> Page:
        """The page a request asks for, from the offset its position holds."""
        found = await scan(
            self.fetch,
            offset=offset_of(request.position),
            limit=request.limit,
            max_size=self.max_size,
            keep=keep,
            count=request.count,
        )
        return Page(
            [build(row) for row in found.rows], found.positions, found.exhausted, found.total
        )

    async def all(self) -> list[T]:
        """Every row, at the largest page the provider allows."""
        rows: list[T] = []
        for _ in range(MAX_PAGES):
            batch, ended, _ = await self.fetch(len(rows), self.max_size)
            rows.extend(batch)
            if ended or not batch:
                break
        return rows


class PageNumbers(Offsets[T]):
    """A list read by page number and size (pms `page`/`page_size`, MyCRM `page`/`per_page`),
    its positions still offsets: each window of them is read as the page that covers it."""

    def __init__(self, fetch: FetchPage[T], max_size: int) -> None:
        super().__init__(pages(fetch, max_size), max_size)


FetchAfter = Callable[
    [str | None, int], Awaitable[tuple[Sequence[tuple[str, T]], bool, int | None]]
]
"""(after this cursor, at most n) -> ((cursor, item) pairs, whether there are more, total)."""


_AFTER = "after:"
"""What marks a position as a Relay cursor of this paginator's own: a cursor is the
provider's opaque text, so without a mark a position from another list would be sent
upstream as `after` and refused there as the provider's error, not the caller's."""


@dataclass(frozen=True)
class RelayCursor(Generic[T]):
    """A Relay connection read with `first`/`after` (SCOM): each item's position is its
    cursor, marked as one."""

    fetch: FetchAfter[T]
    max_size: int

    async def read(
        self, after: str | None, limit: int
    ) -> tuple[list[T], list[str], bool, int | None]:
        """Up to `limit` items after `after`: (items, their cursors, exhausted, total)."""
        items: list[T] = []
        cursors: list[str] = []
        total: int | None = None
        while len(items) < limit:
            edges, more, total = await self.fetch(after, min(self.max_size, limit - len(items)))
            for cursor, item in edges:
                items.append(item)
                cursors.append(cursor)
            if not more or not edges or cursors[-1] == after:
                return items, cursors, True, total
            after = cursors[-1]
        return items, cursors, False, total

    async def page(self, request: ListRequest, build: Callable[[T], Record]) -> Page:
        position = request.position
        if position is not None and not (isinstance(position, str) and position.startswith(_AFTER)):
            raise InvalidCursor("The cursor does not hold a position this provider can use.")
        after = None if position is None else position.removeprefix(_AFTER)
        items, cursors, exhausted, total = await self.read(after, request.limit)
        positions = [_AFTER + cursor for cursor in cursors]
        return Page([build(item) for item in items], positions, exhausted, total)

    async def all(self) -> list[T]:
        """Every item, at the largest page the provider allows."""
        items, _, _, _ = await self.read(None, self.max_size * MAX_PAGES)
        return items


_NEXT = "@odata.nextLink"


@dataclass(frozen=True)
class Answer:
    """What `NextLinks` read for one answer."""

    rows: list[dict[str, Any]]
    total: int | None
    more: bool
    """A next link was left unfollowed: the list goes on past these rows."""


class NextLinks:
    """OData v4 server-driven paging: `@odata.nextLink` followed, in a list and in each
    row's expanded collections alike, since a server may cap both.

    One answer has one budget of pages and one set of pages seen, however deep its
    links go: a server whose links never end, or lead back, is refused within the
    budget. An expanded collection's further pages are its rows only; they are not
    expanded again, so a link inside them cannot start a read of its own.

    A page's URL is handed to `fetch` as an `httpx.URL`, never parsed again: a batched
    fetch's `$filter` runs to thousands of characters, which httpx checks one by one
    each time it parses them (0.29 ms for an 80-key filter). The first page's URL is not
    parsed at all (`_on_root`). What relative links are relative to is worked out only
    for a page that has one.
    """

    def __init__(
        self,
        fetch: Callable[[httpx.URL], Awaitable[Any]],
        root: httpx.URL,
        provider: str,
        max_pages: int = MAX_PAGES,
    ) -> None:
        self._fetch = fetch
        self._root = root
        self._provider = provider
        self._max_pages = max_pages

    async def read(self, target: str, want: int | None = None, *, expands: bool = True) -> Answer:
        """Rows from `target`, following next links until `want` rows (or all of them) are
        in, and each row's expanded collections to their ends. The target goes on the
        service root unchecked (`_on_root`): a path relative to the root (no leading `/`,
        no `.` or `..` segment, nothing httpx would escape), then `?` and what
        `odata.encode` wrote.

        Only a collection the target expands can be cut short in a row: a target that
        `expands` none is not searched for such links (a fortieth of the CPU of a list of
        1,000 units), and in a read that expands none, a link on a collection is not followed.
        A read that expands some still takes every such link for one of its own."""
        seen: set[str] = set()
        rows: list[dict[str, Any]] = []
        total: int | None = None
        following: httpx.URL | None = _on_root(self._root, target)
        while following is not None and (want is None or len(rows) < want):
            body = await self._page(following, seen, linked=bool(seen))
            page = self._rows(body)
            if len(seen) == 1:
                count = body.get("@odata.count")
                total = count if isinstance(count, int) and not isinstance(count, bool) else None
            linking = [(row, keys) for row in page if (keys := _links_in(row))] if expands else []
            if linking or body.get(_NEXT) is not None:
                base = _base_of(following, body)
                await asyncio.gather(
                    *(self._complete(row, keys, base, seen) for row, keys in linking)
                )
                following = self._next(body.get(_NEXT), base, seen)
            else:
                following = None
            rows.extend(page)
        return Answer(rows, total, more=following is not None)

    async def _complete(
        self, row: dict[str, Any], keys: list[str], base: httpx.URL, seen: set[str]
    ) -> None:
        """An expanded collection the server cut short names where the rest is."""
        for key in keys:
            name, link = key[: -len(_NEXT)], row.pop(key)
            following = self._next(link, _base_of(base, row), seen)
            collection = row.get(name)
            if not isinstance(collection, list) or following is None:
                raise UpstreamInvalidResponse(
                    self._provider, f"{self._provider} sent {key} without its collection."
                )
            while following is not None:
                body = await self._page(following, seen, linked=True)
                collection.extend(self._rows(body))
                following = self._next(body.get(_NEXT), _base_of(following, body), seen)

    async def _page(self, url: httpx.URL, seen: set[str], *, linked: bool) -> dict[str, Any]:
        """A page within the answer's budget; a link the server gave that leads nowhere is
        the server's fault, not a record the caller asked for that does not exist."""
        if len(seen) >= self._max_pages:
            raise UpstreamInvalidResponse(
                self._provider, f"{self._provider}'s next links ran past {self._max_pages}."
            )
        seen.add(str(url))
        try:
            body = await self._fetch(url)
        except NotFound:
            if not linked:
                raise
            raise UpstreamInvalidResponse(
                self._provider, f"{self._provider}'s @odata.nextLink leads to no page (HTTP 404)."
            ) from None
        if not isinstance(body, dict):
            raise UpstreamInvalidResponse(
                self._provider, f"{self._provider} returned a body without a 'value' list."
            )
        return body

    def _rows(self, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        page = body.get("value")
        if not isinstance(page, list) or not all(isinstance(row, dict) for row in page):
            raise UpstreamInvalidResponse(
                self._provider, f"{self._provider} returned a page without a value list."
            )
        return page

    def _next(self, link: Any, base: httpx.URL, seen: set[str]) -> httpx.URL | None:
        """The next link, resolved as OData's JSON format says (against the context URL; CAP
        writes `Buildings?...` relative to the service root) and kept on the service root:
        the bearer token goes with the request, so a link to another host is never followed."""
        if link is None:
            return None
        provider = self._provider
        if not isinstance(link, str):
            raise UpstreamInvalidResponse(provider, f"{provider}'s @odata.nextLink is not a URL.")
        resolved = base.join(link)
        if not str(resolved).startswith(str(self._root)):
            raise UpstreamInvalidResponse(
                provider, f"{provider}'s @odata.nextLink leaves its service root."
            )
        if str(resolved) in seen:
            raise UpstreamInvalidResponse(provider, f"{provider}'s @odata.nextLink repeats a page.")
        return resolved


def _on_root(root: httpx.URL, target: str) -> httpx.URL:
    """`target` on the service root, as httpx parses the two joined, without parsing them.
    The target is the connector's own: a relative path it names, and a query string
    `odata.encode` wrote. httpx would test and re-quote each of its characters (0.29 ms
    for a batch's 2 KB `$filter`) and change none: what `encode` leaves bare, httpx's query
    leaves bare too, and `%XX` it keeps. An empty query is none, and the root's fragment
    dropped, as joining does.
    httpx has no public way to make a URL from parts it need not check;
    `tests/test_next_links.py` holds this one equal to httpx's own parse, for any options."""
    path, _, query = target.partition("?")
    parts = root._uri_reference
    url = httpx.URL.__new__(httpx.URL)
    url._uri_reference = parts._replace(path=parts.path + path, query=query or None, fragment=None)
    return url


def _links_in(row: dict[str, Any]) -> list[str]:
    """The keys of a row's expanded collections' next links. Most rows have none, which
    one search of their keys joined says in C (0.2 µs a row, where testing each key was
    0.5 µs: a thousand-row page asks it a thousand times)."""
    if _NEXT not in "\n".join(row):
        return []
    return [key for key in row if key.endswith(_NEXT)]


def _base_of(request: httpx.URL, payload: Mapping[str, Any]) -> httpx.URL:
    """What relative URLs in `payload` are relative to: its `@odata.context` (itself relative
    to the request), else the request's own URL (OData JSON Format, "Relative URLs")."""
    context = payload.get("@odata.context")
    return request.join(context) if isinstance(context, str) else request


def merge(
    streams: Mapping[str, Sequence[tuple[Any, P, T]]], limit: int
) -> tuple[list[tuple[str, P, T]], dict[str, int]]:
    """The first `limit` items of several ordered streams, merged by their sort keys.

    Each stream is consumed in its own order whatever its keys say, so what is
    taken from a stream is always a prefix of it: the position after the last
    taken item is where that stream resumes, and nothing is skipped or repeated.
    One stream's keys are never read, nor a heap built for it.
    """
    if len(streams) == 1:
        ((name, stream),) = streams.items()
        prefix = [(name, position, item) for _, position, item in stream[:limit]]
        return prefix, {name: len(prefix)}
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


Stream = tuple[Sequence[tuple[Any, P, T]], bool]
"""One stream's next items as `merge` takes them (sort key, position after it, item), and
whether the stream ends after them."""


@dataclass(kw_only=True)
class Standings(Generic[P]):
    """Where each of several merged streams stands: absent means not started, `done` means
    exhausted. Totals travel too, so an exhausted stream still counts without being asked
    again."""

    positions: dict[str, P] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)
    totals: dict[str, int] = field(default_factory=dict)

    def advance(
        self, streams: Mapping[str, Stream[P, T]], limit: int, trail: Trail[P]
    ) -> Sequence[T]:
        """The first `limit` items of the streams merged, each move noted on `trail`; a
        stream that ends and was taken whole is done, which the last item's standing
        says."""
        taken, counts = merge({name: items for name, (items, _) in streams.items()}, limit)
        for name, position, _ in taken:
            self.positions[name] = position
            trail.step(name)
        for name, (items, ends) in streams.items():
            if ends and counts[name] == len(items):
                self.done.add(name)
        trail.noted()
        return [item for *_, item in taken]

    def take(
        self,
        name: str,
        items: Sequence[T],
        positions: Sequence[P],
        ends: bool,
        limit: int,
        trail: Trail[P],
    ) -> Sequence[T]:
        """`advance` for one stream: a prefix of it, its moves noted in one go (one stream
        is most lists, and a thousand-record page spent a twentieth of its CPU on tuples
        for a merge it did not need)."""
        if len(positions) != len(items):
            raise ValueError(f"{name} gave {len(items)} items and {len(positions)} positions.")
        taken = items[:limit]
        if taken:
            moves = positions[: len(taken)]
            self.positions[name] = moves[-1]
            trail.moved(name, moves)
        if ends and len(taken) == len(items):
            self.done.add(name)
        trail.noted()
        return taken


class Trail(Generic[P]):
    """Where merged streams stood after each item taken from them, as the moves that got
    them there (which stream, to what position), replayed only for the items whose
    standing is read: a page's every edge has a cursor, few queries select them, and a
    snapshot of every stream's position per item took 9% of a thousand-unit page's CPU
    samples. The replay goes on from the last standing read, so reading them in order
    replays the page once. Every item taken is noted, shown or not: a record read past
    (a linked group's twin) still moves its stream."""

    __slots__ = (
        "_at",
        "_done",
        "_done_start",
        "_head",
        "_head_index",
        "_moved",
        "_standings",
        "_start",
    )

    def __init__(self, standings: Standings[P]) -> None:
        """Made before the first move it notes."""
        self._standings = standings
        self._start = dict(standings.positions)
        self._done_start = frozenset(standings.done)
        self._moved: list[str] = []
        self._at: list[P] = []
        self._done: list[tuple[int, frozenset[str]]] = []
        """From which item on the streams done were these (the set only grows)."""
        self._head: dict[str, P] = {}
        self._head_index = -1

    def step(self, name: str) -> int:
        """Notes that `name` moved where the standings now have it, with the streams done
        now; the item's index."""
        self._moved.append(name)
        self._at.append(self._standings.positions[name])
        self.noted()
        return len(self._moved) - 1

    def moved(self, name: str, positions: Sequence[P]) -> None:
        """Notes that `name` moved through `positions`, one item each."""
        self._moved.extend([name] * len(positions))
        self._at.extend(positions)

    def noted(self) -> None:
        """The streams done now are those of the last item noted and on."""
        latest = self._done[-1][1] if self._done else self._done_start
        if len(self._standings.done) != len(latest):
            self._done.append((len(self._moved) - 1, frozenset(self._standings.done)))

    def at(self, index: int) -> tuple[Mapping[str, P], AbstractSet[str]]:
        """Where every stream stood just after the item, and which were done. The mapping
        is the trail's own, valid until the next call."""
        if index < self._head_index or self._head_index < 0:
            self._head = dict(self._start)
            self._head_index = -1
        head = self._head
        for step in range(self._head_index + 1, index + 1):
            head[self._moved[step]] = self._at[step]
        self._head_index = index
        done: AbstractSet[str] = self._done_start
        for since, streams in self._done:
            if since <= index:
                done = streams
        return head, done


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
