"""Primmo (HApi): OData v4, bearer tokens bought with an API key and a password.

Everything Primmo-specific lives here: entity sets and property names, the
space-padded codes (trimmed in the records a caller sees, sent back exactly as
Primmo returned them), the float `TenantNo`, and how relations are keyed.
Primmo links a unit to its building and a tenant to its unit by company,
division and codes rather than by id, so those tuples are the keys of its `Link`s.

Primmo is a standard OData v4 service, so the connector speaks the standard,
not what one server forgives: query strings encoded by `gateway.connectors.odata`, every
`@odata.nextLink` followed (a server may cap its pages, in lists, batched
fetches and expanded collections alike), and a count asked of `/$count` when
the body does not carry one.
"""

from __future__ import annotations

import asyncio
import hmac
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from operator import itemgetter
from typing import Any

import httpx
import orjson
from pydantic import Field

from gateway.config import ConnectorOptions, connector_options
from gateway.connectors import odata
from gateway.connectors.base import Connector, ListRequest, Page, offset_of
from gateway.connectors.calls import Dialect, Said
from gateway.connectors.capabilities import (
    ChargeWrites,
    MaintenanceWrites,
    RentChanges,
    TenantWrites,
    WebhookSource,
)
from gateway.connectors.paging import Answer, NextLinks
from gateway.connectors.values import (
    amount,
    day,
    integer_id,
    json_amount,
    json_object,
    moment,
    money,
    number,
    text,
)
from gateway.errors import (
    BadUserInput,
    ModuleNotLicensed,
    NotFound,
    Unauthenticated,
    UpstreamInvalidResponse,
    ValidationFailed,
)
from gateway.events import Change, ChangeKind, Delivery
from gateway.model import (
    LATER,
    Assignment,
    AvailableBetween,
    Balance,
    Between,
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
    LeaseStatus,
    Link,
    MaintenanceRequest,
    MaintenanceStatus,
    Money,
    NewCharge,
    NewMaintenanceRequest,
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
    Vendor,
    Within,
    WorkOrder,
    WorkOrderCompletion,
    WorkOrderStatus,
    made_later,
)
from gateway.upstream.auth import ApiKeyPasswordAuth
from gateway.upstream.client import Upstream

__all__ = ["PrimmoConnector"]

NAME = "primmo"
Row = dict[str, Any]
"""A record as JSON parses it: expanded collections are completed in place."""
_PLACE = ("CompanyNo", "DivisionNo")
_BUILDING_KEY = (*_PLACE, "BuildingCode")
_UNIT_KEY = (*_BUILDING_KEY, "UnitCode")
_TOKEN_LIFETIME = 24 * 3600.0
CURRENCY = "CAD"
"""Primmo's amounts carry no currency: it is a Québec product, and they are Canadian
dollars (assumed)."""
_PRIMMO = Dialect(NAME)

MAX_QUERY_BYTES = 2048
"""Of a request's query string, by default: IIS refuses a longer one (its `maxQueryString`),
and Primmo is an ASP.NET service. A batch of keys is cut into as many requests as keep each
under it."""

MAX_FILTER_NODES = 100
"""Of a request's `$filter`, as ASP.NET's OData counts its nodes (`odata.Expr.nodes`): its
`MaxNodeCount` refuses more unless the service raised it. A batch of keys is cut into as many
requests as keep each under it: a building's units cost 19 nodes, the units several buildings
of a division share 15, so five or six such parts go to a request."""

NEXT_LINK_ROOM = 256
"""Bytes a batch leaves free: a server that pages its answer links the next page as the same
query and a `$skiptoken` (ASP.NET's names the last row's sort values, `LastName-'…',Id-123`),
which the next request must still fit."""


class PrimmoOptions(ConnectorOptions):
    max_query_bytes: int = Field(MAX_QUERY_BYTES, ge=1024, le=65_536)
    """The longest query string Primmo's server takes: raise it for one that takes more
    (Kestrel alone takes request lines of 8 KB), and batches need fewer requests."""
    max_filter_nodes: int = Field(MAX_FILTER_NODES, ge=50, le=100_000)
    """The most nodes Primmo's server takes in a `$filter` (its `MaxNodeCount`): raise it for
    one configured to take more, and batches need fewer requests."""


@dataclass(frozen=True)
class _Shape:
    path: str
    fields: Mapping[str, str]
    identity: tuple[str, ...]
    order: tuple[str, ...]
    keys: Mapping[str, tuple[str, ...]]
    build: Callable[[Row, Selection], Record]
    where: odata.Expr | None = None
    """What every read of the set is narrowed to (a statement's payment lines)."""


def _row_key(row: Row, properties: tuple[str, ...]) -> str:
    """The key values exactly as Primmo returned them, padding included (a key of one
    property is an integer id, as itself): a trimmed code matches only on a server that
    ignores trailing spaces (SQL Server), nowhere else. orjson writes the same compact JSON
    in a tenth of the time."""
    return _written(_values(row, properties))


def _written(values: tuple[Any, ...]) -> str:
    return orjson.dumps(values).decode() if len(values) > 1 else str(values[0])


def _values(row: Row, properties: tuple[str, ...]) -> tuple[Any, ...]:
    """The row's values of `properties`, taken out in one `itemgetter` call (a missing one
    is None)."""
    getter = _GETTERS.get(properties)
    if getter is None:
        getter = _GETTERS[properties] = itemgetter(*properties)
    try:
        values = getter(row)
    except KeyError:
        return tuple(row.get(name) for name in properties)
    return values if len(properties) > 1 else (values,)


_GETTERS: dict[tuple[str, ...], Callable[[Row], Any]] = {}
"""One `itemgetter` per kind of key: a handful, fixed by `_SHAPES`."""


class _SharedLinks:
    """Links many records share (every unit of a building points to it, every record of a
    division to its landlord), each made once: a link is immutable, and this one's key costs
    more to write than to look up. One per relation, so a lookup hashes the row's values
    alone (with the entity in the key, `Enum.__hash__` ran in Python for every row);
    emptied when it holds `_SHARED_LINKS_KEPT`."""

    __slots__ = ("_by", "_entity", "_links", "_properties")

    def __init__(self, entity: Entity, by: str, properties: tuple[str, ...]) -> None:
        self._entity = entity
        self._by = by
        self._properties = properties
        self._links: dict[tuple[Any, ...], Link | Unavailable] = {}

    def __call__(self, row: Row) -> Link | Unavailable:
        values = _values(row, self._properties)
        try:
            found = self._links.get(values)
        except TypeError:
            return _link_or_why(self._entity, self._by, values)
        if found is None:
            if len(self._links) >= _SHARED_LINKS_KEPT:
                self._links.clear()
            found = self._links[values] = _link_or_why(self._entity, self._by, values)
        return found


_SHARED_LINKS_KEPT = 10_000


def _parse_key(key: str, properties: tuple[str, ...]) -> tuple[Any, ...] | None:
    """Keys come from our own links, or from a caller's global id: trust neither blindly.
    A key of one property is an integer id (`Id`, `LeaseId`). orjson reads one in an eighth
    of the standard library's time, and a nested query's batch of tenants reads eighty;
    a number beyond 64 bits it reads as a float, which no key holds."""
    if len(properties) == 1:
        return (int(key),) if integer_id(key) else None
    try:
        values = orjson.loads(key)
    except orjson.JSONDecodeError:
        return None
    if values.__class__ is not list or len(values) != len(properties):
        return None
    if not all(value.__class__ is str or value.__class__ is int for value in values):
        return None
    return tuple(values)


def _source_id(row: Row) -> str:
    value = row.get("Id")
    if not isinstance(value, int) or isinstance(value, bool):
        raise UpstreamInvalidResponse(NAME, "primmo returned a record without an integer Id.")
    return str(value)


def _link(entity: Entity, by: str, row: Row, properties: tuple[str, ...]) -> Link:
    return Link(NAME, entity, by, _row_key(row, properties))


def _related_by(
    entity: Entity, by: str, properties: tuple[str, ...]
) -> Callable[[Row], Link | Unavailable]:
    """A reader of the relation the row's `properties` key (see `_link_or_why`)."""
    return lambda row: _link_or_why(entity, by, _values(row, properties))


def _link_or_why(entity: Entity, by: str, values: tuple[Any, ...]) -> Link | Unavailable:
    """A relation read later is read wherever it is first asked, so reading it cannot fail:
    a key that no request can name (a number past 64 bits, which orjson will not write) is
    a relation that says so when followed."""
    try:
        key = _written(values)
    except orjson.JSONEncodeError:
        return Unavailable(
            NAME, entity, f"primmo returned a {entity.value} key no request can name."
        )
    return Link(NAME, entity, by, key)


_LANDLORD_OF_DIVISION = _SharedLinks(Entity.LANDLORD, "division", _PLACE)
_BUILDINGS_OF_DIVISION = _SharedLinks(Entity.BUILDING, "division", _PLACE)
_BUILDING_BY_CODE = _SharedLinks(Entity.BUILDING, "code", _BUILDING_KEY)


def _building(row: Row, selection: Selection) -> Building:
    """A building's relations are read from its row when asked (see `_unit`), its units
    there and then when they came with it (`$expand`)."""
    units: Link | Unavailable = LATER
    if "units" in selection.relations and isinstance(row.get("Units"), list):
        nested = selection.relations["units"]
        prefetched = tuple(_unit(unit, nested) for unit in row["Units"] if isinstance(unit, dict))
        units = _UNITS_OF_BUILDING(row)
        if isinstance(units, Link):
            units = Link(units.provider, units.entity, units.by, units.key, prefetched)
    return _BUILDING(
        row,
        provider=NAME,
        source_id=_source_id(row),
        name=text(row, "Name"),
        code=text(row, "BuildingCode"),
        street=text(row, "CivicNoAndStreet"),
        city=text(row, "City"),
        units=units,
    )


_UNITS_OF_BUILDING = _related_by(Entity.UNIT, "building", _BUILDING_KEY)
_BUILDING = made_later(
    Building,
    {
        "landlord": _LANDLORD_OF_DIVISION,
        "units": _UNITS_OF_BUILDING,
        "maintenance_requests": _related_by(Entity.MAINTENANCE_REQUEST, "building", _BUILDING_KEY),
    },
)
_OCCUPANCY = {"V": Occupancy.VACANT, "L": Occupancy.OCCUPIED, "O": Occupancy.OCCUPIED}
_NO_LISTING = Unavailable(
    NAME,
    Entity.LISTING,
    "primmo does not advertise units: Unit.listing cannot be answered from it.",
)


def _unit(row: Row, _selection: Selection) -> Unit:
    """A unit's relations are read from its row only when asked (`made_later`, `_UNIT`):
    building its four links was two fifths of decoding a unit, for lists that select none of
    them."""
    rooms = number(row.get("NumberOfRooms"))
    status = text(row, "OccupancyStatus")
    return _UNIT(
        row,
        provider=NAME,
        source_id=_source_id(row),
        code=text(row, "UnitCode"),
        rooms=rooms,
        occupancy=_OCCUPANCY.get(status.upper(), Occupancy.UNKNOWN) if status else None,
        housing_type=text(row, "HousingType"),
        listing=_NO_LISTING,
    )


_UNIT = made_later(
    Unit,
    {
        "building": _BUILDING_BY_CODE,
        "landlord": _LANDLORD_OF_DIVISION,
        "tenants": _related_by(Entity.TENANT, "unit", _UNIT_KEY),
        "maintenance_requests": _related_by(Entity.MAINTENANCE_REQUEST, "unit", _UNIT_KEY),
    },
)


def _tenant(row: Row, _selection: Selection) -> Tenant:
    """A tenant's relations, as a unit's, are read from its row when asked."""
    number = row.get("TenantNo")
    if isinstance(number, float) and number.is_integer():
        number = int(number)
    return _TENANT(
        row,
        provider=NAME,
        source_id=_source_id(row),
        first_name=text(row, "FirstName"),
        last_name=text(row, "LastName"),
        tenant_number=str(number) if number is not None else None,
        tenant_type=text(row, "TenantType"),
        email=text(row, "Email"),
        phone=text(row, "Phone"),
    )


def _by_tenant(entity: Entity) -> Callable[[Row], Link]:
    """A reader of the tenant's relation its id keys (an integer: `_source_id` checked it)."""
    return lambda row: Link(NAME, entity, "tenant", str(row["Id"]))


_TENANT = made_later(
    Tenant,
    {
        "unit": _related_by(Entity.UNIT, "code", _UNIT_KEY),
        "lease": lambda row: _id_link(Entity.LEASE, row, "LeaseId"),
        "charges": _by_tenant(Entity.CHARGE),
        "payments": _by_tenant(Entity.PAYMENT),
        "balance": _by_tenant(Entity.BALANCE),
        "maintenance_requests": _by_tenant(Entity.MAINTENANCE_REQUEST),
    },
)


_LEASE_STATUSES = {"A": LeaseStatus.ACTIVE, "T": LeaseStatus.ENDED, "F": LeaseStatus.UPCOMING}
_FORGOTTEN = Unavailable(
    NAME,
    Entity.TENANT,
    "primmo keeps no former tenants: Lease.tenants of an ended lease cannot be answered.",
)


def _lease(row: Row, _selection: Selection) -> Lease:
    status = _LEASE_STATUSES.get((text(row, "Status") or "").upper())
    return Lease(
        provider=NAME,
        source_id=_source_id(row),
        start_date=day(row.get("StartDate")),
        end_date=day(row.get("EndDate")),
        rent=money(row.get("RentAmount"), CURRENCY),
        deposit=money(row.get("DepositAmount"), CURRENCY),
        status=status,
        tenants=_FORGOTTEN
        if status is LeaseStatus.ENDED
        else _link(Entity.TENANT, "lease", row, ("Id",)),
        unit=_link(Entity.UNIT, "code", row, _UNIT_KEY),
        rent_changes=_link(Entity.RENT_CHANGE, "lease", row, ("Id",)),
        charges=_link(Entity.CHARGE, "lease", row, ("Id",)),
        payments=_link(Entity.PAYMENT, "lease", row, ("Id",)),
        balance=_link(Entity.BALANCE, "lease", row, ("Id",)),
    )


def _id_link(entity: Entity, row: Row, name: str) -> Link | None:
    value = row.get(name)
    return Link(NAME, entity, "id", str(value)) if isinstance(value, int) else None


def _charge(row: Row, _selection: Selection) -> Charge:
    """An invoice (`api/Invoices`, assumed): Primmo keeps what is left to pay on it, not a
    status, so paid is a zero balance."""
    left = amount(row.get("Balance"))
    return Charge(
        provider=NAME,
        source_id=_source_id(row),
        number=text(row, "InvoiceNo"),
        description=text(row, "Description"),
        amount=money(row.get("Amount"), CURRENCY),
        balance=money(left, CURRENCY) if left is not None else None,
        issued_on=day(row.get("InvoiceDate")),
        due_on=day(row.get("DueDate")),
        status=None if left is None else ChargeStatus.PAID if left == 0 else ChargeStatus.OPEN,
        tenant=_id_link(Entity.TENANT, row, "TenantId"),
        lease=_id_link(Entity.LEASE, row, "LeaseId"),
        payments=_link(Entity.PAYMENT, "charge", row, ("Id",)),
    )


def _payment(row: Row, _selection: Selection) -> Payment:
    """A payment line of a tenant's financial statement (`api/FinancialStatements`,
    assumed): only payments received are on it."""
    return Payment(
        provider=NAME,
        source_id=_source_id(row),
        amount=money(row.get("Amount"), CURRENCY),
        paid_at=moment(row.get("TransactionDate")),
        status=PaymentStatus.COMPLETED,
        method=text(row, "Reference"),
        tenant=_id_link(Entity.TENANT, row, "TenantId"),
        lease=_id_link(Entity.LEASE, row, "LeaseId"),
        charge=_id_link(Entity.CHARGE, row, "InvoiceId"),
    )


def _balance(row: Row, _selection: Selection) -> Balance:
    """A lease's account receivable (`api/AccountsReceivable`, assumed)."""
    return Balance(
        provider=NAME,
        source_id=_source_id(row),
        owed=money(row.get("Balance"), CURRENCY),
        overdue=money(row.get("PastDue"), CURRENCY),
    )


def _rent_change(row: Row, _selection: Selection) -> RentChange:
    return RentChange(
        provider=NAME,
        source_id=_source_id(row),
        effective_date=day(row.get("EffectiveDate")),
        rent=money(row.get("Amount"), CURRENCY),
        lease=_id_link(Entity.LEASE, row, "LeaseId"),
    )


def _landlord(row: Row, _selection: Selection) -> Landlord:
    return Landlord(
        provider=NAME,
        source_id=_source_id(row),
        name=text(row, "Name"),
        billing_address=", ".join(
            part for part in (text(row, "CivicNoAndStreet"), text(row, "City")) if part
        )
        or None,
        billing_postal_code=text(row, "PostalCode"),
        buildings=_BUILDINGS_OF_DIVISION(row),
    )


# --- Service calls (maintenance requests), their details (work orders), suppliers (vendors).
# Their properties and codes are assumed: the document names the entities, writable and
# with webhooks, but shows none of them. ---

_CALL_STATUSES = {
    "O": MaintenanceStatus.OPEN,
    "A": MaintenanceStatus.ASSIGNED,
    "T": MaintenanceStatus.COMPLETED,
}
_DETAIL_STATUSES = {
    "P": WorkOrderStatus.SCHEDULED,
    "E": WorkOrderStatus.IN_PROGRESS,
    "T": WorkOrderStatus.COMPLETED,
    "X": WorkOrderStatus.CANCELLED,
}
_PRIORITIES = {1: Priority.URGENT, 2: Priority.HIGH, 3: Priority.NORMAL, 4: Priority.LOW}
_CALL_CODES = {status.value: code for code, status in _CALL_STATUSES.items()}
_DETAIL_CODES = {status.value: code for code, status in _DETAIL_STATUSES.items()}
_PRIORITY_NUMBERS = {priority.value: number for number, priority in _PRIORITIES.items()}


def _code(row: Row, name: str) -> str:
    return (text(row, name) or "").upper()


def _service_call(row: Row, _selection: Selection) -> MaintenanceRequest:
    priority = row.get("Priority")
    return MaintenanceRequest(
        provider=NAME,
        source_id=_source_id(row),
        description=text(row, "Description"),
        priority=_PRIORITIES.get(priority) if isinstance(priority, int) else None,
        status=_CALL_STATUSES.get(_code(row, "Status")),
        reported_at=moment(row.get("RequestDate")),
        scheduled_for=day(row.get("ScheduledDate")),
        completed_at=moment(row.get("CompletedDate")),
        unit=_link(Entity.UNIT, "code", row, _UNIT_KEY),
        building=_link(Entity.BUILDING, "code", row, _BUILDING_KEY),
        tenant=_id_link(Entity.TENANT, row, "TenantId"),
        vendor=_id_link(Entity.VENDOR, row, "SupplierId"),
        work_orders=_link(Entity.WORK_ORDER, "request", row, ("Id",)),
    )


def _service_call_detail(row: Row, _selection: Selection) -> WorkOrder:
    return WorkOrder(
        provider=NAME,
        source_id=_source_id(row),
        description=text(row, "Description"),
        status=_DETAIL_STATUSES.get(_code(row, "Status")),
        scheduled_for=day(row.get("ScheduledDate")),
        started_at=moment(row.get("StartDate")),
        completed_at=moment(row.get("EndDate")),
        cost=money(row.get("Amount"), CURRENCY),
        request=_id_link(Entity.MAINTENANCE_REQUEST, row, "ServiceCallId"),
        vendor=_id_link(Entity.VENDOR, row, "SupplierId"),
        unit=_link(Entity.UNIT, "code", row, _UNIT_KEY),
    )


def _supplier(row: Row, _selection: Selection) -> Vendor:
    return Vendor(
        provider=NAME,
        source_id=_source_id(row),
        name=text(row, "Name"),
        trade=text(row, "Trade"),
        email=text(row, "Email"),
        phone=text(row, "Phone"),
    )


_SERVICE_SHAPES: dict[Entity, _Shape] = {
    Entity.MAINTENANCE_REQUEST: _Shape(
        path="api/ServiceCalls",
        fields={
            "description": "Description",
            "priority": "Priority",
            "status": "Status",
            "reported_at": "RequestDate",
            "scheduled_for": "ScheduledDate",
            "completed_at": "CompletedDate",
        },
        identity=("Id", *_UNIT_KEY, "TenantId", "SupplierId"),
        order=("RequestDate", "Id"),
        keys={"id": ("Id",), "unit": _UNIT_KEY, "building": _BUILDING_KEY, "tenant": ("TenantId",)},
        build=_service_call,
    ),
    Entity.WORK_ORDER: _Shape(
        path="api/ServiceCallDetails",
        fields={
            "description": "Description",
            "status": "Status",
            "scheduled_for": "ScheduledDate",
            "started_at": "StartDate",
            "completed_at": "EndDate",
            "cost": "Amount",
        },
        identity=("Id", "ServiceCallId", "SupplierId", *_UNIT_KEY),
        order=("ScheduledDate", "Id"),
        keys={"id": ("Id",), "request": ("ServiceCallId",)},
        build=_service_call_detail,
    ),
    Entity.VENDOR: _Shape(
        path="api/Suppliers",
        fields={"name": "Name", "trade": "Trade", "email": "Email", "phone": "Phone"},
        identity=("Id",),
        order=("Name", "Id"),
        keys={"id": ("Id",)},
        build=_supplier,
    ),
}


_SHAPES: dict[Entity, _Shape] = {
    Entity.BUILDING: _Shape(
        path="api/Buildings",
        fields={
            "name": "Name",
            "code": "BuildingCode",
            "street": "CivicNoAndStreet",
            "city": "City",
        },
        identity=("Id", *_BUILDING_KEY),
        order=("Name", "Id"),
        keys={"id": ("Id",), "code": _BUILDING_KEY, "division": _PLACE},
        build=_building,
    ),
    Entity.UNIT: _Shape(
        path="api/Units",
        fields={
            "code": "UnitCode",
            "rooms": "NumberOfRooms",
            "occupancy": "OccupancyStatus",
            "housing_type": "HousingType",
        },
        identity=("Id", *_UNIT_KEY),
        order=("UnitCode", "Id"),
        keys={"id": ("Id",), "code": _UNIT_KEY, "building": _BUILDING_KEY},
        build=_unit,
    ),
    Entity.TENANT: _Shape(
        path="api/Tenants",
        fields={
            "first_name": "FirstName",
            "last_name": "LastName",
            "tenant_number": "TenantNo",
            "tenant_type": "TenantType",
            "email": "Email",
            "phone": "Phone",
        },
        identity=("Id", *_UNIT_KEY, "LeaseId"),
        order=("LastName", "FirstName", "Id"),
        keys={"id": ("Id",), "unit": _UNIT_KEY, "lease": ("LeaseId",)},
        build=_tenant,
    ),
    Entity.LEASE: _Shape(
        path="api/Leases",
        fields={
            "start_date": "StartDate",
            "end_date": "EndDate",
            "rent": "RentAmount",
            "deposit": "DepositAmount",
            "status": "Status",
        },
        identity=("Id", *_UNIT_KEY, "Status"),
        order=("StartDate", "Id"),
        keys={"id": ("Id",)},
        build=_lease,
    ),
    Entity.CHARGE: _Shape(
        path="api/Invoices",
        fields={
            "number": "InvoiceNo",
            "description": "Description",
            "amount": "Amount",
            "balance": "Balance",
            "status": "Balance",
            "issued_on": "InvoiceDate",
            "due_on": "DueDate",
        },
        identity=("Id", "TenantId", "LeaseId"),
        order=("DueDate", "Id"),
        keys={"id": ("Id",), "tenant": ("TenantId",), "lease": ("LeaseId",)},
        build=_charge,
    ),
    Entity.PAYMENT: _Shape(
        path="api/FinancialStatements",
        fields={
            "amount": "Amount",
            "paid_at": "TransactionDate",
            "method": "Reference",
        },
        identity=("Id", "TenantId", "LeaseId", "InvoiceId"),
        order=("TransactionDate", "Id"),
        keys={
            "id": ("Id",),
            "tenant": ("TenantId",),
            "lease": ("LeaseId",),
            "charge": ("InvoiceId",),
        },
        build=_payment,
        where=odata.eq("TransactionType", "P"),
    ),
    Entity.BALANCE: _Shape(
        path="api/AccountsReceivable",
        fields={"owed": "Balance", "overdue": "PastDue"},
        identity=("Id", "TenantId", "LeaseId"),
        order=("Id",),
        keys={"tenant": ("TenantId",), "lease": ("LeaseId",)},
        build=_balance,
    ),
    Entity.RENT_CHANGE: _Shape(
        path="api/LeasePriceChanges",
        fields={"effective_date": "EffectiveDate", "rent": "Amount"},
        identity=("Id", "LeaseId"),
        order=("EffectiveDate", "Id"),
        keys={"lease": ("LeaseId",)},
        build=_rent_change,
    ),
    Entity.LANDLORD: _Shape(
        path="api/LedgerDivisions",
        fields={
            "name": "Name",
            "billing_address": "CivicNoAndStreet,City",
            "billing_postal_code": "PostalCode",
        },
        identity=("Id", *_PLACE),
        order=("Name", "Id"),
        keys={"id": ("Id",), "division": _PLACE},
        build=_landlord,
    ),
    **_SERVICE_SHAPES,
}

_OCCUPANCY_CODES = {"VACANT": "V", "OCCUPIED": "L"}
_COMPLETED = PaymentStatus.COMPLETED.value
_LEASE_CODES = {status.value: code for code, status in _LEASE_STATUSES.items()}
WEBHOOK_HEADER = "x-propgate-webhook-key"
"""The custom header Primmo sends back with every delivery, as asked at subscription."""
CONTENT_WINDOW = 10.0
"""Primmo deliveries carry no id: the same record and status within this many seconds is
taken as a repeat (the object is read fresh anyway, so nothing is lost but a duplicate)."""
_SUBSCRIBED = (
    "Building",
    "Unit",
    "Tenant",
    "Invoice",
    "ServiceCall",
    "ServiceCallDetail",
    "Supplier",
)
_WEBHOOK_ENTITIES = {
    "building": Entity.BUILDING,
    "unit": Entity.UNIT,
    "tenant": Entity.TENANT,
    "invoice": Entity.CHARGE,
    "servicecall": Entity.MAINTENANCE_REQUEST,
    "servicecalldetail": Entity.WORK_ORDER,
    "supplier": Entity.VENDOR,
}
_MODULES = {"api/FinancialStatements": "FinancialStatements"}
"""Sets Primmo sells as modules a client may not have bought: 403 until it has (FAQ R8)."""
_STATUSES = {1: ChangeKind.UPDATED, 2: ChangeKind.DELETED, 3: ChangeKind.CREATED}


class PrimmoConnector(
    Connector, TenantWrites, RentChanges, ChargeWrites, WebhookSource, MaintenanceWrites
):
    name = NAME
    kind = "odata"
    embeds = {Entity.BUILDING: frozenset({"units"})}
    serves = frozenset(_SHAPES)
    lists = frozenset(_SHAPES) - {Entity.BALANCE, Entity.RENT_CHANGE}
    accepts = {
        "create_tenant": frozenset({"email", "phone", "tenant_type"}),
        "create_charge": frozenset({"description"}),
        "create_maintenance_request": frozenset({"priority", "tenant_id"}),
        "assign_maintenance_request": frozenset({"scheduled_for"}),
        "create_work_order": frozenset({"scheduled_for", "estimated_cost"}),
        "complete_work_order": frozenset({"cost"}),
    }

    credentials = ("api_key", "username", "password")
    options = PrimmoOptions

    def __init__(
        self,
        client: httpx.AsyncClient,
        auth: ApiKeyPasswordAuth | None = None,
        webhook_key: str | None = None,
        max_query_bytes: int = MAX_QUERY_BYTES,
        max_filter_nodes: int = MAX_FILTER_NODES,
    ) -> None:
        super().__init__(client, auth)
        self._webhook_key = webhook_key
        self._query_room = max_query_bytes - NEXT_LINK_ROOM
        """What a first request's query string may take: the server's limit, less room for
        a next link's `$skiptoken`."""
        self._max_nodes = max_filter_nodes

    @classmethod
    def connect(cls, upstream: Upstream) -> PrimmoConnector:
        auth = ApiKeyPasswordAuth(
            provider=NAME,
            client=upstream.client(kind="token"),
            path="api/Token",
            headers={"x-api-key": upstream.credential("api_key")},
            body={
                "UserName": upstream.credential("username"),
                "Password": upstream.credential("password"),
            },
            lifetime=_TOKEN_LIFETIME,
            clock=upstream.clock,
            store=upstream.tokens(),
            fetched=upstream.token_fetched,
        )
        options = connector_options(PrimmoOptions, NAME, upstream.options)
        return cls(
            upstream.client(auth),
            auth,
            upstream.credentials.get("webhook_secret"),
            options.max_query_bytes,
            options.max_filter_nodes,
        )

    def supports(self, entity: Entity, criteria: Criteria, /) -> bool:
        """Primmo cancels no invoice, and a statement shows only payments received: a list
        of anything else would only ever be empty, so Primmo is left out of it."""
        status = criteria.get("status")
        if entity is Entity.CHARGE and status == Equals(ChargeStatus.CANCELLED.value):
            return False
        if entity is Entity.PAYMENT and status not in (None, Equals(_COMPLETED)):
            return False
        return entity in self.lists

    async def page(self, entity: Entity, request: ListRequest, /) -> Page:
        shape = _SHAPES[entity]
        path, extra, expr = self._criteria(entity, request.criteria)
        expr = odata.all_of(shape.where, expr)
        skip = offset_of(request.position)
        query = odata.Query(
            select=self._select(shape, request.selection),
            filter=expr,
            orderby=shape.order,
            top=request.limit,
            skip=skip,
            count=request.count,
            expand=self._expand(entity, request.selection),
        )
        answer = await self._read(path, {**extra, **query.params()}, want=request.limit)
        rows = answer.rows[: request.limit]
        total = answer.total
        if request.count and total is None:
            total = await self._count(path, extra, expr)
        records = [shape.build(row, request.selection) for row in rows]
        return Page(
            records=records,
            positions=[skip + index + 1 for index in range(len(records))],
            exhausted=not answer.more and len(rows) < request.limit,
            total=total,
        )

    async def fetch(
        self, entity: Entity, by: str, keys: Sequence[str], selection: Selection, /
    ) -> Mapping[str, Sequence[Record]]:
        shape = _SHAPES[entity]
        properties = shape.keys[by]
        parsed = {key: _parse_key(key, properties) for key in keys}
        wanted = {key: values for key, values in parsed.items() if values is not None}
        if not wanted:
            return {}
        unfiltered = odata.Query(
            select=self._select(shape, selection),
            orderby=shape.order,
            expand=self._expand(entity, selection),
        )
        narrowed = "" if shape.where is None else f"({odata.render(shape.where)}) and "
        room = Room(
            self._query_room
            - len(odata.encode(unfiltered.params()))
            - len("&$filter=")
            - odata.encoded_size(narrowed)
            - len("()"),
            self._max_nodes - (0 if shape.where is None else shape.where.nodes + 1),
        )
        queries = [
            replace(unfiltered, filter=odata.all_of(shape.where, expr))
            for expr in _batched_filters(properties, list(wanted.values()), room)
        ]
        answers = await asyncio.gather(
            *(self._read(shape.path, query.params()) for query in queries)
        )
        found: dict[str, list[Record]] = defaultdict(list)
        for answer in answers:
            for row in answer.rows:
                key = _row_key(row, properties)
                if key in wanted:
                    found[key].append(shape.build(row, selection))
        return found

    async def _unit_codes(self, unit_id: str) -> dict[str, Any]:
        """Primmo files what belongs to a unit under the unit's company, division and codes,
        not its id: those, exactly as Primmo returned them."""
        if not integer_id(unit_id):
            raise NotFound(f"primmo has no unit {unit_id}.", provider=NAME)
        query = odata.Query(select=("Id", *_UNIT_KEY), filter=odata.eq("Id", int(unit_id)))
        rows = (await self._read("api/Units", query.params())).rows
        if not rows:
            raise NotFound(f"primmo has no unit {unit_id}.", provider=NAME)
        return {name: rows[0].get(name) for name in _UNIT_KEY}

    async def create_tenant(self, unit_id: str, tenant: NewTenant, /) -> Tenant:
        body = {
            **await self._unit_codes(unit_id),
            "LastName": tenant.last_name,
            "FirstName": tenant.first_name,
            "Email": tenant.email,
            "Phone": tenant.phone,
            "TenantType": tenant.tenant_type,
        }
        return _tenant(
            await self._written("POST", "api/Tenants", _TENANT_FIELDS, body), Selection()
        )

    async def change_rent(self, lease_id: str, change: NewRentChange, /) -> RentChange:
        """A `LeasePriceChanges` row: its billing takes the rent from that date (FAQ R9)."""
        await self._lease_known(lease_id)
        body = {
            "LeaseId": int(lease_id),
            "EffectiveDate": change.effective_date.isoformat(),
            "Amount": _amount("rent", change.rent),
        }
        fields = {"EffectiveDate": "effective_date", "Amount": "rent", "LeaseId": "lease_id"}
        return _rent_change(
            await self._written("POST", "api/LeasePriceChanges", fields, body), Selection()
        )

    async def create_charge(self, lease_id: str, charge: NewCharge, /) -> Charge:
        """An invoice: Primmo creates invoices but does not change them (FAQ R20)."""
        await self._lease_known(lease_id)
        body = {
            "LeaseId": int(lease_id),
            "DueDate": charge.due_date.isoformat(),
            "Amount": _amount("amount", charge.amount),
            "Description": charge.description,
        }
        fields = {
            "DueDate": "due_date",
            "Amount": "amount",
            "Description": "description",
            "LeaseId": "lease_id",
        }
        return _charge(await self._written("POST", "api/Invoices", fields, body), Selection())

    async def _lease_known(self, lease_id: str) -> None:
        """A write about a lease Primmo does not have is NOT_FOUND, not its 400."""
        if integer_id(lease_id):
            query = odata.Query(select=("Id",), filter=odata.eq("Id", int(lease_id)))
            if (await self._read("api/Leases", query.params())).rows:
                return
        raise NotFound(f"primmo has no lease {lease_id}.", provider=NAME)

    async def create_maintenance_request(
        self, unit_id: str, request: NewMaintenanceRequest, /
    ) -> MaintenanceRequest:
        """A service call, filed under the unit's codes like a tenant."""
        tenant = _integer("tenant_id", request.tenant_id)
        codes = await self._unit_codes(unit_id)
        priority = _PRIORITY_NUMBERS[request.priority.value] if request.priority else None
        given = {"Description": request.description, "Priority": priority, "TenantId": tenant}
        row = await self._written("POST", "api/ServiceCalls", _SERVICE_FIELDS, {**codes, **given})
        return _service_call(row, Selection())

    async def assign_maintenance_request(
        self, request_id: str, assignment: Assignment, /
    ) -> MaintenanceRequest:
        scheduled = assignment.scheduled_for
        body = {
            "Status": _CALL_CODES["ASSIGNED"],
            "SupplierId": _integer("vendor_id", assignment.vendor_id),
            "ScheduledDate": scheduled.isoformat() if scheduled else None,
        }
        row = await self._updated("api/ServiceCalls", request_id, body)
        return _service_call(row, Selection())

    async def complete_maintenance_request(
        self, request_id: str, _completion: Completion, /
    ) -> MaintenanceRequest:
        body = {"Status": _CALL_CODES["COMPLETED"]}
        row = await self._updated("api/ServiceCalls", request_id, body)
        return _service_call(row, Selection())

    async def create_work_order(self, request_id: str, order: NewWorkOrder, /) -> WorkOrder:
        """A detail line of the service call: the work one supplier does."""
        scheduled = order.scheduled_for
        if not integer_id(request_id):
            raise NotFound(f"primmo has no service call {request_id[:40]}.", provider=NAME)
        body = {
            "ServiceCallId": int(request_id),
            "SupplierId": _integer("vendor_id", order.vendor_id),
            "Description": order.description,
            "ScheduledDate": scheduled.isoformat() if scheduled else None,
            "Amount": _amount("estimated_cost", order.estimated_cost),
        }
        row = await self._written("POST", "api/ServiceCallDetails", _SERVICE_FIELDS, body)
        return _service_call_detail(row, Selection())

    async def start_work_order(self, order_id: str, /) -> WorkOrder:
        return await self._detail(order_id, {"Status": _DETAIL_CODES["IN_PROGRESS"]})

    async def complete_work_order(
        self, order_id: str, completion: WorkOrderCompletion, /
    ) -> WorkOrder:
        amount = _amount("cost", completion.cost)
        return await self._detail(
            order_id, {"Status": _DETAIL_CODES["COMPLETED"], "Amount": amount}
        )

    async def cancel_work_order(self, order_id: str, _cancellation: Cancellation, /) -> WorkOrder:
        return await self._detail(order_id, {"Status": _DETAIL_CODES["CANCELLED"]})

    async def _detail(self, order_id: str, body: dict[str, Any]) -> WorkOrder:
        row = await self._updated("api/ServiceCallDetails", order_id, body)
        return _service_call_detail(row, Selection())

    async def _written(
        self, method: str, path: str, fields: Mapping[str, str], body: Mapping[str, Any]
    ) -> Row:
        """A `POST` to a set: the row created, as Primmo holds it."""
        row = await self._sent(method, path, fields, body)
        return _PRIMMO.as_record(row, f"did not return what {path} wrote")

    async def _sent(
        self, method: str, path: str, fields: Mapping[str, str], body: Mapping[str, Any]
    ) -> Any:
        """A write in OData's terms: `POST` to a set creates a row, `PATCH` to `<set>(<Id>)`
        updates one, and the row comes back as Primmo holds it (`Prefer:
        return=representation`), or None where the server answered 204. What the caller left
        out is not sent, so Primmo's own default applies, and a refusal names the caller's
        fields."""
        return await _PRIMMO.write(
            self._client,
            method,
            path,
            fields=fields,
            refusals={400: _refused},
            json={name: value for name, value in body.items() if value is not None},
            headers={**odata.HEADERS, "Prefer": "return=representation"},
        )

    async def _updated(self, entity_set: str, key: str, body: Mapping[str, Any]) -> Row:
        """`PATCH <set>(<Id>)`. A preference is a hint a server may ignore (OData 4.01 Part 1
        §8.2.8): one that answers the update with 204 and no body has made it, and the row is
        then read back, with the same filter on its key that every read of the set takes."""
        path = _keyed(entity_set, key)
        row = await self._sent("PATCH", path, _SERVICE_FIELDS, body)
        if row is not None:
            return _PRIMMO.as_record(row, f"did not return what {path} wrote")
        query = odata.Query(filter=odata.eq("Id", int(key)))
        rows = (await self._read(entity_set, query.params())).rows
        if not rows:
            raise UpstreamInvalidResponse(NAME, f"primmo no longer lists {path}, which it updated.")
        return rows[0]

    async def receive(
        self, body: bytes, headers: Mapping[str, str], _params: Mapping[str, str], /
    ) -> Delivery:
        """`{Id, Entity, Status, DatabaseName, AdditionalInformationJson}`, with the header
        the gateway asked for at subscription, compared in constant time. The additional
        information (a JSON text, per the document) is answered as the text it came as: read
        as JSON, a number no double keeps came back a `Decimal`, and one beyond 64 bits or
        nested past 254 levels, which the answer could not write once the delivery had been
        taken."""
        if self._webhook_key is None:
            raise Unauthenticated("No webhook_secret is configured for primmo.")
        if not hmac.compare_digest(
            headers.get(WEBHOOK_HEADER, "").encode(), self._webhook_key.encode()
        ):
            raise Unauthenticated(f"The delivery lacks the {WEBHOOK_HEADER} given at subscription.")
        payload = json_object(body)
        identifier, entity, status = payload.get("Id"), payload.get("Entity"), payload.get("Status")
        if not isinstance(identifier, int) or isinstance(identifier, bool):
            raise BadUserInput("Id must be an integer.")
        if not 0 < identifier < 2**63:
            raise BadUserInput("Id must be a positive 64-bit integer, as Primmo's are.")
        if not isinstance(entity, str) or status not in _STATUSES:
            raise BadUserInput("Entity must be a name and Status 1, 2 or 3.")
        extra = payload.get("AdditionalInformationJson")
        kind = _STATUSES[status]
        served = _WEBHOOK_ENTITIES.get(entity.lower())
        changes = (Change(kind, served, NAME, str(identifier)),) if served else ()
        outcome = {
            "entity": entity,
            "id": identifier,
            "additionalInformation": extra if isinstance(extra, str) else None,
        }
        key = f"{entity.lower()}:{identifier}:{status}"
        return Delivery(changes, key, outcome, window=CONTENT_WINDOW)

    async def webhook_subscriptions(self) -> list[str]:
        entities = await _PRIMMO.body(self._client, "GET", "api/subscribe")
        if not isinstance(entities, list):
            raise UpstreamInvalidResponse(NAME, "primmo listed its subscriptions as a non-list.")
        return sorted(str(entity) for entity in entities)

    async def subscribe_webhooks(self, gateway_url: str, /) -> list[str]:
        """Subscribes the entities the gateway serves, those not already subscribed (GET first)."""
        subscribed = await self.webhook_subscriptions()
        have = {entity.lower() for entity in subscribed}
        missing = [name for name in _SUBSCRIBED if name.lower() not in have]
        if not missing:
            return subscribed
        body = {
            "ResponseUrl": f"{gateway_url.rstrip('/')}/webhooks/{NAME}",
            "ResponseHeaders": (
                f"{WEBHOOK_HEADER}:{self._webhook_key}" if self._webhook_key else None
            ),
            "Entities": missing,
        }
        await _PRIMMO.response(self._client, "POST", "api/subscribe", json=body)
        return await self.webhook_subscriptions()

    async def unsubscribe_webhooks(self) -> list[str]:
        await _PRIMMO.response(self._client, "POST", "api/unsubscribe", json=list(_SUBSCRIBED))
        return await self.webhook_subscriptions()

    @staticmethod
    def _select(shape: _Shape, selection: Selection) -> list[str]:
        names = list(shape.identity)
        for field in sorted(selection.fields):
            for name in shape.fields.get(field, "").split(","):
                if name and name not in names:
                    names.append(name)
        return names

    def _expand(self, entity: Entity, selection: Selection) -> dict[str, odata.Query]:
        if entity is not Entity.BUILDING or "units" not in selection.relations:
            return {}
        shape = _SHAPES[Entity.UNIT]
        return {
            "Units": odata.Query(
                select=self._select(shape, selection.relations["units"]), orderby=shape.order
            )
        }

    def _criteria(
        self, entity: Entity, criteria: Criteria
    ) -> tuple[str, dict[str, str], odata.Expr | None]:
        path = _SHAPES[entity].path
        extra: dict[str, str] = {}
        parts: list[odata.Expr | None] = []
        for name, condition in sorted(criteria.items()):
            if isinstance(condition, AvailableBetween) and (entity, name) == (
                Entity.UNIT,
                "available",
            ):
                path = "api/Units/ForRent"
                extra = {
                    "StartDate": condition.start.isoformat(),
                    "EndDate": condition.end.isoformat(),
                }
                continue
            parts.append(_condition(entity, name, condition))
        return path, extra, odata.all_of(*parts)

    async def _read(self, path: str, options: Mapping[str, str], want: int | None = None) -> Answer:
        module = _MODULES.get(path)
        refusals = {403: lambda _: ModuleNotLicensed(NAME, module)} if module else None

        async def fetch(url: httpx.URL) -> Any:
            return await _PRIMMO.body(
                self._client, "GET", url, refusals=refusals, headers=odata.HEADERS
            )

        query = odata.encode(options)
        self._fits(query)
        links = NextLinks(fetch, self._client.base_url, NAME)
        return await links.read(f"{path}?{query}", want, expands="$expand" in options)

    def _fits(self, query: str) -> None:
        """A query string the server would refuse as too long is the caller's to shorten: a
        batch of keys is cut to fit, but one filter text cannot be (200 characters outside
        ASCII take 1,200 bytes once encoded, and a name is matched in two properties)."""
        if len(query) > self._query_room:
            raise BadUserInput(
                f"The filter makes a query string of {len(query)} bytes once encoded for "
                f"primmo, whose server takes {self._query_room} (a "
                "character outside ASCII counts 6 to 12): shorten the filter text.",
                provider=NAME,
            )

    async def _count(
        self, path: str, extra: Mapping[str, str], expr: odata.Expr | None
    ) -> int | None:
        """A server that leaves `@odata.count` out of the body is asked `/$count` (plain
        text). One that has no such resource gives no count: never a guessed number."""
        options = {**extra, **({"$filter": odata.render(expr)} if expr is not None else {})}
        query = odata.encode(options)
        self._fits(query)
        target = f"{path}/$count" + (f"?{query}" if options else "")
        response = await _PRIMMO.response(
            self._client,
            "GET",
            target,
            passes=(400, 404, 501),
            headers={**odata.HEADERS, "Accept": "text/plain"},
        )
        if response.status_code >= 400:
            return None
        text = response.text.strip().lstrip("\ufeff")
        if not (text.isascii() and text.isdigit()):
            raise UpstreamInvalidResponse(NAME, "primmo's /$count is not a number.")
        return int(text)


_TENANT_FIELDS = {
    "LastName": "last_name",
    "FirstName": "first_name",
    "Email": "email",
    "Phone": "phone",
    "TenantType": "tenant_type",
    "UnitCode": "unit_id",
}
"""A tenant's properties as the caller named them, for Primmo's refusals."""


_SERVICE_FIELDS = {
    "Description": "description",
    "Priority": "priority",
    "TenantId": "tenant_id",
    "SupplierId": "vendor_id",
    "ScheduledDate": "scheduled_for",
    "ServiceCallId": "maintenance_request_id",
    "UnitCode": "unit_id",
    "Amount": "cost",
}
"""Service calls' and details' properties as the caller named them, for Primmo's refusals."""


def _integer(field: str, key: str | None) -> int | None:
    """A Primmo id the caller gave: an integer, or the write is refused naming the field."""
    if key is None:
        return None
    if not integer_id(key):
        said = f"primmo has no such record for {field}: its ids are integers, not '{key[:40]}'."
        raise ValidationFailed(NAME, said, [{"field": field, "message": said}])
    return int(key)


def _keyed(path: str, key: str) -> str:
    """`api/Set(<Id>)`: OData's address of one record by its integer key."""
    if not integer_id(key):
        raise NotFound(f"primmo has no record {key[:40]}.", provider=NAME)
    return f"{path}({key})"


def _amount(field: str, cost: Money | None) -> orjson.Fragment | None:
    """An amount in Canadian dollars, as OData's JSON carries an Edm.Decimal: a number, in its
    own digits (`values.json_amount`)."""
    if cost is None:
        return None
    _in_dollars(cost, field)
    return json_amount(cost, NAME, field)


def _refused(said: Said) -> ValidationFailed:
    """Primmo answers a write it will not take with a 400 and its reason, which names the
    property at fault (its validation is Primmo's own, FAQ R6), in its words or as the
    `target` of OData's error details."""
    message = said.message or "primmo refused the write."
    return ValidationFailed(
        NAME, message, list(said.problems) or [{"field": "", "message": message}]
    )


def _condition(entity: Entity, name: str, condition: Condition) -> odata.Expr | None:
    match entity, name, condition:
        case (Entity.BUILDING | Entity.LANDLORD, "name", Contains(text)):
            return odata.contains("Name", text)
        case (Entity.BUILDING, "city", Contains(text)):
            return odata.contains("City", text)
        case (Entity.BUILDING, "code", Equals(str(value))):
            return odata.eq_trimmed("BuildingCode", value)
        case (Entity.UNIT, "code", Equals(str(value))):
            return odata.eq_trimmed("UnitCode", value)
        case (Entity.UNIT, "rooms", Between(low, high)):
            return odata.all_of(
                odata.ge("NumberOfRooms", low) if low is not None else None,
                odata.le("NumberOfRooms", high) if high is not None else None,
            )
        case (Entity.UNIT, "occupancy", Equals(str(value))) if value in _OCCUPANCY_CODES:
            return odata.eq_trimmed("OccupancyStatus", _OCCUPANCY_CODES[value])
        case (Entity.TENANT, "name", Contains(text)):
            return odata.any_of(odata.contains("LastName", text), odata.contains("FirstName", text))
        case (Entity.LEASE, "status", Equals(str(value))) if value in _LEASE_CODES:
            return odata.eq_trimmed("Status", _LEASE_CODES[value])
        case (Entity.CHARGE, "status", Equals(ChargeStatus.OPEN.value)):
            return odata.gt("Balance", 0)
        case (Entity.CHARGE, "status", Equals(ChargeStatus.PAID.value)):
            return odata.eq("Balance", 0)
        case (Entity.CHARGE, "due_date", Within(low, high)):
            return odata.all_of(
                odata.ge("DueDate", low) if low is not None else None,
                odata.le("DueDate", high) if high is not None else None,
            )
        case (Entity.PAYMENT, "status", Equals(value)) if value == _COMPLETED:
            return None
        case (Entity.LEASE, "end_date", Within(low, high)):
            return odata.all_of(
                odata.ge("EndDate", low) if low is not None else None,
                odata.le("EndDate", high) if high is not None else None,
            )
        case (Entity.MAINTENANCE_REQUEST, "status", Equals(str(value))) if value in _CALL_CODES:
            return odata.eq_trimmed("Status", _CALL_CODES[value])
        case (Entity.MAINTENANCE_REQUEST, "open", Equals(bool(wanted))):
            done = odata.eq_trimmed("Status", _CALL_CODES["COMPLETED"])
            return odata.any_of(*(odata.eq_trimmed("Status", c) for c in "OA")) if wanted else done
        case (Entity.MAINTENANCE_REQUEST, "priority", Equals(str(value))) if (
            value in _PRIORITY_NUMBERS
        ):
            return odata.eq("Priority", _PRIORITY_NUMBERS[value])
        case (Entity.WORK_ORDER, "status", Equals(str(value))) if value in _DETAIL_CODES:
            return odata.eq_trimmed("Status", _DETAIL_CODES[value])
        case (Entity.VENDOR, "name", Contains(text)):
            return odata.contains("Name", text)
        case (Entity.VENDOR, "trade", Equals(str(value))):
            return odata.eq("Trade", value)
    raise BadUserInput(f"primmo cannot filter {entity.value} by {name}.", provider=NAME)


@dataclass(frozen=True)
class Room:
    """What one request's `$filter` may take: bytes of query string, as a server counts them
    (encoded), and nodes, as ASP.NET's OData counts them."""

    bytes: int
    nodes: int


def _batched_filters(
    properties: tuple[str, ...], keys: Sequence[tuple[Any, ...]], room: Room
) -> list[odata.Expr]:
    """One part per shared prefix (company, division, building) and an `in` of its last
    values, as few filters as fit in `room` each. Places that want the same values (every
    unit of several buildings of a division, as a page of buildings asks) share a part,
    `BuildingCode in (…) and UnitCode in (…)`, which names exactly their keys since each of
    those places wants each of those values: the nested query's tenants in one filter of 891
    bytes, where one part a building took 3.3 KB and, cut to the limits, four requests."""
    batches: list[_Batch] = []
    parts = sorted(_parts(properties, keys, room.bytes), key=lambda part: _share(part, room))
    for part, length in parts:
        batch = next((batch for batch in batches if batch.takes(part, length, room)), None)
        if batch is None:
            batches.append(_Batch([part], length, part.nodes))
        else:
            batch.add(part, length)
    return [_or(batch.parts) for batch in batches]


def _share(part: tuple[odata.Expr, int], room: Room) -> tuple[float, str]:
    """Parts are packed largest first, by the share of a request's room (bytes or nodes)
    each fills the most; a part's text breaks a tie, so the order is always the same."""
    expr, length = part
    return (-max(length / room.bytes, expr.nodes / room.nodes), expr.text)


@dataclass(slots=True)
class _Batch:
    """The parts of one request's filter, each packed into the first request with room for
    it (first fit, largest first): how many requests a batch takes no longer depends on the
    order its keys were asked in, which the executor decides (graphql-core's tasks asked a
    building of one unit before the others; the compiled plan asks in page order). Taken in
    the order asked, the nested query's tenants in the tests' world went in three filters
    or four depending on it; packed so, three."""

    parts: list[odata.Expr]
    size: int
    nodes: int

    def takes(self, part: odata.Expr, length: int, room: Room) -> bool:
        return self.size + length <= room.bytes and self.nodes + part.nodes + 1 <= room.nodes

    def add(self, part: odata.Expr, length: int) -> None:
        self.parts.append(part)
        self.size += length
        self.nodes += part.nodes + 1


def _parts(
    properties: tuple[str, ...], keys: Sequence[tuple[Any, ...]], room: int
) -> Iterator[tuple[odata.Expr, int]]:
    wanted: dict[tuple[Any, ...], set[Any]] = defaultdict(set)
    for key in keys:
        wanted[key[:-1]].add(key[-1])
    *prefix_names, last_name = properties
    if not prefix_names:
        for single in wanted.values():
            yield from _chunks(None, last_name, sorted(single, key=odata.literal), room)
        return
    *outer_names, place_name = prefix_names
    places: dict[tuple[tuple[Any, ...], frozenset[Any]], list[Any]] = defaultdict(list)
    for prefix, values in wanted.items():
        places[prefix[:-1], frozenset(values)].append(prefix[-1])
    for (outer, common), shared in places.items():
        fixed = [odata.eq(name, value) for name, value in zip(outer_names, outer, strict=True)]
        yield from _shared_parts(
            fixed,
            place_name,
            sorted(shared, key=odata.literal),
            last_name,
            sorted(common, key=odata.literal),
            room,
        )


def _shared_parts(
    fixed: list[odata.Expr],
    place_name: str,
    places: list[Any],
    name: str,
    values: list[Any],
    room: int,
) -> Iterator[tuple[odata.Expr, int]]:
    """The parts for `places` that all want `values`: the places are halved until each half
    fits a request beside its longest value, so that only a key too long for any request
    (a building's code or a unit's) is left out, as `_chunks` leaves a value."""
    where = odata.all_of(*fixed, odata.is_in(place_name, sorted(places, key=odata.literal)))
    if len(places) > 1:
        longest = max(odata.encoded_size(odata.literal(value)) + 1 for value in values)
        if _empty_size(where, name) + longest > room:
            middle = len(places) // 2
            for half in (places[:middle], places[middle:]):
                yield from _shared_parts(fixed, place_name, half, name, values, room)
            return
    yield from _chunks(where, name, values, room)


_OR_SIZE = odata.encoded_size("() or ")
"""What joining one more part to a filter costs at most: its parentheses and the `or`."""


def _chunks(
    fixed: odata.Expr | None, name: str, values: list[Any], room: int
) -> list[tuple[odata.Expr, int]]:
    """`fixed and name in (values)`, with the bytes it takes joined to a filter, cut into parts
    that each fit in `room`. A prefix's values nearly always fit in one part, measured once.
    A value too long to be asked for even alone is left out: no query Primmo's server takes
    can name it, so it is answered as a key with no record, and the others are asked for."""
    whole = _part(fixed, name, values)
    size = odata.encoded_size(odata.render(whole)) + _OR_SIZE
    if size <= room:
        return [(whole, size)]
    base = _empty_size(fixed, name)
    parts: list[tuple[odata.Expr, int]] = []
    taken: list[Any] = []
    size = base
    for value in values:
        length = odata.encoded_size(odata.literal(value)) + 1
        if taken and size + length > room:
            parts.append((_part(fixed, name, taken), size))
            taken, size = [], base
        taken.append(value)
        size += length
    parts.append((_part(fixed, name, taken), size))
    return [(part, size) for part, size in parts if size <= room]


def _empty_size(fixed: odata.Expr | None, name: str) -> int:
    """What a part takes joined to a filter before its values: each value adds its literal
    and a comma."""
    return odata.encoded_size(odata.render(_part(fixed, name, []))) + _OR_SIZE


def _part(fixed: odata.Expr | None, name: str, values: list[Any]) -> odata.Expr:
    part = odata.all_of(fixed, odata.is_in(name, values))
    assert part is not None
    return part


def _in_dollars(value: Money, field: str) -> None:
    """Primmo's amounts carry no currency (they are Canadian dollars): another currency
    cannot be written there, and is refused before anything is sent."""
    if value.currency != CURRENCY:
        raise ValidationFailed(
            NAME,
            f"primmo keeps amounts in {CURRENCY} only.",
            [{"field": field, "message": f"primmo keeps amounts in {CURRENCY} only."}],
        )


def _or(exprs: list[odata.Expr]) -> odata.Expr:
    combined = odata.any_of(*exprs)
    assert combined is not None
    return combined
