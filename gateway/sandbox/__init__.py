"""The providers, simulated from their documents, as real HTTP apps over one shared world.

`gateway serve` with no configuration mounts these and points the connectors at
them; the tests and the benchmark use them the same way.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
from starlette.types import ASGIApp

from gateway.clock import Clock, SystemClock
from gateway.sandbox import mycrm, pms, primmo
from gateway.sandbox.data import World, WorldSize, generate
from gateway.sandbox.server import ProviderState

__all__ = ["PROVIDERS", "Sandbox"]

PROVIDERS: dict[str, tuple[Callable[[World, ProviderState], ASGIApp], dict[str, str]]] = {
    "primmo": (primmo.create_app, primmo.CREDENTIALS),
    "pms": (pms.create_app, pms.CREDENTIALS),
    "mycrm": (mycrm.create_app, mycrm.CREDENTIALS),
}


class Sandbox:
    """All sandbox providers over one world, sharing one clock."""

    def __init__(
        self, seed: int = 7, size: WorldSize | None = None, clock: Clock | None = None
    ) -> None:
        self.clock = clock or SystemClock()
        self.world = generate(seed, size)
        self.states = {name: ProviderState(name, self.clock) for name in PROVIDERS}
        self.apps = {
            name: build(self.world, self.states[name]) for name, (build, _) in PROVIDERS.items()
        }

    def transport(self, name: str) -> httpx.ASGITransport:
        """Reaches a provider in-process, at the path `gateway serve` mounts it on."""
        return httpx.ASGITransport(self.apps[name], root_path=f"/sandbox/{name}")

    @staticmethod
    def credentials(name: str) -> dict[str, str]:
        return dict(PROVIDERS[name][1])

    def reset_counters(self) -> None:
        for state in self.states.values():
            state.reset_counter()
