"""Operations sent again are neither parsed nor validated again; refused ones are not
validated at all, and nothing that may not run is kept."""

from __future__ import annotations

import gc
import json
import tracemalloc
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from graphql import parse
from strawberry.schema.schema import validate_document

from gateway.edge.callers import DEV_KEY
from schema import documents
from tests.conftest import Client, Socket, error_codes


def _unique(selection: str) -> str:
    """An operation text no other test sends, so the shared caches start cold for it."""
    return f"query Q{uuid.uuid4().hex} {{ {selection} }}"


def _text(message: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(message.get("text") or "{}")
    return body


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many times the gateway parsed and validated, from here on."""
    counted: Counter[str] = Counter()

    def counting(name: str, step: Callable[..., Any]) -> Callable[..., Any]:
        def counted_step(*args: Any, **kwargs: Any) -> Any:
            counted[name] += 1
            return step(*args, **kwargs)

        return counted_step

    monkeypatch.setattr(documents, "parse", counting("parse", parse))
    monkeypatch.setattr(documents, "validate_document", counting("validate", validate_document))
    return counted


async def test_an_operation_sent_again_is_parsed_and_validated_once(
    client: Client, calls: Counter[str]
) -> None:
    query = _unique('buildings(first: 2, providers: ["primmo"]) { edges { node { name } } }')

    first = await client.data(query)
    second = await client.data(query)

    assert first == second and len(first["buildings"]["edges"]) == 2
    assert calls == {"parse": 1, "validate": 1}


async def test_an_invalid_operation_sent_again_is_refused_again(client: Client) -> None:
    query = _unique("buildings { edges { node { noSuchField } } }")

    first = await client.query(query)
    second = await client.query(query)

    assert error_codes(first) == error_codes(second) == ["GRAPHQL_VALIDATION_FAILED"]
    assert first["errors"][0]["message"] == second["errors"][0]["message"]


async def test_an_operation_over_the_limits_is_neither_validated_nor_kept(
    client: Client, calls: Counter[str]
) -> None:
    query = _unique(" ".join(f"a{n}: providers {{ name }}" for n in range(40)))

    body = await client.query(query)

    assert error_codes(body) == ["TOO_MANY_ALIASES"]
    assert calls["validate"] == 0
    assert query not in documents._kept


async def test_a_text_too_long_is_not_even_parsed(client: Client, calls: Counter[str]) -> None:
    long = _unique("providers { name } " + " " * 100_000)
    many = _unique("providers { " + "name " * 3000 + "}")
    named = {"query": long, "operationName": long.split()[1]}

    bodies = [
        await client.query(long),
        await client.query(many),
        (await client.http.post("/graphql", json=named)).json(),
    ]

    assert [error_codes(body) for body in bodies] == [
        ["TOO_MANY_CHARACTERS"],
        ["TOO_MANY_TOKENS"],
        ["TOO_MANY_CHARACTERS"],
    ]
    assert (
        bodies[0]["errors"][0]["extensions"].items()
        >= {
            "code": "TOO_MANY_CHARACTERS",
            "limit": 100_000,
            "actual": len(long),
        }.items()
    )
    assert calls == {}


async def test_an_operation_that_does_not_parse_keeps_its_code_when_sent_again(
    client: Client,
) -> None:
    query = _unique("buildings {")

    bodies = [await client.query(query) for _ in range(2)]

    assert [error_codes(body) for body in bodies] == [["GRAPHQL_PARSE_FAILED"]] * 2


@pytest.mark.parametrize(
    "text",
    [
        "query Q { " + "a " * 2900 + "}",
        "{ " + " ".join(f"a{n}: providers {{ name }}" for n in range(400)) + " }",
        "query Q(" + " ".join(f"$v{n}: Int" for n in range(700)) + ") { a }",
        '{ a(x: "' + "y" * 50_000 + '") }',
    ],
    ids=["one-letter fields", "aliases", "variables", "a long string"],
)
def test_a_kept_document_weighs_at_least_what_it_holds(text: str) -> None:
    gc.collect()
    tracemalloc.start()
    try:
        document = parse(text)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert documents._Kept(document, documents._tokens(document)).weight >= held


async def test_a_text_too_long_is_refused_over_a_websocket_too(
    client: Client, calls: Counter[str]
) -> None:
    socket = Socket(client.http._transport.app, "graphql-transport-ws")  # type: ignore[attr-defined]
    await socket.inbox.put({"type": "websocket.connect"})
    await socket.until(lambda m: m["type"] == "websocket.accept")
    await socket.say({"type": "connection_init", "payload": {"X-API-Key": DEV_KEY}})
    await socket.until(lambda m: _text(m).get("type") == "connection_ack")
    subscription = "subscription { entityChanged { kind " + "sourceId " * 3000 + "} }"

    await socket.say({"id": "1", "type": "subscribe", "payload": {"query": subscription}})
    refused = await socket.until(lambda m: _text(m).get("id") == "1")
    await socket.close()

    assert _text(refused)["type"] == "error"
    assert [e["extensions"]["code"] for e in _text(refused)["payload"]] == ["TOO_MANY_TOKENS"]
    assert calls == {}
