"""One `httpx.Auth` per way a provider hands out credentials.

Tokens are cached (cachetools `TLRUCache`, each token living until a margin
before its own expiry), fetched once however many requests need one at the
same moment (single-flight), and a 401 drops the token that failed and
resends the request once with a fresh one: the pattern httpx documents for
token auth. Token values never reach a log line or an error message.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from dataclasses import dataclass

import httpx
import jwt
from cachetools import TLRUCache

from gateway.clock import Clock
from gateway.errors import ProviderError, UpstreamInvalidResponse, UpstreamUnavailable

__all__ = ["ApiKeyPasswordAuth", "CachedTokenAuth", "Token", "expiry_of"]

_KEY = "token"


@dataclass(frozen=True)
class Token:
    value: str
    expires_at: float


def expiry_of(value: str, issued_at: float, lifetime: float) -> float:
    """A JWT says when it expires; anything else lives for the provider's documented lifetime."""
    try:
        claims = jwt.decode(value, options={"verify_signature": False})
    except jwt.PyJWTError:
        return issued_at + lifetime
    exp = claims.get("exp")
    return float(exp) if isinstance(exp, int | float) else issued_at + lifetime


class CachedTokenAuth(httpx.Auth):
    """Bearer auth around a coroutine that obtains a token; subclasses supply the coroutine."""

    def __init__(
        self, fetch: Callable[[], Awaitable[Token]], clock: Clock, margin: float = 60.0
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._cache: TLRUCache[str, Token] = TLRUCache(
            maxsize=1, ttu=lambda _key, token, _now: token.expires_at - margin, timer=clock
        )
        self._pending: asyncio.Future[Token] | None = None
        self.fetches = 0

    @property
    def expires_at(self) -> float | None:
        token = self._cache.get(_KEY)
        return token.expires_at if token else None

    async def token(self) -> str:
        cached = self._cache.get(_KEY)
        if cached is not None:
            return cached.value
        if self._pending is None:
            self._pending = asyncio.ensure_future(self._renew())
        return (await asyncio.shield(self._pending)).value

    async def _renew(self) -> Token:
        try:
            self.fetches += 1
            token = await self._fetch()
            self._cache[_KEY] = token
            return token
        finally:
            self._pending = None

    def invalidate(self, value: str) -> None:
        """Drops the token only if it is still the one that failed, so one 401 wave renews once."""
        cached = self._cache.get(_KEY)
        if cached is not None and cached.value == value:
            del self._cache[_KEY]

    def sync_auth_flow(self, _request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        raise RuntimeError("The gateway's provider clients are asynchronous only.")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        value = await self.token()
        request.headers["Authorization"] = f"Bearer {value}"
        response = yield request
        if response.status_code == 401:
            self.invalidate(value)
            value = await self.token()
            request.headers["Authorization"] = f"Bearer {value}"
            yield request


class ApiKeyPasswordAuth(CachedTokenAuth):
    """An API key in a header plus a user name and password in a JSON body buy a bearer token.

    The provider returns the token itself as the body (a JSON string), or an
    object with a `token` or `access_token` member; both are accepted since
    the document only says "in the body".
    """

    def __init__(
        self,
        *,
        provider: str,
        client: httpx.AsyncClient,
        path: str,
        api_key: str,
        username: str,
        password: str,
        lifetime: float,
        clock: Clock,
    ) -> None:
        self._provider = provider
        self._client = client
        self._path = path
        self._api_key = api_key
        self._credentials = {"UserName": username, "Password": password}
        self._lifetime = lifetime
        super().__init__(self._login, clock)

    async def _login(self) -> Token:
        try:
            response = await self._client.post(
                self._path, headers={"x-api-key": self._api_key}, json=self._credentials
            )
        except httpx.HTTPError as error:
            raise UpstreamUnavailable(
                self._provider, f"The token endpoint could not be reached ({type(error).__name__})."
            ) from None
        if response.status_code != 200:
            raise ProviderError(
                self._provider,
                "The token endpoint refused the gateway's credentials "
                f"(HTTP {response.status_code}).",
            )
        value = _token_in(response)
        if value is None:
            raise UpstreamInvalidResponse(self._provider, "The token endpoint returned no token.")
        now = self._clock()
        return Token(value, expiry_of(value, now, self._lifetime))


def _token_in(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict):
        body = body.get("token") or body.get("access_token")
    return body if isinstance(body, str) and body else None
