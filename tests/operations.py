"""Valid GraphQL operations drawn by hypothesis from a schema, for the differential test.

Driven by the schema alone (its types, fields and arguments), so a type added to
the schema is drawn as soon as it exists. What is drawn: root fields and their
arguments (literals or variables), nested selections with aliases (including the
same field twice under one key, which GraphQL merges), `__typename`, named
fragments and inline fragments on the type itself, on an interface it implements
or, under an abstract type, on its possible types, and `@include`/`@skip` with
literals or variables. Argument values come from pools the test fills from the
world it runs on (ids that exist, and some that do not).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    get_named_type,
    is_leaf_type,
)
from graphql.pyutils import Undefined
from hypothesis import strategies as st

__all__ = ["Operation", "Pools", "operations"]

Draw = Callable[[st.SearchStrategy[Any]], Any]


@dataclass(frozen=True)
class Operation:
    text: str
    variables: dict[str, Any]


@dataclass(frozen=True)
class Pools:
    """Values an argument of a scalar type is drawn from, by the type's name."""

    scalars: Mapping[str, Sequence[Any]]
    skipped: frozenset[str] = frozenset()
    """`Type.field`s never selected: what two gateways cannot answer alike whatever their
    executor (each one's own measured latencies)."""
    root_fields: Sequence[str] = ()
    """The root fields drawn from; empty: all of them."""


@dataclass
class _Builder:
    draw: Draw
    schema: GraphQLSchema
    pools: Pools
    max_depth: int
    variables: dict[str, tuple[str, Any]] = field(default_factory=dict)
    fragments: dict[str, str] = field(default_factory=dict)
    aliases: int = 0
    shapes: frozenset[str] = frozenset()
    """Field names whose type differs from one type to another (`status`: an enum on one, a
    string on another): always aliased, since fragments on two types selecting both under
    one key would not merge, and the operation would be invalid."""

    def __post_init__(self) -> None:
        self.shapes = _shapes(self.schema)

    def variable(self, type_: GraphQLInputType, value: Any) -> str:
        name = f"v{len(self.variables)}"
        self.variables[name] = (str(type_), value)
        return f"${name}"

    # Arguments

    def value(self, type_: GraphQLInputType) -> Any:
        """A Python value of the input type (JSON-shaped, as variables carry it)."""
        if isinstance(type_, GraphQLNonNull):
            return self.present(type_.of_type)
        if self.draw(st.integers(0, 9)) == 0:
            return None
        if isinstance(type_, GraphQLList):
            size = self.draw(st.integers(0, 2))
            return [self.value(type_.of_type) for _ in range(size)]
        if isinstance(type_, GraphQLEnumType):
            return self.draw(st.sampled_from(sorted(type_.values)))
        if isinstance(type_, GraphQLInputObjectType):
            return {
                name: self.value(item.type)
                for name, item in type_.fields.items()
                if isinstance(item.type, GraphQLNonNull) or self.draw(st.booleans())
            }
        assert isinstance(type_, GraphQLScalarType)
        pool = self.pools.scalars.get(type_.name)
        if pool:
            return self.draw(st.sampled_from(list(pool)))
        if type_.name == "Boolean":
            return self.draw(st.booleans())
        return None

    def literal(self, type_: GraphQLInputType, value: Any) -> str:
        if value is None:
            return "null"
        named = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
        if isinstance(named, GraphQLList):
            return "[" + ", ".join(self.literal(named.of_type, item) for item in value) + "]"
        if isinstance(named, GraphQLEnumType):
            return str(value)
        if isinstance(named, GraphQLInputObjectType):
            parts = [f"{k}: {self.literal(named.fields[k].type, v)}" for k, v in value.items()]
            return "{" + ", ".join(parts) + "}"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return repr(value)
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'

    def arguments(self, definition: GraphQLField) -> str:
        given = []
        for name, argument in definition.args.items():
            if not self._given(argument):
                continue
            value = self.value(argument.type)
            if self.draw(st.integers(0, 4)) == 0:
                given.append(f"{name}: {self.variable(argument.type, value)}")
            else:
                given.append(f"{name}: {self.literal(argument.type, value)}")
        return f"({', '.join(given)})" if given else ""

    def _given(self, argument: GraphQLArgument) -> bool:
        required = isinstance(argument.type, GraphQLNonNull) and argument.default_value is Undefined
        return required or self.draw(st.integers(0, 3)) == 0

    def present(self, type_: GraphQLInputType) -> Any:
        """A value that is not null, for a non-null type."""
        for _ in range(5):
            value = self.value(type_)
            if value is not None:
                return value
        if isinstance(type_, GraphQLList):
            return []
        if isinstance(type_, GraphQLInputObjectType):
            return {}
        if isinstance(type_, GraphQLEnumType):
            return sorted(type_.values)[0]
        pool = self.pools.scalars.get(get_named_type(type_).name) or [False]
        return pool[0]

    # Selections

    def directives(self) -> str:
        choice = self.draw(st.integers(0, 7))
        if choice == 0:
            return f" @include(if: {self.draw(st.sampled_from(['true', 'false']))})"
        if choice == 1:
            flag = self.variable(GraphQLNonNull(_boolean(self.schema)), self.draw(st.booleans()))
            return f" @{self.draw(st.sampled_from(['skip', 'include']))}(if: {flag})"
        return ""

    def selection(self, type_: GraphQLNamedType, depth: int, fragments: int = 2) -> str:
        """`{ ... }` for a composite type: fields, then fragments (nested `fragments` deep)."""
        items: list[str] = []
        if isinstance(type_, GraphQLObjectType | GraphQLInterfaceType):
            items += self.fields(type_, depth)
        if isinstance(type_, GraphQLInterfaceType | GraphQLUnionType):
            possible = list(self.schema.get_possible_types(type_))
            most = 2 if fragments else 0
            chosen = self.draw(st.lists(st.sampled_from(possible), max_size=most, unique=True))
            items += [self.fragment(target, depth, fragments - 1) for target in chosen]
        elif fragments and isinstance(type_, GraphQLObjectType):
            if self.draw(st.integers(0, 3)) == 0:
                conditions: list[GraphQLNamedType] = [type_, *type_.interfaces]
                target = self.draw(st.sampled_from(conditions))
                items.append(self.fragment(target, depth, fragments - 1))
        if not items or self.draw(st.integers(0, 5)) == 0:
            items.insert(0, f"__typename{self.directives()}")
        order = self.draw(st.permutations(items))
        return "{ " + " ".join(order) + " }"

    def fragment(self, target: GraphQLNamedType, depth: int, fragments: int) -> str:
        """An inline fragment, or a named one spread here."""
        body = self.selection(target, depth, fragments)
        if self.draw(st.booleans()):
            return f"... on {target.name}{self.directives()} {body}"
        name = f"F{len(self.fragments)}"
        self.fragments[name] = f"fragment {name} on {target.name} {body}"
        return f"...{name}{self.directives()}"

    def fields(self, type_: GraphQLObjectType | GraphQLInterfaceType, depth: int) -> list[str]:
        usable = [
            name
            for name, definition in type_.fields.items()
            if f"{type_.name}.{name}" not in self.pools.skipped
            and (depth < self.max_depth or is_leaf_type(get_named_type(definition.type)))
        ]
        if depth == 0 and self.pools.root_fields:
            usable = [name for name in usable if name in self.pools.root_fields]
        if not usable:
            return []
        usable.sort(key=lambda name: not is_leaf_type(get_named_type(type_.fields[name].type)))
        chosen = self.draw(st.lists(st.sampled_from(usable), min_size=1, max_size=3))
        selected = []
        for name in chosen:
            definition = type_.fields[name]
            named = get_named_type(definition.type)
            arguments = self.arguments(definition)
            nested = "" if is_leaf_type(named) else " " + self.selection(named, depth + 1)
            if arguments or name in self.shapes or self.draw(st.booleans()):
                self.aliases += 1
                key = f"k{self.aliases}: "
            else:
                key = ""
            selected.append(f"{key}{name}{arguments}{self.directives()}{nested}")
        return selected


@cache
def _shapes(schema: GraphQLSchema) -> frozenset[str]:
    types: dict[str, set[str]] = {}
    for named in schema.type_map.values():
        if isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
            for name, definition in named.fields.items():
                types.setdefault(name, set()).add(str(definition.type))
    return frozenset(name for name, found in types.items() if len(found) > 1)


def _boolean(schema: GraphQLSchema) -> GraphQLScalarType:
    boolean = schema.get_type("Boolean")
    assert isinstance(boolean, GraphQLScalarType)
    return boolean


@st.composite
def operations(draw: Draw, schema: GraphQLSchema, pools: Pools, max_depth: int = 5) -> Operation:
    builder = _Builder(draw, schema, pools, max_depth)
    root = schema.query_type
    assert root is not None
    selection = builder.selection(root, 0)
    declared = ", ".join(f"${name}: {type_}" for name, (type_, _) in builder.variables.items())
    header = f"query Drawn({declared})" if declared else "query Drawn"
    text = " ".join([header, selection, *builder.fragments.values()])
    return Operation(text, {name: value for name, (_, value) in builder.variables.items()})
