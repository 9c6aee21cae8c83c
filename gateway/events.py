"""Changes providers tell us about, and who is listening for them.

The bus is an interface with two implementations: `LocalBus` in this process,
and `gateway.shared.bus.RedisBus`, Redis pub/sub for several replicas, behind
the same two methods, so neither the schema nor the webhook receivers notice.
Likewise the record of deliveries already taken: `LocalSeen`, or Redis.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from gateway.model import Entity, Link, Record, Unavailable

__all__ = [
    "Change",
    "ChangeKind",
    "Delivery",
    "FieldChange",
    "differences",
    "plain",
]


class ChangeKind(enum.Enum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"
    DELETED = "DELETED"


@dataclass(frozen=True)
class FieldChange:
    """One field of a record, before and after, as JSON values (`plain`); `previous` is None
    where the gateway could not know it (a payload that gives the new value only)."""

    field: str
    """The unified field name (`last_name`)."""
    previous: Any
    new: Any


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    entity: Entity
    provider: str
    source_id: str
    changes: tuple[FieldChange, ...] = ()
    """What changed, wherever the gateway can know it: from the provider's payload, or from
    the record's cached copy against the record read fresh."""


def plain(value: Any) -> Any:
    """A field's value as JSON: exact amounts as text, dates as ISO 8601 with their offset,
    enums as their names, values (Money) as objects."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {item.name: plain(getattr(value, item.name)) for item in dataclasses.fields(value)}
    return value


def differences(before: Record, after: Record, fields: frozenset[str]) -> tuple[FieldChange, ...]:
    """The `fields` whose values differ between two reads of one record; relations are not
    values and are left out."""
    found = []
    for name in sorted(fields):
        old, new = getattr(before, name, None), getattr(after, name, None)
        if isinstance(old, Link | Unavailable) or isinstance(new, Link | Unavailable):
            continue
        if old != new:
            found.append(FieldChange(name, plain(old), plain(new)))
    return tuple(found)


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
