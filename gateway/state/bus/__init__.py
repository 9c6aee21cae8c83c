"""Changes delivered to subscribers: the protocol every bus keeps, and the in-process bus. A Redis
bus for replicas sits beside it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from gateway.events import Change

logger = logging.getLogger("gateway.events")


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
