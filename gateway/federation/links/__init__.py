"""Records of one thing at several providers, seen as one: groups, their ids, their merged view.

The store (`gateway.state.links`) says which records are linked; this says what a linked
group looks like to a caller. Its entity id is its label, so it stays the same while the
group does, and any entity id ever given out still finds the group holding the record it
was founded on. Its records come in the order of the configured provider precedence,
and a group shown once (`distinct`) is its first record with each field taken from the
first record, in that field's precedence, that has it; its relations are every record's
relations together (`Across`), each related group once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from gateway.model import (
    ENTITY_OF,
    Across,
    Between,
    Contains,
    Criteria,
    Entity,
    Equals,
    Link,
    Merged,
    Record,
    Selection,
    Tenant,
    Unavailable,
)
from gateway.state.links import (
    Evidence,
    Group,
    KeptApart,
    LinkStore,
    Proposal,
    Source,
    provider_of,
    reference,
)

__all__ = [
    "LINKED",
    "NOT_MERGED",
    "Evidence",
    "Group",
    "KeptApart",
    "Linking",
    "Precedence",
    "Proposal",
    "Source",
    "matches",
    "provider_of",
    "reference",
    "reference_of",
]
"""The store's vocabulary is the schema's too: it reaches links through the federation."""

LINKED = frozenset(
    {Entity.LANDLORD, Entity.BUILDING, Entity.UNIT, Entity.TENANT, Entity.RELATIONSHIP}
)
"""The types whose records are linked: those the rules match and LEAP refers to. A lease, a
charge or a work order is one provider's own record (a group of its own), never linked."""

NOT_MERGED = frozenset({"provider", "source_id", "merged"})
"""A merged record's own: which record leads it, and what it was made of."""


def reference_of(record: Record) -> str:
    return reference(record.provider, record.source_id)


@dataclass(frozen=True)
class Precedence:
    """Which provider's record leads a group, and whose value each field takes."""

    default: tuple[str, ...] = ()
    """Unnamed providers come after the named ones, by name (`[links.precedence]` names
    them all by default)."""
    types: Mapping[Entity, tuple[str, ...]] = field(default_factory=dict)
    fields: Mapping[tuple[Entity, str], tuple[str, ...]] = field(default_factory=dict)

    def of(self, entity: Entity, name: str | None = None) -> tuple[str, ...]:
        if name is not None and (entity, name) in self.fields:
            return self.fields[(entity, name)]
        return self.types.get(entity, self.default)

    def rank(self, entity: Entity, name: str | None = None) -> dict[str, int]:
        order = self.of(entity, name)
        return {provider: index for index, provider in enumerate(order)}

    def ordered(self, entity: Entity, refs: Sequence[str], name: str | None = None) -> list[str]:
        """Providers named first, in their order; the others after, by name."""
        rank = self.rank(entity, name)
        return sorted(refs, key=lambda ref: (rank.get(provider_of(ref), len(rank)), ref))


class Linking:
    """The federation's links: the store, and how a linked group is shown. The schema reads
    links through these methods; the store is the federation's."""

    def __init__(
        self,
        store: LinkStore | None = None,
        precedence: Precedence | None = None,
        threshold: float = 0.9,
        write_back: bool = True,
    ) -> None:
        self.store = store or LinkStore.memory()
        self.precedence = precedence or Precedence()
        self.threshold = threshold
        self.write_back = write_back
        """Whether a provider that records relationships is given the gateway's names for
        those linked (`[links] write_back`): checked where any link is kept in step."""

    async def groups(self, entity: Entity, refs: Sequence[str]) -> dict[str, Group]:
        """Each record's group; a type never linked is a group of its own each, which the
        store is not asked for (it may be down, and holds none of them)."""
        if entity not in LINKED:
            return {ref: Group(entity, ref, (ref,)) for ref in refs}
        return await self.store.groups(entity, refs)

    async def forget(self, entity: Entity, ref: str) -> None:
        """A record its provider deleted leaves its group (a type never linked has none)."""
        if entity in LINKED:
            await self.store.forget(entity, ref)

    async def evidence(self, entity: Entity, refs: Sequence[str]) -> dict[str, list[Evidence]]:
        return await self.store.evidence(entity, refs)

    async def proposals(
        self, entity: Entity | None, after: tuple[float, int] | None, limit: int
    ) -> tuple[list[Proposal], int]:
        return await self.store.proposals(entity, after, limit)

    def merged(self, records: Sequence[Record], label: str, selection: Selection) -> Record:
        """One record for a group, known by its label (`Merged`): the first in precedence,
        each field from the first record (in the field's precedence) that has it, relations
        across all of them. Made for a group of one record too, so a row of a `distinct`
        list is always its group, whatever the group's size."""
        entity = ENTITY_OF[type(records[0])]
        by_ref = {reference_of(record): record for record in records}
        ordered = [by_ref[ref] for ref in self.precedence.ordered(entity, list(by_ref))]
        lead = ordered[0]
        changes: dict[str, object] = {"merged": Merged(label, tuple(ordered), selection)}
        for item in dataclasses.fields(lead):
            if item.name in NOT_MERGED:
                continue
            values = [getattr(record, item.name) for record in ordered]
            relations = [value for value in values if isinstance(value, Link | Unavailable)]
            if relations:
                changes[item.name] = _across(relations)
                continue
            rank = self.precedence.rank(entity, item.name)
            chosen = sorted(ordered, key=lambda record: rank.get(record.provider, len(rank)))
            changes[item.name] = next(
                (
                    getattr(record, item.name)
                    for record in chosen
                    if getattr(record, item.name) is not None
                ),
                getattr(lead, item.name),
            )
        return dataclasses.replace(lead, **changes)  # type: ignore[arg-type]


def _across(relations: Sequence[Link | Unavailable]) -> Link | Unavailable | Across:
    """Every record's relation; one that cannot be answered counts only if none can."""
    links = tuple(relation for relation in relations if isinstance(relation, Link))
    if not links:
        return relations[0]
    return links[0] if len(links) == 1 else Across(links)


def matches(record: Record, criteria: Criteria) -> bool:
    """Whether a record is one a list under `criteria` shows, judged here as the providers
    judge it: text contained ignoring case, codes without their padding, rooms in range."""
    for name, condition in criteria.items():
        match condition:
            case Contains(text):
                wanted = text.casefold()
                if name == "name" and isinstance(record, Tenant):
                    values = [record.first_name, record.last_name]
                else:
                    values = [getattr(record, name, None)]
                if not any(wanted in (value or "").casefold() for value in values):
                    return False
            case Equals(value) if name == "occupancy":
                occupancy = getattr(record, "occupancy", None)
                if occupancy is None or occupancy.value != value:
                    return False
            case Equals(value):
                if str(getattr(record, name, None) or "").strip() != str(value).strip():
                    return False
            case Between(low, high):
                number = getattr(record, name, None)
                if not isinstance(number, int | float):
                    return False
                if (low is not None and number < low) or (high is not None and number > high):
                    return False
            case _:
                return False
    return True
