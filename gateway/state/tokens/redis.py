"""Provider tokens shared by every replica through Redis.

A replica that needs a token reads the one Redis holds. If there is none (or
it is due for renewal), the replica takes a lock (SET NX PX) and fetches; the
others poll for what the holder stores, and take the lock themselves if it goes
without a token (the holder's fetch failed, or the holder died and its lock
expired): a crowd of replicas costs the provider one token request.

Redis holds the token sealed (Fernet, under a key derived from the provider's
credentials, which every replica has and Redis does not), with its expiry and
the SHA-256 of its value (to drop exactly the token a 401 refused), under a name
derived from the provider's URL and credentials, so replicas configured for
another account never share it; Redis forgets it when it expires. Without
Redis, the replica keeps its own token, as a single gateway does.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import secrets
from collections.abc import Mapping

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from redis.asyncio import Redis

from gateway.clock import Clock
from gateway.state.redis import PREFIX, RedisLink, RedisUnavailable
from gateway.state.tokens import Fetch, LocalTokens, Token, renew_at

__all__ = ["LOCK_SECONDS", "RedisTokens"]

LOCK_SECONDS = 15.0
"""Longer than a token request may take (connect 3 s and read 10 s by default): a holder that
dies holds the others back this long at most."""
POLL_SECONDS = 0.05

_DROP = """
if redis.call('HGET', KEYS[1], 'fingerprint') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class RedisTokens:
    def __init__(
        self,
        link: RedisLink,
        provider: str,
        identity: Mapping[str, object],
        clock: Clock,
        margin: float = 60.0,
        lock_seconds: float = LOCK_SECONDS,
    ) -> None:
        """`identity` is what makes the account: the provider's URL and credentials."""
        material = json.dumps(identity, sort_keys=True).encode()
        digest = hashlib.sha256(b"propgate token name\0" + material).hexdigest()[:24]
        self._key = f"{PREFIX}token:{provider}:{digest}"
        self._lock = f"{self._key}:lock"
        seal = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"propgate token seal")
        self._seal = Fernet(base64.urlsafe_b64encode(seal.derive(material)))
        self._link = link
        self._clock = clock
        self._margin = margin
        self._lock_ms = int(lock_seconds * 1000)
        self._local = LocalTokens(clock, margin)
        self._last: Token | None = None
        self._drop = link.client.register_script(_DROP)
        self._unlock = link.client.register_script(_UNLOCK)

    @property
    def expires_at(self) -> float | None:
        return self._last.expires_at if self._last else self._local.expires_at

    async def usable(self) -> Token | None:
        try:
            return await self._read()
        except RedisUnavailable:
            return await self._local.usable()

    async def renew(self, fetch: Fetch) -> Token:
        try:
            return await self._renew_once_for_all(fetch)
        except RedisUnavailable:
            return await self._local.renew(fetch)

    async def drop(self, value: str) -> None:
        await self._local.drop(value)
        with contextlib.suppress(RedisUnavailable):
            await self._link.run(
                "token drop", lambda _: self._drop(keys=[self._key], args=[_digest(value)])
            )

    async def _renew_once_for_all(self, fetch: Fetch) -> Token:
        owner = secrets.token_hex(16)
        while not await self._link.run(
            "token lock",
            lambda client: client.set(self._lock, owner, nx=True, px=self._lock_ms),
        ):
            await asyncio.sleep(POLL_SECONDS)
            stored = await self._read()
            if stored is not None:
                return stored
        try:
            stored = await self._read()
            if stored is not None:
                return stored
            token = await fetch(self._last)
            self._local.keep(token)
            self._last = token
            with contextlib.suppress(RedisUnavailable):
                await self._link.run("token write", lambda client: self._write(client, token))
            return token
        finally:
            with contextlib.suppress(RedisUnavailable):
                await self._link.run(
                    "token unlock", lambda _: self._unlock(keys=[self._lock], args=[owner])
                )

    async def _read(self) -> Token | None:
        """The stored token unless it is due for renewal; `_last` keeps it either way, since a
        token due for renewal still carries the refresh token to renew it with."""
        sealed = await self._link.run("token read", lambda client: client.hget(self._key, "sealed"))
        if sealed is None:
            return None
        try:
            kept = json.loads(self._seal.decrypt(sealed))
            token = Token(kept["value"], float(kept["expires_at"]), kept.get("refresh_token"))
            renewal = float(kept["renew_at"])
        except (InvalidToken, ValueError, KeyError, TypeError):
            return None
        self._last = token
        return token if self._clock() < renewal else None

    async def _write(self, client: Redis, token: Token) -> None:
        lifetime = int((token.expires_at - self._clock()) * 1000)
        if lifetime <= 0:
            return
        kept = {
            "value": token.value,
            "expires_at": token.expires_at,
            "renew_at": renew_at(token, self._clock(), self._margin),
            "refresh_token": token.refresh_token,
        }
        async with client.pipeline(transaction=True) as pipe:
            pipe.delete(self._key)
            pipe.hset(
                self._key,
                mapping={
                    "sealed": self._seal.encrypt(json.dumps(kept).encode()),
                    "fingerprint": _digest(token.value),
                },
            )
            pipe.pexpire(self._key, lifetime)
            await pipe.execute()
