"""Two gateway processes sharing one Redis, against one set of providers: real uvicorn
servers, a real `redis-server`, and the sandbox providers served on their own, all on
loopback. Tokens are fetched once for both, and a webhook taken by one reaches a
subscriber of the other, which no longer serves the record the change evicted."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.typing import Subprotocol

from gateway.connectors.primmo import WEBHOOK_HEADER
from gateway.sandbox import Sandbox
from gateway.sandbox.mycrm import CREDENTIALS as MYCRM
from gateway.sandbox.pms import CREDENTIALS as PMS
from gateway.sandbox.primmo import CREDENTIALS as PRIMMO
from gateway.tools.loopback import free_ports, running
from tests.metrics_reading import metric, upstream_requests
from tests.redis_server import RedisServer

KEY = "replicas-e2e-key"
TOKEN_PATHS = {
    "primmo": {"/api/Token"},
    "pms": {"/api/v1/identity/login", "/api/v1/identity/refresh"},
    "mycrm": {"/auth/oauth/v1/token"},
}
LANDLORDS = "{ landlords(first: 5) { edges { node { provider name } } } }"


@dataclass
class Deployment:
    sandbox: str
    gateways: tuple[str, str]

    def requests(self, provider: str) -> list[dict[str, Any]]:
        url = f"{self.sandbox}/sandbox/{provider}/_sandbox/requests"
        counted: list[dict[str, Any]] = httpx.get(url).json()["requests"]
        return counted

    def count(self, provider: str, method: str, paths: set[str]) -> int:
        return sum(
            r["count"]
            for r in self.requests(provider)
            if r["method"] == method and r["path"] in paths
        )


def _config(sandbox: str, redis_url: str) -> str:
    return f"""
[gateway]
redis_url = "{redis_url}"

[cache]
ttl = {{ "primmo.Tenant" = 300 }}

[[auth.api_keys]]
name = "e2e"
sha256 = "{hashlib.sha256(KEY.encode()).hexdigest()}"
scopes = ["*"]

[providers.primmo]
url = "{sandbox}/sandbox/primmo"
username = "{PRIMMO["username"]}"
api_key = {{ env = "E2E_PRIMMO_KEY" }}
password = {{ env = "E2E_PRIMMO_PASSWORD" }}
webhook_secret = {{ env = "E2E_PRIMMO_WEBHOOK" }}

[providers.pms]
url = "{sandbox}/sandbox/pms"
username = "{PMS["username"]}"
password = {{ env = "E2E_PMS_PASSWORD" }}

[providers.mycrm]
url = "{sandbox}/sandbox/mycrm"
api_key = {{ env = "E2E_MYCRM_KEY" }}
api_secret = {{ env = "E2E_MYCRM_SECRET" }}
[providers.mycrm.options]
token_url = "{Sandbox.options("mycrm", sandbox)["token_url"]}"
"""


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    sandbox_port, one, two = free_ports(3)
    sandbox = f"http://127.0.0.1:{sandbox_port}"
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if k not in ("PROPGATE_CONFIG", "PROPGATE_REDIS_URL")
        },
        "E2E_PRIMMO_KEY": PRIMMO["api_key"],
        "E2E_PRIMMO_PASSWORD": PRIMMO["password"],
        "E2E_PRIMMO_WEBHOOK": PRIMMO["webhook_secret"],
        "E2E_PMS_PASSWORD": PMS["password"],
        "E2E_MYCRM_KEY": MYCRM["api_key"],
        "E2E_MYCRM_SECRET": MYCRM["api_secret"],
    }
    with ExitStack() as stack:
        redis_server = stack.enter_context(RedisServer().running())
        config = tmp_path / "propgate.toml"
        config.write_text(_config(sandbox, redis_server.url), encoding="utf-8")
        stack.enter_context(
            running(["sandbox", "--port", str(sandbox_port)], f"{sandbox}/healthz", env)
        )
        gateways = []
        for port in (one, two):
            url = f"http://127.0.0.1:{port}"
            serve = ["serve", "--port", str(port), "--config", str(config)]
            stack.enter_context(running(serve, f"{url}/healthz", env))
            gateways.append(url)
        yield Deployment(sandbox, (gateways[0], gateways[1]))


def _scrape(gateway: str) -> str:
    response = httpx.get(f"{gateway}/metrics", headers={"X-API-Key": KEY})
    assert response.status_code == 200, response.text
    return response.text


async def _ask(http: httpx.AsyncClient, gateway: str, query: str) -> dict[str, Any]:
    response = await http.post(f"{gateway}/graphql", json={"query": query})
    body: dict[str, Any] = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


def test_a_hundred_queries_over_two_replicas_cost_one_token_request_per_provider(
    deployment: Deployment,
) -> None:
    for provider in TOKEN_PATHS:
        httpx.post(f"{deployment.sandbox}/sandbox/{provider}/_sandbox/requests/reset")

    async def crowd() -> list[dict[str, Any]]:
        async with httpx.AsyncClient(headers={"X-API-Key": KEY}, timeout=60) as http:
            return await asyncio.gather(
                *(_ask(http, deployment.gateways[n % 2], LANDLORDS) for n in range(100))
            )

    answers = asyncio.run(crowd())

    assert len(answers[0]["landlords"]["edges"]) == 5
    assert all(answer == answers[0] for answer in answers)
    # Identical reads in flight are coalesced per replica, so each replica's own count says
    # that both read from every provider, with the one token.
    scraped = [_scrape(gateway) for gateway in deployment.gateways]
    reads = [upstream_requests(text, ("data",)) for text in scraped]
    assert all(read[p] >= 1 for read in reads for p in TOKEN_PATHS), reads
    tokens = {p: deployment.count(p, "POST", paths) for p, paths in TOKEN_PATHS.items()}
    assert tokens == {"primmo": 1, "pms": 1, "mycrm": 1}
    fetches = {
        p: [metric(text, "propgate_token_fetches_total", provider=p) for text in scraped]
        for p in TOKEN_PATHS
    }
    assert {p: sum(counts) for p, counts in fetches.items()} == tokens, fetches


def _node(source_id: str) -> str:
    global_id = base64.urlsafe_b64encode(f"Tenant:primmo:{source_id}".encode()).decode()
    return f'{{ node(id: "{global_id}") {{ ... on Tenant {{ lastName }} }} }}'


def test_a_webhook_taken_by_one_replica_reaches_the_other(deployment: Deployment) -> None:
    one, two = deployment.gateways
    tenant_gets = {"/api/Tenants"}

    async def scenario() -> tuple[dict[str, Any], list[int], dict[str, Any]]:
        async with httpx.AsyncClient(headers={"X-API-Key": KEY}, timeout=30) as http:
            listed = await _ask(
                http,
                one,
                '{ tenants(first: 1, providers: ["primmo"]) { edges { node { sourceId } } } }',
            )
            tenant = listed["tenants"]["edges"][0]["node"]["sourceId"]
            gets = [deployment.count("primmo", "GET", tenant_gets)]
            await _ask(http, one, _node(tenant))
            gets.append(deployment.count("primmo", "GET", tenant_gets))
            await _ask(http, two, _node(tenant))
            gets.append(deployment.count("primmo", "GET", tenant_gets))
            async with websockets.connect(
                two.replace("http", "ws") + "/graphql",
                subprotocols=[Subprotocol("graphql-transport-ws")],
            ) as ws:
                await ws.send(
                    json.dumps({"type": "connection_init", "payload": {"X-API-Key": KEY}})
                )
                assert json.loads(await ws.recv())["type"] == "connection_ack"
                subscription = (
                    'subscription { entityChanged(providers: ["primmo"]) { kind sourceId '
                    "node { ... on Tenant { lastName } } } }"
                )
                await ws.send(
                    json.dumps({"id": "1", "type": "subscribe", "payload": {"query": subscription}})
                )
                await asyncio.sleep(0.5)
                edited = await http.post(
                    f"{deployment.sandbox}/sandbox/primmo/_sandbox/tenants/{tenant}",
                    json={"LastName": "Renommé-Ailleurs"},
                )
                assert edited.status_code == 200, edited.text
                delivery = json.dumps(
                    {"Id": int(tenant), "Entity": "Tenant", "Status": 1, "DatabaseName": "X"}
                )
                taken = await http.post(
                    f"{one}/webhooks/primmo",
                    content=delivery,
                    headers={WEBHOOK_HEADER: PRIMMO["webhook_secret"]},
                )
                assert taken.status_code == 200 and taken.json()["changes"] == 1, taken.text
                async with asyncio.timeout(10):
                    message = json.loads(await ws.recv())
            fresh = await _ask(http, two, _node(tenant))
            return message, gets, fresh

    message, gets, fresh = asyncio.run(scenario())

    change = message["payload"]["data"]["entityChanged"]
    assert change["kind"] == "UPDATED"
    assert change["node"] == {"lastName": "Renommé-Ailleurs"}
    assert gets[1] == gets[0] + 1 and gets[2] == gets[1], "the second replica read the cache"
    assert fresh == {"node": {"lastName": "Renommé-Ailleurs"}}
    lookups = [_cache_lookups(_scrape(gateway)) for gateway in (one, two)]
    assert lookups == [{"hit": 0, "miss": 2}, {"hit": 3, "miss": 0}]


def _cache_lookups(text: str) -> dict[str, float]:
    """Each replica counts its own lookups in the shared cache: the first read missed on the
    first replica, and so did its read of the record after the webhook evicted it (to tell
    what changed), which stored the fresh copy; the second replica hit the first copy, then
    the fresh one twice (its subscriber's load, and the read after)."""
    name = "propgate_entity_cache_lookups_total"
    tenants = {"provider": "primmo", "type": "Tenant"}
    return {result: metric(text, name, result=result, **tenants) for result in ("hit", "miss")}
