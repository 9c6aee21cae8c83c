"""schemathesis in its GraphQL mode: operations generated from the schema a running gateway
publishes, sent to it over real HTTP; none may get a 500 or an internal error.

Its own gateway process: generated mutations do succeed now and then (a landlord with any
name is a valid landlord), and the tests sharing `live_gateway` count what the sandbox holds.
schemathesis' pytest integration (`from_fixture`) reads a pytest internal that pytest 9 no
longer has; its documented `as_strategy()` drives Hypothesis directly instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from graphql import get_introspection_query
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case
from schemathesis.core.result import Err
from schemathesis.graphql import nodes

from gateway.edge.callers import DEV_KEY
from tests.conftest import error_codes, gateway_process

AUTH = {"X-API-Key": DEV_KEY}
INTROSPECTION = {"query": get_introspection_query(type_depth=6)}
"""schemathesis' own introspection query nests `ofType` nine deep, past the gateway's depth
limit; no type here wraps more than three deep (`[ID!]!`)."""

schemathesis.graphql.scalar(
    "Decimal",
    st.one_of(
        st.from_regex(r"-?[0-9]{1,7}(\.[0-9]{1,3})?", fullmatch=True),
        st.text(max_size=12),
    ).map(nodes.String),
)
"""The gateway's amounts are strings of digits: mostly those, some text that is not one."""


@pytest.fixture(scope="module")
def operations() -> Iterator[st.SearchStrategy[Case[Any]]]:
    with gateway_process() as url:
        published = schemathesis.graphql.from_url(
            f"{url}/graphql", headers=AUTH, json=INTROSPECTION, timeout=20
        )
        strategies = []
        for result in published.get_all_operations():
            if isinstance(result, Err):
                raise result.err()
            strategies.append(result.ok().as_strategy())
        yield st.one_of(strategies)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_no_generated_operation_gets_a_500(
    operations: st.SearchStrategy[Case[Any]], data: st.DataObject
) -> None:
    case = data.draw(operations, label="operation")
    response = case.call(headers=AUTH, timeout=20)

    assert response.status_code < 500, response.text
    assert "INTERNAL_SERVER_ERROR" not in error_codes(response.json()), (case.body, response.text)
