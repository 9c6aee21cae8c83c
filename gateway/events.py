"""Changes providers tell us about, and who is listening for them.

The bus is an interface with one in-process implementation; a deployment with
several replicas can put Redis pub/sub behind the same two methods without the
schema or the webhook receivers noticing.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.model import Entity

__all__ = ["Change", "ChangeKind", "Delivery", "EventBus", "FellBehind", "LocalBus"]

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
    """A listener stopped reading while changes kept coming; it is ended, not silently thinned."""


@dataclass(eq=False)
class _Listener:
    queue: asyncio.Queue[Change]
    overflowed: bool = False


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
            if listener.queue.full():
                if not listener.overflowed:
                    logger.warning("a listener fell %d changes behind; ending it", self._backlog)
                listener.overflowed = True
                continue
            listener.queue.put_nowait(change)

    async def listen(self) -> AsyncIterator[Change]:
        listener = _Listener(asyncio.Queue(self._backlog))
        self._listeners.add(listener)
        try:
            while True:
                if listener.overflowed and listener.queue.empty():
                    raise FellBehind("The subscription fell behind the changes; subscribe again.")
                yield await listener.queue.get()
        finally:
            self._listeners.discard(listener)
