"""Faults stay local: a deadline per GraphQL request, a circuit breaker per provider, and a
bound on how much of a provider one query may take.

Every connector call goes through its provider's `ProviderHealth`, which
refuses calls while the provider rests (it asked the gateway to wait, or its
quota is spent) or its circuit is open, cuts a call at the request's
deadline, counts failures, charges one-key-at-a-time fan-outs to the query's
budget, and keeps what the `providers` query reports: breaker state, rest,
last error, median latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import statistics
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TypeVar

from gateway.clock import Clock
from gateway.config import Traffic
from gateway.errors import (
    CircuitOpen,
    GatewayError,
    NotFound,
    OutcomeUnknown,
    ProviderError,
    RateLimited,
    Resting,
    TooManyProviderCalls,
    UpstreamInvalidResponse,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.quota import Quota

__all__ = [
    "Breaker",
    "BreakerState",
    "Patience",
    "ProviderHealth",
    "Ticket",
    "deadline_in",
    "fan_out",
]

T = TypeVar("T")
logger = logging.getLogger("gateway.resilience")


@dataclass
class _Operation:
    """What the provider calls of one GraphQL operation share: its deadline, and how many
    one-key-at-a-time calls each provider has been asked for so far."""

    deadline: float
    fanned_out: Counter[str] = field(default_factory=Counter)


_operation: ContextVar[_Operation | None] = ContextVar("gateway_operation", default=None)
_calling: ContextVar[ProviderHealth | None] = ContextVar("gateway_calling", default=None)


@contextlib.contextmanager
def deadline_in(seconds: float) -> Iterator[None]:
    """Every provider call made inside (and in tasks started inside) ends within `seconds`,
    and their fan-outs share one budget per provider (`fan_out`)."""
    token = _operation.set(_Operation(asyncio.get_running_loop().time() + seconds))
    try:
        yield
    finally:
        _operation.reset(token)


def fan_out(calls: int) -> int:
    """Charges `calls` one-key-at-a-time calls to the provider being called; how many of them
    may be in flight at once. Beyond the query's budget, raises `TooManyProviderCalls`
    before any is sent.

    The provider is the one whose `ProviderHealth.call` is running, so a connector need
    not say whose fan-out it is; a connector used on its own (no call running) is not
    bounded here, and its transport's concurrency limit still holds.
    """
    health = _calling.get()
    return max(calls, 1) if health is None else health.fan_out(calls)


class BreakerState(enum.Enum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


@dataclass(frozen=True)
class Ticket:
    """Admission to call: which breaker epoch it was given in, and whether it is the probe.

    A verdict counts only for the epoch that admitted it, so a slow call admitted
    before the circuit opened cannot close it, or free a probe slot, afterwards.
    """

    epoch: int
    probe: bool


class Breaker:
    """Opens after `failures` consecutive failures; after `open_seconds`, one probe decides."""

    def __init__(self, failures: int, open_seconds: float, clock: Clock) -> None:
        self._threshold = failures
        self._open_seconds = open_seconds
        self._clock = clock
        self._consecutive = 0
        self._opened_at: float | None = None
        self._probing = False
        self._epoch = 0

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() >= self._opened_at + self._open_seconds:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def admit(self) -> Ticket | None:
        state = self.state
        if state is BreakerState.CLOSED:
            return Ticket(self._epoch, probe=False)
        if state is BreakerState.HALF_OPEN and not self._probing:
            self._probing = True
            return Ticket(self._epoch, probe=True)
        return None

    def succeeded(self, ticket: Ticket) -> None:
        if ticket.epoch != self._epoch:
            return
        self._consecutive = 0
        if self._opened_at is not None and ticket.probe:
            self._opened_at = None
            self._probing = False
            self._epoch += 1

    def released(self, ticket: Ticket) -> None:
        """The call ended without a verdict on the provider (cancelled, or the caller's fault)."""
        if ticket.epoch == self._epoch and ticket.probe:
            self._probing = False

    def failed(self, ticket: Ticket) -> None:
        if ticket.epoch != self._epoch:
            return
        self._consecutive += 1
        if ticket.probe or (self._opened_at is None and self._consecutive >= self._threshold):
            self._opened_at = self._clock()
            self._probing = False
            self._epoch += 1


@dataclass(frozen=True)
class Patience:
    """How widely the gateway waits on one provider."""

    max_fan_out: int = 100
    fan_out_concurrency: int = 8

    @classmethod
    def of(cls, traffic: Traffic) -> Patience:
        return cls(
            max_fan_out=traffic.max_fan_out_per_query,
            fan_out_concurrency=traffic.fan_out_concurrency,
        )


def _is_failure(error: ProviderError) -> bool:
    """The provider is unwell (down, slow, garbling); not a refusal it chose to make."""
    return isinstance(error, UpstreamUnavailable | UpstreamInvalidResponse)


class ProviderHealth:
    def __init__(
        self,
        name: str,
        kind: str,
        breaker: Breaker,
        quota: Quota,
        patience: Patience | None = None,
    ) -> None:
        self.name = name
        self.kind = kind
        self.breaker = breaker
        self.quota = quota
        self.patience = patience or Patience()
        self.last_error: str | None = None
        self.shed: Counter[str] = Counter()
        """Calls the gateway did not send, by reason (for the metrics)."""
        self._latencies: deque[float] = deque(maxlen=256)

    @property
    def healthy(self) -> bool:
        return self.breaker.state is BreakerState.CLOSED and self.quota.resting_until is None

    @property
    def latency_p50_ms(self) -> float | None:
        return round(statistics.median(self._latencies) * 1000, 1) if self._latencies else None

    def fan_out(self, calls: int) -> int:
        """See `fan_out`: the budget is per operation, or per fan-out outside one."""
        operation = _operation.get()
        spent = calls + (operation.fanned_out[self.name] if operation is not None else 0)
        limit = self.patience.max_fan_out
        if spent > limit:
            self.shed["fan_out"] += 1
            raise TooManyProviderCalls(
                self.name,
                f"This query needs {spent} calls to {self.name}, one record at a time (it "
                f"cannot batch them); a query may make {limit}. Ask for fewer records at once.",
                limit,
                spent,
            )
        if operation is not None:
            operation.fanned_out[self.name] = spent
        return self.patience.fan_out_concurrency

    async def call(self, operation: Callable[[], Awaitable[T]], *, write: bool = False) -> T:
        refused = self.quota.refusal()
        if refused is not None:
            self.shed["rate_limit"] += 1
            raise refused
        ticket = self.breaker.admit()
        if ticket is None:
            self.shed["circuit_open"] += 1
            raise CircuitOpen(
                self.name, f"{self.name} is failing; calls are paused while its circuit is open."
            )
        scope = _operation.get()
        started = time.monotonic()
        calling = _calling.set(self)
        try:
            async with asyncio.timeout_at(scope.deadline if scope else None):
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
            self._failed(ticket, error)
            raise error from None
        except Resting:
            self.shed["rate_limit"] += 1
            self.breaker.released(ticket)
            raise
        except TooManyProviderCalls:
            self.breaker.released(ticket)
            raise
        except RateLimited as error:
            if error.retry_after is not None:
                self.quota.rest(error.retry_after, "asked not to be called")
            self.breaker.released(ticket)
            raise
        except ProviderError as error:
            if _is_failure(error) or isinstance(error, OutcomeUnknown):
                self._failed(ticket, error)
            else:
                self.breaker.succeeded(ticket)
            raise
        except NotFound:
            self.breaker.succeeded(ticket)
            raise
        except GatewayError:
            self.breaker.released(ticket)
            raise
        except Exception:
            logger.exception("%s: the connector could not read the provider's answer", self.name)
            unreadable = UpstreamInvalidResponse(
                self.name, f"{self.name} answered something the gateway could not read."
            )
            self._failed(ticket, unreadable)
            raise unreadable from None
        except BaseException:
            self.breaker.released(ticket)
            raise
        finally:
            _calling.reset(calling)
        self.breaker.succeeded(ticket)
        self._latencies.append(time.monotonic() - started)
        return result

    def _failed(self, ticket: Ticket, error: ProviderError) -> None:
        self.last_error = f"{error.code}: {error.message}"
        self.breaker.failed(ticket)
