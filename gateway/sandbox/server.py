"""What every sandbox provider shares: a request counter, knobs, and the admin routes.

The counter is how tests and the benchmark prove batching: it counts each
request a provider receives, by method and path. The admin routes under
`/_sandbox/` let a person running the demo read the counter or revoke tokens
exactly as a test does.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.clock import Clock

__all__ = ["ProviderState", "SeenRequest", "admin_routes", "counting"]


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    query: dict[str, str]


@dataclass
class ProviderState:
    """The mutable side of one sandbox provider: time, counts, and token generation."""

    name: str
    clock: Clock
    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    recent: deque[SeenRequest] = field(default_factory=lambda: deque(maxlen=500))
    token_generation: int = 0

    def count(self, method: str | None = None, path: str | None = None) -> int:
        return sum(
            number
            for (seen_method, seen_path), number in self.requests.items()
            if (method is None or seen_method == method) and (path is None or seen_path == path)
        )

    def seen(self, path: str | None = None) -> list[SeenRequest]:
        """The most recent requests (up to 500), oldest first, with their decoded query strings."""
        return [item for item in self.recent if path is None or item.path == path]

    def reset_counter(self) -> None:
        self.requests.clear()
        self.recent.clear()

    def revoke_tokens(self) -> None:
        """Every token issued so far stops working, as if the provider rotated its keys."""
        self.token_generation += 1


def counting(app: ASGIApp, state: ProviderState) -> ASGIApp:
    async def counted(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            root: str = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]
            if not path.startswith("/_sandbox/"):
                state.requests[(scope["method"], path)] += 1
                query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
                state.recent.append(SeenRequest(scope["method"], path, query))
        await app(scope, receive, send)

    return counted


def admin_routes(state: ProviderState) -> list[Route]:
    async def requests(_: Request) -> Response:
        return JSONResponse(
            {
                "total": state.count(),
                "requests": [
                    {"method": method, "path": path, "count": number}
                    for (method, path), number in sorted(state.requests.items())
                ],
            }
        )

    async def reset(_: Request) -> Response:
        state.reset_counter()
        return Response(status_code=204)

    async def revoke(_: Request) -> Response:
        state.revoke_tokens()
        return Response(status_code=204)

    return [
        Route("/_sandbox/requests", requests, methods=["GET"]),
        Route("/_sandbox/requests/reset", reset, methods=["POST"]),
        Route("/_sandbox/revoke-tokens", revoke, methods=["POST"]),
    ]
