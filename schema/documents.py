"""Parsed and validated operations, kept for the next request with the same text.

Clients send the same few operation texts again and again, and validating even a
small one costs more CPU than executing it. Strawberry's own `ValidationCache`
would validate before `OperationLimits` has looked at the operation (and overwrite
its refusal), so an operation the limits refuse would still be validated, which is
the costly step a hostile operation aims at; this one validates only what the
limits let through. Both caches are bounded: the texts come from callers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import suppress
from functools import lru_cache

from graphql import GraphQLError, OperationType, get_operation_ast, parse
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

__all__ = ["CachedParsing", "CachedValidation", "operation_type"]

DOCUMENTS = 512

_parse = lru_cache(maxsize=DOCUMENTS)(parse)
_validate = lru_cache(maxsize=DOCUMENTS)(validate_document)


def operation_type(text: str | None, name: str | None) -> OperationType | None:
    """What an operation is, from the same cache that executing it will use; None when the
    text does not parse or names no single operation (execution then says why)."""
    if not text:
        return None
    try:
        operation = get_operation_ast(_parse(text), name)
    except GraphQLError:
        return None
    return operation.operation if operation is not None else None


class CachedParsing(SchemaExtension):
    """A text that does not parse is left to Strawberry, which reports the syntax error as
    an ordinary result (Strawberry's `ParserCache` raises it from the hook instead, and
    the error then leaves without its code)."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query is not None:
            with suppress(GraphQLError):
                context.graphql_document = _parse(context.query, **context.parse_options)
        yield


class CachedValidation(SchemaExtension):
    """Runs after `OperationLimits`; keyed by the parsed document, which `CachedParsing`
    hands out as the same object for the same text."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.pre_execution_errors is None and context.graphql_document is not None:
            context.pre_execution_errors = _validate(
                context.schema._schema, context.graphql_document, tuple(context.validation_rules)
            )
        yield
