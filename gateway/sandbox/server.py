"""What every sandbox provider shares: a request counter, knobs, and the admin routes.

The counter is how tests and the benchmark prove batching: it counts each
request a provider receives, by method and path. The admin routes under
`/_sandbox/` let a person running the demo read the counter or revoke tokens
exactly as a test does.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.clock import Clock

__all__ = [
    "FAULTS",
    "Handler",
    "ProviderState",
    "SeenRequest",
    "admin_routes",
    "counting",
    "mounted",
    "page_of",
    "read_rs256",
    "served",
    "sign_rs256",
]


Handler = Callable[[Request], Awaitable[Response]]
"""A route's handler, as each provider's app writes them."""

FAULTS = frozenset(
    {
        "error",
        "slow",
        "malformed",
        "wrong_shape",
        "throttle",
        "token_down",
        "token_garbage",
        "token_throttle",
        "xxe",
        "laughs",
        "deep",
        "utf7",
    }
)
"""Data faults hit every request but token ones; token faults hit only the token endpoint."""


@dataclass(frozen=True)
class Fault:
    kind: str
    status: int = 500
    seconds: float = 30.0
    method: str | None = None
    """Only requests of this method misbehave (a write's POST, not the read before it)."""
    after: bool = False
    """The provider does the work first, then its answer is lost in the fault (a proxy's 502
    after the write was made, a body cut short): what a gateway cannot tell from a refusal."""


async def _send(send: Send, status: int, body: bytes, *headers: tuple[bytes, bytes]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _applies(fault: Fault | None, token: bool, method: str) -> bool:
    if fault is None or fault.kind.startswith("token_") != token:
        return False
    return fault.method is None or fault.method == method


async def _unheard(_message: Message) -> None:
    """Where the provider's own answer goes when a fault answers in its place afterwards."""


async def _misbehave(fault: Fault | None, token: bool, method: str, send: Send) -> bool:
    """Answers in place of the provider if a fault applies to this request."""
    if fault is None or not _applies(fault, token, method):
        return False
    if fault.kind == "slow":
        await asyncio.sleep(fault.seconds)
        return False
    if fault.kind == "error":
        await _send(send, fault.status, b'{"error": "injected failure"}')
    elif fault.kind == "malformed":
        await _send(send, 200, b'{"value": [{"Id": 1, "Name": ')
    elif fault.kind == "wrong_shape":
        body = (
            b'{"success": true, "data": {"landlords": {"edges": ["x"]}}, "meta": null,'
            b' "errors": ["boom"], "value": "nope", "count": "many", "landlords": 7}'
        )
        await _send(send, 200, body)
    elif fault.kind == "throttle":
        body = b'{"error": {"code": "RATE_LIMIT_EXCEEDED", "retry_after": 120}}'
        await _send(send, 429, body, (b"retry-after", b"120"))
    elif fault.kind == "xxe":
        body = (
            b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b'<property-relationships xmlns="http://schema.majitek.com/leap-ws-v1.0">&x;'
            b"</property-relationships>"
        )
        await _send(send, 200, body, (b"x-note", b"external entity"))
    elif fault.kind == "laughs":
        entities = b"".join(
            b'<!ENTITY l%d "%s">' % (i, (b"&l%d;" % (i - 1)) * 10 if i else b"lol")
            for i in range(10)
        )
        body = b'<?xml version="1.0"?><!DOCTYPE r [' + entities + b"]><r>&l9;</r>"
        await _send(send, 200, body, (b"x-note", b"entity expansion"))
    elif fault.kind == "deep":
        depth = 1_000_000
        body = b"<r>" * depth + b"</r>" * depth
        await _send(send, 200, body, (b"x-note", b"7 MB of nested elements"))
    elif fault.kind == "utf7":
        body = b'<?xml version="1.0" encoding="utf-7"?><property-relationships/>'
        await _send(send, 200, body, (b"x-note", b"an encoding no parser should guess"))
    elif fault.kind == "token_down":
        await _send(send, 503, b'{"error": "token service unavailable"}')
    elif fault.kind == "token_garbage":
        await _send(send, 200, b"<html>surprise</html>", (b"x-note", b"not json"))
    elif fault.kind == "token_throttle":
        wait = str(round(fault.seconds)).encode()
        await _send(send, 429, b'{"error": "token requests throttled"}', (b"retry-after", wait))
    return True


@dataclass
class SeenRequest:
    """A request as the provider received it: enough to count it, read it, or send it again
    (the bench replays a query's upstream requests to time an ideal client)."""

    method: str
    target: str
    """The path and query string as sent, below the provider's root."""
    headers: list[tuple[str, str]]
    arrived: float
    token: bool
    """Sent to one of the provider's token endpoints."""
    body: bytes = b""
    answered: float | None = None
    """`time.perf_counter()` on arrival and once answered: a request that arrived after
    another was answered may have needed its answer."""

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(self.target.partition("?")[2]))

    def as_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "target": self.target,
            "headers": self.headers,
            "body": self.body.decode("utf-8", "replace"),
            "arrived": self.arrived,
            "answered": self.answered,
            "token": self.token,
        }


@dataclass
class ProviderState:
    """The mutable side of one sandbox provider: time, counts, and token generation."""

    name: str
    clock: Clock
    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    recent: deque[SeenRequest] = field(default_factory=lambda: deque(maxlen=500))
    token_generation: int = 0
    token_lifetime: float | None = None
    """Seconds an access token lives; `None` is the provider's documented lifetime."""
    documented_token_request: bool = False
    """The token endpoint also takes the request its document shows where that breaks the
    standard (MyCRM's JSON body); off, it is as strict as a standard server."""
    latency: float = 0.0
    """Seconds every request waits before it is answered, to make concurrency visible."""
    jitter: float = 0.0
    """Up to this many seconds more or less, drawn per request, as real networks vary."""
    in_flight: int = 0
    peak_in_flight: int = 0
    throttled: int = 0
    throttle_retry_after: int = 0
    error_names: Mapping[str, int] = field(default_factory=dict)
    """The provider's documented error names, each with the status its document gives it."""
    refused: int = 0
    refusal: tuple[str, int] | None = None
    refused_field: str | None = None
    warning: str | None = None
    """A warning the provider attaches to every answer, where its API has a way to say one."""
    token_paths: frozenset[str] = frozenset()
    fault: Fault | None = None
    records: Any = None
    """The provider's own store, for a test or a person to inspect what a write changed."""
    callback_url: str | None = None
    """Where the provider calls the partner back (SCOM's verification callback)."""
    outbound: Any = None
    """An httpx transport for those calls; `None` is the network."""
    outbox: Any = None
    """The provider's outgoing webhooks (delivered, given up), where it sends any."""
    server: Any = None
    """The knobs of the provider's protocol, where it has some (Primmo: `odata.Server`'s page
    cap, collation and counting), for a test or a person to make it behave like another server."""

    def inject(
        self,
        kind: str,
        *,
        status: int = 500,
        seconds: float = 30.0,
        method: str | None = None,
        after: bool = False,
    ) -> None:
        """Makes the provider misbehave, as real ones do, on every request or only on those of
        `method`, instead of doing the work or (`after`) once it is done; `None`-like kind
        "none" heals it."""
        if kind == "none":
            self.fault = None
            return
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(sorted(FAULTS))}")
        if after and kind == "slow":
            raise ValueError("a slow answer comes before the work; `after` is for answers")
        self.fault = Fault(kind, status, seconds, method.upper() if method else None, after)

    def throttle(self, retry_after: int, times: int = 1) -> None:
        """The next `times` requests are refused with 429 and this retry-after."""
        self.throttled, self.throttle_retry_after = times, retry_after

    def refuse(
        self, name: str, times: int = 1, status: int | None = None, field: str | None = None
    ) -> None:
        """The next `times` data requests are refused with the provider's own error `name`,
        in its own error body, with the documented status unless `status` says otherwise,
        naming `field` where its error body names fields (pms's `details`)."""
        if name not in self.error_names:
            known = ", ".join(sorted(self.error_names)) or "none"
            raise ValueError(f"unknown error name {name!r}; known: {known}")
        self.refused, self.refusal = times, (name, status or self.error_names[name])
        self.refused_field = field

    def take_refusal(self) -> tuple[str, int] | None:
        if self.refused <= 0 or self.refusal is None:
            return None
        self.refused -= 1
        return self.refusal

    def take_throttle(self) -> int | None:
        if self.throttled <= 0:
            return None
        self.throttled -= 1
        return self.throttle_retry_after

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


_NOT_REPLAYED = frozenset({b"host", b"content-length", b"connection"})
"""Headers the client sending a request again sets for itself."""


def counting(app: ASGIApp, state: ProviderState) -> ASGIApp:
    async def counted(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            root: str = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]
            if not path.startswith("/_sandbox/"):
                state.requests[(scope["method"], path)] += 1
                raw_query = scope.get("query_string", b"").decode("latin-1")
                seen = SeenRequest(
                    scope["method"],
                    target=f"{path}?{raw_query}" if raw_query else path,
                    headers=[
                        (name.decode("latin-1"), value.decode("latin-1"))
                        for name, value in scope["headers"]
                        if name.lower() not in _NOT_REPLAYED
                    ],
                    arrived=time.perf_counter(),
                    token=path in state.token_paths,
                )
                state.recent.append(seen)
                state.in_flight += 1
                state.peak_in_flight = max(state.peak_in_flight, state.in_flight)

                async def keeping_body() -> Message:
                    message = await receive()
                    if message["type"] == "http.request":
                        seen.body += message.get("body", b"")
                    return message

                try:
                    if state.latency:
                        spread = random.uniform(-state.jitter, state.jitter)
                        await asyncio.sleep(max(0.0, state.latency + spread))
                    fault, method = state.fault, scope["method"]
                    if fault is not None and fault.after and _applies(fault, seen.token, method):
                        await app(scope, keeping_body, _unheard)
                        await _misbehave(fault, seen.token, method, send)
                    elif not await _misbehave(fault, seen.token, method, send):
                        await app(scope, keeping_body, send)
                finally:
                    state.in_flight -= 1
                    seen.answered = time.perf_counter()
                return
        await app(scope, receive, send)

    return counted


def served(state: ProviderState, routes: Sequence[BaseRoute], **options: Any) -> ASGIApp:
    """What each provider's `create_app` returns: its routes, the admin routes beside them,
    every request counted."""
    return counting(Starlette(routes=[*routes, *admin_routes(state)], **options), state)


def admin_routes(state: ProviderState) -> list[Route]:
    return _Admin(state).routes()


class _Admin:
    """The `/_sandbox/` routes every provider has: its counter, and the knobs of `state`."""

    def __init__(self, state: ProviderState) -> None:
        self.state = state

    async def requests(self, _: Request) -> Response:
        return JSONResponse(
            {
                "total": self.state.count(),
                "requests": [
                    {"method": method, "path": path, "count": number}
                    for (method, path), number in sorted(self.state.requests.items())
                ],
            }
        )

    async def recent(self, _: Request) -> Response:
        return JSONResponse({"requests": [seen.as_json() for seen in self.state.recent]})

    async def latency(self, request: Request) -> Response:
        try:
            self.state.latency = float(request.query_params.get("seconds", "0"))
            self.state.jitter = float(request.query_params.get("jitter", "0"))
        except ValueError:
            return JSONResponse({"error": "seconds and jitter are numbers"}, status_code=400)
        return Response(status_code=204)

    async def reset(self, _: Request) -> Response:
        self.state.reset_counter()
        return Response(status_code=204)

    async def revoke(self, _: Request) -> Response:
        self.state.revoke_tokens()
        return Response(status_code=204)

    async def outbox(self, _: Request) -> Response:
        sent = self.state.outbox
        if sent is None:
            return JSONResponse({"error": "this provider sends no webhooks"}, status_code=404)
        return JSONResponse(
            {
                "delivered": sent.delivered,
                "pending": sent.pending,
                "gaveUp": sent.given_up,
                "attempts": sent.attempts,
            }
        )

    async def fault(self, request: Request) -> Response:
        params = request.query_params
        try:
            self.state.inject(
                params.get("kind", "none"),
                status=int(params.get("status", "500")),
                seconds=float(params.get("seconds", "30")),
                method=params.get("method"),
                after=params.get("after", "false").lower() == "true",
            )
        except ValueError as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        return Response(status_code=204)

    async def refuse(self, request: Request) -> Response:
        params = request.query_params
        try:
            status = int(params["status"]) if "status" in params else None
            times = int(params.get("times", "1"))
            if status is not None and not 400 <= status <= 599:
                raise ValueError("status is 400 to 599")
            self.state.refuse(params.get("name", ""), times, status, params.get("field"))
        except ValueError as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        return Response(status_code=204)

    async def throttle(self, request: Request) -> Response:
        try:
            retry_after = int(request.query_params.get("retry_after", "60"))
            times = int(request.query_params.get("times", "1"))
        except ValueError:
            return JSONResponse({"error": "retry_after and times are integers"}, status_code=400)
        self.state.throttle(retry_after, times)
        return Response(status_code=204)

    def routes(self) -> list[Route]:
        return [
            Route("/_sandbox/requests", self.requests, methods=["GET"]),
            Route("/_sandbox/requests/recent", self.recent, methods=["GET"]),
            Route("/_sandbox/requests/reset", self.reset, methods=["POST"]),
            Route("/_sandbox/latency", self.latency, methods=["POST"]),
            Route("/_sandbox/revoke-tokens", self.revoke, methods=["POST"]),
            Route("/_sandbox/throttle", self.throttle, methods=["POST"]),
            Route("/_sandbox/refuse", self.refuse, methods=["POST"]),
            Route("/_sandbox/fault", self.fault, methods=["POST"]),
            Route("/_sandbox/outbox", self.outbox, methods=["GET"]),
        ]


@functools.cache
def _rsa_key() -> rsa.RSAPrivateKey:
    """One key per process: generating RSA keys is slow, and the sandbox signs, never protects."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def sign_rs256(claims: dict[str, Any]) -> str:
    return jwt.encode(claims, _rsa_key(), algorithm="RS256")


def read_rs256(token: str, audience: str | None = None) -> dict[str, Any]:
    """The claims of a token this sandbox signed; expiry is checked by the caller's clock."""
    claims: dict[str, Any] = jwt.decode(
        token,
        _rsa_key().public_key(),
        algorithms=["RS256"],
        audience=audience,
        options={"verify_exp": False, "verify_aud": audience is not None},
    )
    return claims


def mounted(host: str) -> str:
    """Where `gateway serve` and `gateway sandbox` serve a sandbox host (a provider's API, or
    another host of its own): one origin stands in for every provider's hosts."""
    return f"/sandbox/{host}"


def page_of(rows: Sequence[Any], page: int, size: int) -> list[Any]:
    """Page-number pagination, 1-based, as pms and MyCRM both do it."""
    start = (page - 1) * size
    return list(rows[start : start + size])
