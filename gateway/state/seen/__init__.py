"""Deliveries already taken, so a provider's retry is taken once: the protocol and the in-process
record. Redis's sits beside it.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

from cachetools import TLRUCache

from gateway.clock import Clock


class Seen(Protocol):
    """Deliveries already taken, so a provider's repeat is acknowledged and not redone."""

    async def claim(self, provider: str, key: str, window: float) -> bool:
        """Marks the delivery taken for `window` seconds; false if it already was."""
        ...

    async def release(self, provider: str, key: str) -> None:
        """Unmarks it, since processing failed: the provider's retry must be processed."""
        ...


class LocalSeen:
    """In this process. `claim` has no await inside, so two copies arriving together
    cannot both pass.

    At most 100,000 deliveries, each until its window ends, the least recently seen out
    first when full. Keys are kept as their SHA-256, since a content key is as long as what
    the provider put in it: some 300 bytes an entry, 30 MB at most."""

    def __init__(self, clock: Clock) -> None:
        self._until: TLRUCache[tuple[str, bytes], float] = TLRUCache(
            maxsize=100_000, ttu=lambda _key, until, _now: until, timer=clock
        )
        self._clock = clock

    async def claim(self, provider: str, key: str, window: float) -> bool:
        taken = _taken(provider, key)
        if taken in self._until:
            return False
        self._until[taken] = self._clock() + window
        return True

    async def release(self, provider: str, key: str) -> None:
        self._until.pop(_taken(provider, key), None)


def _taken(provider: str, key: str) -> tuple[str, bytes]:
    return provider, hashlib.sha256(key.encode()).digest()
