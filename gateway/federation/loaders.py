"""Per-request DataLoaders: every relation of a query level becomes one upstream call per provider.

Loaders are keyed by (provider, entity, key kind, selection): the same relation
asked for the same fields anywhere in one query shares one batch, and a
record already fetched in this request is not fetched again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiodataloader import DataLoader

from gateway import notices
from gateway.federation.fan_out import Federation
from gateway.model import Entity, Link, Record, Relation, Selection, Unavailable

__all__ = ["Loaders"]

_LoaderKey = tuple[str, Entity, str, Selection]


class Loaders:
    def __init__(self, federation: Federation) -> None:
        self._federation = federation
        self._loaders: dict[_LoaderKey, DataLoader[str, Sequence[Record]]] = {}

    async def one(self, relation: Relation | None, selection: Selection) -> Record | None:
        link = _followable(relation)
        if link is None:
            return None
        if link.prefetched is not None:
            return link.prefetched[0] if link.prefetched else None
        records = await self._loader(link, selection).load(link.key)
        return records[0] if records else None

    async def many(self, relation: Relation | None, selection: Selection) -> Sequence[Record]:
        link = _followable(relation)
        if link is None:
            return ()
        if link.prefetched is not None:
            return link.prefetched
        return await self._loader(link, selection).load(link.key)

    async def about(
        self, entity: Entity, by: str, reference: str, selection: Selection
    ) -> list[Record]:
        """Records any provider keeps about another's record ("primmo:9"), one batch each."""
        providers = self._federation.referencing(entity, by)
        found = await asyncio.gather(
            *(
                self._loader(Link(provider, entity, by, reference), selection).load(reference)
                for provider in providers
            )
        )
        return [record for records in found for record in records]

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


def _followable(relation: Relation | None) -> Link | None:
    """A relation the provider cannot give says why, once per answer (warnings are
    deduplicated), and answers nothing."""
    if isinstance(relation, Unavailable):
        notices.warn(relation.provider, relation.reason)
        return None
    return relation
