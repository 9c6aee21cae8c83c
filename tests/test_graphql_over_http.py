"""GraphQL over HTTP: media types by `Accept`, the specification's status codes, and
cacheable GETs."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gateway.clock import ManualClock
from gateway.config import GatewaySettings, Settings
from gateway.edge.responses import GRAPHQL_RESPONSE, JSON, media_type_for
from gateway.sandbox import Sandbox
from tests.conftest import Client, error_codes, serving

LANDLORDS = "{ landlords(first: 2) { totalCount edges { node { name } } } }"
BUILDINGS = "{ buildings(first: 1) { totalCount } }"
ACKNOWLEDGE = (
    'mutation M { acknowledgeRelationships(input: {externalIds: ["zzz"]}) { errors { code } } }'
)
MUTATION_THEN_QUERY = ACKNOWLEDGE + " query A { a: __typename }"
TWO_QUERIES = "query A { a: __typename } query B { b: __typename }"
REQUEST_ERRORS = {
    "GRAPHQL_PARSE_FAILED": {"query": "{"},
    "GRAPHQL_VALIDATION_FAILED": {"query": "{ nope }"},
    "BAD_USER_INPUT": {"query": "query ($first: Int!) { landlords(first: $first) { totalCount } }"},
    "TOO_MANY_ALIASES": {"query": "{ " + " ".join(f"a{i}: __typename" for i in range(40)) + " }"},
    "SUBSCRIPTION_OVER_HTTP": {"query": "subscription { entityChanged { kind } }"},
    "OPERATION_RESOLUTION_FAILURE": {"query": TWO_QUERIES},
}


def settings_with(**gateway: Any) -> Settings:
    return Settings(gateway=GatewaySettings(subscribe_at_start=False, **gateway))


async def post(client: Client, body: dict[str, Any], accept: str = JSON) -> httpx.Response:
    return await client.http.post("/graphql", json=body, headers={"Accept": accept})


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        ("", JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        ("text/html", JSON),
        ("application/json", JSON),
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}, application/json;q=0.9", GRAPHQL_RESPONSE),
        (f"application/json, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
        (f"application/json, {GRAPHQL_RESPONSE};q=0.5", JSON),
        (f"{GRAPHQL_RESPONSE};q=0, */*", JSON),
        (f"{GRAPHQL_RESPONSE};q=oops, application/json", JSON),
    ],
)
def test_the_media_type_is_the_one_the_caller_prefers(accept: str, media_type: str) -> None:
    assert media_type_for(accept) == media_type


@pytest.mark.parametrize("code", sorted(REQUEST_ERRORS))
async def test_a_request_error_is_a_400_without_data_for_graphql_response_json(
    client: Client, code: str
) -> None:
    response = await post(client, REQUEST_ERRORS[code], GRAPHQL_RESPONSE)

    assert response.status_code == 400
    assert response.headers["content-type"] == GRAPHQL_RESPONSE
    assert "data" not in response.json()
    assert error_codes(response.json()) == [code]


@pytest.mark.parametrize("code", sorted(REQUEST_ERRORS))
async def test_a_request_error_is_a_200_without_data_for_application_json(
    client: Client, code: str
) -> None:
    response = await post(client, REQUEST_ERRORS[code], JSON)

    assert response.status_code == 200
    assert response.headers["content-type"] == JSON
    assert "data" not in response.json()
    assert error_codes(response.json()) == [code]


async def test_an_executed_operation_is_a_200_even_with_field_errors(client: Client) -> None:
    response = await post(client, {"query": '{ node(id: "nonsense") { id } }'}, GRAPHQL_RESPONSE)

    assert (response.status_code, response.headers["content-type"]) == (200, GRAPHQL_RESPONSE)
    assert response.json()["data"] == {"node": None}
    assert error_codes(response.json()) == ["INVALID_ID"]


async def test_a_get_without_errors_can_be_kept_and_revalidated_by_its_etag(
    client: Client,
) -> None:
    first = await client.http.get("/graphql", params={"query": LANDLORDS})
    again = await client.http.get(
        "/graphql", params={"query": LANDLORDS}, headers={"If-None-Match": first.headers["etag"]}
    )
    other = await client.http.get(
        "/graphql", params={"query": BUILDINGS}, headers={"If-None-Match": first.headers["etag"]}
    )
    posted = await client.http.post("/graphql", json={"query": LANDLORDS})

    assert first.status_code == 200 and first.json()["data"]["landlords"]["totalCount"] > 0
    assert first.headers["cache-control"] == "private, no-cache"
    assert "x-api-key" in first.headers["vary"].lower()
    assert (again.status_code, again.content) == (304, b"")
    assert again.headers["etag"] == first.headers["etag"]
    assert other.status_code == 200 and other.headers["etag"] != first.headers["etag"]
    assert "etag" not in posted.headers


async def test_a_get_with_errors_is_not_kept(client: Client) -> None:
    response = await client.http.get("/graphql", params={"query": '{ node(id: "x") { id } }'})

    assert error_codes(response.json()) == ["INVALID_ID"]
    assert response.headers["cache-control"] == "no-store" and "etag" not in response.headers


async def test_a_get_may_be_reused_for_the_configured_time(
    sandbox: Sandbox, clock: ManualClock
) -> None:
    async with serving(sandbox, clock, settings_with(get_max_age_seconds=30)) as client:
        response = await client.http.get("/graphql", params={"query": LANDLORDS})

    assert response.headers["cache-control"] == "private, max-age=30"


async def test_a_subscription_asking_for_a_multipart_stream_is_refused_not_run(
    client: Client,
) -> None:
    response = await post(
        client, REQUEST_ERRORS["SUBSCRIPTION_OVER_HTTP"], "multipart/mixed, application/json"
    )

    assert error_codes(response.json()) == ["SUBSCRIPTION_OVER_HTTP"]


@pytest.mark.parametrize(("accept", "status"), [(JSON, 200), (GRAPHQL_RESPONSE, 400)])
async def test_a_document_that_names_no_single_operation_runs_none(
    client: Client, accept: str, status: int
) -> None:
    """Found by a new user: with several operations and no `operationName`, Strawberry ran
    the first, a mutation included. GraphQL's GetOperation makes it a request error, as is a
    name no operation has (Strawberry's plain-text 400, whatever `Accept` said)."""
    refused = [
        await post(client, {"query": MUTATION_THEN_QUERY}, accept),
        await post(client, {"query": MUTATION_THEN_QUERY, "operationName": "Nope"}, accept),
        await post(client, {"query": "fragment F on Query { __typename }"}, accept),
        *[
            await client.http.get("/graphql", params={"query": text}, headers={"Accept": accept})
            for text in (TWO_QUERIES, MUTATION_THEN_QUERY)
        ],
    ]
    named = await post(client, {"query": MUTATION_THEN_QUERY, "operationName": "A"}, accept)
    got = await client.http.get(
        "/graphql", params={"query": TWO_QUERIES, "operationName": "B"}, headers={"Accept": accept}
    )

    for response in refused:
        assert response.status_code == status, response.text
        assert "data" not in response.json()
        assert error_codes(response.json()) == ["OPERATION_RESOLUTION_FAILURE"]
        assert "operation" in response.json()["errors"][0]["message"]
    assert refused[-1].headers["cache-control"] == "no-store"
    assert named.json() == {"data": {"a": "Query"}}
    assert got.json() == {"data": {"b": "Query"}}
    assert client.sandbox.states["leap"].count() == 0


@pytest.mark.parametrize("name", ["variables", "extensions"])
async def test_a_get_whose_query_string_member_is_not_json_is_told_which(
    client: Client, name: str
) -> None:
    """A GET carries no body: "Unable to parse request body as JSON" sent its caller looking
    in the wrong place."""
    response = await client.http.get(
        "/graphql", params={"query": "{ __typename }", name: "notjson"}
    )

    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert f"`{name}`" in error["message"] and "query string" in error["message"]


async def test_a_get_that_names_a_member_twice_runs_nothing(client: Client) -> None:
    """`?query=A&query=B` ran B: which one the caller meant is not the gateway's to guess."""
    response = await client.http.get(
        "/graphql", params=[("query", "{ __typename }"), ("query", "{ providers { name } }")]
    )

    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST" and "`query`" in error["message"]
