"""Idempotency keys in Redis: a client's retry that reaches another replica finds the first
request's hold, waits for its outcome, or gets it. The hold is `SET NX`, so two replicas
cannot both take a key; finishing and releasing are scripts that touch only an entry of the
same body, and releasing only one still without an outcome, so a kept outcome is never lost."""

from __future__ import annotations

import asyncio
import hashlib
import json

from gateway.state.idempotency import (
    _IN_USE,
    _REUSED,
    KEEP_SECONDS,
    WAIT_SECONDS,
    KeyInUse,
    KeyReused,
)
from gateway.state.redis import PREFIX, RedisLink

__all__ = ["RedisIdempotency"]

_FINISH = """
local held = redis.call('GET', KEYS[1])
if not held or cjson.decode(held)['f'] ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""
_RELEASE = """
local held = redis.call('GET', KEYS[1])
if held then
  local entry = cjson.decode(held)
  if entry['f'] == ARGV[1] and entry['o'] == nil then
    redis.call('DEL', KEYS[1])
  end
end
return 0
"""
_POLL_SECONDS = 0.05


class RedisIdempotency:
    """Raises `RedisUnavailable` when Redis does not answer: without the shared record, a
    retry on another replica could write twice, so the write is refused instead."""

    def __init__(self, link: RedisLink, wait: float = WAIT_SECONDS) -> None:
        self._link = link
        self._wait = wait
        self._finish = link.client.register_script(_FINISH)
        self._release = link.client.register_script(_RELEASE)

    async def begin(self, key: str, fingerprint: str) -> str | None:
        name = self._key(key)
        hold = json.dumps({"f": fingerprint})
        loop = asyncio.get_running_loop()
        until = loop.time() + self._wait
        while True:
            taken = await self._link.run(
                "idempotency hold",
                lambda client: client.set(name, hold, nx=True, px=int(KEEP_SECONDS * 1000)),
            )
            if taken:
                return None
            kept = await self._link.run("idempotency read", lambda client: client.get(name))
            if kept is not None:
                entry = json.loads(kept)
                if entry.get("f") != fingerprint:
                    raise KeyReused(_REUSED)
                outcome = entry.get("o")
                if isinstance(outcome, str):
                    return outcome
            if loop.time() >= until:
                raise KeyInUse(_IN_USE)
            await asyncio.sleep(_POLL_SECONDS)

    async def finish(self, key: str, fingerprint: str, outcome: str) -> None:
        done = json.dumps({"f": fingerprint, "o": outcome})
        await self._link.run(
            "idempotency outcome",
            lambda _: self._finish(
                keys=[self._key(key)], args=[fingerprint, done, int(KEEP_SECONDS * 1000)]
            ),
        )

    async def release(self, key: str, fingerprint: str) -> None:
        await self._link.run(
            "idempotency release",
            lambda _: self._release(keys=[self._key(key)], args=[fingerprint]),
        )

    @staticmethod
    def _key(key: str) -> str:
        return f"{PREFIX}idempotency:{hashlib.sha256(key.encode()).hexdigest()}"
