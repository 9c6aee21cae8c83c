"""Idempotency keys: a write sent again under the same key gets the first write's outcome, never
a second write. The protocol and the in-process store; Redis's sits beside it.

A client that timed out does not know whether its write happened; with a key it can simply
send it again. The first request holds the key while its write runs; a retry that arrives
meanwhile waits for it and gets its outcome; a retry after gets the stored outcome; the same
key with another body is refused (`IDEMPOTENCY_KEY_REUSED`), since answering it with the first
outcome would tell the client a write it did not ask for had happened. A write that may have
reached its provider keeps its outcome, `OUTCOME_UNKNOWN` when no answer could be read; one that
certainly did not (refused before anything was sent, its provider unreachable, or refused by it
unprocessed: a 429) releases the key, so the retry runs (`gateway.federation.writes`).
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from typing import Protocol

from cachetools import TTLCache

from gateway.clock import Clock
from gateway.errors import GatewayError

__all__ = [
    "KEEP_SECONDS",
    "WAIT_SECONDS",
    "Idempotency",
    "KeyInUse",
    "KeyReused",
    "KeysExhausted",
    "LocalIdempotency",
    "fingerprint",
]

KEEP_SECONDS = 24 * 3600.0
"""How long an outcome answers retries: a day, as payment APIs keep theirs."""
WAIT_SECONDS = 15.0
"""How long a retry waits for the first request to finish: past a request's deadline (10 s by
default), so a write still running then has ended one way or the other."""


class KeyReused(GatewayError):
    code = "IDEMPOTENCY_KEY_REUSED"


class KeysExhausted(GatewayError):
    """The process holds as many keys as it may, each still answering retries: a new one is
    refused rather than an old one forgotten (which would let its retry write again)."""

    code = "TOO_MANY_IDEMPOTENCY_KEYS"


class KeyInUse(GatewayError):
    """The first request under the key did not finish while the retry waited (or its process
    died holding it): whether it wrote is unknown, so nothing is sent again."""

    code = "IDEMPOTENCY_KEY_IN_USE"


def fingerprint(*parts: str) -> str:
    """What a retry must repeat exactly: the operation and its canonical input."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


class Idempotency(Protocol):
    async def begin(self, key: str, fingerprint: str) -> str | None:
        """None when this request is the first under `key`, which it now holds; else the
        first request's outcome, once it has one. Raises `KeyReused` for another body,
        `KeyInUse` when the first did not finish within `WAIT_SECONDS`."""
        ...

    async def finish(self, key: str, fingerprint: str, outcome: str) -> None:
        """Keeps the outcome for retries, for `KEEP_SECONDS`."""
        ...

    async def release(self, key: str, fingerprint: str) -> None:
        """Nothing was written: the key is free again, for the retry to run."""
        ...


@dataclass
class _Entry:
    fingerprint: str
    outcome: str | None = None
    settled: asyncio.Event = field(default_factory=asyncio.Event)


class LocalIdempotency:
    """In this process, for one gateway; replicas share `RedisIdempotency` instead. At most
    `capacity` keys (100,000: some 300 bytes each, and a kept outcome), each for
    `KEEP_SECONDS`; keys are kept as their SHA-256. Full, it refuses new keys
    (`KeysExhausted`) and never drops one still answering retries."""

    def __init__(self, clock: Clock, wait: float = WAIT_SECONDS, capacity: int = 100_000) -> None:
        self._entries: TTLCache[bytes, _Entry] = TTLCache(
            maxsize=capacity, ttl=KEEP_SECONDS, timer=clock
        )
        self._wait = wait

    async def begin(self, key: str, fingerprint: str) -> str | None:
        held = _hashed(key)
        while True:
            entry = self._entries.get(held)
            if entry is None:
                self._entries.expire()
                if len(self._entries) >= self._entries.maxsize:
                    raise KeysExhausted(_EXHAUSTED)
                self._entries[held] = _Entry(fingerprint)
                return None
            if entry.fingerprint != fingerprint:
                raise KeyReused(_REUSED)
            if entry.outcome is not None:
                return entry.outcome
            try:
                await asyncio.wait_for(entry.settled.wait(), self._wait)
            except TimeoutError:
                raise KeyInUse(_IN_USE) from None

    async def finish(self, key: str, fingerprint: str, outcome: str) -> None:
        entry = self._entries.get(_hashed(key))
        if entry is not None and entry.fingerprint == fingerprint:
            entry.outcome = outcome
            self._entries[_hashed(key)] = entry
            entry.settled.set()

    async def release(self, key: str, fingerprint: str) -> None:
        entry = self._entries.get(_hashed(key))
        if entry is not None and entry.fingerprint == fingerprint and entry.outcome is None:
            del self._entries[_hashed(key)]
            entry.settled.set()


_REUSED = "This idempotency key was used for a different request; send a new key for a new write."
_EXHAUSTED = (
    "This gateway holds as many idempotency keys as it may, each for a day: nothing was sent. "
    "Try again later, or without a key."
)
_IN_USE = (
    "A request with this idempotency key is still running, or stopped without an outcome; "
    "check whether the write happened before sending it with a new key."
)


def _hashed(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()
