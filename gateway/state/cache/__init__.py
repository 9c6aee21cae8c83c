"""Records loaded by id, kept for a while per provider and type; a change evicts exactly them.

Off unless configured (`[cache] ttl`, seconds per "provider.Type"), and never
for lists, whose membership changes without a webhook naming them. Entries are
keyed by the credentials that fetched them as well as the record, so a record
read with one landlord's SCOM token is never served under another's.

The methods are coroutines so that replicas can share one cache in Redis
(`gateway.shared.cache.RedisEntityCache`) behind the same calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from cachetools import LRUCache, TTLCache

from gateway.clock import Clock
from gateway.model import Entity, Record, Selection, settled

__all__ = ["ASIDE_SECONDS", "EntityCache", "LocalEntityCache"]

_Key = tuple[str, Selection, str]
_Place = tuple[str, Entity, str]

ASIDE_SECONDS = 300.0
"""How long a copy set aside by a write waits for the provider's report of that write: its
webhooks come within seconds, and a retried delivery within minutes."""


class EntityCache(Protocol):
    def caches(self, provider: str, entity: Entity) -> bool:
        """Whether records of this provider and type are kept at all (configured, not off)."""
        ...

    async def version(self, provider: str, entity: Entity, source_id: str) -> int:
        """How many times the record was evicted: a read started before an eviction
        must not store what it read, or the stale copy would outlive the change."""
        ...

    async def get(
        self, provider: str, entity: Entity, key: str, selection: Selection, scope: str
    ) -> Sequence[Record] | None: ...

    async def put(
        self,
        provider: str,
        entity: Entity,
        key: str,
        selection: Selection,
        scope: str,
        records: Sequence[Record],
        version: int,
    ) -> None:
        """Keeps `records` unless the record was evicted since `version` was read."""
        ...

    async def evict(self, provider: str, entity: Entity, source_id: str) -> int:
        """Every cached copy of that record, whatever fields or credentials it was read with."""
        ...

    async def peek(
        self, provider: str, entity: Entity, source_id: str
    ) -> tuple[Selection, Record] | None:
        """A copy of the record as kept (the one read with the most fields), with the fields
        it was read with: what it was before a change, to tell what changed."""
        ...

    async def set_aside(self, provider: str, entity: Entity, source_id: str) -> int:
        """Evicts the record as `evict` does, keeping its fullest copy aside for
        `ASIDE_SECONDS`: what it was before a write the gateway made, for the provider's
        report of that write (its webhook, later) to be told against."""
        ...

    async def aside(
        self, provider: str, entity: Entity, source_id: str
    ) -> tuple[Selection, Record] | None:
        """The copy set aside for the record, taken: only the first report uses it."""
        ...


class LocalEntityCache:
    """In this process, for one gateway; replicas share `RedisEntityCache` instead.

    Bounded in entries, since records come from providers, not callers: 50,000 per cached
    provider and type (an entry is what one key loaded, with one selection and one set of
    credentials), each for its ttl, least recently used out first; some 5 kB an entry for
    a Primmo tenant as measured, so up to about 250 MB for a type read in full. And
    200,000 eviction counters, about 250 bytes each (50 MB), and 10,000 copies set aside by
    writes, each for `ASIDE_SECONDS`."""

    def __init__(self, ttls: Mapping[tuple[str, Entity], float], clock: Clock) -> None:
        self.ttls = {place: ttl for place, ttl in ttls.items() if ttl > 0}
        self._caches: dict[tuple[str, Entity], TTLCache[_Key, Sequence[Record]]] = {
            place: TTLCache(maxsize=50_000, ttl=ttl, timer=clock)
            for place, ttl in self.ttls.items()
        }
        self._versions: LRUCache[_Place, int] = LRUCache(maxsize=200_000)
        self._aside: TTLCache[_Place, tuple[Selection, Record]] = TTLCache(
            maxsize=10_000, ttl=ASIDE_SECONDS, timer=clock
        )

    async def version(self, provider: str, entity: Entity, source_id: str) -> int:
        return self._versions.get((provider, entity, source_id), 0)

    def caches(self, provider: str, entity: Entity) -> bool:
        return (provider, entity) in self.ttls

    async def get(
        self, provider: str, entity: Entity, key: str, selection: Selection, scope: str
    ) -> Sequence[Record] | None:
        cache = self._caches.get((provider, entity))
        return cache.get((key, selection, scope)) if cache is not None else None

    async def put(
        self,
        provider: str,
        entity: Entity,
        key: str,
        selection: Selection,
        scope: str,
        records: Sequence[Record],
        version: int,
    ) -> None:
        cache = self._caches.get((provider, entity))
        if cache is not None and records and version == await self.version(provider, entity, key):
            cache[(key, selection, scope)] = [settled(record) for record in records]

    async def peek(
        self, provider: str, entity: Entity, source_id: str
    ) -> tuple[Selection, Record] | None:
        cache = self._caches.get((provider, entity))
        copies = [
            (selection, records[0])
            for (key, selection, _), records in list((cache or {}).items())
            if key == source_id and records
        ]
        return max(copies, key=lambda copy: len(copy[0].fields), default=None)

    async def set_aside(self, provider: str, entity: Entity, source_id: str) -> int:
        kept = await self.peek(provider, entity, source_id)
        if kept is not None:
            self._aside[(provider, entity, source_id)] = kept
        return await self.evict(provider, entity, source_id)

    async def aside(
        self, provider: str, entity: Entity, source_id: str
    ) -> tuple[Selection, Record] | None:
        return self._aside.pop((provider, entity, source_id), None)

    async def evict(self, provider: str, entity: Entity, source_id: str) -> int:
        place = (provider, entity, source_id)
        self._versions[place] = self._versions.get(place, 0) + 1
        cache = self._caches.get((provider, entity))
        if cache is None:
            return 0
        stale = [entry for entry in list(cache.keys()) if entry[0] == source_id]
        for entry in stale:
            cache.pop(entry, None)
        return len(stale)
