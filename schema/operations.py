"""Operations: maintenance requests, the work orders that answer them, the vendors who work.

Reading them needs `property:read` only, since they are about places; a request's tenant is
a `Tenant`, whose names keep their own scope. Their statuses are the steps of one flow
(OPEN, ASSIGNED, COMPLETED; SCHEDULED, IN_PROGRESS, COMPLETED or CANCELLED), so a caller
can act on them the same way whichever provider keeps the request.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from gateway import model
from gateway.federation.fan_out import ListResult
from schema.connection import Connection
from schema.filters import VendorFilter
from schema.money import Money
from schema.permissions import requires
from schema.roots import After, First, Providers, connection
from schema.types import Info, Node, follows, many, one, shows

if TYPE_CHECKING:
    from schema.types import Building, Tenant, Unit

__all__ = [
    "MaintenanceRequest",
    "MaintenanceRequestFilter",
    "MaintenanceStatus",
    "OperationsQueries",
    "Priority",
    "Vendor",
    "WorkOrder",
    "WorkOrderFilter",
    "WorkOrderStatus",
]

Priority = model.Priority
strawberry.enum(Priority, description="How urgent a maintenance request is.")
MaintenanceStatus = model.MaintenanceStatus
strawberry.enum(
    MaintenanceStatus,
    description="OPEN (reported), ASSIGNED (given to a vendor), COMPLETED (done).",
)
WorkOrderStatus = model.WorkOrderStatus
strawberry.enum(
    WorkOrderStatus,
    description="SCHEDULED, then IN_PROGRESS, then COMPLETED; or CANCELLED before it is done.",
)

BuildingType = Annotated["Building", strawberry.lazy("schema.types")]
TenantType = Annotated["Tenant", strawberry.lazy("schema.types")]
UnitType = Annotated["Unit", strawberry.lazy("schema.types")]


@shows(model.Vendor)
@strawberry.type(description="A contractor or supplier who does maintenance work.")
class Vendor(Node):
    name: str | None
    trade: str | None = strawberry.field(
        description="What it does, as the provider names it (plumbing, electrical...)."
    )
    email: str | None
    phone: str | None


@shows(model.MaintenanceRequest)
@strawberry.type(description="Something to fix in a unit, as it was reported, and its progress.")
class MaintenanceRequest(Node):
    title: str | None = strawberry.field(description="Null where the provider keeps none.")
    description: str | None
    priority: Priority | None
    status: MaintenanceStatus | None
    reported_at: datetime | None = strawberry.field(
        description="With the offset the provider sent it with."
    )
    scheduled_for: date | None = strawberry.field(description="The vendor's visit, once assigned.")
    completed_at: datetime | None

    @strawberry.field(graphql_type=UnitType | None)
    @staticmethod
    @follows("unit", model.Unit, plural=False)
    async def unit(
        root: strawberry.Parent[model.MaintenanceRequest], info: Info
    ) -> model.Unit | None:
        return await one(info, root.unit, model.Unit)

    @strawberry.field(graphql_type=BuildingType | None)
    @staticmethod
    @follows("building", model.Building, plural=False)
    async def building(
        root: strawberry.Parent[model.MaintenanceRequest], info: Info
    ) -> model.Building | None:
        return await one(info, root.building, model.Building)

    @strawberry.field(
        description="Who reported it, where the provider still keeps that tenant.",
        graphql_type=TenantType | None,
    )
    @staticmethod
    @follows("tenant", model.Tenant, plural=False)
    async def tenant(
        root: strawberry.Parent[model.MaintenanceRequest], info: Info
    ) -> model.Tenant | None:
        return await one(info, root.tenant, model.Tenant)

    @strawberry.field(description="Who it is assigned to.", graphql_type=Vendor | None)
    @staticmethod
    @follows("vendor", model.Vendor, plural=False)
    async def vendor(
        root: strawberry.Parent[model.MaintenanceRequest], info: Info
    ) -> model.Vendor | None:
        return await one(info, root.vendor, model.Vendor)

    @strawberry.field(
        description="The jobs done or planned for it.", graphql_type="list[WorkOrder]"
    )
    @staticmethod
    @follows("work_orders", model.WorkOrder, plural=True)
    async def work_orders(
        root: strawberry.Parent[model.MaintenanceRequest], info: Info
    ) -> list[model.WorkOrder]:
        return await many(info, root.work_orders, model.WorkOrder)


@shows(model.WorkOrder)
@strawberry.type(description="A job a vendor does for a maintenance request.")
class WorkOrder(Node):
    description: str | None
    status: WorkOrderStatus | None
    scheduled_for: date | None
    started_at: datetime | None
    completed_at: datetime | None
    cost: Money | None = strawberry.field(
        description="What it cost once completed; the estimate before."
    )

    @strawberry.field(graphql_type=MaintenanceRequest | None)
    @staticmethod
    @follows("request", model.MaintenanceRequest, plural=False)
    async def request(
        root: strawberry.Parent[model.WorkOrder], info: Info
    ) -> model.MaintenanceRequest | None:
        return await one(info, root.request, model.MaintenanceRequest)

    @strawberry.field(graphql_type=Vendor | None)
    @staticmethod
    @follows("vendor", model.Vendor, plural=False)
    async def vendor(root: strawberry.Parent[model.WorkOrder], info: Info) -> model.Vendor | None:
        return await one(info, root.vendor, model.Vendor)

    @strawberry.field(graphql_type=UnitType | None)
    @staticmethod
    @follows("unit", model.Unit, plural=False)
    async def unit(root: strawberry.Parent[model.WorkOrder], info: Info) -> model.Unit | None:
        return await one(info, root.unit, model.Unit)


@strawberry.input
class MaintenanceRequestFilter:
    status: MaintenanceStatus | None = None
    open: bool | None = strawberry.field(
        default=None, description="true: not yet completed (OPEN or ASSIGNED); false: completed."
    )
    priority: Priority | None = None

    def criteria(self) -> model.Criteria:
        criteria: dict[str, model.Condition] = {}
        if self.status is not None:
            criteria["status"] = model.Equals(self.status.value)
        if self.open is not None:
            criteria["open"] = model.Equals(self.open)
        if self.priority is not None:
            criteria["priority"] = model.Equals(self.priority.value)
        return criteria


@strawberry.input
class WorkOrderFilter:
    status: WorkOrderStatus | None = None

    def criteria(self) -> model.Criteria:
        return {"status": model.Equals(self.status.value)} if self.status is not None else {}


_READ = requires("property:read")


@strawberry.type
class OperationsQueries:
    @strawberry.field(
        description="Maintenance requests from every provider that keeps them, "
        "by when they were reported, then provider, then id.",
        extensions=_READ,
        graphql_type=Connection[MaintenanceRequest] | None,
    )
    async def maintenance_requests(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        filter: MaintenanceRequestFilter | None = None,
        providers: Providers = None,
    ) -> ListResult:
        criteria = filter.criteria() if filter else {}
        entity = model.Entity.MAINTENANCE_REQUEST
        return await connection(info, entity, criteria, first, after, providers)

    @strawberry.field(
        description="Work orders from every provider that keeps them, by scheduled date, then "
        "provider, then id.",
        extensions=_READ,
        graphql_type=Connection[WorkOrder] | None,
    )
    async def work_orders(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        filter: WorkOrderFilter | None = None,
        providers: Providers = None,
    ) -> ListResult:
        criteria = filter.criteria() if filter else {}
        return await connection(info, model.Entity.WORK_ORDER, criteria, first, after, providers)

    @strawberry.field(
        description="Vendors from every provider that keeps them, by name, then provider, then id.",
        extensions=_READ,
        graphql_type=Connection[Vendor] | None,
    )
    async def vendors(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        filter: VendorFilter | None = None,
        providers: Providers = None,
    ) -> ListResult:
        criteria = filter.criteria() if filter else {}
        return await connection(info, model.Entity.VENDOR, criteria, first, after, providers)
