"""graphql-core's executor, with the operation's plan doing the per-object work.

`CompiledExecutor` is the executor class Strawberry hands graphql-core. An
operation the plan covers (`plan_for`) runs through the plan's functions; any
other runs through graphql-core's own methods, which this class inherits
unchanged. The plan's functions mirror graphql-core's structure where the order
of events can be seen: resolvers start, errors are collected and nulls
propagate where and when graphql-core's would, lists and objects with several
pending values are gathered as graphql-core gathers them (its
`gather_with_cancel`), a single pending value is awaited in place. The one
departure: a relation fetched with its record (`schema.types.Follows`) is
completed with the record, where graphql-core awaits its resolver, so errors
inside it are collected earlier (the same errors; the GraphQL spec gives their
list no order). What they leave out is the work graphql-core repeats for every
value: building the resolver information and path of a field that is read off
the record, the resolver wrappers, `is_type_of` through the information, the
dispatch on the return type, and collecting the sub-fields again.

Anything unusual on the way (a value of an unexpected class, an awaitable where
a record was expected, an abstract type's own resolver) is handed to the very
graphql-core method that would have handled it, with the information it needs.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable
from functools import partial
from types import CoroutineType
from typing import TYPE_CHECKING, Any

from graphql import GraphQLError, OperationType
from graphql.pyutils import Path, gather_with_cancel
from graphql.type import GraphQLOutputType, GraphQLResolveInfo, GraphQLResolveInfoHelpers
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types import Info

from gateway.model import Selection
from schema.context import Context
from schema.permissions import Scope

if TYPE_CHECKING:
    from schema.compiled.plan import FieldPlan, Plan

__all__ = ["COMPILED", "GRAPHQL_CORE", "CompiledExecutor", "GraphQLCoreExecutor", "path_of"]

COMPILED = "compiled"
GRAPHQL_CORE = "graphql-core"

_new_path = tuple.__new__
"""`Path` is a named tuple: made as a tuple, without its Python-level constructor."""


def path_of(prev: Path | None, key: str | int, typename: str | None) -> Path:
    return _new_path(Path, (prev, key, typename))


class CompiledExecutor(StrawberryGraphQLCoreExecutionContext):
    compiles = True
    """False in `GraphQLCoreExecutor`: every operation runs through graphql-core's methods."""
    plan: Plan | None = None
    _allowed: dict[str, bool]
    selections: dict[FieldPlan, Selection]
    """What each relation the plan follows asks of its records, worked out once per
    request (`plan._follow`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """The helpers every resolver's information carries reach the executor through a
        weak proxy. graphql-core binds its own methods into them, so each executor was a
        reference cycle, and everything the request held (its context, the loaders, every
        record fetched) outlived the response until the collector found it. By then it had
        been promoted to the oldest generation, which a full collection walks: about 1,200
        objects per nested query, 91 ms per full collection under load.

        So the helpers work while the operation runs, which is when graphql-core calls them
        (from frames that hold the executor); a copy made for incremental delivery shares
        the root's proxy, and the root outlives its copies. Nothing here keeps them for
        later: a task that called `track` after the executor was freed would get
        `ReferenceError`."""
        super().__init__(*args, **kwargs)
        itself = weakref.proxy(self)
        cls = type(self)
        self.async_helpers = GraphQLResolveInfoHelpers(
            gather=partial(cls.gather_async_work, itself),
            track=partial(cls.track_async_work, itself),
        )

    def execute_operation(self, serially: bool | None = None) -> Any:
        from schema.compiled.plan import plan_for

        if self.compiles and serially is None and self._compilable():
            self.plan = plan_for(self)
        context = self.context_value
        if isinstance(context, Context):
            context.executor = COMPILED if self.plan is not None else GRAPHQL_CORE
        if self.plan is None:
            return super().execute_operation(serially)
        self._allowed = {}
        self.selections = {}
        return self._run(self.plan)

    def _compilable(self) -> bool:
        """A query with nothing to run around each field: a middleware, an abort signal or
        execution hooks leave the operation to graphql-core."""
        if self.operation.operation is not OperationType.QUERY:
            return False
        if self.abort_signal is not None or self.hooks is not None:
            return False
        manager = self.middleware_manager
        return manager is None or manager.get_field_resolver(_sentinel) is _sentinel

    def _run(self, plan: Plan) -> Any:
        """graphql-core's `execute_operation`, with the plan's root in place of its fields."""
        try:
            result = plan.root(self, self.root_value, None)
            if result.__class__ is CoroutineType:

                async def await_result() -> Any:
                    try:
                        data = await result
                    except GraphQLError as error:
                        self.collected_errors.add(error, None)
                        return self.build_response(None)
                    except Exception:
                        await self.cancel_incremental_work()
                        self.run_async_work_finished_hook()
                        raise
                    return self.build_response(data)

                return await_result()
        except GraphQLError as error:
            self.collected_errors.add(error, None)
            return self.finish(self.build_response(None))
        return self.finish(self.build_response(result))

    # What the plan's functions call, on the way that is not the fast one.

    def allowed(self, scope: Scope) -> bool:
        """Whether the caller has the scope, decided once per request."""
        found = self._allowed.get(scope.scope)
        if found is None:
            found = self._allowed[scope.scope] = self.context_value.caller.allows(scope.scope)
        return found

    def refuse(self, scope: Scope) -> None:
        """The refusal `Scope.has_permission` raises, raised anew for each field."""
        scope.check(self.context_value.caller)

    def info(self, field: FieldPlan, path: Path) -> GraphQLResolveInfo[Any]:
        return self.build_resolve_info(field.definition, field.nodes, field.parent_type, path)

    def strawberry_info(self, field: FieldPlan, path: Path) -> Info[Any, Any]:
        config = field.config
        assert config is not None and field.strawberry is not None
        return config.info_class(_raw_info=self.info(field, path), _field=field.strawberry)

    def arguments(self, field: FieldPlan) -> dict[str, Any]:
        """graphql-core's argument values for the field, computed each time as it does."""
        from graphql.execution.values import get_argument_values

        details = field.details[0]
        if not field.definition.args and not details.node.arguments:
            return {}
        return get_argument_values(
            field.definition,
            details.node,
            self.variable_values,
            details.fragment_variable_values,
            self.hide_suggestions,
        )

    def field_error(self, error: Exception, field: FieldPlan, path: Path) -> None:
        self.handle_field_error(error, field.return_type, field.details, path)

    def item_error(
        self, error: Exception, item_type: GraphQLOutputType, field: FieldPlan, path: Path
    ) -> None:
        self.handle_field_error(error, item_type, field.details, path)

    async def complete_pending(
        self,
        field: FieldPlan,
        pending: Awaitable[Any],
        path: Path,
        complete: Callable[[CompiledExecutor, Any, Path, Path], Any],
    ) -> Any:
        """graphql-core's `complete_awaitable_value`: the resolver's awaitable, then its value
        completed, an error handled at the field.

        This and the `await_` methods are coroutine methods, where graphql-core defines a
        coroutine function inside each call: a function and a cell for each name it closes
        over, made for every pending value (365 calls in a nested query, some 1,700 objects),
        each one more for the collector to walk while the request waits on its providers."""
        try:
            value = complete(self, await pending, path, path)
            if value.__class__ is CoroutineType or (
                value.__class__ not in _PLAIN and self.is_awaitable(value)
            ):
                value = await value
        except Exception as raw_error:
            self.handle_field_error(raw_error, field.return_type, field.details, path)
            value = None
        return value

    async def await_completed(
        self,
        return_type: GraphQLOutputType,
        field: FieldPlan,
        completing: Awaitable[Any],
        path: Path,
    ) -> Any:
        """graphql-core's `execute_field.await_completed` (`return_type` the field's) and
        `complete_list_item_value.await_completed` (the item's type): a completion that is
        pending, its error handled as that type's."""
        try:
            return await completing
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, field.details, path)
            return None

    async def await_fields(self, results: dict[str, Any], keys: list[str]) -> dict[str, Any]:
        """graphql-core's `execute_fields.get_results`."""
        if len(keys) == 1:
            key = keys[0]
            results[key] = await results[key]
        else:
            awaited = await gather_with_cancel(*(results[key] for key in keys))
            results.update(zip(keys, awaited, strict=True))
        return results

    async def await_items(self, results: list[Any], indices: list[int]) -> list[Any]:
        """graphql-core's `complete_iterable_value.get_completed_results`."""
        if len(indices) == 1:
            index = indices[0]
            results[index] = await results[index]
        else:
            awaited = await gather_with_cancel(*(results[index] for index in indices))
            for index, value in zip(indices, awaited, strict=True):
                results[index] = value
        return results


class GraphQLCoreExecutor(CompiledExecutor):
    """graphql-core's executor, saying so on the context like the compiled one: what a
    gateway with `compiled_execution = false` runs, and the differential test's reference."""

    compiles = False


_PLAIN = frozenset({dict, list, str, int, float, bool, type(None)})
"""Classes of completed values that are never awaitable (Strawberry's `is_awaitable` agrees)."""


def _sentinel(*_args: Any) -> None:
    """A resolver no middleware has seen: a manager that hands it back unchanged has none."""
