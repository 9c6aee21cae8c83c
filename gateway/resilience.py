"""Faults stay local: a deadline per GraphQL request, and a circuit breaker per provider.

Every connector call goes through its provider's `ProviderHealth`, which
refuses calls while the provider's circuit is open, cuts a call at the
request's deadline, counts failures, and keeps what the `providers` query
reports: breaker state, last error, median latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import statistics
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from typing import TypeVar

from gateway.clock import Clock
from gateway.errors import (
    CircuitOpen,
    GatewayError,
    OutcomeUnknown,
    ProviderError,
    UpstreamInvalidResponse,
    UpstreamTimeout,
    UpstreamUnavailable,
)

__all__ = ["Breaker", "BreakerState", "ProviderHealth", "deadline_in"]

T = TypeVar("T")
_deadline: ContextVar[float | None] = ContextVar("gateway_deadline", default=None)


@contextlib.contextmanager
def deadline_in(seconds: float) -> Iterator[None]:
    """Every provider call made inside (and in tasks started inside) ends within `seconds`."""
    token = _deadline.set(asyncio.get_running_loop().time() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


class BreakerState(enum.Enum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


class Breaker:
    """Opens after `failures` consecutive failures; after `open_seconds`, one probe decides."""

    def __init__(self, failures: int, open_seconds: float, clock: Clock) -> None:
        self._threshold = failures
        self._open_seconds = open_seconds
        self._clock = clock
        self._consecutive = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() >= self._opened_at + self._open_seconds:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def admit(self) -> bool:
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._probing:
            self._probing = True
            return True
        return False

    def succeeded(self) -> None:
        self._consecutive = 0
        self._opened_at = None
        self._probing = False

    def released(self) -> None:
        """A call ended without a verdict (cancelled): a probe slot it held is free again."""
        self._probing = False

    def failed(self) -> None:
        self._consecutive += 1
        if self._probing or self._consecutive >= self._threshold:
            self._opened_at = self._clock()
        self._probing = False


def _is_failure(error: ProviderError) -> bool:
    """The provider is unwell (down, slow, garbling); not a refusal it chose to make."""
    return isinstance(error, UpstreamUnavailable | UpstreamInvalidResponse)


class ProviderHealth:
    def __init__(self, name: str, kind: str, breaker: Breaker) -> None:
        self.name = name
        self.kind = kind
        self.breaker = breaker
        self.last_error: str | None = None
        self._latencies: deque[float] = deque(maxlen=256)

    @property
    def healthy(self) -> bool:
        return self.breaker.state is BreakerState.CLOSED

    @property
    def latency_p50_ms(self) -> float | None:
        return round(statistics.median(self._latencies) * 1000, 1) if self._latencies else None

    async def call(self, operation: Callable[[], Awaitable[T]], *, write: bool = False) -> T:
        if not self.breaker.admit():
            raise CircuitOpen(
                self.name, f"{self.name} is failing; calls are paused while its circuit is open."
            )
        deadline = _deadline.get()
        started = time.monotonic()
        try:
            async with asyncio.timeout_at(deadline):
                result = await operation()
        except TimeoutError:
            error: ProviderError = (
                OutcomeUnknown(
                    self.name,
                    f"{self.name} did not confirm the write in time; "
                    "it may or may not have happened.",
                )
                if write
                else UpstreamTimeout(self.name, f"{self.name} did not answer in time.")
            )
            self._failed(error)
            raise error from None
        except ProviderError as error:
            if _is_failure(error) or isinstance(error, OutcomeUnknown):
                self._failed(error)
            else:
                self.breaker.succeeded()
            raise
        except GatewayError:
            self.breaker.succeeded()
            raise
        except BaseException:
            self.breaker.released()
            raise
        self.breaker.succeeded()
        self._latencies.append(time.monotonic() - started)
        return result

    def _failed(self, error: ProviderError) -> None:
        self.last_error = f"{error.code}: {error.message}"
        self.breaker.failed()
