"""Fixtures: a sandbox on a manual clock, and the whole gateway in-process over ASGI."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import fastapi.dependencies.models
import httpx
import pytest

from gateway.clock import ManualClock
from gateway.config import ApiKey, AuthSettings, GatewaySettings, Settings, Traffic
from gateway.edge.app import Gateway, create_app
from gateway.edge.callers import DEV_KEY
from gateway.events import Change
from gateway.observability.tracing import Tracing
from gateway.sandbox import Sandbox
from gateway.sandbox.primmo import token_request
from gateway.sandbox.server import ProviderState
from gateway.tools.loopback import free_port, running


class Recording(httpx.AsyncBaseTransport):
    """The provider's side of the wire: each request as it arrived."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)

    def headers(self) -> list[httpx.Headers]:
        return [request.headers for request in self.requests]


async def settled(idle: set[asyncio.Task[Any]], seconds: float = 10.0) -> None:
    """Until the work an operation left behind has ended: its tasks, and those that they,
    or callbacks already scheduled, start meanwhile (a loader's tick makes its task on a
    later turn of the loop than the one that counted what was left). Waiting once for what
    was left at the response counted LEAP's requests as 8 in one world and 12 in the
    other, once in 3,000 differential operations on a loaded machine, with the same
    bodies."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        await asyncio.sleep(0)
        left = asyncio.all_tasks() - idle - {asyncio.current_task()}
        if not left or loop.time() >= deadline:
            return
        await asyncio.wait(left, timeout=deadline - loop.time())


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


@asynccontextmanager
async def primmo_itself(sandbox: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    """Primmo's sandbox reached directly with its account's token, as another of its clients
    (an operator's tool, not the gateway) would: what it does, only its webhooks tell."""
    async with httpx.AsyncClient(
        transport=sandbox.transport("primmo"), base_url="http://127.0.0.1/sandbox/primmo"
    ) as http:
        token = await http.post(**token_request(""))
        http.headers["Authorization"] = f"Bearer {token.json()}"
        yield http


def forget_fastapis_callables() -> None:
    """FastAPI remembers whether each endpoint and dependency is a coroutine or a generator
    in module-level LRU caches of 4,096 entries that hold the callables themselves. Ours are
    closures over their app's gateway, so every app a test process built stayed alive, its
    sandbox world with it, until some 450 later apps pushed it out: some 9 million objects
    that each full collection walked, up to 7 s each, long enough to run a query past its
    deadline (a flaky `test_resilience` in CI). A server builds one app and is not
    concerned."""
    for cached in vars(fastapi.dependencies.models).values():
        forget = getattr(cached, "cache_clear", None)
        if callable(forget):
            forget()


@pytest.fixture(autouse=True)
def _no_app_outlives_its_test() -> Iterator[None]:
    yield
    forget_fastapis_callables()


def freeze_what_the_session_holds() -> None:
    """What the test process holds once its tests are collected (modules, types, schemas
    built at import, hypothesis's strategies: some 320,000 objects) never becomes garbage.
    Frozen out of the collector's sight, as `gateway serve` freezes its start-up's, they
    are not walked by each full collection again: over the whole suite, full collections
    took 80.8 s of CPU without the freeze and 52.0 s with it. FastAPI's
    caches are emptied first: an app they still held would be frozen, and never freed."""
    forget_fastapis_callables()
    gc.collect()
    gc.freeze()


def pytest_collection_finish() -> None:
    freeze_what_the_session_holds()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sandbox(clock: ManualClock) -> Sandbox:
    return Sandbox(seed=7, clock=clock)


@pytest.fixture
def settings() -> Settings:
    return Settings(
        gateway=GatewaySettings(default_page_size=20, max_page_size=100, subscribe_at_start=False),
        defaults=Traffic(max_concurrency=8, max_retry_after_seconds=2),
    )


def keyed(keys: Mapping[str, list[str]], **more: Any) -> Settings:
    """A gateway that lets in these API keys, each with its scopes (and `more` settings)."""
    return Settings(
        gateway=GatewaySettings(subscribe_at_start=False),
        auth=AuthSettings(
            api_keys=[
                ApiKey(
                    name=f"key-{n}", sha256=hashlib.sha256(key.encode()).hexdigest(), scopes=scopes
                )
                for n, (key, scopes) in enumerate(keys.items())
            ]
        ),
        **more,
    )


@asynccontextmanager
async def serving(
    sandbox: Sandbox,
    clock: ManualClock,
    settings: Settings,
    *,
    transports: dict[str, httpx.AsyncBaseTransport] | None = None,
    self_url: str = "http://127.0.0.1:8000",
    headers: dict[str, str] | None = None,
    tracing: Tracing | None = None,
) -> AsyncIterator[Client]:
    """The gateway in-process; providers in-process too unless `transports` says otherwise."""
    reach: dict[str, httpx.AsyncBaseTransport] = {
        name: sandbox.transport(name) for name in sandbox.apps
    }
    reach.update(transports or {})
    app = create_app(
        settings,
        sandbox=sandbox,
        transports=reach,
        clock=clock,
        self_url=self_url,
        tracing=tracing,
    )
    for state in sandbox.states.values():
        state.outbound = httpx.ASGITransport(app)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app),
            base_url="http://gateway",
            headers={"X-API-Key": DEV_KEY} if headers is None else headers,
        ) as http:
            yield Client(http, app.state.gateway, sandbox, clock)


@pytest.fixture
async def client(sandbox: Sandbox, clock: ManualClock, settings: Settings) -> AsyncIterator[Client]:
    async with serving(sandbox, clock, settings) as served:
        yield served


@pytest.fixture
async def impatient(
    sandbox: Sandbox, clock: ManualClock, settings: Settings
) -> AsyncIterator[Client]:
    """The gateway with a half-second request deadline: a write a provider does not answer
    is OUTCOME_UNKNOWN in half a second rather than ten."""
    hurried = settings.model_copy(
        update={"gateway": settings.gateway.model_copy(update={"request_deadline_seconds": 0.5})}
    )
    async with serving(sandbox, clock, hurried) as served:
        yield served


@contextmanager
def gateway_process(*options: str, log: IO[bytes] | None = None) -> Iterator[str]:
    """`gateway serve` as a user runs it: a real process on loopback, the sandbox behind it
    (unless `options` configure providers), its log written to `log`; its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(
        ["serve", "--host", "127.0.0.1", "--port", str(port), *options],
        f"{url}/healthz",
        seconds=30,
        log=log,
    ):
        yield url


@pytest.fixture(scope="session")
def live_gateway_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where `live_gateway` writes its log: a JSON object a line."""
    return tmp_path_factory.mktemp("live-gateway") / "gateway.log"


@pytest.fixture(scope="session")
def live_gateway(live_gateway_log: Path) -> Iterator[str]:
    with live_gateway_log.open("wb") as log, gateway_process(log=log) as url:
        yield url


def graphql_post_scope(content_length: int) -> dict[str, Any]:
    """The ASGI scope a server makes for a POST of JSON to `/graphql` with the development
    key: for tests that hand the app a scope of their own, and look at it afterwards."""
    headers = [(b"host", b"x"), (b"content-type", b"application/json")]
    headers += [(b"x-api-key", DEV_KEY.encode()), (b"content-length", str(content_length).encode())]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


def error_codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


class Socket:
    """A websocket client speaking raw ASGI to the app: no library, nothing mocked."""

    def __init__(
        self, app: Any, protocol: str, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []
        self.changed = asyncio.Event()
        scope = {
            "type": "websocket",
            "path": "/graphql",
            "raw_path": b"/graphql",
            "root_path": "",
            "query_string": b"",
            "headers": [(b"sec-websocket-protocol", protocol.encode()), *(headers or [])],
            "subprotocols": [protocol],
            "scheme": "ws",
            "server": ("127.0.0.1", 8000),
            "client": ("127.0.0.1", 50000),
            "asgi": {"version": "3.0"},
        }
        self.task = asyncio.ensure_future(app(scope, self.inbox.get, self._send))

    async def _send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)
        self.changed.set()

    async def until(self, test: Any) -> dict[str, Any]:
        async with asyncio.timeout(5):
            while True:
                for message in self.sent:
                    if test(message):
                        return message
                self.changed.clear()
                await self.changed.wait()

    async def say(self, payload: dict[str, Any]) -> None:
        await self.inbox.put({"type": "websocket.receive", "text": json.dumps(payload)})

    async def close(self) -> None:
        await self.inbox.put({"type": "websocket.disconnect", "code": 1000})
        async with asyncio.timeout(5):
            await self.task


async def eventually(test: Any, seconds: float = 5.0) -> None:
    """Waits for state the app reaches on its own schedule (a delivery, a listener)."""
    async with asyncio.timeout(seconds):
        while not test():  # noqa: ASYNC110 - the state has no event to wait on
            await asyncio.sleep(0.01)


async def published(client: Client) -> list[Change]:
    """Everything the gateway publishes on its bus from now on, collected in the background."""
    seen: list[Change] = []

    async def listen() -> None:
        async for change in client.gateway.bus.listen():
            seen.append(change)

    asyncio.get_running_loop().create_task(listen())
    await asyncio.sleep(0)
    return seen


def pytest_asyncio_loop_factories(
    item: pytest.Item,
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """The suite runs on the event loop `gateway serve` runs on: uvloop, which uvicorn picks
    wherever it is installed. Tests marked `every_loop` (the providers' transport, whose
    sockets each loop drives its own way) run on asyncio's own loop as well, which uvicorn
    runs where uvloop is not installed, and the whole suite runs on there."""
    asyncio_loop: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
        "asyncio": asyncio.new_event_loop
    }
    try:
        import uvloop
    except ImportError:
        return asyncio_loop
    if item.get_closest_marker("every_loop") is None:
        return {"uvloop": uvloop.new_event_loop}
    return {"uvloop": uvloop.new_event_loop, **asyncio_loop}
