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
from typing import Any

import httpx

from gateway.clock import Clock
from gateway.connectors.base import Connector, ListRequest, Page
from gateway.connectors.calls import Dialect, Failure, Said
from gateway.connectors.capabilities import (
    MaintenanceWrites,
    TenantWrites,
    UnitStatusWrites,
    WebhookSource,
)
from gateway.connectors.paging import PageNumbers, each
from gateway.connectors.values import (
    day,
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
from gateway.events import Change, ChangeKind, Delivery, FieldChange
from gateway.model import (
    Assignment,
    Building,
    Cancellation,
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
    NewMaintenanceRequest,
    NewTenant,
    NewWorkOrder,
    Occupancy,
    Priority,
    Record,
    Selection,
    Tenant,
    Unavailable,
    Unit,
    UnitStatusChange,
    Vendor,
    WorkOrder,
    WorkOrderCompletion,
    WorkOrderStatus,
)
from gateway.upstream.auth import LoginRefreshAuth
from gateway.upstream.client import Upstream

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
    """pms says how long to wait in the 429 body: `{"error": {"retry_after": 900}}`."""
    try:
        error = response.json().get("error", {})
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
    organization = text(row, "organization_id")
    return Building(
        provider=NAME,
        source_id=_id(row),
        name=text(row, "name"),
        street=text(row, "address", "street"),
        city=text(row, "address", "city"),
        postal_code=text(row, "address", "postal_code"),
        landlord=Link(NAME, Entity.LANDLORD, "id", organization) if organization else None,
        units=Link(NAME, Entity.UNIT, "property", _id(row)),
        maintenance_requests=Link(NAME, Entity.MAINTENANCE_REQUEST, "property", _id(row)),
    )


_NO_LISTING = Unavailable(
    NAME,
    Entity.LISTING,
    "pms does not advertise units: Unit.listing cannot be answered from it.",
)


def _unit(row: Row, property_id: str) -> Unit:
    rooms = number(row.get("rooms"))
    key = f"{property_id}/{_id(row)}"
    return Unit(
        provider=NAME,
        source_id=key,
        code=text(row, "unit_number"),
        rooms=rooms,
        occupancy=_OCCUPANCY.get(text(row, "status") or "", Occupancy.UNKNOWN),
        building=Link(NAME, Entity.BUILDING, "id", property_id),
        tenants=Link(NAME, Entity.TENANT, "unit", key),
        maintenance_requests=Link(NAME, Entity.MAINTENANCE_REQUEST, "unit", key),
        listing=_NO_LISTING,
    )


def _tenant(row: Row, property_id: str) -> Tenant:
    unit = text(row, "unit_id")
    key = f"{property_id}/{_id(row)}"
    return Tenant(
        provider=NAME,
        source_id=key,
        first_name=text(row, "first_name"),
        last_name=text(row, "last_name"),
        email=text(row, "email"),
        phone=text(row, "phone"),
        unit=Link(NAME, Entity.UNIT, "id", f"{property_id}/{unit}") if unit else None,
        lease=Link(NAME, Entity.LEASE, "id", key),
        maintenance_requests=Link(NAME, Entity.MAINTENANCE_REQUEST, "tenant", key),
    )


_LEASE_STATUSES = {
    "active": LeaseStatus.ACTIVE,
    "past": LeaseStatus.ENDED,
    "future": LeaseStatus.UPCOMING,
}


def _lease(row: Row, tenant: str) -> Lease:
    """pms keeps a lease under each of its tenants (`…/tenants/{id}/lease`) and reads it
    nowhere else, so the lease is known by that tenant's key."""
    property_id = tenant.split("/")[0]
    unit = text(row, "unit_id")
    currency = row.get("currency")
    return Lease(
        provider=NAME,
        source_id=tenant,
        start_date=day(row.get("start_date")),
        end_date=day(row.get("end_date")),
        rent=money(row.get("monthly_rent"), currency),
        deposit=money(row.get("deposit"), currency),
        status=_LEASE_STATUSES.get(text(row, "status") or ""),
        tenants=Link(NAME, Entity.TENANT, "id", tenant),
        unit=Link(NAME, Entity.UNIT, "id", f"{property_id}/{unit}") if unit else None,
    )


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
_OPEN = {"open", "assigned"}


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
        work_orders=Link(NAME, Entity.WORK_ORDER, "request", f"{prop}/{_id(row)}"),
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


_LISTS: dict[Entity, tuple[str, str, Callable[[Row], Record]]] = {
    Entity.LANDLORD: ("api/v1/organizations", "name", _landlord),
    Entity.BUILDING: ("api/v1/properties", "name", _building),
    Entity.MAINTENANCE_REQUEST: (f"{_OPERATIONS}/maintenance-requests", "created_at", _request),
    Entity.WORK_ORDER: (f"{_OPERATIONS}/work-orders", "scheduled_date", _work_order),
    Entity.VENDOR: (f"{_OPERATIONS}/vendors", "name", _vendor),
}
"""Each root list: its path, the field pms sorts it by (the type's documented order), and how
a row reads."""
_FILTERS: dict[Entity, frozenset[str]] = {
    Entity.LANDLORD: frozenset({"name", "city"}),
    Entity.BUILDING: frozenset({"name", "city"}),
    Entity.MAINTENANCE_REQUEST: frozenset({"status", "priority", "open"}),
    Entity.WORK_ORDER: frozenset({"status"}),
    Entity.VENDOR: frozenset({"name", "trade"}),
}
"""What each list can be filtered by: sent to pms where it filters (`status`, `priority`,
`category`), matched here where it does not."""
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


def _matches(
    entity: Entity, criteria: Criteria
) -> tuple[dict[str, str], Callable[[Row], bool] | None]:
    """The criteria pms filters by, as its query parameters; the others (pms cannot filter
    by text) as a local test on each row."""
    params: dict[str, str] = {}
    tests: list[Callable[[Row], bool]] = []
    for name, condition in criteria.items():
        pushed = _parameter(entity, name, condition)
        if pushed is not None:
            params.update(pushed)
            continue
        match entity, name, condition:
            case (Entity.BUILDING | Entity.LANDLORD | Entity.VENDOR, "name", Contains(part)):
                tests.append(_contains(part, "name"))
            case (Entity.BUILDING, "city", Contains(part)):
                tests.append(_contains(part, "address", "city"))
            case (Entity.MAINTENANCE_REQUEST, "open", Equals(bool(wanted))):
                tests.append(_open(wanted))
            case _:
                raise BadUserInput(f"pms cannot filter {entity.value} by {name}.", provider=NAME)
    if not tests:
        return params, None
    return params, lambda row: all(test(row) for test in tests)


def _open(wanted: bool) -> Callable[[Row], bool]:
    """Open or assigned (not yet done); pms filters by one status at a time."""
    return lambda row: (row.get("status") in _OPEN) == wanted


def _parameter(entity: Entity, name: str, condition: Condition) -> dict[str, str] | None:
    match entity, name, condition:
        case (Entity.MAINTENANCE_REQUEST | Entity.WORK_ORDER, "status", Equals(str(value))):
            return {"status": _WORDS.get(value, value)}
        case (Entity.MAINTENANCE_REQUEST, "priority", Equals(str(value))):
            return {"priority": _WORDS.get(value, value)}
        case (Entity.VENDOR, "trade", Equals(str(value))):
            return {"category": value}
    return None


class PmsConnector(Connector, TenantWrites, WebhookSource, MaintenanceWrites, UnitStatusWrites):
    name = NAME
    kind = "rest"
    serves = frozenset(
        {
            Entity.LANDLORD,
            Entity.BUILDING,
            Entity.UNIT,
            Entity.TENANT,
            Entity.LEASE,
            Entity.MAINTENANCE_REQUEST,
            Entity.WORK_ORDER,
            Entity.VENDOR,
        }
    )
    lists = frozenset(_LISTS)
    credentials = ("username", "password")
    accepts = {
        "create_tenant": frozenset({"email", "phone"}),
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
    ) -> None:
        super().__init__(client, auth)
        self._webhook_secret = webhook_secret
        self._clock = clock

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
        )

    def supports(self, entity: Entity, criteria: Criteria, /) -> bool:
        """pms properties have no code: a code filter could only ever match nothing."""
        return entity in self.lists and set(criteria) <= _FILTERS[entity]

    async def page(self, entity: Entity, request: ListRequest, /) -> Page:
        path, order, build = _LISTS[entity]
        params, keep = _matches(entity, request.criteria)
        listing = self._listing(path, sort_by=order, sort_order="asc", **params)
        return await listing.page(request, build, keep)

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
                by_id = await self._children(keys, "units", _unit, lambda record: record.source_id)
                return await self._with_landlords(by_id, selection)
            case (Entity.TENANT, "unit"):
                return await self._children(
                    keys,
                    "tenants",
                    _tenant,
                    lambda record: record.unit.key if isinstance(record.unit, Link) else "",
                )
            case (Entity.TENANT, "id"):
                return await self._children(
                    keys, "tenants", _tenant, lambda record: record.source_id
                )
            case (Entity.LEASE, "id"):
                leases = await each(
                    [key for key in keys if _split(key)],
                    lambda key: _PMS.one(
                        self._client,
                        "api/v1/properties/{}/tenants/{}/lease".format(*key.split("/")),
                    ),
                )
                return {key: [_lease(row, key)] for key, row in leases.items()}
            case (Entity.MAINTENANCE_REQUEST, "id"):
                return await self._by_id(keys, "maintenance-requests", _request)
            case (Entity.MAINTENANCE_REQUEST, "unit" | "tenant" | "property"):
                return await self._grouped(
                    keys,
                    "maintenance-requests",
                    _request,
                    lambda row, prop: _under(row, f"{by}_id", prop) if by != "property" else prop,
                )
            case (Entity.WORK_ORDER, "id"):
                return await self._by_id(keys, "work-orders", _work_order)
            case (Entity.WORK_ORDER, "request"):
                return await self._grouped(
                    keys,
                    "work-orders",
                    _work_order,
                    lambda row, prop: _under(row, "maintenance_request_id", prop),
                )
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

    async def _grouped(
        self,
        keys: Sequence[str],
        kind: str,
        build: Callable[[Row], Record],
        key_of: Callable[[Row, str], str | None],
    ) -> Mapping[str, Sequence[Record]]:
        """Operations records about units, tenants, requests or whole properties: one read
        of the list filtered by property (`property_id`, assumed) per property of the keys,
        its rows grouped by the key each one answers."""
        wanted = {key for key in keys if _split(key) or token_id(key)}
        path, order, _ = _LISTS[_KINDS[kind]]
        listed = await each(
            {key.split("/")[0] for key in wanted},
            lambda prop: self._listing(path, property_id=prop, sort_by=order).all(),
        )
        found: dict[str, list[Record]] = defaultdict(list)
        for prop, rows in listed.items():
            for row in rows:
                key = key_of(row, prop)
                if key in wanted:
                    found[key].append(build(row))
        return found

    async def _vendors(self, keys: Sequence[str]) -> Mapping[str, Sequence[Record]]:
        """pms has no lookup of several vendors, and an organization keeps few: one read of
        its vendor list serves every vendor of a query level."""
        wanted = set(keys)
        path, order, _ = _LISTS[Entity.VENDOR]
        rows = await self._listing(path, sort_by=order).all()
        return {_id(row): [_vendor(row)] for row in rows if _id(row) in wanted}

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
        build: Callable[[Row, str], Any],
        key_of: Callable[[Any], str],
    ) -> Mapping[str, Sequence[Record]]:
        """Units or tenants for keys under properties: one listing per property, grouped by key."""
        wanted = {key for key in keys if _split(key)}
        properties = {key.split("/")[0] for key in wanted}
        listed = await each(properties, lambda prop: self._all(f"api/v1/properties/{prop}/{kind}"))
        found: dict[str, list[Record]] = defaultdict(list)
        for prop, rows in listed.items():
            for row in rows:
                record = build(row, prop)
                if key_of(record) in wanted:
                    found[key_of(record)].append(record)
        return found

    async def _all(self, path: str) -> list[Row] | None:
        """Every record of a property's sub-list; None for a property pms does not have."""
        try:
            return await self._listing(path).all()
        except NotFound:
            return None

    def _listing(self, path: str, **order: str) -> PageNumbers[Row]:
        async def fetch(page: int, size: int) -> tuple[Sequence[Row], int | None]:
            params = {"page": page, "page_size": size, **order}
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
        sent = moment(payload.get("timestamp"))
        if sent is None or abs(sent.timestamp() - self._clock()) > REPLAY_WINDOW:
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
            {"property_id": "unit_id", **{name: name for name in body}},
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


def _path_id(key: str) -> str:
    """An id that goes into a write's path: a plain one, or nothing pms could have."""
    if not token_id(key):
        raise NotFound(f"pms has no record {key[:40]}.", provider=NAME)
    return key


def _refused_here(field: str, message: str) -> ValidationFailed:
    """A refusal before anything is sent, naming the caller's field."""
    return ValidationFailed(NAME, message, [{"field": field, "message": message}])


def _cost(cost: Money | None, field: str) -> dict[str, Any]:
    """An amount as pms takes it: a number and its currency; one no JSON number holds
    exactly is refused, not rounded."""
    if cost is None:
        return {}
    number = json_amount(cost.amount)
    if number is None:
        raise _refused_here(field, "The amount has more digits than pms can take exactly.")
    return {"cost": number, "currency": cost.currency}
