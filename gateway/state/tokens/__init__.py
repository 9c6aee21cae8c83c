"""Provider tokens and where they are kept: the protocol every store keeps and this process's
store. The Redis store replicas share sits beside it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import jwt
from cachetools import TLRUCache

from gateway.clock import Clock

_KEY = "token"


@dataclass(frozen=True)
class Token:
    value: str = field(repr=False)
    expires_at: float
    refresh_token: str | None = field(default=None, repr=False)


def expiry_of(value: str, issued_at: float, lifetime: float) -> float:
    """A JWT says when it expires; anything else lives for the provider's documented lifetime."""
    try:
        claims = jwt.decode(value, options={"verify_signature": False})
    except jwt.PyJWTError:
        return issued_at + lifetime
    exp = claims.get("exp")
    return float(exp) if isinstance(exp, int | float) else issued_at + lifetime


def renew_at(token: Token, now: float, margin: float) -> float:
    """A margin before expiry, but never more than half the token's life: a token that lives
    a minute is still used for half of it rather than fetched again for every request."""
    return token.expires_at - min(margin, max(0.0, token.expires_at - now) / 2)


Fetch = Callable[[Token | None], Awaitable[Token]]


class TokenStore(Protocol):
    """Where a provider's token is kept: this process (`LocalTokens`), or Redis, shared by
    every replica (`gateway.shared.tokens.RedisTokens`)."""

    @property
    def expires_at(self) -> float | None:
        """When the last token seen expires (the health query shows it)."""
        ...

    async def usable(self) -> Token | None:
        """The kept token, unless it is due for renewal."""
        ...

    async def renew(self, fetch: Fetch) -> Token:
        """Fetches and keeps a token; `fetch` receives the previous one (for its refresh token)."""
        ...

    async def drop(self, value: str) -> None:
        """Drops the kept token only if it is still `value`, so one 401 wave renews once."""
        ...


class LocalTokens:
    """The token in this process only, until a margin before its own expiry."""

    def __init__(self, clock: Clock, margin: float = 60.0) -> None:
        self._cache: TLRUCache[str, Token] = TLRUCache(
            maxsize=1, ttu=lambda _key, token, now: renew_at(token, now, margin), timer=clock
        )
        self._last: Token | None = None

    @property
    def expires_at(self) -> float | None:
        token = self._cache.get(_KEY)
        return token.expires_at if token else None

    async def usable(self) -> Token | None:
        return self._cache.get(_KEY)

    async def renew(self, fetch: Fetch) -> Token:
        token = await fetch(self._last)
        self.keep(token)
        return token

    def keep(self, token: Token) -> None:
        self._cache[_KEY] = token
        self._last = token

    async def drop(self, value: str) -> None:
        cached = self._cache.get(_KEY)
        if cached is not None and cached.value == value:
            del self._cache[_KEY]
