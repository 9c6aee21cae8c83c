"""Changes providers tell us about, and who is listening for them.

The bus is an interface with two implementations: `LocalBus` in this process,
and `gateway.shared.bus.RedisBus`, Redis pub/sub for several replicas, behind
the same two methods, so neither the schema nor the webhook receivers notice.
Likewise the record of deliveries already taken: `LocalSeen`, or Redis.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from cachetools import TLRUCache

from gateway.clock import Clock
from gateway.model import Entity

__all__ = [
    "Change",
    "ChangeKind",
    "Delivery",
    "EventBus",
    "FellBehind",
    "LocalBus",
    "LocalSeen",
    "Seen",
]

logger = logging.getLogger("gateway.events")


class ChangeKind(enum.Enum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"
    DELETED = "DELETED"


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    entity: Entity
    provider: str
    source_id: str


@dataclass(frozen=True)
class Delivery:
    """What a provider's webhook delivery said, once read by its connector.

    `key` identifies the delivery for de-duplication (a provider's delivery id, or
    what it changed); `outcome` is the connector's own account, returned to the sender.
    """

    changes: tuple[Change, ...] = ()
    key: str | None = None
    outcome: Mapping[str, Any] = field(default_factory=dict)
    window: float = 600.0
    """Seconds a repeat of `key` counts as the same delivery. Short where the key is the
    content (Primmo sends no delivery id), so a later real change is not mistaken for it."""
    work: Callable[[], Awaitable[tuple[tuple[Change, ...], Mapping[str, Any]]]] | None = None
    """What the delivery asks of the gateway beyond publishing (SCOM: activate a landlord),
    run only once the key is known to be new; it returns the changes and the outcome."""


class EventBus(Protocol):
    async def publish(self, change: Change) -> None: ...

    def listen(self) -> AsyncIterator[Change]:
        """Changes published from now on, until the listener stops iterating."""
        ...


class FellBehind(Exception):
    """A listener missed changes (it stopped reading while they kept coming, or the feed
    between replicas broke); it is ended, not silently thinned."""

    def __init__(self, message: str, code: str = "FELL_BEHIND") -> None:
        super().__init__(message)
        self.code = code


@dataclass(eq=False)
class _Listener:
    queue: asyncio.Queue[Change | None]
    """`None` only wakes the listener up to end it."""
    ending: FellBehind | None = None


class LocalBus:
    """In-process fan-out. A listener that falls `backlog` changes behind is ended with
    `FellBehind` once it has read what it holds: it must resubscribe (and re-read), rather
    than hold the publisher back or miss changes without knowing."""

    def __init__(self, backlog: int = 1000) -> None:
        self._backlog = backlog
        self._listeners: set[_Listener] = set()

    @property
    def listeners(self) -> int:
        return len(self._listeners)

    async def publish(self, change: Change) -> None:
        for listener in list(self._listeners):
            if listener.ending is not None:
                continue
            if listener.queue.qsize() >= self._backlog:
                logger.warning("a listener fell %d changes behind; ending it", self._backlog)
                listener.ending = FellBehind(
                    "The subscription fell behind the changes; subscribe again."
                )
                continue
            listener.queue.put_nowait(change)

    def interrupt(self, reason: str, code: str) -> None:
        """Ends every listener once it has read what it holds: changes may have been missed."""
        for listener in list(self._listeners):
            if listener.ending is None:
                listener.ending = FellBehind(reason, code)
                listener.queue.put_nowait(None)

    async def listen(self) -> AsyncIterator[Change]:
        listener = _Listener(asyncio.Queue(self._backlog + 1))
        self._listeners.add(listener)
        try:
            while True:
                if listener.ending is not None and listener.queue.empty():
                    raise listener.ending
                change = await listener.queue.get()
                if change is not None:
                    yield change
        finally:
            self._listeners.discard(listener)


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
