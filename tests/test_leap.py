"""LEAP through the gateway: hostile XML, paging in hundreds, the mutations and their codes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gateway.clock import ManualClock
from gateway.config import Settings
from gateway.connectors.untrusted_xml import XmlLimits, parse_untrusted
from gateway.errors import UpstreamInvalidResponse
from gateway.model import Entity
from gateway.sandbox import Sandbox
from gateway.sandbox.data import WorldSize
from schema.ids import decode_id, encode_id
from tests.conftest import Client, error_codes, serving

LIST = "/api/v1/property-relationship/"
WEIRD = "EXT-<&>'\"-1"


def _leap_store(sandbox: Sandbox) -> Any:
    """The sandbox's own records, to check what a mutation did or did not change."""
    return sandbox.states["leap"].records


@pytest.mark.parametrize("fault", ["xxe", "laughs", "deep", "utf7"])
async def test_hostile_xml_costs_only_leaps_part_and_leaks_nothing(
    client: Client, fault: str
) -> None:
    client.sandbox.states["leap"].inject(fault)

    body = await client.query(
        "{ landlords(first: 3) { edges { node { name } } } "
        "relationships(first: 3) { edges { node { id } } } }"
    )

    assert len(body["data"]["landlords"]["edges"]) == 3
    assert body["data"]["relationships"]["edges"] == []
    (error,) = body["errors"]
    assert error["extensions"] == {"code": "UPSTREAM_INVALID_RESPONSE", "provider": "leap"}
    text = str(body)
    assert "root:" not in text and "lollol" not in text and "passwd" not in text


async def test_hostile_xml_under_a_building_leaves_the_building_and_derived_roles(
    client: Client,
) -> None:
    client.sandbox.states["leap"].inject("xxe")

    body = await client.query(
        '{ buildings(first: 2, providers: ["primmo"]) { edges { node { name '
        "relationships { role derived } } } } }"
    )

    for edge in body["data"]["buildings"]["edges"]:
        assert edge["node"]["relationships"] == [{"role": "OWNER", "derived": True}]
    assert set(error_codes(body)) == {"UPSTREAM_INVALID_RESPONSE"}


@pytest.fixture
async def big(clock: ManualClock, settings: Settings) -> AsyncIterator[Client]:
    sandbox = Sandbox(seed=7, size=WorldSize(buildings=90), clock=clock)
    assert len(sandbox.world.relationships) > 250
    async with serving(
        sandbox,
        clock,
        settings.model_copy(
            update={"gateway": settings.gateway.model_copy(update={"max_page_size": 500})}
        ),
    ) as served:
        yield served


async def test_a_page_of_250_costs_three_leap_requests(big: Client) -> None:
    data = await big.data("{ relationships(first: 250) { edges { node { id } } } }")

    assert len(data["relationships"]["edges"]) == 250
    seen = big.sandbox.states["leap"].seen(LIST)
    assert [(r.query["offset"], r.query["limit"]) for r in seen] == [
        ("0", "100"),
        ("100", "100"),
        ("200", "51"),
    ]


async def test_relationships_of_many_buildings_cost_one_scan_per_level(client: Client) -> None:
    data = await client.data(
        "{ buildings(first: 20) { edges { node { relationships { role } } } } }"
    )

    assert all(e["node"]["relationships"] for e in data["buildings"]["edges"])
    total = len(client.sandbox.world.relationships)
    assert client.sandbox.states["leap"].count("GET", LIST) == -(-total // 100)


class _Late(httpx.AsyncBaseTransport):
    """A provider that answers a moment after the others."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.05)
        return await self._inner.handle_async_request(request)


async def test_what_leap_records_about_landlords_is_asked_once_whenever_their_buildings_come(
    sandbox: Sandbox, clock: ManualClock, settings: Settings
) -> None:
    """A landlord's derived relationships wait for its buildings, from its own provider: a
    provider answering later must not split what LEAP is asked about the landlords of one
    query level into another batch."""
    query = "{ landlords { edges { node { relationships { provider } } } } }"
    asked = []
    late: dict[str, httpx.AsyncBaseTransport] = {"primmo": _Late(sandbox.transport("primmo"))}
    for transports in ({}, late):
        async with serving(sandbox, clock, settings, transports=transports) as client:
            sandbox.states["leap"].reset_counter()
            data = await client.data(query)
            assert any(edge["node"]["relationships"] for edge in data["landlords"]["edges"])
            asked.append(sandbox.states["leap"].count())

    assert asked[0] == asked[1]


SET = (
    "mutation($id: ID!, $ext: String!) { setRelationshipExternalId(input: "
    "{relationshipId: $id, externalId: $ext}) { relationship { externalId } errors { code } } }"
)


async def _ids(client: Client, n: int) -> list[str]:
    data = await client.data(
        f"{{ relationships(first: {n}) {{ edges {{ node {{ id sourceId }} }} }} }}"
    )
    return [edge["node"]["id"] for edge in data["relationships"]["edges"]]


async def test_an_external_id_in_use_is_refused_and_changes_nothing(client: Client) -> None:
    first, second = await _ids(client, 2)
    taken = await client.data(SET, {"id": first, "ext": WEIRD})
    store = _leap_store(client.sandbox)
    before = {k: r.extid for k, r in store.relationships.items()}

    refused = await client.data(SET, {"id": second, "ext": WEIRD})

    assert taken["setRelationshipExternalId"]["relationship"]["externalId"] == WEIRD
    assert refused["setRelationshipExternalId"] == {
        "relationship": None,
        "errors": [{"code": "EXTERNAL_ID_IN_USE"}],
    }
    assert {k: r.extid for k, r in store.relationships.items()} == before
    found = await client.data(
        "query($ext: String!) { relationshipByExternalId(externalId: $ext) { id } }",
        {"ext": WEIRD},
    )
    assert found["relationshipByExternalId"]["id"] == first


async def test_unknown_relationship_is_not_found(client: Client) -> None:
    import base64

    missing = base64.urlsafe_b64encode(b"Relationship:leap:99999999").decode().rstrip("=")
    body = await client.data(SET, {"id": missing, "ext": "X"})
    assert body["setRelationshipExternalId"]["errors"] == [{"code": "NOT_FOUND"}]


ACK = (
    "mutation($ids: [ID!], $ext: [String!]) { acknowledgeRelationships(input: "
    "{ids: $ids, externalIds: $ext}) { acknowledged { sourceId acknowledged unackedSince } "
    "errors { code } } }"
)


async def test_acknowledging_clears_the_relationship_only(client: Client) -> None:
    data = await client.data(
        "{ relationships(first: 2, filter: {acknowledged: false}) "
        "{ edges { node { id sourceId } } } }"
    )
    ids = [edge["node"]["id"] for edge in data["relationships"]["edges"]]
    store = _leap_store(client.sandbox)
    chosen = [store.relationships[e["node"]["sourceId"]] for e in data["relationships"]["edges"]]
    refs_before = [(r.property.unacked_since, r.account.unacked_since) for r in chosen]

    body = await client.data(ACK, {"ids": ids})

    acknowledged = body["acknowledgeRelationships"]["acknowledged"]
    assert [(a["acknowledged"], a["unackedSince"]) for a in acknowledged] == [(True, None)] * 2
    assert all(r.unacked_since is None for r in chosen)
    assert [(r.property.unacked_since, r.account.unacked_since) for r in chosen] == refs_before
    assert all(before[0] and before[1] for before in refs_before)


async def test_acknowledging_with_one_unknown_external_id_acknowledges_nothing(
    client: Client,
) -> None:
    (first,) = await _ids(client, 1)
    await client.data(SET, {"id": first, "ext": "ACK-ME"})
    store = _leap_store(client.sandbox)
    before = {k: r.unacked_since for k, r in store.relationships.items()}

    body = await client.data(ACK, {"ext": ["ACK-ME", "NOBODY"]})

    assert body["acknowledgeRelationships"]["errors"] == [{"code": "NOT_FOUND"}]
    assert {k: r.unacked_since for k, r in store.relationships.items()} == before


ACK_AT = (
    "mutation($ids: [ID!], $provider: String) { acknowledgeRelationships(input: "
    "{ids: $ids, provider: $provider}) { acknowledged { sourceId } errors { code message } } }"
)


@pytest.mark.parametrize(
    ("named", "provider"), [(("pms",), "leap"), (("leap", "mycrm"), None)], ids=["pms", "mixed"]
)
async def test_an_id_of_another_provider_acknowledges_nothing(
    client: Client, named: tuple[str, ...], provider: str | None
) -> None:
    """Found probing tampered ids: `Relationship:pms:N` with `provider: "leap"` acknowledged
    LEAP's N, and a LEAP id beside a MyCRM one were both acknowledged at LEAP."""
    leap = [decode_id(global_id)[2] for global_id in await _ids(client, 5)]
    chosen = leap[: len(named)]
    ids = [encode_id(Entity.RELATIONSHIP, at, n) for at, n in zip(named, chosen, strict=True)]
    store = _leap_store(client.sandbox)
    before = {k: r.unacked_since for k, r in store.relationships.items()}
    assert any(before[source] for source in chosen)

    body = await client.data(ACK_AT, {"ids": ids, "provider": provider})

    answer = body["acknowledgeRelationships"]
    assert [e["code"] for e in answer["errors"]] == ["NOT_FOUND"], answer
    assert answer["acknowledged"] == []
    assert {k: r.unacked_since for k, r in store.relationships.items()} == before


ASSOCIATE = (
    "mutation($account: String!, $property: String!, $role: Role!) { associateProperty(input: "
    '{accountNumber: $account, propertyCode: $property, role: $role, startDate: "2026-12-01"}) '
    "{ relationship { role startDate accountNumber propertyCode acknowledged } errors { code } } }"
)


async def test_associate_property_and_its_refusals(client: Client) -> None:
    world = client.sandbox.world
    tenant = world.tenants[0]
    other = next(b for b in world.buildings if b.id != world.units[0].building_id)
    account = f"0{tenant.id:07d}"

    created = await client.data(
        ASSOCIATE, {"account": account, "property": f"PP-{other.id}", "role": "OCCUPIER"}
    )
    again = await client.data(
        ASSOCIATE, {"account": account, "property": f"PP-{other.id}", "role": "OCCUPIER"}
    )
    unknown = await client.data(
        ASSOCIATE, {"account": "07777777", "property": f"PP-{other.id}", "role": "OWNER"}
    )
    malformed = await client.data(
        ASSOCIATE, {"account": "12-<x>", "property": "PP-<&>", "role": "OWNER"}
    )

    assert created["associateProperty"]["relationship"] == {
        "role": "OCCUPIER",
        "startDate": "2026-12-01",
        "accountNumber": account,
        "propertyCode": f"PP-{other.id}",
        "acknowledged": False,
    }
    assert again["associateProperty"]["errors"] == [{"code": "CONFLICT"}]
    assert unknown["associateProperty"]["errors"] == [{"code": "NOT_FOUND"}]
    assert malformed["associateProperty"]["errors"] == [{"code": "INVALID_ACCOUNT_NUMBER"}]


async def test_derived_relationships_can_be_fetched_again_by_id(client: Client) -> None:
    data = await client.data(
        '{ tenants(first: 3, providers: ["primmo"]) { edges { node { relationships '
        "{ id derived role } } } } }"
    )
    derived = [
        r for e in data["tenants"]["edges"] for r in e["node"]["relationships"] if r["derived"]
    ]

    again = await client.data(
        "query($ids: [ID!]!) { nodes(ids: $ids) { ... on Relationship { id role derived "
        "unit { unitCode } } } }",
        {"ids": [r["id"] for r in derived]},
    )

    assert [n["id"] for n in again["nodes"]] == [r["id"] for r in derived]
    assert all(n["role"] == "OCCUPIER" and n["unit"]["unitCode"] for n in again["nodes"])


async def test_ids_and_external_ids_are_acknowledged_all_or_none(client: Client) -> None:
    data = await client.data(
        "{ relationships(first: 1, filter: {acknowledged: false}) "
        "{ edges { node { id sourceId } } } }"
    )
    edge = data["relationships"]["edges"][0]["node"]
    store = _leap_store(client.sandbox)
    before = store.relationships[edge["sourceId"]].unacked_since

    body = await client.data(ACK, {"ids": [edge["id"]], "ext": ["NOBODY-HAS-THIS"]})

    assert body["acknowledgeRelationships"]["errors"] == [{"code": "NOT_FOUND"}]
    assert before is not None
    assert store.relationships[edge["sourceId"]].unacked_since == before


@pytest.mark.parametrize(
    ("body", "refused"),
    [
        (b"<r>" * 40 + b"</r>" * 40, "nested deeper than 32"),
        (b"<r>" + b"<a/>" * 60_000 + b"</r>", "more than 50000 elements"),
        (b"<r>" + b"x" * 5_000_000 + b"</r>", "characters of text"),
        (b'<r a="' + b"x" * 5_000_000 + b'"/>', "characters of text"),
        (b'<?xml version="1.0" encoding="utf-16"?><r/>', "not XML"),
        (b"\xff\xfe<r/>", "not XML"),
    ],
)
async def test_a_hostile_body_stops_at_the_first_limit_with_its_reason(
    body: bytes, refused: str
) -> None:
    with pytest.raises(UpstreamInvalidResponse) as raised:
        await parse_untrusted(body, "leap")

    assert refused in raised.value.message


async def test_a_large_body_hands_the_loop_back_while_it_is_parsed() -> None:
    """Another caller's work goes on between slices instead of waiting for the whole body."""
    page = (
        b"<r>"
        + b'<property-relationship identifier="1"><role>OWNER</role></property-relationship>'
        * 40_000
        + b"</r>"
    )
    turns = 0

    async def other_caller() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    beside = asyncio.ensure_future(other_caller())
    await asyncio.sleep(0)
    before = turns
    try:
        root = await parse_untrusted(page, "leap", XmlLimits(max_elements=200_000))
    finally:
        beside.cancel()

    assert len(root) == 40_000
    assert turns - before >= len(page) // XmlLimits().slice_bytes - 1
