"""The providers, simulated from their documents, as real HTTP apps over one shared world.

`gateway serve` with no configuration mounts these and points the connectors at
them; the tests and the benchmark use them the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp

from gateway.clock import Clock, SystemClock
from gateway.sandbox import leap, mycrm, pms, primmo, scom
from gateway.sandbox.data import World, WorldSize, generate
from gateway.sandbox.server import ProviderState
from gateway.vault import Vault

__all__ = ["PROVIDERS", "Sandbox", "SandboxProvider"]


class SandboxProvider(NamedTuple):
    create_app: Callable[[World, ProviderState], ASGIApp]
    credentials: dict[str, str]
    references: Callable[[World], dict[tuple[str, int], str]] | None = None
    """How the gateway refers to this provider's records, for providers that cross-reference."""


PROVIDERS: dict[str, SandboxProvider] = {
    "primmo": SandboxProvider(primmo.create_app, primmo.CREDENTIALS, primmo.references),
    "pms": SandboxProvider(pms.create_app, pms.CREDENTIALS, pms.references),
    "mycrm": SandboxProvider(mycrm.create_app, mycrm.CREDENTIALS, mycrm.references),
    "leap": SandboxProvider(leap.create_app, leap.CREDENTIALS),
    "scom": SandboxProvider(scom.create_app, scom.CREDENTIALS, scom.references),
}


class Sandbox:
    """All sandbox providers over one world, sharing one clock."""

    def __init__(
        self, seed: int = 7, size: WorldSize | None = None, clock: Clock | None = None
    ) -> None:
        self.clock = clock or SystemClock()
        self.world = generate(seed, size)
        for provider in PROVIDERS.values():
            if provider.references is not None:
                self.world.references.update(provider.references(self.world))
        self.states = {name: ProviderState(name, self.clock) for name in PROVIDERS}
        self.apps = {
            name: provider.create_app(self.world, self.states[name])
            for name, provider in PROVIDERS.items()
        }

    def app(self) -> Starlette:
        """Every provider under `/sandbox/<name>`, for `gateway sandbox` to serve on its own."""

        async def healthz(_: Request) -> JSONResponse:
            return JSONResponse({"status": "ok", "providers": sorted(self.apps)})

        routes: list[BaseRoute] = [Route("/healthz", healthz)]
        routes.extend(Mount(f"/sandbox/{name}", app) for name, app in self.apps.items())
        return Starlette(routes=routes)

    def transport(self, name: str) -> httpx.ASGITransport:
        """Reaches a provider in-process, at the path `gateway serve` mounts it on."""
        return httpx.ASGITransport(self.apps[name], root_path=f"/sandbox/{name}")

    @staticmethod
    def credentials(name: str) -> dict[str, str]:
        return dict(PROVIDERS[name].credentials)

    def call_back_to(self, gateway_url: str) -> None:
        """Providers that call the partner back (SCOM) call this gateway."""
        state = self.states["scom"]
        key = scom.CREDENTIALS["webhook_secret"]
        state.callback_url = (
            state.callback_url or f"{gateway_url.rstrip('/')}/webhooks/scom?key={key}"
        )

    def hand_over_tokens(self, vault: Vault) -> None:
        """SCOM landlords active before the sandbox started: as if the gateway had activated
        them, their tokens are in its vault, so the demo shows their buildings."""
        for landlord_id in self.states["scom"].records:
            token = scom.landlord_token(int(landlord_id))
            if vault.get_now("scom", landlord_id) is None:
                vault.put_now("scom", landlord_id, token)

    def reset_counters(self) -> None:
        for state in self.states.values():
            state.reset_counter()
