"""A sixth provider through the registry alone: its connector, its sandbox app, one entry each.

"Tiny" is a throwaway JSON API that lists buildings by name with an offset. Nothing in
`schema/` or the federation knows it: once registered, the unified `buildings` list merges
its records with the others' in the documented order, and `node(id)` finds one again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from gateway import sandbox as sandboxes
from gateway.clock import ManualClock
from gateway.config import Settings
from gateway.connectors import CONNECTORS
from gateway.connectors.base import Connector, ListRequest, Page, offset_of
from gateway.errors import UpstreamInvalidResponse
from gateway.model import Building, Criteria, Entity, Record, Selection
from gateway.sandbox import Sandbox, SandboxProvider
from gateway.sandbox.data import World
from gateway.sandbox.server import ProviderState
from gateway.upstream.auth import HeaderAuth
from gateway.upstream.client import Upstream
from tests.conftest import Client, serving

KEY = "tiny-key"
ROWS = [
    {"id": "t1", "name": "Aaron Court", "city": "Lausanne"},
    {"id": "t2", "name": "Mid Tower", "city": "Geneva"},
    {"id": "t3", "name": "Zenith Hall", "city": "Bern"},
]


def tiny_api(_world: World, _state: ProviderState) -> ASGIApp:
    """The provider: `GET /buildings?offset&limit` by name, and `?ids=` for some by id."""

    async def buildings(request: Request) -> JSONResponse:
        if request.headers.get("x-tiny-key") != KEY:
            return JSONResponse({"error": "no key"}, status_code=401)
        ids = request.query_params.get("ids")
        if ids is not None:
            return JSONResponse({"items": [r for r in ROWS if r["id"] in ids.split(",")]})
        offset = int(request.query_params.get("offset", "0"))
        limit = int(request.query_params.get("limit", "10"))
        return JSONResponse({"items": ROWS[offset : offset + limit], "total": len(ROWS)})

    return Starlette(routes=[Route("/buildings", buildings)])


def _building(row: Mapping[str, Any]) -> Building:
    return Building(provider="tiny", source_id=row["id"], name=row["name"], city=row["city"])


class TinyConnector(Connector):
    """The connector: the core only (no capabilities), as a newcomer's first one would be."""

    name = "tiny"
    kind = "rest"
    serves = frozenset({Entity.BUILDING})
    lists = frozenset({Entity.BUILDING})
    credentials = ("api_key",)

    @classmethod
    def connect(cls, upstream: Upstream) -> TinyConnector:
        return cls(upstream.client(HeaderAuth("x-tiny-key", upstream.credential("api_key"))))

    def supports(self, entity: Entity, criteria: Criteria, /) -> bool:
        return entity in self.lists and not criteria

    async def page(self, _entity: Entity, request: ListRequest, /) -> Page:
        offset = offset_of(request.position)
        body = await self._get({"offset": offset, "limit": request.limit})
        records = [_building(row) for row in body["items"]]
        total = int(body["total"])
        return Page(
            records,
            [offset + n for n in range(1, len(records) + 1)],
            exhausted=offset + len(records) >= total,
            total=total if request.count else None,
        )

    async def fetch(
        self, _entity: Entity, by: str, keys: Sequence[str], _selection: Selection, /
    ) -> Mapping[str, Sequence[Record]]:
        if by != "id" or not keys:
            return {}
        body = await self._get({"ids": ",".join(keys)})
        return {row["id"]: [_building(row)] for row in body["items"]}

    async def _get(self, params: Mapping[str, str | int]) -> dict[str, Any]:
        response = await self._client.get("buildings", params=params)
        if response.status_code != 200:
            raise UpstreamInvalidResponse("tiny", f"tiny answered {response.status_code}.")
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
async def six(
    monkeypatch: pytest.MonkeyPatch, clock: ManualClock, settings: Settings
) -> AsyncIterator[Client]:
    """The gateway over the five sandbox providers and Tiny, registered as the README says."""
    monkeypatch.setitem(CONNECTORS, TinyConnector.name, TinyConnector)
    monkeypatch.setitem(sandboxes.PROVIDERS, "tiny", SandboxProvider(tiny_api, {"api_key": KEY}))
    async with serving(Sandbox(seed=7, clock=clock), clock, settings) as client:
        yield client


BUILDINGS = "{ buildings(first: 100) { totalCount edges { node { id provider name } } } }"


async def test_a_sixth_provider_joins_the_unified_list_in_its_order(six: Client) -> None:
    data = await six.data(BUILDINGS)

    nodes = [edge["node"] for edge in data["buildings"]["edges"]]
    tiny = [n for n, node in enumerate(nodes) if node["provider"] == "tiny"]
    assert [nodes[n]["name"] for n in tiny] == [row["name"] for row in ROWS]
    assert {node["provider"] for node in nodes} == {"primmo", "pms", "scom", "tiny"}
    assert tiny[0] == 0 and tiny[0] + 1 < tiny[1] < tiny[2] - 1 and tiny[2] == len(nodes) - 1
    assert data["buildings"]["totalCount"] == len(nodes)


async def test_a_sixth_providers_record_is_found_again_by_its_id(six: Client) -> None:
    listed = await six.data('{ buildings(providers: ["tiny"]) { edges { node { id } } } }')
    last = listed["buildings"]["edges"][-1]["node"]["id"]

    found = await six.data(
        "query($id: ID!) { node(id: $id) { ... on Building { provider sourceId name city } } }",
        {"id": last},
    )

    assert found["node"] == {
        "provider": "tiny",
        "sourceId": "t3",
        "name": "Zenith Hall",
        "city": "Bern",
    }


async def test_without_its_registry_entry_the_gateway_does_not_know_it(client: Client) -> None:
    body = await client.query('{ buildings(providers: ["tiny"]) { totalCount } }')

    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "Unknown provider(s): tiny" in body["errors"][0]["message"]
