"""Which records, at which providers, are one thing: linked groups, and why each link was made.

One implementation over SQLAlchemy's async engine, for both places a gateway keeps them:
an embedded SQLite file (the default, nothing to install) and PostgreSQL, which several
replicas share. The tables are made and changed by Alembic migrations, run once by the
store before its first use, so a new release upgrades the store it finds.

A record is named by its reference, `"<provider>:<source id>"`, within its entity. A
group is a connected set of links; it is stored materialized (each member with the
group's label, the reference of its founding record), so a request finds any record's
group in two indexed reads. A record in no group is a group of its own, never stored.

Writes that change groups (a person's link or unlink, a rebuild) run one at a time,
across replicas too: a PostgreSQL transaction-scoped advisory lock, SQLite's
`BEGIN IMMEDIATE`. Reads never wait for them: PostgreSQL's reads take no lock, and
SQLite runs in WAL mode with reads in deferred transactions, each reading what was
committed when it began. A store "in memory" is a SQLite file of its own in a
temporary directory, gone when the store is closed: an in-memory SQLite database is
one connection, on which a read would have to wait for a whole write transaction.
A group's label is the reference of one of its members, kept through changes wherever
it can be: the part of a split that holds that member, the side of a merge that holds
most of the members, keeps it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import os
import tempfile
from collections import Counter, defaultdict
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    Connection,
    Table,
    and_,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from gateway.clock import Clock, SystemClock
from gateway.errors import LinksUnavailable, Refused
from gateway.model import Entity
from gateway.state.links.tables import REFERENCE_LENGTH, apart, links, members, proposals

__all__ = [
    "DRIVERS",
    "REFERENCE_LENGTH",
    "Decide",
    "Decisions",
    "connected",
    "masked",
    "Evidence",
    "Findings",
    "Group",
    "KeptApart",
    "LinkStore",
    "Proposal",
    "Source",
    "provider_of",
    "reference",
    "url_problem",
]

_CHUNK = 500
"""References (or pairs) per `IN (...)`: well under SQLite's and PostgreSQL's bound
parameters."""
T = TypeVar("T")
_LOCK = int.from_bytes(hashlib.sha256(b"propgate links").digest()[:4], "big")
"""The PostgreSQL advisory lock every group-changing transaction takes."""
_WRITING = "propgate_links_writing"
"""The execution option that makes a SQLite transaction begin IMMEDIATE (a write's)."""


def reference(provider: str, source_id: str) -> str:
    """How the store and LEAP's `extid` name a record: `"primmo:9"`."""
    return f"{provider}:{source_id}"


def provider_of(ref: str) -> str:
    return ref.partition(":")[0]


class Source(enum.Enum):
    """Where a link came from."""

    PROVIDER = "PROVIDER"
    """A provider's own reference to another's record (LEAP's `extid`)."""
    RULE = "RULE"
    """A matching rule whose score reached the threshold."""
    PERSON = "PERSON"
    """A person, through the `link` mutation."""


@dataclass(frozen=True)
class Evidence:
    """One link: why two records are one, said by whom, and when."""

    entity: Entity
    first: str
    second: str
    source: Source
    origin: str
    """The provider, the rule or the person."""
    score: float = 1.0
    made_at: datetime | None = None


@dataclass(frozen=True)
class Proposal:
    """A rule's finding below the threshold, until a person links or unlinks the two."""

    entity: Entity
    first: str
    second: str
    rule: str
    score: float
    id: int | None = None
    made_at: datetime | None = None


@dataclass(frozen=True)
class Group:
    entity: Entity
    label: str
    """The founding record's reference: what the group's entity id says."""
    members: tuple[str, ...]


@dataclass
class Decisions:
    """What people decided, which a rebuild keeps and never overrules."""

    linked: list[tuple[str, str]] = field(default_factory=list)
    apart: set[frozenset[str]] = field(default_factory=set)


@dataclass(frozen=True)
class Findings:
    """What a rebuild found of one type: the links it makes, the proposals it leaves."""

    evidence: Sequence[Evidence] = ()
    proposals: Sequence[Proposal] = ()


Decide = Callable[[Mapping[Entity, Decisions]], Awaitable[Mapping[Entity, Findings]]]
"""A rebuild's findings, given people's decisions as they stand when it stores them."""


class KeptApart(Refused):
    """A link refused: it would join two records a person kept apart."""

    def __init__(self, first: str, second: str) -> None:
        super().__init__(
            "KEPT_APART",
            f"A person kept {first} and {second} apart; unlink or link those two first.",
        )
        self.first, self.second = first, second


def _pairs_in(table: Table, chunk: Sequence[tuple[str, str]]) -> Any:
    """Rows about these pairs of records (each stored with the smaller one first)."""
    return tuple_(table.c.first, table.c.second).in_(list(chunk))


def _pair(first: str, second: str) -> tuple[str, str]:
    return (first, second) if first <= second else (second, first)


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
"""The databases and drivers the store runs on: its writes take turns by a lock each has
its own way of taking (SQLite's write lock, PostgreSQL's advisory lock)."""


def url_problem(url: str) -> str | None:
    """What makes `url` one the store cannot use, said without its password, or None."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "is not a database URL (sqlite+aiosqlite:///path, postgresql+asyncpg://...)"
    if parsed.drivername not in DRIVERS:
        return (
            f"names {parsed.drivername}: the link store runs on "
            f"{' or '.join(f'{name}://' for name in DRIVERS)} only"
        )
    if parsed.drivername.startswith("sqlite") and parsed.database not in (None, "", ":memory:"):
        place = Path(parsed.database)
        folder = place.parent
        if not folder.is_dir():
            return f"is a file in {folder}, which does not exist"
        if not os.access(folder, os.W_OK) or (place.exists() and not os.access(place, os.W_OK)):
            return f"is {place}, which this process cannot write"
    return None


class LinkStore:
    def __init__(self, url: str, clock: Clock | None = None) -> None:
        """`url`: SQLAlchemy's, with an async driver (`sqlite+aiosqlite:///links.sqlite3`,
        `postgresql+asyncpg://user@host/db`); `sqlite+aiosqlite://` keeps it in memory."""
        self.url = url
        self._clock = clock or SystemClock()
        self._engine: AsyncEngine | None = None
        self._ready = asyncio.Lock()
        self._migrated = False
        self._writing = asyncio.Lock()
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        """Where a store in memory keeps its file."""

    @classmethod
    def memory(cls, clock: Clock | None = None) -> LinkStore:
        return cls("sqlite+aiosqlite://", clock)

    @property
    def postgres(self) -> bool:
        return self.url.startswith("postgresql")

    @property
    def in_memory(self) -> bool:
        return self.url.startswith("sqlite") and (
            self.url.rstrip("/").endswith(":") or ":memory:" in self.url
        )

    @contextlib.asynccontextmanager
    async def _connect(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads: its transaction, begun by its first statement, is
        deferred on SQLite, so it takes no lock a write holds."""
        engine = await self.ready()
        async with engine.connect() as connection:
            yield connection

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def _make_engine(self) -> AsyncEngine:
        if not self.url.startswith("sqlite"):
            return create_async_engine(self.url, pool_pre_ping=True)
        url = self.url
        if self.in_memory:
            self._scratch = tempfile.TemporaryDirectory(prefix="propgate-links-")
            url = f"sqlite+aiosqlite:///{Path(self._scratch.name) / 'links.sqlite3'}"
        engine = create_async_engine(url, connect_args={"timeout": 15})

        @event.listens_for(engine.sync_engine, "connect")
        def _write_ahead(connection: Any, _record: Any) -> None:
            """pysqlite begins its transactions itself, late and deferred; the store begins
            them (below) so a write transaction holds SQLite's write lock from its start.
            In WAL mode, readers read past a writer rather than wait for it."""
            connection.isolation_level = None
            connection.execute("PRAGMA journal_mode=WAL")

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(connection: Connection) -> None:
            writing = connection.get_execution_options().get(_WRITING, False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")

        return engine

    async def ready(self) -> AsyncEngine:
        """The engine, once the tables are at the migrations' head."""
        if self._migrated and self._engine is not None:
            return self._engine
        async with self._ready:
            if self._engine is None:
                self._engine = self._make_engine()
            if not self._migrated:
                try:
                    async with self._engine.connect() as connection:
                        current = await connection.run_sync(_revision)
                    if current != _HEAD:
                        async with _writing(self._engine) as connection:
                            await connection.run_sync(_upgrade)
                except (SQLAlchemyError, OSError) as error:
                    raise _unavailable(error) from None
                self._migrated = True
        return self._engine

    async def aclose(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None
            self._migrated = False
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None

    async def groups(self, entity: Entity, refs: Iterable[str]) -> dict[str, Group]:
        """The group of each record: its linked group, or a group of its own."""
        wanted = list(dict.fromkeys(refs))
        if not wanted:
            return {}
        try:
            async with self._connect() as connection:
                found = await self._groups(connection, entity, wanted)
        except (SQLAlchemyError, OSError) as error:
            raise _unavailable(error) from None
        return found

    async def _groups(
        self, connection: AsyncConnection, entity: Entity, wanted: Sequence[str]
    ) -> dict[str, Group]:
        labels: dict[str, str] = {}
        for chunk in _chunks(wanted):
            rows = await connection.execute(
                select(members.c.reference, members.c.label).where(
                    members.c.entity == entity.value, members.c.reference.in_(chunk)
                )
            )
            labels.update({row.reference: row.label for row in rows})
        belonging: dict[str, list[str]] = defaultdict(list)
        distinct = sorted(set(labels.values()))
        for chunk in _chunks(distinct):
            rows = await connection.execute(
                select(members.c.reference, members.c.label)
                .where(members.c.entity == entity.value, members.c.label.in_(chunk))
                .order_by(members.c.reference)
            )
            for row in rows:
                belonging[row.label].append(row.reference)
        found = {}
        for ref in wanted:
            label = labels.get(ref)
            group_members = tuple(belonging.get(label, ())) if label else ()
            found[ref] = Group(entity, label or ref, group_members or (ref,))
        return found

    async def link(self, entity: Entity, refs: Sequence[str], origin: str) -> Group:
        """A person's link: the records, and the groups they are in, become one group.

        Refused (`KeptApart`) if that would join records a person kept apart, other than
        the ones named here: naming both is how a person takes back such a decision."""
        named = list(dict.fromkeys(refs))
        now = self._now()
        async with self._transaction() as connection:
            groups = await self._groups(connection, entity, named)
            joined = sorted({ref for group in groups.values() for ref in group.members})
            apart_pairs = await self._apart_among(connection, entity, joined)
            lifted = {frozenset(_pair(a, b)) for a in named for b in named if a != b}
            blocking = sorted(sorted(pair) for pair in apart_pairs if pair not in lifted)
            if blocking:
                raise KeptApart(*blocking[0])
            taken_back = [_pair(*pair) for pair in lifted & set(apart_pairs)]
            for chunk in _chunks(taken_back):
                await connection.execute(
                    delete(apart).where(apart.c.entity == entity.value, _pairs_in(apart, chunk))
                )
            made = sorted({_pair(named[0], other) for other in named[1:]})
            for chunk in _chunks(made):
                await connection.execute(
                    delete(links).where(
                        links.c.entity == entity.value,
                        links.c.source == Source.PERSON.value,
                        links.c.origin == origin,
                        _pairs_in(links, chunk),
                    )
                )
            await connection.execute(
                insert(links),
                [
                    {
                        "entity": entity.value,
                        "first": first,
                        "second": second,
                        "source": Source.PERSON.value,
                        "origin": origin,
                        "score": 1.0,
                        "made_at": now,
                    }
                    for first, second in made
                ],
            )
            await self._drop_proposals(connection, entity, joined)
            await self._regroup(connection, entity, joined)
            return (await self._groups(connection, entity, named[:1]))[named[0]]

    async def unlink(self, entity: Entity, refs: Sequence[str], origin: str) -> list[Group]:
        """A person's unlink: each record named leaves its group and is kept apart from that
        group's other members, and the records named from each other (which dismisses a
        proposal between them). What is left of a group stays together where other links
        still hold it. The pairs are written a batch at a time: their number grows as the
        square of the records named."""
        named = list(dict.fromkeys(refs))
        now = self._now()
        async with self._transaction() as connection:
            groups = await self._groups(connection, entity, named)
            touched = sorted({ref for group in groups.values() for ref in group.members})
            pairs = {_pair(ref, other) for ref in named for other in groups[ref].members}
            pairs |= {_pair(a, b) for a in named for b in named}
            kept = sorted((a, b) for a, b in pairs if a != b)
            for chunk in _chunks(kept):
                await connection.execute(
                    delete(apart).where(apart.c.entity == entity.value, _pairs_in(apart, chunk))
                )
            if kept:
                await connection.execute(
                    insert(apart),
                    [
                        {
                            "entity": entity.value,
                            "first": first,
                            "second": second,
                            "origin": origin,
                            "made_at": now,
                        }
                        for first, second in kept
                    ],
                )
            for leaving in _chunks(named):
                await connection.execute(
                    delete(links).where(
                        links.c.entity == entity.value,
                        or_(links.c.first.in_(leaving), links.c.second.in_(leaving)),
                    )
                )
            await self._drop_proposals(connection, entity, named)
            await self._regroup(connection, entity, touched)
            after = await self._groups(connection, entity, touched)
        return list({group.label: group for group in after.values()}.values())

    async def forget(self, entity: Entity, ref: str) -> None:
        """A record its provider deleted: its links go, it leaves its group, and every
        proposal naming it goes (none could be decided). People's decisions about it
        stay, should it come back."""
        async with self._transaction() as connection:
            touched = list((await self._groups(connection, entity, [ref]))[ref].members)
            await connection.execute(
                delete(links).where(
                    links.c.entity == entity.value,
                    or_(links.c.first == ref, links.c.second == ref),
                )
            )
            await connection.execute(
                delete(proposals).where(
                    proposals.c.entity == entity.value,
                    or_(proposals.c.first == ref, proposals.c.second == ref),
                )
            )
            await self._regroup(connection, entity, touched)

    async def decisions(self, entity: Entity) -> Decisions:
        try:
            async with self._connect() as connection:
                return await self._decisions(connection, entity)
        except (SQLAlchemyError, OSError) as error:
            raise _unavailable(error) from None

    async def _decisions(self, connection: AsyncConnection, entity: Entity) -> Decisions:
        found = Decisions()
        rows = await connection.execute(
            select(links.c.first, links.c.second)
            .where(links.c.entity == entity.value, links.c.source == Source.PERSON.value)
            .order_by(links.c.first, links.c.second)
        )
        found.linked = [(row.first, row.second) for row in rows]
        rows = await connection.execute(
            select(apart.c.first, apart.c.second).where(apart.c.entity == entity.value)
        )
        found.apart = {frozenset((row.first, row.second)) for row in rows}
        return found

    async def replace(self, entities: Sequence[Entity], decide: Decide) -> None:
        """A rebuild's outcome: for each entity, every link a provider or a rule made and
        every proposal replaced, in one transaction; people's links and decisions stay.

        What is stored is what `decide` makes of people's decisions as they stand inside
        that transaction, which every other change to groups waits for: a person's link or
        unlink made while the rebuild read and matched is never overruled by it."""
        now = self._now()
        async with self._transaction() as connection:
            decisions = {entity: await self._decisions(connection, entity) for entity in entities}
            decided = await decide(decisions)
            for entity in entities:
                await self._replace(connection, entity, decided[entity], now)

    async def _replace(
        self, connection: AsyncConnection, entity: Entity, found: Findings, now: datetime
    ) -> None:
        await connection.execute(
            delete(links).where(
                links.c.entity == entity.value, links.c.source != Source.PERSON.value
            )
        )
        await connection.execute(delete(proposals).where(proposals.c.entity == entity.value))
        rows = {}
        for item in found.evidence:
            first, second = _pair(item.first, item.second)
            rows[(first, second, item.source.value, item.origin)] = {
                "entity": entity.value,
                "first": first,
                "second": second,
                "source": item.source.value,
                "origin": item.origin,
                "score": item.score,
                "made_at": item.made_at or now,
            }
        if rows:
            await connection.execute(insert(links), list(rows.values()))
        waiting = {}
        for proposal in found.proposals:
            first, second = _pair(proposal.first, proposal.second)
            waiting[(first, second)] = {
                "entity": entity.value,
                "first": first,
                "second": second,
                "rule": proposal.rule,
                "score": proposal.score,
                "made_at": proposal.made_at or now,
            }
        if waiting:
            await connection.execute(insert(proposals), list(waiting.values()))
        await self._regroup(connection, entity, None)

    async def proposals(
        self, entity: Entity | None, after: tuple[float, int] | None, limit: int
    ) -> tuple[list[Proposal], int]:
        """Proposals by score, best first, then as they were made (by id), from the one
        after `after` (a score and an id): a position that stays where it was when the
        proposals before it are decided; and how many there are in all."""
        where = [] if entity is None else [proposals.c.entity == entity.value]
        try:
            async with self._connect() as connection:
                total = await connection.scalar(
                    select(func.count()).select_from(proposals).where(*where)
                )
                if after is not None:
                    score, identifier = after
                    where.append(
                        or_(
                            proposals.c.score < score,
                            and_(proposals.c.score == score, proposals.c.id > identifier),
                        )
                    )
                rows = await connection.execute(
                    select(proposals)
                    .where(*where)
                    .order_by(proposals.c.score.desc(), proposals.c.id)
                    .limit(limit)
                )
                found = [
                    Proposal(
                        Entity(row.entity),
                        row.first,
                        row.second,
                        row.rule,
                        row.score,
                        row.id,
                        _aware(row.made_at),
                    )
                    for row in rows
                ]
        except (SQLAlchemyError, OSError) as error:
            raise _unavailable(error) from None
        return found, int(total or 0)

    async def evidence(self, entity: Entity, refs: Sequence[str]) -> dict[str, list[Evidence]]:
        """The links each record takes part in."""
        found: dict[str, list[Evidence]] = {ref: [] for ref in refs}
        try:
            async with self._connect() as connection:
                for chunk in _chunks(list(found)):
                    rows = await connection.execute(
                        select(links)
                        .where(
                            links.c.entity == entity.value,
                            or_(links.c.first.in_(chunk), links.c.second.in_(chunk)),
                        )
                        .order_by(links.c.id)
                    )
                    for row in rows:
                        item = Evidence(
                            entity,
                            row.first,
                            row.second,
                            Source(row.source),
                            row.origin,
                            row.score,
                            _aware(row.made_at),
                        )
                        for ref in (row.first, row.second):
                            if ref in found:
                                found[ref].append(item)
        except (SQLAlchemyError, OSError) as error:
            raise _unavailable(error) from None
        return found

    async def duplicates(self, entity: Entity, providers: Sequence[str]) -> int:
        """Records of these providers that a list showing each group once leaves out: in
        each group, all but one of its members at these providers."""
        scoped = and_(members.c.entity == entity.value, members.c.provider.in_(list(providers)))
        try:
            async with self._connect() as connection:
                records = await connection.scalar(
                    select(func.count()).select_from(members).where(scoped)
                )
                groups = await connection.scalar(
                    select(func.count(members.c.label.distinct())).where(scoped)
                )
        except (SQLAlchemyError, OSError) as error:
            raise _unavailable(error) from None
        return int(records or 0) - int(groups or 0)

    def _transaction(self) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
        return _transaction(self)

    async def _apart_among(
        self, connection: AsyncConnection, entity: Entity, refs: Sequence[str]
    ) -> list[frozenset[str]]:
        inside = set(refs)
        found = []
        for chunk in _chunks(list(refs)):
            rows = await connection.execute(
                select(apart.c.first, apart.c.second).where(
                    apart.c.entity == entity.value, apart.c.first.in_(chunk)
                )
            )
            found += [frozenset((r.first, r.second)) for r in rows if r.second in inside]
        return found

    async def _drop_proposals(
        self, connection: AsyncConnection, entity: Entity, refs: Sequence[str]
    ) -> None:
        """Proposals between records now decided on (linked together, or kept apart)."""
        inside = set(refs)
        for chunk in _chunks(list(refs)):
            rows = await connection.execute(
                select(proposals.c.id, proposals.c.second).where(
                    proposals.c.entity == entity.value, proposals.c.first.in_(chunk)
                )
            )
            done = [row.id for row in rows if row.second in inside]
            if done:
                await connection.execute(delete(proposals).where(proposals.c.id.in_(done)))

    async def _regroup(
        self, connection: AsyncConnection, entity: Entity, refs: Sequence[str] | None
    ) -> None:
        """Recomputes the groups of `refs` (every group with `None`) from the links."""
        kind = members.c.entity == entity.value
        edges = select(links.c.first, links.c.second).where(links.c.entity == entity.value)
        old = select(members.c.reference, members.c.label).where(kind)
        pairs: list[tuple[str, str]] = []
        previous: dict[str, str] = {}
        for chunk in [None] if refs is None else _chunks(list(refs)):
            edge_rows = await connection.execute(
                edges
                if chunk is None
                else edges.where(or_(links.c.first.in_(chunk), links.c.second.in_(chunk)))
            )
            pairs += [(row.first, row.second) for row in edge_rows]
            old_rows = await connection.execute(
                old if chunk is None else old.where(members.c.reference.in_(chunk))
            )
            previous.update({row.reference: row.label for row in old_rows})
        labelled = _components(pairs, previous)
        if refs is None:
            await connection.execute(delete(members).where(kind))
        else:
            for chunk in _chunks(list(refs)):
                await connection.execute(
                    delete(members).where(kind, members.c.reference.in_(chunk))
                )
        rows = [
            {"entity": entity.value, "reference": ref, "provider": provider_of(ref), "label": label}
            for ref, label in labelled.items()
        ]
        if rows:
            await connection.execute(insert(members), rows)


@contextlib.asynccontextmanager
async def _writing(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A write transaction, holding the lock of writes from its start: PostgreSQL's
    advisory lock, SQLite's write lock (`BEGIN IMMEDIATE`)."""
    async with engine.connect() as connection:
        await connection.execution_options(**{_WRITING: True})
        async with connection.begin():
            if engine.dialect.name == "postgresql":
                await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK})
            yield connection


@contextlib.asynccontextmanager
async def _transaction(store: LinkStore) -> AsyncIterator[AsyncConnection]:
    """One group-changing transaction at a time: in this process (a lock), across
    replicas (the write lock of `_writing`); a store that fails says it is unavailable."""
    engine = await store.ready()
    async with store._writing:
        try:
            async with _writing(engine) as connection:
                yield connection
        except (SQLAlchemyError, OSError) as error:
            raise _unavailable(error) from None


def connected(pairs: Iterable[tuple[str, str]]) -> list[list[str]]:
    """The groups that pairs of records make, each record's group with every record it is
    paired with, directly or not."""
    parent: dict[str, str] = {}

    def root(ref: str) -> str:
        parent.setdefault(ref, ref)
        while parent[ref] != ref:
            parent[ref] = parent[parent[ref]]
            ref = parent[ref]
        return ref

    for first, second in pairs:
        a, b = root(first), root(second)
        if a != b:
            parent[max(a, b)] = min(a, b)
    grouped: dict[str, list[str]] = defaultdict(list)
    for ref in list(parent):
        grouped[root(ref)].append(ref)
    return list(grouped.values())


def _components(pairs: Sequence[tuple[str, str]], previous: Mapping[str, str]) -> dict[str, str]:
    """Each record in a group of two or more, with its group's label.

    A label is always one of its group's references, so no two groups can hold one, and
    any label finds its group through that record: a record alone is its own group (its
    label, implicitly, its reference), and a group that lost its founder is founded anew.
    Otherwise each group keeps the label most of its members had (ties: the smallest) among
    those still its members', else its smallest reference founds it."""
    labelled: dict[str, str] = {}
    for refs in connected(pairs):
        inside = set(refs)
        votes = Counter(previous.get(ref, ref) for ref in refs)
        ranked = sorted(votes.items(), key=lambda item: (-item[1], item[0]))
        label = next((name for name, _ in ranked if name in inside), min(refs))
        labelled.update(dict.fromkeys(refs, label))
    return labelled


def _migrations() -> Config:
    config = Config()
    config.set_main_option("script_location", "gateway.state.links:migrations")
    return config


_HEAD = ScriptDirectory.from_config(_migrations()).get_current_head()
"""The revision the store's tables must be at: checked by a read, so a store already
there (every start but the first) takes no write lock to learn it."""


def _revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _upgrade(connection: Connection) -> None:
    config = _migrations()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _aware(moment: datetime) -> datetime:
    """SQLite gives back naive datetimes; the store writes UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _unavailable(error: BaseException) -> LinksUnavailable:
    """Callers are told the kind only; the driver's own message (which can carry the URL,
    and so a password: `masked` hides it) is the operator's, in `reason`."""
    cause = getattr(error, "orig", None) or error
    kind = type(cause).__name__
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        kind = f"{kind}, connection lost"
    failure = LinksUnavailable(f"The link store is unavailable ({kind}).")
    failure.reason = str(cause) or kind
    return failure


def masked(url: str, text: str) -> str:
    """`text` without the password `url` holds, and `url` as it may be shown."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return text
    if parsed.password:
        text = text.replace(str(parsed.password), "***")
    return text.replace(url, parsed.render_as_string(hide_password=True))
