"""Linked records through the API: `distinct` lists and their totals, `sameAs` and `entityId`
batched, a landlord's portfolio across providers, `node(entityId)`, a person's `link` and
`unlink`, proposals, changes told to a whole group, LEAP kept in step, and the store a
restart keeps (SQLite) and replicas share (PostgreSQL)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Mapping
from hashlib import sha256
from pathlib import Path
from typing import Any

import pytest

from gateway.clock import ManualClock
from gateway.config import ApiKey, AuthSettings, LinkSettings, Settings, load_settings
from gateway.connectors.primmo import WEBHOOK_HEADER
from gateway.edge.app import create_app
from gateway.edge.wiring import sandbox_for
from gateway.errors import ConfigError
from gateway.federation.links import Linking, Precedence
from gateway.model import Entity, Landlord, Selection
from gateway.sandbox import Sandbox
from gateway.sandbox.overlaps import truth
from gateway.sandbox.primmo import CREDENTIALS as PRIMMO
from gateway.state.links import Decisions, Findings, Proposal
from gateway.tools.linking import rebuild_now
from schema.ids import encode_id
from tests.conftest import Client, error_codes, eventually, published, serving, settled
from tests.postgres_server import PostgresServer
from tests.test_realtime import _primmo_delivery, base64_id

KEY = "links-test-key"


def _counted(sandbox: Sandbox) -> dict[str, int]:
    return {name: state.count() for name, state in sandbox.states.items() if state.count()}


@pytest.fixture
def quiet(settings: Settings) -> Settings:
    """The rebuild without LEAP's external ids written (tested on their own)."""
    return settings.model_copy(update={"links": LinkSettings(write_back=False)})


@pytest.fixture
async def linked(sandbox: Sandbox, clock: ManualClock, quiet: Settings) -> AsyncIterator[Client]:
    async with serving(sandbox, clock, quiet) as client:
        await client.gateway.rebuild_links()
        yield client


def _true_count(world_truth: dict[str, list[frozenset[str]]], kind: str, shown: set[str]) -> int:
    """Records shown, less all but one of each group of them."""
    return len(shown) - sum(len(group & shown) - 1 for group in world_truth.get(kind, []))


async def _all(
    client: Client,
    query: str,
    field: str,
    variables: dict[str, Any] | None = None,
    most: int = 100,
) -> tuple[list[dict[str, Any]], int | None]:
    """Every node of a list, page by page, and the total its first page said; a list that
    has not ended after `most` pages fails the test."""
    nodes, after, total = [], None, None
    for _ in range(most):
        page = (await client.data(query, {**(variables or {}), "after": after}))[field]
        total = page.get("totalCount") if total is None else total
        nodes += [edge["node"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return nodes, total
        after = page["pageInfo"]["endCursor"]
    raise AssertionError(f"{field} did not end after {most} pages ({len(nodes)} nodes)")


async def test_distinct_lists_show_each_thing_once_and_count_what_the_world_holds(
    linked: Client,
) -> None:
    world = linked.sandbox.world
    found = truth(world)
    references = world.references
    landlords = {references[("landlord", one.id)] for one in world.landlords}
    buildings = {
        references[("building", b.id)] for b in world.buildings if ("building", b.id) in references
    }
    query = """query($after: String) { %s(first: 7, after: $after, distinct: true) {
        totalCount pageInfo { hasNextPage endCursor }
        edges { node { provider sourceId entityId sources { provider sourceId } } } } }"""

    for field, kind, shown in (
        ("landlords", "landlord", landlords),
        ("buildings", "building", buildings),
    ):
        nodes, total = await _all(linked, query % field, field)

        expected = _true_count(found, kind, shown)
        assert total == len(nodes) == expected < len(shown)
        assert len({node["entityId"] for node in nodes}) == expected
        sources = [f"{s['provider']}:{s['sourceId']}" for node in nodes for s in node["sources"]]
        assert sorted(sources) == sorted(shown), "every record once, in its group's row"


async def test_a_filtered_distinct_list_counts_groups_with_a_record_that_matches(
    linked: Client,
) -> None:
    world = linked.sandbox.world
    buildings = {b.id: b for b in world.buildings}
    city = next(
        buildings[a].city
        for kind, a, b in world.same_as
        if kind == "building"
        and {buildings[a].provider, buildings[b].provider} == {"primmo", "pms"}
        and buildings[a].city.isascii()
    ).casefold()
    query = """query($after: String, $city: String!) { buildings(first: 3, after: $after,
        distinct: true, filter: {cityContains: $city}) { totalCount
        pageInfo { hasNextPage endCursor }
        edges { node { city entityId sources { ... on Building { city } } } } } }"""

    nodes, total = await _all(linked, query, "buildings", {"city": city})

    plain = await linked.data(
        "query($city: String!) { buildings(first: 100, filter: {cityContains: $city}) "
        "{ totalCount } }",
        {"city": city},
    )
    assert total == len(nodes) < plain["buildings"]["totalCount"]
    assert len({node["entityId"] for node in nodes}) == total
    assert all(any(city in s["city"].casefold() for s in n["sources"]) for n in nodes)


def _listings_asked(client: Client) -> int:
    """Requests for MyCRM's list of listings (`/properties`), not for one listing by id."""
    return sum(
        number for (_, path), number in client.mycrm.requests.items() if path.count("/") == 1
    )


async def test_a_distinct_list_ends_when_a_provider_in_it_has_nothing_that_matches(
    linked: Client,
) -> None:
    """MyCRM has no unit coded 101: its page comes back empty and at its end, and the list
    must end with the others', not ask it again from its start on every page."""
    query = """query($after: String) { units(first: 5, after: $after, distinct: true,
        filter: {unitCode: "101"}) { pageInfo { hasNextPage endCursor }
        edges { node { entityId } } } }"""
    plain = await linked.data(
        '{ units(first: 100, filter: {unitCode: "101"}) { edges { node { provider } } } }'
    )
    in_list = {edge["node"]["provider"] for edge in plain["units"]["edges"]}
    assert "mycrm" not in in_list, "the world this test reads has no MyCRM unit 101"
    linked.sandbox.reset_counters()

    nodes, _ = await _all(linked, query, "units", most=10)

    assert len(nodes) == len({node["entityId"] for node in nodes}) > 5
    assert _listings_asked(linked) == 1, "MyCRM's list is asked on the first page only"


async def test_a_filtered_distinct_lists_total_is_counted_once_not_on_every_page(
    linked: Client,
) -> None:
    """Counting a filtered distinct list reads it to its end: done on the first page, and
    carried in the cursor, not again on each of the five pages."""
    query = """query($after: String) { units(first: 5, after: $after, distinct: true,
        filter: {unitCode: "101"}) { totalCount pageInfo { hasNextPage endCursor }
        edges { node { entityId } } } }"""
    linked.sandbox.reset_counters()
    totals, after = [], None
    for _ in range(10):
        page = (await linked.data(query, {"after": after}))["units"]
        totals.append(page["totalCount"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]

    assert len(totals) > 2 and len(set(totals)) == 1
    assert _listings_asked(linked) == 2, (
        "MyCRM's list: its first page, then read to its end once for the count"
    )


async def test_a_distinct_list_goes_on_from_any_of_its_cursors(linked: Client) -> None:
    """Relay lets a caller resume after any edge, not only the last: an edge's cursor must
    not say a provider is done while its last records are still to come."""
    query = """query($after: String) { landlords(first: 50, after: $after, distinct: true) {
        edges { cursor node { entityId } } } }"""
    edges = (await linked.data(query))["landlords"]["edges"]

    for index in range(0, len(edges) - 1, 4):
        rest = (await linked.data(query, {"after": edges[index]["cursor"]}))["landlords"]
        assert [e["node"] for e in rest["edges"]] == [e["node"] for e in edges[index + 1 :]]


async def test_a_distinct_lists_cursors_move_past_records_whose_group_was_shown(
    linked: Client,
) -> None:
    """A twin whose group an earlier record stood for is read past, not shown: each edge's
    cursor must still say that its provider moved past it, or the next page reads that
    provider again from where it last showed something. Where each record stands is the
    plain list's order (the same merge), and an offset provider's position is how many of
    its records the list has read."""
    plain = (
        await linked.data("{ landlords(first: 100) { edges { node { provider sourceId } } } }")
    )["landlords"]["edges"]
    order = {(e["node"]["provider"], e["node"]["sourceId"]): i for i, e in enumerate(plain)}
    distinct = (
        await linked.data(
            "{ landlords(first: 100, distinct: true) { edges { cursor node { "
            "sources { provider sourceId } } } } }"
        )
    )["landlords"]["edges"]
    assert len(order) < 100 and any(len(e["node"]["sources"]) > 1 for e in distinct)

    for edge in distinct:
        stands = min(order[(s["provider"], s["sourceId"])] for s in edge["node"]["sources"])
        read = Counter(e["node"]["provider"] for e in plain[: stands + 1])
        cursor = edge["cursor"]
        positions = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))["p"]
        for provider in ("primmo", "pms", "mycrm"):
            assert positions.get(provider, 0) == read[provider], (provider, stands)


async def test_a_distinct_list_names_a_provider_that_failed_to_give_a_group_s_records(
    linked: Client,
) -> None:
    """pms's landlords are merged with their SCOM twins, read by id: SCOM failing then must
    be an error naming it at the list, not a silent row without its SCOM half."""
    rows = (
        await linked.data(
            '{ landlords(first: 50, distinct: true, providers: ["pms", "scom"]) { edges { node '
            "{ entityId sources { provider } } } } }"
        )
    )["landlords"]["edges"]
    scom_twin = next(
        row["node"]["entityId"]
        for row in rows
        if sorted(s["provider"] for s in row["node"]["sources"]) == ["pms", "scom"]
    )
    linked.sandbox.states["scom"].inject("error")

    body = await linked.query(
        '{ landlords(first: 50, distinct: true, providers: ["pms"]) { edges { node { sourceId '
        "} } } }"
    )
    sources = await linked.query(
        '{ landlords(first: 50, providers: ["pms"]) { edges { node { sourceId '
        "sources { provider } } } } }"
    )

    assert body["data"]["landlords"]["edges"]
    assert {error["extensions"].get("provider") for error in body["errors"]} == {"scom"}
    assert {tuple(error["path"]) for error in body["errors"]} == {("landlords",)}
    rows = sources["data"]["landlords"]["edges"]
    assert all({"provider": "pms"} in row["node"]["sources"] for row in rows)
    assert {error["extensions"].get("provider") for error in sources["errors"]} == {"scom"}
    assert all(error["path"][-1] == "sources" for error in sources["errors"])
    group = await linked.query(
        f'{{ node(id: "{scom_twin}") {{ ... on Landlord {{ sources {{ provider }} }} }} }}'
    )
    assert group["data"]["node"] == {"sources": [{"provider": "pms"}]}, "the rest of the group"
    assert {e["extensions"].get("provider") for e in group["errors"]} == {"scom"}


@pytest.mark.parametrize(
    ("field", "filter", "texts"),
    [
        ("landlords", "nameContains", ["Gagné", "gagne", "GAGNÉ", "Neil"]),
        ("buildings", "cityContains", ["Lévis", "levis", "QUÉBEC", "rivières"]),
    ],
)
async def test_a_filtered_distinct_list_shows_each_group_the_plain_list_has_once(
    linked: Client, field: str, filter: str, texts: list[str]
) -> None:
    """The gateway judges which record leads a group by its own reading of the filter
    (`matches`); a provider filtering otherwise (accents, case) would lose a group whose
    leader it never returns, or show one twice. Accented, unaccented and upper-case text,
    against every provider the list asks: each group the plain list has a record of,
    once."""
    query = """query($text: String, $distinct: Boolean!) { FIELD(first: 100,
        distinct: $distinct, filter: {FILTER: $text}) { edges { node { entityId
        sources { provider } } } } }""".replace("FIELD", field).replace("FILTER", filter)
    linked_groups = 0
    for text in texts:
        plain = (await linked.data(query, {"text": text, "distinct": False}))[field]["edges"]
        rows = (await linked.data(query, {"text": text, "distinct": True}))[field]["edges"]

        groups = [row["node"]["entityId"] for row in rows]
        assert sorted(groups) == sorted({row["node"]["entityId"] for row in plain}), text
        linked_groups += sum(len(row["node"]["sources"]) > 1 for row in rows)
    assert linked_groups, "some of these groups have records at two providers"


async def test_same_as_and_entity_ids_cost_one_batch_per_provider(linked: Client) -> None:
    query = """{ landlords(first: 50, providers: ["pms"]) { edges { node {
        sourceId entityId sameAs { provider sourceId entityId ... on Landlord { name } } } } } }"""
    linked.sandbox.reset_counters()

    edges = (await linked.data(query))["landlords"]["edges"]

    twins = [twin for edge in edges for twin in edge["node"]["sameAs"]]
    by_provider = {p: [t for t in twins if t["provider"] == p] for p in ("scom", "primmo")}
    assert len(by_provider["scom"]) >= 2 and by_provider["primmo"]
    assert _counted(linked.sandbox) == {"pms": 1, "scom": 1, "primmo": 1}, (
        "one page of pms, the twins at each other provider in one request, whatever their number"
    )
    for edge in edges:
        node = edge["node"]
        assert all(twin["entityId"] == node["entityId"] for twin in node["sameAs"])


async def test_a_landlords_portfolio_across_providers_shows_each_building_once(
    linked: Client,
) -> None:
    world = linked.sandbox.world
    landlords = {one.id: one for one in world.landlords}
    pair = next(
        (a, b)
        for kind, a, b in world.same_as
        if kind == "landlord"
        and {landlords[a].provider, landlords[b].provider} == {"primmo", "pms"}
    )
    owned = [b for b in world.buildings if b.landlord_id in pair]
    twins = sum(
        1 for kind, a, b in world.same_as if kind == "building" and {a, b} <= {x.id for x in owned}
    )
    name = landlords[pair[0]].name
    query = """query($name: String!) { landlords(first: 2, distinct: true,
        filter: {nameContains: $name}) { edges { node { name entityId sources { provider }
        buildings { name entityId sources { provider }
        units { unitCode sources { provider } } } } } } }"""
    linked.sandbox.reset_counters()

    edges = (await linked.data(query, {"name": name}))["landlords"]["edges"]

    (row,) = [e["node"] for e in edges if len(e["node"]["sources"]) == 2]
    assert {s["provider"] for s in row["sources"]} == {"primmo", "pms"}
    assert len(row["buildings"]) == len(owned) - twins > 0
    shared = [b for b in row["buildings"] if len(b["sources"]) == 2]
    assert len(shared) == twins
    assert all(len(u["sources"]) == 2 for b in shared for u in b["units"])
    requests = _counted(linked.sandbox)
    assert requests["primmo"] == 3, "a page of landlords, its buildings expanded, twins by id"
    at_pms = sum(1 for building in owned if building.provider == "pms")
    assert requests["pms"] == 2 + twins + at_pms + twins, (
        "a page of landlords, their properties, each twin property by id, each property's "
        "units, and a twin's units again (its linked units by id, from that list)"
    )


async def test_node_takes_an_entity_id_and_gives_the_group_as_one(linked: Client) -> None:
    row = (
        await linked.data(
            "{ landlords(first: 100, distinct: true) { edges { node { entityId name "
            "businessNumber sources { provider sourceId } } } } }"
        )
    )["landlords"]["edges"]
    merged = next(edge["node"] for edge in row if len(edge["node"]["sources"]) > 1)

    again = await linked.data(
        '{{ node(id: "{}") {{ ... on Landlord {{ entityId name businessNumber '
        "sources {{ provider sourceId }} }} }} }}".format(merged["entityId"])
    )
    missing = await linked.query(
        '{{ node(id: "{}") {{ id }} }}'.format(base64_id("entity:Building:primmo:999999"))
    )

    both = await linked.data(
        '{{ nodes(ids: ["{}", "{}"]) {{ ... on Landlord {{ entityId name businessNumber '
        "sources {{ provider sourceId }} }} }} }}".format(merged["entityId"], merged["entityId"])
    )

    assert again["node"] == merged
    assert both["nodes"] == [merged, merged], "`nodes` takes what `node` takes"
    assert error_codes(missing) == ["NOT_FOUND"]


async def test_one_id_names_one_set_of_values_in_distinct_lists_and_node(
    linked: Client,
) -> None:
    """Normalized client caches (Apollo, Relay, urql) key objects by `id`: a merged row,
    whose fields come from several records, must not reuse one record's id. Every object
    seen, in the list, in `sources` and from `node`, must give one id one set of values."""
    fields = "id provider sourceId entityId ... on Landlord { name businessNumber }"
    rows = (
        await linked.data(
            "{ landlords(first: 100, distinct: true) { edges { node { FIELDS sources { FIELDS "
            "} } } } }".replace("FIELDS", fields)
        )
    )["landlords"]["edges"]
    objects = [{k: v for k, v in row["node"].items() if k != "sources"} for row in rows]
    objects += [source for row in rows for source in row["node"]["sources"]]
    ids = [obj["id"] for obj in objects]
    objects += [
        (await linked.data(f'{{ node(id: "{one}") {{ {fields} }} }}'))["node"]
        for one in dict.fromkeys(ids)
    ]

    seen: dict[str, set[str]] = {}
    for obj in objects:
        seen.setdefault(obj["id"], set()).add(json.dumps(obj, sort_keys=True))
    assert {one: values for one, values in seen.items() if len(values) > 1} == {}
    merged = [row["node"] for row in rows if len(row["node"]["sources"]) > 1]
    assert merged and all(row["id"] == row["entityId"] for row in merged)
    assert all(row["id"] not in {s["id"] for s in row["sources"]} for row in merged)


def _forbidden_and_allowed(quiet: Settings) -> tuple[Settings, dict[str, str], dict[str, str]]:
    auth = AuthSettings(
        api_keys=[
            ApiKey(name="reader", sha256=sha256(b"reader").hexdigest(), scopes=["property:read"]),
            ApiKey(name="ana", sha256=sha256(KEY.encode()).hexdigest(), scopes=["*"]),
        ]
    )
    return quiet.model_copy(update={"auth": auth}), {"X-API-Key": "reader"}, {"X-API-Key": KEY}


LINK = """mutation($ids: [ID!]!) { link(input: {ids: $ids}) {
    groups { entityId records { provider sourceId ... on Building { name } } }
    errors { code message } } }"""
UNLINK = """mutation($ids: [ID!]!) { unlink(input: {ids: $ids}) {
    groups { entityId records { provider sourceId } } errors { code message field } } }"""


async def test_a_person_links_and_unlinks_with_identity_manage(
    sandbox: Sandbox, clock: ManualClock, quiet: Settings
) -> None:
    settings, reader, person = _forbidden_and_allowed(quiet)
    one, two = (
        base64_id("Building:primmo:27"),
        base64_id(f"Building:scom:{_scom_building(sandbox)}"),
    )
    async with serving(sandbox, clock, settings, headers=person) as client:
        refused = await client.http.post(
            "/graphql", json={"query": LINK, "variables": {"ids": [one, two]}}, headers=reader
        )
        made = (await client.data(LINK, {"ids": [one, two]}))["link"]
        seen = await client.data(
            f'{{ node(id: "{one}") {{ sameAs {{ id }} links {{ source origin }} }} }}'
        )
        gone = await client.data(LINK, {"ids": [one, base64_id("Building:primmo:999999")]})
        apart = (await client.data(UNLINK, {"ids": [two]}))["unlink"]
        again = await client.data(LINK, {"ids": [two, base64_id("Building:pms:prop_41")]})
        kept = await client.data(LINK, {"ids": [one, base64_id("Building:pms:prop_41")]})
        mixed = await client.query(LINK, {"ids": [one, base64_id("Unit:primmo:28")]})
        group = base64_id("entity:Building:primmo:27")
        by_group = await client.query(LINK, {"ids": [group, two]})

    assert error_codes(refused.json()) == ["FORBIDDEN"]
    assert made["errors"] == [] and len(made["groups"][0]["records"]) == 2
    assert all(record["name"] for record in made["groups"][0]["records"]), "fields selected"
    assert seen["node"]["sameAs"] == [{"id": two}]
    assert seen["node"]["links"] == [{"source": "PERSON", "origin": "ana"}]
    assert [e["code"] for e in gone["link"]["errors"]] == ["NOT_FOUND"]
    assert {len(group["records"]) for group in apart["groups"]} == {1}
    assert again["link"]["errors"] == []
    assert [e["code"] for e in kept["link"]["errors"]] == ["KEPT_APART"]
    assert error_codes(mixed) == ["BAD_USER_INPUT"]
    assert error_codes(by_group) == ["INVALID_ID"]
    assert "is an entity id" in by_group["errors"][0]["message"]


async def test_unlink_names_a_few_records_that_exist_or_are_linked(
    sandbox: Sandbox, clock: ManualClock, quiet: Settings
) -> None:
    """An unlink is a person's decision about a few records: at most 20, each at its
    provider or in a group the store holds (a record gone from its provider can still be
    taken out of its group), each a reference the store can hold."""
    settings, _, person = _forbidden_and_allowed(quiet)
    gone, here = base64_id("Building:primmo:999999"), base64_id("Building:primmo:27")
    many = [base64_id(f"Building:primmo:{n}") for n in range(1, 22)]
    long = base64_id("Building:primmo:" + "9" * 600)
    async with serving(sandbox, clock, settings, headers=person) as client:
        store = client.gateway.federation.linking.store
        missing = (await client.data(UNLINK, {"ids": [gone, here]}))["unlink"]
        kept = await store.decisions(Entity.BUILDING)
        too_many = [await client.query(q, {"ids": many}) for q in (UNLINK, LINK)]
        too_long = [await client.query(q, {"ids": [long, here]}) for q in (UNLINK, LINK)]
        await store.link(Entity.BUILDING, ["primmo:27", "primmo:999999"], "ana")
        linked_gone = (await client.data(UNLINK, {"ids": [gone]}))["unlink"]

    assert missing["errors"] == [
        {"code": "NOT_FOUND", "message": f"No record {gone}.", "field": "ids"}
    ]
    assert missing["groups"] == [] and kept.apart == set(), "nothing decided"
    assert [error_codes(body) for body in too_many] == [["BAD_USER_INPUT"]] * 2
    assert [error_codes(body) for body in too_long] == [["INVALID_ID"]] * 2
    assert linked_gone["errors"] == []
    assert sorted(len(group["records"]) for group in linked_gone["groups"]) == [0, 1]


async def test_only_records_the_gateway_links_can_be_linked_or_proposed(
    sandbox: Sandbox, clock: ManualClock, quiet: Settings
) -> None:
    """A charge or a lease is one provider's own record: naming them in `link` or `unlink`
    would show them through the payload's records to a caller with `identity:manage` but
    not `financial:read`, and write types the link store was not made for."""
    auth = AuthSettings(
        api_keys=[
            ApiKey(
                name="linker",
                sha256=sha256(b"linker").hexdigest(),
                scopes=["property:read", "identity:manage"],
            )
        ]
    )
    settings = quiet.model_copy(update={"auth": auth})
    charges = [base64_id(f"Charge:primmo:{n}") for n in (1, 2)]
    async with serving(sandbox, clock, settings, headers={"X-API-Key": "linker"}) as client:
        asked = [await client.query(q, {"ids": charges}) for q in (LINK, UNLINK)]
        proposed = await client.query("{ proposedLinks(type: CHARGE) { totalCount } }")
        store = client.gateway.federation.linking.store
        decided = await store.decisions(Entity.CHARGE)

    for body in [*asked, proposed]:
        assert error_codes(body) == ["BAD_USER_INPUT"], body
        assert "Charge records are not linked" in body["errors"][0]["message"]
        assert "amount" not in json.dumps(body)
    assert decided.apart == set()


def _scom_building(sandbox: Sandbox) -> str:
    building = sandbox.world.buildings_of("scom")[0]
    return f"{building.landlord_id}/sp_{building.id}"


async def test_proposals_wait_for_a_person_and_go_once_decided(
    sandbox: Sandbox, clock: ManualClock, quiet: Settings
) -> None:
    settings, _, person = _forbidden_and_allowed(quiet)
    query = """{ proposedLinks(type: LANDLORD, first: 10) { totalCount
        edges { node { rule score records { id provider ... on Landlord { name } } } } } }"""
    async with serving(sandbox, clock, settings, headers=person) as client:
        await client.gateway.rebuild_links()
        before = (await client.data(query))["proposedLinks"]
        first = before["edges"][0]["node"]
        names = [
            (
                await client.data(
                    f'{{ node(id: "{record["id"]}") {{ ... on Landlord {{ name }} }} }}'
                )
            )["node"]["name"]
            for record in first["records"]
        ]
        await client.data(UNLINK, {"ids": [record["id"] for record in first["records"]]})
        after = (await client.data(query))["proposedLinks"]
        await client.gateway.rebuild_links()
        rebuilt = (await client.data(query))["proposedLinks"]

    assert before["totalCount"] >= 1 and first["rule"] == "name" and first["score"] < 0.9
    assert [record["name"] for record in first["records"]] == names, "as each provider has it"
    assert len(set(names)) == 1, "a namesake: one name, two companies"
    assert after["totalCount"] == before["totalCount"] - 1
    assert rebuilt["totalCount"] == after["totalCount"], "a person's decision outlives rebuilds"


async def test_proposals_page_on_past_one_decided_meanwhile_and_refuse_a_forged_cursor(
    sandbox: Sandbox, clock: ManualClock, quiet: Settings
) -> None:
    """A page of proposals goes on after the last one it showed, not at an offset: a
    proposal decided between two pages (gone) must not make the next page skip one."""
    settings, _, person = _forbidden_and_allowed(quiet)
    query = """query($after: String, $first: Int) { proposedLinks(first: $first, after: $after)
        { totalCount pageInfo { endCursor hasNextPage } edges { node { id records { id } } } } }"""
    forged = [
        base64.urlsafe_b64encode(text.encode()).decode()
        for text in (
            "proposals-all:99999999999999999999",
            "proposals-all:1e999:5",
            "proposals-all:0.5:-1",
            "proposals-all:-0.5:1",
            "proposals-all:nan:1",
            "proposals-all:0.5:1.0",
            "proposals-all:0.5:True",
            "proposals-all:0.5:2147483648",
            "proposals-all:0.5:1_0",
            "proposals-all:0.5: 1",
            "proposals-all:0.5:\u0663",
            "proposals-all:0.50:1",
        )
    ]
    by_type = """query($after: String) { proposedLinks(type: BUILDING, first: 1, after: $after)
        { totalCount } }"""
    async with serving(sandbox, clock, settings, headers=person) as client:
        await client.gateway.rebuild_links()
        every = (await client.data(query, {"first": 100}))["proposedLinks"]
        first = (await client.data(query, {"first": 1}))["proposedLinks"]
        decided = first["edges"][0]["node"]
        await client.data(UNLINK, {"ids": [record["id"] for record in decided["records"]]})
        second = await client.data(query, {"first": 1, "after": first["pageInfo"]["endCursor"]})
        refused = [await client.query(query, {"first": 1, "after": text}) for text in forged]
        another_list = await client.query(by_type, {"after": first["pageInfo"]["endCursor"]})

    ids = [edge["node"]["id"] for edge in every["edges"]]
    assert len(ids) >= 2 and every["pageInfo"]["hasNextPage"] is False
    assert first["pageInfo"]["hasNextPage"] is True
    assert [edge["node"]["id"] for edge in second["proposedLinks"]["edges"]] == [ids[1]]
    assert [error_codes(body) for body in refused] == [["INVALID_CURSOR"]] * len(forged)
    assert error_codes(another_list) == ["INVALID_CURSOR"], "a cursor is of its own list"


async def test_a_rebuild_keeps_apart_what_a_person_unlinked_while_it_ran(
    linked: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rebuild reads people's decisions, then spends its time matching: a person's unlink
    made meanwhile must hold once the rebuild stores what it found."""
    store = linked.gateway.federation.linking.store
    rows = (
        await linked.data(
            "{ landlords(first: 100, distinct: true) { edges { node { sources { provider "
            "sourceId } } } } }"
        )
    )["landlords"]["edges"]
    one, two = next(
        [f"{s['provider']}:{s['sourceId']}" for s in row["node"]["sources"]]
        for row in rows
        if len(row["node"]["sources"]) == 2
    )
    reading = store.decisions

    async def a_person_meanwhile(entity: Entity) -> Decisions:
        found = await reading(entity)
        if entity is Entity.LANDLORD:
            await store.unlink(entity, [two], "ana")
        return found

    monkeypatch.setattr(store, "decisions", a_person_meanwhile)
    await linked.gateway.rebuild_links()

    groups = await store.groups(Entity.LANDLORD, [one, two])
    assert groups[one].members == (one,) and groups[two].members == (two,)
    assert frozenset((one, two)) in (await reading(Entity.LANDLORD)).apart


async def test_a_change_to_one_record_is_told_for_its_whole_group(linked: Client) -> None:
    world = linked.sandbox.world
    references = world.references
    twin = next(
        (a, b)
        for kind, a, b in world.same_as
        if kind == "tenant"
        and references.get(("tenant", a), "").startswith("primmo:")
        and references.get(("tenant", b))
    )
    changes = await published(linked)

    response = await linked.http.post(
        "/webhooks/primmo",
        content=_primmo_delivery(twin[0]),
        headers={WEBHOOK_HEADER: PRIMMO["webhook_secret"]},
    )

    await eventually(lambda: len(changes) >= 2)
    assert response.status_code == 200
    told = {f"{c.provider}:{c.source_id}" for c in changes}
    assert told == {references[("tenant", twin[0])], references[("tenant", twin[1])]}


async def test_a_record_deleted_at_its_provider_takes_its_proposals_with_it(
    linked: Client,
) -> None:
    """Even a record in no group: a proposal naming a record that is gone cannot be decided."""
    store = linked.gateway.federation.linking.store
    gone = f"primmo:{linked.sandbox.world.tenants[0].id}"
    proposal = Proposal(Entity.TENANT, gone, "pms:prop_1/ten_1", "name", 0.6)

    async def found(_decisions: Mapping[Entity, Decisions]) -> dict[Entity, Findings]:
        return {Entity.TENANT: Findings((), [proposal])}

    await store.replace([Entity.TENANT], found)
    assert (await store.groups(Entity.TENANT, [gone]))[gone].members == (gone,)

    response = await linked.http.post(
        "/webhooks/primmo",
        content=_primmo_delivery(int(gone.partition(":")[2]), status=2),
        headers={WEBHOOK_HEADER: PRIMMO["webhook_secret"]},
    )

    assert response.status_code == 200
    assert await store.proposals(Entity.TENANT, None, 10) == ([], 0)


async def test_leap_is_kept_in_step_with_the_links(
    sandbox: Sandbox, clock: ManualClock, settings: Settings
) -> None:
    async with serving(sandbox, clock, settings) as client:
        await client.gateway.rebuild_links()
        recorded = sandbox.states["leap"].records.relationships
        named = {r.identifier: r.extid for r in recorded.values() if r.extid}
        owner = next(
            identifier for identifier, extid in named.items() if extid.startswith("primmo:owner:")
        )
        found = await client.data(
            "query($id: String!) { relationshipByExternalId(externalId: $id) { sourceId "
            "sameAs { provider ... on Relationship { derived } } } }",
            {"id": named[owner]},
        )
        sandbox.states["leap"].reset_counter()
        await client.gateway.rebuild_links()
        writes = sandbox.states["leap"].count("POST")

    owned = [r for r in recorded.values() if r.role == "OWNER" and r.property.extid is not None]
    assert owned and all(r.extid and ":owner:" in r.extid for r in owned)
    assert found["relationshipByExternalId"]["sourceId"] == owner
    assert {"provider": "primmo", "derived": True} in found["relationshipByExternalId"]["sameAs"]
    assert writes == 0, "a second rebuild finds LEAP in step"


async def _unnamed_leap_twin(client: Client) -> tuple[str, str, str]:
    """A relationship LEAP records, without an external id, linked with the one the gateway
    derives: (LEAP's identifier, its global id, its derived twin's global id)."""
    rows = (
        await client.data(
            '{ relationships(first: 100, providers: ["leap"]) { edges { node { id sourceId '
            "externalId sameAs { id ... on Relationship { derived } } } } } }"
        )
    )["relationships"]["edges"]
    return next(
        (row["node"]["sourceId"], row["node"]["id"], twin["id"])
        for row in rows
        if row["node"]["externalId"] is None
        for twin in row["node"]["sameAs"]
        if twin["derived"]
    )


async def test_a_persons_link_writes_to_leap_only_if_write_back_is_on(
    sandbox: Sandbox, clock: ManualClock, quiet: Settings
) -> None:
    settings, _, person = _forbidden_and_allowed(quiet)
    recorded = sandbox.states["leap"].records.relationships
    async with serving(sandbox, clock, settings, headers=person) as off:
        await off.gateway.rebuild_links()
        identifier, leap, derived = await _unnamed_leap_twin(off)
        sandbox.states["leap"].reset_counter()
        made = (await off.data(LINK, {"ids": [leap, derived]}))["link"]
        posts = sandbox.states["leap"].count("POST")
    on = settings.model_copy(update={"links": LinkSettings(write_back=True)})
    async with serving(sandbox, clock, on, headers=person) as client:
        await client.data(LINK, {"ids": [leap, derived]})

    assert made["errors"] == [] and posts == 0, "[links] write_back = false: LEAP untouched"
    assert recorded[identifier].extid is not None, "with write_back on, the link names it"


async def test_a_write_back_leap_refuses_is_a_warning_on_the_link(
    sandbox: Sandbox, clock: ManualClock, quiet: Settings, tmp_path: Path
) -> None:
    """The link stands (it is the gateway's); LEAP keeping another relationship under the
    name is said, naming LEAP, rather than counted where no caller sees it."""
    settings, _, person = _forbidden_and_allowed(quiet)
    url = f"sqlite+aiosqlite:///{tmp_path / 'links.sqlite3'}"
    rebuilt = settings.model_copy(update={"links": LinkSettings(url=url, write_back=False)})
    settings = settings.model_copy(update={"links": LinkSettings(url=url, write_back=True)})
    recorded = sandbox.states["leap"].records.relationships
    async with serving(sandbox, clock, rebuilt, headers=person) as before:
        await before.gateway.rebuild_links()
        identifier, leap, derived = await _unnamed_leap_twin(before)
    async with serving(sandbox, clock, settings, headers=person) as client:
        name = base64.urlsafe_b64decode(derived + "==").decode().partition(":")[2]
        holder = next(r for r in recorded.values() if r.identifier != identifier and not r.extid)
        holder.extid = name
        body = await client.query(LINK, {"ids": [leap, derived]})

    assert body["data"]["link"]["errors"] == [] and "errors" not in body
    assert [(w["provider"], name in w["message"]) for w in body["extensions"]["warnings"]] == [
        ("leap", True)
    ]
    assert recorded[identifier].extid is None


async def test_links_outlive_a_restart_in_a_sqlite_file(
    sandbox: Sandbox, clock: ManualClock, quiet: Settings, tmp_path: Path
) -> None:
    settings = quiet.model_copy(
        update={"links": LinkSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'links.sqlite3'}")}
    )
    one, two = base64_id("Building:primmo:27"), base64_id("Building:pms:prop_41")
    async with serving(sandbox, clock, settings) as before:
        await before.data(LINK, {"ids": [one, two]})
    async with serving(sandbox, clock, settings) as after:
        seen = await after.data(f'{{ node(id: "{one}") {{ sameAs {{ id }} }} }}')

    assert seen["node"]["sameAs"] == [{"id": two}]


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with PostgresServer().running() as server:
        yield server


async def test_two_replicas_share_links_through_postgresql(
    sandbox: Sandbox, clock: ManualClock, quiet: Settings, postgres: PostgresServer
) -> None:
    settings = quiet.model_copy(update={"links": LinkSettings(url=postgres.url)})
    one, two = base64_id("Building:primmo:27"), base64_id("Building:pms:prop_41")
    query = f'{{ node(id: "{one}") {{ entityId sameAs {{ id }} }} }}'
    async with (
        serving(sandbox, clock, settings) as first,
        serving(
            Sandbox(seed=7, clock=clock), clock, settings, self_url="http://127.0.0.1:8001"
        ) as second,
    ):
        await first.data(LINK, {"ids": [one, two]})
        seen = await second.data(query)
        await second.data(UNLINK, {"ids": [two]})
        after = await first.data(query)

    assert seen["node"]["sameAs"] == [{"id": two}]
    assert after["node"]["sameAs"] == []


async def test_without_its_store_a_query_has_its_data_and_an_error_and_a_webhook_waits(
    sandbox: Sandbox, clock: ManualClock, quiet: Settings
) -> None:
    settings = quiet.model_copy(
        update={"links": LinkSettings(url="postgresql+asyncpg://nobody@127.0.0.1:9/links")}
    )
    async with serving(sandbox, clock, settings) as client:
        body = await client.query(
            '{ buildings(first: 2, providers: ["primmo"]) { edges { node { name entityId '
            "sameAs { id } } } } }"
        )
        webhook = await client.http.post(
            "/webhooks/primmo",
            content=_primmo_delivery(1),
            headers={WEBHOOK_HEADER: PRIMMO["webhook_secret"]},
        )

    assert [edge["node"]["entityId"] for edge in body["data"]["buildings"]["edges"]] == [None] * 2
    assert all(edge["node"]["name"] for edge in body["data"]["buildings"]["edges"])
    assert set(error_codes(body)) == {"LINKS_UNAVAILABLE"}
    assert webhook.status_code == 503 and webhook.json()["code"] == "LINKS_UNAVAILABLE"


async def test_without_its_store_a_change_to_a_type_never_linked_is_still_told(
    sandbox: Sandbox, clock: ManualClock, quiet: Settings
) -> None:
    """A maintenance request is one provider's own record: telling its change asks the link
    store nothing, so a store that is down (or cannot hold the type's name) does not make
    pms deliver it again and again."""
    settings = quiet.model_copy(
        update={"links": LinkSettings(url="postgresql+asyncpg://nobody@127.0.0.1:9/links")}
    )
    async with serving(sandbox, clock, settings) as client:
        await client.gateway.subscribe_webhooks("http://127.0.0.1:8000")
        changes = await published(client)
        ticket = next(t for t in client.pms.records.workshop.requests.values())
        unit = encode_id(Entity.UNIT, "pms", f"prop_{ticket.building_id}/unit_{ticket.unit_id}")
        created = await client.data(
            "mutation($unit: ID!) { createMaintenanceRequest(input: {unitId: $unit, "
            'description: "Door"}) { maintenanceRequest { sourceId } } }',
            {"unit": unit},
        )
        await eventually(lambda: len(changes) >= 1)

    request = created["createMaintenanceRequest"]["maintenanceRequest"]
    assert [(c.entity, c.source_id) for c in changes] == [
        (Entity.MAINTENANCE_REQUEST, request["sourceId"])
    ]


def test_a_precedence_naming_what_does_not_exist_stops_start_up(tmp_path: Path) -> None:
    for text, named in (
        ('[links.precedence]\n"Landlord.businessNumbr" = ["scom"]\n', "Landlord.businessNumbr"),
        ('[links.precedence]\n"Landlord" = ["acme"]\n', "acme"),
        ('[links]\nurl = "postgresql+asyncpg://me:hunter2@db/links"\n', "url"),
    ):
        path = tmp_path / "propgate.toml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError) as raised:
            create_app(load_settings(path))
        assert named in str(raised.value) and "hunter2" not in str(raised.value)


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("mysql+aiomysql://propgate@db/links", "mysql+aiomysql"),
        ("nonsense", "not a database URL"),
        ("sqlite:///links.sqlite3", "sqlite+aiosqlite"),
        ("sqlite+aiosqlite:///{tmp}/no/such/dir/links.sqlite3", "no/such/dir"),
    ],
)
def test_a_link_store_the_gateway_cannot_use_stops_start_up(
    url: str, said: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A URL without a driver the store can use, or a SQLite file it cannot make, is a
    mistake in the configuration: said at start, by key, not an outage every query reports
    (nor INTERNAL_SERVER_ERROR for a driver not installed)."""
    url = url.format(tmp=tmp_path)
    path = tmp_path / "propgate.toml"
    path.write_text(f'[links]\nurl = "{url}"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as in_file:
        create_app(load_settings(path))
    monkeypatch.setenv("PROPGATE_LINKS_URL", url)
    with pytest.raises(ConfigError) as in_environment:
        create_app(Settings())

    for raised in (in_file, in_environment):
        assert "links" in str(raised.value) and said in str(raised.value)


@pytest.mark.parametrize(
    ("extid", "reference", "said"),
    [
        ("X{id}-{id}", "primmo:{id}", "more than once"),
        ("X{0}", "primmo:{0}", "'0'"),
        ("X{id.x}", "primmo:{id}", "'id.x'"),
        ("X{id!r}", "primmo:{id}", "no conversion"),
        ("X{id}", "primmo:{id.real}", "'id.real'"),
    ],
)
def test_an_extid_form_leap_cannot_read_stops_start_up(
    extid: str, reference: str, said: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A form is read by a pattern made of it: one it cannot make (a name twice, a name
    that is not one) is said at start, by key, not a traceback once LEAP is connected."""
    monkeypatch.setenv("LEAP_TEST_PASSWORD", "secret")
    path = tmp_path / "propgate.toml"
    path.write_text(
        '[providers.leap]\nurl = "http://127.0.0.1:9"\nusername = "gateway"\n'
        'password = { env = "LEAP_TEST_PASSWORD" }\n[providers.leap.options]\n'
        f'extid_forms = [{{ extid = "{extid}", reference = "{reference}" }}]\n',
        encoding="utf-8",
    )

    with pytest.raises(ConfigError) as raised:
        create_app(load_settings(path))

    assert "[providers.leap.options]" in str(raised.value) and said in str(raised.value)


def test_a_rebuild_without_its_store_reads_no_provider_and_says_why(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = Settings(links=LinkSettings(url="postgresql+asyncpg://nobody@127.0.0.1:9/links"))
    made: list[Sandbox] = []

    def counted(settings: Settings, clock: Any) -> Sandbox:
        made.append(sandbox_for(settings, clock))
        return made[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("gateway.tools.linking.sandbox_for", counted)
        code = rebuild_now(settings)

    said = capsys.readouterr().err
    assert code == 1 and "LINKS_UNAVAILABLE" not in said and "Traceback" not in said
    assert "link store" in said and "nothing was read" in said
    assert [_counted(sandbox) for sandbox in made] == [{}], "no provider was read"


def test_each_field_comes_from_the_first_record_in_its_own_precedence_that_has_it() -> None:
    """Values differ between the records, and the field precedences disagree with the
    type's: each field must follow its own."""
    landlord = Entity.LANDLORD
    linking = Linking(
        precedence=Precedence(
            default=("primmo", "pms", "scom"),
            fields={(landlord, "name"): ("scom", "pms"), (landlord, "business_number"): ("pms",)},
        )
    )
    records = [
        Landlord("scom", "7", name="SCOM's", business_number="222", status="ACTIVE"),
        Landlord("pms", "org_1", name="pms's", business_number="111", billing_postal_code="G1A"),
        Landlord("primmo", "1", name="Primmo's", status="active"),
    ]

    merged = linking.merged(records, "pms:org_1", Selection())

    assert isinstance(merged, Landlord)
    assert (merged.provider, merged.source_id) == ("primmo", "1"), "the type's first leads"
    assert merged.name == "SCOM's", "its own precedence, not the type's"
    assert merged.business_number == "111", "pms first for it, though Primmo leads"
    assert merged.status == "active" and merged.billing_postal_code == "G1A"
    assert merged.merged is not None and merged.merged.label == "pms:org_1"
    assert [r.provider for r in merged.merged.records] == ["primmo", "pms", "scom"]


async def test_a_field_comes_from_the_provider_its_precedence_names(
    sandbox: Sandbox, clock: ManualClock, quiet: Settings
) -> None:
    """Twin buildings are spelled differently at each provider: with `Building.street` taken
    from pms first and the rest from Primmo first, a Primmo and pms building's row is led
    by Primmo's record and shows pms's street."""
    query = """{ buildings(first: 100, distinct: true) { edges { node { provider street name
        sources { provider ... on Building { street name } } } } } }"""
    settings = quiet.model_copy(
        update={
            "links": LinkSettings(
                write_back=False,
                precedence={"default": ["primmo", "pms"], "Building.street": ["pms", "primmo"]},
            )
        }
    )
    async with serving(sandbox, clock, settings) as client:
        await client.gateway.rebuild_links()
        rows = [e["node"] for e in (await client.data(query))["buildings"]["edges"]]

    both = [
        (row, {source["provider"]: source for source in row["sources"]})
        for row in rows
        if {source["provider"] for source in row["sources"]} == {"primmo", "pms"}
    ]
    differing = [(row, by) for row, by in both if by["primmo"]["street"] != by["pms"]["street"]]
    assert differing, "the world spells some twins' streets differently"
    for row, by in both:
        assert row["provider"] == "primmo" and row["name"] == by["primmo"]["name"]
        assert row["street"] == by["pms"]["street"]


async def test_a_failed_field_does_not_take_its_siblings_shared_answers_with_it(
    sandbox: Sandbox, clock: ManualClock, quiet: Settings
) -> None:
    """`links` refused for want of a scope nulls its node, and graphql-core then cancels the
    node's other fields, `sameAs` among them, while they wait for groups that `entityId`
    elsewhere waits for too: those shared answers must still reach `entityId`."""
    settings, reader, _ = _forbidden_and_allowed(quiet)
    async with serving(sandbox, clock, settings, headers=reader) as client:
        await client.gateway.rebuild_links()
        idle = asyncio.all_tasks()
        body = await client.query(
            "{ landlords { edges { node { links { origin } ... on Landlord "
            "{ sameAs { sameAs { provider } } } } other: node { entityId } } } }"
        )
        await settled(idle)

    assert "FORBIDDEN" in error_codes(body)
