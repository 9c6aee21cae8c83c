"""OData next links, as Primmo's connector follows them: one budget per answer, however deep.

A fake OData service (httpx's MockTransport) gives what a broken or hostile server
could: expanded collections whose further pages link on forever, or back to
themselves, and next links that lead nowhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.connectors import odata
from gateway.connectors.base import ListRequest
from gateway.connectors.paging import MAX_PAGES, NextLinks
from gateway.connectors.primmo import PrimmoConnector
from gateway.errors import GatewayError, ProviderError
from gateway.model import Building, Entity, Link, Selection

ROOT = "http://primmo.test/"
WITH_UNITS = Selection(relations={"units": Selection()})
STOP_AFTER = 3 * MAX_PAGES + 10
"""The fake server refuses past this many requests, so a connector that never stops
fails instead of hanging the suite."""


def _building(number: int, **extra: Any) -> dict[str, Any]:
    return {"Id": number, "CompanyNo": 1, "DivisionNo": 1, "BuildingCode": f"B{number}", **extra}


def _unit(number: int, **extra: Any) -> dict[str, Any]:
    return {"Id": number, "UnitCode": f"U{number}", **extra}


class _Service:
    """Answers each request from `answer(path and query)`, counting them."""

    def __init__(self, answer: Callable[[str], httpx.Response]) -> None:
        self.answer = answer
        self.requests: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(str(request.url))
        if len(self.requests) > STOP_AFTER:
            return httpx.Response(410, json={"error": {"message": "the test's server gave up"}})
        return self.answer(str(request.url).removeprefix(ROOT))


async def _buildings(service: _Service, limit: int = 10) -> list[Building]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(service), base_url=ROOT) as client:
        page = await PrimmoConnector(client).page(
            Entity.BUILDING, ListRequest({}, WITH_UNITS, limit=limit)
        )
    return [record for record in page.records if isinstance(record, Building)]


async def test_an_expanded_collections_further_pages_are_not_expanded_again() -> None:
    """A unit on a further page that carries a next link of its own (here, back to its own
    page) once made the connector read that page again, and again, without end."""

    def answer(url: str) -> httpx.Response:
        if url.startswith("api/Buildings?"):
            units = {"Units": [_unit(1)], "Units@odata.nextLink": "Units/more"}
            return httpx.Response(200, json={"value": [_building(1, **units)]})
        if url == "api/Units/more":
            looping = _unit(2, **{"Units": [], "Units@odata.nextLink": "/api/Units/more"})
            return httpx.Response(200, json={"value": [looping]})
        return httpx.Response(404, json={"error": {"message": url}})

    service = _Service(answer)

    (building,) = await _buildings(service)

    assert isinstance(building.units, Link)
    assert [unit.source_id for unit in building.units.prefetched or ()] == ["1", "2"]
    assert len(service.requests) == 2


async def test_next_links_nested_in_expansions_share_the_answers_page_budget() -> None:
    """Three buildings whose units page on forever: each expansion once had a budget of its
    own (and 3,000 requests were read before giving up); the answer has one."""

    def answer(url: str) -> httpx.Response:
        if url.startswith("api/Buildings?"):
            rows = [
                _building(n, Units=[], **{"Units@odata.nextLink": f"/api/Units/of{n}/1"})
                for n in range(1, 4)
            ]
            return httpx.Response(200, json={"value": rows})
        prefix, _, page = url.rpartition("/")
        following = f"/{prefix}/{int(page) + 1}"
        return httpx.Response(200, json={"value": [_unit(int(page))], "@odata.nextLink": following})

    service = _Service(answer)

    with pytest.raises(ProviderError) as raised:
        await _buildings(service)

    assert raised.value.code == "UPSTREAM_INVALID_RESPONSE"
    assert f"ran past {MAX_PAGES}" in raised.value.message
    assert len(service.requests) == MAX_PAGES


async def test_a_link_on_a_collection_not_expanded_is_not_followed() -> None:
    """Only a collection the request expanded can be cut short: in a read that expands none,
    a link a server puts on a collection leads to rows nobody wants (and, without them in the
    row, had the whole answer refused)."""

    def answer(url: str) -> httpx.Response:
        if url.startswith("api/Buildings?"):
            stray = {"Units@odata.nextLink": "Units/more"}
            return httpx.Response(200, json={"value": [_building(1, **stray), _building(2)]})
        return httpx.Response(200, json={"value": [_unit(9)]})

    service = _Service(answer)
    async with httpx.AsyncClient(transport=httpx.MockTransport(service), base_url=ROOT) as client:
        page = await PrimmoConnector(client).page(
            Entity.BUILDING, ListRequest({}, Selection(), limit=5)
        )

    assert "%24expand" not in service.requests[0] and "$expand" not in service.requests[0]
    assert [record.source_id for record in page.records] == ["1", "2"]
    assert len(service.requests) == 1


@pytest.mark.parametrize("nested", [False, True], ids=["list", "expanded collection"])
async def test_a_next_link_that_leads_nowhere_is_an_invalid_response_not_a_missing_record(
    nested: bool,
) -> None:
    def answer(url: str) -> httpx.Response:
        if url.startswith("api/Buildings?") and nested:
            units = {"Units": [], "Units@odata.nextLink": "Units/gone"}
            return httpx.Response(200, json={"value": [_building(1, **units)]})
        if url.startswith("api/Buildings?"):
            body = {"value": [_building(1)], "@odata.nextLink": "Buildings/gone"}
            return httpx.Response(200, json=body)
        return httpx.Response(404, json={"error": {"message": "No such resource"}})

    with pytest.raises(ProviderError) as raised:
        await _buildings(_Service(answer), limit=5)

    assert raised.value.code == "UPSTREAM_INVALID_RESPONSE"
    assert "nextLink" in raised.value.message


async def test_a_first_page_that_is_not_there_is_still_not_found() -> None:
    """Only a link the server gave is the server's fault; the gateway's own URL is not."""
    service = _Service(lambda _url: httpx.Response(404, json={"error": {"message": "nope"}}))

    with pytest.raises(GatewayError) as raised:
        await _buildings(service)

    assert raised.value.code == "NOT_FOUND"


_TEXT = st.text(st.characters(exclude_categories=["Cs"]))


@given(
    root=st.sampled_from(
        [
            ROOT,
            "https://primmo.example:8443/sandbox/primmo/",
            "http://127.0.0.1:80/a%20b/odata/",
            "https://user@primmo.example/odata/#section",
        ]
    ),
    path=st.sampled_from(["api/Units", "api/Units/ForRent", "api/Units(1)/Tenants"]),
    options=st.none() | st.dictionaries(_TEXT, _TEXT, max_size=4),
)
async def test_the_first_pages_url_is_the_one_httpx_parses_from_the_target(
    root: str, path: str, options: dict[str, str] | None
) -> None:
    """The first page's URL is made from its parts, unchecked (httpx re-quotes a 2 KB
    `$filter` character by character): for any options `odata.encode` writes, it must be
    the URL httpx makes of the same text, part for part."""
    target = path if options is None else f"{path}?{odata.encode(options)}"
    fetched: list[httpx.URL] = []

    async def fetch(url: httpx.URL) -> dict[str, Any]:
        fetched.append(url)
        return {"value": []}

    await NextLinks(fetch, httpx.URL(root), "primmo").read(target)

    (made,) = fetched
    assert made._uri_reference == httpx.URL(urljoin(root, target))._uri_reference
