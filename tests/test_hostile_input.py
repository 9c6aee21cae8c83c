"""What a caller sends is checked before it reaches a provider: ids, cursors, filters, lists."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

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


def _payload(cursor: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    )
    return payload


def _cursor(payload: object) -> str:
    return _id(json.dumps(payload))


ROOT_LISTS = [
    "landlords",
    "buildings",
    "units",
    "tenants",
    "relationships",
    "leases",
    "charges",
    'payments(providers: ["pms"])',
    "maintenanceRequests",
    "workOrders",
    "vendors",
    "listings",
    "agents",
    'unitsForRent(from: "2026-01-01", to: "2026-01-31")',
    "buildings(distinct: true)",
    'tenants(distinct: true, filter: {nameContains: "a"})',
]


async def test_a_cursor_position_beyond_what_a_list_can_hold_is_refused_on_every_list(
    client: Client,
) -> None:
    """A forged position of 10^30 (or 2^64, past what a cursor can be written with) was an
    INTERNAL_SERVER_ERROR on every list whose next cursor held it; it is a malformed cursor,
    refused before any provider is asked."""
    refused = {}
    for root in ROOT_LISTS:
        name, _, arguments = root.partition("(")
        arguments = arguments.rstrip(")")
        listed = f"{name}(first: 3{', ' + arguments if arguments else ''}"
        page = await client.data(f"{{ {listed}) {{ totalCount pageInfo {{ endCursor }} }} }}")
        payload = _payload(page[name]["pageInfo"]["endCursor"])
        named = {*payload["p"], *payload["t"]}
        assert named, root
        client.sandbox.reset_counters()
        for huge in (10**30, 2**64):
            forged = _cursor(dict(payload, p=dict.fromkeys(named, huge), d=[]))
            body = await client.query(
                f"query($after: String) {{ {listed}, after: $after) {{ totalCount "
                "edges { cursor } pageInfo { endCursor } } }",
                {"after": forged},
            )
            refused[(root, huge)] = error_codes(body)
        assert sum(state.count() for state in client.sandbox.states.values()) == 0, root

    assert refused == dict.fromkeys(refused, ["INVALID_CURSOR"])


@pytest.mark.parametrize(
    ("part", "value"),
    [
        ("p", 2**31),
        ("p", -1),
        ("p", 1.5),
        ("p", 3.0),
        ("p", True),
        ("p", None),
        ("p", [1]),
        ("t", -27),
        ("t", 2**31),
        ("t", 10**30),
        ("t", 2**30),
        ("t", 4.0),
        ("t", False),
        ("v", True),
        ("v", 1.0),
        ("g", True),
        ("g", -1),
        ("g", 2**31),
        ("g", 2.0),
    ],
)
async def test_every_number_a_cursor_holds_is_checked(
    client: Client, part: str, value: object
) -> None:
    """Positions, the providers' counts (which `totalCount` adds up: a GraphQL Int), the
    count of groups and the version are whole numbers from 0 to 2^31 - 1: a count of -27
    was shown as a totalCount of -27, one past an Int was a BAD_USER_INPUT about an Int,
    and a bool passed for a number."""
    listed = 'distinct: true, filter: {nameContains: "a"}' if part == "g" else "distinct: false"
    query = (
        f"query($after: String) {{ landlords(first: 3, {listed}, after: $after) "
        "{ totalCount pageInfo { endCursor } } }"
    )
    payload = _payload((await client.data(query))["landlords"]["pageInfo"]["endCursor"])
    assert "g" in payload if part == "g" else len(payload["p"]) > 1 < len(payload["t"])
    if part in ("p", "t"):
        payload[part] = dict.fromkeys(payload[part], value)
        payload["d"] = sorted(payload["t"]) if part == "t" else []
    else:
        payload[part] = value
    client.sandbox.reset_counters()

    body = await client.query(query, {"after": _cursor(payload)})

    assert error_codes(body) == ["INVALID_CURSOR"]
    assert sum(state.count() for state in client.sandbox.states.values()) == 0


@pytest.mark.parametrize("done", [[[1]], [{"a": 1}], [1]])
async def test_a_cursor_whose_finished_providers_are_not_names_is_malformed(
    client: Client, done: list[object]
) -> None:
    """Its fingerprint copied from a real cursor, a list inside `d` could not be hashed when
    the providers it names were compared with the list's: an INTERNAL_SERVER_ERROR."""
    query = (
        "query($after: String) { landlords(first: 3, after: $after) { pageInfo { endCursor } } }"
    )
    payload = _payload((await client.data(query))["landlords"]["pageInfo"]["endCursor"])
    payload["d"] = done

    body = await client.query(query, {"after": _cursor(payload)})

    assert error_codes(body) == ["INVALID_CURSOR"]


async def test_a_cursor_nested_too_deep_to_read_is_malformed(client: Client) -> None:
    """Python's own JSON reader gave up with a RecursionError: an INTERNAL_SERVER_ERROR."""
    body = await client.query(
        "query($after: String) { buildings(after: $after) { totalCount } }",
        {"after": _id("[" * 5000)},
    )

    assert error_codes(body) == ["INVALID_CURSOR"]


async def test_a_malformed_id_in_nodes_nulls_its_own_slot_only(client: Client) -> None:
    """One malformed id made `nodes` null (so `data` null, `nodes` being `[Node]!`), though a
    well-formed id without a record nulls only its own slot: a malformed one does the same."""
    listed = await client.data(
        '{ buildings(first: 2, providers: ["primmo"]) { edges { node { id } } } }'
    )
    first, second = (edge["node"]["id"] for edge in listed["buildings"]["edges"])
    ids = [
        first,
        "garbage",
        _id("Building:primmo:999999"),
        _id("Building:nowhere:1"),
        _id("Invoice:pms:inv_1"),
        _id("entity:Nothing:primmo:1"),
        second,
    ]

    body = await client.query("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": ids})

    assert body["data"] == {"nodes": [{"id": first}, None, None, None, None, None, {"id": second}]}
    assert sorted((e["path"][1], e["extensions"]["code"]) for e in body["errors"]) == [
        (1, "INVALID_ID"),
        (2, "NOT_FOUND"),
        (3, "INVALID_ID"),
        (4, "INVALID_ID"),
        (5, "INVALID_ID"),
    ]
    assert {e["path"][0] for e in body["errors"]} == {"nodes"}


async def test_nodes_of_a_failing_provider_null_their_own_slots_only(client: Client) -> None:
    """Primmo down: its ids answer null with its error at their own paths, and pms's ids are
    answered, as one provider's failure leaves the others' data everywhere else."""
    listed = await client.data(
        '{ a: buildings(first: 1, providers: ["primmo"]) { edges { node { id } } } '
        'b: buildings(first: 1, providers: ["pms"]) { edges { node { id } } } }'
    )
    primmo, pms = (listed[alias]["edges"] for alias in ("a", "b"))
    ids = [primmo[0]["node"]["id"], pms[0]["node"]["id"]]
    client.primmo.inject("error", status=503)

    body = await client.query("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": ids})

    assert body["data"] == {"nodes": [None, {"id": ids[1]}]}
    assert [(e["path"], e["extensions"]["provider"]) for e in body["errors"]] == [
        (["nodes", 0], "primmo")
    ]


@pytest.mark.parametrize(
    "listed",
    [
        "landlords(providers: [])",
        "buildings(providers: [], distinct: true)",
        "relationships(providers: [])",
        "payments(providers: [])",
        'unitsForRent(providers: [], from: "2026-01-01", to: "2026-01-31")',
    ],
)
async def test_an_empty_list_of_providers_is_refused_not_an_empty_list(
    client: Client, listed: str
) -> None:
    """`providers: []` answered totalCount 0, as if no provider had any record; like an
    empty filter text, it is refused, before any provider is asked."""
    await client.data("{ landlords(first: 1) { totalCount } }")
    client.sandbox.reset_counters()

    body = await client.query(f"{{ {listed} {{ totalCount }} }}")

    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["message"] == (
        "`providers` is empty: name at least one provider, or leave `providers` out."
    )
    assert sum(state.count() for state in client.sandbox.states.values()) == 0


async def test_a_filter_text_too_long_for_primmos_server_once_encoded_is_the_callers_to_shorten(
    client: Client,
) -> None:
    """200 characters outside ASCII pass the gateway's limit on filter texts but take 2,400
    bytes of Primmo's query string (a name is matched in two properties, each `é` six bytes
    encoded): refused as the caller's input before anything is sent, not a 414 reported as
    the gateway's own malformed request; the same length in ASCII is answered."""
    query = (
        'query($t: String!) { tenants(first: 2, providers: ["primmo"], '
        "filter: {nameContains: $t}) { totalCount } }"
    )
    client.primmo.reset_counter()

    refused = await client.query(query, {"t": "é" * 200})
    answered = await client.query(query, {"t": "e" * 200})

    assert error_codes(refused) == ["BAD_USER_INPUT"]
    assert "shorten the filter text" in refused["errors"][0]["message"]
    assert client.primmo.count("GET", "/api/Tenants") == 1, "only the ASCII text was sent"
    assert "errors" not in answered
