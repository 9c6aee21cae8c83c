"""Values placed in an OData filter stay values, whatever they contain."""

from __future__ import annotations

from datetime import UTC, date, datetime
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from odata_query import ast
from odata_query.grammar import ODataLexer, ODataParser

from gateway.connectors import odata
from gateway.sandbox.odata import node_count


@given(st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), max_size=60))
def test_any_text_survives_as_one_string_literal(text: str) -> None:
    rendered = odata.render(odata.eq("Name", text))

    parsed = ODataParser().parse(ODataLexer().tokenize(rendered))

    assert parsed == ast.Compare(ast.Eq(), ast.Identifier("Name"), ast.String(text))


def test_query_options_render_in_odata_syntax() -> None:
    query = odata.Query(
        select=["Id", "Name"],
        filter=odata.all_of(odata.is_in("Id", [1, 2]), odata.contains("Name", "É")),
        orderby=["Name", "Id"],
        top=21,
        skip=7,
        count=True,
        expand={"Units": odata.Query(select=["Id"], orderby=["UnitCode"])},
    )

    assert query.params() == {
        "$select": "Id,Name",
        "$filter": "Id in (1,2) and contains(tolower(Name),'é')",
        "$orderby": "Name,Id",
        "$top": "21",
        "$skip": "7",
        "$count": "true",
        "$expand": "Units($select=Id;$orderby=UnitCode)",
    }


@given(
    st.dictionaries(
        st.sampled_from(["$filter", "$select", "StartDate", "$expand"]),
        st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=40),
    )
)
def test_query_strings_decode_back_by_rfc_3986_alone(options: dict[str, str]) -> None:
    """A server decodes `%XX` and nothing else: `+` stays a plus sign, so none goes out bare,
    and no space or `&` inside a value can split it."""
    encoded = odata.encode(options)

    assert " " not in encoded and "+" not in encoded
    pairs = [part.split("=", 1) for part in encoded.split("&")] if options else []
    assert {unquote(name): unquote(value) for name, value in pairs} == options


def test_spaces_go_out_as_percent_20_and_lists_without_blanks() -> None:
    expr = odata.all_of(
        odata.eq("BuildingCode", "1465PLAIN "), odata.is_in("UnitCode", [" 1", " 2"])
    )
    assert expr is not None

    assert odata.encode({"$filter": odata.render(expr)}) == (
        "$filter=BuildingCode%20eq%20'1465PLAIN%20'%20and%20UnitCode%20in%20('%201','%202')"
    )


_TEXT = st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), max_size=12)
_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**9), 10**9),
    st.floats(allow_nan=False, allow_infinity=False),
    st.dates(min_value=date(1000, 1, 1)),
    _TEXT,
)
"""Years from 1000: the ABNF allows `0001`, `odata-query`'s lexer does not."""
_NAMES = st.sampled_from(["Id", "Name", "UnitCode", "DueDate"])
_Built = tuple[odata.Expr | None, ast._Node | None]
"""A filter as the connector builds it, beside the tree it means, built apart."""


def _value(value: odata.Value) -> ast._Node:
    match value:
        case None:
            return ast.Null()
        case bool():
            return ast.Boolean("true" if value else "false")
        case int():
            return ast.Integer(str(value))
        case float():
            return ast.Float(repr(value))
        case date():
            return ast.Date(value.isoformat())
    return ast.String(value)


def _field(name: str) -> ast.Identifier:
    return ast.Identifier(name)


@st.composite
def _comparisons(draw: st.DrawFn) -> _Built:
    name = draw(_NAMES)
    kind = draw(st.sampled_from(["eq", "gt", "ge", "le", "in", "contains", "trimmed"]))
    if kind == "contains":
        text = draw(_TEXT)
        lowered = ast.Call(ast.Identifier("tolower"), [_field(name)])
        return odata.contains(name, text), ast.Call(
            ast.Identifier("contains"), [lowered, ast.String(text.lower())]
        )
    if kind == "trimmed":
        text = draw(_TEXT)
        trimmed = ast.Call(ast.Identifier("trim"), [_field(name)])
        return odata.eq_trimmed(name, text), ast.Compare(
            ast.Eq(), trimmed, ast.String(text.strip())
        )
    if kind == "in":
        values = draw(st.lists(_VALUES, min_size=1, max_size=4))
        items = [_value(value) for value in values]
        meant = (
            ast.Compare(ast.Eq(), _field(name), items[0])
            if len(items) == 1
            else ast.Compare(ast.In(), _field(name), ast.List(items))  # type: ignore[arg-type]
        )
        return odata.is_in(name, values), meant
    value = draw(_VALUES)
    build, operator = {
        "eq": (odata.eq, ast.Eq()),
        "gt": (odata.gt, ast.Gt()),
        "ge": (odata.ge, ast.GtE()),
        "le": (odata.le, ast.LtE()),
    }[kind]
    return build(name, value), ast.Compare(operator, _field(name), _value(value))


def _combined(children: st.SearchStrategy[_Built]) -> st.SearchStrategy[_Built]:
    @st.composite
    def combination(draw: st.DrawFn) -> _Built:
        parts = draw(st.lists(st.one_of(children, st.just((None, None))), max_size=4))
        both = draw(st.booleans())
        present = [meant for _, meant in parts if meant is not None]
        built = (odata.all_of if both else odata.any_of)(*(expr for expr, _ in parts))
        if not present:
            return built, None
        meant = present[0]
        for part in present[1:]:
            meant = ast.BoolOp(ast.And() if both else ast.Or(), meant, part)
        return built, meant

    return combination()


def _flat(node: ast._Node) -> object:
    """A tree with `and` and `or` read as the associative operators they are: `a and (b
    and c)` is printed without parentheses and parsed back as `(a and b) and c`."""
    if not isinstance(node, ast.BoolOp):
        return node
    operands: list[object] = []
    for side in (node.left, node.right):
        flat = _flat(side)
        if isinstance(flat, tuple) and flat[0] is type(node.op):
            operands.extend(flat[1])
        else:
            operands.append(flat)
    return (type(node.op), operands)


@settings(deadline=None)
@given(st.recursive(_comparisons(), _combined, max_leaves=12))
def test_a_printed_filter_parses_back_to_the_tree_it_was_built_as(built: _Built) -> None:
    """Printed by the builders, read by `odata-query`'s own parser: parentheses wherever
    precedence needs them, and every value a value of its own type."""
    expr, meant = built
    if expr is None:
        assert meant is None
        return
    assert meant is not None

    parsed = ODataParser().parse(ODataLexer().tokenize(odata.render(expr)))

    assert _flat(parsed) == _flat(meant)


@settings(deadline=None)
@given(st.recursive(_comparisons(), _combined, max_leaves=12))
def test_a_filters_nodes_are_counted_as_aspnet_odata_counts_them(built: _Built) -> None:
    """What the builders count as they print (`Expr.nodes`) is what walking the filter
    `odata-query` reads back counts (the sandbox's `node_count`, ASP.NET's validator's rules),
    the count a batch is cut by is the one the server refuses by, with a conversion more for
    each comparison, which a server whose model has facets makes."""
    expr, _ = built
    if expr is None:
        return

    parsed = ODataParser().parse(ODataLexer().tokenize(odata.render(expr)))

    assert expr.nodes == node_count(parsed) + _comparisons_in(parsed)


def _comparisons_in(node: ast._Node) -> int:
    if isinstance(node, ast.BoolOp):
        return _comparisons_in(node.left) + _comparisons_in(node.right)
    if isinstance(node, ast.Compare):
        return 0 if isinstance(node.comparator, ast.In) else 1
    return 1 if isinstance(node, ast.Call) and node.func.name == "contains" else 0


def test_values_python_spells_otherwise_are_written_as_the_abnf_does() -> None:
    """`inf` and `nan` would read as property names; a datetime without an offset is no
    DateTimeOffset, and is refused rather than sent as one the server reads in its own zone."""
    assert [odata.literal(v) for v in (float("inf"), float("-inf"), float("nan"))] == [
        "INF",
        "-INF",
        "NaN",
    ]
    assert odata.literal(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05+00:00"
    with pytest.raises(TypeError, match="offset"):
        odata.literal(datetime(2026, 1, 2, 3, 4, 5))


@given(st.text(max_size=40))
def test_the_size_a_text_takes_in_a_query_string_is_what_encode_writes(text: str) -> None:
    assert odata.encoded_size(text) == len(odata.encode({"x": text})) - len("x=")
