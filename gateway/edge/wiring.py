"""From settings to a `Gateway`: each configured provider (or the sandbox's five) as an
upstream, a connector and its health, and the vault, cache, bus and de-duplication they
share, local or through Redis. The settings are checked here, so a mistake stops start-up
with a `ConfigError` rather than the first query that meets it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping

import httpx

from gateway.clock import Clock, SystemClock
from gateway.config import DEFAULT_PRECEDENCE, Settings, connector_options
from gateway.connectors import CONNECTORS
from gateway.connectors.capabilities import LandlordOnboarding
from gateway.edge.persisted.queries import PersistedQueries
from gateway.edge.persisted.safelist import load_safelist
from gateway.edge.runtime import Gateway
from gateway.errors import ConfigError
from gateway.federation.fan_out import Federation, PageLimits
from gateway.federation.links import NOT_MERGED, Linking, Precedence
from gateway.model import ENTITY_OF, Entity
from gateway.observability.metrics import Metrics
from gateway.observability.tracing import Tracing
from gateway.sandbox import Sandbox
from gateway.sandbox.data import WorldSize
from gateway.state.bus import EventBus, LocalBus
from gateway.state.bus.redis import RedisBus
from gateway.state.cache import EntityCache, LocalEntityCache
from gateway.state.cache.redis import RedisEntityCache
from gateway.state.idempotency import Idempotency, LocalIdempotency
from gateway.state.idempotency.redis import RedisIdempotency
from gateway.state.links import LinkStore
from gateway.state.redis import RedisLink
from gateway.state.seen import LocalSeen, Seen
from gateway.state.seen.redis import RedisSeen
from gateway.state.vault import Vault
from gateway.upstream.client import Upstream
from gateway.upstream.resilience import Breaker, Patience, ProviderHealth

__all__ = ["build_gateway", "persisted_for", "sandbox_for"]

logger = logging.getLogger("gateway")


def _ttls(settings: Settings) -> dict[tuple[str, Entity], float]:
    """`[cache] ttl = {"primmo.Tenant" = 60}` as (provider, entity) -> seconds."""
    ttls: dict[tuple[str, Entity], float] = {}
    types = {entity.value: entity for entity in Entity}
    for place, seconds in settings.cache.ttl.items():
        provider, _, kind = place.partition(".")
        if provider not in CONNECTORS or kind not in types:
            raise ConfigError(
                f"[cache] ttl key '{place}' is not '<provider>.<Type>' "
                f"(providers: {', '.join(sorted(CONNECTORS))})."
            )
        ttls[(provider, types[kind])] = seconds
    return ttls


def _vault_for(settings: Settings) -> Vault:
    """The vault from the configuration; in memory only where nothing needs it to last."""
    try:
        key = settings.vault.key.resolve()
    except ConfigError:
        needy = [
            n
            for n in settings.providers
            if n in CONNECTORS and issubclass(CONNECTORS[n], LandlordOnboarding)
        ]
        if needy:
            raise ConfigError(
                f"{', '.join(needy)} keeps secrets in the vault: set {settings.vault.key.env} "
                "to a Fernet key (see README, Configuration)."
            ) from None
        logger.warning(
            "%s is not set: landlord tokens are kept in memory and lost at restart",
            settings.vault.key.env,
        )
        return Vault.ephemeral()
    return Vault(settings.vault.path, key)


def _precedence(settings: Settings) -> Precedence:
    """`[links.precedence]`: `default`, a type (`Landlord`), or a field of one, by the name
    callers know it by (`Landlord.businessNumber`, `Unit.unitCode`)."""
    types = {entity.value: entity for entity in ENTITY_OF.values()}
    fields = {
        entity: {
            _camel(item.name): item.name
            for item in dataclasses.fields(record)
            if item.name not in NOT_MERGED
        }
        for record, entity in ENTITY_OF.items()
    }
    fields[Entity.UNIT]["unitCode"] = "code"
    by_type: dict[Entity, tuple[str, ...]] = {}
    by_field: dict[tuple[Entity, str], tuple[str, ...]] = {}
    default: tuple[str, ...] = DEFAULT_PRECEDENCE
    for key, order in settings.links.precedence.items():
        unknown = sorted(set(order) - set(CONNECTORS))
        if unknown:
            raise ConfigError(
                f"[links.precedence] {key}: unknown provider(s) {', '.join(unknown)}."
            )
        kind, _, field = key.partition(".")
        if key == "default":
            default = tuple(order)
        elif kind in types and not field:
            by_type[types[kind]] = tuple(order)
        elif kind in types and field in fields[types[kind]]:
            by_field[(types[kind], fields[types[kind]][field])] = tuple(order)
        else:
            raise ConfigError(
                f"[links.precedence] key '{key}' is not 'default', a type "
                f"({', '.join(sorted(types))}) or '<Type>.<field>' (e.g. Landlord.businessNumber)."
            )
    return Precedence(default, by_type, by_field)


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)


def persisted_for(settings: Settings) -> PersistedQueries:
    options = settings.gateway.persisted_queries
    safelist = load_safelist(options.safelist) if options.safelist else None
    return PersistedQueries(store_characters=options.store_characters, safelist=safelist)


def sandbox_for(settings: Settings, clock: Clock) -> Sandbox:
    """The sandbox `[sandbox]` describes, as `gateway serve` makes it."""
    options = settings.sandbox
    size = WorldSize(
        landlords=options.landlords,
        buildings=options.buildings,
        units_per_building=(options.min_units_per_building, options.max_units_per_building),
    )
    return Sandbox(options.seed, size, clock)


def build_gateway(
    settings: Settings,
    *,
    self_url: str,
    sandbox: Sandbox | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    clock: Clock | None = None,
    tracing: Tracing | None = None,
) -> Gateway:
    clock = clock or (sandbox.clock if sandbox else SystemClock())
    transports = transports or {}
    vault = _vault_for(settings)
    metrics = Metrics(settings.observability.max_operation_names)
    tracer = tracing.tracer if tracing is not None else None
    redis_url = settings.gateway.redis()
    redis = RedisLink(redis_url) if redis_url else None
    upstreams: list[Upstream] = []
    if settings.uses_sandbox:
        sandbox = sandbox or sandbox_for(settings, clock)
        sandbox.call_back_to(self_url)
        sandbox.hand_over_tokens(vault)
        for name in CONNECTORS:
            upstreams.append(
                Upstream(
                    name=name,
                    base_url=f"{self_url.rstrip('/')}/sandbox/{name}",
                    credentials=Sandbox.credentials(name),
                    traffic=settings.defaults,
                    clock=clock,
                    transport=transports.get(name),
                    vault=vault,
                    options=Sandbox.options(name, self_url),
                    metrics=metrics,
                    tracer=tracer,
                    shared=redis,
                    world_today=sandbox.world.today,
                )
            )
    else:
        sandbox = None
        for name, provider in settings.providers.items():
            connector_type = CONNECTORS.get(name)
            if connector_type is None:
                raise ConfigError(
                    f"Unknown provider [providers.{name}]; known: {', '.join(sorted(CONNECTORS))}."
                )
            connector_options(connector_type.options, name, provider.options)
            credentials = {
                key: provider.username or "" if key == "username" else provider.secret(key)
                for key in connector_type.credentials
            }
            if provider.webhook_secret is not None:
                credentials["webhook_secret"] = provider.webhook_secret.resolve()
            upstreams.append(
                Upstream(
                    name=name,
                    base_url=provider.url,
                    credentials=credentials,
                    traffic=provider.traffic(settings.defaults),
                    clock=clock,
                    transport=transports.get(name),
                    vault=vault,
                    options=provider.options,
                    metrics=metrics,
                    tracer=tracer,
                    shared=redis,
                )
            )
    connectors = {
        upstream.name: CONNECTORS[upstream.name].connect(upstream) for upstream in upstreams
    }
    health = {
        upstream.name: ProviderHealth(
            upstream.name,
            connectors[upstream.name].kind,
            Breaker(
                upstream.traffic.breaker_failures, upstream.traffic.breaker_open_seconds, clock
            ),
            upstream.quota,
            upstream.latency,
            Patience.of(upstream.traffic, settings.gateway.request_deadline_seconds),
        )
        for upstream in upstreams
    }
    limits = PageLimits(settings.gateway.default_page_size, settings.gateway.max_page_size)
    metrics.watch_providers(health)
    ttls = _ttls(settings)
    cache: EntityCache = (
        RedisEntityCache(ttls, clock, redis) if redis else LocalEntityCache(ttls, clock)
    )
    linking = Linking(
        LinkStore(settings.links.store_url(sandbox is not None), clock),
        _precedence(settings),
        settings.links.threshold,
        settings.links.write_back,
    )
    idempotency: Idempotency = RedisIdempotency(redis) if redis else LocalIdempotency(clock)
    federation = Federation(connectors, limits, health, cache, metrics, linking, idempotency)
    bus: EventBus = RedisBus(redis) if redis else LocalBus()
    seen: Seen = RedisSeen(redis) if redis else LocalSeen(clock)
    return Gateway(
        federation,
        upstreams,
        sandbox,
        settings,
        vault,
        clock,
        bus,
        seen,
        metrics=metrics,
        tracing=tracing,
        redis=redis,
    )
