"""What gateway/edge/router.py relies on inside Strawberry is still there, in the installed release.

`GatewayRouter` overrides Strawberry's internal hooks and tells its refusals apart by
their English text (`_CODES`). Neither is a public contract: a release may rename a
hook, so that the override silently stops running, or reword a refusal, so that its
stable code becomes `BAD_REQUEST`. pyproject.toml bounds Strawberry to the releases
this has passed on; a newer one is admitted after it passes here.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import fields
from typing import Any, get_origin

import httpx
import pytest
import strawberry
from fastapi import FastAPI
from graphql import GraphQLObjectType
from graphql.execution.values import VariableValues
from strawberry.fastapi import GraphQLRouter
from strawberry.http import GraphQLRequestData
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler

from gateway.edge import router
from schema import build_schema
from schema.compiled import CompiledExecutor

_OVERRIDING = [
    router.GatewayRouter,
    router._MediaTypedRequest,
    router._MessageSocket,
    router._TransportWSHandler,
    router._LegacyWSHandler,
]


def _parameters(function: Callable[..., Any]) -> list[tuple[str, inspect._ParameterKind]]:
    """Names (an unused one may be `_`-prefixed) and kinds, as callers pass them."""
    return [
        (name.lstrip("_"), parameter.kind)
        for name, parameter in inspect.signature(function).parameters.items()
    ]


def _overrides(cls: type) -> list[tuple[str, object, object]]:
    """Each hook `cls` defines (not its own `_` helpers), with what it replaces."""
    found = []
    for name, ours in vars(cls).items():
        if name.startswith("_"):
            continue
        base = next((base for base in cls.__mro__[1:] if name in vars(base)), None)
        found.append((name, ours, None if base is None else vars(base)[name]))
    return found


@pytest.mark.parametrize("cls", _OVERRIDING, ids=lambda cls: cls.__name__)
def test_every_override_replaces_a_hook_strawberry_still_calls_as_it_did(cls: type) -> None:
    for name, ours, theirs in _overrides(cls):
        assert theirs is not None, f"{cls.__name__}.{name}: no base class defines it any more"
        if isinstance(ours, property) and isinstance(theirs, property):
            ours, theirs = ours.fget, theirs.fget
        if inspect.isfunction(ours):
            assert callable(theirs), f"{cls.__name__}.{name} is no longer a method"
            assert _parameters(ours) == _parameters(theirs), f"{cls.__name__}.{name}"
        else:
            theirs = get_origin(theirs) or theirs  # a generic class, parameterized
            assert isinstance(ours, type) and isinstance(theirs, type), name
            assert issubclass(ours, theirs), f"{cls.__name__}.{name} replaces {theirs}"


def test_what_the_overrides_call_of_strawberrys_own_is_still_there() -> None:
    assert callable(GraphQLRouter.parse_json)
    assert callable(Operation.send_initial_errors)
    assert callable(BaseGraphQLWSHandler.send_data_message)
    assert callable(BaseGraphQLWSHandler.send_message)
    assert callable(BaseGraphQLWSHandler.handle_keep_alive)
    assert {"query", "variables", "operation_name", "extensions"} <= {
        field.name for field in fields(GraphQLRequestData)
    }


def test_the_private_hook_that_closes_the_socket_on_a_refusal_is_still_strawberrys() -> None:
    """Strawberry's graphql-transport-ws handler asks it whether an operation refused
    before it ran closes the whole socket; `_TransportWSHandler` answers never."""
    theirs = vars(BaseGraphQLTransportWSHandler)["_get_pre_execution_close_reason"]
    ours = vars(router._TransportWSHandler)["_get_pre_execution_close_reason"]

    assert isinstance(theirs, staticmethod) and isinstance(ours, staticmethod)
    assert _parameters(ours.__func__) == _parameters(theirs.__func__)


@strawberry.type
class _Query:
    @strawberry.field
    def hello(self) -> str:
        return "hello"


@strawberry.type
class _Mutation:
    @strawberry.mutation
    def touch(self) -> bool:
        return True


async def _strawberry_says(method: str, **request: Any) -> str:
    """The plain-text refusal Strawberry's own router gives, with nothing of the gateway's."""
    app = FastAPI()
    app.include_router(
        GraphQLRouter(strawberry.Schema(query=_Query, mutation=_Mutation)), prefix="/graphql"
    )
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://strawberry") as client:
        response = await client.request(method, "/graphql", **request)
    assert response.status_code >= 400
    assert response.headers["content-type"].startswith("text/plain"), response.text
    return response.text


async def test_every_refusal_the_gateway_tells_apart_is_worded_as_strawberry_words_it() -> None:
    said = {
        await _strawberry_says("GET", params={"query": "mutation { touch }"}),
        await _strawberry_says("POST", content=b"{ hello }", headers={"content-type": "text/x"}),
        await _strawberry_says("POST", json=[{"query": "{ hello }"}]),
    }

    assert said == set(router._CODES)


_EXECUTOR_CALLS = {
    "execute_operation": ["serially"],
    "execute_field": ["parent_type", "source", "field_details_list", "path", "position_context"],
    "handle_field_error": ["raw_error", "return_type", "field_details_list", "path"],
    "build_resolve_info": ["field_def", "field_nodes", "parent_type", "path"],
    "collect_subfields": ["return_type", "field_details_list"],
    "complete_list_value": [
        "return_type",
        "field_details_list",
        "info",
        "path",
        "result",
        "position_context",
    ],
    "complete_awaitable_list_item_value": [
        "item",
        "item_type",
        "field_details_list",
        "info",
        "item_path",
        "position_context",
    ],
    "ensure_valid_runtime_type": [
        "runtime_type_name",
        "return_type",
        "field_details_list",
        "info",
        "result",
    ],
    "settle_in_background": ["awaitables"],
    "build_response": ["data"],
    "finish": ["result"],
    "run_async_work_finished_hook": [],
}
"""What `schema/compiled` calls of graphql-core's executor (Strawberry's executor class is
a subclass of it): each one's parameters, as the compiled executor passes them."""


def test_what_the_compiled_executor_calls_of_graphql_core_is_still_there() -> None:
    for name, parameters in _EXECUTOR_CALLS.items():
        method = getattr(CompiledExecutor, name)
        assert list(inspect.signature(method).parameters)[1:] == parameters, name
    assert list(inspect.signature(CompiledExecutor.complete_leaf_value).parameters) == [
        "return_type",
        "result",
    ]
    assert hasattr(VariableValues, "coerced")


def test_strawberry_still_names_the_resolvers_plans_tell_apart() -> None:
    """A plain field's resolver read off the record, a guarded one's and a relation's
    through Strawberry's wrappers: `schema/compiled/plan.py` knows them by these names,
    and would call every field through its wrapper (correct, slower) if they changed."""
    graphql_schema = build_schema()._schema
    tenant = graphql_schema.get_type("Tenant")
    assert isinstance(tenant, GraphQLObjectType)
    names = {
        field: getattr(tenant.fields[field].resolve, "__name__", None)
        for field in ("sourceId", "firstName", "unit")
    }

    assert names == {
        "sourceId": "_get_basic_result",
        "firstName": "_resolver",
        "unit": "_async_resolver",
    }
