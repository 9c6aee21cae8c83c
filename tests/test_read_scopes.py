"""A type's read scope holds wherever the type is reached: every field of the schema that leads
to a lease, a charge, a payment or a balance, found by walking the schema rather than listed by
hand, so a relation added tomorrow is checked too."""

from __future__ import annotations

from collections import deque
from typing import Any

import pytest
from graphql import (
    GraphQLField,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    Undefined,
    get_named_type,
)
from strawberry.permission import PermissionExtension
from strawberry.types.base import get_object_definition
from strawberry.types.field import StrawberryField

from gateway import model
from gateway.clock import ManualClock
from gateway.sandbox import Sandbox
from schema import build_schema
from schema.ids import encode_id
from schema.permissions import READ_SCOPES, Guarded
from schema.types import GRAPHQL_OF
from tests.conftest import keyed, serving

READS = ("property:read", "tenant:read", "financial:read")
_RECORD_OF = {entity: record for record, entity in model.ENTITY_OF.items()}


def _gated() -> dict[str, str]:
    """Each type with a read scope, by its GraphQL name."""
    return {
        get_object_definition(GRAPHQL_OF[_RECORD_OF[entity]], strict=True).name: scope
        for entity, scope in READ_SCOPES.items()
    }


def _reached(field: GraphQLField) -> GraphQLNamedType:
    """The type a field leads to; for a Relay connection, its nodes' type."""
    named = get_named_type(field.type)
    edges = named.fields.get("edges") if isinstance(named, GraphQLObjectType) else None
    if edges is not None:
        edge = get_named_type(edges.type)
        assert isinstance(edge, GraphQLObjectType)
        node: GraphQLNamedType = get_named_type(edge.fields["node"].type)
        return node
    return named


def _paths(schema: GraphQLSchema, withheld: str) -> list[list[tuple[str, GraphQLField]]]:
    """From the query root, the shortest way to every field that leads to a type needing
    `withheld`, through fields that need no argument and no `withheld`."""
    gated = _gated()
    query = schema.query_type
    assert query is not None
    found: list[list[tuple[str, GraphQLField]]] = []
    seen = {query.name}
    queue: deque[tuple[GraphQLObjectType, list[tuple[str, GraphQLField]]]] = deque([(query, [])])
    while queue:
        parent, path = queue.popleft()
        for name, field in parent.fields.items():
            if any(
                isinstance(arg.type, GraphQLNonNull) and arg.default_value is Undefined
                for arg in field.args.values()
            ):
                continue
            reached = _reached(field)
            here = [*path, (name, field)]
            if gated.get(reached.name) == withheld:
                found.append(here)
                continue
            target = get_named_type(field.type)
            if isinstance(target, GraphQLObjectType) and target.name not in seen:
                seen.add(target.name)
                queue.append((target, here))
    return found


def _text(path: list[tuple[str, GraphQLField]]) -> str:
    query = "__typename"
    for name, field in reversed(path):
        query = f"{name}{'(first: 3)' if 'first' in field.args else ''} {{ {query} }}"
    return f"{{ {query} }}"


def _at(answer: Any, keys: list[str]) -> list[Any]:
    """Every value the response holds at this path of field names, through lists."""
    values = [answer]
    for key in keys:
        values = [
            item.get(key)
            for value in values
            for item in (value if isinstance(value, list) else [value])
            if isinstance(item, dict)
        ]
    return values


@pytest.mark.parametrize("withheld", ["tenant:read", "financial:read"])
async def test_every_field_leading_to_a_scoped_type_needs_its_scope(
    sandbox: Sandbox, clock: ManualClock, withheld: str
) -> None:
    key = "reader-without-one-scope-0123456789"
    settings = keyed({key: [scope for scope in READS if scope != withheld]})
    paths = _paths(build_schema()._schema, withheld)
    assert paths, "nothing leads to a type that needs the scope"
    async with serving(sandbox, clock, settings, headers={"X-API-Key": key}) as client:
        sandbox.states["primmo"].records.modules["FinancialStatements"] = True
        for path in paths:
            names = [name for name, _ in path]
            body = await client.query(_text(path))

            forbidden = [
                error
                for error in body.get("errors", [])
                if error["extensions"]["code"] == "FORBIDDEN"
                and [step for step in error["path"] if isinstance(step, str)] == names
            ]
            assert forbidden, f"{'.'.join(names)} answered without {withheld}: {body}"
            assert {error["extensions"]["scope"] for error in forbidden} == {withheld}
            assert all(value is None for value in _at(body.get("data"), names))


async def test_a_writes_payload_shows_the_record_only_to_a_caller_who_may_read_it(
    sandbox: Sandbox, clock: ManualClock
) -> None:
    """Allowed to bill but not to read money: the charge is made, and the payload says so
    without showing it."""
    key = "biller-who-cannot-read-0123456789"
    settings = keyed({key: ["property:read", "tenant:read", "financial:manage"]})
    leases = sandbox.states["primmo"].records.leases
    lease = next(row["Id"] for row in leases if row["Status"].strip() == "A")
    given = {
        "leaseId": encode_id(model.Entity.LEASE, "primmo", str(lease)),
        "amount": {"amount": "12.00", "currency": "CAD"},
        "dueOn": "2026-12-01",
    }
    async with serving(sandbox, clock, settings, headers={"X-API-Key": key}) as client:
        body = await client.query(
            "mutation($i: CreateChargeInput!) { createCharge(input: $i) "
            "{ charge { amount { amount } } errors { code } } }",
            {"i": given},
        )

    assert body["data"]["createCharge"] == {"charge": None, "errors": []}
    assert [(e["path"], e["extensions"]["scope"]) for e in body["errors"]] == [
        (["createCharge", "charge"], "financial:read")
    ]


@pytest.mark.parametrize(
    "root",
    [
        "leases",
        "charges",
        "payments",
        "maintenanceRequests",
        "workOrders",
        "vendors",
        "listings",
        "agents",
    ],
)
async def test_a_root_list_refused_costs_that_field_alone(
    sandbox: Sandbox, clock: ManualClock, root: str
) -> None:
    """FORBIDDEN on that field and data everywhere else: a root list refused is null, not
    the whole answer."""
    key = "reader-of-nothing-much-0123456789"
    settings = keyed({key: ["gateway:read"]})
    async with serving(sandbox, clock, settings, headers={"X-API-Key": key}) as client:
        body = await client.query(f"{{ {root}(first: 1) {{ totalCount }} __typename }}")

    assert body["data"] == {root: None, "__typename": "Query"}
    assert [error["path"] for error in body["errors"]] == [[root]]
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


_KEPT_NON_NULL = {
    "Query": {
        "providers",
        "nodes",
        "landlords",
        "buildings",
        "units",
        "unitsForRent",
        "tenants",
        "relationships",
    },
}
"""Root fields older than scopes on every type, kept non-null so generated clients' types do
not change (README: Authentication): refusing one leaves the whole answer without data."""


def _scope_guarded(field: GraphQLField) -> bool:
    if isinstance(field.resolve, Guarded):
        return True
    definition = field.extensions.get("strawberry-definition")
    return isinstance(definition, StrawberryField) and any(
        isinstance(extension, PermissionExtension) for extension in definition.extensions
    )


def test_every_field_a_scope_guards_is_nullable_so_a_refusal_costs_that_field_alone() -> None:
    """A refused non-null field would null its parent, and so on up to the nearest nullable
    one: a caller without `identity:manage` asking a building's `links` would lose the
    building. Mutations are the exception (a refused write has no payload to show), and a
    connection's node, whose connection asked the same scope before it."""
    schema = build_schema()._schema
    non_null = [
        f"{parent.name}.{name}"
        for parent in schema.type_map.values()
        if isinstance(parent, GraphQLObjectType)
        and parent is not schema.mutation_type
        and not parent.name.startswith("__")
        for name, field in parent.fields.items()
        if _scope_guarded(field)
        and isinstance(field.type, GraphQLNonNull)
        and name not in _KEPT_NON_NULL.get(parent.name, set())
        and not (parent.name.endswith("Edge") and name == "node")
    ]
    assert non_null == []
