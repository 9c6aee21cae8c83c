"""Subscriptions: changes providers report by webhook, with the fresh object.

Each change is read again from its provider with a loader of its own, so the
object is the one after the change, never a copy cached by this connection.
"""

from __future__ import annotations

import enum
import time
from collections.abc import AsyncGenerator

import strawberry
from strawberry.scalars import JSON
from strawberry.types.nodes import SelectedField

from gateway import events, model
from gateway.errors import (
    BadUserInput,
    GatewayError,
    LimitExceeded,
    LinksUnavailable,
    SubscriptionEnded,
    Unauthenticated,
)
from gateway.federation.fan_out import Federation
from gateway.federation.links import reference
from gateway.federation.loaders import Loaders
from gateway.state.bus import FellBehind
from schema.ids import encode_entity_id, encode_id
from schema.permissions import demand, demand_to_read, may_read, shown_fields
from schema.selection import selection_of
from schema.types import NODE_TYPES, Info, Node

__all__ = ["MAX_SUBSCRIPTIONS", "Subscription"]

MAX_SUBSCRIPTIONS = 10

ChangeKind = events.ChangeKind
strawberry.enum(ChangeKind, description="What happened to the object.")


@strawberry.enum(description="The node types a change can be about.")
class NodeType(enum.Enum):
    LANDLORD = "Landlord"
    BUILDING = "Building"
    UNIT = "Unit"
    TENANT = "Tenant"
    RELATIONSHIP = "Relationship"
    LEASE = "Lease"
    CHARGE = "Charge"
    PAYMENT = "Payment"
    MAINTENANCE_REQUEST = "MaintenanceRequest"
    WORK_ORDER = "WorkOrder"
    VENDOR = "Vendor"
    LISTING = "Listing"
    AGENT = "Agent"


@strawberry.type(description="One field of the object, before and after the change.")
class FieldChange:
    field: str = strawberry.field(description="As this API names it: `lastName`.")
    previous: JSON | None = strawberry.field(
        description="Null where the gateway could not know it (the provider said only the new "
        "value and no copy was cached), or where it was null."
    )
    new: JSON | None


@strawberry.type(description="A change a provider reported, with the object as it is now.")
class EntityChange:
    kind: ChangeKind
    type: NodeType
    id: strawberry.ID
    provider: str
    source_id: str
    node: model.Record | None = strawberry.field(
        description="Null once deleted, or if unreadable.", graphql_type=Node | None
    )
    entity_id: strawberry.ID | None = strawberry.field(
        description="The linked group's: a change to one record is told for each record "
        "linked with it too."
    )
    changes: list[FieldChange] = strawberry.field(
        description="What changed, wherever the gateway can know it: from the object's cached "
        "copy read again, or from the provider's payload. Fields the caller may not read are "
        "left out."
    )


def _told(info: Info, change: events.Change) -> list[FieldChange]:
    shown = shown_fields(NODE_TYPES[change.entity])
    told = []
    for item in change.changes:
        name, scope = shown.get(item.field, (None, None))
        if name is not None and (scope is None or info.context.caller.allows(scope)):
            told.append(FieldChange(field=name, previous=item.previous, new=item.new))
    return told


def _node_selection(info: Info, entity: model.Entity) -> model.Selection:
    for field in info.selected_fields[0].selections:
        if isinstance(field, SelectedField) and field.name == "node":
            return selection_of(NODE_TYPES[entity], field.selections)
    return model.Selection()


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Changes to objects, as providers report them (Primmo, pms, SCOM webhooks)."
    )
    async def entity_changed(
        self,
        info: Info,
        types: list[NodeType] | None = None,
        providers: list[str] | None = None,
    ) -> AsyncGenerator[EntityChange, None]:
        context = info.context
        demand(context.caller, "property:read")
        _named(context.federation, types, providers)
        for named in types or []:
            demand_to_read(context.caller, model.Entity(named.value))
        if context.subscriptions >= MAX_SUBSCRIPTIONS:
            raise LimitExceeded(
                "TOO_MANY_SUBSCRIPTIONS",
                f"A connection may hold at most {MAX_SUBSCRIPTIONS} subscriptions.",
                MAX_SUBSCRIPTIONS,
                context.subscriptions + 1,
            )
        context.subscriptions += 1
        try:
            async for change in _changes(info, types, providers):
                yield change
        except FellBehind as error:
            raise SubscriptionEnded(error.code, str(error)) from None
        finally:
            context.subscriptions -= 1


def _named(
    federation: Federation, types: list[NodeType] | None, providers: list[str] | None
) -> None:
    """Refuses what a list refuses: a provider the gateway does not serve, or an empty list,
    whose subscription would never be told anything (and `types: []` was taken as every
    type), rather than stay silent for ever."""
    if types is not None and not types:
        raise BadUserInput("`types` is empty: name at least one type, or leave `types` out.")
    federation.named(providers)


async def _changes(
    info: Info, types: list[NodeType] | None, providers: list[str] | None
) -> AsyncGenerator[EntityChange, None]:
    """Each change read with loaders of its own, its node and the relations asked of it: a
    subscription lives for hours, and the operation's loaders would answer later changes'
    relations from what the first one read, and keep all of it for as long."""
    wanted = {model.Entity(t.value) for t in types} if types else None
    federation = info.context.federation
    async for change in info.context.bus.listen():
        if info.context.caller.expired(time.time()):
            raise Unauthenticated("The bearer token expired; reconnect with a fresh one.")
        if (wanted is not None and change.entity not in wanted) or (
            providers is not None and change.provider not in providers
        ):
            continue
        if change.entity not in NODE_TYPES or not may_read(info.context.caller, change.entity):
            continue
        node = None
        info.context.loaders = Loaders(federation)
        if change.kind is not events.ChangeKind.DELETED:
            link = model.Link(change.provider, change.entity, "id", change.source_id)
            try:
                node = await info.context.loaders.one(link, _node_selection(info, change.entity))
            except GatewayError:
                node = None
        yield EntityChange(
            kind=change.kind,
            type=NodeType(change.entity.value),
            id=strawberry.ID(encode_id(change.entity, change.provider, change.source_id)),
            provider=change.provider,
            source_id=change.source_id,
            node=node,
            entity_id=await _entity_id(federation, change),
            changes=_told(info, change),
        )


async def _entity_id(federation: Federation, change: events.Change) -> strawberry.ID | None:
    ref = reference(change.provider, change.source_id)
    try:
        group = (await federation.linking.groups(change.entity, [ref]))[ref]
    except LinksUnavailable:
        return None
    return strawberry.ID(encode_entity_id(change.entity, group.label))
