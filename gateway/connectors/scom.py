"""SCOM: GraphQL over HTTP, a partner token in `x-api-token`, and landlords' own tokens.

Every value goes upstream as a GraphQL variable, never inside the query text.
Landlord lookups by id are batched into one request with aliases. A landlord's
properties need that landlord's `apiToken`, which SCOM hands over once, at
activation: the gateway keeps it in the vault before it asks anything else,
and uses it for that landlord's reads only. Upstream GraphQL errors keep
their path: in `extensions.upstreamErrors` when they replace the data, in a
warning's `upstreamErrors` when they come beside it; the document's three
activation errors become stable codes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any, ClassVar

import httpx

from gateway import notices
from gateway.config import ConnectorOptions, connector_options
from gateway.connectors.base import Connector, ListRequest, Page
from gateway.connectors.calls import Dialect, Said, check_status
from gateway.connectors.capabilities import LandlordOnboarding, PropertyCreation, WebhookSource
from gateway.connectors.paging import RelayCursor, Standings, Trail, each
from gateway.connectors.values import json_object, text
from gateway.errors import (
    BadUserInput,
    ConfigError,
    Conflict,
    GatewayError,
    InvalidCursor,
    Refused,
    Unauthenticated,
    Unconfirmed,
    UpstreamInvalidResponse,
    UpstreamRejected,
    ValidationFailed,
)
from gateway.events import Change, ChangeKind, Delivery
from gateway.model import (
    Building,
    Entity,
    Landlord,
    Link,
    NewLandlord,
    NewProperty,
    Record,
    Selection,
    Unavailable,
)
from gateway.state.vault import Vault
from gateway.upstream.auth import HeaderAuth
from gateway.upstream.client import Upstream
from gateway.upstream.dispatch import carried_out_nothing

__all__ = ["ScomConnector"]

NAME = "scom"
logger = logging.getLogger("gateway.connectors.scom")
MAX_PAGE = 100
_BATCH = 50
_TOKEN = "x-api-token"
"""The header for the partner's token and for each landlord's alike."""
_LANDLORD_FIELDS = "id name status companyType billingAddress billingPostalCode businessNumber"
_PROPERTY_FIELDS = "id landlordId name address city postalCode"
_LANDLORDS = (
    "query($first: Int!, $after: String) { landlords(first: $first, after: $after) "
    "{ totalCount pageInfo { hasNextPage } edges { cursor node { "
    f"{_LANDLORD_FIELDS} }} }} }} }}"
)
_PROPERTIES = (
    "query($first: Int!, $after: String) { properties(first: $first, after: $after) "
    "{ totalCount pageInfo { hasNextPage } edges { cursor node { "
    f"{_PROPERTY_FIELDS} }} }} }} }}"
)
_ACTIVATION_ERRORS = {
    "activationToken not exist": "ACTIVATION_TOKEN_NOT_FOUND",
    "activationToken expired": "ACTIVATION_TOKEN_EXPIRED",
    "landlord status must be verified": "LANDLORD_NOT_VERIFIED",
}
_PROPERTY_INPUT = {"name": "name", "address": "street", "city": "city", "postalCode": "postal_code"}
"""`CreatePropertyInput`'s fields as the caller named them, for SCOM's refusals."""
_PENDING = "scom-activation"
"""Vault space for activation tokens received by callback and not yet used."""
_DELIVERED_FOR = "scom-activation-for"
"""Vault space for the landlord each callback's activation token was delivered for, by the
token's digest: one lookup tells whether a token named with a landlord is another's."""
_UNMATCHED = "scom-unmatched"
"""Vault space for landlord tokens SCOM issued on an activation token that did not activate
the landlord it came with: SCOM never issues them again, so they are kept for an operator."""
_PAYLOADS = ("activeLandlord", "activateLandlord")
"""The activation mutation's name, and the key the document's sample answers under."""


def _landlord(node: Mapping[str, Any]) -> Landlord:
    identifier = node.get("id")
    if not isinstance(identifier, str) or not identifier:
        raise UpstreamInvalidResponse(NAME, "scom returned a landlord without an id.")
    return Landlord(
        provider=NAME,
        source_id=identifier,
        name=text(node, "name"),
        status=text(node, "status"),
        company_type=text(node, "companyType"),
        billing_address=text(node, "billingAddress"),
        billing_postal_code=text(node, "billingPostalCode"),
        business_number=text(node, "businessNumber"),
        buildings=Link(NAME, Entity.BUILDING, "landlord", identifier),
    )


_NO_UNITS = Unavailable(
    NAME,
    Entity.UNIT,
    "scom keeps a property's unit count, not its units: Building.units cannot be answered from it.",
)
_NO_MAINTENANCE = Unavailable(
    NAME,
    Entity.MAINTENANCE_REQUEST,
    "scom keeps no maintenance: Building.maintenanceRequests cannot be answered from it.",
)


def _building(node: Mapping[str, Any]) -> Building:
    identifier, owner = node.get("id"), node.get("landlordId")
    if not isinstance(identifier, str) or not isinstance(owner, str):
        raise UpstreamInvalidResponse(NAME, "scom returned a property without its ids.")
    return Building(
        provider=NAME,
        source_id=f"{owner}/{identifier}",
        name=text(node, "name"),
        street=text(node, "address"),
        city=text(node, "city"),
        postal_code=text(node, "postalCode"),
        landlord=Link(NAME, Entity.LANDLORD, "id", owner),
        units=_NO_UNITS,
        maintenance_requests=_NO_MAINTENANCE,
    )


def _edges(data: Mapping[str, Any], field: str) -> tuple[list[tuple[str, dict[str, Any]]], Any]:
    """A relay connection's (cursor, node) pairs and the connection, every part checked."""
    connection = data.get(field)
    edges = connection.get("edges") if isinstance(connection, dict) else None
    if not isinstance(edges, list):
        raise UpstreamInvalidResponse(NAME, f"scom returned no '{field}' connection.")
    pairs = []
    for edge in edges:
        cursor = edge.get("cursor") if isinstance(edge, dict) else None
        node = edge.get("node") if isinstance(edge, dict) else None
        if not isinstance(cursor, str) or not isinstance(node, dict):
            raise UpstreamInvalidResponse(NAME, f"scom returned a malformed '{field}' edge.")
        pairs.append((cursor, node))
    return pairs, connection


def _more(connection: Mapping[str, Any]) -> bool:
    info = connection.get("pageInfo")
    return isinstance(info, dict) and info.get("hasNextPage") is True


def _count(connection: Mapping[str, Any]) -> int | None:
    total = connection.get("totalCount")
    return total if isinstance(total, int) and not isinstance(total, bool) else None


_DONE = "done"


def _standings(position: Any) -> Standings[str]:
    """Each landlord's cursor (or `done`), from a position that came back from a caller:
    checked."""
    if position is None:
        return Standings()
    try:
        parsed = json.loads(position) if isinstance(position, str) else None
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict) or not all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in parsed.items()
    ):
        raise InvalidCursor("The cursor does not hold a position scom can use.")
    return Standings(
        positions={owner: at for owner, at in parsed.items() if at not in (None, _DONE)},
        done={owner for owner, at in parsed.items() if at == _DONE},
    )


def _position(positions: Mapping[str, str], done: AbstractSet[str]) -> str:
    return json.dumps({**positions, **dict.fromkeys(done, _DONE)}, sort_keys=True)


class ScomOptions(ConnectorOptions):
    auto_activate: bool = True
    """Activate a landlord as soon as SCOM's verification callback arrives."""


class ScomConnector(Connector, LandlordOnboarding, WebhookSource, PropertyCreation):
    name = NAME
    kind = "graphql"
    selects_fields = False
    embeds: ClassVar[Mapping[Entity, frozenset[str]] | None] = {}
    serves = frozenset({Entity.LANDLORD, Entity.BUILDING})
    lists = frozenset({Entity.LANDLORD, Entity.BUILDING})
    credentials = ("api_token",)
    options = ScomOptions
    accepts = {"create_property": frozenset({"street", "city", "postal_code"})}

    def __init__(
        self,
        partner: httpx.AsyncClient,
        landlords: httpx.AsyncClient,
        vault: Vault,
        auto_activate: bool,
        callback_key: str | None,
    ) -> None:
        super().__init__(partner)
        self._landlords = landlords
        self._vault = vault
        self._auto_activate = auto_activate
        self._callback_key = callback_key

    @classmethod
    def connect(cls, upstream: Upstream) -> ScomConnector:
        if upstream.vault is None:
            raise ConfigError("scom keeps landlord tokens in the vault: configure [vault].")
        partner = upstream.client(HeaderAuth(_TOKEN, upstream.credential("api_token")))
        key = upstream.credentials.get("webhook_secret")
        if key is None:
            logger.warning("scom: no webhook_secret; its verification callbacks will be refused")
        return cls(
            partner,
            upstream.client(),
            upstream.vault,
            connector_options(ScomOptions, NAME, upstream.options).auto_activate,
            key,
        )

    async def page(self, entity: Entity, request: ListRequest, /) -> Page:
        if request.criteria:
            raise BadUserInput("scom lists landlords and buildings unfiltered.", provider=NAME)
        if entity is Entity.BUILDING:
            return await self._buildings(request)
        return await self._connection(_LANDLORDS, "landlords").page(request, _landlord)

    def supports(self, entity: Entity, criteria: Any, /) -> bool:
        return entity in self.lists and not criteria

    def cannot_filter(self, entity: Entity, criteria: Any, /) -> bool:
        """SCOM's lists take no filter, and the gateway does not read every landlord's whole
        property list to test one."""
        return entity in self.lists and bool(criteria)

    async def _buildings(self, request: ListRequest) -> Page:
        """Every readable landlord's properties, merged by name: one request per landlord.

        SCOM lists properties per landlord token, so the position is each landlord's
        own cursor (a JSON object), and landlords are merged here as providers are in
        the federation.
        """
        standings = _standings(request.position)
        held = await self._vault.subjects(NAME)
        if not held:
            notices.warn(
                NAME,
                "scom's buildings are read with each landlord's own token, and the vault holds "
                "none: activate a landlord (activateLandlord) to list its buildings.",
            )
        owners = [owner for owner in held if owner not in standings.done]
        pages = await each(
            owners,
            lambda owner: self._page_of(owner, standings.positions.get(owner), request.limit),
        )
        streams = {
            owner: (
                [
                    ((text(node, "name") or "").casefold(), cursor, node)
                    for node, cursor in zip(nodes, cursors, strict=True)
                ],
                ends,
            )
            for owner, (nodes, cursors, ends, _) in pages.items()
        }
        trail = Trail(standings)
        taken = standings.advance(streams, request.limit, trail)
        exhausted = all(owner in standings.done for owner in owners)
        total = sum(count or 0 for *_, count in pages.values()) if request.count else None
        return Page(
            [_building(node) for node in taken],
            [_position(*trail.at(index)) for index in range(len(taken))],
            exhausted,
            total,
        )

    async def _page_of(
        self, owner: str, after: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], list[str], bool, int | None]:
        """A page of one landlord's properties, read with that landlord's token; none, and
        ended, for a landlord whose token the vault does not hold."""
        token = await self._vault.get(NAME, owner)
        if token is None:
            return [], [], True, 0
        return await self._connection(_PROPERTIES, "properties", token).read(
            after, min(limit, MAX_PAGE)
        )

    async def fetch(
        self, entity: Entity, by: str, keys: Sequence[str], _selection: Selection, /
    ) -> Mapping[str, Sequence[Record]]:
        if (entity, by) == (Entity.LANDLORD, "id"):
            return await self._landlords_by_id(keys)
        if (entity, by) == (Entity.BUILDING, "landlord"):
            found = await each(keys, self._properties_of)
            return {key: [_building(node) for node in nodes] for key, nodes in found.items()}
        if (entity, by) == (Entity.BUILDING, "id"):
            return await self._properties_by_id(keys)
        return {}

    def credential_scope(self, entity: Entity, key: str, /) -> str:
        """A property is read with its landlord's own token."""
        return f"landlord:{key.partition('/')[0]}" if entity is Entity.BUILDING else "gateway"

    async def _landlords_by_id(
        self, keys: Sequence[str], partial: bool = True
    ) -> Mapping[str, Sequence[Record]]:
        found: dict[str, Sequence[Record]] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _BATCH):
            chunk = unique[start : start + _BATCH]
            variables = {f"i{n}": key for n, key in enumerate(chunk)}
            declared = ", ".join(f"${name}: ID!" for name in variables)
            fields = " ".join(
                f"l{n}: landlord(id: $i{n}) {{ {_LANDLORD_FIELDS} }}" for n in range(len(chunk))
            )
            data = await self._ask(f"query({declared}) {{ {fields} }}", variables, partial=partial)
            for n, key in enumerate(chunk):
                node = data.get(f"l{n}")
                if isinstance(node, dict):
                    found[key] = [_landlord(node)]
        return found

    async def _properties_of(self, landlord_id: str) -> list[dict[str, Any]] | None:
        token = await self._vault.get(NAME, landlord_id)
        if token is None:
            notices.warn(NAME, f"No token for scom landlord {landlord_id}: activate it first.")
            return []
        return await self._connection(_PROPERTIES, "properties", token).all()

    def _connection(
        self, query: str, field: str, token: str | None = None
    ) -> RelayCursor[dict[str, Any]]:
        """A Relay connection of SCOM's, read with the partner token or a landlord's."""

        async def fetch(
            after: str | None, first: int
        ) -> tuple[list[tuple[str, dict[str, Any]]], bool, int | None]:
            data = await self._ask(query, {"first": first, "after": after}, token=token)
            edges, connection = _edges(data, field)
            return edges, _more(connection), _count(connection)

        return RelayCursor(fetch, MAX_PAGE)

    async def _properties_by_id(self, keys: Sequence[str]) -> Mapping[str, Sequence[Record]]:
        by_owner: dict[str, list[str]] = defaultdict(list)
        for key in keys:
            owner, sep, identifier = key.partition("/")
            if sep and owner and identifier:
                by_owner[owner].append(identifier)
        owned = await each(by_owner, self._properties_of)
        found: dict[str, Sequence[Record]] = {}
        for owner, nodes in owned.items():
            for node in nodes:
                if node.get("id") in by_owner[owner]:
                    found[f"{owner}/{node['id']}"] = [_building(node)]
        return found

    async def create_landlord(self, landlord: NewLandlord, /) -> Landlord:
        data = await self._ask(
            "mutation($input: CreateLandlordInput!) { createLandlord(input: $input) "
            f"{{ landlord {{ {_LANDLORD_FIELDS} }} }} }}",
            {
                "input": {
                    "name": landlord.name,
                    "companyType": landlord.company_type,
                    "billingAddress": landlord.billing_address,
                    "billingPostalCode": landlord.billing_postal_code,
                    "businessNumber": landlord.business_number,
                }
            },
            refusals=True,
        )
        node = (data.get("createLandlord") or {}).get("landlord")
        if not isinstance(node, dict):
            raise UpstreamInvalidResponse(NAME, "scom did not return the created landlord.")
        return _landlord(node)

    async def activate_landlord(
        self, landlord_id: str, activation_token: str | None, /
    ) -> Landlord:
        """The `apiToken` SCOM gives once goes to the vault before anything else is asked:
        what follows (reading the landlord back) may fail, and must not cost the token."""
        if await self._vault.get(NAME, landlord_id) is not None:
            raise Refused(
                "ALREADY_ACTIVE", f"scom landlord {landlord_id} is active; its token is kept."
            )
        token = activation_token or await self._vault.get(_PENDING, landlord_id)
        if token is None:
            raise Refused(
                "ACTIVATION_TOKEN_NOT_FOUND",
                f"No activation token was given or received for scom landlord {landlord_id}.",
            )
        if activation_token is not None and await self._delivered_for_another(
            landlord_id, activation_token
        ):
            raise Refused(
                "LANDLORD_MISMATCH",
                f"SCOM delivered this activation token for another landlord than "
                f"{landlord_id}; nothing was sent, and the token stays that landlord's.",
            )
        body = await self._post(
            "mutation($input: ActiveLandlordInput!) { activeLandlord(input: $input) { apiToken } }",
            {"input": {"activationToken": token}},
        )
        api_token = _issued_token(body.get("data"))
        if api_token is None:
            self._data(body, refusals=True)
            raise UpstreamInvalidResponse(NAME, "scom answered the activation without a token.")
        await self._vault.put(NAME, landlord_id, api_token)
        await self._vault.delete(_PENDING, landlord_id)
        await self._vault.delete(_DELIVERED_FOR, _digest(token))
        _warn(_upstream_errors(body))
        return await self._read_back(landlord_id, api_token)

    async def _delivered_for_another(self, landlord_id: str, token: str) -> bool:
        """Whether SCOM's callback delivered `token` for another landlord, whose activation it
        would spend (SCOM's activation takes the token alone). A token that came some other
        way cannot be told: the read-back refuses it once it has been spent."""
        owner = await self._vault.get(_DELIVERED_FOR, _digest(token))
        return owner is not None and owner != landlord_id

    async def _read_back(self, landlord_id: str, api_token: str) -> Landlord:
        """The landlord as SCOM shows it after activation; the kept token is never discarded.

        A failed read leaves the token in use and says the state is unconfirmed. Activation
        takes a VERIFIED landlord to ACTIVE (SCOM's statuses are PENDING, VERIFIED and
        ACTIVE), and SCOM's activation takes the token alone: another verified landlord's
        token, named with this one, activates that other landlord. So a landlord SCOM does not
        know, or does not show ACTIVE, is not the one the token activated, and the token is
        moved aside for an operator, unused by this landlord's reads. (A SCOM slow to show
        ACTIVE would land here too: its token kept aside, not lost.)
        """
        try:
            found = await self._landlords_by_id([landlord_id], partial=False)
        except GatewayError as error:
            raise Unconfirmed(
                "ACTIVATION_UNCONFIRMED",
                f"scom activated landlord {landlord_id} and the gateway keeps its token, but "
                f"reading the landlord back failed ({error.code}: {error.message}).",
                Landlord(
                    provider=NAME,
                    source_id=landlord_id,
                    buildings=Link(NAME, Entity.BUILDING, "landlord", landlord_id),
                ),
            ) from None
        records = found.get(landlord_id)
        landlord = records[0] if records else None
        if not isinstance(landlord, Landlord) or landlord.status != "ACTIVE":
            await self._vault.put(_UNMATCHED, landlord_id, api_token)
            await self._vault.delete(NAME, landlord_id)
            shown = landlord.status if isinstance(landlord, Landlord) else "no such landlord"
            raise Refused(
                "LANDLORD_MISMATCH",
                f"The activation token did not activate scom landlord {landlord_id} (SCOM "
                f"shows {shown}); the token SCOM issued is kept aside in the vault.",
            )
        return landlord

    async def create_property(self, landlord_id: str, new: NewProperty, /) -> Building:
        """`createProperty` with the landlord's own token (assumed API: the document says the
        token lets the partner "manage the landlord ... such as creating property"). A
        landlord whose token the vault does not hold is not one the gateway onboarded: nothing
        is sent. SCOM's refusals are its messages: `<fields> must not be blank`, `a property
        named ... already exists`, and `unauthorized` for a token it no longer takes."""
        token = await self._vault.get(NAME, landlord_id)
        if token is None:
            raise Refused(
                "NOT_FOUND",
                f"No onboarded scom landlord {landlord_id[:40]}: the gateway holds no token "
                "for it (create and activate it first). Nothing was sent.",
            )
        given = {
            "name": new.name,
            "address": new.street,
            "city": new.city,
            "postalCode": new.postal_code,
        }
        body = await self._post(
            "mutation($input: CreatePropertyInput!) { createProperty(input: $input) "
            f"{{ {_PROPERTY_FIELDS} }} }}",
            {"input": {name: value for name, value in given.items() if value is not None}},
            token=token,
        )
        data = body.get("data")
        made = data.get("createProperty") if isinstance(data, dict) else None
        for item in _upstream_errors(body) if made is None else ():
            refusal = _property_refusal(str(item["message"]), landlord_id)
            if refusal is not None:
                carried_out_nothing()
                raise refusal
        node = self._data(body, partial=False).get("createProperty")
        if not isinstance(node, dict):
            raise UpstreamInvalidResponse(NAME, "scom did not return the created property.")
        return _building(node)

    async def receive(
        self, body: bytes, _headers: Mapping[str, str], params: Mapping[str, str], /
    ) -> Delivery:
        """SCOM's verification callback: `{"event", "landlordId", "activationToken"}` (assumed).

        SCOM documents no signature, so the callback URL registered with SCOM carries a
        secret (`?key=`), compared in constant time. Activation is the delivery's work,
        run only once the gateway knows the delivery is not a repeat.
        """
        if self._callback_key is None:
            raise Unauthenticated("No webhook_secret is configured for scom.")
        if not hmac.compare_digest(params.get("key", "").encode(), self._callback_key.encode()):
            raise Unauthenticated("The callback does not carry the registered key.")
        payload = json_object(body)
        if payload.get("event") != "landlord.verified":
            raise BadUserInput("Expected the event 'landlord.verified'.")
        landlord_id, token = payload.get("landlordId"), payload.get("activationToken")
        if not isinstance(landlord_id, str | int) or not isinstance(token, str) or not token:
            raise BadUserInput("landlordId and activationToken are required.")
        landlord = str(landlord_id)
        key = f"verified:{landlord}:{_digest(token)[:16]}"

        async def activate() -> tuple[tuple[Change, ...], Mapping[str, Any]]:
            await self._vault.put(_PENDING, landlord, token)
            await self._vault.put(_DELIVERED_FOR, _digest(token), landlord)
            if not self._auto_activate:
                return (), {"landlordId": landlord, "status": "pending"}
            change = Change(ChangeKind.UPDATED, Entity.LANDLORD, NAME, landlord)
            try:
                await self.activate_landlord(landlord, token)
            except Refused as refusal:
                return (), {"landlordId": landlord, "status": "refused", "code": refusal.code}
            except Unconfirmed as unconfirmed:
                said = {"landlordId": landlord, "status": "activated", "code": unconfirmed.code}
                return (change,), said
            return (change,), {"landlordId": landlord, "status": "activated"}

        return Delivery(key=key, work=activate)

    async def _ask(
        self,
        query: str,
        variables: Mapping[str, Any],
        *,
        token: str | None = None,
        refusals: bool = False,
        partial: bool = True,
    ) -> dict[str, Any]:
        return self._data(
            await self._post(query, variables, token=token), refusals=refusals, partial=partial
        )

    async def _post(
        self, query: str, variables: Mapping[str, Any], *, token: str | None = None
    ) -> dict[str, Any]:
        """SCOM's answer as a GraphQL response. Under `application/graphql-response+json` a
        request SCOM refuses before executing it (a query or variables its schema does not
        take) comes with a 4xx status and its errors, and no data: those errors are
        `_data`'s to read, as they would be under a 200."""
        response = await _SCOM.response(
            self._client if token is None else self._landlords,
            "POST",
            "graphql",
            passes=_REQUEST_ERRORS,
            json={"query": query, "variables": dict(variables)},
            headers=_ACCEPT,
            auth=httpx.USE_CLIENT_DEFAULT if token is None else HeaderAuth(_TOKEN, token),
        )
        if response.status_code in _REQUEST_ERRORS:
            try:
                body = await _SCOM.parse(response.content, NAME)
            except UpstreamInvalidResponse:
                body = None
            if not (isinstance(body, dict) and body.get("errors")):
                check_status(response, NAME, Said())
        else:
            body = await _SCOM.parse(response.content, NAME)
        return _SCOM.as_record(body, "returned a body that is not an object")

    @staticmethod
    def _data(
        body: Mapping[str, Any], *, refusals: bool = False, partial: bool = True
    ) -> dict[str, Any]:
        """The answer's data; its errors become refusals, a failure, or (beside data, when
        `partial`) a warning, each keeping SCOM's paths."""
        errors = _upstream_errors(body)
        for item in errors:
            said = str(item["message"])
            code = _ACTIVATION_ERRORS.get(said)
            if code is not None:
                raise Refused(code, said)
            if refusals and "must not be blank" in said:
                raise Refused("VALIDATION_FAILED", said)
        data = body.get("data")
        if errors and (not partial or not isinstance(data, dict)):
            raise UpstreamRejected(
                NAME, f"scom refused the request: {errors[0]['message']}", upstreamErrors=errors
            )
        if not isinstance(data, dict):
            raise UpstreamInvalidResponse(NAME, "scom returned no data.")
        _warn(errors)
        return data


def _said(body: Any) -> Said:
    """A refused request's GraphQL errors, in its words (a 401 saying why the token is not
    taken)."""
    errors = _upstream_errors(body) if isinstance(body, dict) else []
    return Said(message="; ".join(str(error["message"]) for error in errors) or None)


_SCOM = Dialect(NAME, said=_said)
"""Errors that come with a response SCOM executed are `_data`'s; those of a refused request
are passed on in the refusal's message."""

_REQUEST_ERRORS = frozenset({400, 422})
"""The statuses GraphQL-over-HTTP gives a request refused before execution (its document or
variables): its errors are read like any GraphQL response's."""

_ACCEPT = {"Accept": "application/graphql-response+json, application/json"}
"""GraphQL-over-HTTP's media type first, the legacy one for a server that predates it; a
client SHOULD say which it reads."""


def _upstream_errors(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each error's message and path; never raises, as it is read beside a token just kept."""
    errors = body.get("errors") or []
    if not isinstance(errors, list):
        return [{"message": "scom answered errors that are not a list", "path": None}]
    return [
        {"message": str(e.get("message")), "path": e.get("path")}
        for e in errors
        if isinstance(e, dict)
    ]


def _warn(errors: list[dict[str, Any]]) -> None:
    """Errors beside data: the data is used, and the caller learns where SCOM failed."""
    if errors:
        notices.warn(NAME, "; ".join(str(e["message"]) for e in errors), upstreamErrors=errors)


def _property_refusal(said: str, landlord_id: str) -> GatewayError | None:
    """SCOM's refusal of a property it did not make, as the gateway reports it; None for
    words that are not one of its three refusals."""
    if said.endswith("must not be blank"):
        named = said.removesuffix("must not be blank").replace(" ", "").split(",")
        problems = [{"field": _PROPERTY_INPUT.get(n, n), "message": said} for n in named]
        return ValidationFailed(NAME, said, problems)
    if "already exists" in said:
        return Conflict(NAME, f"scom refused the property: {said}")
    if said.startswith("unauthorized"):
        return Refused(
            "LANDLORD_NOT_ACTIVE",
            f"scom no longer takes landlord {landlord_id}'s token (is it still active "
            "there?); nothing was created.",
        )
    return None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _issued_token(data: Any) -> str | None:
    """The `apiToken`, under the mutation's name or the one the document's sample answers with."""
    if not isinstance(data, dict):
        return None
    for key in _PAYLOADS:
        payload = data.get(key)
        token = payload.get("apiToken") if isinstance(payload, dict) else None
        if isinstance(token, str) and token:
            return token
    return None
