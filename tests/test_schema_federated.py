"""One connection across providers: order, exactly-once paging, totals."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Client

ROOT = {"landlords": ["mycrm", "pms", "primmo", "scom"], "buildings": ["pms", "primmo", "scom"]}


async def _walk(
    client: Client, field: str, first: int, providers: list[str]
) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    after = None
    total = None
    while True:
        data = await client.data(
            f"query($after: String, $providers: [String!]) {{ {field}(first: {first}, "
            "after: $after, providers: $providers) { totalCount pageInfo { hasNextPage endCursor }"
            " edges { node { provider sourceId name } } } }",
            {"after": after, "providers": providers},
        )
        connection = data[field]
        assert total in (None, connection["totalCount"])
        total = connection["totalCount"]
        assert len(connection["edges"]) <= first
        seen.extend(edge["node"] for edge in connection["edges"])
        if not connection["pageInfo"]["hasNextPage"]:
            assert len(seen) == total
            return seen
        after = connection["pageInfo"]["endCursor"]


def _expected(client: Client, field: str, providers: list[str]) -> int:
    world = client.sandbox.world
    counts = {
        ("landlords", "mycrm"): len(world.landlords),
        ("landlords", "pms"): len({b.landlord_id for b in world.buildings_of("pms")}),
        ("landlords", "primmo"): len({b.landlord_id for b in world.buildings_of("primmo")}),
        ("landlords", "scom"): len({b.landlord_id for b in world.buildings_of("scom")}),
        ("buildings", "pms"): len(world.buildings_of("pms")),
        ("buildings", "primmo"): len(world.buildings_of("primmo")),
        ("buildings", "scom"): len(world.buildings_of("scom")),
    }
    return sum(counts[(field, provider)] for provider in providers)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    choice=st.sampled_from(sorted(ROOT)).flatmap(
        lambda field: st.tuples(
            st.just(field),
            st.lists(st.sampled_from(ROOT[field]), min_size=1, unique=True),
            st.integers(min_value=1, max_value=30),
        )
    )
)
async def test_paging_visits_every_record_once_in_the_documented_order(
    client: Client, choice: tuple[str, list[str], int]
) -> None:
    field, providers, first = choice
    seen = await _walk(client, field, first, providers)

    keys = [(node["provider"], node["sourceId"]) for node in seen]
    assert len(keys) == len(set(keys)) == _expected(client, field, providers)
    assert {node["provider"] for node in seen} == set(providers)
    order = [((node["name"] or "").casefold(), node["provider"]) for node in seen]
    assert order == sorted(order)


async def test_the_order_does_not_depend_on_the_fields_selected(client: Client) -> None:
    bare = await client.data("{ buildings(first: 40) { edges { node { id } } } }")
    named = await client.data("{ buildings(first: 40) { edges { node { id name } } } }")

    assert [e["node"]["id"] for e in bare["buildings"]["edges"]] == [
        e["node"]["id"] for e in named["buildings"]["edges"]
    ]
    names = [(e["node"]["name"].casefold()) for e in named["buildings"]["edges"]]
    assert names == sorted(names)


async def test_a_tampered_cursor_is_refused_not_a_crash(client: Client) -> None:
    import base64
    import json

    page = await client.data("{ buildings(first: 5) { pageInfo { endCursor } } }")
    cursor = page["buildings"]["pageInfo"]["endCursor"]
    payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    for provider, position in (("primmo", "abc"), ("pms", -4), ("scom", '{"1": 5}')):
        forged = dict(payload, p={**payload["p"], provider: position})
        text = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")

        body = await client.query(
            "query($after: String) { buildings(first: 5, after: $after) { totalCount } }",
            {"after": text},
        )

        assert [e["extensions"]["code"] for e in body["errors"]] == ["INVALID_CURSOR"], provider
