"""Charges, payments and balances: a tenant's ledger at the API's minimum of requests, the root
lists merged in their order, exact amounts and the providers' offsets, a module the client has
not bought reported on its field alone, and only for callers who may read money."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from gateway.clock import ManualClock
from gateway.model import Entity
from gateway.sandbox import Sandbox
from schema.ids import encode_id
from tests.conftest import Client, error_codes, keyed, serving

LEDGER = """query($id: ID!) { node(id: $id) { ... on Tenant { sourceId
  lease { status rent { amount currency } }
  charges { sourceId dueOn status amount { amount currency } balance { amount } }
  payments { sourceId paidAt status amount { amount currency } } } } }"""


def _signer(client: Client, provider: str) -> tuple[str, Any]:
    """A tenant who signed a lease running today (bills are addressed to the first signer),
    as the gateway names it, with its lease in the sandbox's books."""
    world = client.sandbox.world
    homes = {b.id: b.provider for b in world.buildings}
    units = {u.id: homes[u.building_id] for u in world.units}
    books = client.sandbox.states[provider].records.books
    for tenant in world.tenants:
        lease = tenant.lease
        if units[tenant.unit_id] == provider and lease.covers(world.today):
            if min(books.tenants(lease)) == tenant.id and lease.start < world.today:
                key = world.references[("tenant", tenant.id)].split(":", 1)[1]
                return encode_id(Entity.TENANT, provider, key), lease
    raise AssertionError(f"no {provider} signer")


def _expected(client: Client, provider: str, lease: Any) -> tuple[list[str], list[str]]:
    """The charges' due dates and the completed payments' amounts the ledger holds."""
    ledger = client.sandbox.states[provider].records.ledger
    dues = sorted(charge.due.isoformat() for charge in ledger.charges(lease))
    paid = sorted(str(p.amount) for p in ledger.payments(lease) if p.status == "completed")
    return dues, paid


async def test_a_pms_tenants_ledger_is_four_requests_its_api_keeps_apart(client: Client) -> None:
    """pms keeps tenants (under their property), each tenant's lease, invoices and payments
    in four places and embeds none in another: four requests is its minimum. The three after
    the tenant go together; the balance, summed from the same invoices, shares their read."""
    tenant, lease = _signer(client, "pms")
    await client.data("{ landlords(first: 1) { totalCount } }")
    client.sandbox.reset_counters()

    data = await client.data(
        LEDGER.replace("lease {", "balance { owed { amount } } lease {"), {"id": tenant}
    )

    node = data["node"]
    dues, paid = _expected(client, "pms", lease)
    assert sorted(c["dueOn"] for c in node["charges"]) == dues
    assert sorted(
        p["amount"]["amount"] for p in node["payments"] if p["status"] == "COMPLETED"
    ) == [f"{Decimal(amount):.2f}" for amount in paid]
    owed = sum(Decimal(c["balance"]["amount"]) for c in node["charges"])
    assert node["balance"]["owed"]["amount"] == f"{owed:.2f}"
    prop, own = node["sourceId"].split("/")
    assert sorted(path for (_, path) in client.pms.requests) == [
        "/api/v1/financial/invoices",
        "/api/v1/financial/payments",
        f"/api/v1/properties/{prop}/tenants",
        f"/api/v1/properties/{prop}/tenants/{own}/lease",
    ]
    assert client.pms.count() == 4


async def test_a_primmo_tenants_ledger_is_four_requests_one_per_entity_set(
    client: Client,
) -> None:
    """Primmo's tenants, leases, invoices and statements are four entity sets with no
    navigation between them in its API: one `$filter` each, four requests."""
    client.primmo.records.modules["FinancialStatements"] = True
    tenant, lease = _signer(client, "primmo")
    await client.data("{ landlords(first: 1) { totalCount } }")
    client.sandbox.reset_counters()

    data = await client.data(LEDGER, {"id": tenant})

    node = data["node"]
    dues, paid = _expected(client, "primmo", lease)
    assert sorted(c["dueOn"] for c in node["charges"]) == dues
    assert sorted(p["amount"]["amount"] for p in node["payments"]) == [
        f"{Decimal(amount):.2f}" for amount in paid
    ]
    assert sorted(path for (_, path) in client.primmo.requests) == [
        "/api/FinancialStatements",
        "/api/Invoices",
        "/api/Leases",
        "/api/Tenants",
    ]
    assert client.primmo.count() == 4


async def test_amounts_are_exact_and_moments_keep_the_providers_offsets(client: Client) -> None:
    client.primmo.records.modules["FinancialStatements"] = True

    data = await client.data(
        "{ payments(first: 100) { edges { node { provider paidAt amount { amount currency } } } } }"
    )

    nodes = [edge["node"] for edge in data["payments"]["edges"]]
    offsets = {
        provider: {
            datetime.fromisoformat(n["paidAt"]).utcoffset()
            for n in nodes
            if n["provider"] == provider
        }
        for provider in ("pms", "primmo")
    }
    assert offsets["pms"] == {timedelta(0)}
    assert offsets["primmo"] <= {timedelta(hours=-4), timedelta(hours=-5)} and offsets["primmo"]
    assert all(n["amount"]["amount"].count(".") == 1 for n in nodes)
    assert all(len(n["amount"]["amount"].split(".")[1]) == 2 for n in nodes)
    instants = [datetime.fromisoformat(n["paidAt"]) for n in nodes]
    assert instants == sorted(instants), "merged by the instant, whatever the offset"


async def test_open_charges_are_filtered_where_each_provider_can(client: Client) -> None:
    client.sandbox.reset_counters()

    data = await client.data(
        '{ charges(first: 100, filter: {status: OPEN, dueOn: {from: "2026-10-01"}}) '
        "{ totalCount edges { node { provider status dueOn balance { amount } } } } }"
    )

    nodes = [edge["node"] for edge in data["charges"]["edges"]]
    assert {n["provider"] for n in nodes} == {"pms", "primmo"}
    assert all(n["status"] == "OPEN" and Decimal(n["balance"]["amount"]) > 0 for n in nodes)
    assert all(n["dueOn"] >= "2026-10-01" for n in nodes)
    (primmo,) = client.primmo.seen("/api/Invoices")
    assert primmo.query["$filter"] == "DueDate ge 2026-10-01 and Balance gt 0"
    assert "status" not in client.pms.seen("/api/v1/financial/invoices")[0].query
    books = [client.sandbox.states[p].records for p in ("pms", "primmo")]
    expected = sum(
        1
        for tables in books
        for lease in tables.books.leases(_units(tables))
        for charge in tables.ledger.charges(lease)
        if tables.ledger.open_amount(charge) > 0 and charge.due.isoformat() >= "2026-10-01"
    )
    assert data["charges"]["totalCount"] == expected == len(nodes)


def _units(tables: Any) -> set[int]:
    if hasattr(tables, "property_of"):
        return set(tables.property_of)
    return set(tables.units_by_id)


async def test_an_unlicensed_module_costs_its_field_alone(client: Client) -> None:
    tenant, _ = _signer(client, "primmo")

    body = await client.query(LEDGER, {"id": tenant})
    listed = await client.query("{ payments(first: 3) { edges { node { provider } } } }")

    assert body["data"]["node"]["charges"] and body["data"]["node"]["lease"]
    assert body["data"]["node"]["payments"] is None
    (error,) = body["errors"]
    assert error["path"] == ["node", "payments"]
    assert error["extensions"] == {
        "code": "MODULE_NOT_LICENSED",
        "provider": "primmo",
        "module": "FinancialStatements",
    }
    assert {e["node"]["provider"] for e in listed["data"]["payments"]["edges"]} == {"pms"}
    assert error_codes(listed) == ["MODULE_NOT_LICENSED"]
    health = await client.data("{ providers { name breakerState } }")
    assert {"name": "primmo", "breakerState": "CLOSED"} in health["providers"]


async def test_money_needs_financial_read_wherever_it_is_reached(
    sandbox: Sandbox, clock: ManualClock
) -> None:
    key = "tenant-reader-0123456789"
    settings = keyed({key: ["property:read", "tenant:read"]})
    async with serving(sandbox, clock, settings, headers={"X-API-Key": key}) as client:
        tenant, _ = _signer(client, "primmo")
        nested = await client.query(LEDGER, {"id": tenant})
        listed = await client.query("{ charges(first: 1) { totalCount } }")
        charge = encode_id(Entity.CHARGE, "pms", "inv_1")
        by_id = await client.query(f'{{ node(id: "{charge}") {{ id }} }}')

    assert nested["data"]["node"]["lease"]["status"] == "ACTIVE"
    assert nested["data"]["node"]["charges"] is None
    assert set(error_codes(nested)) == {"FORBIDDEN"}
    assert {e["extensions"]["scope"] for e in nested["errors"]} == {"financial:read"}
    assert error_codes(listed) == error_codes(by_id) == ["FORBIDDEN"]


async def test_pms_payments_of_a_page_of_charges_are_one_read_per_lease(client: Client) -> None:
    """pms lists a lease's payments (`?lease_id=`), each naming its invoice: a page of
    charges costs one read per distinct lease, never one per invoice."""
    client.sandbox.reset_counters()

    data = await client.data(
        '{ charges(first: 60, providers: ["pms"]) { edges { node { sourceId '
        "payments { sourceId amount { amount } } } } } }"
    )

    charges = [edge["node"] for edge in data["charges"]["edges"]]
    _, payments = client.pms.records.money()
    made: dict[str, set[str]] = {}
    for row in payments:
        made.setdefault(row["invoice_id"], set()).add(row["id"])
    for charge in charges:
        assert {p["sourceId"] for p in charge["payments"]} == made.get(charge["sourceId"], set())
    invoices, _ = client.pms.records.money()
    lease_of = {row["id"]: row["lease_id"] for row in invoices}
    leases = {lease_of[charge["sourceId"]] for charge in charges}
    per_lease = client.pms.seen("/api/v1/financial/payments")
    assert sorted(seen.query["lease_id"] for seen in per_lease) == sorted(leases)
    assert not [
        path
        for (_, path) in client.pms.requests
        if path.endswith("/payments") and "invoices" in path
    ]


async def test_a_pms_balance_owes_what_was_sent_and_is_overdue_by_its_due_date(
    client: Client,
) -> None:
    """pms keeps no balance, so it is summed: a draft is not yet owed; a partly paid invoice
    past its due date is overdue, whatever status pms gave it (by the sandbox world's today,
    as the Primmo beside it reckons, not the gateway's clock); and an invoice whose balance
    cannot be read makes no balance at all, said in a warning, rather than one too low."""
    tenant, lease = _signer(client, "pms")
    today = client.sandbox.world.today
    invoices, _ = client.pms.records.money()
    mine = [
        row
        for row in invoices
        if row["lease_id"] == f"lease_{client.pms.records.books.number(lease)}"
    ]
    assert len(mine) >= 3
    draft, late, *rest = sorted(mine, key=lambda row: row["due_date"])
    draft.update(status="draft", balance_due=50.0)
    late.update(status="partially_paid", balance_due=75.0, due_date=str(today - timedelta(days=3)))
    owing = [late, *(row for row in rest if row["status"] in ("sent", "partially_paid", "overdue"))]
    query = (
        "query($id: ID!) { node(id: $id) { ... on Tenant { "
        "balance { owed { amount } overdue { amount } } } } }"
    )

    owed = sum(Decimal(str(row["balance_due"])) for row in owing)
    overdue = sum(
        Decimal(str(row["balance_due"]))
        for row in owing
        if row["status"] == "overdue" or row["due_date"] < str(today)
    )

    summed = await client.query(query, {"id": tenant})
    late.pop("balance_due")
    unreadable = await client.query(query, {"id": tenant})

    assert summed["data"]["node"]["balance"] == {
        "owed": {"amount": f"{owed:.2f}"},
        "overdue": {"amount": f"{overdue:.2f}"},
    }
    assert unreadable["data"]["node"]["balance"] == {"owed": None, "overdue": None}
    assert "balance" in unreadable["extensions"]["warnings"][0]["message"]
