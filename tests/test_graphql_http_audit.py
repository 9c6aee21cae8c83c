"""The GraphQL-over-HTTP audit suite (npm `graphql-http`, `serverAudits`) against a live
gateway on the sandbox: every MUST and every SHOULD passes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from gateway.edge.callers import DEV_KEY
from tests.tools import npm_package

GRAPHQL_HTTP = "graphql-http@1.23.1"
SCRIPT = Path(__file__).with_name("graphql_http_audit.mjs")


@pytest.fixture(scope="session")
def graphql_http() -> Path:
    """Before the gateway starts: without Node.js there is nothing to start it for."""
    return npm_package(GRAPHQL_HTTP)


def test_every_must_and_should_audit_passes(graphql_http: Path, live_gateway: str) -> None:
    ran = subprocess.run(
        ["node", str(SCRIPT), str(graphql_http), f"{live_gateway}/graphql", DEV_KEY],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    results = [json.loads(line) for line in ran.stdout.splitlines()]

    for result in results:
        print(result["status"], result["id"], result["name"], result["reason"])  # noqa: T201
    failed = [
        f"{result['id']} {result['name']}: {result['reason']}"
        for result in results
        if result["status"] != "ok" and result["name"].startswith(("MUST", "SHOULD"))
    ]
    assert sum(result["name"].startswith("MUST") for result in results) >= 13
    assert failed == []
