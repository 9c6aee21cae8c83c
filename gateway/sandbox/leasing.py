"""Leases as a provider's books keep them: a number, a deposit, the rent in effect on a day and
its scheduled changes, on top of the world's tenancies (`gateway.sandbox.data.Lease`).

Everything here is derived from the world, so it agrees with every provider's tenants and
units whatever the seed: a lease's number is its first tenant's world id moved into a range
of its own, its rent rises on each anniversary it lasts to (as Primmo's document describes a
three-year lease with preprogrammed increases), and what a write adds (a rent change) is
kept beside what was derived. Kept apart from `data.py`, which generates the world itself.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import date

from gateway.sandbox.data import Lease, World

__all__ = ["LEASE_NUMBERS_FROM", "Books", "RentChange", "anniversaries"]

LEASE_NUMBERS_FROM = 70_000_000
"""Lease numbers are `LEASE_NUMBERS_FROM` plus the world id of the lease's first tenant:
unique across the world (a tenant signs one lease), apart from every other kind of id."""


@dataclass(frozen=True)
class RentChange:
    """The rent from `effective` on, in whole currency units."""

    effective: date
    rent: int
    number: int
    """Unique among every lease's changes: the lease's number times 100 plus its place."""


def anniversaries(lease: Lease) -> list[date]:
    """Each anniversary of the start the lease lasts to, as its scheduled increases fall."""
    found = []
    for years in range(1, 10):
        try:
            day = lease.start.replace(year=lease.start.year + years)
        except ValueError:
            day = lease.start.replace(year=lease.start.year + years, day=28)
        if day > lease.end:
            break
        found.append(day)
    return found


@dataclass
class Books:
    """The terms of every lease in `world`, derived once per lease and kept with what writes
    recorded since."""

    world: World
    _changes: dict[int, list[RentChange]] = field(default_factory=dict)
    _deposits: dict[int, int] = field(default_factory=dict)

    def leases(self, units: set[int]) -> list[Lease]:
        """The leases of these units, present and past, in the order they were signed."""
        found = {tenant.lease: None for tenant in self.world.tenants if tenant.unit_id in units}
        return sorted(found, key=self.number)

    def number(self, lease: Lease) -> int:
        first = min(t.id for t in self.world.tenants_of(lease.unit_id) if t.lease == lease)
        return LEASE_NUMBERS_FROM + first

    def lease(self, number: int) -> Lease | None:
        """The lease with this number, as it is now (a write may have changed its end)."""
        tenant = next((t for t in self.world.tenants if t.id == number - LEASE_NUMBERS_FROM), None)
        return tenant.lease if tenant is not None else None

    def tenants(self, lease: Lease) -> list[int]:
        return [t.id for t in self.world.tenants_of(lease.unit_id) if t.lease == lease]

    def deposit(self, lease: Lease) -> int:
        """One month of the first rent, as pms's leases hold it, unless a write changed it."""
        return self._deposits.get(self.number(lease), lease.monthly_rent)

    def set_deposit(self, lease: Lease, amount: int) -> None:
        self._deposits[self.number(lease)] = amount

    def end(self, lease: Lease, day: date) -> Lease:
        """The lease ending on `day` instead: its tenants hold the new terms."""
        ended = replace(lease, end=day)
        self.world.amend_lease(lease, ended)
        return ended

    def status(self, lease: Lease) -> str:
        today = self.world.today
        if lease.end < today:
            return "past"
        return "future" if lease.start > today else "active"

    def rent_changes(self, lease: Lease) -> list[RentChange]:
        """Each anniversary's increase (2 to 3.5 %, to the nearest 5), then those recorded
        by a write, in the order they take effect; none after the lease's end (a lease ended
        early drops what was scheduled beyond it)."""
        number = self.number(lease)
        changes = self._changes.get(number)
        if changes is None:
            rng = random.Random(f"rent:{number}")
            rent = lease.monthly_rent
            changes = []
            for day in anniversaries(lease):
                rent += max(5, round(rent * rng.uniform(0.02, 0.035) / 5) * 5)
                changes.append(RentChange(day, rent, number * 100 + len(changes) + 1))
            self._changes[number] = changes
        return sorted(
            (change for change in changes if change.effective <= lease.end),
            key=lambda change: (change.effective, change.number),
        )

    def rent_on(self, lease: Lease, day: date) -> int:
        rent = lease.monthly_rent
        for change in self.rent_changes(lease):
            if change.effective <= day:
                rent = change.rent
        return rent

    def rent(self, lease: Lease) -> int:
        """The rent in effect today, or the first one for a lease not yet begun."""
        return self.rent_on(lease, max(self.world.today, lease.start))

    def record_rent_change(self, lease: Lease, effective: date, rent: int) -> RentChange:
        changes = self.rent_changes(lease)
        number = self.number(lease)
        change = RentChange(effective, rent, number * 100 + len(changes) + 1)
        self._changes[number] = [*changes, change]
        return change
