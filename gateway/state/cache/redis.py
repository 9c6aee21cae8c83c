"""The entity cache in Redis, shared by every replica, with the in-process cache's guarantees.

Each record has one Redis hash of its cached copies (one field per selection
and credential scope, hashed: a scope may name a landlord) and one version
counter. An eviction bumps the counter and deletes the hash in one script; a
fill stores its copy only if the counter still says what it said when the read
began, checked in one script too, so a read that started on one replica before
another replica's eviction cannot put the stale copy back. Each copy carries its
own expiry; the hash lives as long as its newest copy.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from gateway.clock import Clock
from gateway.model import Entity, Record, Selection
from gateway.state import records as codec
from gateway.state.cache import ASIDE_SECONDS
from gateway.state.redis import PREFIX, RedisLink, RedisUnavailable

__all__ = ["RedisEntityCache", "VERSION_SECONDS"]

logger = logging.getLogger("gateway.shared")

VERSION_SECONDS = 3600
"""How long an eviction is remembered: far longer than any read in flight (a request's
deadline), which is all a version guards."""

_FILL = """
if (redis.call('GET', KEYS[1]) or '0') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 1
"""
_EVICT = """
redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local copies = redis.call('HLEN', KEYS[2])
redis.call('DEL', KEYS[2])
return copies
"""
_UNKNOWN = -1
"""The version when Redis did not answer: it matches no counter, so nothing is filled."""


def _canonical(selection: Selection) -> Any:
    return [
        sorted(selection.fields),
        {name: _canonical(sub) for name, sub in sorted(selection.relations.items())},
    ]


def _copy(selection: Selection, scope: str) -> str:
    text = json.dumps([_canonical(selection), scope], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _read(kept: bytes | str, now: float) -> tuple[bool, tuple[Record, ...], frozenset[str]] | None:
    """A stored copy, `<until> <fields> <records>`: whether it is still fresh, its records,
    and the fields they were read with; None for one that cannot be read."""
    text = kept.decode() if isinstance(kept, bytes) else kept
    try:
        until, fields, records = text.split(" ", 2)
        return now < float(until), codec.loads(records), frozenset(json.loads(fields))
    except ValueError:
        return None


class RedisEntityCache:
    def __init__(
        self, ttls: Mapping[tuple[str, Entity], float], clock: Clock, link: RedisLink
    ) -> None:
        self._ttls = {place: ttl for place, ttl in ttls.items() if ttl > 0}
        self._clock = clock
        self._link = link
        self._fill = link.client.register_script(_FILL)
        self._evict = link.client.register_script(_EVICT)

    def caches(self, provider: str, entity: Entity) -> bool:
        return (provider, entity) in self._ttls

    async def version(self, provider: str, entity: Entity, source_id: str) -> int:
        counter, _ = self._keys(provider, entity, source_id)
        try:
            value = await self._link.run("cache version", lambda client: client.get(counter))
        except RedisUnavailable:
            return _UNKNOWN
        return int(value) if value is not None else 0

    async def get(
        self, provider: str, entity: Entity, key: str, selection: Selection, scope: str
    ) -> Sequence[Record] | None:
        if not self.caches(provider, entity):
            return None
        _, copies = self._keys(provider, entity, key)
        try:
            kept = await self._link.run(
                "cache read", lambda client: client.hget(copies, _copy(selection, scope))
            )
        except RedisUnavailable:
            return None
        if kept is None:
            return None
        copy = _read(kept, self._clock())
        if copy is None:
            logger.warning("cache: a copy of %s %s could not be read", provider, entity.value)
            return None
        return copy[1] if copy[0] else None

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
        ttl = self._ttls.get((provider, entity))
        if ttl is None or not records or version == _UNKNOWN:
            return
        fields = json.dumps(sorted(selection.fields), separators=(",", ":"))
        kept = f"{self._clock() + ttl!r} {fields} {codec.dumps(records)}"
        try:
            await self._link.run(
                "cache fill",
                lambda _: self._fill(
                    keys=list(self._keys(provider, entity, key)),
                    args=[version, _copy(selection, scope), kept, int(ttl * 1000)],
                ),
            )
        except RedisUnavailable:
            return

    async def peek(
        self, provider: str, entity: Entity, source_id: str
    ) -> tuple[Selection, Record] | None:
        if not self.caches(provider, entity):
            return None
        _, copies = self._keys(provider, entity, source_id)
        try:
            kept = await self._link.run("cache peek", lambda client: client.hvals(copies))
        except RedisUnavailable:
            return None
        found = []
        for value in kept:
            copy = _read(value, self._clock())
            if copy is not None and copy[0] and copy[1]:
                found.append((Selection(copy[2]), copy[1][0]))
        return max(found, key=lambda one: len(one[0].fields), default=None)

    async def set_aside(self, provider: str, entity: Entity, source_id: str) -> int:
        """Raises `RedisUnavailable` as `evict` does; a copy that could not be set aside only
        leaves the report of the write without what changed."""
        kept = await self.peek(provider, entity, source_id)
        if kept is not None:
            selection, record = kept
            fields = json.dumps(sorted(selection.fields), separators=(",", ":"))
            aside = f"{fields} {codec.dumps([record])}"
            name = self._aside_key(provider, entity, source_id)
            try:
                await self._link.run(
                    "cache set aside",
                    lambda client: client.set(name, aside, px=int(ASIDE_SECONDS * 1000)),
                )
            except RedisUnavailable:
                logger.warning("cache: a copy of %s %s was not set aside", provider, entity.value)
        return await self.evict(provider, entity, source_id)

    async def aside(
        self, provider: str, entity: Entity, source_id: str
    ) -> tuple[Selection, Record] | None:
        name = self._aside_key(provider, entity, source_id)
        try:
            kept = await self._link.run("cache aside", lambda client: client.getdel(name))
        except RedisUnavailable:
            return None
        if kept is None:
            return None
        text = kept.decode() if isinstance(kept, bytes) else kept
        try:
            fields, records = text.split(" ", 1)
            (record,) = codec.loads(records)
            return Selection(frozenset(json.loads(fields))), record
        except ValueError:
            return None

    async def evict(self, provider: str, entity: Entity, source_id: str) -> int:
        """Raises `RedisUnavailable`: an eviction that did not happen must not be acknowledged."""
        copies: int = await self._link.run(
            "cache eviction",
            lambda _: self._evict(
                keys=list(self._keys(provider, entity, source_id)), args=[VERSION_SECONDS * 1000]
            ),
        )
        return copies

    @staticmethod
    def _keys(provider: str, entity: Entity, source_id: str) -> tuple[str, str]:
        place = f"{PREFIX}cache:{provider}:{entity.value}:{source_id}"
        return f"{place}:version", f"{place}:copies"

    @staticmethod
    def _aside_key(provider: str, entity: Entity, source_id: str) -> str:
        return f"{PREFIX}cache:{provider}:{entity.value}:{source_id}:aside"
