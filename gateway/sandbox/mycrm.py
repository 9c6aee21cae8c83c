"""MyCRM, a JSON REST CRM behind OAuth2 client credentials, as its document describes it.

`POST /auth/oauth/v1/token` with HTTP Basic of key:secret returns a 30-minute
bearer token and no refresh token. As in the document, the token endpoint is
on a host of its own (`create_auth_app`, served as `mycrm-auth` beside the
API). It is as strict as a standard OAuth2 server: the request is
form-encoded (RFC 6749 §4.4.2; the document's JSON body is refused with
`invalid_request` unless the `documented_token_request` knob is on), the
client authenticates with HTTP Basic of its form-urlencoded id and secret
(§2.3.1), and errors are §5.2's `{"error", "error_description"}`.

Single objects come as `{"landlord": {...}}`, lists as `{"count", "page",
"per_page", "landlords": [...]}`, errors as `{"<resource>": "ResourceNotFound",
"messages": [...]}`. `fields=` restricts the fields, `X-MyCRM-Expand-Data: true`
returns related objects (landlord, agent) in full instead of their ids, and
`X-MyCRM-API-Warning` carries warnings (the document's own `field=` spelling is
accepted but deprecated).

Resources (assumed, as PROVIDERS.md records): `/landlords`, `/properties`
(listings, each one unit with its `landlord` and `agent`, a `price` and its `currency`,
assumed), `/users` (agents).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from gateway.sandbox.data import World
from gateway.sandbox.server import (
    Handler,
    ProviderState,
    counting,
    mounted,
    page_of,
    read_rs256,
    served,
    sign_rs256,
)

__all__ = [
    "AUTH_HOST",
    "CREDENTIALS",
    "ERRORS",
    "Admits",
    "create_api",
    "create_app",
    "create_auth_app",
    "gateway_options",
]

CREDENTIALS = {"api_key": "sandbox-mycrm-key", "api_secret": "sandbox-mycrm-secret"}
"""The sandbox's only client; `gateway serve` without configuration uses it."""

ERRORS = {
    "ResourceNotFound": (404, "Missing resource."),
    "InvalidRequest": (400, "The request is malformed (missing fields, bad format fields)."),
    "MethodNotAllowed": (400, "Bad HTTP method."),
    "InternalError": (500, "API is not able to describe the current error."),
    "AuthenticationError": (401, "Authentication is required, either it's missing or invalid."),
    "AccessDenied": (403, "Not enough permission."),
    "InvalidAction": (400, "The request contains invalid action."),
}
"""The document's error codes, with the status its HTTP code table pairs with each (it names
no 405, so a bad method is a 400, "the request has failed"); `/_sandbox/refuse` sends any."""

AUTH_HOST = "mycrm-auth"
"""The token endpoint's host as the sandbox names it: the document puts it on another host
(auth.propertyfinder.com) than the API (api-v2.mycrm.com)."""
TOKEN_PATH = "/auth/oauth/v1/token"
TOKEN_LIFETIME = 1800.0
SCOPES = frozenset({"openid"})
AUDIENCE = "mycrm-api"
MAX_PER_PAGE = 100
Row = dict[str, Any]
Admits = Callable[[Request], bool]
"""Whether a request's bearer token opens the API."""
_AGENTS = [
    ("Sylvie", "Paquette"),
    ("Hugo", "Lemieux"),
    ("Karine", "Dubé"),
    ("Mathieu", "Caron"),
    ("Élise", "Boucher"),
    ("Samuel", "Leblanc"),
    ("Amélie", "Girard"),
    ("Vincent", "Poirier"),
]


class _Tables:
    """MyCRM's own customers, and every unit of their buildings as a listing: available once
    its present lease (if any) ends, rented until then."""

    def __init__(self, world: World) -> None:
        self.landlords: list[Row] = [
            {
                "id": landlord.id,
                "company_name": landlord.name,
                "first_name": None,
                "last_name": None,
                "email": f"contact@{landlord.name.split()[-1].lower()}.example",
                "phone": f"+1-514-555-{landlord.id % 10000:04d}",
                "status": landlord.status.lower(),
                "business_number": landlord.business_number,
                "created_at": f"2021-01-{landlord.id % 28 + 1:02d}T09:00:00Z",
            }
            for landlord in world.landlords_of("mycrm")
        ]
        self.users: list[Row] = [
            {
                "id": 9000 + index,
                "first_name": first,
                "last_name": last,
                "role": "agent",
                "email": f"{first}.{last}@mycrm.example".lower(),
                "phone": f"+1-514-555-{8100 + index:04d}",
            }
            for index, (first, last) in enumerate(_AGENTS)
        ]
        self.properties: list[Row] = []
        for building in world.buildings_of("mycrm"):
            for unit in world.units_in(building.id):
                lease = world.current_lease(unit.id)
                free_from = lease.end + timedelta(days=1) if lease else world.today
                self.properties.append(
                    {
                        "id": unit.id,
                        "reference": f"MC-{unit.id:05d}",
                        "title": f"{unit.rooms} rooms, {building.name}",
                        "type": (unit.housing_type or "apartment").lower(),
                        "rooms": unit.rooms,
                        "bedrooms": max(0, int(unit.rooms) - 1),
                        "price": 900 + int(unit.rooms * 150),
                        "currency": "CAD",
                        "status": "rented" if lease else "available",
                        "available_from": free_from.isoformat(),
                        "address": f"{building.street}, app. {unit.code}",
                        "city": building.city,
                        "landlord": building.landlord_id,
                        "agent": self.users[len(self.properties) % len(self.users)]["id"],
                    }
                )


def references(world: World) -> dict[tuple[str, int], str]:
    """MyCRM's ids are the world's: its own landlords, and its listings (one a unit)."""
    found = {("landlord", one.id): f"mycrm:{one.id}" for one in world.landlords_of("mycrm")}
    found.update(
        {
            ("unit", unit.id): f"mycrm:{unit.id}"
            for building in world.buildings_of("mycrm")
            for unit in world.units_in(building.id)
        }
    )
    return found


def gateway_options(root: str) -> dict[str, Any]:
    """What a gateway is told to find the token host, for a sandbox served at `root`."""
    return {"token_url": f"{root.rstrip('/')}{mounted(AUTH_HOST)}{TOKEN_PATH}"}


def create_app(world: World, state: ProviderState) -> ASGIApp:
    """The API host, taking the tokens `create_auth_app`'s host signs."""

    def admits(request: Request) -> bool:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        try:
            claims = read_rs256(value, AUDIENCE) if scheme.lower() == "bearer" else None
        except jwt.PyJWTError:
            return False
        return (
            claims is not None
            and claims.get("gen") == state.token_generation
            and claims["exp"] > state.clock()
        )

    return create_api(world, state, admits)


def create_api(world: World, state: ProviderState, admits: Admits) -> ASGIApp:
    """The API host, taking the bearer tokens `admits` takes: this sandbox's own, or those
    of another authorization server put in front of the same data (the conformance tests
    put Authlib's)."""
    state.error_names = {name: status for name, (status, _) in ERRORS.items()}
    api = _Api(world, state, admits)
    handlers = {404: api.unrouted, 405: api.unrouted}
    return served(state, api.routes(), exception_handlers=handlers)


class _Api:
    """One MyCRM API host: its tables, the tokens it admits, and a handler for each route."""

    def __init__(self, world: World, state: ProviderState, admits: Admits) -> None:
        self.state = state
        self.admits = admits
        self.tables = state.records = _Tables(world)
        self.by_id = {
            "landlord": {row["id"]: row for row in self.tables.landlords},
            "property": {row["id"]: row for row in self.tables.properties},
            "user": {row["id"]: row for row in self.tables.users},
        }
        self.collections = (
            ("landlords", "landlord", self.tables.landlords, ("status",)),
            ("properties", "property", self.tables.properties, ("status", "landlord", "city")),
            ("users", "user", self.tables.users, ("role",)),
        )

    def error(self, resource: str, status: int, code: str, *messages: str) -> Response:
        return JSONResponse({resource: code, "messages": list(messages)}, status_code=status)

    async def documented_token_request(self, request: Request) -> Response:
        self.state.documented_token_request = request.query_params.get("accept") == "true"
        return Response(status_code=204)

    def guarded(self, resource: str, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            if not self.admits(request):
                return self.error(
                    resource, 401, "AuthenticationError", "The token is missing or incorrect."
                )
            refusal = self.state.take_refusal()
            if refusal is not None:
                name, status = refusal
                return self.error(resource, status, name, ERRORS[name][1])
            return await handler(request)

        return endpoint

    def shape(self, request: Request, row: Row) -> tuple[Row, list[str]]:
        warnings: list[str] = []
        names = request.query_params.get("fields")
        if names is None and "field" in request.query_params:
            names = request.query_params["field"]
            warnings.append("The 'field' parameter is deprecated; use 'fields'.")
        shaped = dict(row)
        if request.headers.get("x-mycrm-expand-data", "").lower() == "true":
            for name, table in (("landlord", "landlord"), ("agent", "user")):
                if name in shaped:
                    shaped[name] = self.by_id[table].get(shaped[name])
        if names is not None:
            wanted = {name.strip() for name in names.split(",")}
            shaped = {key: value for key, value in shaped.items() if key in wanted}
        return shaped, warnings

    def respond(self, body: Row, warnings: list[str], status: int = 200) -> Response:
        response = JSONResponse(body, status_code=status)
        if self.state.warning:
            warnings = [*warnings, self.state.warning]
        if warnings:
            response.headers["X-MyCRM-API-Warning"] = " ".join(dict.fromkeys(warnings))
        return response

    def collection(
        self, plural: str, singular: str, rows: list[Row], filters: tuple[str, ...]
    ) -> Handler:
        async def endpoint(request: Request) -> Response:
            params = request.query_params
            warnings: list[str] = []
            try:
                page = int(params.get("page", "1"))
                per_page = int(params.get("per_page", str(MAX_PER_PAGE)))
            except ValueError:
                return self.error(
                    singular, 400, "InvalidRequest", "page and per_page are integers."
                )
            if page < 1 or per_page < 1:
                return self.error(singular, 400, "InvalidRequest", "page and per_page start at 1.")
            if per_page > MAX_PER_PAGE:
                warnings.append(f"per_page is capped at {MAX_PER_PAGE}.")
                per_page = MAX_PER_PAGE
            selected = [
                row
                for row in rows
                if all(str(row.get(name)) == params[name] for name in filters if name in params)
            ]
            sort = params.get("sort")
            if sort is not None:
                if not rows or sort not in rows[0]:
                    return self.error(singular, 400, "InvalidRequest", f"Cannot sort by '{sort}'.")
                selected.sort(
                    key=lambda row: (str(row.get(sort) or "").casefold(), row["id"]),
                    reverse=params.get("sort_order", "asc").lower() == "desc",
                )
            items = []
            for row in page_of(selected, page, per_page):
                shaped, said = self.shape(request, row)
                items.append(shaped)
                warnings.extend(said)
            body = {"count": len(selected), "page": page, "per_page": per_page, plural: items}
            return self.respond(body, warnings)

        return endpoint

    def single(self, singular: str) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                row = self.by_id[singular].get(int(request.path_params["id"]))
            except ValueError:
                row = None
            if row is None:
                return self.error(
                    singular,
                    404,
                    "ResourceNotFound",
                    f"No {singular} with id '{request.path_params['id']}'.",
                )
            shaped, warnings = self.shape(request, row)
            return self.respond({singular: shaped}, warnings)

        return endpoint

    def routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = []
        for plural, singular, rows, filters in self.collections:
            listed = self.collection(plural, singular, rows, filters)
            routes.append(Route(f"/{plural}", self.guarded(singular, listed), methods=["GET"]))
            one = self.guarded(singular, self.single(singular))
            routes.append(Route(f"/{plural}/{{id}}", one, methods=["GET"]))
        documented = self.documented_token_request
        routes.append(Route("/_sandbox/documented-token-request", documented, methods=["POST"]))
        return routes

    async def unrouted(self, request: Request, problem: Exception) -> Response:
        """No such route, or not with this method: MyCRM's own body, named after the
        resource the path starts with (`/users/foo/bar` is about a user)."""
        path = request.scope["path"].removeprefix(request.scope.get("root_path", ""))
        first = path.strip("/").split("/")[0]
        resource = next((one for many, one, _, _ in self.collections if many == first), first)
        route = f"{request.method} {path}"
        if getattr(problem, "status_code", 404) == 405:
            return self.error(
                resource, 400, "MethodNotAllowed", f'Method not allowed for "{route}"'
            )
        return self.error(resource, 404, "ResourceNotFound", f'No route found for "{route}"')


def create_auth_app(state: ProviderState) -> ASGIApp:
    """The token host: the client-credentials endpoint and nothing else. It shares the
    API's state, so the API's knobs, faults and counter cover it too."""
    state.token_paths = frozenset({TOKEN_PATH})

    async def token(request: Request) -> Response:
        fields = await _token_fields(request, state.documented_token_request)
        if isinstance(fields, Response):
            return fields
        key = _client(request)
        if key is None:
            return _oauth_error(
                401,
                "invalid_client",
                "Unknown client or wrong secret.",
                {"WWW-Authenticate": 'Basic realm="mycrm"'},
            )
        grant = fields.get("grant_type")
        if grant is None:
            return _oauth_error(400, "invalid_request", "grant_type is required.")
        if grant != "client_credentials":
            return _oauth_error(
                400, "unsupported_grant_type", "Only client_credentials is granted here."
            )
        scope = fields.get("scope", "openid")
        if not set(scope.split()) <= SCOPES:
            return _oauth_error(400, "invalid_scope", f"Known scopes: {' '.join(SCOPES)}.")
        now = state.clock()
        lifetime = state.token_lifetime or TOKEN_LIFETIME
        claims = {
            "sub": key,
            "scope": scope,
            "iat": int(now),
            "exp": int(now + lifetime),
            "aud": AUDIENCE,
            "gen": state.token_generation,
        }
        return JSONResponse(
            {
                "access_token": sign_rs256(claims),
                "token_type": "Bearer",
                "expires_in": int(lifetime),
            },
            headers=_NO_STORE,
        )

    return counting(Starlette(routes=[Route(TOKEN_PATH, token, methods=["POST"])]), state)


_FORM = "application/x-www-form-urlencoded"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
"""RFC 6749 §5.1: a token answer is never cached."""


def _oauth_error(
    status: int, error: str, description: str, headers: dict[str, str] | None = None
) -> Response:
    """RFC 6749 §5.2's error body, as any standard token endpoint answers."""
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={**_NO_STORE, **(headers or {})},
    )


async def _token_fields(request: Request, documented: bool) -> dict[str, str] | Response:
    """The token request's parameters: a form (RFC 6749 §4.4.2), or, when the document's
    JSON body is accepted, that. Each parameter at most once (§3.2)."""
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    raw = await request.body()
    if media == "application/json" and documented:
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict) or not all(isinstance(v, str) for v in body.values()):
            return _oauth_error(400, "invalid_request", "The body is not a JSON object of strings.")
        return body
    if media != _FORM:
        return _oauth_error(400, "invalid_request", f"The token request must be {_FORM}.")
    try:
        pairs = parse_qsl(raw.decode(), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        return _oauth_error(400, "invalid_request", "The form could not be read.")
    fields = dict(pairs)
    if len(fields) < len(pairs):
        return _oauth_error(400, "invalid_request", "A parameter is repeated.")
    return fields


def _client(request: Request) -> str | None:
    """The authenticated client's key: HTTP Basic of the form-urlencoded key and secret."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    try:
        pair = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    key, colon, secret = pair.partition(":")
    if scheme.lower() != "basic" or not colon:
        return None
    key, secret = unquote_plus(key), unquote_plus(secret)
    if (key, secret) != (CREDENTIALS["api_key"], CREDENTIALS["api_secret"]):
        return None
    return key
