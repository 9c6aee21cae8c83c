"""Per-request DataLoaders: every relation of a query level becomes one upstream call per provider.

Loaders are keyed by (provider, entity, key kind, selection): the same relation
asked for the same fields anywhere in one query shares one batch, and a
record already fetched in this request is not fetched again. Linked groups are
looked up the same way: every record of a query level asking for its group
costs one read of the link store together.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

from aiodataloader import DataLoader

from gateway import notices
from gateway.errors import ProviderError
from gateway.federation.fan_out import Federation
from gateway.federation.links import reference_of
from gateway.model import ENTITY_OF, Across, Entity, Link, Record, Relation, Selection, Unavailable
from gateway.state.links import Group, provider_of

__all__ = ["Loaders"]

_LoaderKey = tuple[str, Entity, str, Selection]
T = TypeVar("T")


async def _shared(answer: Awaitable[T]) -> T:
    """A key's answer is one future shared by every field that asked for it. graphql-core
    cancels a failed field's siblings, and cancelling a task cancels the future it awaits:
    unshielded, the other fields waiting for the same answer would get `CancelledError`,
    which ends the whole request instead of one field. An answer that every field gave up
    on is still read once it comes, so its failure is not logged as never retrieved."""
    future = asyncio.ensure_future(answer)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        future.add_done_callback(_read)
        raise


def _read(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class Loaders:
    def __init__(self, federation: Federation) -> None:
        self._federation = federation
        self._loaders: dict[_LoaderKey, DataLoader[str, Sequence[Record]]] = {}
        self._groups: dict[Entity, DataLoader[str, Group]] = {}

    async def one(self, relation: Relation | None, selection: Selection) -> Record | None:
        if isinstance(relation, Across):
            found = await self.many(relation, selection)
            return found[0] if found else None
        link = _followable(relation)
        if link is None:
            return None
        if link.prefetched is not None:
            return link.prefetched[0] if link.prefetched else None
        records = await _shared(self._loader(link, selection).load(link.key))
        return records[0] if records else None

    async def many(self, relation: Relation | None, selection: Selection) -> Sequence[Record]:
        if isinstance(relation, Across):
            found = await asyncio.gather(*(self.many(link, selection) for link in relation.links))
            return await self.distinct(
                [record for records in found for record in records], selection
            )
        link = _followable(relation)
        if link is None:
            return ()
        if link.prefetched is not None:
            return link.prefetched
        return await _shared(self._loader(link, selection).load(link.key))

    async def about(
        self, entity: Entity, by: str, references: Sequence[str], selection: Selection
    ) -> list[Record]:
        """Records any provider keeps about others' records ("primmo:9"), one batch each."""
        providers = self._federation.referencing(entity, by)
        found = await asyncio.gather(
            *(
                _shared(self._loader(Link(provider, entity, by, ref), selection).load(ref))
                for provider in providers
                for ref in references
            )
        )
        unique = {reference_of(record): record for records in found for record in records}
        return list(unique.values())

    async def group(self, record: Record) -> Group:
        """The record's linked group (itself alone, if it has none)."""
        entity = ENTITY_OF[type(record)]
        loader = self._groups.get(entity)
        if loader is None:
            store = self._federation.linking.store

            async def batch(refs: list[str]) -> list[Group]:
                found = await store.groups(entity, refs)
                return [found[ref] for ref in refs]

            loader = self._groups[entity] = DataLoader(batch)
        return await _shared(loader.load(reference_of(record)))

    async def members(
        self, record: Record, selection: Selection
    ) -> tuple[list[Record], list[ProviderError]]:
        """Every record of the record's group, in precedence order, this one included as it
        is; a member its provider no longer has is left out, and so is one whose provider
        failed, with its error."""
        entity = ENTITY_OF[type(record)]
        group = await self.group(record)
        own = reference_of(record)
        ordered = self._federation.linking.precedence.ordered(entity, list(group.members))

        async def other(ref: str) -> Record | ProviderError | None:
            try:
                return await self.one(
                    Link(provider_of(ref), entity, "id", ref.partition(":")[2]), selection
                )
            except ProviderError as error:
                return error

        found = await asyncio.gather(*(other(ref) for ref in ordered if ref != own))
        others = iter(found)
        members: list[Record] = []
        errors: list[ProviderError] = []
        for ref in ordered:
            member = record if ref == own else next(others)
            if isinstance(member, ProviderError):
                errors.append(member)
            elif member is not None:
                members.append(member)
        return members, errors

    async def distinct(self, records: Sequence[Record], selection: Selection) -> list[Record]:
        """Each linked group among `records` once, merged, where its first record stood."""
        if not records:
            return []
        groups = await asyncio.gather(*(self.group(record) for record in records))
        seen: dict[str, Record] = {}
        for record, group in zip(records, groups, strict=True):
            seen.setdefault(group.label, record)
        found = await asyncio.gather(*(self.members(first, selection) for first in seen.values()))
        for _, errors in found:
            if errors:
                raise errors[0]
        linking = self._federation.linking
        return [
            linking.merged(group, label, selection)
            for label, (group, _) in zip(seen, found, strict=True)
            if group
        ]

    def _loader(self, link: Link, selection: Selection) -> DataLoader[str, Sequence[Record]]:
        key = (link.provider, link.entity, link.by, selection)
        loader = self._loaders.get(key)
        if loader is None:

            async def batch(keys: list[str]) -> list[Sequence[Record]]:
                found = await self._federation.fetch(
                    link.provider, link.entity, link.by, keys, selection
                )
                return [found.get(k, ()) for k in keys]

            loader = DataLoader(batch)
            self._loaders[key] = loader
        return loader


def _followable(relation: Link | Unavailable | None) -> Link | None:
    """A relation the provider cannot give says why, once per answer (warnings are
    deduplicated), and answers nothing."""
    if isinstance(relation, Unavailable):
        notices.warn(relation.provider, relation.reason)
        return None
    return relation
