"""Per-request loaders: every relation of a query level becomes one upstream call per provider.

One batch per (provider, entity, key kind) per tick of the event loop: whatever place in
the query asks, with whatever fields, its keys join the batch of the tick, which reads the
union of the fields asked there. A record already read in this request is not read again
where the read covered what is asked now (for a provider that reads whole records, any
read does, but for the relations it reads beside them); otherwise it is read again, with
what was read before as well, so the copy kept covers both. A relation a provider lists only
under a broader key (`Link.within`) shares that key's batch and read, narrowed here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from gateway import notices
from gateway.federation.fan_out import Federation
from gateway.model import Entity, Link, Record, Relation, Selection, Unavailable

__all__ = ["Loaders", "covers", "union"]

_BatchKey = tuple[str, Entity, str]


def union(one: Selection, other: Selection) -> Selection:
    """What both ask: their fields, and their relations, each the union of its two."""
    relations = dict(one.relations)
    for name, asked in other.relations.items():
        relations[name] = union(relations[name], asked) if name in relations else asked
    return Selection(one.fields | other.fields, relations)


def covers(
    read: Selection,
    asked: Selection,
    fields: bool = True,
    embedded: frozenset[str] | None = None,
) -> bool:
    """Whether records read with `read` answer `asked`. `fields` False for a provider that
    reads whole records whatever fields are asked; `embedded`, the relations it reads beside
    a record when asked (None: any may be), the only ones that then count."""
    if fields and not asked.fields <= read.fields:
        return False
    return all(
        name in read.relations and covers(read.relations[name], sub, fields)
        for name, sub in asked.relations.items()
        if embedded is None or name in embedded
    )


class _Batches:
    """The batches of one (provider, entity, key kind) in one request: keys asked in one tick
    are read together after it, as a DataLoader batches them, and each key's read is kept
    with the selection it was read with, which is what tells whether it answers a later ask
    (aiodataloader keys its cache by key alone, with no place for that)."""

    def __init__(self, federation: Federation, place: _BatchKey) -> None:
        self._federation = federation
        self._place = place
        connector = federation.connectors.get(place[0])
        self._selects_fields = connector is None or connector.selects_fields
        embeds = connector.embeds if connector is not None else None
        self._embedded = embeds.get(place[1], frozenset()) if embeds is not None else None
        self._read: dict[str, tuple[Selection, asyncio.Future[Sequence[Record]]]] = {}
        """Each key as last read or being read: with what, and its records."""
        self._queued: dict[str, asyncio.Future[Sequence[Record]]] = {}
        self._asked = Selection()
        self._running: set[asyncio.Task[None]] = set()

    def load(self, key: str, selection: Selection) -> asyncio.Future[Sequence[Record]]:
        read = self._read.get(key)
        if read is not None and covers(read[0], selection, self._selects_fields, self._embedded):
            return read[1]
        if not self._queued:
            asyncio.get_running_loop().call_soon(self._start)
        self._asked = union(self._asked, selection if read is None else union(read[0], selection))
        queued = self._queued.get(key)
        if queued is None:
            queued = self._queued[key] = asyncio.get_running_loop().create_future()
        return queued

    def _start(self) -> None:
        """The batch runs a tick after its first key was asked, and takes every key asked
        until it runs: resolvers started together all ask theirs first."""
        running = asyncio.ensure_future(self._run())
        self._running.add(running)
        running.add_done_callback(self._running.discard)

    async def _run(self) -> None:
        queued, asked = self._queued, self._asked
        self._queued, self._asked = {}, Selection()
        for key, future in queued.items():
            self._read[key] = (asked, future)
        provider, entity, by = self._place
        try:
            found = await self._federation.fetch(provider, entity, by, list(queued), asked)
        except BaseException as error:
            for key, future in queued.items():
                if key in self._read and self._read[key][1] is future:
                    del self._read[key]
                if future.done():
                    continue
                if isinstance(error, Exception):
                    future.set_exception(error)
                else:
                    future.cancel()
            if not isinstance(error, Exception):
                raise
            return
        for key, future in queued.items():
            if not future.done():
                future.set_result(found.get(key, ()))


class Loaders:
    def __init__(self, federation: Federation) -> None:
        self._federation = federation
        self._batches: dict[_BatchKey, _Batches] = {}

    async def one(self, relation: Relation | None, selection: Selection) -> Record | None:
        link = _followable(relation)
        if link is None:
            return None
        if link.prefetched is not None:
            return link.prefetched[0] if link.prefetched else None
        records = _within(link, await self._load(link, link.key, selection))
        return records[0] if records else None

    async def many(self, relation: Relation | None, selection: Selection) -> Sequence[Record]:
        link = _followable(relation)
        if link is None:
            return ()
        if link.prefetched is not None:
            return link.prefetched
        return _within(link, await self._load(link, link.key, selection))

    async def about(
        self, entity: Entity, by: str, reference: str, selection: Selection
    ) -> list[Record]:
        """Records any provider keeps about another's record ("primmo:9"), one batch each."""
        providers = self._federation.referencing(entity, by)
        found = await asyncio.gather(
            *(
                self._load(Link(provider, entity, by, reference), reference, selection)
                for provider in providers
            )
        )
        return [record for records in found for record in records]

    def _load(self, link: Link, key: str, selection: Selection) -> asyncio.Future[Sequence[Record]]:
        place = (link.provider, link.entity, link.by)
        batches = self._batches.get(place)
        if batches is None:
            batches = self._batches[place] = _Batches(self._federation, place)
        return batches.load(key, selection)


def _within(link: Link, records: Sequence[Record]) -> Sequence[Record]:
    if link.within is None:
        return records
    name, key = link.within
    return [
        record
        for record in records
        if isinstance(named := getattr(record, name, None), Link) and named.key == key
    ]


def _followable(relation: Relation | None) -> Link | None:
    """A relation the provider cannot give says why, once per answer (warnings are
    deduplicated), and answers nothing."""
    if isinstance(relation, Unavailable):
        notices.warn(relation.provider, relation.reason)
        return None
    return relation
