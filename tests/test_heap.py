"""The heap: collections are timed into the metrics, and a server freezes start-up's objects."""

from __future__ import annotations

import gc

from gateway.clock import ManualClock
from gateway.config import Settings
from gateway.edge.app import create_app
from gateway.observability.heap import FULL_AFTER, collections
from gateway.observability.metrics import Metrics
from tests.metrics_reading import metric


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

    assert frozen > 10_000
    assert spaced == (thresholds[0], thresholds[1], FULL_AFTER)
    assert metric(text, "propgate_gc_frozen_objects") == frozen
