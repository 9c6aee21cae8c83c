"""Operation limits, checked after parsing and before validation, so before any upstream call.

Validation itself is costly on hostile documents (a thousand aliases make
field-merging quadratic), so the limits run first, over the parsed document:
depth, aliases, root fields, tokens, page sizes, and an estimated cost (page
sizes multiplied down the nesting). Each refusal is a GraphQL error whose
code names the limit, with `extensions.limit` and `extensions.actual`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    Source,
    TokenKind,
    VariableNode,
)
from graphql.language.lexer import Lexer
from strawberry.extensions import SchemaExtension

from gateway import resilience
from gateway.config import Limits
from gateway.errors import LimitExceeded
from schema.context import Context

__all__ = ["OperationDeadline", "OperationLimits", "measure"]


@dataclass
class Measure:
    depth: int = 0
    aliases: int = 0
    root_fields: int = 0
    cost: int = 0
    largest_page: int = 0


def _tokens(query: str, cap: int) -> int:
    lexer = Lexer(Source(query))
    count = 0
    while count <= cap and lexer.advance().kind is not TokenKind.EOF:
        count += 1
    return count


def _named_type(field_type: Any) -> tuple[Any, bool]:
    """The type under NonNull/List wrappers, and whether a list was among them."""
    is_list = False
    while isinstance(field_type, GraphQLNonNull | GraphQLList):
        is_list = is_list or isinstance(field_type, GraphQLList)
        field_type = field_type.of_type
    return field_type, is_list


class _Walker:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
        limits: Limits,
        default_page: int,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.limits = limits
        self.default_page = default_page
        self.measure = Measure()

    def _fields(
        self, selection_set: SelectionSetNode, parent: Any, seen: frozenset[str]
    ) -> Iterator[tuple[FieldNode, Any]]:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                yield selection, parent
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = self.schema.get_type(condition.name.value) if condition else parent
                yield from self._fields(selection.selection_set, target or parent, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in seen:
                    continue
                target = self.schema.get_type(fragment.type_condition.name.value) or parent
                yield from self._fields(fragment.selection_set, target, seen | {name})

    def _first(self, field: FieldNode) -> tuple[int | None, bool]:
        """How many objects the field may return (its `first`, or the length of its `ids`),
        and whether that number is a page size."""
        for argument in field.arguments or ():
            name, value = argument.name.value, argument.value
            given: Any = None
            if isinstance(value, VariableNode):
                given = self.variables.get(value.name.value)
            elif isinstance(value, IntValueNode):
                given = int(value.value)
            elif isinstance(value, ListValueNode):
                given = list(value.values)
            if name == "first" and isinstance(given, int):
                return given, True
            if name == "ids" and isinstance(given, list):
                return len(given), False
        return None, False

    def walk(
        self,
        selection_set: SelectionSetNode,
        parent: Any,
        depth: int,
        multiplier: int,
        seen: frozenset[str] = frozenset(),
    ) -> None:
        self.measure.depth = max(self.measure.depth, depth)
        for field, owner in self._fields(selection_set, parent, seen):
            if field.alias is not None:
                self.measure.aliases += 1
            if field.selection_set is None:
                continue
            definition = (
                owner.fields.get(field.name.value) if isinstance(owner, GraphQLObjectType) else None
            )
            child, is_list = _named_type(definition.type) if definition else (None, False)
            first, paged = self._first(field)
            if first is not None and paged:
                self.measure.largest_page = max(self.measure.largest_page, first)
            factor = first if first is not None else (self.limits.list_factor if is_list else 1)
            if definition is not None and "first" in definition.args and first is None:
                factor = self.default_page
            scaled = multiplier * max(factor, 1)
            self.measure.cost += scaled
            self.walk(field.selection_set, child, depth + 1, scaled, seen)


def measure(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any],
    limits: Limits,
    default_page: int,
) -> Measure | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    chosen = [
        op
        for op in operations
        if operation_name is None or (op.name and op.name.value == operation_name)
    ]
    if len(chosen) != 1:
        return None
    operation = chosen[0]
    root = {
        OperationType.QUERY: schema.query_type,
        OperationType.MUTATION: schema.mutation_type,
        OperationType.SUBSCRIPTION: schema.subscription_type,
    }[operation.operation]
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    walker = _Walker(schema, fragments, variables, limits, default_page)
    walker.measure.root_fields = sum(
        1 for _ in walker._fields(operation.selection_set, root, frozenset())
    )
    walker.walk(operation.selection_set, root, 1, 1)
    return walker.measure


def _check(measured: Measure, limits: Limits, max_page: int) -> LimitExceeded | None:
    checks = [
        ("QUERY_TOO_DEEP", "The query is nested deeper than", limits.max_depth, measured.depth),
        (
            "TOO_MANY_ALIASES",
            "The query uses more aliases than",
            limits.max_aliases,
            measured.aliases,
        ),
        (
            "TOO_MANY_ROOT_FIELDS",
            "The operation asks for more root fields than",
            limits.max_root_fields,
            measured.root_fields,
        ),
        ("PAGE_SIZE_EXCEEDED", "`first` may be at most", max_page, measured.largest_page),
        (
            "QUERY_TOO_COSTLY",
            "The query may return more objects than",
            limits.max_cost,
            measured.cost,
        ),
    ]
    for code, text, limit, actual in checks:
        if actual > limit:
            return LimitExceeded(code, f"{text} {limit} (it has {actual}).", limit, actual)
    return None


class OperationLimits(SchemaExtension):
    def on_validate(self) -> Iterator[None]:
        context = self.execution_context.context
        document = self.execution_context.graphql_document
        if isinstance(context, Context) and document is not None:
            error = self._refusal(context, document)
            if error is not None:
                self.execution_context.pre_execution_errors = [
                    GraphQLError(error.message, original_error=error)
                ]
        yield

    def _refusal(self, context: Context, document: DocumentNode) -> LimitExceeded | None:
        limits = context.limits
        measured = measure(
            self.execution_context.schema._schema,
            document,
            self.execution_context.operation_name,
            self.execution_context.variables or {},
            limits,
            context.federation.limits.default,
        )
        if measured is not None:
            refusal = _check(measured, limits, context.federation.limits.maximum)
            if refusal is not None:
                return refusal
        tokens = _tokens(self.execution_context.query or "", limits.max_tokens)
        if tokens > limits.max_tokens:
            return LimitExceeded(
                "TOO_MANY_TOKENS",
                f"The query has more than {limits.max_tokens} tokens.",
                limits.max_tokens,
                tokens,
            )
        return None


class OperationDeadline(SchemaExtension):
    """Every provider call the operation makes ends within the configured deadline."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context.context
        seconds = context.deadline_seconds if isinstance(context, Context) else None
        if seconds is None:
            yield
            return
        with resilience.deadline_in(seconds):
            yield
