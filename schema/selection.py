"""The GraphQL selection set, translated into the unified `Selection` connectors push down.

Field names are mapped through the Strawberry type definitions, so a field
renamed in the schema (`unitCode` for `code`) still reaches the connector by
its unified name, and fragments are flattened as GraphQL merges them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from graphql import OperationDefinitionNode
from graphql.pyutils import Path
from strawberry import Info
from strawberry.types.base import get_object_definition, has_object_definition
from strawberry.types.field import StrawberryField
from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection
from strawberry.utils.str_converters import to_camel_case

from gateway import model

__all__ = ["Places", "connection_selection", "selection_here", "selection_of"]

_Place = tuple[type, tuple[str | None, ...]]


@dataclass
class Places:
    """Each place in one operation (`_place`) under the type asked there, with its selection.

    One operation's only, so it holds at most a selection per field of it (as many as
    `max_fields` allows): a websocket's context outlives the operations sent over it, and
    the same place in the next one may select other fields."""

    operation: OperationDefinitionNode | None = None
    selections: dict[_Place, model.Selection] = field(default_factory=dict)

    def of(self, operation: OperationDefinitionNode) -> dict[_Place, model.Selection]:
        if operation is not self.operation:
            self.operation, self.selections = operation, {}
        return self.selections


def _flatten(selections: Iterable[Selection]) -> Iterable[SelectedField]:
    for item in selections:
        if isinstance(item, SelectedField):
            yield item
        elif isinstance(item, FragmentSpread | InlineFragment):
            yield from _flatten(item.selections)


def _object_type(annotation: Any) -> type | None:
    while hasattr(annotation, "of_type"):
        annotation = annotation.of_type
    if hasattr(annotation, "resolve_type") and callable(annotation.resolve_type):
        annotation = annotation.resolve_type()
    return annotation if has_object_definition(annotation) else None


@cache
def _fields(graphql_type: type) -> dict[str, tuple[str, type | None]]:
    """GraphQL name -> (unified name, related type if the field is a relation); one entry
    per type of the schema, so bounded by the schema itself. A relation is resolved (through
    the loaders); an object-typed field without a resolver is a value the record holds
    (`Money`), asked of the provider like any other field. A field computed from another
    names it (`metadata={"reads": "rent"}`), and asks the provider for that one."""
    definition = get_object_definition(graphql_type, strict=True)
    return {
        (field.graphql_name or to_camel_case(field.python_name)): (
            _reads(field),
            _object_type(field.type) if field.base_resolver is not None else None,
        )
        for field in definition.fields
    }


def _reads(field: StrawberryField) -> str:
    metadata: Mapping[str, Any] = field.metadata or {}
    reads = metadata.get("reads")
    return reads if isinstance(reads, str) else field.python_name


def selection_of(graphql_type: type, selections: Iterable[Selection]) -> model.Selection:
    known = _fields(graphql_type)
    fields: set[str] = set()
    relations: dict[str, model.Selection] = {}
    for selected in _flatten(selections):
        entry = known.get(selected.name)
        if entry is None:
            continue
        name, related = entry
        if related is None:
            fields.add(name)
        else:
            relations[name] = selection_of(related, selected.selections)
    return model.Selection(frozenset(fields), relations)


def selection_here(graphql_type: type, info: Info[Any, Any]) -> model.Selection:
    """The selection under the field being resolved, worked out once per operation for each
    place in it rather than once per parent object: a relation under 100 units is
    resolved 100 times, and translating Strawberry's selected fields each time cost more
    than the loader call itself."""
    places: Places = info.context.selections
    memo = places.of(info.operation)
    key = (graphql_type, _place(info.path))
    found = memo.get(key)
    if found is None:
        found = memo[key] = selection_of(graphql_type, info.selected_fields[0].selections)
    return found


def _place(path: Path | None) -> tuple[str | None, ...]:
    """The response keys down to a field, each with the type of the object it was asked of:
    what decides which fields GraphQL collects there. List indices are left out, so every
    element of a list shares one place."""
    place: list[str | None] = []
    while path is not None:
        if isinstance(path.key, str):
            place += (path.key, path.typename)
        path = path.prev
    return tuple(place)


def connection_selection(graphql_type: type, field: SelectedField) -> tuple[model.Selection, bool]:
    """The node selection under `edges { node { ... } }`, and whether `totalCount` is asked."""
    nodes: list[Selection] = []
    count = False
    for child in _flatten(field.selections):
        if child.name == "totalCount":
            count = True
        elif child.name == "edges":
            for edge_field in _flatten(child.selections):
                if edge_field.name == "node":
                    nodes.extend(edge_field.selections)
    return selection_of(graphql_type, nodes), count
