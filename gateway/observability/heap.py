"""The process's heap as a design choice: collections timed, and start-up's objects frozen.

CPython's cyclic garbage collector walks every tracked object of the generation it
collects. A gateway holds some 130,000 of them from start-up (modules, the schema,
Strawberry's and graphql-core's types, the sandbox world when it serves one), none of
which ever becomes garbage, and each full collection walked them all: 90 ms each, a
fifth of the CPU of a busy gateway. `freeze_after_start` moves them out of the
collector's sight once the app has started (`gc.freeze`), so a full collection walks
only what requests left behind.

With fewer long-lived objects in sight, CPython starts a full collection more often
(when those left behind reach a quarter of them), and under load, with thirty-two
requests in flight, what they hold was walked again and again: 7.5 to 9.4 ms of
collections per nested query. A full collection is now allowed only after a hundred
collections of the middle generation instead of ten (`FULL_AFTER`): 4.1 to 5.5 ms, in
the same run.

The youngest generation is collected after 10,000 allocations instead of 700
(`YOUNG_AFTER`). A nested query holds a few thousand objects at its peak, all freed by
reference counting when it ends: with CPython's 700, six collections walked them while
they were still alive, 0.6 ms of each nested query at one client; with 10,000, none
does (README: Performance). Under load the collections come anyway, each walking more,
but fewer: 1.71 against 1.50 ms a nested query at 32 clients (medians of four runs).

What a request makes is freed by reference counting when it ends, never left in a
reference cycle for the collector: graphql-core's executor and httpx's read responses
were cycles, and each nested query left some 1,200 objects (its context, loaders and
records among them) to be promoted and walked by full collections, 91 to 140 ms each
under load. Without them, and with the round's other cuts, collections cost 3.4 -> 1.3
ms per nested query at one client (README: Performance; `tests/test_heap.py` checks that
a query leaves nothing behind).

Under load, the middle generation was the rest: thirty-two requests in flight hold
tens of thousands of objects, each promoted out of the youngest generation while its
request waits on a provider, and every tenth young collection walked them all again (44
middle collections of 25 ms in a bench run of the nested query at 32 clients). It is now
collected after a hundred young collections (`MIDDLE_AFTER`): what it held by then has
mostly been freed by reference counting. Collections per nested query at 32 clients: 1.32
-> 1.03 ms (medians of four alternating runs, each lower; CPU per query within the noise).
Since `FULL_AFTER` counts middle collections, a full one now waits for ten thousand young
ones: a cycle that reaches the oldest generation stays ten times longer. Requests leave
none (`tests/test_heap.py`).

py-spy cannot see collections (they run inside whatever allocated last), so they are
timed here, through `gc.callbacks`, and exposed as metrics.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterable
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = [
    "FULL_AFTER",
    "MIDDLE_AFTER",
    "YOUNG_AFTER",
    "Collections",
    "collections",
    "freeze_after_start",
]

FULL_AFTER = 100
"""Collections of the middle generation before a full one may run (CPython's default: 10)."""
MIDDLE_AFTER = 100
"""Collections of the youngest generation before the middle one is collected (CPython's
default: 10)."""
YOUNG_AFTER = 10_000
"""Allocations, net of what was freed, before the youngest generation is collected
(CPython's default: 700)."""


class Collections:
    """Collections and the CPU seconds they took, per generation, since the process began
    timing them (one timer per process, however many apps it holds)."""

    def __init__(self) -> None:
        self.counts = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self._started = 0.0

    def _observe(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.process_time()
            return
        generation = info["generation"]
        self.counts[generation] += 1
        self.seconds[generation] += time.process_time() - self._started


_timer: Collections | None = None


def collections() -> Collections:
    """The process's timer, started on first use."""
    global _timer
    if _timer is None:
        _timer = Collections()
        gc.callbacks.append(_timer._observe)
    return _timer


def freeze_after_start() -> int:
    """What start-up left is collected once, then frozen, and full collections spaced out;
    how many objects were frozen."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_AFTER, MIDDLE_AFTER, FULL_AFTER)
    return gc.get_freeze_count()


class CollectionsCollector(Collector):
    def __init__(self, timer: Collections) -> None:
        self._timer = timer

    def collect(self) -> Iterable[Metric]:
        counts = CounterMetricFamily(
            "propgate_gc_collections",
            "Garbage collections of the process, by generation (2 is a full collection).",
            labels=["generation"],
        )
        seconds = CounterMetricFamily(
            "propgate_gc_seconds",
            "CPU seconds the process spent in garbage collections, by generation.",
            labels=["generation"],
        )
        for generation in range(3):
            counts.add_metric([str(generation)], float(self._timer.counts[generation]))
            seconds.add_metric([str(generation)], self._timer.seconds[generation])
        frozen = GaugeMetricFamily(
            "propgate_gc_frozen_objects",
            "Objects frozen after start-up, which collections no longer walk.",
        )
        frozen.add_metric([], float(gc.get_freeze_count()))
        yield from (counts, seconds, frozen)
