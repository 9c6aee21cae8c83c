"""Scopes on fields: without the scope, `FORBIDDEN` on that field and data everywhere else."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import (
    GraphQLField,
    GraphQLFieldResolver,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
    default_field_resolver,
    get_named_type,
)
from strawberry.extensions.field_extension import FieldExtension
from strawberry.permission import BasePermission, PermissionExtension
from strawberry.types.base import get_object_definition
from strawberry.utils.str_converters import to_camel_case

from gateway.edge.callers import Caller
from gateway.errors import Forbidden
from gateway.model import Entity

__all__ = [
    "READ_SCOPES",
    "Guarded",
    "Scope",
    "demand",
    "demand_to_read",
    "guard_reads",
    "may_read",
    "requires",
    "shown_fields",
]

READ_SCOPES: dict[Entity, str] = {
    Entity.LEASE: "tenant:read",
    Entity.RENT_CHANGE: "tenant:read",
    Entity.CHARGE: "financial:read",
    Entity.PAYMENT: "financial:read",
    Entity.BALANCE: "financial:read",
}
"""What reading a type needs beyond `property:read`, wherever it is reached: its root list,
a relation to it, a mutation's payload, `node(id)`, or a change to it. A lease and its rent
changes are personal data (who rents at what price); what tenants owe and pay is financial,
a scope of its own as property-management systems keep it. `guard_reads` holds every field
of the schema to it."""


def demand(caller: Caller, scope: str, refusal: str | None = None) -> None:
    """For checks a field extension cannot make: a subscription, or one argument of a field."""
    if not caller.allows(scope):
        raise Forbidden(refusal or f"This needs the `{scope}` scope.", scope=scope)


class Scope(BasePermission):
    """Decided by the caller alone, never by the object or the arguments: so the compiled
    executor (`schema/compiled`) checks it once per request for every field it guards,
    and reads a permitted field straight from the record."""

    def __init__(self, scope: str, refusal: str | None = None) -> None:
        self.scope = scope
        self.message = refusal or f"This needs the `{scope}` scope."

    def check(self, caller: Caller) -> None:
        demand(caller, self.scope, self.message)

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:  # noqa: ARG002
        self.check(info.context.caller)
        return True


def may_read(caller: Caller, entity: Entity) -> bool:
    scope = READ_SCOPES.get(entity)
    return scope is None or caller.allows(scope)


def demand_to_read(caller: Caller, entity: Entity) -> None:
    scope = READ_SCOPES.get(entity)
    if scope is not None:
        demand(caller, scope, f"Reading a {entity.value} needs the `{scope}` scope.")


def guard_reads(schema: GraphQLSchema, scopes: Mapping[str, str]) -> None:
    """Every field that leads to a type named in `scopes` (the type itself, a list of it, a
    connection of it) demands the type's scope before it resolves: one place, where a new
    relation cannot forget it. Done once on the built schema, so fields that lead elsewhere
    cost nothing more."""
    for graphql_type in schema.type_map.values():
        if not isinstance(graphql_type, GraphQLObjectType) or graphql_type.name.startswith("__"):
            continue
        for field in graphql_type.fields.values():
            reached = _reached(field)
            scope = scopes.get(reached.name)
            if scope is not None:
                refusal = f"Reading a {reached.name} needs the `{scope}` scope."
                field.resolve = Guarded(
                    field.resolve or default_field_resolver, Scope(scope, refusal)
                )


def _reached(field: GraphQLField) -> GraphQLNamedType:
    """The type a field leads to; for a Relay connection (`edges { node }`), its nodes'."""
    named = get_named_type(field.type)
    edges = named.fields.get("edges") if isinstance(named, GraphQLObjectType) else None
    edge = get_named_type(edges.type) if edges is not None else None
    if isinstance(edge, GraphQLObjectType) and "node" in edge.fields:
        node: GraphQLNamedType = get_named_type(edge.fields["node"].type)
        return node
    return named


class Guarded:
    """A field's resolver behind its type's read scope (`guard_reads`). The scope is data
    beside the resolver, not hidden in a closure, so the compiled executor checks it once
    per request (as any `Scope`) and still calls or reads past it the fast way."""

    __slots__ = ("resolve", "scope")

    def __init__(self, resolve: GraphQLFieldResolver, scope: Scope) -> None:
        self.resolve = resolve
        self.scope = scope

    def __call__(self, root: Any, info: GraphQLResolveInfo[Any], **arguments: Any) -> Any:
        self.scope.check(info.context.caller)
        return self.resolve(root, info, **arguments)


def requires(scope: str) -> list[FieldExtension]:
    return [PermissionExtension(permissions=[Scope(scope)], use_directives=False)]


_SHOWN: dict[type, dict[str, tuple[str, str | None]]] = {}


def shown_fields(graphql_type: type) -> dict[str, tuple[str, str | None]]:
    """A type's fields by unified name: how this API names each, and the scope reading it
    needs (None: the type's own). What is told of a record outside its fields (what changed,
    in `entityChanged`) is told under the same names and scopes."""
    known = _SHOWN.get(graphql_type)
    if known is not None:
        return known
    shown: dict[str, tuple[str, str | None]] = {}
    for field in get_object_definition(graphql_type, strict=True).fields:
        scopes = [
            permission.scope
            for extension in field.extensions
            if isinstance(extension, PermissionExtension)
            for permission in extension.permissions
            if isinstance(permission, Scope)
        ]
        name = field.graphql_name or to_camel_case(field.python_name)
        shown[field.python_name] = (name, scopes[0] if scopes else None)
    _SHOWN[graphql_type] = shown
    return shown
