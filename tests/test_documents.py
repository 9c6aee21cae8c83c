"""Operations sent again are neither parsed nor validated again; refused ones are not
validated at all."""

from __future__ import annotations

import uuid

from schema.documents import _parse, _validate
from tests.conftest import Client, error_codes


def _unique(selection: str) -> str:
    """An operation text no other test sends, so the shared caches start cold for it."""
    return f"query Q{uuid.uuid4().hex} {{ {selection} }}"


async def test_an_operation_sent_again_is_validated_once(client: Client) -> None:
    query = _unique('buildings(first: 2, providers: ["primmo"]) { edges { node { name } } }')
    parsed, validated = _parse.cache_info(), _validate.cache_info()

    first = await client.data(query)
    second = await client.data(query)

    assert first == second and len(first["buildings"]["edges"]) == 2
    assert _parse.cache_info().misses - parsed.misses == 1
    after = _validate.cache_info()
    assert (after.misses - validated.misses, after.hits - validated.hits) == (1, 1)


async def test_an_invalid_operation_sent_again_is_refused_again(client: Client) -> None:
    query = _unique("buildings { edges { node { noSuchField } } }")

    first = await client.query(query)
    second = await client.query(query)

    assert error_codes(first) == error_codes(second) == ["GRAPHQL_VALIDATION_FAILED"]
    assert first["errors"][0]["message"] == second["errors"][0]["message"]


async def test_an_operation_over_the_limits_is_not_validated(client: Client) -> None:
    aliases = " ".join(f"a{n}: providers {{ name }}" for n in range(1000))
    before = _validate.cache_info()

    body = await client.query(_unique(aliases))

    assert error_codes(body) == ["TOO_MANY_ALIASES"]
    assert _validate.cache_info().misses == before.misses


async def test_an_operation_that_does_not_parse_keeps_its_code_when_sent_again(
    client: Client,
) -> None:
    query = _unique("buildings {")

    bodies = [await client.query(query) for _ in range(2)]

    assert [error_codes(body) for body in bodies] == [["GRAPHQL_PARSE_FAILED"]] * 2
