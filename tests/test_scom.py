"""SCOM through the gateway: landlords, their buildings with their own tokens, onboarding."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from gateway.clock import ManualClock
from gateway.config import Traffic
from gateway.connectors.base import ListRequest
from gateway.connectors.scom import ScomConnector
from gateway.errors import ConfigError, GatewayError
from gateway.model import Entity, NewLandlord, Selection
from gateway.sandbox.scom import CREDENTIALS, PAYLOAD_KEYS
from gateway.state.vault import Vault
from gateway.upstream.client import Upstream
from tests.conftest import Client

CREATE = (
    'mutation { createLandlord(input: {name: "Gestion Nouvelle", companyType: '
    'PROPERTY_MANAGEMENT, billingAddress: "1 rue du Port", billingPostalCode: "G1K 1A1", '
    'businessNumber: "123456789"}) { landlord { id sourceId status } errors { code } } }'
)
ACTIVATE = (
    "mutation($id: ID!, $token: String) { activateLandlord(input: {landlordId: $id, "
    "activationToken: $token}) { landlord { status } errors { code } } }"
)
LANDLORD = (
    "query($id: ID!) { node(id: $id) { ... on Landlord { name status "
    "buildings { name provider } } } }"
)


@pytest.fixture
async def admin(client: Client) -> AsyncIterator[httpx.AsyncClient]:
    """The SCOM sandbox's admin routes, as a SCOM administrator would use them."""
    async with httpx.AsyncClient(
        transport=client.sandbox.transport("scom"), base_url="http://127.0.0.1/sandbox/scom"
    ) as http:
        yield http


async def test_scom_landlords_list_with_their_buildings(client: Client) -> None:
    data = await client.data(
        '{ landlords(first: 3, providers: ["scom"]) { totalCount edges { node { name '
        "buildings { name provider } } } } }"
    )

    world = client.sandbox.world
    owners = {b.landlord_id for b in world.buildings_of("scom")}
    assert data["landlords"]["totalCount"] == len(owners)
    for edge in data["landlords"]["edges"]:
        assert edge["node"]["buildings"]
        assert {b["provider"] for b in edge["node"]["buildings"]} == {"scom"}


async def test_lookups_by_id_are_batched_into_one_request(client: Client) -> None:
    listed = await client.data(
        '{ landlords(first: 4, providers: ["scom"]) { edges { node { id name } } } }'
    )
    ids = [edge["node"]["id"] for edge in listed["landlords"]["edges"]]
    client.sandbox.states["scom"].reset_counter()

    data = await client.data(
        "query($ids: [ID!]!) { nodes(ids: $ids) { ... on Landlord { name } } }", {"ids": ids}
    )

    assert [n["name"] for n in data["nodes"]] == [
        e["node"]["name"] for e in listed["landlords"]["edges"]
    ]
    assert client.sandbox.states["scom"].count("POST", "/graphql") == 1


async def test_onboarding_from_creation_to_buildings(
    client: Client, admin: httpx.AsyncClient
) -> None:
    created = (await client.data(CREATE))["createLandlord"]
    landlord = created["landlord"]
    assert created["errors"] == [] and landlord["status"] == "PENDING"

    verified = await admin.post("/_sandbox/verify", params={"landlord": landlord["sourceId"]})
    assert verified.json()["callback"] == {"delivered": True, "status": 200}
    await admin.post(
        f"/_sandbox/landlords/{landlord['sourceId']}/properties", params={"name": "Le Phare"}
    )

    data = await client.data(LANDLORD, {"id": landlord["id"]})
    assert data["node"] == {
        "name": "Gestion Nouvelle",
        "status": "ACTIVE",
        "buildings": [{"name": "Le Phare", "provider": "scom"}],
    }
    record = client.sandbox.states["scom"].records[landlord["sourceId"]]
    assert client.gateway.vault.get_now("scom", landlord["sourceId"]) == record.api_token
    assert record.api_token not in str(data)


async def test_activation_refusals_have_stable_codes(
    client: Client, admin: httpx.AsyncClient
) -> None:
    landlord = (await client.data(CREATE))["createLandlord"]["landlord"]
    client.sandbox.states["scom"].outbound = httpx.MockTransport(lambda _: httpx.Response(503))
    await admin.post("/_sandbox/verify", params={"landlord": landlord["sourceId"]})
    token = client.sandbox.states["scom"].records[landlord["sourceId"]].activation[0]

    unknown = await client.data(ACTIVATE, {"id": landlord["id"], "token": "not-a-token"})
    await admin.post(
        "/_sandbox/status", params={"landlord": landlord["sourceId"], "status": "PENDING"}
    )
    unverified = await client.data(ACTIVATE, {"id": landlord["id"], "token": token})
    await admin.post(
        "/_sandbox/status", params={"landlord": landlord["sourceId"], "status": "VERIFIED"}
    )
    client.clock.advance(3601)
    expired = await client.data(ACTIVATE, {"id": landlord["id"], "token": token})

    assert unknown["activateLandlord"]["errors"] == [{"code": "ACTIVATION_TOKEN_NOT_FOUND"}]
    assert unverified["activateLandlord"]["errors"] == [{"code": "LANDLORD_NOT_VERIFIED"}]
    assert expired["activateLandlord"]["errors"] == [{"code": "ACTIVATION_TOKEN_EXPIRED"}]
    assert client.gateway.vault.get_now("scom", landlord["sourceId"]) is None


async def _verified_without_callback(
    client: Client, admin: httpx.AsyncClient
) -> tuple[str, str, str]:
    """A created and verified landlord whose callback did not arrive: its global id, its
    SCOM id and the activation token, for the caller to activate it by hand."""
    landlord = (await client.data(CREATE))["createLandlord"]["landlord"]
    client.sandbox.states["scom"].outbound = httpx.MockTransport(lambda _: httpx.Response(503))
    await admin.post("/_sandbox/verify", params={"landlord": landlord["sourceId"]})
    record = client.sandbox.states["scom"].records[landlord["sourceId"]]
    return landlord["id"], landlord["sourceId"], record.activation[0]


@pytest.mark.parametrize("status", [None, 503], ids=["error-at-its-path", "http-503"])
async def test_the_token_survives_a_failed_read_back_and_reads_the_buildings(
    client: Client, admin: httpx.AsyncClient, status: int | None
) -> None:
    landlord_id, source_id, activation = await _verified_without_callback(client, admin)
    await admin.post(f"/_sandbox/landlords/{source_id}/properties", params={"name": "Le Phare"})
    failing = {"landlord": source_id, "times": "1"} | ({"status": str(status)} if status else {})
    await admin.post("/_sandbox/unreadable", params=failing)

    activated = await client.data(
        "mutation($id: ID!, $token: String) { activateLandlord(input: {landlordId: $id, "
        "activationToken: $token}) { landlord { sourceId status buildings { name } } "
        "errors { code } } }",
        {"id": landlord_id, "token": activation},
    )
    after = await client.data(LANDLORD, {"id": landlord_id})

    assert activated["activateLandlord"] == {
        "landlord": {"sourceId": source_id, "status": None, "buildings": [{"name": "Le Phare"}]},
        "errors": [{"code": "ACTIVATION_UNCONFIRMED"}],
    }
    record = client.sandbox.states["scom"].records[source_id]
    assert client.gateway.vault.get_now("scom", source_id) == record.api_token
    assert after["node"]["status"] == "ACTIVE"
    assert after["node"]["buildings"] == [{"name": "Le Phare", "provider": "scom"}]


@pytest.mark.parametrize("key", PAYLOAD_KEYS)
async def test_the_activation_is_read_under_either_payload_key(
    client: Client, admin: httpx.AsyncClient, key: str
) -> None:
    assert (await admin.post("/_sandbox/activation-payload", params={"key": key})).is_success
    landlord = (await client.data(CREATE))["createLandlord"]["landlord"]

    verified = await admin.post("/_sandbox/verify", params={"landlord": landlord["sourceId"]})
    data = await client.data(LANDLORD, {"id": landlord["id"]})

    assert verified.json()["callback"] == {"delivered": True, "status": 200}
    assert data["node"]["status"] == "ACTIVE"
    record = client.sandbox.states["scom"].records[landlord["sourceId"]]
    assert client.gateway.vault.get_now("scom", landlord["sourceId"]) == record.api_token


async def test_a_token_issued_for_another_landlord_is_kept_aside(
    client: Client, admin: httpx.AsyncClient
) -> None:
    pending = (await client.data(CREATE))["createLandlord"]["landlord"]
    _, other, activation = await _verified_without_callback(client, admin)

    refused = await client.data(ACTIVATE, {"id": pending["id"], "token": activation})

    assert refused["activateLandlord"]["errors"] == [{"code": "LANDLORD_MISMATCH"}]
    issued = client.sandbox.states["scom"].records[other].api_token
    assert issued
    assert client.gateway.vault.get_now("scom", pending["sourceId"]) is None
    assert client.gateway.vault.get_now("scom-unmatched", pending["sourceId"]) == issued


async def test_another_verified_landlords_token_is_kept_aside_not_as_this_ones(
    client: Client, admin: httpx.AsyncClient
) -> None:
    """Found probing tampered ids: SCOM's activation takes the token alone, so a verified
    landlord named with another verified one's token activated the other, and its token was
    kept, and used, as the named one's."""
    named, named_source, _ = await _verified_without_callback(client, admin)
    _, other, activation = await _verified_without_callback(client, admin)

    refused = await client.data(ACTIVATE, {"id": named, "token": activation})

    assert refused["activateLandlord"]["errors"] == [{"code": "LANDLORD_MISMATCH"}]
    issued = client.sandbox.states["scom"].records[other].api_token
    assert issued
    assert client.gateway.vault.get_now("scom", named_source) is None
    assert client.gateway.vault.get_now("scom-unmatched", named_source) == issued


async def test_a_token_delivered_for_another_landlord_is_refused_before_it_is_spent(
    client: Client, admin: httpx.AsyncClient
) -> None:
    """A token SCOM's callback delivered is known to be its landlord's while it waits (here
    its automatic activation failed, SCOM down for a moment): named with another landlord,
    it is refused before SCOM spends it, and still activates its own landlord afterwards."""
    own = (await client.data(CREATE))["createLandlord"]["landlord"]
    client.sandbox.states["scom"].inject("error", status=503)
    verified = await admin.post("/_sandbox/verify", params={"landlord": own["sourceId"]})
    client.sandbox.states["scom"].inject("none")
    named, named_source, _ = await _verified_without_callback(client, admin)
    records = client.sandbox.states["scom"].records
    activation = records[own["sourceId"]].activation[0]

    refused = await client.data(ACTIVATE, {"id": named, "token": activation})
    statuses = (records[named_source].status, records[own["sourceId"]].status)
    activated = await client.data(ACTIVATE, {"id": own["id"]})

    assert verified.json()["callback"] == {"delivered": False, "status": 502}
    assert refused["activateLandlord"]["errors"] == [{"code": "LANDLORD_MISMATCH"}]
    assert statuses == ("VERIFIED", "VERIFIED")
    assert activated["activateLandlord"] == {"landlord": {"status": "ACTIVE"}, "errors": []}
    assert (
        client.gateway.vault.get_now("scom", own["sourceId"]) == records[own["sourceId"]].api_token
    )
    assert client.gateway.vault.get_now("scom", named_source) is None


async def test_a_callback_whose_activation_scom_refuses_as_not_found_is_answered_502(
    client: Client, admin: httpx.AsyncClient
) -> None:
    """Found hunting 500s: the provider's 404 while the callback activated the landlord was
    not a provider error, and the delivery got a 500 with a traceback."""
    landlord = (await client.data(CREATE))["createLandlord"]["landlord"]
    client.sandbox.states["scom"].inject("error", status=404)

    verified = await admin.post("/_sandbox/verify", params={"landlord": landlord["sourceId"]})

    assert verified.json()["callback"] == {"delivered": False, "status": 502}


async def test_scom_errors_beside_data_keep_their_paths(
    client: Client, admin: httpx.AsyncClient
) -> None:
    listed = await client.data(
        '{ landlords(first: 3, providers: ["scom"]) { edges { node { id sourceId name } } } }'
    )
    nodes = [edge["node"] for edge in listed["landlords"]["edges"]]
    await admin.post("/_sandbox/unreadable", params={"landlord": nodes[1]["sourceId"]})

    body = await client.query(
        "query($ids: [ID!]!) { nodes(ids: $ids) { ... on Landlord { name } } }",
        {"ids": [node["id"] for node in nodes]},
    )

    assert body["data"]["nodes"] == [{"name": nodes[0]["name"]}, None, {"name": nodes[2]["name"]}]
    message = f"landlord {nodes[1]['sourceId']} could not be read"
    assert {
        "provider": "scom",
        "message": message,
        "upstreamErrors": [{"message": message, "path": ["l1"]}],
    } in body["extensions"]["warnings"]


async def test_a_malformed_callback_is_refused_and_the_next_one_works(
    client: Client, admin: httpx.AsyncClient
) -> None:
    landlord = (await client.data(CREATE))["createLandlord"]["landlord"]

    key = {"key": CREDENTIALS["webhook_secret"]}
    garbage = await client.http.post("/webhooks/scom", params=key, content=b"{not json")
    wrong = await client.http.post(
        "/webhooks/scom", params=key, json={"event": "landlord.verified"}
    )
    nowhere = await client.http.post("/webhooks/nobody", json={})
    verified = await admin.post("/_sandbox/verify", params={"landlord": landlord["sourceId"]})

    assert (garbage.status_code, wrong.status_code, nowhere.status_code) == (400, 400, 404)
    assert "error" in garbage.json()
    assert verified.json()["callback"]["delivered"] is True


async def test_a_callback_without_the_registered_key_changes_nothing(
    client: Client, admin: httpx.AsyncClient
) -> None:
    landlord = (await client.data(CREATE))["createLandlord"]["landlord"]
    forged = {
        "event": "landlord.verified",
        "landlordId": landlord["sourceId"],
        "activationToken": "forged",
    }

    missing = await client.http.post("/webhooks/scom", json=forged)
    wrong = await client.http.post("/webhooks/scom", params={"key": "guess"}, json=forged)

    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert client.gateway.vault.get_now("scom-activation", landlord["sourceId"]) is None
    verified = await admin.post("/_sandbox/verify", params={"landlord": landlord["sourceId"]})
    assert verified.json()["callback"] == {"delivered": True, "status": 200}


async def test_an_active_landlords_token_is_never_replaced(
    client: Client, admin: httpx.AsyncClient
) -> None:
    landlord = (await client.data(CREATE))["createLandlord"]["landlord"]
    await admin.post("/_sandbox/verify", params={"landlord": landlord["sourceId"]})
    kept = client.gateway.vault.get_now("scom", landlord["sourceId"])

    again = await client.data(ACTIVATE, {"id": landlord["id"], "token": "anything"})

    assert again["activateLandlord"]["errors"] == [{"code": "ALREADY_ACTIVE"}]
    assert kept and client.gateway.vault.get_now("scom", landlord["sourceId"]) == kept


async def test_landlords_without_a_token_are_named_not_guessed(client: Client) -> None:
    landlord = (await client.data(CREATE))["createLandlord"]["landlord"]

    body = await client.query(LANDLORD, {"id": landlord["id"]})

    assert body["data"]["node"]["buildings"] == []
    assert body["extensions"]["warnings"][0]["provider"] == "scom"


def test_the_vault_keeps_nothing_in_clear_text(tmp_path: Path) -> None:
    key = Fernet.generate_key()
    path = tmp_path / "vault.sqlite3"
    secret = "XRM6mZqmQfPX4KxAe9K848TSYqZp7l"

    vault = Vault(path, key)
    vault.put_now("scom", "42", secret)
    vault.close()

    raw = path.read_bytes()
    assert secret.encode() not in raw and base64.b64encode(secret.encode()) not in raw
    assert Vault(path, key).get_now("scom", "42") == secret
    with pytest.raises(ConfigError, match="another key"):
        Vault(path, Fernet.generate_key()).get_now("scom", "42")
    with pytest.raises(ConfigError, match="Fernet"):
        Vault(path, "not-a-key")


async def test_scom_buildings_with_no_landlord_token_say_why_they_are_empty(client: Client) -> None:
    """SCOM lists properties per landlord token: with none held, an empty list would look like
    a landlord-less world, as a gateway configured against `gateway sandbox` found it."""
    query = '{ buildings(providers: ["scom"]) { totalCount } }'
    assert "warnings" not in (await client.query(query)).get("extensions", {})
    vault = client.gateway.vault
    for landlord in vault.subjects_now("scom"):
        vault.delete_now("scom", landlord)

    body = await client.query(query)

    assert body["data"]["buildings"]["totalCount"] == 0
    (warning,) = body["extensions"]["warnings"]
    assert warning["provider"] == "scom" and "activateLandlord" in warning["message"]


_GRAPHQL_RESPONSE = "application/graphql-response+json; charset=utf-8"


async def _scom_answering(
    tmp_path: Path, status: int, body: dict[str, Any], call: str = "landlords"
) -> tuple[GatewayError | None, list[httpx.Request]]:
    """What the connector makes of one answer of SCOM's, and the requests it sent."""
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(
            status, content=json.dumps(body).encode(), headers={"content-type": _GRAPHQL_RESPONSE}
        )

    upstream = Upstream(
        name="scom",
        base_url="https://scom.example",
        credentials={"api_token": "partner"},
        traffic=Traffic(),
        clock=ManualClock(),
        transport=httpx.MockTransport(answer),
    )
    upstream.vault = Vault(str(tmp_path / "vault"), Fernet.generate_key())
    connector = ScomConnector.connect(upstream)
    try:
        if call == "landlords":
            await connector.page(Entity.LANDLORD, ListRequest({}, Selection(), limit=1))
        else:
            await connector.create_landlord(NewLandlord("", "CORP", "1 rue", "G1K 1A1", "123"))
    except GatewayError as error:
        return error, sent
    finally:
        await upstream.aclose()
    return None, sent


async def test_scom_is_asked_in_graphql_over_https_media_type_and_its_request_errors_read(
    tmp_path: Path,
) -> None:
    """Under `application/graphql-response+json` a request SCOM refuses before executing it
    comes as a 4xx with its errors: they are SCOM's words to pass on (a blank name refused
    as the caller's field), not a bare status; a 401 says why the token is not taken."""
    refused, sent = await _scom_answering(
        tmp_path, 400, {"errors": [{"message": 'Unknown argument "first" on field "landlords".'}]}
    )
    blank, _ = await _scom_answering(
        tmp_path, 400, {"errors": [{"message": "name must not be blank"}]}, call="create"
    )
    denied, _ = await _scom_answering(
        tmp_path, 401, {"errors": [{"message": "x-api-token revoked"}]}
    )

    accept = sent[0].headers["accept"]
    assert accept.startswith("application/graphql-response+json") and "application/json" in accept
    assert refused is not None and refused.code == "UPSTREAM_REJECTED"
    assert 'Unknown argument "first"' in refused.message
    assert refused.extensions["upstreamErrors"][0]["message"].startswith("Unknown argument")
    assert blank is not None and blank.code == "VALIDATION_FAILED"
    assert denied is not None and "x-api-token revoked" in denied.message


async def test_the_scom_sandbox_answers_request_errors_as_graphql_over_http_says(
    client: Client,
) -> None:
    async with httpx.AsyncClient(
        transport=client.sandbox.transport("scom"), base_url="http://127.0.0.1/sandbox/scom"
    ) as scom:
        query = {"query": "{ landlords(nope: 1) { totalCount } }"}
        headers = {"x-api-token": CREDENTIALS["api_token"]}
        modern = await scom.post(
            "/graphql", json=query, headers={**headers, "accept": _GRAPHQL_RESPONSE}
        )
        legacy = await scom.post(
            "/graphql", json=query, headers={**headers, "accept": "application/json"}
        )

    assert modern.status_code == 400
    assert modern.headers["content-type"].startswith("application/graphql-response+json")
    assert "data" not in modern.json() and modern.json()["errors"]
    assert legacy.status_code == 200 and legacy.json()["errors"]
