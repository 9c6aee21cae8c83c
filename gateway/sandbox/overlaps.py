"""The overlaps real data has: one building, unit or person recorded at two providers, written
two ways; and near-duplicates that are not one thing.

A landlord that is a customer of two providers (`World.same_as` pairs its two records)
often has some of its buildings at both: a Primmo building is advertised in MyCRM (its
units as listings), a pms property is also in SCOM's property list, a building moving
from Primmo to pms is in both for a while, with its units and tenants. Each twin is its
own record at its provider, spelled as that provider's clerks spell it (`"1234, RUE DES
ERABLES"`, `"r."` for `"rue"`, no accents, postal codes without their space), and the
world pairs each twin with its original in `same_as`, which is the truth the linking
rules are scored against. LEAP, which names every building's owner, sometimes names it
by the landlord's record at the other provider.

Beside them, what must not be linked: a building a few doors down the same street, a
building at the same number and street in another city, and a company with the same
name but another business number and address. A few twin tenants changed their last
name at one provider (the rules cannot know, and miss them: the truth says so).

The module draws from its own random stream, after `generate`, so the rest of the world
is what it was without it.
"""

from __future__ import annotations

import math
import random
import unicodedata
from collections.abc import Callable
from dataclasses import replace

from gateway.sandbox.data import (
    BUILDING_PROVIDERS,
    LISTING_PROVIDER,
    Building,
    Landlord,
    Lease,
    Tenant,
    Unit,
    World,
)
from gateway.state.links import connected

__all__ = ["overlap", "truth"]

_TWIN_SHARE = 0.5
"""Of a two-provider landlord's buildings (at its first home), the share also at the other,"""
_TWINS_AT_MOST = 3
"""... and at most this many: some buildings, whatever the world's size."""
_RENAMED = 0.03
"""Twin tenants known by another last name at one of their two providers."""
_ABBREVIATED = {"rue": "r.", "Saint": "St", "boulevard": "boul.", "avenue": "av."}


def overlap(world: World, seed: int) -> World:
    rng = random.Random(f"overlaps:{seed}")
    generated = world.next_id
    landlords = {landlord.id: landlord for landlord in world.landlords}
    pairs = [(first, second) for kind, first, second in world.same_as if kind == "landlord"]
    for index, (first, second) in enumerate(pairs):
        one, other = landlords[first], landlords[second]
        if one.provider not in BUILDING_PROVIDERS:
            one, other = other, one
        if one.provider not in BUILDING_PROVIDERS:
            continue
        originals = [
            building
            for building in world.buildings_of(one.provider)
            if building.landlord_id == one.id and building.id < generated
        ]
        count = min(_TWINS_AT_MOST, math.ceil(len(originals) * _TWIN_SHARE))
        chosen = rng.sample(originals, count)
        for building in chosen:
            _twin_building(world, rng, building, other)
        if chosen:
            _owned_as(world, chosen[0], other)
            _neighbours(world, rng, chosen[0], {one.id, other.id})
        if index % 2 == 0:
            _namesake(world, rng, one, {one.provider, other.provider})
    return world


def _owned_as(world: World, building: Building, owner: Landlord) -> None:
    """LEAP names the building's owner by its record at its other provider."""
    for record in world.relationships:
        if record.building_id == building.id and record.role == "OWNER":
            record.party_id = owner.id


def _unaccented(text: str) -> str:
    return "".join(
        ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch)
    )


def _plain(text: str) -> str:
    return _unaccented(text).casefold()


def _spelled(rng: random.Random, text: str) -> str:
    """How another provider's clerk writes the same words."""
    style = rng.randrange(4)
    if style == 0:
        return text.upper()
    if style == 1:
        return _unaccented(text)
    if style == 2:
        words = text.split(" ")
        return " ".join(_ABBREVIATED.get(word, word) for word in words).replace("Saint-", "St-")
    return text


def _street(rng: random.Random, street: str) -> str:
    civic, _, rest = street.partition(" ")
    written = _spelled(rng, rest)
    return f"{civic}, {written}" if rng.random() < 0.3 else f"{civic} {written}"


def _postal(rng: random.Random, code: str) -> str:
    return rng.choice([code, code.replace(" ", ""), code.lower()])


def _twin_building(world: World, rng: random.Random, building: Building, owner: Landlord) -> None:
    twin = Building(
        id=world.new_id(),
        landlord_id=owner.id,
        provider=owner.provider,
        code=f"{building.code}T",
        name=rng.choice([building.name, building.name.upper()]),
        street=_street(rng, building.street),
        city=_spelled(rng, building.city),
        postal_code=_postal(rng, building.postal_code),
    )
    world.buildings.append(twin)
    world.same_as.append(("building", building.id, twin.id))
    leases: dict[Lease, Lease] = {}
    for unit in world.units_in(building.id):
        copy = Unit(world.new_id(), twin.id, unit.code, unit.rooms, unit.housing_type)
        world.add_unit(copy)
        world.same_as.append(("unit", unit.id, copy.id))
        for tenant in world.tenants_of(unit.id):
            lease = leases.setdefault(tenant.lease, replace(tenant.lease, unit_id=copy.id))
            last = tenant.last_name
            if rng.random() < _RENAMED:
                last = rng.choice([name for name in _SURNAMES if name != last])
            person = Tenant(
                id=world.new_id(),
                unit_id=copy.id,
                first_name=tenant.first_name,
                last_name=last,
                email=tenant.email,
                phone=_phone(tenant.phone),
                tenant_no=len(world.tenants) + 1,
                tenant_type=tenant.tenant_type,
                lease=lease,
            )
            world.add_tenant(person)
            world.same_as.append(("tenant", tenant.id, person.id))


_SURNAMES = ["Lapointe", "Girard", "Beaulieu", "Caron", "Poirier"]
"""Names a tenant took at one provider and not the other."""


def _phone(number: str) -> str:
    """`+1-418-555-0123` as another clerk types it: `(418) 555-0123`."""
    digits = "".join(ch for ch in number if ch.isdigit())[-10:]
    return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}" if len(digits) == 10 else number


def _neighbours(world: World, rng: random.Random, building: Building, party: set[int]) -> None:
    """A building a few doors down the same street, and one at the same address in another
    city, each at another provider than `building`'s, owned by someone else; their units
    have the same numbers as `building`'s, and are vacant."""
    civic, _, rest = building.street.partition(" ")
    taken = {(_plain(b.street), _plain(b.city)) for b in world.buildings}
    cities = sorted(
        {b.city for b in world.buildings if (_plain(building.street), _plain(b.city)) not in taken}
    ) or ["Lévis"]
    for street, city in (
        (f"{int(civic) + rng.choice([2, 4, 6])} {rest}", building.city),
        (building.street, rng.choice(cities)),
    ):
        homes = [p for p in BUILDING_PROVIDERS if p != building.provider]
        owners = [
            landlord
            for home in homes
            for landlord in world.landlords_of(home)
            if landlord.id not in party
        ]
        if not owners:
            return
        owner = rng.choice(owners)
        identifier = world.new_id()
        world.buildings.append(
            Building(
                id=identifier,
                landlord_id=owner.id,
                provider=owner.provider,
                code=f"NB{identifier:07d}",
                name=f"{building.name} II",
                street=street,
                city=city,
                postal_code=building.postal_code if city == building.city else "J0A 1B0",
            )
        )
        for unit in world.units_in(building.id):
            world.add_unit(Unit(world.new_id(), identifier, unit.code, unit.rooms, None))


def _namesake(world: World, rng: random.Random, landlord: Landlord, homes: set[str]) -> None:
    """Another company with the same name: another business number, elsewhere."""
    others = [p for p in (*BUILDING_PROVIDERS, LISTING_PROVIDER) if p not in homes]
    if not others:
        return
    number = len(world.landlords)
    world.landlords.append(
        replace(
            landlord,
            id=world.new_id(),
            provider=rng.choice(others),
            company_no=number // 2 + 1,
            division_no=number % 2 + 1,
            business_number=f"{rng.randint(100_000_000, 999_999_999)}",
            street=f"{rng.randint(10, 9999)} rue {landlord.street.split(' rue ')[-1]}",
            postal_code="J0A 1B0",
        )
    )


def truth(world: World) -> dict[str, list[frozenset[str]]]:
    """What is one thing, by kind, as groups of the gateway's references: the records the
    world pairs, both shown by their providers. Relationships are one fact when LEAP's
    record and the one the gateway derives (a building's owner, a tenant's occupancy)
    name the same party and place."""
    pairs: dict[str, list[tuple[str, str]]] = {}
    for kind, first, second in world.same_as:
        one, two = world.references.get((kind, first)), world.references.get((kind, second))
        if one and two:
            pairs.setdefault(kind, []).append((one, two))
    twin_of = _twins(world)
    buildings = {b.id: b for b in world.buildings}
    facts: dict[tuple[str, int, int], set[str]] = {}
    for building in buildings.values():
        ref = world.references.get(("building", building.id))
        if ref:
            fact = (
                "OWNER",
                twin_of("building", building.id),
                twin_of("landlord", building.landlord_id),
            )
            facts.setdefault(fact, set()).add(_derived(ref, "owner"))
    for tenant in world.tenants:
        ref = world.references.get(("tenant", tenant.id))
        if ref:
            fact = ("OCCUPIER", twin_of("tenant", tenant.id), 0)
            facts.setdefault(fact, set()).add(_derived(ref, "occupier"))
    for record in world.relationships:
        if record.role == "OWNER":
            fact = (
                "OWNER",
                twin_of("building", record.building_id),
                twin_of("landlord", record.party_id),
            )
        else:
            fact = ("OCCUPIER", twin_of("tenant", record.party_id), 0)
        if fact in facts and world.references.get((record.party, record.party_id)):
            facts[fact].add(f"leap:{record.id}")
    pairs["relationship"] = [
        (first, second)
        for refs in facts.values()
        for first, second in zip(sorted(refs), sorted(refs)[1:], strict=False)
    ]
    return {kind: _grouped(found) for kind, found in pairs.items()}


def _derived(ref: str, role: str) -> str:
    provider, _, source = ref.partition(":")
    return f"{provider}:{role}:{source}"


def _twins(world: World) -> Callable[[str, int], int]:
    """Each record's first twin's id (itself when it has none): one id per thing."""
    first: dict[tuple[str, int], int] = {}
    for kind, one, two in world.same_as:
        root = first.get((kind, one), one)
        first[(kind, one)] = root
        first[(kind, two)] = root
    return lambda kind, identifier: first.get((kind, identifier), identifier)


def _grouped(pairs: list[tuple[str, str]]) -> list[frozenset[str]]:
    return [frozenset(group) for group in connected(pairs) if len(group) > 1]
