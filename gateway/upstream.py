"""The one `httpx.AsyncClient` per provider, and the mapping of HTTP failures to stable errors.

Connectors receive their client; they never build one. What a provider's
error body says is the connector's to read, and where a provider names its
errors, the connector's table says what each name means; what that meaning,
or else the HTTP status, becomes for the caller is decided here, once, for
every provider.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import orjson
from opentelemetry.trace import Tracer

from gateway import requestid
from gateway.auth import LocalTokens, TokenStore
from gateway.clock import Clock
from gateway.config import Traffic
from gateway.errors import (
    ConfigError,
    NotFound,
    OutcomeUnknown,
    ProviderError,
    RateLimited,
    UpstreamInvalidResponse,
    UpstreamRejected,
    UpstreamUnavailable,
    ValidationFailed,
)
from gateway.metrics import Metrics
from gateway.quota import Quota
from gateway.resilience import Latency
from gateway.shared.link import RedisLink
from gateway.shared.tokens import RedisTokens
from gateway.transports import (
    KIND,
    BoundedBody,
    Coalesce,
    ConcurrencyLimit,
    Observed,
    RateLimitWait,
    RetryAfter,
    RetryBudget,
    RetryIdempotent,
    WithinQuota,
    retry_after_header,
)
from gateway.vault import Vault

__all__ = [
    "Failure",
    "Said",
    "Upstream",
    "check_status",
    "decode_json",
    "error_message",
    "parse_json",
    "said_in",
    "send",
]


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
    _clients: list[httpx.AsyncClient] = field(default_factory=list)

    _layered: httpx.AsyncBaseTransport | None = None
    quota: Quota = field(init=False)
    """What the provider lets this gateway spend, shared by its transport and its health."""
    latency: Latency = field(init=False, default_factory=Latency)
    """How long its answers take, timed by its transport, judged by its health."""

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

        client = httpx.AsyncClient(
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
        coalescing > retry > quota > concurrency > observation > body bound."""
        if self._layered is None:
            traffic = self.traffic
            inner = self.transport or httpx.AsyncHTTPTransport(
                limits=httpx.Limits(
                    max_connections=traffic.max_connections,
                    max_keepalive_connections=traffic.max_connections,
                )
            )
            self._layered = Coalesce(
                RetryIdempotent(
                    WithinQuota(
                        ConcurrencyLimit(
                            Observed(
                                BoundedBody(inner, self.name, traffic.max_response_bytes),
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


async def send(
    client: httpx.AsyncClient, provider: str, method: str, url: str, **kwargs: Any
) -> httpx.Response:
    """Sends, turning network failures into that provider's stable errors.

    A write that failed after it may have left (a read timeout, a dropped
    connection) is `OUTCOME_UNKNOWN`: reporting it as failed could make a caller
    create the same tenant twice.
    """
    try:
        return await client.request(method, url, **kwargs)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
        raise UpstreamUnavailable(
            provider, f"{provider} could not be reached ({type(error).__name__})."
        ) from None
    except httpx.HTTPError as error:
        if method.upper() not in ("GET", "HEAD", "OPTIONS"):
            raise OutcomeUnknown(
                provider,
                f"{provider} did not confirm the write ({type(error).__name__}); "
                "it may or may not have happened.",
            ) from None
        if isinstance(error, httpx.TimeoutException):
            raise UpstreamUnavailable(provider, f"{provider} did not answer in time.") from None
        raise UpstreamUnavailable(
            provider, f"{provider} could not be reached ({type(error).__name__})."
        ) from None


class Failure(enum.Enum):
    """What a provider's refusal means for the caller, whatever status it came with."""

    NOT_FOUND = "not found"
    INVALID = "invalid"
    """The content was refused: a write's input (the caller fixes it), or a read's
    parameters (the gateway's own)."""
    REJECTED = "rejected"
    """The request itself was malformed: a gateway bug."""
    DENIED = "denied"
    RATE_LIMITED = "rate limited"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class Said:
    """A failed response's body as its connector reads it: the provider's own name for the
    error, its words, and the fields it names."""

    name: str | None = None
    message: str | None = None
    problems: tuple[dict[str, str], ...] = ()


_READS = frozenset({"GET", "HEAD", "OPTIONS"})


def _by_status(status: int) -> Failure | None:
    if status == 429:
        return Failure.RATE_LIMITED
    if status == 404:
        return Failure.NOT_FOUND
    if status == 400:
        return Failure.REJECTED
    if status in (401, 403):
        return Failure.DENIED
    if status >= 500:
        return Failure.UNAVAILABLE
    return None


def check_status(
    response: httpx.Response,
    provider: str,
    detail: str | Said | None,
    retry_after: RetryAfter = retry_after_header,
    names: Mapping[str, Failure] | None = None,
) -> None:
    """Raises the stable error for a failed response.

    `detail` is the provider's own message, or all its body said; `names` is the
    connector's table of the provider's error names. A name in the table decides, as
    the provider meant it; the status decides only for names the table does not know.
    """
    status = response.status_code
    if status < 400:
        return
    said = detail if isinstance(detail, Said) else Said(message=detail)
    failure = (names or {}).get(said.name or "") or _by_status(status)
    labelled = f"HTTP {status}" + (f" {said.name}" if said.name else "")
    words = f": {said.message}" if said.message else ""
    match failure:
        case Failure.RATE_LIMITED:
            raise RateLimited(
                provider, f"{provider} is rate limiting the gateway{words}", retry_after(response)
            )
        case Failure.NOT_FOUND:
            raise NotFound(f"{provider} has no such record{words}", provider=provider)
        case Failure.INVALID if response.request.method not in _READS:
            raise ValidationFailed(
                provider,
                said.message or f"{provider} refused the write ({labelled}).",
                list(said.problems),
            )
        case Failure.INVALID | Failure.REJECTED:
            fields = "; ".join(f"{p['field']}: {p['message']}" for p in said.problems if p["field"])
            raise UpstreamRejected(
                provider,
                f"{provider} rejected the gateway's request ({labelled}){words}"
                + (f" ({fields})" if fields else ""),
            )
        case Failure.DENIED:
            raise ProviderError(provider, f"{provider} denied access ({labelled}){words}")
        case Failure.UNAVAILABLE:
            raise UpstreamUnavailable(provider, f"{provider} failed ({labelled}){words}")
    raise ProviderError(provider, f"{provider} answered {labelled}{words}")


def parse_json(raw: bytes | str) -> Any:
    """JSON from an untrusted sender; raises ValueError for anything unreadable.

    orjson parses a 1,000-record page several times faster than the standard library,
    and refuses documents nested deeper than 1,024 levels with its ValueError rather
    than exhausting the stack.
    """
    return orjson.loads(raw)


def decode_json(response: httpx.Response, provider: str) -> Any:
    try:
        return parse_json(response.content)
    except ValueError:
        raise UpstreamInvalidResponse(
            provider, f"{provider} returned a body that is not JSON."
        ) from None


def _error_member(body: Any) -> str | None:
    """The common `{"error": {"code", "message"}}` body (OData, pms)."""
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return str(message) if message else None


def said_in(response: httpx.Response, read: Callable[[Any], Said]) -> Said:
    """What a failed response's body says, read by its connector's rule; nothing for a
    success or a body that is not JSON."""
    if response.status_code < 400:
        return Said()
    try:
        body = parse_json(response.content)
    except ValueError:
        return Said()
    return read(body)


def error_message(
    response: httpx.Response, read: Callable[[Any], str | None] = _error_member
) -> str | None:
    """The provider's own words from a failed response's body, read by its connector's rule."""
    return said_in(response, lambda body: Said(message=read(body))).message
