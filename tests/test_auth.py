"""Tokens: one fetch for a crowd, one renewal at expiry, one renewal after revocation, and
a token endpoint's refusals reported by what they mean."""

from __future__ import annotations

import asyncio
import base64
import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from gateway.clock import ManualClock
from gateway.config import Settings, Traffic
from gateway.connectors.base import Connector, ListRequest
from gateway.connectors.pms import PmsConnector
from gateway.connectors.primmo import PrimmoConnector
from gateway.errors import ProviderError, RateLimited
from gateway.model import Entity, Selection
from gateway.sandbox import Sandbox
from gateway.state.tokens import Token
from gateway.upstream.auth import (
    ApiKeyPasswordAuth,
    CachedTokenAuth,
    ClientCredentialsAuth,
    LoginRefreshAuth,
    TokenRequest,
)
from gateway.upstream.client import Upstream
from tests.conftest import Client, error_codes, serving

TOKEN = "/api/Token"
QUERY = '{ buildings(first: 2, providers: ["primmo"]) { edges { node { name } } } }'
"""Primmo's token is what these count; asking the other providers too only added load
(100 in-process SCOM queries timed out on a busy machine)."""


async def test_a_hundred_concurrent_queries_on_a_cold_gateway_fetch_one_token(
    client: Client,
) -> None:
    results = await asyncio.gather(*(client.data(QUERY) for _ in range(100)))

    assert all(len(result["buildings"]["edges"]) == 2 for result in results)
    assert client.primmo.count("POST", TOKEN) == 1


async def test_the_token_is_renewed_once_after_its_24_hours(client: Client) -> None:
    await client.data(QUERY)
    client.clock.advance(23 * 3600)
    await asyncio.gather(*(client.data(QUERY) for _ in range(20)))
    assert client.primmo.count("POST", TOKEN) == 1

    client.clock.advance(3600 + 1)
    await asyncio.gather(*(client.data(QUERY) for _ in range(20)))

    assert client.primmo.count("POST", TOKEN) == 2


async def test_a_revoked_token_is_renewed_once_and_the_queries_succeed(client: Client) -> None:
    await client.data(QUERY)
    client.primmo.revoke_tokens()

    results = await asyncio.gather(*(client.data(QUERY) for _ in range(20)))

    assert all(len(result["buildings"]["edges"]) == 2 for result in results)
    assert client.primmo.count("POST", TOKEN) == 2


SECRET = "s3cret-Value"
"""Echoed back by the token endpoints below, as a careless server might."""
STYLES = ["api key and password", "login and refresh", "client credentials"]
REFUSALS = [
    (
        400,
        {"error": "unsupported_grant_type", "error_description": "grant_type is missing"},
        {},
        "UPSTREAM_TOKEN_REQUEST_REJECTED",
        "unsupported_grant_type: grant_type is missing",
    ),
    (
        401,
        {"error": "invalid_client", "error_description": f"No client with secret {SECRET}"},
        {"WWW-Authenticate": 'Basic realm="provider"'},
        "UPSTREAM_CREDENTIALS_REFUSED",
        "invalid_client: No client with secret [secret]",
    ),
    (
        429,
        {"error": {"code": "RATE_LIMIT_EXCEEDED", "message": "Try again later"}},
        {"Retry-After": "120"},
        "RATE_LIMITED",
        "RATE_LIMIT_EXCEEDED: Try again later",
    ),
    (503, "<html>Service Unavailable</html>", {}, "UPSTREAM_UNAVAILABLE", "(HTTP 503)"),
]


@asynccontextmanager
async def _auth(
    style: str,
    answer: Callable[[httpx.Request], httpx.Response],
    clock: ManualClock | None = None,
) -> AsyncIterator[CachedTokenAuth]:
    """One auth of each style in auth.py, with `answer` as its token endpoint."""
    clock = clock or ManualClock()
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(answer), base_url="http://provider.test/"
    ) as client:
        if style == "api key and password":
            yield ApiKeyPasswordAuth(
                provider="provider",
                client=client,
                path="token",
                headers={"x-api-key": "key"},
                body={"UserName": "me", "Password": SECRET},
                lifetime=60,
                clock=clock,
            )
        elif style == "login and refresh":
            yield LoginRefreshAuth(
                provider="provider",
                client=client,
                login_path="login",
                refresh_path="refresh",
                credentials={"email": "me", "password": SECRET},
                unwrap=lambda body: body,
                lifetime=60,
                clock=clock,
            )
        else:
            yield ClientCredentialsAuth(
                provider="provider",
                client=client,
                url="token",
                client_id="me",
                client_secret=SECRET,
                lifetime=60,
                clock=clock,
            )


def _answering(
    status: int, body: Any, headers: dict[str, str]
) -> Callable[[httpx.Request], httpx.Response]:
    def answer(_request: httpx.Request) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(status, text=body, headers=headers)
        return httpx.Response(status, json=body, headers=headers)

    return answer


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize(
    ("status", "body", "headers", "code", "reason"),
    REFUSALS,
    ids=[str(status) for status, *_ in REFUSALS],
)
async def test_a_token_endpoint_refusal_has_its_own_code_and_says_why(
    style: str, status: int, body: Any, headers: dict[str, str], code: str, reason: str
) -> None:
    async with _auth(style, _answering(status, body, headers)) as auth:
        with pytest.raises(ProviderError) as raised:
            await auth.token()

    error = raised.value
    assert error.code == code
    assert reason in error.message and f"HTTP {status}" in error.message
    assert SECRET not in error.message
    assert error.extensions.get("retryAfter") == (120 if status == 429 else None)


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize(
    ("status", "error", "code"),
    [
        (400, "invalid_grant", "UPSTREAM_CREDENTIALS_REFUSED"),
        (400, "invalid_client", "UPSTREAM_CREDENTIALS_REFUSED"),
        (400, "unauthorized_client", "UPSTREAM_CREDENTIALS_REFUSED"),
        (401, "invalid_scope", "UPSTREAM_TOKEN_REQUEST_REJECTED"),
        (401, "unsupported_grant_type", "UPSTREAM_TOKEN_REQUEST_REJECTED"),
        (403, "invalid_request", "UPSTREAM_TOKEN_REQUEST_REJECTED"),
        (400, "not_an_rfc_6749_error", "UPSTREAM_TOKEN_REQUEST_REJECTED"),
        (401, "not_an_rfc_6749_error", "UPSTREAM_CREDENTIALS_REFUSED"),
        (429, "invalid_grant", "RATE_LIMITED"),
        (503, "invalid_client", "UPSTREAM_UNAVAILABLE"),
    ],
)
async def test_the_rfc_6749_error_a_token_endpoint_names_decides_which_refusal_it_is(
    style: str, status: int, error: str, code: str
) -> None:
    """RFC 6749 §5.2 gives a wrong password (`invalid_grant`) a 400, as it does a malformed
    request: the name, not the status, says whether the credentials need fixing. A rate
    limit or an outage stays what it is, whatever the body names."""
    async with _auth(style, _answering(status, {"error": error}, {})) as auth:
        with pytest.raises(ProviderError) as raised:
            await auth.token()

    assert raised.value.code == code
    assert error in raised.value.message


async def test_what_a_token_endpoint_says_is_bounded_and_masks_the_secret_wherever_it_is() -> None:
    said = "x" * 190 + SECRET + "\n\x1b[31m" + "y" * 5000
    answer = _answering(400, {"error": "invalid_request", "error_description": said}, {})
    async with _auth("client credentials", answer) as auth:
        with pytest.raises(ProviderError) as raised:
            await auth.token()

    message = raised.value.message
    reason = message.split("(HTTP 400): ", 1)[1].split("; the gateway asks again", 1)[0]
    assert reason.startswith("invalid_request: xxx") and len(reason) <= 200
    assert "s3cret" not in message and "\x1b" not in message and "\n" not in message


async def test_a_refused_refresh_is_not_followed_by_a_login_when_the_endpoint_is_throttling(
    client: Client,
) -> None:
    query = '{ buildings(first: 2, providers: ["pms"]) { edges { node { name } } } }'
    await client.data(query)
    client.clock.advance(900)
    client.pms.throttle(retry_after=900, times=1)

    body = await client.query(query)

    (error,) = body["errors"]
    assert error["extensions"] == {"code": "RATE_LIMITED", "provider": "pms", "retryAfter": 900}
    assert client.pms.count("POST", "/api/v1/identity/login") == 1


async def test_a_renewal_failing_after_all_its_callers_gave_up_is_not_logged_as_unretrieved() -> (
    None
):
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    release = asyncio.Event()

    async def fetch(_previous: Token | None) -> Token:
        await release.wait()
        raise RateLimited("provider", "The token endpoint is rate limiting the gateway.", 120)

    auth = CachedTokenAuth(fetch, ManualClock())
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01):
                await auth.token()
        release.set()
        for _ in range(5):
            await asyncio.sleep(0)
        gc.collect()
    finally:
        loop.set_exception_handler(None)

    assert reported == []


@pytest.mark.parametrize(
    ("request_as", "media", "basic", "body"),
    [
        (
            "form",
            "application/x-www-form-urlencoded",
            "me%40home:a%3Ab%25c%20d%2B%C3%A9",
            b"grant_type=client_credentials&scope=openid",
        ),
        (
            "json",
            "application/json",
            "me@home:a:b%c d+é",
            b'{"grant_type":"client_credentials","scope":"openid"}',
        ),
    ],
)
async def test_client_credentials_go_as_rfc_6749_says_or_as_a_document_shows(
    request_as: TokenRequest, media: str, basic: str, body: bytes
) -> None:
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"access_token": "t", "expires_in": 60})

    async with httpx.AsyncClient(
        transport=httpx.MockTransport(answer), base_url="http://provider.test/"
    ) as client:
        auth = ClientCredentialsAuth(
            provider="provider",
            client=client,
            url="token",
            client_id="me@home",
            client_secret="a:b%c d+é",
            lifetime=60,
            clock=ManualClock(),
            request=request_as,
        )
        assert await auth.token() == "t"

    (request,) = sent
    scheme, _, encoded = request.headers["authorization"].partition(" ")
    assert (scheme, base64.b64decode(encoded).decode()) == ("Basic", basic)
    assert request.headers["content-type"] == media
    assert request.content.replace(b" ", b"") == body


async def one_building(
    connector: type[Connector], answer: Callable[[httpx.Request], httpx.Response]
) -> None:
    """A building read through `connector`, every request it makes answered by `answer`."""
    name = connector.name
    upstream = Upstream(
        name=name,
        base_url=f"https://{name}.test",
        credentials=Sandbox.credentials(name),
        traffic=Traffic(),
        clock=ManualClock(),
        transport=httpx.MockTransport(answer),
    )
    try:
        await connector.connect(upstream).page(
            Entity.BUILDING, ListRequest({}, Selection(), limit=1)
        )
    finally:
        await upstream.aclose()


@pytest.mark.parametrize("where", ["token", "data"])
async def test_a_pms_429_with_a_body_nested_past_any_parser_stays_a_rate_limit(
    where: str,
) -> None:
    """pms says how long to wait in its 429's body; a body nested 5,000 deep (which exhausts
    a recursive parser's stack) says nothing of it, and the 429 is still a rate limit, not an
    unreadable answer counted against the provider's circuit."""
    nested = httpx.Response(429, content=b"[" * 5000, headers={"Content-Type": "application/json"})

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/identity/login"):
            if where == "token":
                return nested
            tokens = {"access_token": "A", "refresh_token": "R", "expires_in": 900}
            return httpx.Response(200, json={"success": True, "data": tokens, "meta": {}})
        return nested

    with pytest.raises(ProviderError) as raised:
        await one_building(PmsConnector, answer)

    assert raised.value.code == "RATE_LIMITED"


HELD = [
    (401, {"error": "invalid_client"}, "UPSTREAM_CREDENTIALS_REFUSED"),
    (400, {"error": "invalid_scope"}, "UPSTREAM_TOKEN_REQUEST_REJECTED"),
]


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize(("status", "body", "code"), HELD, ids=[code for *_, code in HELD])
async def test_a_refused_token_request_is_not_made_again_until_a_growing_hold_off_ends(
    style: str, status: int, body: dict[str, str], code: str
) -> None:
    """An identity provider locks an account after some failed logins: with a wrong secret,
    every query used to ask again. Each refusal now holds the next request back, 30 s, then
    twice as long each time, 5 minutes at most; the callers meanwhile get the same error,
    saying when the gateway asks again."""
    clock = ManualClock()
    asked: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        return httpx.Response(status, json=body)

    async def refusal() -> ProviderError:
        with pytest.raises(ProviderError) as raised:
            await auth.token()
        return raised.value

    async with _auth(style, answer, clock) as auth:
        first = await refusal()
        for requests, hold in enumerate([30, 60, 120, 240, 300, 300], start=1):
            at = datetime.fromtimestamp(clock.now + hold, UTC)
            next_try = f"asks again at {at:%Y-%m-%dT%H:%M:%S}Z"
            assert next_try in first.message
            for waited in (0, hold - 1):
                clock.advance(waited)
                held = await asyncio.gather(*(refusal() for _ in range(5)))
                assert {error.code for error in held} == {code}
                assert {str(error.extensions) for error in held} == {str(first.extensions)}
                assert all(next_try in error.message for error in held)
                assert f"(in {hold - waited} s)" in held[0].message
            assert len(asked) == requests
            clock.advance(1)
            first = await refusal()
            assert len(asked) == requests + 1


@pytest.mark.parametrize("style", STYLES)
async def test_a_token_obtained_ends_the_hold_off_and_the_next_refusal_holds_30_s_again(
    style: str,
) -> None:
    clock = ManualClock()
    refusing = True
    asked: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        if refusing:
            return httpx.Response(401, json={"error": "invalid_client"})
        return httpx.Response(200, json={"access_token": "t0k", "expires_in": 3600})

    async def refused() -> None:
        with pytest.raises(ProviderError):
            await auth.token()

    async with _auth(style, answer, clock) as auth:
        await refused()
        clock.advance(30)
        await refused()
        clock.advance(60)
        refusing = False
        await auth.invalidate(await auth.token())
        refusing = True
        await refused()
        clock.advance(29)
        await refused()
        assert len(asked) == 4
        clock.advance(1)
        await refused()
        assert len(asked) == 5


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize(
    ("status", "body", "headers", "code", "reason"),
    [
        *(refusal for refusal in REFUSALS if refusal[0] in (429, 503)),
        (408, "", {}, "UPSTREAM_UNAVAILABLE", "(HTTP 408)"),
        (404, "<html>Not Found</html>", {}, "UPSTREAM_TOKEN_REQUEST_REJECTED", "(HTTP 404)"),
    ],
    ids=["429", "503", "408", "404"],
)
async def test_a_token_endpoint_throttling_or_down_is_asked_again_by_the_next_caller(
    style: str, status: int, body: Any, headers: dict[str, str], code: str, reason: str
) -> None:
    """A 429 is the provider's rest to keep (the quota does, for every request to it), a 5xx
    or a 408 an outage that may end at any moment, a 404 naming no OAuth error perhaps a
    proxy's and not the endpoint's: none says anything of the credentials, so none is held."""
    asked: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        return _answering(status, body, headers)(request)

    async with _auth(style, answer) as auth:
        for _ in range(3):
            with pytest.raises(ProviderError) as raised:
                await auth.token()
            assert raised.value.code == code and reason in raised.value.message

    assert len(asked) == 3


async def test_queries_with_a_wrong_password_cost_primmo_one_login_per_hold_off(
    sandbox: Sandbox, clock: ManualClock
) -> None:
    upstream = Upstream(
        name="primmo",
        base_url="http://127.0.0.1/sandbox/primmo",
        credentials={**Sandbox.credentials("primmo"), "password": "wrong"},
        traffic=Traffic(),
        clock=clock,
        transport=sandbox.transport("primmo"),
    )
    connector = PrimmoConnector.connect(upstream)
    codes: list[str] = []

    async def read() -> None:
        try:
            await connector.page(Entity.BUILDING, ListRequest({}, Selection(), limit=1))
        except ProviderError as error:
            codes.append(error.code)

    try:
        for _ in range(10):
            await read()
        assert sandbox.states["primmo"].count("POST", TOKEN) == 1
        clock.advance(30)
        for _ in range(10):
            await read()
    finally:
        await upstream.aclose()

    assert codes == ["UPSTREAM_CREDENTIALS_REFUSED"] * 20
    assert sandbox.states["primmo"].count("POST", TOKEN) == 2


STATUS = "{ providers { name healthy breakerState lastError restingUntil retryAfterSeconds } }"


async def test_primmo_held_off_after_a_wrong_password_is_shown_resting_with_the_refusal(
    sandbox: Sandbox, clock: ManualClock, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing is sent to Primmo while its token endpoint is held off, as surely as while a
    provider rests after a 429: `providers` says so, and why, or a wrong password looks
    healthy. The later of the two holds is the one shown. /readyz keeps its meaning: the
    circuit still admits calls (see README Health)."""
    configured = Sandbox.credentials

    def wrong(name: str) -> dict[str, str]:
        given = configured(name)
        return {**given, "password": "wrong-pass"} if name == "primmo" else given

    monkeypatch.setattr(Sandbox, "credentials", staticmethod(wrong))
    async with serving(sandbox, clock, settings) as client:
        refused = await client.query(QUERY)
        held = await client.data(STATUS)
        ready = await client.http.get("/readyz")
        quota = client.gateway.federation.health["primmo"].quota
        quota.rest(10, "asked not to be called")
        shorter = await client.data(STATUS)
        quota.rest(60, "asked not to be called")
        longer = await client.data(STATUS)
        clock.advance(30)
        still = await client.data(STATUS)
        clock.advance(30)
        after = await client.data(STATUS)

    def primmo(status: dict[str, Any]) -> dict[str, Any]:
        rows: list[dict[str, Any]] = status["providers"]
        (row,) = [row for row in rows if row["name"] == "primmo"]
        return row

    assert error_codes(refused) == ["UPSTREAM_CREDENTIALS_REFUSED"]
    row = primmo(held)
    last_error = row.pop("lastError")
    assert row == {
        "name": "primmo",
        "healthy": False,
        "breakerState": "CLOSED",
        "restingUntil": "2026-01-01T00:00:30+00:00",
        "retryAfterSeconds": 30,
    }
    assert last_error.startswith("UPSTREAM_CREDENTIALS_REFUSED: primmo's token endpoint refused")
    assert "asks again at 2026-01-01T00:00:30Z" in last_error
    assert "wrong-pass" not in last_error
    assert {(row["name"], row["healthy"]) for row in held["providers"]} >= {("pms", True)}
    assert ready.status_code == 200 and ready.json()["providers"]["primmo"] == "CLOSED"
    assert (primmo(shorter)["restingUntil"], primmo(shorter)["retryAfterSeconds"]) == (
        "2026-01-01T00:00:30+00:00",
        30,
    )
    assert (primmo(longer)["restingUntil"], primmo(longer)["retryAfterSeconds"]) == (
        "2026-01-01T00:01:00+00:00",
        60,
    )
    assert not primmo(still)["healthy"] and primmo(still)["lastError"] is None
    assert primmo(after) == {
        "name": "primmo",
        "healthy": True,
        "breakerState": "CLOSED",
        "lastError": None,
        "restingUntil": None,
        "retryAfterSeconds": None,
    }
