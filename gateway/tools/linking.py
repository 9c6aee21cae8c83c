"""`gateway links rebuild` and `gateway links bench`.

`rebuild` re-runs the matching rules over every configured provider into the configured
link store, with a progress bar. On the sandbox (no providers configured) it reads an
in-process sandbox, the same world `gateway serve` makes, and keeps the links only if
`[links] url` names a store that outlives it.

`bench` measures what the rules cost and how right they are: for each seed it makes a
sandbox world sized so each provider holds about `--records` records, rebuilds into a
store in memory, and prints the time (wall and CPU), what was read from each provider
and the requests it took, what was linked, and each type's precision and recall against
the world's truth (`gateway.sandbox.overlaps.truth`).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from itertools import combinations

from tqdm import tqdm

from gateway.clock import ManualClock
from gateway.config import GatewaySettings, Settings
from gateway.edge.wiring import build_gateway, sandbox_for
from gateway.errors import LinksUnavailable
from gateway.federation.links.rebuild import Progress, RebuildFailed, Rebuilt, rebuild
from gateway.model import Entity
from gateway.sandbox import Sandbox
from gateway.sandbox.data import WorldSize
from gateway.sandbox.overlaps import truth
from gateway.state.links import masked

__all__ = ["Score", "bench", "rebuild_now", "score", "sized"]

KINDS = {
    "landlord": Entity.LANDLORD,
    "building": Entity.BUILDING,
    "unit": Entity.UNIT,
    "tenant": Entity.TENANT,
    "relationship": Entity.RELATIONSHIP,
}
_UNITS = 40
"""Units per building in the bench's worlds: Primmo's records are then mostly units and
tenants, as a property manager's are."""


@dataclass(frozen=True)
class Score:
    true: int
    found: int
    right: int
    missed: frozenset[tuple[str, str]] = frozenset()
    """The pairs the world says are one thing that were not linked: what recall lost."""

    @property
    def precision(self) -> float:
        return self.right / self.found if self.found else 1.0

    @property
    def recall(self) -> float:
        return self.right / self.true if self.true else 1.0


def _pairs(groups: Iterable[Iterable[str]]) -> set[tuple[str, str]]:
    return {pair for group in groups for pair in combinations(sorted(group), 2)}


def score(world_truth: dict[str, list[frozenset[str]]], rebuilt: Rebuilt) -> dict[str, Score]:
    """Pairs of records linked, against the pairs the world says are one thing, among the
    records the rebuild read (a record no provider shows cannot be linked)."""
    snapshot, matched = rebuilt.snapshot, rebuilt.matched
    seen: dict[Entity, set[str]] = {
        Entity.LANDLORD: set(snapshot.landlords),
        Entity.BUILDING: set(snapshot.buildings),
        Entity.UNIT: set(snapshot.units),
        Entity.TENANT: set(snapshot.tenants),
        Entity.RELATIONSHIP: set(snapshot.relationships) | matched.derived,
    }
    scores = {}
    for kind, entity in KINDS.items():
        true = _pairs(group & seen[entity] for group in world_truth.get(kind, []))
        found = _pairs(matched.members(entity).values())
        scores[kind] = Score(len(true), len(found), len(true & found), frozenset(true - found))
    return scores


def sized(records: int, units: int = _UNITS) -> WorldSize:
    """A world whose Primmo, pms and MyCRM hold about `records` records each (SCOM shows
    landlords and buildings only, so it holds far fewer; LEAP about twice as many)."""
    per_building = 1 + units * 1.93
    buildings = max(3, round(3 * records / per_building))
    return WorldSize(
        landlords=max(20, buildings // 10),
        buildings=buildings,
        units_per_building=(units, units),
        listed_buildings=max(1, records // units),
    )


def _today(sandbox: Sandbox | None) -> date:
    """The sandbox's world has a day of its own; real providers live in today."""
    return sandbox.world.today if sandbox is not None else datetime.now().date()


async def _rebuild(
    settings: Settings, tell: Progress, sandbox: Sandbox | None, times: int = 1
) -> list[Rebuilt]:
    """The rebuild, `times` over into one store: the first writes LEAP's external ids, the
    next finds LEAP in step, as a rebuild run every night would."""
    transports = {name: sandbox.transport(name) for name in sandbox.apps} if sandbox else None
    gateway = build_gateway(
        settings,
        self_url="http://127.0.0.1:8000",
        sandbox=sandbox,
        transports=transports,
        clock=sandbox.clock if sandbox else None,
    )
    try:
        return [
            await rebuild(gateway.federation, today=_today(sandbox), progress=tell)
            for _ in range(times)
        ]
    finally:
        await gateway.aclose()


def _bar() -> tuple[Progress, Callable[[], None]]:
    """A progress bar on stderr: what is being read, and how many records so far."""
    bar = tqdm(unit=" records", desc="reading", file=sys.stderr, mininterval=0.2)

    def tell(what: str, count: int) -> None:
        bar.set_description(what, refresh=False)
        bar.update(count)

    return tell, bar.close


def rebuild_now(settings: Settings) -> int:
    sandbox = sandbox_for(settings, ManualClock(time.time())) if settings.uses_sandbox else None
    tell, close = _bar()
    try:
        (rebuilt,) = asyncio.run(_rebuild(settings, tell, sandbox))
    except RebuildFailed as failure:
        close()
        sys.stderr.write(f"gateway: the rebuild stopped, nothing was changed: {failure}\n")
        return 1
    except LinksUnavailable as failure:
        close()
        url = settings.links.store_url(settings.uses_sandbox)
        sys.stderr.write(
            f"gateway: the link store {masked(url, url)} cannot be used, so nothing was read "
            f"and nothing changed: {masked(url, failure.reason)}\n"
        )
        return 1
    close()
    sys.stdout.write(_summary(rebuilt))
    if settings.uses_sandbox and settings.links.store_url(True).rstrip("/").endswith(":"):
        sys.stdout.write(
            "The link store is in memory (the sandbox's default): nothing was kept. "
            "Set [links] url to keep the links.\n"
        )
    return 0


def _summary(rebuilt: Rebuilt) -> str:
    lines = [
        f"rebuilt in {rebuilt.seconds:.2f} s ({rebuilt.cpu_seconds:.2f} s of CPU): "
        + ", ".join(f"{step} {seconds:.2f} s" for step, seconds in rebuilt.steps.items())
    ]
    for provider, counts in sorted(rebuilt.read.items()):
        read = ", ".join(f"{count} {kind}" for kind, count in sorted(counts.items()))
        lines.append(f"  read from {provider}: {read}")
    for kind in rebuilt.links:
        lines.append(
            f"  {kind}: {rebuilt.links[kind]} links, {rebuilt.groups[kind]} groups, "
            f"{rebuilt.proposals[kind]} proposals waiting for a person"
        )
    extids = rebuilt.extids
    lines.append(
        f"  external ids written to relationships: {extids.written}"
        + (f" ({extids.refused} refused)" if extids.refused else "")
    )
    return "\n".join(lines) + "\n"


def bench(records: int, seeds: Sequence[int], units: int = _UNITS) -> str:
    """Rebuilds each seed's world twice (LEAP's external ids written, then LEAP in step) and
    returns the report: a table per seed, then medians."""
    size = sized(records, units)
    settings = Settings(gateway=GatewaySettings(max_page_size=500, subscribe_at_start=False))
    lines = [
        f"world: {size.buildings} buildings with {units} units each, {size.listed_buildings} "
        f"listed at MyCRM, {size.landlords} landlords",
        "",
    ]
    walls: dict[str, list[float]] = {"first": [], "again": []}
    cpus: dict[str, list[float]] = {"first": [], "again": []}
    for seed in seeds:
        sandbox = Sandbox(seed=seed, size=size, clock=ManualClock())
        first, again = asyncio.run(_rebuild(settings, _quiet, sandbox, times=2))
        for name, rebuilt in (("first", first), ("again", again)):
            walls[name].append(rebuilt.seconds)
            cpus[name].append(rebuilt.cpu_seconds)
            lines.append(
                f"seed {seed}, {'first rebuild' if name == 'first' else 'rebuilt again'}: "
                f"{rebuilt.seconds:.2f} s, {rebuilt.cpu_seconds:.2f} s CPU ("
                + ", ".join(f"{step} {seconds:.2f} s" for step, seconds in rebuilt.steps.items())
                + f"; {rebuilt.extids.written} external ids written)"
            )
        requests = {name: state.count() for name, state in sandbox.states.items()}
        for provider, counts in sorted(first.read.items()):
            read = ", ".join(f"{count} {kind}" for kind, count in sorted(counts.items()))
            total = sum(counts.values())
            lines.append(
                f"  {provider:7s} {total:6d} records ({read}); both rebuilds: "
                f"{requests[provider]} requests"
            )
        lines.append("  type          links  proposals  true pairs  precision  recall")
        for kind, result in score(truth(sandbox.world), first).items():
            entity = KINDS[kind].value
            lines.append(
                f"  {kind:12s} {first.links[entity]:6d} {first.proposals[entity]:10d} "
                f"{result.true:11d} {result.precision:10.3f} {result.recall:7.3f}"
            )
        lines.append("")
    for name, label in (("first", "first rebuild"), ("again", "rebuilt again")):
        lines.append(
            f"median over {len(seeds)} seeds, {label}: {statistics.median(walls[name]):.2f} s, "
            f"{statistics.median(cpus[name]):.2f} s CPU"
        )
    return "\n".join(lines) + "\n"


def _quiet(_what: str, _count: int) -> None:
    """The bench times the rebuild, not a progress bar."""
