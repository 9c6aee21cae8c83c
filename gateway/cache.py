"""Records loaded by id, kept for a while per provider and type; a change evicts exactly them.

Off unless configured (`[cache] ttl`, seconds per "provider.Type"), and never
for lists, whose membership changes without a webhook naming them. Entries are
keyed by the credentials that fetched them as well as the record, so a record
read with one landlord's SCOM token is never served under another's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cachetools import LRUCache, TTLCache

from gateway.clock import Clock
from gateway.metrics import Metrics
from gateway.model import Entity, Record, Selection

__all__ = ["EntityCache"]

_Key = tuple[str, Selection, str]


class EntityCache:
    def __init__(
        self,
        ttls: Mapping[tuple[str, Entity], float],
        clock: Clock,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics or Metrics()
        self._caches: dict[tuple[str, Entity], TTLCache[_Key, Sequence[Record]]] = {
            place: TTLCache(maxsize=50_000, ttl=ttl, timer=clock)
            for place, ttl in ttls.items()
            if ttl > 0
        }
        self._versions: LRUCache[tuple[str, Entity, str], int] = LRUCache(maxsize=200_000)

    def version(self, provider: str, entity: Entity, source_id: str) -> int:
        """How many times the record was evicted: a read started before an eviction
        must not store what it read, or the stale copy would outlive the change."""
        return self._versions.get((provider, entity, source_id), 0)

    def caches(self, provider: str, entity: Entity) -> bool:
        return (provider, entity) in self._caches

    def get(
        self, provider: str, entity: Entity, key: str, selection: Selection, scope: str
    ) -> Sequence[Record] | None:
        cache = self._caches.get((provider, entity))
        if cache is None:
            return None
        records = cache.get((key, selection, scope))
        self._metrics.cache_lookup(provider, entity.value, records is not None)
        return records

    def put(
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
        if cache is not None and records and version == self.version(provider, entity, key):
            cache[(key, selection, scope)] = records

    def evict(self, provider: str, entity: Entity, source_id: str) -> int:
        """Every cached copy of that record, whatever fields or credentials it was read with."""
        place = (provider, entity, source_id)
        self._versions[place] = self._versions.get(place, 0) + 1
        cache = self._caches.get((provider, entity))
        if cache is None:
            return 0
        stale = [entry for entry in list(cache.keys()) if entry[0] == source_id]
        for entry in stale:
            cache.pop(entry, None)
        return len(stale)
