"""The whole gateway against Primmo served by SAP CAP, a real OData v4 server, and against
the Primmo sandbox: the same cases on both, each answer compared with what that server
holds, read from it directly rather than through the connector.

CAP is strict where the sandbox is lenient: `%20`, never `+`, in a query; no space after
a comma in an `in` list; text compared exactly, so a trimmed code matches nothing; and
at most `PAGE_CAP` rows per response, the rest behind `@odata.nextLink`. A case that
passes on both proves the connector speaks OData, not the sandbox's dialect of it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urljoin

import httpx
import pytest

from gateway.clock import ManualClock
from gateway.config import (
    ApiKey,
    AuthSettings,
    ProviderSettings,
    SecretRef,
    Settings,
    Traffic,
)
from gateway.model import Entity
from gateway.sandbox import Sandbox
from gateway.sandbox.primmo import token_request
from gateway.upstream.client import connections
from schema.ids import encode_id
from tests.conformance.cap_server import CapServer, running_cap
from tests.conftest import Client, error_codes, serving

PAGE_CAP = 4
"""Rows CAP returns per response at most: small, so every list and batch crosses pages."""
CALLER_KEY = "conformance-caller-key"
MAX_PAGES = 100

Row = dict[str, Any]
Node = dict[str, Any]

BUILDING = "sourceId name code street city"
A_CODE = Sandbox(seed=7).world.buildings_of("primmo")[-1].code
"""A building code both servers hold (seed 7's), padded there as Primmo pads it."""
UNIT = "sourceId unitCode rooms occupancy housingType"
TENANT = "sourceId firstName lastName tenantNumber tenantType"
LANDLORD = "sourceId name billingAddress billingPostalCode"


@dataclass(frozen=True)
class Target:
    """Where a Primmo answers: its URL, its account, how to reach it, its page cap."""

    name: str
    url: str
    credentials: dict[str, str]
    transport: Callable[[], httpx.AsyncBaseTransport]
    page_cap: int | None


@pytest.fixture(scope="module")
def cap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CapServer]:
    """Started once for the module, loaded with the world the sandbox fixture serves."""
    with running_cap(Sandbox(seed=7), tmp_path_factory.mktemp("cap"), PAGE_CAP) as server:
        yield server


def _cap(server: CapServer) -> Target:
    return Target(
        "cap", server.url, server.credentials, lambda: connections(Traffic()), server.page_cap
    )


def _sandbox(sandbox: Sandbox) -> Target:
    return Target(
        "sandbox",
        "http://127.0.0.1/sandbox/primmo",
        Sandbox.credentials("primmo"),
        lambda: sandbox.transport("primmo"),
        None,
    )


@pytest.fixture(params=["sandbox", "cap"])
def target(request: pytest.FixtureRequest, sandbox: Sandbox) -> Target:
    """CAP is asked for only here, so the sandbox's cases run without Node.js."""
    if request.param == "cap":
        return _cap(request.getfixturevalue("cap"))
    return _sandbox(sandbox)


class Counting(httpx.AsyncBaseTransport):
    """Innermost under the gateway's traffic layers, so it sees every request that leaves."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner
        self.seen: list[httpx.URL] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request.url)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()

    def data(self) -> list[httpx.URL]:
        """Requests for data, not for tokens."""
        return [url for url in self.seen if not url.path.endswith("/api/Token")]


class Direct:
    """Primmo read without the gateway: URLs written out by hand with `%20`, and every
    `@odata.nextLink` followed, resolved against the context URL as OData's JSON format
    says (CAP writes its links relative to the service root)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def rows(self, path: str, **options: str) -> list[Row]:
        query = "&".join(f"{name}={quote(value, safe=',()')}" for name, value in options.items())
        url = f"{path}?{query}"
        found: list[Row] = []
        for _ in range(MAX_PAGES):
            response = await self._client.get(url)
            assert response.status_code == 200, (url, response.text)
            body = response.json()
            found.extend(body["value"])
            link = body.get("@odata.nextLink")
            if link is None:
                return found
            url = urljoin(urljoin(str(response.url), body.get("@odata.context", "")), link)
        raise AssertionError(f"{path} still had a next page after {MAX_PAGES} pages")

    async def tables(self) -> Tables:
        return Tables(
            buildings=await self.rows("api/Buildings"),
            units=await self.rows("api/Units"),
            tenants=await self.rows("api/Tenants"),
            divisions=await self.rows("api/LedgerDivisions"),
        )


@dataclass(frozen=True)
class Tables:
    buildings: list[Row]
    units: list[Row]
    tenants: list[Row]
    divisions: list[Row]

    def units_of(self, building: Row) -> list[Row]:
        """Primmo's relation as the server keys it: the same company, division and code."""
        return [unit for unit in self.units if _codes(unit, 3) == _codes(building, 3)]

    def tenants_of(self, unit: Row) -> list[Row]:
        return [tenant for tenant in self.tenants if _codes(tenant, 4) == _codes(unit, 4)]


_KEY = ("CompanyNo", "DivisionNo", "BuildingCode", "UnitCode")


def _codes(row: Row, length: int) -> tuple[Any, ...]:
    """The first `length` parts of Primmo's composite key, exactly as the server holds them."""
    return tuple(row[name] for name in _KEY[:length])


@dataclass
class Primmo:
    """One Primmo server, the gateway in front of it, and a plain client reading it."""

    target: Target
    gateway: Client
    direct: Direct
    upstream: Counting

    def pages(self, rows: int, *, top: bool = False) -> int:
        """Responses a list of `rows` takes from this server: one, or one per page cap. Asked
        without `$top`, CAP cannot tell a full page from the last one, so a full last page
        still links to one more, empty."""
        cap = self.target.page_cap
        if cap is None:
            return 1
        return max(1, math.ceil(rows / cap)) if top else rows // cap + 1


@pytest.fixture
async def primmo(
    target: Target,
    sandbox: Sandbox,
    clock: ManualClock,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Primmo]:
    """The gateway as tests/conftest.py builds it, with Primmo configured as a real provider
    at the target's URL and account, and no other provider; with a caller key of its own,
    as the development key exists only while no real provider is configured."""
    monkeypatch.setenv("PROPGATE_TEST_PRIMMO_API_KEY", target.credentials["api_key"])
    monkeypatch.setenv("PROPGATE_TEST_PRIMMO_PASSWORD", target.credentials["password"])
    configured = settings.model_copy(
        update={
            "providers": {
                "primmo": ProviderSettings(
                    url=target.url,
                    username=target.credentials["username"],
                    api_key=SecretRef(env="PROPGATE_TEST_PRIMMO_API_KEY"),
                    password=SecretRef(env="PROPGATE_TEST_PRIMMO_PASSWORD"),
                )
            },
            "auth": AuthSettings(
                api_keys=[
                    ApiKey(
                        name="conformance",
                        sha256=hashlib.sha256(CALLER_KEY.encode()).hexdigest(),
                        scopes=["*"],
                    )
                ]
            ),
        }
    )
    upstream = Counting(target.transport())
    async with (
        serving(
            sandbox,
            clock,
            configured,
            transports={"primmo": upstream},
            headers={"X-API-Key": CALLER_KEY},
        ) as client,
        reading(target) as direct,
    ):
        yield Primmo(target, client, direct, upstream)


@asynccontextmanager
async def reading(target: Target) -> AsyncIterator[Direct]:
    """A plain client logged in to the target with Primmo's token flow."""
    credentials = target.credentials
    async with httpx.AsyncClient(transport=target.transport(), base_url=f"{target.url}/") as plain:
        token = await plain.post(**token_request("", credentials))
        assert token.status_code == 200, token.text
        plain.headers["Authorization"] = f"Bearer {token.json()}"
        yield Direct(plain)


def _trimmed(value: Any) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None


def building_node(row: Row) -> Node:
    return {
        "sourceId": str(row["Id"]),
        "name": _trimmed(row["Name"]),
        "code": _trimmed(row["BuildingCode"]),
        "street": _trimmed(row["CivicNoAndStreet"]),
        "city": _trimmed(row["City"]),
    }


_OCCUPANCY = {"V": "VACANT", "L": "OCCUPIED", "O": "OCCUPIED"}


def unit_node(row: Row) -> Node:
    status = _trimmed(row["OccupancyStatus"])
    return {
        "sourceId": str(row["Id"]),
        "unitCode": _trimmed(row["UnitCode"]),
        "rooms": float(row["NumberOfRooms"]),
        "occupancy": _OCCUPANCY.get(status.upper(), "UNKNOWN") if status else None,
        "housingType": _trimmed(row["HousingType"]),
    }


def tenant_node(row: Row) -> Node:
    number = row["TenantNo"]
    return {
        "sourceId": str(row["Id"]),
        "firstName": _trimmed(row["FirstName"]),
        "lastName": _trimmed(row["LastName"]),
        "tenantNumber": str(int(number)) if float(number).is_integer() else str(number),
        "tenantType": _trimmed(row["TenantType"]),
    }


def landlord_node(row: Row) -> Node:
    address = [part for part in (_trimmed(row["CivicNoAndStreet"]), _trimmed(row["City"])) if part]
    return {
        "sourceId": str(row["Id"]),
        "name": _trimmed(row["Name"]),
        "billingAddress": ", ".join(address) or None,
        "billingPostalCode": _trimmed(row["PostalCode"]),
    }


def by_id(node: Node) -> int:
    return int(node["sourceId"])


@dataclass(frozen=True)
class Listing:
    nodes: list[Node]
    totals: list[int]
    """Each page's `totalCount`."""


async def every(
    client: Client, field: str, selection: str, *, arguments: str = "", first: int = 7
) -> Listing:
    """Pages through a list with `after` cursors until `hasNextPage` is false."""
    query = (
        f"query($after: String) {{ {field}(first: {first}, after: $after, "
        f'providers: ["primmo"]{arguments}) {{ totalCount pageInfo {{ hasNextPage endCursor }} '
        f"edges {{ node {{ {selection} }} }} }} }}"
    )
    nodes: list[Node] = []
    totals: list[int] = []
    after = None
    for _ in range(MAX_PAGES):
        connection = (await client.data(query, {"after": after}))[field]
        nodes.extend(edge["node"] for edge in connection["edges"])
        totals.append(connection["totalCount"])
        if not connection["pageInfo"]["hasNextPage"]:
            return Listing(nodes, totals)
        after = connection["pageInfo"]["endCursor"]
    raise AssertionError(f"{field} still had a next page after {MAX_PAGES} pages")


async def test_cap_holds_the_sandbox_world(cap: CapServer, sandbox: Sandbox) -> None:
    """Both servers are one world, padding and all, so a case means the same on each.
    Tenants may have been added to CAP by the cases before this one; none is lost."""
    async with reading(_cap(cap)) as on_cap, reading(_sandbox(sandbox)) as on_sandbox:
        for path in ("api/Buildings", "api/Units", "api/LedgerDivisions"):
            assert await on_cap.rows(path) == await on_sandbox.rows(path), path
        kept = {row["Id"]: row for row in await on_cap.rows("api/Tenants")}
        assert all(kept.get(row["Id"]) == row for row in await on_sandbox.rows("api/Tenants"))
        dates = {"StartDate": "2027-01-01", "EndDate": "2027-06-30"}
        assert await on_cap.rows("api/Units/ForRent", **dates) == await on_sandbox.rows(
            "api/Units/ForRent", **dates
        )


async def test_buildings_page_to_the_end_through_the_server_page_cap(primmo: Primmo) -> None:
    held = [building_node(row) for row in await primmo.direct.rows("api/Buildings")]

    listing = await every(primmo.gateway, "buildings", BUILDING, first=7)

    assert sorted(listing.nodes, key=by_id) == sorted(held, key=by_id)
    assert set(listing.totals) == {len(held)}
    assert len(listing.totals) == math.ceil(len(held) / 7)


_ORDERS = {
    "buildings": ("api/Buildings", "Name,Id"),
    "units": ("api/Units", "UnitCode,Id"),
    "tenants": ("api/Tenants", "LastName,FirstName,Id"),
    "landlords": ("api/LedgerDivisions", "Name,Id"),
}


@pytest.mark.parametrize("field", sorted(_ORDERS))
async def test_lists_come_in_the_servers_own_order_by_the_name_key(
    primmo: Primmo, field: str
) -> None:
    """The README's order: a provider's records by the type's name key as its server
    collates them (CAP and the sandbox by code point, so "Place Laurier" before "Place des
    Chênes"), then id; paging takes a prefix of that stream each time, never reordering it."""
    path, key = _ORDERS[field]
    held = await primmo.direct.rows(path, **{"$orderby": key})

    listing = await every(primmo.gateway, field, "sourceId", first=7)

    assert [by_id(node) for node in listing.nodes] == [row["Id"] for row in held]


@dataclass(frozen=True)
class FilterCase:
    field: str
    selection: str
    path: str
    node: Callable[[Row], Node]
    filter: str
    keeps: Callable[[Row], bool]


def _contains(text: str, *columns: str) -> Callable[[Row], bool]:
    return lambda row: any(text.casefold() in (row[column] or "").casefold() for column in columns)


def _rooms(low: float | None, high: float | None) -> Callable[[Row], bool]:
    def within(row: Row) -> bool:
        rooms = float(row["NumberOfRooms"])
        return (low is None or rooms >= low) and (high is None or rooms <= high)

    return within


FILTERS = {
    "building-name": FilterCase(
        "buildings",
        BUILDING,
        "api/Buildings",
        building_node,
        '{nameContains: "RÉSIDENCE"}',
        _contains("résidence", "Name"),
    ),
    "building-city": FilterCase(
        "buildings",
        BUILDING,
        "api/Buildings",
        building_node,
        '{cityContains: "trois"}',
        _contains("trois", "City"),
    ),
    "building-code": FilterCase(
        "buildings",
        BUILDING,
        "api/Buildings",
        building_node,
        f'{{code: "{A_CODE}"}}',
        lambda row: row["BuildingCode"].strip() == A_CODE,
    ),
    "unit-code": FilterCase(
        "units",
        UNIT,
        "api/Units",
        unit_node,
        '{unitCode: "101"}',
        lambda row: row["UnitCode"].strip() == "101",
    ),
    "unit-rooms-between": FilterCase(
        "units", UNIT, "api/Units", unit_node, "{rooms: {min: 4, max: 5}}", _rooms(4, 5)
    ),
    "unit-rooms-at-least": FilterCase(
        "units", UNIT, "api/Units", unit_node, "{rooms: {min: 5.5}}", _rooms(5.5, None)
    ),
    "unit-rooms-at-most": FilterCase(
        "units", UNIT, "api/Units", unit_node, "{rooms: {max: 2.5}}", _rooms(None, 2.5)
    ),
    "unit-vacant": FilterCase(
        "units",
        UNIT,
        "api/Units",
        unit_node,
        "{occupancy: VACANT}",
        lambda row: row["OccupancyStatus"].strip() == "V",
    ),
    "unit-occupied": FilterCase(
        "units",
        UNIT,
        "api/Units",
        unit_node,
        "{occupancy: OCCUPIED}",
        lambda row: row["OccupancyStatus"].strip() in ("L", "O"),
    ),
    "tenant-name": FilterCase(
        "tenants",
        TENANT,
        "api/Tenants",
        tenant_node,
        '{nameContains: "o\'neil"}',
        _contains("o'neil", "LastName", "FirstName"),
    ),
    "tenant-name-either": FilterCase(
        "tenants",
        TENANT,
        "api/Tenants",
        tenant_node,
        '{nameContains: "GAGN"}',
        _contains("gagn", "LastName", "FirstName"),
    ),
    "landlord-name": FilterCase(
        "landlords",
        LANDLORD,
        "api/LedgerDivisions",
        landlord_node,
        '{nameContains: "placements"}',
        _contains("placements", "Name"),
    ),
}


@pytest.mark.parametrize("case", FILTERS.values(), ids=list(FILTERS))
async def test_each_filter_returns_what_the_server_holds(primmo: Primmo, case: FilterCase) -> None:
    held = [case.node(row) for row in await primmo.direct.rows(case.path) if case.keeps(row)]

    listing = await every(
        primmo.gateway, case.field, case.selection, arguments=f", filter: {case.filter}"
    )

    assert held, "the case must select something to prove anything"
    assert sorted(listing.nodes, key=by_id) == sorted(held, key=by_id)
    assert set(listing.totals) == {len(held)}


NESTED = (
    '{ buildings(first: 5, providers: ["primmo"]) { edges { node { sourceId '
    f"units {{ {UNIT} tenants {{ {TENANT} }} }} }} }} }} }}"
)


async def test_nested_buildings_units_tenants_in_a_few_requests(primmo: Primmo) -> None:
    """Units come inside the buildings' response (`$expand`), all the tenants in one
    batched query: the buildings' pages (6 rows asked, to see past the 5th) plus the
    tenants' pages. With CAP's cap of 4 and seed 7 (20 tenants: five full pages, then the
    empty one CAP links to) that is 2 + 6 = 8 requests; 2 on the sandbox, which does not cap."""
    tables = await primmo.direct.tables()
    buildings = {str(row["Id"]): row for row in tables.buildings}

    data = await primmo.gateway.data(NESTED)

    edges = data["buildings"]["edges"]
    assert len(edges) == 5
    tenants = 0
    for edge in edges:
        building = buildings[edge["node"]["sourceId"]]
        units = sorted(edge["node"]["units"], key=by_id)
        held = sorted(tables.units_of(building), key=lambda row: row["Id"])
        assert [{k: v for k, v in unit.items() if k != "tenants"} for unit in units] == [
            unit_node(row) for row in held
        ]
        for unit, row in zip(units, held, strict=True):
            expected = [tenant_node(tenant) for tenant in tables.tenants_of(row)]
            assert sorted(unit["tenants"], key=by_id) == sorted(expected, key=by_id)
            tenants += len(expected)
    assert len(primmo.upstream.data()) == primmo.pages(6, top=True) + primmo.pages(tenants)


UPWARD = (
    '{ tenants(first: 6, providers: ["primmo"]) { edges { node { sourceId unit { sourceId '
    "building { sourceId landlord { sourceId } } } } } } }"
)


async def test_relations_upward_follow_the_padded_keys(primmo: Primmo) -> None:
    """Tenant to unit to building to landlord, each by Primmo's composite key: a batched
    query a level, each as many pages as its rows need, the units' cut in two by the 100
    nodes ASP.NET's OData takes (six units in five buildings, most of them named alone, at
    23 nodes each). With CAP's cap of 4 and seed 7 that is 2 + 3 + 2 + 2 = 9 requests; 5 on
    the sandbox."""
    tables = await primmo.direct.tables()
    tenants = {str(row["Id"]): row for row in tables.tenants}

    data = await primmo.gateway.data(UPWARD)

    edges = data["tenants"]["edges"]
    assert len(edges) == 6
    units, buildings, landlords = set(), set(), set()
    for edge in edges:
        tenant = tenants[edge["node"]["sourceId"]]
        (unit,) = [row for row in tables.units if _codes(row, 4) == _codes(tenant, 4)]
        (building,) = [row for row in tables.buildings if _codes(row, 3) == _codes(unit, 3)]
        (landlord,) = [row for row in tables.divisions if _codes(row, 2) == _codes(unit, 2)]
        assert edge["node"]["unit"] == {
            "sourceId": str(unit["Id"]),
            "building": {
                "sourceId": str(building["Id"]),
                "landlord": {"sourceId": str(landlord["Id"])},
            },
        }
        units.add(unit["Id"])
        buildings.add(building["Id"])
        landlords.add(landlord["Id"])
    unit_filters = {
        url.params["$filter"]
        for url in primmo.upstream.data()
        if url.path.endswith("/api/Units") and "$skiptoken" not in url.params
    }
    assert len(unit_filters) == 2
    named = [len(await primmo.direct.rows("api/Units", **{"$filter": f})) for f in unit_filters]
    assert sum(named) == len(units)
    assert len(primmo.upstream.data()) == (
        primmo.pages(7, top=True)
        + sum(primmo.pages(rows) for rows in named)
        + primmo.pages(len(buildings))
        + primmo.pages(len(landlords))
    )


NODE_FIELDS = (
    f"... on Building {{ {BUILDING} }} ... on Unit {{ {UNIT} }} "
    f"... on Tenant {{ {TENANT} }} ... on Landlord {{ {LANDLORD} }}"
)


async def test_node_fetches_each_type_by_its_global_id(primmo: Primmo) -> None:
    tables = await primmo.direct.tables()
    cases = [
        (Entity.BUILDING, tables.buildings[-1], building_node),
        (Entity.UNIT, tables.units[-1], unit_node),
        (Entity.TENANT, tables.tenants[-1], tenant_node),
        (Entity.LANDLORD, tables.divisions[-1], landlord_node),
    ]
    for entity, row, node in cases:
        data = await primmo.gateway.data(
            f"query($id: ID!) {{ node(id: $id) {{ {NODE_FIELDS} }} }}",
            {"id": encode_id(entity, "primmo", str(row["Id"]))},
        )
        assert data["node"] == node(row)


async def test_an_unknown_id_is_null_and_not_found(primmo: Primmo) -> None:
    body = await primmo.gateway.query(
        "query($id: ID!) { node(id: $id) { id } }",
        {"id": encode_id(Entity.TENANT, "primmo", "404404404")},
    )

    assert body["data"] == {"node": None}
    assert error_codes(body) == ["NOT_FOUND"]


async def test_nodes_come_back_in_the_order_asked_in_one_batch_a_type(primmo: Primmo) -> None:
    """Six tenants, more than the page cap, in one `Id in (...)` query and its pages, then
    a unit and a building: 2 + 1 + 1 = 4 requests on CAP, 3 on the sandbox."""
    tables = await primmo.direct.tables()
    tenants = tables.tenants[-6:]
    asked = [
        *((Entity.TENANT, row, tenant_node) for row in reversed(tenants)),
        (Entity.UNIT, tables.units[0], unit_node),
        (Entity.BUILDING, tables.buildings[0], building_node),
    ]

    data = await primmo.gateway.data(
        f"query($ids: [ID!]!) {{ nodes(ids: $ids) {{ {NODE_FIELDS} }} }}",
        {"ids": [encode_id(entity, "primmo", str(row["Id"])) for entity, row, _ in asked]},
    )

    assert data["nodes"] == [node(row) for _, row, node in asked]
    assert len(primmo.upstream.data()) == primmo.pages(6, top=True) + 1 + 1


@pytest.mark.parametrize(
    ("unit_filter", "keeps"),
    [("", lambda _row: True), (", filter: {rooms: {min: 3.5}}", _rooms(3.5, None))],
    ids=["all", "with-rooms"],
)
async def test_units_for_rent_are_the_servers_free_units(
    primmo: Primmo, unit_filter: str, keeps: Callable[[Row], bool]
) -> None:
    free = await primmo.direct.rows(
        "api/Units/ForRent", StartDate="2027-01-01", EndDate="2027-06-30"
    )
    held = [unit_node(row) for row in free if keeps(row)]

    listing = await every(
        primmo.gateway,
        "unitsForRent",
        UNIT,
        arguments=f', from: "2027-01-01", to: "2027-06-30"{unit_filter}',
    )

    assert held
    assert sorted(listing.nodes, key=by_id) == sorted(held, key=by_id)
    assert set(listing.totals) == {len(held)}


CREATE = (
    "mutation($input: CreateTenantInput!) { createTenant(input: $input) { "
    f"tenant {{ {TENANT} unit {{ sourceId }} }} errors {{ code message field }} }} }}"
)


async def test_a_created_tenant_is_filed_under_its_units_exact_codes(primmo: Primmo) -> None:
    """The unit's codes go back as Primmo gave them, padding and all: trimmed, they name
    no unit on a server that compares text exactly."""
    tables = await primmo.direct.tables()
    unit = tables.units[-1]

    data = await primmo.gateway.data(
        CREATE,
        {
            "input": {
                "unitId": encode_id(Entity.UNIT, "primmo", str(unit["Id"])),
                "firstName": "Zoé",
                "lastName": "Conformité",
            }
        },
    )

    payload = data["createTenant"]
    assert payload["errors"] == []
    created = payload["tenant"]
    (row,) = await primmo.direct.rows("api/Tenants", **{"$filter": f"Id eq {created['sourceId']}"})
    assert _codes(row, 4) == _codes(unit, 4)
    assert (row["FirstName"], row["LastName"]) == ("Zoé", "Conformité")
    assert created == {**tenant_node(row), "unit": {"sourceId": str(unit["Id"])}}
    again = await primmo.gateway.data(
        f"query($id: ID!) {{ node(id: $id) {{ {NODE_FIELDS} }} }}",
        {"id": encode_id(Entity.TENANT, "primmo", created["sourceId"])},
    )
    assert again["node"] == tenant_node(row)


async def test_landlords_and_their_buildings(primmo: Primmo) -> None:
    tables = await primmo.direct.tables()

    listing = await every(
        primmo.gateway, "landlords", f"{LANDLORD} buildings {{ sourceId }}", first=3
    )

    expected = [
        {
            **landlord_node(row),
            "buildings": sorted(
                (
                    {"sourceId": str(b["Id"])}
                    for b in tables.buildings
                    if _codes(b, 2) == _codes(row, 2)
                ),
                key=by_id,
            ),
        }
        for row in tables.divisions
    ]
    got = [{**node, "buildings": sorted(node["buildings"], key=by_id)} for node in listing.nodes]
    assert sorted(got, key=by_id) == sorted(expected, key=by_id)
    assert set(listing.totals) == {len(tables.divisions)}
