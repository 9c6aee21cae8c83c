"""Changes providers tell us about, and who is listening for them.

The bus is an interface with two implementations: `LocalBus` in this process,
and `gateway.shared.bus.RedisBus`, Redis pub/sub for several replicas, behind
the same two methods, so neither the schema nor the webhook receivers notice.
Likewise the record of deliveries already taken: `LocalSeen`, or Redis.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.model import Entity

__all__ = [
    "Change",
    "ChangeKind",
    "Delivery",
]


class ChangeKind(enum.Enum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"
    DELETED = "DELETED"


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    entity: Entity
    provider: str
    source_id: str


@dataclass(frozen=True)
class Delivery:
    """What a provider's webhook delivery said, once read by its connector.

    `key` identifies the delivery for de-duplication (a provider's delivery id, or
    what it changed); `outcome` is the connector's own account, returned to the sender.
    """

    changes: tuple[Change, ...] = ()
    key: str | None = None
    outcome: Mapping[str, Any] = field(default_factory=dict)
    window: float = 600.0
    """Seconds a repeat of `key` counts as the same delivery. Short where the key is the
    content (Primmo sends no delivery id), so a later real change is not mistaken for it."""
    work: Callable[[], Awaitable[tuple[tuple[Change, ...], Mapping[str, Any]]]] | None = None
    """What the delivery asks of the gateway beyond publishing (SCOM: activate a landlord),
    run only once the key is known to be new; it returns the changes and the outcome."""
