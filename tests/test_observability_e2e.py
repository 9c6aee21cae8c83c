"""`gateway serve` as operators run it: `/metrics` over HTTP against the sandbox's own counters,
and the process's log, one JSON object per line."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import httpx

from gateway.edge.callers import DEV_KEY
from gateway.sandbox import Sandbox
from gateway.tools.loopback import free_port, running
from tests.metrics_reading import upstream_requests

PROVIDERS = ("primmo", "pms", "mycrm", "leap", "scom")
EVERY_PROVIDER = """query Everything {
  landlords(first: 30) { edges { node { name buildings { name units { unitCode } } } } }
  relationships(first: 5) { edges { node { role } } }
}"""


def test_metrics_over_http_equal_the_sandbox_counters_and_the_log_is_json(tmp_path: Path) -> None:
    config = tmp_path / "propgate.toml"
    # No start-up webhook subscriptions or links rebuilt: the counts are this test's queries.
    config.write_text(
        "[gateway]\nsubscribe_at_start = false\n[links]\nrebuild_at_start = false\n",
        encoding="utf-8",
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "gateway.log"
    with (
        log_path.open("wb") as log,
        running(
            # DEBUG: the sandbox's own request lines, which show the id it received.
            ["serve", "--port", str(port), "--config", str(config), "--log-level", "debug"],
            f"{url}/healthz",
            seconds=30,
            log=log,
        ),
        httpx.Client(base_url=url, headers={"X-API-Key": DEV_KEY}, timeout=20) as http,
    ):
        for request_id in ("e2e-first", "e2e-second"):
            answer = http.post(
                "/graphql",
                json={"query": EVERY_PROVIDER},
                headers={"X-Request-ID": request_id},
            )
            assert answer.status_code == 200 and "errors" not in answer.json(), answer.text
            assert answer.headers["X-Request-ID"] == request_id
        refused = http.post(
            "/graphql",
            json={"query": '{ node(id: "not-an-id") { id } }'},
            headers={"X-Request-ID": "e2e-refused"},
        )
        assert refused.json()["errors"][0]["extensions"]["code"] == "INVALID_ID"
        metrics = http.get("/metrics").text
        counted = {
            name: http.get(f"/sandbox/{name}/_sandbox/requests").json() for name in PROVIDERS
        }

    received = Counter({name: counted[name]["total"] for name in PROVIDERS})
    token_paths = {name: state.token_paths for name, state in Sandbox(seed=7).states.items()}
    tokens = Counter(
        {
            name: sum(
                item["count"]
                for item in counted[name]["requests"]
                if item["path"] in token_paths[name]
            )
            for name in PROVIDERS
        }
    )
    assert all(received.values()), received
    assert tokens["primmo"] and tokens["pms"] and tokens["mycrm"], tokens
    assert upstream_requests(metrics) == received
    assert upstream_requests(metrics, ("token",)) == tokens

    lines = [json.loads(line) for line in log_path.read_text(encoding="utf-8").splitlines()]
    fields = {"time", "level", "logger", "message", "request_id"}
    assert lines and all(fields <= line.keys() for line in lines)
    assert not [line for line in lines if line["logger"] == "httpx"], "URLs carry filter text"
    refusal = [line for line in lines if line["logger"] == "gateway.graphql"]
    assert [line["request_id"] for line in refusal] == ["e2e-refused"]
    first = [line for line in lines if line["request_id"] == "e2e-first"]
    access = [line["message"] for line in first if line["logger"] == "uvicorn.access"]
    assert any("POST /graphql" in message for message in access)
    assert any("/sandbox/" in message for message in access), "the providers saw the same id"
