"""The paging strategies connectors share: their requests, where they stop, and the standings
of merged streams (the federation's cursor and SCOM's over landlords)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from gateway.connectors.base import ListRequest
from gateway.connectors.paging import (
    MAX_PAGES,
    Offsets,
    PageNumbers,
    RelayCursor,
    Standings,
    Trail,
)
from gateway.errors import InvalidCursor
from gateway.model import Record, Selection, Tenant
from tests.conftest import Client

ROWS = list(range(250))


def _tenant(number: int) -> Record:
    return Tenant(provider="p", source_id=str(number))


async def test_page_numbers_ask_for_one_page_that_covers_the_window_and_report_the_total() -> None:
    asked: list[tuple[int, int]] = []

    async def fetch(page: int, size: int) -> tuple[Sequence[int], int | None]:
        asked.append((page, size))
        start = (page - 1) * size
        return ROWS[start : start + size], len(ROWS)

    page = await PageNumbers(fetch, 100).page(
        ListRequest({}, Selection(), limit=5, position=12, count=True), _tenant
    )

    assert [record.source_id for record in page.records] == ["12", "13", "14", "15", "16"]
    assert page.positions == [13, 14, 15, 16, 17] and page.total == 250
    assert not page.exhausted and len(asked) == 1


async def test_all_rows_are_read_at_the_largest_page_until_the_provider_ends() -> None:
    asked: list[tuple[int, int]] = []

    async def fetch(offset: int, limit: int) -> tuple[Sequence[int], bool, None]:
        asked.append((offset, limit))
        rows = ROWS[offset : offset + limit]
        return rows, len(rows) < limit, None

    rows = await Offsets(fetch, 100).all()

    assert rows == ROWS
    assert asked == [(0, 100), (100, 100), (200, 100)]


async def test_a_relay_connection_that_says_more_without_moving_ends_the_read() -> None:
    asked: list[str | None] = []

    async def fetch(after: str | None, _first: int) -> tuple[list[tuple[str, int]], bool, int]:
        asked.append(after)
        return [("same", 1)], True, 1

    items = await RelayCursor(fetch, 100).all()

    assert items == [1, 1] and asked == [None, "same"]


async def test_a_relay_connection_whose_pages_never_end_is_cut_at_the_budget() -> None:
    async def fetch(after: str | None, _first: int) -> tuple[list[tuple[str, int]], bool, int]:
        at = int(after or 0)
        return [(str(at + 1), at)], True, 0

    items = await RelayCursor(fetch, 1).all()

    assert len(items) == MAX_PAGES


async def test_a_relay_page_refuses_a_position_that_is_not_a_cursor() -> None:
    async def fetch(_after: str | None, _first: int) -> tuple[list[tuple[str, int]], bool, int]:
        raise AssertionError("nothing is asked for a foreign position")

    with pytest.raises(InvalidCursor):
        await RelayCursor(fetch, 10).page(ListRequest({}, Selection(), 5, position=3), _tenant)


def test_standings_say_after_each_item_where_every_stream_stands_and_which_are_done() -> None:
    standings = Standings[int](positions={"b": 1})
    streams = {
        "a": ([("x", 1, "a1"), ("z", 2, "a2")], True),
        "b": ([("y", 2, "b2"), ("zz", 3, "b3")], False),
    }
    trail = Trail(standings)

    taken = standings.advance(streams, 3, trail)

    assert taken == ["a1", "b2", "a2"]
    assert trail.at(2) == ({"b": 2, "a": 2}, {"a"})
    assert trail.at(0) == ({"b": 1, "a": 1}, set())
    assert trail.at(1) == ({"b": 2, "a": 1}, set())
    assert standings.done == {"a"}


def test_one_stream_taken_whole_is_done_at_its_last_item_only() -> None:
    standings = Standings[int](positions={"a": 3}, done={"b"})
    trail = Trail(standings)

    taken = standings.take("a", ["a4", "a5"], [4, 5], True, 10, trail)

    assert list(taken) == ["a4", "a5"]
    assert trail.at(0) == ({"a": 4}, {"b"})
    assert trail.at(1) == ({"a": 5}, {"a", "b"})
    assert standings.positions == {"a": 5} and standings.done == {"a", "b"}


def test_a_stream_whose_positions_do_not_match_its_items_is_refused() -> None:
    standings = Standings[int]()

    with pytest.raises(ValueError, match="2 items and 1 positions"):
        standings.take("a", ["a1", "a2"], [1], False, 10, Trail(standings))


def test_a_stream_that_ends_is_not_done_while_items_of_it_were_left() -> None:
    standings = Standings[int]()

    taken = standings.advance(
        {"a": ([(None, 1, "a1"), (None, 2, "a2")], True)}, 1, Trail(standings)
    )

    assert taken == ["a1"]
    assert standings.done == set() and standings.positions == {"a": 1}


async def test_a_cursor_of_another_list_is_named_as_such_not_as_malformed(client: Client) -> None:
    """A buildings cursor (its providers include SCOM's) handed to tenants: the caller is
    told it belongs to another list, which is the mistake, rather than that it is malformed."""
    listed = await client.data("{ buildings(first: 2) { pageInfo { endCursor } } }")
    cursor = listed["buildings"]["pageInfo"]["endCursor"]

    body = await client.query(
        "query($after: String) { tenants(first: 2, after: $after) { totalCount } }",
        {"after": cursor},
    )

    (error,) = body["errors"]
    assert error["extensions"]["code"] == "INVALID_CURSOR"
    assert "different list" in error["message"]
