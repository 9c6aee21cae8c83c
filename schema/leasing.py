"""Leases: the terms a unit is let under, by whom, at what rent.

The pattern every new domain type follows, in a module of its own:
- a `Node` type registered with `@shows(model.X)`, whose relations go through the loaders
  (`one`/`many` from `schema.types`), so `node(id)` and subscriptions know it;
- a filter input whose `criteria()` gives unified conditions the connectors push down;
- its root list on a `...Queries` type that `schema.query.Query` inherits, through
  `schema.roots.connection`;
- its read scope, if it needs one beyond `property:read`, in `schema.permissions.READ_SCOPES`,
  which the schema holds every field leading to the type to.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated

import strawberry

from gateway import model
from gateway.errors import BadUserInput
from gateway.federation.fan_out import ListResult
from schema.connection import Connection
from schema.filters import DateRange
from schema.money import Money, MoneyInput
from schema.permissions import requires
from schema.roots import After, First, Providers, connection
from schema.types import Accounts, Info, Node, follows, many, one, shows
from schema.writes import IdempotencyKey, UserError, errors_of, source_of, written

if TYPE_CHECKING:
    from schema.types import Tenant, Unit

__all__ = [
    "Lease",
    "LeaseFilter",
    "LeaseMutations",
    "LeaseQueries",
    "LeaseStatus",
    "RentChange",
]

LeaseStatus = model.LeaseStatus
strawberry.enum(LeaseStatus, description="Where a lease stands today.")

TenantType = Annotated["Tenant", strawberry.lazy("schema.types")]
UnitType = Annotated["Unit", strawberry.lazy("schema.types")]


@shows(model.RentChange)
@strawberry.type(description="The rent a lease moves to from a date: scheduled or recorded.")
class RentChange:
    effective_date: date | None
    rent: Money | None


@shows(model.Lease)
@strawberry.type(description="The terms a unit is let under: its term, rent and parties.")
class Lease(Node, Accounts):
    start_date: date | None
    end_date: date | None
    rent: Money | None = strawberry.field(description="The monthly rent in effect today.")
    deposit: Money | None = strawberry.field(description="The security deposit, if one is held.")
    status: LeaseStatus | None

    @strawberry.field(
        deprecation_reason="Use `rent { amount currency }`: the currency of the exact amount. "
        "It came with `monthlyRent`, a Float, which could not stay.",
        metadata={"reads": "rent"},
    )
    @staticmethod
    def currency(root: strawberry.Parent[model.Lease]) -> str | None:
        """Kept for clients generated before `rent`; read off the rent, so asking for it
        asks the provider for the rent (`selection.selection_of`)."""
        return root.rent.currency if root.rent is not None else None

    @strawberry.field(
        description="Who signed it, where the provider still keeps them.",
        graphql_type=list[TenantType],
    )
    @staticmethod
    @follows("tenants", model.Tenant, plural=True)
    async def tenants(root: strawberry.Parent[model.Lease], info: Info) -> list[model.Tenant]:
        return await many(info, root.tenants, model.Tenant)

    @strawberry.field(description="The unit it lets.", graphql_type=UnitType | None)
    @staticmethod
    @follows("unit", model.Unit, plural=False)
    async def unit(root: strawberry.Parent[model.Lease], info: Info) -> model.Unit | None:
        return await one(info, root.unit, model.Unit)

    @strawberry.field(
        description="Its rent changes, scheduled and recorded, in the order they take effect.",
        graphql_type=list[RentChange] | None,
    )
    @staticmethod
    async def rent_changes(
        root: strawberry.Parent[model.Lease], info: Info
    ) -> list[model.RentChange] | None:
        changes = await many(info, root.rent_changes, model.RentChange)
        return sorted(changes, key=lambda change: change.effective_date or date.min)


@strawberry.input
class LeaseFilter:
    status: LeaseStatus | None = None
    end_date: DateRange | None = strawberry.field(
        default=None, description="Leases ending within the range: renewals coming up."
    )

    def criteria(self) -> model.Criteria:
        criteria: dict[str, model.Condition] = {}
        if self.status is not None:
            criteria["status"] = model.Equals(self.status.value)
        if self.end_date is not None:
            criteria["end_date"] = self.end_date.within("endDate")
        return criteria


@strawberry.type
class LeaseQueries:
    @strawberry.field(
        description="Leases from every provider that lists them, by start date, then provider, "
        "then id.",
        graphql_type=Connection[Lease] | None,
    )
    async def leases(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        filter: LeaseFilter | None = None,
        providers: Providers = None,
    ) -> ListResult:
        criteria = filter.criteria() if filter else {}
        return await connection(info, model.Entity.LEASE, criteria, first, after, providers)


@strawberry.input(description="Changes a lease's terms: only what is given.")
class UpdateLeaseInput:
    lease_id: strawberry.ID
    end_date: date | None = strawberry.field(default=None, description="Extend or shorten it.")
    deposit: MoneyInput | None = None
    idempotency_key: str | None = IdempotencyKey


@strawberry.input(description="Ends a lease early: its last day, and why.")
class EndLeaseInput:
    lease_id: strawberry.ID
    end_date: date = strawberry.field(
        description="Its last day: today or later, not after its end."
    )
    reason: str | None = None
    idempotency_key: str | None = IdempotencyKey


@strawberry.input(description="Records that a lease's rent changes from a date.")
class ChangeRentInput:
    lease_id: strawberry.ID
    effective_date: date
    rent: MoneyInput
    idempotency_key: str | None = IdempotencyKey


@strawberry.type
class LeasePayload:
    lease: model.Lease | None = strawberry.field(graphql_type=Lease | None)
    errors: list[UserError]


@strawberry.type
class RentChangePayload:
    rent_change: model.RentChange | None = strawberry.field(graphql_type=RentChange | None)
    errors: list[UserError]
    changed: strawberry.Private[model.Link | None] = None
    """The lease the change was recorded on, when it was."""

    @strawberry.field(
        description="The lease, read again after the change.", graphql_type=Lease | None
    )
    async def lease(self, info: Info) -> model.Lease | None:
        """Read here, with what is selected under `lease`: the mutation's own selection is
        its payload's fields, and a provider that reads only the fields asked would send a
        lease of nulls."""
        return await one(info, self.changed, model.Lease)


MANAGE = requires("lease:manage")


@strawberry.type
class LeaseMutations:
    @strawberry.mutation(description="Changes a lease's terms.", extensions=MANAGE)
    async def update_lease(self, info: Info, input: UpdateLeaseInput) -> LeasePayload:
        provider, lease_id = source_of(info, input.lease_id, model.Entity.LEASE)
        if input.end_date is None and input.deposit is None:
            raise BadUserInput("Give `endDate` or `deposit`.")
        terms = model.LeaseTerms(
            end_date=input.end_date,
            deposit=input.deposit.value("deposit") if input.deposit else None,
        )
        outcome = await written(
            info,
            "updateLease",
            input,
            lambda: info.context.federation.writes.update_lease(provider, lease_id, terms),
        )
        lease = outcome.record if isinstance(outcome.record, model.Lease) else None
        return LeasePayload(lease=lease, errors=errors_of(outcome, "leaseId"))

    @strawberry.mutation(description="Ends a lease early.", extensions=MANAGE)
    async def end_lease(self, info: Info, input: EndLeaseInput) -> LeasePayload:
        provider, lease_id = source_of(info, input.lease_id, model.Entity.LEASE)
        ending = model.LeaseEnding(end_date=input.end_date, reason=input.reason)
        outcome = await written(
            info,
            "endLease",
            input,
            lambda: info.context.federation.writes.end_lease(provider, lease_id, ending),
        )
        lease = outcome.record if isinstance(outcome.record, model.Lease) else None
        return LeasePayload(lease=lease, errors=errors_of(outcome, "leaseId"))

    @strawberry.mutation(description="Records a rent change.", extensions=MANAGE)
    async def change_rent(self, info: Info, input: ChangeRentInput) -> RentChangePayload:
        provider, lease_id = source_of(info, input.lease_id, model.Entity.LEASE)
        change = model.NewRentChange(
            effective_date=input.effective_date, rent=input.rent.value("rent")
        )
        outcome = await written(
            info,
            "changeRent",
            input,
            lambda: info.context.federation.writes.change_rent(provider, lease_id, change),
        )
        recorded = outcome.record if isinstance(outcome.record, model.RentChange) else None
        changed = model.Link(provider, model.Entity.LEASE, "id", lease_id) if recorded else None
        return RentChangePayload(
            rent_change=recorded, errors=errors_of(outcome, "leaseId"), changed=changed
        )
