"""One deterministic world of landlords, buildings, units and tenants.

Every sandbox provider serves its own slice of the same world, in its own
format, so records cross-reference the way they do between real providers
(a building in Primmo and its relationship in LEAP, a landlord in SCOM and in
MyCRM). The same seed and sizes always give the same world.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta

__all__ = ["BUILDING_PROVIDERS", "World", "WorldSize", "generate"]

BUILDING_PROVIDERS = ("primmo", "pms", "scom")

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
    landlords: int = 8
    buildings: int = 60
    units_per_building: tuple[int, int] = (1, 8)
    occupancy_rate: float = 0.7


@dataclass(frozen=True)
class Landlord:
    id: int
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
    relationships: list[Relationship] = field(default_factory=list)
    references: dict[tuple[str, int], str] = field(default_factory=dict)
    """(kind, world id) -> how the gateway refers to that record at its home provider,
    "<provider>:<source id>"; each provider's sandbox module fills in its own."""
    next_id: int = 1
    _units_by_building: dict[int, list[Unit]] = field(default_factory=dict, repr=False)
    _tenants_by_unit: dict[int, list[Tenant]] = field(default_factory=dict, repr=False)
    """Units and tenants are looked up per building and per unit while the providers' tables
    are built and for every unit of a listing; scanning the whole world for each made a
    30,000-unit world take minutes to build."""

    def add_unit(self, unit: Unit) -> None:
        self.units.append(unit)
        self._units_by_building.setdefault(unit.building_id, []).append(unit)

    def add_tenant(self, tenant: Tenant) -> None:
        self.tenants.append(tenant)
        self._tenants_by_unit.setdefault(tenant.unit_id, []).append(tenant)

    def units_in(self, building_id: int) -> list[Unit]:
        return self._units_by_building.get(building_id, [])

    def tenants_of(self, unit_id: int) -> list[Tenant]:
        return self._tenants_by_unit.get(unit_id, [])

    def new_id(self) -> int:
        """Ids are unique across the whole world, so a test can never match by accident."""
        value = self.next_id
        self.next_id += 1
        return value

    def buildings_of(self, provider: str) -> list[Building]:
        return [b for b in self.buildings if b.provider == provider]

    def leases_of(self, unit_id: int) -> list[Lease]:
        return list({t.lease for t in self.tenants_of(unit_id)})

    def is_free(self, unit_id: int, start: date, end: date) -> bool:
        return all(lease.end < start or lease.start > end for lease in self.leases_of(unit_id))

    def is_occupied(self, unit_id: int) -> bool:
        return not self.is_free(unit_id, self.today, self.today)


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

    for index in range(size.landlords):
        last = _LAST[index % len(_LAST)]
        world.landlords.append(
            Landlord(
                id=world.new_id(),
                name=rng.choice(_COMPANIES).format(last=last),
                company_no=index // 2 + 1,
                division_no=index % 2 + 1,
                company_type=rng.choice(_COMPANY_TYPES),
                business_number=f"{rng.randint(100_000_000, 999_999_999)}",
                status=rng.choice(_LANDLORD_STATUSES),
                street=f"{rng.randint(10, 9999)} rue {rng.choice(_STREETS)}",
                city=rng.choice(_CITIES),
                postal_code=_postal_code(rng),
            )
        )

    codes: set[str] = set()
    for index in range(size.buildings):
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
            landlord_id=world.landlords[index % len(world.landlords)].id if world.landlords else 0,
            provider=BUILDING_PROVIDERS[index % len(BUILDING_PROVIDERS)],
            code=code,
            name=rng.choice(_BUILDING_STYLES).format(street=street),
            street=f"{number} rue {street}",
            city=rng.choice(_CITIES),
            postal_code=_postal_code(rng),
        )
        world.buildings.append(building)
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
            if rng.random() < size.occupancy_rate:
                _lease_unit(world, rng, unit)
    _relate(world, rng)
    return world


def _relate(world: World, rng: random.Random) -> None:
    """Every building has its owner on record; most tenants are on record as occupiers."""
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


def _lease_unit(world: World, rng: random.Random, unit: Unit) -> None:
    start = world.today - timedelta(days=rng.randint(30, 700))
    lease = Lease(
        unit_id=unit.id,
        start=start,
        end=start + timedelta(days=365 * rng.randint(1, 3) - 1),
        monthly_rent=rng.randrange(700, 2600, 25),
    )
    for _ in range(rng.choice([1, 1, 2])):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        world.add_tenant(
            Tenant(
                id=world.new_id(),
                unit_id=unit.id,
                first_name=first,
                last_name=last,
                email=f"{first}.{last}@example.com".lower().replace("'", ""),
                phone=f"+1-418-555-{rng.randint(0, 9999):04d}",
                tenant_no=len(world.tenants) + 1,
                tenant_type=rng.choice(["D", "D", "C"]),
                lease=lease,
            )
        )
