"""The Primmo sandbox behaves as the document says, as any client would see it over HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import date
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.clock import ManualClock
from gateway.config import Traffic
from gateway.connectors import odata
from gateway.connectors.base import ListRequest
from gateway.connectors.primmo import PrimmoConnector
from gateway.model import AvailableBetween, Entity, Selection
from gateway.sandbox import Sandbox
from gateway.sandbox.data import WorldSize
from gateway.sandbox.odata import (
    COLLATIONS,
    MAX_NODE_COUNT,
    EntitySet,
    ODataError,
    Server,
    evaluate,
    node_count,
    parse_options,
)
from gateway.sandbox.primmo import CREDENTIALS
from gateway.upstream.client import Upstream


@pytest.fixture
async def primmo(sandbox: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(sandbox.apps["primmo"])
    async with httpx.AsyncClient(transport=transport, base_url="http://primmo") as http:
        response = await http.post(
            "/api/Token",
            headers={"x-api-key": CREDENTIALS["api_key"]},
            json={"UserName": CREDENTIALS["username"], "Password": CREDENTIALS["password"]},
        )
        assert response.status_code == 200
        http.headers["Authorization"] = f"Bearer {response.json()}"
        yield http


async def _values(http: httpx.AsyncClient, path: str, **params: str) -> Any:
    """Encoded as OData's URL conventions say (`%20`): the sandbox refuses a `+` for a space."""
    response = await http.get(f"{path}?{odata.encode(params)}")
    assert response.status_code == 200, response.text
    return response.json()


async def test_option_names_are_case_insensitive_and_select_projects(
    primmo: httpx.AsyncClient,
) -> None:
    body = await _values(primmo, "/api/Buildings", **{"$Select": "Id,Name", "$TOP": "2"})

    assert len(body["value"]) == 2
    assert all(set(row) == {"Id", "Name"} for row in body["value"])


async def test_the_data_is_as_dirty_as_documented(primmo: httpx.AsyncClient) -> None:
    units = (await _values(primmo, "/api/Units", **{"$top": "5"}))["value"]
    tenants = (await _values(primmo, "/api/Tenants", **{"$top": "5"}))["value"]

    assert all(unit["UnitCode"].startswith(" ") for unit in units)
    assert all(unit["OccupancyStatus"] in ("V ", "L ") for unit in units)
    assert all(isinstance(tenant["TenantNo"], float) for tenant in tenants)
    buildings = (await _values(primmo, "/api/Buildings"))["value"]
    assert all(len(b["BuildingCode"]) == 10 for b in buildings)
    assert any(b["BuildingCode"].endswith(" ") for b in buildings)


async def test_filter_operators(primmo: httpx.AsyncClient) -> None:
    units = (await _values(primmo, "/api/Units"))["value"]
    ids = [unit["Id"] for unit in units]
    cases = {
        f"Id eq {ids[0]}": [ids[0]],
        f"Id in ({ids[0]}, {ids[1]})": ids[:2],
        f"Id ge {ids[1]} and Id le {ids[2]}": [i for i in ids if ids[1] <= i <= ids[2]],
        f"not (Id ne {ids[3]})": [ids[3]],
        f"Id lt {ids[1]} or Id gt {ids[-2]}": [i for i in ids if i < ids[1] or i > ids[-2]],
        "NumberOfRooms gt 5": [u["Id"] for u in units if u["NumberOfRooms"] > 5],
        "startswith(UnitCode, ' 1')": [u["Id"] for u in units if u["UnitCode"].startswith(" 1")],
        "contains(trim(UnitCode), '01')": [u["Id"] for u in units if "01" in u["UnitCode"]],
        "trim(OccupancyStatus) eq 'V'": [u["Id"] for u in units if u["OccupancyStatus"] == "V "],
        "HousingType eq null": [u["Id"] for u in units if u["HousingType"] is None],
    }
    for expression, expected in cases.items():
        body = await _values(primmo, "/api/Units", **{"$filter": expression, "$select": "Id"})
        assert sorted(row["Id"] for row in body["value"]) == sorted(expected), expression


async def test_orderby_top_skip_and_count(primmo: httpx.AsyncClient) -> None:
    everything = await _values(primmo, "/api/Tenants", **{"$orderby": "LastName desc,Id"})
    names = [row["LastName"].casefold() for row in everything["value"]]
    assert names == sorted(names, reverse=True)

    page = await _values(
        primmo,
        "/api/Tenants",
        **{"$orderby": "LastName desc,Id", "$skip": "3", "$top": "4", "$count": "true"},
    )
    assert page["value"] == everything["value"][3:7]
    assert page["@odata.count"] == len(everything["value"])


async def test_expand_with_nested_options(primmo: httpx.AsyncClient) -> None:
    body = await _values(
        primmo,
        "/api/Buildings",
        **{
            "$select": "Id,BuildingCode",
            "$top": "3",
            "$expand": "Units($select=Id,UnitCode;$filter=NumberOfRooms ge 3;$orderby=Id desc)",
        },
    )

    for building in body["value"]:
        assert set(building) == {"Id", "BuildingCode", "Units"}
        ids = [unit["Id"] for unit in building["Units"]]
        assert ids == sorted(ids, reverse=True)
        assert all(set(unit) == {"Id", "UnitCode"} for unit in building["Units"])


async def test_codes_compare_exactly_unless_the_server_ignores_trailing_spaces(
    primmo: httpx.AsyncClient,
) -> None:
    """Exact, as SQLite and PostgreSQL compare; SQL Server's padding-blind rule is a knob."""
    building = (await _values(primmo, "/api/Buildings", **{"$top": "1"}))["value"][0]
    padded = building["BuildingCode"]
    trimmed = padded.rstrip()
    assert padded != trimmed

    def units(code: str) -> Any:
        return _values(primmo, "/api/Units", **{"$filter": f"BuildingCode eq '{code}'"})

    exact = (await units(padded))["value"]
    assert exact and all(unit["BuildingCode"] == padded for unit in exact)
    assert (await units(trimmed))["value"] == []
    assert (await primmo.post("/_sandbox/odata?collation=sql_server")).status_code == 204
    assert (await units(trimmed))["value"] == exact


async def test_a_plus_in_a_filter_is_a_plus_sign_not_a_space(primmo: httpx.AsyncClient) -> None:
    """What httpx's form encoding sends, and what a standard server refuses."""
    response = await primmo.get("/api/Units", params={"$filter": "Id eq 1"})
    assert "+" in str(response.request.url)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"


async def _follow(http: httpx.AsyncClient, response: httpx.Response) -> httpx.Response:
    """The next page, its link read against the answer's context URL as OData says."""
    body = response.json()
    base = response.url.join(body["@odata.context"])
    return await http.get(base.join(body["@odata.nextLink"]))


async def test_pages_are_capped_behind_next_links_that_lead_to_the_same_rows(
    primmo: httpx.AsyncClient,
) -> None:
    options = {"$filter": "NumberOfRooms ge 3", "$orderby": "UnitCode,Id", "$count": "true"}
    whole = await _values(primmo, "/api/Units", **options)
    assert "@odata.nextLink" not in whole and len(whole["value"]) > 9

    assert (await primmo.post("/_sandbox/odata?max_page_size=4")).status_code == 204
    response = await primmo.get(f"/api/Units?{odata.encode(options)}")
    page = response.json()
    rows, pages = list(page["value"]), 1
    while "@odata.nextLink" in page:
        link = page["@odata.nextLink"]
        assert link.startswith("Units?") and "$skiptoken=" in link and "+" not in link
        response = await _follow(primmo, response)
        page = response.json()
        rows.extend(page["value"])
        pages += 1

    assert rows == whole["value"]
    assert pages == -(-len(rows) // 4)
    assert (await _values(primmo, "/api/Units", **options))["@odata.count"] == len(rows)


async def test_an_expanded_collection_is_capped_too_and_its_link_gives_the_rest(
    primmo: httpx.AsyncClient,
) -> None:
    options = {"$select": "Id", "$expand": "Units($select=Id,UnitCode;$orderby=UnitCode)"}
    whole = {
        row["Id"]: row["Units"]
        for row in (await _values(primmo, "/api/Buildings", **options))["value"]
    }

    larger = ",".join(str(key) for key, units in whole.items() if len(units) > 2)

    await primmo.post("/_sandbox/odata?max_page_size=2")
    capped = (
        await _values(
            primmo, "/api/Buildings", **{**options, "$top": "2", "$filter": f"Id in ({larger})"}
        )
    )["value"]

    assert len(capped) == 2
    for building in capped:
        units = building["Units"]
        assert len(units) == 2 and len(whole[building["Id"]]) > 2
        response = await primmo.get(building["Units@odata.nextLink"])
        units = [*units, *response.json()["value"]]
        while "@odata.nextLink" in response.json():
            response = await _follow(primmo, response)
            units = [*units, *response.json()["value"]]
        assert units == whole[building["Id"]]


async def test_count_without_a_body_count_comes_from_the_count_segment(
    primmo: httpx.AsyncClient,
) -> None:
    await primmo.post("/_sandbox/odata?counts=false")
    filtered = {"$filter": "NumberOfRooms ge 3"}

    body = await _values(primmo, "/api/Units", **filtered, **{"$count": "true"})
    response = await primmo.get(f"/api/Units/$count?{odata.encode(filtered)}")

    assert "@odata.count" not in body
    assert response.status_code == 200 and response.text == str(len(body["value"]))


async def test_metadata_describes_exactly_the_sets_and_properties_served(
    primmo: httpx.AsyncClient,
) -> None:
    assert (await primmo.post("/_sandbox/modules?FinancialStatements=true")).status_code == 200
    response = await primmo.get("/api/$metadata")
    assert response.headers["content-type"].startswith("application/xml")
    root = ElementTree.fromstring(response.content)
    edm = "{http://docs.oasis-open.org/odata/ns/edm}"
    types = {
        entity.get("Name"): {prop.get("Name") for prop in entity.iter(f"{edm}Property")}
        for entity in root.iter(f"{edm}EntityType")
    }
    sets = {item.get("Name"): item.get("EntityType") for item in root.iter(f"{edm}EntitySet")}

    assert set(sets) == {
        "Buildings",
        "Units",
        "Tenants",
        "Leases",
        "ServiceCalls",
        "ServiceCallDetails",
        "Suppliers",
        "Invoices",
        "FinancialStatements",
        "AccountsReceivable",
        "LeasePriceChanges",
        "LedgerDivisions",
    }
    for name, type_name in sets.items():
        (row, *_) = (await _values(primmo, f"/api/{name}", **{"$top": "1"}))["value"]
        assert set(row) == types[str(type_name).removeprefix("Primmo.")], name


@pytest.mark.parametrize(
    "params",
    [
        {"$filter": "Id eq"},
        {"$filter": "Nope eq 1"},
        {"$filter": "Name gt 3"},
        {"$select": "Id,Nope"},
        {"$orderby": "Id sideways"},
        {"$top": "-1"},
        {"$skip": "many"},
        {"$count": "maybe"},
        {"$expand": "Units($select=Id"},
        {"$expand": "Tenants"},
        {"$search": "x"},
    ],
)
async def test_malformed_options_get_an_odata_error_body(
    primmo: httpx.AsyncClient, params: dict[str, str]
) -> None:
    response = await primmo.get("/api/Buildings", params=params)

    assert response.status_code == 400
    assert set(response.json()["error"]) == {"code", "message"}


async def test_tokens_are_required_and_expire_after_24_hours(
    primmo: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    assert (await primmo.get("/api/Buildings", headers={"Authorization": ""})).status_code == 401
    assert (await primmo.get("/api/Buildings")).status_code == 200

    sandbox.clock.advance(24 * 3600)  # type: ignore[attr-defined]

    response = await primmo.get("/api/Buildings")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "Unauthorized"


async def test_token_endpoint_rejects_a_wrong_key_or_password(sandbox: Sandbox) -> None:
    transport = httpx.ASGITransport(sandbox.apps["primmo"])
    async with httpx.AsyncClient(transport=transport, base_url="http://primmo") as http:
        wrong_key = await http.post(
            "/api/Token", headers={"x-api-key": "nope"}, json={"UserName": "a", "Password": "b"}
        )
        wrong_password = await http.post(
            "/api/Token",
            headers={"x-api-key": CREDENTIALS["api_key"]},
            json={"UserName": CREDENTIALS["username"], "Password": "nope"},
        )
        not_json = await http.post(
            "/api/Token", headers={"x-api-key": CREDENTIALS["api_key"]}, content=b"<xml/>"
        )
    assert (wrong_key.status_code, wrong_password.status_code, not_json.status_code) == (
        401,
        401,
        400,
    )


async def test_units_for_rent_needs_a_valid_range(primmo: httpx.AsyncClient) -> None:
    missing = await primmo.get("/api/Units/ForRent")
    backwards = await primmo.get(
        "/api/Units/ForRent", params={"StartDate": "2027-02-01", "EndDate": "2027-01-01"}
    )
    assert (missing.status_code, backwards.status_code) == (400, 400)


async def test_post_tenant_validates_then_creates(primmo: httpx.AsyncClient) -> None:
    unit = (await _values(primmo, "/api/Units", **{"$top": "1"}))["value"][0]

    incomplete = await primmo.post("/api/Tenants", json={"LastName": "Roy"})
    no_unit = await primmo.post(
        "/api/Tenants",
        json={
            **{k: unit[k] for k in ("CompanyNo", "DivisionNo", "BuildingCode")},
            "UnitCode": "nowhere",
            "LastName": "Roy",
        },
    )
    created = await primmo.post(
        "/api/Tenants",
        json={
            **{k: unit[k] for k in ("CompanyNo", "DivisionNo", "BuildingCode", "UnitCode")},
            "LastName": "Nouveau",
            "FirstName": "Léa",
        },
    )

    assert (incomplete.status_code, no_unit.status_code, created.status_code) == (400, 400, 201)
    found = await _values(primmo, "/api/Tenants", **{"$filter": "LastName eq 'Nouveau'"})
    assert [row["Id"] for row in found["value"]] == [created.json()["Id"]]


async def test_financial_statements_are_forbidden_without_the_module(
    primmo: httpx.AsyncClient,
) -> None:
    assert (await primmo.get("/api/FinancialStatements")).status_code == 403


async def test_the_counter_and_admin_routes(primmo: httpx.AsyncClient, sandbox: Sandbox) -> None:
    await primmo.get("/api/Units")
    counted = (await primmo.get("/_sandbox/requests")).json()
    assert {"method": "GET", "path": "/api/Units", "count": 1} in counted["requests"]

    assert (await primmo.post("/_sandbox/revoke-tokens")).status_code == 204
    assert (await primmo.get("/api/Units")).status_code == 401
    assert sandbox.states["primmo"].count("GET", "/api/Units") == 2


def test_a_world_large_enough_for_ten_thousand_primmo_units_has_unique_codes() -> None:
    """The bench's scale run asks for 10,000 units from one provider; building codes
    collide often at that size, and the collision rule once retried the same code forever."""
    size = WorldSize(buildings=7500, units_per_building=(4, 4))
    world = Sandbox(size=size).world
    primmo = {building.id for building in world.buildings_of("primmo")}

    codes = [building.code for building in world.buildings]
    twins = {second for kind, _, second in world.same_as if kind == "building"}
    neighbours = [code for code in codes if code.startswith("NB")]
    originals = [b for b in world.buildings if b.id not in twins and b.code not in neighbours]
    assert len(set(codes)) == len(codes)
    assert len(originals) == 7500 + size.listed_buildings, "as asked, and MyCRM's listed ones"
    assert len(codes) == len(originals) + len(twins) + len(neighbours) > len(originals), (
        "and the overlaps' own: twins (paired in same_as) and neighbours (coded NB...)"
    )
    assert sum(unit.building_id in primmo for unit in world.units) >= 10_000
    assert all(len(world.units_in(building.id)) == 4 for building in world.buildings)


_ROWS = [
    {"Id": n, "Company": n % 3, "Code": f"B{n % 4}" + " " * (n % 2), "Rooms": 2.5 + n % 3}
    for n in range(40)
]


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_LITERALS = {
    "Company": st.integers(0, 3).map(str),
    "Code": st.sampled_from(["B0", "B1", "B1 ", "B2", "b3", "B9", "O'Brien"]).map(_quoted),
    "Rooms": st.sampled_from([2.5, 3.5, 4.5, 9.0]).map(str),
    "Id": st.integers(0, 45).map(str),
}
_NAMES = st.sets(st.sampled_from(sorted(_LITERALS)), min_size=1, max_size=3).map(sorted)


@st.composite
def _batches(draw: st.DrawFn) -> list[list[tuple[str, str]]]:
    """Disjunctions of conjunctions of `Name eq literal`: most of one shape (a batch of
    keys, which the sandbox answers by index), some mixed (answered clause by clause)."""
    names = draw(_NAMES)
    mixed = draw(st.booleans())
    return [
        [(name, draw(_LITERALS[name])) for name in (draw(_NAMES) if mixed else names)]
        for _ in range(draw(st.integers(1, 6)))
    ]


@given(_batches(), st.booleans())
def test_a_batch_of_keys_selects_what_clause_by_clause_equality_selects(
    batch: list[list[tuple[str, str]]], literal_first: bool
) -> None:
    text = " or ".join(
        "(" + " and ".join(f"{v} eq {n}" if literal_first else f"{n} eq {v}" for n, v in c) + ")"
        for c in batch
    )
    entity_set = EntitySet(frozenset(_ROWS[0]))
    server = Server(collation=COLLATIONS["sql_server"])

    found = evaluate(_ROWS, parse_options([("$filter", text)]), entity_set, server).rows

    def value(literal: str) -> object:
        if literal.startswith("'"):
            return literal[1:-1].replace("''", "'").rstrip()
        return float(literal) if "." in literal else int(literal)

    def equal(row: dict[str, object], name: str, literal: str) -> bool:
        held = row[name]
        return (held.rstrip() if isinstance(held, str) else held) == value(literal)

    expected = [r for r in _ROWS if any(all(equal(r, n, v) for n, v in c) for c in batch)]
    assert [row["Id"] for row in found] == [row["Id"] for row in expected], text


_FOR_RENT = {"StartDate": "2027-01-01", "EndDate": "2027-03-31"}


async def test_units_for_rent_pages_behind_next_links_that_lead_to_the_rest(
    primmo: httpx.AsyncClient,
) -> None:
    whole = (await _values(primmo, "/api/Units/ForRent", **_FOR_RENT))["value"]
    assert len(whole) > 6

    assert (await primmo.post("/_sandbox/odata?max_page_size=3")).status_code == 204
    response = await primmo.get(f"/api/Units/ForRent?{odata.encode(_FOR_RENT)}")
    rows = list(response.json()["value"])
    while "@odata.nextLink" in response.json():
        response = await _follow(primmo, response)
        assert response.status_code == 200, response.url
        rows.extend(response.json()["value"])

    assert rows == whole


async def test_the_connector_reads_every_unit_for_rent_once_from_capped_pages(
    primmo: httpx.AsyncClient, sandbox: Sandbox, clock: ManualClock
) -> None:
    free = {
        row["Id"] for row in (await _values(primmo, "/api/Units/ForRent", **_FOR_RENT))["value"]
    }
    await primmo.post("/_sandbox/odata?max_page_size=3&counts=false")
    sandbox.reset_counters()
    upstream = Upstream(
        name="primmo",
        base_url="http://127.0.0.1/sandbox/primmo",
        credentials=Sandbox.credentials("primmo"),
        traffic=Traffic(),
        clock=clock,
        transport=sandbox.transport("primmo"),
    )
    available = AvailableBetween(date(2027, 1, 1), date(2027, 3, 31))
    request = ListRequest({"available": available}, Selection(), limit=1000, count=True)
    try:
        page = await PrimmoConnector.connect(upstream).page(Entity.UNIT, request)
    finally:
        await upstream.aclose()

    read = [record.source_id for record in page.records]
    assert sorted(read) == sorted(str(unit) for unit in free) and len(set(read)) == len(read)
    assert page.exhausted and page.total == len(free)
    assert sandbox.states["primmo"].count("GET", "/api/Units/ForRent") == -(-len(free) // 3)


async def test_endswith_compares_the_text_as_stored_trailing_spaces_included(
    primmo: httpx.AsyncClient,
) -> None:
    buildings = (await _values(primmo, "/api/Buildings", **{"$select": "Id,BuildingCode"}))["value"]
    padded = next(b["BuildingCode"] for b in buildings if b["BuildingCode"].endswith(" "))
    for part in (padded.rstrip()[-2:], " "):
        body = await _values(
            primmo, "/api/Buildings", **{"$filter": f"endswith(BuildingCode, '{part}')"}
        )
        expected = [b["Id"] for b in buildings if b["BuildingCode"].endswith(part)]
        assert [row["Id"] for row in body["value"]] == expected, part


@pytest.mark.parametrize(
    "expression",
    [
        "Id eq '1'",
        "'1' eq Id",
        "Id ne '1'",
        "Id in ('1', '2')",
        "(Id eq '1') or (Id eq '2')",
        "(CompanyNo eq '1' and BuildingCode eq 'B1') or (CompanyNo eq 2 and BuildingCode eq 2)",
        "UnitCode eq 3",
        "NumberOfRooms eq true",
        "trim(UnitCode) eq 5",
        "5 eq tolower(UnitCode)",
        "toupper(UnitCode) in (1,2)",
        "length(UnitCode) eq 'x'",
        "length(UnitCode) gt '3'",
        "contains(UnitCode,'1') eq 'yes'",
        "tolower(Id) eq 'x'",
        "length(NumberOfRooms) eq 1",
        "contains(UnitCode,1)",
        "startswith(Id,'1')",
        "Id eq -1 and startswith(Id,'1')",
        "UnitCode eq Id",
        "UnitCode",
        "trim(UnitCode)",
        "length(UnitCode)",
        "UnitCode and Id eq 1",
        "not length(UnitCode)",
    ],
)
async def test_operands_of_another_type_are_refused_as_real_servers_refuse_them(
    primmo: httpx.AsyncClient, expression: str
) -> None:
    """Before a row is read (`Id eq -1 and …` reads none), as ASP.NET's OData binds a
    filter: a function's result has its type (`trim` text, `length` Edm.Int32), its
    arguments must be text, and the filter and the operands of `and`, `or`, `not` are
    booleans."""
    response = await primmo.get(f"/api/Units?{odata.encode({'$filter': expression})}")

    assert response.status_code == 400, expression
    assert response.json()["error"]["code"] == "BadRequest"


async def test_equality_within_a_type_and_with_null_is_answered(
    primmo: httpx.AsyncClient,
) -> None:
    for expression in (
        "NumberOfRooms eq 3",
        "Id eq 3.0",
        "HousingType eq null",
        "Id ne null",
        "trim(UnitCode) eq '101'",
        "length(trim(UnitCode)) eq 3",
        "length(UnitCode) ge NumberOfRooms",
        "tolower(trim(UnitCode)) in ('101','102')",
        "contains(UnitCode,'1') eq true",
        "trim(HousingType) eq null",
    ):
        await _values(primmo, "/api/Units", **{"$filter": expression})


async def test_units_for_rent_has_a_count_segment(primmo: httpx.AsyncClient) -> None:
    rows = (await _values(primmo, "/api/Units/ForRent", **_FOR_RENT))["value"]

    response = await primmo.get(f"/api/Units/ForRent/$count?{odata.encode(_FOR_RENT)}")

    assert response.status_code == 200 and response.text == str(len(rows))


@pytest.mark.parametrize("option", ["$top", "$skip", "$select", "$expand", "$orderby"])
async def test_the_count_segment_refuses_options_it_cannot_honour(
    primmo: httpx.AsyncClient, option: str
) -> None:
    value = {"$top": "1", "$skip": "1", "$select": "Id", "$expand": "Units", "$orderby": "Id"}
    response = await primmo.get(f"/api/Buildings/$count?{option}={value[option]}")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"


async def test_a_query_name_that_is_not_utf8_is_refused(primmo: httpx.AsyncClient) -> None:
    response = await primmo.get("/api/Units?%FF%FE=1")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"


async def test_a_module_the_client_has_not_bought_is_403_until_it_has(
    primmo: httpx.AsyncClient,
) -> None:
    before = await primmo.get("/api/FinancialStatements", params={"$top": "1"})
    await primmo.post("/_sandbox/modules?FinancialStatements=true")
    after = await primmo.get("/api/FinancialStatements", params={"$top": "1"})
    refused = await primmo.post("/_sandbox/modules?Everything=true")

    assert before.status_code == 403
    assert before.json()["error"]["code"] == "Forbidden"
    assert after.status_code == 200 and after.json()["value"]
    assert refused.status_code == 400


def _running_lease(sandbox: Sandbox) -> tuple[int, date]:
    row = next(r for r in sandbox.states["primmo"].records.leases if r["Status"].strip() == "A")
    return int(row["Id"]), date.fromisoformat(row["EndDate"])


@pytest.mark.parametrize(
    ("content_type", "amount", "status"),
    [
        ("application/json", "1e3", 400),
        ("application/json", "1000", 400),
        ("application/json", 1000, 201),
        ("application/json;IEEE754Compatible=true", "1000", 201),
        ("application/json;IEEE754Compatible=true", 1000, 400),
    ],
)
async def test_a_decimal_is_a_number_or_with_ieee754compatible_a_string(
    primmo: httpx.AsyncClient, sandbox: Sandbox, content_type: str, amount: object, status: int
) -> None:
    """OData JSON §3.2, as an ASP.NET OData server holds to it: an Edm.Decimal is a JSON
    number, and a string only when the request says `IEEE754Compatible=true`, which then
    wants it as a string."""
    lease, end = _running_lease(sandbox)
    body = {"LeaseId": lease, "EffectiveDate": end.isoformat(), "Amount": amount}

    answer = await primmo.post(
        "/api/LeasePriceChanges",
        content=json.dumps(body),
        headers={"Content-Type": content_type},
    )

    assert answer.status_code == status, answer.text
    if status == 400:
        assert "Amount" in answer.json()["error"]["message"]


@pytest.mark.parametrize(
    ("name", "value"), [("LeaseId", "7"), ("EffectiveDate", 20261201), ("LeaseId", True)]
)
async def test_a_property_of_another_type_is_refused_naming_it(
    primmo: httpx.AsyncClient, sandbox: Sandbox, name: str, value: object
) -> None:
    lease, end = _running_lease(sandbox)
    body = {"LeaseId": lease, "EffectiveDate": end.isoformat(), "Amount": 1000, name: value}

    answer = await primmo.post("/api/LeasePriceChanges", json=body)

    assert answer.status_code == 400 and name in answer.json()["error"]["message"]


async def _refused(
    http: httpx.AsyncClient,
    target: str,
    headers: dict[str, str] | None = None,
    status: int = 400,
    code: str = "BadRequest",
) -> httpx.Response:
    """`target` asked for as written (no client re-encoding), refused in an OData error body."""
    response = await http.get(target, headers=headers)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    return response


@pytest.mark.parametrize(
    "target",
    [
        "/api/Units?$filter=UnitCode%20eq%20'%ZZ'",
        "/api/Units?$filter=UnitCode%20eq%20'%'",
        "/api/Units?$filter=UnitCode%20eq%20'%2'",
        "/api/Units?custom%G1=1",
        "/api/Units/ForRent?StartDate=2026-11-01&EndDate=2026-12-01&note=100%",
    ],
)
async def test_a_percent_sign_not_followed_by_two_hex_digits_is_refused(
    primmo: httpx.AsyncClient, target: str
) -> None:
    """RFC 3986's `pct-encoded = "%" HEXDIG HEXDIG`: anything else is not a URL, and a real
    server answers 400 rather than guess (CAP: "Parsing URL failed")."""
    await _refused(primmo, target)


@pytest.mark.parametrize(
    "query",
    [
        "$select=Id,%20UnitCode",
        "$select=Id,,UnitCode",
        "$select=Id,",
        "$select=,Id",
        "$select=%20Id",
        "$select=Id%20",
        "$orderby=UnitCode,%20Id",
        "$orderby=%20UnitCode",
        "$orderby=UnitCode%20",
        "$orderby=UnitCode,",
        "$orderby=UnitCode,,Id",
        "$orderby=UnitCode%20DESC",
    ],
)
async def test_a_list_option_with_a_blank_or_an_empty_item_is_refused(
    primmo: httpx.AsyncClient, query: str
) -> None:
    """`select = "$select" EQ selectItem *( COMMA selectItem )`, and `$orderby` alike: no
    whitespace around a comma, no empty item (CAP refuses `Id,,UnitCode` and `Id,`). The
    order word is `asc` or `desc` as CAP and ASP.NET's OData read it, in lower case."""
    await _refused(primmo, f"/api/Units?{query}")


@pytest.mark.parametrize(
    "query",
    [
        "$select=Id%2CUnitCode",
        "$select=*",
        "$orderby=UnitCode%20%20desc,Id",
        "$orderby=UnitCode%09desc,Id%20asc",
        "$filter=Id%20in%20(%201,%202%20)",
    ],
)
async def test_what_the_abnf_allows_in_a_list_is_answered(
    primmo: httpx.AsyncClient, query: str
) -> None:
    """`COMMA = "," / "%2C"`, `RWS` is any run of blanks and tabs, and an `in` list has
    `BWS` around its items: a server must take these."""
    response = await primmo.get(f"/api/Units?{query}")

    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "query",
    [
        "$top=%2B1",
        "$top=1_0",
        "$top=%201",
        "$top=1%20",
        "$top=%D9%A1",
        "$top=",
        "$skip=-0",
        "$skip=%2B0",
        "$count=TRUE",
        "$count=True",
        "$count=%20true",
        "$count=false%20",
    ],
)
async def test_a_number_or_a_boolean_not_written_as_the_abnf_writes_it_is_refused(
    primmo: httpx.AsyncClient, query: str
) -> None:
    """`top = "$top" EQ 1*DIGIT` (ASCII digits: no sign, blank, `_` or other script's
    digits, all of which `int()` takes), and `$count` is `true` or `false` with no blank
    (`EQ boolean`), in lower case as ASP.NET's OData and CAP read it (both refuse `True`)."""
    await _refused(primmo, f"/api/Units?{query}")


async def test_leading_zeros_are_digits_too(primmo: httpx.AsyncClient) -> None:
    body = await _values(primmo, "/api/Units", **{"$top": "002", "$skip": "01", "$count": "false"})

    assert len(body["value"]) == 2 and "@odata.count" not in body


@pytest.mark.parametrize(
    "expand",
    [
        "%20Units",
        "Units%20",
        "Units%20($select=Id)",
        "Units(%20$select=Id)",
        "Units($select%20=Id)",
        "Units($select=Id;%20$top=1)",
        "%20Units%20(%20$select%20=Id)",
        "Units,",
        "Units()",
        "Units($top=1;)",
        "Units($top=1;$top=2)",
        "Units($select=Id;$skiptoken=1)",
        "Units($levels=2)",
        "Units($search=x)",
    ],
)
async def test_an_expand_the_abnf_does_not_allow_or_the_sandbox_cannot_honour_is_refused(
    primmo: httpx.AsyncClient, expand: str
) -> None:
    """`expandItem = navigationProperty [ OPEN expandOption *( SEMI expandOption ) CLOSE ]`
    with no blank anywhere (CAP refuses `Units($select%20=Id)`, not all of them) and at least
    one option in parentheses; an option at most once, as at the top; `expandOption` does
    not include `$skiptoken`. `$levels` and `$search` it does include, and the sandbox
    refuses them as it refuses `$search` at the top rather than ignore them."""
    await _refused(primmo, f"/api/Buildings?$expand={expand}")


async def test_a_nested_count_is_given_beside_the_expanded_collection(
    primmo: httpx.AsyncClient,
) -> None:
    """`$count` is an `expandOption` (OData JSON §15: `Units@odata.count`), as CAP writes it."""
    whole = await _values(primmo, "/api/Buildings", **{"$select": "Id", "$expand": "Units"})
    counted = await _values(
        primmo,
        "/api/Buildings",
        **{"$select": "Id", "$expand": "Units($select=Id;$count=true;$top=1)"},
    )
    filtered = await _values(
        primmo,
        "/api/Buildings",
        **{"$select": "Id", "$expand": "Units($filter=NumberOfRooms ge 3;$count=true;$top=0)"},
    )

    for full, one, some in zip(whole["value"], counted["value"], filtered["value"], strict=True):
        assert one["Units@odata.count"] == len(full["Units"])
        assert one["Units"] == [{"Id": unit["Id"]} for unit in full["Units"][:1]]
        rooms = [unit for unit in full["Units"] if unit["NumberOfRooms"] >= 3]
        assert some["Units@odata.count"] == len(rooms) and some["Units"] == []
    assert any(b["Units@odata.count"] > 1 for b in counted["value"])
    assert all("Units@odata.count" not in b for b in whole["value"])


async def test_every_odata_answer_says_its_version(primmo: httpx.AsyncClient) -> None:
    """OData 4.01 Part 1 §8.1.5: a service MUST say `OData-Version` on its answers, its
    refusals and its count and metadata documents included."""
    unit = (await _values(primmo, "/api/Units", **{"$top": "1"}))["value"][0]
    tenant = {
        **{name: unit[name] for name in ("CompanyNo", "DivisionNo", "BuildingCode", "UnitCode")},
        "LastName": "Roy",
    }
    answers = [
        await primmo.get("/api/Units?$top=1"),
        await primmo.get("/api/Units?$top=x"),
        await primmo.get("/api/Units/$count"),
        await primmo.get("/api/$metadata"),
        await primmo.get(f"/api/Units/ForRent?{odata.encode(_FOR_RENT)}"),
        await primmo.get("/api/Suppliers"),
        await primmo.get("/api/FinancialStatements"),
        await primmo.post("/api/Tenants", json=tenant),
    ]

    assert [answer.status_code for answer in answers] == [200, 400, 200, 200, 200, 200, 403, 201]
    assert all(answer.headers.get("OData-Version") == "4.0" for answer in answers)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OData-Version", "5.0"),
        ("OData-Version", "3.0"),
        ("OData-Version", "4"),
        ("OData-Version", "4.1"),
        ("OData-MaxVersion", "3.0"),
        ("OData-MaxVersion", "four"),
    ],
)
async def test_a_version_the_service_does_not_speak_is_refused(
    primmo: httpx.AsyncClient, name: str, value: str
) -> None:
    """`odata-version = "4.0" [ oneToNine ]`, of which the service speaks 4.0 and 4.01; an
    `OData-MaxVersion` below 4.0 asks for an answer it cannot give."""
    response = await _refused(primmo, "/api/Units?$top=1", {name: value})

    assert response.headers["OData-Version"] == "4.0"


@pytest.mark.parametrize(
    ("path", "accept"),
    [
        ("/api/Units?$top=1", "application/xml"),
        ("/api/Units?$top=1", "text/html, application/atom+xml"),
        ("/api/Units?$top=1", "application/json;odata.metadata=minimal;foo=bar"),
        ("/api/Units?$top=1", "application/json;odata.metadata=full"),
        ("/api/Units?$top=1", "application/json;IEEE754Compatible=maybe"),
        ("/api/Units?$top=1", "application/json;charset=latin1"),
        ("/api/Units?$top=1", "application/json;q=0"),
        ("/api/Units/$count", "application/json"),
        ("/api/$metadata", "application/json"),
    ],
)
async def test_an_accept_the_service_cannot_answer_is_406(
    primmo: httpx.AsyncClient, path: str, accept: str
) -> None:
    """A media type it does not write, or JSON with a format parameter it does not know or
    a value it does not serve (`odata.metadata=full`: the sandbox writes `minimal` and
    `none`), is not answered in another format as if asked."""
    await _refused(primmo, path, {"Accept": accept}, status=406, code="NotAcceptable")


@pytest.mark.parametrize(
    "headers",
    [{"Accept": "application/xml"}, {"OData-Version": "3.0"}],
)
async def test_a_request_without_a_token_is_401_before_its_format_is_negotiated(
    primmo: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    """ASP.NET authenticates in its middleware, before the OData formatter looks at `Accept`
    or `OData-Version`: a request wrong on both is told it lacks a token."""
    del primmo.headers["Authorization"]

    await _refused(primmo, "/api/Units?$top=1", headers, status=401, code="Unauthorized")


@pytest.mark.parametrize(
    ("path", "accept"),
    [
        ("/api/Units?$top=1", "application/json;odata.metadata=minimal"),
        ("/api/Units?$top=1", "application/json; odata.metadata=minimal; odata.streaming=true"),
        ("/api/Units?$top=1", "application/json;metadata=minimal;charset=UTF-8"),
        ("/api/Units?$top=1", "application/xml, application/json;q=0.5"),
        ("/api/Units?$top=1", "application/*"),
        ("/api/Units/$count", "text/plain"),
        ("/api/Units/$count", "*/*"),
        ("/api/$metadata", "application/xml"),
    ],
)
async def test_an_accept_the_service_can_answer_is_answered(
    primmo: httpx.AsyncClient, path: str, accept: str
) -> None:
    response = await primmo.get(path, headers={"Accept": accept})

    assert response.status_code == 200, response.text


async def test_ieee754compatible_writes_decimals_and_counts_as_strings(
    primmo: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    """OData JSON §3.2: with `IEEE754Compatible=true` Edm.Decimal and Edm.Int64 values (a
    count is one) are strings, in the number's own digits, and the answer's media type says
    so; without it they are numbers. The Primmo connector never asks for it and reads both."""
    target = "/api/AccountsReceivable?$top=5&$count=true&$select=Id,Balance,PastDue"
    plain = await primmo.get(target)
    asked = "application/json;odata.metadata=minimal;IEEE754Compatible=true"
    strings = await primmo.get(target, headers={"Accept": asked})

    assert "IEEE754Compatible=true" in strings.headers["content-type"]
    assert "IEEE754Compatible" not in plain.headers["content-type"]
    assert strings.json()["@odata.count"] == str(plain.json()["@odata.count"])
    for number, text in zip(plain.json()["value"], strings.json()["value"], strict=True):
        assert isinstance(number["Balance"], float) and isinstance(text["Id"], int)
        assert text == {
            **number,
            "Balance": json.dumps(number["Balance"]),
            "PastDue": json.dumps(number["PastDue"]),
        }

    nested = await primmo.get(
        "/api/Buildings?$top=2&$select=Id&$expand=Units($select=Id;$count=true)",
        headers={"Accept": asked},
    )
    assert all(isinstance(b["Units@odata.count"], str) for b in nested.json()["value"])

    lease, end = _running_lease(sandbox)
    written = await primmo.post(
        "/api/LeasePriceChanges",
        json={"LeaseId": lease, "EffectiveDate": end.isoformat(), "Amount": 1000},
        headers={"Accept": asked},
    )
    assert written.status_code == 201 and written.json()["Amount"] == "1000"


async def test_no_metadata_leaves_the_context_out_and_links_absolute(
    primmo: httpx.AsyncClient,
) -> None:
    """`odata.metadata=none`: no `@odata.context`, so a next link cannot be read against it
    and is written whole (below `Units/ForRent`, a relative one would lead elsewhere)."""
    accept = {"Accept": "application/json;odata.metadata=none"}
    target = f"/api/Units/ForRent?{odata.encode(_FOR_RENT)}"
    whole = (await _values(primmo, "/api/Units/ForRent", **_FOR_RENT, **{"$top": "7"}))["value"]
    await primmo.post("/_sandbox/odata?max_page_size=3")

    response = await primmo.get(f"{target}&$top=7", headers=accept)
    rows = list(response.json()["value"])
    while "@odata.nextLink" in response.json():
        assert "@odata.context" not in response.json()
        response = await primmo.get(response.json()["@odata.nextLink"], headers=accept)
        rows.extend(response.json()["value"])

    assert "odata.metadata=none" in response.headers["content-type"]
    assert rows == whole and len(rows) == 7


_TWENTY = " or ".join(f"Id eq {number}" for number in range(20))
"""99 nodes as ASP.NET's OData counts them: each comparison four (itself, the property, the
`$it` it is read from, the constant), each `or` one."""


@pytest.mark.parametrize(
    ("text", "nodes"),
    [(f"not ({_TWENTY})", 100), (f"{_TWENTY} or UnitCode in ('a','b','c')", 101)],
)
def test_a_filter_over_aspnets_node_limit_is_refused_as_aspnet_refuses_it(
    text: str, nodes: int
) -> None:
    """ASP.NET's OData takes a `$filter` of 100 nodes (`MaxNodeCount`) and refuses one more:
    an `in` is one node however long its list."""
    if nodes <= MAX_NODE_COUNT:
        tree = parse_options([("$filter", text)]).filter
        assert tree is not None and node_count(tree) == nodes
    else:
        with pytest.raises(ODataError, match="The node count limit of '100' has been exceeded"):
            parse_options([("$filter", text)])


def test_a_property_read_from_a_lambdas_variable_is_two_nodes() -> None:
    """ASP.NET counts `any` (1), its source `Units` read from `$it` (2), the comparison (1),
    `u/UnitCode` read from the variable `u` (2) and the constant (1)."""
    tree = parse_options([("$filter", "Units/any(u: u/UnitCode eq 'x')")]).filter

    assert tree is not None and node_count(tree) == 7
