"""Each operation's fields reach the provider, even when operations share a connection."""

from __future__ import annotations

import json
from typing import Any

from gateway.edge.callers import DEV_KEY
from tests.conftest import Client, Socket


def _text(message: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(message.get("text") or "{}")
    return body


async def test_operations_over_one_websocket_each_get_the_fields_they_ask(
    client: Client,
) -> None:
    """A websocket's context outlives its operations: the selection worked out for a
    place in one must not stand for the same place in the next."""
    listed = await client.data(
        '{ buildings(first: 1, providers: ["primmo"]) { edges { node { id } } } }'
    )
    building = listed["buildings"]["edges"][0]["node"]["id"]
    asked = ["name", "city", "name city street"]
    socket = Socket(client.http._transport.app, "graphql-transport-ws")  # type: ignore[attr-defined]
    await socket.inbox.put({"type": "websocket.connect"})
    await socket.until(lambda m: m["type"] == "websocket.accept")
    await socket.say({"type": "connection_init", "payload": {"X-API-Key": DEV_KEY}})
    await socket.until(lambda m: _text(m).get("type") == "connection_ack")
    answers = []
    for number, fields in enumerate(asked):
        query = f'{{ node(id: "{building}") {{ ... on Building {{ {fields} }} }} }}'
        await socket.say({"id": str(number), "type": "subscribe", "payload": {"query": query}})
        answer = await socket.until(
            lambda m, n=str(number): _text(m).get("id") == n and _text(m).get("type") == "next"
        )
        answers.append(_text(answer)["payload"]["data"]["node"])
    await socket.close()

    expected = await client.data(
        f'{{ node(id: "{building}") {{ ... on Building {{ name city street }} }} }}'
    )
    assert answers == [
        {field: expected["node"][field] for field in fields.split()} for fields in asked
    ]
    assert all(value is not None for value in expected["node"].values())
