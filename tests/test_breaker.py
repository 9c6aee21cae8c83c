"""The circuit breaker under late, cancelled and caller-caused outcomes, and a provider's
health when the provider asks the gateway to wait."""

from __future__ import annotations

import pytest

from gateway.clock import ManualClock
from gateway.errors import RateLimited, Resting
from gateway.quota import Quota
from gateway.resilience import Breaker, BreakerState, ProviderHealth


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


def test_the_probe_decides() -> None:
    clock = ManualClock()
    breaker = _opened(clock)
    clock.advance(30)
    probe = breaker.admit()
    assert probe is not None
    breaker.failed(probe)
    assert breaker.state is BreakerState.OPEN

    clock.advance(30)
    probe = breaker.admit()
    assert probe is not None
    breaker.succeeded(probe)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.admit() is not None


def _health(clock: ManualClock) -> ProviderHealth:
    return ProviderHealth(
        "slowpoke",
        "rest",
        Breaker(failures=5, open_seconds=30, clock=clock),
        Quota("slowpoke", clock, reserve=0.05),
    )


async def test_a_long_retry_after_from_any_call_rests_the_provider() -> None:
    clock = ManualClock()
    health = _health(clock)
    called = 0

    async def throttled() -> None:
        nonlocal called
        called += 1
        raise RateLimited("slowpoke", "slow down", retryAfter=2700)

    with pytest.raises(RateLimited):
        await health.call(throttled)
    clock.advance(700)
    with pytest.raises(Resting) as refused:
        await health.call(throttled)

    assert called == 1
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
    assert called == 2
