"""The connector contract: the one seam a provider plugs into.

A connector turns unified requests into its provider's calls and its
provider's payloads into unified records. It is the only place a provider's
field names, pagination and error shapes are known. The contract is small on
purpose: list a page, fetch by keys, say what it serves. What only some providers
do (writes, onboarding, webhooks) is a capability it declares in its bases
(`gateway.connectors.capabilities`), never a method here that refuses.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import httpx

from gateway.config import ConnectorOptions
from gateway.errors import InvalidCursor
from gateway.model import Criteria, Entity, Record, Selection
from gateway.upstream.auth import CachedTokenAuth
from gateway.upstream.client import Upstream

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
    selects_fields: ClassVar[bool] = True
    """Whether it asks its provider for the selection's fields only (`$select`, `fields=`):
    false for one that reads whole records, so a record it read answers any fields."""
    embeds: ClassVar[Mapping[Entity, frozenset[str]] | None] = None
    """The relations it reads beside a record when they are asked (an OData `$expand`), by
    entity: a record read without one does not answer an ask for it. None: any may be."""

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

    def cannot_filter(self, _entity: Entity, _criteria: Criteria, /) -> bool:
        """Whether it is left out of a list of `entity` under `criteria` though it may hold
        records that match (it cannot test a filter), rather than because it holds none by
        construction: the caller is then told it was left out, not answered as if it had
        nothing."""
        return False

    @abc.abstractmethod
    async def page(self, entity: Entity, request: ListRequest, /) -> Page:
        """A page of `entity` matching the criteria, ordered by the entity's sort key, then id."""

    @abc.abstractmethod
    async def fetch(
        self, entity: Entity, by: str, keys: Sequence[str], selection: Selection, /
    ) -> Mapping[str, Sequence[Record]]:
        """Records for each key of kind `by`, matched by key (never by position).

        `by` is "id" for source ids, "external_id" for ids the caller set, a kind in
        `RelationshipRecords.references`, or a key kind this connector put in a `Link`.
        A key with no record maps to an empty sequence or is absent.
        """

    def credential_scope(self, _entity: Entity, _key: str, /) -> str:
        """Whose credentials read this record: a cache never serves it under other ones."""
        return "gateway"
