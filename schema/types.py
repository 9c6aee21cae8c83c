"""The unified types.

Fields resolve straight from the `gateway.model` records, with no copy;
relations go through the request's loaders.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import strawberry

from gateway import model
from gateway.errors import LinksUnavailable, ProviderError
from gateway.federation.links import reference_of
from gateway.federation.relationships import derived
from schema import linked
from schema.context import Context
from schema.ids import encode_entity_id, encode_id
from schema.permissions import requires
from schema.selection import selection_here
from schema.shows import declare

if TYPE_CHECKING:
    from schema.leasing import Lease
    from schema.ledger import Balance, Charge, Payment
    from schema.listings import Listing
    from schema.operations import MaintenanceRequest

__all__ = [
    "Accounts",
    "Follows",
    "GRAPHQL_OF",
    "NODE_TYPES",
    "Party",
    "Role",
    "Building",
    "Landlord",
    "Node",
    "Occupancy",
    "Relationship",
    "Tenant",
    "Unit",
    "follows",
    "many",
    "one",
    "shows",
]

Info = strawberry.Info[Context, None]
R = TypeVar("R", bound=model.Record)
S = TypeVar("S")
Occupancy = model.Occupancy
strawberry.enum(Occupancy, description="Whether a unit is let today.")
MaintenanceRequestType = Annotated["MaintenanceRequest", strawberry.lazy("schema.operations")]
ListingType = Annotated["Listing", strawberry.lazy("schema.listings")]
OpenRequests = Annotated[
    bool | None,
    strawberry.argument(
        name="open",
        description="true: only those not yet completed (OPEN or ASSIGNED); false: only "
        "completed ones; left out: all.",
    ),
]


@dataclass(frozen=True, slots=True)
class Follows:
    """What a relation field's resolver does, said where the compiled plan can read it:
    the record's `attribute` followed to records of `record_type`, all of them (`plural`,
    as `many` does) or the first (as `one` does). The plan then follows the relation
    without calling the resolver: a relation whose records came with its parent is
    answered at once, where the resolver made a coroutine chain for every parent, and one
    still to load is the future of its key in the loaders' batch, where the resolver put two
    coroutines and an `Info` around it. graphql-core calls the resolver;
    `tests/test_compiled.py` checks that each marker says what its resolver does."""

    attribute: str
    record_type: type[model.Record]
    plural: bool

    def chosen(self, records: Sequence[model.Record]) -> Any:
        """What the resolver returns of the records its relation leads to."""
        if self.plural:
            return _all_of(records, self.record_type)
        return _the(records[0] if records else None, self.record_type)

    def selection(self, info: Info) -> model.Selection:
        return selection_here(GRAPHQL_OF[self.record_type], info)


F = TypeVar("F", bound=Callable[..., Any])


def follows(attribute: str, record_type: type[model.Record], *, plural: bool) -> Callable[[F], F]:
    """Marks a resolver as one that follows `attribute` to `record_type` (`Follows`)."""

    def mark(resolver: F) -> F:
        resolver.follows = Follows(attribute, record_type, plural)  # type: ignore[attr-defined]
        return resolver

    return mark


async def one(info: Info, link: model.Relation | None, record_type: type[R]) -> R | None:
    """The related record, of the type the link's entity names (its provider's connector
    made it so); resolvers return model records, and their GraphQL type says how they show."""
    record = await info.context.loaders.one(link, selection_here(GRAPHQL_OF[record_type], info))
    return _the(record, record_type)


async def many(info: Info, link: model.Relation | None, record_type: type[R]) -> list[R]:
    selection = selection_here(GRAPHQL_OF[record_type], info)
    return _all_of(await info.context.loaders.many(link, selection), record_type)


def _the(record: model.Record | None, record_type: type[R]) -> R | None:
    return record if isinstance(record, record_type) else None


def _all_of(records: Sequence[model.Record], record_type: type[R]) -> list[R]:
    return [record for record in records if isinstance(record, record_type)]


_Nodes = list[Annotated["Node", strawberry.lazy("schema.types")]]


_OPEN = frozenset({model.MaintenanceStatus.OPEN, model.MaintenanceStatus.ASSIGNED})


async def maintenance_requests(
    root: strawberry.Parent[model.Building | model.Unit | model.Tenant],
    info: Info,
    open: OpenRequests = None,
) -> list[model.MaintenanceRequest]:
    """A record's maintenance requests, those not yet done (`open: true`), done ones (false)
    or all. The provider is asked for the record's requests in one batch per query level
    whatever the argument: the batch is shared, the choice made here."""
    if open is None:
        return await many(info, root.maintenance_requests, model.MaintenanceRequest)
    asked = selection_here(GRAPHQL_OF[model.MaintenanceRequest], info)
    selection = model.Selection(asked.fields | {"status"}, asked.relations)
    records = await info.context.loaders.many(root.maintenance_requests, selection)
    return [
        record
        for record in records
        if isinstance(record, model.MaintenanceRequest) and (record.status in _OPEN) == open
    ]


@strawberry.interface(description="Any object that can be fetched again by its global id.")
class Node:
    provider: str = strawberry.field(description="The provider the object comes from.")
    source_id: str = strawberry.field(description="The object's id at its provider.")

    @strawberry.field(
        description="Opaque global id, accepted by `node` and `nodes`. A row of a `distinct` "
        "list, or what `node` gives for an entity id, is a linked group, not one of its "
        "records: its id is its `entityId`."
    )
    @staticmethod
    def id(root: strawberry.Parent[Any]) -> strawberry.ID:
        entity = model.ENTITY_OF[type(root)]
        if root.merged is not None:
            return strawberry.ID(encode_entity_id(entity, root.merged.label))
        return strawberry.ID(encode_id(entity, root.provider, root.source_id))

    @strawberry.field(
        description="The thing's id, shared by every record linked with this one, at any "
        "provider; `node` takes it. Stable while the group is; null (with LINKS_UNAVAILABLE) "
        "while the link store cannot be reached."
    )
    @staticmethod
    async def entity_id(root: strawberry.Parent[Any], info: Info) -> strawberry.ID | None:
        found = await linked.entity_id_of(root, info)
        return strawberry.ID(found) if found is not None else None

    @strawberry.field(
        description="The same thing's other records, at other providers, in precedence order.",
        graphql_type=_Nodes,
    )
    @staticmethod
    async def same_as(root: strawberry.Parent[Any], info: Info) -> list[model.Record]:
        return await linked.members_of(root, info, itself=False)

    @strawberry.field(
        description="Every record of this one's linked group, itself included, in precedence "
        "order: where a `distinct` list takes each field from.",
        graphql_type=_Nodes,
    )
    @staticmethod
    async def sources(root: strawberry.Parent[Any], info: Info) -> list[model.Record]:
        return await linked.members_of(root, info, itself=True)

    @strawberry.field(
        description="Why this record is linked: each link with its source, rule or person, "
        "score and date. Needs the `identity:manage` scope.",
        extensions=requires("identity:manage"),
    )
    @staticmethod
    async def links(root: strawberry.Parent[Any], info: Info) -> list[linked.RecordLink] | None:
        return await linked.links_of(root, info)


GRAPHQL_OF: dict[type, type[Any]] = {}
"""The GraphQL type each model record shows as, filled by `shows` as each is defined."""

NODE_TYPES: dict[model.Entity, type[Any]] = {}
"""The node types by entity: what `node(id)`, lists and subscriptions can name."""


def shows(record: type[model.Record]) -> Callable[[type[S]], type[S]]:
    """Registers a Strawberry type as how `record` shows, and as a node type if it is one: a
    new type in a module of its own is known to `node(id)` and to relations this way. It
    also becomes the type's `is_type_of` (`Shows`), so GraphQL and the compiled executor
    recognise its objects by their record's class; put it above `@strawberry.type`."""

    def register(graphql_type: type[S]) -> type[S]:
        declare(graphql_type, record)
        GRAPHQL_OF[record] = graphql_type
        if issubclass(graphql_type, Node):
            NODE_TYPES[model.ENTITY_OF[record]] = graphql_type
        return graphql_type

    return register


@shows(model.Landlord)
@strawberry.type(description="An owner of buildings.")
class Landlord(Node):
    name: str | None
    status: str | None
    company_type: str | None
    billing_address: str | None
    billing_postal_code: str | None
    business_number: str | None

    @strawberry.field(
        description="The landlord's buildings at the same provider.", graphql_type="list[Building]"
    )
    @staticmethod
    @follows("buildings", model.Building, plural=True)
    async def buildings(
        root: strawberry.Parent[model.Landlord], info: Info
    ) -> list[model.Building]:
        return await many(info, root.buildings, model.Building)

    @strawberry.field(
        description="Ownership of its buildings (derived) and LEAP's records.",
        graphql_type="list[Relationship]",
    )
    @staticmethod
    async def relationships(
        root: strawberry.Parent[model.Landlord], info: Info
    ) -> list[model.Relationship]:
        return await _relationships(info, "party", root)


@shows(model.Building)
@strawberry.type(description="A building: an address with units.")
class Building(Node):
    name: str | None
    code: str | None = strawberry.field(description="The provider's building code, trimmed.")
    street: str | None
    city: str | None
    postal_code: str | None

    @strawberry.field(graphql_type="Landlord | None")
    @staticmethod
    @follows("landlord", model.Landlord, plural=False)
    async def landlord(
        root: strawberry.Parent[model.Building], info: Info
    ) -> model.Landlord | None:
        return await one(info, root.landlord, model.Landlord)

    @strawberry.field(
        description="Ownership (derived) and the roles LEAP records on it.",
        graphql_type="list[Relationship]",
    )
    @staticmethod
    async def relationships(
        root: strawberry.Parent[model.Building], info: Info
    ) -> list[model.Relationship]:
        return await _relationships(info, "building", root)

    @strawberry.field(graphql_type="list[Unit]")
    @staticmethod
    @follows("units", model.Unit, plural=True)
    async def units(root: strawberry.Parent[model.Building], info: Info) -> list[model.Unit]:
        return await many(info, root.units, model.Unit)

    maintenance_requests = strawberry.field(
        description="Its maintenance requests, where the provider keeps them.",
        resolver=maintenance_requests,
        graphql_type=list[MaintenanceRequestType],
    )


@shows(model.Unit)
@strawberry.type(description="A rentable unit of a building.")
class Unit(Node):
    code: str | None = strawberry.field(name="unitCode", description="The unit's code, trimmed.")
    rooms: float | None = strawberry.field(description="Number of rooms, as in 4.5.")
    occupancy: Occupancy | None = strawberry.field(
        description="Today's status; use `unitsForRent` for availability over dates."
    )
    housing_type: str | None
    address: str | None = strawberry.field(
        description="Its own street address, unit included, where its provider gives one "
        "(a listing's); null where its address is its building's."
    )
    city: str | None

    @strawberry.field(graphql_type="Building | None")
    @staticmethod
    @follows("building", model.Building, plural=False)
    async def building(root: strawberry.Parent[model.Unit], info: Info) -> model.Building | None:
        return await one(info, root.building, model.Building)

    @strawberry.field(graphql_type="list[Tenant]")
    @staticmethod
    @follows("tenants", model.Tenant, plural=True)
    async def tenants(root: strawberry.Parent[model.Unit], info: Info) -> list[model.Tenant]:
        return await many(info, root.tenants, model.Tenant)

    @strawberry.field(
        description="The unit's owner, where the provider links one.",
        graphql_type="Landlord | None",
    )
    @staticmethod
    @follows("landlord", model.Landlord, plural=False)
    async def landlord(root: strawberry.Parent[model.Unit], info: Info) -> model.Landlord | None:
        return await one(info, root.landlord, model.Landlord)

    maintenance_requests = strawberry.field(
        description="Its maintenance requests, where the provider keeps them.",
        resolver=maintenance_requests,
        graphql_type=list[MaintenanceRequestType],
    )

    @strawberry.field(
        description="Its advertisement, if it is advertised.",
        graphql_type=ListingType | None,
    )
    @staticmethod
    @follows("listing", model.Listing, plural=False)
    async def listing(root: strawberry.Parent[model.Unit], info: Info) -> model.Listing | None:
        return await one(info, root.listing, model.Listing)


_PERSONAL = requires("tenant:read")
LeaseType = Annotated["Lease", strawberry.lazy("schema.leasing")]
ChargeType = Annotated["Charge", strawberry.lazy("schema.ledger")]
PaymentType = Annotated["Payment", strawberry.lazy("schema.ledger")]
BalanceType = Annotated["Balance", strawberry.lazy("schema.ledger")]


@strawberry.type
class Accounts:
    """The money a tenant and a lease are both reached with, said once: each inherits it.
    A lease's bills are addressed to its first signer, so a co-tenant's own
    are none (the lease's are on `Lease.charges`). Nullable, so a provider that refuses one
    (a module the client has not bought), or a caller without `financial:read`
    (`permissions.READ_SCOPES`), costs that field alone."""

    @strawberry.field(
        description="What was billed (to a tenant: as a lease's first signer).",
        graphql_type=list[ChargeType] | None,
    )
    @staticmethod
    @follows("charges", model.Charge, plural=True)
    async def charges(
        root: strawberry.Parent[model.Tenant | model.Lease], info: Info
    ) -> list[model.Charge] | None:
        return await many(info, root.charges, model.Charge)

    @strawberry.field(description="What was paid.", graphql_type=list[PaymentType] | None)
    @staticmethod
    @follows("payments", model.Payment, plural=True)
    async def payments(
        root: strawberry.Parent[model.Tenant | model.Lease], info: Info
    ) -> list[model.Payment] | None:
        return await many(info, root.payments, model.Payment)

    @strawberry.field(description="What is still owed.", graphql_type=BalanceType | None)
    @staticmethod
    @follows("balance", model.Balance, plural=False)
    async def balance(
        root: strawberry.Parent[model.Tenant | model.Lease], info: Info
    ) -> model.Balance | None:
        return await one(info, root.balance, model.Balance)


@shows(model.Tenant)
@strawberry.type(description="A person or company renting a unit.")
class Tenant(Node, Accounts):
    """Names, contact and lease are personal data: they need the `tenant:read` scope (the
    lease by `permissions.READ_SCOPES`)."""

    first_name: str | None = strawberry.field(extensions=_PERSONAL)
    last_name: str | None = strawberry.field(extensions=_PERSONAL)
    tenant_number: str | None
    tenant_type: str | None
    email: str | None = strawberry.field(extensions=_PERSONAL)
    phone: str | None = strawberry.field(extensions=_PERSONAL)

    @strawberry.field(graphql_type="Unit | None")
    @staticmethod
    @follows("unit", model.Unit, plural=False)
    async def unit(root: strawberry.Parent[model.Tenant], info: Info) -> model.Unit | None:
        return await one(info, root.unit, model.Unit)

    @strawberry.field(
        description="Occupancy, derived from the unit and recorded by LEAP.",
        graphql_type="list[Relationship]",
    )
    @staticmethod
    async def relationships(
        root: strawberry.Parent[model.Tenant], info: Info
    ) -> list[model.Relationship]:
        return await _relationships(info, "party", root)

    @strawberry.field(
        description="The lease the tenant signed, where its provider keeps leases.",
        graphql_type=LeaseType | None,
    )
    @staticmethod
    @follows("lease", model.Lease, plural=False)
    async def lease(root: strawberry.Parent[model.Tenant], info: Info) -> model.Lease | None:
        return await one(info, root.lease, model.Lease)

    maintenance_requests = strawberry.field(
        description="The maintenance requests the tenant reported.",
        resolver=maintenance_requests,
        graphql_type=list[MaintenanceRequestType],
    )


@strawberry.enum(description="What a party is to a property.")
class Role(enum.Enum):
    OWNER = "OWNER"
    OCCUPIER = "OCCUPIER"


Party = Annotated[Tenant | Landlord, strawberry.union("Party", description="Who holds a role.")]


@shows(model.Relationship)
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

    @strawberry.field(
        description="The building, directly or through the unit.", graphql_type=Building | None
    )
    @staticmethod
    async def building(
        root: strawberry.Parent[model.Relationship], info: Info
    ) -> model.Building | None:
        if root.building is not None or root.unit is None:
            return await one(info, root.building, model.Building)
        wants = model.Selection(frozenset({"code"}))
        unit = await info.context.loaders.one(root.unit, wants)
        link = unit.building if isinstance(unit, model.Unit) else None
        return await one(info, link, model.Building)

    @strawberry.field(
        description="The unit, where the role is on one unit (occupiers).", graphql_type=Unit | None
    )
    @staticmethod
    @follows("unit", model.Unit, plural=False)
    async def unit(root: strawberry.Parent[model.Relationship], info: Info) -> model.Unit | None:
        return await one(info, root.unit, model.Unit)

    @strawberry.field(
        description="The tenant or landlord holding the role, where known.",
        graphql_type=Party | None,
    )
    @staticmethod
    async def party(
        root: strawberry.Parent[model.Relationship], info: Info
    ) -> model.Tenant | model.Landlord | None:
        link = root.party
        if link is None:
            return None
        record = await info.context.loaders.one(link, selection_here(NODE_TYPES[link.entity], info))
        return record if isinstance(record, model.Tenant | model.Landlord) else None


async def _relationships(
    info: Info, by: str, record: model.Building | model.Tenant | model.Landlord
) -> list[model.Relationship]:
    """Those read off the record, then what providers record about it, or about any record
    linked with it, by `by`; a provider that fails costs only its part. What providers
    record is asked beside the derived ones, not after them: a landlord's derived ones wait
    for its buildings, which each provider answers in its own time, and asking after them
    split the records of one query level into as many batches as there were moments (8, 12
    or 16 requests to the provider that records relationships, for the same query)."""
    recorded = asyncio.ensure_future(_recorded(info, by, record))
    try:
        found = await derived(info.context.loaders, record)
        return [*found, *await recorded]
    finally:
        recorded.cancel()


async def _recorded(
    info: Info, by: str, record: model.Building | model.Tenant | model.Landlord
) -> list[model.Relationship]:
    selection = selection_here(Relationship, info)
    try:
        references = list((await info.context.loaders.group(record)).members)
    except LinksUnavailable as error:
        info.context.report(error, info.path.as_list())
        references = [reference_of(record)]
    try:
        recorded = await info.context.loaders.about(
            model.Entity.RELATIONSHIP, by, references, selection
        )
    except ProviderError as error:
        info.context.report(error, info.path.as_list())
        recorded = []
    return [r for r in recorded if isinstance(r, model.Relationship)]
