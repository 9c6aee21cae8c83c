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
from gateway.connectors.values import integer_id, number, text
from gateway.errors import BadUserInput, UpstreamInvalidResponse
from gateway.model import (
    AvailableBetween,
    Between,
    Contains,
    Criteria,
    Entity,
    Equals,
    Landlord,
    Link,
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


def _unit(row: Row) -> Unit:
    rooms = number(row.get("rooms"))
    owner = row.get("landlord")
    landlord = None
    if isinstance(owner, dict):
        landlord = Link(NAME, Entity.LANDLORD, "id", _id(owner), (_landlord(owner),))
    elif isinstance(owner, int) and not isinstance(owner, bool):
        landlord = Link(NAME, Entity.LANDLORD, "id", str(owner))
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
        landlord=landlord,
    )


def _free_from(row: Row) -> date | None:
    try:
        return date.fromisoformat(str(row.get("available_from")))
    except ValueError:
        return None


def _local_test(name: str, condition: Any) -> Callable[[Row], bool] | None:
    match name, condition:
        case "name", Contains(part):
            wanted = part.casefold()
            return lambda row: wanted in (_landlord(row).name or "").casefold()
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
    serves = frozenset({Entity.LANDLORD, Entity.UNIT})
    lists = frozenset({Entity.LANDLORD, Entity.UNIT})
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
        allowed = (
            {"name"} if entity is Entity.LANDLORD else {"code", "rooms", "occupancy", "available"}
        )
        return entity in self.lists and set(criteria) <= allowed

    async def page(self, entity: Entity, request: ListRequest, /) -> Page:
        path, sort = (
            ("landlords", "company_name")
            if entity is Entity.LANDLORD
            else ("properties", "reference")
        )
        params: dict[str, Any] = {"sort": sort, "sort_order": "asc"}
        tests = []
        for name, condition in request.criteria.items():
            if name == "occupancy" and isinstance(condition, Equals):
                params["status"] = _STATUS_OF.get(str(condition.value), "unknown")
                continue
            if name == "available":
                params["status"] = "available"
            test = _local_test(name, condition)
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

        build = _landlord if entity is Entity.LANDLORD else _unit
        keep = (lambda row: all(test(row) for test in tests)) if tests else None
        return await PageNumbers(fetch, MAX_PER_PAGE).page(request, build, keep)

    async def fetch(
        self, entity: Entity, by: str, keys: Sequence[str], selection: Selection, /
    ) -> Mapping[str, Sequence[Record]]:
        if by != "id" or entity not in self.serves:
            return {}
        resource, path = (
            ("landlord", "landlords") if entity is Entity.LANDLORD else ("property", "properties")
        )
        params = {"fields": fields} if (fields := self._fields(entity, selection)) else {}
        headers = _expand(entity, selection)

        async def one(key: str) -> Row | None:
            url = f"{path}/{key}"
            return await _MYCRM.one(self._client, url, resource, params=params, headers=headers)

        found = await each([key for key in keys if integer_id(key)], one)
        build = _landlord if entity is Entity.LANDLORD else _unit
        return {key: [build(row)] for key, row in found.items()}

    @staticmethod
    def _fields(entity: Entity, selection: Selection, local: bool = False) -> str | None:
        """`fields=` for what the query asks; everything when rows are filtered here."""
        if local:
            return None
        names = ["id"]
        for field in sorted(selection.fields):
            names.extend(_FIELDS.get(entity, {}).get(field, ()))
        if entity is Entity.UNIT and "landlord" in selection.relations:
            names.append("landlord")
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


def _expand(entity: Entity, selection: Selection) -> Mapping[str, str] | None:
    """Listings carry their landlords in full when asked, so a unit's landlord costs nothing."""
    return EXPAND if entity is Entity.UNIT and "landlord" in selection.relations else None


_MYCRM = Dialect(NAME, _said, _ERRORS, heard=_heard, total=_count)
