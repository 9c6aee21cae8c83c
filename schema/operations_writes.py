"""The operations writes: maintenance requests and work orders along their flow, a unit's
status, a landlord's new property.

Each follows the pattern of `schema.writes`: the model's input built from the GraphQL input,
the write run through `written` (idempotency keys, the shared guarantees), refusals in the
payload's `errors`. Each write has its scope: `maintenance:manage`, `unit:manage`,
`property:manage`. Every id a write names must be at the provider of the record it
writes: a write happens at one provider.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date

import strawberry

from gateway import model
from gateway.errors import BadUserInput
from schema.money import MoneyInput
from schema.operations import MaintenanceRequest, Priority, WorkOrder
from schema.permissions import requires
from schema.types import Building, Info, Occupancy, Unit
from schema.writes import IdempotencyKey, UserError, errors_of, source_of, written

__all__ = ["OperationsMutations"]

_MAINTAIN = requires("maintenance:manage")


def _at(info: Info, provider: str, global_id: str, entity: model.Entity, field: str) -> str:
    """The source id of another record a write names, which must be at the write's provider."""
    other, source_id = source_of(info, global_id, entity)
    if other != provider:
        raise BadUserInput(
            f"`{field}` names a record at {other}, and the write is at {provider}: a write "
            "happens at one provider.",
            field=field,
        )
    return source_id


def _text(value: str | None) -> str | None:
    return value.strip() if value is not None else None


@strawberry.input
class CreateMaintenanceRequestInput:
    unit_id: strawberry.ID = strawberry.field(description="Global id of the unit.")
    description: str
    title: str | None = strawberry.field(default=None, description="Where the provider keeps one.")
    priority: Priority | None = strawberry.field(
        default=None, description="The provider's default when left out."
    )
    tenant_id: strawberry.ID | None = strawberry.field(
        default=None, description="The tenant reporting it, living in the unit."
    )
    idempotency_key: str | None = IdempotencyKey


@strawberry.type
class MaintenanceRequestPayload:
    maintenance_request: model.MaintenanceRequest | None = strawberry.field(
        graphql_type=MaintenanceRequest | None
    )
    errors: list[UserError]


@strawberry.input
class AssignMaintenanceRequestInput:
    maintenance_request_id: strawberry.ID
    vendor_id: strawberry.ID = strawberry.field(description="A vendor at the same provider.")
    scheduled_for: date | None = strawberry.field(default=None, description="The vendor's visit.")
    idempotency_key: str | None = IdempotencyKey


@strawberry.input
class CompleteMaintenanceRequestInput:
    maintenance_request_id: strawberry.ID
    resolution: str | None = strawberry.field(
        default=None, description="What was done, where the provider keeps it."
    )
    idempotency_key: str | None = IdempotencyKey


@strawberry.input
class CreateWorkOrderInput:
    maintenance_request_id: strawberry.ID
    vendor_id: strawberry.ID = strawberry.field(description="A vendor at the same provider.")
    description: str
    scheduled_for: date | None = None
    estimated_cost: MoneyInput | None = strawberry.field(
        default=None, description="In a currency the provider takes."
    )
    idempotency_key: str | None = IdempotencyKey


@strawberry.type
class WorkOrderPayload:
    work_order: model.WorkOrder | None = strawberry.field(graphql_type=WorkOrder | None)
    errors: list[UserError]


@strawberry.input
class StartWorkOrderInput:
    work_order_id: strawberry.ID
    idempotency_key: str | None = IdempotencyKey


@strawberry.input
class CompleteWorkOrderInput:
    work_order_id: strawberry.ID
    cost: MoneyInput | None = strawberry.field(
        default=None, description="What it cost; the estimate stays when left out."
    )
    idempotency_key: str | None = IdempotencyKey


@strawberry.input
class CancelWorkOrderInput:
    work_order_id: strawberry.ID
    reason: str | None = strawberry.field(
        default=None, description="Why, where the provider keeps it."
    )
    idempotency_key: str | None = IdempotencyKey


@strawberry.input
class UpdateUnitStatusInput:
    unit_id: strawberry.ID
    occupancy: Occupancy = strawberry.field(description="VACANT or OCCUPIED.")
    idempotency_key: str | None = IdempotencyKey


@strawberry.type
class UnitPayload:
    unit: model.Unit | None = strawberry.field(graphql_type=Unit | None)
    errors: list[UserError]


@strawberry.input
class CreatePropertyInput:
    landlord_id: strawberry.ID = strawberry.field(
        description="An onboarded landlord: the gateway writes with its own token."
    )
    name: str
    street: str | None = None
    city: str | None = None
    postal_code: str | None = None
    idempotency_key: str | None = IdempotencyKey


@strawberry.type
class BuildingPayload:
    building: model.Building | None = strawberry.field(graphql_type=Building | None)
    errors: list[UserError]


async def _requested(
    info: Info,
    operation: str,
    given: object,
    write: Callable[[], Awaitable[model.Record]],
    about: str,
) -> MaintenanceRequestPayload:
    outcome = await written(info, operation, given, write)
    record = outcome.record if isinstance(outcome.record, model.MaintenanceRequest) else None
    return MaintenanceRequestPayload(maintenance_request=record, errors=errors_of(outcome, about))


async def _ordered(
    info: Info,
    operation: str,
    given: object,
    write: Callable[[], Awaitable[model.Record]],
    about: str,
) -> WorkOrderPayload:
    outcome = await written(info, operation, given, write)
    record = outcome.record if isinstance(outcome.record, model.WorkOrder) else None
    return WorkOrderPayload(work_order=record, errors=errors_of(outcome, about))


@strawberry.type
class OperationsMutations:
    @strawberry.mutation(
        description="Reports a maintenance request for a unit, at the unit's provider.",
        extensions=_MAINTAIN,
    )
    async def create_maintenance_request(
        self, info: Info, input: CreateMaintenanceRequestInput
    ) -> MaintenanceRequestPayload:
        provider, unit_id = source_of(info, input.unit_id, model.Entity.UNIT)
        tenant = input.tenant_id
        new = model.NewMaintenanceRequest(
            description=input.description.strip(),
            title=_text(input.title),
            priority=input.priority,
            tenant_id=_at(info, provider, tenant, model.Entity.TENANT, "tenantId")
            if tenant is not None
            else None,
        )
        writes = info.context.federation.writes
        return await _requested(
            info,
            "createMaintenanceRequest",
            input,
            lambda: writes.create_maintenance_request(provider, unit_id, new),
            "unitId",
        )

    @strawberry.mutation(
        description="Gives a maintenance request to a vendor (ASSIGNED); a completed one is "
        "refused (CONFLICT).",
        extensions=_MAINTAIN,
    )
    async def assign_maintenance_request(
        self, info: Info, input: AssignMaintenanceRequestInput
    ) -> MaintenanceRequestPayload:
        entity = model.Entity.MAINTENANCE_REQUEST
        provider, request_id = source_of(info, input.maintenance_request_id, entity)
        vendor = _at(info, provider, input.vendor_id, model.Entity.VENDOR, "vendorId")
        assignment = model.Assignment(vendor_id=vendor, scheduled_for=input.scheduled_for)
        writes = info.context.federation.writes
        return await _requested(
            info,
            "assignMaintenanceRequest",
            input,
            lambda: writes.assign_maintenance_request(provider, request_id, assignment),
            "maintenanceRequestId",
        )

    @strawberry.mutation(
        description="Marks a maintenance request done (COMPLETED); one already completed is "
        "refused (CONFLICT).",
        extensions=_MAINTAIN,
    )
    async def complete_maintenance_request(
        self, info: Info, input: CompleteMaintenanceRequestInput
    ) -> MaintenanceRequestPayload:
        entity = model.Entity.MAINTENANCE_REQUEST
        provider, request_id = source_of(info, input.maintenance_request_id, entity)
        completion = model.Completion(resolution=_text(input.resolution))
        writes = info.context.federation.writes
        return await _requested(
            info,
            "completeMaintenanceRequest",
            input,
            lambda: writes.complete_maintenance_request(provider, request_id, completion),
            "maintenanceRequestId",
        )

    @strawberry.mutation(
        description="Plans a job for a maintenance request with a vendor (SCHEDULED).",
        extensions=_MAINTAIN,
    )
    async def create_work_order(self, info: Info, input: CreateWorkOrderInput) -> WorkOrderPayload:
        entity = model.Entity.MAINTENANCE_REQUEST
        provider, request_id = source_of(info, input.maintenance_request_id, entity)
        vendor = _at(info, provider, input.vendor_id, model.Entity.VENDOR, "vendorId")
        estimate = input.estimated_cost
        order = model.NewWorkOrder(
            vendor_id=vendor,
            description=input.description.strip(),
            scheduled_for=input.scheduled_for,
            estimated_cost=estimate.value("estimatedCost") if estimate else None,
        )
        writes = info.context.federation.writes
        return await _ordered(
            info,
            "createWorkOrder",
            input,
            lambda: writes.create_work_order(provider, request_id, order),
            "maintenanceRequestId",
        )

    @strawberry.mutation(
        description="The vendor started the job (IN_PROGRESS); only a SCHEDULED one can start.",
        extensions=_MAINTAIN,
    )
    async def start_work_order(self, info: Info, input: StartWorkOrderInput) -> WorkOrderPayload:
        provider, order_id = source_of(info, input.work_order_id, model.Entity.WORK_ORDER)
        writes = info.context.federation.writes
        return await _ordered(
            info,
            "startWorkOrder",
            input,
            lambda: writes.start_work_order(provider, order_id),
            "workOrderId",
        )

    @strawberry.mutation(
        description="The job is done (COMPLETED), with what it cost.", extensions=_MAINTAIN
    )
    async def complete_work_order(
        self, info: Info, input: CompleteWorkOrderInput
    ) -> WorkOrderPayload:
        provider, order_id = source_of(info, input.work_order_id, model.Entity.WORK_ORDER)
        completion = model.WorkOrderCompletion(
            cost=input.cost.value("cost") if input.cost else None
        )
        writes = info.context.federation.writes
        return await _ordered(
            info,
            "completeWorkOrder",
            input,
            lambda: writes.complete_work_order(provider, order_id, completion),
            "workOrderId",
        )

    @strawberry.mutation(
        description="Calls the job off (CANCELLED); a completed or cancelled one is refused.",
        extensions=_MAINTAIN,
    )
    async def cancel_work_order(self, info: Info, input: CancelWorkOrderInput) -> WorkOrderPayload:
        provider, order_id = source_of(info, input.work_order_id, model.Entity.WORK_ORDER)
        cancellation = model.Cancellation(reason=_text(input.reason))
        writes = info.context.federation.writes
        return await _ordered(
            info,
            "cancelWorkOrder",
            input,
            lambda: writes.cancel_work_order(provider, order_id, cancellation),
            "workOrderId",
        )

    @strawberry.mutation(
        description="Sets a unit VACANT or OCCUPIED at its provider; VACANT while a "
        "lease runs in it is refused (CONFLICT).",
        extensions=requires("unit:manage"),
    )
    async def update_unit_status(self, info: Info, input: UpdateUnitStatusInput) -> UnitPayload:
        provider, unit_id = source_of(info, input.unit_id, model.Entity.UNIT)
        if input.occupancy is model.Occupancy.UNKNOWN:
            raise BadUserInput("`occupancy` is VACANT or OCCUPIED.", field="occupancy")
        change = model.UnitStatusChange(occupancy=input.occupancy)
        writes = info.context.federation.writes
        outcome = await written(
            info,
            "updateUnitStatus",
            input,
            lambda: writes.update_unit_status(provider, unit_id, change),
        )
        unit = outcome.record if isinstance(outcome.record, model.Unit) else None
        return UnitPayload(unit=unit, errors=errors_of(outcome, "unitId"))

    @strawberry.mutation(
        description="Creates a building for an onboarded landlord at its provider, "
        "with the landlord's own token from the vault.",
        extensions=requires("property:manage"),
    )
    async def create_property(self, info: Info, input: CreatePropertyInput) -> BuildingPayload:
        provider, landlord_id = source_of(info, input.landlord_id, model.Entity.LANDLORD)
        new = model.NewProperty(
            name=input.name.strip(),
            street=_text(input.street),
            city=_text(input.city),
            postal_code=_text(input.postal_code),
        )
        writes = info.context.federation.writes
        outcome = await written(
            info,
            "createProperty",
            input,
            lambda: writes.create_property(provider, landlord_id, new),
        )
        building = outcome.record if isinstance(outcome.record, model.Building) else None
        return BuildingPayload(building=building, errors=errors_of(outcome, "landlordId"))
