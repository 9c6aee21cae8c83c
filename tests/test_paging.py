"""The paging strategies connectors share: their requests, where they stop, and the standings
of merged streams (the federation's cursor and SCOM's over landlords)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from gateway.connectors.base import ListRequest
from gateway.connectors.paging import MAX_PAGES, Offsets, PageNumbers, RelayCursor, Standings
from gateway.errors import InvalidCursor
from gateway.model import Record, Selection, Tenant

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

    taken = standings.advance(
        streams, 3, lambda moved: repr((moved, standings.positions, standings.done))
    )

    assert [(name, item) for name, item, _ in taken] == [("a", "a1"), ("b", "b2"), ("a", "a2")]
    assert taken[0][2] == repr(("a", {"b": 1, "a": 1}, set()))
    assert taken[1][2] == repr(("b", {"b": 2, "a": 1}, set()))
    assert taken[2][2] == repr(("a", {"b": 2, "a": 2}, {"a"}))
    assert standings.done == {"a"}


def test_a_stream_that_ends_is_not_done_while_items_of_it_were_left() -> None:
    standings = Standings[int]()

    taken = standings.advance({"a": ([(None, 1, "a1"), (None, 2, "a2")], True)}, 1, lambda _: "")

    assert [item for _, item, _ in taken] == ["a1"]
    assert standings.done == set() and standings.positions == {"a": 1}
