"""pms and MyCRM through the gateway: tokens, concurrency, rate limits, expansion, warnings."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs

from tests.conftest import Client, error_codes

LOGIN = "/api/v1/identity/login"
REFRESH = "/api/v1/identity/refresh"
MYCRM_TOKEN = "/auth/oauth/v1/token"
LANDLORDS = "{ landlords(first: 5) { edges { node { provider name } } } }"


async def test_two_hundred_concurrent_queries_fetch_one_token_per_provider(client: Client) -> None:
    results = await asyncio.gather(*(client.data(LANDLORDS) for _ in range(200)))

    assert all(len(result["landlords"]["edges"]) == 5 for result in results)
    assert client.pms.count("POST", LOGIN) == 1
    assert client.mycrm.count("POST", MYCRM_TOKEN) == 1
    assert client.primmo.count("POST", "/api/Token") == 1


async def test_mycrm_asks_for_its_token_with_a_form_as_rfc_6749_says(client: Client) -> None:
    await client.data(LANDLORDS)

    (seen,) = client.mycrm.seen(MYCRM_TOKEN)
    assert dict(seen.headers)["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(seen.body.decode()) == {
        "grant_type": ["client_credentials"],
        "scope": ["openid"],
    }


async def test_an_expired_pms_token_is_refreshed_once(client: Client) -> None:
    await client.data(LANDLORDS)
    client.clock.advance(900)

    await asyncio.gather(*(client.data(LANDLORDS) for _ in range(30)))

    assert (client.pms.count("POST", LOGIN), client.pms.count("POST", REFRESH)) == (1, 1)


async def test_a_refused_refresh_leads_to_one_new_login(client: Client) -> None:
    await client.data(LANDLORDS)
    client.pms.revoke_tokens()

    results = await asyncio.gather(*(client.data(LANDLORDS) for _ in range(30)))

    assert all(len(result["landlords"]["edges"]) == 5 for result in results)
    assert (client.pms.count("POST", LOGIN), client.pms.count("POST", REFRESH)) == (2, 1)


async def test_a_mycrm_token_is_renewed_before_its_1800_seconds_run_out(client: Client) -> None:
    await client.data(LANDLORDS)
    client.clock.advance(1800 - 30)

    await client.data(LANDLORDS)

    assert client.mycrm.count("POST", MYCRM_TOKEN) == 2


async def test_units_of_twenty_pms_properties_are_fetched_concurrently_and_once(
    client: Client,
) -> None:
    client.pms.latency = 0.05

    data = await client.data(
        '{ buildings(first: 20, providers: ["pms"]) { edges { node { sourceId '
        "units { unitCode tenants { lastName } } } } } }"
    )

    buildings = data["buildings"]["edges"]
    assert len(buildings) == 20
    unit_paths = [path for (method, path) in client.pms.requests if path.endswith("/units")]
    assert len(unit_paths) == 20 == len(set(unit_paths))
    assert all(client.pms.requests[("GET", path)] == 1 for path in unit_paths)
    assert 1 < client.pms.peak_in_flight <= 8
    world = client.sandbox.world
    for edge in buildings:
        building_id = int(edge["node"]["sourceId"].removeprefix("prop_"))
        codes = sorted(u.code for u in world.units if u.building_id == building_id)
        assert sorted(unit["unitCode"] for unit in edge["node"]["units"]) == codes


async def test_a_short_429_is_waited_out(client: Client) -> None:
    await client.data(LANDLORDS)
    client.pms.throttle(retry_after=1, times=1)

    data = await client.data('{ buildings(first: 3, providers: ["pms"]) { totalCount } }')

    assert data["buildings"]["totalCount"] == len(client.sandbox.world.buildings_of("pms"))
    assert client.pms.count("GET", "/api/v1/properties") == 2


async def test_a_long_429_gives_the_other_providers_data_and_rate_limited(client: Client) -> None:
    await client.data(LANDLORDS)
    client.pms.throttle(retry_after=900, times=5)

    body = await client.query("{ buildings(first: 30) { edges { node { provider } } } }")

    providers = {edge["node"]["provider"] for edge in body["data"]["buildings"]["edges"]}
    assert providers == {"primmo", "scom"}
    assert body["errors"] == [
        {
            "message": body["errors"][0]["message"],
            "path": ["buildings"],
            "extensions": {"code": "RATE_LIMITED", "provider": "pms", "retryAfter": 900},
        }
    ]
    assert client.pms.count("GET", "/api/v1/properties") == 1


async def test_mycrm_listings_with_landlords_cost_one_request_per_page(client: Client) -> None:
    after = None
    pages = 0
    while pages < 3:
        data = await client.data(
            'query($after: String) { units(first: 25, after: $after, providers: ["mycrm"]) '
            "{ pageInfo { endCursor } edges { node { unitCode landlord { name } } } } }",
            {"after": after},
        )
        assert all(e["node"]["landlord"]["name"] for e in data["units"]["edges"])
        after = data["units"]["pageInfo"]["endCursor"]
        pages += 1

    assert client.mycrm.count("GET") == pages
    (first, *_) = client.mycrm.seen("/properties")
    assert set(first.query["fields"].split(",")) == {"id", "reference", "landlord"}


async def test_mycrm_warnings_reach_the_caller(client: Client) -> None:
    client.mycrm.warning = "API v2 will require fields= on list endpoints from 2027."

    body = await client.query('{ units(first: 2, providers: ["mycrm"]) { totalCount } }')

    assert body["extensions"]["warnings"] == [
        {"provider": "mycrm", "message": "API v2 will require fields= on list endpoints from 2027."}
    ]


async def test_leases_come_from_pms(client: Client) -> None:
    data = await client.data(
        '{ buildings(first: 2, providers: ["pms"]) { edges { node { units { tenants '
        "{ sourceId lease { startDate endDate rent { amount currency } } } } } } } }"
    )

    tenants = [
        tenant
        for edge in data["buildings"]["edges"]
        for unit in edge["node"]["units"]
        for tenant in unit["tenants"]
    ]
    kept = client.pms.records.leases
    assert tenants and all(t["lease"]["startDate"] < t["lease"]["endDate"] for t in tenants)
    for tenant in tenants:
        rent = tenant["lease"]["rent"]
        expected = kept[tenant["sourceId"].split("/")[1]]["monthly_rent"]
        assert rent == {"amount": f"{expected}.00", "currency": "CAD"}, "exact strings"


async def test_a_provider_that_cannot_list_a_type_is_named(client: Client) -> None:
    body = await client.query('{ units(first: 2, providers: ["pms"]) { totalCount } }')

    assert body["data"]["units"]["totalCount"] == 0
    assert body["extensions"]["warnings"][0]["provider"] == "pms"
    assert error_codes(body) == []
    assert client.pms.count() == 0


async def test_filters_pms_cannot_push_down_are_applied_by_the_gateway(client: Client) -> None:
    data = await client.data(
        '{ buildings(first: 100, filter: {cityContains: "lévis"}) '
        "{ totalCount edges { node { provider city } } } }"
    )

    world = client.sandbox.world
    expected = [b for b in world.buildings if b.provider in ("pms", "primmo") and b.city == "Lévis"]
    assert data["buildings"]["totalCount"] == len(expected)
    assert {edge["node"]["city"] for edge in data["buildings"]["edges"]} == {"Lévis"}
    assert {edge["node"]["provider"] for edge in data["buildings"]["edges"]} == {"pms", "primmo"}


async def test_a_short_lived_token_is_used_for_half_its_life(client: Client) -> None:
    client.pms.token_lifetime = 40

    for _ in range(5):
        await client.data(LANDLORDS)
    client.clock.advance(15)
    await client.data(LANDLORDS)
    assert client.pms.count("POST", LOGIN) == 1

    client.clock.advance(10)
    await client.data(LANDLORDS)
    assert client.pms.count("POST", LOGIN) + client.pms.count("POST", REFRESH) == 2
