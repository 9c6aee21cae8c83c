"""What a caller sends is checked before it reaches a provider: ids, cursors, filters, lists."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from gateway.clock import ManualClock
from gateway.config import ApiKey, AuthSettings, GatewaySettings, Settings
from gateway.sandbox import Sandbox
from tests.conftest import Client, error_codes, serving


def _id(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("Lease:pms:lease_1", "NOT_FOUND"),
        ("Invoice:pms:inv_1", "INVALID_ID"),
        ("Building:primmo:²", "NOT_FOUND"),
        ("Building:primmo:" + "9" * 5000, "NOT_FOUND"),
        ("Landlord:pms:../properties/x?status=active#", "NOT_FOUND"),
        ("Building:pms:prop_1/../../organizations", "NOT_FOUND"),
        ("Relationship:leap:..", "NOT_FOUND"),
    ],
)
async def test_odd_global_ids_are_refused_or_not_found(client: Client, raw: str, code: str) -> None:
    provider = raw.split(":")[1]
    await client.data("{ landlords(first: 1) { totalCount } }")
    client.sandbox.reset_counters()

    body = await client.query(f'{{ node(id: "{_id(raw)}") {{ id }} }}')

    assert body["data"] == {"node": None}
    assert error_codes(body) == [code]
    assert client.sandbox.states[provider].count() == 0


async def test_a_cursor_without_its_fingerprint_is_refused(client: Client) -> None:
    forged = base64.urlsafe_b64encode(
        json.dumps({"v": 1, "p": {}, "d": [], "t": {}}).encode()
    ).decode()

    body = await client.query(f'{{ buildings(after: "{forged}") {{ totalCount }} }}')

    assert error_codes(body) == ["INVALID_CURSOR"]


async def test_a_failed_provider_leaves_a_cursor_to_try_again_from(client: Client) -> None:
    query = (
        'query($after: String) { buildings(first: 3, after: $after, providers: ["primmo"]) '
        "{ pageInfo { hasNextPage endCursor } edges { node { sourceId } } } }"
    )
    first = await client.data(query)
    client.primmo.inject("error")

    failed = await client.query(query, {"after": first["buildings"]["pageInfo"]["endCursor"]})
    client.primmo.inject("none")
    again = await client.data(
        query, {"after": failed["data"]["buildings"]["pageInfo"]["endCursor"]}
    )
    straight = await client.data(query, {"after": first["buildings"]["pageInfo"]["endCursor"]})

    assert failed["data"]["buildings"]["edges"] == []
    assert failed["data"]["buildings"]["pageInfo"]["hasNextPage"] is True
    assert again["buildings"]["edges"] == straight["buildings"]["edges"] != []


async def test_too_many_ids_are_refused_before_any_request(client: Client) -> None:
    ids = [_id(f"Building:primmo:{n}") for n in range(101)]

    body = await client.query("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": ids})

    assert error_codes(body) == ["TOO_MANY_IDS"]
    assert sum(state.count() for state in client.sandbox.states.values()) == 0


READER = "reader-key-for-hostile-tests"


async def test_a_property_reader_can_neither_match_tenants_by_name_nor_read_health(
    sandbox: Sandbox, clock: ManualClock
) -> None:
    settings = Settings(
        gateway=GatewaySettings(subscribe_at_start=False),
        auth=AuthSettings(
            api_keys=[
                ApiKey(
                    name="reader",
                    sha256=hashlib.sha256(READER.encode()).hexdigest(),
                    scopes=["property:read"],
                )
            ]
        ),
    )
    async with serving(sandbox, clock, settings, headers={"X-API-Key": READER}) as client:
        by_name = await client.query(
            '{ tenants(filter: {nameContains: "Tremblay"}) { totalCount } }'
        )
        health = await client.query("{ providers { name } }")
        plain = await client.data("{ tenants(first: 1) { totalCount } }")

    assert error_codes(by_name) == ["FORBIDDEN"] and by_name["data"] is None
    assert error_codes(health) == ["FORBIDDEN"]
    assert plain["tenants"]["totalCount"] > 0
