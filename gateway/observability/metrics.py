"""The gateway's Prometheus metrics, in a registry of its own per app.

A registry per app (not prometheus_client's global one) lets several gateways
live in one process, as they do in the tests, without counting into each other.
Everything is counted where it happens once: GraphQL operations around their
execution, upstream requests in a transport layer, token fetches in the auth
flow (where a fetch really runs, whatever store keeps the token), cache lookups
where the federation reads the cache (whichever cache it is). Breaker states, rests
and quotas are read when scraped, since an open circuit turns half-open and a rest
ends by the clock alone; so are the calls each provider's health shed, which it
counts where it sheds them.

Label values are bounded: providers, kinds, statuses and error codes are the
gateway's own; operation names come from callers, so only the names of
operations that validated count, at most `max_operation_names` of them, the
rest as `<other>`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from gateway.observability.heap import CollectionsCollector, collections
from gateway.upstream.resilience import BreakerState, ProviderHealth

__all__ = ["ANONYMOUS", "INVALID", "OTHER", "Metrics"]

ANONYMOUS = "<anonymous>"
"""An operation without a name."""
INVALID = "<invalid>"
"""An operation that did not parse, validate, or pass the operation limits: its name is the
caller's text, not a name the schema accepted."""
OTHER = "<other>"
"""A valid operation name beyond the first `max_operation_names`."""


class Metrics:
    def __init__(self, max_operation_names: int = 100) -> None:
        self.registry = CollectorRegistry()
        self._max_names = max_operation_names
        self._names: set[str] = set()
        self._operations = Counter(
            "propgate_graphql_operations",
            "GraphQL operations by name, type and outcome (ok, or the first error's code).",
            ["operation", "type", "outcome"],
            registry=self.registry,
        )
        self._operation_seconds = Histogram(
            "propgate_graphql_operation_duration_seconds",
            "Time from parsing a GraphQL operation to its result.",
            ["operation", "type"],
            registry=self.registry,
        )
        self._executors = Counter(
            "propgate_graphql_executor_runs",
            "Operations that reached execution, by the executor that ran them: compiled (their "
            "plan) or graphql-core (what plans do not cover: mutations, subscriptions, "
            "operations whose document is not kept).",
            ["executor"],
            registry=self.registry,
        )
        self._upstream = Counter(
            "propgate_upstream_requests",
            "HTTP requests sent to providers (each retry counts), by response status "
            "(or timeout, error, cancelled).",
            ["provider", "kind", "status"],
            registry=self.registry,
        )
        self._upstream_seconds = Histogram(
            "propgate_upstream_request_duration_seconds",
            "Time from sending a request to a provider to the end of its body.",
            ["provider", "kind"],
            registry=self.registry,
        )
        self._tokens = Counter(
            "propgate_token_fetches",
            "Provider tokens obtained (ok) or not (the error's code).",
            ["provider", "outcome"],
            registry=self.registry,
        )
        self._cache = Counter(
            "propgate_entity_cache_lookups",
            "Lookups of records by id where the entity cache is on for that provider and type.",
            ["provider", "type", "result"],
            registry=self.registry,
        )
        self.registry.register(CollectionsCollector(collections()))

    def operation_name(self, name: str | None) -> str:
        """The label for a validated operation's name, keeping the label set bounded."""
        if name is None:
            return ANONYMOUS
        if name in self._names:
            return name
        if len(self._names) >= self._max_names:
            return OTHER
        self._names.add(name)
        return name

    def operation(self, operation: str, kind: str, outcome: str, seconds: float) -> None:
        self._operations.labels(operation, kind, outcome).inc()
        self._operation_seconds.labels(operation, kind).observe(seconds)

    def executed(self, executor: str) -> None:
        self._executors.labels(executor).inc()

    def upstream_request(self, provider: str, kind: str, status: str, seconds: float) -> None:
        self._upstream.labels(provider, kind, status).inc()
        self._upstream_seconds.labels(provider, kind).observe(seconds)

    def token_fetch(self, provider: str, outcome: str) -> None:
        self._tokens.labels(provider, outcome).inc()

    def cache_lookup(self, provider: str, entity: str, hit: bool) -> None:
        self._cache.labels(provider, entity, "hit" if hit else "miss").inc()

    def watch_providers(self, health: Mapping[str, ProviderHealth]) -> None:
        self.registry.register(_ProviderStates(health))

    def exposition(self, accept: str) -> tuple[bytes, str]:
        """The registry in the format the scraper asked for (OpenMetrics or Prometheus text)."""
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type


class _ProviderStates(Collector):
    """Each provider's breaker state (one series per state, 1 for the current one), the
    seconds left of its rest, what is left of its published quota, and the calls shed."""

    def __init__(self, health: Mapping[str, ProviderHealth]) -> None:
        self._health = health

    def collect(self) -> Iterable[Metric]:
        breakers = GaugeMetricFamily(
            "propgate_breaker_state",
            "Each provider's circuit breaker: 1 for its current state, 0 for the others.",
            labels=["provider", "state"],
        )
        resting = GaugeMetricFamily(
            "propgate_provider_resting_seconds",
            "Seconds until a resting provider is called again (0: not resting).",
            labels=["provider"],
        )
        quotas = GaugeMetricFamily(
            "propgate_provider_quota_remaining",
            "Calls left in a provider's published rate-limit window (X-RateLimit-Remaining).",
            labels=["provider"],
        )
        shed = CounterMetricFamily(
            "propgate_calls_shed",
            "Provider calls not sent (rate_limit, circuit_open, fan_out) or no longer waited "
            "for (cut).",
            labels=["provider", "reason"],
        )
        for name, health in sorted(self._health.items()):
            now = health.breaker.state
            for state in BreakerState:
                breakers.add_metric([name, state.value], 1.0 if state is now else 0.0)
            resting.add_metric([name], health.quota.held_for or 0.0)
            window = health.quota.window
            if window is not None:
                quotas.add_metric([name], float(window.remaining))
            for reason, count in sorted(health.shed.items()):
                shed.add_metric([name, reason], float(count))
        yield from (breakers, resting, quotas, shed)
