"""Whatever a caller sends, the answer is GraphQL-shaped JSON with a code, never a 500.

Hypothesis generates the requests: raw bytes, JSON values of every type, requests whose
members have the wrong type, integers past 64 bits, text that is not UTF-8, odd media
types and headers, and variables for real operations; and websocket messages of every
shape, which must end in the protocol's answer rather than a crashed handler. One gateway
serves them all, in-process, from a loop of its own that outlives the examples.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.clock import ManualClock
from gateway.config import GatewaySettings, Settings
from gateway.edge.callers import DEV_KEY
from gateway.sandbox import Sandbox
from tests.conftest import Client, Socket, graphql_post_scope, serving

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

OPERATIONS = {
    "first": "query($first: Int, $after: String) { buildings(first: $first, after: $after) "
    "{ totalCount pageInfo { endCursor } } }",
    "id": "query($id: ID!) { node(id: $id) { id } }",
    "ids": "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
    "filter": "query($filter: TenantFilter, $first: Int) { tenants(first: $first, "
    "filter: $filter) { totalCount } }",
    "rooms": "query($rooms: RoomsRange) { units(first: 2, rooms: $rooms) { totalCount } }",
    "input": "mutation($input: CreateTenantInput!) { createTenant(input: $input) "
    "{ errors { code } } }",
}
LITERALS = [
    "{ buildings(first: 18446744073709551616) { totalCount } }",
    "{ buildings(first: -18446744073709551616) { totalCount } }",
    "{ buildings(first: 1e400) { totalCount } }",
    '{ node(id: "\\uD800") { id } }',
    "subscription { entityChanged { kind } }",
    "{ __typename }",
    "{",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63 - 2, max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)
queries = st.sampled_from([*OPERATIONS.values(), *LITERALS]) | st.text(max_size=60)
requests = st.fixed_dictionaries(
    {},
    optional={
        "query": queries | json_values,
        "variables": json_values,
        "operationName": st.none() | st.text(max_size=12) | json_values,
        "extensions": json_values
        | st.fixed_dictionaries({"persistedQuery": json_values | st.just({"version": 1})}),
    },
)
media_types = st.sampled_from(
    [
        "application/json",
        "APPLICATION/JSON; CHARSET=UTF-8",
        "Application/Json;charset=latin-1",
        "application/graphql-response+json",
        "application/graphql",
        "application/json5",
        "x-application/json",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "multipart/mixed",
        "",
        ";;;",
    ]
) | st.binary(max_size=40)
header_values = st.binary(max_size=60) | st.sampled_from(
    [
        b"application/graphql-response+json;q=oops",
        b"text/html",
        b"multipart/mixed",
        b"Bearer a.b.c",
        b"Bearer eyJhbGciOiJub25lIn0.e30.",
        b"Bearer " + b"\xff" * 8,
    ]
)
headers = st.dictionaries(
    st.sampled_from(
        [b"accept", b"authorization", b"x-api-key", b"x-request-id", b"if-none-match", b"origin"]
    ),
    header_values,
    max_size=3,
)
methods = st.sampled_from(["POST", "POST", "POST", "GET", "PUT", "DELETE", "PATCH", "OPTIONS"])


def _encoded(value: Any) -> bytes:
    """JSON as a client would send it: the standard library writes integers of any size."""
    return json.dumps(value).encode()


bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(_encoded),
    requests.map(_encoded),
    requests.map(_encoded).map(lambda body: body.replace(b'"', b'"\xff', 1)),
    st.integers(min_value=1, max_value=5000).map(lambda depth: b"[" * depth + b"]" * depth),
)


@dataclass
class Served:
    """The gateway on a loop of its own, called synchronously from the examples."""

    portal: BlockingPortal
    client: Client

    def send(self, method: str, path: str, **options: Any) -> httpx.Response:
        response: httpx.Response = self.portal.call(
            lambda: self.client.http.request(method, path, **options)
        )
        return response


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    clock = ManualClock()
    configured = Settings(gateway=GatewaySettings(subscribe_at_start=False))
    with start_blocking_portal() as portal:
        with portal.wrap_async_context_manager(
            serving(Sandbox(seed=7, clock=clock), clock, configured)
        ) as client:
            yield Served(portal, client)


def assert_graphql_shaped(response: httpx.Response) -> None:
    assert response.status_code != 500, response.text
    if response.status_code == 304:  # a GET with `If-None-Match: *`
        return
    media_type = response.headers.get("content-type", "")
    if media_type.startswith("text/html"):
        assert response.request.method == "GET", "only the GraphiQL page is HTML"
        return
    assert media_type.split(";")[0] in {"application/json", "application/graphql-response+json"}
    body = orjson.loads(response.content)
    assert isinstance(body, dict) and ("data" in body or "errors" in body), body
    for error in body.get("errors", []):
        assert isinstance(error["message"], str)
        assert isinstance(error["extensions"]["code"], str), error
        assert error["extensions"]["code"] != "INTERNAL_SERVER_ERROR", error
    if "data" not in body:
        request_id = response.headers["x-request-id"]
        assert all(e["extensions"]["requestId"] == request_id for e in body["errors"]), body


@FUZZ
@given(body=bodies, media_type=media_types, sent_headers=headers, method=methods)
def test_any_body_with_any_media_type_and_headers_is_answered_as_graphql(
    served: Served,
    body: bytes,
    media_type: str | bytes,
    sent_headers: dict[bytes, bytes],
    method: str,
) -> None:
    chosen = {b"content-type": media_type.encode() if isinstance(media_type, str) else media_type}
    response = served.send(method, "/graphql", content=body, headers={**chosen, **sent_headers})

    assert_graphql_shaped(response)


@FUZZ
@given(request=requests, sent_headers=headers)
def test_any_request_member_of_any_type_is_answered_as_graphql(
    served: Served, request: dict[str, Any], sent_headers: dict[bytes, bytes]
) -> None:
    response = served.send(
        "POST",
        "/graphql",
        content=_encoded(request),
        headers={b"content-type": b"application/json", **sent_headers},
    )

    assert_graphql_shaped(response)


@FUZZ
@given(
    params=st.dictionaries(
        st.sampled_from(["query", "variables", "operationName", "extensions"]),
        st.text(max_size=60) | json_values.map(json.dumps) | queries,
    ),
    sent_headers=headers,
)
def test_any_get_is_answered_as_graphql(
    served: Served, params: dict[str, str], sent_headers: dict[bytes, bytes]
) -> None:
    response = served.send("GET", "/graphql", params=params, headers=sent_headers)

    assert_graphql_shaped(response)


@FUZZ
@given(
    operation=st.sampled_from(sorted(OPERATIONS)),
    variables=st.dictionaries(
        st.sampled_from(["first", "after", "id", "ids", "filter", "rooms", "input", "x"]),
        json_values,
    ),
)
def test_any_variables_for_real_operations_are_answered_as_graphql(
    served: Served, operation: str, variables: dict[str, Any]
) -> None:
    response = served.send(
        "POST",
        "/graphql",
        content=_encoded({"query": OPERATIONS[operation], "variables": variables}),
        headers={"content-type": "application/json"},
    )

    assert_graphql_shaped(response)


message_types = st.sampled_from(
    ["connection_init", "ping", "pong", "subscribe", "complete", "start", "stop"]
)
operations = st.fixed_dictionaries(
    {},
    optional={
        "query": st.sampled_from(["subscription { entityChanged { kind } }", "{ __typename }"])
        | json_values,
        "variables": json_values,
        "operationName": json_values,
    },
)
messages = json_values | st.fixed_dictionaries(
    {},
    optional={
        "type": message_types | json_values,
        "id": st.sampled_from(["1", "2"]) | json_values,
        "payload": operations | json_values,
    },
)


async def _converse(app: Any, protocol: str, sent: list[Any]) -> list[dict[str, Any]]:
    """What the socket answered; leaving raises whatever ended its handler."""
    socket = Socket(app, protocol)
    await socket.inbox.put({"type": "websocket.connect"})
    await socket.say({"type": "connection_init", "payload": {"X-API-Key": DEV_KEY}})
    for message in sent:
        await socket.inbox.put({"type": "websocket.receive", "text": json.dumps(message)})
    await asyncio.sleep(0.01)
    await socket.close()
    return socket.sent


@FUZZ
@given(protocol=st.sampled_from(["graphql-transport-ws", "graphql-ws"]), sent=st.lists(messages))
def test_any_websocket_message_is_answered_by_the_protocol_not_a_crash(
    served: Served, protocol: str, sent: list[Any]
) -> None:
    app = served.client.http._transport.app  # type: ignore[attr-defined]
    served.portal.call(_converse, app, protocol, sent)


@pytest.mark.parametrize("message", [None, "ping", {"id": "1"}, {"type": "subscribe", "id": [1]}])
def test_a_websocket_message_of_the_wrong_shape_closes_with_4400(
    served: Served, message: Any
) -> None:
    app = served.client.http._transport.app  # type: ignore[attr-defined]
    answered = served.portal.call(_converse, app, "graphql-transport-ws", [message])

    assert answered[-1]["type"] == "websocket.close" and answered[-1]["code"] == 4400


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"null", "BAD_REQUEST"),
        (b'"{ __typename }"', "BAD_REQUEST"),
        (b"42", "BAD_REQUEST"),
        (b'{"query": "{ __typename }\xff"}', "BAD_REQUEST"),
        (b"[" * 100_000, "BAD_REQUEST"),
        (b'{"query": "{ __typename }", "operationName": {"x": 1}}', "BAD_REQUEST"),
        (b'{"query": "{ buildings(first: 18446744073709551616) { totalCount } }"}', None),
    ],
)
def test_what_used_to_be_a_plain_text_500_is_a_graphql_error(
    served: Served, content: bytes, code: str | None
) -> None:
    response = served.send(
        "POST", "/graphql", content=content, headers={"content-type": "application/json"}
    )

    assert_graphql_shaped(response)
    errors = response.json()["errors"]
    assert errors[0]["extensions"]["code"] == (code or "PAGE_SIZE_EXCEEDED")


@pytest.mark.parametrize("media_type", ["application/json5", "x-application/json", "text/json"])
def test_a_media_type_that_only_contains_json_is_unsupported(
    served: Served, media_type: str
) -> None:
    response = served.send(
        "POST", "/graphql", content=b"null", headers={"content-type": media_type}
    )

    assert response.status_code == 415, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "UNSUPPORTED_MEDIA_TYPE"


@pytest.mark.parametrize(
    "media_type", ["APPLICATION/JSON", "Application/Json; Charset=UTF-8", "application/json;"]
)
def test_media_types_are_compared_without_regard_to_case(served: Served, media_type: str) -> None:
    response = served.send(
        "POST",
        "/graphql",
        content=b'{"query": "{ __typename }"}',
        headers={"content-type": media_type},
    )

    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"__typename": "Query"}}


def test_an_unknown_route_or_method_is_refused_as_graphql(served: Served) -> None:
    missing = served.send("GET", "/nowhere")
    wrong = served.send("PUT", "/graphql", json={"query": "{ __typename }"})

    assert missing.status_code == 404 and missing.json()["errors"][0]["extensions"]["code"] == (
        "NOT_FOUND"
    )
    assert wrong.status_code == 405
    assert wrong.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"
    assert wrong.json()["errors"][0]["extensions"]["requestId"] == wrong.headers["x-request-id"]


async def test_an_unforeseen_exception_is_an_internal_error_with_the_request_id(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    app: FastAPI = client.http._transport.app  # type: ignore[attr-defined]

    @app.get("/fails")
    async def fails() -> None:
        raise RuntimeError("a bug")

    response = await client.http.get("/fails", headers={"X-Request-ID": "bug-1"})

    assert response.status_code == 500
    assert response.json()["errors"][0]["extensions"] == {
        "code": "INTERNAL_SERVER_ERROR",
        "requestId": "bug-1",
    }
    assert "a bug" not in response.text
    logged = [r for r in caplog.records if r.name == "gateway.http"]
    assert logged and logged[0].exc_info is not None and "a bug" in str(logged[0].exc_info[1])


async def test_a_caller_gone_before_its_body_is_read_is_no_error(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    """What the server hands the app when a caller hangs up, or when its parser refuses the
    body midway (a chunk size that is not hex): nothing to answer, and nothing the gateway
    did wrong, so no traceback at ERROR."""
    caplog.set_level(logging.INFO, logger="gateway.http")
    app: FastAPI = client.http._transport.app  # type: ignore[attr-defined]
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await app(graphql_post_scope(30), receive, send)

    assert sent == []
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert any("left before its request was read" in r.getMessage() for r in caplog.records)
