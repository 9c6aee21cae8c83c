"""One `httpx.Auth` per way a provider hands out credentials.

Tokens are kept in a `TokenStore` (this process's cachetools `TLRUCache`, or
Redis shared by every replica), each living until a margin before its own
expiry, fetched once however many requests need one at the
same moment (single-flight), and a 401 drops the token that failed and
resends the request once with a fresh one: the pattern httpx documents for
token auth. Token values never reach a log line or an error message.

The styles differ only in how a token is bought:
- `ApiKeyPasswordAuth`: an API key header plus user name and password (Primmo);
- `LoginRefreshAuth`: a login that returns access and refresh tokens, renewed
  with the refresh token and by logging in again when that fails (pms);
- `ClientCredentialsAuth`: OAuth2 client credentials over HTTP Basic (MyCRM);
- `HeaderAuth`: a long-lived token in a header (SCOM's partner token, and each
  landlord's own, per request).
Provider-specific envelopes come in through small `unwrap` hooks, as in dlt's
`OAuth2ClientCredentials`.

A token endpoint that gives no token is reported by what it said: a rejected
request, refused credentials, a rate limit (429, with its `retryAfter`) and an
outage (5xx) each have their own code. RFC 6749 §5.2's `error` decides between
the first two where the endpoint names one (a wrong password is `invalid_grant`
with a 400), else the status does (400, or 401 and 403). The message carries
what the endpoint said (`error` and `error_description`), bounded, with the
gateway's secrets masked.
"""

from __future__ import annotations

import asyncio
import base64
import math
import re
from collections.abc import AsyncGenerator, Callable, Generator, Iterable, Mapping
from dataclasses import replace
from typing import Any, Literal
from urllib.parse import quote

import httpx
import orjson

from gateway.clock import Clock, said_at, seconds_until
from gateway.errors import (
    CredentialsRefused,
    GatewayError,
    ProviderError,
    RateLimited,
    TokenRequestRejected,
    UpstreamInvalidResponse,
    UpstreamUnavailable,
)
from gateway.state.tokens import Fetch, LocalTokens, Token, TokenStore, expiry_of
from gateway.upstream.client import unbound
from gateway.upstream.transports import RetryAfter, retry_after_header

__all__ = [
    "HeaderAuth",
    "ApiKeyPasswordAuth",
    "CachedTokenAuth",
    "ClientCredentialsAuth",
    "LoginRefreshAuth",
    "TokenFetched",
    "TokenRequest",
]


class HeaderAuth(httpx.Auth):
    """A long-lived token in a header of its own (SCOM's `x-api-token`)."""

    def __init__(self, header: str, value: str) -> None:
        self._header = header
        self._value = value

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        request.headers[self._header] = self._value
        yield request


Unwrap = Callable[[Any], Any]
TokenFetched = Callable[[str], None]
"""Told each fetch's outcome, `ok` or the error's code (the metrics count them)."""


def _unobserved(_outcome: str) -> None:
    return None


def _read_failure(renewal: asyncio.Future[Token]) -> None:
    """Every caller of a renewal may have given up (its deadline passed, as while a 429 is
    waited out) before the renewal failed; asyncio would then log the failure as a "Task
    exception was never retrieved". Each caller still got its own error."""
    if not renewal.cancelled():
        renewal.exception()


_FIRST_HOLD = 30.0
_LONGEST_HOLD = 300.0
"""How long a refused token request is not made again: 30 s after a first refusal, twice as
long after each next one, 5 minutes at most, until a token is obtained. Identity providers
lock an account after some failed logins; without a hold, a wrong secret cost one per query."""


class CachedTokenAuth(httpx.Auth):
    """Bearer auth around a coroutine that obtains a token; subclasses supply the coroutine.

    The coroutine receives the previous token (expired or refused), so a
    style with refresh tokens can use it. However many requests of this process
    need a token at once, one renewal runs (single-flight); the store makes it
    one across replicas too when it is shared.

    A refusal of the credentials or of the request is remembered, per process: until its
    hold-off ends, callers get the same error, saying when the gateway asks again, and the
    endpoint is not asked. A rate limit or an outage is not held here: the provider's rest
    (its `Retry-After`) is kept for every request to it, token requests included, and an
    outage may end at any moment.
    """

    def __init__(
        self,
        fetch: Fetch,
        clock: Clock,
        store: TokenStore | None = None,
        fetched: TokenFetched = _unobserved,
    ) -> None:
        self._fetch = fetch
        self._fetched = fetched
        self._clock = clock
        self._store = store or LocalTokens(clock)
        self._pending: asyncio.Future[Token] | None = None
        self._refusal: CredentialsRefused | TokenRequestRejected | None = None
        self._hold = 0.0
        self._next_try = 0.0

    @property
    def expires_at(self) -> float | None:
        return self._store.expires_at

    @property
    def held_until(self) -> float | None:
        """When the token endpoint may be asked again, while a refusal holds it off: until
        then no request needing a token is sent, so operators see the provider resting."""
        if self._refusal is None or self._next_try <= self._clock():
            return None
        return self._next_try

    @property
    def held_for(self) -> float | None:
        """Seconds the hold-off still lasts."""
        return seconds_until(self.held_until, self._clock)

    @property
    def refusal(self) -> CredentialsRefused | TokenRequestRejected | None:
        """The error every caller gets while the hold-off lasts (masked as it was made), for
        operators to see why the provider answers nothing."""
        if self.held_until is None:
            return None
        assert self._refusal is not None
        return self._held(self._refusal)

    async def token(self) -> str:
        cached = await self._store.usable()
        if cached is not None:
            return cached.value
        refusal = self.refusal
        if refusal is not None:
            raise refusal
        if self._pending is None:
            self._pending = asyncio.ensure_future(self._renew())
            self._pending.add_done_callback(_read_failure)
        return (await asyncio.shield(self._pending)).value

    async def _renew(self) -> Token:
        try:
            token = await self._store.renew(self._counted)
        except (CredentialsRefused, TokenRequestRejected) as refusal:
            if isinstance(refusal, TokenRequestRejected) and not refusal.definite:
                raise
            self._hold = min(2 * self._hold, _LONGEST_HOLD) if self._hold else _FIRST_HOLD
            self._refusal, self._next_try = refusal, self._clock() + self._hold
            raise self._held(refusal) from None
        finally:
            self._pending = None
        self._refusal, self._hold = None, 0.0
        return token

    def _held(
        self, refusal: CredentialsRefused | TokenRequestRejected
    ) -> CredentialsRefused | TokenRequestRejected:
        """The refusal, as every caller gets it until the hold-off ends: its code and reason,
        and when the endpoint is asked again."""
        wait = math.ceil(self._next_try - self._clock())
        why = (
            "lest repeated refusals lock the account"
            if isinstance(refusal, CredentialsRefused)
            else "since asking again at once gets the same answer"
        )
        return type(refusal)(
            refusal.provider,
            f"{refusal.message}; the gateway asks again at {said_at(self._next_try)} "
            f"(in {wait} s), not before, {why}.",
        )

    async def _counted(self, previous: Token | None) -> Token:
        """The fetch, counted where it runs: with a shared store, that is only the replica
        holding the lock, so a crowd on every replica counts one fetch."""
        try:
            token = await self._fetch(previous)
        except GatewayError as error:
            self._fetched(error.code)
            raise
        self._fetched("ok")
        return token

    async def invalidate(self, value: str) -> None:
        await self._store.drop(value)

    def sync_auth_flow(self, _request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        raise RuntimeError("The gateway's provider clients are asynchronous only.")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        value = await self.token()
        request.headers["Authorization"] = f"Bearer {value}"
        response = yield request
        if response.status_code == 401:
            await self.invalidate(value)
            value = await self.token()
            request.headers["Authorization"] = f"Bearer {value}"
            yield request


async def _token_response(
    client: httpx.AsyncClient, provider: str, url: str, **kwargs: Any
) -> httpx.Response:
    try:
        response = await client.post(url, **kwargs)
    except httpx.HTTPError as error:
        raise UpstreamUnavailable(
            provider, f"{provider}'s token endpoint could not be reached ({type(error).__name__})."
        ) from None
    return unbound(response)


_MAX_REASON = 200
"""Characters kept of what a token endpoint said: a reason fits, a page of HTML does not."""


def _body(response: httpx.Response) -> dict[str, Any]:
    """A refusal's JSON object, or nothing for a body that is not one."""
    try:
        body = orjson.loads(response.content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _reason(body: Mapping[str, Any], secrets: Iterable[str]) -> str:
    """What the endpoint said, as `error: description`: RFC 6749 §5.2's `error` and
    `error_description`, or OData's `{"error": {"code", "message"}}` (which pms shares).

    An endpoint may echo what it was sent: the gateway's secrets are masked before
    anything is cut, so no part of one survives, and control characters go.
    """
    error = body.get("error")
    said = (
        (error.get("code"), error.get("message"))
        if isinstance(error, dict)
        else (error, body.get("error_description"))
    )
    return _shown(
        ": ".join(part for part in said if isinstance(part, str) and part.strip()), secrets
    )


def _shown(text: str, secrets: Iterable[str] = ()) -> str:
    """Text from a token endpoint made fit for a message: secrets masked, control characters
    gone, bounded."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[secret]")
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 1] + "…"


def _refused(
    provider: str,
    response: httpx.Response,
    secrets: Iterable[str],
    retry_after: RetryAfter = retry_after_header,
) -> ProviderError:
    """The stable error for a token endpoint that gave no token.

    A rate limit or an outage is neither a refusal of the request nor of the
    credentials, and must not send anyone to check credentials that are fine. Of the
    refusals, RFC 6749 §5.2's `error` says which it is; the status only where the
    endpoint names none (or one it made up): §5.2 gives most errors a 400, including
    the `invalid_grant` of a wrong password.
    """
    status = response.status_code
    body = _body(response)
    reason = _reason(body, secrets)
    endpoint = f"{provider}'s token endpoint"
    why = f" (HTTP {status}): {reason}" if reason else f" (HTTP {status})"
    if status == 429:
        return RateLimited(
            provider, f"{endpoint} is rate limiting the gateway{why}", retry_after(response)
        )
    if status >= 500 or status == 408:
        return UpstreamUnavailable(provider, f"{endpoint} failed{why}")
    if status < 400:
        return UpstreamInvalidResponse(provider, f"{endpoint} answered without a token{why}")
    named = body.get("error")
    credentials = _REFUSES_CREDENTIALS.get(named) if isinstance(named, str) else None
    if credentials is None:
        credentials = status in (401, 403)
    if credentials:
        return CredentialsRefused(provider, f"{endpoint} refused the gateway's credentials{why}")
    rejected = TokenRequestRejected(provider, f"{endpoint} rejected the token request{why}")
    rejected.definite = isinstance(named, str) or status == 400
    return rejected


_REFUSES_CREDENTIALS = {
    "invalid_client": True,
    "invalid_grant": True,
    "unauthorized_client": True,
    "invalid_request": False,
    "invalid_scope": False,
    "unsupported_grant_type": False,
}
"""RFC 6749 §5.2's errors, by whether the credentials were refused: the client, its grant
(a password, a refresh token) or what the client may do, which configuration or the
provider's record of the client must fix; or else the request's form, grant type or
scope, on which the gateway and that server disagree."""


def _json(provider: str, response: httpx.Response) -> Any:
    try:
        return orjson.loads(response.content)
    except ValueError:
        raise UpstreamInvalidResponse(
            provider, f"{provider}'s token endpoint returned a body that is not JSON."
        ) from None


class ApiKeyPasswordAuth(CachedTokenAuth):
    """An API key in a header plus a user name and password in a JSON body buy a bearer token.

    The connector names the header and the body (Primmo: `x-api-key`,
    `{"UserName", "Password"}`). The provider returns the token itself as the
    body, or an object with a `token` or `access_token` member; all are accepted
    since Primmo's document only says "in the body". JSON is asked for, but
    ASP.NET (Primmo's stack) writes a string as bare `text/plain` to a client
    that takes anything, so a body that is not JSON is read as the token itself
    when it is one (RFC 6750's b64token), and an error page never is.
    """

    def __init__(
        self,
        *,
        provider: str,
        client: httpx.AsyncClient,
        path: str,
        headers: Mapping[str, str],
        body: Mapping[str, str],
        lifetime: float,
        clock: Clock,
        store: TokenStore | None = None,
        fetched: TokenFetched = _unobserved,
    ) -> None:
        self._provider = provider
        self._client = client
        self._path = path
        self._headers = {"Accept": "application/json", **headers}
        self._body = dict(body)
        self._secrets = (*headers.values(), *self._body.values())
        self._lifetime = lifetime
        super().__init__(self._login, clock, store, fetched)

    async def _login(self, _previous: Token | None) -> Token:
        response = await _token_response(
            self._client, self._provider, self._path, headers=self._headers, json=self._body
        )
        if response.status_code != 200:
            raise _refused(self._provider, response, self._secrets)
        try:
            body = orjson.loads(response.content)
        except ValueError:
            body = _bare(self._provider, response)
        if isinstance(body, dict):
            _bearer(self._provider, body)
            body = body.get("token") or body.get("access_token")
        if not isinstance(body, str):
            raise UpstreamInvalidResponse(
                self._provider, f"{self._provider}'s token endpoint returned no token."
            )
        value = _sendable(self._provider, body)
        return Token(value, expiry_of(value, self._clock(), self._lifetime))


_B64TOKEN = re.compile(rb"[A-Za-z0-9._~+/-]+=*")
"""RFC 6750 §2.1's b64token: what a token sent bare looks like (a JWT is one), and what an
error page or a sentence never is."""


def _bare(provider: str, response: httpx.Response) -> str:
    """A body that is the token itself, unquoted, as ASP.NET writes a string as `text/plain`."""
    if _B64TOKEN.fullmatch(response.content) is None:
        raise UpstreamInvalidResponse(
            provider,
            f"{provider}'s token endpoint returned a body that is neither JSON nor a token.",
        )
    return response.content.decode("ascii")


_SENDABLE = re.compile(r"[\x21-\x7e]+")
"""Visible ASCII, one character at least: what fits after `Bearer ` in a header. RFC 6750's
b64token is narrower; a server's opaque token may use other visible characters (`|`, `:`),
which still reach it as they were issued."""


def _sendable(provider: str, value: str) -> str:
    """The token itself, if it can be sent: an empty one (`Bearer ` with nothing after it) or
    one with a space, a control or a non-ASCII character would be refused by every request,
    or break the header it goes in."""
    if _SENDABLE.fullmatch(value) is None:
        raise UpstreamInvalidResponse(
            provider,
            f"{provider}'s token endpoint returned a token that cannot be sent: empty, or "
            "with a space, a control or a non-ASCII character.",
        )
    return value


def _bearer(provider: str, payload: Mapping[str, Any]) -> None:
    """Refuses a token of a type other than Bearer, the only kind the gateway sends.

    RFC 6749 §7.1: "The client MUST NOT use an access token if it does not understand the
    token type"; §5.1 makes the type case-insensitive. A DPoP or MAC token sent as a bearer
    token would be refused by every request, each costing a renewal. An answer that states no
    type is taken as Bearer: pms's login answer (assumed) and Primmo's token (its document
    says only "in the body") state none.
    """
    stated = payload.get("token_type")
    if stated is None or (isinstance(stated, str) and stated.lower() == "bearer"):
        return
    raise UpstreamInvalidResponse(
        provider,
        f'{provider}\'s token endpoint issued a token of token_type "{_shown(str(stated))}", '
        "which the gateway does not use: it sends bearer tokens only (RFC 6750).",
    )


def _seconds(expires_in: Any) -> float | None:
    """`expires_in` as a number, or as a string of digits: RFC 6749 §5.1 says a number, but
    servers write `"3600"` too, and ignoring it would keep a token past the server's expiry
    (until a 401) whenever the documented lifetime is longer. Anything else says nothing."""
    if isinstance(expires_in, str) and expires_in.isascii() and expires_in.isdigit():
        seconds = float(expires_in)
        return seconds if math.isfinite(seconds) else None
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
        return float(expires_in)
    return None


def _access_token(provider: str, payload: Any, issued_at: float, lifetime: float) -> Token:
    """`{access_token, token_type?, expires_in?, refresh_token?}`, the OAuth2 shape most
    providers share."""
    if not isinstance(payload, Mapping) or not isinstance(payload.get("access_token"), str):
        raise UpstreamInvalidResponse(
            provider, f"{provider}'s token endpoint returned no access_token."
        )
    _bearer(provider, payload)
    value = _sendable(provider, payload["access_token"])
    expires_in = _seconds(payload.get("expires_in"))
    expires_at = (
        issued_at + expires_in if expires_in is not None else expiry_of(value, issued_at, lifetime)
    )
    refresh = payload.get("refresh_token")
    return Token(value, expires_at, refresh if isinstance(refresh, str) else None)


class LoginRefreshAuth(CachedTokenAuth):
    """Log in once; renew with the refresh token; log in again only if the refresh is refused.

    A refresh answer may carry a new refresh token or none (RFC 6749 §6: the server MAY
    issue one); with none, the one just used is kept for the next renewal.

    A refresh that failed for a reason a login shares (a rate limit, an outage) is
    reported rather than followed by a login that would fail the same way.
    """

    def __init__(
        self,
        *,
        provider: str,
        client: httpx.AsyncClient,
        login_path: str,
        refresh_path: str,
        credentials: Mapping[str, str],
        unwrap: Unwrap,
        lifetime: float,
        clock: Clock,
        store: TokenStore | None = None,
        fetched: TokenFetched = _unobserved,
        retry_after: RetryAfter = retry_after_header,
    ) -> None:
        self._provider = provider
        self._client = client
        self._login_path = login_path
        self._refresh_path = refresh_path
        self._credentials = dict(credentials)
        self._unwrap = unwrap
        self._lifetime = lifetime
        self._retry_after = retry_after
        super().__init__(self._obtain, clock, store, fetched)

    async def _obtain(self, previous: Token | None) -> Token:
        if previous is not None and previous.refresh_token:
            secrets = (*self._credentials.values(), previous.refresh_token)
            response = await _token_response(
                self._client,
                self._provider,
                self._refresh_path,
                json={"refresh_token": previous.refresh_token},
            )
            if response.status_code == 200:
                token = self._parse(response)
                if token.refresh_token is None:
                    token = replace(token, refresh_token=previous.refresh_token)
                return token
            if response.status_code == 429 or response.status_code >= 500:
                raise _refused(self._provider, response, secrets, self._retry_after)
        response = await _token_response(
            self._client, self._provider, self._login_path, json=self._credentials
        )
        if response.status_code != 200:
            raise _refused(self._provider, response, self._credentials.values(), self._retry_after)
        return self._parse(response)

    def _parse(self, response: httpx.Response) -> Token:
        try:
            payload = self._unwrap(_json(self._provider, response))
        except (KeyError, TypeError):
            payload = None
        return _access_token(self._provider, payload, self._clock(), self._lifetime)


TokenRequest = Literal["form", "json"]
"""How a client-credentials token request is sent: `form`, as RFC 6749 §4.4.2 requires, or
`json`, as a provider's document may show it instead (MyCRM's)."""


def _basic(client_id: str, client_secret: str, request: TokenRequest) -> str:
    """HTTP Basic credentials for `client_secret_basic`.

    RFC 6749 §2.3.1 form-urlencodes the id and the secret before joining them with ":"
    and Base64, so a ":" or "%" in a secret reaches the server intact. A space goes as
    "%20" rather than "+": servers that decode with either rule (Authlib's uses plain
    `unquote`) then read the same secret. A `json` request follows its document instead,
    which joins them as they are.
    """
    if request == "form":
        client_id, client_secret = quote(client_id, safe=""), quote(client_secret, safe="")
    return base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()


class ClientCredentialsAuth(CachedTokenAuth):
    """OAuth2 client credentials (RFC 6749 §4.4) over HTTP Basic; no refresh token.

    The token endpoint may be a path below the client's base URL or an absolute URL:
    providers put it on a host of its own (MyCRM's document does). A standard server
    refuses a `json` request (`unsupported_grant_type` or `invalid_request`); it is
    for a provider that wants the body its document shows.
    """

    def __init__(
        self,
        *,
        provider: str,
        client: httpx.AsyncClient,
        url: str,
        client_id: str,
        client_secret: str,
        lifetime: float,
        clock: Clock,
        store: TokenStore | None = None,
        scope: str = "openid",
        request: TokenRequest = "form",
        fetched: TokenFetched = _unobserved,
    ) -> None:
        self._provider = provider
        self._client = client
        self._url = url
        basic = _basic(client_id, client_secret, request)
        self._headers = {"Authorization": f"Basic {basic}"}
        fields = {"grant_type": "client_credentials", "scope": scope}
        self._body = {"data": fields} if request == "form" else {"json": fields}
        self._secrets = (client_secret, quote(client_secret, safe=""), basic)
        self._lifetime = lifetime
        super().__init__(self._request, clock, store, fetched)

    async def _request(self, _previous: Token | None) -> Token:
        response = await _token_response(
            self._client, self._provider, self._url, headers=self._headers, **self._body
        )
        if response.status_code != 200:
            raise _refused(self._provider, response, self._secrets)
        payload = _json(self._provider, response)
        return _access_token(self._provider, payload, self._clock(), self._lifetime)
