"""The connector contract, the same for every provider: list in order, continue, fetch by key."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.clock import ManualClock
from gateway.config import Traffic
from gateway.connectors import CONNECTORS, Connector
from gateway.connectors.base import ListRequest
from gateway.federation import SORT_FIELDS, SORT_KEYS
from gateway.model import Entity, Selection
from gateway.sandbox import Sandbox
from gateway.upstream import Upstream
from gateway.vault import Vault

_ORDER = {
    Entity.LANDLORD: ("name",),
    Entity.BUILDING: ("name",),
    Entity.UNIT: ("code",),
    Entity.TENANT: ("last_name", "first_name"),
    Entity.RELATIONSHIP: (),
}
"""The sort key's fields as they are: a provider may collate by code point, not ignoring case
(Primmo's strict server), and its own order is the one the gateway keeps."""

CASES = [
    (name, entity)
    for name, cls in sorted(CONNECTORS.items())
    for entity in sorted(cls.lists, key=lambda e: e.value)
]


@pytest.fixture
async def connectors(sandbox: Sandbox, clock: ManualClock) -> AsyncIterator[dict[str, Connector]]:
    vault = Vault.ephemeral()
    sandbox.hand_over_tokens(vault)
    upstreams = [
        Upstream(
            name=name,
            base_url=f"http://127.0.0.1/sandbox/{name}",
            credentials=Sandbox.credentials(name),
            traffic=Traffic(),
            clock=clock,
            transport=sandbox.transport(name),
            vault=vault,
            options=Sandbox.options(name, "http://127.0.0.1"),
        )
        for name in CONNECTORS
    ]
    try:
        yield {up.name: CONNECTORS[up.name].connect(up) for up in upstreams}
    finally:
        for upstream in upstreams:
            await upstream.aclose()


@pytest.mark.parametrize(("provider", "entity"), CASES, ids=[f"{p}-{e.value}" for p, e in CASES])
async def test_pages_continue_where_they_stopped_in_the_sort_order(
    connectors: dict[str, Connector], provider: str, entity: Entity
) -> None:
    connector = connectors[provider]
    selection = Selection(SORT_FIELDS[entity])
    first = await connector.page(entity, ListRequest({}, selection, limit=3, count=True))
    second = await connector.page(
        entity, ListRequest({}, selection, limit=3, position=first.positions[-1])
    )

    records = [*first.records, *second.records]
    assert len(first.records) == 3 and first.total is not None and first.total >= 6
    assert all(record.provider == provider for record in records)
    assert len({record.source_id for record in records}) == 6
    keys = [SORT_KEYS[entity](record) for record in records]
    exact = [tuple(getattr(record, name) or "" for name in _ORDER[entity]) for record in records]
    assert keys == sorted(keys) or exact == sorted(exact)


@pytest.mark.parametrize(("provider", "entity"), CASES, ids=[f"{p}-{e.value}" for p, e in CASES])
async def test_fetch_by_id_matches_by_key(
    connectors: dict[str, Connector], provider: str, entity: Entity
) -> None:
    connector = connectors[provider]
    listed = await connector.page(entity, ListRequest({}, Selection(), limit=4))
    ids = [record.source_id for record in listed.records]

    found = await connector.fetch(entity, "id", [*reversed(ids), "404404404"], Selection())

    assert set(found) == set(ids)
    assert all(records[0].source_id == key for key, records in found.items())
