"""The unified GraphQL API: types and resolvers only, nothing provider-specific."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from graphql.validation import NoSchemaIntrospectionCustomRule
from opentelemetry.trace import Tracer
from strawberry.extensions import AddValidationRules
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext
from strawberry.types.base import get_object_definition

from gateway import model
from gateway.observability.metrics import Metrics
from schema.compiled import CompiledExecutor, GraphQLCoreExecutor
from schema.context import Context
from schema.documents import CachedParsing, CachedValidation, Plans
from schema.errors import ErrorShaping, log_errors, request_id_of
from schema.limits import OperationDeadline, OperationLimits
from schema.money import SCALARS
from schema.mutation import Mutation
from schema.observing import Observing
from schema.permissions import READ_SCOPES, guard_reads
from schema.query import Query
from schema.safelist import SafelistCheck
from schema.subscription import Subscription
from schema.types import GRAPHQL_OF, NODE_TYPES

__all__ = ["Context", "GatewaySchema", "build_schema", "sdl"]


class GatewaySchema(strawberry.Schema):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.plans = Plans()
        """Its compiled plans, which go with it."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        context: Any = execution_context.context if execution_context else None
        log_errors(errors, request_id_of(context))


def build_schema(
    introspection: bool = True,
    metrics: Metrics | None = None,
    tracer: Tracer | None = None,
    compiled: bool = True,
) -> GatewaySchema:
    """With `metrics`, operations are counted (and traced with `tracer`): first in the list,
    so the observer exits last and sees the errors already shaped. `compiled`: queries run
    through their compiled plans (`schema/compiled`), else all through graphql-core."""
    extensions: list[Any] = [ErrorShaping, SafelistCheck, OperationLimits, OperationDeadline]
    if metrics is not None:
        extensions.insert(0, lambda: Observing(metrics, tracer))
    if not introspection:
        extensions.append(lambda: AddValidationRules([NoSchemaIntrospectionCustomRule]))
    extensions += [CachedParsing, CachedValidation]
    schema = GatewaySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=list(NODE_TYPES.values()),
        extensions=extensions,
        execution_context_class=CompiledExecutor if compiled else GraphQLCoreExecutor,
        config=StrawberryConfig(scalar_map=SCALARS),
    )
    guard_reads(schema._schema, _read_scopes())
    return schema


def _read_scopes() -> dict[str, str]:
    """`READ_SCOPES` by the GraphQL name of each type's record."""
    record_of = {entity: record for record, entity in model.ENTITY_OF.items()}
    return {
        get_object_definition(GRAPHQL_OF[record_of[entity]], strict=True).name: scope
        for entity, scope in READ_SCOPES.items()
    }


def sdl() -> str:
    return build_schema().as_str() + "\n"
