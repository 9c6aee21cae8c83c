"""Changes over Redis pub/sub, so a webhook taken by one replica reaches every replica's
subscribers.

Each replica holds one Redis subscription and hands what it reads to its own
`LocalBus`, which keeps its rule for slow listeners (`FellBehind`): a listener
that stops reading is ended rather than holding the subscription back. Pub/sub
keeps nothing for a replica that is not listening, so when the subscription
breaks every listener is ended too (it may have missed changes; code
`REDIS_UNAVAILABLE`), and the replica subscribes again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator

from redis.exceptions import RedisError

from gateway.events import Change, ChangeKind, FieldChange
from gateway.model import Entity
from gateway.state.bus import FellBehind, LocalBus
from gateway.state.redis import PREFIX, RedisLink, RedisUnavailable

__all__ = ["CHANNEL", "RedisBus"]

logger = logging.getLogger("gateway.shared")

CHANNEL = f"{PREFIX}changes"
_BROKEN = "The change feed between replicas is broken (Redis unavailable); subscribe again."


def _encode(change: Change) -> str:
    return json.dumps(
        {
            "kind": change.kind.value,
            "entity": change.entity.value,
            "provider": change.provider,
            "sourceId": change.source_id,
            "changes": [[item.field, item.previous, item.new] for item in change.changes],
        }
    )


def _decode(data: bytes) -> Change:
    said = json.loads(data)
    return Change(
        ChangeKind(said["kind"]),
        Entity(said["entity"]),
        said["provider"],
        said["sourceId"],
        tuple(FieldChange(*item) for item in said.get("changes", [])),
    )


class RedisBus:
    def __init__(self, link: RedisLink, backlog: int = 1000, retry_seconds: float = 1.0) -> None:
        self._link = link
        self._local = LocalBus(backlog)
        self._retry_seconds = retry_seconds
        self._subscribed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    @property
    def listeners(self) -> int:
        return self._local.listeners

    async def publish(self, change: Change) -> None:
        """Raises `RedisUnavailable`: a change no replica heard must not be acknowledged."""
        await self._link.run("publish", lambda client: client.publish(CHANNEL, _encode(change)))

    async def listen(self) -> AsyncIterator[Change]:
        if not self._subscribed.is_set():
            raise FellBehind(_BROKEN, RedisUnavailable.code)
        async for change in self._local.listen():
            yield change

    async def start(self, wait: float = 2.0) -> None:
        """Subscribes, waiting a moment for it; a Redis that is down is retried in the
        background rather than holding the start-up back."""
        self._reader = asyncio.create_task(self._read())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), wait)

    async def aclose(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)

    async def _read(self) -> None:
        while True:
            try:
                async with self._link.client.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    if not self._subscribed.is_set():
                        logger.info("listening for changes from every replica")
                    self._subscribed.set()
                    while True:
                        message = await pubsub.get_message(timeout=1.0)
                        if message is not None:
                            await self._take(message["data"])
            except (RedisError, OSError) as error:
                if self._subscribed.is_set():
                    logger.warning("change feed lost (%s); resubscribing", type(error).__name__)
                self._subscribed.clear()
                self._local.interrupt(_BROKEN, RedisUnavailable.code)
                await asyncio.sleep(self._retry_seconds)

    async def _take(self, data: bytes) -> None:
        try:
            change = _decode(data)
        except (ValueError, KeyError, TypeError):
            logger.warning("change feed: a message that is not a change was ignored")
            return
        await self._local.publish(change)
