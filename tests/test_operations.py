"""Maintenance requests, work orders and vendors as nodes: by id at either provider, at the root
with filters pushed down, and from units, tenants and buildings at the API's minimum of
requests, each relation agreeing with its inverse and with the provider's books."""

from __future__ import annotations

from datetime import datetime

import pytest

from gateway.model import Entity
from gateway.sandbox.primmo import MAX_QUERY_BYTES
from schema.ids import encode_id
from tests.conftest import Client
from tests.test_ledger import LEDGER

REQUEST = (
    "id provider sourceId title description priority status reportedAt scheduledFor completedAt"
)


async def test_each_type_is_found_again_by_its_id_at_either_provider(client: Client) -> None:
    listed = await client.data(
        "{ maintenanceRequests(first: 100) { edges { node { id provider "
        "workOrders { id vendor { id } } } } } }"
    )
    requests = [edge["node"] for edge in listed["maintenanceRequests"]["edges"]]
    ids = [
        pick["id"]
        for provider in ("pms", "primmo")
        for request in [next(r for r in requests if r["provider"] == provider and r["workOrders"])]
        for pick in (request, request["workOrders"][0], request["workOrders"][0]["vendor"])
    ]

    found = await client.data(
        "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id "
        "... on MaintenanceRequest { provider } ... on WorkOrder { provider } "
        "... on Vendor { provider name } } }",
        {"ids": ids},
    )

    nodes = found["nodes"]
    assert [node["id"] for node in nodes] == ids
    assert [node["__typename"] for node in nodes] == [
        "MaintenanceRequest",
        "WorkOrder",
        "Vendor",
    ] * 2
    assert [node["provider"] for node in nodes] == ["pms"] * 3 + ["primmo"] * 3
    assert all(node["name"] for node in nodes if node["__typename"] == "Vendor")


async def test_timestamps_keep_the_offset_each_provider_sent(client: Client) -> None:
    data = await client.data(
        f"{{ maintenanceRequests(first: 100) {{ edges {{ node {{ {REQUEST} }} }} }} }}"
    )

    nodes = [edge["node"] for edge in data["maintenanceRequests"]["edges"]]
    offsets = {
        (node["provider"], node["reportedAt"][-6:])
        for node in nodes
        if node["reportedAt"] is not None
    }
    assert offsets == {("pms", "+00:00"), ("primmo", "-04:00"), ("primmo", "-05:00")}
    instants = [datetime.fromisoformat(node["reportedAt"]) for node in nodes]
    assert instants == sorted(instants), "the merged list is in time order across offsets"
    assert {node["title"] is None for node in nodes if node["provider"] == "primmo"} == {True}


async def test_a_page_of_primmo_units_with_open_requests_and_their_vendors_is_a_batch_a_level(
    client: Client,
) -> None:
    client.sandbox.reset_counters()

    body = await client.query(
        '{ units(first: 50, providers: ["primmo"]) { edges { node { sourceId '
        "listing { title } maintenanceRequests(open: true) { sourceId status "
        "vendor { name } } } } } }"
    )

    units = [edge["node"] for edge in body["data"]["units"]["edges"]]
    books = client.primmo.records.workshop
    for unit in units:
        expected = {
            str(ticket.id)
            for ticket in books.requests.values()
            if ticket.unit_id == int(unit["sourceId"]) and ticket.status != "completed"
        }
        assert {request["sourceId"] for request in unit["maintenanceRequests"]} == expected
        assert unit["listing"] is None
    assert sum(len(unit["maintenanceRequests"]) for unit in units) > 0
    assert all(r["status"] != "COMPLETED" for u in units for r in u["maintenanceRequests"])
    assert [client.primmo.count("GET", path) for path in ("/api/Units", "/api/Suppliers")] == [
        1,
        1,
    ]
    calls = [len(seen.target.partition("?")[2]) for seen in client.primmo.seen("/api/ServiceCalls")]
    assert len(calls) == 3, "50 units' codes in filters of at most 100 nodes (ASP.NET's limit)"
    assert max(calls) <= MAX_QUERY_BYTES
    assert body["extensions"]["warnings"] == [
        {
            "provider": "primmo",
            "message": "primmo does not advertise units: Unit.listing cannot be answered from it.",
        }
    ]


async def test_pms_reads_a_propertys_requests_once_and_its_vendors_once(client: Client) -> None:
    listed = await client.data(
        '{ buildings(first: 3, providers: ["pms"]) { edges { node { id } } } }'
    )
    ids = [edge["node"]["id"] for edge in listed["buildings"]["edges"]]
    client.sandbox.reset_counters()

    data = await client.data(
        "query($ids: [ID!]!) { nodes(ids: $ids) { ... on Building { sourceId "
        "maintenanceRequests { sourceId vendor { name } } "
        "units { sourceId maintenanceRequests(open: false) { sourceId "
        "workOrders { status } } } } } }",
        {"ids": ids},
    )

    books = client.pms.records.workshop
    for building in data["nodes"]:
        number = int(building["sourceId"].removeprefix("prop_"))
        mine = {f"mr_{t.id}" for t in books.requests.values() if t.building_id == number}
        assert {r["sourceId"] for r in building["maintenanceRequests"]} == mine
        done = {r["sourceId"] for u in building["units"] for r in u["maintenanceRequests"]}
        assert done == {
            f"mr_{t.id}"
            for t in books.requests.values()
            if t.building_id == number and t.status == "completed"
        }
    reads = client.pms.requests
    # per property: itself (by id), its units, its requests (once, though asked for the
    # building and for its units), its work orders; the vendor list once
    assert sum(n for (m, p), n in reads.items() if p.startswith("/api/v1/properties/")) == 6
    assert reads[("GET", "/api/v1/operations/maintenance-requests")] == 3
    assert reads[("GET", "/api/v1/operations/work-orders")] == 3
    assert reads[("GET", "/api/v1/operations/vendors")] == 1
    assert client.pms.count("GET") == 13


async def test_a_tenants_open_requests_are_one_request_for_a_page_of_tenants(
    client: Client,
) -> None:
    client.sandbox.reset_counters()

    data = await client.data(
        '{ tenants(first: 100, providers: ["primmo"]) { edges { node { sourceId '
        "maintenanceRequests(open: true) { sourceId tenant { sourceId } unit { sourceId } } "
        "unit { sourceId } } } } }"
    )

    tenants = [edge["node"] for edge in data["tenants"]["edges"]]
    reported = [(t, r) for t in tenants for r in t["maintenanceRequests"]]
    assert reported
    assert all(r["tenant"]["sourceId"] == t["sourceId"] for t, r in reported)
    assert all(r["unit"]["sourceId"] == t["unit"]["sourceId"] for t, r in reported)
    assert client.primmo.count("GET", "/api/ServiceCalls") == 1


async def test_primmo_forgets_who_reported_a_request_once_they_moved_out(client: Client) -> None:
    world = client.sandbox.world
    current = {t.id for t in world.tenants if world.is_current(t)}
    former, pms_former = (
        next(
            ticket
            for ticket in client.sandbox.states[provider].records.workshop.requests.values()
            if ticket.tenant_id is not None and ticket.tenant_id not in current
        )
        for provider in ("primmo", "pms")
    )
    ids = [
        encode_id(Entity.MAINTENANCE_REQUEST, "primmo", str(former.id)),
        encode_id(Entity.MAINTENANCE_REQUEST, "pms", f"mr_{pms_former.id}"),
    ]

    data = await client.data(
        "query($ids: [ID!]!) { nodes(ids: $ids) { ... on MaintenanceRequest { "
        "tenant { sourceId } } } }",
        {"ids": ids},
    )

    assert data["nodes"][0]["tenant"] is None
    assert data["nodes"][1]["tenant"]["sourceId"].endswith(f"/ten_{pms_former.tenant_id}")


async def test_filters_go_to_each_provider_as_it_takes_them(client: Client) -> None:
    client.sandbox.reset_counters()

    data = await client.data(
        "{ maintenanceRequests(first: 100, filter: {open: true, priority: HIGH}) "
        "{ totalCount edges { node { provider status priority } } } "
        'vendors(first: 10, filter: {trade: "heating", nameContains: "côté"}) '
        "{ edges { node { provider name } } } }"
    )

    (primmo,) = client.primmo.seen("/api/ServiceCalls")
    assert primmo.query["$filter"] == (
        "(trim(Status) eq 'O' or trim(Status) eq 'A') and Priority eq 2"
    )
    (suppliers,) = client.primmo.seen("/api/Suppliers")
    assert suppliers.query["$filter"] == "contains(tolower(Name),'côté') and Trade eq 'heating'"
    pms = client.pms.seen("/api/v1/operations/maintenance-requests")
    assert all(seen.query["priority"] == "high" and "status" not in seen.query for seen in pms)
    nodes = [edge["node"] for edge in data["maintenanceRequests"]["edges"]]
    expected = sum(
        1
        for name in ("pms", "primmo")
        for ticket in client.sandbox.states[name].records.workshop.requests.values()
        if ticket.status != "completed" and ticket.priority == "high"
    )
    assert data["maintenanceRequests"]["totalCount"] == len(nodes) == expected > 0
    assert {(n["priority"], n["status"] != "COMPLETED") for n in nodes} == {("HIGH", True)}
    assert [edge["node"]["provider"] for edge in data["vendors"]["edges"]] == ["pms", "primmo"]


async def test_work_orders_and_their_requests_agree(client: Client) -> None:
    """Fifty of each status, one query each: pms reads a unit by id one request at a time,
    and a hundred work orders of the world with its twin records (README: Linking records)
    lie in more units and properties than the hundred calls one query may make."""
    orders = []
    for status in ("COMPLETED", "IN_PROGRESS"):
        data = await client.data(
            f"{{ workOrders(first: 50, filter: {{status: {status}}}) {{ edges {{ node {{ id "
            "status request { status workOrders { id } unit { id } } unit { id } } } } }"
        )
        found = [edge["node"] for edge in data["workOrders"]["edges"]]
        assert found
        assert {order["status"] for order in found} == {status}
        orders += found
    for order in orders:
        assert order["id"] in {other["id"] for other in order["request"]["workOrders"]}
        assert order["unit"]["id"] == order["request"]["unit"]["id"]
        if order["request"]["status"] == "COMPLETED":
            assert order["status"] == "COMPLETED"


@pytest.mark.parametrize("provider", ["pms", "primmo"])
async def test_a_tenants_ledger_with_its_open_requests_costs_one_request_more(
    client: Client, provider: str
) -> None:
    """The issue's tenant's ledger (lease, charges, payments) and its open maintenance
    requests: the requests are one more read at either provider (pms: the property's
    requests; Primmo: one `$filter` on `TenantId`), the API's minimum beside the ledger's."""
    world = client.sandbox.world
    books = client.sandbox.states[provider].records.workshop
    ticket = next(
        t
        for t in books.requests.values()
        if t.status != "completed"
        and t.tenant_id is not None
        and any(p.id == t.tenant_id and world.is_current(p) for p in world.tenants)
    )
    key = world.references[("tenant", ticket.tenant_id)].split(":", 1)[1]
    tenant = encode_id(Entity.TENANT, provider, key)
    with_requests = LEDGER.replace(
        "lease {", "maintenanceRequests(open: true) { sourceId status } lease {"
    )
    state = client.sandbox.states[provider]
    if provider == "primmo":
        state.records.modules["FinancialStatements"] = True  # its payments need the module
    await client.data(LEDGER, {"id": tenant})
    client.sandbox.reset_counters()
    await client.data(LEDGER, {"id": tenant})
    alone = state.count()
    client.sandbox.reset_counters()

    data = await client.data(with_requests, {"id": tenant})

    assert state.count() == alone + 1
    mine = {
        t.id
        for t in books.requests.values()
        if t.tenant_id == ticket.tenant_id and t.status != "completed"
    }
    found = data["node"]["maintenanceRequests"]
    assert {int(r["sourceId"].removeprefix("mr_")) for r in found} == mine
