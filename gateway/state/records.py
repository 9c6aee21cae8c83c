"""Unified records as JSON and back, for the entity cache that replicas share.

Tagged with their class name and rebuilt only as classes of `gateway.model`,
so what Redis holds is data: nothing read back can name code to run (which
pickle would allow to anyone who can write to Redis).
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from gateway import model
from gateway.model import Record

__all__ = ["dumps", "loads"]

_CLASSES: dict[str, type[Any]] = {
    cls.__name__: cls for cls in (*model.ENTITY_OF, model.Link, model.Unavailable, model.Money)
}
_ENUMS: dict[str, type[enum.Enum]] = {
    cls.__name__: cls
    for cls in (
        model.Entity,
        model.Occupancy,
        model.LeaseStatus,
        model.Priority,
        model.MaintenanceStatus,
        model.WorkOrderStatus,
        model.ListingStatus,
        model.ChargeStatus,
        model.PaymentStatus,
    )
}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            "$class": type(value).__name__,
            **{f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)},
        }
    if isinstance(value, enum.Enum):
        return {"$enum": type(value).__name__, "value": value.value}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value


def _rebuilt(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_rebuilt(item) for item in value)
    if not isinstance(value, dict):
        return value
    if "$class" in value:
        fields = {name: _rebuilt(item) for name, item in value.items() if name != "$class"}
        return _CLASSES[value["$class"]](**fields)
    if "$enum" in value:
        return _ENUMS[value["$enum"]](value["value"])
    if "$decimal" in value:
        return Decimal(value["$decimal"])
    if "$datetime" in value:
        return datetime.fromisoformat(value["$datetime"])
    return date.fromisoformat(value["$date"])


def dumps(records: Sequence[Record]) -> str:
    return json.dumps(_plain(list(records)), separators=(",", ":"))


def loads(text: str | bytes) -> tuple[Record, ...]:
    """Raises `ValueError` on anything `dumps` did not write."""
    try:
        records = _rebuilt(json.loads(text))
    except (KeyError, TypeError) as error:
        raise ValueError(f"not records ({type(error).__name__})") from None
    if not isinstance(records, tuple):
        raise ValueError("not a list of records")
    return records
