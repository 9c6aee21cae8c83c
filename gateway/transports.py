"""Traffic layers stacked around a provider's transport, so no connector holds resilience logic.

Each layer is an `httpx.AsyncBaseTransport` wrapping another, as httpx's own
transports are: one concern each, composed per provider by `Upstream`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx

__all__ = ["ConcurrencyLimit", "RateLimitWait", "RetryAfter", "retry_after_header"]

RetryAfter = Callable[[httpx.Response], float | None]


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
        self.in_flight = 0
        self.peak = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        async with self._slots:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            try:
                response = await self._inner.handle_async_request(request)
                await response.aread()
                return response
            finally:
                self.in_flight -= 1

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
