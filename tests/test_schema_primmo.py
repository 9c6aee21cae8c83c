"""Queries through the whole gateway, in-process, against the Primmo sandbox."""

from __future__ import annotations

import base64

import httpx
from odata_query.grammar import ODataLexer, ODataParser

from gateway.sandbox.data import World
from gateway.sandbox.odata import MAX_NODE_COUNT, node_count
from gateway.sandbox.primmo import MAX_QUERY_BYTES
from tests.conftest import Client, error_codes

NESTED = (
    '{ buildings(first: 20, providers: ["primmo"]) { edges { node { name '
    "units { unitCode rooms tenants { lastName } } } } } }"
)


def _primmo_world(client: Client) -> World:
    return client.sandbox.world


async def test_nested_buildings_units_tenants_cost_four_data_requests(
    client: Client,
) -> None:
    """Buildings with `$expand=Units`, then their units' tenants in three `$filter`s: the
    buildings of a division that want the same unit codes named together, each filter cut to
    the 100 nodes ASP.NET's OData takes (its `MaxNodeCount`). This world's buildings have
    from one to eight units, so few of them share a part."""
    data = await client.data(NESTED.replace("units {", "sourceId units { sourceId"))

    buildings = data["buildings"]["edges"]
    assert len(buildings) == 20
    assert client.primmo.count("GET") == 4
    world = _primmo_world(client)
    for edge in buildings:
        units = edge["node"]["units"]
        expected_units = [u for u in world.units if str(u.building_id) == edge["node"]["sourceId"]]
        assert {u["sourceId"] for u in units} == {str(u.id) for u in expected_units}
        for unit in units:
            got = sorted(t["lastName"] for t in unit["tenants"])
            expected = [t.last_name for t in world.occupants_of(int(unit["sourceId"]))]
            assert got == sorted(expected)


async def test_select_names_only_the_fields_asked_for_plus_keys(client: Client) -> None:
    await client.data(NESTED)

    (buildings,) = client.primmo.seen("/api/Buildings")
    selected = set(buildings.query["$select"].split(","))
    keys = {"Id", "CompanyNo", "DivisionNo", "BuildingCode"}
    assert selected == keys | {"Name"}
    assert "City" not in selected and "CivicNoAndStreet" not in selected
    assert buildings.query["$expand"].startswith("Units($select=")
    unit_select = buildings.query["$expand"].split("$select=")[1].split(";")[0]
    assert set(unit_select.split(",")) == keys | {"Id", "UnitCode", "NumberOfRooms"}
    tenants = client.primmo.seen("/api/Tenants")
    assert tenants, "the units' tenants are read in one batch, cut to the query string's limit"
    for request in tenants:
        assert set(request.query["$select"].split(",")) == keys | {
            "Id",
            "UnitCode",
            "LastName",
            "LeaseId",
        }


async def test_a_quote_in_a_filter_value_is_escaped_and_matches_nothing_extra(
    client: Client,
) -> None:
    hostile = "x' or 1 eq 1 or Name eq '"
    body = await client.data(
        "query($text: String!) { buildings(filter: {nameContains: $text}) { totalCount } }",
        {"text": hostile},
    )

    assert body["buildings"]["totalCount"] == 0
    (request,) = client.primmo.seen("/api/Buildings")
    assert request.query["$filter"] == "contains(tolower(Name),'x'' or 1 eq 1 or name eq ''')"


async def test_a_name_with_an_apostrophe_still_matches(client: Client) -> None:
    body = await client.data(
        '{ tenants(filter: {nameContains: "o\'neil"}, first: 100) '
        "{ totalCount edges { node { lastName } } } }"
    )

    world = _primmo_world(client)
    primmo_units = {
        u.id for u in world.units for b in world.buildings_of("primmo") if u.building_id == b.id
    }
    expected = [
        t
        for t in world.tenants
        if t.last_name == "O'Neil" and t.unit_id in primmo_units and world.is_current(t)
    ]
    assert body["tenants"]["totalCount"] == len(expected) > 0
    assert {edge["node"]["lastName"] for edge in body["tenants"]["edges"]} == {"O'Neil"}


async def test_paging_with_first_7_visits_every_building_exactly_once(client: Client) -> None:
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        data = await client.data(
            'query($after: String) { buildings(first: 7, after: $after, providers: ["primmo"]) {'
            " totalCount pageInfo { hasNextPage endCursor } edges { node { sourceId name } } } }",
            {"after": after},
        )
        connection = data["buildings"]
        seen.extend(edge["node"]["sourceId"] for edge in connection["edges"])
        pages += 1
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]

    expected = {str(b.id) for b in _primmo_world(client).buildings_of("primmo")}
    assert len(seen) == len(set(seen)) == len(expected) == connection["totalCount"]
    assert set(seen) == expected
    assert pages == -(-len(expected) // 7)


async def test_filters_push_down_and_return_what_they_say(client: Client) -> None:
    data = await client.data(
        '{ units(first: 100, filter: {rooms: {min: 4, max: 5}}, providers: ["primmo"]) '
        "{ totalCount edges { node { rooms } } } }"
    )

    world = _primmo_world(client)
    primmo = {b.id for b in world.buildings_of("primmo")}
    expected = [u for u in world.units if u.building_id in primmo and 4 <= u.rooms <= 5]
    assert data["units"]["totalCount"] == len(expected)
    assert all(4 <= edge["node"]["rooms"] <= 5 for edge in data["units"]["edges"])
    (request,) = client.primmo.seen("/api/Units")
    assert request.query["$filter"] == "NumberOfRooms ge 4.0 and NumberOfRooms le 5.0"


async def test_building_code_matches_despite_the_padding(client: Client) -> None:
    building = _primmo_world(client).buildings_of("primmo")[0]

    data = await client.data(
        "query($code: String!) { buildings(filter: {code: $code}) "
        "{ edges { node { code sourceId } } } }",
        {"code": building.code},
    )

    assert data["buildings"]["edges"] == [
        {"node": {"code": building.code, "sourceId": str(building.id)}}
    ]


async def test_units_for_rent_come_from_the_availability_endpoint(client: Client) -> None:
    data = await client.data(
        '{ unitsForRent(from: "2027-01-01", to: "2027-06-30", first: 100, providers: ["primmo"]) '
        "{ totalCount edges { node { sourceId building { name } } } } }"
    )

    world = _primmo_world(client)
    primmo = {b.id for b in world.buildings_of("primmo")}
    from datetime import date

    free = {
        str(u.id)
        for u in world.units
        if u.building_id in primmo and world.is_free(u.id, date(2027, 1, 1), date(2027, 6, 30))
    }
    got = {edge["node"]["sourceId"] for edge in data["unitsForRent"]["edges"]}
    assert got == free and data["unitsForRent"]["totalCount"] == len(free)
    assert client.primmo.count("GET", "/api/Units/ForRent") == 1
    assert client.primmo.count("GET", "/api/Buildings") == 1


async def test_node_and_nodes_round_trip_global_ids_in_one_batch(client: Client) -> None:
    listed = await client.data("{ tenants(first: 5) { edges { node { id firstName } } } }")
    ids = [edge["node"]["id"] for edge in listed["tenants"]["edges"]]
    client.primmo.reset_counter()

    data = await client.data(
        "query($ids: [ID!]!) { nodes(ids: $ids) { id ... on Tenant { firstName } } }",
        {"ids": ids},
    )

    assert [node["id"] for node in data["nodes"]] == ids
    assert data["nodes"] == [edge["node"] for edge in listed["tenants"]["edges"]]
    assert client.primmo.count("GET", "/api/Tenants") == 1


async def test_an_unknown_but_well_formed_id_is_null_with_not_found(client: Client) -> None:
    missing = base64.urlsafe_b64encode(b"Building:primmo:999999").decode().rstrip("=")

    body = await client.query(f'{{ node(id: "{missing}") {{ id }} }}')

    assert body["data"] == {"node": None}
    assert error_codes(body) == ["NOT_FOUND"]


async def test_bad_input_gets_stable_codes_and_no_upstream_request(client: Client) -> None:
    wrong_provider = base64.urlsafe_b64encode(b"Building:nowhere:1").decode()
    cases = {
        '{ node(id: "not-an-id") { id } }': "INVALID_ID",
        f'{{ node(id: "{wrong_provider}") {{ id }} }}': "INVALID_ID",
        '{ node(id: "QnVpbGRpbmc") { id } }': "INVALID_ID",
        '{ buildings(after: "bm90IGEgY3Vyc29y") { totalCount } }': "INVALID_CURSOR",
        '{ buildings(after: "!!!") { totalCount } }': "INVALID_CURSOR",
        "{ buildings(first: 101) { totalCount } }": "PAGE_SIZE_EXCEEDED",
        "{ buildings(first: 0) { totalCount } }": "BAD_USER_INPUT",
        '{ buildings(filter: {nameContains: "  "}) { totalCount } }': "BAD_USER_INPUT",
        '{ buildings(providers: ["nowhere"]) { totalCount } }': "BAD_USER_INPUT",
        '{ unitsForRent(from: "2027-02-01", to: "2027-01-01") { totalCount } }': "BAD_USER_INPUT",
        "{ buildings { nope } }": "GRAPHQL_VALIDATION_FAILED",
        "{ buildings ": "GRAPHQL_PARSE_FAILED",
    }
    for query, code in cases.items():
        response = await client.http.post("/graphql", json={"query": query})
        assert response.status_code in (200, 400), (query, response.status_code)
        assert error_codes(response.json()) == [code], (query, response.json())
    assert client.primmo.count() == 0


async def test_a_cursor_from_another_list_is_refused(client: Client) -> None:
    first = await client.data(
        '{ buildings(first: 2, filter: {cityContains: "a"}) { pageInfo { endCursor } } }'
    )
    cursor = first["buildings"]["pageInfo"]["endCursor"]

    body = await client.query(
        "query($after: String) { buildings(first: 2, after: $after) { totalCount } }",
        {"after": cursor},
    )

    assert error_codes(body) == ["INVALID_CURSOR"]


async def test_a_type_no_configured_provider_serves_gives_an_empty_connection(
    client: Client,
) -> None:
    data = await client.data(
        '{ relationships(first: 5, providers: ["primmo"]) '
        "{ totalCount pageInfo { hasNextPage } edges { cursor } } }"
    )

    assert data["relationships"] == {
        "totalCount": 0,
        "pageInfo": {"hasNextPage": False},
        "edges": [],
    }


async def test_relations_across_levels_resolve_to_the_right_records(client: Client) -> None:
    data = await client.data(
        "{ tenants(first: 30) { edges { node { sourceId unit { sourceId building {"
        " sourceId landlord { name buildings { sourceId } } } } } } } }"
    )

    world = _primmo_world(client)
    units = {u.id: u for u in world.units}
    buildings = {b.id: b for b in world.buildings}
    landlords = {landlord.id: landlord for landlord in world.landlords}
    for edge in data["tenants"]["edges"]:
        node = edge["node"]
        tenant = next(t for t in world.tenants if str(t.id) == node["sourceId"])
        unit = units[tenant.unit_id]
        building = buildings[unit.building_id]
        assert node["unit"]["sourceId"] == str(unit.id)
        assert node["unit"]["building"]["sourceId"] == str(building.id)
        owner = node["unit"]["building"]["landlord"]
        assert owner["name"] == landlords[building.landlord_id].name
        assert str(building.id) in {b["sourceId"] for b in owner["buildings"]}
    reads = [seen for seen in client.primmo.seen() if seen.method == "GET" and not seen.token]
    assert len(reads) == 8, "one batch per level; the units' cut to five buildings a request"
    assert len(client.primmo.seen("/api/Units")) == 4
    assert all(len(seen.target.partition("?")[2]) <= MAX_QUERY_BYTES for seen in reads)
    filters = [httpx.URL(seen.target).params.get("$filter") for seen in reads]
    trees = [ODataParser().parse(ODataLexer().tokenize(text)) for text in filters if text]
    assert max(node_count(tree) for tree in trees) <= MAX_NODE_COUNT


async def test_one_path_under_two_parent_types_pushes_down_each_ones_fields(
    client: Client,
) -> None:
    """`unit` under a tenant and under a relationship sits at the same response path; each
    asks the unit for other fields, so each must reach Primmo's `$select` on its own."""
    listed = await client.data(
        '{ tenants(first: 1, providers: ["primmo"]) { edges { node { id relationships '
        "{ id derived } } } } }"
    )
    tenant = listed["tenants"]["edges"][0]["node"]
    derived = next(r for r in tenant["relationships"] if r["derived"])

    data = await client.data(
        "query($ids: [ID!]!) { nodes(ids: $ids) { ... on Tenant { sourceId unit { unitCode } }"
        " ... on Relationship { unit { sourceId rooms } } } }",
        {"ids": [tenant["id"], derived["id"]]},
    )

    world = _primmo_world(client)
    by_tenant, by_relationship = data["nodes"]
    tenant_record = next(t for t in world.tenants if str(t.id) == by_tenant["sourceId"])
    unit = next(u for u in world.units if u.id == tenant_record.unit_id)
    assert by_tenant["unit"] == {"unitCode": unit.code}
    assert by_relationship["unit"] == {"sourceId": str(unit.id), "rooms": unit.rooms}


async def test_two_places_asking_one_set_in_the_same_tick_share_one_read(
    client: Client,
) -> None:
    """Units under tenants and under relationships, asked together with other fields: one
    batch reads them, with the union of the fields in its `$select`."""
    listed = await client.data(
        '{ tenants(first: 2, providers: ["primmo"]) { edges { node { id relationships '
        "{ id derived } } } } }"
    )
    tenants = [edge["node"] for edge in listed["tenants"]["edges"]]
    derived = next(r for r in tenants[1]["relationships"] if r["derived"])
    client.primmo.reset_counter()

    data = await client.data(
        "query($ids: [ID!]!) { nodes(ids: $ids) { ... on Tenant { unit { unitCode } }"
        " ... on Relationship { unit { rooms } } } }",
        {"ids": [tenants[0]["id"], derived["id"]]},
    )

    by_tenant, by_relationship = data["nodes"]
    assert by_tenant["unit"]["unitCode"] and by_relationship["unit"]["rooms"]
    (read,) = client.primmo.seen("/api/Units")
    assert {"UnitCode", "NumberOfRooms"} <= set(read.query["$select"].split(","))
