"""Every error leaves with a stable `extensions.code`; nothing unexpected leaves with its details.

Gateway errors carry their code (and provider); GraphQL's own validation
errors get the usual codes; any other exception is a bug: the caller sees
`INTERNAL_SERVER_ERROR` with a request id, the log gets the traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from gateway import notices
from gateway.errors import GatewayError
from schema.context import Context

__all__ = ["ErrorShaping", "log_errors"]

logger = logging.getLogger("gateway.graphql")


def _shaped(error: GraphQLError, request_id: str) -> GraphQLError:
    original = error.original_error
    if isinstance(original, GatewayError):
        extensions = original.extensions
        message = original.message
    elif original is None:
        syntax = error.message.startswith("Syntax Error")
        extensions = {"code": "GRAPHQL_PARSE_FAILED" if syntax else "GRAPHQL_VALIDATION_FAILED"}
        message = error.message
    elif isinstance(original, GraphQLError):
        extensions = {"code": "BAD_USER_INPUT"}  # a variable's value that does not fit its type
        message = error.message
    else:
        extensions = {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}
        message = f"Unexpected error; quote request id {request_id} when reporting it."
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=extensions,
    )


class ErrorShaping(SchemaExtension):
    """Shapes errors, and collects provider warnings into `extensions.warnings`."""

    def on_operation(self) -> Iterator[None]:
        self.warnings: list[dict[str, Any]] = []
        with notices.collecting(self.warnings):
            yield
        result = self.execution_context.result
        if result is None:
            return
        context = self.execution_context.context
        request_id = context.request_id if isinstance(context, Context) else "-"
        errors = [_shaped(error, request_id) for error in result.errors or []]
        if isinstance(context, Context):
            errors.extend(
                GraphQLError(
                    item.error.message, path=list(item.path), extensions=item.error.extensions
                )
                for item in context.reported
            )
        result.errors = errors or None

    def get_results(self) -> dict[str, Any]:
        warnings = getattr(self, "warnings", None)
        return {"warnings": warnings} if warnings else {}


def log_errors(errors: list[GraphQLError], request_id: str) -> None:
    """Expected errors are one line each; unexpected ones keep their traceback, in the log only."""
    for error in errors:
        original = error.original_error
        if original is None or isinstance(original, GatewayError | GraphQLError):
            logger.info("request %s: %s", request_id, error.message)
        else:
            logger.error("request %s: unexpected error", request_id, exc_info=original)
