"""The sandbox world does not contradict itself, whatever its seed and size.

A record lives at one provider, unless the world pairs two records as one thing
(`same_as`); a unit is occupied exactly when a lease runs today, and every
provider shows that the same way: Primmo lists only present tenants, pms tells
former ones by their status, MyCRM lists a unit as rented, LEAP ends a former
tenant's occupancy and names every party as its home provider does (an owner,
sometimes, by the landlord's record at its other provider).
"""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest

from gateway.connectors.leap import ExtidForm
from gateway.sandbox import Sandbox
from gateway.sandbox.data import BUILDING_PROVIDERS, HOMES, WorldSize
from gateway.sandbox.leap import LEGACY_FORM, account_number, extid_of

SEEDS = range(1, 6)
SIZES = {
    "tiny": WorldSize(landlords=2, buildings=5, units_per_building=(0, 3), listed_buildings=2),
    "default": WorldSize(),
    "crowded": WorldSize(
        landlords=31, buildings=150, units_per_building=(2, 10), occupancy_rate=0.9
    ),
}
CASES = [(seed, name) for seed in SEEDS for name in SIZES]


@pytest.fixture(scope="module", params=CASES, ids=[f"seed{seed}-{name}" for seed, name in CASES])
def seeded(request: pytest.FixtureRequest) -> Sandbox:
    """Read only by these tests: one sandbox per case serves them all."""
    seed, name = request.param
    return Sandbox(seed=seed, size=SIZES[name])


def test_every_record_lives_at_one_provider_its_owner_is_a_customer_of(seeded: Sandbox) -> None:
    world = seeded.world
    landlords = {landlord.id: landlord for landlord in world.landlords}

    assert {landlord.provider for landlord in world.landlords} <= set(HOMES)
    for building in world.buildings:
        assert landlords[building.landlord_id].provider == building.provider
    buildings = {building.id: building for building in world.buildings}
    units = {unit.id: unit for unit in world.units}
    tenants = {tenant.id: tenant.unit_id for tenant in world.tenants}
    homes = {
        "landlord": lambda identifier: landlords[identifier].provider,
        "building": lambda identifier: buildings[identifier].provider,
        "unit": lambda identifier: buildings[units[identifier].building_id].provider,
        "tenant": lambda identifier: buildings[units[tenants[identifier]].building_id].provider,
    }
    assert all(count == 1 for count in Counter(world.references.values()).values())
    for (kind, identifier), reference in world.references.items():
        assert reference.startswith(f"{homes[kind](identifier)}:"), (kind, identifier)


def test_the_same_party_at_two_providers_is_paired_and_nothing_else_is(seeded: Sandbox) -> None:
    world = seeded.world
    landlords = {landlord.id: landlord for landlord in world.landlords}
    paired = {
        frozenset((first, second)) for kind, first, second in world.same_as if kind == "landlord"
    }

    alike: dict[tuple[str, str], list[int]] = {}
    for landlord in world.landlords:
        alike.setdefault((landlord.name, landlord.business_number), []).append(landlord.id)
    twins = {frozenset(ids) for ids in alike.values() if len(ids) > 1}

    assert {kind for kind, _, _ in world.same_as} <= {"landlord", "building", "unit", "tenant"}
    assert paired == twins
    for pair in paired:
        first, second = (landlords[identifier] for identifier in pair)
        assert first.provider != second.provider
        assert all(("landlord", identifier) in world.references for identifier in pair)


def test_a_unit_is_occupied_exactly_when_one_lease_runs_today(seeded: Sandbox) -> None:
    world = seeded.world
    for unit in world.units:
        leases = sorted(world.leases_of(unit.id), key=lambda lease: lease.start)
        assert all(lease.unit_id == unit.id for lease in leases)
        for earlier, later in zip(leases, leases[1:], strict=False):
            assert earlier.end < later.start, unit
        running = [lease for lease in leases if lease.covers(world.today)]
        assert len(running) == int(world.is_occupied(unit.id))
        assert all(lease.start <= world.today for lease in leases)
        occupants = world.occupants_of(unit.id)
        assert bool(occupants) == world.is_occupied(unit.id)


def test_primmo_lists_present_tenants_only_and_their_units_occupied(seeded: Sandbox) -> None:
    world = seeded.world
    tables = seeded.states["primmo"].records
    listed = Counter(row["UnitCode"] + row["BuildingCode"] for row in tables.tenants)

    assert {row["Id"] for row in tables.divisions} == {
        landlord.id for landlord in world.landlords_of("primmo")
    }
    for row in tables.units:
        occupied = world.is_occupied(row["Id"])
        assert row["OccupancyStatus"] == ("L " if occupied else "V ")
        assert bool(listed[row["UnitCode"] + row["BuildingCode"]]) == occupied
    assert len(tables.tenants) == sum(
        len(world.occupants_of(unit.id))
        for building in world.buildings_of("primmo")
        for unit in world.units_in(building.id)
    )


def test_pms_tells_former_tenants_by_their_status(seeded: Sandbox) -> None:
    world = seeded.world
    tables = seeded.states["pms"].records

    assert {row["id"] for row in tables.organizations} == {
        f"org_{landlord.id}" for landlord in world.landlords_of("pms")
    }
    for property_id, units in tables.units.items():
        active = Counter(
            row["unit_id"] for row in tables.tenants[property_id] if row["status"] == "active"
        )
        for unit in units:
            assert (unit["status"] == "occupied") == bool(active[unit["id"]]), unit
    for rows in tables.tenants.values():
        for row in rows:
            lease = tables.leases[row["id"]]
            ended = date.fromisoformat(lease["end_date"]) < world.today
            assert (row["status"] == "past") == ended == (lease["status"] == "past")


def test_mycrm_lists_its_own_landlords_units_rented_or_available(seeded: Sandbox) -> None:
    world = seeded.world
    tables = seeded.states["mycrm"].records
    mine = {landlord.id for landlord in world.landlords_of("mycrm")}

    assert {row["id"] for row in tables.landlords} == mine
    assert {row["id"] for row in tables.properties} == {
        unit.id for building in world.buildings_of("mycrm") for unit in world.units_in(building.id)
    }
    for row in tables.properties:
        assert row["landlord"] in mine
        assert (row["status"] == "rented") == world.is_occupied(row["id"])
        assert (row["status"] == "available") == (row["available_from"] <= str(world.today))


def test_scom_holds_its_own_landlords_and_their_properties(seeded: Sandbox) -> None:
    world = seeded.world
    landlords = seeded.states["scom"].records

    assert set(landlords) == {str(landlord.id) for landlord in world.landlords_of("scom")}
    assert sorted(p["id"] for one in landlords.values() for p in one.properties) == sorted(
        f"sp_{building.id}" for building in world.buildings_of("scom")
    )


def test_leap_names_every_party_as_its_home_does(seeded: Sandbox) -> None:
    world = seeded.world
    store = seeded.states["leap"].records
    tenants = {tenant.id: tenant for tenant in world.tenants}
    buildings = {building.id: building for building in world.buildings}
    party_of = {landlord.id: {landlord.id} for landlord in world.landlords}
    for kind, first, second in world.same_as:
        if kind == "landlord":
            party_of[first].add(second)
            party_of[second].add(first)

    assert len(store.relationships) == len(world.relationships)
    for record in world.relationships:
        relationship = store.relationships[str(record.id)]
        account = relationship.account
        assert account.identifier == account_number(record.party, record.party_id)
        assert account.extid == world.references.get((record.party, record.party_id))
        building = buildings[record.building_id]
        assert relationship.property.extid == extid_of(world, "building", building.id)
        assert _named(relationship.property.extid) == world.references.get(
            ("building", building.id)
        )
        assert (relationship.property.extid is None) == (
            building.provider not in BUILDING_PROVIDERS
        )
        if record.role == "OWNER":
            assert record.party_id in party_of[building.landlord_id]
            assert account.extid is not None
        else:
            tenant = tenants[record.party_id]
            assert (relationship.end is None) == world.is_current(tenant)


def _named(extid: str | None) -> str | None:
    """The reference an `extid` names, read as the sandbox's gateways are configured to."""
    legacy = ExtidForm(**LEGACY_FORM).pattern().fullmatch(extid or "")
    return LEGACY_FORM["reference"].format(**legacy.groupdict()) if legacy else extid


def test_maintenance_is_about_the_providers_own_units_and_who_lived_there(
    seeded: Sandbox,
) -> None:
    """pms and Primmo keep maintenance: a request is about a unit of theirs, reported by the
    tenant whose lease covered that day (if any), assigned exactly when it left OPEN, done
    after it was reported; a work order answers a request no longer OPEN, done with it."""
    world = seeded.world
    tenants = {tenant.id: tenant for tenant in world.tenants}
    for provider in ("pms", "primmo"):
        books = seeded.states[provider].records.workshop
        units = {u.id: u for b in world.buildings_of(provider) for u in world.units_in(b.id)}
        for ticket in books.requests.values():
            assert units[ticket.unit_id].building_id == ticket.building_id
            assert ticket.reported.date() <= world.today
            if ticket.tenant_id is not None:
                tenant = tenants[ticket.tenant_id]
                assert tenant.unit_id == ticket.unit_id
                assert tenant.lease.covers(ticket.reported.date())
            assert (ticket.vendor_id is None) == (ticket.status == "open")
            assert (ticket.completed is not None) == (ticket.status == "completed")
            assert ticket.completed is None or ticket.completed > ticket.reported
        for job in books.jobs.values():
            ticket = books.requests[job.request_id]
            assert job.vendor_id in books.vendors and ticket.status != "open"
            assert (job.status == "completed") == (ticket.status == "completed")
            assert job.started is None or job.started > ticket.reported


def test_mycrm_listings_are_shown_by_its_agents_at_a_price(seeded: Sandbox) -> None:
    tables = seeded.states["mycrm"].records
    agents = {user["id"] for user in tables.users if user["role"] == "agent"}

    for row in tables.properties:
        assert row["agent"] in agents
        assert row["currency"] == "CAD" and row["price"] > 0
        assert 0 <= row["bedrooms"] < row["rooms"]
