"""One deterministic world of landlords, buildings, units and tenants.

Every sandbox provider serves its own slice of the same world, in its own
format. A record lives at one provider: a landlord, its buildings, their units
and their tenants are all at the landlord's home, as they would be at real
providers, each of which manages its own customers. What providers share is
said, never implied: LEAP records roles on other providers' buildings, naming
them by their `extid`, and a landlord that is a customer of two providers has
a record at each, which `World.same_as` pairs so that a later linking step can
tell. The same seed and sizes always give the same world.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

__all__ = ["BUILDING_PROVIDERS", "HOMES", "LISTING_PROVIDER", "World", "WorldSize", "generate"]

BUILDING_PROVIDERS = ("primmo", "pms", "scom")
"""The providers whose APIs show buildings; `WorldSize.buildings` is shared among them."""
LISTING_PROVIDER = "mycrm"
"""MyCRM's API shows no buildings, only their units as listings: its buildings are its own
slice (`WorldSize.listed_buildings`), apart from the others' thirds."""
HOMES = (*BUILDING_PROVIDERS, LISTING_PROVIDER)
"""Where landlords are customers, in the order they are dealt out."""
_TWIN_EVERY = 3
"""Every third landlord is a customer of the next home too, with a record there."""
_FORMER_RATE = 0.35
"""How often a unit had a tenant before its present one (or before it fell vacant)."""

_STREETS = [
    "des Pins",
    "Laurier",
    "du Chevreau",
    "Iberville",
    "Saint-Jean",
    "des Érables",
    "Cartier",
    "de l'Église",
    "Sherbrooke",
    "Maisonneuve",
    "des Chênes",
    "Papineau",
    "Wellington",
    "du Parc",
    "Champlain",
    "Dorchester",
]
_CITIES = ["Québec", "Lévis", "Montréal", "Laval", "Gatineau", "Sherbrooke", "Trois-Rivières"]
_BUILDING_STYLES = [
    "Les Jardins {street}",
    "Résidence {street}",
    "Le Château {street}",
    "Manoir {street}",
    "Place {street}",
    "Les Cours {street}",
    "L'Habitat {street}",
]
_FIRST = [
    "Guy",
    "Marie",
    "Louis",
    "Chloé",
    "Jean",
    "Sophie",
    "Éric",
    "Julie",
    "Marc",
    "Nadia",
    "Paul",
    "Isabelle",
    "Luc",
    "Anne",
    "Olivier",
    "Camille",
]
_LAST = [
    "Cyr",
    "Tremblay",
    "Gagnon",
    "Roy",
    "Côté",
    "Bouchard",
    "Gauthier",
    "Morin",
    "O'Neil",
    "Lavoie",
    "Fortin",
    "Gagné",
    "Ouellet",
    "D'Amours",
    "Pelletier",
    "Bélanger",
]
_COMPANIES = [
    "Gestion {last}",
    "Immeubles {last}",
    "Placements {last}",
    "Habitations {last}",
    "Groupe {last}",
]
_COMPANY_TYPES = ["INC", "LLC", "PARTNERSHIP", "SOLE_PROPRIETOR"]
_HOUSING_TYPES = ["APARTMENT", "CONDO", "TOWNHOUSE", "STUDIO", None]
_LANDLORD_STATUSES = ["ACTIVE", "ACTIVE", "VERIFIED", "PENDING"]


@dataclass(frozen=True)
class WorldSize:
    landlords: int = 20
    """Landlords (parties), dealt out over `HOMES`; a provider dealt none has no buildings."""
    buildings: int = 60
    units_per_building: tuple[int, int] = (1, 8)
    occupancy_rate: float = 0.7
    listed_buildings: int = 20


@dataclass(frozen=True)
class Landlord:
    id: int
    provider: str
    name: str
    company_no: int
    division_no: int
    company_type: str
    business_number: str
    status: str
    street: str
    city: str
    postal_code: str


@dataclass(frozen=True)
class Building:
    id: int
    landlord_id: int
    provider: str
    code: str
    name: str
    street: str
    city: str
    postal_code: str


@dataclass(frozen=True)
class Unit:
    id: int
    building_id: int
    code: str
    rooms: float
    housing_type: str | None


@dataclass(frozen=True)
class Lease:
    unit_id: int
    start: date
    end: date
    monthly_rent: int

    def covers(self, day: date) -> bool:
        return self.start <= day <= self.end


@dataclass(frozen=True)
class Tenant:
    id: int
    unit_id: int
    first_name: str
    last_name: str
    email: str
    phone: str
    tenant_no: int
    tenant_type: str
    lease: Lease


@dataclass
class Relationship:
    """A party's role on a property over time, as LEAP records it; ended, never removed."""

    id: int
    building_id: int
    party: str
    """"tenant" or "landlord"."""
    party_id: int
    role: str
    start: date
    end: date | None = None


@dataclass
class World:
    today: date
    landlords: list[Landlord] = field(default_factory=list)
    buildings: list[Building] = field(default_factory=list)
    units: list[Unit] = field(default_factory=list)
    tenants: list[Tenant] = field(default_factory=list)
    """Present and former tenants: a unit's former ones hold leases that ended."""
    relationships: list[Relationship] = field(default_factory=list)
    same_as: list[tuple[str, int, int]] = field(default_factory=list)
    """(kind, world id, world id): two records, at two providers, of one thing (a landlord
    that is a customer of both). The gateway does not link them yet; this says who they are,
    with `references`, for when it does."""
    references: dict[tuple[str, int], str] = field(default_factory=dict)
    """(kind, world id) -> how the gateway refers to that record at its home provider,
    "<provider>:<source id>"; each provider's sandbox module fills in its own."""
    next_id: int = 1
    _units_by_building: dict[int, list[Unit]] = field(default_factory=dict, repr=False)
    _tenants_by_unit: dict[int, list[Tenant]] = field(default_factory=dict, repr=False)
    _namesakes: Counter[str] = field(default_factory=Counter, repr=False)
    _numbers: set[str] = field(default_factory=set, repr=False)
    _phones: int = field(default=0, repr=False)
    """Units and tenants are looked up per building and per unit while the providers' tables
    are built and for every unit of a listing; scanning the whole world for each made a
    30,000-unit world take minutes to build."""

    def add_unit(self, unit: Unit) -> None:
        self.units.append(unit)
        self._units_by_building.setdefault(unit.building_id, []).append(unit)

    def add_tenant(self, tenant: Tenant) -> None:
        self.tenants.append(tenant)
        self._tenants_by_unit.setdefault(tenant.unit_id, []).append(tenant)

    def email_of(self, first: str, last: str) -> str:
        """A person's own address: namesakes are told apart by a number, as mail providers
        make them, so an address names one person (what the linking rules rely on)."""
        local = f"{first}.{last}".lower().replace("'", "")
        self._namesakes[local] += 1
        number = self._namesakes[local]
        return f"{local}{number if number > 1 else ''}@example.com"

    def phone_of(self, line: int) -> str:
        """A person's own number, from a drawn line (0 to 9,999): the next free line after it
        if taken. Every 5,000 people move to the next exchange, which keeps each at most half
        full, so a free line is always near."""
        exchange = 555 + self._phones // 5_000
        while (number := f"+1-418-{exchange}-{line:04d}") in self._numbers:
            line = (line + 1) % 10_000
        self._numbers.add(number)
        self._phones += 1
        return number

    def units_in(self, building_id: int) -> list[Unit]:
        return self._units_by_building.get(building_id, [])

    def tenants_of(self, unit_id: int) -> list[Tenant]:
        """Present and former: a provider that cannot tell them apart shows `occupants_of`."""
        return self._tenants_by_unit.get(unit_id, [])

    def occupants_of(self, unit_id: int) -> list[Tenant]:
        return [t for t in self.tenants_of(unit_id) if self.is_current(t)]

    def is_current(self, tenant: Tenant) -> bool:
        return tenant.lease.covers(self.today)

    def new_id(self) -> int:
        """Ids are unique across the whole world, so a test can never match by accident."""
        value = self.next_id
        self.next_id += 1
        return value

    def buildings_of(self, provider: str) -> list[Building]:
        return [b for b in self.buildings if b.provider == provider]

    def landlords_of(self, provider: str) -> list[Landlord]:
        return [landlord for landlord in self.landlords if landlord.provider == provider]

    def leases_of(self, unit_id: int) -> list[Lease]:
        return list(dict.fromkeys(t.lease for t in self.tenants_of(unit_id)))

    def current_lease(self, unit_id: int) -> Lease | None:
        return next((lease for lease in self.leases_of(unit_id) if lease.covers(self.today)), None)

    def is_free(self, unit_id: int, start: date, end: date) -> bool:
        return all(lease.end < start or lease.start > end for lease in self.leases_of(unit_id))

    def is_occupied(self, unit_id: int) -> bool:
        return self.current_lease(unit_id) is not None

    def move_in(
        self,
        unit_id: int,
        first_name: str,
        last_name: str,
        *,
        email: str = "",
        phone: str = "",
        tenant_type: str = "D",
        monthly_rent: int = 0,
    ) -> Tenant:
        """A tenant a provider's API adds: onto the unit's present lease, as a co-tenant, or
        on a new year's lease from today, so the unit never holds two leases at once."""
        lease = self.current_lease(unit_id) or Lease(
            unit_id, self.today, self.today + timedelta(days=364), monthly_rent
        )
        tenant = Tenant(
            id=self.new_id(),
            unit_id=unit_id,
            first_name=first_name,
            last_name=last_name,
            email=email,
            phone=phone,
            tenant_no=len(self.tenants) + 1,
            tenant_type=tenant_type,
            lease=lease,
        )
        self.add_tenant(tenant)
        return tenant

    def amend_lease(self, old: Lease, new: Lease) -> None:
        """A lease whose terms a provider's API changed (an earlier end): every tenant who
        signed it holds the new terms, so occupancy and availability follow."""
        for index, tenant in enumerate(self.tenants):
            if tenant.lease == old:
                self.tenants[index] = replace(tenant, lease=new)
        for unit_tenants in self._tenants_by_unit.values():
            for index, tenant in enumerate(unit_tenants):
                if tenant.lease == old:
                    unit_tenants[index] = replace(tenant, lease=new)


def _postal_code(rng: random.Random) -> str:
    letters = "ABCEGHJKLMNPRSTVXY"
    return (
        f"{rng.choice('GHJ')}{rng.randint(0, 9)}{rng.choice(letters)} "
        f"{rng.randint(0, 9)}{rng.choice(letters)}{rng.randint(0, 9)}"
    )


def generate(seed: int = 7, size: WorldSize | None = None, today: date | None = None) -> World:
    size = size or WorldSize()
    rng = random.Random(seed)
    world = World(today=today or date(2026, 11, 1))
    _deal_landlords(world, rng, size.landlords)
    owners = {home: world.landlords_of(home) for home in HOMES}
    shown = [provider for provider in BUILDING_PROVIDERS if owners[provider]]
    homes = [shown[index % len(shown)] for index in range(size.buildings if shown else 0)]
    homes += [LISTING_PROVIDER] * (size.listed_buildings if owners[LISTING_PROVIDER] else 0)
    codes: set[str] = set()
    dealt = dict.fromkeys(HOMES, 0)
    for provider in homes:
        landlords = owners[provider]
        landlord = landlords[dealt[provider] % len(landlords)]
        dealt[provider] += 1
        building = _building(world, rng, provider, landlord.id, codes)
        low, high = size.units_per_building
        for floor_index in range(rng.randint(low, high)):
            unit = Unit(
                id=world.new_id(),
                building_id=building.id,
                code=str(100 * (floor_index // 4 + 1) + floor_index % 4 + 1),
                rooms=rng.choice([1.5, 2.5, 3.5, 4.5, 5.5, 6.5]),
                housing_type=rng.choice(_HOUSING_TYPES),
            )
            world.add_unit(unit)
            _occupy(world, rng, unit, size.occupancy_rate)
    _relate(world, rng)
    return world


def _deal_landlords(world: World, rng: random.Random, parties: int) -> None:
    """Each party is a customer of one home; every third of the next one too (a twin record,
    paired in `same_as`). Company and division numbers are per record: Primmo keys by them."""
    for index in range(parties):
        last = _LAST[index % len(_LAST)]
        party = {
            "name": rng.choice(_COMPANIES).format(last=last),
            "company_type": rng.choice(_COMPANY_TYPES),
            "business_number": f"{rng.randint(100_000_000, 999_999_999)}",
            "status": rng.choice(_LANDLORD_STATUSES),
            "street": f"{rng.randint(10, 9999)} rue {rng.choice(_STREETS)}",
            "city": rng.choice(_CITIES),
            "postal_code": _postal_code(rng),
        }
        homes = [HOMES[index % len(HOMES)]]
        if index % _TWIN_EVERY == _TWIN_EVERY - 1:
            homes.append(HOMES[(index + 1) % len(HOMES)])
        records = []
        for home in homes:
            number = len(world.landlords)
            record = Landlord(
                id=world.new_id(),
                provider=home,
                company_no=number // 2 + 1,
                division_no=number % 2 + 1,
                **party,
            )
            world.landlords.append(record)
            records.append(record)
        world.same_as.extend(("landlord", records[0].id, twin.id) for twin in records[1:])


def _building(
    world: World, rng: random.Random, provider: str, landlord_id: int, codes: set[str]
) -> Building:
    street = rng.choice(_STREETS)
    number = rng.randint(10, 2999)
    letters = "".join(ch for ch in street if ch.isalpha())
    code = f"{number}{letters[-5:].upper()}"
    attempt = len(codes)
    while code in codes:
        code = f"{code[:8]}{attempt % 100:02d}"
        attempt += 1
    codes.add(code)
    building = Building(
        id=world.new_id(),
        landlord_id=landlord_id,
        provider=provider,
        code=code,
        name=rng.choice(_BUILDING_STYLES).format(street=street),
        street=f"{number} rue {street}",
        city=rng.choice(_CITIES),
        postal_code=_postal_code(rng),
    )
    world.buildings.append(building)
    return building


def _relate(world: World, rng: random.Random) -> None:
    """Every building has its owner on record; most tenants, present and former, are on
    record as occupiers, a former one's record ended when its lease did."""
    number = 10_000_001
    units = {unit.id: unit for unit in world.units}
    for building in world.buildings:
        world.relationships.append(
            Relationship(
                number,
                building.id,
                "landlord",
                building.landlord_id,
                "OWNER",
                date(2015, 1, 1) + timedelta(days=building.id % 1500),
            )
        )
        number += 1
    for tenant in world.tenants:
        if rng.random() < 0.6:
            ended = tenant.lease.end < world.today
            world.relationships.append(
                Relationship(
                    number,
                    units[tenant.unit_id].building_id,
                    "tenant",
                    tenant.id,
                    "OCCUPIER",
                    tenant.lease.start,
                    tenant.lease.end if ended else None,
                )
            )
            number += 1


def _occupy(world: World, rng: random.Random, unit: Unit, rate: float) -> None:
    """A unit's history: perhaps a lease running today, perhaps one that ended before it
    (or before today, for a unit now vacant); never two at once."""
    today = world.today
    present = None
    if rng.random() < rate:
        length = 365 * rng.randint(1, 3) - 1
        start = today - timedelta(days=rng.randint(0, min(700, length)))
        present = Lease(unit.id, start, start + timedelta(days=length), _rent(rng))
    if rng.random() < _FORMER_RATE:
        end = (present.start if present else today) - timedelta(days=rng.randint(1, 120))
        start = end - timedelta(days=365 * rng.randint(1, 2) - 1)
        _sign(world, rng, Lease(unit.id, start, end, _rent(rng)))
    if present is not None:
        _sign(world, rng, present)


def _rent(rng: random.Random) -> int:
    return rng.randrange(700, 2600, 25)


def _sign(world: World, rng: random.Random, lease: Lease) -> None:
    """One or two people on a lease."""
    for _ in range(rng.choice([1, 1, 2])):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        world.add_tenant(
            Tenant(
                id=world.new_id(),
                unit_id=lease.unit_id,
                first_name=first,
                last_name=last,
                email=world.email_of(first, last),
                phone=world.phone_of(rng.randint(0, 9999)),
                tenant_no=len(world.tenants) + 1,
                tenant_type=rng.choice(["D", "D", "C"]),
                lease=lease,
            )
        )
