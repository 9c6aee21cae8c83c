"""Identical reads in flight at the same moment reach the provider once; nothing else is shared."""

from __future__ import annotations

import asyncio
import gzip

import httpx

from gateway.upstream.transports import Coalesce
from tests.conftest import Client


class _Slow(httpx.AsyncBaseTransport):
    """A provider that answers after `delay`, counting what it receives."""

    def __init__(self, delay: float = 0.05, fail: bool = False) -> None:
        self.delay = delay
        self.fail = fail
        self.received: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.received.append(request)
        number = len(self.received)
        await asyncio.sleep(self.delay)
        if self.fail:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"n": number}, request=request)


def _get(
    transport: httpx.AsyncBaseTransport, url: str, **headers: str
) -> asyncio.Future[httpx.Response]:
    request = httpx.Request("GET", url, headers=headers)
    return asyncio.ensure_future(transport.handle_async_request(request))


async def test_identical_concurrent_queries_send_one_upstream_request(client: Client) -> None:
    query = '{ buildings(first: 5, providers: ["primmo"]) { edges { node { sourceId name } } } }'
    await client.data(query)
    client.primmo.reset_counter()
    client.primmo.latency = 0.05

    answers = await asyncio.gather(*(client.data(query) for _ in range(20)))

    assert all(answer == answers[0] for answer in answers)
    assert len(answers[0]["buildings"]["edges"]) == 5
    assert client.primmo.count("GET", "/api/Buildings") == 1


async def test_different_credentials_or_urls_are_never_shared() -> None:
    provider = _Slow()
    coalesce = Coalesce(provider)

    tasks = [
        _get(coalesce, "http://p/a", authorization="Bearer one", **{"x-request-id": "r1"}),
        _get(coalesce, "http://p/a", authorization="Bearer one", **{"x-request-id": "r2"}),
        _get(coalesce, "http://p/a", authorization="Bearer two"),
        _get(coalesce, "http://p/b", authorization="Bearer one"),
    ]
    responses = await asyncio.gather(*tasks)

    assert len(provider.received) == 3
    assert [response.json()["n"] for response in responses] == [1, 1, 2, 3]
    assert responses[1].request.headers["x-request-id"] == "r2"


async def test_writes_are_never_coalesced() -> None:
    provider = _Slow()
    coalesce = Coalesce(provider)

    await asyncio.gather(
        *(coalesce.handle_async_request(httpx.Request("POST", "http://p/a")) for _ in range(3))
    )

    assert len(provider.received) == 3


async def test_a_caller_giving_up_does_not_fail_the_others() -> None:
    provider = _Slow(delay=0.1)
    coalesce = Coalesce(provider)
    first, second = _get(coalesce, "http://p/a"), _get(coalesce, "http://p/a")
    await asyncio.sleep(0.01)

    first.cancel()

    assert (await second).json() == {"n": 1}
    assert first.cancelled() and len(provider.received) == 1


async def test_a_failure_reaches_every_waiter_and_the_next_read_goes_upstream_again() -> None:
    provider = _Slow(fail=True)
    coalesce = Coalesce(provider)

    outcomes = await asyncio.gather(
        _get(coalesce, "http://p/a"), _get(coalesce, "http://p/a"), return_exceptions=True
    )
    provider.fail = False
    again = await _get(coalesce, "http://p/a")

    assert all(isinstance(outcome, httpx.ConnectError) for outcome in outcomes)
    assert again.json() == {"n": 2} and len(provider.received) == 2


async def test_each_copy_is_decoded_on_its_own() -> None:
    class _Gzipped(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            await asyncio.sleep(0.02)
            return httpx.Response(
                200,
                headers={"content-encoding": "gzip"},
                content=gzip.compress(b'{"a":1}'),
                request=request,
            )

    coalesce = Coalesce(_Gzipped())

    responses = await asyncio.gather(_get(coalesce, "http://p/a"), _get(coalesce, "http://p/a"))

    for response in responses:
        await response.aread()
    assert [response.json() for response in responses] == [{"a": 1}, {"a": 1}]
