"""`gateway serve` through a whole working session, then every line of its log searched for
every secret the session used: none is there.

The session: queries over POST and GET whose variables name a tenant, a variable of the wrong
type (GraphQL's own message quotes its value), `createTenant`, a SCOM landlord created,
verified and activated by SCOM's callback to `/webhooks/scom?key=<secret>`, Primmo's delivery
with its key and with a forged one, pms's signed delivery, a JWT caller, and a websocket that
authenticates in `connection_init`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import orjson
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from gateway.connectors.primmo import WEBHOOK_HEADER
from gateway.observability.logs import REDACTED
from gateway.sandbox import PROVIDERS
from gateway.tools.loopback import free_port, running

CALLER_KEY = f"e2e-caller-{secrets.token_hex(8)}"
JWT_SECRET = f"e2e-jwt-secret-{secrets.token_hex(16)}"
FORGED_KEY = f"e2e-forged-{secrets.token_hex(8)}"
PRIVATE_NAME = f"Confidentielle{secrets.token_hex(4)}"
BY_NAME = (
    "query ByName($name: String!) { tenants(first: 3, filter: {nameContains: $name}) "
    "{ totalCount } }"
)
WRONG_TYPE = "query($n: Int) { tenants(first: $n) { totalCount } }"
CREATE_TENANT = (
    "mutation($input: CreateTenantInput!) { createTenant(input: $input) { errors { code } } }"
)
CREATE_LANDLORD = (
    "mutation($input: CreateLandlordInput!) { createLandlord(input: $input) "
    "{ landlord { sourceId } errors { code } } }"
)


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "propgate.toml"
    config.write_text(
        f"""
[[auth.api_keys]]
name = "e2e"
sha256 = "{hashlib.sha256(CALLER_KEY.encode()).hexdigest()}"
scopes = ["*"]

[auth.jwt]
algorithm = "HS256"
secret = {{ env = "E2E_JWT_SECRET" }}
""",
        encoding="utf-8",
    )
    return config


def _ask(http: httpx.Client, query: str, variables: dict[str, Any] | None = None) -> Any:
    response = http.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def _ask_by_name(http: httpx.Client) -> str:
    """A real tenant's name, asked for over POST and over GET, where the variables are in the
    URL; then given to a variable of the wrong type, which GraphQL's message quotes."""
    first = _ask(http, "{ tenants(first: 1) { edges { node { lastName } } } }")
    name: str = first["tenants"]["edges"][0]["node"]["lastName"]
    _ask(http, BY_NAME, {"name": name})
    params = {"query": BY_NAME, "variables": json.dumps({"name": name}), "operationName": "ByName"}
    assert http.get("/graphql", params=params).json()["data"]["tenants"]["totalCount"] > 0
    wrong = http.post("/graphql", json={"query": WRONG_TYPE, "variables": {"n": name}}).json()
    assert name in wrong["errors"][0]["message"], "the caller's own message quotes it"
    return name


def _create_tenant(http: httpx.Client) -> None:
    units = _ask(http, '{ units(first: 1, providers: ["primmo"]) { edges { node { id } } } }')
    unit = units["units"]["edges"][0]["node"]["id"]
    person = {"unitId": unit, "firstName": PRIVATE_NAME, "lastName": PRIVATE_NAME}
    assert _ask(http, CREATE_TENANT, {"input": person})["createTenant"]["errors"] == []


def _onboard_landlord(http: httpx.Client) -> str:
    """SCOM's callback, `/webhooks/scom?key=<webhook secret>`, activates it; its token."""
    landlord = {
        "name": PRIVATE_NAME,
        "companyType": "DEVELOPER",
        "billingAddress": "1 rue Secrète",
        "billingPostalCode": "G1R 3X2",
        "businessNumber": "123456789",
    }
    created = _ask(http, CREATE_LANDLORD, {"input": landlord})["createLandlord"]["landlord"]
    verified = http.post("/sandbox/scom/_sandbox/verify", params={"landlord": created["sourceId"]})
    assert verified.json()["callback"] == {"delivered": True, "status": 200}
    token: str = http.get(f"/sandbox/scom/_sandbox/landlords/{created['sourceId']}").json()[
        "apiToken"
    ]
    assert token, "SCOM's callback should have activated the landlord"
    return token


def _deliver_webhooks(http: httpx.Client) -> str:
    """Primmo's with its key and with a forged one, a forged SCOM callback, and pms's signed
    delivery; the signature."""
    primmo = orjson.dumps({"Id": 1, "Entity": "Tenant", "Status": 1, "DatabaseName": "X"})
    key = PROVIDERS["primmo"].credentials["webhook_secret"]
    assert http.post("/webhooks/primmo", content=primmo, headers={WEBHOOK_HEADER: key}).is_success
    forged = http.post("/webhooks/primmo", content=primmo, headers={WEBHOOK_HEADER: FORGED_KEY})
    assert forged.status_code == 401
    assert http.post("/webhooks/scom", params={"key": FORGED_KEY}, json={}).status_code == 401
    event = {
        "event": "tenant.updated",
        "timestamp": datetime.now(UTC).isoformat(),
        "data": {"tenant_id": "ten_1", "property_id": "prop_2"},
        "webhook_id": "e2e-1",
    }
    pms = orjson.dumps(event)
    secret = PROVIDERS["pms"].credentials["webhook_secret"].encode()
    signature = hmac.new(secret, pms, hashlib.sha256).hexdigest()
    signed = {"X-Webhook-Signature": f"sha256={signature}"}
    assert http.post("/webhooks/pms", content=pms, headers=signed).is_success
    return signature


def _as_jwt_caller(url: str) -> str:
    claims = {"sub": "svc", "scope": "property:read", "exp": int(time.time()) + 300}
    bearer = jwt.encode(claims, JWT_SECRET, "HS256")
    answer = httpx.post(
        f"{url}/graphql",
        json={"query": "{ buildings(first: 1) { totalCount } }"},
        headers={"Authorization": f"Bearer {bearer}"},
        timeout=20,
    )
    assert answer.status_code == 200 and "errors" not in answer.json(), answer.text
    return bearer


def _over_a_websocket(url: str) -> None:
    """Authenticated in `connection_init`, with a query string a careless client might add."""
    address = url.replace("http://", "ws://") + f"/graphql?token={FORGED_KEY}"
    with connect(address, subprotocols=[Subprotocol("graphql-transport-ws")]) as socket:
        socket.send(json.dumps({"type": "connection_init", "payload": {"X-API-Key": CALLER_KEY}}))
        assert json.loads(socket.recv(timeout=10))["type"] == "connection_ack"


def test_no_secret_and_no_variable_reaches_any_log_line(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "gateway.log"
    env = {**os.environ, "E2E_JWT_SECRET": JWT_SECRET}
    serve = ["serve", "--port", str(port), "--config", str(_config(tmp_path))]
    with (
        log_path.open("wb") as log,
        running(serve, f"{url}/healthz", env, seconds=30, log=log),
        httpx.Client(base_url=url, headers={"X-API-Key": CALLER_KEY}, timeout=20) as http,
    ):
        name = _ask_by_name(http)
        _create_tenant(http)
        landlord_token = _onboard_landlord(http)
        signature = _deliver_webhooks(http)
        bearer = _as_jwt_caller(url)
        _over_a_websocket(url)

    text = log_path.read_text(encoding="utf-8")
    lines = [json.loads(line) for line in text.splitlines()]
    provided = {  # a username says who the gateway is, not what lets it in
        value
        for provider in PROVIDERS.values()
        for key, value in provider.credentials.items()
        if key != "username"
    }
    learned = {name, landlord_token, signature, bearer}
    used = provided | learned | {CALLER_KEY, JWT_SECRET, FORGED_KEY, PRIVATE_NAME}
    assert not [secret for secret in used if secret in text]
    assert "eyJ" not in text and "Bearer " not in text

    access = [line["message"] for line in lines if line["logger"] == "uvicorn.access"]
    assert any(f"POST /webhooks/scom?key={REDACTED}" in message for message in access), access
    assert any(
        f"GET /graphql?query={REDACTED}&variables={REDACTED}&operationName=ByName" in message
        for message in access
    ), access
    socket = [line["message"] for line in lines if "WebSocket" in line["message"]]
    assert socket and all(f"/graphql?token={REDACTED}" in message for message in socket)
    refusals = [line["message"] for line in lines if line["logger"] == "gateway.graphql"]
    assert any(message.endswith(": BAD_USER_INPUT") for message in refusals), refusals
