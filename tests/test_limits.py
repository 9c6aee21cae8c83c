"""The standard introspection queries pass the default limits; what hides depth or cost
inside introspection, or multiplies itself through fragments, does not, and measuring it
costs one visit to each selection set."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from graphql import SelectionSetNode, build_client_schema, get_introspection_query, parse, visit
from graphql.language import Visitor

from gateway.clock import ManualClock
from gateway.config import GatewaySettings, Limits, Settings
from gateway.sandbox import Sandbox
from schema import build_schema, limits
from schema.limits import LARGEST_REPORTED
from tests.conftest import Client, error_codes, serving

FIXTURES = Path(__file__).parent / "introspection"
_OPTIONS = (
    "specified_by_url",
    "directive_is_repeatable",
    "schema_description",
    "input_value_deprecation",
    "one_of",
)
STANDARD = {path.stem: path.read_text(encoding="utf-8") for path in FIXTURES.glob("*.graphql")}
STANDARD |= {
    "graphql-core": get_introspection_query(),
    "graphql-core without descriptions": get_introspection_query(descriptions=False),
    "graphql-core with every option": get_introspection_query(**dict.fromkeys(_OPTIONS, True)),
}
STANDARD |= {
    f"graphql-core with {option}": get_introspection_query(**{option: True}) for option in _OPTIONS
}


def _count(client: Client) -> int:
    return sum(state.count() for state in client.sandbox.states.values())


@pytest.mark.parametrize("name", sorted(STANDARD))
async def test_standard_introspection_passes_the_default_limits(client: Client, name: str) -> None:
    body = await client.query(STANDARD[name])

    assert "errors" not in body, body["errors"]
    assert build_client_schema(body["data"]).get_type("Building") is not None


async def test_with_introspection_off_the_standard_queries_are_refused(
    sandbox: Sandbox, clock: ManualClock
) -> None:
    settings = Settings(
        gateway=GatewaySettings(limits={"introspection": False}, subscribe_at_start=False)
    )
    async with serving(sandbox, clock, settings) as client:
        bodies = {name: await client.query(text) for name, text in STANDARD.items()}

    assert {name: error_codes(body)[:1] for name, body in bodies.items()} == {
        name: ["GRAPHQL_VALIDATION_FAILED"] for name in STANDARD
    }


def _nested(field: str, times: int) -> str:
    return f"{field} {{ " * times + "name" + " }" * times


_LOOP = "fields { type { " * 5 + "name" + " } }" * 5


HOSTILE_INTROSPECTION = {
    "ofType fifty deep": (
        '{ __type(name: "Building") { ' + _nested("ofType", 50) + " } }",
        "INTROSPECTION_TOO_DEEP",
    ),
    "ofType fifty deep through fragments": (
        "{ __schema { types { ...T0 } } } "
        + " ".join(f"fragment T{n} on __Type {{ ofType {{ ...T{n + 1} }} }}" for n in range(50))
        + " fragment T50 on __Type { name }",
        "INTROSPECTION_TOO_DEEP",
    ),
    "fields and types in a loop": (
        "{ __schema { types { " + _LOOP + " } } }",
        "QUERY_TOO_COSTLY",
    ),
    "fields and types in a loop under __type": (
        '{ __type(name: "Query") { ' + _LOOP + " } }",
        "QUERY_TOO_COSTLY",
    ),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_INTROSPECTION))
async def test_depth_and_cost_hidden_in_introspection_are_refused(
    client: Client, name: str
) -> None:
    query, code = HOSTILE_INTROSPECTION[name]

    body = await client.query(query)

    assert error_codes(body) == [code]
    assert body["errors"][0]["extensions"]["limit"] < body["errors"][0]["extensions"]["actual"]
    assert _count(client) == 0


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
    assert (
        body["errors"][0]["extensions"].items()
        >= {
            "code": "TOO_MANY_FIELDS",
            "limit": 5000,
            "actual": fields,
        }.items()
    )
    assert visits == _selection_sets(query)
    assert set(visits.values()) == {1}
    assert _count(client) == 0


def test_a_chain_of_hundreds_of_fragments_is_measured_without_recursion() -> None:
    chain = " ".join(f"fragment F{n} on Building {{ ...F{n + 1} }}" for n in range(300))
    query = f"{{ buildings(first: 1) {{ edges {{ node {{ ...F0 }} }} }} }} {chain} " + (
        "fragment F300 on Building { name }"
    )

    measured = limits.measure(build_schema()._schema, parse(query), {}, Limits(), 20)

    assert (measured.depth, measured.fields) == (4, 4)


@pytest.mark.parametrize(
    ("first", "variables"),
    [("18446744073709551616", None), ("9" * 5000, None)],
    ids=["2**64", "5000 digits"],
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


async def test_a_page_size_past_64_bits_in_a_variable_is_not_an_int(client: Client) -> None:
    """JSON numbers past 64 bits are read as floats (orjson), which no Int holds: the
    variable is refused as the caller's input, before any limit is asked."""
    body = await client.query(
        "query($first: Int) { buildings(first: $first) { totalCount } }", {"first": 2**64}
    )

    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert _count(client) == 0


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
