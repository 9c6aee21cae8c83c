"""LEAP: property relationships over REST with XML bodies, behind HTTP Basic.

Every body is untrusted: it is parsed by `untrusted_xml` (defusedxml, which
refuses any DTD, entity declaration or external reference, fed in slices with
limits on depth, elements and text), so a hostile response is an
`UPSTREAM_INVALID_RESPONSE` for LEAP's part and nothing else. Requests are
built with ElementTree, which escapes every value placed in them.

LEAP has no batch lookup and no filter by property or account: relationships
for a set of buildings or parties are found by one scan of the list per
query level (pages of 100), grouped by the references' `extid`, which holds
how the gateway names the record ("primmo:9"), or another form an earlier
integration wrote, which `extid_forms` maps to it ("XREF9" -> "primmo:9").
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from string import Formatter
from typing import ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, model_validator

from gateway.config import ConnectorOptions, connector_options
from gateway.connectors.base import Connector, ListRequest, Page
from gateway.connectors.calls import Dialect, Said
from gateway.connectors.capabilities import RelationshipRecords
from gateway.connectors.paging import Offsets, each
from gateway.connectors.untrusted_xml import parse_untrusted
from gateway.connectors.values import day, moment, path_segment
from gateway.errors import BadUserInput, Refused, UpstreamInvalidResponse
from gateway.model import Criteria, Entity, Equals, Link, Record, Relationship, Selection
from gateway.upstream.client import Upstream

__all__ = ["LeapConnector"]

NAME = "leap"
NS = "http://schema.majitek.com/leap-ws-v1.0"
BASE = "api/v1/property-relationship"
MAX_LIMIT = 100
_PARTY = {"OWNER": Entity.LANDLORD, "OCCUPIER": Entity.TENANT}


def _q(tag: str) -> str:
    return f"{{{NS}}}{tag}"


class ExtidForm(BaseModel):
    """An `extid` written in another form than the gateway's: `{name}` stands for any text
    (`"XREF{id}"`), and `reference` says which record it names (`"primmo:{id}"`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    extid: str
    reference: str

    @model_validator(mode="after")
    def _same_names(self) -> ExtidForm:
        """Checked here, as the pattern is made, so a form that cannot be read stops
        start-up with its key rather than a traceback once LEAP is connected."""
        given = _names("extid", self.extid)
        if len(set(given)) < len(given):
            twice = next(name for name in given if given.count(name) > 1)
            raise ValueError(f"extid {self.extid!r} names {{{twice}}} more than once")
        if not given:
            raise ValueError(f"extid {self.extid!r} has no {{name}} to read")
        named = _names("reference", self.reference)
        if not set(named) <= set(given) or ":" not in self.reference.partition("{")[0]:
            raise ValueError(
                f"reference {self.reference!r} must be '<provider>:...' using only "
                f"names that extid {self.extid!r} has"
            )
        self.pattern()
        return self

    def pattern(self) -> re.Pattern[str]:
        parts = []
        for text, name, _, _ in Formatter().parse(self.extid):
            parts.append(re.escape(text))
            if name:
                parts.append(f"(?P<{name}>.+?)")
        return re.compile("".join(parts))


def _names(key: str, template: str) -> list[str]:
    """The `{name}`s of a template, in order: each a plain name, as the pattern's groups
    and `str.format` both need."""
    found = []
    for _, name, spec, conversion in Formatter().parse(template):
        if name is None:
            continue
        if not name.isidentifier():
            raise ValueError(f"{key} {template!r}: {{{name}}} is not a name, '{name}'")
        if spec or conversion:
            raise ValueError(f"{key} {template!r}: {{{name}}} takes no conversion or format")
        found.append(name)
    return found


class LeapOptions(ConnectorOptions):
    extid_forms: list[ExtidForm] = []
    """Other forms of `extid` than `"<provider>:<source id>"`, tried first, in order."""


class _References:
    """Reads a reference's `extid` as the record it names."""

    def __init__(self, forms: Sequence[ExtidForm]) -> None:
        self._forms = [(form.pattern(), form.reference) for form in forms]

    def link(self, extid: str | None, entity: Entity) -> Link | None:
        """A configured form, else "<provider>:<source id>"; anything else names nothing."""
        text = (extid or "").strip()
        for pattern, reference in self._forms:
            found = pattern.fullmatch(text)
            if found is not None:
                text = reference.format(**found.groupdict())
                break
        provider, _, key = text.partition(":")
        return Link(provider, entity, "id", key) if provider and key else None

    def relationship(self, element: ET.Element) -> Relationship:
        identifier = element.get("identifier")
        if element.tag != _q("property-relationship") or not identifier:
            raise UpstreamInvalidResponse(
                NAME, "leap returned a relationship without an identifier."
            )
        prop = element.find(_q("property"))
        account = element.find(_q("account"))
        role = (element.findtext(_q("relationship")) or "").strip().upper() or None
        return Relationship(
            provider=NAME,
            source_id=identifier,
            role=role,
            start_date=day(element.findtext(_q("start-date"))),
            end_date=day(element.findtext(_q("end-date"))),
            external_id=element.get("extid"),
            unacked_since=moment(element.get("unacked-since")),
            account_number=account.get("identifier") if account is not None else None,
            property_code=prop.get("identifier") if prop is not None else None,
            building=self.link(prop.get("extid") if prop is not None else None, Entity.BUILDING),
            party=self.link(
                account.get("extid") if account is not None else None,
                _PARTY.get(role or "", Entity.TENANT),
            ),
        )


def _current(record: Relationship, today: date) -> bool:
    return record.end_date is None or record.end_date >= today


def _role_is(role: str) -> Callable[[Relationship], bool]:
    return lambda record: record.role == role


def _current_is(wanted: bool, today: date) -> Callable[[Relationship], bool]:
    return lambda record: _current(record, today) == wanted


def _matches(criteria: Criteria, today: date) -> Callable[[Relationship], bool] | None:
    tests: list[Callable[[Relationship], bool]] = []
    for name, condition in criteria.items():
        match name, condition:
            case "role", Equals(str(role)):
                tests.append(_role_is(role))
            case "current", Equals(bool(wanted)):
                tests.append(_current_is(wanted, today))
            case "acknowledged", Equals(bool()):
                continue
            case _:
                raise BadUserInput(f"leap cannot filter relationships by {name}.", provider=NAME)
    return (lambda r: all(test(r) for test in tests)) if tests else None


class LeapConnector(Connector, RelationshipRecords):
    name = NAME
    kind = "xml"
    selects_fields = False
    embeds: ClassVar[Mapping[Entity, frozenset[str]] | None] = {}
    serves = frozenset({Entity.RELATIONSHIP})
    lists = frozenset({Entity.RELATIONSHIP})
    credentials = ("username", "password")
    references = frozenset({"building", "party"})
    options = LeapOptions

    def __init__(
        self,
        client: httpx.AsyncClient,
        today: Callable[[], date],
        forms: Sequence[ExtidForm] = (),
    ) -> None:
        super().__init__(client)
        self._today = today
        self._references = _References(forms)

    @classmethod
    def connect(cls, upstream: Upstream) -> LeapConnector:
        auth = httpx.BasicAuth(upstream.credential("username"), upstream.credential("password"))
        options = connector_options(LeapOptions, NAME, upstream.options)
        return cls(
            upstream.client(auth),
            upstream.today,
            options.extid_forms,
        )

    def supports(self, entity: Entity, criteria: Criteria, /) -> bool:
        return entity is Entity.RELATIONSHIP and set(criteria) <= {
            "acknowledged",
            "role",
            "current",
        }

    async def page(self, _entity: Entity, request: ListRequest, /) -> Page:
        params: dict[str, str] = {}
        acknowledged = request.criteria.get("acknowledged")
        if isinstance(acknowledged, Equals):
            params["acked"] = "true" if acknowledged.value else "false"
        keep = _matches(request.criteria, self._today())
        return await self._relationships(params).page(request, _as_record, keep)

    async def fetch(
        self, entity: Entity, by: str, keys: Sequence[str], _selection: Selection, /
    ) -> Mapping[str, Sequence[Record]]:
        if entity is not Entity.RELATIONSHIP:
            return {}
        if by in ("id", "external_id"):
            prefix = "extid/" if by == "external_id" else ""
            segments = {key: segment for key in keys if (segment := path_segment(key))}
            found = await each(segments, lambda key: self._one(f"{BASE}/{prefix}{segments[key]}"))
            return {key: [record] for key, record in found.items()}
        if by in self.references:
            wanted = set(keys)
            grouped: dict[str, list[Record]] = defaultdict(list)
            for record in await self._relationships({}).all():
                link = record.building if by == "building" else record.party
                reference = f"{link.provider}:{link.key}" if isinstance(link, Link) else None
                if reference in wanted:
                    grouped[reference].append(record)
            return grouped
        return {}

    async def set_external_id(self, identifier: str, external_id: str, /) -> Relationship:
        segment = path_segment(identifier)
        if segment is None:
            raise Refused("NOT_FOUND", f"leap has no relationship {identifier}.")
        missing = Refused("NOT_FOUND", f"leap has no relationship {identifier}.")
        in_use = Refused("EXTERNAL_ID_IN_USE", f"'{external_id}' is used by another relationship.")
        await _LEAP.response(
            self._client,
            "POST",
            f"{BASE}/{segment}/extid",
            refusals={404: lambda _: missing, 409: lambda _: in_use},
            data={"extid": external_id},
        )
        record = await self._one(f"{BASE}/{segment}")
        if record is None:
            raise Refused("NOT_FOUND", f"leap has no relationship {identifier}.")
        return record

    async def acknowledge(self, keys: Sequence[str], external: bool, /) -> None:
        root = ET.Element("acknowledgements")
        for key in keys:
            ET.SubElement(root, "acknowledgement").text = key
        path = f"{BASE}/external/acked" if external else f"{BASE}/acked"
        missing = Refused(
            "NOT_FOUND", "At least one relationship does not exist; none was acknowledged."
        )
        await _LEAP.response(
            self._client,
            "POST",
            path,
            refusals={404: lambda _: missing},
            content=ET.tostring(root),
            headers=_XML,
        )

    async def associate(
        self, account: str, property_code: str, role: str, start: date, /
    ) -> Relationship:
        root = ET.Element("associated-account")
        ET.SubElement(root, "account", identifier=account)
        ET.SubElement(root, "property", identifier=property_code)
        ET.SubElement(root, "relationship").text = role
        ET.SubElement(root, "start-date").text = start.isoformat()
        created = await _LEAP.body(
            self._client,
            "POST",
            f"{BASE}/",
            refusals={
                400: _refusal(
                    "INVALID_ACCOUNT_NUMBER", "The account number is not in LEAP's format."
                ),
                404: _refusal("NOT_FOUND", "LEAP has no such account or property."),
                409: _refusal("CONFLICT", "This account already holds that role on that property."),
            },
            content=ET.tostring(root),
            headers=_XML,
        )
        return self._references.relationship(created)

    async def _one(self, path: str) -> Relationship | None:
        found = await _LEAP.found(self._client, "GET", path)
        return None if found is None else self._references.relationship(found)

    def _relationships(self, params: Mapping[str, str]) -> Offsets[Relationship]:
        async def fetch(offset: int, limit: int) -> tuple[Sequence[Relationship], bool, None]:
            paged = {**params, "limit": str(limit), "offset": str(offset)}
            root = await _LEAP.body(self._client, "GET", f"{BASE}/", params=paged)
            if root.tag != _q("property-relationships"):
                raise UpstreamInvalidResponse(NAME, "leap returned a list of something else.")
            rows = [self._references.relationship(child) for child in root]
            return rows, len(rows) < limit, None

        return Offsets(fetch, MAX_LIMIT)


def _text(root: ET.Element) -> Said:
    """LEAP's error bodies are an element whose text is the reason."""
    return Said(message=(root.text or "").strip() or None)


def _refusal(code: str, otherwise: str) -> Callable[[Said], Refused]:
    return lambda said: Refused(code, said.message or otherwise)


def _as_record(record: Relationship) -> Relationship:
    return record


_LEAP = Dialect(NAME, _text, parse=parse_untrusted)
_XML = {"Content-Type": "application/xml"}
