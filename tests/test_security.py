"""Callers are authenticated, scopes hold, hostile operations are refused early."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from typing import Any

import jwt
import pytest

from gateway.clock import ManualClock
from gateway.config import ApiKey, AuthSettings, GatewaySettings, JwtSettings, SecretRef, Settings
from gateway.edge.callers import DEV_KEY, Authenticator
from gateway.events import Change, ChangeKind
from gateway.model import Entity
from gateway.sandbox import PROVIDERS, Sandbox
from tests.conftest import Client, Socket, error_codes, eventually, serving

READER_KEY = "reader-key-0123456789"
MANAGER_KEY = "manager-key-9876543210"
JWT_SECRET = "jwt-test-secret-that-is-long-enough-for-hs256"


def _sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@pytest.fixture
def secured(monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("PROPGATE_JWT_SECRET", JWT_SECRET)
    return Settings(
        gateway=GatewaySettings(subscribe_at_start=False),
        auth=AuthSettings(
            api_keys=[
                ApiKey(name="reader", sha256=_sha(READER_KEY), scopes=["property:read"]),
                ApiKey(
                    name="manager",
                    sha256=_sha(MANAGER_KEY),
                    scopes=["property:read", "tenant:read", "tenant:manage"],
                ),
            ],
            jwt=JwtSettings(algorithm="HS256", secret=SecretRef(env="PROPGATE_JWT_SECRET")),
        ),
    )


def _count(sandbox: Sandbox) -> int:
    return sum(state.count() for state in sandbox.states.values())


TENANTS = '{ tenants(first: 3, providers: ["primmo"]) { edges { node { id lastName email } } } }'


async def test_a_property_reader_gets_buildings_but_not_tenants_personal_data(
    sandbox: Sandbox, clock: ManualClock, secured: Settings
) -> None:
    async with serving(sandbox, clock, secured, headers={"X-API-Key": READER_KEY}) as client:
        buildings = await client.data("{ buildings(first: 3) { edges { node { name } } } }")
        tenants = await client.query(TENANTS)
        mutation = await client.query(
            'mutation { createTenant(input: {unitId: "x", firstName: "A", lastName: "B"}) '
            "{ errors { code } } }"
        )

    assert len(buildings["buildings"]["edges"]) == 3
    edges = tenants["data"]["tenants"]["edges"]
    assert len(edges) == 3 and all(edge["node"]["id"] for edge in edges)
    assert all(edge["node"]["lastName"] is None for edge in edges)
    assert set(error_codes(tenants)) == {"FORBIDDEN"}
    assert {e["extensions"]["scope"] for e in tenants["errors"]} == {"tenant:read"}
    assert mutation["data"] is None and error_codes(mutation) == ["FORBIDDEN"]


async def test_a_manager_reads_and_creates_tenants(
    sandbox: Sandbox, clock: ManualClock, secured: Settings
) -> None:
    async with serving(sandbox, clock, secured, headers={"X-API-Key": MANAGER_KEY}) as client:
        tenants = await client.data(TENANTS)
        unit = await client.data(
            '{ units(first: 1, providers: ["primmo"]) { edges { node { id } } } }'
        )
        created = await client.data(
            'mutation($unit: ID!) { createTenant(input: {unitId: $unit, firstName: "Léa", '
            'lastName: "Nouveau"}) { tenant { id lastName unit { id } } errors { code } } }',
            {"unit": unit["units"]["edges"][0]["node"]["id"]},
        )

    assert all(edge["node"]["lastName"] for edge in tenants["tenants"]["edges"])
    payload = created["createTenant"]
    assert payload["errors"] == [] and payload["tenant"]["lastName"] == "Nouveau"
    assert payload["tenant"]["unit"]["id"] == unit["units"]["edges"][0]["node"]["id"]


async def test_provider_validation_errors_come_back_as_data(client: Client) -> None:
    building = await client.data(
        '{ buildings(first: 1, providers: ["pms"]) { edges { node { units { id } } } } }'
    )
    unit_id = building["buildings"]["edges"][0]["node"]["units"][0]["id"]

    body = await client.data(
        'mutation($unit: ID!) { createTenant(input: {unitId: $unit, firstName: "Léa", '
        'lastName: "Roy", email: "not-an-email"}) '
        "{ tenant { id } errors { code field message } } }",
        {"unit": unit_id},
    )

    assert body["createTenant"]["tenant"] is None
    assert body["createTenant"]["errors"] == [
        {"code": "VALIDATION_FAILED", "field": "email", "message": "Email format is invalid"}
    ]


async def test_missing_or_wrong_credentials_get_401(
    sandbox: Sandbox, clock: ManualClock, secured: Settings
) -> None:
    async with serving(sandbox, clock, secured, headers={}) as client:
        missing = await client.http.post("/graphql", json={"query": "{ providers { name } }"})
        wrong = await client.http.post(
            "/graphql", json={"query": "{ providers { name } }"}, headers={"X-API-Key": DEV_KEY}
        )
        page = await client.http.get("/graphql", headers={"Accept": "text/html"})

    for response in (missing, wrong):
        assert response.status_code == 401
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert page.status_code == 200
    assert _count(sandbox) == 0


async def test_bearer_jwts_carry_scopes_and_expire(
    sandbox: Sandbox, clock: ManualClock, secured: Settings
) -> None:
    now = int(time.time())
    good = jwt.encode(
        {"sub": "svc", "scope": "property:read", "exp": now + 60}, JWT_SECRET, algorithm="HS256"
    )
    expired = jwt.encode(
        {"sub": "svc", "scope": "property:read", "exp": now - 60}, JWT_SECRET, algorithm="HS256"
    )
    forged = jwt.encode(
        {"sub": "svc", "scope": "*", "exp": now + 60},
        "another-secret-of-some-length-that-is-long!!",
        "HS256",
    )
    query = {"query": "{ landlords(first: 1) { totalCount } }"}
    async with serving(sandbox, clock, secured, headers={}) as client:
        answers = [
            await client.http.post("/graphql", json=query, headers={"Authorization": f"Bearer {t}"})
            for t in (good, expired, forged)
        ]

    assert [a.status_code for a in answers] == [200, 401, 401]
    assert answers[0].json()["data"]["landlords"]["totalCount"] > 0


def _signed(claims: dict[str, Any]) -> str:
    return jwt.encode({"sub": "svc", "scope": "property:read", **claims}, JWT_SECRET, "HS256")


async def test_a_jwt_whose_exp_is_not_a_number_is_refused_over_http_and_websockets(
    sandbox: Sandbox, clock: ManualClock, secured: Settings
) -> None:
    later = int(time.time()) + 600
    tokens = [_signed({"exp": str(later)}), _signed({"exp": later + 0.5})]
    query = {"query": "{ landlords(first: 1) { totalCount } }"}
    async with serving(sandbox, clock, secured, headers={}) as client:
        answers = [
            await client.http.post("/graphql", json=query, headers={"Authorization": f"Bearer {t}"})
            for t in tokens
        ]
        closed, _ = await _over_websocket(
            client, {"Authorization": f"Bearer {tokens[0]}"}, "{ providers { name } }"
        )

    assert [a.status_code for a in answers] == [401, 200]
    assert error_codes(answers[0].json()) == ["UNAUTHENTICATED"]
    assert closed[-1]["type"] == "websocket.close" and closed[-1]["code"] == 4403


async def test_a_subscription_ends_once_the_jwt_it_connected_with_expires(
    sandbox: Sandbox, clock: ManualClock, secured: Settings
) -> None:
    expires = int(time.time()) + 2
    token = _signed({"exp": expires + 0.9})  # PyJWT reads it as `expires`, and so do we
    async with serving(sandbox, clock, secured, headers={}) as client:
        socket = Socket(client.http._transport.app, "graphql-transport-ws")  # type: ignore[attr-defined]
        await socket.inbox.put({"type": "websocket.connect"})
        await socket.say(
            {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        )
        await socket.until(lambda m: _text(m).get("type") == "connection_ack")
        await socket.say(
            {
                "id": "1",
                "type": "subscribe",
                "payload": {"query": "subscription { entityChanged { kind } }"},
            }
        )
        await eventually(lambda: client.gateway.bus.listeners > 0)  # type: ignore[attr-defined]
        await asyncio.sleep(expires - time.time())
        await client.gateway.bus.publish(Change(ChangeKind.UPDATED, Entity.TENANT, "pms", "p/t"))
        await socket.until(lambda m: _text(m).get("type") == "complete")
        await socket.close()

    [last] = [_text(m)["payload"] for m in socket.sent if _text(m).get("type") == "next"]
    assert last["data"] is None and error_codes(last) == ["UNAUTHENTICATED"]


async def test_real_providers_have_no_development_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.config import ProviderSettings
    from gateway.edge.app import create_app

    monkeypatch.setenv("K", "k")
    monkeypatch.setenv("P", "p")
    settings = Settings(
        providers={
            "primmo": ProviderSettings(
                url="http://127.0.0.1:9",
                username="u",
                api_key=SecretRef(env="K"),
                password=SecretRef(env="P"),
            )
        }
    )
    app = create_app(settings)
    import httpx

    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://gw"
        ) as http:
            response = await http.post(
                "/graphql", json={"query": "{ providers { name } }"}, headers={"X-API-Key": DEV_KEY}
            )
    assert response.status_code == 401


HOSTILE = {
    "QUERY_TOO_DEEP": "{ tenants { edges { node { unit { building { units { building { units {"
    " building { units { building { units { building { units { building { units { id"
    " } } } } } } } } } } } } } } } } }",
    "TOO_MANY_ALIASES": "{ " + " ".join(f"a{i}: providers {{ name }}" for i in range(40)) + " }",
    "PAGE_SIZE_EXCEEDED": "{ buildings(first: 100000) { totalCount } }",
    "TOO_MANY_ROOT_FIELDS": "{ "
    + " ".join(f"b{i}: __typename" for i in range(3))
    + " "
    + " ".join(f"p{i}: providers {{ name }}" for i in range(25))
    + " }",
    "QUERY_TOO_COSTLY": "{ buildings(first: 100) { edges { node { units { tenants { unit {"
    " tenants { id } } } } } } } }",
}


@pytest.mark.parametrize("code", sorted(HOSTILE))
async def test_hostile_operations_are_refused_before_any_upstream_request(
    client: Client, code: str
) -> None:
    body = await client.query(HOSTILE[code])

    assert error_codes(body) == [code]
    assert body["errors"][0]["extensions"]["limit"] < body["errors"][0]["extensions"]["actual"]
    assert _count(client.sandbox) == 0


async def test_too_many_tokens_and_a_too_large_body_are_refused(client: Client) -> None:
    long_query = "{ providers { " + "name " * 4000 + "} }"
    tokens = await client.query(long_query)
    huge = await client.http.post(
        "/graphql",
        content=b"{" + b" " * 300_000 + b"}",
        headers={"Content-Type": "application/json"},
    )

    assert error_codes(tokens) == ["TOO_MANY_TOKENS"]
    assert huge.status_code == 413 and error_codes(huge.json()) == ["BODY_TOO_LARGE"]
    assert _count(client.sandbox) == 0


async def test_simple_requests_and_get_mutations_are_refused(client: Client) -> None:
    mutation = (
        'mutation { createTenant(input: {unitId: "x", firstName: "a", lastName: "b"}) '
        "{ errors { code } } }"
    )
    plain = await client.http.post(
        "/graphql",
        content=f'{{"query": "{mutation}"}}'.encode(),
        headers={"Content-Type": "text/plain"},
    )
    form = await client.http.post(
        "/graphql",
        content=b"query=mutation",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    over_get = await client.http.get("/graphql", params={"query": mutation})

    assert (plain.status_code, error_codes(plain.json())) == (415, ["UNSUPPORTED_MEDIA_TYPE"])
    assert (form.status_code, error_codes(form.json())) == (415, ["UNSUPPORTED_MEDIA_TYPE"])
    assert (over_get.status_code, error_codes(over_get.json())) == (405, ["MUTATION_OVER_GET"])
    assert _count(client.sandbox) == 0


async def test_introspection_can_be_switched_off(sandbox: Sandbox, clock: ManualClock) -> None:
    settings = Settings(
        gateway=GatewaySettings(limits={"introspection": False}, subscribe_at_start=False)
    )
    async with serving(sandbox, clock, settings) as client:
        body = await client.query("{ __schema { types { name } } }")
    assert set(error_codes(body)) == {"GRAPHQL_VALIDATION_FAILED"}
    assert "introspection" in body["errors"][0]["message"]


async def test_no_secret_reaches_a_log_line(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await client.data("{ landlords(first: 5) { edges { node { name } } } }")
    for provider in ("primmo", "pms", "mycrm"):
        for fault in ("error", "malformed", "token_garbage"):
            client.sandbox.states[provider].inject(fault)
            client.sandbox.states[provider].revoke_tokens()
            await client.query("{ landlords(first: 5) { edges { node { name } } } }")
            client.sandbox.states[provider].inject("none")
    await client.query("{ nope }")

    secrets = {value for provider in PROVIDERS.values() for value in provider.credentials.values()}
    secrets -= {"integrateur", "integrations@sandbox.pms.example"}
    secrets.add(DEV_KEY)
    text = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert caplog.records
    assert not [secret for secret in secrets if secret in text]
    assert "eyJ" not in text and "Bearer " not in text


def _text(message: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(message.get("text") or "{}")
    return body


async def _over_websocket(
    client: Client, init: dict[str, Any], query: str
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    socket = Socket(client.http._transport.app, "graphql-transport-ws")  # type: ignore[attr-defined]
    await socket.inbox.put({"type": "websocket.connect"})
    await socket.until(lambda m: m["type"] == "websocket.accept")
    await socket.say({"type": "connection_init", "payload": init})
    answer = await socket.until(
        lambda m: m["type"] == "websocket.close" or _text(m).get("type") == "connection_ack"
    )
    result = None
    if answer["type"] != "websocket.close":
        await socket.say({"id": "1", "type": "subscribe", "payload": {"query": query}})
        result = _text(await socket.until(lambda m: _text(m).get("type") == "next"))
    await socket.close()
    return socket.sent, result


async def test_websockets_authenticate_in_connection_init(client: Client) -> None:
    refused, _ = await _over_websocket(client, {}, "{ providers { name } }")
    wrong, _ = await _over_websocket(client, {"X-API-Key": "nope"}, "{ providers { name } }")
    _, answered = await _over_websocket(
        client, {"X-API-Key": DEV_KEY}, "{ landlords(first: 2) { totalCount } }"
    )

    for sent in (refused, wrong):
        assert sent[-1]["type"] == "websocket.close" and sent[-1]["code"] == 4403
        assert not [m for m in sent if _text(m).get("type") == "connection_ack"]
    assert answered is not None
    assert answered["payload"]["data"]["landlords"]["totalCount"] > 0


def test_callers_are_told_apart_by_kind_issuer_and_subject(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An API key named like a token's `sub` is another caller, and so are two issuers'
    tokens with one `sub`; a token without `sub` is no one in particular (`identity` None)."""
    monkeypatch.setenv("PROPGATE_JWT_SECRET", JWT_SECRET)
    settings = AuthSettings(
        api_keys=[ApiKey(name="svc", sha256=_sha(READER_KEY), scopes=["property:read"])],
        jwt=JwtSettings(algorithm="HS256", secret=SecretRef(env="PROPGATE_JWT_SECRET")),
    )
    authenticator = Authenticator(settings, development=False)
    exp = int(time.time()) + 60

    def bearer(**claims: object) -> dict[str, str]:
        token = jwt.encode({"exp": exp, **claims}, JWT_SECRET, "HS256")
        return {"authorization": f"Bearer {token}"}

    keyed = authenticator.authenticate({"x-api-key": READER_KEY})
    one = authenticator.authenticate(bearer(sub="svc", iss="https://a.example"))
    other = authenticator.authenticate(bearer(sub="svc", iss="https://b.example"))
    nobody = authenticator.authenticate(bearer(iss="https://a.example"))

    assert len({keyed.identity, one.identity, other.identity}) == 3
    assert nobody.identity is None


async def test_a_token_without_a_subject_cannot_use_an_idempotency_key(
    sandbox: Sandbox, clock: ManualClock, secured: Settings
) -> None:
    """Its key could be any sub-less caller's retry: refused, nothing sent; without a key
    its write goes on."""
    token = jwt.encode(
        {"scope": "property:read tenant:manage", "exp": int(time.time()) + 60},
        JWT_SECRET,
        "HS256",
    )
    headers = {"Authorization": f"Bearer {token}"}
    async with serving(sandbox, clock, secured, headers=headers) as client:
        units = await client.data(
            '{ units(first: 1, providers: ["primmo"]) { edges { node { id } } } }'
        )
        unit = units["units"]["edges"][0]["node"]["id"]
        create = "mutation($i: CreateTenantInput!) { createTenant(input: $i) { errors { code } } }"
        given = {"unitId": unit, "firstName": "A", "lastName": "B"}
        keyed = await client.query(create, {"i": {**given, "idempotencyKey": "k-nobody"}})
        plain = await client.data(create, {"i": given})

    assert error_codes(keyed) == ["BAD_USER_INPUT"]
    assert plain["createTenant"]["errors"] == []
