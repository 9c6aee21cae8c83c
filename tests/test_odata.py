"""Values placed in an OData filter stay values, whatever they contain."""

from __future__ import annotations

from urllib.parse import unquote

from hypothesis import given
from hypothesis import strategies as st
from odata_query import ast
from odata_query.grammar import ODataLexer, ODataParser

from gateway.connectors import odata


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
