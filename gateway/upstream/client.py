"""The one `httpx.AsyncClient` per provider, over its one layered transport.

Connectors receive their client; they never build one. How a call's answer
becomes records or a stable error is `gateway.connectors.calls`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal

import httpx
import orjson
from opentelemetry.trace import Tracer

from gateway.clock import Clock
from gateway.config import Traffic
from gateway.errors import (
    ConfigError,
)
from gateway.model import AMOUNT_DIGITS
from gateway.observability import requestid
from gateway.observability.metrics import Metrics
from gateway.state.redis import RedisLink
from gateway.state.tokens import LocalTokens, TokenStore
from gateway.state.tokens.redis import RedisTokens
from gateway.state.vault import Vault
from gateway.upstream.quota import Quota
from gateway.upstream.resilience import Latency
from gateway.upstream.transports import (
    KIND,
    BoundedBody,
    Coalesce,
    ConcurrencyLimit,
    Observed,
    RateLimitWait,
    RetryAfter,
    RetryBudget,
    RetryIdempotent,
    Sent,
    WithinQuota,
    retry_after_header,
)
from gateway.upstream.wire import AiohttpTransport

__all__ = ["Upstream", "connections", "parse_json", "unbound"]


def connections(traffic: Traffic) -> httpx.AsyncBaseTransport:
    """Where a provider's stack ends when no transport is given: its own connections, the
    transport tests that talk to real servers use too."""
    return AiohttpTransport(max_connections=traffic.max_connections)


class _NoCookies(httpx.Cookies):
    """A jar that ignores `Set-Cookie`: what a provider's answer says is not kept."""

    def extract_cookies(self, _response: httpx.Response) -> None:
        return None


class _ProviderClient(httpx.AsyncClient):
    """httpx's client, keeping no cookies. Each of a provider's clients is shared by every
    caller and, for SCOM, by every landlord's token: a cookie one landlord's answer set (an
    affinity or session cookie a real server may add) went back with the next landlord's
    request. No provider's document uses cookies, and looking for them in each answer took
    16 µs."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._none = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._none

    @cookies.setter
    def cookies(self, _cookies: Any) -> None:
        raise TypeError("A provider's client keeps no cookies.")


@dataclass
class Upstream:
    """Everything a connector needs to reach its provider; it builds its clients from this.

    Credentials are resolved values (from the environment, or the sandbox's
    own account); they go into auth flows and nowhere else.
    """

    name: str
    base_url: str
    credentials: Mapping[str, str] = field(repr=False)
    traffic: Traffic
    clock: Clock
    transport: httpx.AsyncBaseTransport | None = None
    vault: Vault | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    metrics: Metrics = field(default_factory=Metrics)
    tracer: Tracer | None = None
    shared: RedisLink | None = None
    world_today: date | None = None
    """The sandbox world's fixed today, when the provider is the sandbox's (None: real)."""
    _clients: list[httpx.AsyncClient] = field(default_factory=list)

    _layered: httpx.AsyncBaseTransport | None = None
    quota: Quota = field(init=False)
    """What the provider lets this gateway spend, shared by its transport and its health."""
    latency: Latency = field(init=False, default_factory=Latency)
    """How long its answers take, timed by its transport, judged by its health."""

    def today(self) -> date:
        """The provider's today, for what a connector reckons by date (what is overdue, a
        relationship still current): the clock's, or the sandbox world's, whose bills fall
        due and leases end relative to its own fixed day."""
        if self.world_today is not None:
            return self.world_today
        return datetime.fromtimestamp(self.clock(), UTC).date()

    def __post_init__(self) -> None:
        self.quota = Quota(
            self.name, self.clock, self.traffic.quota_reserve, self.traffic.max_rest_seconds
        )

    def client(
        self,
        auth: httpx.Auth | None = None,
        retry_after: RetryAfter = retry_after_header,
        kind: Literal["data", "token"] = "data",
    ) -> httpx.AsyncClient:
        """A client over this provider's one layered transport: every client shares its limits.

        `kind` labels its requests in the metrics: a token client's are `token`.
        """

        async def tag(request: httpx.Request) -> None:
            """The request id lets provider logs be matched to ours; the kind, our metrics."""
            request.headers.setdefault(requestid.HEADER, requestid.or_new())
            request.extensions[KIND] = kind

        client = _ProviderClient(
            base_url=self.base_url.rstrip("/") + "/",
            auth=auth,
            transport=RateLimitWait(
                self._shared(),
                max_wait=self.traffic.max_retry_after_seconds,
                retry_after=retry_after,
            ),
            timeout=httpx.Timeout(
                self.traffic.timeout_seconds, connect=self.traffic.connect_timeout_seconds
            ),
            headers={"User-Agent": "propgate"},
            event_hooks={"request": [tag]},
        )
        self._clients.append(client)
        return client

    def token_fetched(self, outcome: str) -> None:
        """A token was obtained (`ok`) or not (the error's code), for the metrics."""
        self.metrics.token_fetch(self.name, outcome)

    def _shared(self) -> httpx.AsyncBaseTransport:
        """The provider's one stack, shared by its clients:
        coalescing > retry > quota > concurrency > observation > body bound > sending."""
        if self._layered is None:
            traffic = self.traffic
            inner = self.transport or connections(traffic)
            self._layered = Coalesce(
                RetryIdempotent(
                    WithinQuota(
                        ConcurrencyLimit(
                            Observed(
                                BoundedBody(Sent(inner), self.name, traffic.max_response_bytes),
                                self.name,
                                self.metrics,
                                self.tracer,
                                self.latency,
                            ),
                            traffic.max_concurrency,
                        ),
                        self.quota,
                    ),
                    retries=traffic.retries,
                    budget=RetryBudget(traffic.retry_budget_ratio),
                )
            )
        return self._layered

    def tokens(self) -> TokenStore:
        """Where this provider's tokens are kept: in Redis when replicas share it."""
        if self.shared is None:
            return LocalTokens(self.clock)
        identity = {"url": self.base_url, "credentials": dict(self.credentials)}
        return RedisTokens(self.shared, self.name, identity, self.clock)

    def credential(self, name: str) -> str:
        value = self.credentials.get(name)
        if not value:
            raise ConfigError(f"Provider {self.name} needs the credential `{name}`.")
        return value

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()
        if self._layered is not None:
            await self._layered.aclose()


_NUMERALS = bytes(0x30 if byte in b"0123456789." else 0x20 for byte in range(256))
"""Every digit and point as `0`, anything else as a space: a run of 16 is a number a double
may not hold (or a long digit string, which only costs the slower reading)."""
_LONG = b"0" * (AMOUNT_DIGITS + 1)


def unbound(response: httpx.Response) -> httpx.Response:
    """A read response, holding its body as a plain stream. httpx leaves it bound to a
    stream that points back at it, a reference cycle: the response and its body would wait
    for a full collection to be freed, however early the caller is done with them."""
    response.stream = httpx.ByteStream(response.content)
    return response


def parse_json(raw: bytes | str) -> Any:
    """JSON from an untrusted sender; raises ValueError for anything unreadable.

    orjson parses a 1,000-record page several times faster than the standard library,
    and refuses documents nested deeper than 1,024 levels with its ValueError rather
    than exhausting the stack. It reads every number with a fraction into a double, which
    holds any of up to 15 significant digits exactly: an amount a provider wrote with more
    (`99999999999999.99`) would be read as another (`…98`). So a body with such a number
    in it (a run of 16 digits, points included, found in a fraction of orjson's own time)
    is read a second time, the standard library's way, each such number as a `Decimal`;
    orjson has already checked that it is strict JSON.
    """
    parsed = orjson.loads(raw)
    text = raw.encode() if isinstance(raw, str) else raw
    if _LONG not in text.translate(_NUMERALS):
        return parsed
    try:
        return json.loads(text, parse_float=_exact)
    except RecursionError:
        raise ValueError("nested too deep to read its numbers exactly") from None


def _exact(numeral: str) -> float | Decimal:
    """A double where it holds the number (`4.5`, `1.0` stay what orjson makes them), else
    the `Decimal` the provider wrote."""
    number = float(numeral)
    exact = Decimal(numeral)
    return number if Decimal(repr(number)) == exact else exact
