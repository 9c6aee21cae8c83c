"""Each operation sent over a websocket is a request of its own: its errors, its reads, its count.

Found in review: a websocket's operations shared the connection's one context, so errors a
resolver reports beside data (`nodes` with a malformed id) never reached a query sent over
graphql-transport-ws, the loaders' per-request cache answered a later query of the connection
with what an earlier one read, and every refused operation and every subscription a client
ended was counted as `INTERNAL_SERVER_ERROR`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from gateway.edge.callers import DEV_KEY
from gateway.model import Entity
from schema.ids import encode_id
from tests.conftest import Client, Socket, eventually
from tests.metrics_reading import metric
from tests.test_observability import scrape
from tests.test_realtime import SUBSCRIBE

NODES = "query Nodes($ids: [ID!]!) { nodes(ids: $ids) { id } }"
TENANT = "query Tenant($id: ID!) { node(id: $id) { ... on Tenant { lastName } } }"
OPERATIONS = "propgate_graphql_operations_total"


async def _connected(
    client: Client,
    protocol: str = "graphql-transport-ws",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> Socket:
    socket = Socket(client.http._transport.app, protocol, headers)  # type: ignore[attr-defined]
    await socket.inbox.put({"type": "websocket.connect"})
    await socket.until(lambda m: m["type"] == "websocket.accept")
    await socket.say({"type": "connection_init", "payload": {"X-API-Key": DEV_KEY}})
    await socket.until(lambda m: '"connection_ack"' in (m.get("text") or ""))
    return socket


async def _answer(socket: Socket, operation: str, query: str, **variables: Any) -> dict[str, Any]:
    """The `next` payload answering one query sent over graphql-transport-ws."""
    await _send(socket, operation, query, **variables)
    return await _answered(socket, operation)


async def _send(socket: Socket, operation: str, query: str, **variables: Any) -> None:
    payload = {"query": query, "variables": variables}
    await socket.say({"id": operation, "type": "subscribe", "payload": payload})


async def _answered(socket: Socket, operation: str) -> dict[str, Any]:
    def about(message: dict[str, Any]) -> bool:
        sent = json.loads(message.get("text") or "{}")
        return bool(sent.get("id") == operation and sent.get("type") in ("next", "error"))

    message = json.loads((await socket.until(about))["text"])
    assert message["type"] == "next", message
    answer: dict[str, Any] = message["payload"]
    return answer


def _reported(answer: dict[str, Any]) -> list[tuple[list[str | int], str]]:
    return [(error["path"], error["extensions"]["code"]) for error in answer.get("errors", [])]


async def _counted(client: Client, **labels: str) -> float:
    """The operations counted with these labels, once the count reaches at least one: an
    operation a client ends is counted as its task unwinds, after the socket's answer."""
    async with asyncio.timeout(5):
        while not (counted := metric(await scrape(client), OPERATIONS, **labels)):  # noqa: ASYNC110 - a count has no event to wait on
            await asyncio.sleep(0.01)
    return counted


async def test_errors_reported_beside_data_reach_their_own_query_over_a_websocket(
    client: Client,
) -> None:
    socket = await _connected(client)

    first = await _answer(socket, "1", NODES, ids=["x", "y"])
    second = await _answer(socket, "2", "{ __typename }")
    third = await _answer(socket, "3", NODES, ids=["z"])
    await socket.close()

    assert first["data"] == {"nodes": [None, None]}
    assert _reported(first) == [(["nodes", 0], "INVALID_ID"), (["nodes", 1], "INVALID_ID")]
    assert "errors" not in second
    assert _reported(third) == [(["nodes", 0], "INVALID_ID")]


async def test_errors_one_operation_reports_do_not_reach_another_in_flight(
    client: Client,
) -> None:
    """The first query reports its malformed id at once, then waits for its providers;
    the second, answered meanwhile on the same connection, would take the first one's
    error with its own result."""
    states = client.sandbox.states.values()
    for state in states:
        state.latency = 0.5
    asked = sum(state.count() for state in states)
    socket = await _connected(client)
    slow = '{ nodes(ids: ["x"]) { id } tenants(first: 1) { totalCount } }'
    await _send(socket, "1", slow)
    await eventually(lambda: sum(state.count() for state in states) > asked)

    quick = await _answer(socket, "2", "{ __typename }")
    first = await _answered(socket, "1")
    await socket.close()

    assert "errors" not in quick
    assert _reported(first) == [(["nodes", 0], "INVALID_ID")]


async def test_each_operation_over_a_websocket_reads_its_provider_afresh(client: Client) -> None:
    """The loaders keep what a request read, for the rest of that request: kept for the
    connection, a query sent an hour later was answered from the first one's reads."""
    found = await client.data(
        '{ tenants(first: 1, providers: ["primmo"]) { edges { node { id lastName } } } }'
    )
    tenant = found["tenants"]["edges"][0]["node"]
    socket = await _connected(client)

    before = client.primmo.count("GET")
    first = await _answer(socket, "1", TENANT, id=tenant["id"])
    between = client.primmo.count("GET")
    second = await _answer(socket, "2", TENANT, id=tenant["id"])
    after = client.primmo.count("GET")
    await socket.close()

    assert first == second == {"data": {"node": {"lastName": tenant["lastName"]}}}
    assert between - before >= 1
    assert after - between == between - before


@pytest.mark.parametrize(
    ("protocol", "start", "end"),
    [("graphql-transport-ws", "subscribe", "complete"), ("graphql-ws", "start", "stop")],
)
async def test_a_refused_operation_is_counted_with_its_code_and_an_ended_subscription_as_ok(
    client: Client, protocol: str, start: str, end: str
) -> None:
    socket = await _connected(client, protocol)
    await socket.say({"id": "1", "type": start, "payload": {"query": SUBSCRIBE}})
    await eventually(lambda: client.gateway.bus.listeners == 1)  # type: ignore[attr-defined]
    refused = "subscription { entityChanged(types: [TENANT]) { nope } }"
    await socket.say({"id": "2", "type": start, "payload": {"query": refused}})
    await socket.until(lambda m: '"GRAPHQL_VALIDATION_FAILED"' in (m.get("text") or ""))
    await socket.say({"id": "1", "type": end})

    ended = await _counted(client, type="subscription", outcome="ok")
    text = await scrape(client)
    await socket.close()

    assert ended == 1
    assert metric(text, OPERATIONS, outcome="GRAPHQL_VALIDATION_FAILED") == 1
    assert metric(text, OPERATIONS, outcome="INTERNAL_SERVER_ERROR") == 0


async def test_a_query_its_client_ends_before_the_answer_is_counted_cancelled(
    client: Client,
) -> None:
    """Only a subscription ends by its client's word as a matter of course: a query whose
    client gave up before its answer neither succeeded nor failed on the gateway's side."""
    for state in client.sandbox.states.values():
        state.latency = 0.5
    socket = await _connected(client)
    await _send(socket, "1", '{ tenants(first: 1, providers: ["primmo"]) { totalCount } }')
    await eventually(lambda: client.primmo.count() > 0)
    await socket.say({"id": "1", "type": "complete"})

    cancelled = await _counted(client, type="query", outcome="CANCELLED")
    text = await scrape(client)
    await socket.close()

    assert cancelled == 1
    assert metric(text, OPERATIONS, type="query", outcome="ok") == 0


async def test_a_key_on_the_websocket_upgrade_is_no_mutations_idempotency_key(
    client: Client,
) -> None:
    """An `Idempotency-Key` header on the request that opened the socket would be every
    mutation's key on that connection: the second, another write, was refused as the key
    reused, and a repeat answered as a retry. Over a websocket the key is each mutation's
    own, in its input."""
    world = client.sandbox.world
    (first_unit, *_) = world.units_in(world.buildings_of("primmo")[0].id)
    unit = encode_id(Entity.UNIT, "primmo", str(first_unit.id))
    create = (
        "mutation($last: String!) { createTenant(input: {unitId: "
        f'"{unit}", firstName: "Ana", lastName: $last}}) '
        "{ tenant { lastName } errors { code } } }"
    )
    socket = await _connected(client, headers=[(b"idempotency-key", b"k-upgrade")])

    first = await _answer(socket, "1", create, last="Premier")
    second = await _answer(socket, "2", create, last="Second")
    await socket.close()

    assert [a.get("errors") for a in (first, second)] == [None, None], (first, second)
    assert [a["data"]["createTenant"]["tenant"]["lastName"] for a in (first, second)] == [
        "Premier",
        "Second",
    ]
