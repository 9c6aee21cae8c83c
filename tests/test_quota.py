"""A published quota (`X-RateLimit-*`) is spent no faster than it lasts: paced near its end,
rested on when spent, read again when its window resets."""

from __future__ import annotations

import httpx
import pytest

from gateway.clock import ManualClock
from gateway.config import Traffic
from gateway.connectors.calls import Said, check_status
from gateway.errors import RateLimited, Resting
from gateway.upstream.quota import Quota
from tests.conftest import Client
from tests.metrics_reading import metric

PMS_LANDLORDS = '{ landlords(first: 5, providers: ["pms"]) { edges { node { name } } } }'
STATUS = "{ providers { name healthy restingUntil retryAfterSeconds quota { limit remaining } } }"


def _quota(clock: ManualClock, provider: str = "pms") -> Quota:
    """A provider's quota as the default `Traffic` sets it up: a 5 % reserve, rests of an
    hour at most."""
    traffic = Traffic()
    return Quota(provider, clock, traffic.quota_reserve, traffic.max_rest_seconds)


def _published(limit: int, remaining: int, reset: float) -> httpx.Headers:
    return httpx.Headers(
        {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(int(reset)),
        }
    )


def test_the_last_of_a_quota_is_spread_until_it_resets_then_the_provider_rests() -> None:
    clock = ManualClock()
    quota = _quota(clock)
    quota.observe(_published(100, 3, clock() + 60))

    with pytest.raises(Resting) as early:
        quota.spend()
    clock.advance(20)
    quota.spend()
    waits = []
    for _ in range(2):
        refused = quota.refusal()
        assert refused is not None
        waits.append(refused.extensions["retryAfter"])
        clock.advance(40 / 3)
        quota.spend()

    assert early.value.extensions["retryAfter"] == 20, "the answer that said 3 left was a call"
    assert waits == [14, 14], "the 40 s left, spread over the last 2"
    assert quota.resting_for == pytest.approx(40 / 3), "none left: it rests until the reset"
    clock.advance(14)
    assert quota.refusal() is None and quota.window is None


def test_above_the_reserve_the_quota_is_spent_freely() -> None:
    clock = ManualClock()
    quota = _quota(clock)
    quota.observe(_published(1000, 900, clock() + 3600))

    for _ in range(100):
        quota.spend()

    assert quota.window is not None and quota.window.remaining == 800


def test_within_a_window_the_lowest_count_stands_and_a_new_window_is_read_afresh() -> None:
    clock = ManualClock()
    quota = _quota(clock)
    reset = clock() + 1800
    quota.observe(_published(1000, 500, reset))
    quota.observe(_published(1000, 700, reset))
    assert quota.window is not None and quota.window.remaining == 500

    quota.observe(_published(1000, 1000, reset + 1800))
    assert quota.window is not None and quota.window.remaining == 1000


def test_a_reset_in_seconds_from_now_is_read_as_such() -> None:
    clock = ManualClock()
    quota = _quota(clock, "mycrm")
    quota.observe(_published(60, 0, 30))

    assert quota.resting_for == 30


@pytest.mark.parametrize("wait", ["1e400", "Infinity"])
def test_a_retry_after_beyond_any_number_is_reported_without_one(wait: str) -> None:
    response = httpx.Response(
        429, headers={"Retry-After": wait}, request=httpx.Request("GET", "http://mycrm/api")
    )

    with pytest.raises(RateLimited) as refused:
        check_status(response, "mycrm", Said(message="slow down"))

    assert refused.value.extensions == {"code": "RATE_LIMITED", "provider": "mycrm"}


def test_a_rest_longer_than_the_longest_ends_with_it_and_the_next_call_probes() -> None:
    clock = ManualClock()
    quota = _quota(clock)

    quota.rest(1e9, "asked not to be called")

    assert quota.resting_for == 3600, "not 31 years"
    clock.advance(3600)
    assert quota.refusal() is None
    quota.spend()


@pytest.mark.parametrize(
    "reset",
    [30_000_000, 10**12, 10**400],
    ids=["a year in seconds", "a Unix time in the year 33658", "beyond a float"],
)
def test_a_spent_quota_that_resets_in_a_far_future_rests_no_longer_than_the_longest(
    reset: int,
) -> None:
    clock = ManualClock()
    quota = _quota(clock)

    quota.observe(_published(100, 0, reset))

    assert quota.resting_for == 3600
    assert quota.window is not None and quota.window.resets_at == clock() + 3600
    clock.advance(3600)
    assert quota.refusal() is None and quota.window is None


async def _spend_directly(client: Client, requests: int) -> None:
    """Spends pms's hourly quota as another client of the same account would."""
    async with httpx.AsyncClient(
        transport=client.sandbox.transport("pms"), base_url="http://pms/sandbox/pms"
    ) as other:
        for _ in range(requests):
            await other.post("/api/v1/identity/login", json={})


async def test_pms_near_the_end_of_its_quota_is_paced(client: Client) -> None:
    await client.data(PMS_LANDLORDS)
    await _spend_directly(client, 960 - client.pms.count())

    paced = await client.query(PMS_LANDLORDS)
    sent = client.pms.count()
    refused = await client.query(PMS_LANDLORDS)
    status = await client.data(STATUS)

    assert "errors" not in paced
    (error,) = refused["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert 60 <= error["extensions"]["retryAfter"] <= 100, "3,600 s spread over 39 calls"
    assert "nearly spent" in error["message"]
    assert client.pms.count() == sent, "a call before its turn is not sent"
    (pms,) = [row for row in status["providers"] if row["name"] == "pms"]
    assert pms["quota"] == {"limit": 1000, "remaining": 39} and pms["healthy"]
    assert pms["retryAfterSeconds"] == error["extensions"]["retryAfter"], "until its next turn"
    assert pms["restingUntil"] is not None
    scraped = (await client.http.get("/metrics")).text
    assert metric(scraped, "propgate_provider_quota_remaining", provider="pms") == 39

    client.clock.advance(error["extensions"]["retryAfter"])
    assert "errors" not in await client.query(PMS_LANDLORDS)


async def test_pms_with_its_quota_spent_rests_until_the_window_resets(client: Client) -> None:
    await client.data(PMS_LANDLORDS)
    await _spend_directly(client, 999 - client.pms.count())

    last = await client.query(PMS_LANDLORDS)
    sent = client.pms.count()
    refused = await client.query(PMS_LANDLORDS)
    status = await client.data(STATUS)

    assert "errors" not in last
    assert refused["errors"][0]["extensions"] == {
        "code": "RATE_LIMITED",
        "provider": "pms",
        "retryAfter": 3600,
    }
    assert "has no quota left until 2026-01-01T01:00:00Z" in refused["errors"][0]["message"]
    assert client.pms.count() == sent
    (pms,) = [row for row in status["providers"] if row["name"] == "pms"]
    assert pms["restingUntil"] == "2026-01-01T01:00:00+00:00" and not pms["healthy"]

    client.clock.advance(3600)
    assert "errors" not in await client.query(PMS_LANDLORDS)
    assert client.pms.count() > sent
