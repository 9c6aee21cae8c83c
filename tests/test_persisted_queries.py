"""Automatic persisted queries (Apollo's protocol) and the safelist, over HTTP and
websockets."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main
from gateway.clock import ManualClock
from gateway.config import PersistedQuerySettings
from gateway.edge.app import create_app
from gateway.edge.callers import DEV_KEY
from gateway.edge.persisted.queries import sha256_of
from gateway.edge.persisted.safelist import manifest_of
from gateway.edge.responses import GRAPHQL_RESPONSE
from gateway.errors import ConfigError
from gateway.sandbox import Sandbox
from tests.conftest import Client, Socket, error_codes, serving
from tests.test_graphql_over_http import (
    BUILDINGS,
    LANDLORDS,
    MUTATION_THEN_QUERY,
    post,
    settings_with,
)


@pytest.fixture
async def apq(sandbox: Sandbox, clock: ManualClock) -> AsyncIterator[Client]:
    async with serving(sandbox, clock, settings_with()) as served:
        yield served


def persisted(query: str | None, digest: str, version: Any = 1) -> dict[str, Any]:
    extensions = {"persistedQuery": {"version": version, "sha256Hash": digest}}
    return {"query": query, "extensions": extensions} if query else {"extensions": extensions}


async def test_an_unknown_hash_asks_for_the_query_then_the_hash_alone_runs_it(
    apq: Client,
) -> None:
    digest = sha256_of(LANDLORDS)

    unknown = await post(apq, persisted(None, digest))
    unknown_strict = await post(apq, persisted(None, digest), GRAPHQL_RESPONSE)
    registered = await post(apq, persisted(LANDLORDS, digest))
    by_hash = await apq.http.get(
        "/graphql", params={"extensions": json.dumps(persisted(None, digest)["extensions"])}
    )

    assert unknown.status_code == 200 and "data" not in unknown.json()
    assert unknown.json()["errors"][0]["message"] == "PersistedQueryNotFound"
    assert error_codes(unknown.json()) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert unknown_strict.status_code == 404
    assert error_codes(unknown_strict.json()) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert registered.json()["data"]["landlords"]["totalCount"] > 0
    assert by_hash.status_code == 200 and by_hash.json() == registered.json()
    assert "etag" in by_hash.headers


async def test_a_hash_alone_asked_for_as_html_still_needs_credentials(apq: Client) -> None:
    """A browser-like GET with no `query` is GraphiQL's page only when it names no persisted
    query either: otherwise it runs an operation, and the caller must be authenticated."""
    query = "{ __typename }"
    await post(apq, persisted(query, sha256_of(query)))
    extensions = json.dumps(persisted(None, sha256_of(query))["extensions"])

    anonymous = await apq.http.get(
        "/graphql",
        params={"extensions": extensions},
        headers={"Accept": "text/html", "X-API-Key": ""},
    )
    page = await apq.http.get("/graphql", headers={"Accept": "text/html", "X-API-Key": ""})

    assert anonymous.status_code == 401
    assert error_codes(anonymous.json()) == ["UNAUTHENTICATED"]
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (persisted(LANDLORDS, sha256_of(BUILDINGS)), "PERSISTED_QUERY_HASH_MISMATCH"),
        (
            persisted(LANDLORDS, sha256_of(LANDLORDS), version=2),
            "PERSISTED_QUERY_VERSION_NOT_SUPPORTED",
        ),
        (persisted(LANDLORDS, "not-a-hash"), "BAD_REQUEST"),
        (persisted(LANDLORDS, sha256_of(LANDLORDS), version="1"), "BAD_REQUEST"),
        (persisted(LANDLORDS, sha256_of(LANDLORDS), version=True), "BAD_REQUEST"),
        (persisted(LANDLORDS, sha256_of(LANDLORDS), version=1.0), "BAD_REQUEST"),
        ({"query": LANDLORDS, "extensions": {"persistedQuery": 1}}, "BAD_REQUEST"),
    ],
)
async def test_a_wrong_persisted_query_runs_nothing_and_registers_nothing(
    apq: Client, body: dict[str, Any], code: str
) -> None:
    refused = await post(apq, body, GRAPHQL_RESPONSE)
    later = await post(apq, persisted(None, sha256_of(LANDLORDS)))

    assert refused.status_code == 400 and "data" not in refused.json()
    assert error_codes(refused.json()) == [code]
    assert error_codes(later.json()) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert sum(state.count() for state in apq.sandbox.states.values()) == 0


async def test_the_store_keeps_the_most_recent_queries_within_its_size(
    sandbox: Sandbox, clock: ManualClock
) -> None:
    store = PersistedQuerySettings(store_characters=len(LANDLORDS) + len(BUILDINGS) - 1)
    async with serving(sandbox, clock, settings_with(persisted_queries=store)) as client:
        await post(client, persisted(LANDLORDS, sha256_of(LANDLORDS)))
        await post(client, persisted(BUILDINGS, sha256_of(BUILDINGS)))
        older = await post(client, persisted(None, sha256_of(LANDLORDS)))
        newer = await post(client, persisted(None, sha256_of(BUILDINGS)))

    assert error_codes(older.json()) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert newer.json()["data"]["buildings"]["totalCount"] > 0


def manifest(tmp_path: Path, *queries: str, apollo: bool = True) -> str:
    if apollo:
        operations = [
            {"id": sha256_of(q), "name": "Q", "type": "query", "body": q} for q in queries
        ]
        content: Any = {
            "format": "apollo-persisted-query-manifest",
            "version": 1,
            "operations": operations,
        }
    else:
        content = {sha256_of(q): q for q in queries}
    path = tmp_path / "safelist.json"
    path.write_text(json.dumps(content), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("apollo", [True, False], ids=["apollo-manifest", "hash-to-query"])
async def test_with_a_safelist_only_listed_operations_run(
    sandbox: Sandbox, clock: ManualClock, tmp_path: Path, apollo: bool
) -> None:
    store = PersistedQuerySettings(safelist=manifest(tmp_path, LANDLORDS, apollo=apollo))
    async with serving(sandbox, clock, settings_with(persisted_queries=store)) as client:
        by_hash = await post(client, persisted(None, sha256_of(LANDLORDS)))
        by_text = await post(client, {"query": LANDLORDS})
        unlisted = await post(client, {"query": BUILDINGS}, GRAPHQL_RESPONSE)
        registering = await post(client, persisted(BUILDINGS, sha256_of(BUILDINGS)))
        after = await post(client, persisted(None, sha256_of(BUILDINGS)))

    assert by_hash.json()["data"]["landlords"]["totalCount"] > 0
    assert by_text.json() == by_hash.json()
    assert unlisted.status_code == 403
    for refused in (unlisted, registering, after):
        assert error_codes(refused.json()) == ["PERSISTED_QUERY_NOT_IN_LIST"]


async def test_a_safelist_entry_whose_id_is_not_its_hash_stops_the_start(tmp_path: Path) -> None:
    path = tmp_path / "safelist.json"
    path.write_text(json.dumps({sha256_of(BUILDINGS): LANDLORDS}), encoding="utf-8")

    with pytest.raises(ConfigError, match="not the SHA-256"):
        create_app(settings_with(persisted_queries=PersistedQuerySettings(safelist=str(path))))


def about(message: dict[str, Any], operation: str) -> bool:
    return bool(json.loads(message.get("text") or "{}").get("id") == operation)


async def test_with_a_safelist_websockets_run_only_listed_operations_too(
    sandbox: Sandbox, clock: ManualClock, tmp_path: Path
) -> None:
    store = PersistedQuerySettings(safelist=manifest(tmp_path, LANDLORDS))
    async with serving(sandbox, clock, settings_with(persisted_queries=store)) as client:
        socket = Socket(client.http._transport.app, "graphql-transport-ws")  # type: ignore[attr-defined]
        await socket.inbox.put({"type": "websocket.connect"})
        await socket.say({"type": "connection_init", "payload": {"X-API-Key": DEV_KEY}})
        await socket.until(lambda m: '"connection_ack"' in (m.get("text") or ""))
        await socket.say({"id": "listed", "type": "subscribe", "payload": {"query": LANDLORDS}})
        await socket.say({"id": "other", "type": "subscribe", "payload": {"query": BUILDINGS}})
        listed = await socket.until(
            lambda m: '"id":"listed"' in (m.get("text") or "").replace(" ", "")
        )
        other = await socket.until(
            lambda m: '"id":"other"' in (m.get("text") or "").replace(" ", "")
        )
        await socket.close()

    assert json.loads(listed["text"])["payload"]["data"]["landlords"]["totalCount"] > 0
    refusal = json.loads(other["text"])
    assert refusal["type"] == "error"
    assert [error["extensions"]["code"] for error in refusal["payload"]] == [
        "PERSISTED_QUERY_NOT_IN_LIST"
    ]


async def test_a_listed_operation_runs_in_other_whitespace_but_not_changed(
    sandbox: Sandbox, clock: ManualClock, tmp_path: Path
) -> None:
    store = PersistedQuerySettings(safelist=manifest(tmp_path, LANDLORDS))
    reindented = "\n    # the same operation\n" + LANDLORDS.replace(" ", "\n      ")
    changed = LANDLORDS.replace("first: 2", "first: 3")
    async with serving(sandbox, clock, settings_with(persisted_queries=store)) as client:
        same = await post(client, {"query": reindented})
        other = await post(client, {"query": changed})

    assert same.json()["data"]["landlords"]["totalCount"] > 0
    assert error_codes(other.json()) == ["PERSISTED_QUERY_NOT_IN_LIST"]


def test_gateway_safelist_lists_operation_files_by_their_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.graphql").write_text(LANDLORDS, encoding="utf-8")
    (tmp_path / "b.graphql").write_text(f"query Some {BUILDINGS}", encoding="utf-8")

    main(["safelist", str(tmp_path / "a.graphql"), str(tmp_path / "b.graphql")])
    written = json.loads(capsys.readouterr().out)
    (tmp_path / "broken.graphql").write_text("{", encoding="utf-8")
    with pytest.raises(SystemExit, match="broken.graphql does not parse"):
        main(["safelist", str(tmp_path / "broken.graphql")])
    (tmp_path / "invalid.graphql").write_text("query D { nope }", encoding="utf-8")
    with pytest.raises(SystemExit, match="invalid.graphql: Cannot query field 'nope'"):
        main(["safelist", str(tmp_path / "a.graphql"), str(tmp_path / "invalid.graphql")])
    (tmp_path / "again.graphql").write_text(LANDLORDS, encoding="utf-8")
    with pytest.raises(SystemExit, match="again.graphql holds the same operation as"):
        main(["safelist", str(tmp_path / "a.graphql"), str(tmp_path / "again.graphql")])
    with pytest.raises(SystemExit, match="a.graphql holds the same operation as"):
        main(["safelist", str(tmp_path / "a.graphql"), str(tmp_path / "a.graphql")])

    assert [(o["id"], o["name"], o["type"]) for o in written["operations"]] == [
        (sha256_of(LANDLORDS), "", "query"),
        (sha256_of(f"query Some {BUILDINGS}"), "Some", "query"),
    ]


async def test_a_persisted_document_of_several_operations_runs_only_the_one_named(
    apq: Client,
) -> None:
    digest = sha256_of(MUTATION_THEN_QUERY)
    hash_alone = persisted(None, digest)

    registering = await post(apq, persisted(MUTATION_THEN_QUERY, digest))
    by_hash = await post(apq, hash_alone)
    by_get = await apq.http.get(
        "/graphql", params={"extensions": json.dumps(hash_alone["extensions"])}
    )
    named = await post(apq, {**hash_alone, "operationName": "A"})

    for refused in (registering, by_hash, by_get):
        assert error_codes(refused.json()) == ["OPERATION_RESOLUTION_FAILURE"], refused.text
    assert named.json() == {"data": {"a": "Query"}}
    assert apq.sandbox.states["leap"].count() == 0


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("query A { __typename } query B { __typename }", "holds 2 operations"),
        ("fragment F on Query { __typename }", "holds no operation"),
    ],
)
def test_gateway_safelist_takes_one_operation_per_file(
    tmp_path: Path, text: str, said: str
) -> None:
    """A file of two operations was listed under the first one's name, and a client sending
    its hash without an operationName got neither run: each file holds one operation."""
    path = tmp_path / "operation.graphql"
    path.write_text(text)

    with pytest.raises(ConfigError, match=said):
        manifest_of([path])
