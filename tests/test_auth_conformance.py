"""A token endpoint's answer read as RFC 6749 and RFC 6750 say, not as our sandbox writes it:
the token type, the token itself, its lifetime, a refresh that keeps its refresh token, and
Primmo's token as ASP.NET writes a string."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from gateway.clock import ManualClock
from gateway.connectors.primmo import PrimmoConnector
from gateway.errors import ProviderError
from tests.test_auth import STYLES, _answering, _auth, one_building

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("token_type", ["Bearer", "bearer", "BEARER", None])
async def test_a_bearer_token_is_used_whatever_the_case_of_its_type_or_with_no_type_stated(
    style: str, token_type: str | None
) -> None:
    """RFC 6749 §5.1: the type is case-insensitive. pms's login answer (assumed) and Primmo's
    token (a bare string) state none: those must go on working."""
    body: dict[str, Any] = {"access_token": "t0k", "expires_in": 600}
    if token_type is not None:
        body["token_type"] = token_type
    async with _auth(style, _answering(200, body, {})) as auth:
        assert await auth.token() == "t0k"


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("token_type", ["mac", "DPoP", "N_A", 7])
async def test_a_token_of_a_type_the_gateway_does_not_understand_is_not_used(
    style: str, token_type: Any
) -> None:
    """RFC 6749 §7.1: "The client MUST NOT use an access token if it does not understand the
    token type." A DPoP token sent as a bearer one would only be refused by every request."""
    body = {"access_token": "t0k", "token_type": token_type, "expires_in": 600}
    async with _auth(style, _answering(200, body, {})) as auth:
        with pytest.raises(ProviderError) as raised:
            await auth.token()

    assert raised.value.code == "UPSTREAM_INVALID_RESPONSE"
    assert f'token_type "{token_type}"' in raised.value.message
    assert "t0k" not in raised.value.message


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("value", ["", "two words", "t0k\r\nX-Injected: yes", "t0kén"])
async def test_a_token_that_cannot_go_in_an_authorization_header_is_not_used(
    style: str, value: str
) -> None:
    """RFC 6750 §2.1: the credentials are a b64token, one character at least, and none of them
    a space or a control character: `Bearer ` with nothing after it, or a token that breaks
    the header, would be refused by every request."""
    body = {"access_token": value, "token_type": "Bearer", "expires_in": 600}
    async with _auth(style, _answering(200, body, {})) as auth:
        with pytest.raises(ProviderError) as raised:
            await auth.token()

    assert raised.value.code == "UPSTREAM_INVALID_RESPONSE"
    assert "t0k" not in raised.value.message


@pytest.mark.parametrize("style", ["login and refresh", "client credentials"])
@pytest.mark.parametrize(
    ("expires_in", "lives"),
    [
        (600, 600),
        ("600", 600),
        ("6e2", 60),
        ("-600", 60),
        ("\u0666\u0660\u0660", 60),
        ("", 60),
        ("9" * 400, 60),
        (True, 60),
        (None, 60),
    ],
)
async def test_a_lifetime_written_as_digits_is_read_and_anything_else_falls_back(
    style: str, expires_in: Any, lives: int
) -> None:
    """RFC 6749 §5.1 makes `expires_in` a number, but servers write it as a string too: read,
    it renews the token before the server expires it rather than after a 401. What is not
    a count of seconds (digits past any float's range included) falls back to the documented
    lifetime (60 s here)."""
    clock = ManualClock()
    body = {"access_token": "t0k", "token_type": "Bearer", "expires_in": expires_in}
    async with _auth(style, _answering(200, body, {}), clock) as auth:
        await auth.token()

        assert auth.expires_at == clock.now + lives


@pytest.mark.parametrize(
    ("rotated", "refreshed_with"), [(False, ["R0", "R0", "R0"]), (True, ["R0", "R1", "R2"])]
)
async def test_a_refresh_answer_without_a_refresh_token_keeps_the_one_it_was_made_with(
    rotated: bool, refreshed_with: list[str]
) -> None:
    """RFC 6749 §6: the server MAY issue a new refresh token; if it does not, the old one
    stands. Forgetting it made every second renewal a password login."""
    clock = ManualClock()
    asked: list[tuple[str, str | None]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        route = request.url.path.rsplit("/", 1)[-1]
        sent = json.loads(request.content)
        asked.append((route, sent.get("refresh_token")))
        body = {"access_token": f"A{len(asked)}", "token_type": "Bearer", "expires_in": 600}
        if route == "login":
            body["refresh_token"] = "R0"
        elif rotated:
            body["refresh_token"] = f"R{len(asked) - 1}"
        return httpx.Response(200, json=body)

    async with _auth("login and refresh", answer, clock) as auth:
        await auth.token()
        for _ in refreshed_with:
            clock.advance(600)
            await auth.token()

    assert asked == [("login", None), *(("refresh", token) for token in refreshed_with)]


def _primmo(
    token: httpx.Response, seen: list[httpx.Request]
) -> Callable[[httpx.Request], httpx.Response]:
    """Primmo with a token endpoint answering `token`; every request it gets lands in `seen`,
    and its data endpoints answer an empty page."""

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/api/Token"):
            return token
        return httpx.Response(200, json={"value": []})

    return answer


@pytest.mark.parametrize(
    "token",
    [
        httpx.Response(200, json=JWT),
        httpx.Response(200, text=JWT, headers={"Content-Type": "text/plain; charset=utf-8"}),
    ],
    ids=["json string", "text/plain"],
)
async def test_primmos_token_is_asked_for_as_json_and_read_as_asp_net_writes_a_string(
    token: httpx.Response,
) -> None:
    """Primmo's document says only "the token is returned in the body" (ASP.NET): a string
    comes as JSON when JSON is asked for, and as bare `text/plain` to a client that takes
    anything (`Accept: */*`)."""
    seen: list[httpx.Request] = []
    await one_building(PrimmoConnector, _primmo(token, seen))

    asked, read = seen
    assert asked.headers["accept"] == "application/json"
    assert read.headers["authorization"] == f"Bearer {JWT}"


@pytest.mark.parametrize(
    "body",
    [b"", b"<html>ok</html>", b"two words", JWT.encode() + b"\n", b"t0k\xff"],
    ids=["empty", "html", "words", "newline", "not ascii"],
)
async def test_a_primmo_token_body_that_is_not_json_nor_a_token_is_an_invalid_response(
    body: bytes,
) -> None:
    seen: list[httpx.Request] = []
    token = httpx.Response(200, content=body, headers={"Content-Type": "text/plain"})
    with pytest.raises(ProviderError) as raised:
        await one_building(PrimmoConnector, _primmo(token, seen))

    assert raised.value.code == "UPSTREAM_INVALID_RESPONSE"
    assert len(seen) == 1
