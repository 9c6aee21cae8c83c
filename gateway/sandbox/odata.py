"""The OData v4 query options, as a provider's server applies them to its rows.

`$filter` is parsed by `odata-query` (a maintained OData grammar) and evaluated
here over plain dicts. Strings compare the way Primmo's SQL Server columns do:
trailing spaces are ignored (`BuildingCode eq '1000PINS'` matches
`"1000PINS "`) and ordering is case-insensitive; leading spaces count.
"""

from __future__ import annotations

import functools
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


def _parse_filter(text: str) -> ast._Node:
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
        predicate = _Evaluator(entity_set.properties)
        selected = [row for row in selected if predicate.test(options.filter, row)]
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


class _Evaluator(NodeVisitor):
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
        self.row: Row = {}

    def test(self, node: ast._Node, row: Row) -> bool:
        self.row = row
        return self.visit(node) is True

    def visit_Identifier(self, node: ast.Identifier) -> Any:
        if node.namespace or node.name not in self.properties:
            raise ODataError(f"Could not find a property named '{node.name}'.")
        return self.row.get(node.name)

    def visit_Null(self, node: ast.Null) -> None:  # noqa: ARG002
        return None

    def visit_Integer(self, node: ast.Integer) -> int:
        return int(node.val)

    def visit_Float(self, node: ast.Float) -> float:
        return float(node.val)

    def visit_Boolean(self, node: ast.Boolean) -> bool:
        return node.val.lower() == "true"

    def visit_String(self, node: ast.String) -> str:
        return node.val

    def visit_Date(self, node: ast.Date) -> date:
        return date.fromisoformat(node.val)

    def visit_List(self, node: ast.List) -> list[Any]:
        return [self.visit(item) for item in node.val]

    def visit_Compare(self, node: ast.Compare) -> bool:
        left = self.visit(node.left)
        right = self.visit(node.right)
        if isinstance(node.comparator, ast.In):
            if not isinstance(right, list):
                raise ODataError("'in' needs a list on its right.")
            return _comparable(left) in [_comparable(item) for item in right]
        left, right = _comparable(left), _comparable(right)
        if isinstance(node.comparator, ast.Eq):
            return bool(left == right)
        if isinstance(node.comparator, ast.NotEq):
            return bool(left != right)
        if left is None or right is None:
            return False
        _check_same_kind(left, right)
        if isinstance(node.comparator, ast.Lt):
            return bool(left < right)
        if isinstance(node.comparator, ast.LtE):
            return bool(left <= right)
        if isinstance(node.comparator, ast.Gt):
            return bool(left > right)
        if isinstance(node.comparator, ast.GtE):
            return bool(left >= right)
        raise ODataError("Unsupported comparison.")

    def visit_BoolOp(self, node: ast.BoolOp) -> bool:
        left = self.visit(node.left) is True
        if isinstance(node.op, ast.And):
            return left and self.visit(node.right) is True
        return left or self.visit(node.right) is True

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Any:
        operand = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            return operand is not True
        if isinstance(operand, int | float):
            return -operand
        raise ODataError("'-' needs a number.")

    def visit_Call(self, node: ast.Call) -> Any:
        function = self._FUNCTIONS.get(node.func.name.lower())
        if function is None:
            raise ODataError(f"The function '{node.func.name}' is not supported.")
        args = [self.visit(arg) for arg in node.args]
        if any(arg is None for arg in args):
            return None
        if not all(isinstance(arg, str) for arg in args):
            raise ODataError(f"The function '{node.func.name}' needs text arguments.")
        return function(*args)

    def generic_visit(self, node: ast._Node) -> Any:
        raise ODataError(f"'{type(node).__name__}' is not supported in $filter.")


def _check_same_kind(left: Any, right: Any) -> None:
    numbers = (int, float)
    if isinstance(left, numbers) and isinstance(right, numbers):
        return
    if type(left) is not type(right):
        raise ODataError(
            f"Cannot compare {type(left).__name__} with {type(right).__name__} in $filter."
        )
