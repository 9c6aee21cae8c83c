"""Typed filter inputs, turned into unified criteria that connectors push down."""

from __future__ import annotations

from datetime import date

import strawberry

from gateway import model
from gateway.errors import BadUserInput
from schema.types import Occupancy, Role

__all__ = [
    "AgentFilter",
    "between",
    "BuildingFilter",
    "DateRange",
    "LandlordFilter",
    "RelationshipFilter",
    "RoomsRange",
    "TenantFilter",
    "UnitFilter",
    "VendorFilter",
]

_MAX_TEXT = 200


def _text(field: str, value: str | None) -> str | None:
    if value is None:
        return None
    stripped = value.strip()
    if not stripped:
        raise BadUserInput(f"`{field}` must not be empty.", field=field)
    if len(stripped) > _MAX_TEXT:
        raise BadUserInput(f"`{field}` may be at most {_MAX_TEXT} characters.", field=field)
    return stripped


def _criteria(**conditions: model.Condition | None) -> model.Criteria:
    return {name: condition for name, condition in conditions.items() if condition is not None}


def _contains(field: str, value: str | None) -> model.Contains | None:
    text = _text(field, value)
    return model.Contains(text) if text else None


def _equals(field: str, value: str | None) -> model.Equals | None:
    text = _text(field, value)
    return model.Equals(text) if text else None


@strawberry.input(description="Landlords whose name contains the text, ignoring case.")
class LandlordFilter:
    name_contains: str | None = None

    def criteria(self) -> model.Criteria:
        return _criteria(name=_contains("nameContains", self.name_contains))


@strawberry.input
class BuildingFilter:
    name_contains: str | None = strawberry.field(default=None, description="Ignoring case.")
    city_contains: str | None = strawberry.field(default=None, description="Ignoring case.")
    code: str | None = strawberry.field(default=None, description="Exact building code.")

    def criteria(self) -> model.Criteria:
        return _criteria(
            name=_contains("nameContains", self.name_contains),
            city=_contains("cityContains", self.city_contains),
            code=_equals("code", self.code),
        )


@strawberry.input(description="Inclusive; leave an end out for an open range.")
class RoomsRange:
    min: float | None = None
    max: float | None = None


@strawberry.input
class UnitFilter:
    unit_code: str | None = strawberry.field(default=None, description="Exact unit code.")
    rooms: RoomsRange | None = None
    occupancy: Occupancy | None = None

    def criteria(self) -> model.Criteria:
        rooms = self.rooms
        return _criteria(
            code=_equals("unitCode", self.unit_code),
            rooms=between("rooms", rooms.min, rooms.max) if rooms is not None else None,
            occupancy=model.Equals(self.occupancy.value) if self.occupancy else None,
        )


def between(field: str, low: float | None, high: float | None) -> model.Between | None:
    """An inclusive range a caller gave (`rooms`, `bedrooms`), None when both ends are open."""
    if low is None and high is None:
        return None
    if low is not None and high is not None and low > high:
        raise BadUserInput(f"`{field}.min` is greater than `{field}.max`.", field=field)
    return model.Between(low, high)


@strawberry.input(description="Inclusive; leave an end out for an open range.")
class DateRange:
    from_: date | None = strawberry.field(default=None, name="from")
    to: date | None = None

    def within(self, field: str) -> model.Within:
        if self.from_ is not None and self.to is not None and self.to < self.from_:
            raise BadUserInput(f"`{field}.to` is before `{field}.from`.", field=field)
        return model.Within(self.from_, self.to)


def availability(start: date, end: date) -> model.AvailableBetween:
    if end < start:
        raise BadUserInput("`to` is before `from`.", field="to")
    return model.AvailableBetween(start, end)


@strawberry.input(description="Tenants whose first or last name contains the text, ignoring case.")
class TenantFilter:
    name_contains: str | None = None

    def criteria(self) -> model.Criteria:
        return _criteria(name=_contains("nameContains", self.name_contains))


@strawberry.input(description="Relationships as LEAP records them.")
class RelationshipFilter:
    acknowledged: bool | None = strawberry.field(
        default=None, description="false: only those with changes not yet acknowledged."
    )
    role: Role | None = None
    current: bool | None = strawberry.field(
        default=None, description="true: not ended (no end date, or one still ahead)."
    )

    def criteria(self) -> model.Criteria:
        return _criteria(
            acknowledged=model.Equals(self.acknowledged) if self.acknowledged is not None else None,
            role=model.Equals(self.role.value) if self.role else None,
            current=model.Equals(self.current) if self.current is not None else None,
        )


@strawberry.input
class VendorFilter:
    name_contains: str | None = strawberry.field(default=None, description="Ignoring case.")
    trade: str | None = strawberry.field(
        default=None, description="Exact, as the provider names it (plumbing, electrical...)."
    )

    def criteria(self) -> model.Criteria:
        return _criteria(
            name=_contains("nameContains", self.name_contains),
            trade=_equals("trade", self.trade),
        )


@strawberry.input(description="Agents whose first or last name contains the text, ignoring case.")
class AgentFilter:
    name_contains: str | None = None

    def criteria(self) -> model.Criteria:
        return _criteria(name=_contains("nameContains", self.name_contains))
