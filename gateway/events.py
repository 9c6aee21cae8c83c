"""Changes providers tell us about, and who is listening for them.

The bus is an interface with one in-process implementation; a deployment with
several replicas can put Redis pub/sub behind the same two methods without the
schema or the webhook receivers noticing.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.model import Entity

__all__ = ["Change", "ChangeKind", "Delivery", "EventBus", "LocalBus"]

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


class EventBus(Protocol):
    async def publish(self, change: Change) -> None: ...

    def listen(self) -> AsyncIterator[Change]:
        """Changes published from now on, until the listener stops iterating."""
        ...


class LocalBus:
    """In-process fan-out. A listener that falls 1,000 changes behind loses the oldest, with a
    log line, rather than holding the publisher back."""

    def __init__(self, backlog: int = 1000) -> None:
        self._backlog = backlog
        self._queues: set[asyncio.Queue[Change]] = set()

    @property
    def listeners(self) -> int:
        return len(self._queues)

    async def publish(self, change: Change) -> None:
        for queue in list(self._queues):
            if queue.full():
                queue.get_nowait()
                logger.warning("a listener fell %d changes behind; dropped one", self._backlog)
            queue.put_nowait(change)

    async def listen(self) -> AsyncIterator[Change]:
        async with self._queue() as queue:
            while True:
                yield await queue.get()

    @asynccontextmanager
    async def _queue(self) -> AsyncIterator[asyncio.Queue[Change]]:
        queue: asyncio.Queue[Change] = asyncio.Queue(self._backlog)
        self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)
