"""Listings: units advertised for rent, at an asking price, shown by an agent.

Following `schema.leasing`'s pattern. Where a provider keeps a listing and its unit as one
record, its connector hands each over with the other, so `Unit.listing` and `Listing.unit`
cost no request of their own there."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated

import strawberry

from gateway import model
from gateway.federation.fan_out import ListResult
from schema.connection import Connection
from schema.filters import AgentFilter, between
from schema.money import Money
from schema.permissions import requires
from schema.roots import After, First, Providers, connection
from schema.types import Info, Node, follows, one, shows

if TYPE_CHECKING:
    from schema.types import Unit

__all__ = ["Agent", "Listing", "ListingFilter", "ListingQueries", "ListingStatus"]

ListingStatus = model.ListingStatus
strawberry.enum(ListingStatus, description="Whether an advertised unit is still to let.")

UnitType = Annotated["Unit", strawberry.lazy("schema.types")]


@shows(model.Agent)
@strawberry.type(description="Someone who shows and lets advertised units.")
class Agent(Node):
    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None


@shows(model.Listing)
@strawberry.type(description="A unit advertised for rent.")
class Listing(Node):
    title: str | None
    price: Money | None = strawberry.field(description="The asking rent, monthly.")
    bedrooms: int | None
    status: ListingStatus | None
    available_from: date | None

    @strawberry.field(description="The unit it advertises.", graphql_type=UnitType | None)
    @staticmethod
    @follows("unit", model.Unit, plural=False)
    async def unit(root: strawberry.Parent[model.Listing], info: Info) -> model.Unit | None:
        return await one(info, root.unit, model.Unit)

    @strawberry.field(description="Who shows it.", graphql_type=Agent | None)
    @staticmethod
    @follows("agent", model.Agent, plural=False)
    async def agent(root: strawberry.Parent[model.Listing], info: Info) -> model.Agent | None:
        return await one(info, root.agent, model.Agent)


@strawberry.input(description="Inclusive; leave an end out for an open range.")
class BedroomsRange:
    min: int | None = None
    max: int | None = None


@strawberry.input
class ListingFilter:
    status: ListingStatus | None = None
    bedrooms: BedroomsRange | None = None

    def criteria(self) -> model.Criteria:
        criteria: dict[str, model.Condition] = {}
        if self.status is not None:
            criteria["status"] = model.Equals(self.status.value)
        bedrooms = self.bedrooms
        if bedrooms is not None and (found := between("bedrooms", bedrooms.min, bedrooms.max)):
            criteria["bedrooms"] = found
        return criteria


_READ = requires("property:read")


@strawberry.type
class ListingQueries:
    @strawberry.field(
        description="Advertised units from every provider that advertises, by title, "
        "then provider, then id.",
        extensions=_READ,
        graphql_type=Connection[Listing] | None,
    )
    async def listings(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        filter: ListingFilter | None = None,
        providers: Providers = None,
    ) -> ListResult:
        criteria = filter.criteria() if filter else {}
        return await connection(info, model.Entity.LISTING, criteria, first, after, providers)

    @strawberry.field(
        description="Agents from every provider that has them, by last then first name.",
        extensions=_READ,
        graphql_type=Connection[Agent] | None,
    )
    async def agents(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        filter: AgentFilter | None = None,
        providers: Providers = None,
    ) -> ListResult:
        criteria = filter.criteria() if filter else {}
        return await connection(info, model.Entity.AGENT, criteria, first, after, providers)
