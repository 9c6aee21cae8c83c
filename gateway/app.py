"""The FastAPI app: `/graphql` (POST, GET, GraphiQL), `/healthz`, and the sandbox.

Without configured providers the sandbox is mounted and served on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection

from gateway.cache import EntityCache, LocalEntityCache
from gateway.callers import Authenticator, Caller
from gateway.clock import Clock, SystemClock
from gateway.config import Settings, connector_options, load_settings
from gateway.connectors import CONNECTORS
from gateway.connectors.capabilities import LandlordOnboarding, WebhookSource
from gateway.errors import (
    BadUserInput,
    ConfigError,
    Forbidden,
    GatewayError,
    ProviderError,
    Unauthenticated,
)
from gateway.events import Change, Delivery, EventBus, LocalBus, LocalSeen, Seen
from gateway.federation import Federation, PageLimits
from gateway.graphiql import GraphiQL
from gateway.http import (
    GatewayRouter,
    GraphQLRefusals,
    InternalErrors,
    asks_for_the_ide,
    forbidden,
    not_routed,
    unauthenticated,
)
from gateway.metrics import Metrics
from gateway.model import Entity
from gateway.persisted import PersistedQueries
from gateway.requestid import RequestIds
from gateway.resilience import Breaker, Patience, ProviderHealth
from gateway.safelist import load_safelist
from gateway.sandbox import Sandbox
from gateway.sandbox.data import WorldSize
from gateway.shared.bus import RedisBus
from gateway.shared.cache import RedisEntityCache
from gateway.shared.link import RedisLink, RedisUnavailable
from gateway.shared.seen import RedisSeen
from gateway.tracing import Tracing, tracing_from
from gateway.upstream import Upstream
from gateway.vault import Vault
from schema import Context, build_schema
from schema.permissions import demand

__all__ = ["Gateway", "create_app"]

logger = logging.getLogger("gateway")


@dataclass
class Gateway:
    """What one running gateway holds: its connectors, their upstreams, and the sandbox if any;
    with Redis configured, the link that the replicas' shared tokens, cache, de-duplication
    and change feed go through."""

    federation: Federation
    upstreams: list[Upstream]
    sandbox: Sandbox | None
    settings: Settings
    vault: Vault
    clock: Clock
    bus: EventBus
    seen: Seen
    metrics: Metrics = field(default_factory=Metrics)
    tracing: Tracing | None = None
    redis: RedisLink | None = None
    processed: int = 0

    async def take(self, provider: str, delivery: Delivery) -> dict[str, Any]:
        """Processes a delivery once: a repeat within its window is acknowledged, not redone.

        The claim is atomic (no await between check and mark in this process, SET NX
        across replicas), so two copies arriving together cannot both pass; if the work
        or the publishing fails, the claim is released so the provider's retry is
        processed. A repeat still evicts the cache (eviction is idempotent). Raises
        `RedisUnavailable` when the replicas' shared state cannot be reached.
        """
        await self._evict(delivery.changes)
        if delivery.key is not None and not await self.seen.claim(
            provider, delivery.key, delivery.window
        ):
            return {**delivery.outcome, "duplicate": True}
        try:
            changes, outcome = delivery.changes, dict(delivery.outcome)
            if delivery.work is not None:
                done, said = await delivery.work()
                changes, outcome = changes + done, {**outcome, **said}
                await self._evict(done)
            for change in changes:
                await self.bus.publish(change)
        except BaseException:
            if delivery.key is not None:
                with contextlib.suppress(RedisUnavailable):
                    await self.seen.release(provider, delivery.key)
            raise
        self.processed += 1
        return {**outcome, "changes": len(changes)}

    async def _evict(self, changes: Sequence[Change]) -> None:
        for change in changes:
            await self.federation.cache.evict(change.provider, change.entity, change.source_id)

    async def start(self) -> None:
        if isinstance(self.bus, RedisBus):
            await self.bus.start()

    async def subscribe_webhooks(self, public_url: str | None, attempts: int = 6) -> None:
        """Asks every provider that sends webhooks to send them here.

        Runs beside start-up, not in it: a sandbox provider served by this very
        process can only answer once the server listens. A refusal is retried with
        backoff, then logged: the gateway still answers, and `gateway webhooks
        subscribe` can try again.
        """
        if public_url is None:
            return
        waiting = list(self.federation.capable(WebhookSource).items())
        for attempt in range(attempts):
            failed = []
            for name, connector in waiting:
                try:
                    entities = await connector.subscribe_webhooks(public_url)
                except GatewayError as error:
                    logger.warning("%s: webhook subscription failed: %s", name, error.message)
                    failed.append((name, connector))
                    continue
                except Exception:
                    logger.exception("%s: webhook subscription failed unexpectedly", name)
                    continue
                if entities:
                    logger.info("%s sends webhooks for %s", name, ", ".join(entities))
            if not failed:
                return
            waiting = failed
            await asyncio.sleep(0.5 * 2**attempt)

    async def aclose(self) -> None:
        if isinstance(self.bus, RedisBus):
            await self.bus.aclose()
        for upstream in self.upstreams:
            await upstream.aclose()
        if self.redis is not None:
            await self.redis.aclose()
        self.vault.close()
        if self.tracing is not None:
            await self.tracing.shutdown()


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


def _persisted_for(settings: Settings) -> PersistedQueries:
    options = settings.gateway.persisted_queries
    safelist = load_safelist(options.safelist) if options.safelist else None
    return PersistedQueries(store_characters=options.store_characters, safelist=safelist)


def _sandbox_for(settings: Settings, clock: Clock) -> Sandbox:
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
        sandbox = sandbox or _sandbox_for(settings, clock)
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
    federation = Federation(connectors, limits, health, cache, metrics)
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


def create_app(
    settings: Settings | None = None,
    *,
    self_url: str = "http://127.0.0.1:8000",
    sandbox: Sandbox | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    clock: Clock | None = None,
    tracing: Tracing | None = None,
) -> FastAPI:
    """Builds the app. Without providers configured, the sandbox is mounted under `/sandbox/`
    and the connectors reach it over real HTTP at `self_url` (or through `transports`).
    Traces go where `tracing` says, else where the settings and environment say."""
    settings = settings or Settings()
    gateway = build_gateway(
        settings,
        self_url=self_url,
        sandbox=sandbox,
        transports=transports,
        clock=clock,
        tracing=tracing or tracing_from(settings.observability, os.environ),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if gateway.sandbox is not None:
            logger.info(
                "serving the sandbox providers (%s) under %s/sandbox/",
                ", ".join(gateway.sandbox.apps),
                self_url,
            )
        public_url = settings.gateway.public_url or (
            self_url if gateway.sandbox is not None else None
        )
        subscribing = (
            asyncio.create_task(
                _once_listening(self_url, lambda: gateway.subscribe_webhooks(public_url))
            )
            if settings.gateway.subscribe_at_start and public_url
            else None
        )
        await gateway.start()
        if authenticator.development_key:
            logger.info(
                "development API key (sandbox only): X-API-Key: %s", authenticator.development_key
            )
        if graphiql.missing:
            logger.warning(
                "GraphiQL's files are missing (%s): run `gateway graphiql-assets`",
                ", ".join(graphiql.missing),
            )
        yield
        if subscribing is not None:
            subscribing.cancel()
            await asyncio.gather(subscribing, return_exceptions=True)
        await gateway.aclose()

    app = FastAPI(title="propgate", lifespan=lifespan)
    app.state.gateway = gateway
    limits = settings.gateway.limits
    authenticator = Authenticator(settings.auth, development=settings.uses_sandbox)
    persisted = _persisted_for(settings)
    graphiql = GraphiQL(endpoint="/graphql", development_key=authenticator.development_key)

    async def context(connection: HTTPConnection) -> Context:
        if connection.scope["type"] == "websocket" or asks_for_the_ide(
            connection.scope.get("method", ""),
            connection.headers.get("accept", ""),
            connection.query_params,
        ):
            caller = Caller("anonymous", frozenset())
        else:
            caller = authenticator.authenticate(connection.headers)
        return Context.for_request(
            gateway.federation,
            caller,
            limits,
            settings.gateway.request_deadline_seconds,
            gateway.bus,
            persisted.safelist,
        )

    app.include_router(
        GatewayRouter(
            build_schema(
                introspection=limits.introspection,
                metrics=gateway.metrics,
                tracer=gateway.tracing.tracer if gateway.tracing else None,
            ),
            context_getter=context,
            graphql_ide="graphiql",
            authenticator=authenticator,
            persisted=persisted,
            get_max_age_seconds=settings.gateway.get_max_age_seconds,
            ide=graphiql.page,
        ),
        prefix="/graphql",
    )
    app.include_router(graphiql.router)
    app.add_exception_handler(Unauthenticated, unauthenticated)
    app.add_exception_handler(Forbidden, forbidden)
    app.add_exception_handler(HTTPException, not_routed)
    app.add_middleware(
        GraphQLRefusals, paths=("/graphql", "/webhooks/"), max_body_bytes=limits.max_body_bytes
    )
    app.add_middleware(InternalErrors)
    app.add_middleware(RequestIds)

    @app.post("/webhooks/{provider}")
    async def webhook(provider: str, request: Request) -> JSONResponse:
        """A provider calling back; each connector reads its own provider's deliveries."""
        connector = gateway.federation.connectors.get(provider)
        if connector is None:
            return JSONResponse({"error": f"no provider {provider!r}"}, status_code=404)
        try:
            delivery = await gateway.federation.able(WebhookSource, provider).receive(
                await request.body(), request.headers, request.query_params
            )
        except Unauthenticated as error:
            logger.warning("webhook %s not authenticated: %s", provider, error.message)
            return JSONResponse({"error": error.message}, status_code=401)
        except BadUserInput as error:
            logger.warning("webhook %s refused: %s", provider, error.message)
            return JSONResponse({"error": error.message}, status_code=400)
        except ProviderError as error:
            logger.warning("webhook %s could not be processed: %s", provider, error.message)
            return JSONResponse({"error": error.message, "code": error.code}, status_code=502)
        try:
            return JSONResponse(await gateway.take(provider, delivery))
        except RedisUnavailable as error:
            return JSONResponse(
                {"error": f"{error} Send it again later.", "code": error.code}, status_code=503
            )

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        """Prometheus metrics, for callers with `gateway:read`: they name operations and
        show provider health, which the `providers` query guards with the same scope."""
        demand(authenticator.authenticate(request.headers), "gateway:read")
        body, content_type = gateway.metrics.exposition(request.headers.get("accept", ""))
        return Response(body, media_type=content_type)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is up; says nothing of the providers."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        """Ready while at least one provider's circuit admits calls. Redis is reported, not
        required: every replica loses it at once, and queries are still answered without it."""
        states = {name: h.breaker.state.value for name, h in gateway.federation.health.items()}
        ready = any(state != "OPEN" for state in states.values())
        body: dict[str, Any] = {"ready": ready, "providers": states}
        if gateway.redis is not None:
            body["redis"] = "up" if await gateway.redis.up() else "down"
        return JSONResponse(body, status_code=200 if ready else 503)

    if gateway.sandbox is not None:
        app.router.routes.extend(gateway.sandbox.mounts())
    return app


async def _once_listening(self_url: str, then: Callable[[], Awaitable[None]]) -> None:
    """Runs `then` once this process answers at `self_url`: a provider asked to call us back
    (and the sandbox served by this very process) can only be reached once the server
    listens, and asking before gave a warning at every start that was never true."""
    async with httpx.AsyncClient(timeout=1) as http:
        for _ in range(600):
            try:
                await http.get(f"{self_url.rstrip('/')}/healthz")
                break
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    await then()


def from_environment() -> FastAPI:
    """The app for `uvicorn --factory` (several workers): settings from `$PROPGATE_CONFIG`."""
    return create_app(
        load_settings(None), self_url=os.environ.get("PROPGATE_SELF_URL", "http://127.0.0.1:8000")
    )
