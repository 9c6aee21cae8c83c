"""The link store: groups from links, people's decisions kept, its tables as the migrations made
them, a SQLite file that outlives its process, and a PostgreSQL that two replicas share."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path

import pytest
from sqlalchemy import delete, event, inspect

from gateway.clock import ManualClock
from gateway.errors import LinksUnavailable, Refused
from gateway.model import Entity
from gateway.state.links import (
    Decide,
    Decisions,
    Evidence,
    Findings,
    Group,
    LinkStore,
    Proposal,
    Source,
)
from gateway.state.links.tables import members, metadata
from tests.postgres_server import PostgresServer

B = Entity.BUILDING


@pytest.fixture
async def store() -> AsyncIterator[LinkStore]:
    memory = LinkStore.memory(ManualClock())
    yield memory
    await memory.aclose()


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with PostgresServer().running() as server:
        yield server


def _found(evidence: list[Evidence], proposals: list[Proposal] | None = None) -> Decide:
    """A rebuild that found these, whatever people decided (the rules' part is theirs)."""

    async def decide(_decisions: Mapping[Entity, Decisions]) -> dict[Entity, Findings]:
        return {B: Findings(evidence, proposals or [])}

    return decide


async def test_a_rebuild_stores_what_it_makes_of_decisions_as_they_stand_then(
    store: LinkStore,
) -> None:
    """A rebuild read the decisions, a person unlinked, then the rebuild stores: it is
    given the decisions with the unlink, under the lock that keeps further ones out."""
    rule = Evidence(B, "pms:org_7", "scom:8", Source.RULE, "business-number", 0.99)
    await store.replace([B], _found([rule]))
    await store.decisions(B)
    await store.unlink(B, ["scom:8"], "alice")
    given: list[Decisions] = []

    async def decide(decisions: Mapping[Entity, Decisions]) -> dict[Entity, Findings]:
        given.append(decisions[B])
        kept = [] if frozenset(("pms:org_7", "scom:8")) in decisions[B].apart else [rule]
        return {B: Findings(kept)}

    await store.replace([B], decide)

    assert given == [Decisions([], {frozenset(("pms:org_7", "scom:8"))})]
    assert (await store.groups(B, ["scom:8"]))["scom:8"].members == ("scom:8",)


async def test_a_group_keeps_its_label_through_merges_and_splits(store: LinkStore) -> None:
    first = await store.link(B, ["primmo:9", "pms:prop_12"], "ana")
    merged = await store.link(B, ["scom:3/sp_4", "pms:prop_12"], "ana")
    assert first.label == merged.label == "pms:prop_12"
    assert merged.members == ("pms:prop_12", "primmo:9", "scom:3/sp_4")

    leaf = await store.unlink(B, ["scom:3/sp_4"], "bo")
    hub = await store.unlink(B, ["primmo:9", "pms:prop_12"], "bo")

    assert {group.label: group.members for group in leaf} == {
        "pms:prop_12": ("pms:prop_12", "primmo:9"),
        "scom:3/sp_4": ("scom:3/sp_4",),
    }
    assert {group.label: group.members for group in hub} == {
        "pms:prop_12": ("pms:prop_12",),
        "primmo:9": ("primmo:9",),
    }
    alone = await store.groups(B, ["x:1"])
    assert alone["x:1"].members == ("x:1",) and alone["x:1"].label == "x:1"


async def test_a_group_that_lost_its_founder_to_a_rebuild_is_founded_anew(
    store: LinkStore,
) -> None:
    """A label is a member's reference: the founder, alone again, is a group of its own with
    its own reference as its id, so the group it left cannot keep that id."""

    def rule(first: str, second: str) -> Evidence:
        return Evidence(B, first, second, Source.RULE, "address", 0.97)

    await store.replace([B], _found([rule("a:1", "b:1"), rule("b:1", "c:1")]))
    await store.replace([B], _found([rule("b:1", "c:1")]))

    groups = await store.groups(B, ["a:1", "b:1", "c:1"])
    assert groups["a:1"] == Group(B, "a:1", ("a:1",))
    assert groups["b:1"] == groups["c:1"] == Group(B, "b:1", ("b:1", "c:1"))


async def test_a_link_or_unlink_costs_the_same_statements_for_few_records_or_many(
    store: LinkStore,
) -> None:
    """Pairs kept apart, links dropped and made are written a batch at a time, not a
    statement per pair: unlinking 20 records is not 190 round trips inside the lock."""
    engine = await store.ready()
    statements: list[str] = []

    def count(_connection: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    costs = []
    for size in (3, 20):
        names = [f"p{n}:{size}" for n in range(size)]
        statements.clear()
        await store.link(B, names, "ana")
        linking = len(statements)
        statements.clear()
        await store.unlink(B, names, "bo")
        costs.append((linking, len(statements)))

    assert costs[0] == costs[1], costs


async def test_what_a_person_kept_apart_is_refused_until_both_are_named(store: LinkStore) -> None:
    await store.link(B, ["a:1", "b:2"], "ana")
    await store.unlink(B, ["a:1"], "bo")
    await store.link(B, ["c:3", "b:2"], "ana")

    with pytest.raises(Refused) as refused:
        await store.link(B, ["a:1", "c:3"], "cy")
    assert refused.value.code == "KEPT_APART"
    assert (await store.groups(B, ["a:1"]))["a:1"].members == ("a:1",)

    group = await store.link(B, ["a:1", "b:2"], "cy")
    assert set(group.members) == {"a:1", "b:2", "c:3"}


async def test_a_rebuild_replaces_machine_links_and_keeps_people_s(store: LinkStore) -> None:
    await store.link(B, ["a:1", "b:2"], "ana")
    await store.unlink(B, ["c:3", "d:4"], "bo")
    rule = Evidence(B, "c:3", "e:5", Source.RULE, "address", 0.97)
    await store.replace([B], _found([rule], [Proposal(B, "a:1", "f:6", "name", 0.6)]))
    await store.replace(
        [B],
        _found(
            [Evidence(B, "d:4", "e:5", Source.PROVIDER, "leap")],
            [Proposal(B, "c:3", "g:7", "name", 0.5)],
        ),
    )

    groups = await store.groups(B, ["a:1", "c:3", "d:4"])
    decisions = await store.decisions(B)
    proposals, total = await store.proposals(B, None, 10)

    assert groups["a:1"].members == ("a:1", "b:2")
    assert groups["c:3"].members == ("c:3",) and groups["d:4"].members == ("d:4", "e:5")
    assert decisions.linked == [("a:1", "b:2")] and decisions.apart == {frozenset({"c:3", "d:4"})}
    assert total == 1 and (proposals[0].first, proposals[0].second) == ("c:3", "g:7")
    evidence = await store.evidence(B, ["e:5"])
    assert [(e.source, e.origin) for e in evidence["e:5"]] == [(Source.PROVIDER, "leap")]
    assert await store.duplicates(B, ["a", "b", "d", "e"]) == 2
    assert await store.duplicates(B, ["a", "d"]) == 0


async def test_a_linked_or_dismissed_proposal_is_gone(store: LinkStore) -> None:
    await store.replace(
        [B],
        _found(
            [], [Proposal(B, "a:1", "b:2", "name", 0.6), Proposal(B, "c:3", "d:4", "name", 0.6)]
        ),
    )

    await store.link(B, ["b:2", "a:1"], "ana")
    await store.unlink(B, ["c:3", "d:4"], "bo")

    assert await store.proposals(None, None, 10) == ([], 0)


@pytest.mark.parametrize("where", ["file", "memory"])
async def test_a_read_is_answered_while_a_write_is_under_way(where: str, tmp_path: Path) -> None:
    """Reads never wait for a write (SQLite in WAL mode, reads in deferred transactions),
    in this store or another sharing its file; and they see what was committed, not the
    write under way. The read is made inside the write: were it to wait for the write
    lock, it would wait for ever (bounded here by `wait_for`)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'links.sqlite3'}" if where == "file" else None
    store = LinkStore(url) if url else LinkStore.memory()
    readers = [store, LinkStore(url)] if url else [store]
    await store.link(B, ["a:1", "b:2"], "ana")
    try:
        async with store._transaction() as connection:
            await connection.execute(delete(members))
            seen = [
                await asyncio.wait_for(reader.groups(B, ["a:1"]), timeout=10) for reader in readers
            ]
        assert [found["a:1"].members for found in seen] == [("a:1", "b:2")] * len(readers)
    finally:
        for reader in readers:
            await reader.aclose()


async def test_a_record_forgotten_leaves_its_group_and_every_proposal_naming_it(
    store: LinkStore,
) -> None:
    await store.replace(
        [B],
        _found(
            [Evidence(B, "a:1", "b:2", Source.RULE, "address", 0.97)],
            [
                Proposal(B, "a:1", "c:3", "name", 0.6),
                Proposal(B, "d:4", "a:1", "name", 0.6),
                Proposal(B, "c:3", "d:4", "name", 0.6),
            ],
        ),
    )

    await store.forget(B, "a:1")

    proposals, total = await store.proposals(B, None, 10)
    assert [(p.first, p.second) for p in proposals] == [("c:3", "d:4")] and total == 1
    assert (await store.groups(B, ["a:1"]))["a:1"].members == ("a:1",)


async def test_the_tables_are_what_the_migrations_made(tmp_path: Path) -> None:
    store = LinkStore(f"sqlite+aiosqlite:///{tmp_path / 'links.sqlite3'}")
    engine = await store.ready()

    async with engine.connect() as connection:
        made = await connection.run_sync(
            lambda sync: {
                table: {column["name"] for column in inspect(sync).get_columns(table)}
                for table in inspect(sync).get_table_names()
            }
        )
    await store.aclose()

    assert made.pop("alembic_version") == {"version_num"}
    assert made == {name: set(table.columns.keys()) for name, table in metadata.tables.items()}


async def test_a_sqlite_file_outlives_its_store(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'links.sqlite3'}"
    before = LinkStore(url)
    await before.link(B, ["primmo:9", "pms:prop_12"], "ana")
    await before.aclose()

    after = LinkStore(url)
    groups = await after.groups(B, ["primmo:9"])
    await after.aclose()

    assert groups["primmo:9"].members == ("pms:prop_12", "primmo:9")


async def test_an_unreachable_store_says_so_without_its_url() -> None:
    store = LinkStore("postgresql+asyncpg://someone:hunter2@127.0.0.1:1/links")

    with pytest.raises(LinksUnavailable) as raised:
        await store.groups(B, ["primmo:9"])

    assert raised.value.code == "LINKS_UNAVAILABLE" and "hunter2" not in raised.value.message
    await store.aclose()


async def test_two_replicas_share_one_postgresql(postgres: PostgresServer) -> None:
    """Both migrate at once (one waits for the other); links made concurrently on both are
    all kept, each group change one at a time, and each sees the other's at once."""
    one, two = LinkStore(postgres.url), LinkStore(postgres.url)
    try:
        await asyncio.gather(one.ready(), two.ready())
        await asyncio.gather(
            *(
                (one if index % 2 else two).link(B, [f"primmo:{index}", f"pms:{index}"], "ana")
                for index in range(20)
            ),
            *(
                (two if index % 2 else one).link(B, [f"pms:{index}", f"scom:{index}"], "bo")
                for index in range(20)
            ),
        )

        seen = await two.groups(B, [f"primmo:{index}" for index in range(20)])
        assert all(
            group.members == (f"pms:{index}", f"primmo:{index}", f"scom:{index}")
            for index, group in enumerate(seen.values())
        )
        await one.unlink(B, ["scom:3"], "cy")
        assert (await two.groups(B, ["pms:3"]))["pms:3"].members == ("pms:3", "primmo:3")
        assert await two.duplicates(B, ["primmo", "pms", "scom"]) == 39
    finally:
        await one.aclose()
        await two.aclose()
