"""An operation refused over a websocket: an error for its id, with the code HTTP gives it.

Found by a new user: over graphql-transport-ws these errors carried no code, and a syntax
error closed the socket with 4400, ending every other subscription on it; over the legacy
graphql-ws a query was an error without a code, logged as unexpected, and every refusal
left its operation to be closed by the event loop, which logged `Task exception was
never retrieved`.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.clock import ManualClock
from gateway.config import Settings
from gateway.edge.callers import DEV_KEY
from gateway.events import Change, ChangeKind
from gateway.model import Entity
from gateway.observability.tracing import Tracing
from gateway.sandbox import Sandbox
from tests.conftest import Client, Socket, eventually, serving
from tests.test_graphql_over_http import ACKNOWLEDGE, MUTATION_THEN_QUERY
from tests.test_realtime import SUBSCRIBE

TWO_SUBSCRIPTIONS = (
    "subscription A { entityChanged { kind } } subscription B { entityChanged { kind } }"
)
REFUSED = [
    ("subscription { entityChanged(types: [TENANT]) { nope } }", "GRAPHQL_VALIDATION_FAILED"),
    ("subscription {", "GRAPHQL_PARSE_FAILED"),
    ("", "BAD_REQUEST"),
    ("subscription { entityChanged { kind " + "a: kind " * 40 + "} }", "TOO_MANY_ALIASES"),
    ("subscription { entityChanged { " + "kind " * 3000 + "} }", "TOO_MANY_TOKENS"),
    (TWO_SUBSCRIPTIONS, "OPERATION_RESOLUTION_FAILURE"),
]
"""Each operation and the code it is refused with, over either protocol."""
ONLY_SUBSCRIPTIONS = [
    ("{ __typename }", "NOT_A_SUBSCRIPTION"),
    (ACKNOWLEDGE, "NOT_A_SUBSCRIPTION"),
    (MUTATION_THEN_QUERY, "OPERATION_RESOLUTION_FAILURE"),
]
"""What graphql-ws, which runs subscriptions only, refuses besides."""
S = TypeVar("S", bound=Socket)

REFUSED_AT_THE_EDGE = {"NOT_A_SUBSCRIPTION", "OPERATION_RESOLUTION_FAILURE", "BAD_REQUEST"}
"""Refused before the schema sees the operation: no span, no metrics."""


@pytest.fixture
async def traced(
    sandbox: Sandbox, clock: ManualClock, settings: Settings
) -> AsyncIterator[tuple[Client, InMemorySpanExporter]]:
    """Traced, as an operator may run it: a span left open by an operation that was not
    closed where it ran is an error in OpenTelemetry's log too."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = Tracing(provider.get_tracer("test"), provider)
    async with serving(sandbox, clock, settings, tracing=tracing) as served:
        yield served, exporter


class _SlowReader(Socket):
    """A client slow to read: each `data` message waits in the send until `read` is set."""

    def __init__(self, app: Any, protocol: str) -> None:
        super().__init__(app, protocol)
        self.sending = asyncio.Event()
        self.read = asyncio.Event()

    async def _send(self, message: dict[str, Any]) -> None:
        if '"data"' in (message.get("text") or ""):
            self.sending.set()
            await self.read.wait()
        await super()._send(message)


async def _opened(socket: S) -> S:
    await socket.inbox.put({"type": "websocket.connect"})
    await socket.until(lambda m: m["type"] == "websocket.accept")
    await socket.say({"type": "connection_init", "payload": {"X-API-Key": DEV_KEY}})
    await socket.until(lambda m: '"connection_ack"' in (m.get("text") or ""))
    return socket


async def _connected(client: Client, protocol: str) -> Socket:
    return await _opened(Socket(client.http._transport.app, protocol))  # type: ignore[attr-defined]


def _about(operation: str) -> Callable[[dict[str, Any]], bool]:
    return lambda message: json.loads(message.get("text") or "{}").get("id") == operation


async def _refused_beside_a_subscription(
    client: Client, protocol: str, query: str
) -> tuple[Socket, dict[str, Any]]:
    """Operation 2 sent on a connection where subscription 1 listens: the socket, and the
    message that answered operation 2."""
    start = "subscribe" if protocol == "graphql-transport-ws" else "start"
    socket = await _connected(client, protocol)
    await socket.say({"id": "1", "type": start, "payload": {"query": SUBSCRIBE}})
    await eventually(lambda: client.gateway.bus.listeners == 1)  # type: ignore[attr-defined]
    await socket.say({"id": "2", "type": start, "payload": {"query": query}})
    answer = await socket.until(_about("2"))
    return socket, json.loads(answer["text"])


async def _left_behind() -> None:
    """Until what the refusal left for the loop has run and been collected: an operation's
    stream dropped unclosed is closed by a task of the loop's, whose failure is logged
    only when that task is freed."""
    for _ in range(3):
        await asyncio.sleep(0.05)
        gc.collect()


def _errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.mark.parametrize(("query", "code"), REFUSED, ids=[code for _, code in REFUSED])
async def test_over_graphql_transport_ws_a_refused_operation_is_an_error_for_its_id_only(
    traced: tuple[Client, InMemorySpanExporter],
    caplog: pytest.LogCaptureFixture,
    query: str,
    code: str,
) -> None:
    """The protocol closes with 4400 for a message it does not define; a subscribe message
    it defines, whose operation is refused before it runs, is answered with an `error`
    message for that id (graphql-ws's PROTOCOL.md, `Error`)."""
    client, exporter = traced
    socket, message = await _refused_beside_a_subscription(client, "graphql-transport-ws", query)
    await socket.say({"type": "ping"})
    await socket.until(lambda m: '"pong"' in (m.get("text") or ""))
    await _left_behind()
    closed = [m for m in socket.sent if m["type"] == "websocket.close"]
    listening = client.gateway.bus.listeners  # type: ignore[attr-defined]
    ended = exporter.get_finished_spans()
    await socket.close()

    assert message["type"] == "error", message
    assert [e["extensions"]["code"] for e in message["payload"]] == [code]
    assert closed == [] and listening == 1
    assert _errors_logged(caplog) == []
    outcomes = [(span.attributes or {}).get("propgate.outcome") for span in ended]
    assert outcomes == ([] if code in REFUSED_AT_THE_EDGE else [code])


@pytest.mark.parametrize(
    ("query", "code"),
    REFUSED + ONLY_SUBSCRIPTIONS,
    ids=[code for _, code in REFUSED + ONLY_SUBSCRIPTIONS],
)
async def test_over_graphql_ws_a_refused_operation_is_an_error_with_its_code_logging_none(
    traced: tuple[Client, InMemorySpanExporter],
    caplog: pytest.LogCaptureFixture,
    query: str,
    code: str,
) -> None:
    client, exporter = traced
    socket, message = await _refused_beside_a_subscription(client, "graphql-ws", query)
    await _left_behind()
    listening = client.gateway.bus.listeners  # type: ignore[attr-defined]
    ended = exporter.get_finished_spans()
    await socket.close()

    assert message["type"] == "error", message
    assert message["payload"]["extensions"]["code"] == code
    assert listening == 1
    assert _errors_logged(caplog) == []
    assert client.sandbox.states["leap"].count() == 0
    outcomes = [(span.attributes or {}).get("propgate.outcome") for span in ended]
    assert outcomes == ([] if code in REFUSED_AT_THE_EDGE else [code])


async def test_over_graphql_transport_ws_a_document_naming_no_single_operation_runs_none(
    client: Client,
) -> None:
    socket = await _connected(client, "graphql-transport-ws")

    await socket.say({"id": "1", "type": "subscribe", "payload": {"query": MUTATION_THEN_QUERY}})
    refusal = await socket.until(_about("1"))
    await socket.say(
        {
            "id": "2",
            "type": "subscribe",
            "payload": {"query": MUTATION_THEN_QUERY, "operationName": "Nope"},
        }
    )
    unknown = await socket.until(_about("2"))
    await socket.close()

    for message in (json.loads(refusal["text"]), json.loads(unknown["text"])):
        assert message["type"] == "error", message
        assert [e["extensions"]["code"] for e in message["payload"]] == [
            "OPERATION_RESOLUTION_FAILURE"
        ]
    assert client.sandbox.states["leap"].count() == 0


@pytest.mark.parametrize(
    ("member", "value"),
    [("variables", [1]), ("variables", "{}"), ("extensions", [1]), ("operationName", 5)],
)
async def test_over_graphql_transport_ws_a_payload_member_of_the_wrong_type_says_which(
    client: Client, member: str, value: object
) -> None:
    """Found by a new user: `"variables": [1]` closed the socket with 4400 "WebSocket
    message must be valid JSON", which it is. graphql-ws's PROTOCOL.md types the payload
    (`variables?: Record<string, unknown> | null`) and closes with 4400 on "a message of a
    type or format which is not specified", so the close stays; its reason names the member."""
    socket = await _connected(client, "graphql-transport-ws")
    await socket.say({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}})
    await eventually(lambda: client.gateway.bus.listeners == 1)  # type: ignore[attr-defined]
    await socket.say(
        {"id": "2", "type": "subscribe", "payload": {"query": SUBSCRIBE, member: value}}
    )
    closed = await socket.until(lambda m: m["type"] == "websocket.close")
    await socket.close()

    assert closed["code"] == 4400
    assert f"`{member}`" in closed["reason"] and "JSON" not in closed["reason"]
    assert len(closed["reason"].encode()) <= 123  # what a close frame can carry


async def test_over_graphql_ws_a_stop_while_a_change_is_sent_ends_that_subscription_only(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    """Found with the fix above: `stop` closed the operation's stream from the connection's
    own task whenever the operation was not inside it (here, sending a change to a slow
    client), so the extensions' context variables were reset in a context that had not
    set them, and the `ValueError` ended the connection's handler and every subscription
    on it."""
    socket = await _opened(_SlowReader(client.http._transport.app, "graphql-ws"))  # type: ignore[attr-defined]
    await socket.say({"id": "1", "type": "start", "payload": {"query": SUBSCRIBE}})
    await eventually(lambda: client.gateway.bus.listeners == 1)  # type: ignore[attr-defined]
    await client.gateway.bus.publish(Change(ChangeKind.DELETED, Entity.TENANT, "primmo", "1"))
    async with asyncio.timeout(5):
        await socket.sending.wait()

    await socket.say({"id": "1", "type": "stop"})
    await socket.until(lambda m: '"complete"' in (m.get("text") or ""))
    await socket.say({"id": "2", "type": "start", "payload": {"query": SUBSCRIBE}})
    await eventually(lambda: client.gateway.bus.listeners == 1)  # type: ignore[attr-defined]
    socket.read.set()
    await socket.close()

    assert _errors_logged(caplog) == []
