"""Providers that cannot batch get one call per key: how many one query may make, and how
many are in flight at once, are bounded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gateway.clock import ManualClock
from gateway.config import GatewaySettings, Settings, Traffic
from gateway.connectors.paging import each
from gateway.errors import TooManyProviderCalls, UpstreamUnavailable
from gateway.model import Entity
from gateway.sandbox import Sandbox
from gateway.upstream.quota import Quota
from gateway.upstream.resilience import Breaker, Latency, Patience, ProviderHealth, deadline_in
from schema.ids import encode_id
from tests.conftest import Client, serving

NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }"


@pytest.fixture
async def client(sandbox: Sandbox, clock: ManualClock) -> AsyncIterator[Client]:
    settings = Settings(
        gateway=GatewaySettings(max_page_size=500, subscribe_at_start=False),
        defaults=Traffic(max_fan_out_per_query=40, fan_out_concurrency=3),
    )
    async with serving(sandbox, clock, settings) as served:
        await served.data('{ landlords(first: 1, providers: ["pms"]) { totalCount } }')
        served.pms.reset_counter()
        yield served


def _ids(entity: Entity, count: int) -> list[str]:
    return [encode_id(entity, "pms", f"prop_{index}") for index in range(count)]


async def test_nodes_with_500_pms_ids_is_refused_before_any_call(client: Client) -> None:
    body = await client.query(NODES, {"ids": _ids(Entity.BUILDING, 500)})

    (error,) = body["errors"]
    assert error["extensions"] == {
        "code": "TOO_MANY_PROVIDER_CALLS",
        "provider": "pms",
        "limit": 40,
        "actual": 500,
    }
    assert client.pms.count() == 0


async def test_a_fan_out_runs_a_few_calls_at_a_time(client: Client) -> None:
    client.pms.latency = 0.01

    body = await client.query(NODES, {"ids": _ids(Entity.BUILDING, 30)})

    assert {error["extensions"]["code"] for error in body["errors"]} == {"NOT_FOUND"}
    assert client.pms.count() == 30
    assert client.pms.peak_in_flight == 3


async def test_the_budget_is_per_query_across_its_fan_outs(client: Client) -> None:
    ids = _ids(Entity.BUILDING, 30) + _ids(Entity.LANDLORD, 30)

    body = await client.query(NODES, {"ids": ids})

    refused = [e for e in body["errors"] if e["extensions"]["code"] == "TOO_MANY_PROVIDER_CALLS"]
    assert [(e["extensions"]["limit"], e["extensions"]["actual"]) for e in refused] == [(40, 60)]
    kinds = {path.split("/")[3] for _, path in client.pms.requests}
    assert len(kinds) <= 1, "of the two fan-outs, the one over the budget sent nothing"
    again = await client.query(NODES, {"ids": ids[:30]})
    assert "TOO_MANY_PROVIDER_CALLS" not in str(again), "the next query has a budget of its own"


async def test_a_fan_out_stops_at_its_first_failure() -> None:
    clock = ManualClock()
    health = ProviderHealth(
        "pms",
        "rest",
        Breaker(5, 30, clock),
        Quota("pms", clock, 0.05, 3600),
        Latency(),
        Patience(fan_out_concurrency=2),
    )
    started: list[int] = []

    async def one(key: int) -> int:
        started.append(key)
        await asyncio.sleep(0.01)
        if key == 0:
            raise UpstreamUnavailable("pms", "pms failed (HTTP 503)")
        return key

    with deadline_in(10), pytest.raises(UpstreamUnavailable):
        await health.call(lambda: each(range(50), one))
    await asyncio.sleep(0.05)

    assert len(started) < 10, "the calls not yet sent when the first failed are never sent"


async def test_outside_a_provider_call_a_fan_out_is_bounded_only_by_its_transport() -> None:
    async def one(key: int) -> int:
        return key * 2

    assert await each([1, 2, 2, 3], one) == {1: 2, 2: 4, 3: 6}


def test_a_fan_out_beyond_the_budget_names_the_limit() -> None:
    error = TooManyProviderCalls("pms", "too many", 40, 60)
    assert error.extensions == {
        "code": "TOO_MANY_PROVIDER_CALLS",
        "provider": "pms",
        "limit": 40,
        "actual": 60,
    }
