"""The per-request context: loaders, the federation, and errors that travel beside data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from strawberry.fastapi import BaseContext

from gateway.config import Limits
from gateway.edge.callers import Caller
from gateway.edge.persisted.safelist import Safelist
from gateway.errors import GatewayError
from gateway.federation.fan_out import Federation
from gateway.federation.loaders import Loaders
from gateway.observability import requestid
from gateway.state.bus import EventBus, LocalBus
from schema.selection import Places

__all__ = ["Connection", "Context", "Reported"]


@dataclass(frozen=True)
class Reported:
    error: GatewayError
    path: Sequence[str | int]


@dataclass
class Connection:
    """What the operations of one websocket share, beyond its caller and configuration."""

    subscriptions: int = 0
    """Its open subscriptions, which it may hold at most ten of."""


@dataclass
class Context(BaseContext):
    federation: Federation
    loaders: Loaders
    caller: Caller
    bus: EventBus = field(default_factory=LocalBus)
    limits: Limits = field(default_factory=Limits)
    deadline_seconds: float | None = None
    request_id: str = field(default_factory=requestid.or_new)
    """The HTTP request's id (`X-Request-ID`), as in the logs and the upstream requests."""
    reported: list[Reported] = field(default_factory=list)
    safelist: Safelist | None = None
    """The only operations allowed to run; None: any operation may."""
    selections: Places = field(default_factory=Places)
    """Each place in the operation's selection, translated once
    (`schema.selection.selection_here`)."""
    connection: Connection = field(default_factory=Connection)
    """Shared by the operations of one websocket, each with its own context (`for_operation`)."""
    executor: str | None = None
    """Which executor ran the operation: `compiled` or `graphql-core` (its fallback)."""
    idempotency_key: str | None = None
    """The request's `Idempotency-Key` header: a mutation's retry is answered, not redone."""

    def __post_init__(self) -> None:
        super().__init__()

    @classmethod
    def for_request(
        cls,
        federation: Federation,
        caller: Caller,
        limits: Limits | None = None,
        deadline_seconds: float | None = None,
        bus: EventBus | None = None,
        safelist: Safelist | None = None,
        idempotency_key: str | None = None,
    ) -> Context:
        return cls(
            federation=federation,
            loaders=Loaders(federation),
            caller=caller,
            bus=bus or LocalBus(),
            limits=limits or Limits(),
            deadline_seconds=deadline_seconds,
            safelist=safelist,
            idempotency_key=idempotency_key,
        )

    @property
    def subscriptions(self) -> int:
        """Open subscriptions on the connection, whichever of its operations counts them."""
        return self.connection.subscriptions

    @subscriptions.setter
    def subscriptions(self, count: int) -> None:
        self.connection.subscriptions = count

    def for_operation(self) -> Context:
        """The context of one operation a websocket was sent, made from the connection's.

        A websocket's context lives as long as the connection; each operation on it is a
        request of its own. It keeps the connection's caller (authenticated once, in
        `connection_init`), configuration, request id (the one in its log lines and
        upstream requests) and count of subscriptions. It gets its own errors reported
        beside data, which join its result and no other, its own loaders, whose cache of
        what the request read must not answer a later operation of a long-lived connection,
        its own selections (one operation's places) and executor (which ran it, for its
        count). It takes no idempotency key from the request that opened the socket: that
        header would be every mutation's key on the connection, a second write refused as
        the key reused and a repeat taken for a retry; each mutation gives its own in its
        input.
        """
        operation = replace(
            self,
            loaders=Loaders(self.federation),
            reported=[],
            selections=Places(),
            executor=None,
            idempotency_key=None,
        )
        operation.request = self.request
        operation.connection_params = self.connection_params
        return operation

    def report(self, error: GatewayError, path: Sequence[str | int]) -> None:
        """A provider's part failed but the field still has data: the error joins `errors`."""
        self.reported.append(Reported(error, path))
