"""Fan-out: which providers serve a type, asking them concurrently, merging their pages.

A list over several providers is a k-way merge of each provider's own ordered
stream. The opaque cursor holds every provider's own position (offset, page,
cursor), so the next page asks each provider only for what follows, and no
provider's whole table is ever fetched to serve one page. A provider that
fails gives an error naming it; the others' records still arrive.

A `distinct` list shows each linked group once, where the first of its records
that the list shows stands (`Federation._distinct`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import orjson

from gateway import notices
from gateway.clock import SystemClock
from gateway.connectors.base import Connector, ListRequest, Page, Position
from gateway.connectors.capabilities import Capability, RelationshipRecords
from gateway.connectors.paging import Standings, Trail, merge
from gateway.errors import BadUserInput, InvalidCursor, LimitExceeded, ProviderError
from gateway.federation.links import Linking, matches, reference_of
from gateway.federation.relationships import derive
from gateway.federation.writes import Writes
from gateway.model import Criteria, Entity, Record, Selection
from gateway.observability.metrics import Metrics
from gateway.state.cache import EntityCache, LocalEntityCache
from gateway.state.idempotency import Idempotency, LocalIdempotency
from gateway.state.links import provider_of
from gateway.upstream.resilience import ProviderHealth

T = TypeVar("T")
C = TypeVar("C", bound=Capability)

__all__ = ["Edge", "Federation", "ListResult", "PageInfo", "PageLimits", "ProviderView"]


def _text(value: str | None) -> str:
    return (value or "").casefold()


def _day(value: date | None) -> str:
    return value.isoformat() if value is not None else ""


def _instant(value: datetime | None) -> str:
    """A moment as the instant it names: providers send other offsets, ordered alike."""
    return value.astimezone(UTC).isoformat() if value is not None else ""


SORT_KEYS: dict[Entity, Callable[[Any], tuple[str, ...]]] = {
    Entity.LANDLORD: lambda record: (_text(record.name),),
    Entity.BUILDING: lambda record: (_text(record.name),),
    Entity.UNIT: lambda record: (_text(record.code),),
    Entity.TENANT: lambda record: (_text(record.last_name), _text(record.first_name)),
    Entity.RELATIONSHIP: lambda _record: (),
    Entity.LEASE: lambda record: (_day(record.start_date),),
    Entity.MAINTENANCE_REQUEST: lambda record: (_instant(record.reported_at),),
    Entity.WORK_ORDER: lambda record: (_day(record.scheduled_for),),
    Entity.VENDOR: lambda record: (_text(record.name),),
    Entity.LISTING: lambda record: (_text(record.title),),
    Entity.AGENT: lambda record: (_text(record.last_name), _text(record.first_name)),
    Entity.CHARGE: lambda record: (_day(record.due_on),),
    Entity.PAYMENT: lambda record: (_instant(record.paid_at),),
}
"""The documented order of every list: this key, then provider, then the provider's id."""

SORT_FIELDS: dict[Entity, frozenset[str]] = {
    Entity.LANDLORD: frozenset({"name"}),
    Entity.BUILDING: frozenset({"name"}),
    Entity.UNIT: frozenset({"code"}),
    Entity.TENANT: frozenset({"last_name", "first_name"}),
    Entity.RELATIONSHIP: frozenset(),
    Entity.LEASE: frozenset({"start_date"}),
    Entity.MAINTENANCE_REQUEST: frozenset({"reported_at"}),
    Entity.WORK_ORDER: frozenset({"scheduled_for"}),
    Entity.VENDOR: frozenset({"name"}),
    Entity.LISTING: frozenset({"title"}),
    Entity.AGENT: frozenset({"last_name", "first_name"}),
    Entity.CHARGE: frozenset({"due_on"}),
    Entity.PAYMENT: frozenset({"paid_at"}),
}
"""The fields every list asks for, whatever the query selects: the merge sorts on them."""


@dataclass(frozen=True)
class PageLimits:
    default: int = 20
    maximum: int = 100


class Edge:
    """A record of a list, and its place in the page: where the list stands just after it
    is written as a cursor only when read (see `Trail`)."""

    __slots__ = ("_index", "_page", "node")

    def __init__(self, node: Record, page: _PageCursors, index: int) -> None:
        self.node = node
        self._page = page
        self._index = index

    @property
    def cursor(self) -> str:
        return self._page.text(self._index)


def _encoded(
    fingerprint: str,
    positions: Mapping[str, Position],
    done: AbstractSet[str],
    totals: Mapping[str, int],
    groups: int | None,
) -> str:
    payload: dict[str, Any] = {
        "v": 1,
        "f": fingerprint,
        "p": positions,
        "d": sorted(done),
        "t": totals,
    }
    if groups is not None:
        payload["g"] = groups
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


class _PageCursors:
    """A page's cursors: its trail, written in the list's cursor format."""

    __slots__ = ("_cursor", "trail")

    def __init__(self, cursor: _Cursor) -> None:
        self._cursor = cursor
        self.trail = Trail(cursor)

    def text(self, index: int) -> str:
        positions, done = self.trail.at(index)
        cursor = self._cursor
        return _encoded(cursor.fingerprint, positions, done, cursor.totals, cursor.groups)


@dataclass(frozen=True, slots=True)
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@dataclass(frozen=True, slots=True)
class ProviderView:
    """A provider as operators see it: its health, and when its token expires (no secret).

    A provider whose token endpoint refused the gateway is sent nothing until the hold-off
    ends (see `CachedTokenAuth`), as surely as one that rests after a 429: it is shown so,
    with the refusal as its last error, or a wrong password would look healthy.
    """

    name: str
    health: ProviderHealth
    token_expires_at: float | None
    token_held_until: float | None = None
    token_held_for: float | None = None
    token_refusal: str | None = None

    @property
    def healthy(self) -> bool:
        return self.health.healthy and self.token_held_until is None

    @property
    def resting_until(self) -> float | None:
        """The later of the quota's hold and the token endpoint's: nothing goes before both."""
        held = [self.health.quota.held_until, self.token_held_until]
        return max((until for until in held if until is not None), default=None)

    @property
    def resting_for(self) -> float | None:
        held = [self.health.quota.held_for, self.token_held_for]
        return max((seconds for seconds in held if seconds is not None), default=None)

    @property
    def last_error(self) -> str | None:
        return self.token_refusal or self.health.last_error


@dataclass
class ListResult:
    """A Relay connection's content, shaped so the schema can expose it without copying."""

    edges: list[Edge]
    page_info: PageInfo
    total_count: int
    errors: list[ProviderError] = field(default_factory=list)


@dataclass
class _Cursor(Standings[Position]):
    """Where each provider stands, for one list (its fingerprint), as an opaque cursor."""

    fingerprint: str
    groups: int | None = None
    """A filtered distinct list's count of groups, once counted (it reads the list to its
    end): later pages say it again rather than read it again."""

    def encode(self) -> str:
        return _encoded(self.fingerprint, self.positions, self.done, self.totals, self.groups)

    @classmethod
    def decode(cls, text: str, fingerprint: str, providers: Sequence[str]) -> _Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            payload = orjson.loads(raw)
            positions = payload["p"]
            done = payload["d"]
            totals = payload["t"]
            fingerprint_given = payload["f"]
            groups = payload.get("g")
            valid = (
                (groups is None or _whole(groups))
                and _whole(payload["v"])
                and payload["v"] == 1
                and isinstance(fingerprint_given, str)
                and isinstance(positions, dict)
                and isinstance(done, list)
                and all(isinstance(name, str) for name in done)
                and isinstance(totals, dict)
                and all(isinstance(p, str) or _whole(p) for p in positions.values())
                and all(_whole(t) for t in totals.values())
                and _whole(sum(totals.values()))
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            valid = False
        if not valid:
            raise InvalidCursor("The cursor is malformed; use a cursor from this connection.")
        if fingerprint_given != fingerprint:
            raise InvalidCursor(
                "The cursor belongs to a different list (other filters or providers)."
            )
        if not set(positions) | set(done) | set(totals) <= set(providers):
            raise InvalidCursor("The cursor is malformed; use a cursor from this connection.")
        return cls(
            fingerprint,
            groups=groups,
            positions=dict(positions),
            done=set(done),
            totals=dict(totals),
        )


_LARGEST = 2**31 - 1
"""The largest number a cursor holds: a list's `totalCount` is a GraphQL Int, so no list the
gateway serves counts more records, nor is a position in one further on. A forged cursor
with more was an INTERNAL_SERVER_ERROR once it was written again (past 64 bits), a count
that was no Int, or a provider asked to skip 10^30 records."""


def _whole(value: object) -> bool:
    """A count or offset a cursor may hold: a bool is no number here, though Python's
    `int` says it is one."""
    return type(value) is int and 0 <= value <= _LARGEST


def _fingerprint(
    entity: Entity, criteria: Criteria, providers: Sequence[str], distinct: bool = False
) -> str:
    shown = (entity.value, sorted(criteria.items()), sorted(providers))
    text = repr((*shown, "distinct") if distinct else shown)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _order(entity: Entity, record: Record) -> tuple[Any, ...]:
    """Where a record stands in a merged list (`_merge`'s key)."""
    return (SORT_KEYS[entity](record), record.provider, record.source_id)


class Federation:
    def __init__(
        self,
        connectors: Mapping[str, Connector],
        limits: PageLimits,
        health: Mapping[str, ProviderHealth],
        cache: EntityCache | None = None,
        metrics: Metrics | None = None,
        linking: Linking | None = None,
        idempotency: Idempotency | None = None,
    ) -> None:
        self.connectors = dict(connectors)
        self.limits = limits
        self.health = dict(health)
        self.cache = cache or LocalEntityCache({}, lambda: 0.0)
        self.metrics = metrics or Metrics()
        self.linking = linking or Linking()
        self.writes = Writes(self, idempotency or LocalIdempotency(SystemClock()))

    def knows(self, provider: str) -> bool:
        return provider in self.connectors

    def capable(self, capability: type[C]) -> dict[str, C]:
        """The providers with `capability`, by name: found by type, as their classes declare."""
        found: dict[str, C] = {}
        for name, connector in sorted(self.connectors.items()):
            if isinstance(connector, capability):
                found[name] = connector
        return found

    def able(self, capability: type[C], provider: str) -> C:
        """The provider's connector, refused clearly if it lacks `capability`."""
        connector = self.connectors.get(provider)
        if not isinstance(connector, capability):
            raise BadUserInput(f"{provider} does not {capability.ability}.")
        return connector

    def choose(self, capability: type[C], wanted: str | None) -> tuple[str, C]:
        """The provider asked for, or else the only one with `capability`: never a guess."""
        if wanted is not None:
            return wanted, self.able(capability, wanted)
        able = self.capable(capability)
        if not able:
            raise BadUserInput(f"No configured provider can {capability.ability}.")
        if len(able) > 1:
            raise BadUserInput(
                f"Say which provider should {capability.ability}: {', '.join(able)}."
            )
        return next(iter(able.items()))

    def providers(self) -> list[ProviderView]:
        views = []
        for name, health in sorted(self.health.items()):
            auth = self.connectors[name].auth
            if auth is None:
                views.append(ProviderView(name, health, None))
                continue
            refusal = auth.refusal
            views.append(
                ProviderView(
                    name,
                    health,
                    auth.expires_at,
                    auth.held_until,
                    auth.held_for,
                    f"{refusal.code}: {refusal.message}" if refusal is not None else None,
                )
            )
        return views

    def named(self, wanted: Sequence[str] | None) -> None:
        """Refuses providers a caller named that would answer nothing, rather than answer
        nothing: one this gateway does not serve, or none at all (`[]` gave a list of 0 and
        a subscription that stayed silent). None: the caller named none, so all serve."""
        if wanted is None:
            return
        if not wanted:
            raise BadUserInput(
                "`providers` is empty: name at least one provider, or leave `providers` out."
            )
        unknown = sorted(set(wanted) - set(self.connectors))
        if unknown:
            raise BadUserInput(
                f"Unknown provider(s): {', '.join(unknown)}. "
                f"Known: {', '.join(sorted(self.connectors))}."
            )

    def listing(
        self, entity: Entity, criteria: Criteria, wanted: Sequence[str] | None = None
    ) -> list[str]:
        """The providers that can list `entity` under `criteria`, among those asked for.

        A provider asked for by name that cannot answer is named in a warning
        rather than silently giving nothing, and so is one left out, unasked, of a
        filtered list whose filter it cannot test, though it may hold records that match.
        """
        self.named(wanted)
        scope = []
        for name, connector in sorted(self.connectors.items()):
            if wanted is not None and name not in wanted:
                continue
            if connector.supports(entity, criteria):
                scope.append(name)
            elif wanted is not None and entity not in connector.lists:
                notices.warn(name, f"{name} has no list of {entity.value}s to answer from.")
            elif wanted is not None:
                notices.warn(name, f"{name} cannot list {entity.value} with these filters.")
            elif connector.cannot_filter(entity, criteria):
                notices.warn(
                    name,
                    f"{name} cannot list {entity.value} with these filters: its records are "
                    "left out of this list.",
                )
        return scope

    def page_size(self, first: int | None) -> int:
        if first is None:
            return self.limits.default
        if first < 1:
            raise BadUserInput("`first` must be at least 1.")
        if first > self.limits.maximum:
            raise LimitExceeded(
                "PAGE_SIZE_EXCEEDED",
                f"`first` may be at most {self.limits.maximum}.",
                limit=self.limits.maximum,
                actual=first,
            )
        return first

    async def connection(
        self,
        entity: Entity,
        *,
        criteria: Criteria,
        selection: Selection,
        first: int | None,
        after: str | None,
        providers: Sequence[str] | None,
        count: bool,
        distinct: bool = False,
    ) -> ListResult:
        if distinct:
            return await self._distinct(entity, criteria, selection, first, after, providers, count)
        size = self.page_size(first)
        scope = self.listing(entity, criteria, providers)
        fingerprint = _fingerprint(entity, criteria, scope)
        cursor = _Cursor.decode(after, fingerprint, scope) if after else _Cursor(fingerprint)
        selection = Selection(selection.fields | SORT_FIELDS[entity], selection.relations)
        requests = {
            name: ListRequest(criteria, selection, size + 1, cursor.positions.get(name), count)
            for name in scope
            if name not in cursor.done
        }
        requests.update(
            {
                name: ListRequest(criteria, Selection(), 1, None, count=True)
                for name in scope
                if name in cursor.done and count and name not in cursor.totals
            }
        )
        outcomes = dict(
            zip(
                requests,
                await asyncio.gather(
                    *(self._page(name, entity, request) for name, request in requests.items())
                ),
                strict=True,
            )
        )
        errors = [error for error in outcomes.values() if isinstance(error, ProviderError)]
        pages = {
            name: page
            for name, page in outcomes.items()
            if isinstance(page, Page) and name not in cursor.done
        }
        for name, outcome in outcomes.items():
            if isinstance(outcome, Page) and outcome.total is not None:
                cursor.totals[name] = outcome.total
            elif isinstance(outcome, Page) and count:
                notices.warn(name, f"{name} gave no count: totalCount leaves its records out.")
        edges = self._merge(entity, pages, cursor, size)
        total = sum(cursor.totals.get(name, 0) for name in scope)
        return _listed(edges, cursor, scope, after, total, errors)

    async def _distinct(
        self,
        entity: Entity,
        criteria: Criteria,
        selection: Selection,
        first: int | None,
        after: str | None,
        providers: Sequence[str] | None,
        count: bool,
    ) -> ListResult:
        """Each linked group once, merged, where the first of its records this list shows
        stands: the one first in the list's order among its records at providers in the
        list that match its filters (matched here, as `matches` says). So which record
        stands for a group never depends on the page it falls on, and nothing is kept
        between pages but each provider's position. Records skipped for their group are
        read past; a page with some needs more of each provider's list, asked for then."""
        size = self.page_size(first)
        scope = self.listing(entity, criteria, providers)
        fingerprint = _fingerprint(entity, criteria, scope, distinct=True)
        cursor = _Cursor.decode(after, fingerprint, scope) if after else _Cursor(fingerprint)
        wanted = Selection(
            selection.fields | SORT_FIELDS[entity] | _criteria_fields(entity, criteria),
            selection.relations,
        )
        buffers: dict[str, list[tuple[Any, Any, Record]]] = {}
        exhausted: dict[str, bool] = {}
        errors: list[ProviderError] = []
        edges: list[Edge] = []
        cursors = _PageCursors(cursor)
        shown: dict[str, Record] = {}
        total = cursor.groups or 0
        if count and criteria and cursor.groups is None:
            total = await self._distinct_total(entity, criteria, scope, errors)
            cursor.groups = None if errors else total
        while len(edges) < size:
            asked = {
                name: ListRequest(criteria, wanted, size + 1, _resume(cursor, buffers, name))
                for name in scope
                if name not in cursor.done
                and name not in errors_from(errors)
                and not exhausted.get(name)
                and len(buffers.get(name, ())) < 2
            }
            outcomes = await asyncio.gather(
                *(self._page(name, entity, request) for name, request in asked.items())
            )
            for name, outcome in zip(asked, outcomes, strict=True):
                if isinstance(outcome, ProviderError):
                    errors.append(outcome)
                    continue
                buffers.setdefault(name, []).extend(
                    (_order(entity, record), position, record)
                    for record, position in zip(outcome.records, outcome.positions, strict=True)
                )
                exhausted[name] = outcome.exhausted
                if outcome.exhausted and not buffers[name]:
                    cursor.done.add(name)
            live = {
                name: items
                for name, items in buffers.items()
                if items and name not in errors_from(errors)
            }
            if not live:
                break
            room = min(
                [len(items) - 1 for name, items in live.items() if not exhausted.get(name)]
                or [size]
            )
            if room <= 0:
                break
            taken, counts = merge(live, min(room, size - len(edges)))
            for name in counts:
                del buffers[name][: counts[name]]
            firsts = await self._firsts(entity, criteria, wanted, scope, taken, shown, errors)
            left = Counter(name for name, _, _ in taken)
            for name, position, record in taken:
                cursor.positions[name] = position
                left[name] -= 1
                if exhausted.get(name) and not buffers.get(name) and not left[name]:
                    cursor.done.add(name)
                moved = cursors.trail.step(name)
                merged = firsts.get(reference_of(record))
                if merged is not None:
                    edges.append(Edge(merged, cursors, moved))
                    if len(edges) == size:
                        break
        if count and not criteria:
            total = await self._distinct_total(entity, criteria, scope, errors)
        return _listed(edges, cursor, scope, after, total, errors)

    async def _firsts(
        self,
        entity: Entity,
        criteria: Criteria,
        selection: Selection,
        scope: Sequence[str],
        taken: Sequence[tuple[str, Any, Record]],
        shown: dict[str, Record],
        errors: list[ProviderError],
    ) -> dict[str, Record]:
        """Of the records taken, those that stand for their group, each merged with the
        rest of its group (read by id, one batch per provider). A provider that fails to
        give its records is an error of the list's: its groups are led and merged without
        them, so one may stand twice."""
        records = {reference_of(record): record for _, _, record in taken}
        groups = await self.linking.groups(entity, list(records))
        missing: dict[str, list[str]] = {}
        for group in groups.values():
            for ref in group.members:
                if ref not in records and ref not in shown:
                    missing.setdefault(provider_of(ref), []).append(ref.partition(":")[2])
        shown.update(records)
        for provider, keys in missing.items():
            try:
                found = await self.fetch(provider, entity, "id", keys, selection)
            except ProviderError as error:
                if error.provider not in errors_from(errors):
                    errors.append(error)
                continue
            for items in found.values():
                shown.update({reference_of(record): record for record in items})
        firsts: dict[str, Record] = {}
        for ref, record in records.items():
            group = groups[ref]
            members = [shown[member] for member in group.members if member in shown]
            listed = [
                member
                for member in members
                if member.provider in scope and matches(member, criteria)
            ]
            leader = min(listed or [record], key=lambda member: _order(entity, member))
            if reference_of(leader) == ref:
                firsts[ref] = self.linking.merged(members or [record], group.label, selection)
        return firsts

    async def _distinct_total(
        self,
        entity: Entity,
        criteria: Criteria,
        scope: Sequence[str],
        errors: list[ProviderError],
    ) -> int:
        """Groups in the list. Without filters, the providers' own counts less the records
        the store knows share a group; with filters, the list is read to its end, once: the
        count goes on in the list's cursors."""
        failed = errors_from(errors)
        if not criteria:
            outcomes = await asyncio.gather(
                *(
                    self._page(name, entity, ListRequest({}, Selection(), 1, None, count=True))
                    for name in scope
                    if name not in failed
                )
            )
            answered = [name for name in scope if name not in failed]
            records = 0
            for name, outcome in zip(answered, outcomes, strict=True):
                if isinstance(outcome, ProviderError):
                    errors.append(outcome)
                elif outcome.total is None:
                    notices.warn(name, f"{name} gave no count: totalCount leaves its records out.")
                else:
                    records += outcome.total
            return records - await self.linking.store.duplicates(entity, answered)
        refs: list[str] = []
        for name in scope:
            if name in failed:
                continue
            position = None
            while True:
                request = ListRequest(criteria, Selection(), self.limits.maximum, position)
                page = await self._page(name, entity, request)
                if isinstance(page, ProviderError):
                    errors.append(page)
                    break
                refs += [reference_of(record) for record in page.records]
                if page.exhausted or not page.positions:
                    break
                position = page.positions[-1]
        groups = await self.linking.groups(entity, refs)
        return len({group.label for group in groups.values()})

    def _merge(
        self, entity: Entity, pages: Mapping[str, Page], cursor: _Cursor, size: int
    ) -> list[Edge]:
        """One provider's page needs no sort keys: its own order is the list's (a tenth of
        the CPU of a 1,000-record page went to sort keys and the heap)."""
        cursors = _PageCursors(cursor)
        if len(pages) == 1:
            ((name, page),) = pages.items()
            records = cursor.take(
                name, page.records, page.positions, page.exhausted, size, cursors.trail
            )
        else:
            streams = {
                name: (
                    [
                        (_order(entity, record), position, record)
                        for record, position in zip(page.records, page.positions, strict=True)
                    ],
                    page.exhausted,
                )
                for name, page in pages.items()
            }
            records = cursor.advance(streams, size, cursors.trail)
        return [Edge(record, cursors, index) for index, record in enumerate(records)]

    async def _page(self, name: str, entity: Entity, request: ListRequest) -> Page | ProviderError:
        try:
            return await self.health[name].call(lambda: self.connectors[name].page(entity, request))
        except ProviderError as error:
            return error

    def referencing(self, entity: Entity, by: str) -> list[str]:
        """Providers that keep `entity` records about other providers' records, by `by`."""
        return [
            name
            for name, connector in sorted(self.connectors.items())
            if isinstance(connector, RelationshipRecords)
            and entity in connector.serves
            and by in connector.references
        ]

    async def fetch(
        self, provider: str, entity: Entity, by: str, keys: Sequence[str], selection: Selection
    ) -> Mapping[str, Sequence[Record]]:
        connector = self.connectors.get(provider)
        if connector is None:
            return {}
        if entity is Entity.RELATIONSHIP and entity not in connector.serves:
            return await derive(self, provider, by, keys)
        if entity not in connector.serves:
            return {}
        if by != "id" or not self.cache.caches(provider, entity):
            return await self.health[provider].call(
                lambda: connector.fetch(entity, by, keys, selection)
            )
        found: dict[str, Sequence[Record]] = {}
        missing = []
        for key in keys:
            cached = await self.cache.get(
                provider, entity, key, selection, connector.credential_scope(entity, key)
            )
            self.metrics.cache_lookup(provider, entity.value, cached is not None)
            if cached is None:
                missing.append(key)
            else:
                found[key] = cached
        if missing:
            versions = {key: await self.cache.version(provider, entity, key) for key in missing}
            fetched = await self.health[provider].call(
                lambda: connector.fetch(entity, by, missing, selection)
            )
            for key, records in fetched.items():
                scope = connector.credential_scope(entity, key)
                version = versions.get(key, -1)
                await self.cache.put(provider, entity, key, selection, scope, records, version)
                found[key] = records
        return found

    async def write(self, provider: str, operation: Callable[[], Awaitable[T]]) -> T:
        """A mutation at one provider: guarded like reads, never retried, late means unknown."""
        return await self.health[provider].call(operation, write=True)


def _listed(
    edges: list[Edge],
    cursor: _Cursor,
    scope: Sequence[str],
    after: str | None,
    total: int,
    errors: list[ProviderError],
) -> ListResult:
    return ListResult(
        edges=edges,
        page_info=PageInfo(
            has_next_page=any(name not in cursor.done for name in scope),
            has_previous_page=after is not None,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else cursor.encode(),
        ),
        total_count=total,
        errors=errors,
    )


def errors_from(errors: Sequence[ProviderError]) -> set[str]:
    return {error.provider for error in errors}


def _resume(
    cursor: _Cursor, buffers: Mapping[str, Sequence[tuple[Any, Any, Record]]], name: str
) -> Any:
    """Where a provider's list goes on: after what is read of it already."""
    held = buffers.get(name)
    return held[-1][1] if held else cursor.positions.get(name)


def _criteria_fields(entity: Entity, criteria: Criteria) -> frozenset[str]:
    """The fields the gateway reads to judge a record against the list's filters (a
    tenant's name is its first and last names, which every list reads anyway)."""
    judged = frozenset(criteria) & {"name", "city", "code", "rooms", "occupancy"}
    return judged - {"name"} if entity is Entity.TENANT else judged
