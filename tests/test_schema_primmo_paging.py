"""Primmo as a standard OData server behaves: pages it caps, counts it leaves out, strings it
compares exactly. The gateway's answers stay whole and true through each."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest

from gateway.clock import ManualClock
from gateway.config import Traffic
from gateway.connectors.base import ListRequest
from gateway.connectors.primmo import PrimmoConnector
from gateway.errors import UpstreamInvalidResponse
from gateway.model import Entity, Selection
from gateway.sandbox import Sandbox
from gateway.sandbox.odata import COLLATIONS
from gateway.upstream.client import Upstream
from tests.conftest import Client

NESTED = (
    '{ buildings(first: 20, providers: ["primmo"]) { edges { node { sourceId '
    "units { sourceId tenants { sourceId } } } } } }"
)


def _cap(client: Client, rows: int) -> None:
    client.primmo.server = replace(client.primmo.server, max_page_size=rows)


async def test_a_list_pages_to_its_end_through_a_server_page_cap_of_4(client: Client) -> None:
    _cap(client, 4)
    held = {str(building.id) for building in client.sandbox.world.buildings_of("primmo")}
    query = (
        'query($after: String) { buildings(first: 6, after: $after, providers: ["primmo"]) '
        "{ totalCount pageInfo { hasNextPage endCursor } edges { node { sourceId } } } }"
    )

    seen: list[str] = []
    after = None
    while True:
        page = (await client.data(query, {"after": after}))["buildings"]
        assert page["totalCount"] == len(held)
        seen.extend(edge["node"]["sourceId"] for edge in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        assert len(page["edges"]) == 6
        after = page["pageInfo"]["endCursor"]

    assert sorted(seen) == sorted(held) and len(seen) == len(held)
    links = [seen for seen in client.primmo.seen("/api/Buildings") if "$skiptoken" in seen.target]
    assert links, "the cap was never hit: the test proves nothing"


async def test_nested_records_lost_nothing_to_capped_pages(client: Client) -> None:
    """Capped lists, capped expanded units and capped batched tenant fetches, each followed."""
    world = client.sandbox.world
    expected = await client.data(NESTED)
    client.primmo.reset_counter()
    _cap(client, 4)

    capped = await client.data(NESTED)

    assert capped == expected
    for edge in capped["buildings"]["edges"]:
        building = edge["node"]
        units = {
            str(unit.id) for unit in world.units if str(unit.building_id) == building["sourceId"]
        }
        assert {unit["sourceId"] for unit in building["units"]} == units
        for unit in building["units"]:
            tenants = {str(t.id) for t in world.occupants_of(int(unit["sourceId"]))}
            assert {tenant["sourceId"] for tenant in unit["tenants"]} == tenants
    followed = [seen.target for seen in client.primmo.seen() if "$skiptoken" in seen.target]
    assert any(target.startswith("/api/Units?") for target in followed)
    assert any(target.startswith("/api/Tenants?") for target in followed)


async def test_a_count_left_out_of_the_body_is_asked_of_count_and_never_guessed(
    client: Client,
) -> None:
    client.primmo.server = replace(client.primmo.server, counts=False)
    query = (
        '{ buildings(first: 2, filter: {nameContains: "r"}, providers: ["primmo"]) { totalCount } }'
    )
    held = [b for b in client.sandbox.world.buildings_of("primmo") if "r" in b.name.lower()]

    body = await client.query(query)

    assert body["data"]["buildings"]["totalCount"] == len(held)
    assert "warnings" not in body.get("extensions", {})
    (counted,) = client.primmo.seen("/api/Buildings/$count")
    assert "$filter" in counted.query


async def test_every_request_is_encoded_and_labelled_as_odata_says(client: Client) -> None:
    await client.data(NESTED)
    await client.data('{ buildings(filter: {nameContains: "des Pins"}) { totalCount } }')

    sent = [seen for seen in client.primmo.seen() if not seen.token]
    assert sent
    for request in sent:
        assert "+" not in request.target and " " not in request.target
        headers = {name.lower(): value for name, value in request.headers}
        assert headers["odata-version"] == "4.0"
        assert headers["accept"] == "application/json;odata.metadata=minimal"


@pytest.mark.parametrize("collation", sorted(COLLATIONS))
async def test_relations_hold_whether_or_not_the_server_ignores_padding(
    client: Client, collation: str
) -> None:
    """Keys go back as Primmo sent them, so exact comparison finds them as SQL Server does."""
    client.primmo.server = replace(client.primmo.server, collation=COLLATIONS[collation])
    query = (
        '{ units(first: 30, providers: ["primmo"]) { edges { node { sourceId '
        "building { sourceId } tenants { sourceId } } } } }"
    )
    world = client.sandbox.world

    edges = (await client.data(query))["units"]["edges"]

    assert len(edges) == 30
    for edge in edges:
        unit = next(u for u in world.units if str(u.id) == edge["node"]["sourceId"])
        assert edge["node"]["building"] == {"sourceId": str(unit.building_id)}
        tenants = {str(t.id) for t in world.occupants_of(unit.id)}
        assert {t["sourceId"] for t in edge["node"]["tenants"]} == tenants


def _connector(transport: httpx.AsyncBaseTransport) -> tuple[PrimmoConnector, Upstream]:
    upstream = Upstream(
        name="primmo",
        base_url="http://primmo.test/api-root",
        credentials=Sandbox.credentials("primmo"),
        traffic=Traffic(retries=0),
        clock=ManualClock(),
        transport=transport,
    )
    return PrimmoConnector.connect(upstream), upstream


@pytest.mark.parametrize(
    "link",
    [
        "http://elsewhere.test/api-root/api/Buildings?$skiptoken=1",
        "https://primmo.test/api-root/api/Buildings?$skiptoken=1",
        "http://primmo.test/other/api/Buildings?$skiptoken=1",
        "Buildings?$skiptoken=1",
    ],
)
async def test_a_next_link_off_the_service_root_or_back_to_a_page_is_refused(link: str) -> None:
    """The bearer token goes with every followed link: it never leaves the service root, and a
    server whose links loop is refused rather than read forever."""
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        if request.url.path.endswith("/api/Token"):
            return httpx.Response(200, json="token")
        row = {"Id": 1, "CompanyNo": 1, "DivisionNo": 1, "BuildingCode": "B "}
        return httpx.Response(200, json={"value": [row], "@odata.nextLink": link})

    connector, upstream = _connector(httpx.MockTransport(answer))
    try:
        with pytest.raises(UpstreamInvalidResponse):
            await connector.page(Entity.BUILDING, ListRequest({}, Selection(), limit=2))
    finally:
        await upstream.aclose()

    assert all(url.startswith("http://primmo.test/api-root/") for url in asked)
    assert len(asked) <= 3


async def test_a_relative_next_link_is_read_against_the_context_url_as_cap_writes_it() -> None:
    """CAP answers `api/Buildings` with `@odata.context: $metadata#Buildings` and a next link
    relative to that (the service root), not to the provider's base URL."""
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        if request.url.path.endswith("/api/Token"):
            return httpx.Response(200, json="token")
        row = {"Id": len(asked), "CompanyNo": 1, "DivisionNo": 1, "BuildingCode": "B "}
        body: dict[str, object] = {"@odata.context": "$metadata#Buildings", "value": [row]}
        if "skiptoken" not in str(request.url):
            body["@odata.nextLink"] = "Buildings?%24select=Id&%24skiptoken=1"
        return httpx.Response(200, json=body)

    connector, upstream = _connector(httpx.MockTransport(answer))
    try:
        page = await connector.page(Entity.BUILDING, ListRequest({}, Selection(), limit=5))
    finally:
        await upstream.aclose()

    assert len(page.records) == 2 and page.exhausted
    assert asked[-1] == "http://primmo.test/api-root/api/Buildings?%24select=Id&%24skiptoken=1"
