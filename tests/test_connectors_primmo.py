"""The Primmo connector on its own, against the sandbox through ASGI."""

from __future__ import annotations

import pytest

from gateway.clock import ManualClock
from gateway.config import Traffic
from gateway.connectors.base import ListRequest
from gateway.connectors.primmo import PrimmoConnector
from gateway.errors import ProviderError
from gateway.model import Building, Entity, Selection, Tenant
from gateway.sandbox import Sandbox
from gateway.upstream.client import Upstream
from tests.conftest import Recording


def _upstream(sandbox: Sandbox, clock: ManualClock, **credentials: str) -> Upstream:
    return Upstream(
        name="primmo",
        base_url="http://127.0.0.1/sandbox/primmo",
        credentials={**Sandbox.credentials("primmo"), **credentials},
        traffic=Traffic(),
        clock=clock,
        transport=sandbox.transport("primmo"),
    )


async def test_records_are_normalised(sandbox: Sandbox, clock: ManualClock) -> None:
    upstream = _upstream(sandbox, clock)
    connector = PrimmoConnector.connect(upstream)
    try:
        page = await connector.page(
            Entity.TENANT, ListRequest({}, Selection(frozenset({"tenant_number"})), limit=5)
        )
    finally:
        await upstream.aclose()

    assert len(page.records) == 5 and not page.exhausted
    for record in page.records:
        assert isinstance(record, Tenant)
        assert record.tenant_number is not None and record.tenant_number.isdigit()
    assert page.positions == [1, 2, 3, 4, 5]


async def test_fetch_matches_by_key_not_by_position(sandbox: Sandbox, clock: ManualClock) -> None:
    upstream = _upstream(sandbox, clock)
    connector = PrimmoConnector.connect(upstream)
    ids = [str(b.id) for b in sandbox.world.buildings_of("primmo")][:4]
    try:
        found = await connector.fetch(
            Entity.BUILDING, "id", [*reversed(ids), "999999", "1) or (1 eq 1"], Selection()
        )
    finally:
        await upstream.aclose()

    assert set(found) == set(ids)
    assert all(
        isinstance(records[0], Building) and records[0].source_id == key
        for key, records in found.items()
    )
    assert sandbox.states["primmo"].count("GET", "/api/Buildings") == 1


async def test_wrong_credentials_become_a_provider_error(
    sandbox: Sandbox, clock: ManualClock
) -> None:
    upstream = _upstream(sandbox, clock, password="wrong")
    connector = PrimmoConnector.connect(upstream)
    try:
        with pytest.raises(ProviderError) as raised:
            await connector.page(Entity.BUILDING, ListRequest({}, Selection(), limit=1))
    finally:
        await upstream.aclose()

    assert raised.value.extensions == {"code": "UPSTREAM_CREDENTIALS_REFUSED", "provider": "primmo"}
    assert "wrong" not in str(raised.value)


async def test_every_odata_request_says_the_highest_version_it_reads(
    sandbox: Sandbox, clock: ManualClock
) -> None:
    """OData clients SHOULD send OData-MaxVersion (Part 1, 8.2.7): without it a 4.01 service
    may answer in 4.01's JSON, whose control information may leave out the `@odata.` prefix
    the connector reads next links by."""
    upstream = _upstream(sandbox, clock)
    recording = Recording(sandbox.transport("primmo"))
    upstream.transport = recording
    connector = PrimmoConnector.connect(upstream)
    try:
        await connector.page(Entity.BUILDING, ListRequest({}, Selection(), limit=2, count=True))
        await connector.fetch(Entity.UNIT, "building", ['[1,1,"1601VILLE "]'], Selection())
    finally:
        await upstream.aclose()

    data = [r.headers for r in recording.requests if "/api/Token" not in r.url.path]
    assert data
    assert {(h.get("OData-Version"), h.get("OData-MaxVersion")) for h in data} == {("4.0", "4.0")}
