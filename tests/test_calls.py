"""The one way connectors call a provider: each status's stable error, a provider's error
names over its statuses, envelopes, and bodies that cannot be read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from gateway.connectors.calls import Dialect, Failure, Said, member
from gateway.connectors.untrusted_xml import parse_untrusted
from gateway.errors import GatewayError, Refused

ROOT = "http://provider.test/"


def _client(answer: Callable[[httpx.Request], httpx.Response]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(answer), base_url=ROOT)


def _answering(
    status: int,
    body: Any = None,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Callable[[httpx.Request], httpx.Response]:
    def answer(_request: httpx.Request) -> httpx.Response:
        if content is not None:
            return httpx.Response(status, content=content, headers=headers)
        return httpx.Response(status, json=body, headers=headers)

    return answer


def _named(body: Any) -> Said:
    """A provider that names its errors: `{"code": ..., "message": ...}`."""
    return Said(name=member(body, "code"), message=member(body, "message"))


NAMED = Dialect("provider", _named, {"GONE_FOR_GOOD": Failure.NOT_FOUND, "BAD": Failure.INVALID})


async def _error(
    dialect: Dialect, answer: Callable[[httpx.Request], httpx.Response], method: str = "GET"
) -> GatewayError:
    async with _client(answer) as client:
        with pytest.raises(GatewayError) as raised:
            await dialect.body(client, method, "things")
    return raised.value


@pytest.mark.parametrize(
    ("status", "method", "code"),
    [
        (400, "GET", "UPSTREAM_REJECTED"),
        (401, "GET", "UPSTREAM_ERROR"),
        (403, "GET", "UPSTREAM_ERROR"),
        (404, "GET", "NOT_FOUND"),
        (409, "GET", "UPSTREAM_ERROR"),
        (409, "POST", "CONFLICT"),
        (429, "GET", "RATE_LIMITED"),
        (500, "GET", "UPSTREAM_UNAVAILABLE"),
        (503, "POST", "UPSTREAM_UNAVAILABLE"),
    ],
)
async def test_each_status_has_its_stable_error_and_the_providers_words(
    status: int, method: str, code: str
) -> None:
    error = await _error(
        Dialect("provider"), _answering(status, {"error": {"message": "Said so"}}), method
    )

    assert error.code == code
    assert "Said so" in error.message
    assert error.extensions.get("provider") == "provider"


@pytest.mark.parametrize(
    ("status", "name", "method", "code"),
    [
        (400, "GONE_FOR_GOOD", "GET", "NOT_FOUND"),
        (400, "BAD", "POST", "VALIDATION_FAILED"),
        (422, "BAD", "GET", "UPSTREAM_REJECTED"),
        (404, "UNKNOWN_TO_THE_TABLE", "GET", "NOT_FOUND"),
    ],
)
async def test_a_name_in_the_providers_table_decides_over_the_status(
    status: int, name: str, method: str, code: str
) -> None:
    error = await _error(NAMED, _answering(status, {"code": name, "message": "m"}), method)

    assert error.code == code


async def test_a_rate_limit_says_when_to_come_back_as_the_provider_tells_it() -> None:
    in_body = Dialect("provider", retry_after=lambda response: response.json()["wait"])

    header = await _error(Dialect("provider"), _answering(429, {}, headers={"Retry-After": "30"}))
    body = await _error(in_body, _answering(429, {"wait": 900}))

    assert header.extensions.get("retryAfter") == 30
    assert body.extensions.get("retryAfter") == 900


@pytest.mark.parametrize(
    "content", [b"<html>oops</html>", b"", b"{", b"[" * 5000], ids=["html", "empty", "cut", "deep"]
)
async def test_a_body_that_cannot_be_read_is_an_invalid_response(content: bytes) -> None:
    error = await _error(Dialect("provider"), _answering(200, content=content))

    assert error.code == "UPSTREAM_INVALID_RESPONSE"


async def test_an_unreadable_error_body_still_gives_the_statuss_error() -> None:
    error = await _error(NAMED, _answering(404, content=b"<html>Not Found</html>"))

    assert error.code == "NOT_FOUND"


def _data(body: Any) -> Any:
    if member(body, "success") is not True:
        raise Refused("OUTSIDE", "outside the envelope")
    return member(body, "data")


ENVELOPED = Dialect(
    "provider", envelope=_data, total=lambda body: member(member(body, "meta"), "total")
)


async def test_the_envelope_is_opened_and_the_total_read_beside_it() -> None:
    answer = _answering(200, {"success": True, "data": [{"id": 1}], "meta": {"total": 7}})
    async with _client(answer) as client:
        rows, total = await ENVELOPED.listing(client, "things")
        one = await ENVELOPED.body(client, "GET", "things")

    assert rows == [{"id": 1}] and total == 7
    assert one == [{"id": 1}]


async def test_a_body_outside_its_envelope_is_refused_as_the_envelope_says() -> None:
    error = await _error(ENVELOPED, _answering(200, {"data": []}))

    assert error.code == "OUTSIDE"


@pytest.mark.parametrize(
    "body", [{"things": {"id": 1}}, {"things": [1, 2]}, {"other": []}, [1]], ids=str
)
async def test_a_list_that_is_not_a_list_of_records_is_an_invalid_response(body: Any) -> None:
    async with _client(_answering(200, body)) as client:
        with pytest.raises(GatewayError) as raised:
            await Dialect("provider").listing(client, "things", "things")

    assert raised.value.code == "UPSTREAM_INVALID_RESPONSE"
    assert "'things'" in raised.value.message


async def test_one_record_is_none_when_the_provider_has_none_by_status_or_by_name() -> None:
    async with _client(_answering(404, {})) as missing:
        by_status = await NAMED.one(missing, "things/1")
    async with _client(_answering(400, {"code": "GONE_FOR_GOOD"})) as gone:
        by_name = await NAMED.one(gone, "things/1")
    async with _client(_answering(200, {"thing": {"id": 1}})) as present:
        found = await NAMED.one(present, "things/1", "thing")

    assert by_status is None and by_name is None
    assert found == {"id": 1}


async def test_a_calls_own_refusals_come_before_the_dialects_and_passes_are_handed_back() -> None:
    refusals = {409: lambda said: Refused("IN_USE", said.message or "in use")}
    async with _client(_answering(409, {"code": "X", "message": "taken"})) as client:
        with pytest.raises(Refused) as raised:
            await NAMED.response(client, "POST", "things", refusals=refusals)
        passed = await NAMED.response(client, "GET", "things", passes=(409,))

    assert (raised.value.code, raised.value.message) == ("IN_USE", "taken")
    assert passed.status_code == 409


async def test_headers_are_heard_on_success_only() -> None:
    heard: list[str] = []
    dialect = Dialect("provider", heard=lambda response: heard.append(response.headers["x-said"]))

    async with _client(_answering(200, {}, headers={"x-said": "fine"})) as ok:
        await dialect.body(ok, "GET", "things")
    async with _client(_answering(500, {}, headers={"x-said": "failing"})) as failing:
        with pytest.raises(GatewayError):
            await dialect.body(failing, "GET", "things")

    assert heard == ["fine"]


XML = Dialect("provider", lambda root: Said(message=root.text), parse=parse_untrusted)


async def test_xml_is_read_through_the_bounded_parser_for_bodies_and_errors_alike() -> None:
    async with _client(_answering(200, content=b"<things><thing/></things>")) as client:
        root = await XML.body(client, "GET", "things")
    refusal = await _error(XML, _answering(400, content=b"<error>bad account</error>"))
    hostile = await _error(
        XML, _answering(200, content=b'<!DOCTYPE x [<!ENTITY e "e">]><x>&e;</x>')
    )

    assert root.tag == "things" and len(root) == 1
    assert refusal.code == "UPSTREAM_REJECTED" and "bad account" in refusal.message
    assert hostile.code == "UPSTREAM_INVALID_RESPONSE"


@pytest.mark.parametrize(
    ("method", "code"), [("GET", "UPSTREAM_UNAVAILABLE"), ("POST", "OUTCOME_UNKNOWN")]
)
async def test_a_write_that_may_have_left_is_of_unknown_outcome_a_read_unavailable(
    method: str, code: str
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    error = await _error(Dialect("provider"), answer, method)

    assert error.code == code
