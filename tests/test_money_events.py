"""pms's invoice and payment webhooks, and Primmo's Invoice deliveries, become `entityChanged`
events with what changed, for subscribers who may read money."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from gateway.events import Change, ChangeKind
from gateway.model import Entity
from schema.ids import encode_id
from tests.conftest import Client, Socket, eventually

WATCH = (
    "subscription { entityChanged(types: [CHARGE, PAYMENT]) { kind type provider sourceId "
    "changes { field previous new } node { ... on Charge { status balance { amount } } "
    "... on Payment { paymentStatus: status amount { amount currency } } } } }"
)


async def _watching(client: Client) -> Socket:
    socket = Socket(client.http._transport.app, "graphql-transport-ws")  # type: ignore[attr-defined]
    await socket.inbox.put({"type": "websocket.connect"})
    await socket.until(lambda m: m["type"] == "websocket.accept")
    await socket.say({"type": "connection_init", "payload": {"X-API-Key": "propgate-dev-key"}})
    await socket.until(lambda m: '"connection_ack"' in (m.get("text") or ""))
    await socket.say({"id": "1", "type": "subscribe", "payload": {"query": WATCH}})
    await eventually(lambda: client.gateway.bus.listeners > 0)  # type: ignore[attr-defined]
    return socket


def _told(socket: Socket) -> list[dict[str, Any]]:
    return [
        json.loads(m["text"])["payload"]["data"]["entityChanged"]
        for m in socket.sent
        if '"next"' in (m.get("text") or "")
    ]


async def test_a_payment_that_settles_an_invoice_is_two_changes_with_what_changed(
    client: Client,
) -> None:
    subscribed = await client.gateway.federation.connectors["pms"].subscribe_webhooks(  # type: ignore[attr-defined]
        "http://127.0.0.1:8000"
    )
    assert {"invoice.paid", "payment.received", "payment.failed", "invoice.created"} <= set(
        subscribed
    )
    socket = await _watching(client)
    data = await client.data(
        '{ charges(first: 1, providers: ["pms"], filter: {status: OPEN}) '
        "{ edges { node { id sourceId balance { amount currency } } } } }"
    )
    invoice = data["charges"]["edges"][0]["node"]

    await client.data(
        "mutation($input: RecordPaymentInput!) "
        "{ recordPayment(input: $input) { errors { code } } }",
        {"input": {"chargeId": invoice["id"], "amount": invoice["balance"]}},
    )
    await eventually(lambda: len(_told(socket)) == 2)
    await socket.close()

    paid, payment = sorted(_told(socket), key=lambda change: change["type"])
    assert (paid["kind"], paid["type"], paid["sourceId"]) == (
        "UPDATED",
        "CHARGE",
        invoice["sourceId"],
    )
    assert paid["changes"] == [{"field": "status", "previous": "OPEN", "new": "PAID"}]
    assert paid["node"] == {"status": "PAID", "balance": {"amount": "0.00"}}
    assert (payment["kind"], payment["type"]) == ("CREATED", "PAYMENT")
    assert payment["changes"] == [{"field": "amount", "previous": None, "new": invoice["balance"]}]
    assert payment["node"]["paymentStatus"] == "COMPLETED"


async def test_a_declined_card_is_a_failed_payment(client: Client) -> None:
    await client.gateway.federation.connectors["pms"].subscribe_webhooks(  # type: ignore[attr-defined]
        "http://127.0.0.1:8000"
    )
    socket = await _watching(client)
    data = await client.data(
        '{ charges(first: 1, providers: ["pms"], filter: {status: OPEN}) '
        "{ edges { node { sourceId } } } }"
    )
    invoice = data["charges"]["edges"][0]["node"]["sourceId"]

    declined = await client.http.post(f"/sandbox/pms/_sandbox/invoices/{invoice}/failed-payment")
    await eventually(lambda: len(_told(socket)) == 1)
    await socket.close()

    assert declined.status_code == 201
    (failed,) = _told(socket)
    assert (failed["kind"], failed["type"]) == ("CREATED", "PAYMENT")
    assert failed["changes"] == [{"field": "status", "previous": None, "new": "FAILED"}]
    assert failed["node"]["paymentStatus"] == "FAILED"


async def test_a_primmo_invoice_is_a_created_charge(client: Client) -> None:
    await client.gateway.subscribe_webhooks("http://127.0.0.1:8000")
    changes: list[Change] = []

    async def listen() -> None:
        async for change in client.gateway.bus.listen():
            changes.append(change)

    task = asyncio.ensure_future(listen())
    await eventually(lambda: client.gateway.bus.listeners > 0)  # type: ignore[attr-defined]
    lease = next(row for row in client.primmo.records.leases if row["Status"] == "A ")
    created = await client.data(
        "mutation($input: CreateChargeInput!) { createCharge(input: $input) "
        "{ charge { sourceId } errors { code } } }",
        {
            "input": {
                "leaseId": encode_id(Entity.LEASE, "primmo", str(lease["Id"])),
                "amount": {"amount": "12.00", "currency": "CAD"},
                "dueOn": "2026-12-01",
            }
        },
    )
    await eventually(lambda: len(changes) == 1)
    task.cancel()

    assert changes == [
        Change(
            ChangeKind.CREATED,
            Entity.CHARGE,
            "primmo",
            created["createCharge"]["charge"]["sourceId"],
        )
    ]
