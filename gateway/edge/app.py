"""The FastAPI app: `/graphql` (POST, GET, GraphiQL), the webhooks, `/metrics`, `/healthz`,
`/readyz`, and the sandbox.

Without configured providers the sandbox is mounted and served on the same port. The
gateway behind the routes is built in `wiring.py` and runs in `runtime.py`, beside this module;
`Gateway` and `build_gateway` are importable from here as well, as they were before.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection

from gateway.clock import Clock
from gateway.config import Settings, load_settings
from gateway.connectors.capabilities import WebhookSource
from gateway.edge.callers import Authenticator, Caller
from gateway.edge.graphiql import GraphiQL
from gateway.edge.router import (
    GatewayRouter,
    GraphQLRefusals,
    InternalErrors,
    OneFraming,
    asks_for_the_ide,
    forbidden,
    not_routed,
    unauthenticated,
)
from gateway.edge.runtime import Gateway
from gateway.edge.wiring import build_gateway, persisted_for
from gateway.errors import (
    BadUserInput,
    Forbidden,
    GatewayError,
    LinksUnavailable,
    Unauthenticated,
)
from gateway.observability.heap import freeze_after_start
from gateway.observability.requestid import RequestIds
from gateway.observability.tracing import Tracing, tracing_from
from gateway.sandbox import Sandbox
from gateway.state.redis import RedisUnavailable
from schema import Context, build_schema
from schema.permissions import demand

__all__ = ["Gateway", "build_gateway", "create_app", "from_environment"]

logger = logging.getLogger("gateway")


def create_app(
    settings: Settings | None = None,
    *,
    self_url: str = "http://127.0.0.1:8000",
    sandbox: Sandbox | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    clock: Clock | None = None,
    tracing: Tracing | None = None,
    rebuild_links: bool = False,
    freeze_heap: bool = False,
) -> FastAPI:
    """Builds the app. Without providers configured, the sandbox is mounted under `/sandbox/`
    and the connectors reach it over real HTTP at `self_url` (or through `transports`).
    Traces go where `tracing` says, else where the settings and environment say. With
    `rebuild_links`, the links are rebuilt once the server listens (a sandbox `gateway
    serve`: its world is new at each start). `freeze_heap`: once started, the objects
    start-up made are frozen out of the garbage collector's sight
    (`gateway.observability.heap`); for a server's own process, not for a process that
    builds many apps (tests), whose frozen objects would stay."""
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
        linking = (
            asyncio.create_task(_once_listening(self_url, gateway.rebuild_links))
            if rebuild_links
            else None
        )
        if freeze_heap:
            frozen = freeze_after_start()
            logger.info("froze %d objects made at start-up out of the collector's sight", frozen)
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
        for task in (subscribing, linking):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await gateway.aclose()

    app = FastAPI(title="propgate", lifespan=lifespan)
    app.state.gateway = gateway
    limits = settings.gateway.limits
    authenticator = Authenticator(settings.auth, development=settings.uses_sandbox)
    persisted = persisted_for(settings)
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
            connection.headers.get("idempotency-key"),
        )

    app.include_router(
        GatewayRouter(
            build_schema(
                introspection=limits.introspection,
                metrics=gateway.metrics,
                tracer=gateway.tracing.tracer if gateway.tracing else None,
                compiled=settings.gateway.compiled_execution,
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
    app.add_middleware(OneFraming)
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
        except GatewayError as error:
            logger.warning("webhook %s could not be processed: %s", provider, error.message)
            return JSONResponse({"error": error.message, "code": error.code}, status_code=502)
        try:
            return JSONResponse(await gateway.take(provider, delivery))
        except RedisUnavailable as error:
            return JSONResponse(
                {"error": f"{error} Send it again later.", "code": error.code}, status_code=503
            )
        except LinksUnavailable as error:
            return JSONResponse(
                {"error": f"{error.message} Send it again later.", "code": error.code},
                status_code=503,
            )
        except GatewayError as error:
            logger.warning("webhook %s could not be processed: %s", provider, error.message)
            return JSONResponse(
                {"error": f"{error.message} Send it again later.", "code": error.code},
                status_code=502,
            )

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        """Prometheus metrics, for callers with `gateway:read`: they name operations and
        show provider health, which the `providers` query guards with the same scope."""
        demand(authenticator.authenticate(request.headers), "gateway:read")
        body, content_type = gateway.metrics.exposition(request.headers.get("accept", ""))
        return Response(body, media_type=content_type)

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def root(request: Request) -> RedirectResponse:
        """Someone who opens the gateway's address in a browser finds GraphiQL, not a 404; a
        query in the address goes along."""
        query = request.url.query
        return RedirectResponse("/graphql" + (f"?{query}" if query else ""), status_code=307)

    @app.api_route("/healthz", methods=["GET", "HEAD"])
    async def healthz() -> dict[str, str]:
        """The process is up; says nothing of the providers."""
        return {"status": "ok"}

    @app.api_route("/readyz", methods=["GET", "HEAD"])
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
        load_settings(None),
        self_url=os.environ.get("PROPGATE_SELF_URL", "http://127.0.0.1:8000"),
        freeze_heap=True,
    )
