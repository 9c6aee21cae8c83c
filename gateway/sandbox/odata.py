"""The OData v4 query options, as a provider's server applies them to its rows.

`$filter` is parsed by `odata-query` (a maintained OData grammar) and evaluated
here over plain dicts. Strings compare the way Primmo's SQL Server columns do:
trailing spaces are ignored (`BuildingCode eq '1000PINS'` matches
`"1000PINS "`) and ordering is case-insensitive; leading spaces count.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from odata_query import ast
from odata_query.exceptions import ODataException
from odata_query.grammar import ODataLexer, ODataParser
from odata_query.visitor import NodeVisitor

__all__ = ["EntitySet", "ODataError", "QueryOptions", "evaluate", "parse_options"]

Row = dict[str, Any]


class ODataError(Exception):
    """Rendered as the OData error body, `{"error": {"code", "message"}}`, with a 400."""

    def __init__(self, message: str, code: str = "BadRequest", status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


@dataclass
class QueryOptions:
    select: list[str] | None = None
    filter: ast._Node | None = None
    orderby: list[tuple[str, bool]] = field(default_factory=list)
    top: int | None = None
    skip: int = 0
    count: bool = False
    expand: dict[str, QueryOptions] = field(default_factory=dict)


@dataclass(frozen=True)
class EntitySet:
    """What the server knows of an entity set: its properties and how to follow navigations."""

    properties: frozenset[str]
    navigation: Mapping[str, tuple[EntitySet, Callable[[Row], list[Row]]]] = field(
        default_factory=dict
    )


_OPTIONS = {"$select", "$filter", "$orderby", "$top", "$skip", "$count", "$expand"}


def parse_options(params: Sequence[tuple[str, str]]) -> QueryOptions:
    """Reads the `$` options of a query string; their names are case-insensitive."""
    options: dict[str, str] = {}
    for name, value in params:
        if not name.startswith("$"):
            continue
        key = name.lower()
        if key not in _OPTIONS:
            raise ODataError(f"The query option '{name}' is not supported.")
        if key in options:
            raise ODataError(f"The query option '{name}' is given more than once.")
        options[key] = value
    return _build(options)


def _build(options: Mapping[str, str]) -> QueryOptions:
    result = QueryOptions()
    if "$select" in options:
        result.select = [part.strip() for part in options["$select"].split(",") if part.strip()]
        if not result.select:
            raise ODataError("$select is empty.")
    if "$filter" in options:
        result.filter = _parse_filter(options["$filter"])
    if "$orderby" in options:
        result.orderby = [_order_item(item) for item in options["$orderby"].split(",")]
    if "$top" in options:
        result.top = _non_negative("$top", options["$top"])
    if "$skip" in options:
        result.skip = _non_negative("$skip", options["$skip"])
    if "$count" in options:
        flag = options["$count"].strip().lower()
        if flag not in ("true", "false"):
            raise ODataError("$count must be true or false.")
        result.count = flag == "true"
    if "$expand" in options:
        result.expand = _parse_expand(options["$expand"])
    return result


@functools.lru_cache(maxsize=256)
def _parse_filter(text: str) -> ast._Node:
    """Parsed once per distinct text, as a database keeps the plan of a statement it has seen:
    a batched 80-unit filter took the parser longer than the rows took to filter. The trees
    are frozen, so sharing them is safe."""
    try:
        return ODataParser().parse(ODataLexer().tokenize(text))  # type: ignore[no-any-return]
    except ODataException as error:
        raise ODataError(f"The $filter expression is invalid: {error}") from None


def _order_item(item: str) -> tuple[str, bool]:
    parts = item.split()
    if len(parts) == 1:
        return parts[0], False
    if len(parts) == 2 and parts[1].lower() in ("asc", "desc"):
        return parts[0], parts[1].lower() == "desc"
    raise ODataError(f"The $orderby item '{item.strip()}' is invalid.")


def _non_negative(name: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ODataError(f"{name} must be a non-negative integer, not '{text}'.") from None
    if value < 0:
        raise ODataError(f"{name} must be a non-negative integer, not '{text}'.")
    return value


def _split_top_level(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    depth, start, quoted = 0, 0, False
    for index, char in enumerate(text):
        if char == "'":
            quoted = not quoted
        elif quoted:
            continue
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise ODataError("Unbalanced parentheses in $expand.")
        elif char == separator and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    if depth != 0 or quoted:
        raise ODataError("Unbalanced parentheses or quotes in $expand.")
    parts.append(text[start:])
    return [part.strip() for part in parts if part.strip()]


def _parse_expand(text: str) -> dict[str, QueryOptions]:
    expanded: dict[str, QueryOptions] = {}
    for item in _split_top_level(text, ","):
        name, _, rest = item.partition("(")
        nested: dict[str, str] = {}
        if rest:
            if not rest.endswith(")"):
                raise ODataError(f"The $expand item '{item}' is invalid.")
            for option in _split_top_level(rest[:-1], ";"):
                key, sep, value = option.partition("=")
                key = key.strip().lower()
                if not sep or key not in _OPTIONS:
                    raise ODataError(f"The nested option '{option}' is invalid.")
                nested[key] = value
        expanded[name.strip()] = _build(nested)
    return expanded


def evaluate(
    rows: Sequence[Row], options: QueryOptions, entity_set: EntitySet
) -> tuple[list[Row], int | None]:
    """Applies the options in OData's order: filter, count, orderby, skip, top, then shape."""
    _check_names(options, entity_set)
    selected: list[Row] = list(rows)
    if options.filter is not None:
        matches = _Compiler(entity_set.properties).predicate(options.filter)
        selected = [row for row in selected if matches(row)]
    total = len(selected) if options.count else None
    for name, descending in reversed(options.orderby):
        selected.sort(key=_sort_key_of(name), reverse=descending)
    selected = selected[options.skip :]
    if options.top is not None:
        selected = selected[: options.top]
    return [_shape(row, options, entity_set) for row in selected], total


def _check_names(options: QueryOptions, entity_set: EntitySet) -> None:
    known = entity_set.properties | set(entity_set.navigation)
    for name in options.select or []:
        if name != "*" and name not in known:
            raise ODataError(f"Could not find a property named '{name}'.")
    for name, _ in options.orderby:
        if name not in entity_set.properties:
            raise ODataError(f"Could not find a property named '{name}' to order by.")
    for name in options.expand:
        if name not in entity_set.navigation:
            raise ODataError(f"Could not find a navigation property named '{name}'.")


def _shape(row: Row, options: QueryOptions, entity_set: EntitySet) -> Row:
    names = options.select if options.select and "*" not in options.select else None
    shaped = {
        key: value
        for key, value in row.items()
        if key in entity_set.properties and (names is None or key in names)
    }
    for name, nested in options.expand.items():
        target, follow = entity_set.navigation[name]
        shaped[name], _ = evaluate(follow(row), nested, target)
    return shaped


@functools.total_ordering
class _Key:
    """Orders mixed values the way the database would: nulls first, text case-blind."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        if isinstance(value, str):
            value = value.rstrip().casefold()
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Key) and self.value == other.value

    def __lt__(self, other: _Key) -> bool:
        if self.value is None or other.value is None:
            return self.value is None and other.value is not None
        return bool(self.value < other.value)


def _sort_key_of(name: str) -> Callable[[Row], _Key]:
    return lambda row: _Key(row.get(name))


def _comparable(value: Any) -> Any:
    return value.rstrip() if isinstance(value, str) else value


Compiled = Callable[[Row], Any]
"""A compiled part of a filter: its value for a row."""


class _Compiler(NodeVisitor):
    """A `$filter` tree turned once into nested closures over a row. Walking the tree for
    every row cost Primmo's sandbox tens of milliseconds on a batched 80-unit filter; names
    are checked here, up front, as a database checks a statement before it reads a row."""

    _FUNCTIONS: dict[str, Callable[..., Any]] = {
        "contains": lambda text, part: part in text,
        "startswith": lambda text, part: text.startswith(part),
        "endswith": lambda text, part: text.rstrip().endswith(part),
        "tolower": str.lower,
        "toupper": str.upper,
        "trim": str.strip,
        "length": len,
    }

    def __init__(self, properties: frozenset[str]) -> None:
        self.properties = properties

    def predicate(self, node: ast._Node) -> Callable[[Row], bool]:
        lookup = self._index(node)
        if lookup is not None:
            return lookup
        value = self.visit(node)
        return lambda row: value(row) is True

    def _index(self, node: ast._Node) -> Callable[[Row], bool] | None:
        """`(A eq 1 and B eq 'x') or (A eq 2 and B eq 'y') or ...`, the shape of a batch of
        keys, answered as an index would: one set lookup per row, not every clause. Any
        other shape is None and goes clause by clause."""
        keys: set[tuple[Any, ...]] = set()
        names: tuple[str, ...] | None = None
        for conjunction in _operands(node, ast.Or):
            matched: dict[str, Any] = {}
            for term in _operands(conjunction, ast.And):
                pair = _equality(term)
                if pair is None or pair[0] in matched:
                    return None
                matched[pair[0]] = self.visit(pair[1])({})
            if not matched.keys() <= self.properties:
                return None
            ordered = tuple(sorted(matched))
            if names is not None and ordered != names:
                return None
            names = ordered
            keys.add(tuple(_comparable(matched[name]) for name in names))
        if names is None:
            return None
        return lambda row: tuple(_comparable(row.get(name)) for name in names) in keys

    def _constant(self, value: Any) -> Compiled:
        return lambda _row: value

    def visit_Identifier(self, node: ast.Identifier) -> Compiled:
        if node.namespace or node.name not in self.properties:
            raise ODataError(f"Could not find a property named '{node.name}'.")
        name = node.name
        return lambda row: row.get(name)

    def visit_Null(self, node: ast.Null) -> Compiled:  # noqa: ARG002
        return self._constant(None)

    def visit_Integer(self, node: ast.Integer) -> Compiled:
        return self._constant(int(node.val))

    def visit_Float(self, node: ast.Float) -> Compiled:
        return self._constant(float(node.val))

    def visit_Boolean(self, node: ast.Boolean) -> Compiled:
        return self._constant(node.val.lower() == "true")

    def visit_String(self, node: ast.String) -> Compiled:
        return self._constant(node.val)

    def visit_Date(self, node: ast.Date) -> Compiled:
        return self._constant(date.fromisoformat(node.val))

    def visit_List(self, node: ast.List) -> Compiled:
        items = [self.visit(item) for item in node.val]
        return lambda row: [item(row) for item in items]

    def visit_Compare(self, node: ast.Compare) -> Compiled:
        left, right = self.visit(node.left), self.visit(node.right)
        comparator = node.comparator
        if isinstance(comparator, ast.In):

            def among(row: Row) -> bool:
                values = right(row)
                if not isinstance(values, list):
                    raise ODataError("'in' needs a list on its right.")
                return _comparable(left(row)) in [_comparable(item) for item in values]

            return among
        if isinstance(comparator, ast.Eq):
            return lambda row: _comparable(left(row)) == _comparable(right(row))
        if isinstance(comparator, ast.NotEq):
            return lambda row: _comparable(left(row)) != _comparable(right(row))
        order = _ORDER.get(type(comparator))
        if order is None:
            raise ODataError("Unsupported comparison.")

        def ordered(row: Row) -> bool:
            one, other = _comparable(left(row)), _comparable(right(row))
            if one is None or other is None:
                return False
            _check_same_kind(one, other)
            return bool(order(one, other))

        return ordered

    def visit_BoolOp(self, node: ast.BoolOp) -> Compiled:
        left, right = self.visit(node.left), self.visit(node.right)
        if isinstance(node.op, ast.And):
            return lambda row: left(row) is True and right(row) is True
        return lambda row: left(row) is True or right(row) is True

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Compiled:
        operand = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            return lambda row: operand(row) is not True

        def negative(row: Row) -> Any:
            value = operand(row)
            if isinstance(value, int | float):
                return -value
            raise ODataError("'-' needs a number.")

        return negative

    def visit_Call(self, node: ast.Call) -> Compiled:
        name = node.func.name
        function = self._FUNCTIONS.get(name.lower())
        if function is None:
            raise ODataError(f"The function '{name}' is not supported.")
        arguments = [self.visit(arg) for arg in node.args]

        def call(row: Row) -> Any:
            args = [argument(row) for argument in arguments]
            if any(arg is None for arg in args):
                return None
            if not all(isinstance(arg, str) for arg in args):
                raise ODataError(f"The function '{name}' needs text arguments.")
            return function(*args)

        return call

    def generic_visit(self, node: ast._Node) -> Any:
        raise ODataError(f"'{type(node).__name__}' is not supported in $filter.")


def _operands(node: ast._Node, joined_by: type) -> list[ast._Node]:
    """The terms joined by one boolean operator, however the parser nested them."""
    if isinstance(node, ast.BoolOp) and isinstance(node.op, joined_by):
        return [*_operands(node.left, joined_by), *_operands(node.right, joined_by)]
    return [node]


_LITERALS = (ast.String, ast.Integer, ast.Float, ast.Boolean)


def _equality(node: ast._Node) -> tuple[str, ast._Node] | None:
    """`Name eq literal` (either way round) as (name, literal); anything else None."""
    if not isinstance(node, ast.Compare) or not isinstance(node.comparator, ast.Eq):
        return None
    for name, literal in ((node.left, node.right), (node.right, node.left)):
        if isinstance(name, ast.Identifier) and not name.namespace:
            if isinstance(literal, _LITERALS):
                return name.name, literal
    return None


_ORDER: dict[type, Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


def _check_same_kind(left: Any, right: Any) -> None:
    numbers = (int, float)
    if isinstance(left, numbers) and isinstance(right, numbers):
        return
    if type(left) is not type(right):
        raise ODataError(
            f"Cannot compare {type(left).__name__} with {type(right).__name__} in $filter."
        )
