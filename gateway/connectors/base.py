"""The connector contract: the one seam a provider plugs into.

A connector turns unified requests into its provider's calls and its
provider's payloads into unified records. It is the only place a provider's
field names, pagination and error shapes are known. The contract is small on
purpose: list a page, fetch by keys.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import ClassVar

import httpx

from gateway.auth import CachedTokenAuth
from gateway.config import ConnectorOptions
from gateway.errors import BadUserInput, InvalidCursor
from gateway.events import Delivery
from gateway.model import (
    Criteria,
    Entity,
    Landlord,
    NewLandlord,
    NewTenant,
    Record,
    Relationship,
    Selection,
    Tenant,
)
from gateway.upstream import Upstream

__all__ = ["Connector", "ListRequest", "Page", "Position", "offset_of"]

Position = int | str
"""A provider's own place in a list: an offset, a page number, or a cursor. Must be JSON."""


def offset_of(position: Position | None) -> int:
    """A position that is an offset; cursors come back from callers, so they are checked."""
    if position is None:
        return 0
    if isinstance(position, int) and not isinstance(position, bool) and position >= 0:
        return position
    raise InvalidCursor("The cursor does not hold a position this provider can use.")


@dataclass(frozen=True)
class ListRequest:
    criteria: Criteria
    selection: Selection
    limit: int
    position: Position | None = None
    count: bool = False


@dataclass(frozen=True)
class Page:
    """Records in the provider's order, each with the position just after it."""

    records: Sequence[Record]
    positions: Sequence[Position]
    exhausted: bool
    total: int | None = None


class Connector(abc.ABC):
    name: ClassVar[str]
    kind: ClassVar[str]
    serves: ClassVar[frozenset[Entity]]
    """Entities this connector can fetch by key."""
    lists: ClassVar[frozenset[Entity]]
    """Entities this connector can list at the root, in the documented order."""
    credentials: ClassVar[tuple[str, ...]]
    """The credential names the connector reads from its configuration."""
    options: ClassVar[type[ConnectorOptions]] = ConnectorOptions
    """What its `[providers.<name>.options]` may hold."""
    onboards_landlords: ClassVar[bool] = False
    """Landlords can be created and activated through this provider (SCOM)."""
    references: ClassVar[frozenset[str]] = frozenset()
    """Key kinds by which this connector finds records about other providers' records:
    "building" and "party" (relationships about a building, or held by a tenant or landlord),
    keyed "<provider>:<sourceId>"."""
    needs_vault: ClassVar[bool] = False
    """The connector keeps secrets handed over at run time (SCOM landlord tokens)."""

    def __init__(self, client: httpx.AsyncClient, auth: CachedTokenAuth | None = None) -> None:
        """`client` reaches the provider (built by `connect` from its `Upstream`); `auth` is
        kept so the health query can say when the provider's token expires."""
        self._client = client
        self.auth = auth

    @classmethod
    @abc.abstractmethod
    def connect(cls, upstream: Upstream) -> Connector:
        """Builds the connector, its auth flow and its clients from `upstream`."""

    def supports(self, entity: Entity, _criteria: Criteria, /) -> bool:
        """Whether this provider can answer a list of `entity` under these criteria at all.

        A provider that cannot (no availability data, no such root list) is
        left out of that list rather than answering wrongly.
        """
        return entity in self.lists

    @abc.abstractmethod
    async def page(self, entity: Entity, request: ListRequest, /) -> Page:
        """A page of `entity` matching the criteria, ordered by the entity's sort key, then id."""

    @abc.abstractmethod
    async def fetch(
        self, entity: Entity, by: str, keys: Sequence[str], selection: Selection, /
    ) -> Mapping[str, Sequence[Record]]:
        """Records for each key of kind `by`, matched by key (never by position).

        `by` is "id" for source ids, "external_id" for ids the caller set, a kind in
        `references`, or a key kind this connector put in a `Link`.
        A key with no record maps to an empty sequence or is absent.
        """

    def credential_scope(self, _entity: Entity, _key: str, /) -> str:
        """Whose credentials read this record: a cache never serves it under other ones."""
        return "gateway"

    async def create_tenant(self, _unit_id: str, _tenant: NewTenant, /) -> Tenant:
        """Creates a tenant in the unit with this source id. Writes are sent once, never retried."""
        raise BadUserInput(f"{self.name} does not take new tenants through its API.")

    async def associate(
        self, _account: str, _property_code: str, _role: str, _start: date, /
    ) -> Relationship:
        """Records that an account holds a role on a property from a date (LEAP)."""
        raise BadUserInput(f"{self.name} does not record property relationships.")

    async def set_external_id(self, _identifier: str, _external_id: str, /) -> Relationship:
        raise BadUserInput(f"{self.name} does not record property relationships.")

    async def acknowledge(self, _keys: Sequence[str], _external: bool, /) -> None:
        """Clears `unacked-since` on the relationships named by id, or by external id."""
        raise BadUserInput(f"{self.name} does not record property relationships.")

    async def create_landlord(self, _landlord: NewLandlord, /) -> Landlord:
        raise BadUserInput(f"{self.name} does not onboard landlords.")

    async def activate_landlord(
        self, _landlord_id: str, _activation_token: str | None, /
    ) -> Landlord:
        """Activates a verified landlord and keeps its token in the vault, never returning it.

        Without an activation token, the one the provider's callback delivered is used.
        """
        raise BadUserInput(f"{self.name} does not onboard landlords.")

    async def receive(
        self, _body: bytes, _headers: Mapping[str, str], _params: Mapping[str, str], /
    ) -> Delivery:
        """A delivery to `/webhooks/<provider>`: what the provider calls back with.

        Raises `Unauthenticated` for a delivery that does not prove its origin, and
        `BadUserInput` for one that cannot be read."""
        raise BadUserInput(f"{self.name} sends no callbacks the gateway listens to.")

    async def webhook_subscriptions(self) -> list[str]:
        """What the provider currently sends this gateway webhooks for."""
        return []

    async def subscribe_webhooks(self, _gateway_url: str, /) -> list[str]:
        """Asks the provider to call `<gateway_url>/webhooks/<name>` on changes; idempotent."""
        return []

    async def unsubscribe_webhooks(self) -> list[str]:
        return []
