"""The heap: collections are timed into the metrics, a server freezes start-up's objects,
a request's objects are freed when it ends, not when the collector next runs, and a
gateway when its app is done."""

from __future__ import annotations

import asyncio
import gc
import uuid
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from gateway.clock import ManualClock
from gateway.config import Settings
from gateway.edge.app import create_app
from gateway.model import Building, Tenant, Unit
from gateway.observability.heap import FULL_AFTER, MIDDLE_AFTER, YOUNG_AFTER, collections
from gateway.observability.metrics import Metrics
from gateway.sandbox import Sandbox
from schema import GatewaySchema, documents
from schema.compiled.executor import CompiledExecutor
from schema.context import Context
from tests.conftest import forget_fastapis_callables, freeze_what_the_session_holds, serving
from tests.metrics_reading import metric

NESTED = (
    '{ buildings(first: 5, providers: ["primmo"]) { edges { node { sourceId name '
    "units { sourceId unitCode tenants { sourceId lastName } } } } } }"
)


def test_every_collection_is_counted_and_timed_by_generation() -> None:
    text = Metrics().exposition("text/plain")[0].decode()
    before = metric(text, "propgate_gc_collections_total", generation="2")
    seconds = metric(text, "propgate_gc_seconds_total", generation="2")

    gc.collect()
    gc.collect()

    after = Metrics().exposition("text/plain")[0].decode()
    assert metric(after, "propgate_gc_collections_total", generation="2") == before + 2
    assert metric(after, "propgate_gc_seconds_total", generation="2") > seconds
    assert collections().counts[2] >= 2


async def test_a_server_freezes_what_start_up_made_and_a_test_app_does_not() -> None:
    gc.unfreeze()
    thresholds = gc.get_threshold()
    plain = create_app(Settings(), clock=ManualClock())
    async with plain.router.lifespan_context(plain):
        assert gc.get_freeze_count() == 0 and gc.get_threshold() == thresholds
    served = create_app(Settings(), clock=ManualClock(), freeze_heap=True)
    try:
        async with served.router.lifespan_context(served):
            frozen = gc.get_freeze_count()
            spaced = gc.get_threshold()
            text = served.state.gateway.metrics.exposition("text/plain")[0].decode()
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
        del plain, served
        freeze_what_the_session_holds()

    assert frozen > 10_000
    assert spaced == (YOUNG_AFTER, MIDDLE_AFTER, FULL_AFTER)
    assert metric(text, "propgate_gc_frozen_objects") == frozen


async def test_a_nested_query_is_freed_before_the_youngest_generation_is_collected(
    sandbox: Sandbox, clock: ManualClock, settings: Settings
) -> None:
    """With the thresholds a server sets, what a nested query holds at its peak is freed by
    reference counting before the collector looks at it; with CPython's 700 the young
    generation was collected six times a query, walking objects still in use."""
    timer = collections()
    thresholds = gc.get_threshold()
    async with serving(sandbox, clock, settings) as client:
        await client.data(NESTED)
        gc.set_threshold(YOUNG_AFTER, thresholds[1], thresholds[2])
        try:
            gc.collect(0)
            before = timer.counts[0]
            await client.data(NESTED)
            young = timer.counts[0] - before
        finally:
            gc.set_threshold(*thresholds)

    assert young == 0


@asynccontextmanager
async def left_for_the_collector() -> AsyncIterator[list[object]]:
    """What becomes garbage inside the block, and in the callbacks it left scheduled, that
    only the cyclic collector can free."""
    enabled, debug = gc.isenabled(), gc.get_debug()
    gc.collect()
    gc.disable()
    found: list[object] = []
    try:
        yield found
        for _ in range(3):
            await asyncio.sleep(0)
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        found.extend(gc.garbage)
    finally:
        gc.set_debug(debug)
        gc.garbage.clear()
        if enabled:
            gc.enable()


def _the_gateways(garbage: list[object]) -> list[str]:
    """The request's own objects among `garbage`: its context and executor, the records it
    read, and the providers' responses (the test's own client leaves its responses in
    httpx's cycles, which is not the gateway's doing)."""
    return [
        type(thing).__name__
        for thing in garbage
        if isinstance(thing, (Context, CompiledExecutor, Building, Unit, Tenant))
        or (isinstance(thing, httpx.Response) and _from_a_provider(thing))
    ]


def _from_a_provider(response: httpx.Response) -> bool:
    try:
        return "/sandbox/" in str(response.request.url)
    except RuntimeError:
        return False


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "graphql-core"])
async def test_a_request_leaves_nothing_for_the_collector(
    sandbox: Sandbox, clock: ManualClock, settings: Settings, compiled: bool
) -> None:
    """A request's objects outliving it in reference cycles were promoted to the oldest
    generation and walked by every full collection until one freed them: about 1,200
    objects a nested query, and 91 ms a full collection under load."""
    executed = settings.model_copy(
        update={"gateway": settings.gateway.model_copy(update={"compiled_execution": compiled})}
    )
    async with serving(sandbox, clock, executed) as client:
        await client.data(NESTED)
        async with left_for_the_collector() as garbage:
            data = await client.data(NESTED)

    assert data["buildings"]["edges"]
    assert _the_gateways(garbage) == []


async def test_a_token_renewed_during_a_request_leaves_nothing_for_the_collector(
    sandbox: Sandbox, clock: ManualClock, settings: Settings
) -> None:
    async with serving(sandbox, clock, settings) as client:
        await client.data(NESTED)
        renewed = client.primmo.count("POST", "/api/Token")
        clock.advance(24 * 3600 + 1)
        async with left_for_the_collector() as garbage:
            await client.data(NESTED)

    assert client.primmo.count("POST", "/api/Token") == renewed + 1
    assert _the_gateways(garbage) == []


def _schemas() -> list[GatewaySchema]:
    return [thing for thing in gc.get_objects() if isinstance(thing, GatewaySchema)]


async def test_a_gateway_is_freed_once_its_app_is_done(
    clock: ManualClock, settings: Settings
) -> None:
    """A process that builds many gateways (a test run builds hundreds) keeps none it is
    done with: the operations its schema validated and planned stay in the process's
    cache, but hold neither the schema nor, through it, the gateway. Held, they were 9
    million objects by the end of a test run, which each full collection walked, up to 7 s
    each: long enough to run an in-process query past its deadline."""
    text = f"query Kept{uuid.uuid4().hex} {NESTED}"
    gc.collect()
    earlier = {id(schema) for schema in _schemas()}
    async with serving(Sandbox(seed=7, clock=clock), clock, settings) as client:
        await client.data(text)
        (schema,) = [schema for schema in _schemas() if id(schema) not in earlier]
        gone = [weakref.ref(thing) for thing in (schema, client.gateway, client.sandbox)]
    del client, schema

    forget_fastapis_callables()
    gc.collect()

    assert [ref() for ref in gone] == [None, None, None]
    assert text in documents._kept
