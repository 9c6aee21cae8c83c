"""The pms and MyCRM sandboxes behave as their documents say, seen over HTTP."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest

from gateway.clock import ManualClock
from gateway.sandbox import Sandbox
from gateway.sandbox.mycrm import CREDENTIALS as MYCRM
from gateway.sandbox.mycrm import ERRORS as MYCRM_ERRORS
from gateway.sandbox.pms import CREDENTIALS as PMS
from gateway.sandbox.pms import ERRORS as PMS_ERRORS


@pytest.fixture
async def pms(sandbox: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(sandbox.apps["pms"])
    async with httpx.AsyncClient(transport=transport, base_url="http://pms") as http:
        yield http


async def _login(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.post(
        "/api/v1/identity/login", json={"email": PMS["username"], "password": PMS["password"]}
    )
    assert response.status_code == 200
    data: dict[str, Any] = response.json()["data"]
    http.headers["Authorization"] = f"Bearer {data['access_token']}"
    return data


async def test_pms_login_issues_an_rs256_jwt_with_the_documented_claims(
    pms: httpx.AsyncClient,
) -> None:
    data = await _login(pms)

    header = jwt.get_unverified_header(data["access_token"])
    claims = jwt.decode(data["access_token"], options={"verify_signature": False})
    assert header["alg"] == "RS256"
    assert {"sub", "org_id", "org_roles", "permissions", "exp", "aud", "jti"} <= set(claims)
    assert claims["aud"] == "PropertyManagement"
    assert data["refresh_token"] and data["expires_in"] == 900


async def test_pms_wrong_password_and_expired_token_use_the_documented_codes(
    pms: httpx.AsyncClient, clock: ManualClock
) -> None:
    wrong = await pms.post(
        "/api/v1/identity/login", json={"email": PMS["username"], "password": "x"}
    )
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (401, "AUTHENTICATION_FAILED")

    data = await _login(pms)
    clock.advance(901)
    expired = await pms.get("/api/v1/properties")
    assert (expired.status_code, expired.json()["error"]["code"]) == (401, "TOKEN_EXPIRED")

    renewed = await pms.post(
        "/api/v1/identity/refresh", json={"refresh_token": data["refresh_token"]}
    )
    assert renewed.status_code == 200
    reused = await pms.post(
        "/api/v1/identity/refresh", json={"refresh_token": data["refresh_token"]}
    )
    assert reused.status_code == 401


async def test_pms_envelope_pagination_headers_and_request_id(pms: httpx.AsyncClient) -> None:
    await _login(pms)

    response = await pms.get(
        "/api/v1/properties",
        params={"page": 2, "page_size": 500, "sort_by": "name"},
        headers={"X-Request-ID": "req-test-1"},
    )

    body = response.json()
    assert body["success"] is True and body["meta"]["request_id"] == "req-test-1"
    assert response.headers["X-Request-ID"] == "req-test-1"
    pagination = body["meta"]["pagination"]
    assert pagination["page_size"] == 100
    assert pagination["page"] == 2 and pagination["has_previous"] is True
    for header in ("Limit", "Remaining", "Reset", "Window"):
        assert int(response.headers[f"X-RateLimit-{header}"]) >= 0


async def test_pms_validation_errors_carry_details(pms: httpx.AsyncClient) -> None:
    await _login(pms)
    properties = (await pms.get("/api/v1/properties")).json()["data"]
    prop = properties[0]["id"]

    bad = await pms.post(f"/api/v1/properties/{prop}/tenants", json={"email": "nope"})
    sort = await pms.get("/api/v1/properties", params={"sort_by": "password"})

    assert bad.status_code == 422 and bad.json()["error"]["code"] == "VALIDATION_ERROR"
    fields = {detail["field"] for detail in bad.json()["error"]["details"]}
    assert {"unit_id", "first_name", "last_name", "email"} <= fields
    assert sort.status_code == 422


async def test_pms_creates_a_tenant_with_a_lease(pms: httpx.AsyncClient) -> None:
    await _login(pms)
    prop = (await pms.get("/api/v1/properties")).json()["data"][0]["id"]
    unit = (await pms.get(f"/api/v1/properties/{prop}/units")).json()["data"][0]["id"]

    created = await pms.post(
        f"/api/v1/properties/{prop}/tenants",
        json={"unit_id": unit, "first_name": "Léa", "last_name": "Nouveau", "email": "lea@x.ca"},
    )

    assert created.status_code == 201
    tenant = created.json()["data"]["id"]
    lease = await pms.get(f"/api/v1/properties/{prop}/tenants/{tenant}/lease")
    assert lease.json()["data"]["tenant_id"] == tenant


async def test_pms_rate_limit_answers_429_with_retry_after(
    pms: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    await _login(pms)
    sandbox.states["pms"].throttle(retry_after=900)

    response = await pms.get("/api/v1/properties")

    assert response.status_code == 429
    assert response.json()["error"]["code"] == "RATE_LIMIT_EXCEEDED"
    assert response.json()["error"]["retry_after"] == 900
    assert (await pms.get("/api/v1/properties")).status_code == 200


@pytest.mark.parametrize("name", PMS_ERRORS)
async def test_pms_sends_each_documented_error_code_on_demand(
    pms: httpx.AsyncClient, name: str
) -> None:
    await _login(pms)
    knob = await pms.post("/_sandbox/refuse", params={"name": name})

    refused = await pms.get("/api/v1/properties")

    assert knob.status_code == 204
    assert refused.status_code == PMS_ERRORS[name][0]
    body = refused.json()
    assert body["success"] is False and body["error"]["code"] == name
    assert body["error"]["message"] and body["meta"]["request_id"]
    assert (await pms.get("/api/v1/properties")).status_code == 200


async def test_the_refuse_knob_knows_only_documented_names(pms: httpx.AsyncClient) -> None:
    unknown = await pms.post("/_sandbox/refuse", params={"name": "ResourceNotFound"})

    assert unknown.status_code == 400 and "RESOURCE_NOT_FOUND" in unknown.json()["error"]


@pytest.fixture
async def mycrm(sandbox: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    """MyCRM's API; its token endpoint is `TOKEN`, on a host of its own."""
    transport = sandbox.transport("mycrm")
    async with httpx.AsyncClient(transport=transport, base_url=f"{ROOT}/sandbox/mycrm") as http:
        yield http


def _basic(key: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()}


GRANT = {"grant_type": "client_credentials", "scope": "openid"}
ROOT = "http://127.0.0.1:8000"
TOKEN = Sandbox.options("mycrm", ROOT)["token_url"]


async def _token(http: httpx.AsyncClient) -> None:
    response = await http.post(
        TOKEN, headers=_basic(MYCRM["api_key"], MYCRM["api_secret"]), data=GRANT
    )
    assert response.status_code == 200 and response.json()["expires_in"] == 1800
    assert response.headers["cache-control"] == "no-store"
    http.headers["Authorization"] = f"Bearer {response.json()['access_token']}"


async def test_mycrm_refuses_a_bad_secret_as_an_oauth2_server_does(
    mycrm: httpx.AsyncClient,
) -> None:
    response = await mycrm.post(TOKEN, headers=_basic(MYCRM["api_key"], "wrong"), data=GRANT)

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic ")
    assert response.json()["error"] == "invalid_client"
    assert response.json()["error_description"]


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ({"json": GRANT}, "invalid_request"),
        ({"data": {"scope": "openid"}}, "invalid_request"),
        ({"content": b"grant_type=client_credentials&grant_type=password"}, "invalid_request"),
        ({"data": {"grant_type": "password"}}, "unsupported_grant_type"),
        ({"data": {"grant_type": "client_credentials", "scope": "admin"}}, "invalid_scope"),
    ],
    ids=["json", "no grant", "repeated", "other grant", "unknown scope"],
)
async def test_mycrm_refuses_what_rfc_6749_refuses(
    mycrm: httpx.AsyncClient, content: dict[str, Any], error: str
) -> None:
    headers = _basic(MYCRM["api_key"], MYCRM["api_secret"])
    if "content" in content:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    response = await mycrm.post(TOKEN, headers=headers, **content)

    assert response.status_code == 400
    assert response.json()["error"] == error


async def test_mycrm_hands_out_tokens_on_its_own_host_only(mycrm: httpx.AsyncClient) -> None:
    headers = _basic(MYCRM["api_key"], MYCRM["api_secret"])

    beside_the_api = await mycrm.post("auth/oauth/v1/token", headers=headers, data=GRANT)
    await _token(mycrm)

    assert TOKEN.startswith(f"{ROOT}/sandbox/mycrm-auth/")
    assert beside_the_api.status_code == 404
    assert (await mycrm.get("users")).status_code == 200


async def test_mycrm_takes_the_documents_json_body_when_told_to(
    mycrm: httpx.AsyncClient,
) -> None:
    knob = "/_sandbox/documented-token-request"
    headers = _basic(MYCRM["api_key"], MYCRM["api_secret"])

    await mycrm.post(knob, params={"accept": "true"})
    accepted = await mycrm.post(TOKEN, headers=headers, json=GRANT)
    await mycrm.post(knob, params={"accept": "false"})
    refused = await mycrm.post(TOKEN, headers=headers, json=GRANT)

    assert accepted.status_code == 200 and accepted.json()["token_type"] == "Bearer"
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_request"


async def test_mycrm_lists_fields_expand_and_not_found(mycrm: httpx.AsyncClient) -> None:
    await _token(mycrm)

    plain = (await mycrm.get("/properties", params={"per_page": 2, "fields": "id,landlord"})).json()
    expanded = (
        await mycrm.get(
            "/properties",
            params={"per_page": 2, "fields": "id,landlord"},
            headers={"X-MyCRM-Expand-Data": "true"},
        )
    ).json()
    missing = await mycrm.get("/landlords/424242")

    assert set(plain) == {"count", "page", "per_page", "properties"}
    assert all(set(row) == {"id", "landlord"} for row in plain["properties"])
    assert all(isinstance(row["landlord"], int) for row in plain["properties"])
    assert all(isinstance(row["landlord"], dict) for row in expanded["properties"])
    assert missing.status_code == 404
    assert missing.json()["landlord"] == "ResourceNotFound"


async def test_mycrm_caps_per_page_and_warns_of_the_deprecated_field_parameter(
    mycrm: httpx.AsyncClient,
) -> None:
    await _token(mycrm)

    capped = await mycrm.get("/landlords", params={"per_page": 1000})
    deprecated = await mycrm.get("/landlords", params={"field": "id"})

    assert capped.json()["per_page"] == 100
    assert "capped" in capped.headers["X-MyCRM-API-Warning"]
    assert "deprecated" in deprecated.headers["X-MyCRM-API-Warning"]
    assert all(set(row) == {"id"} for row in deprecated.json()["landlords"])


async def test_mycrm_tokens_expire_after_1800_seconds(
    mycrm: httpx.AsyncClient, clock: ManualClock
) -> None:
    await _token(mycrm)
    assert (await mycrm.get("/users")).status_code == 200

    clock.advance(1800)

    refused = await mycrm.get("/users")
    assert refused.status_code == 401 and refused.json()["user"] == "AuthenticationError"


@pytest.mark.parametrize("name", MYCRM_ERRORS)
async def test_mycrm_sends_each_documented_error_code_on_demand(
    mycrm: httpx.AsyncClient, name: str
) -> None:
    await _token(mycrm)
    await mycrm.post("/_sandbox/refuse", params={"name": name, "times": "2"})

    refused = [await mycrm.get("/landlords/1"), await mycrm.get("/users")]

    assert [r.status_code for r in refused] == [MYCRM_ERRORS[name][0]] * 2
    assert [r.json() for r in refused] == [
        {"landlord": name, "messages": [MYCRM_ERRORS[name][1]]},
        {"user": name, "messages": [MYCRM_ERRORS[name][1]]},
    ]
    assert (await mycrm.get("/users")).status_code == 200


async def test_mycrm_names_unknown_routes_and_methods_as_its_document_does(
    mycrm: httpx.AsyncClient,
) -> None:
    await _token(mycrm)

    route = await mycrm.get("/users/foo/bar")
    method = await mycrm.delete("/users")

    assert route.status_code == 404
    assert route.json() == {
        "user": "ResourceNotFound",
        "messages": ['No route found for "GET /users/foo/bar"'],
    }
    assert method.status_code == 400 and method.json()["user"] == "MethodNotAllowed"


async def _running_lease(http: httpx.AsyncClient) -> str:
    invoices = (await http.get("/api/v1/financial/invoices", params={"status": "sent"})).json()
    lease: str = invoices["data"][0]["lease_id"]
    return lease


@pytest.mark.parametrize(
    ("route", "body", "field"),
    [
        ("invoices", {"bogus": 1}, "bogus"),
        ("invoices", {"amount": "5.00"}, "amount"),
        ("invoices", {"description": 123}, "description"),
        ("payments", {"bogus": 1}, "bogus"),
        ("payments", {"amount": "5.00"}, "amount"),
        ("payments", {"method": 7}, "method"),
    ],
)
async def test_pms_money_writes_refuse_unknown_fields_and_loose_types(
    pms: httpx.AsyncClient, sandbox: Sandbox, route: str, body: dict[str, Any], field: str
) -> None:
    """Like its other write routes: a field it has no place for, or a value of the wrong
    type (an amount as text), is a 422 naming the field; nothing is written."""
    await _login(pms)
    lease = await _running_lease(pms)
    invoice = (await pms.get("/api/v1/financial/invoices", params={"status": "sent"})).json()
    good = {
        "invoices": {"lease_id": lease, "amount": 5, "currency": "CAD", "due_date": "2026-12-01"},
        "payments": {"invoice_id": invoice["data"][0]["id"], "amount": 1, "currency": "CAD"},
    }[route]
    before = len(sandbox.states["pms"].records.money()[route == "payments"])

    refused = await pms.post(f"/api/v1/financial/{route}", json={**good, **body})

    assert refused.status_code == 422
    assert field in {detail["field"] for detail in refused.json()["error"]["details"]}
    assert len(sandbox.states["pms"].records.money()[route == "payments"]) == before


async def test_pms_refuses_a_write_its_token_does_not_permit(
    pms: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    """pms's RBAC, as its document shows it: a route needs a permission (`financial:create`
    to invoice), held by name, by `resource:*`, `resource:manage` or `*`."""
    state = sandbox.states["pms"]
    state.records.permissions = ["property:read", "financial:read"]
    await _login(pms)
    lease = await _running_lease(pms)

    refused = await pms.post(
        "/api/v1/financial/invoices",
        json={"lease_id": lease, "amount": 5, "currency": "CAD", "due_date": "2026-12-01"},
    )
    read = await pms.get("/api/v1/financial/invoices")

    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "INSUFFICIENT_PERMISSIONS"
    assert "financial:create" in refused.json()["error"]["message"]
    assert read.status_code == 200
