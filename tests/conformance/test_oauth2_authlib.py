"""MyCRM's client credentials against Authlib's OAuth2 server and against the sandbox.

Each case runs twice, over real HTTP on loopback: once with Authlib's token
endpoint in front of MyCRM's data (an independent reading of RFC 6749), once
with the sandbox's own. What works against both is the protocol, not a habit
the sandbox and the connector share.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.types import ASGIApp

from gateway.clock import ManualClock
from gateway.config import (
    ApiKey,
    AuthSettings,
    GatewaySettings,
    ProviderSettings,
    SecretRef,
    Settings,
    Traffic,
)
from gateway.sandbox import Sandbox
from gateway.sandbox import mycrm as sandbox_mycrm
from gateway.sandbox.server import ProviderState
from gateway.tools.loopback import free_port
from gateway.upstream.auth import TokenRequest
from gateway.upstream.client import connections
from tests.conformance import authlib_server
from tests.conftest import Client, eventually, serving

LANDLORDS = '{ landlords(first: 5, providers: ["mycrm"]) { edges { node { sourceId name } } } }'
KEY, SECRET = "CONFORMANCE_MYCRM_KEY", "CONFORMANCE_MYCRM_SECRET"
CALLER = b"conformance-caller-key"
WRONG_SECRET = "wr0ng:secret-Value"
LIST = "/landlords"


@dataclass(frozen=True)
class Provider:
    """A MyCRM-shaped provider on a loopback port; its knobs are its `state`'s."""

    url: str
    token_url: str
    key: str
    secret: str
    state: ProviderState

    @property
    def token_requests(self) -> int:
        (path,) = self.state.token_paths
        return self.state.count("POST", path)


@asynccontextmanager
async def _on_loopback(app: ASGIApp) -> AsyncIterator[str]:
    """`app` served by uvicorn in this event loop (so it shares the test's manual clock)."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    serving_task = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: server.started, seconds=10)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving_task


@pytest.fixture(params=["authlib", "sandbox"])
async def provider(
    request: pytest.FixtureRequest, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Provider]:
    state = sandbox.states["mycrm"]
    if request.param == "authlib":
        # Loopback is plain HTTP, which Authlib 1.6.0 refuses (later releases let loopback be).
        monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
        async with _on_loopback(authlib_server.create_app(sandbox.world, state)) as root:
            yield Provider(
                f"{root}{authlib_server.API}",
                f"{root}{authlib_server.AUTH}{authlib_server.TOKEN_PATH}",
                authlib_server.CLIENT_ID,
                authlib_server.CLIENT_SECRET,
                state,
            )
    else:
        async with _on_loopback(sandbox.app()) as root:
            yield _sandbox_mycrm(sandbox, root)


def _sandbox_mycrm(sandbox: Sandbox, root: str) -> Provider:
    return Provider(
        f"{root}/sandbox/mycrm",
        Sandbox.options("mycrm", root)["token_url"],
        sandbox_mycrm.CREDENTIALS["api_key"],
        sandbox_mycrm.CREDENTIALS["api_secret"],
        sandbox.states["mycrm"],
    )


@asynccontextmanager
async def _gateway(
    provider: Provider,
    sandbox: Sandbox,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    *,
    secret: str | None = None,
    token_request: TokenRequest = "form",
) -> AsyncIterator[Client]:
    """The gateway configured for `provider` alone, as a user would configure a real MyCRM,
    reaching it over the network."""
    monkeypatch.setenv(KEY, provider.key)
    monkeypatch.setenv(SECRET, secret or provider.secret)
    settings = Settings(
        gateway=GatewaySettings(subscribe_at_start=False),
        auth=AuthSettings(
            api_keys=[ApiKey(name="conformance", sha256=sha256(CALLER).hexdigest(), scopes=["*"])]
        ),
        defaults=Traffic(max_retry_after_seconds=2, retries=0),
        providers={
            "mycrm": ProviderSettings(
                url=provider.url,
                api_key=SecretRef(env=KEY),
                api_secret=SecretRef(env=SECRET),
                options={"token_url": provider.token_url, "token_request": token_request},
            )
        },
    )
    async with serving(
        sandbox,
        clock,
        settings,
        transports={"mycrm": connections(Traffic())},
        headers={"X-API-Key": CALLER.decode()},
    ) as client:
        yield client


def _landlords(data: dict[str, Any]) -> list[tuple[str, str]]:
    return [(edge["node"]["sourceId"], edge["node"]["name"]) for edge in data["landlords"]["edges"]]


def _only_error(body: dict[str, Any]) -> dict[str, Any]:
    """MyCRM's one error; with MyCRM the only provider asked, nothing else to show."""
    (error,) = body["errors"]
    assert error["extensions"]["provider"] == "mycrm"
    assert body["data"]["landlords"]["edges"] == []
    return dict(error)


async def test_a_token_is_obtained_and_a_list_read(
    provider: Provider, sandbox: Sandbox, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with _gateway(provider, sandbox, clock, monkeypatch) as client:
        landlords = _landlords(await client.data(LANDLORDS))

    names = {str(landlord.id): landlord.name for landlord in sandbox.world.landlords}
    assert len(landlords) == 5
    assert all(names[source_id] == name for source_id, name in landlords)
    assert provider.token_requests == 1


async def test_a_token_that_expires_is_renewed_and_the_old_one_no_longer_opens_the_api(
    provider: Provider, sandbox: Sandbox, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider.state.token_lifetime = 120
    async with _gateway(provider, sandbox, clock, monkeypatch) as client:
        first = _landlords(await client.data(LANDLORDS))
        (used,) = {dict(seen.headers)["authorization"] for seen in provider.state.seen(LIST)}
        clock.advance(121)
        again = _landlords(await client.data(LANDLORDS))

    async with httpx.AsyncClient() as http:
        stale = await http.get(f"{provider.url}{LIST}", headers={"Authorization": used})
    assert first == again
    assert provider.token_requests == 2
    assert stale.status_code == 401


async def test_a_wrong_secret_is_reported_with_the_endpoints_reason_and_never_the_secret(
    provider: Provider, sandbox: Sandbox, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with _gateway(provider, sandbox, clock, monkeypatch, secret=WRONG_SECRET) as client:
        response = await client.http.post("/graphql", json={"query": LANDLORDS})

    error = _only_error(response.json())
    assert error["extensions"]["code"] == "UPSTREAM_CREDENTIALS_REFUSED"
    assert "invalid_client" in error["message"] and "HTTP 401" in error["message"]
    assert "wr0ng" not in response.text


async def test_a_client_refused_its_grant_is_a_credentials_refusal_though_it_comes_as_400(
    sandbox: Sandbox, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Authlib answers a client not allowed the grant `unauthorized_client` with a 400, the
    status of a malformed request; the RFC 6749 name says it is the client's record."""
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
    state = sandbox.states["mycrm"]
    async with _on_loopback(authlib_server.create_app(sandbox.world, state)) as root:
        provider = Provider(
            f"{root}{authlib_server.API}",
            f"{root}{authlib_server.AUTH}{authlib_server.TOKEN_PATH}",
            authlib_server.NO_GRANT_CLIENT_ID,
            authlib_server.CLIENT_SECRET,
            state,
        )
        async with _gateway(provider, sandbox, clock, monkeypatch) as client:
            body = await client.query(LANDLORDS)

    error = _only_error(body)
    assert error["extensions"]["code"] == "UPSTREAM_CREDENTIALS_REFUSED"
    assert "unauthorized_client" in error["message"] and "HTTP 400" in error["message"]


async def test_the_documents_json_body_is_refused_by_a_standard_server_and_said_so(
    provider: Provider, sandbox: Sandbox, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with _gateway(provider, sandbox, clock, monkeypatch, token_request="json") as client:
        body = await client.query(LANDLORDS)

    error = _only_error(body)
    assert error["extensions"]["code"] == "UPSTREAM_TOKEN_REQUEST_REJECTED"
    assert "HTTP 400" in error["message"]
    refusals = ("unsupported_grant_type", "invalid_request")
    assert any(reason in error["message"] for reason in refusals)


@pytest.mark.parametrize(
    ("fault", "code"),
    [("token_throttle", "RATE_LIMITED"), ("token_down", "UPSTREAM_UNAVAILABLE")],
)
async def test_a_token_endpoint_429_or_5xx_has_its_own_code(
    provider: Provider,
    sandbox: Sandbox,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
    code: str,
) -> None:
    provider.state.inject(fault, seconds=120)
    async with _gateway(provider, sandbox, clock, monkeypatch) as client:
        body = await client.query(LANDLORDS)

    extensions = _only_error(body)["extensions"]
    assert extensions["code"] == code
    assert extensions.get("retryAfter") == (120 if fault == "token_throttle" else None)


async def test_the_json_option_works_where_the_server_takes_the_documents_body(
    sandbox: Sandbox, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = sandbox.states["mycrm"]
    state.documented_token_request = True
    async with _on_loopback(sandbox.app()) as root:
        provider = _sandbox_mycrm(sandbox, root)
        async with _gateway(provider, sandbox, clock, monkeypatch, token_request="json") as client:
            landlords = _landlords(await client.data(LANDLORDS))

    (seen,) = state.seen(sandbox_mycrm.TOKEN_PATH)
    assert len(landlords) == 5
    assert dict(seen.headers)["content-type"] == "application/json"
