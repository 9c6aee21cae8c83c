"""Leases: the terms a unit is let under, by whom, at what rent.

The pattern every new domain type follows, in a module of its own:
- a `Node` type registered with `@shows(model.X)`, whose relations go through the loaders
  (`one`/`many` from `schema.types`), so `node(id)` and subscriptions know it;
- a filter input whose `criteria()` gives unified conditions the connectors push down;
- its root list on a `...Queries` type that `schema.query.Query` inherits, through
  `schema.roots.connection`;
- its read scope in `schema.permissions.READ_SCOPES`, checked wherever it is reached.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from gateway import model
from gateway.federation.fan_out import ListResult
from schema.connection import Connection
from schema.filters import DateRange
from schema.money import Money
from schema.permissions import requires
from schema.roots import After, First, Providers, connection
from schema.types import Info, Node, many, one, shows

if TYPE_CHECKING:
    from schema.types import Tenant, Unit

__all__ = ["Lease", "LeaseFilter", "LeaseQueries", "LeaseStatus"]

LeaseStatus = model.LeaseStatus
strawberry.enum(LeaseStatus, description="Where a lease stands today.")

TenantType = Annotated["Tenant", strawberry.lazy("schema.types")]
UnitType = Annotated["Unit", strawberry.lazy("schema.types")]


@shows(model.Lease)
@strawberry.type(description="The terms a unit is let under: its term, rent and parties.")
class Lease(Node):
    start_date: date | None
    end_date: date | None
    rent: Money | None = strawberry.field(description="The monthly rent in effect today.")
    deposit: Money | None = strawberry.field(description="The security deposit, if one is held.")
    status: LeaseStatus | None

    @classmethod
    def is_type_of(cls, obj: Any, _info: Any) -> bool:
        return isinstance(obj, model.Lease)

    @strawberry.field(
        description="Who signed it, where the provider still keeps them.",
        graphql_type=list[TenantType],
    )
    @staticmethod
    async def tenants(root: strawberry.Parent[model.Lease], info: Info) -> list[model.Tenant]:
        return await many(info, root.tenants, model.Tenant)

    @strawberry.field(description="The unit it lets.", graphql_type=UnitType | None)
    @staticmethod
    async def unit(root: strawberry.Parent[model.Lease], info: Info) -> model.Unit | None:
        return await one(info, root.unit, model.Unit)


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
        extensions=requires("tenant:read"),
        graphql_type=Connection[Lease],
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
