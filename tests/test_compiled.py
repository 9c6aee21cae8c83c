"""Compiled execution answers byte for byte as graphql-core's executor does.

The differential test draws valid operations from the SDL (`tests/operations.py`) and
sends each to two gateways on two identical sandbox worlds, one compiled and one
all graphql-core, as the same caller (with or without the scopes personal data
needs), with the same providers failing; the two bodies must be the same bytes but for
the order of their errors and warnings, and, where no provider fails, each provider must
have received as many requests from one gateway as from the other. (Errors come in the
order they happened, as graphql-core reports them: two raised in branches waiting on two
providers come in the order those providers answered, which neither executor decides.
Where one fails, a provider called once per key stops being called at its first failure,
and how many calls had left by then depends on the event loop's other work, the other
gateway's timers included, whichever executor runs.)
`PROPGATE_DIFFERENTIAL_EXAMPLES` sets how many operations are drawn (default 200;
`pytest tests/test_compiled.py --hypothesis-show-statistics` shows what they did).
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import os
import tracemalloc
import types
import uuid
from collections.abc import AsyncIterator, Hashable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from graphql import GraphQLObjectType, parse, validate
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gateway.clock import ManualClock
from gateway.config import ApiKey, AuthSettings, GatewaySettings, Settings, Traffic
from gateway.federation.fan_out import Edge, ListResult
from gateway.federation.loaders import Loaders
from gateway.model import ENTITY_OF, Building, Entity, Link, Selection, Unit
from gateway.sandbox import Sandbox
from schema import build_schema, documents
from schema.compiled import COMPILED, GRAPHQL_CORE, CompiledExecutor
from schema.compiled import plan as plans
from schema.ids import encode_id
from schema.shows import Shows
from schema.types import Follows
from tests.conftest import Client, serving, settled
from tests.metrics_reading import metric
from tests.operations import Operation, Pools, operations

EXAMPLES = int(os.environ.get("PROPGATE_DIFFERENTIAL_EXAMPLES", "200"))
CALLERS = {
    "reader": ["property:read"],
    "tenants": ["property:read", "tenant:read"],
    "all": ["*"],
}
_NEVER_OPENS = 1_000_000
"""Circuits stay closed, for failures and slowness alike: how many failed calls left
before a failure stopped the rest depends on the event loop (and slowness on the
machine), so a circuit counting them would open in one world and not in the other, and
the next operations would differ by that, not by their executor."""
FAULTS = [("error", 400), ("error", 404), ("malformed", 200), ("wrong_shape", 200)]
"""Faults a provider answers with at once: no retry, so no timing, decides the outcome."""


def _settings(compiled: bool) -> Settings:
    return Settings(
        gateway=GatewaySettings(
            default_page_size=20,
            max_page_size=100,
            subscribe_at_start=False,
            compiled_execution=compiled,
        ),
        defaults=Traffic(
            max_concurrency=8,
            max_retry_after_seconds=2,
            breaker_failures=_NEVER_OPENS,
            breaker_slow_share=1,
        ),
        auth=AuthSettings(
            api_keys=[
                ApiKey(name=name, sha256=hashlib.sha256(name.encode()).hexdigest(), scopes=scopes)
                for name, scopes in CALLERS.items()
            ]
        ),
    )


@dataclass(frozen=True)
class Asked:
    response: httpx.Response
    upstream: dict[str, int]
    """Requests each provider of its world received for the operation (tokens too)."""


@dataclass
class Twins:
    """Two gateways, compiled and graphql-core, each on its own copy of the same world."""

    runner: asyncio.Runner
    compiled: Client
    core: Client
    ids: list[str]

    def both(self, operation: Operation, caller: str) -> tuple[Asked, Asked]:
        """The operation sent to one gateway, then the other, each after the work the one
        before left behind has settled: an operation whose error nulls the whole response
        leaves its other root fields running in the background (both executors do), and
        their requests must land in their own gateway's history, not in the other's."""

        async def ask(client: Client) -> Asked:
            states = client.sandbox.states
            before = {name: state.count() for name, state in states.items()}
            idle = asyncio.all_tasks()
            response = await client.http.post(
                "/graphql",
                json={"query": operation.text, "variables": operation.variables},
                headers={"X-API-Key": caller, "X-Request-ID": "differential"},
            )
            await settled(idle)
            made = {name: state.count() - before[name] for name, state in states.items()}
            return Asked(response, made)

        return self.runner.run(ask(self.compiled)), self.runner.run(ask(self.core))

    def fail(self, faults: dict[str, tuple[str, int]]) -> None:
        """Providers fail as given, on both worlds; the clocks move on a minute, so circuits
        opened by earlier failures let their probe through by now."""
        for client in (self.compiled, self.core):
            client.clock.advance(60)
            for name, state in client.sandbox.states.items():
                if name in faults:
                    kind, status = faults[name]
                    state.inject(kind, status=status)
                else:
                    state.inject("none")


@asynccontextmanager
async def _gateway(compiled: bool) -> AsyncIterator[Client]:
    clock = ManualClock()
    sandbox = Sandbox(seed=7, clock=clock)
    async with serving(sandbox, clock, _settings(compiled), headers={"X-API-Key": "all"}) as client:
        yield client


_LISTS = {
    Entity.LANDLORD: "landlords",
    Entity.BUILDING: "buildings",
    Entity.UNIT: "units",
    Entity.TENANT: "tenants",
    Entity.RELATIONSHIP: "relationships",
}


async def _ids(client: Client) -> list[str]:
    """Global ids that exist (a few of each type, from several providers), then ids of
    records no provider has, of a provider no one serves, and not ids at all."""
    found = []
    for entity, field in _LISTS.items():
        body = await client.data(f"{{ {field}(first: 4) {{ edges {{ node {{ id }} }} }} }}")
        found += [edge["node"]["id"] for edge in body[field]["edges"]]
        found.append(encode_id(entity, "primmo", "999999"))
    return [*found, encode_id(Entity.UNIT, "nowhere", "1"), "bad"]


@pytest.fixture(scope="module")
def twins() -> Iterator[Twins]:
    with asyncio.Runner() as runner:
        stack = AsyncExitStack()
        try:
            compiled = runner.run(stack.enter_async_context(_gateway(True)))
            core = runner.run(stack.enter_async_context(_gateway(False)))
            ids = runner.run(_ids(compiled))
            assert runner.run(_ids(core)) == ids
            yield Twins(runner, compiled, core, ids)
        finally:
            runner.run(stack.aclose())


def _pools(ids: list[str], root_fields: tuple[str, ...] = ()) -> Pools:
    return Pools(
        scalars={
            "Int": [0, 1, 2, 3, -1],
            "Float": [0.0, 2.5, 4.0],
            "String": ["primmo", "pms", "mycrm", "scom", "leap", "nowhere", "bad", "Ma"],
            "ID": ids,
            "Date": ["2027-01-01", "2027-03-31", "2026-12-31"],
        },
        skipped=frozenset({"ProviderStatus.latencyP50Ms", "ProviderStatus.latencyP95Ms"}),
        root_fields=root_fields,
    )


_SCHEMA = build_schema()._schema


_DRAWN = settings(
    deadline=None,
    suppress_health_check=[
        HealthCheck.large_base_example,
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
    ],
)
"""Operations take tens of milliseconds each, and the gateways live as long as the module."""


@settings(_DRAWN, max_examples=EXAMPLES)
@given(data=st.data())
def test_both_executors_answer_every_drawn_operation_with_the_same_bytes(
    twins: Twins, data: st.DataObject
) -> None:
    _differential(twins, data, _pools(twins.ids))


@settings(_DRAWN, max_examples=max(EXAMPLES // 4, 1))
@given(data=st.data())
def test_both_executors_answer_alike_where_personal_data_is_asked_without_the_scope(
    twins: Twins, data: st.DataObject
) -> None:
    """Tenants lie deep in most operations; these start from them, so that a caller without
    `tenant:read` meets their guarded fields (and `Tenant.lease`) often."""
    _differential(twins, data, _pools(twins.ids, ("tenants", "nodes", "node")))


def _differential(twins: Twins, data: st.DataObject, pools: Pools) -> None:
    operation = data.draw(operations(_SCHEMA, pools), label="operation")
    caller = data.draw(st.sampled_from(sorted(CALLERS)), label="caller")
    providers = sorted(twins.compiled.sandbox.states)
    failing = data.draw(st.lists(st.sampled_from(providers), max_size=2, unique=True))
    faults = {name: data.draw(st.sampled_from(FAULTS), label=name) for name in failing}
    assert not validate(_SCHEMA, parse(operation.text))
    twins.fail(faults)
    try:
        compiled, core = twins.both(operation, caller)
    finally:
        twins.fail({})

    assert compiled.response.status_code == core.response.status_code
    assert _answer(compiled.response) == _answer(core.response)
    if not faults:
        assert compiled.upstream == core.upstream
    body = compiled.response.json()
    codes = sorted({error["extensions"]["code"] for error in body.get("errors", [])})
    event(f"data {'null' if body.get('data') is None else 'present'}, errors {codes or 'none'}")


def _answer(response: httpx.Response) -> tuple[bytes, list[bytes], list[bytes]]:
    """The body as sent but for its errors and warnings, and those in a set order."""
    body = orjson.loads(response.content)
    errors = body.pop("errors", [])
    warnings = body.get("extensions", {}).pop("warnings", [])
    return (
        orjson.dumps(body),
        sorted(orjson.dumps(error) for error in errors),
        sorted(orjson.dumps(warning) for warning in warnings),
    )


def _executed(client: Client) -> dict[str, float]:
    text = client.gateway.metrics.exposition("text/plain")[0].decode()
    return {
        executor: metric(text, "propgate_graphql_executor_runs_total", executor=executor)
        for executor in (COMPILED, GRAPHQL_CORE)
    }


def test_every_drawn_query_ran_compiled_on_the_compiled_gateway(twins: Twins) -> None:
    """Run after the differential test (it shares the module's gateways): the compiled
    gateway never fell back to graphql-core for a drawn query, the other never compiled."""
    compiled, core = _executed(twins.compiled), _executed(twins.core)

    assert compiled[COMPILED] > 0 and compiled[GRAPHQL_CORE] == 0
    assert core[COMPILED] == 0 and core[GRAPHQL_CORE] > 0


NESTED = (
    '{ buildings(first: 20, providers: ["primmo"]) { edges { node { sourceId name '
    "units { sourceId unitCode rooms tenants { sourceId lastName } } } } } }"
)


async def test_the_nested_query_costs_the_same_upstream_requests_either_way() -> None:
    counts = []
    for compiled in (True, False):
        async with _gateway(compiled) as client:
            await client.data(NESTED)
            for state in client.sandbox.states.values():
                state.requests.clear()
            await client.data(NESTED)
            counts.append(sum(state.count() for state in client.sandbox.states.values()))

    assert counts[0] == counts[1] == 4, "buildings with units, then tenants in three $filters"


def _unique(selection: str) -> str:
    return f"query Q{uuid.uuid4().hex} {{ {selection} }}"


def _plans(text: str) -> dict[Hashable, documents.Weighed | None]:
    """The plans made of a text that only this test's gateway has run."""
    kept = documents._kept[text]
    (made,) = kept.planned_by
    return made.of(kept)


async def test_a_plan_is_kept_with_its_document_per_skip_and_include_values(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    compiles: list[str] = []
    compile_operation = plans._compile

    def counting(ex: CompiledExecutor) -> plans.Plan | None:
        compiles.append(ex.operation.name.value if ex.operation.name else "")
        return compile_operation(ex)

    monkeypatch.setattr(plans, "_compile", counting)
    text = _unique(
        'buildings(first: 2, providers: ["primmo"]) { edges { node { name '
        "code @include(if: $withCode) } } }"
    ).replace("{", "($withCode: Boolean!) {", 1)

    answers = [await client.data(text, {"withCode": value}) for value in (True, True, False, False)]

    assert len(compiles) == 2
    assert [set(a["buildings"]["edges"][0]["node"]) for a in answers] == [
        {"name", "code"},
        {"name", "code"},
        {"name"},
        {"name"},
    ]
    kept = documents._kept[text]
    assert len(_plans(text)) == 2
    assert kept.weight > len(text) + documents._tokens(kept.document) * documents.BYTES_PER_TOKEN


async def test_a_document_keeps_at_most_its_share_of_plans(client: Client) -> None:
    flags = [f"$f{n}" for n in range(6)]
    declared = ", ".join(f"{flag}: Boolean!" for flag in flags)
    fields = " ".join(f"a{n}: name @include(if: {flag})" for n, flag in enumerate(flags))
    text = (
        f"query Q{uuid.uuid4().hex}({declared}) "
        f"{{ buildings(first: 1) {{ edges {{ node {{ {fields} }} }} }} }}"
    )

    for number in range(documents.PLANS_PER_DOCUMENT + 4):
        bits = {f"f{n}": bool(number >> n & 1) for n in range(6)}
        body = await client.data(text, bits)
        assert set(body["buildings"]["edges"][0]["node"]) == {
            f"a{n}" for n in range(6) if bits[f"f{n}"]
        }

    assert len(_plans(text)) == documents.PLANS_PER_DOCUMENT
    runs = _executed(client)
    assert runs[GRAPHQL_CORE] >= 4


async def test_each_gateway_of_a_process_runs_a_text_on_a_plan_of_its_own(
    sandbox: Sandbox, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plans are the schema's, not shared by the process's cache of documents: when they
    were, a document's cap counted every gateway's plans, and in a test process the
    seventeenth gateway to run a common text ran it through graphql-core (37 of the 107
    queries of `test_resilience`)."""
    monkeypatch.setattr(documents, "PLANS_PER_DOCUMENT", 2)
    text = _unique("buildings(first: 2) { edges { node { name } } }")
    served = Settings(gateway=GatewaySettings(subscribe_at_start=False))

    runs = []
    for _ in range(documents.PLANS_PER_DOCUMENT + 2):
        async with serving(sandbox, clock, served) as client:
            await client.data(text)
            runs.append(_executed(client))

    assert runs == [{COMPILED: 1, GRAPHQL_CORE: 0}] * len(runs)


async def test_mutations_and_operations_not_kept_run_through_graphql_core(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(documents, "BUDGET_BYTES", 0)
    before = _executed(client)

    await client.data(_unique("buildings(first: 1) { edges { node { name } } }"))
    await client.query(
        'mutation { createTenant(input: {unitId: "x", firstName: "A", lastName: "B"}) '
        "{ errors { code } } }"
    )

    after = _executed(client)
    assert after[GRAPHQL_CORE] - before[GRAPHQL_CORE] == 2
    assert after[COMPILED] == before[COMPILED]


def test_every_type_showing_a_record_says_which_so_plans_check_its_class() -> None:
    """A type added without `is_type_of = Shows(...)` would still be answered right, but
    each of its objects would cost the resolver information graphql-core hands the check."""
    shown = {
        name: graphql_type.is_type_of
        for name, graphql_type in _SCHEMA.type_map.items()
        if isinstance(graphql_type, GraphQLObjectType) and graphql_type.is_type_of is not None
    }

    assert shown and all(isinstance(check, Shows) for check in shown.values()), shown


@pytest.mark.parametrize(
    "selection",
    [
        "buildings(first: 5) { edges { node { id name code street city postalCode provider "
        "sourceId units { id unitCode rooms occupancy housingType tenants { id firstName "
        "lastName email phone tenantNumber tenantType } } } cursor } pageInfo { hasNextPage "
        "endCursor } totalCount }",
        "nodes(ids: []) { __typename id ... on Tenant { lastName unit { unitCode } } "
        "... on Relationship { role party { __typename ... on Landlord { name } } } }",
        "units(first: 2) { edges { node { unitCode } } }",
    ],
    ids=["wide and deep", "abstract", "narrow"],
)
async def test_a_plan_weighs_at_least_what_it_holds(client: Client, selection: str) -> None:
    text = _unique(selection)
    await client.query(text)
    _plans(text).clear()
    held: list[int] = []

    def measured(ex: CompiledExecutor) -> plans.Plan | None:
        gc.collect()
        tracemalloc.start()
        try:
            made = compile_operation(ex)
            held.append(tracemalloc.get_traced_memory()[0])
        finally:
            tracemalloc.stop()
        return made

    compile_operation = plans._compile
    plans._compile = measured
    try:
        await client.query(text)
    finally:
        plans._compile = compile_operation

    plan = next(iter(_plans(text).values()))
    assert plan is not None and held and plan.weight >= held[0]


async def test_records_go_to_their_object_functions_without_an_awaitable_test(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record of the class its field's type shows is completed by the object function
    itself, in fields and list items alike, a page's edges included: Strawberry's
    `is_awaitable` and the completers around the function cost a fifth of the plan's time
    on a thousand-edge list."""
    asked: list[object] = []
    start = CompiledExecutor.__init__

    def counting(ex: CompiledExecutor, *args: object, **kwargs: object) -> None:
        start(ex, *args, **kwargs)
        is_awaitable = ex.is_awaitable

        def asking(value: object) -> bool:
            asked.append(value)
            return is_awaitable(value)

        ex.is_awaitable = asking  # type: ignore[assignment]

    monkeypatch.setattr(CompiledExecutor, "__init__", counting)
    body = await client.data(
        _unique(
            'units(first: 30, providers: ["primmo"]) { edges { node { unitCode '
            "building { name } } } }"
        )
    )

    edges = body["units"]["edges"]
    assert len(edges) == 30 and all(edge["node"]["building"]["name"] for edge in edges)
    assert not [v for v in asked if isinstance(v, Unit | Building | Edge | ListResult)]


def _followed() -> list[tuple[str, Any, Follows]]:
    """Every resolver marked with what it follows, by its type and field."""
    found = []
    for name, graphql_type in _SCHEMA.type_map.items():
        if not isinstance(graphql_type, GraphQLObjectType):
            continue
        for field_name, field in graphql_type.fields.items():
            resolver = getattr(field.extensions.get("strawberry-definition"), "base_resolver", None)
            function = getattr(resolver, "wrapped_func", None)
            follows = getattr(function, "follows", None)
            if isinstance(follows, Follows):
                found.append((f"{name}.{field_name}", function, follows))
    return found


_RECORD_CLASSES = list(ENTITY_OF)


class _Parent:
    """A record every relation of which holds a record of each class, fetched with it and
    its own: what a resolver returns shows which relation it read, and what it kept."""

    def __init__(self, first: int) -> None:
        self.read: list[str] = []
        self._classes = _RECORD_CLASSES[first:] + _RECORD_CLASSES[:first]

    def __getattr__(self, name: str) -> Link:
        self.read.append(name)
        records: tuple[Any, ...] = tuple(object.__new__(kind) for kind in self._classes)
        link = self.__dict__[name] = Link("sandbox", Entity.UNIT, "id", name, records)
        return link


def _identities(returned: object) -> object:
    if isinstance(returned, list):
        return [id(record) for record in returned]
    return None if returned is None else id(returned)


@pytest.mark.parametrize("first", range(len(_RECORD_CLASSES)))
async def test_each_relation_marked_as_followed_is_what_its_resolver_follows(
    first: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plan follows a marked relation without calling its resolver, and graphql-core
    calls the resolver: each marker must say what its resolver does (which relation, to
    records of which class, all of them or the first), or the executors would differ."""
    monkeypatch.setattr("schema.types.selection_here", lambda _type, _info: Selection())
    loaders = Loaders(None)  # type: ignore[arg-type]
    info = types.SimpleNamespace(context=types.SimpleNamespace(loaders=loaders))
    marked = _followed()

    assert len(marked) >= 30
    for name, resolver, follows in marked:
        parent = _Parent(first)
        returned = await resolver(root=parent, info=info)
        relation = getattr(parent, follows.attribute)
        assert relation.prefetched is not None
        expected = follows.chosen(relation.prefetched)
        assert parent.read == [follows.attribute], name
        assert _identities(returned) == _identities(expected), name


async def test_a_relation_fetched_with_its_parent_is_answered_without_a_resolver_information(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A followed relation asks the resolver information of its place once per request,
    for the selection, and not at all where its records came with the parent: each parent
    used to build one, and its units, fetched with the buildings, were awaited one
    coroutine chain per building."""
    built: list[str] = []
    information = CompiledExecutor.strawberry_info

    def counting(ex: CompiledExecutor, field: plans.FieldPlan, path: Any) -> Any:
        built.append(field.key)
        return information(ex, field, path)

    monkeypatch.setattr(CompiledExecutor, "strawberry_info", counting)
    body = await client.data(
        _unique(
            'buildings(first: 5, providers: ["primmo"]) { edges { node { name units { '
            "unitCode tenants { lastName } } } } }"
        )
    )

    units = [unit for edge in body["buildings"]["edges"] for unit in edge["node"]["units"]]
    assert len(units) > 5 and any(unit["tenants"] for unit in units)
    assert built == ["tenants"]


async def test_relations_that_cannot_be_followed_warn_in_the_order_graphql_core_follows_them() -> (
    None
):
    """A relation its provider cannot give says so when it is followed, as its resolver
    did, not when the plan first meets it: the warnings come in graphql-core's order."""
    query = (
        '{ units(first: 2, providers: ["mycrm"]) { edges { node { '
        "maintenanceRequests(open: true) { sourceId } building { sourceId } "
        "tenants { sourceId } } } } }"
    )
    warned = []
    for compiled in (True, False):
        async with _gateway(compiled) as client:
            response = await client.http.post("/graphql", json={"query": query})
            warned.append(response.json()["extensions"]["warnings"])

    assert len(warned[0]) > 1 and warned[0] == warned[1]
