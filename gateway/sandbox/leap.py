"""LEAP property relationships: REST with XML bodies in the `leap-ws-v1.0` namespace.

HTTP Basic auth (assumed: the document only says "authenticate"). Every
endpoint of the document: get by identifier or external reference, set the
external reference (409 when another relationship holds it), acknowledge by
identifiers or external references (clearing `unacked-since` on the
relationship only), associate an account with a property (409, 404, 400 for an
account number that is not 8 digits), and the list with `acked`, `limit`
(default and maximum 100) and `offset`. Relationships end (`<end-date>`,
assumed), they are never removed. Request bodies are parsed with defusedxml.
"""

from __future__ import annotations

import base64
import binascii
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from gateway.sandbox.data import World
from gateway.sandbox.server import Handler, ProviderState, served

__all__ = ["CREDENTIALS", "LEGACY_FORM", "NAMESPACE", "create_app", "extid_of", "gateway_options"]

NAMESPACE = "http://schema.majitek.com/leap-ws-v1.0"
CREDENTIALS = {"username": "propgate", "password": "sandbox-leap-password"}
"""The sandbox's only account; `gateway serve` without configuration uses it."""

LEGACY_FORM = {"extid": "XREF{id}", "reference": "primmo:{id}"}
"""How an earlier integration named Primmo's buildings in LEAP, in the form of the document's
own example (`"XREF1"`): every fourth Primmo building's property still carries it."""

BASE = "/api/v1/property-relationship"
HOST = "https://sandbox.leapcities.example"
MAX_LIMIT = 100
_ACCOUNT = re.compile(r"^\d{8}$")
_XML = "application/xml"


@dataclass
class _Ref:
    identifier: str
    kind: str
    extid: str | None
    unacked_since: str | None


@dataclass
class _Relationship:
    identifier: str
    property: _Ref
    account: _Ref
    role: str
    start: date
    end: date | None = None
    extid: str | None = None
    unacked_since: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _stamp(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")


def extid_of(world: World, kind: str, identifier: int) -> str | None:
    """The `extid` a reference carries: how the gateway names the record, or the legacy form."""
    reference = world.references.get((kind, identifier))
    if kind == "building" and reference == f"primmo:{identifier}" and identifier % 4 == 0:
        return LEGACY_FORM["extid"].format(id=identifier)
    return reference


def gateway_options(_root: str) -> dict[str, Any]:
    """A gateway on this sandbox reads the legacy form as the record it names."""
    return {"extid_forms": [LEGACY_FORM]}


def account_number(party: str, party_id: int) -> str:
    """Tenants' accounts start with 0, landlords' with 9: eight digits, as every sample shows."""
    return f"{'9' if party == 'landlord' else '0'}{party_id:07d}"


class _Store:
    def __init__(self, world: World, now: float) -> None:
        stamp = _stamp(now)
        self.properties = {
            f"PP-{b.id}": _Ref(f"PP-{b.id}", "properties", extid_of(world, "building", b.id), stamp)
            for b in world.buildings
        }
        self.accounts = {
            account_number("tenant", t.id): _Ref(
                account_number("tenant", t.id),
                "customers",
                world.references.get(("tenant", t.id)),
                stamp,
            )
            for t in world.tenants
        }
        self.accounts.update(
            {
                account_number("landlord", landlord.id): _Ref(
                    account_number("landlord", landlord.id),
                    "customers",
                    world.references.get(("landlord", landlord.id)),
                    stamp,
                )
                for landlord in world.landlords
            }
        )
        self.relationships: dict[str, _Relationship] = {}
        for r in world.relationships:
            identifier = str(r.id)
            self.relationships[identifier] = _Relationship(
                identifier=identifier,
                property=self.properties[f"PP-{r.building_id}"],
                account=self.accounts[account_number(r.party, r.party_id)],
                role=r.role,
                start=r.start,
                end=r.end,
                unacked_since=stamp if r.id % 3 else None,
            )
        self.next_id = max((int(k) for k in self.relationships), default=10_000_000) + 1

    def by_extid(self, extid: str) -> _Relationship | None:
        return next((r for r in self.relationships.values() if r.extid == extid), None)


def _linked(
    tag: str, identifier: str, ref: str, unacked_since: str | None, extid: str | None
) -> ET.Element:
    """LEAP marks relationships and their references alike: identifier, link, ack, extid."""
    element = ET.Element(f"{{{NAMESPACE}}}{tag}", identifier=identifier, ref=ref)
    if unacked_since:
        element.set("unacked-since", unacked_since)
    if extid:
        element.set("extid", extid)
    return element


def _ref_element(tag: str, ref: _Ref) -> ET.Element:
    link = f"{HOST}/api/v1/{ref.kind}/{ref.identifier}"
    return _linked(tag, ref.identifier, link, ref.unacked_since, ref.extid)


def _element(rel: _Relationship) -> ET.Element:
    link = f"{HOST}{BASE}/{rel.identifier}"
    element = _linked("property-relationship", rel.identifier, link, rel.unacked_since, rel.extid)
    element.append(_ref_element("property", rel.property))
    element.append(_ref_element("account", rel.account))
    ET.SubElement(element, f"{{{NAMESPACE}}}relationship").text = rel.role
    ET.SubElement(element, f"{{{NAMESPACE}}}start-date").text = rel.start.isoformat()
    if rel.end is not None:
        ET.SubElement(element, f"{{{NAMESPACE}}}end-date").text = rel.end.isoformat()
    return element


def _xml(element: ET.Element, status: int = 200, **headers: str) -> Response:
    ET.register_namespace("", NAMESPACE)
    body = ET.tostring(element, encoding="utf-8", xml_declaration=True)
    return Response(body, status_code=status, media_type=_XML, headers=headers)


def _problem(status: int, message: str) -> Response:
    error = ET.Element(f"{{{NAMESPACE}}}error", status=str(status))
    error.text = message
    return _xml(error, status)


async def _parse(request: Request) -> ET.Element | None:
    try:
        return SafeET.fromstring(await request.body(), forbid_dtd=True)
    except (ET.ParseError, DefusedXmlException, ValueError):
        return None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def create_app(world: World, state: ProviderState) -> ASGIApp:
    return served(state, _Service(world, state).routes())


class _Service:
    """One LEAP: its store of relationships, and a handler for each route."""

    def __init__(self, world: World, state: ProviderState) -> None:
        self.world = world
        self.state = state
        self.store = state.records = _Store(world, state.clock())

    def authorized(self, request: Request) -> bool:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return scheme.lower() == "basic" and (user, password) == (
            CREDENTIALS["username"],
            CREDENTIALS["password"],
        )

    def guarded(self, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            if not self.authorized(request):
                response = _problem(401, "Authentication required.")
                response.headers["WWW-Authenticate"] = 'Basic realm="leap"'
                return response
            return await handler(request)

        return endpoint

    async def listing(self, request: Request) -> Response:
        params = request.query_params
        try:
            limit = min(int(params.get("limit", str(MAX_LIMIT))), MAX_LIMIT)
            offset = int(params.get("offset", "0"))
        except ValueError:
            return _problem(400, "limit and offset are integers.")
        if limit < 0 or offset < 0:
            return _problem(400, "limit and offset are not negative.")
        acked = params.get("acked")
        if acked not in (None, "true", "false"):
            return _problem(400, "acked is true or false.")
        rows = [
            rel
            for rel in self.store.relationships.values()
            if acked is None or (rel.unacked_since is None) == (acked == "true")
        ]
        rows.sort(key=lambda rel: int(rel.identifier))
        root = ET.Element(f"{{{NAMESPACE}}}property-relationships")
        for rel in rows[offset : offset + limit]:
            root.append(_element(rel))
        return _xml(root)

    async def one(self, request: Request) -> Response:
        rel = self.store.relationships.get(request.path_params["identifier"])
        return (
            _xml(_element(rel)) if rel else _problem(404, "The supplied identifier doesn't exist.")
        )

    async def by_extid(self, request: Request) -> Response:
        rel = self.store.by_extid(request.path_params["extid"])
        if rel is None:
            return _problem(404, "The supplied external reference doesn't exist.")
        return _xml(_element(rel))

    async def set_extid(self, request: Request) -> Response:
        rel = self.store.relationships.get(request.path_params["identifier"])
        if rel is None:
            return _problem(404, "The supplied property relationship identifier does not exist.")
        form = await request.form()
        extid = form.get("extid")
        if not isinstance(extid, str) or not extid.strip():
            return _problem(400, "extid is required.")
        holder = self.store.by_extid(extid)
        if holder is not None and holder is not rel:
            return _problem(409, "The supplied external identifier is already in use.")
        rel.extid = extid
        rel.unacked_since = _stamp(self.state.clock())
        ref = ET.Element(
            f"{{{NAMESPACE}}}ref",
            ref=f"{HOST}{BASE}/{rel.identifier}",
            identifier=rel.identifier,
            extid=extid,
        )
        return _xml(ref)

    def acknowledge(self, external: bool) -> Handler:
        async def endpoint(request: Request) -> Response:
            root = await _parse(request)
            if root is None or _local(root.tag) != "acknowledgements":
                return _problem(400, "The body must be <acknowledgements>.")
            keys = [
                (item.text or "").strip() for item in root if _local(item.tag) == "acknowledgement"
            ]
            found = [
                self.store.by_extid(k) if external else self.store.relationships.get(k)
                for k in keys
            ]
            if not keys or any(rel is None for rel in found):
                return _problem(
                    404,
                    "The supplied property relationship identifier / external "
                    "reference does not exist.",
                )
            for rel in found:
                if rel is not None:
                    rel.unacked_since = None
            return Response(status_code=204)

        return endpoint

    async def associate(self, request: Request) -> Response:
        root = await _parse(request)
        if root is None or _local(root.tag) != "associated-account":
            return _problem(400, "The body must be <associated-account>.")
        parts = {_local(child.tag): child for child in root}
        account = parts.get("account")
        prop = parts.get("property")
        role = (parts["relationship"].text or "").strip() if "relationship" in parts else ""
        start_text = (parts["start-date"].text or "").strip() if "start-date" in parts else ""
        number = account.get("identifier", "") if account is not None else ""
        if not _ACCOUNT.match(number):
            return _problem(400, "The supplied account number is in invalid format.")
        if role not in ("OWNER", "OCCUPIER") or prop is None:
            return _problem(400, "relationship must be OWNER or OCCUPIER, with a property.")
        try:
            start = date.fromisoformat(start_text)
        except ValueError:
            return _problem(400, "start-date must be an ISO date.")
        if number not in self.store.accounts:
            return _problem(404, "The supplied account doesn't exist.")
        property_ref = self.store.properties.get(prop.get("identifier", ""))
        if property_ref is None:
            return _problem(404, "The supplied property doesn't exist.")
        for rel in self.store.relationships.values():
            if (rel.account.identifier, rel.property.identifier, rel.role, rel.end) == (
                number,
                property_ref.identifier,
                role,
                None,
            ):
                return _problem(409, "A conflicting property-account association exists.")
        identifier = str(self.store.next_id)
        self.store.next_id += 1
        rel = _Relationship(
            identifier,
            property_ref,
            self.store.accounts[number],
            role,
            start,
            unacked_since=_stamp(self.state.clock()),
        )
        self.store.relationships[identifier] = rel
        return _xml(_element(rel), 201, Location=f"{HOST}{BASE}/{identifier}")

    async def end(self, request: Request) -> Response:
        """Sandbox admin: ends a relationship, as a LEAP operator would."""
        rel = self.store.relationships.get(request.query_params.get("identifier", ""))
        if rel is None:
            return _problem(404, "No such relationship.")
        rel.end = date.fromisoformat(request.query_params.get("date", self.world.today.isoformat()))
        rel.unacked_since = _stamp(self.state.clock())
        return Response(status_code=204)

    def routes(self) -> list[Route]:
        return [
            Route(f"{BASE}/", self.guarded(self.listing), methods=["GET"]),
            Route(f"{BASE}", self.guarded(self.listing), methods=["GET"]),
            Route(f"{BASE}/", self.guarded(self.associate), methods=["POST"]),
            Route(
                f"{BASE}/acked", self.guarded(self.acknowledge(external=False)), methods=["POST"]
            ),
            Route(
                f"{BASE}/external/acked",
                self.guarded(self.acknowledge(external=True)),
                methods=["POST"],
            ),
            Route(f"{BASE}/extid/{{extid:path}}", self.guarded(self.by_extid), methods=["GET"]),
            Route(f"{BASE}/{{identifier}}/extid", self.guarded(self.set_extid), methods=["POST"]),
            Route(f"{BASE}/{{identifier}}", self.guarded(self.one), methods=["GET"]),
            Route("/_sandbox/end-relationship", self.end, methods=["POST"]),
        ]
