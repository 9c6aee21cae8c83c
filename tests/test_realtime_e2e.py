"""Real time across real servers: uvicorn on loopback, a real websocket client, a real outage."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import websockets
from websockets.typing import Subprotocol

from gateway.edge.callers import DEV_KEY
from gateway.sandbox.primmo import CREDENTIALS as PRIMMO
from gateway.sandbox.primmo import token_request
from gateway.tools.loopback import free_port, free_ports, running

KEY = {"X-API-Key": DEV_KEY}
SUBSCRIBE = (
    "subscription { entityChanged(types: [TENANT]) { kind sourceId "
    "node { ... on Tenant { lastName } } } }"
)


def _primmo(base: str) -> httpx.Client:
    http = httpx.Client(base_url=base, timeout=10)
    token = http.post(**token_request(""))
    http.headers["Authorization"] = f"Bearer {token.json()}"
    return http


def _create_tenant(http: httpx.Client, last_name: str) -> int:
    unit = http.get("/api/Units", params={"$top": "1"}).json()["value"][0]
    created = http.post(
        "/api/Tenants",
        json={
            **{k: unit[k] for k in ("CompanyNo", "DivisionNo", "BuildingCode", "UnitCode")},
            "LastName": last_name,
            "FirstName": "E2E",
        },
    )
    assert created.status_code == 201
    return int(created.json()["Id"])


def _primmo_provider(sandbox: str) -> str:
    """Primmo configured as a real provider at the standalone sandbox, secrets from the env."""
    return f"""
[providers.primmo]
url = "{sandbox}/sandbox/primmo"
username = "{PRIMMO["username"]}"
api_key = {{ env = "E2E_PRIMMO_KEY" }}
password = {{ env = "E2E_PRIMMO_PASSWORD" }}
webhook_secret = {{ env = "E2E_PRIMMO_WEBHOOK" }}
"""


def _primmo_env() -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if k != "PROPGATE_CONFIG"},
        "E2E_PRIMMO_KEY": PRIMMO["api_key"],
        "E2E_PRIMMO_PASSWORD": PRIMMO["password"],
        "E2E_PRIMMO_WEBHOOK": PRIMMO["webhook_secret"],
    }


def _wait_for_subscription(primmo: httpx.Client) -> None:
    """The gateway subscribes beside its start-up; wait until Primmo has it."""
    deadline = time.monotonic() + 15
    while "Tenant" not in primmo.get("/api/subscribe").json():
        assert time.monotonic() < deadline, "the gateway never subscribed to Primmo"
        time.sleep(0.1)


def _primmo_tenant_gets(gateway: str) -> int:
    counted = httpx.get(f"{gateway}/sandbox/primmo/_sandbox/requests").json()["requests"]
    return sum(r["count"] for r in counted if (r["method"], r["path"]) == ("GET", "/api/Tenants"))


def test_a_tenant_created_in_primmo_reaches_a_websocket_subscriber(tmp_path: Path) -> None:
    port = free_port()
    gateway = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k != "PROPGATE_CONFIG"}
    config = tmp_path / "propgate.toml"
    config.write_text('[cache]\nttl = { "primmo.Tenant" = 300 }\n', encoding="utf-8")
    serve = ["serve", "--port", str(port), "--config", str(config)]
    with running(serve, f"{gateway}/healthz", env):
        primmo = _primmo(f"{gateway}/sandbox/primmo")
        _wait_for_subscription(primmo)

        async def scenario() -> tuple[dict[str, object], float]:
            async with websockets.connect(
                f"ws://127.0.0.1:{port}/graphql", subprotocols=[Subprotocol("graphql-transport-ws")]
            ) as ws:
                await ws.send(
                    json.dumps({"type": "connection_init", "payload": {"X-API-Key": DEV_KEY}})
                )
                assert json.loads(await ws.recv())["type"] == "connection_ack"
                await ws.send(
                    json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}})
                )
                await asyncio.sleep(0.3)
                started = time.monotonic()
                identifier = await asyncio.to_thread(_create_tenant, primmo, "Tremblay-E2E")
                async with asyncio.timeout(10):
                    while True:
                        message = json.loads(await ws.recv())
                        if message["type"] != "next":
                            continue
                        change = message["payload"]["data"]["entityChanged"]
                        if change["sourceId"] == str(identifier):
                            return change, time.monotonic() - started

        change, elapsed = asyncio.run(scenario())

        node = base64.urlsafe_b64encode(f"Tenant:primmo:{change['sourceId']}".encode()).decode()
        ask = {"query": f'{{ node(id: "{node}") {{ ... on Tenant {{ lastName }} }} }}'}
        read = [httpx.post(f"{gateway}/graphql", json=ask, headers=KEY).json() for _ in range(2)]
        before = _primmo_tenant_gets(gateway)
        primmo.post(f"/_sandbox/tenants/{change['sourceId']}", json={"LastName": "Renommé"})
        deadline = time.monotonic() + 10
        while httpx.get(f"{gateway}/sandbox/primmo/_sandbox/outbox").json()["pending"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        fresh = httpx.post(f"{gateway}/graphql", json=ask, headers=KEY).json()
        after = _primmo_tenant_gets(gateway)
        primmo.close()

    assert read[0] == read[1] == {"data": {"node": {"lastName": "Tremblay-E2E"}}}
    assert fresh == {"data": {"node": {"lastName": "Renommé"}}}
    assert after - before == 1
    assert change["kind"] == "CREATED"
    assert change["node"] == {"lastName": "Tremblay-E2E"}
    assert elapsed < 5, f"the change took {elapsed:.2f} s to arrive"


def test_changes_made_while_the_gateway_is_down_arrive_once_it_is_back(tmp_path: Path) -> None:
    sandbox_port, gateway_port = free_ports(2)
    sandbox = f"http://127.0.0.1:{sandbox_port}"
    gateway = f"http://127.0.0.1:{gateway_port}"
    key = "realtime-e2e-key"
    config = tmp_path / "propgate.toml"
    config.write_text(
        f"""
[gateway]
public_url = "{gateway}"

[[auth.api_keys]]
name = "e2e"
sha256 = "{hashlib.sha256(key.encode()).hexdigest()}"
scopes = ["*"]

{_primmo_provider(sandbox)}""",
        encoding="utf-8",
    )
    env = _primmo_env()
    serve = ["serve", "--port", str(gateway_port), "--config", str(config)]
    with running(["sandbox", "--port", str(sandbox_port)], f"{sandbox}/healthz", env):
        with running(serve, f"{gateway}/healthz", env):
            primmo = _primmo(f"{sandbox}/sandbox/primmo")
            _wait_for_subscription(primmo)
        created = [_create_tenant(primmo, f"Absent-{n}") for n in range(3)]
        primmo.close()
        time.sleep(10)
        with running(serve, f"{gateway}/healthz", env):
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                outbox = httpx.get(f"{sandbox}/sandbox/primmo/_sandbox/outbox").json()
                if outbox["pending"] == 0:
                    break
                time.sleep(0.2)

    assert len(created) == 3
    assert outbox["delivered"] == 3 and outbox["gaveUp"] == 0 and outbox["pending"] == 0
    assert outbox["attempts"] > 3


def test_an_operator_sees_and_changes_the_subscriptions(tmp_path: Path) -> None:
    sandbox_port = free_port()
    sandbox = f"http://127.0.0.1:{sandbox_port}"
    config = tmp_path / "propgate.toml"
    config.write_text(
        f"""
{_primmo_provider(sandbox)}""",
        encoding="utf-8",
    )
    env = _primmo_env()

    def webhooks(*args: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "gateway", "webhooks", *args, "--config", str(config)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout

    with running(["sandbox", "--port", str(sandbox_port)], f"{sandbox}/healthz", env):
        before = webhooks("status")
        subscribed = webhooks("subscribe", "--url", "http://127.0.0.1:9")
        again = webhooks("subscribe", "--url", "http://127.0.0.1:9")
        after = webhooks("unsubscribe")

    assert before == "primmo: -\n"
    assert (
        subscribed
        == again
        == ("primmo: Building, Invoice, ServiceCall, ServiceCallDetail, Supplier, Tenant, Unit\n")
    )
    assert after == "primmo: -\n"
