"""Metrics, request ids, JSON logs and traces, through the whole gateway in-process."""

from __future__ import annotations

import http.server
import logging
import re
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from hashlib import sha256
from typing import ClassVar

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, SpanKind

from gateway.clock import ManualClock
from gateway.config import (
    ApiKey,
    AuthSettings,
    CacheSettings,
    ObservabilitySettings,
    Settings,
)
from gateway.edge.callers import DEV_KEY
from gateway.model import Entity
from gateway.observability.logs import QueryStringRedaction
from gateway.observability.tracing import Tracing, tracing_from
from gateway.sandbox import Sandbox
from gateway.tools.loopback import free_port
from schema.ids import encode_id
from tests.conftest import Client, Recording, serving
from tests.metrics_reading import metric, upstream_requests

EVERY_PROVIDER = """query Everything {
  landlords(first: 30) { edges { node { name buildings { name units { unitCode } } } } }
  relationships(first: 5) { edges { node { role } } }
}"""
BUILDINGS = "query Few { buildings(first: 3) { edges { node { name units { unitCode } } } } }"


async def scrape(client: Client) -> str:
    response = await client.http.get("/metrics")
    assert response.status_code == 200, response.text
    return response.text


def sandbox_counts(sandbox: Sandbox, token_paths_only: bool = False) -> Counter[str]:
    """What each sandbox provider says it received (all paths, or its token endpoints')."""
    return Counter(
        {
            name: sum(state.count(path=path) for path in state.token_paths)
            if token_paths_only
            else state.count()
            for name, state in sandbox.states.items()
        }
    )


async def test_upstream_request_counts_equal_what_each_provider_received(client: Client) -> None:
    await client.data(EVERY_PROVIDER)
    client.primmo.revoke_tokens()  # a 401, a new token, the request sent again
    client.pms.throttle(retry_after=0, times=1)  # a 429 waited out and sent again
    await client.data(EVERY_PROVIDER)

    text = await scrape(client)

    received = sandbox_counts(client.sandbox)
    assert set(received) == {"primmo", "pms", "mycrm", "leap", "scom"}
    assert all(received.values())
    assert upstream_requests(text) == received
    assert upstream_requests(text, ("token",)) == sandbox_counts(client.sandbox, True)
    assert metric(text, "propgate_upstream_requests_total", provider="primmo", status="401") == 1
    assert metric(text, "propgate_upstream_requests_total", provider="pms", status="429") == 1
    assert (
        metric(text, "propgate_upstream_request_duration_seconds_count", provider="leap")
        == received["leap"]
    )


async def test_metrics_need_the_gateway_read_scope(
    sandbox: Sandbox, clock: ManualClock, settings: Settings
) -> None:
    keys = {"reader": "k-reader", "frontend": "k-frontend"}
    scopes = {"reader": ["gateway:read"], "frontend": ["property:read"]}
    api_keys = [
        ApiKey(name=name, sha256=sha256(key.encode()).hexdigest(), scopes=scopes[name])
        for name, key in keys.items()
    ]
    configured = settings.model_copy(update={"auth": AuthSettings(api_keys=api_keys)})
    async with serving(sandbox, clock, configured, headers={}) as served:
        anonymous = await served.http.get("/metrics")
        frontend = await served.http.get("/metrics", headers={"X-API-Key": keys["frontend"]})
        reader = await served.http.get(
            "/metrics", headers={"Authorization": f"Bearer {keys['reader']}"}
        )

    assert anonymous.status_code == 401
    assert anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert frontend.status_code == 403
    assert frontend.json()["errors"][0]["extensions"] == {
        "code": "FORBIDDEN",
        "scope": "gateway:read",
        "requestId": frontend.headers["X-Request-ID"],
    }
    assert reader.status_code == 200
    assert reader.headers["content-type"].startswith("text/plain")
    assert "propgate_breaker_state" in reader.text


@pytest.fixture
async def recorded(
    sandbox: Sandbox, clock: ManualClock, settings: Settings
) -> AsyncIterator[tuple[Client, Recording]]:
    pms = Recording(sandbox.transport("pms"))
    async with serving(sandbox, clock, settings, transports={"pms": pms}) as served:
        yield served, pms


async def test_the_callers_request_id_reaches_the_provider_and_comes_back(
    recorded: tuple[Client, Recording],
) -> None:
    client, pms = recorded

    response = await client.http.post(
        "/graphql", json={"query": BUILDINGS}, headers={"X-Request-ID": "checkout-7f3a.2"}
    )

    assert response.status_code == 200 and "errors" not in response.json()
    assert response.headers["X-Request-ID"] == "checkout-7f3a.2"
    assert pms.requests, "the query should have reached pms"
    assert {headers["X-Request-ID"] for headers in pms.headers()} == {"checkout-7f3a.2"}


@pytest.mark.parametrize("offered", [None, "has spaces and <angle> brackets", "x" * 129])
async def test_a_missing_or_unsafe_request_id_is_replaced_by_one_the_provider_sees_too(
    recorded: tuple[Client, Recording], offered: str | None
) -> None:
    client, pms = recorded
    headers = {"X-Request-ID": offered} if offered is not None else {}

    first = await client.http.post("/graphql", json={"query": BUILDINGS}, headers=headers)
    sent_first = {h["X-Request-ID"] for h in pms.headers()}
    pms.requests.clear()
    second = await client.http.post("/graphql", json={"query": BUILDINGS}, headers=headers)

    chosen = first.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", chosen)
    assert sent_first == {chosen}
    assert {h["X-Request-ID"] for h in pms.headers()} == {second.headers["X-Request-ID"]}
    assert second.headers["X-Request-ID"] != chosen


async def test_cache_hits_and_misses_are_counted(
    sandbox: Sandbox, clock: ManualClock, settings: Settings
) -> None:
    configured = settings.model_copy(update={"cache": CacheSettings(ttl={"primmo.Tenant": 300})})
    world = sandbox.world
    tenant = next(
        t for t in world.tenants if world.references.get(("tenant", t.id), "").startswith("primmo:")
    )
    query = f'{{ node(id: "{encode_id(Entity.TENANT, "primmo", str(tenant.id))}") {{ id }} }}'
    async with serving(sandbox, clock, configured) as served:
        await served.data(query)
        after_one = await scrape(served)
        await served.data(query)
        await served.data(query)
        after_three = await scrape(served)

    lookups = "propgate_entity_cache_lookups_total"
    tenants = {"provider": "primmo", "type": "Tenant"}
    assert metric(after_one, lookups, result="miss", **tenants) == 1
    assert metric(after_one, lookups, result="hit", **tenants) == 0
    assert metric(after_three, lookups, result="miss", **tenants) == 1
    assert metric(after_three, lookups, result="hit", **tenants) == 2


async def test_the_breaker_gauge_follows_the_circuit(client: Client) -> None:
    def state(text: str, name: str) -> float:
        return metric(text, "propgate_breaker_state", provider="mycrm", state=name)

    closed = await scrape(client)
    client.mycrm.inject("error", status=500)
    for _ in range(5):
        await client.query("{ landlords(first: 5) { edges { node { name } } } }")
    opened = await scrape(client)
    client.clock.advance(31)
    probing = await scrape(client)

    assert (state(closed, "CLOSED"), state(closed, "OPEN")) == (1, 0)
    assert (state(opened, "CLOSED"), state(opened, "OPEN"), state(opened, "HALF_OPEN")) == (0, 1, 0)
    assert (state(probing, "OPEN"), state(probing, "HALF_OPEN")) == (0, 1)
    assert state(opened, "CLOSED") + state(closed, "OPEN") == 0
    assert metric(opened, "propgate_breaker_state", provider="primmo", state="CLOSED") == 1
    failed = metric(opened, "propgate_upstream_requests_total", provider="mycrm", status="500")
    assert failed == 5 == client.mycrm.count("GET")


async def test_token_fetches_and_their_failures_are_counted(client: Client) -> None:
    fetches = "propgate_token_fetches_total"
    query = '{ buildings(first: 2, providers: ["primmo"]) { edges { node { name } } } }'

    await client.data(query)
    await client.data(query)
    client.primmo.revoke_tokens()
    client.primmo.inject("token_down")
    down = await client.query(query)
    client.primmo.inject("token_garbage")
    garbage = await client.query(query)
    client.primmo.inject("none")
    await client.data(query)
    text = await scrape(client)

    assert down["errors"][0]["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
    assert garbage["errors"][0]["extensions"]["code"] == "UPSTREAM_INVALID_RESPONSE"
    assert metric(text, fetches, provider="primmo", outcome="ok") == 2
    assert metric(text, fetches, provider="primmo", outcome="UPSTREAM_UNAVAILABLE") == 1
    assert metric(text, fetches, provider="primmo", outcome="UPSTREAM_INVALID_RESPONSE") == 1
    assert metric(text, fetches, provider="primmo") == client.primmo.count("POST", "/api/Token")


async def test_operations_are_counted_by_bounded_name_and_outcome(
    sandbox: Sandbox, clock: ManualClock, settings: Settings
) -> None:
    configured = settings.model_copy(
        update={"observability": ObservabilitySettings(max_operation_names=2)}
    )
    async with serving(sandbox, clock, configured) as served:
        await served.data("query Alpha { providers { name } }")
        await served.data("query Beta { providers { name } }")
        await served.data("query Gamma { providers { name } }")
        await served.query('query Alpha { node(id: "nope") { id } }')
        await served.data("{ providers { name } }")
        await served.query("query Invented { providers { nope } }")
        await served.query("query Broken { providers {")
        text = await scrape(served)

    operations = "propgate_graphql_operations_total"
    assert metric(text, operations, operation="Alpha", type="query", outcome="ok") == 1
    assert metric(text, operations, operation="Alpha", outcome="INVALID_ID") == 1
    assert metric(text, operations, operation="Beta", outcome="ok") == 1
    assert metric(text, operations, operation="<other>", outcome="ok") == 1
    assert metric(text, operations, operation="<anonymous>", outcome="ok") == 1
    assert metric(text, operations, operation="<invalid>") == 2
    assert metric(text, operations, outcome="GRAPHQL_VALIDATION_FAILED") == 1
    assert metric(text, operations, outcome="GRAPHQL_PARSE_FAILED") == 1
    assert "Gamma" not in text and "Invented" not in text and "Broken" not in text
    durations = "propgate_graphql_operation_duration_seconds_count"
    assert metric(text, durations, operation="Alpha") == 2
    assert metric(text, operations) == 7


async def test_spans_for_the_operation_and_each_upstream_request_nest(
    sandbox: Sandbox, clock: ManualClock, settings: Settings
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    pms = Recording(sandbox.transport("pms"))
    async with serving(
        sandbox,
        clock,
        settings,
        transports={"pms": pms},
        tracing=Tracing(provider.get_tracer("test"), provider),
    ) as served:
        await served.data(BUILDINGS)

    spans = exporter.get_finished_spans()
    operations = [span for span in spans if span.name.startswith("graphql")]
    upstream = [span for span in spans if span.kind is SpanKind.CLIENT]
    assert [span.name for span in operations] == ["graphql query Few"]
    operation = operations[0]
    assert operation.parent is None and operation.attributes is not None
    assert operation.attributes["propgate.outcome"] == "ok"
    assert {_attribute(span, "propgate.provider") for span in upstream} >= {"primmo", "pms", "scom"}
    assert len(upstream) == sandbox_counts(sandbox).total()
    assert all(
        span.parent is not None and span.parent.span_id == _context(operation).span_id
        for span in upstream
    )
    assert {_context(span).trace_id for span in spans} == {_context(operation).trace_id}
    sent = {tuple(headers["traceparent"].split("-")[1:3]) for headers in pms.headers()}
    pms_spans = {
        (f"{_context(span).trace_id:032x}", f"{_context(span).span_id:016x}")
        for span in upstream
        if _attribute(span, "propgate.provider") == "pms"
    }
    assert sent and sent == pms_spans


def _attribute(span: ReadableSpan, name: str) -> object:
    return (span.attributes or {}).get(name)


def _context(span: ReadableSpan) -> SpanContext:
    context = span.get_span_context()
    assert context is not None
    return context


def test_tracing_is_off_unless_an_endpoint_is_configured() -> None:
    assert tracing_from(ObservabilitySettings(), {}) is None
    configured = tracing_from(ObservabilitySettings(otlp_endpoint="http://127.0.0.1:4318"), {})
    from_environment = tracing_from(
        ObservabilitySettings(), {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    )
    assert configured is not None and from_environment is not None
    configured.provider.shutdown()
    from_environment.provider.shutdown()


async def test_metrics_answer_in_openmetrics_when_the_scraper_asks(client: Client) -> None:
    await client.data(BUILDINGS)
    response = await client.http.get(
        "/metrics",
        headers={"Accept": "application/openmetrics-text; version=1.0.0", "X-API-Key": DEV_KEY},
    )
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")


class _Collector(http.server.BaseHTTPRequestHandler):
    """An OTLP/HTTP collector on loopback: keeps what it is sent, answers an empty success."""

    received: ClassVar[list[tuple[str, str, bytes]]] = []

    def do_POST(self) -> None:  # the name http.server calls
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, self.headers["Content-Type"], body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        return None


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    received: list[tuple[str, str, bytes]] = []
    handler = type("Collecting", (_Collector,), {"received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


async def test_a_configured_otlp_endpoint_receives_the_spans(
    sandbox: Sandbox,
    clock: ManualClock,
    settings: Settings,
    collector: tuple[str, list[tuple[str, str, bytes]]],
) -> None:
    url, received = collector
    configured = settings.model_copy(
        update={"observability": ObservabilitySettings(otlp_endpoint=url)}
    )
    async with serving(sandbox, clock, configured) as served:
        await served.data(BUILDINGS.replace("Few", "Exported"))
    # Leaving stops the gateway, which sends what its exporter still holds.

    assert received and {(path, kind) for path, kind, _ in received} == {
        ("/v1/traces", "application/x-protobuf")
    }
    names, services = set(), set()
    for _, _, body in received:
        export = ExportTraceServiceRequest.FromString(body)
        for resource_spans in export.resource_spans:
            services |= {
                attribute.value.string_value
                for attribute in resource_spans.resource.attributes
                if attribute.key == "service.name"
            }
            names |= {span.name for scope in resource_spans.scope_spans for span in scope.spans}
    assert services == {"propgate"}
    assert "graphql query Exported" in names
    assert {"GET primmo", "GET pms"} <= names


@pytest.mark.parametrize(
    ("target", "logged"),
    [
        ("/webhooks/scom?key=s3cret", "/webhooks/scom?key=[redacted]"),
        ("/graphql?query=%7B%7D&operationName=Few", "/graphql?query=[redacted]&operationName=Few"),
        ("/graphql?operationName=Ann%20Smith", "/graphql?operationName=[redacted]"),
        ("/sandbox/x?s3cret&token=", "/sandbox/x?[redacted]&token=[redacted]"),
        ("/healthz", "/healthz"),
    ],
)
def test_a_logged_query_string_keeps_its_names_and_loses_its_values(
    target: str, logged: str
) -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        "",
        0,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", target, "1.1", 200),
        None,
    )

    QueryStringRedaction().filter(record)

    assert record.getMessage() == f'127.0.0.1:5000 - "GET {logged} HTTP/1.1" 200'
