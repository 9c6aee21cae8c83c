"""Maintenance changes the providers report by webhook (pms `maintenance.created` and
`maintenance.completed`; Primmo's `ServiceCall` and `ServiceCallDetail` deliveries) reach
`entityChanged` subscribers with the object read fresh, and evict its cached copies."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from gateway.clock import ManualClock
from gateway.config import CacheSettings, Settings
from gateway.edge.callers import DEV_KEY
from gateway.model import Entity
from gateway.sandbox import Sandbox
from schema.ids import encode_id
from tests.conftest import Client, Socket, eventually, primmo_itself, published, serving

GATEWAY = "http://127.0.0.1:8000"


async def test_pms_maintenance_events_are_changes_to_the_request(client: Client) -> None:
    await client.gateway.subscribe_webhooks(GATEWAY)
    changes = await published(client)
    ticket = next(t for t in client.pms.records.workshop.requests.values() if t.status == "open")
    unit = encode_id(Entity.UNIT, "pms", f"prop_{ticket.building_id}/unit_{ticket.unit_id}")

    created = await client.data(
        "mutation($unit: ID!) { createMaintenanceRequest(input: {unitId: $unit, description: "
        '"Door"}) { maintenanceRequest { id sourceId } } }',
        {"unit": unit},
    )
    request = created["createMaintenanceRequest"]["maintenanceRequest"]
    await client.data(
        "mutation($id: ID!) { completeMaintenanceRequest(input: {maintenanceRequestId: $id}) "
        "{ errors { code } } }",
        {"id": request["id"]},
    )
    await eventually(lambda: len(changes) >= 2)

    assert [(c.kind.value, c.entity, c.provider, c.source_id) for c in changes] == [
        ("CREATED", Entity.MAINTENANCE_REQUEST, "pms", request["sourceId"]),
        ("UPDATED", Entity.MAINTENANCE_REQUEST, "pms", request["sourceId"]),
    ]
    # what the payload says (the new status), where nothing cached says what it was
    assert [[(f.field, f.previous, f.new) for f in c.changes] for c in changes] == [
        [("status", None, "OPEN")],
        [("status", None, "COMPLETED")],
    ]


async def test_a_primmo_service_call_change_reaches_a_subscriber_read_fresh(
    client: Client,
) -> None:
    await client.gateway.subscribe_webhooks(GATEWAY)
    socket = Socket(client.http._transport.app, "graphql-transport-ws")  # type: ignore[attr-defined]
    await socket.inbox.put({"type": "websocket.connect"})
    await socket.until(lambda m: m["type"] == "websocket.accept")
    await socket.say({"type": "connection_init", "payload": {"X-API-Key": DEV_KEY}})
    await socket.until(lambda m: '"connection_ack"' in (m.get("text") or ""))
    await socket.say(
        {
            "id": "1",
            "type": "subscribe",
            "payload": {
                "query": "subscription { entityChanged(types: [MAINTENANCE_REQUEST, WORK_ORDER]) "
                "{ kind type sourceId node { ... on MaintenanceRequest { status "
                "vendor { name } } ... on WorkOrder { stage: status } } } }"
            },
        }
    )
    await eventually(lambda: client.gateway.bus.listeners > 0)  # type: ignore[attr-defined]
    books = client.primmo.records.workshop
    ticket = next(t for t in books.requests.values() if t.status == "open")
    vendor = books.vendor_for("general")

    await client.data(
        "mutation($id: ID!, $vendor: ID!) { assignMaintenanceRequest(input: "
        "{maintenanceRequestId: $id, vendorId: $vendor}) { errors { code } } }",
        {
            "id": encode_id(Entity.MAINTENANCE_REQUEST, "primmo", str(ticket.id)),
            "vendor": encode_id(Entity.VENDOR, "primmo", str(vendor.id)),
        },
    )
    message = await socket.until(lambda m: '"next"' in (m.get("text") or ""))
    await socket.close()

    change = json.loads(message["text"])["payload"]["data"]["entityChanged"]
    assert (change["kind"], change["type"], change["sourceId"]) == (
        "UPDATED",
        "MAINTENANCE_REQUEST",
        str(ticket.id),
    )
    assert change["node"] == {"status": "ASSIGNED", "vendor": {"name": vendor.name}}


@pytest.fixture
async def cached(sandbox: Sandbox, clock: ManualClock, settings: Settings) -> AsyncIterator[Client]:
    ttl = {"primmo.MaintenanceRequest": 300, "primmo.WorkOrder": 300}
    configured = settings.model_copy(update={"cache": CacheSettings(ttl=ttl)})
    async with serving(sandbox, clock, configured) as served:
        await served.gateway.subscribe_webhooks(GATEWAY)
        yield served


async def test_a_change_primmo_reports_refreshes_the_cached_work_order_and_says_what_changed(
    cached: Client,
) -> None:
    client = cached
    books = client.primmo.records.workshop
    job = next(job for job in books.jobs.values() if job.status == "in_progress")
    query = (
        f'{{ node(id: "{encode_id(Entity.WORK_ORDER, "primmo", str(job.id))}") '
        "{ ... on WorkOrder { status } } }"
    )
    first = await client.data(query)
    client.primmo.reset_counter()
    again = await client.data(query)
    assert again == first and client.primmo.count("GET", "/api/ServiceCallDetails") == 0
    changes = await published(client)

    # done at Primmo itself, not through the gateway: only the webhook can tell it
    async with primmo_itself(client.sandbox) as http:
        done = await http.patch(f"/api/ServiceCallDetails({job.id})", json={"Status": "T"})
    await eventually(lambda: bool(changes))
    read_for_the_change = client.primmo.count("GET", "/api/ServiceCallDetails")
    after = await client.data(query)

    assert done.status_code == 204
    assert (first["node"]["status"], after["node"]["status"]) == ("IN_PROGRESS", "COMPLETED")
    (change,) = changes
    assert (change.kind.value, change.entity, change.source_id) == (
        "UPDATED",
        Entity.WORK_ORDER,
        str(job.id),
    )
    assert [(c.field, c.previous, c.new) for c in change.changes] == [
        ("status", "IN_PROGRESS", "COMPLETED")
    ]
    # the delivery read it fresh once, to compare; the next query is served that copy
    assert read_for_the_change == 1
    assert client.primmo.count("GET", "/api/ServiceCallDetails") == 1


async def test_a_change_made_through_the_gateway_says_what_changed(cached: Client) -> None:
    """The write evicts the cached request, but keeps it aside: when Primmo's webhook for
    that very write arrives, the change is told against the request as it was."""
    client = cached
    books = client.primmo.records.workshop
    ticket = next(t for t in books.requests.values() if t.status == "open")
    vendor = books.vendor_for("general")
    request = encode_id(Entity.MAINTENANCE_REQUEST, "primmo", str(ticket.id))
    await client.data(
        f'{{ node(id: "{request}") {{ ... on MaintenanceRequest {{ status vendor {{ id }} }} }} }}'
    )
    changes = await published(client)

    assigned = await client.data(
        "mutation($id: ID!, $vendor: ID!) { assignMaintenanceRequest(input: "
        "{maintenanceRequestId: $id, vendorId: $vendor}) { errors { code } } }",
        {"id": request, "vendor": encode_id(Entity.VENDOR, "primmo", str(vendor.id))},
    )
    await eventually(lambda: bool(changes))

    assert assigned["assignMaintenanceRequest"]["errors"] == []
    (change,) = changes
    assert change.source_id == str(ticket.id)
    assert [(c.field, c.previous, c.new) for c in change.changes] == [
        ("status", "OPEN", "ASSIGNED")
    ]
