"""The connector contract, the same for every provider: list in order, continue, stop, count,
refuse what it cannot do, fetch by key; and each capability found by type."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.clock import ManualClock
from gateway.config import Traffic
from gateway.connectors import CONNECTORS, Connector
from gateway.connectors.base import ListRequest, Page, Position
from gateway.connectors.capabilities import (
    CAPABILITIES,
    Capability,
    ChargeWrites,
    LandlordOnboarding,
    LeaseWrites,
    MaintenanceWrites,
    PaymentWrites,
    PropertyCreation,
    RelationshipRecords,
    RentChanges,
    TenantWrites,
    UnitStatusWrites,
    WebhookSource,
)
from gateway.errors import BadUserInput, InvalidCursor
from gateway.federation.fan_out import SORT_FIELDS, SORT_KEYS, Federation, PageLimits
from gateway.model import ENTITY_OF, Criteria, Entity, Equals, Link, Record, Selection
from gateway.sandbox import Sandbox
from gateway.state.vault import Vault
from gateway.upstream.client import Upstream
from tests.conftest import Client, error_codes

_ORDER = {
    Entity.LANDLORD: ("name",),
    Entity.BUILDING: ("name",),
    Entity.UNIT: ("code",),
    Entity.TENANT: ("last_name", "first_name"),
    Entity.RELATIONSHIP: (),
    Entity.LEASE: ("start_date",),
    Entity.CHARGE: ("due_on",),
    Entity.PAYMENT: ("paid_at",),
    Entity.MAINTENANCE_REQUEST: ("reported_at",),
    Entity.WORK_ORDER: ("scheduled_for",),
    Entity.VENDOR: ("name",),
    Entity.LISTING: ("title",),
    Entity.AGENT: ("last_name", "first_name"),
}
"""The sort key's fields as they are: a provider may collate by code point, not ignoring case
(Primmo's strict server), and its own order is the one the gateway keeps."""

CASES = [
    (name, entity)
    for name, cls in sorted(CONNECTORS.items())
    for entity in sorted(cls.lists, key=lambda e: e.value)
]


@pytest.fixture
async def connectors(sandbox: Sandbox, clock: ManualClock) -> AsyncIterator[dict[str, Connector]]:
    """Every provider as its client has licensed it whole (Primmo's statements included)."""
    sandbox.states["primmo"].records.modules["FinancialStatements"] = True
    vault = Vault.ephemeral()
    sandbox.hand_over_tokens(vault)
    upstreams = [
        Upstream(
            name=name,
            base_url=f"http://127.0.0.1/sandbox/{name}",
            credentials=Sandbox.credentials(name),
            traffic=Traffic(),
            clock=clock,
            transport=sandbox.transport(name),
            vault=vault,
            options=Sandbox.options(name, "http://127.0.0.1"),
        )
        for name in CONNECTORS
    ]
    try:
        yield {up.name: CONNECTORS[up.name].connect(up) for up in upstreams}
    finally:
        for upstream in upstreams:
            await upstream.aclose()


class _SettingCookies(httpx.AsyncBaseTransport):
    """A provider that sets a cookie on every answer, as a load balancer's affinity may."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.cookies_sent: list[str | None] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.cookies_sent.append(request.headers.get("Cookie"))
        response = await self.inner.handle_async_request(request)
        response.headers["Set-Cookie"] = f"affinity={len(self.cookies_sent)}; Path=/"
        return response


@pytest.mark.parametrize("provider", sorted(CONNECTORS))
async def test_no_cookie_a_provider_sets_goes_back_with_a_later_request(
    sandbox: Sandbox, clock: ManualClock, provider: str
) -> None:
    """A provider's client is shared by every caller (and SCOM's by every landlord's token):
    a cookie kept from one answer would go out with everyone's next request."""
    vault = Vault.ephemeral()
    sandbox.hand_over_tokens(vault)
    transport = _SettingCookies(sandbox.transport(provider))
    upstream = Upstream(
        name=provider,
        base_url=f"http://127.0.0.1/sandbox/{provider}",
        credentials=Sandbox.credentials(provider),
        traffic=Traffic(),
        clock=clock,
        transport=transport,
        vault=vault,
        options=Sandbox.options(provider, "http://127.0.0.1"),
    )
    connector = CONNECTORS[provider].connect(upstream)
    entity = min(connector.lists, key=lambda e: e.value)
    try:
        first = await connector.page(entity, ListRequest({}, Selection(), limit=2))
        await connector.page(
            entity, ListRequest({}, Selection(), limit=2, position=first.positions[-1])
        )
    finally:
        await upstream.aclose()

    assert len(transport.cookies_sent) >= 2
    assert transport.cookies_sent == [None] * len(transport.cookies_sent)


@pytest.mark.parametrize(("provider", "entity"), CASES, ids=[f"{p}-{e.value}" for p, e in CASES])
async def test_pages_continue_where_they_stopped_in_the_sort_order(
    connectors: dict[str, Connector], provider: str, entity: Entity
) -> None:
    connector = connectors[provider]
    selection = Selection(SORT_FIELDS[entity])
    first = await connector.page(entity, ListRequest({}, selection, limit=3, count=True))
    second = await connector.page(
        entity, ListRequest({}, selection, limit=3, position=first.positions[-1])
    )

    records = [*first.records, *second.records]
    assert len(first.records) == 3 and first.total is not None and first.total >= 6
    assert all(record.provider == provider for record in records)
    assert len({record.source_id for record in records}) == 6
    keys = [SORT_KEYS[entity](record) for record in records]
    exact = [
        tuple(str(getattr(record, name) or "") for name in _ORDER[entity]) for record in records
    ]
    assert keys == sorted(keys) or exact == sorted(exact)


@pytest.mark.parametrize(("provider", "entity"), CASES, ids=[f"{p}-{e.value}" for p, e in CASES])
async def test_fetch_by_id_matches_by_key(
    connectors: dict[str, Connector], provider: str, entity: Entity
) -> None:
    connector = connectors[provider]
    listed = await connector.page(entity, ListRequest({}, Selection(), limit=4))
    ids = [record.source_id for record in listed.records]

    found = await connector.fetch(entity, "id", [*reversed(ids), "404404404"], Selection())

    assert set(found) == set(ids)
    assert all(records[0].source_id == key for key, records in found.items())


SERVED = [
    (name, entity)
    for name, cls in sorted(CONNECTORS.items())
    for entity in sorted(cls.serves - cls.lists, key=lambda e: e.value)
]


async def _reached(connector: Connector, entity: Entity, depth: int = 4) -> list[Link]:
    """Links to records of `entity` found by following links from the connector's own root
    lists, as a caller's query would reach a type its provider serves but does not list."""
    frontier: list[Record] = []
    for listed in sorted(type(connector).lists, key=lambda e: e.value):
        frontier += (await connector.page(listed, ListRequest({}, Selection(), limit=3))).records
    followed: set[Link] = set()
    for _ in range(depth):
        links = {
            link
            for record in frontier
            for name in record.__slots__
            if isinstance(link := getattr(record, name), Link)
            and link.provider == connector.name
            and link not in followed
        }
        found = sorted(
            (link for link in links if link.entity is entity and link.prefetched is None),
            key=lambda one: one.key,
        )
        if found:
            return found[:5]
        followed |= links
        frontier = []
        for link in sorted(links, key=lambda one: (one.entity.value, one.by, one.key))[:20]:
            if link.prefetched is not None:
                frontier += link.prefetched
                continue
            fetched = await connector.fetch(link.entity, link.by, [link.key], Selection())
            frontier += fetched.get(link.key, ())
    return []


@pytest.mark.parametrize(("provider", "entity"), SERVED, ids=[f"{p}-{e.value}" for p, e in SERVED])
async def test_what_it_serves_but_does_not_list_is_fetched_by_key(
    connectors: dict[str, Connector], provider: str, entity: Entity
) -> None:
    """By the key kind a relation named it with (a tenant's lease by id, a lease's balance
    by lease), matched by key, unknown keys left out."""
    connector = connectors[provider]
    links = await _reached(connector, entity)
    assert links, f"no {entity.value} reachable from {provider}'s lists"

    found = {}
    for link in links:
        keys = [link.key, "404404404", "x/y"]
        found[link] = await connector.fetch(entity, link.by, keys, Selection())

    assert any(answer.get(link.key) for link, answer in found.items()), found
    for link, answer in found.items():
        assert set(answer) <= {link.key, "404404404", "x/y"}
        assert all(ENTITY_OF[type(record)] is entity for record in answer.get(link.key, ()))
        assert not answer.get("404404404") and not answer.get("x/y")


async def _to_the_end(connector: Connector, entity: Entity) -> tuple[Page, list[Page]]:
    """Every page of the list, 100 at a time, then the one asked for after the last."""
    selection = Selection(SORT_FIELDS[entity])
    pages = [await connector.page(entity, ListRequest({}, selection, limit=100, count=True))]
    while not pages[-1].exhausted:
        assert len(pages) < 50, "the list never said it was exhausted"
        after = pages[-1].positions[-1]
        pages.append(await connector.page(entity, ListRequest({}, selection, 100, after)))
    after_last = await connector.page(
        entity, ListRequest({}, selection, limit=100, position=pages[-1].positions[-1])
    )
    return after_last, pages


@pytest.mark.parametrize(("provider", "entity"), CASES, ids=[f"{p}-{e.value}" for p, e in CASES])
async def test_the_last_page_says_exhausted_and_the_count_is_every_record(
    connectors: dict[str, Connector], provider: str, entity: Entity
) -> None:
    after_last, pages = await _to_the_end(connectors[provider], entity)

    records = [record for page in pages for record in page.records]
    assert all(not page.exhausted for page in pages[:-1]) and pages[-1].exhausted
    assert pages[0].total == len(records) == len({r.source_id for r in records})
    assert list(after_last.records) == [] and after_last.exhausted


UNKNOWN_FILTER: Criteria = {"shoe_size": Equals("42")}


@pytest.mark.parametrize(("provider", "entity"), CASES, ids=[f"{p}-{e.value}" for p, e in CASES])
async def test_a_filter_it_cannot_apply_is_left_out_or_refused_never_ignored(
    connectors: dict[str, Connector], provider: str, entity: Entity
) -> None:
    connector = connectors[provider]
    if not connector.supports(entity, UNKNOWN_FILTER):
        return
    with pytest.raises(BadUserInput, match="shoe_size"):
        await connector.page(entity, ListRequest(UNKNOWN_FILTER, Selection(), limit=3))


async def _positions(
    connectors: dict[str, Connector], own: tuple[str, Entity]
) -> dict[tuple[str, Entity], Position]:
    """A real position from the list itself and from one list of each provider (a provider's
    lists share their paginator, so their positions share its shape), to hand to it."""
    found: dict[tuple[str, Entity], Position] = {}
    for provider, entity in CASES:
        if (provider, entity) != own and any(place[0] == provider for place in found):
            continue
        page = await connectors[provider].page(entity, ListRequest({}, Selection(), limit=2))
        found[(provider, entity)] = page.positions[-1]
    return found


@pytest.mark.parametrize(("provider", "entity"), CASES, ids=[f"{p}-{e.value}" for p, e in CASES])
async def test_another_lists_position_is_an_invalid_cursor(
    connectors: dict[str, Connector], provider: str, entity: Entity
) -> None:
    """Each list's position is of its provider's shape (offset, page, cursor, merged cursors):
    one of another shape, from another provider or another list, is refused as a cursor."""
    positions = await _positions(connectors, (provider, entity))
    own = positions[(provider, entity)]
    foreign = {
        repr(position): position
        for place, position in positions.items()
        if place != (provider, entity) and type(position) is not type(own)
    } | {repr(p): p for p in (-1, "elsewhere:42")}
    for text, position in sorted(foreign.items()):
        request = ListRequest({}, Selection(), limit=2, position=position)
        try:
            await connectors[provider].page(entity, request)
        except InvalidCursor:
            continue
        except Exception as error:
            raise AssertionError(f"{text} gave {error!r}, not InvalidCursor") from error
        raise AssertionError(f"{text} was taken as a position")


DECLARED: dict[type[Capability], set[str]] = {
    TenantWrites: {"primmo", "pms"},
    LeaseWrites: {"pms"},
    RentChanges: {"primmo", "pms"},
    ChargeWrites: {"primmo", "pms"},
    PaymentWrites: {"pms"},
    RelationshipRecords: {"leap"},
    LandlordOnboarding: {"scom"},
    WebhookSource: {"primmo", "pms", "scom"},
    MaintenanceWrites: {"primmo", "pms"},
    UnitStatusWrites: {"pms"},
    PropertyCreation: {"scom"},
}


def _federation(connectors: dict[str, Connector]) -> Federation:
    """Enough of a federation to ask what its providers can do (nothing is sent)."""
    return Federation(connectors, PageLimits(), health={})


@pytest.mark.parametrize("capability", CAPABILITIES, ids=[c.__name__ for c in CAPABILITIES])
def test_each_capability_is_found_by_type_where_its_class_declares_it(
    connectors: dict[str, Connector], capability: type[Capability]
) -> None:
    federation = _federation(connectors)

    found = federation.capable(capability)

    assert set(found) == DECLARED[capability]
    assert {n for n, cls in CONNECTORS.items() if issubclass(cls, capability)} == set(found)
    for name in set(connectors) - set(found):
        with pytest.raises(BadUserInput, match=f"^{name} does not {capability.ability}.$"):
            federation.able(capability, name)


def test_a_provider_is_chosen_only_when_it_is_the_one_able(
    connectors: dict[str, Connector],
) -> None:
    federation = _federation(connectors)

    name, recorder = federation.choose(RelationshipRecords, None)
    assert (name, id(recorder)) == ("leap", id(connectors["leap"]))
    with pytest.raises(BadUserInput, match="Say which provider .*: pms, primmo, scom."):
        federation.choose(WebhookSource, None)
    with pytest.raises(BadUserInput, match="^mycrm does not onboard landlords.$"):
        federation.choose(LandlordOnboarding, "mycrm")


async def test_a_write_at_a_provider_without_the_capability_is_refused_naming_both(
    client: Client,
) -> None:
    units = await client.data('{ units(first: 1, providers: ["mycrm"]) { edges { node { id } } } }')
    unit = units["units"]["edges"][0]["node"]["id"]
    before = sum(client.mycrm.requests.values())

    body = await client.query(
        'mutation($unit: ID!) { createTenant(input: {unitId: $unit, firstName: "A", '
        'lastName: "B"}) { errors { code } } }',
        {"unit": unit},
    )

    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["message"] == "mycrm does not take new tenants through its API."
    assert sum(client.mycrm.requests.values()) == before
