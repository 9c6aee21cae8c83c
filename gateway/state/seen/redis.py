"""Deliveries already taken, in Redis: a provider's retry that reaches another replica is
recognised there too. SET NX makes the claim atomic across replicas; its expiry is the
delivery's window."""

from __future__ import annotations

import hashlib

from gateway.state.redis import PREFIX, RedisLink

__all__ = ["RedisSeen"]


class RedisSeen:
    def __init__(self, link: RedisLink) -> None:
        self._link = link

    async def claim(self, provider: str, key: str, window: float) -> bool:
        """Raises `RedisUnavailable`: without the shared record a repeat could be redone."""
        taken = await self._link.run(
            "webhook claim",
            lambda client: client.set(self._key(provider, key), 1, nx=True, px=int(window * 1000)),
        )
        return bool(taken)

    async def release(self, provider: str, key: str) -> None:
        await self._link.run(
            "webhook release", lambda client: client.delete(self._key(provider, key))
        )

    @staticmethod
    def _key(provider: str, key: str) -> str:
        """Hashed: a content key (Primmo's) can be long."""
        return f"{PREFIX}seen:{provider}:{hashlib.sha256(key.encode()).hexdigest()}"
