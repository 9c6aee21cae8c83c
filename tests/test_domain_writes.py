"""The lease and money writes, each at every provider that takes it: done, then each way it is
refused (the provider's 422/400, its 409, an unknown record's 404, a provider that does not
answer), each as data naming what to fix, and where a provider cannot, said so."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest

from gateway.clock import ManualClock
from gateway.model import Entity
from gateway.sandbox import Sandbox
from gateway.sandbox.pms import PERMISSIONS as PMS_PERMISSIONS
from schema.ids import decode_id, encode_id
from tests.conftest import Client, error_codes, keyed, serving

UPDATE = (
    "mutation($input: UpdateLeaseInput!) { updateLease(input: $input) { "
    "lease { id endDate deposit { amount currency } } errors { code field message } } }"
)
END = (
    "mutation($input: EndLeaseInput!) { endLease(input: $input) { "
    "lease { id endDate status } errors { code field message } } }"
)
RENT = (
    "mutation($input: ChangeRentInput!) { changeRent(input: $input) { "
    "rentChange { effectiveDate rent { amount currency } } "
    "lease { startDate endDate rent { amount currency } "
    "rentChanges { effectiveDate rent { amount } } } "
    "errors { code field message } } }"
)
CHARGE = (
    "mutation($input: CreateChargeInput!) { createCharge(input: $input) { "
    "charge { id provider amount { amount currency } balance { amount } dueOn status "
    "description lease { id } } errors { code field message } } }"
)
PAY = (
    "mutation($input: RecordPaymentInput!) { recordPayment(input: $input) { "
    "payment { id amount { amount } status charge { status balance { amount } } } "
    "errors { code field message } } }"
)


@dataclass
class Lease:
    """A lease of the sandbox, as the gateway names it, and its terms in the books."""

    id: str
    start: date
    end: date


def _lease(client: Client, provider: str, running: bool = True) -> Lease:
    world = client.sandbox.world
    homes = {b.id: b.provider for b in world.buildings}
    units = {u.id: homes[u.building_id] for u in world.units}
    books = client.sandbox.states[provider].records.books
    for tenant in world.tenants:
        lease = tenant.lease
        if units[tenant.unit_id] != provider or lease.covers(world.today) != running:
            continue
        if running and lease.end < world.today + timedelta(days=60):
            continue
        if provider == "primmo":
            return Lease(
                encode_id(Entity.LEASE, "primmo", str(books.number(lease))), lease.start, lease.end
            )
        if min(books.tenants(lease)) == tenant.id:
            home = world.references[("tenant", tenant.id)].split(":", 1)[1].split("/")[0]
            key = f"{home}/lease_{books.number(lease)}"
            return Lease(encode_id(Entity.LEASE, "pms", key), lease.start, lease.end)
    raise AssertionError(f"no {provider} lease")


def _rent_at_end(lease: Lease, amount: str) -> dict[str, Any]:
    """changeRent's input: the rent from the lease's last day, in dollars."""
    return {
        "leaseId": lease.id,
        "effectiveDate": str(lease.end),
        "rent": {"amount": amount, "currency": "CAD"},
    }


def _gone(provider: str) -> str:
    return encode_id(Entity.LEASE, provider, "prop_1/lease_1" if provider == "pms" else "1")


def _payment(charge: str, amount: str, **more: str) -> dict[str, Any]:
    """`recordPayment`'s variables: `amount` CAD on the charge, and any more input."""
    return {"input": {"chargeId": charge, "amount": {"amount": amount, "currency": "CAD"}, **more}}


def _errors(data: dict[str, Any], name: str) -> list[tuple[str, str | None]]:
    return [(error["code"], error["field"]) for error in data[name]["errors"]]


def _writes(client: Client, provider: str) -> int:
    return sum(
        number
        for (method, _), number in client.sandbox.states[provider].requests.items()
        if method == "POST" and not _ == "/api/Token" and "identity" not in _
    )


async def test_a_pms_lease_is_extended_its_deposit_changed_then_ended_early(
    client: Client,
) -> None:
    lease = _lease(client, "pms")
    later = lease.end + timedelta(days=90)

    updated = await client.data(
        UPDATE,
        {
            "input": {
                "leaseId": lease.id,
                "endDate": str(later),
                "deposit": {"amount": "900", "currency": "CAD"},
            }
        },
    )
    ended = await client.data(
        END, {"input": {"leaseId": lease.id, "endDate": "2026-12-31", "reason": "moving"}}
    )

    assert updated["updateLease"] == {
        "lease": {
            "id": lease.id,
            "endDate": str(later),
            "deposit": {"amount": "900.00", "currency": "CAD"},
        },
        "errors": [],
    }
    assert ended["endLease"]["errors"] == []
    assert ended["endLease"]["lease"]["endDate"] == "2026-12-31"
    world = client.sandbox.world
    assert any(t.lease.end == date(2026, 12, 31) for t in world.tenants), "every view sees it"


@pytest.mark.parametrize(
    ("query", "name", "given", "expected"),
    [
        (UPDATE, "updateLease", {"endDate": "2020-01-31"}, [("VALIDATION_FAILED", "endDate")]),
        (
            UPDATE,
            "updateLease",
            {"deposit": {"amount": "10.50", "currency": "CAD"}},
            [("VALIDATION_FAILED", "deposit")],
        ),
        (END, "endLease", {"endDate": "2099-12-31"}, [("VALIDATION_FAILED", "endDate")]),
        (
            RENT,
            "changeRent",
            {"effectiveDate": "2099-01-01", "rent": {"amount": "1500", "currency": "CAD"}},
            [("VALIDATION_FAILED", "effectiveDate")],
        ),
        (
            RENT,
            "changeRent",
            {"effectiveDate": "2026-12-01", "rent": {"amount": "1500", "currency": "USD"}},
            [("VALIDATION_FAILED", "rent")],
        ),
        (
            CHARGE,
            "createCharge",
            {"amount": {"amount": "10.125", "currency": "CAD"}, "dueOn": "2026-12-01"},
            [("VALIDATION_FAILED", "amount")],
        ),
    ],
    ids=["past-end", "deposit-cents", "end-after-end", "rent-outside", "rent-usd", "charge-cents"],
)
async def test_pms_refuses_what_is_invalid_naming_the_callers_field(
    client: Client, query: str, name: str, given: dict[str, Any], expected: list[Any]
) -> None:
    lease = _lease(client, "pms")

    data = await client.data(query, {"input": {"leaseId": lease.id, **given}})

    assert _errors(data, name) == expected
    assert data[name][next(k for k in data[name] if k != "errors")] is None


LEASE_WRITES = [
    (UPDATE, "updateLease", {"endDate": "2027-12-31"}),
    (END, "endLease", {"endDate": "2026-12-31"}),
    (
        RENT,
        "changeRent",
        {"effectiveDate": "2026-12-01", "rent": {"amount": "1500", "currency": "CAD"}},
    ),
    (
        CHARGE,
        "createCharge",
        {"amount": {"amount": "25.00", "currency": "CAD"}, "dueOn": "2026-12-01"},
    ),
]


@pytest.mark.parametrize(("query", "name", "given"), LEASE_WRITES, ids=[w[1] for w in LEASE_WRITES])
async def test_a_pms_lease_named_under_another_property_is_not_found_and_nothing_written(
    client: Client, query: str, name: str, given: dict[str, Any]
) -> None:
    """pms takes some lease writes under the lease's own id alone: the property the gateway's
    id names first must still be the lease's, or a caller could write to another property's
    lease (found trying the product: `createCharge` billed it)."""
    lease = _lease(client, "pms")
    key = decode_id(lease.id)[2]
    home, own = key.split("/")
    others = {
        reference.split(":", 1)[1].split("/")[0]
        for (kind, _), reference in client.sandbox.world.references.items()
        if kind == "tenant" and reference.startswith("pms:")
    } - {home}
    before = _writes(client, "pms")

    for elsewhere in (sorted(others)[0], "prop_99999"):
        moved = encode_id(Entity.LEASE, "pms", f"{elsewhere}/{own}")
        data = await client.data(query, {"input": {"leaseId": moved, **given}})
        assert _errors(data, name) == [("NOT_FOUND", "leaseId")], elsewhere

    assert _writes(client, "pms") == before


@pytest.mark.parametrize(("query", "name", "given"), LEASE_WRITES, ids=[w[1] for w in LEASE_WRITES])
async def test_an_ended_pms_lease_is_a_conflict_and_an_unknown_one_not_found(
    client: Client, query: str, name: str, given: dict[str, Any]
) -> None:
    ended = _lease(client, "pms", running=False)

    conflict = await client.data(query, {"input": {"leaseId": ended.id, **given}})
    missing = await client.data(query, {"input": {"leaseId": _gone("pms"), **given}})

    assert [code for code, _ in _errors(conflict, name)] == ["CONFLICT"]
    assert _errors(missing, name) == [("NOT_FOUND", "leaseId")]


@pytest.mark.parametrize(("query", "name", "given"), LEASE_WRITES, ids=[w[1] for w in LEASE_WRITES])
async def test_a_pms_write_unanswered_is_outcome_unknown_sent_once(
    impatient: Client, query: str, name: str, given: dict[str, Any]
) -> None:
    lease = _lease(impatient, "pms")
    impatient.pms.inject("slow", seconds=30, method="POST")
    before = _writes(impatient, "pms")

    data = await impatient.data(query, {"input": {"leaseId": lease.id, **given}})

    assert [code for code, _ in _errors(data, name)] == ["OUTCOME_UNKNOWN"]
    assert _writes(impatient, "pms") == before + 1


async def test_a_rent_change_at_pms_shows_in_the_lease_and_twice_on_a_day_conflicts(
    client: Client,
) -> None:
    lease = _lease(client, "pms")
    given = {
        "leaseId": lease.id,
        "effectiveDate": "2026-12-01",
        "rent": {"amount": "1999", "currency": "CAD"},
    }

    first = await client.data(RENT, {"input": given})
    again = await client.data(
        RENT, {"input": {**given, "rent": {"amount": "2001", "currency": "CAD"}}}
    )

    assert first["changeRent"]["rentChange"] == {
        "effectiveDate": "2026-12-01",
        "rent": {"amount": "1999.00", "currency": "CAD"},
    }
    assert {"effectiveDate": "2026-12-01", "rent": {"amount": "1999.00"}} in first["changeRent"][
        "lease"
    ]["rentChanges"]
    assert [code for code, _ in _errors(again, "changeRent")] == ["CONFLICT"]


async def test_primmo_takes_a_rent_change_and_an_invoice_and_refuses_as_primmo_does(
    client: Client,
) -> None:
    lease = _lease(client, "primmo")
    rent = {
        "leaseId": lease.id,
        "effectiveDate": str(lease.end),
        "rent": {"amount": "1750", "currency": "CAD"},
    }
    charge = {
        "leaseId": lease.id,
        "amount": {"amount": "45.50", "currency": "CAD"},
        "dueOn": "2026-11-20",
        "description": "Stationnement",
    }

    changed = await client.data(RENT, {"input": rent})
    twice = await client.data(RENT, {"input": rent})
    outside = await client.data(RENT, {"input": {**rent, "effectiveDate": "2099-01-01"}})
    billed = await client.data(CHARGE, {"input": charge})
    dollars = await client.data(
        CHARGE, {"input": {**charge, "amount": {"amount": "45.50", "currency": "EUR"}}}
    )
    missing = await client.data(CHARGE, {"input": {**charge, "leaseId": _gone("primmo")}})
    cents = await client.data(
        CHARGE, {"input": {**charge, "amount": {"amount": "45.505", "currency": "CAD"}}}
    )
    ended = await client.data(
        CHARGE, {"input": {**charge, "leaseId": _lease(client, "primmo", running=False).id}}
    )
    unknown = await client.data(RENT, {"input": {**rent, "leaseId": _gone("primmo")}})

    assert changed["changeRent"]["rentChange"]["rent"] == {"amount": "1750.00", "currency": "CAD"}
    read_again = changed["changeRent"]["lease"]
    assert (read_again["startDate"], read_again["endDate"]) == (str(lease.start), str(lease.end))
    assert read_again["rent"] is not None and read_again["rent"]["currency"] == "CAD"
    assert {"effectiveDate": str(lease.end), "rent": {"amount": "1750.00"}} in read_again[
        "rentChanges"
    ]
    assert [code for code, _ in _errors(twice, "changeRent")] == ["CONFLICT"]
    assert _errors(outside, "changeRent") == [("VALIDATION_FAILED", "effectiveDate")]
    created = billed["createCharge"]["charge"]
    assert created["provider"] == "primmo" and created["lease"]["id"] == lease.id
    assert (created["amount"], created["balance"], created["status"]) == (
        {"amount": "45.50", "currency": "CAD"},
        {"amount": "45.50"},
        "OPEN",
    )
    assert created["description"] == "Stationnement"
    assert _errors(dollars, "createCharge") == [("VALIDATION_FAILED", "amount")]
    assert _errors(missing, "createCharge") == [("NOT_FOUND", "leaseId")]
    assert _errors(cents, "createCharge") == [("VALIDATION_FAILED", "amount")]
    assert [code for code, _ in _errors(ended, "createCharge")] == ["CONFLICT"]
    assert _errors(unknown, "changeRent") == [("NOT_FOUND", "leaseId")]


async def test_primmo_writes_unanswered_are_outcome_unknown_sent_once(impatient: Client) -> None:
    """Each is sent once and not answered. The token is fetched first: a deadline reached
    before a write leaves (on the read of its lease) is a timeout, not an unknown outcome."""
    client = impatient
    lease = _lease(client, "primmo")
    await client.data('{ leases(first: 1, providers: ["primmo"]) { totalCount } }')
    client.primmo.inject("slow", seconds=30, method="POST")

    rent = await client.data(RENT, {"input": _rent_at_end(lease, "1")})
    charge = await client.data(
        CHARGE,
        {
            "input": {
                "leaseId": lease.id,
                "amount": {"amount": "1", "currency": "CAD"},
                "dueOn": "2026-12-01",
            }
        },
    )

    assert [code for code, _ in _errors(rent, "changeRent")] == ["OUTCOME_UNKNOWN"]
    assert [code for code, _ in _errors(charge, "createCharge")] == ["OUTCOME_UNKNOWN"]
    assert _writes(client, "primmo") == 2


async def test_what_a_provider_cannot_write_is_refused_naming_it_and_nothing_sent(
    client: Client,
) -> None:
    lease = _lease(client, "primmo")
    charge = encode_id(Entity.CHARGE, "primmo", "100000000")

    update = await client.query(UPDATE, {"input": {"leaseId": lease.id, "endDate": "2027-01-31"}})
    payment = await client.query(PAY, _payment(charge, "1"))

    assert error_codes(update) == error_codes(payment) == ["BAD_USER_INPUT"]
    assert update["errors"][0]["message"] == "primmo does not change leases through its API."
    assert payment["errors"][0]["message"] == "primmo does not record payments through its API."
    assert _writes(client, "primmo") == 0


async def _open_invoice(client: Client) -> dict[str, Any]:
    """An open pms invoice, found in the sandbox's books and read by id: one request, which a
    half-second deadline (`impatient`) allows on a busy machine, where paging the whole
    invoice list for an open one may not."""
    invoices, _ = client.pms.records.money()
    row = next(row for row in invoices if row["status"] in ("sent", "overdue", "partially_paid"))
    data = await client.data(
        "query($id: ID!) { node(id: $id) { id ... on Charge { balance { amount } } } }",
        {"id": encode_id(Entity.CHARGE, "pms", str(row["id"]))},
    )
    node: dict[str, Any] = data["node"]
    return node


async def test_a_payment_recorded_at_pms_settles_its_charge(client: Client) -> None:
    invoice = await _open_invoice(client)
    owed = invoice["balance"]["amount"]

    part = await client.data(PAY, _payment(invoice["id"], "1.00", method="interac"))
    rest = f"{float(owed) - 1:.2f}"
    whole = await client.data(PAY, _payment(invoice["id"], rest))
    after = await client.data(PAY, _payment(invoice["id"], "1"))

    assert part["recordPayment"]["payment"]["charge"] == {
        "status": "OPEN",
        "balance": {"amount": rest},
    }
    assert whole["recordPayment"]["payment"]["status"] == "COMPLETED"
    assert whole["recordPayment"]["payment"]["charge"] == {
        "status": "PAID",
        "balance": {"amount": "0.00"},
    }
    assert [code for code, _ in _errors(after, "recordPayment")] == ["CONFLICT"]


async def test_a_payment_dated_past_the_calendars_end_in_utc_is_refused_naming_paid_at(
    client: Client,
) -> None:
    """Found hunting 500s: `9999-12-31T23:59:59-12:00` is a moment of year 10000 in UTC,
    where the pms sandbox writes its timestamps; it failed with a 500 (the gateway said
    OUTCOME_UNKNOWN) where a server validating its input refuses the field."""
    invoice = await _open_invoice(client)
    before = _writes(client, "pms")

    data = await client.data(PAY, _payment(invoice["id"], "1", paidAt="9999-12-31T23:59:59-12:00"))

    assert _errors(data, "recordPayment") == [("VALIDATION_FAILED", "paidAt")]
    assert _writes(client, "pms") == before + 1


async def test_a_pms_payment_refused_unknown_or_unanswered(impatient: Client) -> None:
    client = impatient
    invoice = await _open_invoice(client)
    too_much = f"{float(invoice['balance']['amount']) + 100:.2f}"
    gone = encode_id(Entity.CHARGE, "pms", "inv_1")

    over = await client.data(PAY, _payment(invoice["id"], too_much))
    method = await client.data(PAY, _payment(invoice["id"], "1", method="cheque"))
    missing = await client.data(PAY, _payment(gone, "1"))
    client.pms.inject("slow", seconds=30)
    late = await client.data(PAY, _payment(invoice["id"], "1"))

    assert _errors(over, "recordPayment") == [("VALIDATION_FAILED", "amount")]
    assert _errors(method, "recordPayment") == [("VALIDATION_FAILED", "method")]
    assert _errors(missing, "recordPayment") == [("NOT_FOUND", "chargeId")]
    assert [code for code, _ in _errors(late, "recordPayment")] == ["OUTCOME_UNKNOWN"]


async def test_a_float_amount_is_refused_before_anything_runs(client: Client) -> None:
    lease = _lease(client, "pms")

    literal = await client.query(
        f'mutation {{ createCharge(input: {{leaseId: "{lease.id}", amount: {{amount: 25.1, '
        'currency: "CAD"}, dueOn: "2026-12-01"}) { errors { code } } }'
    )
    variable = await client.query(
        CHARGE,
        {
            "input": {
                "leaseId": lease.id,
                "amount": {"amount": 25.1, "currency": "CAD"},
                "dueOn": "2026-12-01",
            }
        },
    )

    assert error_codes(literal) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "never a float" in literal["errors"][0]["message"]
    assert error_codes(variable) == ["BAD_USER_INPUT"]
    assert _writes(client, "pms") == 0


@pytest.mark.parametrize(
    ("amount", "said"),
    [
        ("\uff11\uff10", "digits and a point"),
        (" 10", "digits and a point"),
        ("1e3", "digits and a point"),
        ("10.1234567", "more than 6 decimal places"),
        ("1234567890123456", "more than 15 significant digits"),
        (True, 'a string of digits, as "1250.00".'),
    ],
)
async def test_an_amount_that_is_not_ascii_digits_and_a_point_is_refused_saying_why(
    client: Client, amount: object, said: str
) -> None:
    """Python's Decimal reads any script's digits and spaces around them; no provider's API
    does, so the gateway would have been the only one to understand the caller."""
    lease = _lease(client, "pms")
    given = {"leaseId": lease.id, "amount": {"amount": amount, "currency": "CAD"}}

    body = await client.query(CHARGE, {"input": {**given, "dueOn": "2026-12-01"}})

    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert said in body["errors"][0]["message"]
    assert "never a float" not in body["errors"][0]["message"]
    assert _writes(client, "pms") == 0


async def test_a_payment_time_without_its_offset_is_refused_not_taken_as_utc(
    client: Client,
) -> None:
    """`2026-11-03T09:30:00` paid in Québec is 13:30 or 14:30 UTC: taken as UTC, the payment
    would be recorded hours off without a word."""
    invoice = await _open_invoice(client)

    body = await client.query(PAY, _payment(invoice["id"], "1.00", paidAt="2026-11-03T09:30:00"))

    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == "paidAt"
    assert _writes(client, "pms") == 0


def _sent(client: Client, provider: str) -> list[str]:
    """The text of every write's body, as the provider received it."""
    return [
        seen.body.decode()
        for seen in client.sandbox.states[provider].seen()
        if seen.method in ("POST", "PATCH") and not seen.token
    ]


@pytest.mark.parametrize("provider", ["pms", "primmo"])
async def test_an_amount_reaches_the_provider_in_the_callers_own_digits(
    client: Client, provider: str
) -> None:
    """`1250.10` is sent as `1250.10`, not as a float's `1250.1`; the largest amount a
    provider's JSON number holds exactly (15 significant digits) arrives intact; a whole
    rent goes as an integer."""
    lease = _lease(client, provider)

    billed = [
        await client.data(
            CHARGE,
            {
                "input": {
                    "leaseId": lease.id,
                    "amount": {"amount": amount, "currency": "CAD"},
                    "dueOn": str(lease.end),
                }
            },
        )
        for amount in ("1250.10", "9999999999999.99")
    ]
    changed = await client.data(RENT, {"input": _rent_at_end(lease, "1750.00")})

    assert [_errors(one, "createCharge") for one in billed] == [[], []]
    assert _errors(changed, "changeRent") == []
    cents, huge, rent = _sent(client, provider)
    assert re.search(r'"(amount|Amount)":1250\.10[,}]', cents)
    assert re.search(r'"(amount|Amount)":9999999999999\.99[,}]', huge)
    assert re.search(r'"(monthly_rent|Amount)":1750[,}]', rent)
    amounts = [one["createCharge"]["charge"]["amount"]["amount"] for one in billed]
    assert amounts == ["1250.10", "9999999999999.99"]


@pytest.mark.parametrize("provider", ["pms", "primmo"])
async def test_an_amount_no_providers_json_number_holds_is_refused_and_not_sent(
    client: Client, provider: str
) -> None:
    """Sixteen significant digits: a double would bill 99999999999999.98. Every write that
    takes an amount refuses it before anything runs."""
    lease = _lease(client, provider)
    huge = {"amount": "99999999999999.99", "currency": "CAD"}
    invoice = encode_id(Entity.CHARGE, provider, "inv_1" if provider == "pms" else "1")
    writes = [
        (CHARGE, {"leaseId": lease.id, "amount": huge, "dueOn": str(lease.end)}),
        (RENT, {"leaseId": lease.id, "effectiveDate": str(lease.end), "rent": huge}),
        (PAY, {"chargeId": invoice, "amount": huge}),
        (UPDATE, {"leaseId": lease.id, "deposit": huge}),
    ]

    answers = [await client.query(query, {"input": given}) for query, given in writes]

    assert [error_codes(answer) for answer in answers] == [["BAD_USER_INPUT"]] * len(writes)
    assert all("15 significant digits" in a["errors"][0]["message"] for a in answers)
    assert _sent(client, provider) == []


async def test_each_write_needs_its_scope(sandbox: Sandbox, clock: ManualClock) -> None:
    key = "lease-manager-0123456789"
    settings = keyed({key: ["property:read", "tenant:read", "lease:manage"]})
    async with serving(sandbox, clock, settings, headers={"X-API-Key": key}) as client:
        lease = _lease(client, "pms")
        allowed = await client.data(
            UPDATE, {"input": {"leaseId": lease.id, "endDate": "2027-12-31"}}
        )
        billed = await client.query(
            CHARGE,
            {
                "input": {
                    "leaseId": lease.id,
                    "amount": {"amount": "1", "currency": "CAD"},
                    "dueOn": "2026-12-01",
                }
            },
        )

    assert allowed["updateLease"]["errors"] == []
    assert error_codes(billed) == ["FORBIDDEN"]
    assert billed["errors"][0]["extensions"]["scope"] == "financial:manage"


async def test_a_write_the_pms_account_may_not_make_is_refused_and_frees_its_key(
    client: Client,
) -> None:
    """pms refuses a token without the route's permission (403 INSUFFICIENT_PERMISSIONS):
    the write did not happen, the error names the permission for whoever runs the account,
    and once it is granted the same idempotency key runs the write."""
    lease = _lease(client, "pms")
    given = {
        "leaseId": lease.id,
        "amount": {"amount": "12.00", "currency": "CAD"},
        "dueOn": str(lease.end),
        "idempotencyKey": "k-permission",
    }
    client.pms.records.permissions = [p for p in PMS_PERMISSIONS if p != "financial:create"]
    client.pms.revoke_tokens()
    before = len(client.pms.records.money()[0])

    refused = await client.query(CHARGE, {"input": given})
    unwritten = len(client.pms.records.money()[0])
    client.pms.records.permissions = list(PMS_PERMISSIONS)
    client.pms.revoke_tokens()
    granted = await client.data(CHARGE, {"input": given})

    assert error_codes(refused) == ["UPSTREAM_ERROR"]
    assert "financial:create" in refused["errors"][0]["message"]
    assert _errors(granted, "createCharge") == []
    assert (unwritten, len(client.pms.records.money()[0])) == (before, before + 1)


async def test_an_early_end_without_a_reason_sends_none_and_is_still_an_early_end(
    client: Client,
) -> None:
    """A field left out is not sent (pms's own default applies): the gateway says the end is
    early (`early_termination`), not why; and an early end after the present end is refused."""
    lease = _lease(client, "pms")
    early = lease.end - timedelta(days=30)

    ended = await client.data(END, {"input": {"leaseId": lease.id, "endDate": str(early)}})
    late = await client.data(
        END, {"input": {"leaseId": lease.id, "endDate": str(lease.end + timedelta(days=30))}}
    )

    (sent, *_) = [
        json.loads(seen.body)
        for seen in client.pms.seen()
        if seen.method == "POST" and seen.path.endswith("/lease")
    ]
    assert sent == {"end_date": str(early), "early_termination": True}
    assert ended["endLease"]["lease"]["endDate"] == str(early)
    assert _errors(late, "endLease") == [("VALIDATION_FAILED", "endDate")]
