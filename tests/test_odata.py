"""Values placed in an OData filter stay values, whatever they contain."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from odata_query import ast
from odata_query.grammar import ODataLexer, ODataParser

from gateway import odata


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
        "$filter": "Id in (1, 2) and contains(tolower(Name), 'é')",
        "$orderby": "Name,Id",
        "$top": "21",
        "$skip": "7",
        "$count": "true",
        "$expand": "Units($select=Id;$orderby=UnitCode)",
    }
