"""Faults stay local: every provider, every fault, the others' data still arrives in time."""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import pytest

from gateway.clock import ManualClock
from gateway.config import GatewaySettings, Settings, Traffic
from gateway.sandbox import Sandbox
from gateway.tools.loopback import free_port
from gateway.upstream.client import connections
from tests.conftest import Client, serving
from tests.metrics_reading import metric

DEADLINE = 2.0
"""Long enough that the healthy providers answer on a busy CI machine (at 0.5 s, the
in-process sandbox timed out under load), short enough to tell the deadline from the
slow fault's 30 s."""
LANDLORDS = "{ landlords(first: 40) { edges { node { provider name } } } }"
EVERYONE = LANDLORDS[:-1] + " relationships(first: 3) { edges { node { provider } } } }"
LANDLORD_PROVIDERS = ["mycrm", "pms", "primmo", "scom"]
PROVIDERS = ["leap", *LANDLORD_PROVIDERS]
WITH_TOKEN_ENDPOINT = {"mycrm", "pms", "primmo"}
EXPECTED = {
    "error": "UPSTREAM_UNAVAILABLE",
    "slow": "UPSTREAM_TIMEOUT",
    "malformed": "UPSTREAM_INVALID_RESPONSE",
    "wrong_shape": "UPSTREAM_INVALID_RESPONSE",
    "throttle": "RATE_LIMITED",
    "token_down": "UPSTREAM_UNAVAILABLE",
    "token_garbage": "UPSTREAM_INVALID_RESPONSE",
    "token_throttle": "RATE_LIMITED",
    "refused": "UPSTREAM_UNAVAILABLE",
}


@pytest.fixture
def settings() -> Settings:
    return Settings(
        gateway=GatewaySettings(request_deadline_seconds=DEADLINE, subscribe_at_start=False),
        defaults=Traffic(
            retries=1, breaker_failures=3, breaker_open_seconds=30, max_retry_after_seconds=1
        ),
    )


CASES = [
    (provider, fault)
    for provider in PROVIDERS
    for fault in sorted(EXPECTED)
    if provider in WITH_TOKEN_ENDPOINT or not fault.startswith("token_")
]


@pytest.mark.parametrize(("provider", "fault"), CASES)
async def test_a_faulty_provider_gives_one_error_and_the_others_data(
    sandbox: Sandbox, clock: ManualClock, settings: Settings, provider: str, fault: str
) -> None:
    transports: dict[str, httpx.AsyncBaseTransport] = {}
    self_url = "http://127.0.0.1:8000"
    if fault == "refused":
        transports[provider] = connections(Traffic())
        self_url = f"http://127.0.0.1:{free_port()}"
    async with serving(
        sandbox, clock, settings, transports=transports, self_url=self_url
    ) as client:
        state = sandbox.states[provider]
        if not fault.startswith("token_") and fault != "refused":
            await client.data(EVERYONE)
            state.inject(fault)
        elif fault != "refused":
            state.inject(fault)

        started = time.monotonic()
        body = await client.query(EVERYONE)
        elapsed = time.monotonic() - started

    served = {edge["node"]["provider"] for edge in body["data"]["landlords"]["edges"]}
    assert served == set(LANDLORD_PROVIDERS) - {provider}
    relationships = body["data"]["relationships"]["edges"]
    assert (relationships == []) == (provider == "leap")
    (error,) = body["errors"]
    assert error["extensions"]["provider"] == provider
    assert error["extensions"]["code"] == EXPECTED[fault]
    assert error["path"] == ["relationships" if provider == "leap" else "landlords"]
    assert elapsed < 5, "the slow fault sleeps 30 s: only the deadline can end the query this soon"


async def test_the_breaker_opens_after_n_failures_and_probes_after_its_pause(
    client: Client,
) -> None:
    await client.data(LANDLORDS)
    client.pms.inject("error")

    for _ in range(3):
        body = await client.query(LANDLORDS)
        assert body["errors"][0]["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
    sent = client.pms.count()

    for _ in range(5):
        body = await client.query(LANDLORDS)
        assert body["errors"][0]["extensions"] == {"code": "CIRCUIT_OPEN", "provider": "pms"}
        assert {e["node"]["provider"] for e in body["data"]["landlords"]["edges"]} == {
            "mycrm",
            "primmo",
            "scom",
        }
    assert client.pms.count() == sent

    client.clock.advance(30)
    body = await client.query(LANDLORDS)
    assert body["errors"][0]["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
    assert client.pms.count() == sent + 1
    body = await client.query(LANDLORDS)
    assert body["errors"][0]["extensions"]["code"] == "CIRCUIT_OPEN"

    client.pms.inject("none")
    client.clock.advance(30)
    body = await client.query(LANDLORDS)
    assert "errors" not in body
    assert {e["node"]["provider"] for e in body["data"]["landlords"]["edges"]} == set(
        LANDLORD_PROVIDERS
    )


async def test_provider_health_reports_state_without_secrets(client: Client) -> None:
    await client.data(LANDLORDS)
    client.mycrm.inject("malformed")
    for _ in range(3):
        await client.query(LANDLORDS)

    data = await client.data(
        "{ providers { name kind healthy breakerState lastError latencyP50Ms tokenExpiresAt } }"
    )

    statuses = {status["name"]: status for status in data["providers"]}
    assert statuses["mycrm"]["breakerState"] == "OPEN" and not statuses["mycrm"]["healthy"]
    assert statuses["mycrm"]["lastError"].startswith("UPSTREAM_INVALID_RESPONSE")
    assert statuses["primmo"]["breakerState"] == "CLOSED" and statuses["primmo"]["healthy"]
    assert statuses["primmo"]["latencyP50Ms"] > 0 and statuses["primmo"]["tokenExpiresAt"]
    assert statuses["pms"]["kind"] == "rest" and statuses["primmo"]["kind"] == "odata"
    readiness = await client.http.get("/readyz")
    assert readiness.status_code == 200 and readiness.json()["providers"]["mycrm"] == "OPEN"


async def test_reads_are_retried_on_503_and_writes_never(client: Client) -> None:
    await client.data(LANDLORDS)
    unit = await client.data('{ units(first: 1, providers: ["primmo"]) { edges { node { id } } } }')
    unit_id = unit["units"]["edges"][0]["node"]["id"]
    client.primmo.inject("error", status=503)
    client.primmo.reset_counter()

    read = await client.query('{ buildings(first: 2, providers: ["primmo"]) { totalCount } }')
    write = await client.query(
        'mutation($unit: ID!) { createTenant(input: {unitId: $unit, firstName: "Léa",'
        ' lastName: "Roy"}) { tenant { id } errors { code } } }',
        {"unit": unit_id},
    )

    assert read["errors"][0]["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
    assert client.primmo.count("GET", "/api/Buildings") == 2
    assert write["errors"][0]["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
    assert client.primmo.count("POST", "/api/Tenants") == 0


async def test_a_write_that_times_out_is_outcome_unknown_and_sent_once(client: Client) -> None:
    unit = await client.data('{ units(first: 1, providers: ["pms"]) { totalCount } }')
    assert unit["units"]["totalCount"] == 0
    building = await client.data(
        '{ buildings(first: 1, providers: ["pms"]) { edges { node { units { id } } } } }'
    )
    unit_id = building["buildings"]["edges"][0]["node"]["units"][0]["id"]
    client.pms.inject("slow", seconds=30)

    body = await client.data(
        'mutation($unit: ID!) { createTenant(input: {unitId: $unit, firstName: "Léa", '
        'lastName: "Roy", email: "lea@example.com"}) { tenant { id } errors { code message } } }',
        {"unit": unit_id},
    )

    assert body["createTenant"]["tenant"] is None
    assert [e["code"] for e in body["createTenant"]["errors"]] == ["OUTCOME_UNKNOWN"]
    posts = [
        path for (method, path) in client.pms.requests if method == "POST" and "tenants" in path
    ]
    assert len(posts) == 1 and client.pms.requests[("POST", posts[0])] == 1


async def test_a_long_retry_after_rests_the_provider_until_it_has_passed(client: Client) -> None:
    await client.data(LANDLORDS)
    client.pms.throttle(retry_after=2700)

    first = await client.query(LANDLORDS)
    sent = client.pms.count()
    client.clock.advance(700)
    later = [await client.query(LANDLORDS) for _ in range(3)]
    status = await client.data(
        "{ providers { name healthy breakerState lastError restingUntil retryAfterSeconds } }"
    )
    scraped = (await client.http.get("/metrics")).text

    assert first["errors"][0]["extensions"] == {
        "code": "RATE_LIMITED",
        "provider": "pms",
        "retryAfter": 2700,
    }
    assert client.pms.count() == sent, "a resting provider is sent nothing"
    for body in later:
        (error,) = body["errors"]
        assert error["extensions"] == {
            "code": "RATE_LIMITED",
            "provider": "pms",
            "retryAfter": 2000,
        }
        assert "until 2026-01-01T00:45:00Z" in error["message"]
        served = {edge["node"]["provider"] for edge in body["data"]["landlords"]["edges"]}
        assert served == {"mycrm", "primmo", "scom"}
    (pms,) = [row for row in status["providers"] if row["name"] == "pms"]
    assert pms.pop("lastError") == f"RATE_LIMITED: {first['errors'][0]['message']}"
    assert pms == {
        "name": "pms",
        "healthy": False,
        "breakerState": "CLOSED",
        "restingUntil": "2026-01-01T00:45:00+00:00",
        "retryAfterSeconds": 2000,
    }
    assert metric(scraped, "propgate_provider_resting_seconds", provider="pms") == 2000
    assert metric(scraped, "propgate_calls_shed_total", provider="pms", reason="rate_limit") == 3

    client.clock.advance(2000)
    body = await client.query(LANDLORDS)

    assert "errors" not in body
    assert client.pms.count() > sent
    status = await client.data("{ providers { name healthy restingUntil } }")
    assert {"name": "pms", "healthy": True, "restingUntil": None} in status["providers"]


async def test_a_retry_after_of_years_rests_the_provider_an_hour_then_it_is_probed(
    client: Client,
) -> None:
    await client.data(LANDLORDS)
    client.pms.throttle(retry_after=10**9)

    first = await client.query(LANDLORDS)
    sent = client.pms.count()
    status = await client.data("{ providers { name retryAfterSeconds } }")
    client.clock.advance(3600)
    probed = await client.query(LANDLORDS)

    assert first["errors"][0]["extensions"]["retryAfter"] == 10**9, "the provider's own word"
    assert {"name": "pms", "retryAfterSeconds": 3600} in status["providers"]
    assert "errors" not in probed
    assert client.pms.count() > sent


async def test_a_stalled_provider_is_shed_long_before_the_deadline(
    sandbox: Sandbox, clock: ManualClock
) -> None:
    deadline = 20.0
    settings = Settings(
        gateway=GatewaySettings(request_deadline_seconds=deadline, subscribe_at_start=False),
        defaults=Traffic(breaker_slow_share=0.05, breaker_stalled_calls=4),
    )
    async with serving(sandbox, clock, settings) as client:
        await client.data(LANDLORDS)
        client.primmo.inject("slow", seconds=30)

        started = time.monotonic()
        held = await asyncio.gather(*(client.query(LANDLORDS) for _ in range(6)))
        elapsed = time.monotonic() - started
        sent = client.primmo.count()
        after = await client.query(LANDLORDS)
        status = await client.data("{ providers { name healthy breakerState lastError } }")

    for body in held:
        (error,) = body["errors"]
        assert error["extensions"] == {"code": "UPSTREAM_TIMEOUT", "provider": "primmo"}
        assert "stopped waiting" in error["message"]
        served = {edge["node"]["provider"] for edge in body["data"]["landlords"]["edges"]}
        assert served == {"mycrm", "pms", "scom"}
    assert elapsed < deadline / 2, "shed at about 1 s, not at the 20 s deadline"
    assert after["errors"][0]["extensions"] == {"code": "CIRCUIT_OPEN", "provider": "primmo"}
    assert client.primmo.count() == sent
    (primmo,) = [row for row in status["providers"] if row["name"] == "primmo"]
    assert primmo["breakerState"] == "OPEN" and not primmo["healthy"]
    assert re.search(
        r"[4-6] calls have waited more than 1 s, and it answered none", primmo["lastError"]
    )
