"""OData queries as typed values, printed only at the last moment.

Filters are built as `odata-query` syntax trees from typed Python values and
printed by a visitor that doubles quotes inside string literals, so a value
can never change the shape of the query it is placed in (GraphQL Mesh passed
raw filter strings; we do not).

The query string is encoded here, not by httpx: httpx form-encodes a space as
`+`, which OData's URL grammar reads as a plus sign (a standard server answers
400). Printing follows the ABNF's narrowest reading, with no optional
whitespace after commas, since some servers (SAP CAP) refuse it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from urllib.parse import quote

from odata_query import ast
from odata_query.roundtrip import AstToODataVisitor

__all__ = [
    "Expr",
    "Query",
    "all_of",
    "any_of",
    "HEADERS",
    "contains",
    "encode",
    "eq",
    "eq_trimmed",
    "ge",
    "gt",
    "is_in",
    "le",
    "render",
]

Expr = ast._Node
Value = str | int | float | bool | date | None


HEADERS = {
    "OData-Version": "4.0",
    "OData-MaxVersion": "4.0",
    "Accept": "application/json;odata.metadata=minimal",
}
"""What every request says: the protocol version it speaks, the highest it reads (clients
SHOULD say so, OData 4.01 Part 1 §8.2.7: a 4.01 service may otherwise answer in 4.01's JSON,
whose control information may drop the `@odata.` prefix `NextLinks` reads), and the JSON it
reads."""

_SAFE = "$'()*,;:@/!="
"""Characters the OData ABNF allows bare in a query option's value (`qchar-no-AMP`), less `+`:
a bare `+` is a plus sign to OData but a space to form decoders, so it is always `%2B`."""


def encode(options: Mapping[str, str]) -> str:
    """A query string as OData's URL conventions want it: `%20` for a space, never `+`."""
    return "&".join(f"{quote(key, _SAFE)}={quote(value, _SAFE)}" for key, value in options.items())


class _Printer(AstToODataVisitor):
    def visit_String(self, node: ast.String) -> str:
        return "'" + node.val.replace("'", "''") + "'"

    def visit_List(self, node: ast.List) -> str:
        return "(" + ",".join(self.visit(item) for item in node.val) + ")"

    def visit_Call(self, node: ast.Call) -> str:
        arguments = ",".join(self.visit(arg) for arg in node.args)
        return f"{self.visit(node.func)}({arguments})"


def literal(value: Value) -> Expr:
    if value is None:
        return ast.Null()
    if isinstance(value, bool):
        return ast.Boolean("true" if value else "false")
    if isinstance(value, int):
        return ast.Integer(str(value))
    if isinstance(value, float):
        return ast.Float(repr(value))
    if isinstance(value, date):
        return ast.Date(value.isoformat())
    return ast.String(value)


def _prop(name: str) -> ast.Identifier:
    return ast.Identifier(name)


def eq(name: str, value: Value) -> Expr:
    return ast.Compare(ast.Eq(), _prop(name), literal(value))


def gt(name: str, value: Value) -> Expr:
    return ast.Compare(ast.Gt(), _prop(name), literal(value))


def ge(name: str, value: Value) -> Expr:
    return ast.Compare(ast.GtE(), _prop(name), literal(value))


def le(name: str, value: Value) -> Expr:
    return ast.Compare(ast.LtE(), _prop(name), literal(value))


def is_in(name: str, values: Iterable[Value]) -> Expr:
    items = [literal(value) for value in values]
    if len(items) == 1:
        return ast.Compare(ast.Eq(), _prop(name), items[0])
    return ast.Compare(ast.In(), _prop(name), ast.List(items))  # type: ignore[arg-type]


def contains(name: str, text: str) -> Expr:
    """Case-insensitive: both sides lowered, as OData has no case-blind `contains`."""
    lowered = ast.Call(ast.Identifier("tolower"), [_prop(name)])
    return ast.Call(ast.Identifier("contains"), [lowered, ast.String(text.lower())])


def _combine(op: ast._BoolOpToken, parts: Sequence[Expr | None]) -> Expr | None:
    present = [part for part in parts if part is not None]
    if not present:
        return None
    result = present[0]
    for part in present[1:]:
        result = ast.BoolOp(op, result, part)
    return result


def all_of(*parts: Expr | None) -> Expr | None:
    return _combine(ast.And(), parts)


def any_of(*parts: Expr | None) -> Expr | None:
    return _combine(ast.Or(), parts)


def render(expr: Expr) -> str:
    return str(_Printer().visit(expr))


@dataclass(frozen=True)
class Query:
    """One request's query options; `expand` nests further queries by navigation name."""

    select: Sequence[str] = ()
    filter: Expr | None = None
    orderby: Sequence[str] = ()
    top: int | None = None
    skip: int | None = None
    count: bool = False
    expand: Mapping[str, Query] = field(default_factory=dict)

    def params(self) -> dict[str, str]:
        options: dict[str, str] = {}
        if self.select:
            options["$select"] = ",".join(self.select)
        if self.filter is not None:
            options["$filter"] = render(self.filter)
        if self.orderby:
            options["$orderby"] = ",".join(self.orderby)
        if self.top is not None:
            options["$top"] = str(self.top)
        if self.skip:
            options["$skip"] = str(self.skip)
        if self.count:
            options["$count"] = "true"
        if self.expand:
            options["$expand"] = ",".join(
                f"{name}({nested.nested()})" if nested.params() else name
                for name, nested in self.expand.items()
            )
        return options

    def nested(self) -> str:
        return ";".join(f"{key}={value}" for key, value in self.params().items())


def eq_trimmed(name: str, value: str) -> Expr:
    """Codes arrive space-padded on either side; compare them as the trimmed text they mean."""
    trimmed = ast.Call(ast.Identifier("trim"), [_prop(name)])
    return ast.Compare(ast.Eq(), trimmed, ast.String(value.strip()))
