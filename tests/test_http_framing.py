"""Malformed HTTP, sent on a socket to `gateway serve` as a user runs it.

The hostile-input suites (`test_malformed_requests.py`) speak ASGI to the app in-process, so
no request of theirs reaches the HTTP parser: bytes that are not HTTP, or HTTP framed two
ways at once, are the server's to refuse before the app sees anything. Each case here is
refused with a 400 and the connection closed, nothing is answered as a request it did not
make, nothing is logged as an error (the gateway did nothing wrong), and the gateway goes
on serving. The hidden request of the smuggling case asks for
its connection's close, so that a server that answers it fails the test at once.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import suppress
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from gateway.edge.callers import DEV_KEY

QUERY = b'{"query": "{ __typename }"}'
MALFORMED = {
    "not HTTP": b"HELLO THERE\r\n\r\n",
    "a space in the target": b"GET /graph ql HTTP/1.1\r\nHost: x\r\n\r\n",
    "a header without a colon": b"GET /healthz HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n",
    "a header name with a space": b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n",
    "headers unfinished past 16 KiB": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "
    + b"a" * 20_000,
    "a length that is not a number": b"POST /graphql HTTP/1.1\r\nHost: x\r\n"
    b"Content-Length: 12abc\r\n\r\n" + QUERY,
    "two lengths that disagree": b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
    b"Content-Length: 30\r\n\r\n" + QUERY,
    "a chunk size that is not hex": b"POST /graphql HTTP/1.1\r\nHost: x\r\n"
    b"Transfer-Encoding: chunked\r\n\r\nzz\r\n" + QUERY + b"\r\n0\r\n\r\n",
}
"""Requests h11 refuses (the parser uvicorn runs `gateway serve` with). It bounds headers by
what is left unparsed between two reads (16 KiB), so the long header is sent unfinished: a
block that arrives whole in one read may be longer."""


async def _exchange(url: str, raw: bytes, seconds: float = 5) -> bytes:
    """What the server sends back for `raw`, until it closes the connection."""
    address = urlsplit(url)
    assert address.hostname is not None and address.port is not None
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    try:
        writer.write(raw)
        await writer.drain()
        async with asyncio.timeout(seconds):
            return await reader.read()
    finally:
        writer.close()
        with suppress(ConnectionError):
            await writer.wait_closed()


def _status(answer: bytes) -> bytes:
    return answer.split(b"\r\n", 1)[0]


def _logged_so_far(log: Path) -> int:
    return log.stat().st_size


def _errors_logged(log: Path, since: int) -> list[str]:
    """The messages of the records at ERROR or above that `log` gained past byte `since`."""
    with log.open("rb") as lines:
        lines.seek(since)
        records = [json.loads(line) for line in lines if line.strip()]
    return [each["message"] for each in records if each["level"] in ("ERROR", "CRITICAL")]


@pytest.mark.parametrize("raw", MALFORMED.values(), ids=MALFORMED.keys())
async def test_malformed_http_is_a_400_and_a_closed_connection(
    live_gateway: str, live_gateway_log: Path, raw: bytes
) -> None:
    logged = _logged_so_far(live_gateway_log)

    answer = await _exchange(live_gateway, raw)

    assert _status(answer) == b"HTTP/1.1 400 Bad Request"
    assert answer.count(b"HTTP/1.1 ") == 1, "one answer, then the connection closes"
    async with httpx.AsyncClient(timeout=5) as http:
        assert (await http.get(f"{live_gateway}/healthz")).status_code == 200
    assert _errors_logged(live_gateway_log, logged) == []


async def test_a_bad_chunk_after_the_gateway_answered_closes_the_connection_quietly(
    live_gateway: str, live_gateway_log: Path
) -> None:
    """A head without a key is answered (401) before its body comes; a chunk size that is not
    hex after that cannot be refused with a 400 behind the answer. The connection is closed,
    the caller keeps its 401, and nothing is logged as an error (h11 had raised inside the
    server's own callback, and the event loop logged a fatal error on the transport)."""
    logged = _logged_so_far(live_gateway_log)
    address = urlsplit(live_gateway)
    assert address.hostname is not None and address.port is not None
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    try:
        writer.write(
            b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        async with asyncio.timeout(5):
            head = await reader.readuntil(b"\r\n\r\n")
        writer.write(b"zz\r\n" + QUERY + b"\r\n0\r\n\r\n")
        async with asyncio.timeout(5):
            rest = await reader.read()
    finally:
        writer.close()
        with suppress(ConnectionError):
            await writer.wait_closed()

    assert _status(head) == b"HTTP/1.1 401 Unauthorized"
    assert b"HTTP/1.1 " not in rest, "nothing follows the answer the caller has"
    async with httpx.AsyncClient(timeout=5) as http:
        assert (await http.get(f"{live_gateway}/healthz")).status_code == 200
    assert _errors_logged(live_gateway_log, logged) == []


async def test_a_request_framed_by_both_length_and_chunks_is_not_smuggled(
    live_gateway: str,
) -> None:
    """A body framed both ways could hide a second request inside the first (request
    smuggling, RFC 9112 §6.3): refused whole, the hidden request is never answered."""
    hidden = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    chunked = b"0\r\n\r\n" + hidden
    raw = (
        b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(chunked)).encode() + b"\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + chunked
    )

    answer = await _exchange(live_gateway, raw)

    assert _status(answer) == b"HTTP/1.1 400 Bad Request"
    assert answer.count(b"HTTP/1.1 ") == 1, "the hidden request is not answered"
    assert b'"code":"BAD_REQUEST"' in answer


async def test_pipelined_requests_are_each_answered_in_order(live_gateway: str) -> None:
    """The well-formed case beside the malformed ones: two requests sent at once on one
    connection get their two answers, the GraphQL one whole, in the order asked."""
    post = (
        b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"X-API-Key: " + DEV_KEY.encode() + b"\r\n"
        b"Content-Length: " + str(len(QUERY)).encode() + b"\r\n\r\n" + QUERY
    )
    last = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

    answer = await _exchange(live_gateway, post + last)

    before, first, second = answer.split(b"HTTP/1.1 ")
    assert before == b""
    assert first.startswith(b"200 OK") and first.endswith(b'{"data":{"__typename":"Query"}}')
    assert second.startswith(b"200 OK")
