"""Landlord onboarding across real processes: the providers outlive a gateway restart.

`gateway sandbox` serves the providers in one process; `gateway serve`, configured
with their URLs as if they were real, runs in another and is restarted midway.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from gateway.sandbox.scom import CREDENTIALS
from gateway.tools.loopback import free_ports, running

KEY = "e2e-caller-key"
CALLBACK_KEY = "e2e-callback-key"


@pytest.fixture
def ports() -> tuple[int, int]:
    sandbox_port, gateway_port = free_ports(2)
    return sandbox_port, gateway_port


@pytest.fixture
def sandbox_process(ports: tuple[int, int]) -> Iterator[str]:
    sandbox_port, gateway_port = ports
    callback = f"http://127.0.0.1:{gateway_port}/webhooks/scom?key={CALLBACK_KEY}"
    with running(
        ["sandbox", "--port", str(sandbox_port), "--callback-url", callback],
        f"http://127.0.0.1:{sandbox_port}/healthz",
    ):
        yield f"http://127.0.0.1:{sandbox_port}/sandbox/scom"


def _ask(gateway: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = httpx.post(
        f"{gateway}/graphql",
        json={"query": query, "variables": variables},
        headers={"X-API-Key": KEY},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    return body["data"]  # type: ignore[no-any-return]


def test_a_landlord_onboarded_before_a_restart_is_readable_after_it(
    tmp_path: Path, ports: tuple[int, int], sandbox_process: str
) -> None:
    _, gateway_port = ports
    vault = tmp_path / "vault.sqlite3"
    config = tmp_path / "propgate.toml"
    config.write_text(
        f"""
[[auth.api_keys]]
name = "e2e"
sha256 = "{hashlib.sha256(KEY.encode()).hexdigest()}"
scopes = ["*"]

[vault]
path = "{vault}"

[providers.scom]
url = "{sandbox_process}"
api_token = {{ env = "E2E_SCOM_TOKEN" }}
webhook_secret = {{ env = "E2E_SCOM_CALLBACK_KEY" }}
""",
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "E2E_SCOM_TOKEN": CREDENTIALS["api_token"],
        "E2E_SCOM_CALLBACK_KEY": CALLBACK_KEY,
        "PROPGATE_VAULT_KEY": Fernet.generate_key().decode(),
    }
    gateway = f"http://127.0.0.1:{gateway_port}"
    serve = ["serve", "--port", str(gateway_port), "--config", str(config)]
    with running(serve, f"{gateway}/healthz", env):
        created = _ask(
            gateway,
            'mutation { createLandlord(input: {name: "Gestion Redémarrage", companyType: '
            'DEVELOPER, billingAddress: "9 rue Sainte-Anne", billingPostalCode: "G1R 3X2", '
            'businessNumber: "987654321"}) { landlord { id sourceId status } errors { code } } }',
        )["createLandlord"]["landlord"]
        verified = httpx.post(
            f"{sandbox_process}/_sandbox/verify", params={"landlord": created["sourceId"]}
        ).json()
        assert verified["callback"] == {"delivered": True, "status": 200}
        httpx.post(
            f"{sandbox_process}/_sandbox/landlords/{created['sourceId']}/properties",
            params={"name": "Le Vieux-Port"},
        )

    with running(serve, f"{gateway}/healthz", env):
        data = _ask(
            gateway,
            "query($id: ID!) { node(id: $id) { ... on Landlord { status buildings { name } } } }",
            {"id": created["id"]},
        )

    assert data["node"] == {"status": "ACTIVE", "buildings": [{"name": "Le Vieux-Port"}]}
    token = httpx.get(f"{sandbox_process}/_sandbox/landlords/{created['sourceId']}").json()[
        "apiToken"
    ]
    raw = vault.read_bytes()
    assert token and raw and b"scom" in raw
    assert token.encode() not in raw and CREDENTIALS["api_token"].encode() not in raw
