"""The Property Management SaaS (pms), a JSON REST provider, as its document describes it.

Login at `/api/v1/identity/login` returns an RS256 JWT with the documented
claims and a refresh token; responses use the `{success, data, meta}`
envelope, lists carry `meta.pagination`, `page_size` is capped at 100, errors
carry the documented codes, every response has `X-RateLimit-*` headers and
echoes `X-Request-ID`, and a 429 says `retry_after` in its body.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from gateway.clock import Clock
from gateway.sandbox.data import Lease, Tenant, World
from gateway.sandbox.leasing import Books
from gateway.sandbox.ledger import Charge, Ledger, Payment
from gateway.sandbox.operations import Clash, Invalid, Job, Missing, Ticket, Vendor, Workshop
from gateway.sandbox.outbox import Outbox
from gateway.sandbox.server import (
    Handler,
    ProviderState,
    page_of,
    read_rs256,
    served,
    sign_rs256,
)

__all__ = ["CREDENTIALS", "ERRORS", "create_app"]

CREDENTIALS = {
    "username": "integrations@sandbox.pms.example",
    "password": "sandbox-pms-password",
    "webhook_secret": "sandbox-pms-webhook-secret",
}
"""The sandbox's only account, and the secret the gateway registers its webhook with."""
PERMISSIONS = (
    "org:read",
    "property:read",
    "unit:read",
    "unit:update",
    "tenant:manage",
    "financial:read",
    "financial:create",
    "payment:create",
    "maintenance:*",
    "workorder:*",
    "webhook:manage",
)
"""What the sandbox's account may do: what the gateway needs of pms (the README says so for a
real account). Permissions are `resource:action` as the document's RBAC names them, held by
name, by `resource:*`, by `resource:manage` (the document's sample token holds
`tenant:manage`; assumed to cover every action on tenants) or by `*`."""
EVENTS = (
    "property.created",
    "property.updated",
    "property.deleted",
    "tenant.created",
    "tenant.updated",
    "tenant.deleted",
    "maintenance.created",
    "maintenance.completed",
    "invoice.created",
    "invoice.paid",
    "payment.received",
    "payment.failed",
)
CURRENCIES = frozenset({"USD", "CAD", "INR"})
"""What its payment integration supports, as its document lists them."""

ERRORS = {
    "AUTHENTICATION_FAILED": (401, "Invalid credentials"),
    "TOKEN_EXPIRED": (401, "JWT token has expired"),
    "INSUFFICIENT_PERMISSIONS": (403, "User lacks required permissions"),
    "RESOURCE_NOT_FOUND": (404, "Requested resource doesn't exist"),
    "VALIDATION_ERROR": (422, "Request data validation failed"),
    "RATE_LIMIT_EXCEEDED": (429, "Too many requests"),
    "SERVICE_UNAVAILABLE": (503, "Service temporarily unavailable"),
}
"""The document's "Common Error Codes": status and description; `/_sandbox/refuse` sends any."""

ACCESS_LIFETIME = 900.0
REFRESH_LIFETIME = 7 * 24 * 3600.0
AUDIENCE = "PropertyManagement"
RATE_LIMIT = 1000
RATE_WINDOW = 3600
MAX_PAGE_SIZE = 100
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
Row = dict[str, Any]


def _permits(held: Any, needed: str) -> bool:
    resource = needed.split(":", 1)[0]
    granted = {"*", needed, f"{resource}:*", f"{resource}:manage"}
    return isinstance(held, list) and any(name in granted for name in held)


def _created(index: int) -> str:
    return (datetime(2020, 1, 1, tzinfo=UTC) + timedelta(days=index * 7)).isoformat()


class _Tables:
    """pms's records, laid out from the shared world: its buildings and their people."""

    def __init__(self, world: World, clock: Clock) -> None:
        self.world = world
        self.clock = clock
        self.books = Books(world)
        self.workshop = Workshop(world, "pms", clock)
        self.ledger = Ledger(self.books)
        self._money: tuple[list[Row], list[Row]] | None = None
        self.permissions = list(PERMISSIONS)
        """The account's permissions, as its next token will carry them."""
        buildings = world.buildings_of("pms")
        self.property_of = {
            unit.id: f"prop_{building.id}"
            for building in buildings
            for unit in world.units_in(building.id)
        }
        self.organizations: list[Row] = [
            {
                "id": f"org_{landlord.id}",
                "name": landlord.name,
                "type": landlord.company_type.lower(),
                "status": landlord.status.lower(),
                "business_number": landlord.business_number,
                "address": {
                    "street": landlord.street,
                    "city": landlord.city,
                    "province": "QC",
                    "postal_code": landlord.postal_code,
                },
                "created_at": _created(landlord.id),
            }
            for landlord in world.landlords_of("pms")
        ]
        self.properties: list[Row] = []
        self.units: dict[str, list[Row]] = {}
        self.tenants: dict[str, list[Row]] = {}
        self.leases: dict[str, Row] = {}
        for building in buildings:
            property_id = f"prop_{building.id}"
            units = world.units_in(building.id)
            self.properties.append(
                {
                    "id": property_id,
                    "organization_id": f"org_{building.landlord_id}",
                    "name": building.name,
                    "type": "residential",
                    "status": "active",
                    "address": {
                        "street": building.street,
                        "city": building.city,
                        "province": "QC",
                        "postal_code": building.postal_code,
                    },
                    "unit_count": len(units),
                    "created_at": _created(building.id),
                }
            )
            self.units[property_id] = [
                {
                    "id": f"unit_{unit.id}",
                    "property_id": property_id,
                    "unit_number": unit.code,
                    "floor": int(unit.code) // 100,
                    "rooms": unit.rooms,
                    "bedrooms": max(0, int(unit.rooms) - 1),
                    "status": "occupied" if world.is_occupied(unit.id) else "vacant",
                    "created_at": _created(unit.id),
                }
                for unit in units
            ]
            self.tenants[property_id] = []
            for unit in units:
                for tenant in world.tenants_of(unit.id):
                    self._add(property_id, tenant)

    def _add(self, property_id: str, tenant: Tenant) -> Row:
        """pms keeps former tenants, told apart by their status ("past") and their lease's;
        each names its lease (`lease_id`, assumed: the document shows no tenant), which
        co-tenants share."""
        row = {
            "id": f"ten_{tenant.id}",
            "property_id": property_id,
            "unit_id": f"unit_{tenant.unit_id}",
            "first_name": tenant.first_name,
            "last_name": tenant.last_name,
            "email": tenant.email,
            "phone": tenant.phone,
            "status": "active" if self.world.is_current(tenant) else "past",
            "move_in_date": tenant.lease.start.isoformat(),
            "lease_id": f"lease_{self.books.number(tenant.lease)}",
        }
        self.tenants[property_id].append(row)
        self.leases[row["id"]] = self.lease_row(row, tenant)
        return row

    def lease_row(self, tenant_row: Row, tenant: Tenant) -> Row:
        """The lease as pms serves it under each of its tenants; `rent_changes` (assumed: the
        document names the route only) are its scheduled and recorded rent changes."""
        lease, books = tenant.lease, self.books
        return {
            "id": f"lease_{books.number(lease)}",
            "tenant_id": tenant_row["id"],
            "unit_id": tenant_row["unit_id"],
            "start_date": lease.start.isoformat(),
            "end_date": lease.end.isoformat(),
            "monthly_rent": books.rent(lease),
            "deposit": books.deposit(lease),
            "currency": "CAD",
            "status": books.status(lease),
            "rent_changes": [
                {"effective_date": change.effective.isoformat(), "monthly_rent": change.rent}
                for change in books.rent_changes(lease)
            ],
        }

    def now(self) -> datetime:
        """This moment of the world's today (the sandbox's clock and world keep their own
        dates): when a payment made through the API is stamped."""
        clock = datetime.fromtimestamp(self.clock(), UTC)
        return datetime.combine(self.world.today, clock.time(), UTC)

    def lease_of(self, property_id: str, tenant_id: str) -> Lease | None:
        tenant = next((t for t in self.world.tenants if f"ten_{t.id}" == tenant_id), None)
        if tenant is None or self.property_of.get(tenant.unit_id) != property_id:
            return None
        return tenant.lease

    def refresh_lease(self, lease: Lease) -> Row:
        """Each of its tenants' lease rows again, after a write; the signer's."""
        rows = []
        for tenant in self.world.tenants_of(lease.unit_id):
            if tenant.lease == lease:
                row = next(
                    r
                    for r in self.tenants[self.property_of[lease.unit_id]]
                    if r["id"] == f"ten_{tenant.id}"
                )
                self.leases[row["id"]] = self.lease_row(row, tenant)
                rows.append(self.leases[row["id"]])
        self._money = None
        return rows[0]

    def money(self) -> tuple[list[Row], list[Row]]:
        """Every invoice and payment, as the Financial service lists them: read from the
        ledger once, again after a write."""
        if self._money is None:
            invoices: list[Row] = []
            payments: list[Row] = []
            for lease in self.books.leases(set(self.property_of)):
                invoices += [self.invoice_row(lease, c) for c in self.ledger.charges(lease)]
                payments += [self.payment_row(lease, p) for p in self.ledger.payments(lease)]
            self._money = invoices, payments
        return self._money

    def invoice_row(self, lease: Lease, charge: Charge) -> Row:
        """An invoice (assumed shape: the document names the routes only)."""
        ledger = self.ledger
        paid, left = ledger.paid(charge), ledger.open_amount(charge)
        if charge.cancelled:
            status = "cancelled"
        elif left <= 0:
            status = "paid"
        elif charge.due < self.world.today:
            status = "overdue"
        else:
            status = "partially_paid" if paid > 0 else "sent"
        settled = [
            p.paid_at
            for p in ledger.payments(lease)
            if p.charge == charge.id and p.status == "completed"
        ]
        return {
            "id": f"inv_{charge.id}",
            "number": f"INV-{charge.id}",
            "tenant_id": f"ten_{charge.tenant}",
            "property_id": self.property_of[lease.unit_id],
            "lease_id": f"lease_{charge.lease}",
            "description": charge.description,
            "amount": float(charge.amount),
            "amount_paid": float(paid),
            "balance_due": float(left),
            "currency": "CAD",
            "issue_date": charge.issued.isoformat(),
            "due_date": charge.due.isoformat(),
            "status": status,
            "paid_at": _utc(max(settled)) if status == "paid" and settled else None,
            "created_at": _utc(datetime.combine(charge.issued, datetime.min.time(), UTC)),
        }

    def payment_row(self, lease: Lease, payment: Payment) -> Row:
        return {
            "id": f"pay_{payment.id}",
            "invoice_id": f"inv_{payment.charge}",
            "tenant_id": f"ten_{payment.tenant}",
            "property_id": self.property_of[lease.unit_id],
            "lease_id": f"lease_{payment.lease}",
            "amount": float(payment.amount),
            "currency": "CAD",
            "method": payment.method,
            "status": payment.status,
            "paid_at": _utc(payment.paid_at),
            "created_at": _utc(payment.paid_at),
        }

    def create_tenant(self, property_id: str, body: Row) -> Row:
        unit_key = str(body["unit_id"])
        tenant = self.world.move_in(
            int(unit_key.removeprefix("unit_")),
            str(body["first_name"]),
            str(body["last_name"]),
            email=str(body["email"]),
            phone=str(body.get("phone") or ""),
            monthly_rent=int(body.get("monthly_rent") or 0),
        )
        for unit in self.units[property_id]:
            if unit["id"] == unit_key:
                unit["status"] = "occupied"
        return self._add(property_id, tenant)


def _utc(moment: datetime) -> str:
    """Timestamps as pms writes them, in UTC with a `Z` (its document's `meta.timestamp`)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def references(world: World) -> dict[tuple[str, int], str]:
    """As the pms connector names them: a tenant lives under its property."""
    mine = {b.id for b in world.buildings_of("pms")}
    building_of = {u.id: u.building_id for u in world.units if u.building_id in mine}
    found = {("building", building_id): f"pms:prop_{building_id}" for building_id in mine}
    found.update(
        {
            ("unit", unit): f"pms:prop_{building}/unit_{unit}"
            for unit, building in building_of.items()
        }
    )
    found.update({("landlord", one.id): f"pms:org_{one.id}" for one in world.landlords_of("pms")})
    found.update(
        {
            ("tenant", t.id): f"pms:prop_{building_of[t.unit_id]}/ten_{t.id}"
            for t in world.tenants
            if t.unit_id in building_of
        }
    )
    return found


def create_app(world: World, state: ProviderState) -> ASGIApp:
    state.token_paths = frozenset({"/api/v1/identity/login", "/api/v1/identity/refresh"})
    state.error_names = {name: status for name, (status, _) in ERRORS.items()}
    return served(state, _Service(world, state).routes())


class _Service:
    """One pms: its tables, tokens, rate window and webhooks, and a handler for each route."""

    def __init__(self, world: World, state: ProviderState) -> None:
        self.state = state
        self.tables = state.records = _Tables(world, state.clock)
        self.refresh_tokens: dict[str, tuple[float, int]] = {}
        self.window: dict[str, float] = {"start": state.clock(), "used": 0}
        self.hooks: list[dict[str, Any]] = []
        self.outbox = state.outbox = Outbox(state)

    def envelope(self, request: Request, data: Any, status: int = 200, **meta: Any) -> Response:
        return self._respond(
            request, {"success": True, "data": data, "meta": self._meta(request, **meta)}, status
        )

    def failure(
        self, request: Request, status: int, code: str, message: str, **extra: Any
    ) -> Response:
        error = {"code": code, "message": message, **extra}
        return self._respond(
            request, {"success": False, "error": error, "meta": self._meta(request)}, status
        )

    def _respond(self, request: Request, body: Row, status: int) -> Response:
        reset = int(self.window["start"] + RATE_WINDOW)
        response = JSONResponse(body, status_code=status)
        response.headers["X-Request-ID"] = request.state.request_id
        response.headers["X-RateLimit-Limit"] = str(RATE_LIMIT)
        response.headers["X-RateLimit-Remaining"] = str(
            max(0, RATE_LIMIT - int(self.window["used"]))
        )
        response.headers["X-RateLimit-Reset"] = str(reset)
        response.headers["X-RateLimit-Window"] = str(RATE_WINDOW)
        return response

    def _meta(self, request: Request, **extra: Any) -> Row:
        now = datetime.fromtimestamp(self.state.clock(), UTC).isoformat().replace("+00:00", "Z")
        return {
            "timestamp": now,
            "request_id": request.state.request_id,
            "version": "1.0.0",
            **extra,
        }

    def issue(self, request: Request) -> Response:
        now = self.state.clock()
        lifetime = self.state.token_lifetime or ACCESS_LIFETIME
        claims = {
            "sub": "user-integrations",
            "email": CREDENTIALS["username"],
            "org_id": "org-sandbox",
            "org_roles": ["PropertyManager"],
            "permissions": list(self.tables.permissions),
            "jti": uuid.uuid4().hex,
            "iat": int(now),
            "exp": int(now + lifetime),
            "aud": AUDIENCE,
            "gen": self.state.token_generation,
        }
        refresh = secrets.token_urlsafe(24)
        self.refresh_tokens[refresh] = (now + REFRESH_LIFETIME, self.state.token_generation)
        return self.envelope(
            request,
            {
                "access_token": sign_rs256(claims),
                "refresh_token": refresh,
                "token_type": "Bearer",
                "expires_in": int(lifetime),
            },
        )

    @staticmethod
    async def body_of_any(request: Request) -> Any:
        try:
            return json.loads(await request.body())
        except ValueError:
            return None

    async def body_of(self, request: Request) -> Row | None:
        body = await self.body_of_any(request)
        return body if isinstance(body, dict) else None

    async def login(self, request: Request) -> Response:
        body = await self.body_of(request)
        if body is None:
            return self.failure(
                request,
                422,
                "VALIDATION_ERROR",
                "Validation failed",
                details=[{"field": "body", "message": "A JSON object is required"}],
            )
        if (body.get("email"), body.get("password")) != (
            CREDENTIALS["username"],
            CREDENTIALS["password"],
        ):
            return self.failure(request, 401, "AUTHENTICATION_FAILED", "Invalid credentials")
        return self.issue(request)

    async def refresh(self, request: Request) -> Response:
        body = await self.body_of(request) or {}
        token = body.get("refresh_token")
        known = self.refresh_tokens.pop(token, None) if isinstance(token, str) else None
        if (
            known is None
            or known[0] <= self.state.clock()
            or known[1] != self.state.token_generation
        ):
            return self.failure(
                request, 401, "AUTHENTICATION_FAILED", "The refresh token is invalid"
            )
        return self.issue(request)

    def authorized(self, request: Request, needed: str | None) -> Response | None:
        """The bearer token's refusal if any: missing, invalid, revoked, expired, or without
        the permission the route needs (403, naming it)."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return self.failure(request, 401, "AUTHENTICATION_FAILED", "Authentication required")
        try:
            claims = read_rs256(token, AUDIENCE)
        except jwt.PyJWTError:
            return self.failure(request, 401, "AUTHENTICATION_FAILED", "The token is invalid")
        if claims.get("gen") != self.state.token_generation:
            return self.failure(request, 401, "AUTHENTICATION_FAILED", "The token was revoked")
        if claims["exp"] <= self.state.clock():
            return self.failure(request, 401, "TOKEN_EXPIRED", "JWT token has expired")
        if needed is not None and not _permits(claims.get("permissions"), needed):
            said = f"User lacks required permissions: {needed}"
            return self.failure(request, 403, "INSUFFICIENT_PERMISSIONS", said)
        return None

    def guarded(self, handler: Handler, needs_token: bool = True, **needs: str) -> Handler:
        """Request id, rate limit and (for data routes) the token, with the permission the
        route needs for the request's method (`GET="tenant:read"`), before any handler runs."""

        async def endpoint(request: Request) -> Response:
            request.state.request_id = (
                request.headers.get("x-request-id") or f"req_{uuid.uuid4().hex[:12]}"
            )
            now = self.state.clock()
            if now >= self.window["start"] + RATE_WINDOW:
                self.window["start"], self.window["used"] = now, 0
            self.window["used"] += 1
            forced = self.state.take_throttle()
            if forced is not None or self.window["used"] > RATE_LIMIT:
                retry_after = (
                    forced if forced is not None else int(self.window["start"] + RATE_WINDOW - now)
                )
                return self.failure(
                    request,
                    429,
                    "RATE_LIMIT_EXCEEDED",
                    f"Rate limit exceeded. Try again in {retry_after} seconds.",
                    retry_after=retry_after,
                )
            needed = needs.get(request.method)
            if needs_token and (refused := self.authorized(request, needed)) is not None:
                return refused
            if needs_token and (refusal := self.state.take_refusal()) is not None:
                return self.refuse(request, *refusal)
            return await handler(request)

        return endpoint

    def refuse(self, request: Request, name: str, status: int) -> Response:
        """A documented error on demand, shaped as the document's examples of it are."""
        extra: dict[str, Any] = {}
        if name == "VALIDATION_ERROR":
            field = self.state.refused_field
            extra["details"] = [{"field": field, "message": f"{field} is invalid"}] if field else []
        if name == "RATE_LIMIT_EXCEEDED":
            extra["retry_after"] = self.state.throttle_retry_after or RATE_WINDOW
        return self.failure(request, status, name, ERRORS[name][1], **extra)

    def listing(
        self,
        request: Request,
        rows: list[Row],
        sortable: set[str],
        keys: tuple[str, ...] = (),
    ) -> Response:
        """A page of `rows`: the document's filters (`status`, `type`, `created_*`), and the
        ids in `keys` a route also filters by (assumed: `tenant_id`, `lease_id`...)."""
        params = request.query_params
        try:
            page = int(params.get("page", "1"))
            size = min(int(params.get("page_size", "20")), MAX_PAGE_SIZE)
        except ValueError:
            page = size = 0
        details = []
        if page < 1:
            details.append({"field": "page", "message": "page must be a positive integer"})
        if size < 1:
            details.append({"field": "page_size", "message": "page_size must be 1 to 100"})
        sort_by = params.get("sort_by")
        if sort_by is not None and sort_by not in sortable:
            details.append(
                {"field": "sort_by", "message": f"sort_by must be one of {sorted(sortable)}"}
            )
        order = params.get("sort_order", "asc")
        if order not in ("asc", "desc"):
            details.append({"field": "sort_order", "message": "sort_order must be asc or desc"})
        for field in ("status", "type", *keys):
            if field in params:
                rows = [row for row in rows if row.get(field) == params[field]]
        for field, after in (("created_after", True), ("created_before", False)):
            if field in params:
                try:
                    bound = date.fromisoformat(params[field][:10]).isoformat()
                except ValueError:
                    details.append({"field": field, "message": f"{field} must be an ISO 8601 date"})
                    continue
                rows = [
                    row
                    for row in rows
                    if (row["created_at"][:10] > bound) == after and row["created_at"][:10] != bound
                ]
        if details:
            return self.failure(
                request, 422, "VALIDATION_ERROR", "Validation failed", details=details
            )
        if sort_by is not None:
            rows = sorted(
                rows,
                key=lambda row: (str(row.get(sort_by, "")).casefold(), row["id"]),
                reverse=order == "desc",
            )
        total = len(rows)
        pages = max(1, -(-total // size))
        return self.envelope(
            request,
            page_of(rows, page, size),
            pagination={
                "page": page,
                "page_size": size,
                "total_count": total,
                "total_pages": pages,
                "has_next": page < pages,
                "has_previous": page > 1,
            },
        )

    @staticmethod
    def find(rows: list[Row], key: str) -> Row | None:
        return next((row for row in rows if row["id"] == key), None)

    def not_found(self, request: Request, what: str) -> Response:
        return self.failure(request, 404, "RESOURCE_NOT_FOUND", f"{what} not found")

    async def organizations(self, request: Request) -> Response:
        return self.listing(request, self.tables.organizations, {"name", "created_at"})

    async def organization(self, request: Request) -> Response:
        row = self.find(self.tables.organizations, request.path_params["id"])
        return self.envelope(request, row) if row else self.not_found(request, "Organization")

    async def properties(self, request: Request) -> Response:
        return self.listing(request, self.tables.properties, {"name", "created_at"})

    async def one_property(self, request: Request) -> Response:
        row = self.find(self.tables.properties, request.path_params["id"])
        return self.envelope(request, row) if row else self.not_found(request, "Property")

    async def units(self, request: Request) -> Response:
        rows = self.tables.units.get(request.path_params["id"])
        if rows is None:
            return self.not_found(request, "Property")
        return self.listing(request, rows, {"unit_number", "created_at"})

    async def unit(self, request: Request) -> Response:
        row = self.find(
            self.tables.units.get(request.path_params["id"], []), request.path_params["unit_id"]
        )
        return self.envelope(request, row) if row else self.not_found(request, "Unit")

    async def tenants(self, request: Request) -> Response:
        property_id = request.path_params["id"]
        rows = self.tables.tenants.get(property_id)
        if rows is None:
            return self.not_found(request, "Property")
        if request.method == "GET":
            return self.listing(request, rows, {"last_name", "move_in_date"})
        body = await self.body_of(request)
        details = _tenant_problems(body, {u["id"] for u in self.tables.units[property_id]})
        if body is None or details:
            return self.failure(
                request, 422, "VALIDATION_ERROR", "Validation failed", details=details
            )
        created = self.tables.create_tenant(property_id, body)
        self.announce("tenant.created", {"tenant_id": created["id"], "property_id": property_id})
        return self.envelope(request, created, status=201)

    def announce(self, event: str, data: dict[str, Any]) -> None:
        """`{event, timestamp, data, webhook_id}`, signed with each subscriber's secret
        (`X-Webhook-Signature: sha256=<hex HMAC of the raw body>`, assumed)."""
        for hook in self.hooks:
            if event not in hook["events"]:
                continue
            body = json.dumps(
                {
                    "event": event,
                    "timestamp": datetime.fromtimestamp(self.state.clock(), UTC).isoformat(),
                    "data": data,
                    "webhook_id": f"webhook_{uuid.uuid4().hex}",
                }
            ).encode()
            signature = hmac.new(hook["secret"].encode(), body, hashlib.sha256).hexdigest()
            self.outbox.send(hook["url"], body, {"X-Webhook-Signature": f"sha256={signature}"})

    async def webhooks(self, request: Request) -> Response:
        """Webhook endpoints (assumed: the document names the section, not the route)."""
        if request.method == "GET":
            return self.envelope(
                request, [{k: h[k] for k in ("id", "url", "events")} for h in self.hooks]
            )
        body = await self.body_of(request)
        url, events, secret = (
            (body or {}).get("url"),
            (body or {}).get("events"),
            (body or {}).get("secret"),
        )
        if not isinstance(url, str) or not isinstance(secret, str) or not isinstance(events, list):
            return self.failure(
                request,
                422,
                "VALIDATION_ERROR",
                "Validation failed",
                details=[{"field": "url", "message": "url, events, secret required"}],
            )
        hook = {
            "id": f"hook_{len(self.hooks) + 1}",
            "url": url,
            "secret": secret,
            "events": [e for e in events if e in EVENTS],
        }
        self.hooks.append(hook)
        return self.envelope(request, {k: hook[k] for k in ("id", "url", "events")}, status=201)

    async def tenant(self, request: Request) -> Response:
        property_id = request.path_params["id"]
        row = self.find(self.tables.tenants.get(property_id, []), request.path_params["tenant_id"])
        if row is None:
            return self.not_found(request, "Tenant")
        if request.method == "PUT":
            body = await self.body_of(request)
            allowed = {"first_name", "last_name", "email", "phone"}
            if body is None or not set(body) <= allowed or not body:
                return self.failure(
                    request,
                    422,
                    "VALIDATION_ERROR",
                    "Validation failed",
                    details=[{"field": "body", "message": f"only {sorted(allowed)}"}],
                )
            row.update({k: str(v) for k, v in body.items()})
            self.announce("tenant.updated", {"tenant_id": row["id"], "property_id": property_id})
        return self.envelope(request, row)

    async def lease(self, request: Request) -> Response:
        property_id, tenant_id = request.path_params["id"], request.path_params["tenant_id"]
        row = self.find(self.tables.tenants.get(property_id, []), tenant_id)
        lease = self.tables.lease_of(property_id, tenant_id)
        if row is None or lease is None:
            return self.not_found(request, "Tenant")
        if request.method == "GET":
            return self.envelope(request, self.tables.leases[row["id"]])
        body = await self.body_of(request)
        problems, conflict = _amendment_problems(body, lease, self.tables)
        if conflict:
            return self.failure(request, 409, "CONFLICT", conflict)
        if body is None or problems:
            return self.failure(
                request, 422, "VALIDATION_ERROR", "Validation failed", details=problems
            )
        books = self.tables.books
        if "monthly_rent" in body:
            books.record_rent_change(
                lease, date.fromisoformat(body["effective_date"]), int(body["monthly_rent"])
            )
        if "deposit" in body:
            books.set_deposit(lease, int(body["deposit"]))
        if "end_date" in body:
            lease = books.end(lease, date.fromisoformat(body["end_date"]))
        return self.envelope(request, self.tables.refresh_lease(lease))

    async def invoices(self, request: Request) -> Response:
        invoices, _ = self.tables.money()
        if request.method == "GET":
            return self.listing(
                request,
                invoices,
                {"due_date", "issue_date", "created_at"},
                ("tenant_id", "lease_id", "property_id"),
            )
        body = await self.body_of(request)
        shape = _shape_problems(body, _INVOICE_FIELDS, ("description",))
        if shape:
            return self.failure(
                request, 422, "VALIDATION_ERROR", "Validation failed", details=shape
            )
        number = _number_of((body or {}).get("lease_id"), "lease_")
        lease = self.tables.books.lease(number) if number is not None else None
        if lease is None or lease.unit_id not in self.tables.property_of:
            return self.not_found(request, "Lease")
        if lease.end < self.tables.world.today:
            return self.failure(
                request, 409, "CONFLICT", "The lease has ended: it cannot be billed."
            )
        problems = _money_problems(body, "amount") + _date_problems(body, "due_date", True)
        if body is None or problems:
            return self.failure(
                request, 422, "VALIDATION_ERROR", "Validation failed", details=problems
            )
        charge = self.tables.ledger.bill(
            lease,
            Decimal(str(body["amount"])),
            date.fromisoformat(body["due_date"]),
            str(body.get("description") or "Invoice"),
        )
        self.tables.refresh_lease(lease)
        row = self.tables.invoice_row(lease, charge)
        created: dict[str, Any] = {"invoice_id": row["id"]}
        for name in ("tenant_id", "property_id", "amount", "currency", "due_date"):
            created[name] = row[name]
        self.announce("invoice.created", created)
        return self.envelope(request, row, status=201)

    def held_invoice(self, identifier: str) -> tuple[Lease, Charge] | None:
        number = _number_of(identifier, "inv_")
        held = self.tables.ledger.charge(number) if number is not None else None
        if held is None or held[0].unit_id not in self.tables.property_of:
            return None
        return held

    async def invoice(self, request: Request) -> Response:
        held = self.held_invoice(request.path_params["invoice_id"])
        if held is None:
            return self.not_found(request, "Invoice")
        return self.envelope(request, self.tables.invoice_row(*held))

    async def invoice_payments(self, request: Request) -> Response:
        held = self.held_invoice(request.path_params["invoice_id"])
        if held is None:
            return self.not_found(request, "Invoice")
        _, payments = self.tables.money()
        mine = [row for row in payments if row["invoice_id"] == request.path_params["invoice_id"]]
        return self.listing(request, mine, {"paid_at", "created_at"})

    async def payments(self, request: Request) -> Response:
        _, payments = self.tables.money()
        if request.method == "GET":
            return self.listing(
                request,
                payments,
                {"paid_at", "created_at"},
                ("tenant_id", "lease_id", "invoice_id", "property_id"),
            )
        body = await self.body_of(request)
        shape = _shape_problems(body, _PAYMENT_FIELDS, ("method",))
        if shape:
            return self.failure(
                request, 422, "VALIDATION_ERROR", "Validation failed", details=shape
            )
        held = self.held_invoice(str((body or {}).get("invoice_id", "")))
        if held is None:
            return self.not_found(request, "Invoice")
        lease, charge = held
        before = self.tables.invoice_row(lease, charge)
        if before["status"] in ("paid", "cancelled"):
            return self.failure(
                request,
                409,
                "CONFLICT",
                f"The invoice is {before['status']}: nothing is owed on it.",
            )
        problems = _money_problems(body, "amount") + _date_problems(body, "paid_at", False)
        method = (body or {}).get("method", "bank_transfer")
        if method not in _METHODS:
            problems.append(
                {"field": "method", "message": f"method must be one of {sorted(_METHODS)}"}
            )
        owed = Decimal(str(before["balance_due"]))
        if body is not None and not problems and Decimal(str(body["amount"])) > owed:
            problems.append({"field": "amount", "message": "amount is more than the balance due"})
        if body is None or problems:
            return self.failure(
                request, 422, "VALIDATION_ERROR", "Validation failed", details=problems
            )
        paid_at = (
            datetime.fromisoformat(body["paid_at"]) if body.get("paid_at") else self.tables.now()
        )
        payment = self.tables.ledger.pay(
            lease, charge, Decimal(str(body["amount"])), paid_at, method
        )
        self.tables.refresh_lease(lease)
        row = self.tables.payment_row(lease, payment)
        after = self.tables.invoice_row(lease, charge)
        self.announce(
            "payment.received",
            {
                "payment_id": row["id"],
                "invoice_id": row["invoice_id"],
                "amount": row["amount"],
                "currency": row["currency"],
            },
        )
        if after["status"] == "paid":
            self.announce(
                "invoice.paid",
                {
                    "invoice_id": after["id"],
                    "status": "paid",
                    "previous_status": before["status"],
                    "balance_due": 0,
                    "paid_at": after["paid_at"],
                },
            )
        return self.envelope(request, row, status=201)

    def held_payment(self, identifier: str) -> tuple[Lease, Payment] | None:
        number = _number_of(identifier, "pay_")
        held = self.tables.ledger.payment(number) if number is not None else None
        if held is None or held[0].unit_id not in self.tables.property_of:
            return None
        return held

    async def payment(self, request: Request) -> Response:
        held = self.held_payment(request.path_params["payment_id"])
        if held is None:
            return self.not_found(request, "Payment")
        return self.envelope(request, self.tables.payment_row(*held))

    async def receipt(self, request: Request) -> Response:
        held = self.held_payment(request.path_params["payment_id"])
        if held is None or held[1].status != "completed":
            return self.not_found(request, "Receipt")
        row = self.tables.payment_row(*held)
        return self.envelope(
            request,
            {
                "receipt_number": f"RCT-{held[1].id}",
                "payment_id": row["id"],
                "amount": row["amount"],
                "currency": row["currency"],
                "issued_at": row["paid_at"],
            },
        )

    async def refund(self, request: Request) -> Response:
        held = self.held_payment(request.path_params["payment_id"])
        if held is None:
            return self.not_found(request, "Payment")
        lease, payment = held
        if payment.status != "completed":
            return self.failure(request, 409, "CONFLICT", f"The payment is {payment.status}.")
        refunded = self.tables.ledger.refund(lease, payment)
        self.tables.refresh_lease(lease)
        return self.envelope(request, self.tables.payment_row(lease, refunded))

    async def failed_payment(self, request: Request) -> Response:
        """Sandbox admin: a tenant's card is declined on an invoice (payment.failed follows)."""
        request.state.request_id = f"req_{uuid.uuid4().hex[:12]}"
        held = self.held_invoice(request.path_params["invoice_id"])
        if held is None:
            return self.not_found(request, "Invoice")
        lease, charge = held
        payment = self.tables.ledger.pay(lease, charge, charge.amount, self.tables.now(), "card")
        failed = self.tables.ledger.refund(lease, payment)
        kept = self.tables.ledger.payments(lease)
        kept[kept.index(failed)] = replace(failed, status="failed")
        self.tables.refresh_lease(lease)
        row = self.tables.payment_row(lease, kept[-1])
        self.announce(
            "payment.failed",
            {"payment_id": row["id"], "invoice_id": row["invoice_id"], "reason": "card_declined"},
        )
        return self.envelope(request, row, status=201)

    def routes(self) -> list[Route]:
        prefix = "/api/v1"
        return [
            *_Operations(self).routes(prefix),
            Route(f"{prefix}/identity/login", self.guarded(self.login, False), methods=["POST"]),
            Route(
                f"{prefix}/identity/refresh", self.guarded(self.refresh, False), methods=["POST"]
            ),
            Route(
                f"{prefix}/webhooks",
                self.guarded(self.webhooks, GET="webhook:manage", POST="webhook:manage"),
                methods=["GET", "POST"],
            ),
            Route(
                f"{prefix}/organizations",
                self.guarded(self.organizations, GET="org:read"),
                methods=["GET"],
            ),
            Route(
                f"{prefix}/organizations/{{id}}",
                self.guarded(self.organization, GET="org:read"),
                methods=["GET"],
            ),
            Route(
                f"{prefix}/properties",
                self.guarded(self.properties, GET="property:read"),
                methods=["GET"],
            ),
            Route(
                f"{prefix}/properties/{{id}}",
                self.guarded(self.one_property, GET="property:read"),
                methods=["GET"],
            ),
            Route(
                f"{prefix}/properties/{{id}}/units",
                self.guarded(self.units, GET="unit:read"),
                methods=["GET"],
            ),
            Route(
                f"{prefix}/properties/{{id}}/units/{{unit_id}}",
                self.guarded(self.unit, GET="unit:read"),
                methods=["GET"],
            ),
            Route(
                f"{prefix}/properties/{{id}}/tenants",
                self.guarded(self.tenants, GET="tenant:read", POST="tenant:create"),
                methods=["GET", "POST"],
            ),
            Route(
                f"{prefix}/properties/{{id}}/tenants/{{tenant_id}}",
                self.guarded(self.tenant, GET="tenant:read", PUT="tenant:update"),
                methods=["GET", "PUT"],
            ),
            Route(
                f"{prefix}/properties/{{id}}/tenants/{{tenant_id}}/lease",
                self.guarded(self.lease, GET="tenant:read", POST="tenant:update"),
                methods=["GET", "POST"],
            ),
            Route(
                f"{prefix}/financial/invoices",
                self.guarded(self.invoices, GET="financial:read", POST="financial:create"),
                methods=["GET", "POST"],
            ),
            Route(
                f"{prefix}/financial/invoices/{{invoice_id}}",
                self.guarded(self.invoice, GET="financial:read"),
                methods=["GET"],
            ),
            Route(
                f"{prefix}/financial/invoices/{{invoice_id}}/payments",
                self.guarded(self.invoice_payments, GET="financial:read"),
                methods=["GET"],
            ),
            Route(
                f"{prefix}/financial/payments",
                self.guarded(self.payments, GET="financial:read", POST="payment:create"),
                methods=["GET", "POST"],
            ),
            Route(
                f"{prefix}/financial/payments/{{payment_id}}",
                self.guarded(self.payment, GET="financial:read"),
                methods=["GET"],
            ),
            Route(
                f"{prefix}/financial/payments/{{payment_id}}/receipt",
                self.guarded(self.receipt, GET="financial:read"),
                methods=["GET"],
            ),
            Route(
                f"{prefix}/financial/payments/{{payment_id}}/refund",
                self.guarded(self.refund, POST="financial:update"),
                methods=["POST"],
            ),
            Route(
                "/_sandbox/invoices/{invoice_id}/failed-payment",
                self.failed_payment,
                methods=["POST"],
            ),
            Route("/_sandbox/permissions", self.permissions, methods=["GET", "POST"]),
        ]

    async def permissions(self, request: Request) -> Response:
        """Sandbox admin: the account's permissions (`POST` a JSON list of them); the tokens
        issued so far stop working, so the next login carries the new ones."""
        if request.method == "POST":
            given = await self.body_of_any(request)
            if not isinstance(given, list) or not all(isinstance(p, str) for p in given):
                return JSONResponse({"error": "a JSON list of permissions"}, status_code=400)
            self.tables.permissions = given
            self.state.revoke_tokens()
        return JSONResponse(self.tables.permissions)


_PRIORITY_WORDS = {"low": "low", "normal": "medium", "high": "high", "urgent": "emergency"}
"""The workshop's priorities as pms spells them (assumed: its document names no values)."""
_PRIORITY_OF = {word: priority for priority, word in _PRIORITY_WORDS.items()}
_FIELDS = {"unit": "unit_id", "tenant": "tenant_id", "vendor": "vendor_id", "cost": "cost"}
"""The workshop's names for what it refuses, as pms's `details[].field` names them."""
_UNIT_STATUSES = ("vacant", "occupied")


def _stamp(moment: datetime | None) -> str | None:
    """pms's timestamps: UTC, with a `Z`, as its `meta.timestamp`."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


def _numbered(key: str, prefix: str) -> int | None:
    """`mr_123` -> 123; anything else names nothing here."""
    number = key.removeprefix(prefix)
    return int(number) if key.startswith(prefix) and number.isdigit() else None


class _Operations:
    """The Operations service: maintenance requests, work orders and vendors (the routes its
    document lists; the fields and filters they take are assumed), over the workshop's books,
    and a unit's status (`PUT …/units/{unit_id}/status`)."""

    def __init__(self, service: _Service) -> None:
        self.service = service
        self.workshop = service.tables.workshop

    def request_row(self, ticket: Ticket) -> Row:
        title, description = ticket.words()
        return {
            "id": f"mr_{ticket.id}",
            "property_id": f"prop_{ticket.building_id}",
            "unit_id": f"unit_{ticket.unit_id}",
            "tenant_id": f"ten_{ticket.tenant_id}" if ticket.tenant_id else None,
            "title": title,
            "description": description,
            "category": ticket.problem.trade if ticket.problem else "general",
            "priority": _PRIORITY_WORDS[ticket.priority],
            "status": ticket.status,
            "vendor_id": f"ven_{ticket.vendor_id}" if ticket.vendor_id else None,
            "scheduled_date": ticket.scheduled.isoformat() if ticket.scheduled else None,
            "resolution": ticket.resolution,
            "created_at": _stamp(ticket.reported),
            "completed_at": _stamp(ticket.completed),
        }

    def job_row(self, job: Job) -> Row:
        ticket = self.workshop.requests[job.request_id]
        return {
            "id": f"wo_{job.id}",
            "maintenance_request_id": f"mr_{job.request_id}",
            "property_id": f"prop_{ticket.building_id}",
            "unit_id": f"unit_{ticket.unit_id}",
            "vendor_id": f"ven_{job.vendor_id}",
            "description": job.words(),
            "status": job.status,
            "scheduled_date": job.scheduled.isoformat(),
            "started_at": _stamp(job.started),
            "completed_at": _stamp(job.completed),
            "cost": float(job.cost) if job.cost is not None else None,
            "currency": "CAD",
            "cancellation_reason": job.reason,
            "created_at": _stamp(ticket.reported),
        }

    @staticmethod
    def vendor_row(vendor: Vendor) -> Row:
        return {
            "id": f"ven_{vendor.id}",
            "name": vendor.name,
            "category": vendor.trade,
            "email": vendor.email,
            "phone": vendor.phone,
            "status": "active",
            "created_at": _created(vendor.id % 1000),
        }

    def invalid(self, request: Request, *details: tuple[str, str]) -> Response:
        return self.service.failure(
            request,
            422,
            "VALIDATION_ERROR",
            "Validation failed",
            details=[{"field": field, "message": message} for field, message in details],
        )

    def refused(self, request: Request, error: Exception) -> Response:
        """The workshop's refusal in pms's words: 404, 409 (a code of its own, assumed: the
        document's table names none for a conflict), or 422 naming the field."""
        if isinstance(error, Missing):
            return self.service.failure(request, 404, "RESOURCE_NOT_FOUND", str(error))
        if isinstance(error, Clash):
            return self.service.failure(request, 409, "CONFLICT", str(error))
        assert isinstance(error, Invalid)
        return self.invalid(request, (_FIELDS.get(error.field, error.field), str(error)))

    async def body(self, request: Request, allowed: set[str], *required: str) -> Row | Response:
        """The JSON body, every field known and the required ones given, or the 422."""
        body = await self.service.body_of(request)
        if body is None:
            return self.invalid(request, ("body", "A JSON object is required"))
        unknown = [(name, f"{name} is not a field here") for name in sorted(set(body) - allowed)]
        missing = [
            (name, f"{name} is required")
            for name in required
            if not isinstance(body.get(name), str) or not body[name].strip()
        ]
        if unknown or missing:
            return self.invalid(request, *unknown, *missing)
        return body

    @staticmethod
    def filtered(request: Request, rows: list[Row], names: tuple[str, ...]) -> list[Row]:
        params = request.query_params
        return [row for row in rows if all(row[n] == params[n] for n in names if n in params)]

    async def requests(self, request: Request) -> Response:
        if request.method == "POST":
            return await self.create_request(request)
        rows = [self.request_row(ticket) for ticket in self.workshop.requests.values()]
        names = ("property_id", "unit_id", "tenant_id", "priority", "category", "vendor_id")
        return self.service.listing(request, self.filtered(request, rows, names), {"created_at"})

    async def create_request(self, request: Request) -> Response:
        allowed = {"property_id", "unit_id", "tenant_id", "title", "description", "priority"}
        body = await self.body(request, allowed, "property_id", "unit_id", "description")
        if isinstance(body, Response):
            return body
        priority = body.get("priority", "medium")
        if priority not in _PRIORITY_OF:
            return self.invalid(request, ("priority", f"priority is one of {list(_PRIORITY_OF)}"))
        units = self.service.tables.units.get(str(body["property_id"]))
        if units is None:
            return self.service.not_found(request, "Property")
        unit = _numbered(str(body["unit_id"]), "unit_")
        tenant = body.get("tenant_id")
        if unit is None or body["unit_id"] not in {row["id"] for row in units}:
            return self.invalid(request, ("unit_id", "No such unit in this property"))
        try:
            ticket = self.workshop.open(
                unit,
                str(body["description"]),
                title=body.get("title"),
                priority=_PRIORITY_OF[priority],
                tenant_id=_numbered(str(tenant), "ten_") if tenant is not None else None,
            )
        except Invalid as error:
            return self.refused(request, error)
        row = self.request_row(ticket)
        self.announce("maintenance.created", row)
        return self.service.envelope(request, row, status=201)

    def announce(self, event: str, row: Row) -> None:
        self.service.announce(
            event,
            {
                "maintenance_request_id": row["id"],
                "property_id": row["property_id"],
                "unit_id": row["unit_id"],
                "status": row["status"],
            },
        )

    async def one_request(self, request: Request) -> Response:
        number = _numbered(request.path_params["id"], "mr_")
        ticket = self.workshop.requests.get(number) if number else None
        if ticket is None:
            return self.service.not_found(request, "Maintenance request")
        return self.service.envelope(request, self.request_row(ticket))

    async def assign(self, request: Request) -> Response:
        body = await self.body(request, {"vendor_id", "scheduled_date"}, "vendor_id")
        if isinstance(body, Response):
            return body
        try:
            scheduled = body.get("scheduled_date")
            day = date.fromisoformat(scheduled) if scheduled is not None else None
        except (TypeError, ValueError):
            return self.invalid(request, ("scheduled_date", "scheduled_date is an ISO date"))
        return await self.step(
            request,
            lambda number: self.workshop.assign(
                number, _numbered(str(body["vendor_id"]), "ven_"), day
            ),
        )

    async def complete(self, request: Request) -> Response:
        body = await self.body(request, {"resolution"})
        if isinstance(body, Response):
            return body
        return await self.step(
            request,
            lambda number: self.workshop.complete(number, body.get("resolution")),
            "maintenance.completed",
        )

    async def step(
        self,
        request: Request,
        move: Callable[[int], Ticket | Job],
        event: str | None = None,
        prefix: str = "mr_",
    ) -> Response:
        """One step of a request's or a work order's flow, by the id in its path."""
        number = _numbered(request.path_params["id"], prefix)
        try:
            if number is None:
                raise Missing(f"No such record {request.path_params['id'][:40]}.")
            moved = move(number)
        except (Missing, Clash, Invalid) as error:
            return self.refused(request, error)
        row = self.request_row(moved) if isinstance(moved, Ticket) else self.job_row(moved)
        if event is not None:
            self.announce(event, row)
        return self.service.envelope(request, row)

    async def work_orders(self, request: Request) -> Response:
        if request.method == "POST":
            return await self.create_work_order(request)
        rows = [self.job_row(job) for job in self.workshop.jobs.values()]
        names = ("maintenance_request_id", "property_id", "unit_id", "vendor_id")
        return self.service.listing(
            request, self.filtered(request, rows, names), {"scheduled_date", "created_at"}
        )

    async def create_work_order(self, request: Request) -> Response:
        allowed = {
            "maintenance_request_id",
            "vendor_id",
            "description",
            "scheduled_date",
            "cost",
            "currency",
        }
        body = await self.body(
            request, allowed, "maintenance_request_id", "vendor_id", "description"
        )
        if isinstance(body, Response):
            return body
        problems = _cost_problems(body)
        try:
            scheduled = body.get("scheduled_date")
            day = date.fromisoformat(scheduled) if scheduled is not None else None
        except (TypeError, ValueError):
            problems.append(("scheduled_date", "scheduled_date is an ISO date"))
        if problems:
            return self.invalid(request, *problems)
        number = _numbered(str(body["maintenance_request_id"]), "mr_")
        try:
            job = self.workshop.add_job(
                number or 0,
                _numbered(str(body["vendor_id"]), "ven_"),
                str(body["description"]),
                day,
                _cost(body),
            )
        except (Missing, Clash, Invalid) as error:
            return self.refused(request, error)
        return self.service.envelope(request, self.job_row(job), status=201)

    async def one_work_order(self, request: Request) -> Response:
        number = _numbered(request.path_params["id"], "wo_")
        job = self.workshop.jobs.get(number) if number else None
        if job is None:
            return self.service.not_found(request, "Work order")
        return self.service.envelope(request, self.job_row(job))

    async def start(self, request: Request) -> Response:
        body = await self.body(request, set())
        if isinstance(body, Response):
            return body
        return await self.step(request, self.workshop.start, prefix="wo_")

    async def finish(self, request: Request) -> Response:
        body = await self.body(request, {"cost", "currency"})
        if isinstance(body, Response):
            return body
        problems = _cost_problems(body)
        if problems:
            return self.invalid(request, *problems)
        cost = _cost(body)
        return await self.step(
            request, lambda number: self.workshop.finish(number, cost), prefix="wo_"
        )

    async def cancel(self, request: Request) -> Response:
        body = await self.body(request, {"reason"})
        if isinstance(body, Response):
            return body
        return await self.step(
            request,
            lambda number: self.workshop.cancel(number, body.get("reason")),
            prefix="wo_",
        )

    async def vendors(self, request: Request) -> Response:
        rows = [self.vendor_row(vendor) for vendor in self.workshop.vendors.values()]
        return self.service.listing(
            request, self.filtered(request, rows, ("category",)), {"name", "created_at"}
        )

    async def one_vendor(self, request: Request) -> Response:
        number = _numbered(request.path_params["id"], "ven_")
        vendor = self.workshop.vendors.get(number) if number else None
        if vendor is None:
            return self.service.not_found(request, "Vendor")
        return self.service.envelope(request, self.vendor_row(vendor))

    async def unit_status(self, request: Request) -> Response:
        """`PUT …/units/{unit_id}/status` (assumed body: `{"status"}`): a manager may mark a
        unit occupied without a lease (a caretaker's, say), but not vacant while a lease
        runs in it: that is a conflict."""
        units = self.service.tables.units.get(request.path_params["id"], [])
        row = next((unit for unit in units if unit["id"] == request.path_params["unit_id"]), None)
        if row is None:
            return self.service.not_found(request, "Unit")
        if request.method == "GET":
            return self.service.envelope(request, {"status": row["status"]})
        body = await self.body(request, {"status"}, "status")
        if isinstance(body, Response):
            return body
        if body["status"] not in _UNIT_STATUSES:
            return self.invalid(request, ("status", f"status is one of {list(_UNIT_STATUSES)}"))
        leased = self.service.tables.world.is_occupied(int(row["id"].removeprefix("unit_")))
        if body["status"] == "vacant" and leased:
            said = "The unit has a lease running today: it cannot be vacant."
            return self.service.failure(request, 409, "CONFLICT", said)
        row["status"] = body["status"]
        return self.service.envelope(request, row)

    def routes(self, prefix: str) -> list[Route]:
        guarded, ops = self.service.guarded, f"{prefix}/operations"
        post = ["POST"]
        return [
            Route(
                f"{ops}/maintenance-requests",
                guarded(self.requests, GET="maintenance:read", POST="maintenance:create"),
                methods=["GET", *post],
            ),
            Route(
                f"{ops}/maintenance-requests/{{id}}",
                guarded(self.one_request, GET="maintenance:read"),
            ),
            Route(
                f"{ops}/maintenance-requests/{{id}}/assign",
                guarded(self.assign, POST="maintenance:update"),
                methods=post,
            ),
            Route(
                f"{ops}/maintenance-requests/{{id}}/complete",
                guarded(self.complete, POST="maintenance:update"),
                methods=post,
            ),
            Route(
                f"{ops}/work-orders",
                guarded(self.work_orders, GET="workorder:read", POST="workorder:create"),
                methods=["GET", *post],
            ),
            Route(f"{ops}/work-orders/{{id}}", guarded(self.one_work_order, GET="workorder:read")),
            Route(
                f"{ops}/work-orders/{{id}}/start",
                guarded(self.start, POST="workorder:update"),
                methods=post,
            ),
            Route(
                f"{ops}/work-orders/{{id}}/complete",
                guarded(self.finish, POST="workorder:update"),
                methods=post,
            ),
            Route(
                f"{ops}/work-orders/{{id}}/cancel",
                guarded(self.cancel, POST="workorder:update"),
                methods=post,
            ),
            Route(f"{ops}/vendors", guarded(self.vendors, GET="maintenance:read")),
            Route(f"{ops}/vendors/{{id}}", guarded(self.one_vendor, GET="maintenance:read")),
            Route(
                f"{prefix}/properties/{{id}}/units/{{unit_id}}/status",
                guarded(self.unit_status, GET="unit:read", PUT="unit:update"),
                methods=["GET", "PUT"],
            ),
        ]


def _cost_problems(body: Row) -> list[tuple[str, str]]:
    """A cost is a number in the organization's currency (CAD here)."""
    problems = []
    cost = body.get("cost")
    if cost is not None and (isinstance(cost, bool) or not isinstance(cost, int | float)):
        problems.append(("cost", "cost is a number"))
    if body.get("currency", "CAD") != "CAD":
        problems.append(("currency", "currency must be the organization's, CAD"))
    return problems


def _cost(body: Row) -> Decimal | None:
    cost = body.get("cost")
    return Decimal(str(cost)) if cost is not None else None


_METHODS = frozenset({"bank_transfer", "card", "interac", "pre_authorized_debit", "cash"})
_AMENDABLE = frozenset(
    {
        "end_date",
        "deposit",
        "monthly_rent",
        "effective_date",
        "early_termination",
        "termination_reason",
        "currency",
    }
)


def _number_of(identifier: Any, prefix: str) -> int | None:
    text = identifier if isinstance(identifier, str) else ""
    digits = text.removeprefix(prefix)
    return (
        int(digits) if text.startswith(prefix) and digits.isdigit() and len(digits) < 19 else None
    )


_INVOICE_FIELDS = frozenset({"lease_id", "amount", "currency", "due_date", "description"})
_PAYMENT_FIELDS = frozenset({"invoice_id", "amount", "currency", "paid_at", "method"})


def _shape_problems(body: Row | None, allowed: frozenset[str], texts: tuple[str, ...]) -> list[Row]:
    """A money write's body as its other write routes check theirs: a JSON object, no field
    it has no place for, text where text is due."""
    if body is None:
        return [{"field": "body", "message": "A JSON object is required"}]
    return [
        {"field": name, "message": f"{name} is not a field here"}
        for name in sorted(set(body) - allowed)
    ] + [
        {"field": name, "message": f"{name} is text"}
        for name in texts
        if name in body and not isinstance(body[name], str)
    ]


def _money_problems(body: Row | None, field: str) -> list[Row]:
    """An amount is a JSON number (text is refused, as a typed API refuses it), positive, to
    the cent."""
    if body is None:
        return [{"field": "body", "message": "A JSON object is required"}]
    problems = []
    value = body.get(field)
    number = isinstance(value, int | float) and not isinstance(value, bool)
    amount = Decimal(str(value)) if number else None
    if amount is None:
        problems.append({"field": field, "message": f"{field} must be a number"})
    elif not amount.is_finite() or amount <= 0:
        problems.append({"field": field, "message": f"{field} must be a positive amount"})
    elif not isinstance(places := amount.as_tuple().exponent, int) or places < -2:
        problems.append({"field": field, "message": f"{field} has at most 2 decimal places"})
    currency = body.get("currency")
    if currency not in CURRENCIES:
        problems.append(
            {"field": "currency", "message": f"currency must be one of {sorted(CURRENCIES)}"}
        )
    elif currency != "CAD":
        problems.append({"field": "currency", "message": "currency must be the lease's, CAD"})
    return problems


def _date_problems(body: Row | None, field: str, required: bool) -> list[Row]:
    value = (body or {}).get(field)
    if value is None and not required:
        return []
    try:
        parsed = (date if field.endswith("date") else datetime).fromisoformat(str(value))
        if isinstance(parsed, datetime):
            parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return [{"field": field, "message": f"{field} must be an ISO 8601 date of years 1 to 9999"}]
    return []


def _amendment_problems(
    body: Row | None, lease: Lease, tables: _Tables
) -> tuple[list[Row], str | None]:
    """What is wrong with a lease amendment, and the conflict with the lease's state if any:
    an ended lease takes no change (409); a date outside its term, a past end, a rent change
    without its date are invalid (422)."""
    if body is None or not body:
        return [{"field": "body", "message": "Give end_date, deposit or monthly_rent"}], None
    if lease.end < tables.world.today:
        return [], "The lease has ended: its terms can no longer change."
    problems = [
        {"field": name, "message": f"{name} cannot be changed here"}
        for name in sorted(set(body) - _AMENDABLE)
    ]
    today = tables.world.today
    end = body.get("end_date")
    if end is not None:
        problems += _date_problems(body, "end_date", True)
        if not problems:
            day = date.fromisoformat(str(end))
            if day < max(today, lease.start):
                problems.append(
                    {
                        "field": "end_date",
                        "message": "end_date cannot be before today or the lease's start",
                    }
                )
            elif body.get("early_termination") is True and day > lease.end:
                problems.append(
                    {"field": "end_date", "message": "an early end cannot be after the lease's end"}
                )
    if body.get("currency", "CAD") != "CAD":
        problems.append({"field": "currency", "message": "currency must be the lease's, CAD"})
    if not isinstance(body.get("early_termination", False), bool):
        problems.append(
            {"field": "early_termination", "message": "early_termination is true or false"}
        )
    if "deposit" in body:
        deposit = body["deposit"]
        if not isinstance(deposit, int) or isinstance(deposit, bool) or deposit < 0:
            problems.append(
                {"field": "deposit", "message": "deposit must be a whole amount, 0 or more"}
            )
    if "monthly_rent" in body or "effective_date" in body:
        rent = body.get("monthly_rent")
        if not isinstance(rent, int) or isinstance(rent, bool) or rent <= 0:
            problems.append(
                {"field": "monthly_rent", "message": "monthly_rent must be a positive whole amount"}
            )
        problems += _date_problems(body, "effective_date", True)
        if not any(p["field"] == "effective_date" for p in problems):
            day = date.fromisoformat(str(body["effective_date"]))
            if not lease.start <= day <= lease.end:
                problems.append(
                    {"field": "effective_date", "message": "effective_date is outside the lease"}
                )
            elif any(change.effective == day for change in tables.books.rent_changes(lease)):
                return [], f"A rent change already takes effect on {day}."
    return problems, None


def _tenant_problems(body: Row | None, units: set[str]) -> list[Row]:
    if body is None:
        return [{"field": "body", "message": "A JSON object is required"}]
    details = [
        {"field": name, "message": f"{name.replace('_', ' ').capitalize()} is required"}
        for name in ("unit_id", "first_name", "last_name", "email")
        if not isinstance(body.get(name), str) or not body[name].strip()
    ]
    email = body.get("email")
    if isinstance(email, str) and email.strip() and not _EMAIL.match(email):
        details.append({"field": "email", "message": "Email format is invalid"})
    unit_id = body.get("unit_id")
    if isinstance(unit_id, str) and unit_id.strip() and unit_id not in units:
        details.append({"field": "unit_id", "message": "No such unit in this property"})
    return details
