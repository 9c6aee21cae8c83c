"""The root query: lists as connections over every provider, and lookups by global id."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, date, datetime
from typing import Annotated

import strawberry

from gateway import model
from gateway.errors import GatewayError, LimitExceeded, NotFound, TooManyProviderCalls
from gateway.federation.fan_out import ListResult, ProviderView
from gateway.upstream import resilience
from schema import linked
from schema.connection import Connection
from schema.filters import (
    BuildingFilter,
    LandlordFilter,
    RelationshipFilter,
    TenantFilter,
    UnitFilter,
    availability,
)
from schema.leasing import LeaseQueries
from schema.ledger import LedgerQueries
from schema.listings import ListingQueries
from schema.operations import OperationsQueries
from schema.permissions import demand, requires
from schema.roots import After, Distinct, First, Providers, connection, node_of
from schema.roots import node as _node
from schema.selection import selection_here
from schema.subscription import NodeType
from schema.types import Building, Info, Landlord, Node, Relationship, Tenant, Unit

__all__ = ["Query"]

_READ = requires("property:read")


BreakerState = resilience.BreakerState
strawberry.enum(
    BreakerState, description="A provider's circuit: CLOSED lets calls through, OPEN refuses them."
)


@strawberry.type(description="A provider's rate-limit window, as its last answer published it.")
class ProviderQuota:
    limit: int
    remaining: int = strawberry.field(description="Less what the gateway sent since.")
    resets_at: datetime


@strawberry.type(description="How a provider is doing, as the gateway sees it. No secrets.")
class ProviderStatus:
    name: str
    kind: str = strawberry.field(description="odata, rest, xml or graphql.")
    healthy: bool = strawberry.field(
        description="Its circuit is closed and it is not resting, nor held off after its "
        "token endpoint refused the gateway."
    )
    breaker_state: BreakerState
    last_error: str | None = strawberry.field(
        description="Its last failure or rate limit (code: message), or, while its token "
        "endpoint is held off, the refusal."
    )
    latency_p50_ms: float | None = strawberry.field(
        description="Median of its recent answers, from sending a request to the end of its body."
    )
    latency_p95_ms: float | None = strawberry.field(
        description="95th percentile of the same: above the slow time, the circuit opens."
    )
    token_expires_at: datetime | None
    resting_until: datetime | None = strawberry.field(
        description="While the provider rests (it asked to wait longer than a caller can, or "
        "its quota is spent), or while what is left of its quota is spread and the next "
        "call's turn has not come, nothing is sent to it: its part is RATE_LIMITED at once. "
        "While its token endpoint is held off after refusing the gateway, nothing is sent "
        "either: its part gets that refusal. The later of the two."
    )
    retry_after_seconds: int | None = strawberry.field(
        description="Seconds until a call may be sent to it again."
    )
    quota: ProviderQuota | None = strawberry.field(
        description="For providers that publish X-RateLimit-* headers, while the window lasts."
    )


def _status(view: ProviderView) -> ProviderStatus:
    health = view.health
    until = view.resting_until
    left = view.resting_for
    window = health.quota.window
    return ProviderStatus(
        name=view.name,
        kind=health.kind,
        healthy=view.healthy,
        breaker_state=health.breaker.state,
        last_error=view.last_error,
        latency_p50_ms=health.latency_p50_ms,
        latency_p95_ms=health.latency_p95_ms,
        token_expires_at=_moment(view.token_expires_at),
        resting_until=_moment(until),
        retry_after_seconds=math.ceil(left) if left is not None else None,
        quota=ProviderQuota(
            limit=window.limit,
            remaining=window.remaining,
            resets_at=datetime.fromtimestamp(window.resets_at, UTC),
        )
        if window is not None
        else None,
    )


async def _slot(info: Info, global_id: str, path: list[str | int]) -> model.Record | None:
    """One id of `nodes`: a malformed one nulls its own slot, with INVALID_ID at its path,
    as a well-formed one without a record does with NOT_FOUND, and one whose provider
    failed (or whose type the caller may not read) with that error; the items are nullable,
    so one bad id, or one provider's failure, never takes the other ids' answers with it. A
    refusal of the whole query (more one-at-a-time calls than it may make) stays whole."""
    try:
        return await _node(info, global_id, path)
    except (LimitExceeded, TooManyProviderCalls):
        raise
    except GatewayError as error:
        info.context.report(error, path)
        return None


def _moment(seconds: float | None) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if seconds else None


@strawberry.type
class Query(LeaseQueries, LedgerQueries, OperationsQueries, ListingQueries):
    """The root fields: these, and each domain module's, inherited (`LeaseQueries`, ...)."""

    @strawberry.field(
        description="Every configured provider's health, for operators.",
        extensions=requires("gateway:read"),
    )
    def providers(self, info: Info) -> list[ProviderStatus]:
        return [_status(view) for view in info.context.federation.providers()]

    @strawberry.field(
        description="Any object by its global id, or a linked group (as `distinct` lists show "
        "it) by its `entityId`; null with a NOT_FOUND error if gone.",
        extensions=_READ,
        graphql_type=Node | None,
    )
    async def node(self, info: Info, id: strawberry.ID) -> model.Record | None:
        return await _node(info, id, info.path.as_list())

    @strawberry.field(
        description="Several objects by global id (or linked groups by `entityId`, as `node` "
        "takes them), in the order asked, batched; an id malformed (INVALID_ID) or without a "
        "record (NOT_FOUND) is null in its own slot, the others answered.",
        extensions=_READ,
        graphql_type=list[Node | None],
    )
    async def nodes(self, info: Info, ids: list[strawberry.ID]) -> list[model.Record | None]:
        most = info.context.federation.limits.maximum
        if len(ids) > most:
            raise LimitExceeded("TOO_MANY_IDS", f"`ids` may hold at most {most}.", most, len(ids))
        base = info.path.as_list()
        return list(
            await asyncio.gather(
                *(_slot(info, global_id, [*base, index]) for index, global_id in enumerate(ids))
            )
        )

    @strawberry.field(
        description="Landlords from every provider, by name, then provider, then id.",
        extensions=_READ,
        graphql_type=Connection[Landlord],
    )
    async def landlords(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        filter: LandlordFilter | None = None,
        providers: Providers = None,
        distinct: Distinct = False,
    ) -> ListResult:
        criteria = filter.criteria() if filter else {}
        return await connection(
            info, model.Entity.LANDLORD, criteria, first, after, providers, distinct
        )

    @strawberry.field(
        description="Buildings from every provider, by name, then provider, then id.",
        extensions=_READ,
        graphql_type=Connection[Building],
    )
    async def buildings(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        filter: BuildingFilter | None = None,
        providers: Providers = None,
        distinct: Distinct = False,
    ) -> ListResult:
        criteria = filter.criteria() if filter else {}
        return await connection(
            info, model.Entity.BUILDING, criteria, first, after, providers, distinct
        )

    @strawberry.field(
        description="Units from every provider, by unit code, then provider, then id.",
        extensions=_READ,
        graphql_type=Connection[Unit],
    )
    async def units(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        filter: UnitFilter | None = None,
        providers: Providers = None,
        distinct: Distinct = False,
    ) -> ListResult:
        criteria = filter.criteria() if filter else {}
        return await connection(
            info, model.Entity.UNIT, criteria, first, after, providers, distinct
        )

    @strawberry.field(
        description="Units free for the whole of [from, to], from each provider's availability.",
        extensions=_READ,
        graphql_type=Connection[Unit],
    )
    async def units_for_rent(
        self,
        info: Info,
        from_: Annotated[date, strawberry.argument(name="from")],
        to: date,
        first: First = None,
        after: After = None,
        filter: UnitFilter | None = None,
        providers: Providers = None,
    ) -> ListResult:
        criteria = {**(filter.criteria() if filter else {}), "available": availability(from_, to)}
        return await connection(info, model.Entity.UNIT, criteria, first, after, providers)

    @strawberry.field(
        description="Tenants from every provider, by last then first name.",
        extensions=_READ,
        graphql_type=Connection[Tenant],
    )
    async def tenants(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        filter: TenantFilter | None = None,
        providers: Providers = None,
        distinct: Distinct = False,
    ) -> ListResult:
        if filter is not None and filter.name_contains:
            demand(
                info.context.caller,
                "tenant:read",
                "Matching tenants by name needs the `tenant:read` scope.",
            )
        criteria = filter.criteria() if filter else {}
        return await connection(
            info, model.Entity.TENANT, criteria, first, after, providers, distinct
        )

    @strawberry.field(
        description="Property relationships recorded by providers (LEAP), in each provider's "
        "own order. Derived ones are on Tenant, Building and Landlord.",
        extensions=_READ,
        graphql_type=Connection[Relationship],
    )
    async def relationships(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        filter: RelationshipFilter | None = None,
        providers: Providers = None,
    ) -> ListResult:
        criteria = filter.criteria() if filter else {}
        return await connection(info, model.Entity.RELATIONSHIP, criteria, first, after, providers)

    @strawberry.field(
        description="Records a matching rule found alike but not sure enough to link, best "
        "score first: link them with `link`, or keep them apart with `unlink`.",
        extensions=requires("identity:manage"),
    )
    async def proposed_links(
        self,
        info: Info,
        type: Annotated[
            NodeType | None, strawberry.argument(description="Only these; all when left out.")
        ] = None,
        first: First = None,
        after: After = None,
    ) -> linked.ProposedLinkConnection | None:
        entity = model.Entity(type.value) if type else None
        return await linked.proposed_links(info, entity, first, after)

    @strawberry.field(
        description="A relationship by its global id.",
        extensions=_READ,
        graphql_type=Relationship | None,
    )
    async def relationship(self, info: Info, id: strawberry.ID) -> model.Relationship | None:
        node_of(id, model.Entity.RELATIONSHIP)
        found = await _node(info, id, info.path.as_list())
        return found if isinstance(found, model.Relationship) else None

    @strawberry.field(
        description="A relationship by the external id set with setRelationshipExternalId.",
        extensions=_READ,
        graphql_type=Relationship | None,
    )
    async def relationship_by_external_id(
        self, info: Info, external_id: str
    ) -> model.Relationship | None:
        selection = selection_here(Relationship, info)
        federation = info.context.federation
        for provider in federation.referencing(model.Entity.RELATIONSHIP, "building"):
            link = model.Link(provider, model.Entity.RELATIONSHIP, "external_id", external_id)
            found = await info.context.loaders.one(link, selection)
            if isinstance(found, model.Relationship):
                return found
        info.context.report(
            NotFound(f"No relationship has the external id '{external_id[:80]}'."),
            info.path.as_list(),
        )
        return None
