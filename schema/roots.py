"""What every root field shares: the connection arguments, the connection itself, lookups by
global id. Each domain module (`schema.leasing`, ...) declares its root fields on a type of its
own with these, and `schema.query.Query` inherits them all."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types.nodes import SelectedField

from gateway import model
from gateway.errors import InvalidId, NotFound
from gateway.federation.fan_out import ListResult
from schema import linked
from schema.ids import decode_entity_id, decode_id, is_entity_id
from schema.permissions import demand_to_read
from schema.selection import connection_selection, selection_here
from schema.types import NODE_TYPES, Info

__all__ = ["After", "Distinct", "First", "Providers", "connection", "node", "node_of"]

First = Annotated[
    int | None,
    strawberry.argument(description="Page size; the server's default when left out."),
]
After = Annotated[str | None, strawberry.argument(description="`endCursor` of the previous page.")]
Providers = Annotated[
    list[str] | None,
    strawberry.argument(
        description="Only these providers (at least one); all that serve the type when left out."
    ),
]
Distinct = Annotated[
    bool,
    strawberry.argument(
        description="Each linked group once, where its first record in the list stands, "
        "fields from its records by provider precedence; `totalCount` counts groups."
    ),
]


async def connection(
    info: Info,
    entity: model.Entity,
    criteria: model.Criteria,
    first: int | None,
    after: str | None,
    providers: list[str] | None,
    distinct: bool = False,
) -> ListResult:
    """A root list over every provider that lists `entity`, its providers' failures reported
    beside the records of the others; `distinct`, each linked group once. Its read scope is
    the schema's to check (`permissions.guard_reads`)."""
    field = info.selected_fields[0]
    assert isinstance(field, SelectedField)
    selection, count = connection_selection(NODE_TYPES[entity], field)
    result = await info.context.federation.connection(
        entity,
        criteria=criteria,
        selection=selection,
        first=first,
        after=after,
        providers=providers,
        count=count,
        distinct=distinct,
    )
    for error in result.errors:
        info.context.report(error, info.path.as_list())
    return result


async def node(info: Info, global_id: str, path: list[str | int]) -> model.Record | None:
    """Any node by its global id, or a linked group by its entity id (as a `distinct` list
    shows it), if the caller may read its type."""
    if is_entity_id(global_id):
        entity = decode_entity_id(global_id)[0]
        _a_node(global_id, entity, "an entity id")
        demand_to_read(info.context.caller, entity)
        return await linked.node_by_entity_id(info, global_id, path)
    entity, provider, source_id = decode_id(global_id)
    _a_node(global_id, entity, "a global id")
    if not info.context.federation.knows(provider):
        raise InvalidId(f"'{global_id}' names a provider this gateway does not serve.")
    demand_to_read(info.context.caller, entity)
    selection = selection_here(NODE_TYPES[entity], info)
    link = model.Link(provider, entity, "id", source_id)
    record = await info.context.loaders.one(link, selection)
    if record is None:
        info.context.report(NotFound(f"No {entity.value} with id '{global_id}'."), path)
    return record


def _a_node(global_id: str, entity: model.Entity, kind: str) -> None:
    """Refuses an id of a type that is not a node (a balance is reached through its owner)."""
    if entity not in NODE_TYPES:
        raise InvalidId(f"'{global_id[:80]}' is not {kind} of this API.")


def node_of(global_id: str, entity: model.Entity) -> None:
    """Refuses a global id of another type where one type is expected."""
    if decode_id(global_id)[0] is not entity:
        raise InvalidId(f"'{global_id}' is not the id of a {entity.value.lower()}.")
