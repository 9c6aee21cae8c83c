"""The FastAPI app: `/graphql` (POST, GET, GraphiQL), `/healthz`, and the sandbox.

Without configured providers the sandbox is mounted and served on the same port.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from fastapi import FastAPI
from strawberry.fastapi import GraphQLRouter

from gateway.clock import Clock, SystemClock
from gateway.config import Settings
from gateway.connectors import CONNECTORS, Connector
from gateway.errors import ConfigError
from gateway.federation import Federation, PageLimits
from gateway.sandbox import Sandbox
from gateway.sandbox.data import WorldSize
from gateway.upstream import Upstream
from schema import Context, build_schema

__all__ = ["Gateway", "create_app"]

logger = logging.getLogger("gateway")


@dataclass
class Gateway:
    """What one running gateway holds: its connectors, their upstreams, and the sandbox if any."""

    federation: Federation
    upstreams: list[Upstream]
    sandbox: Sandbox | None

    @property
    def connectors(self) -> Mapping[str, Connector]:
        return self.federation.connectors

    async def aclose(self) -> None:
        for upstream in self.upstreams:
            await upstream.aclose()


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
) -> Gateway:
    clock = clock or (sandbox.clock if sandbox else SystemClock())
    transports = transports or {}
    upstreams: list[Upstream] = []
    if settings.uses_sandbox:
        sandbox = sandbox or _sandbox_for(settings, clock)
        for name in CONNECTORS:
            upstreams.append(
                Upstream(
                    name=name,
                    base_url=f"{self_url.rstrip('/')}/sandbox/{name}",
                    credentials=Sandbox.credentials(name),
                    traffic=settings.defaults,
                    clock=clock,
                    transport=transports.get(name),
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
            credentials = {
                key: provider.username or "" if key == "username" else provider.secret(key)
                for key in connector_type.credentials
            }
            upstreams.append(
                Upstream(
                    name=name,
                    base_url=provider.url,
                    credentials=credentials,
                    traffic=provider.traffic(settings.defaults),
                    clock=clock,
                    transport=transports.get(name),
                )
            )
    connectors = {
        upstream.name: CONNECTORS[upstream.name].connect(upstream) for upstream in upstreams
    }
    limits = PageLimits(settings.gateway.default_page_size, settings.gateway.max_page_size)
    return Gateway(Federation(connectors, limits), upstreams, sandbox)


def create_app(
    settings: Settings | None = None,
    *,
    self_url: str = "http://127.0.0.1:8000",
    sandbox: Sandbox | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    """Builds the app. Without providers configured, the sandbox is mounted under `/sandbox/`
    and the connectors reach it over real HTTP at `self_url` (or through `transports`)."""
    settings = settings or Settings()
    gateway = build_gateway(
        settings, self_url=self_url, sandbox=sandbox, transports=transports, clock=clock
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if gateway.sandbox is not None:
            logger.info(
                "serving the sandbox providers (%s) under %s/sandbox/",
                ", ".join(gateway.sandbox.apps),
                self_url,
            )
        yield
        await gateway.aclose()

    app = FastAPI(title="propgate", lifespan=lifespan)
    app.state.gateway = gateway

    async def context() -> Context:
        return Context.for_request(gateway.federation)

    app.include_router(
        GraphQLRouter(build_schema(), context_getter=context, graphql_ide="graphiql"),
        prefix="/graphql",
    )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    if gateway.sandbox is not None:
        for name, sandbox_app in gateway.sandbox.apps.items():
            app.mount(f"/sandbox/{name}", sandbox_app)
    return app
