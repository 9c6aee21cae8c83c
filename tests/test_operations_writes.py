"""The operations writes keep every write's guarantees: a request and its work orders along
their whole flow at pms and Primmo with every field given reaching the provider, a field one
has no place for refused before anything is sent, each refusal (422, 409, 404) as data naming
the caller's field, a late answer OUTCOME_UNKNOWN, a retry under a key written once, a scope
per write; a unit's status (pms) and a landlord's new property (SCOM, with its own token)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from gateway.clock import ManualClock
from gateway.model import Entity
from gateway.sandbox import Sandbox
from gateway.sandbox.data import Tenant
from gateway.sandbox.operations import Job, Ticket, Workshop
from schema.ids import decode_id, encode_id
from tests.conftest import Client, error_codes, keyed, serving

ERRORS = "errors { code field message }"
REQUEST = (
    "maintenanceRequest { sourceId status title description priority scheduledFor completedAt "
    f"vendor {{ sourceId }} tenant {{ sourceId }} }} {ERRORS}"
)
ORDER = (
    "workOrder { sourceId status description scheduledFor startedAt completedAt "
    f"cost {{ amount currency }} request {{ sourceId }} vendor {{ sourceId }} }} {ERRORS}"
)


def _mutation(name: str, payload: str) -> str:
    kind = f"{name[0].upper()}{name[1:]}Input"
    return f"mutation($input: {kind}!) {{ {name}(input: $input) {{ {payload} }} }}"


class Books:
    """A provider's maintenance books in the sandbox, and its records' global ids."""

    def __init__(self, client: Client, provider: str) -> None:
        self.client, self.provider = client, provider
        self.shop: Workshop = client.sandbox.states[provider].records.workshop
        self.pms = provider == "pms"

    def _id(self, entity: Entity, prefix: str, number: int) -> str:
        return encode_id(entity, self.provider, f"{prefix}{number}" if self.pms else str(number))

    def request(self, number: int) -> str:
        return self._id(Entity.MAINTENANCE_REQUEST, "mr_", number)

    def order(self, number: int) -> str:
        return self._id(Entity.WORK_ORDER, "wo_", number)

    def vendor(self, number: int) -> str:
        return self._id(Entity.VENDOR, "ven_", number)

    def unit(self, unit_id: int) -> str:
        building = next(u.building_id for u in self.client.sandbox.world.units if u.id == unit_id)
        key = f"prop_{building}/unit_{unit_id}" if self.pms else str(unit_id)
        return encode_id(Entity.UNIT, self.provider, key)

    def tenant(self, tenant: Tenant) -> str:
        building = next(
            u.building_id for u in self.client.sandbox.world.units if u.id == tenant.unit_id
        )
        key = f"prop_{building}/ten_{tenant.id}" if self.pms else str(tenant.id)
        return encode_id(Entity.TENANT, self.provider, key)

    def ticket(self, status: str) -> Ticket:
        return next(t for t in self.shop.requests.values() if t.status == status)

    def job(self, status: str) -> Job:
        return next(job for job in self.shop.jobs.values() if job.status == status)

    def occupant(self) -> Tenant:
        """A tenant living today in one of this provider's units."""
        world = self.client.sandbox.world
        mine = {u.id for b in world.buildings_of(self.provider) for u in world.units_in(b.id)}
        return next(t for t in world.tenants if t.unit_id in mine and world.is_current(t))

    def sent(self) -> list[tuple[str, str, dict[str, Any]]]:
        """Every write the provider received: method, path, JSON body."""
        return [
            (seen.method, seen.path, json.loads(seen.body) if seen.body else {})
            for seen in self.client.sandbox.states[self.provider].seen()
            if seen.method in ("POST", "PATCH", "PUT") and not seen.token
        ]


async def _write(client: Client, name: str, payload: str, given: dict[str, Any]) -> Any:
    data = await client.data(_mutation(name, payload), {"input": given})
    return data[name]


@pytest.mark.parametrize("provider", ["pms", "primmo"])
async def test_a_request_goes_its_whole_way_and_every_field_given_reaches_the_provider(
    client: Client, provider: str
) -> None:
    books = Books(client, provider)
    tenant = books.occupant()
    plumber = books.shop.vendor_for("plumbing").id
    pms = books.pms

    created = await _write(
        client,
        "createMaintenanceRequest",
        REQUEST,
        {
            "unitId": books.unit(tenant.unit_id),
            "description": "Water under the sink.",
            "priority": "URGENT",
            "tenantId": books.tenant(tenant),
            **({"title": "Leak"} if pms else {}),
        },
    )
    request = created["maintenanceRequest"]
    number = int(request["sourceId"].removeprefix("mr_"))
    assigned = await _write(
        client,
        "assignMaintenanceRequest",
        REQUEST,
        {
            "maintenanceRequestId": books.request(number),
            "vendorId": books.vendor(plumber),
            "scheduledFor": "2026-11-05",
        },
    )
    ordered = await _write(
        client,
        "createWorkOrder",
        ORDER,
        {
            "maintenanceRequestId": books.request(number),
            "vendorId": books.vendor(plumber),
            "description": "Replace the trap.",
            "scheduledFor": "2026-11-05",
            "estimatedCost": {"amount": "180.50", "currency": "CAD"},
        },
    )
    order = books.order(int(ordered["workOrder"]["sourceId"].removeprefix("wo_")))
    started = await _write(client, "startWorkOrder", ORDER, {"workOrderId": order})
    done = await _write(
        client,
        "completeWorkOrder",
        ORDER,
        {"workOrderId": order, "cost": {"amount": "212.25", "currency": "CAD"}},
    )
    completed = await _write(
        client,
        "completeMaintenanceRequest",
        REQUEST,
        {
            "maintenanceRequestId": books.request(number),
            **({"resolution": "New trap."} if pms else {}),
        },
    )

    payloads = [created, assigned, ordered, started, done, completed]
    assert all(payload["errors"] == [] for payload in payloads)
    assert [p.get("maintenanceRequest", p.get("workOrder"))["status"] for p in payloads] == [
        "OPEN",
        "ASSIGNED",
        "SCHEDULED",
        "IN_PROGRESS",
        "COMPLETED",
        "COMPLETED",
    ]
    assert request["priority"] == "URGENT" and request["tenant"]["sourceId"].endswith(
        str(tenant.id)
    )
    assert assigned["maintenanceRequest"]["vendor"]["sourceId"].endswith(str(plumber))
    assert assigned["maintenanceRequest"]["scheduledFor"] == "2026-11-05"
    assert ordered["workOrder"]["cost"] == {"amount": "180.50", "currency": "CAD"}
    assert done["workOrder"]["cost"] == {"amount": "212.25", "currency": "CAD"}
    assert completed["maintenanceRequest"]["completedAt"] is not None
    bodies = [body for _, _, body in books.sent()]
    assert len(bodies) == 6, "each write sent once"
    if pms:
        assert bodies[0]["title"] == "Leak" and bodies[0]["priority"] == "emergency"
        assert bodies[0]["tenant_id"] == f"ten_{tenant.id}"
        assert bodies[1] == {"vendor_id": f"ven_{plumber}", "scheduled_date": "2026-11-05"}
        assert (bodies[2]["cost"], bodies[2]["currency"]) == (180.5, "CAD")
        assert bodies[4] == {"cost": 212.25, "currency": "CAD"}
        assert bodies[5] == {"resolution": "New trap."}
    else:
        assert (bodies[0]["Priority"], bodies[0]["TenantId"]) == (1, tenant.id)
        assert bodies[1] == {"Status": "A", "SupplierId": plumber, "ScheduledDate": "2026-11-05"}
        assert (bodies[2]["Amount"], bodies[2]["ScheduledDate"]) == (180.5, "2026-11-05")
        assert bodies[3:] == [{"Status": "E"}, {"Status": "T", "Amount": 212.25}, {"Status": "T"}]


async def test_a_field_primmo_has_no_place_for_is_refused_and_nothing_sent(client: Client) -> None:
    books = Books(client, "primmo")
    open_, job = books.ticket("open"), books.job("in_progress")
    unit = books.unit(open_.unit_id)

    answers = [
        await _write(
            client,
            "createMaintenanceRequest",
            REQUEST,
            {"unitId": unit, "description": "Leak", "title": "Leak"},
        ),
        await _write(
            client,
            "completeMaintenanceRequest",
            REQUEST,
            {"maintenanceRequestId": books.request(open_.id), "resolution": "Fixed."},
        ),
        await _write(
            client, "cancelWorkOrder", ORDER, {"workOrderId": books.order(job.id), "reason": "No."}
        ),
        await _write(
            client,
            "completeWorkOrder",
            ORDER,
            {"workOrderId": books.order(job.id), "cost": {"amount": "10.00", "currency": "USD"}},
        ),
    ]

    assert [[(e["code"], e["field"]) for e in answer["errors"]] for answer in answers] == [
        [("VALIDATION_FAILED", "title")],
        [("VALIDATION_FAILED", "resolution")],
        [("VALIDATION_FAILED", "reason")],
        [("VALIDATION_FAILED", "cost")],
    ]
    assert books.sent() == []
    assert (open_.status, job.status) == ("open", "in_progress")


@pytest.mark.parametrize("provider", ["pms", "primmo"])
async def test_each_maintenance_write_refuses_as_data_naming_the_field(
    client: Client, provider: str
) -> None:
    books = Books(client, provider)
    done, open_ = books.ticket("completed"), books.ticket("open")
    finished, scheduled = books.job("completed"), books.job("in_progress")
    stranger = books.occupant()
    elsewhere = next(
        u.id for u in client.sandbox.world.units_in(open_.building_id) if u.id != stranger.unit_id
    )
    nowhere = encode_id(Entity.UNIT, provider, "prop_1/unit_1" if books.pms else "1")
    missing_request, missing_order = books.request(1), books.order(1)
    no_vendor = books.vendor(1)
    pms = books.pms
    cases: list[tuple[str, str, dict[str, Any], tuple[str, str | None]]] = [
        (
            "createMaintenanceRequest",
            REQUEST,
            {
                "unitId": books.unit(elsewhere),
                "description": "x",
                "tenantId": books.tenant(stranger),
            },
            ("VALIDATION_FAILED", "tenantId"),
        ),
        (
            "createMaintenanceRequest",
            REQUEST,
            {"unitId": nowhere, "description": "x"},
            ("NOT_FOUND", "unitId"),
        ),
        (
            "assignMaintenanceRequest",
            REQUEST,
            {
                "maintenanceRequestId": books.request(done.id),
                "vendorId": books.vendor(done.vendor_id or 0),
            },
            ("CONFLICT", None),
        ),
        (
            "assignMaintenanceRequest",
            REQUEST,
            {"maintenanceRequestId": books.request(open_.id), "vendorId": no_vendor},
            ("VALIDATION_FAILED", "vendorId"),
        ),
        (
            "assignMaintenanceRequest",
            REQUEST,
            {"maintenanceRequestId": missing_request, "vendorId": no_vendor},
            ("NOT_FOUND", "maintenanceRequestId"),
        ),
        (
            "completeMaintenanceRequest",
            REQUEST,
            {"maintenanceRequestId": books.request(done.id)},
            ("CONFLICT", None),
        ),
        (
            "completeMaintenanceRequest",
            REQUEST,
            {"maintenanceRequestId": missing_request},
            ("NOT_FOUND", "maintenanceRequestId"),
        ),
        (
            "createWorkOrder",
            ORDER,
            {
                "maintenanceRequestId": books.request(done.id),
                "vendorId": books.vendor(done.vendor_id or 0),
                "description": "More work",
            },
            ("CONFLICT", None),
        ),
        (
            "createWorkOrder",
            ORDER,
            {
                "maintenanceRequestId": books.request(open_.id),
                "vendorId": no_vendor,
                "description": "x",
            },
            ("VALIDATION_FAILED", "vendorId"),
        ),
        (
            "createWorkOrder",
            ORDER,
            {
                "maintenanceRequestId": missing_request,
                "vendorId": books.vendor(finished.vendor_id),
                "description": "x",
            },
            ("NOT_FOUND" if pms else "VALIDATION_FAILED", "maintenanceRequestId"),
        ),
        ("startWorkOrder", ORDER, {"workOrderId": books.order(finished.id)}, ("CONFLICT", None)),
        ("startWorkOrder", ORDER, {"workOrderId": missing_order}, ("NOT_FOUND", "workOrderId")),
        (
            "completeWorkOrder",
            ORDER,
            {"workOrderId": books.order(scheduled.id), "cost": {"amount": "-5", "currency": "CAD"}},
            ("VALIDATION_FAILED", "cost"),
        ),
        ("completeWorkOrder", ORDER, {"workOrderId": books.order(finished.id)}, ("CONFLICT", None)),
        ("completeWorkOrder", ORDER, {"workOrderId": missing_order}, ("NOT_FOUND", "workOrderId")),
        ("cancelWorkOrder", ORDER, {"workOrderId": books.order(finished.id)}, ("CONFLICT", None)),
        ("cancelWorkOrder", ORDER, {"workOrderId": missing_order}, ("NOT_FOUND", "workOrderId")),
    ]
    before = [(t.id, t.status, t.vendor_id) for t in books.shop.requests.values()]

    for name, payload, given, expected in cases:
        answer = await _write(client, name, payload, given)
        assert [(e["code"], e["field"]) for e in answer["errors"]] == [expected], (name, given)
        assert next(v for k, v in answer.items() if k != "errors") is None

    assert [(t.id, t.status, t.vendor_id) for t in books.shop.requests.values()] == before
    assert (finished.status, scheduled.status) == ("completed", "in_progress")


async def test_a_refusal_by_name_from_the_sandbox_knob_is_validation_failed(client: Client) -> None:
    books = Books(client, "pms")
    client.pms.refuse("VALIDATION_ERROR")

    answer = await _write(
        client,
        "completeMaintenanceRequest",
        REQUEST,
        {"maintenanceRequestId": books.request(books.ticket("open").id)},
    )

    assert [e["code"] for e in answer["errors"]] == ["VALIDATION_FAILED"]
    assert books.ticket("open").status == "open"


UNIT = f"unit {{ id occupancy }} {ERRORS}"
BUILDING = f"building {{ id sourceId name street city landlord {{ sourceId }} }} {ERRORS}"


def _maintenance_writes(books: Books) -> list[tuple[str, str, dict[str, Any]]]:
    """Each maintenance write once, about records of `books`' provider."""
    open_, job = books.ticket("open"), books.job("in_progress")
    vendor = books.vendor(books.shop.vendor_for("general").id)
    request, order = books.request(open_.id), books.order(job.id)
    return [
        (
            "createMaintenanceRequest",
            REQUEST,
            {"unitId": books.unit(open_.unit_id), "description": "x"},
        ),
        (
            "assignMaintenanceRequest",
            REQUEST,
            {"maintenanceRequestId": request, "vendorId": vendor},
        ),
        ("completeMaintenanceRequest", REQUEST, {"maintenanceRequestId": request}),
        (
            "createWorkOrder",
            ORDER,
            {"maintenanceRequestId": request, "vendorId": vendor, "description": "x"},
        ),
        ("startWorkOrder", ORDER, {"workOrderId": order}),
        ("completeWorkOrder", ORDER, {"workOrderId": order}),
        ("cancelWorkOrder", ORDER, {"workOrderId": order}),
    ]


def _writes_sent(client: Client, provider: str) -> int:
    seen = client.sandbox.states[provider].seen()
    return sum(1 for r in seen if r.method in ("POST", "PATCH", "PUT") and not r.token)


async def _each_late(client: Client, writes: list[tuple[str, str, dict[str, Any]]]) -> None:
    """Each write unanswered (its provider slow on the write, not on a read before it):
    OUTCOME_UNKNOWN, and sent once."""
    for name, payload, given in writes:
        provider = "scom" if name == "createProperty" else decode_id(next(iter(given.values())))[1]
        state = client.sandbox.states[provider]
        sent = _writes_sent(client, provider)
        method = "PATCH" if provider == "primmo" and not name.startswith("create") else "POST"
        state.inject("slow", seconds=5, method="PUT" if name == "updateUnitStatus" else method)
        answer = await _write(client, name, payload, given)
        state.inject("none")
        assert [e["code"] for e in answer["errors"]] == ["OUTCOME_UNKNOWN"], name
        assert _writes_sent(client, provider) == sent + 1, name
        # an answered call between writes, so consecutive timeouts do not open the circuit
        await client.data(f'{{ vendors(first: 1, providers: ["{provider}"]) {{ totalCount }} }}')


async def test_a_late_answer_is_outcome_unknown_for_every_write(impatient: Client) -> None:
    client = impatient
    books = Books(client, "pms")
    world = client.sandbox.world
    vacant = next(u.id for b in world.buildings_of("pms") for u in world.units_in(b.id))
    landlord = encode_id(Entity.LANDLORD, "scom", str(world.landlords_of("scom")[0].id))
    await _each_late(
        client,
        [
            *_maintenance_writes(books),
            ("updateUnitStatus", UNIT, {"unitId": books.unit(vacant), "occupancy": "OCCUPIED"}),
            ("createProperty", BUILDING, {"landlordId": landlord, "name": "Les Tours du Parc"}),
        ],
    )


async def test_a_late_answer_is_outcome_unknown_for_every_primmo_write(
    impatient: Client,
) -> None:
    """Primmo's creations are POSTs (a service call after reading its unit's codes), its
    steps PATCHes of the call or detail."""
    await _each_late(impatient, _maintenance_writes(Books(impatient, "primmo")))


async def test_a_units_status_is_written_at_pms_only(client: Client) -> None:
    books = Books(client, "pms")
    world = client.sandbox.world
    units = [u.id for b in world.buildings_of("pms") for u in world.units_in(b.id)]
    vacant = next(u for u in units if not world.is_occupied(u))
    leased = next(u for u in units if world.is_occupied(u))
    primmo = Books(client, "primmo").unit(Books(client, "primmo").ticket("open").unit_id)

    made = await _write(
        client, "updateUnitStatus", UNIT, {"unitId": books.unit(vacant), "occupancy": "OCCUPIED"}
    )
    read = await client.data(
        f'{{ node(id: "{books.unit(vacant)}") {{ ... on Unit {{ occupancy }} }} }}'
    )
    clash = await _write(
        client, "updateUnitStatus", UNIT, {"unitId": books.unit(leased), "occupancy": "VACANT"}
    )
    gone = await _write(
        client,
        "updateUnitStatus",
        UNIT,
        {"unitId": encode_id(Entity.UNIT, "pms", "prop_1/unit_1"), "occupancy": "VACANT"},
    )
    client.pms.refuse("VALIDATION_ERROR")
    knob = await _write(
        client, "updateUnitStatus", UNIT, {"unitId": books.unit(vacant), "occupancy": "VACANT"}
    )
    elsewhere = await client.query(
        _mutation("updateUnitStatus", UNIT), {"input": {"unitId": primmo, "occupancy": "VACANT"}}
    )

    assert made["errors"] == [] and made["unit"]["occupancy"] == "OCCUPIED"
    assert read["node"]["occupancy"] == "OCCUPIED"
    assert [e["code"] for e in clash["errors"]] == ["CONFLICT"]
    assert [e["code"] for e in gone["errors"]] == ["NOT_FOUND"]
    assert [e["code"] for e in knob["errors"]] == ["VALIDATION_FAILED"]
    assert error_codes(elsewhere) == ["BAD_USER_INPUT"]
    assert (
        elsewhere["errors"][0]["message"] == "primmo does not update unit statuses through its API."
    )
    sent = books.sent()
    assert [method for method, _, _ in sent] == ["PUT"] * 4
    assert (sent[0][2], sent[1][2]) == ({"status": "occupied"}, {"status": "vacant"})


async def test_a_property_is_created_with_the_landlords_own_token(client: Client) -> None:
    scom = client.sandbox.states["scom"]
    owner = client.sandbox.world.landlords_of("scom")[0]
    landlord = encode_id(Entity.LANDLORD, "scom", str(owner.id))
    given = {"landlordId": landlord, "name": "Les Tours du Parc", "street": "12 rue du Parc"}

    made = await _write(client, "createProperty", BUILDING, {**given, "city": "Québec"})
    listed = await client.data(
        f'{{ node(id: "{landlord}") {{ ... on Landlord {{ buildings {{ name }} }} }} }}'
    )
    again = await _write(client, "createProperty", BUILDING, given)
    blank = await _write(client, "createProperty", BUILDING, {**given, "name": "  "})
    sent_before = scom.count("POST", "/graphql")
    unknown = await _write(
        client,
        "createProperty",
        BUILDING,
        {**given, "landlordId": encode_id(Entity.LANDLORD, "scom", "404")},
    )
    sent_after = scom.count("POST", "/graphql")
    await client.http.post(f"/sandbox/scom/_sandbox/status?landlord={owner.id}&status=PENDING")
    suspended = await _write(client, "createProperty", BUILDING, {**given, "name": "Autre"})

    building = made["building"]
    assert made["errors"] == []
    assert (building["name"], building["street"], building["city"]) == (
        "Les Tours du Parc",
        "12 rue du Parc",
        "Québec",
    )
    assert building["landlord"]["sourceId"] == str(owner.id)
    stored = scom.records[str(owner.id)].properties[-1]
    assert (stored["name"], stored["address"], stored["city"]) == (
        "Les Tours du Parc",
        "12 rue du Parc",
        "Québec",
    )
    assert [(e["code"], e["field"]) for e in again["errors"]] == [("CONFLICT", None)]
    assert [(e["code"], e["field"]) for e in blank["errors"]] == [("VALIDATION_FAILED", "name")]
    assert [e["code"] for e in unknown["errors"]] == ["NOT_FOUND"]
    assert sent_after == sent_before, "nothing sent for an unknown landlord"
    assert [e["code"] for e in suspended["errors"]] == ["LANDLORD_NOT_ACTIVE"]
    assert "Les Tours du Parc" in {b["name"] for b in listed["node"]["buildings"]}


async def test_a_retry_under_the_same_key_assigns_once(client: Client) -> None:
    books = Books(client, "pms")
    given = {
        "maintenanceRequestId": books.request(books.ticket("open").id),
        "vendorId": books.vendor(books.shop.vendor_for("general").id),
        "idempotencyKey": "assign-1",
    }

    first = await _write(client, "assignMaintenanceRequest", REQUEST, given)
    again = await _write(client, "assignMaintenanceRequest", REQUEST, given)

    assert first == again and first["errors"] == []
    assert len(books.sent()) == 1


async def test_each_write_needs_its_scope_and_nothing_is_sent_without_it(
    sandbox: Sandbox, clock: ManualClock
) -> None:
    key = "property-reader-0123456789"
    settings = keyed({key: ["property:read"]})
    world = sandbox.world
    unit = encode_id(
        Entity.UNIT, "primmo", str(world.units_in(world.buildings_of("primmo")[0].id)[0].id)
    )
    landlord = encode_id(Entity.LANDLORD, "scom", str(world.landlords_of("scom")[0].id))
    writes = [
        ("createMaintenanceRequest", REQUEST, {"unitId": unit, "description": "x"}),
        ("updateUnitStatus", UNIT, {"unitId": unit, "occupancy": "VACANT"}),
        ("createProperty", BUILDING, {"landlordId": landlord, "name": "x"}),
    ]
    async with serving(sandbox, clock, settings, headers={"X-API-Key": key}) as client:
        bodies = [
            await client.query(_mutation(name, payload), {"input": given})
            for name, payload, given in writes
        ]

    assert [error_codes(body) for body in bodies] == [["FORBIDDEN"]] * 3
    assert [body["errors"][0]["extensions"]["scope"] for body in bodies] == [
        "maintenance:manage",
        "unit:manage",
        "property:manage",
    ]
    assert sum(state.count() for state in sandbox.states.values()) == 0


async def test_an_amount_that_is_not_one_is_the_callers_error_and_nothing_is_sent(
    client: Client,
) -> None:
    books = Books(client, "pms")
    order = books.order(books.job("in_progress").id)
    query = _mutation("completeWorkOrder", ORDER)

    literal = await client.query(
        f'mutation {{ completeWorkOrder(input: {{workOrderId: "{order}", '
        f'cost: {{amount: "12,50", currency: "CAD"}}}}) {{ {ORDER} }} }}'
    )
    floated = await client.query(
        query, {"input": {"workOrderId": order, "cost": {"amount": 12.5, "currency": "CAD"}}}
    )

    assert error_codes(literal) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "'12,50' is not an amount" in literal["errors"][0]["message"]
    assert error_codes(floated) == ["BAD_USER_INPUT"]
    assert books.sent() == []


async def test_a_refusal_names_the_field_the_caller_sent(client: Client) -> None:
    """pms refusing the property a request is filed under names the caller's `unitId` (the
    property comes from it), never a `propertyId` it did not send; a Primmo vendor id that
    is none is refused naming `vendorId`, with a message that says so."""
    pms, primmo = Books(client, "pms"), Books(client, "primmo")
    ticket = pms.ticket("open")
    client.pms.refuse("VALIDATION_ERROR", field="property_id")

    filed = await _write(
        client,
        "createMaintenanceRequest",
        REQUEST,
        {"unitId": pms.unit(ticket.unit_id), "description": "Fuite"},
    )
    assigned = await _write(
        client,
        "assignMaintenanceRequest",
        REQUEST,
        {
            "maintenanceRequestId": primmo.request(primmo.ticket("open").id),
            "vendorId": encode_id(Entity.VENDOR, "primmo", "abc"),
        },
    )

    assert [(e["code"], e["field"]) for e in filed["errors"]] == [("VALIDATION_FAILED", "unitId")]
    ((code, field, message),) = [(e["code"], e["field"], e["message"]) for e in assigned["errors"]]
    assert (code, field) == ("VALIDATION_FAILED", "vendorId")
    assert message != "abc" and "vendor" in message


async def test_an_update_answered_204_is_read_back_and_not_reported_failed(client: Client) -> None:
    """A server may ignore `Prefer: return=representation` and answer an update with 204 and
    no body: the update was made, so the caller gets the record, read back, and not an
    unreadable answer to write again."""
    books = Books(client, "primmo")
    primmo = client.sandbox.states["primmo"]
    async with httpx.AsyncClient(
        transport=client.sandbox.transport("primmo"), base_url="http://127.0.0.1/sandbox/primmo"
    ) as operator:
        assert (await operator.post("/_sandbox/odata?prefer=ignored")).status_code == 204
    ticket, job = books.ticket("open"), books.job("in_progress")
    plumber = books.shop.vendor_for("plumbing").id
    primmo.requests.clear()

    assigned = await _write(
        client,
        "assignMaintenanceRequest",
        REQUEST,
        {"maintenanceRequestId": books.request(ticket.id), "vendorId": books.vendor(plumber)},
    )
    done = await _write(
        client,
        "completeWorkOrder",
        ORDER,
        {"workOrderId": books.order(job.id), "cost": {"amount": "99.95", "currency": "CAD"}},
    )

    assert assigned["errors"] == [] and done["errors"] == []
    assert assigned["maintenanceRequest"]["status"] == "ASSIGNED"
    assert assigned["maintenanceRequest"]["vendor"]["sourceId"].endswith(str(plumber))
    assert done["workOrder"]["status"] == "COMPLETED"
    assert done["workOrder"]["cost"] == {"amount": "99.95", "currency": "CAD"}
    assert books.shop.requests[ticket.id].status == "assigned"
    assert [body for _, _, body in books.sent()] == [
        {"Status": "A", "SupplierId": plumber},
        {"Status": "T", "Amount": 99.95},
    ], "each update sent once"
    assert primmo.requests[("GET", "/api/ServiceCalls")] >= 1
    assert primmo.requests[("GET", "/api/ServiceCallDetails")] >= 1


async def test_a_property_scom_refused_as_invalid_frees_the_key_for_the_corrected_write(
    client: Client,
) -> None:
    """SCOM refuses a blank name in executing the mutation, with a 200: the property was not
    made, so the corrected write under the same key runs, as after any provider's refusal of
    the input."""
    owner = client.sandbox.world.landlords_of("scom")[0]
    landlord = encode_id(Entity.LANDLORD, "scom", str(owner.id))
    given = {"landlordId": landlord, "street": "3 rue Neuve", "idempotencyKey": "k-prop"}

    blank = await _write(client, "createProperty", BUILDING, {**given, "name": " "})
    corrected = await _write(client, "createProperty", BUILDING, {**given, "name": "Le Neuf"})

    assert [(e["code"], e["field"]) for e in blank["errors"]] == [("VALIDATION_FAILED", "name")]
    assert corrected["errors"] == [] and corrected["building"]["name"] == "Le Neuf"
    names = [p["name"] for p in client.sandbox.states["scom"].records[str(owner.id)].properties]
    assert names.count("Le Neuf") == 1
