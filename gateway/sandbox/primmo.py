"""Primmo (HApi), an OData v4 provider, as its document describes it.

Tokens come from `POST /api/Token` (header `x-api-key`, body `UserName` and
`Password`), live 24 hours and cannot be refreshed. Entity sets answer
`{"value": [...]}` and honour the OData options; `$metadata` describes them. The
data is as dirty as the document shows: building codes padded on the right to
10, unit codes with a leading space, occupancy codes padded (`"V "`), `TenantNo`
a float. The server is a strict one (see `gateway.sandbox.odata`): pages capped
at `PAGE_SIZE` behind next links, exact string comparison; `POST /_sandbox/odata`
turns it into another (`max_page_size`, `collation=sql_server`, `counts=false`,
`prefer=ignored`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from xml.etree import ElementTree

import jwt
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.clock import Clock
from gateway.sandbox.data import Lease, Tenant, World
from gateway.sandbox.leasing import Books
from gateway.sandbox.ledger import LOCAL, Charge, Ledger
from gateway.sandbox.odata import (
    COLLATIONS,
    VERSION,
    Collation,
    EntitySet,
    Format,
    Navigation,
    ODataError,
    Row,
    Server,
    evaluate,
    ieee754,
    negotiate,
    next_link,
    parse_count_options,
    parse_options,
    query_pairs,
)
from gateway.sandbox.operations import Clash, Invalid, Job, Missing, Ticket, Workshop
from gateway.sandbox.outbox import Outbox
from gateway.sandbox.server import Handler, ProviderState, served

__all__ = ["CREDENTIALS", "create_app", "token_request"]

TOKEN_LIFETIME = timedelta(hours=24)
PAGE_SIZE = 5000
"""Rows per answer at most, as Microsoft Dataverse caps its OData pages: a real server
pages, so the connector must follow next links; a test lowers it to see them."""

CREDENTIALS = {
    "api_key": "sandbox-primmo-api-key",
    "username": "integrateur",
    "password": "sandbox-primmo-password",
    "webhook_secret": "sandbox-primmo-webhook-key",
}
"""The sandbox's only account; `gateway serve` without configuration logs in with it."""


def token_request(root: str, credentials: Mapping[str, str] = CREDENTIALS) -> dict[str, Any]:
    """Primmo's login for a client that calls it without the gateway (the bench's ideal
    client and Mesh, tests that read the sandbox directly), as httpx's `post` takes it:
    `root` is Primmo's base URL, or empty for a client with one."""
    return {
        "url": f"{root}/api/Token",
        "headers": {"x-api-key": credentials["api_key"]},
        "json": {"UserName": credentials["username"], "Password": credentials["password"]},
    }


_SIGNING_KEY = "primmo-sandbox-signing-key-not-a-secret"
_JSON, _TEXT, _XML = "application/json", "text/plain", "application/xml"
"""What Primmo's OData routes answer in: rows, counts, `$metadata`."""

_PLACE_TYPES = {"Id": "Edm.Int32", "CompanyNo": "Edm.Int32", "DivisionNo": "Edm.Int32"}
_TYPES = {
    "Building": {
        **_PLACE_TYPES,
        "BuildingCode": "Edm.String",
        "Name": "Edm.String",
        "CivicNoAndStreet": "Edm.String",
        "City": "Edm.String",
    },
    "Unit": {
        **_PLACE_TYPES,
        "BuildingCode": "Edm.String",
        "UnitCode": "Edm.String",
        "OccupancyStatus": "Edm.String",
        "HousingType": "Edm.String",
        "NumberOfRooms": "Edm.Double",
    },
    "Tenant": {
        **_PLACE_TYPES,
        "TenantType": "Edm.String",
        "TenantNo": "Edm.Double",
        "BuildingCode": "Edm.String",
        "UnitCode": "Edm.String",
        "LastName": "Edm.String",
        "FirstName": "Edm.String",
        "Email": "Edm.String",
        "Phone": "Edm.String",
        "LeaseId": "Edm.Int32",
    },
    "Lease": {
        **_PLACE_TYPES,
        "BuildingCode": "Edm.String",
        "UnitCode": "Edm.String",
        "StartDate": "Edm.Date",
        "EndDate": "Edm.Date",
        "RentAmount": "Edm.Decimal",
        "DepositAmount": "Edm.Decimal",
        "Status": "Edm.String",
    },
    "Invoice": {
        "Id": "Edm.Int32",
        "CompanyNo": "Edm.Int32",
        "DivisionNo": "Edm.Int32",
        "InvoiceNo": "Edm.String",
        "TenantId": "Edm.Int32",
        "LeaseId": "Edm.Int32",
        "InvoiceDate": "Edm.Date",
        "DueDate": "Edm.Date",
        "Amount": "Edm.Decimal",
        "Balance": "Edm.Decimal",
        "Description": "Edm.String",
    },
    "FinancialStatement": {
        "Id": "Edm.Int32",
        "TenantId": "Edm.Int32",
        "LeaseId": "Edm.Int32",
        "InvoiceId": "Edm.Int32",
        "TransactionDate": "Edm.DateTimeOffset",
        "TransactionType": "Edm.String",
        "Amount": "Edm.Decimal",
        "Reference": "Edm.String",
    },
    "AccountReceivable": {
        "Id": "Edm.Int32",
        "LeaseId": "Edm.Int32",
        "TenantId": "Edm.Int32",
        "Balance": "Edm.Decimal",
        "PastDue": "Edm.Decimal",
    },
    "LeasePriceChange": {
        "Id": "Edm.Int32",
        "LeaseId": "Edm.Int32",
        "EffectiveDate": "Edm.Date",
        "Amount": "Edm.Decimal",
    },
    "LedgerDivision": {
        **_PLACE_TYPES,
        "Name": "Edm.String",
        "CivicNoAndStreet": "Edm.String",
        "City": "Edm.String",
        "PostalCode": "Edm.String",
    },
}
"""Each entity type's properties and their EDM types: what `$metadata` says and the sets hold."""
_SERVICE_TYPES = {
    "ServiceCall": {
        **_PLACE_TYPES,
        "BuildingCode": "Edm.String",
        "UnitCode": "Edm.String",
        "TenantId": "Edm.Int32",
        "SupplierId": "Edm.Int32",
        "Description": "Edm.String",
        "Priority": "Edm.Int32",
        "Status": "Edm.String",
        "RequestDate": "Edm.DateTimeOffset",
        "ScheduledDate": "Edm.Date",
        "CompletedDate": "Edm.DateTimeOffset",
    },
    "ServiceCallDetail": {
        **_PLACE_TYPES,
        "ServiceCallId": "Edm.Int32",
        "BuildingCode": "Edm.String",
        "UnitCode": "Edm.String",
        "SupplierId": "Edm.Int32",
        "Description": "Edm.String",
        "Status": "Edm.String",
        "ScheduledDate": "Edm.Date",
        "StartDate": "Edm.DateTimeOffset",
        "EndDate": "Edm.DateTimeOffset",
        "Amount": "Edm.Decimal",
    },
    "Supplier": {
        "Id": "Edm.Int32",
        "Name": "Edm.String",
        "Trade": "Edm.String",
        "Email": "Edm.String",
        "Phone": "Edm.String",
    },
}
"""Service calls (a maintenance request), their details (the work done on one) and suppliers:
the document names them writable, with webhooks; their properties are assumed."""
_TYPES.update(_SERVICE_TYPES)
_SETS = {
    "Buildings": "Building",
    "Units": "Unit",
    "Tenants": "Tenant",
    "Leases": "Lease",
    "Invoices": "Invoice",
    "FinancialStatements": "FinancialStatement",
    "AccountsReceivable": "AccountReceivable",
    "LeasePriceChanges": "LeasePriceChange",
    "LedgerDivisions": "LedgerDivision",
    "ServiceCalls": "ServiceCall",
    "ServiceCallDetails": "ServiceCallDetail",
    "Suppliers": "Supplier",
}


def _metadata() -> bytes:
    """CSDL XML for exactly what the service answers: its sets, one navigation (a building's
    units, joined on place and code rather than a key, so without a referential constraint)."""
    edmx = "http://docs.oasis-open.org/odata/ns/edmx"
    edm = "http://docs.oasis-open.org/odata/ns/edm"
    ElementTree.register_namespace("edmx", edmx)
    ElementTree.register_namespace("", edm)
    root = ElementTree.Element(f"{{{edmx}}}Edmx", {"Version": "4.0"})
    services = ElementTree.SubElement(root, f"{{{edmx}}}DataServices")
    schema = ElementTree.SubElement(services, f"{{{edm}}}Schema", {"Namespace": "Primmo"})
    for name, properties in _TYPES.items():
        entity = ElementTree.SubElement(schema, f"{{{edm}}}EntityType", {"Name": name})
        key = ElementTree.SubElement(entity, f"{{{edm}}}Key")
        ElementTree.SubElement(key, f"{{{edm}}}PropertyRef", {"Name": "Id"})
        for prop, kind in properties.items():
            nullable = "false" if prop == "Id" or prop in _PLACE_TYPES else "true"
            attributes = {"Name": prop, "Type": kind, "Nullable": nullable}
            ElementTree.SubElement(entity, f"{{{edm}}}Property", attributes)
        if name == "Building":
            navigation = {"Name": "Units", "Type": "Collection(Primmo.Unit)"}
            ElementTree.SubElement(entity, f"{{{edm}}}NavigationProperty", navigation)
    container = ElementTree.SubElement(schema, f"{{{edm}}}EntityContainer", {"Name": "Container"})
    for set_name, type_name in _SETS.items():
        attributes = {"Name": set_name, "EntityType": f"Primmo.{type_name}"}
        entity_set = ElementTree.SubElement(container, f"{{{edm}}}EntitySet", attributes)
        if set_name == "Buildings":
            binding = {"Path": "Units", "Target": "Units"}
            ElementTree.SubElement(entity_set, f"{{{edm}}}NavigationPropertyBinding", binding)
    document: bytes = ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
    return document


METADATA = _metadata()
_PLACE_KEY = ("CompanyNo", "DivisionNo", "BuildingCode")
"""How a building's units are found: Primmo keys them by place and code, not by id."""
_REQUIRED_TENANT_FIELDS = ("CompanyNo", "DivisionNo", "BuildingCode", "UnitCode", "LastName")
_LEASE_STATUSES = {"active": "A ", "past": "T ", "future": "F "}
"""Primmo's lease status codes (assumed), padded as its other codes are: A (active, "en
cours"), T (ended, "terminé"), F (future, "à venir")."""


def _code(value: Any) -> str:
    return str(value).rstrip() if value is not None else ""


class _Tables:
    """Primmo's rows, laid out from the shared world once, then kept up to date by writes."""

    def __init__(self, world: World, clock: Clock) -> None:
        self.world = world
        self.books = Books(world)
        self.workshop = Workshop(world, "primmo", clock)
        self.ledger = Ledger(self.books)
        self._money: _Money | None = None
        self.modules = {"FinancialStatements": False}
        """Modules the client has acquired (`POST /_sandbox/modules`); the sandbox's client
        has not bought FinancialStatements, as FAQ R8's has not."""
        landlords = {landlord.id: landlord for landlord in world.landlords}
        buildings = world.buildings_of("primmo")
        self.divisions: list[Row] = [
            {
                "Id": landlord.id,
                "CompanyNo": landlord.company_no,
                "DivisionNo": landlord.division_no,
                "Name": landlord.name,
                "CivicNoAndStreet": landlord.street,
                "City": landlord.city,
                "PostalCode": landlord.postal_code,
            }
            for landlord in world.landlords_of("primmo")
        ]
        self.buildings: list[Row] = []
        self.units: list[Row] = []
        self.tenants: list[Row] = []
        by_id = {}
        for building in buildings:
            owner = landlords[building.landlord_id]
            row = {
                "Id": building.id,
                "CompanyNo": owner.company_no,
                "DivisionNo": owner.division_no,
                "BuildingCode": building.code.ljust(10),
                "Name": building.name,
                "CivicNoAndStreet": building.street,
                "City": building.city,
            }
            self.buildings.append(row)
            by_id[building.id] = row
        units_by_id = {}
        for unit in world.units:
            parent = by_id.get(unit.building_id)
            if parent is None:
                continue
            row = {
                "Id": unit.id,
                "CompanyNo": parent["CompanyNo"],
                "DivisionNo": parent["DivisionNo"],
                "BuildingCode": parent["BuildingCode"],
                "UnitCode": f" {unit.code}",
                "OccupancyStatus": "L " if world.is_occupied(unit.id) else "V ",
                "HousingType": unit.housing_type,
                "NumberOfRooms": unit.rooms,
            }
            self.units.append(row)
            units_by_id[unit.id] = row
        # A building's units, as the database's index on their codes finds them for
        # `$expand=Units`: a scan of every unit for each building made the sandbox, not the
        # gateway, what a nested query waited on.
        self.units_by_place: dict[tuple[Any, Any, str], list[Row]] = {}
        for row in self.units:
            self.units_by_place.setdefault(_place(row), []).append(row)
        # Primmo's tenants are its units' occupants: it keeps no former ones, so a unit
        # whose lease ended shows vacant and without them.
        for tenant in world.tenants:
            unit_row = units_by_id.get(tenant.unit_id)
            if unit_row is not None and world.is_current(tenant):
                self.tenants.append(self._tenant_row(tenant, unit_row))
        # Its leases, present and past (it keeps a lease when it forgets its tenants).
        self.units_by_id = units_by_id
        self.leases: list[Row] = [
            self.lease_row(lease) for lease in self.books.leases(set(units_by_id))
        ]

    def lease_row(self, lease: Lease) -> Row:
        """A lease as Primmo's `api/Leases` (assumed) holds it: under its unit's codes, the
        rent in effect today, and no deposit (Québec's Civil Code, art. 1904, forbids one)."""
        unit_row = self.units_by_id[lease.unit_id]
        return {
            "Id": self.books.number(lease),
            **{name: unit_row[name] for name in (*_PLACE_KEY, "UnitCode")},
            "StartDate": lease.start.isoformat(),
            "EndDate": lease.end.isoformat(),
            "RentAmount": self.books.rent(lease),
            "DepositAmount": None,
            "Status": _LEASE_STATUSES[self.books.status(lease)],
        }

    def money(self) -> _Money:
        """Its invoices, statements, receivables and price changes: laid out from the ledger
        on first use (a world no one asks about costs nothing), then kept up to date."""
        if self._money is None:
            self._money = _Money(self)
        return self._money

    def _tenant_row(self, tenant: Tenant, unit_row: Row) -> Row:
        return {
            "Id": tenant.id,
            "CompanyNo": unit_row["CompanyNo"],
            "DivisionNo": unit_row["DivisionNo"],
            "TenantType": tenant.tenant_type,
            "TenantNo": float(tenant.tenant_no),
            "BuildingCode": unit_row["BuildingCode"],
            "UnitCode": unit_row["UnitCode"],
            "LastName": tenant.last_name,
            "FirstName": tenant.first_name,
            "Email": tenant.email or None,
            "Phone": tenant.phone or None,
            "LeaseId": self.books.number(tenant.lease),
        }

    def units_of(self, building: Row) -> list[Row]:
        return self.units_by_place.get(_place(building), [])

    def find_unit(self, body: Row, collation: Collation) -> Row | None:
        """The unit a new tenant names by place and codes, compared as the database would."""

        def key(row: Row) -> tuple[Any, ...]:
            return tuple(
                collation.equal(value) if isinstance(value, str) else value
                for value in (row.get(name) for name in (*_PLACE_KEY, "UnitCode"))
            )

        wanted = key(body)
        return next((unit for unit in self.units if key(unit) == wanted), None)

    def add_tenant(self, body: Row, unit_row: Row) -> Row:
        tenant = self.world.move_in(
            int(unit_row["Id"]),
            str(body.get("FirstName") or ""),
            str(body["LastName"]),
            email=str(body.get("Email") or ""),
            phone=str(body.get("Phone") or ""),
            tenant_type=str(body.get("TenantType") or "D"),
        )
        unit_row["OccupancyStatus"] = "L "
        row = self._tenant_row(tenant, unit_row)
        self.tenants.append(row)
        if not any(lease["Id"] == row["LeaseId"] for lease in self.leases):
            self.leases.append(self.lease_row(tenant.lease))
        return row


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TENANT_TYPE = re.compile(r"^[A-Z]$")


def _ieee754(request: Request) -> bool:
    """`IEEE754Compatible=true` among the request's media type parameters (OData JSON §3.2)."""
    _, *parameters = request.headers.get("content-type", "").split(";")
    return any(
        name.strip().lower() == "ieee754compatible" and value.strip().lower() == "true"
        for name, _, value in (parameter.partition("=") for parameter in parameters)
    )


def _fits(value: Any, kind: str, ieee754: bool) -> bool:
    """A JSON value as an EDM type takes it: an Edm.Decimal (or Int64) a number, or with
    `IEEE754Compatible=true` a string and only a string, as ASP.NET OData holds to it."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind in ("Edm.Decimal", "Edm.Int64"):
        return isinstance(value, str) if ieee754 else number
    if kind == "Edm.Double":
        return number
    if kind == "Edm.Int32":
        return number and isinstance(value, int) and -(2**31) <= value < 2**31
    return isinstance(value, str)


def _mistyped(body: Row, types: Mapping[str, str], ieee754: bool) -> str | None:
    """The first property whose value its EDM type does not take, in the words of ASP.NET
    OData's refusal, naming the property."""
    for name, value in body.items():
        kind = types.get(name)
        if value is not None and kind is not None and not _fits(value, kind, ieee754):
            shown = json.dumps(value)[:40]
            return f"Cannot convert the literal {shown} to the expected type '{kind}' ({name})."
    return None


def _tenant_problem(body: Row) -> str | None:
    """Primmo's own rules for a tenant (assumed, as its screens would check them)."""
    email, kind = body.get("Email"), body.get("TenantType")
    if email is not None and not (isinstance(email, str) and _EMAIL.match(email)):
        return "Email is not a valid address."
    if kind is not None and not (isinstance(kind, str) and _TENANT_TYPE.match(kind)):
        return "TenantType is a one-letter code (D, C...)."
    return None


class _Money:
    """Primmo's money sets (assumed, as the document names them without their shape):
    `api/Invoices` (its invoices; creation only, FAQ R20), `api/FinancialStatements` (each
    tenant's account: an `F` line per invoice, a `P` line per payment; 403 without the
    module, FAQ R8), `api/AccountsReceivable` (what each lease still owes) and
    `api/LeasePriceChanges` (FAQ R9). Ids are Primmo's own, numbered as rows are filed."""

    def __init__(self, tables: _Tables) -> None:
        self.tables = tables
        self.invoices: list[Row] = []
        self.statements: list[Row] = []
        self.receivables: list[Row] = []
        self.price_changes: list[Row] = []
        self.charges: dict[int, tuple[Lease, Charge]] = {}
        self._ids: dict[tuple[str, int], int] = {}
        for lease in tables.books.leases(set(tables.units_by_id)):
            self.file(lease)

    def id(self, kind: str, key: int) -> int:
        """Primmo's own Int32 id for a ledger record (whose ids hold the lease number, too
        wide), numbered as rows are filed, the same each time a lease is filed again."""
        return self._ids.setdefault((kind, key), 100_000_000 + len(self._ids))

    def file(self, lease: Lease) -> None:
        """A lease's rows, filed again (after a write: its balance and lines changed)."""
        number = self.tables.books.number(lease)
        for rows in (self.invoices, self.statements, self.receivables, self.price_changes):
            rows[:] = [row for row in rows if row["LeaseId"] != number]
        ledger, today = self.tables.ledger, self.tables.world.today
        unit = self.tables.units_by_id[lease.unit_id]
        by_charge = {}
        for charge in ledger.charges(lease):
            identifier = self.id("invoice", charge.id)
            self.charges[identifier] = (lease, charge)
            by_charge[charge.id] = identifier
            self.invoices.append(
                {
                    "Id": identifier,
                    "CompanyNo": unit["CompanyNo"],
                    "DivisionNo": unit["DivisionNo"],
                    "InvoiceNo": f"F-{identifier:08d}",
                    "TenantId": charge.tenant,
                    "LeaseId": number,
                    "InvoiceDate": charge.issued.isoformat(),
                    "DueDate": charge.due.isoformat(),
                    "Amount": float(charge.amount),
                    "Balance": float(ledger.open_amount(charge)),
                    "Description": charge.description,
                }
            )
            self.statements.append(
                {
                    "Id": self.id("line", charge.id),
                    "TenantId": charge.tenant,
                    "LeaseId": number,
                    "InvoiceId": identifier,
                    "TransactionDate": _local(datetime.combine(charge.issued, time(), LOCAL)),
                    "TransactionType": "F",
                    "Amount": float(charge.amount),
                    "Reference": f"F-{identifier:08d}",
                }
            )
        for payment in ledger.payments(lease):
            if payment.status == "completed":
                self.statements.append(
                    {
                        "Id": self.id("line", payment.id),
                        "TenantId": payment.tenant,
                        "LeaseId": number,
                        "InvoiceId": by_charge[payment.charge],
                        "TransactionDate": _local(payment.paid_at),
                        "TransactionType": "P",
                        "Amount": float(payment.amount),
                        "Reference": payment.method,
                    }
                )
        owed, overdue = ledger.owed(lease)
        self.receivables.append(
            {
                "Id": number,
                "LeaseId": number,
                "TenantId": min(self.tables.books.tenants(lease)),
                "Balance": float(owed),
                "PastDue": float(overdue),
            }
        )
        for change in self.tables.books.rent_changes(lease):
            self.price_changes.append(
                {
                    "Id": self.id("price", change.number),
                    "LeaseId": number,
                    "EffectiveDate": change.effective.isoformat(),
                    "Amount": change.rent,
                }
            )
        if lease.end >= today:
            for row in self.tables.leases:
                if row["Id"] == number:
                    row.update(self.tables.lease_row(lease))


def _local(moment: datetime) -> str:
    """As ASP.NET writes a DateTimeOffset: local time with its offset."""
    return moment.astimezone(LOCAL).isoformat()


def _place(row: Row) -> tuple[Any, Any, str]:
    return row["CompanyNo"], row["DivisionNo"], _code(row["BuildingCode"])


def references(world: World) -> dict[tuple[str, int], str]:
    """Primmo's ids are the world's: its landlords, buildings, units, and present tenants."""
    mine = {b.id for b in world.buildings_of("primmo")}
    units = {u.id for u in world.units if u.building_id in mine}
    found = {("building", building_id): f"primmo:{building_id}" for building_id in mine}
    found.update({("unit", unit_id): f"primmo:{unit_id}" for unit_id in units})
    found.update({("landlord", one.id): f"primmo:{one.id}" for one in world.landlords_of("primmo")})
    found.update(
        {
            ("tenant", t.id): f"primmo:{t.id}"
            for t in world.tenants
            if t.unit_id in units and world.is_current(t)
        }
    )
    return found


MAX_QUERY_BYTES = 2048
"""The longest query string the server takes: IIS's default (`maxQueryString`), which
Primmo, an ASP.NET service, may well run behind."""


def create_app(world: World, state: ProviderState) -> ASGIApp:
    state.token_paths = frozenset({"/api/Token"})
    state.server = Server(max_page_size=PAGE_SIZE)
    return served(state, _Service(world, state).routes(), middleware=[Middleware(_QueryLimit)])


class _QueryLimit:
    """A longer query string is refused before anything reads it, with the standard's 414
    (Kestrel's answer; IIS's is a 404.15), so a client that batches keys into one filter
    must cut its batches to what the server takes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and len(scope.get("query_string", b"")) > MAX_QUERY_BYTES:
            response = _error(
                414, "UriTooLong", f"The query string is over {MAX_QUERY_BYTES} bytes."
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class _Service:
    """One Primmo: its tables, its webhook subscribers, and a handler for each route."""

    def __init__(self, world: World, state: ProviderState) -> None:
        self.world = world
        self.state = state
        self.tables = state.records = _Tables(world, state.clock)
        self.units = EntitySet.typed(_TYPES["Unit"])
        units_of = Navigation(self.units, self.tables.units_of, "Units", _PLACE_KEY)
        self.buildings = EntitySet.typed(_TYPES["Building"], {"Units": units_of})
        self.tenants = EntitySet.typed(_TYPES["Tenant"])
        self.leases = EntitySet.typed(_TYPES["Lease"])
        self.divisions = EntitySet.typed(_TYPES["LedgerDivision"])
        self.invoices = EntitySet.typed(_TYPES["Invoice"])
        self.statements = EntitySet.typed(_TYPES["FinancialStatement"])
        self.receivables = EntitySet.typed(_TYPES["AccountReceivable"])
        self.price_changes = EntitySet.typed(_TYPES["LeasePriceChange"])
        self.books = self.tables.books
        self.subscribers: dict[str, dict[str, Any]] = {}
        self.outbox = state.outbox = Outbox(state)
        self.honours_prefer = True
        """Whether an update answers the record when asked to (`Prefer: return=representation`):
        a preference is a hint, and a server may answer 204 whatever was preferred."""

    def routes(self) -> list[Route]:
        bearer, odata = self.bearer, self.odata
        sets = {
            "Buildings": (self.tables.buildings, self.buildings),
            "Units": (self.tables.units, self.units),
            "Tenants": (self.tables.tenants, self.tenants),
            "Leases": (self.tables.leases, self.leases),
            "LedgerDivisions": (self.tables.divisions, self.divisions),
        }
        routes = [
            Route("/api/Token", self.token, methods=["POST"]),
            Route("/api/$metadata", _odata(_XML, metadata), methods=["GET"]),
            Route("/api/Units/ForRent", odata(self.units_for_rent), methods=["GET"]),
            Route(
                "/api/Units/ForRent/$count",
                odata(self.units_for_rent_count, _TEXT),
                methods=["GET"],
            ),
            Route("/api/Tenants", odata(self.tenants_endpoint), methods=["GET", "POST"]),
            Route("/_sandbox/odata", self.configure, methods=["POST"]),
            Route("/_sandbox/modules", self.license, methods=["POST"]),
            Route("/api/subscribe", bearer(self.subscribe), methods=["GET", "POST"]),
            Route("/api/unsubscribe", bearer(self.unsubscribe), methods=["POST"]),
            Route("/_sandbox/tenants/{id:int}", self.edit_tenant, methods=["POST"]),
            *_ServiceCalls(self).routes(),
        ]
        money: dict[str, tuple[Callable[[], list[Row]], EntitySet]] = {
            "Invoices": (lambda: self.tables.money().invoices, self.invoices),
            "FinancialStatements": (lambda: self.tables.money().statements, self.statements),
            "AccountsReceivable": (lambda: self.tables.money().receivables, self.receivables),
            "LeasePriceChanges": (lambda: self.tables.money().price_changes, self.price_changes),
        }
        writes = {"Invoices": self.create_invoice, "LeasePriceChanges": self.create_price_change}
        for path, (read, description) in money.items():
            listed = self.licensed(path, self.listed_now(read, description))
            write = writes.get(path)
            routes += [
                Route(
                    f"/api/{path}",
                    odata(self.either(listed, write) if write else listed),
                    methods=["GET", "POST"] if write else ["GET"],
                ),
                Route(
                    f"/api/{path}/$count",
                    odata(self.licensed(path, self.counted_now(read, description)), _TEXT),
                    methods=["GET"],
                ),
            ]
        for path, (rows, description) in sets.items():
            if path != "Tenants":
                routes.append(
                    Route(f"/api/{path}", odata(self.listed(rows, description)), methods=["GET"])
                )
            routes.append(
                Route(
                    f"/api/{path}/$count",
                    odata(self.counted(rows, description), _TEXT),
                    methods=["GET"],
                )
            )
        return routes

    def issue_token(self) -> str:
        now = self.state.clock()
        claims = {
            "sub": CREDENTIALS["username"],
            "iat": int(now),
            "exp": int(now + TOKEN_LIFETIME.total_seconds()),
            "gen": self.state.token_generation,
        }
        return jwt.encode(claims, _SIGNING_KEY, algorithm="HS256")

    def authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        try:
            claims = jwt.decode(
                token, _SIGNING_KEY, algorithms=["HS256"], options={"verify_exp": False}
            )
        except jwt.PyJWTError:
            return False
        state = self.state
        return bool(claims.get("gen") == state.token_generation and claims["exp"] > state.clock())

    def odata(self, handler: Handler, produces: str = _JSON) -> Handler:
        """A data route of the OData service (`_odata`), behind the token check, which comes
        first: ASP.NET authenticates in its middleware, before the OData formatter negotiates
        anything, so a request wrong on both is a 401, not a 406."""
        return self.bearer(_odata(produces, handler))

    def bearer(self, handler: Handler) -> Handler:
        """`handler` behind the token check every data route makes first."""

        async def checked(request: Request) -> Response:
            if not self.authorized(request):
                return _error(401, "Unauthorized", "The bearer token is missing or expired.")
            return await handler(request)

        return checked

    async def token(self, request: Request) -> Response:
        if request.headers.get("x-api-key") != CREDENTIALS["api_key"]:
            return _error(401, "Unauthorized", "The x-api-key header is missing or unknown.")
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _error(400, "BadRequest", "The body must be JSON with UserName and Password.")
        if not isinstance(body, dict) or (body.get("UserName"), body.get("Password")) != (
            CREDENTIALS["username"],
            CREDENTIALS["password"],
        ):
            return _error(401, "Unauthorized", "Unknown user name or password.")
        return JSONResponse(self.issue_token())

    def listed(self, rows: list[Row], description: EntitySet) -> Handler:
        async def endpoint(request: Request) -> Response:
            return _query(request, rows, description, self.state.server)

        return endpoint

    def listed_now(self, read: Callable[[], list[Row]], description: EntitySet) -> Handler:
        """A set laid out on first use: its rows are read when asked for, not at start."""

        async def endpoint(request: Request) -> Response:
            return _query(request, read(), description, self.state.server)

        return endpoint

    def counted_now(self, read: Callable[[], list[Row]], description: EntitySet) -> Handler:
        async def endpoint(request: Request) -> Response:
            return _count(request, read(), description, self.state.server)

        return endpoint

    def licensed(self, path: str, handler: Handler) -> Handler:
        """A set of a module the client may not have bought: 403 until it has (FAQ R8)."""

        async def endpoint(request: Request) -> Response:
            if self.tables.modules.get(path, True):
                return await handler(request)
            return _error(403, "Forbidden", f"The client has not acquired the {path} module.")

        return endpoint

    @staticmethod
    def either(read: Handler, write: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            return await (write if request.method == "POST" else read)(request)

        return endpoint

    async def license(self, request: Request) -> Response:
        """Sandbox admin: the client buys a module (`?FinancialStatements=true`), or loses it."""
        for name, value in request.query_params.items():
            if name not in self.tables.modules or value not in ("true", "false"):
                return JSONResponse(
                    {"error": f"modules: {', '.join(self.tables.modules)}; true or false"},
                    status_code=400,
                )
            self.tables.modules[name] = value == "true"
        return JSONResponse(self.tables.modules)

    async def posted(
        self,
        request: Request,
        kind: str,
        required: Collection[str],
        optional: Collection[str] = (),
    ) -> Row | Response:
        """A row of entity type `kind` posted, as Primmo checks one: each value of its
        property's EDM type (the OData layer's 400), then (FAQ R6) the properties required
        (neither null nor empty) and no others, or its 400 naming them."""
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _error(400, "BadRequest", "The body must be a JSON object.")
        mistyped = _mistyped(body, _TYPES[kind], _ieee754(request))
        if mistyped:
            return _error(400, "BadRequest", mistyped)
        missing = [name for name in required if body.get(name) in (None, "")]
        if missing:
            return _error(400, "ValidationError", f"Required: {', '.join(missing)}.")
        unknown = sorted(set(body) - set(required) - set(optional))
        if unknown:
            return _error(400, "ValidationError", f"Unknown property: {', '.join(unknown)}.")
        return body

    async def for_lease(
        self,
        request: Request,
        kind: str,
        required: tuple[str, ...],
        optional: tuple[str, ...] = (),
    ) -> tuple[Row, Lease] | Response:
        """A row posted about a lease, checked as Primmo checks it (FAQ R6): the properties
        `posted` checks, `Amount` a positive amount of cents, dates as dates (400, naming the
        property), a lease it has that has not ended (400, 409)."""
        body = await self.posted(request, kind, required, optional)
        if isinstance(body, Response):
            return body
        dated = [name for name in required if name.endswith("Date")]
        problem = _amount_problem(body, "Amount") or next(
            (found for name in dated if (found := _date_problem(body, name))), None
        )
        if problem:
            return _error(400, "ValidationError", problem)
        number = body.get("LeaseId")
        lease = self.books.lease(number) if isinstance(number, int) else None
        if lease is None or lease.unit_id not in self.tables.units_by_id:
            return _error(400, "ValidationError", "LeaseId names no lease.")
        if lease.end < self.world.today:
            return _error(409, "Conflict", "The lease has ended.")
        return body, lease

    async def create_invoice(self, request: Request) -> Response:
        posted = await self.for_lease(
            request, "Invoice", ("LeaseId", "DueDate", "Amount"), ("Description",)
        )
        if isinstance(posted, Response):
            return posted
        body, lease = posted
        charge = self.tables.ledger.bill(
            lease,
            Decimal(str(body["Amount"])),
            date.fromisoformat(body["DueDate"]),
            str(body.get("Description") or "Facture"),
        )
        money = self.tables.money()
        money.file(lease)
        row = next(r for r in money.invoices if r["Id"] == money.id("invoice", charge.id))
        self.announce("Invoice", int(row["Id"]), 3)
        return _written(request, row, "Invoice", 201)

    async def create_price_change(self, request: Request) -> Response:
        posted = await self.for_lease(
            request, "LeasePriceChange", ("LeaseId", "EffectiveDate", "Amount")
        )
        if isinstance(posted, Response):
            return posted
        body, lease = posted
        effective = date.fromisoformat(body["EffectiveDate"])
        if not lease.start <= effective <= lease.end:
            return _error(400, "ValidationError", "EffectiveDate is outside the lease.")
        if any(change.effective == effective for change in self.books.rent_changes(lease)):
            return _error(409, "Conflict", f"A price change already takes effect on {effective}.")
        change = self.books.record_rent_change(lease, effective, int(Decimal(str(body["Amount"]))))
        money = self.tables.money()
        money.file(lease)
        row = next(r for r in money.price_changes if r["Id"] == money.id("price", change.number))
        return _written(request, row, "LeasePriceChange", 201)

    def counted(self, rows: list[Row], description: EntitySet) -> Handler:
        async def endpoint(request: Request) -> Response:
            return _count(request, rows, description, self.state.server)

        return endpoint

    async def configure(self, request: Request) -> Response:
        """Sandbox admin: the knobs of `odata.Server`, to behave like another real server."""
        params = request.query_params
        server = self.state.server
        try:
            if "max_page_size" in params:
                size = int(params["max_page_size"])
                if size < 1:
                    raise ValueError(size)
                server = replace(server, max_page_size=size)
            if "collation" in params:
                server = replace(server, collation=COLLATIONS[params["collation"]])
            if "counts" in params:
                server = replace(server, counts=params["counts"] == "true")
            prefer = _PREFER[params["prefer"]] if "prefer" in params else self.honours_prefer
        except (ValueError, KeyError):
            known = ", ".join(sorted(COLLATIONS))
            return JSONResponse(
                {
                    "error": f"max_page_size is a positive integer, collation one of {known}, "
                    "prefer honoured or ignored"
                },
                status_code=400,
            )
        self.state.server = server
        self.honours_prefer = prefer
        return Response(status_code=204)

    def free_units(self, request: Request) -> list[Row] | Response:
        """The units free for the whole of `StartDate` to `EndDate`, or why there are none."""
        try:
            dates = dict(query_pairs(request.scope["query_string"]))
            start = date.fromisoformat(dates["StartDate"])
            end = date.fromisoformat(dates["EndDate"])
        except (KeyError, ValueError, ODataError):
            return _error(400, "BadRequest", "StartDate and EndDate are required ISO dates.")
        if end < start:
            return _error(400, "BadRequest", "EndDate is before StartDate.")
        return [
            unit for unit in self.tables.units if self.world.is_free(int(unit["Id"]), start, end)
        ]

    async def units_for_rent(self, request: Request) -> Response:
        free = self.free_units(request)
        if isinstance(free, Response):
            return free
        return _query(request, free, self.units, self.state.server)

    async def units_for_rent_count(self, request: Request) -> Response:
        free = self.free_units(request)
        if isinstance(free, Response):
            return free
        return _count(request, free, self.units, self.state.server)

    async def tenants_endpoint(self, request: Request) -> Response:
        if request.method == "POST":
            return await self.create_tenant(request)
        return _query(request, self.tables.tenants, self.tenants, self.state.server)

    async def create_tenant(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _error(400, "BadRequest", "The body must be a JSON object.")
        if not isinstance(body, dict):
            return _error(400, "BadRequest", "The body must be a JSON object.")
        mistyped = _mistyped(body, _TYPES["Tenant"], _ieee754(request))
        if mistyped:
            return _error(400, "BadRequest", mistyped)
        missing = [name for name in _REQUIRED_TENANT_FIELDS if body.get(name) in (None, "")]
        if missing:
            return _error(400, "ValidationError", f"Required: {', '.join(missing)}.")
        unknown = sorted(set(body) - set(_TYPES["Tenant"]) - {"Id"})
        if unknown:
            return _error(400, "ValidationError", f"Unknown property: {', '.join(unknown)}.")
        problem = _tenant_problem(body)
        if problem:
            return _error(400, "ValidationError", problem)
        unit_row = self.tables.find_unit(body, self.state.server.collation)
        if unit_row is None:
            return _error(
                400,
                "ValidationError",
                "No unit matches CompanyNo, DivisionNo, BuildingCode and UnitCode.",
            )
        created = self.tables.add_tenant(body, unit_row)
        self.announce("Tenant", int(created["Id"]), 3, json.dumps({"unitId": unit_row["Id"]}))
        return _written(request, created, "Tenant", 201)

    def announce(self, entity: str, identifier: int, status: int, extra: str | None = None) -> None:
        """Primmo's delivery: `{Id, Entity, Status (1 UPDATE, 2 DELETE, 3 INSERT), ...}`."""
        subscription = self.subscribers.get(entity.lower())
        if subscription is None:
            return
        body = json.dumps(
            {
                "Id": identifier,
                "Entity": entity,
                "Status": status,
                "DatabaseName": "SANDBOX/PRIMMO",
                "AdditionalInformationJson": extra,
            }
        ).encode()
        self.outbox.send(subscription["url"], body, subscription["headers"])

    def subscribed(self) -> Response:
        return JSONResponse(sorted({s["entity"] for s in self.subscribers.values()}))

    async def subscribe(self, request: Request) -> Response:
        if request.method == "GET":
            return self.subscribed()
        try:
            body = json.loads(await request.body())
            url, entities = body["ResponseUrl"], body["Entities"]
        except (ValueError, KeyError, TypeError):
            return _error(400, "BadRequest", "ResponseUrl and Entities are required.")
        if not isinstance(url, str) or not isinstance(entities, list):
            return _error(400, "BadRequest", "ResponseUrl is a URL, Entities a list.")
        headers = {}
        for pair in (body.get("ResponseHeaders") or "").split(";"):
            name, sep, value = pair.partition(":")
            if sep and name.strip():
                headers[name.strip()] = value.strip()
        for entity in entities:
            name = str(entity)
            self.subscribers[name.lower()] = {
                "entity": name[:1].upper() + name[1:],
                "url": url,
                "headers": headers,
            }
        return self.subscribed()

    async def unsubscribe(self, request: Request) -> Response:
        try:
            entities = json.loads(await request.body())
        except ValueError:
            entities = None
        if not isinstance(entities, list):
            return _error(400, "BadRequest", "The body is a list of entities.")
        for entity in entities:
            self.subscribers.pop(str(entity).lower(), None)
        return self.subscribed()

    async def edit_tenant(self, request: Request) -> Response:
        """Sandbox admin: someone edits a tenant in Primmo itself (an UPDATE webhook follows)."""
        identifier = int(request.path_params["id"])
        row = next((t for t in self.tables.tenants if t["Id"] == identifier), None)
        if row is None:
            return _error(404, "NotFound", "No such tenant.")
        try:
            changes = json.loads(await request.body())
        except ValueError:
            changes = None
        if not isinstance(changes, dict) or not set(changes) <= {"LastName", "FirstName"}:
            return _error(400, "BadRequest", "Give LastName and/or FirstName.")
        row.update(changes)
        self.announce("Tenant", identifier, 1)
        return JSONResponse(row)


_CALL_STATUSES = {"open": "O ", "assigned": "A ", "completed": "T "}
"""A service call's status codes (assumed), padded as Primmo's other codes: O (ouvert), A
(assigné), T (terminé)."""
_DETAIL_STATUSES = {"scheduled": "P ", "in_progress": "E ", "completed": "T ", "cancelled": "X "}
"""A detail's: P (planifié), E (en cours), T (terminé), X (annulé)."""
_PRIORITY_CODES = {"urgent": 1, "high": 2, "normal": 3, "low": 4}
"""Priority as a number, 1 the most urgent (assumed)."""
_PROPERTIES = {
    "unit": "UnitCode",
    "tenant": "TenantId",
    "vendor": "SupplierId",
    "description": "Description",
    "priority": "Priority",
    "cost": "Amount",
}
"""The workshop's names for what it refuses, as Primmo's messages name the properties."""
_NEW_CALL = {"CompanyNo", "DivisionNo", "BuildingCode", "UnitCode", "Description"}
_NEW_DETAIL = {"ServiceCallId", "SupplierId", "Description"}


def _eastern(moment: datetime | None) -> str | None:
    """A timestamp as Primmo's server in Québec writes a DateTimeOffset: local time with its
    offset, -04:00 in summer (second Sunday of March to first Sunday of November), -05:00
    otherwise."""
    if moment is None:
        return None
    utc = moment.astimezone(UTC)
    march, november = date(utc.year, 3, 8), date(utc.year, 11, 1)
    start = datetime.combine(march + timedelta(days=(6 - march.weekday()) % 7), time(7), UTC)
    end = datetime.combine(november + timedelta(days=(6 - november.weekday()) % 7), time(6), UTC)
    hours = -4 if start <= utc < end else -5
    return utc.astimezone(timezone(timedelta(hours=hours))).isoformat()


def _day(value: Any) -> date | Invalid | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return Invalid("ScheduledDate", "ScheduledDate is an ISO date.")


_PREFER = {"honoured": True, "ignored": False}


class _ServiceCalls:
    """`api/ServiceCalls`, `api/ServiceCallDetails` and `api/Suppliers` over the workshop's
    books: OData reads like every set, `POST` to create, `PATCH <set>(<Id>)` to move a record
    along its flow (OData's update; `Prefer: return=representation` answers the record)."""

    def __init__(self, service: _Service) -> None:
        self.service = service
        self.tables = service.tables
        self.workshop = service.tables.workshop
        self.calls = EntitySet.typed(_TYPES["ServiceCall"])
        self.details = EntitySet.typed(_TYPES["ServiceCallDetail"])
        self.suppliers = EntitySet.typed(_TYPES["Supplier"])

    def call_row(self, ticket: Ticket, current: set[int] | None = None) -> Row:
        """`current`: the tenants Primmo lists, when rows are made for many calls at once."""
        unit = self.tables.units_by_id[ticket.unit_id]
        tenant = ticket.tenant_id
        if current is None:
            current = {row["Id"] for row in self.tables.tenants}
        return {
            "Id": ticket.id,
            **{name: unit[name] for name in (*_PLACE_KEY, "UnitCode")},
            # Primmo keeps no former tenants: a call they made no longer names them.
            "TenantId": tenant if tenant in current else None,
            "SupplierId": ticket.vendor_id,
            "Description": ticket.words(french=True)[1],
            "Priority": _PRIORITY_CODES[ticket.priority],
            "Status": _CALL_STATUSES[ticket.status],
            "RequestDate": _eastern(ticket.reported),
            "ScheduledDate": ticket.scheduled.isoformat() if ticket.scheduled else None,
            "CompletedDate": _eastern(ticket.completed),
        }

    def detail_row(self, job: Job) -> Row:
        ticket = self.workshop.requests[job.request_id]
        unit = self.tables.units_by_id[ticket.unit_id]
        return {
            "Id": job.id,
            "ServiceCallId": job.request_id,
            **{name: unit[name] for name in (*_PLACE_KEY, "UnitCode")},
            "SupplierId": job.vendor_id,
            "Description": job.words(french=True),
            "Status": _DETAIL_STATUSES[job.status],
            "ScheduledDate": job.scheduled.isoformat(),
            "StartDate": _eastern(job.started),
            "EndDate": _eastern(job.completed),
            "Amount": float(job.cost) if job.cost is not None else None,
        }

    def rows(self, name: str) -> tuple[list[Row], EntitySet]:
        if name == "ServiceCalls":
            current = {row["Id"] for row in self.tables.tenants}
            tickets = self.workshop.requests.values()
            return [self.call_row(ticket, current) for ticket in tickets], self.calls
        if name == "ServiceCallDetails":
            return [self.detail_row(job) for job in self.workshop.jobs.values()], self.details
        suppliers = [
            {"Id": v.id, "Name": v.name, "Trade": v.trade, "Email": v.email, "Phone": v.phone}
            for v in self.workshop.vendors.values()
        ]
        return suppliers, self.suppliers

    def reader(self, name: str, count: bool = False) -> Handler:
        async def endpoint(request: Request) -> Response:
            rows, description = self.rows(name)
            server = self.service.state.server
            if count:
                return _count(request, rows, description, server)
            return _query(request, rows, description, server)

        return endpoint

    def refused(self, error: Exception) -> Response:
        """The workshop's refusal in Primmo's words: 404, 409 (assumed: a step that does not
        fit the record's status), or 400 with a message naming the property, as its own
        validation does (FAQ R6)."""
        if isinstance(error, Missing):
            return _error(404, "NotFound", str(error))
        if isinstance(error, Clash):
            return _error(409, "Conflict", str(error))
        assert isinstance(error, Invalid)
        named = _PROPERTIES.get(error.field, error.field)
        return _error(400, "ValidationError", f"{named}: {error}")

    async def body(
        self, request: Request, kind: str, allowed: set[str], required: set[str]
    ) -> Row | Response:
        return await self.service.posted(request, kind, sorted(required), allowed - required)

    def answered(self, request: Request, row: Row, kind: str) -> Response:
        """OData's update answers 204 unless the client prefers the record back, and the
        server honours preferences."""
        preferred = "return=representation" in request.headers.get("prefer", "")
        if not (preferred and self.service.honours_prefer):
            return Response(status_code=204)
        return _written(request, row, kind, 200)

    async def create_call(self, request: Request) -> Response:
        allowed = {*_NEW_CALL, "Priority", "TenantId"}
        body = await self.body(request, "ServiceCall", allowed, _NEW_CALL)
        if isinstance(body, Response):
            return body
        unit = self.tables.find_unit(body, self.service.state.server.collation)
        priority = {code: word for word, code in _PRIORITY_CODES.items()}.get(
            body.get("Priority", 3)
        )
        tenant = body.get("TenantId")
        try:
            if unit is None:
                raise Invalid("unit", "No unit matches CompanyNo, DivisionNo and the codes.")
            if priority is None:
                raise Invalid("priority", "Priority is 1 (urgent) to 4 (low).")
            if tenant is not None and not isinstance(tenant, int):
                raise Invalid("tenant", "TenantId is a tenant's Id.")
            ticket = self.workshop.open(
                int(unit["Id"]), str(body["Description"]), priority=priority, tenant_id=tenant
            )
        except Invalid as error:
            return self.refused(error)
        row = self.call_row(ticket)
        self.service.announce("ServiceCall", ticket.id, 3)
        return _written(request, row, "ServiceCall", 201)

    async def update_call(self, request: Request) -> Response:
        body = await self.body(
            request, "ServiceCall", {"SupplierId", "Status", "ScheduledDate"}, {"Status"}
        )
        if isinstance(body, Response):
            return body
        number = request.path_params["id"]
        status = str(body["Status"]).strip()
        day = _day(body.get("ScheduledDate"))
        try:
            if isinstance(day, Invalid):
                raise day
            if status == "A":
                ticket = self.workshop.assign(number, body.get("SupplierId"), day)
            elif status == "T" and set(body) == {"Status"}:
                ticket = self.workshop.complete(number, None)
            else:
                raise Invalid("Status", "Status is A (with SupplierId) or T (alone).")
        except (Missing, Clash, Invalid) as error:
            return self.refused(error)
        self.service.announce("ServiceCall", ticket.id, 1)
        return self.answered(request, self.call_row(ticket), "ServiceCall")

    async def create_detail(self, request: Request) -> Response:
        allowed = {*_NEW_DETAIL, "ScheduledDate", "Amount"}
        body = await self.body(request, "ServiceCallDetail", allowed, _NEW_DETAIL)
        if isinstance(body, Response):
            return body
        call, amount = body.get("ServiceCallId"), body.get("Amount")
        day = _day(body.get("ScheduledDate"))
        try:
            if isinstance(day, Invalid):
                raise day
            if not isinstance(call, int) or call not in self.workshop.requests:
                raise Invalid("ServiceCallId", "No such service call.")
            if amount is not None and not isinstance(amount, int | float):
                raise Invalid("cost", "Amount is a number.")
            job = self.workshop.add_job(
                call,
                body.get("SupplierId"),
                str(body["Description"]),
                day,
                Decimal(str(amount)) if amount is not None else None,
            )
        except (Clash, Invalid) as error:
            return self.refused(error)
        self.service.announce(
            "ServiceCallDetail", job.id, 3, json.dumps({"serviceCallId": job.request_id})
        )
        return _written(request, self.detail_row(job), "ServiceCallDetail", 201)

    async def update_detail(self, request: Request) -> Response:
        body = await self.body(request, "ServiceCallDetail", {"Status", "Amount"}, {"Status"})
        if isinstance(body, Response):
            return body
        number, amount = request.path_params["id"], body.get("Amount")
        status = str(body["Status"]).strip()
        try:
            if amount is not None and (status != "T" or not isinstance(amount, int | float)):
                raise Invalid("cost", "Amount is a number, given when the work is done (T).")
            if status == "E":
                job = self.workshop.start(number)
            elif status == "T":
                cost = Decimal(str(amount)) if amount is not None else None
                job = self.workshop.finish(number, cost)
            elif status == "X":
                job = self.workshop.cancel(number, None)
            else:
                raise Invalid("Status", "Status is E (started), T (done) or X (cancelled).")
        except (Missing, Clash, Invalid) as error:
            return self.refused(error)
        self.service.announce(
            "ServiceCallDetail", job.id, 1, json.dumps({"serviceCallId": job.request_id})
        )
        return self.answered(request, self.detail_row(job), "ServiceCallDetail")

    def routes(self) -> list[Route]:
        odata = self.service.odata
        routes = [
            Route("/api/ServiceCalls", odata(self.create_call), methods=["POST"]),
            Route("/api/ServiceCalls({id:int})", odata(self.update_call), methods=["PATCH"]),
            Route("/api/ServiceCallDetails", odata(self.create_detail), methods=["POST"]),
            Route(
                "/api/ServiceCallDetails({id:int})", odata(self.update_detail), methods=["PATCH"]
            ),
        ]
        for name in ("ServiceCalls", "ServiceCallDetails", "Suppliers"):
            routes.append(Route(f"/api/{name}", odata(self.reader(name)), methods=["GET"]))
            counted = odata(self.reader(name, count=True), _TEXT)
            routes.append(Route(f"/api/{name}/$count", counted, methods=["GET"]))
        return routes


async def metadata(_: Request) -> Response:
    return Response(METADATA, media_type="application/xml")


def _amount_problem(body: Row, name: str) -> str | None:
    value = body.get(name)
    try:
        amount = Decimal(str(value)) if isinstance(value, int | float | str) else None
    except ArithmeticError:
        amount = None
    if amount is None or isinstance(value, bool) or not amount.is_finite() or amount <= 0:
        return f"{name} must be a positive amount."
    if not isinstance(places := amount.as_tuple().exponent, int) or places < -2:
        return f"{name} has at most 2 decimal places."
    return None


def _date_problem(body: Row, name: str) -> str | None:
    try:
        date.fromisoformat(str(body.get(name)))
    except ValueError:
        return f"{name} must be a date (YYYY-MM-DD)."
    return None


def _query(request: Request, rows: list[Row], description: EntitySet, server: Server) -> Response:
    root = str(request.url.replace(query="")).rsplit("/api/", 1)[0] + "/api"
    try:
        pairs = query_pairs(request.scope["query_string"])
        answer = evaluate(rows, parse_options(pairs), description, replace(server, root=root))
    except ODataError as error:
        return _error(error.status, error.code, error.message)
    path = request.url.path.rsplit("/api/", 1)[1]
    chosen = _format(request)
    body: dict[str, Any] = {}
    if chosen.metadata:
        # Absolute, as ASP.NET writes it: next links resolve against the context URL, and a
        # relative one read below `Units/ForRent` would lead them to `Units/Units/ForRent`.
        body["@odata.context"] = f"{root}/$metadata#{path.split('/')[0]}"
    if answer.total is not None:
        body["@odata.count"] = str(answer.total) if chosen.ieee754 else answer.total
    body["value"] = (
        [ieee754(row, description) for row in answer.rows] if chosen.ieee754 else answer.rows
    )
    if answer.skiptoken is not None:
        link = next_link(path, pairs, answer.skiptoken)
        # Without a context URL to read it against, a link is written whole.
        body["@odata.nextLink"] = link if chosen.metadata else f"{root}/{link}"
    return JSONResponse(body, media_type=chosen.media_type)


def _count(request: Request, rows: list[Row], description: EntitySet, server: Server) -> Response:
    """`<set>/$count`: the number of rows matching `$filter`, as plain text."""
    try:
        options = parse_count_options(query_pairs(request.scope["query_string"]))
        answer = evaluate(rows, options, description, replace(server, counts=True))
    except ODataError as error:
        return _error(error.status, error.code, error.message)
    return PlainTextResponse(str(answer.total))


def _odata(produces: str, handler: Handler) -> Handler:
    """A route of the OData service: a request in a version it does not speak, or accepting
    nothing it writes, is refused before `handler` runs (`odata.negotiate`), and every
    answer, refusals included, says `OData-Version` (OData 4.01 Part 1 §8.1.5)."""

    async def endpoint(request: Request) -> Response:
        try:
            request.state.format = negotiate(request.headers, produces)
        except ODataError as error:
            response = _error(error.status, error.code, error.message)
        else:
            response = await handler(request)
        response.headers["OData-Version"] = VERSION
        return response

    return endpoint


def _format(request: Request) -> Format:
    chosen: Format = getattr(request.state, "format", Format())
    return chosen


def _written(request: Request, row: Row, kind: str, status: int) -> Response:
    """A row answered to a write, in the format the request's `Accept` chose."""
    chosen = _format(request)
    body = ieee754(row, EntitySet.typed(_TYPES[kind])) if chosen.ieee754 else row
    return JSONResponse(body, status_code=status, media_type=chosen.media_type)


def _error(status: int, code: str, message: str) -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)
