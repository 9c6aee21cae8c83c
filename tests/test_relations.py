"""Every relation agrees with its inverse, for every provider, on the gateway's own answers.

The walk reads each provider's records through GraphQL only: its root lists, then every unit
and tenant its relations name, fetched again by id. Each relation's pairs are compared with its
inverse's (a building's landlord lists the building; a unit in a building's units names that
building), so a relation that gives nothing where its inverse gives something fails here. A
relation a provider's API cannot give is not checked for pairs: it must say so in a warning.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from tests.conftest import Client

LISTED = {
    "landlords": ("mycrm", "pms", "primmo", "scom"),
    "buildings": ("pms", "primmo", "scom"),
    "units": ("mycrm", "primmo"),
    "tenants": ("primmo",),
    "leases": ("primmo",),
}
"""The root lists each provider answers (the others' records are reached through relations)."""
UNAVAILABLE = {
    ("mycrm", "Landlord.buildings"),
    ("mycrm", "Unit.building"),
    ("mycrm", "Unit.tenants"),
    ("scom", "Building.units"),
}
"""Relations the provider's API cannot give: each answers nothing, with a warning naming it."""
PARTLY = {("primmo", "Lease.tenants", "ENDED")}
"""Relations a provider gives for some records only (Primmo forgets former tenants): those of
that status answer nothing, with a warning naming the relation."""
_PARTY = "party { ... on Landlord { id } ... on Tenant { id } }"
_RELATIONSHIPS = f"relationships {{ id derived role building {{ id }} unit {{ id }} {_PARTY} }}"
FIELDS = {
    "Landlord": f"id provider buildings {{ id }} {_RELATIONSHIPS}",
    "Building": f"id provider landlord {{ id }} units {{ id }} {_RELATIONSHIPS}",
    "Unit": "id provider occupancy building { id } tenants { id } landlord { id }",
    "Tenant": f"id provider unit {{ id }} lease {{ id status endDate }} {_RELATIONSHIPS}",
    "Lease": "id provider status tenants { id } unit { id }",
}
PAGE = 50
"""Objects per read: a page of 100 with every relation costs more than the query limit."""
ROOT_TYPE = {
    "landlords": "Landlord",
    "buildings": "Building",
    "units": "Unit",
    "tenants": "Tenant",
    "leases": "Lease",
}


@dataclass
class Walk:
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Every object read, by global id."""
    warnings: list[dict[str, Any]] = field(default_factory=list)

    def of(self, typename: str) -> list[dict[str, Any]]:
        return [node for node in self.nodes.values() if node["__typename"] == typename]

    def read(self, body: dict[str, Any]) -> dict[str, Any]:
        assert "errors" not in body, body["errors"]
        self.warnings.extend(body.get("extensions", {}).get("warnings", []))
        data: dict[str, Any] = body["data"]
        return data


async def _walk(client: Client) -> Walk:
    walk = Walk()
    for root, providers in LISTED.items():
        typename = ROOT_TYPE[root]
        for provider in providers:
            after = None
            while True:
                data = walk.read(
                    await client.query(
                        f"query($after: String, $p: [String!]) {{ {root}(first: {PAGE}, "
                        "after: $after, providers: $p) { pageInfo { hasNextPage endCursor } "
                        f"edges {{ node {{ __typename {FIELDS[typename]} }} }} }} }}",
                        {"after": after, "p": [provider]},
                    )
                )
                walk.nodes.update((e["node"]["id"], e["node"]) for e in data[root]["edges"])
                if not data[root]["pageInfo"]["hasNextPage"]:
                    break
                after = data[root]["pageInfo"]["endCursor"]
    await _by_id(client, walk, "Unit", [u["id"] for b in walk.of("Building") for u in b["units"]])
    await _by_id(client, walk, "Tenant", [t["id"] for u in walk.of("Unit") for t in u["tenants"]])
    await _by_id(client, walk, "Lease", [t["lease"]["id"] for t in walk.of("Tenant") if t["lease"]])
    after = None
    while True:
        data = walk.read(
            await client.query(
                f"query($after: String) {{ relationships(first: {PAGE}, after: $after) {{ pageInfo "
                "{ hasNextPage endCursor } edges { node { __typename id derived role "
                f"building {{ id }} {_PARTY} }} }} }} }}",
                {"after": after},
            )
        )
        walk.nodes.update((e["node"]["id"], e["node"]) for e in data["relationships"]["edges"])
        if not data["relationships"]["pageInfo"]["hasNextPage"]:
            return walk
        after = data["relationships"]["pageInfo"]["endCursor"]


async def _by_id(client: Client, walk: Walk, typename: str, ids: list[str]) -> None:
    """Records reached through a relation, read again by id: what the inverse says of them."""
    missing = sorted(set(ids) - set(walk.nodes))
    for start in range(0, len(missing), PAGE):
        data = walk.read(
            await client.query(
                f"query($ids: [ID!]!) {{ nodes(ids: $ids) {{ __typename ... on {typename} "
                f"{{ {FIELDS[typename]} }} }} }}",
                {"ids": missing[start : start + PAGE]},
            )
        )
        for node in data["nodes"]:
            assert node is not None
            walk.nodes[node["id"]] = node


Pairs = set[tuple[str, str]]


def _ids(value: Any) -> list[str]:
    """The ids a relation gives: a list's, an object's, none for null."""
    if value is None:
        return []
    return [item["id"] for item in value] if isinstance(value, list) else [value["id"]]


def _forward(walk: Walk, typename: str, relation: str) -> dict[str, Pairs]:
    """Each provider's (source, target) pairs of one relation, as the sources say."""
    pairs: dict[str, Pairs] = defaultdict(set)
    for node in walk.of(typename):
        pairs[node["provider"]].update((node["id"], target) for target in _ids(node[relation]))
    return pairs


def _recorded(walk: Walk, typename: str) -> dict[str, Pairs]:
    """(record, relationship) for the relationships LEAP records about each record."""
    pairs: dict[str, Pairs] = defaultdict(set)
    for node in walk.of(typename):
        recorded = [r["id"] for r in node["relationships"] if not r["derived"]]
        pairs[node["provider"]].update((node["id"], r) for r in recorded)
    return pairs


def _grouped(walk: Walk, pairs: Pairs, typename: str) -> dict[str, Pairs]:
    """The pairs whose first member is a `typename` read in the walk, by its provider."""
    grouped: dict[str, Pairs] = defaultdict(set)
    for source, target in pairs:
        node = walk.nodes.get(source)
        if node is not None and node["__typename"] == typename:
            grouped[node["provider"]].add((source, target))
    return grouped


def _inverse(walk: Walk, typename: str, of: str, relation: str) -> dict[str, Pairs]:
    """A relation's pairs as its inverse (`of`'s `relation`) says them, turned around."""
    said = _forward(walk, of, relation)
    return _grouped(walk, {(t, s) for pairs in said.values() for s, t in pairs}, typename)


def _inverses(walk: Walk) -> dict[str, tuple[dict[str, Pairs], dict[str, Pairs]]]:
    """Each relation's pairs as it says them and as its inverse says them, per provider."""
    relationships = walk.of("Relationship")
    about_building = {(r["building"]["id"], r["id"]) for r in relationships if r["building"]}
    held_by = {(r["party"]["id"], r["id"]) for r in relationships if r["party"]}
    landlords = {node["id"] for node in walk.of("Landlord")}
    through_building = {
        (unit["id"], walk.nodes[unit["building"]["id"]]["landlord"]["id"])
        for unit in walk.of("Unit")
        if unit["building"] and walk.nodes[unit["building"]["id"]]["landlord"]
    }
    listed = {
        (unit["id"], landlord)
        for unit in walk.of("Unit")
        for landlord in _ids(unit["landlord"])
        if not unit["building"] and landlord in landlords
    }

    def derived(typename: str, end: str) -> dict[str, Pairs]:
        """(record, the other end of each relationship derived for it)."""
        pairs = {
            (node["id"], r[end]["id"])
            for node in walk.of(typename)
            for r in node["relationships"]
            if r["derived"] and r[end]
        }
        return _grouped(walk, pairs, typename)

    signed = {
        (lease["id"], walk.nodes[tenant["id"]]["unit"]["id"])
        for lease in walk.of("Lease")
        for tenant in lease["tenants"]
        if walk.nodes[tenant["id"]]["unit"]
    }
    named = {lease["id"] for lease in walk.of("Lease") if lease["tenants"]}

    return {
        "Tenant.lease": (
            _forward(walk, "Tenant", "lease"),
            _inverse(walk, "Tenant", "Lease", "tenants"),
        ),
        "Lease.tenants": (
            _forward(walk, "Lease", "tenants"),
            _inverse(walk, "Lease", "Tenant", "lease"),
        ),
        "Lease.unit (its tenants' unit)": (
            _grouped(
                walk,
                {
                    (lease["id"], unit)
                    for lease in walk.of("Lease")
                    if lease["id"] in named
                    for unit in _ids(lease["unit"])
                },
                "Lease",
            ),
            _grouped(walk, signed, "Lease"),
        ),
        "Landlord.buildings": (
            _forward(walk, "Landlord", "buildings"),
            _inverse(walk, "Landlord", "Building", "landlord"),
        ),
        "Building.landlord": (
            _forward(walk, "Building", "landlord"),
            _inverse(walk, "Building", "Landlord", "buildings"),
        ),
        "Building.units": (
            _forward(walk, "Building", "units"),
            _inverse(walk, "Building", "Unit", "building"),
        ),
        "Unit.building": (
            _forward(walk, "Unit", "building"),
            _inverse(walk, "Unit", "Building", "units"),
        ),
        "Unit.tenants": (
            _forward(walk, "Unit", "tenants"),
            _inverse(walk, "Unit", "Tenant", "unit"),
        ),
        "Tenant.unit": (
            _forward(walk, "Tenant", "unit"),
            _inverse(walk, "Tenant", "Unit", "tenants"),
        ),
        "Unit.landlord": (
            _forward(walk, "Unit", "landlord"),
            _grouped(walk, through_building | listed, "Unit"),
        ),
        "Building.relationships": (
            _recorded(walk, "Building"),
            _grouped(walk, about_building, "Building"),
        ),
        "Tenant.relationships": (_recorded(walk, "Tenant"), _grouped(walk, held_by, "Tenant")),
        "Landlord.relationships": (
            _recorded(walk, "Landlord"),
            _grouped(walk, held_by, "Landlord"),
        ),
        "Landlord.relationships (derived)": (
            derived("Landlord", "building"),
            _forward(walk, "Landlord", "buildings"),
        ),
        "Building.relationships (derived)": (
            derived("Building", "party"),
            _forward(walk, "Building", "landlord"),
        ),
        "Tenant.relationships (derived)": (
            derived("Tenant", "unit"),
            _forward(walk, "Tenant", "unit"),
        ),
    }


def relations_checked(walk: Walk) -> dict[tuple[str, str], int]:
    """(provider, relation) -> pairs that agree with the inverse; asserts they all do."""
    checked: dict[tuple[str, str], int] = {}
    for relation, (said, inverse) in _inverses(walk).items():
        for provider in sorted(set(said) | set(inverse)):
            assert said.get(provider, set()) == inverse.get(provider, set()), (provider, relation)
            if said.get(provider):
                checked[(provider, relation)] = len(said[provider])
    return checked


async def test_every_relation_agrees_with_its_inverse_for_every_provider(client: Client) -> None:
    walk = await _walk(client)

    checked = relations_checked(walk)

    assert {provider for provider, _ in checked} == {"mycrm", "pms", "primmo", "scom"}
    for provider in ("pms", "primmo"):
        for relation in (
            "Landlord.buildings",
            "Building.landlord",
            "Building.units",
            "Unit.building",
            "Unit.tenants",
            "Tenant.unit",
            "Unit.landlord",
            "Building.relationships",
            "Tenant.relationships",
            "Landlord.relationships",
            "Landlord.relationships (derived)",
            "Building.relationships (derived)",
            "Tenant.relationships (derived)",
            "Tenant.lease",
            "Lease.tenants",
            "Lease.unit (its tenants' unit)",
        ):
            assert checked.get((provider, relation)), (provider, relation)
    for relation in ("Landlord.buildings", "Building.landlord", "Building.relationships"):
        assert checked.get(("scom", relation)), relation
    assert checked.get(("mycrm", "Unit.landlord"))
    assert checked.get(("mycrm", "Landlord.relationships"))


async def test_a_relation_a_provider_cannot_give_says_so_and_gives_nothing(client: Client) -> None:
    walk = await _walk(client)
    said = {(warning["provider"], warning["message"]) for warning in walk.warnings}

    for provider, relation in UNAVAILABLE:
        typename, name = relation.split(".")
        records = [node for node in walk.of(typename) if node["provider"] == provider]
        assert records, relation
        assert all(not node[name] for node in records), relation
        assert any(who == provider and relation in message for who, message in said), relation
    for provider, relation, status in PARTLY:
        typename, name = relation.split(".")
        records = [node for node in walk.of(typename) if node["provider"] == provider]
        assert {bool(node[name]) for node in records} == {True, False}, relation
        assert all(not node[name] for node in records if node["status"] == status), relation
        assert any(who == provider and relation in message for who, message in said), relation
    unable = {provider for provider, _ in UNAVAILABLE} | {provider for provider, *_ in PARTLY}
    assert {who for who, _ in said} <= unable


async def test_occupancy_agrees_with_the_tenants_listed(client: Client) -> None:
    """A unit is occupied when someone lives there today: a tenant whose lease, where the
    provider keeps leases, has not ended."""
    walk = await _walk(client)
    today = client.sandbox.world.today.isoformat()

    def present(tenant: dict[str, Any]) -> bool:
        lease = tenant["lease"]
        return lease is None or (lease["status"] == "ACTIVE" and lease["endDate"] >= today)

    told = 0
    for unit in walk.of("Unit"):
        if unit["provider"] == "mycrm":
            continue
        living = [t for t in unit["tenants"] if present(walk.nodes[t["id"]])]
        assert (unit["occupancy"] == "OCCUPIED") == bool(living), unit
        told += 1
    assert told == sum(
        len(client.sandbox.world.units_in(b.id))
        for b in client.sandbox.world.buildings
        if b.provider in ("pms", "primmo")
    )


async def test_a_pms_landlords_buildings_are_one_read_of_the_property_list(
    client: Client,
) -> None:
    """pms has no list of an organization's properties: a page of organizations costs one
    read of the property list, whatever the number of organizations, not one each."""
    world = client.sandbox.world
    client.sandbox.reset_counters()

    data = await client.data(
        '{ landlords(first: 100, providers: ["pms"]) { edges { node { sourceId '
        "buildings { sourceId } } } } }"
    )

    owned = {
        edge["node"]["sourceId"]: sorted(b["sourceId"] for b in edge["node"]["buildings"])
        for edge in data["landlords"]["edges"]
    }
    assert owned == {
        f"org_{landlord.id}": sorted(
            f"prop_{b.id}" for b in world.buildings_of("pms") if b.landlord_id == landlord.id
        )
        for landlord in world.landlords_of("pms")
    }
    property_pages = -(-len(world.buildings_of("pms")) // 100)
    assert client.pms.count("GET", "/api/v1/organizations") == 1
    assert client.pms.count("GET", "/api/v1/properties") == property_pages
    assert client.pms.count("GET") == 1 + property_pages


async def test_a_pms_units_landlord_costs_one_request_per_property_and_organization(
    client: Client,
) -> None:
    """A pms unit's landlord is its property's organization: asked for every unit of five
    properties, each property and each organization is read once, not once per unit."""
    client.sandbox.reset_counters()

    data = await client.data(
        '{ buildings(first: 5, providers: ["pms"]) { edges { node { sourceId '
        "landlord { sourceId } units { landlord { sourceId } } } } } }"
    )

    nodes = [edge["node"] for edge in data["buildings"]["edges"]]
    units = [unit for node in nodes for unit in node["units"]]
    assert len(units) > len(nodes)
    for node in nodes:
        assert {unit["landlord"]["sourceId"] for unit in node["units"]} <= {
            node["landlord"]["sourceId"]
        }
    organizations = {node["landlord"]["sourceId"] for node in nodes}
    assert client.pms.count("GET") == 1 + len(nodes) + len(nodes) + len(organizations)
