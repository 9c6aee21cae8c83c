"""The providers, simulated from their documents, as real HTTP apps over one shared world.

`gateway serve` with no configuration mounts these and points the connectors at
them; the tests and the benchmark use them the same way. A provider may have
more than one host (MyCRM's tokens come from another host than its API): each
is its own app, mounted beside the others under `/sandbox/`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp

from gateway.clock import Clock, SystemClock
from gateway.sandbox import leap, mycrm, pms, primmo, scom
from gateway.sandbox.data import World, WorldSize, generate
from gateway.sandbox.overlaps import overlap
from gateway.sandbox.server import ProviderState, mounted
from gateway.state.vault import Vault

__all__ = ["PROVIDERS", "Sandbox", "SandboxProvider"]


class SandboxProvider(NamedTuple):
    create_app: Callable[[World, ProviderState], ASGIApp]
    credentials: dict[str, str]
    references: Callable[[World], dict[tuple[str, int], str]] | None = None
    """How the gateway refers to this provider's records, for providers that cross-reference."""
    hosts: Mapping[str, Callable[[ProviderState], ASGIApp]] | None = None
    """The provider's other hosts, by the name each is mounted under, sharing its state."""
    options: Callable[[str], dict[str, Any]] | None = None
    """The connector options that lead a gateway to those hosts, for a sandbox at a root URL."""
    call_back_to: Callable[[ProviderState, str], None] | None = None
    """For a provider that calls the partner back: point those calls at a gateway's URL."""
    hand_over_tokens: Callable[[ProviderState, Vault], None] | None = None
    """For a provider whose records hold their own tokens: put them in a gateway's vault."""


PROVIDERS: dict[str, SandboxProvider] = {
    "primmo": SandboxProvider(primmo.create_app, primmo.CREDENTIALS, primmo.references),
    "pms": SandboxProvider(pms.create_app, pms.CREDENTIALS, pms.references),
    "mycrm": SandboxProvider(
        mycrm.create_app,
        mycrm.CREDENTIALS,
        mycrm.references,
        hosts={mycrm.AUTH_HOST: mycrm.create_auth_app},
        options=mycrm.gateway_options,
    ),
    "leap": SandboxProvider(leap.create_app, leap.CREDENTIALS, options=leap.gateway_options),
    "scom": SandboxProvider(
        scom.create_app,
        scom.CREDENTIALS,
        scom.references,
        call_back_to=scom.call_back_to,
        hand_over_tokens=scom.hand_over_tokens,
    ),
}


class Sandbox:
    """All sandbox providers over one world, sharing one clock."""

    def __init__(
        self, seed: int = 7, size: WorldSize | None = None, clock: Clock | None = None
    ) -> None:
        self.clock = clock or SystemClock()
        self.world = overlap(generate(seed, size), seed)
        for provider in PROVIDERS.values():
            if provider.references is not None:
                self.world.references.update(provider.references(self.world))
        self.states = {name: ProviderState(name, self.clock) for name in PROVIDERS}
        self.apps = {
            name: provider.create_app(self.world, self.states[name])
            for name, provider in PROVIDERS.items()
        }
        """Each provider's API."""
        self.hosts: dict[str, dict[str, ASGIApp]] = {
            name: {
                name: self.apps[name],
                **{
                    host: create(self.states[name])
                    for host, create in (provider.hosts or {}).items()
                },
            }
            for name, provider in PROVIDERS.items()
        }
        """Each provider's hosts by the name they are mounted under: its API, and any other."""

    def mounts(self, name: str | None = None) -> Iterator[Mount]:
        """Every host of one provider, or of all, under `/sandbox/<host>`."""
        for provider, hosts in self.hosts.items():
            if name is None or provider == name:
                yield from (Mount(mounted(host), app) for host, app in hosts.items())

    def app(self) -> Starlette:
        """Every provider's hosts, for `gateway sandbox` to serve on their own."""

        async def healthz(_: Request) -> JSONResponse:
            return JSONResponse({"status": "ok", "providers": sorted(self.apps)})

        routes: list[BaseRoute] = [Route("/healthz", healthz), *self.mounts()]
        return Starlette(routes=routes)

    def transport(self, name: str) -> httpx.ASGITransport:
        """Reaches a provider's hosts in-process, at the paths `gateway serve` mounts them on."""
        return httpx.ASGITransport(Starlette(routes=list(self.mounts(name))))

    @staticmethod
    def credentials(name: str) -> dict[str, str]:
        return dict(PROVIDERS[name].credentials)

    @staticmethod
    def options(name: str, root: str) -> dict[str, Any]:
        """The connector options of a gateway using this sandbox served at `root`."""
        options = PROVIDERS[name].options
        return options(root) if options is not None else {}

    def call_back_to(self, gateway_url: str) -> None:
        """Providers that call the partner back call this gateway."""
        for name, provider in PROVIDERS.items():
            if provider.call_back_to is not None:
                provider.call_back_to(self.states[name], gateway_url)

    def hand_over_tokens(self, vault: Vault) -> None:
        """Records that were active before the sandbox started are as if the gateway had
        activated them: their tokens are in its vault, so the demo shows what they hold."""
        for name, provider in PROVIDERS.items():
            if provider.hand_over_tokens is not None:
                provider.hand_over_tokens(self.states[name], vault)

    def reset_counters(self) -> None:
        for state in self.states.values():
            state.reset_counter()
