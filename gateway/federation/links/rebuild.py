"""`gateway links rebuild`: read every provider, run the rules, replace what they linked.

Records are read as the federation reads them for any query, through the connectors:
each root list to its end, then down the relations (a building's units, a unit's
tenants, a building's landlord where its provider names it by something else than an
id), in batches of keys, so a provider that can batch (Primmo) is asked once per batch
and one that cannot (pms) within its fan-out budget. Nothing here knows a provider: a
provider that lists buildings is read through them; one that lists units but not
buildings (MyCRM's listings) is read at its root.

A provider that fails stops the rebuild before the store is touched: the links stay as
the last rebuild left them. People's links and "kept apart" decisions are kept, and the
rules never overrule them. Once linked, a relationship a provider records (LEAP) is
given, as its external id, the gateway's name for the same role (`"primmo:owner:9"`),
where it has none yet: the only reference LEAP's API lets an integrator write.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, TypeVar

from gateway import notices
from gateway.connectors.capabilities import RelationshipRecords
from gateway.errors import ProviderError, Refused
from gateway.federation.links import reference_of
from gateway.federation.links.rules import STAGES, Matched, Snapshot, match
from gateway.federation.relationships import is_derived
from gateway.model import (
    ENTITY_OF,
    Building,
    Entity,
    Landlord,
    Link,
    Record,
    Relationship,
    Selection,
    Tenant,
    Unit,
)
from gateway.state.links import Decisions, Findings, Group, provider_of, reference

if TYPE_CHECKING:
    from gateway.federation.fan_out import Federation

__all__ = ["KeptInStep", "Rebuilt", "keep_in_step", "read", "rebuild"]

R = TypeVar("R", bound=Record)

_BATCH = 50
"""Keys per fetch: one `$filter` for a provider that batches, a bounded fan-out otherwise."""
_WRITES = 8

_SELECTIONS = {
    Entity.LANDLORD: Selection(
        frozenset({"name", "business_number", "billing_postal_code", "billing_address"})
    ),
    Entity.BUILDING: Selection(
        frozenset({"name", "code", "street", "city", "postal_code"}),
        {"units": Selection(frozenset({"code"}))},
    ),
    Entity.UNIT: Selection(frozenset({"code", "address", "city"})),
    Entity.TENANT: Selection(frozenset({"first_name", "last_name", "email", "phone", "current"})),
    Entity.RELATIONSHIP: Selection(frozenset({"role", "end_date", "external_id"})),
}
"""What the rules read of each record."""
_LISTINGS = Selection(_SELECTIONS[Entity.UNIT].fields, {"landlord": Selection(frozenset({"name"}))})
"""Units listed without their building: their landlord says who lists them."""

Progress = Callable[[str, int], None]
"""Told what is being done and how many records it read (0 for a step that reads none)."""


class RebuildFailed(Exception):
    """A provider could not be read: nothing was replaced."""


@dataclass
class KeptInStep:
    written: int = 0
    refused: int = 0


@dataclass
class Rebuilt:
    read: dict[str, dict[str, int]] = field(default_factory=dict)
    """Records read, by provider and type."""
    links: dict[str, int] = field(default_factory=dict)
    proposals: dict[str, int] = field(default_factory=dict)
    groups: dict[str, int] = field(default_factory=dict)
    """Groups of two records or more, by type."""
    extids: KeptInStep = field(default_factory=KeptInStep)
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    steps: dict[str, float] = field(default_factory=dict)
    """Wall seconds of each step: reading, matching, storing, writing external ids."""
    snapshot: Snapshot = field(default_factory=Snapshot, repr=False)
    matched: Matched = field(default_factory=Matched, repr=False)


async def rebuild(
    federation: Federation,
    *,
    today: date,
    progress: Progress | None = None,
) -> Rebuilt:
    """Raises `LinksUnavailable` before any provider is read if the store cannot be used:
    reading a real pms costs hundreds of requests of its hourly quota."""
    started, cpu = time.perf_counter(), time.process_time()
    steps: dict[str, float] = {}
    tell = progress or (lambda _what, _count: None)
    await federation.linking.store.ready()
    snapshot = await read(federation, tell)
    steps["reading"] = time.perf_counter() - started
    store = federation.linking.store
    threshold = federation.linking.threshold
    decisions = {entity: await store.decisions(entity) for entity in STAGES}
    tell("matching", 0)
    matched = match(snapshot, decisions, threshold, today)
    steps["matching"] = time.perf_counter() - started - sum(steps.values())

    async def decide(standing: Mapping[Entity, Decisions]) -> dict[Entity, Findings]:
        """People may have decided while the rules ran: then they run again on what
        people decided, inside the store's transaction, which holds off any further
        decision until this one is stored."""
        nonlocal matched
        if dict(standing) != decisions:
            tell("matching again: people decided meanwhile", 0)
            matched = await asyncio.to_thread(match, snapshot, standing, threshold, today)
        return {
            entity: Findings(matched.evidence[entity], matched.proposals[entity])
            for entity in STAGES
        }

    tell("storing links", 0)
    await store.replace(STAGES, decide)
    steps["storing"] = time.perf_counter() - started - sum(steps.values())
    outcome = Rebuilt(snapshot=snapshot, matched=matched, steps=steps)
    for entity in STAGES:
        outcome.links[entity.value] = len(matched.evidence[entity])
        outcome.proposals[entity.value] = len(matched.proposals[entity])
        outcome.groups[entity.value] = len(matched.members(entity))
    for entity in (
        Entity.LANDLORD,
        Entity.BUILDING,
        Entity.UNIT,
        Entity.TENANT,
        Entity.RELATIONSHIP,
    ):
        for ref in _records(snapshot, entity):
            counts = outcome.read.setdefault(provider_of(ref), {})
            counts[entity.value] = counts.get(entity.value, 0) + 1
    if federation.linking.write_back:
        tell("writing external ids", 0)
        groups = [
            Group(Entity.RELATIONSHIP, root, tuple(sorted(members)))
            for root, members in matched.members(Entity.RELATIONSHIP).items()
        ]
        outcome.extids = await keep_in_step(federation, groups, snapshot.relationships)
        steps["writing external ids"] = time.perf_counter() - started - sum(steps.values())
    outcome.seconds = time.perf_counter() - started
    outcome.cpu_seconds = time.process_time() - cpu
    return outcome


def _records(snapshot: Snapshot, entity: Entity) -> Mapping[str, Record]:
    tables: dict[Entity, Mapping[str, Record]] = {
        Entity.LANDLORD: snapshot.landlords,
        Entity.BUILDING: snapshot.buildings,
        Entity.UNIT: snapshot.units,
        Entity.TENANT: snapshot.tenants,
        Entity.RELATIONSHIP: snapshot.relationships,
    }
    return tables[entity]


async def read(federation: Federation, tell: Progress) -> Snapshot:
    """Every record of every provider that the rules compare, and where each stands."""
    snapshot = Snapshot()
    roots: dict[Entity, list[str]] = defaultdict(list)
    for name, connector in sorted(federation.connectors.items()):
        for entity in (Entity.LANDLORD, Entity.BUILDING, Entity.RELATIONSHIP):
            if entity in connector.lists:
                roots[entity].append(name)
        if Entity.UNIT in connector.lists and Entity.BUILDING not in connector.lists:
            roots[Entity.UNIT].append(name)
    listed = await asyncio.gather(
        *(_all(federation, name, entity, tell) for entity, names in roots.items() for name in names)
    )
    units_at_root: list[Unit] = []
    for records in listed:
        for record in records:
            ref = reference_of(record)
            if isinstance(record, Landlord):
                snapshot.landlords[ref] = record
            elif isinstance(record, Building):
                snapshot.buildings[ref] = record
            elif isinstance(record, Relationship):
                snapshot.relationships[ref] = record
            elif isinstance(record, Unit):
                units_at_root.append(record)
    for building, owner in await _under(federation, snapshot.buildings, "landlord", Landlord, tell):
        snapshot.owner[building] = reference_of(owner)
    for building, unit in await _under(federation, snapshot.buildings, "units", Unit, tell):
        snapshot.units[reference_of(unit)] = unit
        snapshot.building_of[reference_of(unit)] = building
    for unit in units_at_root:
        ref = reference_of(unit)
        snapshot.units[ref] = unit
        landlord = unit.landlord
        if isinstance(landlord, Link) and landlord.by == "id":
            snapshot.listed_by[ref] = reference(landlord.provider, landlord.key)
    for unit_ref, tenant in await _under(federation, snapshot.units, "tenants", Tenant, tell):
        snapshot.tenants[reference_of(tenant)] = tenant
        snapshot.unit_of[reference_of(tenant)] = unit_ref
    return snapshot


async def _all(
    federation: Federation, provider: str, entity: Entity, tell: Progress
) -> list[Record]:
    """A provider's whole root list, in its largest pages."""
    records: list[Record] = []
    after = None
    while True:
        page = await federation.connection(
            entity,
            criteria={},
            selection=_LISTINGS if entity is Entity.UNIT else _SELECTIONS[entity],
            first=federation.limits.maximum,
            after=after,
            providers=[provider],
            count=False,
        )
        if page.errors:
            raise RebuildFailed(_failure(page.errors[0]))
        records += [edge.node for edge in page.edges]
        tell(f"{provider} {entity.value}", len(page.edges))
        if not page.page_info.has_next_page:
            return records
        after = page.page_info.end_cursor


async def _under(
    federation: Federation,
    parents: Mapping[str, Record],
    relation: str,
    kind: type[R],
    tell: Progress,
) -> list[tuple[str, R]]:
    """(parent's reference, record) for what each parent's `relation` gives."""
    found = await _follow(
        federation,
        {ref: getattr(parent, relation) for ref, parent in parents.items()},
        _SELECTIONS[ENTITY_OF[kind]],
        tell,
    )
    return [
        (ref, record)
        for ref, records in found.items()
        for record in records
        if isinstance(record, kind)
    ]


async def _follow(
    federation: Federation,
    relations: Mapping[str, object],
    selection: Selection,
    tell: Progress,
) -> dict[str, list[Record]]:
    """What each record's relation gives, by the record's reference; relations grouped by
    provider and key kind, fetched a batch of keys at a time, providers at once."""
    found: dict[str, list[Record]] = {}
    wanted: dict[tuple[str, Entity, str], list[tuple[str, str]]] = defaultdict(list)
    for ref, relation in relations.items():
        if not isinstance(relation, Link):
            continue
        if relation.prefetched is not None:
            found[ref] = list(relation.prefetched)
            continue
        wanted[(relation.provider, relation.entity, relation.by)].append((ref, relation.key))

    async def one_kind(
        provider: str, entity: Entity, by: str, pairs: list[tuple[str, str]]
    ) -> None:
        keys = list(dict.fromkeys(key for _, key in pairs))
        fetched: dict[str, Sequence[Record]] = {}
        for start in range(0, len(keys), _BATCH):
            batch = keys[start : start + _BATCH]
            try:
                fetched.update(await federation.fetch(provider, entity, by, batch, selection))
            except ProviderError as error:
                raise RebuildFailed(_failure(error)) from None
            tell(f"{provider} {entity.value}", sum(len(fetched.get(key, ())) for key in batch))
        for ref, key in pairs:
            found[ref] = list(fetched.get(key, ()))

    await asyncio.gather(
        *(one_kind(provider, entity, by, pairs) for (provider, entity, by), pairs in wanted.items())
    )
    return found


def _failure(error: ProviderError) -> str:
    return f"{error.provider}: {error.code}: {error.message}"


async def keep_in_step(
    federation: Federation,
    groups: Sequence[Group],
    known: Mapping[str, Relationship] | None = None,
) -> KeptInStep:
    """Gives each provider-recorded relationship linked to a derived one, and without an
    external id, the derived one's name as its external id, unless `[links] write_back` is
    off. What the provider refuses or fails is a warning naming it (a caller's link
    stands: it is the gateway's) and is counted."""
    if not federation.linking.write_back:
        return KeptInStep()
    recorders = federation.capable(RelationshipRecords)
    wanted: list[tuple[str, str, str]] = []
    for group in groups:
        if group.entity is not Entity.RELATIONSHIP:
            continue
        derived = [ref for ref in group.members if is_derived(ref.partition(":")[2])]
        if not derived:
            continue
        name = federation.linking.precedence.ordered(Entity.RELATIONSHIP, derived)[0]
        for ref in group.members:
            provider, _, identifier = ref.partition(":")
            if provider in recorders:
                wanted.append((provider, identifier, name))
    unknown: dict[str, list[str]] = defaultdict(list)
    for provider, identifier, _ in wanted:
        if known is None or reference(provider, identifier) not in known:
            unknown[provider].append(identifier)
    current = dict(known or {})
    kept = KeptInStep()

    async def read(provider: str, identifiers: list[str]) -> None:
        selection = _SELECTIONS[Entity.RELATIONSHIP]
        try:
            found = await federation.fetch(
                provider, Entity.RELATIONSHIP, "id", identifiers, selection
            )
        except ProviderError as error:
            kept.refused += len(identifiers)
            notices.warn(provider, f"External ids not written: {error.message}")
            return
        for records in found.values():
            current.update({reference_of(r): r for r in records if isinstance(r, Relationship)})

    await asyncio.gather(*(read(provider, ids) for provider, ids in unknown.items()))
    slots = asyncio.Semaphore(_WRITES)

    async def write(provider: str, identifier: str, name: str) -> None:
        record = current.get(reference(provider, identifier))
        if record is None or record.external_id:
            return
        async with slots:
            try:
                await federation.writes.set_external_id(provider, identifier, name)
            except (Refused, ProviderError) as error:
                kept.refused += 1
                notices.warn(
                    provider, f"External id {name} not given to {identifier}: {error.message}"
                )
                return
        kept.written += 1

    await asyncio.gather(*(write(*item) for item in wanted))
    return kept
