"""Every write's guarantees, whatever it writes: each field given reaches the provider or is
refused naming it before anything is sent; sent once; a retry under an idempotency key gets
the first outcome and never writes twice, in one process and across replicas."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from graphql import build_schema, get_named_type

from gateway.clock import ManualClock
from gateway.config import Settings
from gateway.model import Entity
from gateway.sandbox import Sandbox
from gateway.state.idempotency import KeyInUse, KeyReused, KeysExhausted, LocalIdempotency
from gateway.state.idempotency.redis import RedisIdempotency
from gateway.state.redis import RedisLink
from gateway.tools.loopback import free_port
from gateway.upstream.dispatch import watching
from gateway.upstream.transports import Sent
from schema import sdl
from schema.ids import encode_id
from tests.conftest import Client, error_codes, eventually, serving
from tests.redis_server import RedisServer

CREATE = (
    "mutation($input: CreateTenantInput!) { createTenant(input: $input) { "
    "tenant { id sourceId firstName lastName email phone tenantType } "
    "errors { code field message } } }"
)


async def _unit(client: Client, provider: str) -> str:
    if provider == "primmo":
        data = await client.data(
            '{ units(first: 1, providers: ["primmo"]) { edges { node { id } } } }'
        )
        return str(data["units"]["edges"][0]["node"]["id"])
    data = await client.data(
        '{ buildings(first: 1, providers: ["pms"]) { edges { node { units { id } } } } }'
    )
    return str(data["buildings"]["edges"][0]["node"]["units"][0]["id"])


async def _pms_tenant(client: Client, last_name: str, key: str) -> dict[str, Any]:
    """A new tenant's input at a pms unit (pms needs an email), under an idempotency key."""
    return {
        "unitId": await _unit(client, "pms"),
        "firstName": "Léa",
        "lastName": last_name,
        "email": "lea@example.com",
        "idempotencyKey": key,
    }


def _posts(client: Client, provider: str) -> list[dict[str, Any]]:
    state = client.sandbox.states[provider]
    return [
        json.loads(seen.body) if seen.body else {}
        for seen in state.seen()
        if seen.method == "POST" and seen.path.endswith(("/Tenants", "/tenants"))
    ]


async def test_every_field_given_reaches_primmo(client: Client) -> None:
    unit = await _unit(client, "primmo")
    person = {"firstName": "Léa", "lastName": "Roy", "email": "lea@example.com"}

    data = await client.data(
        CREATE, {"input": {"unitId": unit, **person, "phone": "+1-418-555-0101", "tenantType": "C"}}
    )

    payload = data["createTenant"]
    assert payload["errors"] == []
    ((sent),) = _posts(client, "primmo")
    assert (sent["Email"], sent["Phone"], sent["TenantType"]) == (
        "lea@example.com",
        "+1-418-555-0101",
        "C",
    )
    assert payload["tenant"]["email"] == "lea@example.com"
    assert payload["tenant"]["tenantType"] == "C"


async def test_a_field_left_out_is_not_sent_so_the_providers_default_applies(
    client: Client,
) -> None:
    unit = await _unit(client, "primmo")

    data = await client.data(CREATE, {"input": {"unitId": unit, "firstName": "A", "lastName": "B"}})

    ((sent),) = _posts(client, "primmo")
    assert not {"TenantType", "Email", "Phone"} & set(sent)
    assert data["createTenant"]["tenant"]["tenantType"] == "D"


async def test_a_field_the_provider_has_no_place_for_is_refused_and_nothing_sent(
    client: Client,
) -> None:
    unit = await _unit(client, "pms")

    data = await client.data(
        CREATE,
        {
            "input": {
                "unitId": unit,
                "firstName": "Léa",
                "lastName": "Roy",
                "email": "lea@example.com",
                "tenantType": "C",
            }
        },
    )

    assert data["createTenant"]["tenant"] is None
    assert [(e["code"], e["field"]) for e in data["createTenant"]["errors"]] == [
        ("VALIDATION_FAILED", "tenantType")
    ]
    assert _posts(client, "pms") == []


async def test_a_providers_refusal_names_the_callers_field(client: Client) -> None:
    unit = await _unit(client, "primmo")

    data = await client.data(
        CREATE, {"input": {"unitId": unit, "firstName": "A", "lastName": "B", "email": "nope"}}
    )

    assert [(e["code"], e["field"]) for e in data["createTenant"]["errors"]] == [
        ("VALIDATION_FAILED", "email")
    ]


@pytest.mark.parametrize(
    ("provider", "source_id"), [("pms", "prop_1/unit_99999"), ("primmo", "999999")]
)
async def test_a_unit_the_provider_does_not_have_is_named_as_the_field_not_found(
    client: Client, provider: str, source_id: str
) -> None:
    """The provider answers that it has no such unit without naming a field; the write names
    one record, so the caller is told which of its fields that is."""
    data = await client.data(
        CREATE,
        {
            "input": {
                "unitId": encode_id(Entity.UNIT, provider, source_id),
                "firstName": "A",
                "lastName": "B",
            }
        },
    )

    assert data["createTenant"]["tenant"] is None
    assert [(e["code"], e["field"]) for e in data["createTenant"]["errors"]] == [
        ("NOT_FOUND", "unitId")
    ]


@pytest.mark.parametrize("key", ["k-1", "a b"])
async def test_a_retry_under_the_same_key_gets_the_first_tenant_and_writes_once(
    client: Client, key: str
) -> None:
    """A space is printable ASCII, as the rule says, and a key may hold one: "a b" was
    refused."""
    unit = await _unit(client, "primmo")
    given = {"unitId": unit, "firstName": "Léa", "lastName": "Roy", "idempotencyKey": key}

    first = await client.data(CREATE, {"input": given})
    again = await client.data(CREATE, {"input": given})
    header = await client.http.post(
        "/graphql",
        json={"query": CREATE, "variables": {"input": {**given, "idempotencyKey": None}}},
        headers={"Idempotency-Key": key},
    )

    assert first == again == header.json()["data"]
    assert first["createTenant"]["tenant"]["sourceId"]
    assert len(_posts(client, "primmo")) == 1


async def test_concurrent_retries_wait_for_the_first_and_share_its_outcome(
    client: Client,
) -> None:
    unit = await _unit(client, "primmo")
    given = {"unitId": unit, "firstName": "Léa", "lastName": "Roy", "idempotencyKey": "k-2"}
    client.primmo.latency = 0.05

    answers = await asyncio.gather(*(client.data(CREATE, {"input": given}) for _ in range(5)))

    assert all(answer == answers[0] for answer in answers)
    assert len(_posts(client, "primmo")) == 1


async def test_the_same_key_with_another_body_is_refused_and_not_sent(client: Client) -> None:
    unit = await _unit(client, "primmo")
    given = {"unitId": unit, "firstName": "Léa", "lastName": "Roy", "idempotencyKey": "k-3"}
    await client.data(CREATE, {"input": given})

    body = await client.query(CREATE, {"input": {**given, "lastName": "Tremblay"}})

    assert error_codes(body) == ["IDEMPOTENCY_KEY_REUSED"]
    assert len(_posts(client, "primmo")) == 1


async def test_keys_are_the_callers_own_and_of_a_reasonable_shape(client: Client) -> None:
    unit = await _unit(client, "primmo")
    given = {"unitId": unit, "firstName": "A", "lastName": "B", "idempotencyKey": "é" * 3}

    body = await client.query(CREATE, {"input": given})

    assert error_codes(body) == ["BAD_USER_INPUT"] and _posts(client, "primmo") == []


async def test_an_unknown_outcome_is_what_a_retry_gets_never_a_second_write(
    impatient: Client,
) -> None:
    client = impatient
    given = await _pms_tenant(client, "Roy", "k-4")
    client.pms.inject("slow", seconds=30)

    first = await client.data(CREATE, {"input": given})
    client.pms.inject("none")
    again = await client.data(CREATE, {"input": given})

    assert [e["code"] for e in first["createTenant"]["errors"]] == ["OUTCOME_UNKNOWN"]
    assert again == first
    assert len(_posts(client, "pms")) == 1


async def test_a_write_that_never_left_frees_its_key_for_the_retry(client: Client) -> None:
    """Primmo's unit is read before the tenant is posted: that read failing sent nothing."""
    unit = await _unit(client, "primmo")
    given = {"unitId": unit, "firstName": "Léa", "lastName": "Roy", "idempotencyKey": "k-5"}
    client.primmo.inject("error", status=503, method="GET")

    failed = await client.query(CREATE, {"input": given})
    client.primmo.inject("none")
    retried = await client.data(CREATE, {"input": given})

    assert error_codes(failed) == ["UPSTREAM_UNAVAILABLE"]
    assert retried["createTenant"]["errors"] == [] and retried["createTenant"]["tenant"]
    assert len(_posts(client, "primmo")) == 1


async def test_a_deadline_reached_before_the_write_left_is_a_timeout_and_frees_the_key(
    impatient: Client,
) -> None:
    client = impatient
    unit = await _unit(client, "primmo")
    given = {"unitId": unit, "firstName": "A", "lastName": "Slow-Read", "idempotencyKey": "k-9"}
    client.primmo.inject("slow", seconds=0.8, method="GET")

    late = await client.query(CREATE, {"input": given})
    client.primmo.inject("none")
    await eventually(lambda: client.primmo.in_flight == 0)
    retried = await client.data(CREATE, {"input": given})

    assert error_codes(late) == ["UPSTREAM_TIMEOUT"]
    assert retried["createTenant"]["errors"] == []
    assert len(_posts(client, "primmo")) == 1


def _named(client: Client, last_name: str, provider: str = "pms") -> int:
    """The provider's tenants of that last name."""
    if provider == "primmo":
        return sum(row["LastName"] == last_name for row in client.primmo.records.tenants)
    tables = client.pms.records
    return sum(row["last_name"] == last_name for rows in tables.tenants.values() for row in rows)


@pytest.mark.parametrize(
    ("fault", "status"), [("error", 502), ("error", 500), ("wrong_shape", 200)]
)
async def test_a_write_whose_answer_was_lost_once_sent_keeps_its_key_and_is_written_once(
    client: Client, fault: str, status: int
) -> None:
    """pms makes the tenant, then a proxy's 5xx or an unreadable 200 stands in for its answer:
    the write happened, so it is OUTCOME_UNKNOWN, and the retry gets that, not a second one."""
    given = await _pms_tenant(client, "Lost-Answer", f"k-lost-{fault}-{status}")
    client.pms.inject(fault, status=status, method="POST", after=True)

    first = await client.data(CREATE, {"input": given})
    client.pms.inject("none")
    again = await client.data(CREATE, {"input": given})

    assert [e["code"] for e in first["createTenant"]["errors"]] == ["OUTCOME_UNKNOWN"]
    assert first["createTenant"]["tenant"] is None
    assert again == first
    assert len(_posts(client, "pms")) == 1
    assert _named(client, "Lost-Answer") == 1


async def test_without_a_key_a_lost_answer_is_an_unknown_outcome_not_an_error(
    client: Client,
) -> None:
    unit = await _unit(client, "pms")
    given = {"unitId": unit, "firstName": "A", "lastName": "Unanswered", "email": "a@example.com"}
    client.pms.inject("error", status=504, method="POST", after=True)

    data = await client.data(CREATE, {"input": given})

    assert [e["code"] for e in data["createTenant"]["errors"]] == ["OUTCOME_UNKNOWN"]
    assert _named(client, "Unanswered") == 1


async def test_a_refusal_made_before_sending_frees_the_key_for_the_corrected_write(
    client: Client,
) -> None:
    """Primmo keeps no tenant's email: the gateway refuses it, nothing is sent, and the same
    key sent again without it is a new first request, not IDEMPOTENCY_KEY_REUSED."""
    unit = await _unit(client, "pms")
    given = {"unitId": unit, "firstName": "A", "lastName": "Corrected", "idempotencyKey": "k-7"}

    refused = await client.data(CREATE, {"input": {**given, "tenantType": "C"}})
    corrected = await client.data(CREATE, {"input": {**given, "email": "a@example.com"}})

    assert [e["code"] for e in refused["createTenant"]["errors"]] == ["VALIDATION_FAILED"]
    assert corrected["createTenant"]["errors"] == []
    assert _named(client, "Corrected") == 1


@pytest.mark.parametrize("provider", ["pms", "primmo"])
async def test_a_write_the_provider_refused_frees_the_key_for_the_corrected_write(
    client: Client, provider: str
) -> None:
    """The provider's own validation refuses the email (pms 422, Primmo 400): it wrote
    nothing, so the write certainly did not happen, and the corrected write under the same
    key runs instead of answering IDEMPOTENCY_KEY_REUSED."""
    unit = await _unit(client, provider)
    given = {"unitId": unit, "firstName": "A", "lastName": "Refused", "idempotencyKey": "k-10"}

    refused = await client.data(CREATE, {"input": {**given, "email": "not-an-email"}})
    corrected = await client.data(CREATE, {"input": {**given, "email": "a@example.com"}})
    again = await client.data(CREATE, {"input": {**given, "email": "a@example.com"}})

    assert [e["code"] for e in refused["createTenant"]["errors"]] == ["VALIDATION_FAILED"]
    assert corrected["createTenant"]["errors"] == [] and again == corrected
    assert _named(client, "Refused", provider) == 1


@pytest.mark.parametrize("status", [500, 503, 408])
async def test_a_refusal_that_came_with_a_status_of_doubt_keeps_the_key(
    client: Client, status: int
) -> None:
    """pms names its error VALIDATION_ERROR but answers 5xx or 408, which says nothing of
    whether the request was carried out: the retry under the key gets the first outcome and
    sends nothing, whatever the body's name."""
    given = await _pms_tenant(client, "Doubtful", f"k-doubt-{status}")
    client.pms.refuse("VALIDATION_ERROR", status=status)

    first = await client.data(CREATE, {"input": given})
    posts = client.pms.count("POST")
    retried = await client.data(CREATE, {"input": given})

    assert [e["code"] for e in first["createTenant"]["errors"]] == ["VALIDATION_FAILED"]
    assert retried == first and client.pms.count("POST") == posts


async def test_a_request_the_provider_did_not_carry_out_frees_the_key(client: Client) -> None:
    """A 429 on the write itself: sent, but not carried out (the provider says so)."""
    given = await _pms_tenant(client, "Throttled", "k-8")
    client.pms.inject("throttle", method="POST")

    throttled = await client.query(CREATE, {"input": given})
    client.pms.inject("none")
    client.clock.advance(121)
    retried = await client.data(CREATE, {"input": given})

    assert error_codes(throttled) == ["RATE_LIMITED"]
    assert retried["createTenant"]["errors"] == []
    assert _named(client, "Throttled") == 1


async def test_a_process_keeps_a_key_until_the_first_finishes_or_frees_it() -> None:
    keys = LocalIdempotency(ManualClock(), wait=0.05)
    assert await keys.begin("k", "body") is None

    with pytest.raises(KeyInUse):
        await keys.begin("k", "body")
    with pytest.raises(KeyReused):
        await keys.begin("k", "other body")
    waiting = asyncio.ensure_future(keys.begin("k", "body"))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    await keys.release("k", "body")
    assert await waiting is None


@pytest.fixture
async def two_replicas() -> AsyncIterator[tuple[RedisIdempotency, RedisIdempotency]]:
    with RedisServer().running() as server:
        one, two = RedisLink(server.url), RedisLink(server.url)
        yield RedisIdempotency(one, wait=2.0), RedisIdempotency(two, wait=2.0)
        await one.aclose()
        await two.aclose()


async def test_a_retry_on_another_replica_waits_for_the_first_and_gets_its_outcome(
    two_replicas: tuple[RedisIdempotency, RedisIdempotency],
) -> None:
    one, two = two_replicas
    assert await one.begin("k", "body") is None
    retry = asyncio.ensure_future(two.begin("k", "body"))
    await asyncio.sleep(0.1)
    assert not retry.done()

    await one.finish("k", "body", '{"outcome": 1}')

    assert await retry == '{"outcome": 1}'
    assert await two.begin("k", "body") == '{"outcome": 1}'
    with pytest.raises(KeyReused):
        await two.begin("k", "other body")


async def test_a_release_on_one_replica_lets_the_retry_on_another_run(
    two_replicas: tuple[RedisIdempotency, RedisIdempotency],
) -> None:
    one, two = two_replicas
    assert await one.begin("k", "body") is None
    retry = asyncio.ensure_future(two.begin("k", "body"))

    await one.release("k", "body")

    assert await retry is None
    await two.finish("k", "body", '{"outcome": 2}')
    assert await one.begin("k", "body") == '{"outcome": 2}'


async def test_without_redis_a_keyed_write_is_refused_and_one_without_a_key_goes_on(
    sandbox: Sandbox, clock: ManualClock, settings: Settings
) -> None:
    gone = f"redis://127.0.0.1:{free_port()}/0"
    shared = settings.model_copy(
        update={"gateway": settings.gateway.model_copy(update={"redis_url": gone})}
    )
    async with serving(sandbox, clock, shared) as client:
        unit = await _unit(client, "primmo")
        given = {"unitId": unit, "firstName": "Léa", "lastName": "Roy"}

        keyed = await client.query(CREATE, {"input": {**given, "idempotencyKey": "k-6"}})
        plain = await client.data(CREATE, {"input": given})

    assert error_codes(keyed) == ["REDIS_UNAVAILABLE"]
    assert plain["createTenant"]["errors"] == []
    assert len(_posts(client, "primmo")) == 1


CHARGE = (
    "mutation($input: CreateChargeInput!) { createCharge(input: $input) { "
    "charge { id amount { amount } } errors { code } } }"
)


async def _a_running_primmo_lease(client: Client) -> str:
    data = await client.data(
        '{ leases(first: 1, providers: ["primmo"], filter: {status: ACTIVE}) '
        "{ edges { node { id endDate } } } }"
    )
    node = data["leases"]["edges"][0]["node"]
    return str(node["id"])


async def test_the_same_amount_written_two_ways_is_the_same_write(client: Client) -> None:
    """`11` and `11.00` are one amount: the retry is the first write's, not a refusal."""
    lease = await _a_running_primmo_lease(client)
    given = {"leaseId": lease, "dueOn": "2026-12-01", "idempotencyKey": "k-amount"}

    first = await client.data(
        CHARGE, {"input": {**given, "amount": {"amount": "11", "currency": "CAD"}}}
    )
    again = await client.data(
        CHARGE, {"input": {**given, "amount": {"amount": "11.00", "currency": "cad"}}}
    )

    assert first == again and first["createCharge"]["errors"] == []
    assert sum(1 for seen in client.primmo.seen("/api/Invoices") if seen.method == "POST") == 1


async def test_a_header_key_and_an_input_key_that_differ_are_refused(client: Client) -> None:
    unit = await _unit(client, "primmo")
    given = {"unitId": unit, "firstName": "A", "lastName": "B", "idempotencyKey": "k-input"}

    answer = await client.http.post(
        "/graphql",
        json={"query": CREATE, "variables": {"input": given}},
        headers={"Idempotency-Key": "k-header"},
    )

    assert error_codes(answer.json()) == ["BAD_USER_INPUT"]
    assert _posts(client, "primmo") == []


async def test_a_currency_iso_4217_does_not_know_is_refused(client: Client) -> None:
    lease = await _a_running_primmo_lease(client)

    answer = await client.query(
        CHARGE,
        {
            "input": {
                "leaseId": lease,
                "dueOn": "2026-12-01",
                "amount": {"amount": "11", "currency": "ZZZ"},
            }
        },
    )

    assert error_codes(answer) == ["BAD_USER_INPUT"]
    assert not [seen for seen in client.primmo.seen("/api/Invoices") if seen.method == "POST"]


async def test_a_full_store_refuses_a_new_key_rather_than_forget_a_kept_one() -> None:
    keys = LocalIdempotency(ManualClock(), capacity=2)
    assert await keys.begin("a", "body") is None
    await keys.finish("a", "body", '{"kept": 1}')
    assert await keys.begin("b", "body") is None

    with pytest.raises(KeysExhausted):
        await keys.begin("c", "body")
    assert await keys.begin("a", "body") == '{"kept": 1}'


def _ids(entity: Entity, provider: str = "pms") -> str:
    return encode_id(entity, provider, "1")


_MONEY = {"amount": "10", "currency": "CAD"}

KEYED_WRITES: dict[str, tuple[str, dict[str, Any]]] = {
    "createTenant": (
        "CreateTenantInput",
        {"unitId": _ids(Entity.UNIT, "primmo"), "firstName": "A", "lastName": "B"},
    ),
    "updateLease": ("UpdateLeaseInput", {"leaseId": _ids(Entity.LEASE), "endDate": "2030-01-31"}),
    "endLease": ("EndLeaseInput", {"leaseId": _ids(Entity.LEASE), "endDate": "2030-01-31"}),
    "changeRent": (
        "ChangeRentInput",
        {"leaseId": _ids(Entity.LEASE), "effectiveDate": "2030-01-01", "rent": _MONEY},
    ),
    "createCharge": (
        "CreateChargeInput",
        {"leaseId": _ids(Entity.LEASE), "amount": _MONEY, "dueOn": "2030-01-01"},
    ),
    "recordPayment": ("RecordPaymentInput", {"chargeId": _ids(Entity.CHARGE), "amount": _MONEY}),
    "createMaintenanceRequest": (
        "CreateMaintenanceRequestInput",
        {"unitId": _ids(Entity.UNIT), "description": "Leak"},
    ),
    "assignMaintenanceRequest": (
        "AssignMaintenanceRequestInput",
        {
            "maintenanceRequestId": _ids(Entity.MAINTENANCE_REQUEST),
            "vendorId": _ids(Entity.VENDOR),
        },
    ),
    "completeMaintenanceRequest": (
        "CompleteMaintenanceRequestInput",
        {"maintenanceRequestId": _ids(Entity.MAINTENANCE_REQUEST)},
    ),
    "createWorkOrder": (
        "CreateWorkOrderInput",
        {
            "maintenanceRequestId": _ids(Entity.MAINTENANCE_REQUEST),
            "vendorId": _ids(Entity.VENDOR),
            "description": "Fix",
        },
    ),
    "startWorkOrder": ("StartWorkOrderInput", {"workOrderId": _ids(Entity.WORK_ORDER)}),
    "completeWorkOrder": ("CompleteWorkOrderInput", {"workOrderId": _ids(Entity.WORK_ORDER)}),
    "cancelWorkOrder": ("CancelWorkOrderInput", {"workOrderId": _ids(Entity.WORK_ORDER)}),
    "updateUnitStatus": (
        "UpdateUnitStatusInput",
        {"unitId": _ids(Entity.UNIT), "occupancy": "VACANT"},
    ),
    "createProperty": (
        "CreatePropertyInput",
        {"landlordId": _ids(Entity.LANDLORD, "scom"), "name": "Les Pins"},
    ),
}
"""A valid input of each mutation that takes an idempotency key, but for the key."""


def test_the_table_of_keyed_writes_names_every_mutation_that_takes_a_key() -> None:
    mutation = build_schema(sdl()).mutation_type
    assert mutation is not None
    keyed = {
        name: get_named_type(field.args["input"].type).name
        for name, field in mutation.fields.items()
        if "input" in field.args
        and "idempotencyKey" in getattr(get_named_type(field.args["input"].type), "fields", {})
    }

    assert keyed == {name: kind for name, (kind, _) in KEYED_WRITES.items()}


@pytest.mark.parametrize("key", ["", "abc\n", " abc", "abc ", "a\tb", "é", "k" * 256])
async def test_a_malformed_key_in_the_input_is_refused_as_in_the_header_by_every_write(
    client: Client, key: str
) -> None:
    """`idempotencyKey: ""` was taken as no key at all, so a retry wrote again (two Primmo
    tenants); `"abc\\n"` passed as a key. Each is refused, as the header is, with the same
    code and message, before anything is sent."""
    client.sandbox.reset_counters()
    refusals = {}
    for name, (kind, given) in KEYED_WRITES.items():
        query = f"mutation($input: {kind}!) {{ {name}(input: $input) {{ errors {{ code }} }} }}"
        named = await client.query(query, {"input": {**given, "idempotencyKey": key}})
        header = await client.http.post(
            "/graphql",
            json={"query": query, "variables": {"input": given}},
            headers={b"Idempotency-Key": key.encode()},
        )
        shown = [(e["extensions"]["code"], e["message"]) for e in named.get("errors", [])]
        refusals[name] = shown
        assert shown == [
            (e["extensions"]["code"], e["message"]) for e in header.json().get("errors", [])
        ], name

    assert refusals == dict.fromkeys(refusals, [("BAD_USER_INPUT", KEY_RULE)])
    assert sum(state.count() for state in client.sandbox.states.values()) == 0


KEY_RULE = (
    "An idempotency key is 1 to 255 printable ASCII characters, spaces included but not "
    "first or last (HTTP drops a header's outer spaces)."
)


async def test_a_refused_request_does_not_clear_another_of_the_same_write_carried_out() -> None:
    """A write of two requests: one carried out (201) and one refused unprocessed (409), in
    turn or at once. The write may have happened, so it is in doubt whatever order they
    answer in; a write whose every request was refused certainly did not happen."""

    async def answer(request: httpx.Request) -> httpx.Response:
        status = int(request.url.path.strip("/"))
        await asyncio.sleep(0.02 if status == 201 else 0.01)
        return httpx.Response(status)

    async def sent(*statuses: int, together: bool = False) -> bool:
        async with httpx.AsyncClient(
            transport=Sent(httpx.MockTransport(answer)), base_url="http://provider"
        ) as http:
            with watching() as dispatch:
                posts = [http.post(f"/{status}") for status in statuses]
                if together:
                    await asyncio.gather(*posts)
                else:
                    for post in posts:
                        await post
            return dispatch.left

    assert await sent(201, 409)
    assert await sent(409, 201, together=True), "the refusal answered while the 201 was out"
    assert not await sent(409, 422)
    assert not await sent(400)
