"""Primmo (HApi), an OData v4 provider, as its document describes it.

Tokens come from `POST /api/Token` (header `x-api-key`, body `UserName` and
`Password`), live 24 hours and cannot be refreshed. Entity sets answer
`{"value": [...]}` and honour the OData options. The data is as dirty as the
document shows: building codes padded on the right to 10, unit codes with a
leading space, occupancy codes padded (`"V "`), `TenantNo` a float.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from gateway.sandbox.data import Lease, Tenant, World
from gateway.sandbox.odata import EntitySet, ODataError, Row, evaluate, parse_options
from gateway.sandbox.outbox import Outbox
from gateway.sandbox.server import ProviderState, admin_routes, counting

__all__ = ["CREDENTIALS", "create_app"]

TOKEN_LIFETIME = timedelta(hours=24)

CREDENTIALS = {
    "api_key": "sandbox-primmo-api-key",
    "username": "integrateur",
    "password": "sandbox-primmo-password",
    "webhook_secret": "sandbox-primmo-webhook-key",
}
"""The sandbox's only account; `gateway serve` without configuration logs in with it."""
_SIGNING_KEY = "primmo-sandbox-signing-key-not-a-secret"

_BUILDING = frozenset(
    {"Id", "CompanyNo", "DivisionNo", "BuildingCode", "Name", "CivicNoAndStreet", "City"}
)
_UNIT = frozenset(
    {
        "Id",
        "CompanyNo",
        "DivisionNo",
        "BuildingCode",
        "UnitCode",
        "OccupancyStatus",
        "HousingType",
        "NumberOfRooms",
    }
)
_TENANT = frozenset(
    {
        "Id",
        "CompanyNo",
        "DivisionNo",
        "TenantType",
        "TenantNo",
        "BuildingCode",
        "UnitCode",
        "LastName",
        "FirstName",
    }
)
_DIVISION = frozenset(
    {"Id", "CompanyNo", "DivisionNo", "Name", "CivicNoAndStreet", "City", "PostalCode"}
)
_REQUIRED_TENANT_FIELDS = ("CompanyNo", "DivisionNo", "BuildingCode", "UnitCode", "LastName")


def _code(value: Any) -> str:
    return str(value).rstrip() if value is not None else ""


class _Tables:
    """Primmo's rows, laid out from the shared world once, then kept up to date by writes."""

    def __init__(self, world: World) -> None:
        self.world = world
        landlords = {landlord.id: landlord for landlord in world.landlords}
        buildings = world.buildings_of("primmo")
        owners = {landlords[b.landlord_id].id for b in buildings}
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
            for landlord in world.landlords
            if landlord.id in owners
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
        for tenant in world.tenants:
            unit_row = units_by_id.get(tenant.unit_id)
            if unit_row is not None:
                self.tenants.append(self._tenant_row(tenant, unit_row))

    @staticmethod
    def _tenant_row(tenant: Tenant, unit_row: Row) -> Row:
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
        }

    def units_of(self, building: Row) -> list[Row]:
        return self.units_by_place.get(_place(building), [])

    def find_unit(self, body: Row) -> Row | None:
        key = (*_place(body), str(body["UnitCode"]).strip())
        for unit in self.units:
            if (*_place(unit), str(unit["UnitCode"]).strip()) == key:
                return unit
        return None

    def add_tenant(self, body: Row, unit_row: Row) -> Row:
        today = self.world.today
        tenant = Tenant(
            id=self.world.new_id(),
            unit_id=int(unit_row["Id"]),
            first_name=str(body.get("FirstName") or ""),
            last_name=str(body["LastName"]),
            email="",
            phone="",
            tenant_no=len(self.world.tenants) + 1,
            tenant_type=str(body.get("TenantType") or "D"),
            lease=Lease(int(unit_row["Id"]), today, today + timedelta(days=364), 0),
        )
        self.world.add_tenant(tenant)
        row = self._tenant_row(tenant, unit_row)
        self.tenants.append(row)
        return row


def _place(row: Row) -> tuple[Any, Any, str]:
    return row["CompanyNo"], row["DivisionNo"], _code(row["BuildingCode"])


def references(world: World) -> dict[tuple[str, int], str]:
    """Primmo's ids are the world's: buildings and tenants of its buildings."""
    mine = {b.id for b in world.buildings_of("primmo")}
    units = {u.id for u in world.units if u.building_id in mine}
    found = {("building", building_id): f"primmo:{building_id}" for building_id in mine}
    found.update({("tenant", t.id): f"primmo:{t.id}" for t in world.tenants if t.unit_id in units})
    return found


def create_app(world: World, state: ProviderState) -> ASGIApp:
    state.token_paths = frozenset({"/api/Token"})
    tables = _Tables(world)
    units_set = EntitySet(_UNIT)
    buildings_set = EntitySet(_BUILDING, {"Units": (units_set, tables.units_of)})
    tenants_set = EntitySet(_TENANT)
    divisions_set = EntitySet(_DIVISION)

    def issue_token() -> str:
        now = state.clock()
        claims = {
            "sub": CREDENTIALS["username"],
            "iat": int(now),
            "exp": int(now + TOKEN_LIFETIME.total_seconds()),
            "gen": state.token_generation,
        }
        return jwt.encode(claims, _SIGNING_KEY, algorithm="HS256")

    def authorized(request: Request) -> bool:
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
        return bool(claims.get("gen") == state.token_generation and claims["exp"] > state.clock())

    async def token(request: Request) -> Response:
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
        return JSONResponse(issue_token())

    def entity_set(rows: list[Row], description: EntitySet) -> Any:
        async def endpoint(request: Request) -> Response:
            if not authorized(request):
                return _error(401, "Unauthorized", "The bearer token is missing or expired.")
            return _query(request, rows, description)

        return endpoint

    async def units_for_rent(request: Request) -> Response:
        if not authorized(request):
            return _error(401, "Unauthorized", "The bearer token is missing or expired.")
        try:
            start = date.fromisoformat(request.query_params["StartDate"])
            end = date.fromisoformat(request.query_params["EndDate"])
        except (KeyError, ValueError):
            return _error(400, "BadRequest", "StartDate and EndDate are required ISO dates.")
        if end < start:
            return _error(400, "BadRequest", "EndDate is before StartDate.")
        free = [unit for unit in tables.units if world.is_free(int(unit["Id"]), start, end)]
        return _query(request, free, units_set)

    async def create_tenant(request: Request) -> Response:
        if not authorized(request):
            return _error(401, "Unauthorized", "The bearer token is missing or expired.")
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _error(400, "BadRequest", "The body must be a JSON object.")
        if not isinstance(body, dict):
            return _error(400, "BadRequest", "The body must be a JSON object.")
        missing = [name for name in _REQUIRED_TENANT_FIELDS if body.get(name) in (None, "")]
        if missing:
            return _error(400, "ValidationError", f"Required: {', '.join(missing)}.")
        unit_row = tables.find_unit(body)
        if unit_row is None:
            return _error(
                400,
                "ValidationError",
                "No unit matches CompanyNo, DivisionNo, BuildingCode and UnitCode.",
            )
        created = tables.add_tenant(body, unit_row)
        announce("Tenant", int(created["Id"]), 3, json.dumps({"unitId": unit_row["Id"]}))
        return JSONResponse(created, status_code=201)

    subscribers: dict[str, dict[str, Any]] = {}
    outbox = Outbox(state)
    state.outbox = outbox

    def announce(entity: str, identifier: int, status: int, extra: str | None = None) -> None:
        """Primmo's delivery: `{Id, Entity, Status (1 UPDATE, 2 DELETE, 3 INSERT), ...}`."""
        subscription = subscribers.get(entity.lower())
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
        outbox.send(subscription["url"], body, subscription["headers"])

    async def subscribe(request: Request) -> Response:
        if not authorized(request):
            return _error(401, "Unauthorized", "The bearer token is missing or expired.")
        if request.method == "GET":
            return JSONResponse(sorted({s["entity"] for s in subscribers.values()}))
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
            subscribers[name.lower()] = {
                "entity": name[:1].upper() + name[1:],
                "url": url,
                "headers": headers,
            }
        return JSONResponse(sorted({s["entity"] for s in subscribers.values()}))

    async def unsubscribe(request: Request) -> Response:
        if not authorized(request):
            return _error(401, "Unauthorized", "The bearer token is missing or expired.")
        try:
            entities = json.loads(await request.body())
        except ValueError:
            entities = None
        if not isinstance(entities, list):
            return _error(400, "BadRequest", "The body is a list of entities.")
        for entity in entities:
            subscribers.pop(str(entity).lower(), None)
        return JSONResponse(sorted({s["entity"] for s in subscribers.values()}))

    async def edit_tenant(request: Request) -> Response:
        """Sandbox admin: someone edits a tenant in Primmo itself (an UPDATE webhook follows)."""
        identifier = int(request.path_params["id"])
        row = next((t for t in tables.tenants if t["Id"] == identifier), None)
        if row is None:
            return _error(404, "NotFound", "No such tenant.")
        try:
            changes = json.loads(await request.body())
        except ValueError:
            changes = None
        if not isinstance(changes, dict) or not set(changes) <= {"LastName", "FirstName"}:
            return _error(400, "BadRequest", "Give LastName and/or FirstName.")
        row.update(changes)
        announce("Tenant", identifier, 1)
        return JSONResponse(row)

    async def forbidden(_: Request) -> Response:
        return _error(
            403, "Forbidden", "The client has not acquired the FinancialStatements module."
        )

    tenants = entity_set(tables.tenants, tenants_set)

    async def tenants_endpoint(request: Request) -> Response:
        if request.method == "POST":
            return await create_tenant(request)
        response: Response = await tenants(request)
        return response

    routes = [
        Route("/api/Token", token, methods=["POST"]),
        Route("/api/Buildings", entity_set(tables.buildings, buildings_set), methods=["GET"]),
        Route("/api/Units/ForRent", units_for_rent, methods=["GET"]),
        Route("/api/Units", entity_set(tables.units, units_set), methods=["GET"]),
        Route("/api/Tenants", tenants_endpoint, methods=["GET", "POST"]),
        Route("/api/LedgerDivisions", entity_set(tables.divisions, divisions_set), methods=["GET"]),
        Route("/api/FinancialStatements", forbidden, methods=["GET"]),
        Route("/api/subscribe", subscribe, methods=["GET", "POST"]),
        Route("/api/unsubscribe", unsubscribe, methods=["POST"]),
        Route("/_sandbox/tenants/{id:int}", edit_tenant, methods=["POST"]),
        *admin_routes(state),
    ]
    return counting(Starlette(routes=routes), state)


def _query(request: Request, rows: list[Row], description: EntitySet) -> Response:
    try:
        options = parse_options(request.query_params.multi_items())
        value, total = evaluate(rows, options, description)
    except ODataError as error:
        return _error(error.status, error.code, error.message)
    body: dict[str, Any] = {"value": value}
    if total is not None:
        body["@odata.count"] = total
    return JSONResponse(body)


def _error(status: int, code: str, message: str) -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)
