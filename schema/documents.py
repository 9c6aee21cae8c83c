"""Parsed and validated operations, kept for the next request with the same text.

Clients send the same few operation texts again and again, and validating even a
small one costs more CPU than executing it. What is kept is what may run: a text is
parsed only once it is within the limits on its length (`text_refusal`), and kept
only once the operation limits have let it through and it has validated. A cache of
every text that parses let a caller grow the process by 57 MB with each distinct
198 kB text of one-letter fields, the tree of its 99,000 fields; now a caller can
put into it only what it could run anyway. Strawberry's `ValidationCache` would
validate before `OperationLimits` has looked (and overwrite its refusal), which is
the costly step a hostile operation aims at.

The cache holds `BUDGET_BYTES`, least recently used out first, each document weighed
as its text plus `BYTES_PER_TOKEN` for each of its tokens, plus the execution plans
made of it (`planned`; each schema holds its own, `Plans`), each weighed by what it says it
holds.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Protocol, TypeVar
from weakref import WeakKeyDictionary, WeakSet

from cachetools import LRUCache
from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    NameNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    TokenKind,
    get_operation_ast,
    parse,
)
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document
from strawberry.types import ExecutionContext

from gateway.config import Limits
from schema.context import Context
from schema.limits import text_refusal

__all__ = [
    "BUDGET_BYTES",
    "BYTES_PER_TOKEN",
    "PLANS_PER_DOCUMENT",
    "CachedParsing",
    "CachedValidation",
    "Plans",
    "Weighed",
    "limits_of",
    "operation_type",
    "planned",
]

BUDGET_BYTES = 32 * 2**20

BYTES_PER_TOKEN = 600
"""What a parsed tree holds per token, nodes, locations and the token itself: measured
with tracemalloc at 560 for the densest text (`{ a a a … }`), 370 to 450 for texts with
arguments, aliases or variables, and the standard introspection query."""

PLANS_PER_DOCUMENT = 16
"""Plans kept per document and schema: one per operation and per set of `@skip`/`@include`
values, so a document whose variables choose between many shapes keeps the first sixteen."""


class Weighed(Protocol):
    @property
    def weight(self) -> int:
        """Bytes it holds, about."""


P = TypeVar("P", bound=Weighed)


_Rules = tuple[type[ASTValidationRule], ...]


@dataclass(eq=False)
class _Kept:
    document: DocumentNode
    tokens: int
    valid_for: WeakKeyDictionary[GraphQLSchema, set[_Rules]] = field(
        default_factory=WeakKeyDictionary
    )
    """The rules the document validated against, by schema: one gateway has one schema and
    one set of rules, but a process may serve several (a test run builds hundreds), and a
    document valid for one may not be for another. Held weakly: held strongly, every schema
    that validated a text was kept for as long as the text was."""
    planned_by: WeakSet[Plans] = field(default_factory=WeakSet)
    """The schemas' plans that hold some of the document's, to weigh it with them. The cache
    records a document's weight when it is put in, so the plans of a schema that went are
    still counted until the document is put in again: they err towards evicting early, and
    only in a process with several schemas."""

    @property
    def weight(self) -> int:
        assert self.document.loc is not None
        plans = sum(
            plan.weight for held in self.planned_by for plan in held.of(self).values() if plan
        )
        return len(self.document.loc.source.body) + self.tokens * BYTES_PER_TOKEN + plans


class Plans:
    """A schema's execution plans, by the kept document each was made of. The schema holds
    them, not the process's cache of documents: a plan refers to the schema's types, and
    through them to the schema, so a cache shared by the process that held plans held
    every schema it had planned for, and one that capped plans per document shared the cap
    between schemas (a test process, whose seventeenth gateway ran a common text through
    graphql-core). A document's plans go when it leaves the cache, and all go with the
    schema."""

    def __init__(self) -> None:
        self._of: WeakKeyDictionary[_Kept, dict[Hashable, Weighed | None]] = WeakKeyDictionary()

    def of(self, kept: _Kept) -> dict[Hashable, Weighed | None]:
        """This schema's plans of the document, by key; None: nothing execution could use."""
        plans = self._of.get(kept)
        if plans is None:
            plans = self._of[kept] = {}
            kept.planned_by.add(self)
        return plans


_kept: LRUCache[str, _Kept] = LRUCache(maxsize=BUDGET_BYTES, getsizeof=lambda kept: kept.weight)

_handed_over: tuple[str, DocumentNode] | None = None
"""The last text `operation_type` parsed, for execution to take rather than parse again:
one document, not yet measured, within the default limits on length."""


def _tokens(document: DocumentNode) -> int:
    """Along the chain of tokens the tree keeps, comments included (they are kept too),
    the start and the end of the text not."""
    assert document.loc is not None
    token = document.loc.start_token.next
    count = 0
    while token is not None and token.kind is not TokenKind.EOF:
        count += 1
        token = token.next
    return count


def _keep(text: str, document: DocumentNode, schema: GraphQLSchema, rules: _Rules) -> None:
    kept = _kept.get(text)
    if kept is None or kept.document is not document:
        kept = _Kept(document, _tokens(document))
    kept.valid_for.setdefault(schema, set()).add(rules)
    if kept.weight <= BUDGET_BYTES:
        _kept[text] = kept


def planned(
    operation: OperationDefinitionNode,
    plans: Plans,
    key: Hashable,
    build: Callable[[], P | None],
) -> P | None:
    """The plan kept in `plans` under `key`, for the validated document `operation`
    belongs to, built and kept on first use; None for an operation of a document not kept
    (it is run once), or when `build` can make nothing of it. The document is weighed
    again with its new plan, and a plan that would not fit is used once, not kept."""
    if operation.loc is None:
        return None
    text = operation.loc.source.body
    kept = _kept.get(text)
    if kept is None or not any(d is operation for d in kept.document.definitions):
        return None
    mine = plans.of(kept)
    if key in mine:
        found: P | None = mine[key]  # type: ignore[assignment]
        return found
    if len(mine) >= PLANS_PER_DOCUMENT:
        return None
    plan = build()
    mine[key] = plan
    if kept.weight > BUDGET_BYTES:
        del mine[key]
    else:
        _kept[text] = kept
    return plan


def _parsed(text: str) -> _Kept | None:
    """The text's document if it is kept or was just handed over, to be used if it is
    within the limits."""
    kept = _kept.get(text)
    if kept is None and _handed_over is not None and _handed_over[0] == text:
        kept = _Kept(_handed_over[1], _tokens(_handed_over[1]))
    return kept


def _within(parsed: _Kept, limits: Limits) -> bool:
    """Whether a parsed text is plainly within these limits, without lexing it again: a
    kept one passed the limits it was sent under, but another gateway in the process may
    have tighter ones, and a handed-over one was parsed within the default limits. Its
    token count includes comments, so a text with many is counted again to know."""
    assert parsed.document.loc is not None
    text = parsed.document.loc.source.body
    return len(text) <= limits.max_characters and parsed.tokens <= limits.max_tokens


def _standing_in(operation_name: str | None) -> DocumentNode:
    """An empty query under the operation's name, in the place of a text too long to
    parse: Strawberry reads an operation's type from its document before it looks at the
    errors already found, and this one is never validated nor run."""
    return DocumentNode(
        definitions=(
            OperationDefinitionNode(
                operation=OperationType.QUERY,
                name=NameNode(value=operation_name) if operation_name else None,
                variable_definitions=(),
                directives=(),
                selection_set=SelectionSetNode(selections=()),
            ),
        )
    )


def operation_type(text: str | None, name: str | None) -> OperationType | None:
    """What an operation is; None when the text does not parse, is too long to (by the
    default limits: the caller has no others), or names no single operation. Execution
    then says why."""
    global _handed_over
    if not text:
        return None
    kept = _kept.get(text)
    if kept is not None:
        document = kept.document
    elif text_refusal(text, Limits()) is not None:
        return None
    else:
        try:
            document = parse(text)
        except GraphQLError:
            return None
        _handed_over = (text, document)
    operation = get_operation_ast(document, name)
    return operation.operation if operation is not None else None


def _limits(execution: ExecutionContext) -> Limits:
    return limits_of(execution.context)


def limits_of(context: object) -> Limits:
    """The operation limits a request's context carries; the defaults for any other."""
    return context.limits if isinstance(context, Context) else Limits()


class CachedParsing(SchemaExtension):
    """A text too long to parse is refused here, before anything is built from it. One that
    does not parse is left to Strawberry, which reports the syntax error as an ordinary
    result (Strawberry's `ParserCache` raises it from the hook instead, and the error then
    leaves without its code)."""

    def on_parse(self) -> Iterator[None]:
        execution = self.execution_context
        text = execution.query
        if text is not None:
            limits = _limits(execution)
            parsed = _parsed(text)
            refusal = None
            if parsed is None or not _within(parsed, limits):
                refusal = text_refusal(text, limits)
            if refusal is not None:
                execution.pre_execution_errors = [
                    GraphQLError(refusal.message, original_error=refusal)
                ]
                execution.graphql_document = _standing_in(execution.operation_name)
            elif parsed is not None:
                execution.graphql_document = parsed.document
            else:
                with suppress(GraphQLError):
                    execution.graphql_document = parse(text, **execution.parse_options)
        yield


class CachedValidation(SchemaExtension):
    """Runs after `OperationLimits`, and keeps what passed both."""

    def on_validate(self) -> Iterator[None]:
        execution = self.execution_context
        document = execution.graphql_document
        text = execution.query
        if execution.pre_execution_errors is None and document is not None and text:
            schema, rules = execution.schema._schema, tuple(execution.validation_rules)
            kept = _kept.get(text)
            known = kept.valid_for.get(schema, ()) if kept and kept.document is document else ()
            if rules in known:
                execution.pre_execution_errors = []
            else:
                execution.pre_execution_errors = validate_document(schema, document, rules)
                if not execution.pre_execution_errors:
                    _keep(text, document, schema, rules)
        yield
