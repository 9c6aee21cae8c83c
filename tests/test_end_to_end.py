"""`gateway serve` as a user runs it: a real process on loopback, the sandbox behind it."""

from __future__ import annotations

import httpx

from gateway.edge.callers import DEV_KEY

KEY = {"X-API-Key": DEV_KEY}


def test_post_query_reaches_the_sandbox_over_http(live_gateway: str) -> None:
    httpx.post(f"{live_gateway}/sandbox/primmo/_sandbox/requests/reset")

    response = httpx.post(
        f"{live_gateway}/graphql",
        headers=KEY,
        json={"query": "{ buildings(first: 3) { edges { node { name units { unitCode } } } } }"},
        timeout=10,
    )

    assert response.status_code == 200
    body = response.json()
    assert "errors" not in body
    assert len(body["data"]["buildings"]["edges"]) == 3
    counted = httpx.get(f"{live_gateway}/sandbox/primmo/_sandbox/requests").json()
    paths = {item["path"] for item in counted["requests"]}
    assert {"/api/Buildings"} <= paths


def test_get_queries_work_and_graphiql_is_served_to_browsers(live_gateway: str) -> None:
    response = httpx.get(
        f"{live_gateway}/graphql",
        params={"query": "{ landlords(first: 1) { totalCount } }"},
        headers=KEY,
        timeout=10,
    )
    assert response.status_code == 200
    assert response.json()["data"]["landlords"]["totalCount"] > 0

    page = httpx.get(f"{live_gateway}/graphql", headers={"Accept": "text/html"}, timeout=10)
    assert page.status_code == 200 and "graphiql" in page.text.lower()


def test_a_malformed_body_or_query_is_an_error_not_a_crash(live_gateway: str) -> None:
    response = httpx.post(
        f"{live_gateway}/graphql",
        content=b"{not json",
        timeout=10,
        headers={**KEY, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"

    body = httpx.post(
        f"{live_gateway}/graphql", headers=KEY, json={"query": '{ node(id: "x") { nope } }'}
    ).json()
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
