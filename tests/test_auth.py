"""Tokens: one fetch for a crowd, one renewal at expiry, one renewal after revocation."""

from __future__ import annotations

import asyncio

from tests.conftest import Client

TOKEN = "/api/Token"
QUERY = '{ buildings(first: 2, providers: ["primmo"]) { edges { node { name } } } }'
"""Primmo's token is what these count; asking the other providers too only added load
(100 in-process SCOM queries timed out on a busy machine)."""


async def test_a_hundred_concurrent_queries_on_a_cold_gateway_fetch_one_token(
    client: Client,
) -> None:
    results = await asyncio.gather(*(client.data(QUERY) for _ in range(100)))

    assert all(len(result["buildings"]["edges"]) == 2 for result in results)
    assert client.primmo.count("POST", TOKEN) == 1


async def test_the_token_is_renewed_once_after_its_24_hours(client: Client) -> None:
    await client.data(QUERY)
    client.clock.advance(23 * 3600)
    await asyncio.gather(*(client.data(QUERY) for _ in range(20)))
    assert client.primmo.count("POST", TOKEN) == 1

    client.clock.advance(3600 + 1)
    await asyncio.gather(*(client.data(QUERY) for _ in range(20)))

    assert client.primmo.count("POST", TOKEN) == 2


async def test_a_revoked_token_is_renewed_once_and_the_queries_succeed(client: Client) -> None:
    await client.data(QUERY)
    client.primmo.revoke_tokens()

    results = await asyncio.gather(*(client.data(QUERY) for _ in range(20)))

    assert all(len(result["buildings"]["edges"]) == 2 for result in results)
    assert client.primmo.count("POST", TOKEN) == 2
