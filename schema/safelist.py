"""With a safelist configured, only the operations on it run, over HTTP and websockets alike.

The check is on the operation's exact text, by its SHA-256 (the hash persisted
queries use), before validation, so nothing else is spent on an operation that
will not run.
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from gateway.persisted import not_in_safelist, sha256_of
from schema.context import Context

__all__ = ["Safelist"]


class Safelist(SchemaExtension):
    def on_validate(self) -> Iterator[None]:
        context = self.execution_context.context
        query = self.execution_context.query or ""
        if isinstance(context, Context) and context.safelist is not None:
            if sha256_of(query) not in context.safelist:
                refusal = not_in_safelist()
                self.execution_context.pre_execution_errors = [
                    GraphQLError(refusal.message, original_error=refusal)
                ]
        yield
