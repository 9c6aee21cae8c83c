"""Replicas sharing state through a real Redis: tokens, the entity cache, de-duplication,
and what happens while Redis is down. Each replica is its own `RedisLink` (its own
connection pool), as each gateway process has; the two-process test is in
`test_replicas_e2e.py`."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest

from gateway.clock import ManualClock
from gateway.config import GatewaySettings, Settings
from gateway.model import Entity, Selection, Tenant
from gateway.sandbox import Sandbox
from gateway.sandbox.pms import CREDENTIALS as PMS
from gateway.state.cache.redis import RedisEntityCache
from gateway.state.redis import RedisLink
from gateway.state.tokens import Token
from gateway.state.tokens.redis import RedisTokens
from gateway.upstream.auth import CachedTokenAuth, TokenFetched
from tests.conftest import Socket, serving
from tests.redis_server import RedisServer
from tests.test_realtime import _pms_delivery

ACCOUNT = {"url": "https://primmo.example", "credentials": {"password": "p"}}
QUERY = '{ buildings(first: 2, providers: ["primmo"]) { edges { node { name } } } }'


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    with RedisServer().running() as server:
        yield server


@pytest.fixture
async def replicas(redis_server: RedisServer) -> AsyncIterator[tuple[RedisLink, RedisLink]]:
    one, two = RedisLink(redis_server.url), RedisLink(redis_server.url)
    yield one, two
    await one.aclose()
    await two.aclose()


class TokenEndpoint:
    """A provider's token endpoint: each request takes a moment and issues a new token."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.issued: list[str] = []
        self.given: list[Token | None] = []

    async def fetch(self, previous: Token | None) -> Token:
        self.given.append(previous)
        await asyncio.sleep(0.05)
        self.issued.append(f"token-{len(self.issued) + 1}")
        return Token(
            self.issued[-1], self.clock() + 3600, refresh_token=f"refresh-{self.issued[-1]}"
        )


def _auth(
    link: RedisLink,
    endpoint: TokenEndpoint,
    fetched: TokenFetched = lambda _outcome: None,
    **options: float,
) -> CachedTokenAuth:
    clock = endpoint.clock
    return CachedTokenAuth(
        endpoint.fetch, clock, RedisTokens(link, "primmo", ACCOUNT, clock, **options), fetched
    )


async def test_a_crowd_on_two_replicas_costs_one_token_request(
    replicas: tuple[RedisLink, RedisLink],
) -> None:
    endpoint = TokenEndpoint(ManualClock())
    counted: tuple[list[str], list[str]] = ([], [])
    one = _auth(replicas[0], endpoint, counted[0].append)
    two = _auth(replicas[1], endpoint, counted[1].append)

    values = await asyncio.gather(*(auth.token() for auth in [one, two] * 50))

    assert set(values) == {"token-1"}
    assert endpoint.issued == ["token-1"]
    assert sorted(counted, key=len) == [[], ["ok"]], "only the replica that fetched counts it"
    stored = await replicas[0].client.keys("propgate:*")
    dumped = [await replicas[0].client.hgetall(key) for key in stored]
    assert len(stored) == 1 and b"token-1" not in repr(dumped).encode()
    ttl = await replicas[0].client.pttl(stored[0])
    assert 0 < ttl <= 3600_000


async def test_a_lock_holder_that_hangs_or_dies_holds_the_others_back_only_until_the_lock_expires(
    replicas: tuple[RedisLink, RedisLink],
) -> None:
    clock = ManualClock()
    holding, released = asyncio.Event(), asyncio.Event()

    async def hang(_previous: Token | None) -> Token:
        holding.set()
        await released.wait()
        raise RuntimeError("the holder gave up long after its lock expired")

    dead = CachedTokenAuth(
        hang, clock, RedisTokens(replicas[0], "primmo", ACCOUNT, clock, lock_seconds=0.6)
    )
    stuck = asyncio.ensure_future(dead.token())
    await holding.wait()
    endpoint = TokenEndpoint(clock)
    started = time.monotonic()

    value = await asyncio.wait_for(_auth(replicas[1], endpoint).token(), 5)

    waited = time.monotonic() - started
    released.set()
    await asyncio.gather(stuck, return_exceptions=True)
    assert value == "token-1" and endpoint.issued == ["token-1"]
    assert 0.4 < waited < 2.5


async def test_a_401_drops_the_token_for_every_replica_but_renews_it_once(
    replicas: tuple[RedisLink, RedisLink],
) -> None:
    endpoint = TokenEndpoint(ManualClock())
    one, two = _auth(replicas[0], endpoint), _auth(replicas[1], endpoint)
    first = await one.token()
    assert await two.token() == first

    await one.invalidate(first)
    assert await RedisTokens(replicas[1], "primmo", ACCOUNT, endpoint.clock).usable() is None
    fresh = await one.token()
    await two.invalidate(first)

    assert await two.token() == fresh == "token-2"
    assert endpoint.issued == ["token-1", "token-2"]


async def test_a_renewal_on_one_replica_uses_the_refresh_token_another_obtained(
    replicas: tuple[RedisLink, RedisLink],
) -> None:
    endpoint = TokenEndpoint(ManualClock())
    one, two = _auth(replicas[0], endpoint), _auth(replicas[1], endpoint)
    await one.token()
    endpoint.clock.advance(3600 - 30)

    renewed = await two.token()

    assert renewed == "token-2" and await one.token() == "token-2"
    previous = endpoint.given[-1]
    assert previous is not None and previous.refresh_token == "refresh-token-1"


async def test_another_account_never_shares_the_token(
    replicas: tuple[RedisLink, RedisLink],
) -> None:
    endpoint = TokenEndpoint(ManualClock())
    other = {**ACCOUNT, "credentials": {"password": "another"}}
    await _auth(replicas[0], endpoint).token()

    stranger = CachedTokenAuth(
        endpoint.fetch, endpoint.clock, RedisTokens(replicas[1], "primmo", other, endpoint.clock)
    )

    assert await stranger.token() == "token-2"


async def test_a_read_that_began_before_another_replicas_eviction_does_not_refill_the_cache(
    replicas: tuple[RedisLink, RedisLink],
) -> None:
    clock = ManualClock()
    ttls = {("primmo", Entity.TENANT): 60.0}
    one = RedisEntityCache(ttls, clock, replicas[0])
    two = RedisEntityCache(ttls, clock, replicas[1])
    record = (Tenant(provider="primmo", source_id="7", last_name="Avant"),)
    fields = Selection(frozenset({"last_name"}))
    before = await one.version("primmo", Entity.TENANT, "7")

    await two.evict("primmo", Entity.TENANT, "7")
    await one.put("primmo", Entity.TENANT, "7", fields, "gateway", record, before)

    assert await two.get("primmo", Entity.TENANT, "7", fields, "gateway") is None
    now = await one.version("primmo", Entity.TENANT, "7")
    await one.put("primmo", Entity.TENANT, "7", fields, "gateway", record, now)
    assert await two.get("primmo", Entity.TENANT, "7", fields, "gateway") == record
    assert await two.get("primmo", Entity.TENANT, "7", fields, "landlord:3") is None
    assert await two.get("primmo", Entity.TENANT, "7", Selection(), "gateway") is None
    clock.advance(61)
    assert await two.get("primmo", Entity.TENANT, "7", fields, "gateway") is None


def _settings(redis_url: str) -> Settings:
    return Settings(gateway=GatewaySettings(subscribe_at_start=False, redis_url=redis_url))


def _signed(clock: ManualClock, webhook_id: str) -> tuple[bytes, dict[str, str]]:
    now = datetime.fromtimestamp(clock(), UTC)
    body, signature = _pms_delivery(webhook_id, now, PMS["webhook_secret"])
    return body, {"X-Webhook-Signature": signature}


async def test_a_delivery_retried_to_another_replica_is_processed_once(
    redis_server: RedisServer,
) -> None:
    clock = ManualClock()
    body, headers = _signed(clock, "webhook_41")
    async with (
        serving(Sandbox(seed=7, clock=clock), clock, _settings(redis_server.url)) as one,
        serving(
            Sandbox(seed=7, clock=clock),
            clock,
            _settings(redis_server.url),
            self_url="http://127.0.0.1:8001",
        ) as two,
    ):
        first = await one.http.post("/webhooks/pms", content=body, headers=headers)
        retry = await two.http.post("/webhooks/pms", content=body, headers=headers)

        assert first.status_code == retry.status_code == 200
        assert first.json()["changes"] == 1
        assert retry.json()["duplicate"] is True
        assert (one.gateway.processed, two.gateway.processed) == (1, 0)


async def test_without_redis_queries_are_answered_and_webhooks_wait_for_it(
    sandbox: Sandbox, clock: ManualClock
) -> None:
    server = RedisServer()
    body, headers = _signed(clock, "webhook_42")
    async with serving(sandbox, clock, _settings(server.url)) as client:
        answered = await client.data(QUERY)
        ready = await client.http.get("/readyz")
        refused = await client.http.post("/webhooks/pms", content=body, headers=headers)
        socket = Socket(client.http._transport.app, "graphql-transport-ws")  # type: ignore[attr-defined]
        await socket.inbox.put({"type": "websocket.connect"})
        await socket.say({"type": "connection_init", "payload": {"X-API-Key": _dev_key()}})
        await socket.say(
            {
                "id": "1",
                "type": "subscribe",
                "payload": {"query": "subscription { entityChanged { kind } }"},
            }
        )
        ended = await socket.until(lambda m: '"errors"' in (m.get("text") or ""))

        with server.running():
            taken = await client.http.post("/webhooks/pms", content=body, headers=headers)
            back = await client.http.get("/readyz")

    assert len(answered["buildings"]["edges"]) == 2
    assert ready.status_code == 200 and ready.json()["redis"] == "down"
    assert refused.status_code == 503 and refused.json()["code"] == "REDIS_UNAVAILABLE"
    assert "password" not in refused.text
    (error,) = json.loads(ended["text"])["payload"]["errors"]
    assert error["extensions"]["code"] == "REDIS_UNAVAILABLE"
    assert taken.status_code == 200 and taken.json()["changes"] == 1
    assert back.json()["redis"] == "up"


def _dev_key() -> str:
    from gateway.edge.callers import DEV_KEY

    return DEV_KEY
