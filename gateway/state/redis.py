"""The one Redis connection pool of a gateway process, and what happens when Redis is gone.

Each use says what it falls back to: token reads and the entity cache carry on
without Redis (tokens per replica, no cache), while a webhook cannot be taken
without it, since another replica might take the same delivery or miss its
eviction; it is refused with `REDIS_UNAVAILABLE` and the provider sends it again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

__all__ = ["RedisLink", "RedisUnavailable"]

logger = logging.getLogger("gateway.shared")

T = TypeVar("T")

PREFIX = "propgate:"


class RedisUnavailable(Exception):
    """Redis did not answer; the message is safe to show (it names no password)."""

    code = "REDIS_UNAVAILABLE"


class RedisLink:
    """A short timeout on every call, so a Redis that hangs costs a second, not a request;
    one immediate retry (a pooled connection that a Redis restart closed), not redis-py's
    default of three with backoff, which would hold every request back while Redis is down;
    and a bounded pool that makes a burst wait for a connection rather than fail."""

    def __init__(self, url: str, timeout: float = 1.0, connections: int = 32) -> None:
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=connections,
            timeout=timeout,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1),
        )
        self.client: Redis = Redis.from_pool(pool)
        self._failing = False

    async def run(self, what: str, call: Callable[[Redis], Awaitable[T]]) -> T:
        """`call` against Redis; its failure becomes `RedisUnavailable`, logged once per outage."""
        try:
            result = await call(self.client)
        except (RedisError, OSError) as error:
            if not self._failing:
                logger.warning("redis unavailable (%s: %s)", what, type(error).__name__)
            self._failing = True
            raise RedisUnavailable(f"Redis is unavailable ({what}).") from None
        if self._failing:
            logger.info("redis answers again")
        self._failing = False
        return result

    async def up(self) -> bool:
        try:
            await self.run("ping", lambda client: client.ping())
        except RedisUnavailable:
            return False
        return True

    async def aclose(self) -> None:
        await self.client.aclose()
