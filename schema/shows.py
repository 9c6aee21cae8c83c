"""How a GraphQL type recognises the model record it shows.

GraphQL asks each object value whether it is of the type it is completed as
(`is_type_of`). For a type that shows a `gateway.model` record, the answer is
the record's class, and saying so as data, not as code, lets the compiled
executor (`schema/compiled`) check the class itself instead of building the
resolver information graphql-core would hand the check.
"""

from __future__ import annotations

from typing import Any

from strawberry.types.base import get_object_definition

__all__ = ["Shows", "declare"]


class Shows:
    """`is_type_of = Shows(model.Unit)` on a Strawberry type."""

    def __init__(self, record: type) -> None:
        self.record = record

    def __call__(self, obj: Any, _info: Any) -> bool:
        return isinstance(obj, self.record)


def declare(graphql_type: type, record: type) -> None:
    """`graphql_type`'s objects are `record`s. On the definition, which its specializations
    (a generic's `UnitEdge`) copy; and on the class, which a subclass decorated later reads
    its own from."""
    check = Shows(record)
    get_object_definition(graphql_type, strict=True).is_type_of = check
    graphql_type.is_type_of = check  # type: ignore[attr-defined]
