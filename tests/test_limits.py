"""What multiplies itself through fragments is refused, and measuring it costs one visit
to each selection set."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from graphql import SelectionSetNode, parse, visit
from graphql.language import Visitor

from schema import limits
from schema.limits import LARGEST_REPORTED
from tests.conftest import Client, error_codes


def _count(client: Client) -> int:
    return sum(state.count() for state in client.sandbox.states.values())


def _bomb(on: str, leaf: str, operation: str, levels: int = 20) -> str:
    """Each fragment spreads the next one twice: 2**levels leaves once expanded, in
    under a kilobyte."""
    fragments = " ".join(
        f"fragment B{n} on {on} {{ ...B{n + 1} ...B{n + 1} }}" for n in range(levels)
    )
    return f"{operation} {fragments} fragment B{levels} on {on} {{ {leaf} }}"


BOMBS = {
    "under Building": (
        _bomb("Building", "name", "{ buildings(first: 1) { edges { node { ...B0 } } } }"),
        2**20 + 3,
    ),
    "at the root": (_bomb("Query", "__typename", "{ ...B0 }"), 2**20),
}


@pytest.fixture
def visits(monkeypatch: pytest.MonkeyPatch) -> Counter[int]:
    """How many times the limits' walk measured each selection set, by its offset."""
    counted: Counter[int] = Counter()
    figures: Callable[..., Any] = limits._Walker.figures

    def counting(walker: Any, selection_set: SelectionSetNode, parent: Any) -> Any:
        assert selection_set.loc is not None
        counted[selection_set.loc.start] += 1
        return figures(walker, selection_set, parent)

    monkeypatch.setattr(limits._Walker, "figures", counting)
    return counted


def _selection_sets(text: str) -> Counter[int]:
    found: Counter[int] = Counter()

    class Finding(Visitor):
        def enter_selection_set(self, node: SelectionSetNode, *_: Any) -> None:
            assert node.loc is not None
            found[node.loc.start] += 1

    visit(parse(text), Finding())
    return found


@pytest.mark.parametrize("where", sorted(BOMBS))
async def test_a_fragment_bomb_is_refused_after_one_visit_to_each_fragment(
    client: Client, visits: Counter[int], where: str
) -> None:
    query, fields = BOMBS[where]
    assert len(query) < 1000

    body = await client.query(query)

    assert error_codes(body) == ["TOO_MANY_FIELDS"]
    assert body["errors"][0]["extensions"] == {
        "code": "TOO_MANY_FIELDS",
        "limit": 5000,
        "actual": fields,
    }
    assert visits == _selection_sets(query)
    assert set(visits.values()) == {1}
    assert _count(client) == 0


async def test_a_chain_of_hundreds_of_fragments_is_measured_without_recursion(
    client: Client,
) -> None:
    chain = " ".join(f"fragment F{n} on Building {{ ...F{n + 1} }}" for n in range(300))
    query = f"{{ buildings(first: 1) {{ edges {{ node {{ ...F0 }} }} }} }} {chain} " + (
        "fragment F300 on Building { name }"
    )

    body = await client.query(query)

    assert "INTERNAL_SERVER_ERROR" not in error_codes(body)


@pytest.mark.parametrize(
    ("first", "variables"),
    [
        ("18446744073709551616", None),
        ("9" * 5000, None),
        ("$first", {"first": 2**64}),
    ],
    ids=["2**64", "5000 digits", "2**64 as a variable"],
)
async def test_a_page_size_past_64_bits_is_refused_with_a_number_json_can_hold(
    client: Client, first: str, variables: dict[str, Any] | None
) -> None:
    declared = "($first: Int)" if variables else ""
    query = f"query{declared} {{ buildings(first: {first}) {{ totalCount }} }}"

    body = await client.query(query, variables)

    assert error_codes(body) == ["PAGE_SIZE_EXCEEDED"]
    assert body["errors"][0]["extensions"]["actual"] == LARGEST_REPORTED
    assert f"more than {LARGEST_REPORTED}" in body["errors"][0]["message"]


async def test_every_operation_in_the_document_is_measured(client: Client) -> None:
    """Validation reads every operation, whichever one is asked to run."""
    bomb, _ = BOMBS["under Building"]
    document = "query Small { providers { name } } " + bomb.replace(
        "{ buildings", "query Big { buildings", 1
    )

    response = await client.http.post(
        "/graphql", json={"query": document, "operationName": "Small"}
    )

    assert error_codes(response.json()) == ["TOO_MANY_FIELDS"]
