"""The circuit breaker under late, cancelled and caller-caused outcomes, on failures and on
slowness, and a provider's health when the provider asks the gateway to wait."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from gateway.clock import ManualClock
from gateway.errors import CircuitOpen, OutcomeUnknown, RateLimited, Resting, UpstreamTimeout
from gateway.upstream.quota import Quota
from gateway.upstream.resilience import (
    Breaker,
    BreakerState,
    Latency,
    Patience,
    ProviderHealth,
    deadline_in,
)


def _opened(clock: ManualClock) -> Breaker:
    breaker = Breaker(failures=2, open_seconds=30, clock=clock)
    for _ in range(2):
        ticket = breaker.admit()
        assert ticket is not None
        breaker.failed(ticket)
    assert breaker.state is BreakerState.OPEN
    return breaker


def test_only_one_probe_even_when_an_older_call_is_cancelled() -> None:
    clock = ManualClock()
    breaker = Breaker(failures=2, open_seconds=30, clock=clock)
    old = breaker.admit()
    assert old is not None
    for _ in range(2):
        ticket = breaker.admit()
        assert ticket is not None
        breaker.failed(ticket)
    clock.advance(30)

    probe = breaker.admit()
    breaker.released(old)

    assert probe is not None and probe.probe
    assert breaker.admit() is None


def test_a_late_success_from_before_the_opening_does_not_close_it() -> None:
    clock = ManualClock()
    breaker = Breaker(failures=1, open_seconds=30, clock=clock)
    slow = breaker.admit()
    failing = breaker.admit()
    assert slow is not None and failing is not None
    breaker.failed(failing)

    breaker.succeeded(slow)

    assert breaker.state is BreakerState.OPEN


def test_a_probe_that_ends_with_the_callers_error_frees_the_slot_and_decides_nothing() -> None:
    clock = ManualClock()
    breaker = _opened(clock)
    clock.advance(30)
    probe = breaker.admit()
    assert probe is not None

    breaker.released(probe)

    assert breaker.state is BreakerState.HALF_OPEN
    again = breaker.admit()
    assert again is not None and again.probe


def test_a_failed_probe_opens_the_circuit_again() -> None:
    clock = ManualClock()
    breaker = _opened(clock)
    clock.advance(30)
    probe = breaker.admit()
    assert probe is not None

    breaker.failed(probe)

    assert breaker.state is BreakerState.OPEN
    assert breaker.admit() is None


def test_a_probe_that_succeeds_closes_the_circuit() -> None:
    clock = ManualClock()
    breaker = _opened(clock)
    clock.advance(30)
    probe = breaker.admit()
    assert probe is not None

    breaker.succeeded(probe)

    assert breaker.state is BreakerState.CLOSED
    assert breaker.admit() is not None


def _health(clock: ManualClock, **patience: Any) -> ProviderHealth:
    return ProviderHealth(
        "slowpoke",
        "rest",
        Breaker(failures=5, open_seconds=30, clock=clock),
        Quota("slowpoke", clock, reserve=0.05, max_rest=3600),
        Latency(),
        Patience(**patience),
    )


def _request(health: ProviderHealth, seconds: float | None) -> Callable[[], Awaitable[None]]:
    """A call of one request that the provider answers after `seconds`, or never (`None`),
    timed as the transport times it."""

    async def call() -> None:
        waiting = health.latency.sent()
        try:
            await (asyncio.sleep(seconds) if seconds is not None else asyncio.Event().wait())
        finally:
            health.latency.ended(waiting, answered=seconds is not None)

    return call


async def test_enough_stalled_calls_open_the_circuit_and_are_cut_before_the_deadline() -> None:
    clock = ManualClock()
    health = _health(clock, slow_seconds=0.05, stalled_calls=3)

    async with asyncio.timeout(10):
        with deadline_in(60):
            outcomes = await asyncio.gather(
                *(health.call(_request(health, None)) for _ in range(3)), return_exceptions=True
            )

    assert all(isinstance(outcome, UpstreamTimeout) for outcome in outcomes)
    assert all("stopped waiting" in str(outcome) for outcome in outcomes)
    assert health.breaker.state is BreakerState.OPEN and not health.healthy
    assert health.last_error is not None
    assert "3 calls have waited more than 0.05 s, and it answered none" in health.last_error
    with pytest.raises(CircuitOpen):
        await health.call(_request(health, None))
    assert health.shed == {"cut": 3, "circuit_open": 1}


async def test_fewer_stalled_calls_than_the_bound_wait_for_the_deadline() -> None:
    clock = ManualClock()
    health = _health(clock, slow_seconds=0.01, stalled_calls=3)

    with deadline_in(0.2):
        outcomes = await asyncio.gather(
            *(health.call(_request(health, None)) for _ in range(2)), return_exceptions=True
        )

    assert [str(outcome) for outcome in outcomes] == ["slowpoke did not answer in time."] * 2
    assert health.breaker.state is BreakerState.CLOSED and not health.shed


async def test_calls_queued_behind_the_gateways_own_limit_are_not_taken_for_a_stall() -> None:
    clock = ManualClock()
    health = _health(clock, slow_seconds=0.05, stalled_calls=3)
    slot = asyncio.Semaphore(1)

    async def queued() -> None:
        async with slot:
            await _request(health, 0.02)()

    with deadline_in(10):
        await asyncio.gather(*(health.call(queued) for _ in range(10)))

    assert health.breaker.state is BreakerState.CLOSED, "each answer took 0.02 s; the queue 0.2 s"


async def test_a_stalled_write_is_left_to_its_deadline_when_the_reads_beside_it_are_cut() -> None:
    clock = ManualClock()
    health = _health(clock, slow_seconds=0.05, stalled_calls=3)

    async with asyncio.timeout(10):
        with deadline_in(0.5):
            read, write, other = await asyncio.gather(
                health.call(_request(health, None)),
                health.call(_request(health, None), write=True),
                health.call(_request(health, None)),
                return_exceptions=True,
            )

    assert isinstance(read, UpstreamTimeout) and isinstance(other, UpstreamTimeout)
    assert isinstance(write, OutcomeUnknown)
    assert health.shed == {"cut": 2}


async def test_a_slow_p95_over_enough_answers_opens_the_circuit() -> None:
    clock = ManualClock()
    health = _health(clock, slow_seconds=0.01, slow_min_calls=5)

    for _ in range(5):
        await health.call(_request(health, 0.02))

    assert health.breaker.state is BreakerState.OPEN
    assert health.last_error is not None and "the p95 of its last 5 answers" in health.last_error


async def test_a_probe_slower_than_the_slow_time_fails_without_waiting_for_the_deadline() -> None:
    clock = ManualClock()
    health = _health(clock, slow_seconds=0.05)
    health.breaker.trip()
    clock.advance(30)

    async with asyncio.timeout(10):
        with deadline_in(60), pytest.raises(UpstreamTimeout):
            await health.call(_request(health, None))

    assert health.breaker.state is BreakerState.OPEN


def _half_open(clock: ManualClock, slow_seconds: float) -> ProviderHealth:
    health = _health(clock, slow_seconds=slow_seconds)
    health.breaker.trip()
    clock.advance(30)
    assert health.breaker.state is BreakerState.HALF_OPEN
    return health


async def test_a_probe_of_many_requests_each_answered_in_time_closes_the_circuit() -> None:
    clock = ManualClock()
    health = _half_open(clock, slow_seconds=0.1)

    async def pages() -> None:
        for _ in range(10):
            await _request(health, 0.02)()

    async with asyncio.timeout(10):
        with deadline_in(60):
            await health.call(pages)

    assert health.breaker.state is BreakerState.CLOSED, "0.2 s in all, no answer took 0.1 s"
    assert not health.shed


RESOLUTION = 0.001
"""A loop may run a timer up to its clock's resolution early: uvloop counts milliseconds, and
19216.994 - 19216.894 is 0.09999999999854481 in floating point."""


async def test_a_probe_is_cut_once_the_provider_is_silent_for_the_slow_time() -> None:
    clock = ManualClock()
    health = _half_open(clock, slow_seconds=0.1)
    loop = asyncio.get_running_loop()
    answered: list[float] = []

    async def pages_then_silence() -> None:
        for _ in range(5):
            await _request(health, 0.03)()
            answered.append(loop.time())
        await _request(health, None)()

    started = loop.time()
    async with asyncio.timeout(10):
        with deadline_in(60), pytest.raises(UpstreamTimeout):
            await health.call(pages_then_silence)

    assert health.breaker.state is BreakerState.OPEN
    silent = loop.time() - answered[-1]
    assert silent >= 0.1 - RESOLUTION, "silent since its last answer, for the slow time"
    assert loop.time() - started < 1, "not at the deadline"
    assert health.shed == {"cut": 1}


class _Throttled:
    """A provider call refused with 429 and `wait` the first `times` times it is made."""

    def __init__(self, wait: float, times: int) -> None:
        self.wait = wait
        self.times = times
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1
        if self.calls <= self.times:
            raise RateLimited("slowpoke", "slow down", self.wait)


async def test_a_retry_after_beyond_any_number_rests_nothing_and_fails_nothing() -> None:
    clock = ManualClock()
    health = _health(clock)
    throttled = _Throttled(math.inf, times=1)

    with pytest.raises(RateLimited) as refused:
        await health.call(throttled)

    assert refused.value.extensions == {"code": "RATE_LIMITED", "provider": "slowpoke"}
    assert health.healthy and health.quota.resting_until is None


async def test_a_retry_after_of_years_rests_the_longest_rest_then_the_provider_is_probed() -> None:
    clock = ManualClock()
    health = _health(clock)
    throttled = _Throttled(1e9, times=1)

    with pytest.raises(RateLimited):
        await health.call(throttled)
    assert health.quota.resting_for == 3600
    clock.advance(3600)
    await health.call(throttled)

    assert throttled.calls == 2 and health.healthy


async def test_a_long_retry_after_from_any_call_rests_the_provider() -> None:
    clock = ManualClock()
    health = _health(clock)
    throttled = _Throttled(2700, times=2)

    with pytest.raises(RateLimited):
        await health.call(throttled)
    clock.advance(700)
    with pytest.raises(Resting) as refused:
        await health.call(throttled)

    assert throttled.calls == 1
    assert refused.value.extensions == {
        "code": "RATE_LIMITED",
        "provider": "slowpoke",
        "retryAfter": 2000,
    }
    assert "until 2026-01-01T00:45:00Z" in refused.value.message
    assert not health.healthy and health.breaker.state is BreakerState.CLOSED
    clock.advance(2000)
    with pytest.raises(RateLimited):
        await health.call(throttled)
    assert throttled.calls == 2
