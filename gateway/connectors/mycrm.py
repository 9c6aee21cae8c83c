"""MyCRM: JSON REST behind OAuth2 client credentials; landlords, and listings that are units.

Tokens are asked for as RFC 6749 says, with a form; the document's JSON body
is the `token_request = "json"` option, for a server that wants it (a
standard one refuses it). The token endpoint is `token_url` when set, since
the document puts it on another host than the API.

Each listing (`/properties`) is one unit with its landlord and agent. Asked
with `X-MyCRM-Expand-Data: true`, a page of listings carries its landlords in
full, so listings with their landlords cost one request per page. `fields=`
carries the selection. MyCRM documents no filters beyond `status`: other
criteria are applied here, on pages of 100. Its warning header reaches the
caller as `extensions.warnings`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any

import httpx

from gateway import notices
from gateway.config import AbsoluteUrl, ConnectorOptions, connector_options
from gateway.connectors.base import Connector, ListRequest, Page
from gateway.connectors.calls import Dialect, Failure, Said, member
from gateway.connectors.paging import PageNumbers, each
from gateway.connectors.values import day, integer_id, money, number, text
from gateway.errors import BadUserInput, UpstreamInvalidResponse
from gateway.model import (
    Agent,
    AvailableBetween,
    Between,
    Contains,
    Criteria,
    Entity,
    Equals,
    Landlord,
    Link,
    Listing,
    ListingStatus,
    Occupancy,
    Record,
    Selection,
    Unavailable,
    Unit,
)
from gateway.upstream.auth import ClientCredentialsAuth, TokenRequest
from gateway.upstream.client import Upstream

__all__ = ["MyCrmConnector"]

NAME = "mycrm"
MAX_PER_PAGE = 100
EXPAND = {"X-MyCRM-Expand-Data": "true"}
Row = Mapping[str, Any]
_STATUS = {"available": Occupancy.VACANT, "rented": Occupancy.OCCUPIED}
_STATUS_OF = {"VACANT": "available", "OCCUPIED": "rented"}
_LISTING_STATUS = {"available": ListingStatus.AVAILABLE, "rented": ListingStatus.RENTED}
_ERRORS = {
    "ResourceNotFound": Failure.NOT_FOUND,
    "InvalidRequest": Failure.INVALID,
    "InvalidAction": Failure.INVALID,
    "MethodNotAllowed": Failure.REJECTED,
    "InternalError": Failure.UNAVAILABLE,
    "AuthenticationError": Failure.DENIED,
    "AccessDenied": Failure.DENIED,
}
"""The document's error codes, by what each means: it promises only "a 400 range http code"
with them, so the name, not the status, says what happened."""
_FIELDS: dict[Entity, dict[str, tuple[str, ...]]] = {
    Entity.LANDLORD: {
        "name": ("company_name", "first_name", "last_name"),
        "status": ("status",),
        "business_number": ("business_number",),
    },
    Entity.UNIT: {
        "code": ("reference",),
        "rooms": ("rooms",),
        "occupancy": ("status",),
        "housing_type": ("type",),
        "address": ("address",),
        "city": ("city",),
    },
    Entity.LISTING: {
        "title": ("title",),
        "price": ("price", "currency"),
        "bedrooms": ("bedrooms",),
        "status": ("status",),
        "available_from": ("available_from",),
    },
    Entity.AGENT: {
        "first_name": ("first_name",),
        "last_name": ("last_name",),
        "email": ("email",),
        "phone": ("phone",),
    },
}
_RESOURCES: dict[Entity, tuple[str, str, str]] = {
    Entity.LANDLORD: ("landlords", "landlord", "company_name"),
    Entity.UNIT: ("properties", "property", "reference"),
    Entity.LISTING: ("properties", "property", "title"),
    Entity.AGENT: ("users", "user", "last_name"),
}
"""Each type's list, the name one record comes under, and the field its order follows. A
listing and its unit are one record of MyCRM's (`/properties`), with one id."""
_FILTERS: dict[Entity, frozenset[str]] = {
    Entity.LANDLORD: frozenset({"name"}),
    Entity.UNIT: frozenset({"code", "rooms", "occupancy", "available"}),
    Entity.LISTING: frozenset({"status", "bedrooms"}),
    Entity.AGENT: frozenset({"name"}),
}


def _id(row: Row) -> str:
    value = row.get("id")
    if not isinstance(value, int) or isinstance(value, bool):
        raise UpstreamInvalidResponse(NAME, "mycrm returned a record without an integer id.")
    return str(value)


_NO_BUILDINGS = Unavailable(
    NAME,
    Entity.BUILDING,
    "mycrm has no buildings, only listings (units, each with its landlord): "
    "Landlord.buildings cannot be answered from it.",
)
_NO_BUILDING = Unavailable(
    NAME,
    Entity.BUILDING,
    "mycrm listings have an address, not a building: Unit.building cannot be answered from it.",
)
_NO_TENANTS = Unavailable(
    NAME,
    Entity.TENANT,
    "mycrm listings do not say who rents them: Unit.tenants cannot be answered from it.",
)
_NO_MAINTENANCE = Unavailable(
    NAME,
    Entity.MAINTENANCE_REQUEST,
    "mycrm keeps no maintenance: Unit.maintenanceRequests cannot be answered from it.",
)


def _landlord(row: Row) -> Landlord:
    person = " ".join(part for part in (text(row, "first_name"), text(row, "last_name")) if part)
    return Landlord(
        provider=NAME,
        source_id=_id(row),
        name=text(row, "company_name") or person or None,
        status=(text(row, "status") or "").upper() or None,
        business_number=text(row, "business_number"),
        buildings=_NO_BUILDINGS,
    )


def _related(row: Row, name: str, entity: Entity, build: Callable[[Row], Record]) -> Link | None:
    """A related object: in full when the expand header asked for it (so following it costs
    nothing), else by its id."""
    value = row.get(name)
    if isinstance(value, dict):
        return Link(NAME, entity, "id", _id(value), (build(value),))
    if isinstance(value, int) and not isinstance(value, bool):
        return Link(NAME, entity, "id", str(value))
    return None


def _agent(row: Row) -> Agent:
    return Agent(
        provider=NAME,
        source_id=_id(row),
        first_name=text(row, "first_name"),
        last_name=text(row, "last_name"),
        email=text(row, "email"),
        phone=text(row, "phone"),
    )


def _listing(row: Row, selection: Selection | None = None) -> Listing:
    """A listing; its unit is the same record, so when it is asked for it was read in the
    same call, and comes with the listing."""
    bedrooms = row.get("bedrooms")
    unit = Link(NAME, Entity.UNIT, "id", _id(row))
    if selection is not None and "unit" in selection.relations:
        unit = Link(NAME, Entity.UNIT, "id", _id(row), (_unit(row, selection.relations["unit"]),))
    return Listing(
        provider=NAME,
        source_id=_id(row),
        title=text(row, "title"),
        price=money(row.get("price"), row.get("currency")),
        bedrooms=bedrooms if isinstance(bedrooms, int) and not isinstance(bedrooms, bool) else None,
        status=_LISTING_STATUS.get(text(row, "status") or ""),
        available_from=day(row.get("available_from")),
        unit=unit,
        agent=_related(row, "agent", Entity.AGENT, _agent),
    )


def _unit(row: Row, selection: Selection | None = None) -> Unit:
    """A listing's unit; its listing is the same record, so when it is asked for it was read
    in the same call, and comes with the unit."""
    rooms = number(row.get("rooms"))
    listing = Link(NAME, Entity.LISTING, "id", _id(row))
    if selection is not None and "listing" in selection.relations:
        nested = selection.relations["listing"]
        listing = Link(NAME, Entity.LISTING, "id", _id(row), (_listing(row, nested),))
    return Unit(
        provider=NAME,
        source_id=_id(row),
        code=text(row, "reference"),
        rooms=rooms,
        occupancy=_STATUS.get(text(row, "status") or "", Occupancy.UNKNOWN)
        if "status" in row
        else None,
        housing_type=(text(row, "type") or "").upper() or None,
        address=text(row, "address"),
        city=text(row, "city"),
        building=_NO_BUILDING,
        tenants=_NO_TENANTS,
        landlord=_related(row, "landlord", Entity.LANDLORD, _landlord),
        maintenance_requests=_NO_MAINTENANCE,
        listing=listing,
    )


def _free_from(row: Row) -> date | None:
    try:
        return date.fromisoformat(str(row.get("available_from")))
    except ValueError:
        return None


def _local_test(entity: Entity, name: str, condition: Any) -> Callable[[Row], bool] | None:
    match name, condition:
        case "name", Contains(part) if entity is Entity.AGENT:
            wanted = part.casefold()
            return lambda row: any(
                wanted in (text(row, key) or "").casefold() for key in ("first_name", "last_name")
            )
        case "name", Contains(part):
            wanted = part.casefold()
            return lambda row: wanted in (_landlord(row).name or "").casefold()
        case "bedrooms", Between(low, high):
            return lambda row: (
                isinstance(bedrooms := row.get("bedrooms"), int)
                and (low is None or bedrooms >= low)
                and (high is None or bedrooms <= high)
            )
        case "code", Equals(str(value)):
            return lambda row: (text(row, "reference") or "") == value.strip()
        case "rooms", Between(low, high):
            return lambda row: (
                (rooms := number(row.get("rooms"))) is not None
                and ((low is None or rooms >= low) and (high is None or rooms <= high))
            )
        case "available", AvailableBetween(start, _):
            return lambda row: (free := _free_from(row)) is not None and free <= start
    return None


TOKEN_PATH = "auth/oauth/v1/token"


class MyCrmOptions(ConnectorOptions):
    token_url: AbsoluteUrl | None = None
    """The document puts the token endpoint on a host of its own; unset, it is below `url`."""
    token_request: TokenRequest = "form"
    """`form`, as RFC 6749 requires and standard servers insist on; `json`, the body (and
    the plain key:secret) MyCRM's document shows, for a server that wants it."""


class MyCrmConnector(Connector):
    name = NAME
    kind = "rest"
    serves = frozenset(_RESOURCES)
    lists = frozenset(_RESOURCES)
    credentials = ("api_key", "api_secret")
    options = MyCrmOptions

    @classmethod
    def connect(cls, upstream: Upstream) -> MyCrmConnector:
        options = connector_options(MyCrmOptions, NAME, upstream.options)
        auth = ClientCredentialsAuth(
            provider=NAME,
            client=upstream.client(kind="token"),
            url=options.token_url or TOKEN_PATH,
            client_id=upstream.credential("api_key"),
            client_secret=upstream.credential("api_secret"),
            lifetime=1800.0,
            clock=upstream.clock,
            store=upstream.tokens(),
            request=options.token_request,
            fetched=upstream.token_fetched,
        )
        return cls(upstream.client(auth), auth)

    def supports(self, entity: Entity, criteria: Criteria, /) -> bool:
        return entity in self.lists and set(criteria) <= _FILTERS[entity]

    def cannot_filter(self, entity: Entity, criteria: Criteria, /) -> bool:
        return entity in self.lists and not set(criteria) <= _FILTERS[entity]

    async def page(self, entity: Entity, request: ListRequest, /) -> Page:
        path, _, sort = _RESOURCES[entity]
        params: dict[str, Any] = {"sort": sort, "sort_order": "asc"}
        if entity is Entity.AGENT:
            params["role"] = "agent"
        tests = []
        for name, condition in request.criteria.items():
            if name == "occupancy" and isinstance(condition, Equals):
                params["status"] = _STATUS_OF.get(str(condition.value), "unknown")
                continue
            if name == "status" and isinstance(condition, Equals):
                params["status"] = str(condition.value).lower()
                continue
            if name == "available":
                params["status"] = "available"
            test = _local_test(entity, name, condition)
            if test is None:
                raise BadUserInput(f"mycrm cannot filter {entity.value} by {name}.", provider=NAME)
            tests.append(test)
        fields = self._fields(entity, request.selection, local=bool(tests))
        if fields:
            params["fields"] = fields
        headers = _expand(entity, request.selection)

        async def fetch(page: int, size: int) -> tuple[Sequence[Row], int | None]:
            paged = {**params, "page": page, "per_page": size}
            return await _MYCRM.listing(self._client, path, path, params=paged, headers=headers)

        build = _builder(entity, request.selection)
        keep = (lambda row: all(test(row) for test in tests)) if tests else None
        return await PageNumbers(fetch, MAX_PER_PAGE).page(request, build, keep)

    async def fetch(
        self, entity: Entity, by: str, keys: Sequence[str], selection: Selection, /
    ) -> Mapping[str, Sequence[Record]]:
        if by != "id" or entity not in self.serves:
            return {}
        path, resource, _ = _RESOURCES[entity]
        params = {"fields": fields} if (fields := self._fields(entity, selection)) else {}
        headers = _expand(entity, selection)

        async def one(key: str) -> Row | None:
            url = f"{path}/{key}"
            return await _MYCRM.one(self._client, url, resource, params=params, headers=headers)

        found = await each([key for key in keys if integer_id(key)], one)
        build = _builder(entity, selection)
        return {
            key: [build(row)]
            for key, row in found.items()
            if entity is not Entity.AGENT or row.get("role") == "agent"
        }

    @staticmethod
    def _fields(entity: Entity, selection: Selection, local: bool = False) -> str | None:
        """`fields=` for what the query asks (a unit's listing's fields too: they are the same
        record's); everything when rows are filtered here."""
        if local:
            return None
        names = ["id", "role"] if entity is Entity.AGENT else ["id"]
        for kind, asked in _same_record(entity, selection):
            for field in sorted(asked.fields):
                names.extend(_FIELDS.get(kind, {}).get(field, ()))
            held = _RELATED.get(kind, {})
            names.extend(held[name] for name in asked.relations if name in held)
        return ",".join(dict.fromkeys(names))


def _said(body: Any) -> Said:
    """MyCRM's error body: `{"<resource>": "ResourceNotFound", "messages": [...]}`: the name
    is the value of the one member other than `messages`, which name no fields."""
    if not isinstance(body, dict):
        return Said()
    messages = body.get("messages")
    words = [str(m) for m in messages] if isinstance(messages, list) else []
    names = [v for k, v in body.items() if k != "messages" and isinstance(v, str)]
    return Said(name=names[0] if len(names) == 1 else None, message="; ".join(words) or None)


def _heard(response: httpx.Response) -> None:
    """MyCRM's warning header reaches the caller as `extensions.warnings`."""
    warning = response.headers.get("x-mycrm-api-warning")
    if warning:
        notices.warn(NAME, warning)


def _count(body: Any) -> int | None:
    count = member(body, "count")
    return count if isinstance(count, int) else None


_RELATED: dict[Entity, dict[str, str]] = {
    Entity.UNIT: {"landlord": "landlord", "listing": "id"},
    Entity.LISTING: {"agent": "agent", "unit": "id"},
}
"""The field of a record that holds each relation; `id` where the related record is the
record itself (a listing and its unit)."""
_EXPANDED = {
    Entity.UNIT: frozenset({"landlord"}),
    Entity.LISTING: frozenset({"agent"}),
}
"""The relations `X-MyCRM-Expand-Data` carries in full."""


def _expand(entity: Entity, selection: Selection) -> Mapping[str, str] | None:
    """Listings carry their landlords and agents in full when asked, so following either
    costs nothing; a unit's listing is the same record, and its agent comes the same way."""
    asked = _same_record(entity, selection)
    if any(_EXPANDED.get(kind, frozenset()) & set(sel.relations) for kind, sel in asked):
        return EXPAND
    return None


_SAME = {Entity.UNIT: ("listing", Entity.LISTING), Entity.LISTING: ("unit", Entity.UNIT)}
"""A unit and its listing are one MyCRM record: each is the other's relation."""


def _same_record(entity: Entity, selection: Selection) -> list[tuple[Entity, Selection]]:
    """What is asked of one record: its own selection, and its twin's where that is asked."""
    asked = [(entity, selection)]
    if entity in _SAME and (twin := _SAME[entity])[0] in selection.relations:
        asked.append((twin[1], selection.relations[twin[0]]))
    return asked


def _builder(entity: Entity, selection: Selection) -> Callable[[Row], Record]:
    if entity is Entity.UNIT:
        return lambda row: _unit(row, selection)
    if entity is Entity.LISTING:
        return lambda row: _listing(row, selection)
    return _landlord if entity is Entity.LANDLORD else _agent


_MYCRM = Dialect(NAME, _said, _ERRORS, heard=_heard, total=_count)
