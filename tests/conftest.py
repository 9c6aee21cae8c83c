"""Fixtures: a sandbox on a manual clock, and the whole gateway in-process over ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from gateway.app import Gateway, create_app
from gateway.callers import DEV_KEY
from gateway.clock import ManualClock
from gateway.config import GatewaySettings, Settings, Traffic
from gateway.sandbox import Sandbox
from gateway.sandbox.server import ProviderState


@dataclass
class Client:
    """The gateway as a caller sees it, with the sandbox behind it for counting."""

    http: httpx.AsyncClient
    gateway: Gateway
    sandbox: Sandbox
    clock: ManualClock

    @property
    def primmo(self) -> ProviderState:
        return self.sandbox.states["primmo"]

    @property
    def pms(self) -> ProviderState:
        return self.sandbox.states["pms"]

    @property
    def mycrm(self) -> ProviderState:
        return self.sandbox.states["mycrm"]

    async def query(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.http.post("/graphql", json={"query": query, "variables": variables})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = await self.query(query, variables)
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sandbox(clock: ManualClock) -> Sandbox:
    return Sandbox(seed=7, clock=clock)


@pytest.fixture
def settings() -> Settings:
    return Settings(
        gateway=GatewaySettings(default_page_size=20, max_page_size=100),
        defaults=Traffic(max_concurrency=8, max_retry_after_seconds=2),
    )


@pytest.fixture
async def client(sandbox: Sandbox, clock: ManualClock, settings: Settings) -> AsyncIterator[Client]:
    transports = {name: sandbox.transport(name) for name in sandbox.apps}
    app = create_app(settings, sandbox=sandbox, transports=transports, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://gateway", headers={"X-API-Key": DEV_KEY}
        ) as http:
            yield Client(http, app.state.gateway, sandbox, clock)


def error_codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]
