"""SCOM: a GraphQL provider, with the landlord onboarding its document describes.

`createLandlord` makes a PENDING landlord; an administrator verifies it (the
sandbox admin route `/_sandbox/verify`), which POSTs
`{"event": "landlord.verified", "landlordId", "activationToken"}` to the
partner's callback URL; `activeLandlord` with that token (valid one hour)
makes it ACTIVE and returns the landlord's `apiToken`, the only time it is
ever given. The document's three errors are its exact messages. The read API
is assumed (PROVIDERS.md): `landlord(id)`, `landlords(first, after)` with the
partner token, `properties(first, after)` and `createProperty` with a
landlord's token. The world's SCOM landlords start ACTIVE.

Knobs reproduce what a partner must survive: the activation answered under
`activateLandlord`, as the document's sample shows it
(`/_sandbox/activation-payload?key=`), and a landlord whose reads fail
(`/_sandbox/unreadable?landlord=`), as a GraphQL error at its path beside the
rest of the data, or as a whole answer refused with an HTTP status.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from graphql import GraphQLError, build_schema, graphql
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from gateway.sandbox.data import World
from gateway.sandbox.server import ProviderState, served
from gateway.state.vault import Vault

__all__ = [
    "CREDENTIALS",
    "PAYLOAD_KEYS",
    "call_back_to",
    "create_app",
    "hand_over_tokens",
    "landlord_token",
    "references",
]

logger = logging.getLogger("gateway.sandbox.scom")

CREDENTIALS = {
    "api_token": "sandbox-scom-partner-token",
    "webhook_secret": "sandbox-scom-callback-key",
}
"""The sandbox's partner token, and the key its callback URL carries (`?key=`)."""

ACTIVATION_LIFETIME = 3600.0

SDL = """
enum CompanyType { REAL_ESTATE_AGENCY PROPERTY_MANAGEMENT INDIVIDUAL_LANDLORD DEVELOPER }
enum LandlordStatus { PENDING VERIFIED ACTIVE }

type Landlord {
  id: ID!
  name: String!
  slug: String!
  status: LandlordStatus!
  registerType: String!
  businessNumber: String!
  businessScale: Int!
  businessType: String!
  companyType: CompanyType!
  billingAddress: String!
  billingPostalCode: String!
  createdAt: String!
  updatedAt: String!
  verifiedAt: String
}

type Property {
  id: ID!
  landlordId: ID!
  name: String!
  address: String
  city: String
  postalCode: String
  unitCount: Int!
  createdAt: String!
}

type PageInfo { hasNextPage: Boolean! endCursor: String }
type LandlordEdge { node: Landlord! cursor: String! }
type LandlordConnection { edges: [LandlordEdge!]! pageInfo: PageInfo! totalCount: Int! }
type PropertyEdge { node: Property! cursor: String! }
type PropertyConnection { edges: [PropertyEdge!]! pageInfo: PageInfo! totalCount: Int! }

input CreateLandlordInput {
  name: String!
  companyType: CompanyType!
  billingAddress: String!
  billingPostalCode: String!
  businessNumber: String!
}
type CreateLandlordPayload { landlord: Landlord }
input ActiveLandlordInput { activationToken: String! }
type ActiveLandlordPayload { apiToken: String! }
input CreatePropertyInput { name: String! address: String city: String postalCode: String }

type Query {
  landlord(id: ID!): Landlord
  landlords(first: Int, after: String): LandlordConnection!
  property(id: ID!): Property
  properties(first: Int, after: String): PropertyConnection!
}

type Mutation {
  createLandlord(input: CreateLandlordInput!): CreateLandlordPayload!
  activeLandlord(input: ActiveLandlordInput!): ActiveLandlordPayload!
  createProperty(input: CreatePropertyInput!): Property!
}
"""


PAYLOAD_KEYS = ("activeLandlord", "activateLandlord")
"""The key of the activation's answer: the mutation's own name (as GraphQL answers), or the
one the document's sample answers under."""


_GRAPHQL_RESPONSE = "application/graphql-response+json"


@dataclass
class _Knobs:
    """SCOM's own faults, set through its admin routes by a test or a person."""

    payload_key: str = PAYLOAD_KEYS[0]
    unreadable: str | None = None
    """A landlord whose reads by id fail."""
    status: int | None = None
    """The HTTP status that refuses a whole answer reading it; `None`: a GraphQL error at
    its path, the rest of the answer standing."""
    times: int | None = None
    """Reads that fail before it reads again; `None`: until the knob is cleared."""

    def fails(self, landlord_id: str) -> bool:
        if landlord_id != self.unreadable:
            return False
        if self.times is not None:
            self.times -= 1
            if self.times <= 0:
                self.unreadable = None
        return True


def landlord_token(landlord_id: int) -> str:
    """The tokens of landlords activated before the sandbox started (a deterministic stand-in)."""
    return f"scom-landlord-token-{landlord_id}"


def call_back_to(state: ProviderState, gateway_url: str) -> None:
    """SCOM calls the partner back when it verifies a landlord: here, at the gateway's
    webhook, with the key the gateway checks; a URL set already is kept."""
    key = CREDENTIALS["webhook_secret"]
    base = gateway_url.rstrip("/")
    state.callback_url = state.callback_url or f"{base}/webhooks/{state.name}?key={key}"


def hand_over_tokens(state: ProviderState, vault: Vault) -> None:
    """SCOM landlords active before the sandbox started: as if the gateway had activated
    them, their tokens are in its vault, so the demo shows their buildings."""
    for landlord_id in state.records:
        if vault.get_now(state.name, landlord_id) is None:
            vault.put_now(state.name, landlord_id, landlord_token(int(landlord_id)))


def references(world: World) -> dict[tuple[str, int], str]:
    """SCOM property ids carry their landlord, as the SCOM connector names them."""
    found = {
        ("building", b.id): f"scom:{b.landlord_id}/sp_{b.id}" for b in world.buildings_of("scom")
    }
    found.update({("landlord", one.id): f"scom:{one.id}" for one in world.landlords_of("scom")})
    return found


@dataclass
class _Landlord:
    id: str
    name: str
    company_type: str
    billing_address: str
    billing_postal_code: str
    business_number: str
    status: str
    created_at: str
    register_type: str = "PMS_CREATED"
    verified_at: str | None = None
    api_token: str | None = None
    activation: tuple[str, float] | None = None
    properties: list[dict[str, Any]] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "slug": re.sub(r"[^a-z0-9]+", "_", self.name.lower()).strip("_"),
            "status": self.status,
            "registerType": self.register_type,
            "businessNumber": self.business_number,
            "businessScale": 0,
            "businessType": "COMPANY",
            "companyType": self.company_type,
            "billingAddress": self.billing_address,
            "billingPostalCode": self.billing_postal_code,
            "createdAt": self.created_at,
            "updatedAt": self.verified_at or self.created_at,
            "verifiedAt": self.verified_at,
        }


def _cursor(offset: int) -> str:
    return base64.b64encode(f"offset:{offset}".encode()).decode()


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        return int(base64.b64decode(cursor).decode().removeprefix("offset:")) + 1
    except ValueError:
        raise GraphQLError("after is not a cursor of this list") from None


def _connection(
    items: list[dict[str, Any]], first: int | None, after: str | None
) -> dict[str, Any]:
    start = _offset(after)
    size = max(0, min(first if first is not None else 20, 100))
    page = items[start : start + size]
    return {
        "edges": [{"node": item, "cursor": _cursor(start + i)} for i, item in enumerate(page)],
        "pageInfo": {
            "hasNextPage": start + size < len(items),
            "endCursor": _cursor(start + len(page) - 1) if page else None,
        },
        "totalCount": len(items),
    }


def create_app(world: World, state: ProviderState) -> ASGIApp:
    state.token_paths = frozenset()
    return served(state, _Service(world, state).routes())


class _Service:
    """One SCOM: its landlords and knobs, the GraphQL root over them, and its admin routes."""

    def __init__(self, world: World, state: ProviderState) -> None:
        self.world = world
        self.state = state
        self.schema = build_schema(SDL)
        self.landlords = state.records = self.seeded()
        self.knobs = _Knobs()
        self.root = self.resolvers()

    def stamp(self) -> str:
        return datetime.fromtimestamp(self.state.clock(), UTC).isoformat()

    def seeded(self) -> dict[str, _Landlord]:
        """The world's SCOM landlords, ACTIVE, each with its buildings as properties."""
        landlords: dict[str, _Landlord] = {}
        for landlord in self.world.landlords_of("scom"):
            record = _Landlord(
                id=str(landlord.id),
                name=landlord.name,
                company_type="PROPERTY_MANAGEMENT",
                billing_address=landlord.street,
                billing_postal_code=landlord.postal_code,
                business_number=landlord.business_number,
                status="ACTIVE",
                created_at=self.stamp(),
                register_type="SCOM_CREATED",
                verified_at=self.stamp(),
                api_token=landlord_token(landlord.id),
            )
            for building in self.world.buildings_of("scom"):
                if building.landlord_id == landlord.id:
                    record.properties.append(
                        {
                            "id": f"sp_{building.id}",
                            "landlordId": record.id,
                            "name": building.name,
                            "address": building.street,
                            "city": building.city,
                            "postalCode": building.postal_code,
                            "unitCount": len(self.world.units_in(building.id)),
                            "createdAt": self.stamp(),
                        }
                    )
            landlords[record.id] = record
        return landlords

    def partner(self, info: Any) -> None:
        if info.context["token"] != CREDENTIALS["api_token"]:
            raise GraphQLError("unauthorized: a partner token is required")

    def owner(self, info: Any) -> _Landlord:
        token = info.context["token"]
        for landlord in self.landlords.values():
            if token and landlord.api_token == token and landlord.status == "ACTIVE":
                return landlord
        raise GraphQLError("unauthorized: a landlord token is required")

    def resolve_landlord(self, info: Any, id: str) -> dict[str, Any] | None:
        self.partner(info)
        if self.knobs.fails(id):
            info.context["refused"] = self.knobs.status
            raise GraphQLError(f"landlord {id} could not be read")
        found = self.landlords.get(id)
        return found.view() if found else None

    def resolve_landlords(
        self, info: Any, first: int | None = None, after: str | None = None
    ) -> Any:
        self.partner(info)
        ordered = sorted(
            self.landlords.values(), key=lambda one: (one.name.casefold(), int(one.id))
        )
        return _connection([one.view() for one in ordered], first, after)

    def resolve_properties(
        self, info: Any, first: int | None = None, after: str | None = None
    ) -> Any:
        mine = self.owner(info)
        ordered = sorted(mine.properties, key=lambda p: (p["name"].casefold(), p["id"]))
        return _connection(ordered, first, after)

    def resolve_property(self, info: Any, id: str) -> dict[str, Any] | None:
        return next((p for p in self.owner(info).properties if p["id"] == id), None)

    def create_landlord(self, info: Any, input: dict[str, Any]) -> Any:
        self.partner(info)
        blank = [k for k, v in input.items() if isinstance(v, str) and not v.strip()]
        if blank:
            raise GraphQLError(f"{', '.join(sorted(blank))} must not be blank")
        identifier = str(self.world.new_id())
        record = _Landlord(
            id=identifier,
            name=input["name"],
            company_type=input["companyType"],
            billing_address=input["billingAddress"],
            billing_postal_code=input["billingPostalCode"],
            business_number=input["businessNumber"],
            status="PENDING",
            created_at=self.stamp(),
        )
        self.landlords[identifier] = record
        return {"landlord": record.view()}

    def active_landlord(self, info: Any, input: dict[str, Any]) -> Any:
        self.partner(info)
        token = input["activationToken"]
        record = next(
            (
                one
                for one in self.landlords.values()
                if one.activation and one.activation[0] == token
            ),
            None,
        )
        if record is None or record.activation is None:
            raise GraphQLError("activationToken not exist")
        if record.activation[1] <= self.state.clock():
            raise GraphQLError("activationToken expired")
        if record.status != "VERIFIED":
            raise GraphQLError("landlord status must be verified")
        record.status = "ACTIVE"
        record.activation = None
        record.api_token = secrets.token_urlsafe(24)
        return {"apiToken": record.api_token}

    def create_property(self, info: Any, input: dict[str, Any]) -> Any:
        """A landlord's new property (assumed, as the read API): a blank field and a name
        the landlord already uses are refused, as the landlord's own screens would."""
        mine = self.owner(info)
        blank = [k for k, v in input.items() if isinstance(v, str) and not v.strip()]
        if blank:
            raise GraphQLError(f"{', '.join(sorted(blank))} must not be blank")
        taken = {p["name"].casefold() for p in mine.properties}
        if input["name"].strip().casefold() in taken:
            raise GraphQLError(f"a property named '{input['name']}' already exists")
        item = {
            "id": f"sp_{self.world.new_id()}",
            "landlordId": mine.id,
            "unitCount": 0,
            "createdAt": self.stamp(),
            **input,
        }
        mine.properties.append(item)
        return item

    def resolvers(self) -> dict[str, Any]:
        return {
            "landlord": self.resolve_landlord,
            "landlords": self.resolve_landlords,
            "property": self.resolve_property,
            "properties": self.resolve_properties,
            "createLandlord": self.create_landlord,
            "activeLandlord": self.active_landlord,
            "createProperty": self.create_property,
        }

    async def endpoint(self, request: Request) -> Response:
        """GraphQL over HTTP: to a client that reads `application/graphql-response+json`, a
        request refused before execution (its document or variables: errors without a path,
        and no data) is a 400 with its errors, as the specification has it; to one that reads
        only `application/json`, every answer is a 200."""
        try:
            body = json.loads(await request.body())
            query = body["query"]
            variables = body.get("variables") or {}
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"errors": [{"message": "POST a JSON body with a query"}]}, 400)
        if not isinstance(query, str) or not isinstance(variables, dict):
            return JSONResponse({"errors": [{"message": "query is a string"}]}, 400)
        context: dict[str, Any] = {"token": request.headers.get("x-api-token", ""), "refused": None}
        result = await graphql(
            self.schema,
            query,
            root_value=self.root,
            variable_values=variables,
            context_value=context,
        )
        if context["refused"] is not None:
            return JSONResponse(
                {"errors": [{"message": "the server could not answer"}]}, context["refused"]
            )
        if result.data and PAYLOAD_KEYS[0] in result.data:
            result.data[self.knobs.payload_key] = result.data.pop(PAYLOAD_KEYS[0])
        errors = [error.formatted for error in result.errors or ()]
        if _GRAPHQL_RESPONSE not in request.headers.get("accept", ""):
            return JSONResponse({"data": result.data, **({"errors": errors} if errors else {})})
        if result.data is None and errors and all("path" not in error for error in errors):
            return JSONResponse({"errors": errors}, 400, media_type=_GRAPHQL_RESPONSE)
        return JSONResponse(
            {"data": result.data, **({"errors": errors} if errors else {})},
            media_type=_GRAPHQL_RESPONSE,
        )

    async def verify(self, request: Request) -> Response:
        """Sandbox admin: a SCOM administrator verifies (or binds) a landlord."""
        record = self.landlords.get(request.query_params.get("landlord", ""))
        if record is None:
            return JSONResponse({"error": "no such landlord"}, 404)
        record.status = "VERIFIED"
        record.verified_at = self.stamp()
        record.activation = (secrets.token_urlsafe(24), self.state.clock() + ACTIVATION_LIFETIME)
        delivered = await _call_back(
            self.state,
            {
                "event": "landlord.verified",
                "landlordId": record.id,
                "activationToken": record.activation[0],
            },
        )
        return JSONResponse({"landlordId": record.id, "callback": delivered})

    async def add_property(self, request: Request) -> Response:
        """Sandbox admin: a property appears in a landlord's SCOM account."""
        record = self.landlords.get(request.path_params["landlord"])
        if record is None:
            return JSONResponse({"error": "no such landlord"}, 404)
        item = {
            "id": f"sp_{self.world.new_id()}",
            "landlordId": record.id,
            "unitCount": 0,
            "createdAt": self.stamp(),
            "name": request.query_params.get("name", "New property"),
            "address": None,
            "city": request.query_params.get("city"),
            "postalCode": None,
        }
        record.properties.append(item)
        return JSONResponse(item, 201)

    async def set_status(self, request: Request) -> Response:
        """Sandbox admin: an administrator changes a landlord's status (suspends it, say)."""
        record = self.landlords.get(request.query_params.get("landlord", ""))
        status = request.query_params.get("status", "")
        if record is None or status not in ("PENDING", "VERIFIED", "ACTIVE"):
            return JSONResponse({"error": "no such landlord or status"}, 404)
        record.status = status
        return Response(status_code=204)

    async def activation_payload(self, request: Request) -> Response:
        """Sandbox knob: the key the activation's answer comes under."""
        key = request.query_params.get("key", PAYLOAD_KEYS[0])
        if key not in PAYLOAD_KEYS:
            return JSONResponse({"error": f"key is one of {', '.join(PAYLOAD_KEYS)}"}, 400)
        self.knobs.payload_key = key
        return Response(status_code=204)

    async def unreadable(self, request: Request) -> Response:
        """Sandbox knob: reading a landlord by id fails (`times` reads, or until cleared by
        a request without `landlord`), at its path or with the whole answer's `status`."""
        params = request.query_params
        try:
            status = int(params["status"]) if "status" in params else None
            times = int(params["times"]) if "times" in params else None
        except ValueError:
            return JSONResponse({"error": "status and times are integers"}, 400)
        if (status is not None and not 400 <= status <= 599) or (times is not None and times < 1):
            return JSONResponse({"error": "status is 400 to 599, times at least 1"}, 400)
        self.knobs.unreadable = params.get("landlord") or None
        self.knobs.status, self.knobs.times = status, times
        return Response(status_code=204)

    async def show(self, request: Request) -> Response:
        """Sandbox admin: a landlord as SCOM stores it, token included (to check leaks)."""
        record = self.landlords.get(request.path_params["landlord"])
        if record is None:
            return JSONResponse({"error": "no such landlord"}, 404)
        return JSONResponse({**record.view(), "apiToken": record.api_token})

    def routes(self) -> list[Route]:
        return [
            Route("/graphql", self.endpoint, methods=["POST"]),
            Route("/_sandbox/landlords/{landlord}", self.show, methods=["GET"]),
            Route("/_sandbox/verify", self.verify, methods=["POST"]),
            Route("/_sandbox/status", self.set_status, methods=["POST"]),
            Route("/_sandbox/landlords/{landlord}/properties", self.add_property, methods=["POST"]),
            Route("/_sandbox/activation-payload", self.activation_payload, methods=["POST"]),
            Route("/_sandbox/unreadable", self.unreadable, methods=["POST"]),
        ]


async def _call_back(state: ProviderState, payload: dict[str, Any]) -> dict[str, Any]:
    """POSTs the verification to the partner's callback URL, as SCOM does."""
    if not state.callback_url:
        return {"delivered": False, "reason": "no callback URL configured"}
    try:
        async with httpx.AsyncClient(transport=state.outbound, timeout=10) as client:
            response = await client.post(state.callback_url, json=payload)
    except httpx.HTTPError as error:
        logger.warning("callback to %s failed: %s", state.callback_url, type(error).__name__)
        return {"delivered": False, "reason": type(error).__name__}
    return {"delivered": response.is_success, "status": response.status_code}
