"""The unified types.

Fields resolve straight from the `gateway.model` records, with no copy;
relations go through the request's loaders.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Annotated, Any, TypeVar, cast

import strawberry

from gateway import model
from gateway.errors import ProviderError
from gateway.relationships import occupier, owner
from schema.context import Context
from schema.ids import encode_id
from schema.permissions import requires
from schema.selection import selection_here

__all__ = [
    "Party",
    "Role",
    "Building",
    "Landlord",
    "Lease",
    "Node",
    "Occupancy",
    "Relationship",
    "Tenant",
    "Unit",
]

Info = strawberry.Info[Context, None]
T = TypeVar("T")
Occupancy = model.Occupancy
strawberry.enum(Occupancy, description="Whether a unit is let today.")


async def _one(info: Info, link: model.Relation | None, graphql_type: type[T]) -> T | None:
    selection = selection_here(graphql_type, info)
    return cast(T | None, await info.context.loaders.one(link, selection))


async def _many(info: Info, link: model.Relation | None, graphql_type: type[T]) -> list[T]:
    selection = selection_here(graphql_type, info)
    return cast(list[T], list(await info.context.loaders.many(link, selection)))


@strawberry.interface(description="Any object that can be fetched again by its global id.")
class Node:
    provider: str = strawberry.field(description="The provider the object comes from.")
    source_id: str = strawberry.field(description="The object's id at its provider.")

    @strawberry.field(description="Opaque global id, accepted by `node` and `nodes`.")
    @staticmethod
    def id(root: strawberry.Parent[Any]) -> strawberry.ID:
        return strawberry.ID(encode_id(model.ENTITY_OF[type(root)], root.provider, root.source_id))


@strawberry.type(description="An owner of buildings.")
class Landlord(Node):
    name: str | None
    status: str | None
    company_type: str | None
    billing_address: str | None
    billing_postal_code: str | None
    business_number: str | None

    @classmethod
    def is_type_of(cls, obj: Any, _info: Any) -> bool:
        return isinstance(obj, model.Landlord)

    @strawberry.field(description="The landlord's buildings at the same provider.")
    @staticmethod
    async def buildings(root: strawberry.Parent[model.Landlord], info: Info) -> list[Building]:
        return await _many(info, root.buildings, Building)

    @strawberry.field(description="Ownership of its buildings (derived) and LEAP's records.")
    @staticmethod
    async def relationships(
        root: strawberry.Parent[model.Landlord], info: Info
    ) -> list[Annotated[Relationship, strawberry.lazy("schema.types")]]:
        wants = model.Selection(frozenset({"name"}))
        buildings = await info.context.loaders.many(root.buildings, wants)
        derived = [owner(b) for b in buildings if isinstance(b, model.Building)]
        recorded = await _about(info, "party", root)
        return cast(list[Relationship], [*derived, *recorded])


@strawberry.type(description="A building: an address with units.")
class Building(Node):
    name: str | None
    code: str | None = strawberry.field(description="The provider's building code, trimmed.")
    street: str | None
    city: str | None
    postal_code: str | None

    @classmethod
    def is_type_of(cls, obj: Any, _info: Any) -> bool:
        return isinstance(obj, model.Building)

    @strawberry.field
    @staticmethod
    async def landlord(root: strawberry.Parent[model.Building], info: Info) -> Landlord | None:
        return await _one(info, root.landlord, Landlord)

    @strawberry.field(description="Ownership (derived) and the roles LEAP records on it.")
    @staticmethod
    async def relationships(
        root: strawberry.Parent[model.Building], info: Info
    ) -> list[Annotated[Relationship, strawberry.lazy("schema.types")]]:
        recorded = await _about(info, "building", root)
        derived = [owner(root)] if root.landlord is not None else []
        return cast(list[Relationship], [*derived, *recorded])

    @strawberry.field
    @staticmethod
    async def units(root: strawberry.Parent[model.Building], info: Info) -> list[Unit]:
        return await _many(info, root.units, Unit)


@strawberry.type(description="A rentable unit of a building.")
class Unit(Node):
    code: str | None = strawberry.field(name="unitCode", description="The unit's code, trimmed.")
    rooms: float | None = strawberry.field(description="Number of rooms, as in 4.5.")
    occupancy: Occupancy | None = strawberry.field(
        description="Today's status; use `unitsForRent` for availability over dates."
    )
    housing_type: str | None

    @classmethod
    def is_type_of(cls, obj: Any, _info: Any) -> bool:
        return isinstance(obj, model.Unit)

    @strawberry.field
    @staticmethod
    async def building(root: strawberry.Parent[model.Unit], info: Info) -> Building | None:
        return await _one(info, root.building, Building)

    @strawberry.field
    @staticmethod
    async def tenants(root: strawberry.Parent[model.Unit], info: Info) -> list[Tenant]:
        return await _many(info, root.tenants, Tenant)

    @strawberry.field(description="The unit's owner, where the provider links one.")
    @staticmethod
    async def landlord(root: strawberry.Parent[model.Unit], info: Info) -> Landlord | None:
        return await _one(info, root.landlord, Landlord)


_PERSONAL = requires("tenant:read")


@strawberry.type(description="The terms a tenant rents under.")
class Lease:
    start_date: date | None
    end_date: date | None
    monthly_rent: float | None
    currency: str | None
    status: str | None

    @classmethod
    def is_type_of(cls, obj: Any, _info: Any) -> bool:
        return isinstance(obj, model.Lease)


@strawberry.type(description="A person or company renting a unit.")
class Tenant(Node):
    """Names, contact and lease are personal data: they need the `tenant:read` scope."""

    first_name: str | None = strawberry.field(extensions=_PERSONAL)
    last_name: str | None = strawberry.field(extensions=_PERSONAL)
    tenant_number: str | None
    tenant_type: str | None
    email: str | None = strawberry.field(extensions=_PERSONAL)
    phone: str | None = strawberry.field(extensions=_PERSONAL)

    @classmethod
    def is_type_of(cls, obj: Any, _info: Any) -> bool:
        return isinstance(obj, model.Tenant)

    @strawberry.field
    @staticmethod
    async def unit(root: strawberry.Parent[model.Tenant], info: Info) -> Unit | None:
        return await _one(info, root.unit, Unit)

    @strawberry.field(description="Occupancy, derived from the unit and recorded by LEAP.")
    @staticmethod
    async def relationships(
        root: strawberry.Parent[model.Tenant], info: Info
    ) -> list[Annotated[Relationship, strawberry.lazy("schema.types")]]:
        recorded = await _about(info, "party", root)
        return cast(list[Relationship], [occupier(root), *recorded])

    @strawberry.field(
        description="Where the provider keeps leases (pms); null elsewhere.", extensions=_PERSONAL
    )
    @staticmethod
    async def lease(root: strawberry.Parent[model.Tenant], info: Info) -> Lease | None:
        return await _one(info, root.lease, Lease)


@strawberry.enum(description="What a party is to a property.")
class Role(enum.Enum):
    OWNER = "OWNER"
    OCCUPIER = "OCCUPIER"


Party = Annotated[Tenant | Landlord, strawberry.union("Party", description="Who holds a role.")]


@strawberry.type(
    description="A party's role on a property over time: recorded by a provider (LEAP), or "
    "derived (a tenant occupies its unit, a landlord owns its building)."
)
class Relationship(Node):
    role: str | None = strawberry.field(description="OWNER or OCCUPIER.")
    start_date: date | None
    end_date: date | None = strawberry.field(description="Set once ended; never removed.")
    external_id: str | None
    acknowledged: bool | None = strawberry.field(description="Null for derived relationships.")
    unacked_since: datetime | None
    account_number: str | None = strawberry.field(description="The provider's account number.")
    property_code: str | None = strawberry.field(description="The provider's property code.")
    derived: bool

    @classmethod
    def is_type_of(cls, obj: Any, _info: Any) -> bool:
        return isinstance(obj, model.Relationship)

    @strawberry.field(description="The building, directly or through the unit.")
    @staticmethod
    async def building(root: strawberry.Parent[model.Relationship], info: Info) -> Building | None:
        if root.building is not None or root.unit is None:
            return await _one(info, root.building, Building)
        wants = model.Selection(frozenset({"code"}))
        unit = await info.context.loaders.one(root.unit, wants)
        link = unit.building if isinstance(unit, model.Unit) else None
        return await _one(info, link, Building)

    @strawberry.field(description="The unit, where the role is on one unit (occupiers).")
    @staticmethod
    async def unit(root: strawberry.Parent[model.Relationship], info: Info) -> Unit | None:
        return await _one(info, root.unit, Unit)

    @strawberry.field(description="The tenant or landlord holding the role, where known.")
    @staticmethod
    async def party(root: strawberry.Parent[model.Relationship], info: Info) -> Party | None:
        link = root.party
        if link is None:
            return None
        return cast(Party | None, await _one(info, link, NODE_TYPES[link.entity]))


async def _about(
    info: Info, by: str, record: model.Building | model.Tenant | model.Landlord
) -> list[model.Record]:
    """What providers record about this record; a provider that fails costs only its part."""
    selection = selection_here(Relationship, info)
    try:
        return await info.context.loaders.about(
            model.Entity.RELATIONSHIP, by, f"{record.provider}:{record.source_id}", selection
        )
    except ProviderError as error:
        info.context.report(error, info.path.as_list())
        return []


NODE_TYPES: dict[model.Entity, type[Any]] = {
    model.Entity.LANDLORD: Landlord,
    model.Entity.BUILDING: Building,
    model.Entity.UNIT: Unit,
    model.Entity.TENANT: Tenant,
    model.Entity.RELATIONSHIP: Relationship,
}
