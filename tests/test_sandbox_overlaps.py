"""The world's overlaps: records of one thing at two providers, spelled two ways, and the
near-duplicates beside them that are not one thing; the truth the linking rules are scored on.
"""

from __future__ import annotations

import unicodedata
from collections import Counter

import pytest

from gateway.sandbox import Sandbox
from gateway.sandbox.data import BUILDING_PROVIDERS, LISTING_PROVIDER, Building, WorldSize
from gateway.sandbox.overlaps import truth

CASES = {
    "seed1-default": (1, WorldSize()),
    "seed4-default": (4, WorldSize()),
    "seed2-crowded": (2, WorldSize(landlords=31, buildings=150, units_per_building=(2, 10))),
}


@pytest.fixture(scope="module", params=list(CASES), ids=list(CASES))
def world_of(request: pytest.FixtureRequest) -> Sandbox:
    seed, size = CASES[request.param]
    return Sandbox(seed=seed, size=size)


def _plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if ch.isalnum()).casefold()


def _place(building: Building) -> tuple[str, str, str]:
    civic, _, street = building.street.partition(" ")
    words = [w for w in street.replace(",", " ").split() if w.casefold() not in ("rue", "r.")]
    return civic.rstrip(","), _plain(" ".join(words)).replace("saint", "st"), _plain(building.city)


def test_twins_are_one_thing_at_two_providers_spelled_their_own_way(world_of: Sandbox) -> None:
    world = world_of.world
    buildings = {b.id: b for b in world.buildings}
    landlords = {landlord.id: landlord for landlord in world.landlords}
    units = {unit.id: unit for unit in world.units}
    tenants = {tenant.id: tenant for tenant in world.tenants}
    party = {frozenset((a, b)) for kind, a, b in world.same_as if kind == "landlord"}
    twins = [(a, b) for kind, a, b in world.same_as if kind == "building"]

    assert twins, "every case has a two-provider landlord with buildings"
    spelled_apart = 0
    for first, second in twins:
        one, two = buildings[first], buildings[second]
        assert one.provider in BUILDING_PROVIDERS
        assert two.provider in (*BUILDING_PROVIDERS, LISTING_PROVIDER)
        assert one.provider != two.provider
        assert frozenset((one.landlord_id, two.landlord_id)) in party
        assert _place(one) == _place(two)
        assert _plain(one.postal_code) == _plain(two.postal_code)
        spelled_apart += (one.street, one.city) != (two.street, two.city)
        assert sorted(u.code for u in world.units_in(first)) == sorted(
            u.code for u in world.units_in(second)
        )
    assert spelled_apart >= len(twins) // 2
    for kind, first, second in world.same_as:
        if kind == "unit":
            assert units[first].code == units[second].code
            assert world.is_occupied(first) == world.is_occupied(second)
        if kind == "tenant":
            assert tenants[first].first_name == tenants[second].first_name
            assert tenants[first].lease.start == tenants[second].lease.start
    assert all(landlords[a].provider != landlords[b].provider for a, b in map(sorted, party))


def test_near_duplicates_stand_beside_the_twins(world_of: Sandbox) -> None:
    """A building a few doors down, one at the same address in another city, a company with
    the same name and another business number: none of them paired with anything."""
    world = world_of.world
    paired = {(kind, one) for kind, first, second in world.same_as for one in (first, second)}
    originals = [b for b in world.buildings if ("building", b.id) in paired]

    for original in originals:
        civic, street, city = _place(original)
        others = [
            b for b in world.buildings if ("building", b.id) not in paired and b.id != original.id
        ]
        neighbours = [b for b in others if _place(b)[1:] == (street, city)]
        elsewhere = [b for b in others if _place(b)[:2] == (civic, street)]
        assert all(_place(b)[0] != civic for b in neighbours)
        assert all(_place(b)[2] != city for b in elsewhere)
    named = Counter(landlord.name for landlord in world.landlords)
    namesakes = [
        landlord
        for landlord in world.landlords
        if named[landlord.name] > 1 and ("landlord", landlord.id) not in paired
    ]
    assert namesakes
    for namesake in namesakes:
        same_name = [
            other
            for other in world.landlords
            if other.name == namesake.name and other.id != namesake.id
        ]
        assert all(other.business_number != namesake.business_number for other in same_name)


def test_leap_names_some_owners_by_their_record_at_the_other_provider(world_of: Sandbox) -> None:
    world = world_of.world
    buildings = {b.id: b for b in world.buildings}
    other_record = [
        r
        for r in world.relationships
        if r.role == "OWNER" and r.party_id != buildings[r.building_id].landlord_id
    ]

    assert other_record
    party = {frozenset((a, b)) for kind, a, b in world.same_as if kind == "landlord"}
    assert all(
        frozenset((r.party_id, buildings[r.building_id].landlord_id)) in party for r in other_record
    )


def test_the_truth_names_records_the_providers_show(world_of: Sandbox) -> None:
    world = world_of.world
    found = truth(world)
    shown = set(world.references.values())

    assert set(found) <= {"landlord", "building", "unit", "tenant", "relationship"}
    for kind, groups in found.items():
        for group in groups:
            assert len(group) >= 2
            if kind == "relationship":
                derived = {ref for ref in group if ":owner:" in ref or ":occupier:" in ref}
                assert derived and all(ref.startswith("leap:") for ref in group - derived)
            else:
                assert group <= shown
                assert len({ref.partition(":")[0] for ref in group}) == len(group)
