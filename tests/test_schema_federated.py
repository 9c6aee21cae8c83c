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
    """Each provider lists its own records only: the world's slice of it."""
    world = client.sandbox.world
    listed = world.landlords_of if field == "landlords" else world.buildings_of
    return sum(len(listed(provider)) for provider in providers)


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
    own = {name: await _walk(client, field, 100, [name]) for name in providers}
    assert seen == _interleaved(own)


def _interleaved(streams: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The documented order: each provider's records in its own order (its database's
    collation decides), and at each step the provider whose next record has the smallest
    case-blind name, then provider name, then source id."""
    heads = dict.fromkeys(streams, 0)
    merged: list[dict[str, Any]] = []
    while any(heads[name] < len(stream) for name, stream in streams.items()):
        name = min(
            (name for name, stream in streams.items() if heads[name] < len(stream)),
            key=lambda name: _order_key(streams[name][heads[name]]),
        )
        merged.append(streams[name][heads[name]])
        heads[name] += 1
    return merged


def _order_key(node: dict[str, Any]) -> tuple[str, str, str]:
    return (node["name"] or "").casefold(), node["provider"], node["sourceId"]


async def test_a_provider_that_collates_otherwise_keeps_its_own_order(client: Client) -> None:
    """Primmo's server orders by code point ("Résidence Sherbrooke" before "Résidence des
    Pins"), the gateway's key is case-blind: the merge keeps each stream as it came."""
    merged = await _walk(client, "buildings", 7, ["primmo", "pms"])
    primmo = [node for node in merged if node["provider"] == "primmo"]

    assert primmo == await _walk(client, "buildings", 100, ["primmo"])
    names = [node["name"] for node in primmo]
    assert names == sorted(names) != sorted(names, key=str.casefold)


async def test_the_order_does_not_depend_on_the_fields_selected(client: Client) -> None:
    bare = await client.data("{ buildings(first: 40) { edges { node { id } } } }")
    named = await client.data("{ buildings(first: 40) { edges { node { id name provider } } } }")

    assert [e["node"]["id"] for e in bare["buildings"]["edges"]] == [
        e["node"]["id"] for e in named["buildings"]["edges"]
    ]
    nodes = [edge["node"] for edge in named["buildings"]["edges"]]
    for provider in {node["provider"] for node in nodes}:
        alone = await client.data(
            "query($p: [String!]) { buildings(first: 100, providers: $p) "
            "{ edges { node { id } } } }",
            {"p": [provider]},
        )
        own = [edge["node"]["id"] for edge in alone["buildings"]["edges"]]
        mine = [node["id"] for node in nodes if node["provider"] == provider]
        assert mine == own[: len(mine)]


async def test_a_merged_list_goes_on_from_any_of_its_cursors(client: Client) -> None:
    """Each edge's cursor is written from the page's moves only when it is read: read in
    any order (the end first, an edge twice), it still says where the list stood just after
    that edge, on a page that itself began from a cursor."""
    query = """query($after: String) { landlords(first: 12, after: $after) {
        pageInfo { endCursor } edges { again: cursor node { provider sourceId } cursor } } }"""
    first = (await client.data(query))["landlords"]
    page = (await client.data(query, {"after": first["pageInfo"]["endCursor"]}))["landlords"]
    edges = page["edges"]
    assert len({edge["node"]["provider"] for edge in edges}) > 1
    assert page["pageInfo"]["endCursor"] == edges[-1]["cursor"]

    for index in reversed(range(0, len(edges) - 1, 3)):
        assert edges[index]["again"] == edges[index]["cursor"]
        rest = (await client.data(query, {"after": edges[index]["cursor"]}))["landlords"]
        expected = [edge["node"] for edge in edges[index + 1 :]]
        assert [edge["node"] for edge in rest["edges"]][: len(expected)] == expected


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


async def test_a_provider_left_out_of_a_list_is_warned_about_with_the_true_reason(
    client: Client,
) -> None:
    unlisted = await client.query('{ buildings(providers: ["mycrm"]) { totalCount } }')
    filtered = await client.query(
        '{ buildings(providers: ["scom"], filter: {nameContains: "a"}) { totalCount } }'
    )

    assert unlisted["extensions"]["warnings"] == [
        {"provider": "mycrm", "message": "mycrm has no list of Buildings to answer from."}
    ]
    assert filtered["extensions"]["warnings"] == [
        {"provider": "scom", "message": "scom cannot list Building with these filters."}
    ]


async def test_a_provider_left_out_unasked_of_a_filtered_list_it_cannot_filter_is_named(
    client: Client,
) -> None:
    """SCOM holds buildings in Québec but cannot filter its lists: a filtered list of every
    provider's buildings leaves it out and says so, rather than looking complete. A filter a
    provider answers, or a list it has none of (MyCRM's buildings), warns of nothing."""
    filtered = await client.query(
        '{ buildings(first: 5, filter: {cityContains: "québec"}) { totalCount } }'
    )
    unfiltered = await client.query("{ buildings(first: 5) { totalCount } }")

    assert filtered["data"]["buildings"]["totalCount"] > 0
    assert filtered["extensions"]["warnings"] == [
        {
            "provider": "scom",
            "message": "scom cannot list Building with these filters: its records are left out "
            "of this list.",
        }
    ]
    assert "warnings" not in unfiltered.get("extensions", {})
