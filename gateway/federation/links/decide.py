"""A person's decisions, `link` and `unlink`, checked before they reach the link store.

A decision is about a few records a person looked at, so it names at most `MOST_NAMED`:
an unlink keeps every record named apart from every other one and from its group, which
is a row per pair, all written while every other change to groups waits. Each record
named must be one the store can hold and one that exists: at its provider (read by id,
one batch per provider, as any query reads it) or, for an unlink, in a group the store
holds, so a record its provider deleted can still be taken out of its group.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gateway.errors import BadUserInput, InvalidId
from gateway.model import Entity, Selection
from gateway.state.links import REFERENCE_LENGTH, Group, provider_of, reference

if TYPE_CHECKING:
    from gateway.federation.fan_out import Federation

__all__ = ["MOST_NAMED", "Decided", "link", "unlink"]

MOST_NAMED = 20
"""Records one link or unlink names: an unlink writes a row for each pair of them."""


@dataclass(frozen=True)
class Decided:
    groups: list[Group] = field(default_factory=list)
    """The groups the records named are in afterwards."""
    missing: list[str] = field(default_factory=list)
    """Records named that do not exist: nothing was decided."""


async def link(federation: Federation, entity: Entity, refs: Sequence[str], origin: str) -> Decided:
    """Raises `KeptApart` if the link would join records a person kept apart."""
    _check(refs)
    missing = await _missing(federation, entity, refs, held=set())
    if missing:
        return Decided(missing=missing)
    return Decided([await federation.linking.store.link(entity, refs, origin)])


async def unlink(
    federation: Federation, entity: Entity, refs: Sequence[str], origin: str
) -> Decided:
    _check(refs)
    store = federation.linking.store
    groups = await store.groups(entity, refs)
    held = {ref for ref, group in groups.items() if len(group.members) > 1}
    missing = await _missing(federation, entity, refs, held)
    if missing:
        return Decided(missing=missing)
    return Decided(await store.unlink(entity, refs, origin))


def _check(refs: Sequence[str]) -> None:
    if len(refs) > MOST_NAMED:
        raise BadUserInput(f"Name at most {MOST_NAMED} records at once.", field="ids")
    for ref in refs:
        if len(ref) > REFERENCE_LENGTH:
            raise InvalidId(
                f"A record id may be at most {REFERENCE_LENGTH} characters: '{ref[:80]}...'."
            )


async def _missing(
    federation: Federation, entity: Entity, refs: Sequence[str], held: set[str]
) -> list[str]:
    """The records named, other than those `held`, that their provider does not have."""
    wanted: dict[str, list[str]] = defaultdict(list)
    for ref in refs:
        if ref not in held:
            wanted[provider_of(ref)].append(ref.partition(":")[2])
    found = await asyncio.gather(
        *(
            federation.fetch(provider, entity, "id", keys, Selection())
            for provider, keys in wanted.items()
        )
    )
    present = {
        reference(provider, key)
        for provider, records in zip(wanted, found, strict=True)
        for key, items in records.items()
        if items
    }
    return [ref for ref in refs if ref not in held and ref not in present]
