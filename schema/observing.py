"""Each GraphQL operation counted, timed and (when tracing is on) traced, as a whole.

It wraps the other extensions, so it sees errors already shaped and reads the
outcome from their stable codes. Only operations that validated (they reached
execution) are counted under their own name: any other name is just the
caller's text. Nothing here runs per field.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

from opentelemetry.trace import Span, StatusCode, Tracer
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import SchemaExtension
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType

from gateway.observability import requestid
from gateway.observability.metrics import INVALID, Metrics
from schema.context import Context

__all__ = ["Observing"]

_REFUSED = (MissingQueryError, CannotGetOperationTypeError, InvalidOperationTypeError)
"""Raised before any result exists; the HTTP layer answers them as bad requests."""


class Observing(SchemaExtension):
    def __init__(self, metrics: Metrics, tracer: Tracer | None) -> None:
        self._metrics = metrics
        self._tracer = tracer
        self._validated = False

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        outcome = "INTERNAL_SERVER_ERROR"
        with self._span() as span:
            try:
                yield
            except _REFUSED:
                outcome = "BAD_REQUEST"
                raise
            except (GeneratorExit, asyncio.CancelledError):
                outcome = self._ended()
                raise
            else:
                outcome = self._outcome()
            finally:
                name, kind = self._labels()
                self._metrics.operation(name, kind, outcome, time.perf_counter() - started)
                self._count_executor()
                if span is not None:
                    span.update_name(f"graphql {kind} {name}")
                    span.set_attribute("graphql.operation.name", name)
                    span.set_attribute("graphql.operation.type", kind)
                    span.set_attribute("propgate.outcome", outcome)
                    if outcome != "ok":
                        span.set_status(StatusCode.ERROR, outcome)

    def on_execute(self) -> Iterator[None]:
        self._validated = True
        yield

    def _count_executor(self) -> None:
        """Which executor ran the operation, as it noted on the context (taken, so that the
        next operation on a websocket's context is not counted under it)."""
        context = self.execution_context.context
        if isinstance(context, Context) and context.executor is not None:
            if self._validated:
                self._metrics.executed(context.executor)
            context.executor = None

    @contextlib.contextmanager
    def _span(self) -> Iterator[Span | None]:
        if self._tracer is None:
            yield None
            return
        request_id = requestid.current()
        with self._tracer.start_as_current_span(
            "graphql", attributes={"propgate.request_id": request_id} if request_id else None
        ) as span:
            yield span

    def _outcome(self) -> str:
        result = self.execution_context.result
        if result is None:
            return "INTERNAL_SERVER_ERROR"
        if not result.errors:
            return "ok"
        code = (result.errors[0].extensions or {}).get("code")
        return str(code) if code else "INTERNAL_SERVER_ERROR"

    def _ended(self) -> str:
        """The outcome of an operation cut short: one refused before it ran, whose websocket
        stream is closed at its error, has that error's code; a subscription its client ended
        (`complete`, `stop`, the socket closed) ended as subscriptions do, `ok`; any other
        operation was cancelled before it answered (its client gone, the server stopping),
        which is neither a success nor the gateway's failure."""
        result = self.execution_context.result
        if isinstance(result, PreExecutionError):
            return self._outcome()
        if self._validated and self.execution_context.operation_type is OperationType.SUBSCRIPTION:
            return "ok"
        return "CANCELLED"

    def _labels(self) -> tuple[str, str]:
        if not self._validated:
            return INVALID, "unknown"
        context = self.execution_context
        return self._metrics.operation_name(context.operation_name), context.operation_type.value
