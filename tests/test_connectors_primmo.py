"""The Primmo connector on its own, against the sandbox through ASGI."""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal
from itertools import product
from random import Random
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from odata_query import ast
from odata_query.grammar import ODataLexer, ODataParser

from gateway.clock import ManualClock
from gateway.config import Traffic
from gateway.connectors import odata, primmo
from gateway.connectors.base import ListRequest
from gateway.connectors.primmo import (
    _UNIT_KEY,
    MAX_FILTER_NODES,
    MAX_QUERY_BYTES,
    NEXT_LINK_ROOM,
    PrimmoConnector,
    Room,
    _batched_filters,
)
from gateway.errors import ProviderError, ValidationFailed
from gateway.model import (
    Building,
    Entity,
    Link,
    NewTenant,
    Selection,
    Tenant,
    Unavailable,
    Unit,
)
from gateway.sandbox import Sandbox
from gateway.sandbox.odata import EntitySet, Server, evaluate, node_count, parse_options
from gateway.upstream.client import Upstream
from tests.conftest import Recording


def _upstream(sandbox: Sandbox, clock: ManualClock, **credentials: str) -> Upstream:
    return Upstream(
        name="primmo",
        base_url="http://127.0.0.1/sandbox/primmo",
        credentials={**Sandbox.credentials("primmo"), **credentials},
        traffic=Traffic(),
        clock=clock,
        transport=sandbox.transport("primmo"),
    )


async def test_records_are_normalised(sandbox: Sandbox, clock: ManualClock) -> None:
    upstream = _upstream(sandbox, clock)
    connector = PrimmoConnector.connect(upstream)
    try:
        page = await connector.page(
            Entity.TENANT, ListRequest({}, Selection(frozenset({"tenant_number"})), limit=5)
        )
    finally:
        await upstream.aclose()

    assert len(page.records) == 5 and not page.exhausted
    for record in page.records:
        assert isinstance(record, Tenant)
        assert record.tenant_number is not None and record.tenant_number.isdigit()
    assert page.positions == [1, 2, 3, 4, 5]


async def test_a_page_builds_no_link_until_one_of_its_relations_is_read(
    sandbox: Sandbox, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A thousand units whose relations no query selects built four links each (two fifths
    of decoding a unit), all thrown away: a relation is read from its row when asked."""
    made: list[Link] = []

    def counted(*args: Any) -> Link:
        made.append(Link(*args))
        return made[-1]

    monkeypatch.setattr(primmo, "Link", counted)
    upstream = _upstream(sandbox, clock)
    connector = PrimmoConnector.connect(upstream)
    try:
        pages = [
            await connector.page(entity, ListRequest({}, Selection(), limit=20))
            for entity in (Entity.BUILDING, Entity.UNIT, Entity.TENANT)
        ]
    finally:
        await upstream.aclose()

    assert all(len(page.records) == 20 for page in pages) and made == []
    units = pages[1].records
    tenants = [unit.tenants for unit in units if isinstance(unit, Unit)]
    assert made == tenants and len(set(tenants)) == 20


def test_relations_read_later_are_those_of_the_row() -> None:
    """Keys written exactly as Primmo returned them, padding included."""
    place = {"Id": 7, "CompanyNo": 1, "DivisionNo": 2, "BuildingCode": "B1  "}
    unit = primmo._unit({**place, "UnitCode": "U1 "}, Selection())
    tenant = primmo._tenant({**place, "UnitCode": "U1 ", "LeaseId": 5}, Selection())
    building = primmo._building(place, Selection())
    of_unit, of_building = '[1,2,"B1  ","U1 "]', '[1,2,"B1  "]'

    def link(entity: Entity, by: str, key: str) -> Link:
        return Link("primmo", entity, by, key)

    assert (unit.building, unit.landlord, unit.tenants, unit.maintenance_requests) == (
        link(Entity.BUILDING, "code", of_building),
        link(Entity.LANDLORD, "division", "[1,2]"),
        link(Entity.TENANT, "unit", of_unit),
        link(Entity.MAINTENANCE_REQUEST, "unit", of_unit),
    )
    assert (building.landlord, building.units, building.maintenance_requests) == (
        link(Entity.LANDLORD, "division", "[1,2]"),
        link(Entity.UNIT, "building", of_building),
        link(Entity.MAINTENANCE_REQUEST, "building", of_building),
    )
    assert (tenant.unit, tenant.lease) == (
        link(Entity.UNIT, "code", of_unit),
        link(Entity.LEASE, "id", "5"),
    )
    assert (tenant.charges, tenant.payments, tenant.balance, tenant.maintenance_requests) == (
        link(Entity.CHARGE, "tenant", "7"),
        link(Entity.PAYMENT, "tenant", "7"),
        link(Entity.BALANCE, "tenant", "7"),
        link(Entity.MAINTENANCE_REQUEST, "tenant", "7"),
    )
    assert primmo._tenant({**place, "UnitCode": "U1 "}, Selection()).lease is None


@pytest.mark.parametrize("division", [123456789012345678901, Decimal("2.50")])
def test_a_key_no_request_can_name_is_a_relation_that_says_so(division: object) -> None:
    """Relations are read wherever they are first asked (a log line, a cache write), so
    reading one never raises: a key orjson will not write (a number past 64 bits, or one
    `parse_json` kept as a Decimal) is an unavailable relation, which warns when followed."""
    place = {"Id": 7, "CompanyNo": 1, "DivisionNo": division, "BuildingCode": "B1"}
    unit = primmo._unit({**place, "UnitCode": "U1"}, Selection())
    tenant = primmo._tenant({**place, "UnitCode": "U1"}, Selection())

    relations = [unit.building, unit.landlord, unit.tenants, unit.maintenance_requests]
    assert [type(relation) for relation in [*relations, tenant.unit]] == [Unavailable] * 5
    assert "key no request can name" in repr(unit) and tenant.charges == Link(
        "primmo", Entity.CHARGE, "tenant", "7"
    )


async def test_fetch_matches_by_key_not_by_position(sandbox: Sandbox, clock: ManualClock) -> None:
    upstream = _upstream(sandbox, clock)
    connector = PrimmoConnector.connect(upstream)
    ids = [str(b.id) for b in sandbox.world.buildings_of("primmo")][:4]
    try:
        found = await connector.fetch(
            Entity.BUILDING, "id", [*reversed(ids), "999999", "1) or (1 eq 1"], Selection()
        )
    finally:
        await upstream.aclose()

    assert set(found) == set(ids)
    assert all(
        isinstance(records[0], Building) and records[0].source_id == key
        for key, records in found.items()
    )
    assert sandbox.states["primmo"].count("GET", "/api/Buildings") == 1


async def test_wrong_credentials_become_a_provider_error(
    sandbox: Sandbox, clock: ManualClock
) -> None:
    upstream = _upstream(sandbox, clock, password="wrong")
    connector = PrimmoConnector.connect(upstream)
    try:
        with pytest.raises(ProviderError) as raised:
            await connector.page(Entity.BUILDING, ListRequest({}, Selection(), limit=1))
    finally:
        await upstream.aclose()

    assert raised.value.extensions == {"code": "UPSTREAM_CREDENTIALS_REFUSED", "provider": "primmo"}
    assert "wrong" not in str(raised.value)


async def test_every_odata_request_says_the_highest_version_it_reads(
    sandbox: Sandbox, clock: ManualClock
) -> None:
    """OData clients SHOULD send OData-MaxVersion (Part 1, 8.2.7): without it a 4.01 service
    may answer in 4.01's JSON, whose control information may leave out the `@odata.` prefix
    the connector reads next links by."""
    upstream = _upstream(sandbox, clock)
    recording = Recording(sandbox.transport("primmo"))
    upstream.transport = recording
    connector = PrimmoConnector.connect(upstream)
    try:
        await connector.page(Entity.BUILDING, ListRequest({}, Selection(), limit=2, count=True))
        await connector.fetch(Entity.UNIT, "building", ['[1,1,"1601VILLE "]'], Selection())
    finally:
        await upstream.aclose()

    data = [r.headers for r in recording.requests if "/api/Token" not in r.url.path]
    assert data
    assert {(h.get("OData-Version"), h.get("OData-MaxVersion")) for h in data} == {("4.0", "4.0")}


async def _tenants_of_units(
    sandbox: Sandbox, clock: ManualClock, options: dict[str, int], per_call: int = 120
) -> tuple[dict[str, list[str]], list[httpx.Request]]:
    """The tenants of 120 units fetched `per_call` keys at a time, and the requests it took."""
    upstream = _upstream(sandbox, clock)
    upstream.options = options
    recording = Recording(sandbox.transport("primmo"))
    upstream.transport = recording
    connector = PrimmoConnector.connect(upstream)
    found: dict[str, list[str]] = {}
    try:
        units = await connector.page(Entity.UNIT, ListRequest({}, Selection(), limit=120))
        keys = [
            unit.tenants.key
            for unit in units.records
            if isinstance(unit, Unit) and isinstance(unit.tenants, Link)
        ]
        recording.requests.clear()
        for start in range(0, len(keys), per_call):
            batch = keys[start : start + per_call]
            for key, records in (
                await connector.fetch(Entity.TENANT, "unit", batch, Selection())
            ).items():
                found[key] = sorted(record.source_id for record in records)
    finally:
        await upstream.aclose()
    return found, recording.requests


async def test_a_batch_is_cut_to_the_query_string_a_server_takes(
    sandbox: Sandbox, clock: ManualClock
) -> None:
    """IIS refuses a query string over 2,048 bytes (`maxQueryString`), counted as sent: a
    padded code's spaces count three bytes each. The batch is cut into as many requests as
    keep each under it, with room left for a next link's `$skiptoken`, and finds what asking
    a few units at a time finds."""
    cut, requests = await _tenants_of_units(sandbox, clock, {})
    few, _ = await _tenants_of_units(sandbox, clock, {}, per_call=5)

    sizes = [len(request.url.query) for request in requests]
    assert len(requests) > 1 and max(sizes) <= MAX_QUERY_BYTES - NEXT_LINK_ROOM, sizes
    assert cut == few
    assert sum(len(ids) for ids in cut.values()) > 60


async def test_a_batch_is_cut_to_the_filter_nodes_aspnet_odata_takes(
    sandbox: Sandbox, clock: ManualClock
) -> None:
    """ASP.NET's OData refuses a `$filter` of more than 100 nodes (`MaxNodeCount`, counted as
    its validator does, by the sandbox's own reading of the filter): each unit's prefix costs
    16, so five buildings' units go to a request, and the tenants found are those asking a few
    units at a time finds."""
    cut, requests = await _tenants_of_units(sandbox, clock, {})
    few, _ = await _tenants_of_units(sandbox, clock, {}, per_call=5)

    counts = [node_count(_parsed(request.url.params["$filter"])) for request in requests]
    assert max(counts) == 5 * 16 + 4, counts
    assert cut == few
    assert sum(len(ids) for ids in cut.values()) > 60


def test_a_node_limit_raised_for_a_server_that_takes_more_makes_fewer_filters() -> None:
    """Thirty buildings each wanting units the others do not: a part each."""
    keys = [(1, 2, f"{b}VILLE ", f" {b}{unit}") for b in range(30) for unit in range(4)]

    default = _batched_filters(_UNIT_KEY, keys, Room(65_536, MAX_FILTER_NODES))
    raised = _batched_filters(_UNIT_KEY, keys, Room(65_536, 1000))

    assert [f.nodes for f in default] == [5 * 19 + 4] * 6, "each comparison counted converted"
    assert len(raised) == 1 and raised[0].nodes == 30 * 19 + 29
    assert node_count(_parsed(odata.render(raised[0]))) == 30 * 16 + 29, "the sandbox's model"


def test_places_that_want_the_same_units_share_one_part() -> None:
    """A page of buildings asks every unit of each: buildings of one division with the same
    unit codes are named together, `BuildingCode in (…) and UnitCode in (…)`."""
    keys = [(1, 2, f"{b}VILLE ", f" 10{unit}") for b in range(30) for unit in range(4)]

    (only,) = _batched_filters(_UNIT_KEY, keys, Room(65_536, MAX_FILTER_NODES))

    assert only.nodes == 2 * 5 + 1 + 1 + 3
    assert odata.render(only).count("BuildingCode in (") == 1


_CODES = (1, 2), (1, 2), ("A ", "B ", "C ", "D "), (" 1", " 2", " 3")
"""Every value of each part of a unit's key in the world of the next test."""


@settings(deadline=None, max_examples=150)
@given(
    st.lists(st.tuples(*(st.sampled_from(values) for values in _CODES)), min_size=1, max_size=40),
    st.sampled_from([260, 2000]),
    st.sampled_from([50, 100]),
)
def test_batched_filters_find_exactly_the_keys_asked(
    keys: list[tuple[Any, ...]], room_bytes: int, room_nodes: int
) -> None:
    """Read by the sandbox over every unit there could be, the filters find the keys asked
    and no other: a shared part names no building a unit it was not asked for, whatever the
    rooms cut."""
    filters = _batched_filters(_UNIT_KEY, keys, Room(room_bytes, room_nodes))

    assert _found(filters, product(*_CODES), Room(room_bytes, room_nodes)) == set(keys)


@settings(deadline=None, max_examples=100)
@given(
    st.lists(st.tuples(*(st.sampled_from(values) for values in _CODES)), min_size=1, max_size=40),
    st.randoms(use_true_random=False),
    st.sampled_from([260, 2000]),
    st.sampled_from([50, 100]),
)
def test_a_batch_takes_the_same_filters_whatever_the_order_of_its_keys(
    keys: list[tuple[Any, ...]], random: Random, room_bytes: int, room_nodes: int
) -> None:
    """The executor decides the order (graphql-core's tasks and the compiled plan differ):
    the requests a batch takes, and what each asks, must not."""
    shuffled = list(keys)
    random.shuffle(shuffled)
    room = Room(room_bytes, room_nodes)

    asked = [expr.text for expr in _batched_filters(_UNIT_KEY, keys, room)]
    reordered = [expr.text for expr in _batched_filters(_UNIT_KEY, shuffled, room)]

    assert asked == reordered


def test_a_shared_part_too_long_for_a_request_is_halved_by_its_buildings() -> None:
    """250 buildings of a division wanting the same four units: their codes alone run past a
    request, so the part is halved until each half fits, and every key is still asked."""
    buildings = [f"{number}VILLE " for number in range(250)]
    keys = [(1, 2, building, f" 10{unit}") for building in buildings for unit in range(4)]
    room = Room(MAX_QUERY_BYTES - NEXT_LINK_ROOM, MAX_FILTER_NODES)

    filters = _batched_filters(_UNIT_KEY, keys, room)

    world = product([1], [2], buildings, [f" 10{unit}" for unit in range(6)])
    assert len(filters) > 1 and _found(filters, world, room) == set(keys)


@pytest.mark.parametrize("seed", range(3))
def test_a_shared_part_is_halved_the_same_whatever_the_order_of_its_buildings(
    seed: int,
) -> None:
    """Halving a part too long for a request splits its buildings in their own order, not
    in the order they were asked."""
    keys = [(1, 2, f"{number}VILLE ", f" 10{unit}") for number in range(250) for unit in range(4)]
    shuffled = list(keys)
    Random(seed).shuffle(shuffled)
    room = Room(MAX_QUERY_BYTES - NEXT_LINK_ROOM, MAX_FILTER_NODES)

    asked = [expr.text for expr in _batched_filters(_UNIT_KEY, keys, room)]
    reordered = [expr.text for expr in _batched_filters(_UNIT_KEY, shuffled, room)]

    assert asked == reordered


def _found(filters: list[odata.Expr], world: Iterable[tuple[Any, ...]], room: Room) -> set[Any]:
    """The keys of `world` the filters find, read by the sandbox; each filter within `room`."""
    rows = [dict(zip(_UNIT_KEY, key, strict=True)) for key in world]
    found = set()
    for expr in filters:
        text = odata.render(expr)
        assert expr.nodes <= room.nodes and odata.encoded_size(text) <= room.bytes
        options = parse_options([("$filter", text)])
        matched = evaluate(rows, options, EntitySet(frozenset(_UNIT_KEY)), Server()).rows
        found |= {tuple(row[name] for name in _UNIT_KEY) for row in matched}
    return found


def _parsed(text: str) -> ast._Node:
    tree: ast._Node = ODataParser().parse(ODataLexer().tokenize(text))
    return tree


async def test_a_limit_raised_past_the_servers_is_one_request_refused_as_too_long(
    sandbox: Sandbox, clock: ManualClock
) -> None:
    """`max_query_bytes` raised beyond what the server takes (and the node limit with it):
    one request, which the sandbox, as strict as IIS, refuses as too long (414), a clear
    refusal and not a missing record."""
    limits = {"max_query_bytes": 65_536, "max_filter_nodes": 100_000}
    with pytest.raises(ProviderError) as raised:
        await _tenants_of_units(sandbox, clock, limits)

    assert raised.value.extensions["code"] == "UPSTREAM_REJECTED"
    assert "HTTP 414" in str(raised.value)
    assert sandbox.states["primmo"].count("GET", "/api/Tenants") == 1


async def test_a_node_limit_raised_past_the_servers_is_refused_by_it(
    sandbox: Sandbox, clock: ManualClock
) -> None:
    """`max_filter_nodes` raised beyond what the server takes: the server's refusal, named
    for what it is, not a missing record."""
    with pytest.raises(ProviderError) as raised:
        await _tenants_of_units(sandbox, clock, {"max_filter_nodes": 1000})

    assert raised.value.extensions["code"] == "UPSTREAM_REJECTED"
    assert "node count limit of '100'" in str(raised.value)


def test_a_key_prefix_with_more_values_than_a_request_holds_is_split() -> None:
    codes = [f" {number:04d}" for number in range(400)]
    keys = [(1, 2, "1601VILLE ", code) for code in codes]

    filters = _batched_filters(_UNIT_KEY, keys, Room(1800, MAX_FILTER_NODES))

    assert len(filters) > 1
    assert all(odata.encoded_size(odata.render(f)) <= 1800 for f in filters)
    listed = [code for f in filters for code in re.findall(r"' \d{4}'", odata.render(f))]
    assert sorted(code.strip("'") for code in listed) == codes


async def test_a_refusal_naming_its_property_only_in_odata_details_names_the_callers_field(
    clock: ManualClock,
) -> None:
    """ASP.NET's validation words its message generally and names the property as the
    `target` of the error's `details` (OData JSON Format §21): the refusal names the caller's
    field, as when Primmo's words name it."""
    unit = {"Id": 7, "CompanyNo": 1, "DivisionNo": 1, "BuildingCode": "B ", "UnitCode": " 1"}

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/api/Token"):
            return httpx.Response(200, json="token")
        if request.method == "GET":
            return httpx.Response(200, json={"value": [unit]})
        return httpx.Response(
            400,
            json={
                "error": {
                    "code": "",
                    "message": "The request is invalid.",
                    "details": [
                        {
                            "code": "",
                            "message": "The LastName field is required.",
                            "target": "LastName",
                        }
                    ],
                }
            },
        )

    upstream = Upstream(
        name="primmo",
        base_url="https://primmo.example",
        credentials={"api_key": "k", "username": "u", "password": "p"},
        traffic=Traffic(),
        clock=clock,
        transport=httpx.MockTransport(answer),
    )
    connector = PrimmoConnector.connect(upstream)
    try:
        with pytest.raises(ValidationFailed) as raised:
            await connector.create_tenant("7", NewTenant(first_name="Ana", last_name=""))
    finally:
        await upstream.aclose()

    assert raised.value.problems == [
        {"field": "last_name", "message": "The LastName field is required."}
    ]


async def test_a_key_no_query_can_name_is_answered_without_a_record_and_the_others_read(
    sandbox: Sandbox, clock: ManualClock
) -> None:
    """A forged id's code of 400 characters outside ASCII cannot be asked for in any query
    the server takes: it has no record, and the good keys of the same batch are read."""
    upstream = _upstream(sandbox, clock)
    connector = PrimmoConnector.connect(upstream)
    forged = '[1,1,"' + "é" * 400 + '"]'
    try:
        (building,) = (
            await connector.page(Entity.BUILDING, ListRequest({}, Selection(), limit=1))
        ).records
        assert isinstance(building, Building) and isinstance(building.units, Link)
        found = await connector.fetch(
            Entity.UNIT, "building", [building.units.key, forged], Selection()
        )
    finally:
        await upstream.aclose()

    assert set(found) == {building.units.key} and found[building.units.key]
