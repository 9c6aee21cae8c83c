"""Leases as nodes: by id, at the root with filters pushed down, from a tenant at the API's
minimum of requests, and only for callers who may read them."""

from __future__ import annotations

from datetime import date

from gateway.clock import ManualClock
from gateway.model import Entity
from gateway.sandbox import Sandbox
from schema.ids import encode_id
from tests.conftest import Client, error_codes, keyed, serving

LEASE = "id provider sourceId status startDate endDate rent { amount currency } deposit { amount }"


async def test_a_lease_is_found_again_by_its_id_at_either_provider(client: Client) -> None:
    pms = await client.data(
        '{ buildings(first: 1, providers: ["pms"]) { edges { node { units { tenants '
        f"{{ lease {{ {LEASE} }} }} }} }} }} }} }}"
    )
    primmo = await client.data(
        f"{{ leases(first: 2, filter: {{status: ACTIVE}}) {{ edges {{ node {{ {LEASE} }} }} }} }}"
    )
    leases = [
        tenant["lease"]
        for unit in pms["buildings"]["edges"][0]["node"]["units"]
        for tenant in unit["tenants"]
    ][:2] + [edge["node"] for edge in primmo["leases"]["edges"]]
    assert {lease["provider"] for lease in leases} == {"pms", "primmo"}

    again = await client.data(
        f"query($ids: [ID!]!) {{ nodes(ids: $ids) {{ ... on Lease {{ {LEASE} }} }} }}",
        {"ids": [lease["id"] for lease in leases]},
    )

    assert again["nodes"] == leases
    pms_lease = leases[0]
    assert pms_lease["deposit"]["amount"].endswith(".00")
    assert all(lease["rent"]["currency"] == "CAD" for lease in leases)


async def test_primmo_leases_of_a_page_of_tenants_are_one_request(client: Client) -> None:
    client.sandbox.reset_counters()

    data = await client.data(
        '{ tenants(first: 20, providers: ["primmo"]) { edges { node { sourceId '
        "lease { sourceId status tenants { sourceId } } } } } }"
    )

    tenants = [edge["node"] for edge in data["tenants"]["edges"]]
    tables = client.primmo.records
    numbers = {row["Id"]: row["LeaseId"] for row in tables.tenants}
    assert len(tenants) == 20
    for tenant in tenants:
        assert tenant["lease"]["sourceId"] == str(numbers[int(tenant["sourceId"])])
        assert tenant["lease"]["status"] == "ACTIVE"
        assert tenant["sourceId"] in {t["sourceId"] for t in tenant["lease"]["tenants"]}
    assert client.primmo.count("GET", "/api/Leases") == 1
    assert client.primmo.count("GET", "/api/Tenants") == 2


async def test_pms_reads_a_lease_per_tenant_as_its_api_allows_and_no_more(client: Client) -> None:
    building = await client.data(
        '{ buildings(first: 1, providers: ["pms"]) { edges { node { units { id } } } } }'
    )
    units = [unit["id"] for unit in building["buildings"]["edges"][0]["node"]["units"]]
    client.sandbox.reset_counters()

    data = await client.data(
        "query($ids: [ID!]!) { nodes(ids: $ids) { ... on Unit { id tenants { sourceId "
        "lease { status unit { id } } } } } }",
        {"ids": units},
    )

    tenants = [(unit["id"], t) for unit in data["nodes"] for t in unit["tenants"]]
    assert tenants and all(t["lease"]["unit"]["id"] == unit for unit, t in tenants)
    lease_reads = [p for (_, p) in client.pms.requests if p.endswith("/lease")]
    assert len(lease_reads) == len(tenants)
    assert client.pms.count("GET", lease_reads[0]) == 1
    # the property's units (by id; the leases' units are those, already read), its
    # tenants, and one lease per tenant: pms has no list of leases
    assert client.pms.count("GET") == 2 + len(tenants)


async def test_lease_filters_go_to_primmo_as_typed_literals(client: Client) -> None:
    world = client.sandbox.world
    client.sandbox.reset_counters()

    data = await client.data(
        '{ leases(first: 100, filter: {status: ACTIVE, endDate: {to: "2027-06-30"}}) '
        "{ totalCount edges { node { status endDate } } } }"
    )

    (seen,) = client.primmo.seen("/api/Leases")
    assert seen.query["$filter"] == "EndDate le 2027-06-30 and trim(Status) eq 'A'"
    ends = [date.fromisoformat(edge["node"]["endDate"]) for edge in data["leases"]["edges"]]
    primmo_units = {unit.id for b in world.buildings_of("primmo") for unit in world.units_in(b.id)}
    expected = {
        (t.lease.unit_id, t.lease.start)
        for t in world.tenants
        if t.unit_id in primmo_units
        and t.lease.covers(world.today)
        and t.lease.end <= date(2027, 6, 30)
    }
    assert data["leases"]["totalCount"] == len(ends) == len(expected) > 0
    assert all(edge["node"]["status"] == "ACTIVE" for edge in data["leases"]["edges"])


async def test_a_provider_without_a_list_of_leases_is_named_not_silent(client: Client) -> None:
    body = await client.query('{ leases(first: 2, providers: ["pms"]) { totalCount } }')

    assert body["data"]["leases"]["totalCount"] == 0
    assert body["extensions"]["warnings"] == [
        {"provider": "pms", "message": "pms has no list of Leases to answer from."}
    ]


async def test_reading_a_lease_anywhere_needs_tenant_read(
    sandbox: Sandbox, clock: ManualClock
) -> None:
    key = "property-reader-0123456789"
    settings = keyed({key: ["property:read"]})
    lease = encode_id(Entity.LEASE, "primmo", str(sandbox.states["primmo"].records.leases[0]["Id"]))
    async with serving(sandbox, clock, settings, headers={"X-API-Key": key}) as client:
        listed = await client.query("{ leases(first: 1) { totalCount } }")
        by_id = await client.query(f'{{ node(id: "{lease}") {{ id }} }}')
        before = client.primmo.count("GET", "/api/Leases")

    assert error_codes(listed) == ["FORBIDDEN"] and error_codes(by_id) == ["FORBIDDEN"]
    assert by_id["errors"][0]["extensions"]["scope"] == "tenant:read"
    assert before == 0


def _co_tenants(client: Client) -> list[str]:
    """The gateway's keys of two pms tenants who signed one lease that runs today."""
    world = client.sandbox.world
    homes = {b.id: b.provider for b in world.buildings}
    pms = {u.id for u in world.units if homes[u.building_id] == "pms"}
    for tenant in world.tenants:
        lease = tenant.lease
        signers = [t for t in world.tenants if t.lease == lease]
        if tenant.unit_id in pms and len(signers) > 1 and lease.covers(world.today):
            return [world.references[("tenant", t.id)].split(":", 1)[1] for t in signers]
    raise AssertionError("no pms lease with two tenants")


async def test_a_pms_lease_of_co_tenants_is_one_lease_with_all_its_tenants(
    client: Client,
) -> None:
    """pms serves a lease under each of its tenants: read through either, it is one node,
    found again by its id, signed by both."""
    keys = _co_tenants(client)
    tenants = [encode_id(Entity.TENANT, "pms", key) for key in keys]

    data = await client.data(
        "query($ids: [ID!]!) { nodes(ids: $ids) { ... on Tenant { lease { id sourceId "
        "tenants { sourceId } } } } }",
        {"ids": tenants},
    )
    leases = [node["lease"] for node in data["nodes"]]
    again = await client.data(
        f'{{ node(id: "{leases[0]["id"]}") {{ ... on Lease {{ id tenants {{ sourceId }} }} }} }}'
    )

    assert leases[0] == leases[1]
    assert sorted(t["sourceId"] for t in leases[0]["tenants"]) == sorted(keys)
    assert again["node"] == {"id": leases[0]["id"], "tenants": leases[0]["tenants"]}


async def test_one_record_asked_in_two_places_with_other_fields_is_read_once(
    client: Client,
) -> None:
    """A pms lease is asked under its tenant (`status`) and under each of the tenant's
    charges (`rent`): pms reads a lease whole, so the second place needs no second read."""
    world = client.sandbox.world
    homes = {b.id: b.provider for b in world.buildings}
    tenant = next(
        t
        for t in world.tenants
        if homes[next(u for u in world.units if u.id == t.unit_id).building_id] == "pms"
        and t.lease.covers(world.today)
        and t.lease.start < world.today
        and min(client.pms.records.books.tenants(t.lease)) == t.id
    )
    key = world.references[("tenant", tenant.id)].split(":", 1)[1]
    client.sandbox.reset_counters()

    data = await client.data(
        f'{{ node(id: "{encode_id(Entity.TENANT, "pms", key)}") {{ ... on Tenant {{ '
        "lease { status } charges { lease { status rent { amount } } } } } }"
    )

    lease = data["node"]["lease"]
    assert data["node"]["charges"] and all(
        charge["lease"]["status"] == lease["status"] and charge["lease"]["rent"]["amount"]
        for charge in data["node"]["charges"]
    )
    prop, own = key.split("/")
    assert client.pms.count("GET", f"/api/v1/properties/{prop}/tenants/{own}/lease") == 1
    assert client.pms.count("GET") == 3


async def test_a_leases_currency_is_still_answered_and_marked_deprecated(client: Client) -> None:
    """`Lease.currency` came with the Float `monthlyRent`, which could not stay (a Float
    cannot carry an exact amount): it stays, deprecated, for clients generated before."""
    data = await client.data(
        '{ leases(first: 2, providers: ["primmo"]) '
        "{ edges { node { currency rent { currency } } } } "
        '__type(name: "Lease") { fields(includeDeprecated: true) { name isDeprecated '
        "deprecationReason } } }"
    )

    nodes = [edge["node"] for edge in data["leases"]["edges"]]
    assert nodes and all(node["currency"] == node["rent"]["currency"] == "CAD" for node in nodes)
    (currency,) = [f for f in data["__type"]["fields"] if f["name"] == "currency"]
    assert currency["isDeprecated"] and "rent" in currency["deprecationReason"]
    only = await client.data(
        '{ leases(first: 1, providers: ["primmo"]) { edges { node { currency } } } }'
    )
    assert only["leases"]["edges"][0]["node"]["currency"] == "CAD"
