"""An operation compiled once into a plan: its fields collected, each field's way to a value
chosen, each object's fields turned into one Python function.

Collecting is graphql-core's own (`collect_subfields`, with the variables the
operation's `@skip` and `@include` read: a plan is kept per set of their
values). Each field is then one of:

- `__typename`: the type's name, a constant;
- read off the record: a Strawberry field with no resolver and no extension
  (Strawberry's own "basic" field), or one whose only extension is a `Scope`
  permission, which is decided once per request;
- a resolver with no arguments and no extension, called directly with what
  Strawberry would give it (the parent, the `Info`), or, where it says it only follows
  a relation of its record (`schema.types.Follows`), not called: the relation followed
  by the plan, its records completed at once where they came with the record;
- either of those behind its type's read scope (`schema.permissions.Guarded`): the
  scope decided once per request too, then read or called as above;
- any other resolver, through the resolver Strawberry built, with graphql-core's
  argument values;
- introspection (`__schema`, `__type`), left to graphql-core's `execute_field`.

Values are completed by their GraphQL type, as graphql-core completes them;
objects of a type that declares the record it shows (`schema.shows.Shows`) are
recognised by their class. An abstract type's possible object types are compiled
along with it, as many as `OBJECT_PLANS` allows over the whole operation; the
rest are completed by graphql-core.

Each object function is generated Python source (`_generate`): the fields in
order, each read and checked inline, a dictionary built at the end. Nothing
taken from the operation reaches the source except response keys, and those
are GraphQL names (letters, digits, underscores), written with `repr`.
"""

from __future__ import annotations

import inspect
import keyword
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from types import CoroutineType
from typing import Any

from graphql import (
    GraphQLAbstractType,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLError,
    GraphQLField,
    GraphQLFloat,
    GraphQLID,
    GraphQLInt,
    GraphQLLeafType,
    GraphQLList,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    GraphQLString,
    SchemaMetaFieldDef,
    TypeMetaFieldDef,
    TypeNameMetaFieldDef,
    is_abstract_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
)
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet, collect_fields
from graphql.execution.executor import (
    Executor,
    collect_iterator_awaitables,
    invalid_return_type_error,
)
from graphql.language import (
    DirectiveNode,
    FieldNode,
    FragmentDefinitionNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
)
from graphql.pyutils import Path, Undefined, is_iterable
from strawberry.permission import PermissionExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

from gateway import model
from schema.compiled.executor import _PLAIN, CompiledExecutor, path_of
from schema.documents import Plans, planned
from schema.permissions import Guarded, Scope
from schema.shows import Shows
from schema.types import Follows

__all__ = ["BYTES_PER_FIELD", "BYTES_PER_OBJECT", "OBJECT_PLANS", "FieldPlan", "Plan", "plan_for"]

logger = logging.getLogger("gateway.graphql")

OBJECT_PLANS = 256
"""Object functions per operation: an abstract type is compiled for each of its possible
types, and abstract fields nested in one another multiply them."""

BYTES_PER_OBJECT = 4_000
BYTES_PER_FIELD = 2_000
"""What a plan holds per object function (its code, namespace and closures) and per field
(its plan and its lines of code): measured with tracemalloc at about 3,200 and 1,900
(`tests/test_compiled.py`)."""

Completer = Callable[[CompiledExecutor, Any, Path, Path], Any]
"""Completes a field's value (or one item of it) at `path`; the field's own path last,
for what needs the field's resolver information."""

ObjectFunction = Callable[[CompiledExecutor, Any, Path | None], Any]


class _NotCompiled(Exception):
    """Something in the operation the plan does not cover: graphql-core runs it."""


@dataclass(eq=False)
class FieldPlan:
    """One response key of an object: how its value is found and completed."""

    key: str
    details: FieldDetailsList
    definition: GraphQLField
    parent_type: GraphQLObjectType
    kind: str
    strawberry: StrawberryField | None = None
    config: StrawberryConfig | None = None
    attribute: str = ""
    scopes: tuple[Scope, ...] = ()
    leaf: str | None = None
    """The class a value read off the record may have to be taken as it is."""
    complete: Completer | None = None
    call: Callable[[CompiledExecutor, Any, Path], Any] | None = None
    record: type | None = None
    """The record class whose instances `run` completes as they are (see `_Planner.direct`)."""
    follows: Follows | None = None
    """What the field's resolver follows, for the plan to follow it instead (`_follow`)."""
    run: ObjectFunction | None = None

    @property
    def nodes(self) -> list[FieldNode]:
        return [details.node for details in self.details]

    @property
    def definition_name(self) -> str:
        return self.details[0].node.name.value

    @property
    def return_type(self) -> GraphQLOutputType:
        return self.definition.type

    def resolved(self, ex: CompiledExecutor, result: Any, path: Path) -> Any:
        """graphql-core's `execute_field` from the resolver's result on: a pending result
        completed when it comes, a value completed now (which may itself be pending)."""
        assert self.complete is not None
        if result.__class__ not in _PLAIN and ex.is_awaitable(result):
            return ex.complete_pending(self, result, path, self.complete)
        completed = self.complete(ex, result, path, path)
        if completed.__class__ is CoroutineType or (
            completed.__class__ not in _PLAIN and ex.is_awaitable(completed)
        ):
            return ex.await_completed(self.return_type, self, completed, path)
        return completed


@dataclass(eq=False)
class Plan:
    root: ObjectFunction
    fields: int
    objects: int

    @property
    def weight(self) -> int:
        return self.objects * BYTES_PER_OBJECT + self.fields * BYTES_PER_FIELD


def plan_for(ex: CompiledExecutor) -> Plan | None:
    """The operation's plan for the values its `@skip` and `@include` read, kept with the
    validated document; None when the operation is not kept or not covered."""
    operation = ex.operation
    names = sorted(_directive_variables(operation, ex.fragment_definitions))
    coerced = ex.variable_values.coerced
    key = (id(operation), tuple((name, coerced.get(name)) for name in names))
    plans = _plans_of(ex.schema)
    return planned(operation, plans, key, lambda: _compile(ex)) if plans else None


def _plans_of(schema: GraphQLSchema) -> Plans | None:
    """The plans its `GatewaySchema` keeps. The executor is handed graphql-core's schema,
    and Strawberry names itself in the extensions of the schema it builds; a schema built
    otherwise keeps no plans, and its operations run through graphql-core."""
    owner = schema.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
    plans = getattr(owner, "plans", None)
    return plans if isinstance(plans, Plans) else None


def _compile(ex: CompiledExecutor) -> Plan | None:
    planner = _Planner(ex)
    try:
        root_type = ex.schema.query_type
        assert root_type is not None
        collected = collect_fields(
            ex.schema,
            ex.fragments,
            ex.variable_values,
            root_type,
            ex.operation,
            ex.hide_suggestions,
        )
        if collected.new_defer_usages:
            return None
        root = planner.object_function(root_type, collected.grouped_field_set)
    except (_NotCompiled, RecursionError):
        return None
    except Exception:
        logger.exception("could not compile an operation; graphql-core runs it")
        return None
    return Plan(root, planner.fields, planner.objects)


def _directive_variables(
    operation: OperationDefinitionNode, fragments: dict[str, FragmentDefinitionNode]
) -> set[str]:
    """The variables `@skip` and `@include` read anywhere in the operation or its fragments:
    they decide which fields are collected."""
    found: set[str] = set()
    pending: list[SelectionSetNode] = [operation.selection_set]
    pending += [fragment.selection_set for fragment in fragments.values()]
    while pending:
        for selection in pending.pop().selections:
            for directive in selection.directives or ():
                found.update(_variables_of(directive))
            if isinstance(selection, FieldNode | InlineFragmentNode):
                if selection.selection_set is not None:
                    pending.append(selection.selection_set)
    return found


def _variables_of(directive: DirectiveNode) -> Iterator[str]:
    if directive.name.value in ("skip", "include"):
        for argument in directive.arguments or ():
            if isinstance(argument.value, VariableNode):
                yield argument.value.name.value


_FAST_SCALARS = {
    GraphQLString: "str",
    GraphQLID: "str",
    GraphQLBoolean: "bool",
    GraphQLFloat: "float",
    GraphQLInt: "int",
}
"""Built-in scalars whose output coercion hands back a value of this exact class unchanged:
a `str` for String and ID, a `bool` for Boolean; a finite `float` for Float; an `int` in
32 bits for Int (the generated check tests the range)."""


def _nullable(graphql_type: GraphQLOutputType) -> tuple[GraphQLOutputType, bool]:
    if is_non_null_type(graphql_type):
        return graphql_type.of_type, False
    return graphql_type, True


def _plain_resolver(definition: GraphQLField) -> str:
    """The name Strawberry gives the resolver it builds for a field: `_get_basic_result`
    for one read off the source, `_resolver`/`_async_resolver` for one with its
    resolver and extensions. Exception handlers get other wrappers. A read scope's
    guard is looked through: its scope is the plan's to check."""
    resolve = definition.resolve
    if isinstance(resolve, Guarded):
        resolve = resolve.resolve
    return getattr(resolve, "__name__", "")


def _guard(definition: GraphQLField) -> tuple[Scope, ...]:
    resolve = definition.resolve
    return (resolve.scope,) if isinstance(resolve, Guarded) else ()


class _Planner:
    def __init__(self, ex: CompiledExecutor) -> None:
        self.ex = ex
        strawberry_schema = getattr(ex.schema, "_strawberry_schema", None)
        self.config: StrawberryConfig | None = getattr(strawberry_schema, "config", None)
        self.fields = 0
        self.objects = 0
        self._made: dict[tuple[str, tuple[int, ...]], ObjectFunction] = {}
        self.direct: dict[Completer, tuple[type, ObjectFunction]] = {}
        """Completers that hand a value of a record class straight to an object function
        (`_object`'s first test, and `_non_null` around it, which such a value passes): the
        generated code and list loops call that function themselves for such a value, without
        the completer, the field's `resolved` and Strawberry's `is_awaitable` in between (a
        fifth of the plan's time on a thousand-edge list)."""

    # Objects

    def object_function(
        self, object_type: GraphQLObjectType, grouped: GroupedFieldSet
    ) -> ObjectFunction:
        self.objects += 1
        if self.objects > OBJECT_PLANS:
            raise _NotCompiled
        plans = [
            plan
            for key, details in grouped.items()
            if (plan := self.field_plan(object_type, key, details)) is not None
        ]
        self.fields += len(plans)
        return _generate(object_type, plans)

    def subfields(
        self, object_type: GraphQLObjectType, details: FieldDetailsList
    ) -> ObjectFunction:
        """One function per object type and selection: an abstract field's possible types
        each select from the same nodes, so abstract fields nested in one another (a node's
        `sameAs` within `sameAs`) add their types' functions once instead of multiplying."""
        made = (object_type.name, tuple(id(item.node) for item in details))
        if made not in self._made:
            collected = self.ex.collect_subfields(object_type, details)
            if collected.new_defer_usages:
                raise _NotCompiled
            self._made[made] = self.object_function(object_type, collected.grouped_field_set)
        return self._made[made]

    # Fields

    def field_plan(
        self, parent: GraphQLObjectType, key: str, details: FieldDetailsList
    ) -> FieldPlan | None:
        if any(item.fragment_variable_values is not None for item in details):
            raise _NotCompiled
        name = details[0].node.name.value
        definition = self.ex.schema.get_field(parent, name)
        if definition is None:
            return None
        if definition is TypeNameMetaFieldDef:
            return FieldPlan(key, details, definition, parent, "typename")
        if definition is SchemaMetaFieldDef or definition is TypeMetaFieldDef:
            return FieldPlan(key, details, definition, parent, "graphql-core")
        plan = self._how(FieldPlan(key, details, definition, parent, "resolver"))
        plan.complete = self.completer(plan, definition.type)
        if plan.follows is not None:
            plan.complete = _chosen_first(plan.follows, plan.complete)
        elif plan.complete in self.direct:
            plan.record, plan.run = self.direct[plan.complete]
        leaf, _ = _nullable(definition.type)
        if plan.kind in ("plain", "guarded") and leaf in _FAST_SCALARS:
            plan.leaf = _FAST_SCALARS[leaf]
        return plan

    def _how(self, plan: FieldPlan) -> FieldPlan:
        definition = plan.definition
        found = definition.extensions.get("strawberry-definition")
        if not isinstance(found, StrawberryField) or self.config is None:
            plan.call = _full_call(plan)
            return plan
        plan.strawberry, plan.config = found, self.config
        ordinary = type(found).get_result is StrawberryField.get_result
        wrapper = _plain_resolver(definition)
        reads = (
            ordinary
            and found.base_resolver is None
            and found.default_resolver is getattr
            and self.config.default_resolver is getattr
            and found.python_name.isidentifier()
            and not keyword.iskeyword(found.python_name)
        )
        guard = _guard(definition)
        if reads and found.is_basic_field and wrapper == "_get_basic_result":
            plan.kind, plan.attribute = "guarded" if guard else "plain", found.python_name
            plan.scopes = guard
            return plan
        scopes = _scopes(found)
        if reads and scopes and not found.is_async and wrapper == "_resolver":
            plan.kind, plan.attribute, plan.scopes = "guarded", found.python_name, guard + scopes
            return plan
        resolver = found.base_resolver
        arguments = definition.args or any(item.node.arguments for item in plan.details[:1])
        if (
            ordinary
            and resolver is not None
            and not found.extensions
            and not found.arguments
            and not arguments
            and wrapper in ("_resolver", "_async_resolver")
            and not inspect.isasyncgenfunction(resolver.wrapped_func)
        ):
            follows = getattr(resolver.wrapped_func, "follows", None)
            plan.kind, plan.scopes, plan.follows = "direct", guard, follows
            plan.call = _direct_call(plan) if follows is None else _follow(plan, follows)
            return plan
        plan.call = _full_call(plan)
        return plan

    # Completion by type

    def completer(self, plan: FieldPlan, graphql_type: GraphQLOutputType) -> Completer:
        if is_non_null_type(graphql_type):
            inner = self.completer(plan, graphql_type.of_type)
            outer = _non_null(plan, inner)
            if inner in self.direct:
                self.direct[outer] = self.direct[inner]
            return outer
        if is_list_type(graphql_type):
            return self._list(plan, graphql_type)
        if is_leaf_type(graphql_type):
            return _leaf(graphql_type)
        if is_abstract_type(graphql_type):
            return self._abstract(plan, graphql_type)
        if is_object_type(graphql_type):
            run = self.subfields(graphql_type, plan.details)
            complete = self._object(plan, graphql_type, run)
            fast = _told_by_class(graphql_type)
            if fast is not None:
                self.direct[complete] = (fast, run)
            return complete
        raise _NotCompiled

    def _object(
        self, plan: FieldPlan, object_type: GraphQLObjectType, run: ObjectFunction
    ) -> Completer:
        is_type_of = object_type.is_type_of
        record = is_type_of.record if isinstance(is_type_of, Shows) else None
        fast = _told_by_class(object_type)

        def complete(ex: CompiledExecutor, value: Any, path: Path, field_path: Path) -> Any:
            if value.__class__ is fast:
                return run(ex, value, path)
            if isinstance(value, Exception):
                raise value
            if value is None or value is Undefined:
                return None
            if is_type_of is not None:
                shows: Any
                if record is not None:
                    shows = isinstance(value, record)
                else:
                    shows = is_type_of(value, ex.info(plan, field_path))
                    if ex.is_awaitable(shows):
                        return _after_check(ex, object_type, plan, run, shows, value, path)
                if not shows:
                    raise invalid_return_type_error(object_type, value, plan.details)
            return run(ex, value, path)

        return complete

    def _abstract(self, plan: FieldPlan, abstract: GraphQLAbstractType) -> Completer:
        objects: dict[str, Completer] = {}
        for possible in self.ex.schema.get_possible_types(abstract):
            objects[possible.name] = self._object(
                plan, possible, self.subfields(possible, plan.details)
            )

        def complete(ex: CompiledExecutor, value: Any, path: Path, field_path: Path) -> Any:
            if isinstance(value, Exception):
                raise value
            if value is None or value is Undefined:
                return None
            info = ex.info(plan, field_path)
            resolve_type = abstract.resolve_type or ex.type_resolver
            runtime = resolve_type(value, info, abstract)
            if ex.is_awaitable(runtime):
                return _after_resolve_type(
                    ex, abstract, plan, objects, runtime, value, path, field_path
                )
            object_type = ex.ensure_valid_runtime_type(runtime, abstract, plan.details, info, value)
            return objects[object_type.name](ex, value, path, field_path)

        return complete

    def _list(self, plan: FieldPlan, list_type: GraphQLList[Any]) -> Completer:
        item_type = list_type.of_type
        complete_item = self.completer(plan, item_type)
        # Without a record class, `fast` is None, which no item's class is: `run` is never called.
        fast, run = self.direct.get(complete_item, (None, _nothing))
        message = (
            "Expected Iterable, but did not find one for field"
            f" '{plan.parent_type}.{plan.definition_name}'."
        )

        def complete(ex: CompiledExecutor, value: Any, path: Path, field_path: Path) -> Any:
            if value.__class__ is not list and value.__class__ is not tuple:
                if isinstance(value, Exception):
                    raise value
                if value is None or value is Undefined:
                    return None
                if ex.is_async_iterable(value):
                    info = ex.info(plan, field_path)
                    return ex.complete_list_value(list_type, plan.details, info, path, value, None)
                if not is_iterable(value):
                    raise GraphQLError(message)
            results: list[Any] = []
            pending: list[int] = []
            iterator = iter(value)
            index = 0
            try:
                for item in iterator:
                    item_path = path_of(path, index, None)
                    if item.__class__ is not fast and ex.is_awaitable(item):
                        info = ex.info(plan, field_path)
                        results.append(
                            ex.complete_awaitable_list_item_value(
                                item, item_type, plan.details, info, item_path, None
                            )
                        )
                        pending.append(index)
                    else:
                        try:
                            if item.__class__ is fast:
                                completed = run(ex, item, item_path)
                            else:
                                completed = complete_item(ex, item, item_path, field_path)
                            if completed.__class__ is CoroutineType or (
                                completed.__class__ not in _PLAIN and ex.is_awaitable(completed)
                            ):
                                completed = ex.await_completed(
                                    item_type, plan, completed, item_path
                                )
                                pending.append(index)
                        except Exception as raw_error:
                            ex.item_error(raw_error, item_type, plan, item_path)
                            completed = None
                        results.append(completed)
                    index += 1
            except Exception:
                awaitables = [results[index] for index in pending]
                awaitables.extend(collect_iterator_awaitables(iterator, ex.is_awaitable))
                if awaitables:
                    ex.settle_in_background(awaitables)
                raise
            if not pending:
                return results
            return ex.await_items(results, pending)

        return complete


def _scopes(found: StrawberryField) -> tuple[Scope, ...]:
    """The scopes of a field whose only extension is a permission made of `Scope`s alone, and
    which raises what they raise (not silently nulled); empty for any other field."""
    if len(found.extensions) != 1:
        return ()
    extension = found.extensions[0]
    if type(extension) is not PermissionExtension or extension.fail_silently:
        return ()
    permissions = extension.permissions
    if not permissions or not all(type(p) is Scope for p in permissions):
        return ()
    return tuple(permissions)  # type: ignore[arg-type]


def _told_by_class(object_type: GraphQLObjectType) -> type | None:
    """The record class whose instances are exactly `object_type`'s objects, where the type
    says which (`Shows`) and its instances cannot pass for awaitables or errors."""
    shows = object_type.is_type_of
    if isinstance(shows, Shows) and _inert(shows.record):
        return shows.record
    return None


def _inert(record: type) -> bool:
    """Whether instances of exactly this class can be told apart from awaitables and errors
    by their class alone, as `Strawberry`'s `is_awaitable` and graphql-core would."""
    return not (
        issubclass(record, Exception)
        or hasattr(record, "__await__")
        or getattr(record, "__getattr__", _READS_LATER) is not _READS_LATER
        or record.__getattribute__ is not object.__getattribute__
    )


_READS_LATER = vars(model.ReadLater)["__getattr__"]
"""A record's `__getattr__` that answers only its own fields' names (never `__await__`)."""


def _non_null(plan: FieldPlan, inner: Completer) -> Completer:
    message = (
        f"Cannot return null for non-nullable field {plan.parent_type}.{plan.definition_name}."
    )

    def complete(ex: CompiledExecutor, value: Any, path: Path, field_path: Path) -> Any:
        if isinstance(value, Exception):
            raise value
        completed = inner(ex, value, path, field_path)
        if completed is None:
            raise TypeError(message)
        return completed

    return complete


def _leaf(leaf_type: GraphQLLeafType) -> Completer:
    complete_leaf_value = Executor.complete_leaf_value
    names: dict[Any, str] = {}
    enum_class: type | None = None
    if isinstance(leaf_type, GraphQLEnumType):
        values = [value.value for value in leaf_type.values.values()]
        classes = {value.__class__ for value in values}
        if len(classes) == 1:
            only = next(iter(classes))
            if issubclass(only, Enum) and _inert(only):
                enum_class = only
                names = {value: leaf_type.coerce_output_value(value) for value in values}

    def complete(_ex: CompiledExecutor, value: Any, _path: Path, _field_path: Path) -> Any:
        if value.__class__ is enum_class:
            return names[value]
        if isinstance(value, Exception):
            raise value
        if value is None or value is Undefined:
            return None
        return complete_leaf_value(leaf_type, value)

    return complete


def _after_check(
    ex: CompiledExecutor,
    object_type: GraphQLObjectType,
    plan: FieldPlan,
    run: ObjectFunction,
    shows: Any,
    value: Any,
    path: Path,
) -> Any:
    """graphql-core's `complete_object_value` when `is_type_of` answers later."""

    async def execute_subfields() -> Any:
        if not await shows:
            raise invalid_return_type_error(object_type, value, plan.details)
        completed = run(ex, value, path)
        if ex.is_awaitable(completed):
            return await completed
        return completed

    return execute_subfields()


def _after_resolve_type(
    ex: CompiledExecutor,
    abstract: GraphQLAbstractType,
    plan: FieldPlan,
    objects: dict[str, Completer],
    runtime: Any,
    value: Any,
    path: Path,
    field_path: Path,
) -> Any:
    """graphql-core's `complete_abstract_value` when the type is resolved later."""

    async def complete() -> Any:
        info = ex.info(plan, field_path)
        object_type = ex.ensure_valid_runtime_type(
            await runtime, abstract, plan.details, info, value
        )
        completed = objects[object_type.name](ex, value, path, field_path)
        if ex.is_awaitable(completed):
            return await completed
        return completed

    return complete()


def _full_call(plan: FieldPlan) -> Callable[[CompiledExecutor, Any, Path], Any]:
    """The resolver as graphql-core calls it: with its information and argument values."""
    definition = plan.definition

    def call(ex: CompiledExecutor, source: Any, path: Path) -> Any:
        resolve = definition.resolve or ex.field_resolver
        info = ex.info(plan, path)
        return resolve(source, info, **ex.arguments(plan))

    return call


def _direct_call(plan: FieldPlan) -> Callable[[CompiledExecutor, Any, Path], Any]:
    """The resolver function itself, given what Strawberry's `get_arguments` would give a
    resolver without arguments: the source as `self`, as its parent and root parameters,
    and the `Info`."""
    found = plan.strawberry
    assert found is not None and found.base_resolver is not None
    resolver = found.base_resolver
    function: Callable[..., Any] = resolver.wrapped_func  # type: ignore[assignment]
    by_position = resolver.self_parameter is not None
    as_source = [
        parameter.name
        for parameter in (resolver.parent_parameter, resolver.root_parameter)
        if parameter is not None
    ]
    info_name = resolver.info_parameter.name if resolver.info_parameter is not None else None

    def call(ex: CompiledExecutor, source: Any, path: Path) -> Any:
        kwargs = dict.fromkeys(as_source, source)
        if info_name is not None:
            kwargs[info_name] = ex.strawberry_info(plan, path)
        if by_position:
            return function(source, **kwargs)
        return function(**kwargs)

    return call


def _follow(plan: FieldPlan, follows: Follows) -> Callable[[CompiledExecutor, Any, Path], Any]:
    """The records a resolver marked with `Follows` would have chosen from, without calling
    it: at once where they are at hand, else the future of the relation's key in the
    loaders' batch, which the field's completion awaits (`_chosen_first`); the selection
    is worked out once per request."""
    attribute = follows.attribute

    def call(ex: CompiledExecutor, source: Any, path: Path) -> Any:
        relation = getattr(source, attribute)
        loaders = ex.context_value.loaders
        found = loaders.at_hand(relation)
        if found is not None:
            return found
        selection = ex.selections.get(plan)
        if selection is None:
            selection = ex.selections[plan] = follows.selection(ex.strawberry_info(plan, path))
        return loaders.pending(relation, selection)

    return call


def _chosen_first(follows: Follows, complete: Completer) -> Completer:
    """The field's completion, of what its resolver would have returned."""
    chosen = follows.chosen

    def completed(ex: CompiledExecutor, records: Any, path: Path, field_path: Path) -> Any:
        return complete(ex, chosen(records), path, field_path)

    return completed


# The generated object functions


def _generate(object_type: GraphQLObjectType, plans: list[FieldPlan]) -> ObjectFunction:
    """One function for the object's fields: see the module's docstring. Its namespace
    holds the field plans (`F0`, `F1`...), their scopes (`S0_0`...), the record classes and
    object functions of fields completed directly (`R0`, `O0`...) and the few helpers."""
    namespace: dict[str, Any] = {
        "_Coro": CoroutineType,
        "_path": path_of,
        "_T": object_type.name,
    }
    if not plans:
        return _nothing
    lines = ["def run(ex, source, path):", "    _keys = None", "    try:"]
    for index, plan in enumerate(plans):
        name = f"F{index}"
        namespace[name] = plan
        lines += [f"        {line}" for line in _field_lines(index, plan, namespace)]
    entries = ", ".join(f"{plan.key!r}: v{index}" for index, plan in enumerate(plans))
    lines += [
        "    except Exception:",
        "        if _keys is not None:",
        "            ex.settle_in_background(_aws)",
        "        raise",
        f"    result = {{{entries}}}",
        "    if _keys is None:",
        "        return result",
        "    return ex.await_fields(result, _keys)",
    ]
    code = compile("\n".join(lines) + "\n", f"<plan {object_type.name}>", "exec")
    exec(code, namespace)
    run: ObjectFunction = namespace["run"]
    return run


def _nothing(_ex: CompiledExecutor, _source: Any, _path: Path | None) -> dict[str, Any]:
    """An object none of whose fields were collected for its type (they were all asked
    of other types, in fragments)."""
    return {}


def _field_lines(index: int, plan: FieldPlan, namespace: dict[str, Any]) -> list[str]:
    v, f, key = f"v{index}", f"F{index}", repr(plan.key)
    if plan.kind == "typename":
        return [f"{v} = _T"]
    if plan.kind == "graphql-core":
        return [
            f"{v} = ex.execute_field({f}.parent_type, source, {f}.details, "
            f"_path(path, {key}, _T), None)",
            *_pending(v, key),
        ]
    body: list[str] = []
    for number, scope in enumerate(plan.scopes):
        name = f"S{index}_{number}"
        namespace[name] = scope
        body.append(f"if not ex.allowed({name}): ex.refuse({name})")
    if plan.kind in ("plain", "guarded"):
        body.append(f"{v} = source.{plan.attribute}")
        if plan.leaf is not None:
            _, nullable = _nullable(plan.return_type)
            test = _leaf_test(v, plan.leaf)
            if nullable:
                test = f"{v} is not None and {test}"
            body += [
                f"if {test}:",
                f"    {v} = {f}.resolved(ex, {v}, _path(path, {key}, _T))",
                *[f"    {line}" for line in _pending(v, key)],
            ]
        else:
            body += [
                f"_fp = _path(path, {key}, _T)",
                *_completion(index, plan, namespace),
                *_pending(v, key),
            ]
    else:
        body += [
            f"_fp = _path(path, {key}, _T)",
            f"{v} = {f}.call(ex, source, _fp)",
            *_completion(index, plan, namespace),
            *_pending(v, key),
        ]
    return [
        "try:",
        *[f"    {line}" for line in body],
        "except Exception as error:",
        f"    ex.field_error(error, {f}, _path(path, {key}, _T))",
        f"    {v} = None",
    ]


def _completion(index: int, plan: FieldPlan, namespace: dict[str, Any]) -> list[str]:
    """`v{index}`, the field's value, completed at `_fp`: a record of the class the field's
    type shows goes straight to its object function (`_Planner.direct`), anything else
    through the field's `resolved`."""
    v, f = f"v{index}", f"F{index}"
    resolved = f"{v} = {f}.resolved(ex, {v}, _fp)"
    if plan.record is None:
        return [resolved]
    namespace[f"R{index}"], namespace[f"O{index}"] = plan.record, plan.run
    return [
        f"if {v}.__class__ is R{index}:",
        f"    {v} = O{index}(ex, {v}, _fp)",
        f"    if {v}.__class__ is _Coro:",
        f"        {v} = ex.await_completed({f}.return_type, {f}, {v}, _fp)",
        "else:",
        f"    {resolved}",
    ]


def _leaf_test(v: str, leaf: str) -> str:
    """True when the value is not one to take as it is (see `_FAST_SCALARS`)."""
    if leaf == "int":
        return f"({v}.__class__ is not int or not -2147483648 <= {v} <= 2147483647)"
    if leaf == "float":
        return f"({v}.__class__ is not float or {v} - {v} != 0.0)"
    return f"{v}.__class__ is not {leaf}"


def _pending(v: str, key: str) -> list[str]:
    """A value still pending joins the object's, to be awaited (or settled) with them.
    `resolved` hands back coroutines only; graphql-core's `execute_field` too."""
    return [
        f"if {v}.__class__ is _Coro:",
        "    if _keys is None:",
        "        _keys, _aws = [], []",
        f"    _keys.append({key})",
        f"    _aws.append({v})",
    ]
