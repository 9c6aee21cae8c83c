"""Faults stay local: a deadline per GraphQL request, a circuit breaker per provider, and a
bound on how much of a provider one query may take.

Every connector call goes through its provider's `ProviderHealth`, which refuses calls
while the provider rests (it asked the gateway to wait, or its quota is spent) or its
circuit is open, cuts a call at the request's deadline, opens the circuit on failures
and on slowness (a provider that stalls would otherwise hold every caller that needs it
for the whole deadline, and only then count as failing), and charges one-key-at-a-time
fan-outs to the query's budget. It keeps what the `providers` query reports: breaker
state, rest, last error, latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import math
import statistics
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Iterator
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
from gateway.upstream.dispatch import may_have_left
from gateway.upstream.quota import Quota

__all__ = [
    "Breaker",
    "BreakerState",
    "Latency",
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


@dataclass(frozen=True, eq=False)
class Ticket:
    """Admission to call: which breaker epoch it was given in, and whether it is the probe.

    A verdict counts only for the epoch that admitted it, so a slow call admitted
    before the circuit opened cannot close it, or free a probe slot, afterwards.
    """

    epoch: int
    probe: bool


class Breaker:
    """Opens after `failures` consecutive failures, or when its provider is found too slow
    (`trip`); after `open_seconds`, one probe decides."""

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

    @property
    def epoch(self) -> int:
        """Changes each time the circuit opens or closes."""
        return self._epoch

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
            self._open()

    def trip(self) -> None:
        """Opens a closed circuit now, whatever its failures: the provider is too slow."""
        if self._opened_at is None:
            self._open()

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._probing = False
        self._epoch += 1


@dataclass(frozen=True)
class Patience:
    """How long, and how widely, the gateway waits on one provider."""

    slow_seconds: float | None = None
    """The slow time: a p95 of answers, or a silent wait, longer than this opens the circuit;
    `None`: slowness opens nothing."""
    slow_min_calls: int = 20
    """Answers timed before their p95 can open the circuit."""
    stalled_calls: int = 4
    """Calls waiting longer than `slow_seconds` at once, with no answer in that time, that
    open the circuit."""
    max_fan_out: int = 100
    fan_out_concurrency: int = 8

    @classmethod
    def of(cls, traffic: Traffic, deadline_seconds: float) -> Patience:
        share = traffic.breaker_slow_share
        return cls(
            slow_seconds=share * deadline_seconds if share < 1 else None,
            slow_min_calls=traffic.breaker_slow_min_calls,
            stalled_calls=traffic.breaker_stalled_calls,
            max_fan_out=traffic.max_fan_out_per_query,
            fan_out_concurrency=traffic.fan_out_concurrency,
        )


_TIMED = 100
"""Recent requests whose times decide whether a provider is too slow."""
_EARLY = 0.001
"""An event loop may run a timer up to its clock's resolution before the time it was set for."""


class Latency:
    """How long a provider takes to answer, request by request: the recent answers, the
    requests still waiting for one, and when it last answered anything.

    It is timed in the transport, inside the concurrency slot (`Observed`): a queue of the
    gateway's own making, its callers outnumbering the slots, must not be taken for a slow
    provider. `ProviderHealth` judges from it.
    """

    def __init__(self) -> None:
        self.recent: deque[float] = deque(maxlen=_TIMED)
        self._waiting: dict[int, tuple[float, float]] = {}
        self._sent = 0
        self._heard = -math.inf

    def sent(self) -> int:
        """Each request's start is kept on two clocks. How long it took is read on
        `perf_counter`: uvloop's `loop.time()` counts whole milliseconds, and reported a
        provider that answers within one as taking 0 ms. When it was sent and when the
        provider last answered stay on the loop's clock, whose timers they set
        (`silent_since`)."""
        self._sent += 1
        self._waiting[self._sent] = (asyncio.get_running_loop().time(), time.perf_counter())
        return self._sent

    def ended(self, request: int, answered: bool) -> float:
        """The request ended, `answered` or given up on (then it took at least this long):
        how long it took, which the metrics record too."""
        _, started = self._waiting.pop(request)
        took = time.perf_counter() - started
        self.recent.append(took)
        if answered:
            self._heard = asyncio.get_running_loop().time()
        return took

    def forget(self) -> None:
        """Drops the recent answers' times, so that only answers from now on are judged."""
        self.recent.clear()

    def silent_since(self) -> float | None:
        """Since when requests have waited with no answer at all, if some are waiting: a
        provider silent for long has stalled, where a large request, or calls queued behind
        the gateway's own concurrency limit, leave its answers coming."""
        if not self._waiting:
            return None
        return max(self._heard, min(sent for sent, _ in self._waiting.values()))


@dataclass(eq=False)
class _Call:
    started: float
    timeout: asyncio.Timeout
    write: bool
    cut: bool = False
    """The gateway stopped waiting for it when the circuit opened for slowness."""


def _is_failure(error: ProviderError) -> bool:
    """The provider is unwell (down, slow, garbling); not a refusal it chose to make."""
    return isinstance(error, UpstreamUnavailable | UpstreamInvalidResponse)


def _quantile(samples: Iterable[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


class ProviderHealth:
    def __init__(
        self,
        name: str,
        kind: str,
        breaker: Breaker,
        quota: Quota,
        latency: Latency,
        patience: Patience | None = None,
    ) -> None:
        self.name = name
        self.kind = kind
        self.breaker = breaker
        self.quota = quota
        self.latency = latency
        self.patience = patience or Patience()
        self.last_error: str | None = None
        self.shed: Counter[str] = Counter()
        """Calls the gateway did not send or stopped waiting for, by reason (for the metrics)."""
        self._latency_epoch = breaker.epoch
        self._calls: dict[Ticket, _Call] = {}

    @property
    def healthy(self) -> bool:
        return self.breaker.state is BreakerState.CLOSED and self.quota.resting_until is None

    @property
    def latency_p50_ms(self) -> float | None:
        recent = self.latency.recent
        return round(statistics.median(recent) * 1000, 1) if recent else None

    @property
    def latency_p95_ms(self) -> float | None:
        recent = self.latency.recent
        return round(_quantile(recent, 0.95) * 1000, 1) if recent else None

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
                self.name,
                f"{self.name} is failing or too slow; calls are paused while its circuit is open.",
            )
        scope = _operation.get()
        loop = asyncio.get_running_loop()
        slow = self.patience.slow_seconds
        started = loop.time()
        watch = loop.call_at(started + slow, self._waited_long, ticket) if slow else None
        calling = _calling.set(self)
        try:
            async with asyncio.timeout_at(scope.deadline if scope else None) as timeout:
                self._calls[ticket] = _Call(started, timeout, write)
                result = await operation()
        except TimeoutError:
            cut = self._calls[ticket].cut
            error = self._late(cut, write)
            if cut:
                self.breaker.failed(ticket)  # decides only for a probe; last_error says why
            else:
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
            self.last_error = f"{error.code}: {error.message}"
            if error.retry_after is not None:
                self.quota.rest(error.retry_after, "asked not to be called")
            self.breaker.released(ticket)
            raise
        except ProviderError as error:
            if _is_failure(error) or isinstance(error, OutcomeUnknown):
                self._failed(ticket, error)
            else:
                self._succeeded(ticket)
            raise
        except NotFound:
            self._succeeded(ticket)
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
            if watch is not None:
                watch.cancel()
            self._calls.pop(ticket, None)
        self._succeeded(ticket)
        return result

    def _late(self, cut: bool, write: bool) -> ProviderError:
        if cut:
            return UpstreamTimeout(
                self.name,
                f"{self.name} is too slow: its circuit opened and the gateway stopped "
                "waiting for this call.",
            )
        if write and may_have_left():
            return OutcomeUnknown(
                self.name,
                f"{self.name} did not confirm the write in time; it may or may not have happened.",
            )
        return UpstreamTimeout(self.name, f"{self.name} did not answer in time.")

    def _succeeded(self, ticket: Ticket) -> None:
        self.breaker.succeeded(ticket)
        self._judge()

    def _failed(self, ticket: Ticket, error: ProviderError) -> None:
        self.last_error = f"{error.code}: {error.message}"
        self.breaker.failed(ticket)
        self._judge()

    def _judge(self) -> None:
        """Opens the circuit when the p95 of the provider's recent answers is slow. Answers
        from before the circuit last opened or closed say nothing of the provider now."""
        if self._latency_epoch != self.breaker.epoch:
            self.latency.forget()
            self._latency_epoch = self.breaker.epoch
        recent = self.latency.recent
        slow = self.patience.slow_seconds
        if slow is None or len(recent) < self.patience.slow_min_calls:
            return
        p95 = _quantile(recent, 0.95)
        if p95 > slow:
            self._shed(
                f"the p95 of its last {len(recent)} answers is {p95:.2f} s, above {slow:g} s"
            )

    def _waited_long(self, ticket: Ticket) -> None:
        """A call has waited the slow time. The provider is judged by its requests, not by
        the call, which may send many (a page after page listing): only a provider that has
        answered nothing for the slow time is slow. A probe read waiting on such a silence
        has failed: its caller need not wait for the deadline to learn so. Enough calls that
        slow at once, while the provider has answered nothing for as long, mean it has
        stalled: nothing will complete to show it before the deadline. If its silence is
        younger, the call looks again when it is not."""
        call = self._calls.get(ticket)
        slow = self.patience.slow_seconds
        if call is None or slow is None:
            return
        if ticket.probe:
            if not call.write:
                self._judge_probe(ticket, call, slow)
            return
        loop = asyncio.get_running_loop()
        cutoff = loop.time() - slow + _EARLY
        stalled = sum(
            1
            for held, waiting in self._calls.items()
            if held.epoch == self.breaker.epoch and waiting.started <= cutoff
        )
        silent = self.latency.silent_since()
        if stalled < self.patience.stalled_calls or silent is None:
            return
        if silent > cutoff:
            loop.call_at(silent + slow, self._waited_long, ticket)
            return
        self._shed(f"{stalled} calls have waited more than {slow:g} s, and it answered none")

    def _judge_probe(self, ticket: Ticket, call: _Call, slow: float) -> None:
        """A probe that sends one request after another is not slow while each is answered
        in time; between two of them, no silence has begun."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        silent = self.latency.silent_since()
        if silent is not None and silent <= now - slow + _EARLY:
            self._cut(call)
        else:
            loop.call_at((now if silent is None else silent) + slow, self._waited_long, ticket)

    def _shed(self, reason: str) -> None:
        """Opens the circuit for slowness and stops waiting for the reads already sent: their
        callers get the other providers' data now rather than at the deadline. Writes are
        left to their deadline: one cut short might still happen, unseen."""
        if self.breaker.state is not BreakerState.CLOSED:
            return
        self.breaker.trip()
        self.last_error = f"UPSTREAM_TIMEOUT: {self.name} is too slow: {reason}."
        logger.warning("%s: circuit opened, too slow: %s", self.name, reason)
        for call in self._calls.values():
            if not call.write:
                self._cut(call)

    def _cut(self, call: _Call) -> None:
        if not call.cut:
            call.cut = True
            call.timeout.reschedule(asyncio.get_running_loop().time())
            self.shed["cut"] += 1
