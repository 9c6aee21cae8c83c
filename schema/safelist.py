"""With a safelist configured, only the operations on it run, over HTTP and websockets alike.

The check runs before validation, so nothing else is spent on an operation that
will not run; what matches is `gateway/edge/persisted/safelist.py`'s to say.
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from gateway.edge.persisted.safelist import not_in_safelist
from schema.context import Context

__all__ = ["SafelistCheck"]


class SafelistCheck(SchemaExtension):
    def on_validate(self) -> Iterator[None]:
        context = self.execution_context.context
        query = self.execution_context.query or ""
        document = self.execution_context.graphql_document
        if isinstance(context, Context) and context.safelist is not None:
            if not context.safelist.allows(query, document):
                refusal = not_in_safelist()
                self.execution_context.pre_execution_errors = [
                    GraphQLError(refusal.message, original_error=refusal)
                ]
        yield
