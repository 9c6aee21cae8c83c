"""Every error leaves with a stable `extensions.code`; nothing unexpected leaves with its details.

Gateway errors carry their code (and provider); GraphQL's own validation
errors get the usual codes; any other exception is a bug: the caller sees
`INTERNAL_SERVER_ERROR` with a request id, the log gets the traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError, InitialIncrementalExecutionResult
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionResult, StreamExecutionResult

from gateway import notices
from gateway.errors import GatewayError
from schema.context import Context

__all__ = ["ErrorShaping", "log_errors", "request_id_of"]

logger = logging.getLogger("gateway.graphql")

GraphQLResult = GraphQLExecutionResult | InitialIncrementalExecutionResult
"""graphql-core's own results, which an operation's may be (Strawberry's `ExecutionContext`)."""


def _code_of(error: GraphQLError) -> str:
    original = error.original_error
    if isinstance(original, GatewayError):
        return original.code
    if original is None:
        syntax = error.message.startswith("Syntax Error")
        return "GRAPHQL_PARSE_FAILED" if syntax else "GRAPHQL_VALIDATION_FAILED"
    if isinstance(original, GraphQLError):
        return "BAD_USER_INPUT"  # a variable's value that does not fit its type
    return "INTERNAL_SERVER_ERROR"


def _shaped(error: GraphQLError, request_id: str) -> GraphQLError:
    original = error.original_error
    code = _code_of(error)
    if isinstance(original, GatewayError):
        extensions = original.extensions
        message = original.message
    elif code == "INTERNAL_SERVER_ERROR":
        extensions = {"code": code, "requestId": request_id}
        message = f"Unexpected error; quote request id {request_id} when reporting it."
    else:
        extensions = {"code": code}
        message = error.message
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=extensions,
    )


def request_id_of(context: object) -> str:
    """The request id a context carries, for messages and logs; "-" outside a request."""
    return context.request_id if isinstance(context, Context) else "-"


class ErrorShaping(SchemaExtension):
    """Shapes errors, and collects provider warnings into `extensions.warnings`."""

    _streamed: StreamExecutionResult | None = None

    def on_operation(self) -> Iterator[None]:
        self.warnings: list[dict[str, Any]] = []
        with notices.collecting(self.warnings):
            yield
        result = self.execution_context.result
        if result is None or result is self._streamed:
            return
        _shape(result, self.execution_context.context)

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        """A websocket sends each result of its operation (a query's, a subscription's
        events, or an error before it ran) while `on_operation` is still suspended: shaped
        only there, they left without their codes, and a query's errors reported beside its
        data never left. So a streamed result is shaped as it leaves, and the last one,
        which is the operation's result, is not shaped again."""
        if isinstance(result, ExecutionResult):
            _shape(result, self.execution_context.context)
        self._streamed = result
        yield

    def get_results(self) -> dict[str, Any]:
        warnings = getattr(self, "warnings", None)
        return {"warnings": warnings} if warnings else {}


def _shape(result: ExecutionResult | GraphQLResult, context: object) -> None:
    """The result's errors shaped, then those reported beside its data, taken from the
    context: a subscription's event leaves with the errors its resolution reported, and
    the next event does not repeat them."""
    request_id = request_id_of(context)
    errors = [_shaped(error, request_id) for error in result.errors or []]
    if isinstance(context, Context):
        errors.extend(
            GraphQLError(item.error.message, path=list(item.path), extensions=item.error.extensions)
            for item in context.reported
        )
        context.reported.clear()
    result.errors = errors or None


def log_errors(errors: list[GraphQLError], request_id: str) -> None:
    """Expected errors are one line each, by code and path: their messages quote what the
    caller sent (a variable's value, an id, a filter's text, the query's own tokens), which
    a log must never hold; the caller has the message. Unexpected ones keep their traceback,
    in the log only."""
    for error in errors:
        code = _code_of(error)
        if code == "INTERNAL_SERVER_ERROR":
            logger.error("request %s: unexpected error", request_id, exc_info=error.original_error)
        else:
            path = ".".join(str(key) for key in error.path or ())
            logger.info("request %s: %s%s", request_id, code, f" at {path}" if path else "")
