"""`entityChanged` says what changed wherever the gateway can know it: the cached copy against
the record read fresh, or the provider's payload; each field only to callers who may read it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal

import pytest

from gateway.clock import ManualClock
from gateway.config import CacheSettings, Settings
from gateway.events import Change, ChangeKind, FieldChange, differences
from gateway.model import Entity, Lease, LeaseStatus, Money, Selection, Tenant
from gateway.sandbox import Sandbox
from gateway.state.bus.redis import _decode, _encode
from gateway.state.cache.redis import RedisEntityCache
from gateway.state.redis import RedisLink
from schema.ids import encode_id
from tests.conftest import Client, Socket, eventually, keyed, primmo_itself, serving
from tests.redis_server import RedisServer

WATCH = (
    "subscription { entityChanged(types: [TENANT]) { kind sourceId "
    "changes { field previous new } } }"
)
READER = "reader-key-0123456789"
MANAGER = "manager-key-0123456789"


def _secured() -> Settings:
    return keyed(
        {READER: ["property:read"], MANAGER: ["*"]},
        cache=CacheSettings(ttl={"primmo.Tenant": 300}),
    )


@pytest.fixture
async def cached(sandbox: Sandbox, clock: ManualClock) -> AsyncIterator[Client]:
    async with serving(sandbox, clock, _secured(), headers={"X-API-Key": MANAGER}) as served:
        await served.gateway.subscribe_webhooks("http://127.0.0.1:8000")
        yield served


async def _watching(client: Client, key: str) -> Socket:
    socket = Socket(client.http._transport.app, "graphql-transport-ws")  # type: ignore[attr-defined]
    await socket.inbox.put({"type": "websocket.connect"})
    await socket.until(lambda m: m["type"] == "websocket.accept")
    await socket.say({"type": "connection_init", "payload": {"X-API-Key": key}})
    await socket.until(lambda m: '"connection_ack"' in (m.get("text") or ""))
    await socket.say({"id": "1", "type": "subscribe", "payload": {"query": WATCH}})
    return socket


async def _edit(sandbox: Sandbox, identifier: int, changes: dict[str, str]) -> None:
    async with primmo_itself(sandbox) as primmo:
        await primmo.post(f"/_sandbox/tenants/{identifier}", json=changes)


def _a_primmo_tenant(client: Client) -> int:
    return int(client.primmo.records.tenants[0]["Id"])


async def _next(socket: Socket) -> dict[str, object]:
    message = await socket.until(lambda m: '"next"' in (m.get("text") or ""))
    change: dict[str, object] = json.loads(message["text"])["payload"]["data"]["entityChanged"]
    return change


async def test_a_cached_tenant_edited_at_primmo_says_what_changed(cached: Client) -> None:
    tenant = _a_primmo_tenant(cached)
    old = cached.primmo.records.tenants[0]["LastName"]
    node = encode_id(Entity.TENANT, "primmo", str(tenant))
    await cached.data(f'{{ node(id: "{node}") {{ ... on Tenant {{ lastName firstName }} }} }}')
    manager = await _watching(cached, MANAGER)
    reader = await _watching(cached, READER)
    await eventually(lambda: cached.gateway.bus.listeners == 2)  # type: ignore[attr-defined]

    await _edit(cached.sandbox, tenant, {"LastName": "Nouveau-Nom"})
    told, hidden = await _next(manager), await _next(reader)
    await manager.close()
    await reader.close()

    assert told == {
        "kind": "UPDATED",
        "sourceId": str(tenant),
        "changes": [{"field": "lastName", "previous": old, "new": "Nouveau-Nom"}],
    }
    assert hidden["changes"] == [], "a name is personal: tenant:read only"


async def test_without_a_cached_copy_nothing_is_guessed(cached: Client) -> None:
    tenant = _a_primmo_tenant(cached)
    manager = await _watching(cached, MANAGER)
    await eventually(lambda: cached.gateway.bus.listeners == 1)  # type: ignore[attr-defined]

    await _edit(cached.sandbox, tenant, {"LastName": "Nouveau-Nom"})
    change = await _next(manager)
    await manager.close()

    assert change["changes"] == []


def test_differences_are_exact_values_only_for_the_fields_read() -> None:
    before = Lease(
        "primmo",
        "7",
        end_date=date(2027, 6, 30),
        rent=Money(Decimal("1200.00"), "CAD"),
        status=LeaseStatus.ACTIVE,
    )
    after = Lease(
        "primmo",
        "7",
        end_date=date(2027, 1, 31),
        rent=Money(Decimal("1250.00"), "CAD"),
        status=LeaseStatus.ACTIVE,
    )

    changed = differences(before, after, frozenset({"end_date", "rent", "status", "deposit"}))

    assert changed == (
        FieldChange("end_date", "2027-06-30", "2027-01-31"),
        FieldChange(
            "rent",
            {"amount": "1200.00", "currency": "CAD"},
            {"amount": "1250.00", "currency": "CAD"},
        ),
    )


def test_what_changed_crosses_replicas_on_the_bus() -> None:
    change = Change(
        ChangeKind.UPDATED, Entity.TENANT, "primmo", "7", (FieldChange("last_name", "A", "B"),)
    )

    assert _decode(_encode(change).encode()) == change


TENANT = Tenant("primmo", "7", first_name="Léa", last_name="Roy")
NAMES = Selection(frozenset({"first_name", "last_name"}))


@pytest.fixture
async def shared_cache() -> AsyncIterator[RedisEntityCache]:
    """A Redis cache of Primmo tenants, holding TENANT as read with NAMES and with nothing."""
    with RedisServer().running() as server:
        link = RedisLink(server.url)
        cache = RedisEntityCache({("primmo", Entity.TENANT): 60}, ManualClock(), link)
        await cache.put("primmo", Entity.TENANT, "7", Selection(), "gateway", [TENANT], 0)
        await cache.put("primmo", Entity.TENANT, "7", NAMES, "gateway", [TENANT], 0)
        yield cache
        await link.aclose()


async def test_a_copy_shared_in_redis_tells_what_it_was_and_with_which_fields(
    shared_cache: RedisEntityCache,
) -> None:
    kept = await shared_cache.peek("primmo", Entity.TENANT, "7")

    assert kept == (NAMES, TENANT)


async def test_a_copy_set_aside_in_redis_is_taken_once_by_the_first_report(
    shared_cache: RedisEntityCache,
) -> None:
    evicted = await shared_cache.set_aside("primmo", Entity.TENANT, "7")
    cached = await shared_cache.peek("primmo", Entity.TENANT, "7")
    first = await shared_cache.aside("primmo", Entity.TENANT, "7")
    second = await shared_cache.aside("primmo", Entity.TENANT, "7")

    assert (evicted, cached) == (2, None)
    assert first == (NAMES, TENANT) and second is None
