"""pms (Property Management SaaS): JSON REST in a `{success, data, meta}` envelope.

Organizations are landlords and properties are buildings; units, tenants and
leases live under their property (`/properties/{id}/units`), so their source
ids carry the property id (`prop_1/unit_2`) and relations are fetched one
request per property, concurrently. pms has no list of an organization's
properties: one read of the property list, grouped by `organization_id`, gives
them for every organization of a query level. pms filters only by status, type
and dates: name and city matches are applied here, on pages of 100.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime
from typing import Any, NamedTuple

import httpx

from gateway import notices
from gateway.clock import Clock
from gateway.connectors.base import Connector, ListRequest, Page
from gateway.connectors.calls import Dialect, Failure, Said
from gateway.connectors.capabilities import (
    ChargeWrites,
    LeaseWrites,
    MaintenanceWrites,
    PaymentWrites,
    RentChanges,
    TenantWrites,
    UnitStatusWrites,
    WebhookSource,
)
from gateway.connectors.paging import PageNumbers, each
from gateway.connectors.values import (
    day,
    exact_sum,
    json_amount,
    json_object,
    moment,
    money,
    number,
    text,
    token_id,
)
from gateway.errors import (
    BadUserInput,
    NotFound,
    Unauthenticated,
    UpstreamInvalidResponse,
    ValidationFailed,
)
from gateway.events import Change, ChangeKind, Delivery, FieldChange, plain
from gateway.model import (
    Assignment,
    Balance,
    Building,
    Cancellation,
    Charge,
    ChargeStatus,
    Completion,
    Condition,
    Contains,
    Criteria,
    Entity,
    Equals,
    Landlord,
    Lease,
    LeaseEnding,
    LeaseStatus,
    LeaseTerms,
    Link,
    MaintenanceRequest,
    MaintenanceStatus,
    Money,
    NewCharge,
    NewMaintenanceRequest,
    NewPayment,
    NewRentChange,
    NewTenant,
    NewWorkOrder,
    Occupancy,
    Payment,
    PaymentStatus,
    Priority,
    Record,
    RentChange,
    Selection,
    Tenant,
    Unavailable,
    Unit,
    UnitStatusChange,
    Vendor,
    Within,
    WorkOrder,
    WorkOrderCompletion,
    WorkOrderStatus,
    made_later,
)
from gateway.upstream.auth import LoginRefreshAuth
from gateway.upstream.client import Upstream, parse_json

__all__ = ["PmsConnector"]

NAME = "pms"
REPLAY_WINDOW = 300.0
_EVENTS = (
    "property.created",
    "property.updated",
    "property.deleted",
    "tenant.created",
    "tenant.updated",
    "tenant.deleted",
    "invoice.created",
    "invoice.paid",
    "payment.received",
    "payment.failed",
    "maintenance.created",
    "maintenance.completed",
)
MAX_PAGE_SIZE = 100
Row = Mapping[str, Any]
_OCCUPANCY = {"occupied": Occupancy.OCCUPIED, "vacant": Occupancy.VACANT}
_EVENT_KINDS = {
    "created": ChangeKind.CREATED,
    "updated": ChangeKind.UPDATED,
    "deleted": ChangeKind.DELETED,
    "completed": ChangeKind.UPDATED,
}
_ERRORS = {
    "AUTHENTICATION_FAILED": Failure.DENIED,
    "TOKEN_EXPIRED": Failure.DENIED,
    "INSUFFICIENT_PERMISSIONS": Failure.DENIED,
    "RESOURCE_NOT_FOUND": Failure.NOT_FOUND,
    "VALIDATION_ERROR": Failure.INVALID,
    "RATE_LIMIT_EXCEEDED": Failure.RATE_LIMITED,
    "SERVICE_UNAVAILABLE": Failure.UNAVAILABLE,
}
"""The document's error codes (its "Common Error Codes" table), by what each means."""


def _retry_after(response: httpx.Response) -> float | None:
    """pms says how long to wait in the 429 body: `{"error": {"retry_after": 900}}`.

    Read with `parse_json`, which refuses a body nested too deep with its ValueError: the
    standard library's parser would exhaust the stack, and the 429 would have been taken for
    an unreadable answer rather than a rate limit."""
    try:
        error = parse_json(response.content).get("error", {})
        value = error.get("retry_after")
    except (ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _said(body: Any) -> Said:
    """`{"success": false, "error": {"code", "message", "details": [{"field", "message"}]}}`."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return Said()
    details = error.get("details")
    return Said(
        name=text(error, "code"),
        message=text(error, "message"),
        problems=tuple(
            {"field": str(item.get("field", "")), "message": str(item.get("message", ""))}
            for item in (details if isinstance(details, list) else [])
            if isinstance(item, dict)
        ),
    )


def _data(body: Any) -> Any:
    """`{"success": true, "data": ..., "meta"?}` around every answer: its data."""
    if not isinstance(body, dict) or body.get("success") is not True or "data" not in body:
        raise UpstreamInvalidResponse(NAME, "pms returned a body outside its envelope.")
    return body["data"]


def _total(body: Any) -> int | None:
    """`{"meta": {"pagination": {"total_count"}}}` beside a list's data."""
    meta = body.get("meta") if isinstance(body, dict) else None
    pagination = meta.get("pagination") if isinstance(meta, dict) else None
    total = pagination.get("total_count") if isinstance(pagination, dict) else None
    return total if isinstance(total, int) else None


_PMS = Dialect(NAME, _said, _ERRORS, _retry_after, envelope=_data, total=_total)


def _id(row: Row) -> str:
    value = row.get("id")
    if not isinstance(value, str) or not value:
        raise UpstreamInvalidResponse(NAME, "pms returned a record without an id.")
    return value


def _landlord(row: Row) -> Landlord:
    return Landlord(
        provider=NAME,
        source_id=_id(row),
        name=text(row, "name"),
        status=(text(row, "status") or "").upper() or None,
        company_type=(text(row, "type") or "").upper() or None,
        billing_address=", ".join(
            part for part in (text(row, "address", "street"), text(row, "address", "city")) if part
        )
        or None,
        billing_postal_code=text(row, "address", "postal_code"),
        business_number=text(row, "business_number"),
        buildings=Link(NAME, Entity.BUILDING, "organization", _id(row)),
    )


def _building(row: Row) -> Building:
    """Its relations are read from its row when asked, as a unit's and a tenant's are
    (`_Under`); its id was checked as it was made."""
    return _BUILDING(
        row,
        provider=NAME,
        source_id=_id(row),
        name=text(row, "name"),
        street=text(row, "address", "street"),
        city=text(row, "address", "city"),
        postal_code=text(row, "address", "postal_code"),
    )


def _landlord_of(row: Row) -> Link | None:
    organization = text(row, "organization_id")
    return Link(NAME, Entity.LANDLORD, "id", organization) if organization else None


_BUILDING = made_later(
    Building,
    {
        "landlord": _landlord_of,
        "units": lambda row: Link(NAME, Entity.UNIT, "property", row["id"]),
        "maintenance_requests": lambda row: Link(
            NAME, Entity.MAINTENANCE_REQUEST, "property", row["id"]
        ),
    },
)
_NO_LISTING = Unavailable(
    NAME,
    Entity.LISTING,
    "pms does not advertise units: Unit.listing cannot be answered from it.",
)


def _unit(row: Row, property_id: str) -> Unit:
    under = _filed_under(row, property_id)
    return _UNIT(
        under,
        provider=NAME,
        source_id=under.key,
        code=text(row, "unit_number"),
        rooms=number(row.get("rooms")),
        occupancy=_OCCUPANCY.get(text(row, "status") or "", Occupancy.UNKNOWN),
        listing=_NO_LISTING,
    )


class _Under(NamedTuple):
    """What a unit's or a tenant's relations are read from when asked (`made_later`): its
    row, the property it was read under, and its key there (pms files both by property,
    and keys their relations by it). Building a unit's three links and a tenant's six was
    half of decoding them, for lists that select none of them."""

    row: Row
    property_id: str
    key: str


def _filed_under(row: Row, property_id: str) -> _Under:
    return _Under(row, property_id, f"{property_id}/{_id(row)}")


def _keyed(entity: Entity, by: str) -> Callable[[_Under], Link]:
    """A reader of the relation the record's own key names."""
    return lambda under: Link(NAME, entity, by, under.key)


_UNIT = made_later(
    Unit,
    {
        "building": lambda under: Link(NAME, Entity.BUILDING, "id", under.property_id),
        "tenants": _keyed(Entity.TENANT, "unit"),
        "maintenance_requests": lambda under: _requests_within(under, "unit"),
    },
)


def _requests_within(under: _Under, relation: str) -> Link:
    """pms lists maintenance requests by property only: those of one unit or tenant are
    the property's that name it."""
    return Link(
        NAME,
        Entity.MAINTENANCE_REQUEST,
        "property",
        under.property_id,
        within=(relation, under.key),
    )


_CURRENT = {"active": True, "past": False}
"""A tenant's status: pms keeps former tenants as `past` (assumed values, as its leases')."""


def _tenant(row: Row, property_id: str) -> Tenant:
    under = _filed_under(row, property_id)
    return _TENANT(
        under,
        provider=NAME,
        source_id=under.key,
        first_name=text(row, "first_name"),
        last_name=text(row, "last_name"),
        email=text(row, "email"),
        phone=text(row, "phone"),
        current=_CURRENT.get(text(row, "status") or ""),
    )


def _unit_of(under: _Under) -> Link | None:
    unit = text(under.row, "unit_id")
    return Link(NAME, Entity.UNIT, "id", f"{under.property_id}/{unit}") if unit else None


_TENANT = made_later(
    Tenant,
    {
        "unit": _unit_of,
        "lease": _keyed(Entity.LEASE, "tenant"),
        "charges": _keyed(Entity.CHARGE, "tenant"),
        "payments": _keyed(Entity.PAYMENT, "tenant"),
        "balance": _keyed(Entity.BALANCE, "tenant"),
        "maintenance_requests": lambda under: _requests_within(under, "tenant"),
    },
)


_LEASE_STATUSES = {
    "active": LeaseStatus.ACTIVE,
    "past": LeaseStatus.ENDED,
    "future": LeaseStatus.UPCOMING,
}


def _lease(row: Row, property_id: str) -> Lease:
    """pms serves a lease under each of its tenants (`…/tenants/{id}/lease`), co-tenants each
    reading the same one: it is known by its own id under its property (`prop_1/lease_2`),
    so it is one lease whichever tenant it is read through, and its tenants are those the
    property's tenant list files under it (`lease_id`, assumed)."""
    unit = text(row, "unit_id")
    currency = row.get("currency")
    own = _id(row)
    key = f"{property_id}/{own}"
    changes = tuple(
        RentChange(
            provider=NAME,
            source_id=f"{own}@{text(change, 'effective_date')}",
            effective_date=day(change.get("effective_date")),
            rent=money(change.get("monthly_rent"), currency),
            lease=Link(NAME, Entity.LEASE, "id", key),
        )
        for change in row.get("rent_changes") or []
        if isinstance(change, dict)
    )
    return Lease(
        provider=NAME,
        source_id=key,
        start_date=day(row.get("start_date")),
        end_date=day(row.get("end_date")),
        rent=money(row.get("monthly_rent"), currency),
        deposit=money(row.get("deposit"), currency),
        status=_LEASE_STATUSES.get(text(row, "status") or ""),
        tenants=Link(NAME, Entity.TENANT, "lease", key),
        unit=Link(NAME, Entity.UNIT, "id", f"{property_id}/{unit}") if unit else None,
        rent_changes=Link(NAME, Entity.RENT_CHANGE, "lease", own, prefetched=changes),
        charges=Link(NAME, Entity.CHARGE, "lease", own),
        payments=Link(NAME, Entity.PAYMENT, "lease", own),
        balance=Link(NAME, Entity.BALANCE, "lease", own),
    )


_CHARGE_STATUSES = {
    "paid": ChargeStatus.PAID,
    "cancelled": ChargeStatus.CANCELLED,
    "sent": ChargeStatus.OPEN,
    "overdue": ChargeStatus.OPEN,
    "partially_paid": ChargeStatus.OPEN,
    "draft": ChargeStatus.OPEN,
}
_PAYMENT_STATUSES = {
    "completed": PaymentStatus.COMPLETED,
    "pending": PaymentStatus.PENDING,
    "failed": PaymentStatus.FAILED,
    "refunded": PaymentStatus.REFUNDED,
}


def _payer(row: Row) -> str | None:
    """The tenant an invoice or payment is addressed to, by the key pms files tenants under."""
    property_id, tenant = text(row, "property_id"), text(row, "tenant_id")
    return f"{property_id}/{tenant}" if property_id and tenant else None


def _charge(row: Row) -> Charge:
    """An invoice (pms Financial service; its shape assumed, the document naming the routes).
    Its payments are found among its lease's (`lease_X/inv_Y`), which one read lists for
    every invoice of the lease; without a lease, under the invoice itself."""
    currency, payer = row.get("currency"), _payer(row)
    lease = text(row, "lease_id")
    return Charge(
        provider=NAME,
        source_id=_id(row),
        number=text(row, "number"),
        description=text(row, "description"),
        amount=money(row.get("amount"), currency),
        balance=money(row.get("balance_due"), currency),
        issued_on=day(row.get("issue_date")),
        due_on=day(row.get("due_date")),
        paid_at=moment(row.get("paid_at")),
        status=_CHARGE_STATUSES.get(text(row, "status") or ""),
        tenant=Link(NAME, Entity.TENANT, "id", payer) if payer else None,
        lease=Link(NAME, Entity.LEASE, "tenant", payer) if payer else None,
        payments=Link(NAME, Entity.PAYMENT, "charge", f"{lease}/{_id(row)}" if lease else _id(row)),
    )


def _payment(row: Row) -> Payment:
    payer, invoice = _payer(row), text(row, "invoice_id")
    return Payment(
        provider=NAME,
        source_id=_id(row),
        amount=money(row.get("amount"), row.get("currency")),
        paid_at=moment(row.get("paid_at")),
        status=_PAYMENT_STATUSES.get(text(row, "status") or ""),
        method=text(row, "method"),
        tenant=Link(NAME, Entity.TENANT, "id", payer) if payer else None,
        lease=Link(NAME, Entity.LEASE, "tenant", payer) if payer else None,
        charge=Link(NAME, Entity.CHARGE, "id", invoice) if invoice else None,
    )


_OWING = frozenset({"sent", "partially_paid", "overdue"})
"""An invoice's statuses while something is owed on it: a draft is not yet, a paid or a
cancelled one no longer."""


def _balance(key: str, invoices: Sequence[Row], today: date) -> Balance:
    """pms keeps no balance: it is what its owing invoices still say is due, overdue those
    past their due date (or marked so: pms may mark one late before the gateway's day
    turns). Invoices in several currencies make no one amount; one whose balance cannot be
    read makes none either (said in a warning) rather than one too low."""
    currencies = {text(row, "currency") for row in invoices} - {None}
    if len(currencies) != 1:
        return Balance(NAME, key)
    currency = currencies.pop()
    owing = [row for row in invoices if text(row, "status") in _OWING]
    due = [money(row.get("balance_due"), currency) for row in owing]
    amounts = [amount.amount for amount in due if amount is not None]
    if len(amounts) < len(due):
        notices.warn(NAME, "pms sent an invoice whose balance cannot be read: no balance given.")
        return Balance(NAME, key)
    late = [
        amount
        for row, amount in zip(owing, amounts, strict=True)
        if text(row, "status") == "overdue" or (day(row.get("due_date")) or today) < today
    ]
    return Balance(
        NAME,
        key,
        owed=money(exact_sum(amounts), currency),
        overdue=money(exact_sum(late), currency),
    )


def _money_changed(event: str, data: Mapping[str, Any]) -> tuple[Change, ...]:
    """pms's money events, with what their payload says changed (assumed payloads: the
    document lists the events only). A payment that failed is one, with its status."""
    invoice, payment = text(data, "invoice_id"), text(data, "payment_id")
    amount = money(data.get("amount"), data.get("currency"))
    told = (FieldChange("amount", None, plain(amount)),) if amount else ()
    match event:
        case "invoice.created" if invoice:
            due = day(data.get("due_date"))
            dated = (FieldChange("due_on", None, plain(due)),) if due else ()
            return (Change(ChangeKind.CREATED, Entity.CHARGE, NAME, invoice, told + dated),)
        case "invoice.paid" if invoice:
            before = _CHARGE_STATUSES.get(text(data, "previous_status") or "")
            paid = (FieldChange("status", plain(before), ChargeStatus.PAID.value),)
            return (Change(ChangeKind.UPDATED, Entity.CHARGE, NAME, invoice, paid),)
        case "payment.received" if payment:
            return (Change(ChangeKind.CREATED, Entity.PAYMENT, NAME, payment, told),)
        case "payment.failed" if payment:
            failed = (FieldChange("status", None, PaymentStatus.FAILED.value),)
            return (Change(ChangeKind.CREATED, Entity.PAYMENT, NAME, payment, failed),)
    return ()


_INVOICES = "api/v1/financial/invoices"
_PAYMENTS = "api/v1/financial/payments"


def _by(field: str) -> dict[str, str]:
    return {"sort_by": field, "sort_order": "asc"}


# --- The Operations service: maintenance requests, work orders, vendors ---

_OPERATIONS = "api/v1/operations"
_MAINTENANCE_STATUSES = {
    "open": MaintenanceStatus.OPEN,
    "assigned": MaintenanceStatus.ASSIGNED,
    "completed": MaintenanceStatus.COMPLETED,
}
_WORK_ORDER_STATUSES = {
    "scheduled": WorkOrderStatus.SCHEDULED,
    "in_progress": WorkOrderStatus.IN_PROGRESS,
    "completed": WorkOrderStatus.COMPLETED,
    "cancelled": WorkOrderStatus.CANCELLED,
}
_PRIORITIES = {
    "low": Priority.LOW,
    "medium": Priority.NORMAL,
    "high": Priority.HIGH,
    "emergency": Priority.URGENT,
}
_WORDS = {
    **{status.value: word for word, status in _MAINTENANCE_STATUSES.items()},
    **{status.value: word for word, status in _WORK_ORDER_STATUSES.items()},
    **{priority.value: word for word, priority in _PRIORITIES.items()},
}
"""A unified status or priority as pms spells it, for its filters and writes."""
_UNDONE = {"open", "assigned"}
"""pms statuses of a request not yet done."""


def _under(row: Row, key: str, *prefix: str) -> str | None:
    """`prop_1/<value>` for a reference that pms keeps under a property."""
    value = text(row, key)
    return "/".join((*prefix, value)) if value else None


def _request(row: Row) -> MaintenanceRequest:
    prop = text(row, "property_id") or ""
    unit, tenant = _under(row, "unit_id", prop), _under(row, "tenant_id", prop)
    vendor = text(row, "vendor_id")
    return MaintenanceRequest(
        provider=NAME,
        source_id=_id(row),
        title=text(row, "title"),
        description=text(row, "description"),
        priority=_PRIORITIES.get(text(row, "priority") or ""),
        status=_MAINTENANCE_STATUSES.get(text(row, "status") or ""),
        reported_at=moment(row.get("created_at")),
        scheduled_for=day(row.get("scheduled_date")),
        completed_at=moment(row.get("completed_at")),
        unit=Link(NAME, Entity.UNIT, "id", unit) if unit else None,
        building=Link(NAME, Entity.BUILDING, "id", prop) if prop else None,
        tenant=Link(NAME, Entity.TENANT, "id", tenant) if tenant else None,
        vendor=Link(NAME, Entity.VENDOR, "id", vendor) if vendor else None,
        work_orders=Link(NAME, Entity.WORK_ORDER, "property", prop, within=("request", _id(row))),
    )


def _work_order(row: Row) -> WorkOrder:
    prop = text(row, "property_id") or ""
    unit, vendor = _under(row, "unit_id", prop), text(row, "vendor_id")
    request = text(row, "maintenance_request_id")
    return WorkOrder(
        provider=NAME,
        source_id=_id(row),
        description=text(row, "description"),
        status=_WORK_ORDER_STATUSES.get(text(row, "status") or ""),
        scheduled_for=day(row.get("scheduled_date")),
        started_at=moment(row.get("started_at")),
        completed_at=moment(row.get("completed_at")),
        cost=money(row.get("cost"), row.get("currency")),
        request=Link(NAME, Entity.MAINTENANCE_REQUEST, "id", request) if request else None,
        vendor=Link(NAME, Entity.VENDOR, "id", vendor) if vendor else None,
        unit=Link(NAME, Entity.UNIT, "id", unit) if unit else None,
    )


def _vendor(row: Row) -> Vendor:
    return Vendor(
        provider=NAME,
        source_id=_id(row),
        name=text(row, "name"),
        trade=text(row, "category"),
        email=text(row, "email"),
        phone=text(row, "phone"),
    )


_LISTS: dict[Entity, tuple[str, dict[str, str], Callable[[Row], Record]]] = {
    Entity.LANDLORD: ("api/v1/organizations", _by("name"), _landlord),
    Entity.BUILDING: ("api/v1/properties", _by("name"), _building),
    Entity.CHARGE: (_INVOICES, _by("due_date"), _charge),
    Entity.PAYMENT: (_PAYMENTS, _by("paid_at"), _payment),
    Entity.MAINTENANCE_REQUEST: (
        f"{_OPERATIONS}/maintenance-requests",
        _by("created_at"),
        _request,
    ),
    Entity.WORK_ORDER: (f"{_OPERATIONS}/work-orders", _by("scheduled_date"), _work_order),
    Entity.VENDOR: (f"{_OPERATIONS}/vendors", _by("name"), _vendor),
}
"""Each root list: its route, the order it is read in (the entity's documented order), how a
row reads."""
_FILTERS = {
    Entity.LANDLORD: frozenset({"name"}),
    Entity.BUILDING: frozenset({"name", "city"}),
    Entity.CHARGE: frozenset({"status", "due_date"}),
    Entity.PAYMENT: frozenset({"status"}),
    Entity.MAINTENANCE_REQUEST: frozenset({"status", "priority", "open"}),
    Entity.WORK_ORDER: frozenset({"status"}),
    Entity.VENDOR: frozenset({"name", "trade"}),
}
_KINDS = {
    "maintenance-requests": Entity.MAINTENANCE_REQUEST,
    "work-orders": Entity.WORK_ORDER,
}


def _split(key: str) -> tuple[str, str] | None:
    """`prop_1/unit_2` -> ("prop_1", "unit_2"); anything else is not a key of ours.

    Keys can come from a caller's global id, and their parts go into URL paths:
    only plain ids pass.
    """
    parent, sep, child = key.partition("/")
    if not sep or not token_id(parent) or not token_id(child):
        return None
    return parent, child


def _plain(keys: Sequence[str]) -> list[str]:
    return [key for key in keys if token_id(key)]


def _contains(part: str, *path: str) -> Callable[[Row], bool]:
    wanted = part.casefold()
    return lambda row: wanted in (text(row, *path) or "").casefold()


_OPEN = ChargeStatus.OPEN
_PUSHED = {
    (Entity.CHARGE, ChargeStatus.PAID.value): "paid",
    (Entity.CHARGE, ChargeStatus.CANCELLED.value): "cancelled",
    **{(Entity.PAYMENT, status.value): name for name, status in _PAYMENT_STATUSES.items()},
}
"""Statuses pms filters by itself (`status=`): one of its own names each."""


def _pushed(entity: Entity, criteria: Criteria) -> dict[str, str]:
    status = criteria.get("status")
    if isinstance(status, Equals) and (entity, status.value) in _PUSHED:
        return {"status": _PUSHED[(entity, str(status.value))]}
    params: dict[str, str] = {}
    for name, condition in criteria.items():
        params.update(_parameter(entity, name, condition) or {})
    return params


def _parameter(entity: Entity, name: str, condition: Condition) -> dict[str, str] | None:
    """An Operations criterion pms filters by itself, as its query parameter."""
    match entity, name, condition:
        case (Entity.MAINTENANCE_REQUEST | Entity.WORK_ORDER, "status", Equals(str(value))):
            return {"status": _WORDS.get(value, value)}
        case (Entity.MAINTENANCE_REQUEST, "priority", Equals(str(value))):
            return {"priority": _WORDS.get(value, value)}
        case (Entity.VENDOR, "trade", Equals(str(value))):
            return {"category": value}
    return None


def _undone(wanted: bool) -> Callable[[Row], bool]:
    """Open or assigned (not yet done); pms filters by one status at a time."""
    return lambda row: (row.get("status") in _UNDONE) == wanted


def _within(low: date | None, high: date | None, field: str) -> Callable[[Row], bool]:
    def test(row: Row) -> bool:
        value = day(row.get(field))
        return (
            value is not None and (low is None or low <= value) and (high is None or value <= high)
        )

    return test


def _matches(entity: Entity, criteria: Criteria) -> Callable[[Row], bool] | None:
    """What pms cannot filter by itself (text; an open invoice, which is any of four of its
    statuses; a range of due dates) becomes a local test on each row."""
    tests: list[Callable[[Row], bool]] = []
    for name, condition in criteria.items():
        if _parameter(entity, name, condition) is not None:
            continue
        match entity, name, condition:
            case (Entity.BUILDING | Entity.LANDLORD | Entity.VENDOR, "name", Contains(part)):
                tests.append(_contains(part, "name"))
            case (Entity.MAINTENANCE_REQUEST, "open", Equals(bool(wanted))):
                tests.append(_undone(wanted))
            case (Entity.BUILDING, "city", Contains(part)):
                tests.append(_contains(part, "address", "city"))
            case (Entity.CHARGE | Entity.PAYMENT, "status", Equals(value)) if (
                entity,
                value,
            ) in _PUSHED:
                continue
            case (Entity.CHARGE, "status", Equals(ChargeStatus.OPEN.value)):
                tests.append(lambda row: _CHARGE_STATUSES.get(text(row, "status") or "") is _OPEN)
            case (Entity.CHARGE, "due_date", Within(low, high)):
                tests.append(_within(low, high, "due_date"))
            case _:
                raise BadUserInput(f"pms cannot filter {entity.value} by {name}.", provider=NAME)
    if not tests:
        return None
    return lambda row: all(test(row) for test in tests)


class PmsConnector(
    Connector,
    TenantWrites,
    LeaseWrites,
    RentChanges,
    ChargeWrites,
    PaymentWrites,
    WebhookSource,
    MaintenanceWrites,
    UnitStatusWrites,
):
    name = NAME
    kind = "rest"
    selects_fields = False
    embeds = {Entity.UNIT: frozenset({"landlord"})}
    serves = frozenset(
        {
            Entity.LANDLORD,
            Entity.BUILDING,
            Entity.UNIT,
            Entity.TENANT,
            Entity.LEASE,
            Entity.CHARGE,
            Entity.PAYMENT,
            Entity.BALANCE,
            Entity.MAINTENANCE_REQUEST,
            Entity.WORK_ORDER,
            Entity.VENDOR,
        }
    )
    lists = frozenset(_LISTS)
    credentials = ("username", "password")
    accepts = {
        "create_tenant": frozenset({"email", "phone"}),
        "update_lease": frozenset({"end_date", "deposit"}),
        "end_lease": frozenset({"reason"}),
        "create_charge": frozenset({"description"}),
        "record_payment": frozenset({"paid_at", "method"}),
        "create_maintenance_request": frozenset({"title", "priority", "tenant_id"}),
        "assign_maintenance_request": frozenset({"scheduled_for"}),
        "complete_maintenance_request": frozenset({"resolution"}),
        "create_work_order": frozenset({"scheduled_for", "estimated_cost"}),
        "complete_work_order": frozenset({"cost"}),
        "cancel_work_order": frozenset({"reason"}),
    }

    def __init__(
        self,
        client: httpx.AsyncClient,
        auth: LoginRefreshAuth | None,
        webhook_secret: str | None,
        clock: Clock,
        today: Callable[[], date],
    ) -> None:
        super().__init__(client, auth)
        self._webhook_secret = webhook_secret
        self._clock = clock
        self._today = today

    @classmethod
    def connect(cls, upstream: Upstream) -> PmsConnector:
        auth = LoginRefreshAuth(
            provider=NAME,
            client=upstream.client(retry_after=_retry_after, kind="token"),
            login_path="api/v1/identity/login",
            refresh_path="api/v1/identity/refresh",
            credentials={
                "email": upstream.credential("username"),
                "password": upstream.credential("password"),
            },
            unwrap=lambda body: body["data"],
            lifetime=900.0,
            clock=upstream.clock,
            store=upstream.tokens(),
            fetched=upstream.token_fetched,
            retry_after=_retry_after,
        )
        return cls(
            upstream.client(auth, retry_after=_retry_after),
            auth,
            upstream.credentials.get("webhook_secret"),
            upstream.clock,
            upstream.today,
        )

    def supports(self, entity: Entity, criteria: Criteria, /) -> bool:
        """pms properties have no code: a code filter could only ever match nothing."""
        known = _FILTERS.get(entity, frozenset())
        return entity in self.lists and all(name in known for name in criteria)

    async def page(self, entity: Entity, request: ListRequest, /) -> Page:
        path, order, build = _LISTS[entity]
        listing = self._listing(path, **order, **_pushed(entity, request.criteria))
        return await listing.page(request, build, _matches(entity, request.criteria))

    async def fetch(
        self, entity: Entity, by: str, keys: Sequence[str], selection: Selection, /
    ) -> Mapping[str, Sequence[Record]]:
        match entity, by:
            case (Entity.LANDLORD, "id"):
                found = await each(
                    _plain(keys), lambda key: _PMS.one(self._client, f"api/v1/organizations/{key}")
                )
                return {key: [_landlord(row)] for key, row in found.items()}
            case (Entity.BUILDING, "id"):
                found = await each(
                    _plain(keys), lambda key: _PMS.one(self._client, f"api/v1/properties/{key}")
                )
                return {key: [_building(row)] for key, row in found.items()}
            case (Entity.BUILDING, "organization"):
                return await self._properties_of(keys)
            case (Entity.UNIT, "property"):
                units = await each(
                    _plain(keys), lambda key: self._all(f"api/v1/properties/{key}/units")
                )
                found_units = {
                    key: [_unit(row, key) for row in rows] for key, rows in units.items()
                }
                return await self._with_landlords(found_units, selection)
            case (Entity.UNIT, "id"):
                by_id = await self._children(
                    keys, "units", _unit, lambda row, prop: _under(row, "id", prop)
                )
                return await self._with_landlords(by_id, selection)
            case (Entity.TENANT, "unit"):
                return await self._children(
                    keys, "tenants", _tenant, lambda row, prop: _under(row, "unit_id", prop)
                )
            case (Entity.TENANT, "id"):
                return await self._children(
                    keys, "tenants", _tenant, lambda row, prop: _under(row, "id", prop)
                )
            case (Entity.TENANT, "lease"):
                return await self._tenants_of_leases(keys)
            case (Entity.LEASE, "tenant"):
                leases = await each(
                    [key for key in keys if _split(key)],
                    lambda key: _PMS.one(
                        self._client,
                        "api/v1/properties/{}/tenants/{}/lease".format(*key.split("/")),
                    ),
                )
                return {key: [_lease(row, key.split("/")[0])] for key, row in leases.items()}
            case (Entity.LEASE, "id"):
                return await self._leases(keys)
            case (Entity.CHARGE, "id"):
                found = await each(
                    _plain(keys),
                    lambda key: _PMS.one(self._client, f"{_INVOICES}/{key}"),
                )
                return {key: [_charge(row)] for key, row in found.items()}
            case (Entity.PAYMENT, "id"):
                found = await each(
                    _plain(keys),
                    lambda key: _PMS.one(self._client, f"{_PAYMENTS}/{key}"),
                )
                return {key: [_payment(row)] for key, row in found.items()}
            case (Entity.PAYMENT, "charge"):
                return await self._payments_of(keys)
            case (Entity.CHARGE | Entity.PAYMENT | Entity.BALANCE, "tenant" | "lease"):
                return await self._money_of(entity, by, keys)
            case (Entity.MAINTENANCE_REQUEST, "id"):
                return await self._by_id(keys, "maintenance-requests", _request)
            case (Entity.MAINTENANCE_REQUEST, "property"):
                return await self._of_properties(keys, "maintenance-requests", _request)
            case (Entity.WORK_ORDER, "id"):
                return await self._by_id(keys, "work-orders", _work_order)
            case (Entity.WORK_ORDER, "property"):
                return await self._of_properties(keys, "work-orders", _work_order)
            case (Entity.VENDOR, "id"):
                return await self._vendors(keys)
        return {}

    async def _by_id(
        self, keys: Sequence[str], kind: str, build: Callable[[Row], Record]
    ) -> Mapping[str, Sequence[Record]]:
        """pms reads an Operations record one request each: it has no lookup of several."""
        found = await each(
            _plain(keys), lambda key: _PMS.one(self._client, f"{_OPERATIONS}/{kind}/{key}")
        )
        return {key: [build(row)] for key, row in found.items()}

    async def _of_properties(
        self, keys: Sequence[str], kind: str, build: Callable[[Row], Record]
    ) -> Mapping[str, Sequence[Record]]:
        """Operations records of whole properties: one read of the list filtered by property
        (`property_id`, assumed) per property. pms has no narrower filter, so a unit's, a
        tenant's or a request's are these, narrowed by their link (`Link.within`): one read
        serves them all."""
        path, order, _ = _LISTS[_KINDS[kind]]
        listed = await each(
            _plain(keys), lambda prop: self._listing(path, property_id=prop, **order).all()
        )
        return {prop: [build(row) for row in rows] for prop, rows in listed.items()}

    async def _vendors(self, keys: Sequence[str]) -> Mapping[str, Sequence[Record]]:
        """pms has no lookup of several vendors, and an organization keeps few: one read of
        its vendor list serves every vendor of a query level."""
        wanted = set(keys)
        path, order, _ = _LISTS[Entity.VENDOR]
        rows = await self._listing(path, **order).all()
        return {_id(row): [_vendor(row)] for row in rows if _id(row) in wanted}

    async def _payments_of(self, keys: Sequence[str]) -> Mapping[str, Sequence[Record]]:
        """Invoices' payments: one read of each distinct lease's payments (`?lease_id=`),
        grouped by the invoice each names; an invoice without a lease, its own list."""
        leased = {key: split for key in keys if (split := _split(key))}
        by_lease = await each(
            {lease for lease, _ in leased.values()},
            lambda lease: self._all(_PAYMENTS, lease_id=lease),
        )
        by_invoice = await each(_plain(keys), lambda key: self._all(f"{_INVOICES}/{key}/payments"))
        paid: dict[str, list[Record]] = defaultdict(list)
        for rows in by_lease.values():
            for row in rows:
                paid[text(row, "invoice_id") or ""].append(_payment(row))
        found: dict[str, Sequence[Record]] = {
            key: [_payment(row) for row in rows] for key, rows in by_invoice.items()
        }
        return found | {key: paid.get(invoice, []) for key, (_, invoice) in leased.items()}

    async def _money_of(
        self, entity: Entity, by: str, keys: Sequence[str]
    ) -> Mapping[str, Sequence[Record]]:
        """A tenant's or a lease's invoices, payments or balance: one filtered listing each
        (every page, at 100). pms keeps no balance: it is summed from the invoices, and
        without any there is none to give (nor a currency to say nothing is owed in)."""
        path = _PAYMENTS if entity is Entity.PAYMENT else _INVOICES

        async def rows_of(key: str) -> list[Row] | None:
            if by == "lease":
                return await self._all(path, lease_id=key) if token_id(key) else None
            split = _split(key)
            if split is None:
                return None
            return await self._all(path, property_id=split[0], tenant_id=split[1])

        found = await each(keys, rows_of)
        if entity is Entity.BALANCE:
            today = self._today()
            return {key: [_balance(key, rows, today)] for key, rows in found.items() if rows}
        build = _payment if entity is Entity.PAYMENT else _charge
        return {key: [build(row) for row in rows] for key, rows in found.items()}

    async def _properties_of(self, organizations: Sequence[str]) -> Mapping[str, Sequence[Record]]:
        """An organization's properties: pms has no list of them, but each property names its
        organization, so one read of the property list serves every organization asked."""
        wanted = set(organizations)
        found: dict[str, list[Record]] = defaultdict(list)
        for row in await self._all("api/v1/properties") or []:
            owner = text(row, "organization_id")
            if owner in wanted:
                found[owner].append(_building(row))
        return found

    async def _with_landlords(
        self, units: Mapping[str, Sequence[Record]], selection: Selection
    ) -> Mapping[str, Sequence[Record]]:
        """A unit's landlord is its property's organization, which the unit does not name:
        when it is asked for, each distinct property is read once to find it."""
        if "landlord" not in selection.relations:
            return units
        properties = {
            record.building.key
            for records in units.values()
            for record in records
            if isinstance(record, Unit) and isinstance(record.building, Link)
        }
        rows = await each(
            sorted(properties), lambda key: _PMS.one(self._client, f"api/v1/properties/{key}")
        )
        owners = {
            key: owner for key, row in rows.items() if (owner := text(row, "organization_id"))
        }

        def owned(record: Record) -> Record:
            if not isinstance(record, Unit) or not isinstance(record.building, Link):
                return record
            owner = owners.get(record.building.key)
            landlord = Link(NAME, Entity.LANDLORD, "id", owner) if owner else None
            return replace(record, landlord=landlord)

        return {key: [owned(record) for record in records] for key, records in units.items()}

    async def _children(
        self,
        keys: Sequence[str],
        kind: str,
        build: Callable[[Row, str], Record],
        key_of: Callable[[Row, str], str | None],
    ) -> Mapping[str, Sequence[Record]]:
        """Units or tenants for keys under properties: one listing per property, its rows
        grouped by the key each answers (`key_of` a row and its property)."""
        wanted = {key for key in keys if _split(key)}
        properties = {key.split("/")[0] for key in wanted}
        listed = await each(properties, lambda prop: self._all(f"api/v1/properties/{prop}/{kind}"))
        found: dict[str, list[Record]] = defaultdict(list)
        for prop, rows in listed.items():
            for row in rows:
                key = key_of(row, prop)
                if key in wanted:
                    found[key].append(build(row, prop))
        return found

    async def _tenants_of_leases(self, keys: Sequence[str]) -> Mapping[str, Sequence[Record]]:
        """pms knows a lease only through its tenants, listed per property: the property
        each key names is where it is looked for, and so where it is known to be."""
        return await self._children(
            keys, "tenants", _tenant, lambda row, prop: _under(row, "lease_id", prop)
        )

    async def _holder(self, lease_id: str) -> tuple[str, str]:
        """A tenant of the lease, as (property, tenant), to change the lease under."""
        holders = await self._tenants_of_leases([lease_id])
        tenant = _split(holders[lease_id][0].source_id) if holders.get(lease_id) else None
        if tenant is None:
            raise NotFound(f"pms has no lease {lease_id}.", provider=NAME)
        return tenant

    async def _leases(self, keys: Sequence[str]) -> Mapping[str, Sequence[Record]]:
        """Leases by their own id: pms reads one only under a tenant of it, so each
        property's tenant list (one read per property) names a tenant to read it under."""
        holders = await self._tenants_of_leases(keys)
        under = {key: tenants[0].source_id for key, tenants in holders.items() if tenants}
        found = await self.fetch(Entity.LEASE, "tenant", list(under.values()), Selection())
        return {key: found[tenant] for key, tenant in under.items() if tenant in found}

    async def _all(self, path: str, **filters: str) -> list[Row] | None:
        """Every record of a sub-list or a filtered list; None for a parent pms does not have."""
        try:
            return await self._listing(path, **filters).all()
        except NotFound:
            return None

    def _listing(self, path: str, **options: str) -> PageNumbers[Row]:
        async def fetch(page: int, size: int) -> tuple[Sequence[Row], int | None]:
            params = {"page": page, "page_size": size, **options}
            return await _PMS.listing(self._client, path, params=params)

        return PageNumbers(fetch, MAX_PAGE_SIZE)

    async def receive(
        self, body: bytes, headers: Mapping[str, str], _params: Mapping[str, str], /
    ) -> Delivery:
        """`{event, timestamp, data, webhook_id}` signed `X-Webhook-Signature: sha256=<hex>`
        (HMAC-SHA256 of the raw body); older or newer than five minutes is a replay."""
        if self._webhook_secret is None:
            raise Unauthenticated("No webhook_secret is configured for pms.")
        expected = hmac.new(self._webhook_secret.encode(), body, hashlib.sha256).hexdigest()
        given = headers.get("x-webhook-signature", "").removeprefix("sha256=")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise Unauthenticated("The delivery's signature does not match.")
        payload = json_object(body)
        if not isinstance(payload.get("webhook_id"), str):
            raise BadUserInput("The delivery has no webhook_id.")
        if not _sent_lately(moment(payload.get("timestamp")), self._clock(), REPLAY_WINDOW):
            raise Unauthenticated("The delivery's timestamp is outside the replay window.")
        event, data = payload.get("event"), payload.get("data")
        if not isinstance(event, str) or not isinstance(data, dict):
            raise BadUserInput("The delivery needs an event and its data.")
        subject, _, verb = event.partition(".")
        kind = _EVENT_KINDS.get(verb)
        property_id, tenant_id = text(data, "property_id"), text(data, "tenant_id")
        changes: tuple[Change, ...] = ()
        request = text(data, "maintenance_request_id")
        if kind is not None and subject == "maintenance" and request:
            status = _MAINTENANCE_STATUSES.get(text(data, "status") or "")
            said = (FieldChange("status", None, status.value),) if status else ()
            changes = (Change(kind, Entity.MAINTENANCE_REQUEST, NAME, request, said),)
        elif kind is not None and subject == "tenant" and property_id and tenant_id:
            changes = (Change(kind, Entity.TENANT, NAME, f"{property_id}/{tenant_id}"),)
        elif kind is not None and subject == "property" and property_id:
            changes = (Change(kind, Entity.BUILDING, NAME, property_id),)
        elif subject in ("invoice", "payment"):
            changes = _money_changed(event, data)
        return Delivery(changes, payload["webhook_id"], {"event": event})

    async def subscribe_webhooks(self, gateway_url: str, /) -> list[str]:
        """Registers `<gateway_url>/webhooks/pms` once (GET first), signed with webhook_secret."""
        if self._webhook_secret is None:
            return []
        url = f"{gateway_url.rstrip('/')}/webhooks/{NAME}"
        hooks = await self._hooks()
        mine = [hook for hook in hooks if hook.get("url") == url]
        if not mine:
            body = {"url": url, "events": list(_EVENTS), "secret": self._webhook_secret}
            await _PMS.response(self._client, "POST", "api/v1/webhooks", json=body)
            mine = [hook for hook in await self._hooks() if hook.get("url") == url]
        return sorted({str(event) for hook in mine for event in hook.get("events") or []})

    async def webhook_subscriptions(self) -> list[str]:
        return sorted({str(e) for hook in await self._hooks() for e in hook.get("events") or []})

    async def _hooks(self) -> list[dict[str, Any]]:
        hooks = await _PMS.body(self._client, "GET", "api/v1/webhooks")
        if not isinstance(hooks, list):
            raise UpstreamInvalidResponse(NAME, "pms listed its webhooks as a non-list.")
        return [hook for hook in hooks if isinstance(hook, dict)]

    async def update_lease(self, lease_id: str, terms: LeaseTerms, /) -> Lease:
        body: dict[str, Any] = {"end_date": terms.end_date}
        if terms.deposit is not None:
            deposit = json_amount(terms.deposit, NAME, "deposit")
            body |= {"deposit": deposit, "currency": terms.deposit.currency}
        names = {"end_date": "end_date", "deposit": "deposit", "currency": "deposit"}
        return await self._amend(lease_id, body, names)

    async def end_lease(self, lease_id: str, ending: LeaseEnding, /) -> Lease:
        """An early end: pms takes it as a new end date marked as a termination (assumed),
        which it refuses after the present end; its reason only if the caller gave one, so
        pms's own default applies otherwise."""
        body = {
            "end_date": ending.end_date,
            "early_termination": True,
            "termination_reason": ending.reason,
        }
        return await self._amend(
            lease_id,
            body,
            {
                "end_date": "end_date",
                "early_termination": "end_date",
                "termination_reason": "reason",
            },
        )

    async def change_rent(self, lease_id: str, change: NewRentChange, /) -> RentChange:
        """`POST …/lease` with the new rent and the day it takes effect (assumed fields)."""
        body = {
            "monthly_rent": json_amount(change.rent, NAME, "rent"),
            "effective_date": change.effective_date,
            "currency": change.rent.currency,
        }
        names = {"monthly_rent": "rent", "currency": "rent", "effective_date": "effective_date"}
        lease = await self._amend(lease_id, body, names)
        recorded = lease.rent_changes.prefetched if isinstance(lease.rent_changes, Link) else ()
        for record in recorded or ():
            if isinstance(record, RentChange) and record.effective_date == change.effective_date:
                return record
        raise UpstreamInvalidResponse(NAME, "pms did not show the rent change it took.")

    async def _amend(
        self, lease_id: str, body: Mapping[str, Any], names: Mapping[str, str]
    ) -> Lease:
        """pms changes a lease under one of its tenants (`POST …/tenants/{id}/lease`): the
        property's tenant list names one, then the change is sent there."""
        tenant = await self._holder(lease_id)
        sent = {
            name: value.isoformat() if isinstance(value, date) else value
            for name, value in body.items()
            if value is not None
        }
        row = await _PMS.write(
            self._client,
            "POST",
            "api/v1/properties/{}/tenants/{}/lease".format(*tenant),
            fields=names,
            json=sent,
        )
        return _lease(_PMS.as_record(row, "did not return the lease"), tenant[0])

    async def create_charge(self, lease_id: str, charge: NewCharge, /) -> Charge:
        """pms files an invoice under the lease's own id, the second part of the gateway's.
        The property, named first, is never sent, so the lease is first found under it:
        otherwise an id naming another property would bill that lease all the same."""
        key = _split(lease_id)
        if key is None:
            raise NotFound(f"pms has no lease {lease_id}.", provider=NAME)
        await self._holder(lease_id)
        body = {
            "lease_id": key[1],
            "amount": json_amount(charge.amount, NAME, "amount"),
            "currency": charge.amount.currency,
            "due_date": charge.due_date.isoformat(),
            "description": charge.description,
        }
        names = {"amount": "amount", "currency": "amount", "due_date": "due_date"}
        row = await _PMS.write(
            self._client,
            "POST",
            _INVOICES,
            fields={**names, "description": "description", "lease_id": "lease_id"},
            json={name: value for name, value in body.items() if value is not None},
        )
        return _charge(_PMS.as_record(row, "did not return the invoice"))

    async def record_payment(self, charge_id: str, payment: NewPayment, /) -> Payment:
        if not token_id(charge_id):
            raise NotFound(f"pms has no invoice {charge_id}.", provider=NAME)
        body = {
            "invoice_id": charge_id,
            "amount": json_amount(payment.amount, NAME, "amount"),
            "currency": payment.amount.currency,
            "paid_at": payment.paid_at.isoformat() if payment.paid_at else None,
            "method": payment.method,
        }
        names = {"amount": "amount", "currency": "amount", "paid_at": "paid_at", "method": "method"}
        row = await _PMS.write(
            self._client,
            "POST",
            _PAYMENTS,
            fields=names,
            json={name: value for name, value in body.items() if value is not None},
        )
        return _payment(_PMS.as_record(row, "did not return the payment"))

    async def create_tenant(self, unit_id: str, tenant: NewTenant, /) -> Tenant:
        key = _split(unit_id)
        if key is None:
            raise NotFound(f"pms has no unit {unit_id}.", provider=NAME)
        property_id, unit = key
        body = {
            "unit_id": unit,
            "first_name": tenant.first_name,
            "last_name": tenant.last_name,
            "email": tenant.email,
            "phone": tenant.phone,
        }
        created = await _PMS.write(
            self._client,
            "POST",
            f"api/v1/properties/{property_id}/tenants",
            fields={"unit_id": "unit_id", **{name: name for name in body}},
            json={name: value for name, value in body.items() if value is not None},
        )
        return _tenant(_PMS.as_record(created, "did not return the created tenant"), property_id)

    async def create_maintenance_request(
        self, unit_id: str, request: NewMaintenanceRequest, /
    ) -> MaintenanceRequest:
        key = _split(unit_id)
        if key is None:
            raise NotFound(f"pms has no unit {unit_id}.", provider=NAME)
        property_id, unit = key
        tenant = _split(request.tenant_id) if request.tenant_id is not None else None
        if request.tenant_id is not None and (tenant is None or tenant[0] != property_id):
            raise _refused_here("tenant_id", "The tenant does not live in the unit's property.")
        body = {
            "property_id": property_id,
            "unit_id": unit,
            "description": request.description,
            "title": request.title,
            "priority": _WORDS[request.priority.value] if request.priority else None,
            "tenant_id": tenant[1] if tenant else None,
        }
        created = await self._operate(
            "POST",
            "maintenance-requests",
            {**{name: name for name in body}, "property_id": "unit_id"},
            body,
        )
        return _request(created)

    async def assign_maintenance_request(
        self, request_id: str, assignment: Assignment, /
    ) -> MaintenanceRequest:
        scheduled = assignment.scheduled_for
        body = {
            "vendor_id": assignment.vendor_id,
            "scheduled_date": scheduled.isoformat() if scheduled else None,
        }
        fields = {"vendor_id": "vendor_id", "scheduled_date": "scheduled_for"}
        path = f"maintenance-requests/{_path_id(request_id)}/assign"
        return _request(await self._operate("POST", path, fields, body))

    async def complete_maintenance_request(
        self, request_id: str, completion: Completion, /
    ) -> MaintenanceRequest:
        path = f"maintenance-requests/{_path_id(request_id)}/complete"
        body = {"resolution": completion.resolution}
        return _request(await self._operate("POST", path, {"resolution": "resolution"}, body))

    async def create_work_order(self, request_id: str, order: NewWorkOrder, /) -> WorkOrder:
        scheduled = order.scheduled_for
        body = {
            "maintenance_request_id": _path_id(request_id),
            "vendor_id": order.vendor_id,
            "description": order.description,
            "scheduled_date": scheduled.isoformat() if scheduled else None,
            **_cost(order.estimated_cost, "estimated_cost"),
        }
        fields = {
            "maintenance_request_id": "maintenance_request_id",
            "vendor_id": "vendor_id",
            "description": "description",
            "scheduled_date": "scheduled_for",
            "cost": "estimated_cost",
            "currency": "estimated_cost",
        }
        return _work_order(await self._operate("POST", "work-orders", fields, body))

    async def start_work_order(self, order_id: str, /) -> WorkOrder:
        path = f"work-orders/{_path_id(order_id)}/start"
        return _work_order(await self._operate("POST", path, {}, {}))

    async def complete_work_order(
        self, order_id: str, completion: WorkOrderCompletion, /
    ) -> WorkOrder:
        path = f"work-orders/{_path_id(order_id)}/complete"
        body = _cost(completion.cost, "cost")
        fields = {"cost": "cost", "currency": "cost"}
        return _work_order(await self._operate("POST", path, fields, body))

    async def cancel_work_order(self, order_id: str, cancellation: Cancellation, /) -> WorkOrder:
        path = f"work-orders/{_path_id(order_id)}/cancel"
        body = {"reason": cancellation.reason}
        return _work_order(await self._operate("POST", path, {"reason": "reason"}, body))

    async def _operate(
        self, method: str, path: str, fields: Mapping[str, str], body: Mapping[str, Any]
    ) -> dict[str, Any]:
        """A write to the Operations service: what was not given is left out, so pms's own
        default applies; its refusal names the caller's fields."""
        answered = await _PMS.write(
            self._client,
            method,
            f"{_OPERATIONS}/{path}",
            fields=fields,
            json={name: value for name, value in body.items() if value is not None},
        )
        return _PMS.as_record(answered, "did not return the record written")

    async def update_unit_status(self, unit_id: str, change: UnitStatusChange, /) -> Unit:
        key = _split(unit_id)
        status = {Occupancy.VACANT: "vacant", Occupancy.OCCUPIED: "occupied"}.get(change.occupancy)
        if key is None:
            raise NotFound(f"pms has no unit {unit_id}.", provider=NAME)
        if status is None:
            raise _refused_here("occupancy", "pms sets a unit vacant or occupied.")
        property_id, unit = key
        answered = await _PMS.write(
            self._client,
            "PUT",
            f"api/v1/properties/{property_id}/units/{unit}/status",
            fields={"status": "occupancy"},
            json={"status": status},
        )
        return _unit(_PMS.as_record(answered, "did not return the unit"), property_id)


def _sent_lately(sent: datetime | None, now: float, window: float) -> bool:
    """Whether a delivery sent then is within `window` seconds of now. A naive moment is
    local time, and one near the calendar's ends has no POSIX time (`0001-01-01` is
    before the epoch's earliest local time): such a delivery is outside any window."""
    if sent is None:
        return False
    try:
        return abs(sent.timestamp() - now) <= window
    except (OverflowError, ValueError, OSError):
        return False


def _path_id(key: str) -> str:
    """An id that goes into a write's path: a plain one, or nothing pms could have."""
    if not token_id(key):
        raise NotFound(f"pms has no record {key[:40]}.", provider=NAME)
    return key


def _refused_here(field: str, message: str) -> ValidationFailed:
    """A refusal before anything is sent, naming the caller's field."""
    return ValidationFailed(NAME, message, [{"field": field, "message": message}])


def _cost(cost: Money | None, field: str) -> dict[str, Any]:
    """An amount as pms takes it: a number and its currency."""
    if cost is None:
        return {}
    return {"cost": json_amount(cost, NAME, field), "currency": cost.currency}
