"""Refused operations leave nothing behind: a caller sending texts that will not run
cannot grow the gateway's memory."""

from __future__ import annotations

import gc
import uuid
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi import FastAPI
from starlette.datastructures import State

from schema import documents
from tests.conftest import Client, error_codes, graphql_post_scope

STATUS = Path("/proc/self/status")


def _resident_bytes() -> int:
    for line in STATUS.read_text(encoding="utf-8").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def _one_letter_fields(characters: int) -> str:
    """`query Q… { a a a … }`, distinct each time: the densest tree a text can parse to,
    some 280 bytes a character."""
    head = f"query Q{uuid.uuid4().hex} {{ "
    return head + "a " * ((characters - len(head) - 1) // 2) + "}"


@pytest.mark.skipif(not STATUS.is_file(), reason="reads VmRSS from Linux's /proc")
async def test_thousands_of_distinct_refused_queries_leave_memory_within_budget(
    client: Client,
) -> None:
    """Kept whole, as they once were, these would be 57 MB a large text and a quarter of
    a megabyte a small one; the budget is that of the documents cache, which takes none
    of them."""
    await client.query(_one_letter_fields(1_000))
    gc.collect()
    before = _resident_bytes()
    refusals: set[str] = set()
    kept = 0

    for characters, count in ((190_000, 2_000), (1_000, 300)):
        for _ in range(count):
            text = _one_letter_fields(characters)
            refusals.update(error_codes(await client.query(text)))
            kept += text in documents._kept
    gc.collect()
    grown = _resident_bytes() - before

    assert refusals == {"TOO_MANY_CHARACTERS", "TOO_MANY_ROOT_FIELDS"}
    assert kept == 0
    assert grown < documents.BUDGET_BYTES, f"grew {grown / 2**20:.1f} MiB"


def _dicts_within(value: object) -> Iterator[dict[Any, Any]]:
    """Every dict reachable from `value` through dicts, lists, tuples and the `State` that
    `request.state` keeps its values in."""
    seen: set[int] = set()
    waiting = [value]
    while waiting:
        each = waiting.pop()
        if id(each) in seen:
            continue
        seen.add(id(each))
        if isinstance(each, State):
            waiting.append(vars(each)["_state"])
        elif isinstance(each, dict):
            yield each
            waiting.extend(each.values())
        elif isinstance(each, list | tuple):
            waiting.extend(each)


async def test_a_connection_keeps_nothing_of_its_last_answer(client: Client) -> None:
    """The server keeps a connection's scope until its next request, or until it closes.
    An answer left in it (in `request.state`) lived that long: 1,000 units' worth on every
    idle keep-alive connection, and long enough for the collector to promote it."""
    app: FastAPI = client.http._transport.app  # type: ignore[attr-defined]
    body = orjson.dumps({"query": "{ units(first: 5) { edges { node { sourceId } } } }"})
    scope = {**graphql_post_scope(len(body)), "state": {}}
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)

    answer = orjson.loads(b"".join(m.get("body", b"") for m in sent))
    assert len(answer["data"]["units"]["edges"]) == 5
    assert [found for found in _dicts_within(scope) if "units" in found] == []
