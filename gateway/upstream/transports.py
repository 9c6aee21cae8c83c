"""Traffic layers stacked around a provider's transport, so no connector holds resilience logic.

Each layer is an `httpx.AsyncBaseTransport` wrapping another, as httpx's own
transports are: one concern each, composed per provider by `Upstream`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Tracer

from gateway.errors import UpstreamInvalidResponse
from gateway.observability.metrics import Metrics
from gateway.upstream.dispatch import watched
from gateway.upstream.quota import Quota
from gateway.upstream.resilience import Latency

__all__ = [
    "KIND",
    "BoundedBody",
    "Coalesce",
    "ConcurrencyLimit",
    "Observed",
    "RateLimitWait",
    "RetryAfter",
    "RetryBudget",
    "RetryIdempotent",
    "Sent",
    "WithinQuota",
    "retry_after_header",
]

_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})
_RETRYABLE_STATUS = frozenset({502, 503, 504})

RetryAfter = Callable[[httpx.Response], float | None]

KIND = "propgate_kind"
"""The request extension naming what an upstream request is for (`data`, `token`)."""


def retry_after_header(response: httpx.Response) -> float | None:
    """`Retry-After` in seconds (the HTTP-date form is not used by our providers)."""
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class ConcurrencyLimit(httpx.AsyncBaseTransport):
    """At most `limit` requests in flight to a provider: we do not cause the 429s we wait out."""

    def __init__(self, inner: httpx.AsyncBaseTransport, limit: int) -> None:
        self._inner = inner
        self._slots = asyncio.Semaphore(limit)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        async with self._slots:
            return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


class WithinQuota(httpx.AsyncBaseTransport):
    """Sends a request only while the provider's quota allows it, and reads the quota off
    every answer.

    It sits under coalescing and retries, so each request the provider receives is spent
    once, and above the concurrency limit, so a request held back never took a slot. It
    never waits for a turn: a request held back raises `Resting` (`RATE_LIMITED`) at once,
    so a nearly spent quota holds no caller (nor looks like a slow provider).
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, quota: Quota) -> None:
        self._inner = inner
        self._quota = quota

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self._quota.spend()
        response = await self._inner.handle_async_request(request)
        self._quota.observe(response.headers)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class Observed(httpx.AsyncBaseTransport):
    """Counts and times each request the provider receives, and traces it when tracing is on.

    It sits under the retry and rate-limit layers, so every attempt counts, as the
    provider's own logs would count it; the time includes reading the body but not
    waiting for a concurrency slot, so it is also the time the provider's health
    judges its latency by. A trace's context goes upstream (`traceparent`), so a
    provider that traces joins the gateway's trace.
    """

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        provider: str,
        metrics: Metrics,
        tracer: Tracer | None,
        latency: Latency,
    ) -> None:
        self._inner = inner
        self._provider = provider
        self._metrics = metrics
        self._tracer = tracer
        self._latency = latency

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        kind = str(request.extensions.get(KIND, "data"))
        if self._tracer is None:
            return await self._measured(request, kind)
        with self._tracer.start_as_current_span(
            f"{request.method} {self._provider}",
            kind=SpanKind.CLIENT,
            attributes={
                "http.request.method": request.method,
                "server.address": request.url.host,
                "url.path": request.url.path,
                "propgate.provider": self._provider,
                "propgate.kind": kind,
            },
        ) as span:
            propagate.inject(request.headers)
            response = await self._measured(request, kind)
            span.set_attribute("http.response.status_code", response.status_code)
            return response

    async def _measured(self, request: httpx.Request, kind: str) -> httpx.Response:
        waiting = self._latency.sent()
        status = "error"
        try:
            response = await self._inner.handle_async_request(request)
        except httpx.TimeoutException:
            status = "timeout"
            raise
        except asyncio.CancelledError:
            status = "cancelled"
            raise
        else:
            status = str(response.status_code)
            return response
        finally:
            took = self._latency.ended(waiting, answered=status.isdigit())
            self._metrics.upstream_request(self._provider, kind, status, took)

    async def aclose(self) -> None:
        await self._inner.aclose()


class RateLimitWait(httpx.AsyncBaseTransport):
    """A 429 whose retry-after is within `max_wait` is waited out and the request sent again.

    A longer wait is not ours to impose on the caller: the 429 goes up, and the
    connector reports that provider's part as `RATE_LIMITED` with `retryAfter`.
    A 429 means the request was not processed, so resending is safe for writes too.
    """

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        *,
        max_wait: float,
        retry_after: RetryAfter = retry_after_header,
        attempts: int = 3,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._inner = inner
        self._max_wait = max_wait
        self._retry_after = retry_after
        self._attempts = attempts
        self._sleep = sleep

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        for attempt in range(1, self._attempts + 1):
            response = await self._inner.handle_async_request(request)
            if response.status_code != 429 or attempt == self._attempts:
                return response
            await response.aread()
            wait = self._retry_after(response)
            if wait is None or wait > self._max_wait:
                return response
            await response.aclose()
            await self._sleep(wait)
        raise AssertionError("unreachable: the last attempt returns")

    async def aclose(self) -> None:
        await self._inner.aclose()


_NOT_CARRIED_OUT = frozenset({400, 401, 403, 404, 405, 409, 410, 413, 414, 415, 422, 429})
"""Client errors (RFC 9110 §15.5) a server answers instead of carrying the request out. 408 is
not among them (the request may have been read and acted on), nor any 5xx."""


class Sent(httpx.AsyncBaseTransport):
    """Marks the write being watched (`gateway.upstream.dispatch`) as having left, as a data
    request that may change something is handed to the network: innermost, so a request held
    back by a layer above (a spent quota, a full pool) never counts as sent. A connection that
    could not be made sent nothing, and a request the provider refused without carrying it
    out (`_NOT_CARRIED_OUT`: its input invalid, its record missing, a conflict) changed
    nothing: the write certainly did not happen, and its key is freed for the corrected
    write. Any method but GET, HEAD and OPTIONS counts, a GraphQL query sent by POST too
    (whose errors in execution come with a 200, and keep the key; a request refused before
    execution, a 4xx, frees it): erring that way only keeps a key that could have been
    freed."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        dispatch = watched()
        if (
            dispatch is None
            or request.method in _IDEMPOTENT
            or request.extensions.get(KIND) == "token"
        ):
            return await self._inner.handle_async_request(request)
        dispatch.in_doubt += 1
        try:
            response = await self._inner.handle_async_request(request)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout):
            dispatch.in_doubt -= 1
            raise
        if response.status_code in _NOT_CARRIED_OUT:
            dispatch.in_doubt -= 1
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class BoundedBody(httpx.AsyncBaseTransport):
    """Reads the whole body (inside the concurrency slot), refusing one larger than `max_bytes`.

    A provider that streams without end must not exhaust the gateway's memory.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, provider: str, max_bytes: int) -> None:
        self._inner = inner
        self._provider = provider
        self._max_bytes = max_bytes

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in response.stream:  # type: ignore[union-attr]
                size += len(chunk)
                if size > self._max_bytes:
                    raise UpstreamInvalidResponse(
                        self._provider,
                        f"{self._provider} sent a body larger than {self._max_bytes} bytes.",
                    )
                chunks.append(chunk)
        finally:
            await response.aclose()
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            content=b"".join(chunks),
            extensions=response.extensions,
            request=request,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


class RetryBudget:
    """Each request earns `ratio` of a retry; a retry spends one. A small reserve starts it off."""

    def __init__(self, ratio: float, reserve: float = 10.0) -> None:
        self._ratio = ratio
        self._cap = reserve
        self._tokens = reserve

    def earn(self) -> None:
        self._tokens = min(self._cap, self._tokens + self._ratio)

    def spend(self) -> bool:
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class RetryIdempotent(httpx.AsyncBaseTransport):
    """Reads that failed in transit or with 502/503/504 are sent again, with jittered backoff.

    Writes are never retried here: a write whose answer was lost may have happened.
    """

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        *,
        retries: int,
        budget: RetryBudget,
        backoff: float = 0.05,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._inner = inner
        self._retries = retries
        self._budget = budget
        self._backoff = backoff
        self._sleep = sleep

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method not in _IDEMPOTENT:
            return await self._inner.handle_async_request(request)
        self._budget.earn()
        attempt = 0
        while True:
            try:
                response = await self._inner.handle_async_request(request)
            except httpx.TransportError:
                if attempt >= self._retries or not self._budget.spend():
                    raise
            else:
                if (
                    response.status_code not in _RETRYABLE_STATUS
                    or attempt >= self._retries
                    or not self._budget.spend()
                ):
                    return response
                await response.aclose()
            await self._sleep(random.uniform(0, self._backoff * 2**attempt))
            attempt += 1

    async def aclose(self) -> None:
        await self._inner.aclose()


_PER_REQUEST = frozenset({"x-request-id", "traceparent", "tracestate"})
"""Headers that differ for every caller's request but change nothing about the answer."""

_Reply = tuple[int, httpx.Headers, bytes, dict[str, Any]]


class Coalesce(httpx.AsyncBaseTransport):
    """Identical reads in flight at the same moment go to the provider once.

    Concurrent client queries often ask a provider the same thing at once (the first
    page of a list, a record by id): the provider sees one request, and each caller
    gets its own copy of the answer. Only GETs, and only when every header that reaches
    the provider is the same, credentials included, apart from per-request ids (the
    provider sees the first caller's): an answer is never shared across credentials.
    The shared request runs as its own task, so a caller that gives up (its deadline,
    a disconnect) does not fail the others waiting on it. Only reads in flight are held,
    each until it lands: as many as callers are waiting on, each answer bounded by
    `BoundedBody`.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner
        self._flying: dict[tuple[str, tuple[tuple[bytes, bytes], ...]], asyncio.Task[_Reply]] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "GET":
            return await self._inner.handle_async_request(request)
        key = (
            str(request.url),
            tuple(
                sorted(
                    (name.lower(), value)
                    for name, value in request.headers.raw
                    if name.decode("latin-1").lower() not in _PER_REQUEST
                )
            ),
        )
        flight = self._flying.get(key)
        if flight is None:
            flight = asyncio.create_task(self._fly(request))
            self._flying[key] = flight
            flight.add_done_callback(lambda done: self._land(key, done))
        status, headers, body, extensions = await asyncio.shield(flight)
        return httpx.Response(
            status, headers=headers, content=body, extensions=extensions, request=request
        )

    async def _fly(self, request: httpx.Request) -> _Reply:
        response = await self._inner.handle_async_request(request)
        try:
            body = b"".join([chunk async for chunk in response.stream])  # type: ignore[union-attr]
        finally:
            await response.aclose()
        return response.status_code, response.headers, body, dict(response.extensions)

    def _land(
        self, key: tuple[str, tuple[tuple[bytes, bytes], ...]], done: asyncio.Task[_Reply]
    ) -> None:
        if self._flying.get(key) is done:
            del self._flying[key]
        if not done.cancelled():
            done.exception()

    async def aclose(self) -> None:
        await self._inner.aclose()
