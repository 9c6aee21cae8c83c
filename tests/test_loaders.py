"""What a batch asks of its provider: the union of every key's selection, and whether an
earlier read covers a later ask; how the fields waiting for one answer share it."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.federation.loaders import _shared, covers, union
from gateway.model import Selection

selections = st.recursive(
    st.builds(Selection, st.frozensets(st.sampled_from(["name", "code", "rooms", "city"]))),
    lambda inner: st.builds(
        Selection,
        st.frozensets(st.sampled_from(["name", "code", "rooms", "city"])),
        st.dictionaries(st.sampled_from(["units", "tenants", "landlord"]), inner, max_size=2),
    ),
    max_leaves=6,
)


def _flat(selection: Selection, prefix: str = "") -> set[str]:
    names = {prefix + name for name in selection.fields}
    for relation, sub in selection.relations.items():
        names |= {prefix + relation + "/"} | _flat(sub, prefix + relation + "/")
    return names


@given(selections, selections)
def test_a_union_asks_what_both_ask_and_covers_each(one: Selection, other: Selection) -> None:
    both = union(one, other)

    assert _flat(both) == _flat(one) | _flat(other)
    assert covers(both, one, True, None) and covers(both, other, True, None)
    assert union(other, one) == both


@given(selections)
def test_a_union_with_itself_or_with_nothing_is_the_selection_itself(one: Selection) -> None:
    """A batch unions every key's selection into what it asks: one selection asked for
    every key must not be rebuilt (and hashed) once per key."""
    assert union(one, one) is one
    assert union(one, Selection()) is one
    assert union(Selection(), one) == one
    if one.fields or one.relations:
        assert union(Selection(), one) is one


async def test_a_field_cancelled_takes_nothing_from_the_others_waiting_for_its_answer() -> None:
    answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    given_up = asyncio.ensure_future(_wait(answer))
    waiting = asyncio.ensure_future(_wait(answer))
    await asyncio.sleep(0)

    given_up.cancel()
    await asyncio.sleep(0)
    answer.set_result("records")

    assert await waiting == "records"
    assert given_up.cancelled() and not answer.cancelled()


async def test_every_field_waiting_gets_the_answers_failure() -> None:
    answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    waiting = [asyncio.ensure_future(_wait(answer)) for _ in range(3)]
    await asyncio.sleep(0)

    answer.set_exception(LookupError("the provider failed"))

    for task in waiting:
        with pytest.raises(LookupError, match="the provider failed"):
            await task


async def test_an_answer_every_field_gave_up_on_is_still_read_when_it_fails() -> None:
    """Else asyncio logs "Future exception was never retrieved" for it."""
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    handler = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        answer: asyncio.Future[str] = loop.create_future()
        given_up = asyncio.ensure_future(_wait(answer))
        await asyncio.sleep(0)
        given_up.cancel()
        await asyncio.sleep(0)
        answer.set_exception(LookupError("the provider failed"))
        for _ in range(3):
            await asyncio.sleep(0)
        cancelled = given_up.cancelled()
        del answer, given_up
        gc.collect()
    finally:
        loop.set_exception_handler(handler)

    assert cancelled
    assert reported == []


async def test_an_answer_already_in_is_awaited_as_it_is() -> None:
    answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    answer.set_result("records")

    assert _shared(answer) is answer


async def _wait(answer: asyncio.Future[str]) -> str:
    return await _shared(answer)
