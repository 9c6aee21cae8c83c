"""Operation limits: the text's before it is parsed, the document's before it is validated.

Both come before any upstream call, and before the steps a hostile operation aims
at: parsing a long text builds a tree of some 600 bytes a token, and validation is
costly on hostile documents (a thousand aliases make field-merging quadratic). So
the text's characters and tokens are counted first, without building anything;
then one walk over the parsed document measures depth, introspection depth, fields,
aliases, root fields, page sizes and an estimated cost (page sizes multiplied down
the nesting). Each refusal is a GraphQL error whose code names the limit, with
`extensions.limit` and `extensions.actual`.

The walk costs time in proportion to the document, whatever its fragments: each
fragment is measured once, and a spread adds that fragment's figures where it
stands (its cost scaled by the page sizes above it) instead of walking it again.
A fragment spreading another twice, twenty deep, is a million fields once
expanded; it is measured in twenty steps and refused as `TOO_MANY_FIELDS`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLSyntaxError,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    OperationType,
    SchemaMetaFieldDef,
    SelectionSetNode,
    Source,
    TokenKind,
    TypeMetaFieldDef,
    VariableNode,
    is_introspection_type,
)
from graphql.language.lexer import Lexer
from strawberry.extensions import SchemaExtension

from gateway.config import Limits
from gateway.errors import LimitExceeded
from gateway.upstream import resilience
from schema.context import Context

__all__ = ["Measure", "OperationDeadline", "OperationLimits", "measure", "text_refusal"]

LARGEST_REPORTED = 2**53 - 1
"""Figures above this are reported as this: the largest integer a JavaScript client reads
exactly, well inside the 64 bits orjson writes (a fragment bomb's field count is not)."""


@dataclass
class Measure:
    """The largest figures of any operation in the document: validation reads every one."""

    depth: int = 0
    introspection_depth: int = 0
    fields: int = 0
    aliases: int = 0
    root_fields: int = 0
    cost: int = 0
    largest_page: int = 0


@dataclass(slots=True)
class _Figures:
    """A selection set's figures with its fragments expanded, counted from its own level
    down and at a multiplier of one, so that a fragment's can be added wherever it is
    spread: the depths are the levels below this one, the cost scales with the page
    sizes above it."""

    fields: int = 0
    top_fields: int = 0
    """Fields at this level itself: for the operation's, its root fields."""
    aliases: int = 0
    cost: int = 0
    largest_page: int = 0
    depth: int = 0
    introspection_depth: int = 0

    def merge(self, other: _Figures) -> None:
        """Adds a fragment's figures at this level."""
        self.fields += other.fields
        self.top_fields += other.top_fields
        self.aliases += other.aliases
        self.cost += other.cost
        self.largest_page = max(self.largest_page, other.largest_page)
        self.depth = max(self.depth, other.depth)
        self.introspection_depth = max(self.introspection_depth, other.introspection_depth)


_NOTHING = _Figures()
"""What a spread adds when its fragment is unknown, or spreads itself (a cycle): both are
validation errors, so the operation never runs."""


def text_refusal(text: str, limits: Limits) -> LimitExceeded | None:
    """Whether the text is too long to parse: counted without building a token list, and
    no further than one token past the limit. A text that does not lex is left to the
    parser, which reports where."""
    if len(text) > limits.max_characters:
        return _refusal(
            "TOO_MANY_CHARACTERS",
            "The query has more characters than",
            limits.max_characters,
            len(text),
        )
    lexer = Lexer(Source(text))
    tokens = 0
    try:
        while tokens <= limits.max_tokens and lexer.advance().kind is not TokenKind.EOF:
            tokens += 1
    except GraphQLSyntaxError:
        return None
    if tokens > limits.max_tokens:
        return LimitExceeded(
            "TOO_MANY_TOKENS",
            f"The query has more than {limits.max_tokens} tokens.",
            limits.max_tokens,
            tokens,
        )
    return None


def _named_type(field_type: Any) -> tuple[Any, bool]:
    """The type under NonNull/List wrappers, and whether a list was among them."""
    is_list = False
    while isinstance(field_type, GraphQLNonNull | GraphQLList):
        is_list = is_list or isinstance(field_type, GraphQLList)
        field_type = field_type.of_type
    return field_type, is_list


def _integer(literal: str) -> int:
    """An integer literal's value. Past 19 digits only its size matters, and Python refuses
    to read a literal of thousands of digits at all."""
    if len(literal.lstrip("-")) <= 19:
        return int(literal)
    return -(10**19) if literal.startswith("-") else 10**19


class _Walker:
    def __init__(
        self,
        schema: GraphQLSchema,
        variables: Mapping[str, Any],
        limits: Limits,
        default_page: int,
    ) -> None:
        self.schema = schema
        self.variables = variables
        self.limits = limits
        self.default_page = default_page
        self.fragments: dict[str, _Figures] = {}

    def measure_fragments(self, fragments: Mapping[str, FragmentDefinitionNode]) -> None:
        for name in _dependency_order(fragments):
            fragment = fragments[name]
            target = self.schema.get_type(fragment.type_condition.name.value)
            self.fragments[name] = self.figures(fragment.selection_set, target)

    def figures(self, selection_set: SelectionSetNode, parent: Any) -> _Figures:
        """Fragments spread here must have been measured: `_dependency_order`."""
        figures = _Figures()
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                self._add_field(figures, selection, parent)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = self.schema.get_type(condition.name.value) if condition else parent
                figures.merge(self.figures(selection.selection_set, target or parent))
            elif isinstance(selection, FragmentSpreadNode):
                figures.merge(self.fragments.get(selection.name.value, _NOTHING))
        return figures

    def _add_field(self, figures: _Figures, field: FieldNode, owner: Any) -> None:
        figures.fields += 1
        figures.top_fields += 1
        if field.alias is not None:
            figures.aliases += 1
        if field.selection_set is None:
            return
        definition = self._definition(owner, field.name.value)
        child, is_list = _named_type(definition.type) if definition else (None, False)
        first, paged = self._first(field)
        if first is not None and paged:
            figures.largest_page = max(figures.largest_page, first)
        factor = first if first is not None else (self.limits.list_factor if is_list else 1)
        if definition is not None and "first" in definition.args and first is None:
            factor = self.default_page
        factor = max(factor, 1)
        inner = self.figures(field.selection_set, child)
        figures.fields += inner.fields
        figures.aliases += inner.aliases
        figures.cost += factor + factor * inner.cost
        figures.largest_page = max(figures.largest_page, inner.largest_page)
        introspection = isinstance(child, GraphQLNamedType) and is_introspection_type(child)
        figures.depth = max(figures.depth, inner.depth + (0 if introspection else 1))
        figures.introspection_depth = max(
            figures.introspection_depth, inner.introspection_depth + (1 if introspection else 0)
        )

    def _definition(self, owner: Any, name: str) -> GraphQLField | None:
        """As execution finds it: `__schema` and `__type` exist on the query type only."""
        if owner is self.schema.query_type and name in ("__schema", "__type"):
            return SchemaMetaFieldDef if name == "__schema" else TypeMetaFieldDef
        if isinstance(owner, GraphQLObjectType | GraphQLInterfaceType):
            fields: dict[str, GraphQLField] = owner.fields
            return fields.get(name)
        return None

    def _first(self, field: FieldNode) -> tuple[int | None, bool]:
        """How many objects the field may return (its `first`, or the length of its `ids`),
        and whether that number is a page size."""
        for argument in field.arguments or ():
            name, value = argument.name.value, argument.value
            given: Any = None
            if isinstance(value, VariableNode):
                given = self.variables.get(value.name.value)
            elif isinstance(value, IntValueNode):
                given = _integer(value.value)
            elif isinstance(value, ListValueNode):
                given = list(value.values)
            if name == "first" and isinstance(given, int):
                return given, True
            if name == "ids" and isinstance(given, list):
                return len(given), False
        return None, False


def _spreads(selection_set: SelectionSetNode) -> Iterator[str]:
    """The fragments spread anywhere inside, without following them."""
    pending = [selection_set]
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FragmentSpreadNode):
                yield selection.name.value
            elif isinstance(selection, FieldNode | InlineFragmentNode):
                if selection.selection_set is not None:
                    pending.append(selection.selection_set)


def _dependency_order(fragments: Mapping[str, FragmentDefinitionNode]) -> list[str]:
    """Each fragment after every fragment it spreads, so that measuring it can use theirs.

    Depth first, with a stack of its own: a chain of hundreds of fragments, each spreading
    the next, fits in a short text and would exhaust Python's recursion. A spread back
    into the chain being followed (a cycle) is not followed."""
    order: list[str] = []
    reached: set[str] = set()
    for start in fragments:
        if start in reached:
            continue
        reached.add(start)
        stack: list[tuple[str, Iterator[str]]] = [(start, _spreads(fragments[start].selection_set))]
        while stack:
            name, spread = stack[-1]
            following = next((n for n in spread if n in fragments and n not in reached), None)
            if following is None:
                stack.pop()
                order.append(name)
            else:
                reached.add(following)
                stack.append((following, _spreads(fragments[following].selection_set)))
    return order


def measure(
    schema: GraphQLSchema,
    document: DocumentNode,
    variables: Mapping[str, Any],
    limits: Limits,
    default_page: int,
) -> Measure:
    walker = _Walker(schema, variables, limits, default_page)
    walker.measure_fragments(
        {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    )
    roots = {
        OperationType.QUERY: schema.query_type,
        OperationType.MUTATION: schema.mutation_type,
        OperationType.SUBSCRIPTION: schema.subscription_type,
    }
    measured = Measure()
    for operation in document.definitions:
        if isinstance(operation, OperationDefinitionNode):
            figures = walker.figures(operation.selection_set, roots[operation.operation])
            measured.depth = max(measured.depth, 1 + figures.depth)
            measured.introspection_depth = max(
                measured.introspection_depth, figures.introspection_depth
            )
            measured.fields = max(measured.fields, figures.fields)
            measured.aliases = max(measured.aliases, figures.aliases)
            measured.root_fields = max(measured.root_fields, figures.top_fields)
            measured.cost = max(measured.cost, figures.cost)
            measured.largest_page = max(measured.largest_page, figures.largest_page)
    return measured


def _refusal(code: str, text: str, limit: int, actual: int) -> LimitExceeded:
    if actual > LARGEST_REPORTED:
        return LimitExceeded(
            code, f"{text} {limit} (it has more than {LARGEST_REPORTED}).", limit, LARGEST_REPORTED
        )
    return LimitExceeded(code, f"{text} {limit} (it has {actual}).", limit, actual)


def _check(measured: Measure, limits: Limits, max_page: int) -> LimitExceeded | None:
    checks: Sequence[tuple[str, str, int, int]] = [
        ("QUERY_TOO_DEEP", "The query is nested deeper than", limits.max_depth, measured.depth),
        (
            "INTROSPECTION_TOO_DEEP",
            "The introspection is nested deeper than",
            limits.max_introspection_depth,
            measured.introspection_depth,
        ),
        (
            "TOO_MANY_FIELDS",
            "With its fragments expanded, the query asks for more fields than",
            limits.max_fields,
            measured.fields,
        ),
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
            return _refusal(code, text, limit, actual)
    return None


class OperationLimits(SchemaExtension):
    """Runs after `SafelistCheck`: an operation already refused is not measured."""

    def on_validate(self) -> Iterator[None]:
        execution = self.execution_context
        context = execution.context
        document = execution.graphql_document
        if (
            isinstance(context, Context)
            and document is not None
            and execution.pre_execution_errors is None
        ):
            measured = measure(
                execution.schema._schema,
                document,
                execution.variables or {},
                context.limits,
                context.federation.limits.default,
            )
            refusal = _check(measured, context.limits, context.federation.limits.maximum)
            if refusal is not None:
                execution.pre_execution_errors = [
                    GraphQLError(refusal.message, original_error=refusal)
                ]
        yield


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
