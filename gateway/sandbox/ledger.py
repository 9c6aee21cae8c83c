"""What each lease was billed and what was paid: the world's money, for the providers that keep
it (pms's Financial service, Primmo's invoices and statements).

Derived from the leases (`gateway.sandbox.leasing.Books`), lazily and deterministically, so it
agrees with every tenancy whatever the seed, and costs nothing for a world no one asks about
(the bench's 7,500-building world): each month of a lease is billed its rent on the first (or
on the lease's first day), and most bills are paid within days of falling due, some late, a
few by a card that failed first, some not yet. What a write adds (an invoice, a payment, a
refund) is kept beside what was derived.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from gateway.sandbox.data import Lease
from gateway.sandbox.leasing import Books

__all__ = ["HISTORY_DAYS", "Charge", "Ledger", "Payment"]

HISTORY_DAYS = 730
"""Bills go back two years from the world's today, however long ago a lease began."""
LOCAL = ZoneInfo("America/Toronto")
"""Where the sandbox's tenants pay: its timestamps carry this zone's offset (-05:00 or -04:00)."""
_METHODS = ("bank_transfer", "card", "interac", "pre_authorized_debit")


@dataclass
class Charge:
    """An amount billed for a lease: its rent for a month, or what a write added."""

    id: int
    lease: int
    tenant: int
    """The world id of the lease's first signer, to whom both providers address its bills."""
    issued: date
    due: date
    amount: Decimal
    description: str
    cancelled: bool = False


@dataclass
class Payment:
    id: int
    charge: int
    lease: int
    tenant: int
    paid_at: datetime
    """Aware, in UTC; each provider shows it as it sends timestamps."""
    amount: Decimal
    method: str
    status: str
    """completed, failed or refunded."""


@dataclass
class Ledger:
    """Every lease's bills and payments, derived on first use and kept with what was written."""

    books: Books
    _charges: dict[int, list[Charge]] = field(default_factory=dict)
    _payments: dict[int, list[Payment]] = field(default_factory=dict)

    def charge(self, identifier: int) -> tuple[Lease, Charge] | None:
        """A charge by id, with its lease: its id holds the lease's number (`number * 1000
        + k`), so it is found without reading every lease's."""
        lease = self.books.lease(identifier // 1000)
        if lease is None:
            return None
        found = next((c for c in self.charges(lease) if c.id == identifier), None)
        return (lease, found) if found is not None else None

    def payment(self, identifier: int) -> tuple[Lease, Payment] | None:
        """A payment by id (`charge id * 100 + attempt`), with its lease."""
        held = self.charge(identifier // 100)
        if held is None:
            return None
        found = next((p for p in self.payments(held[0]) if p.id == identifier), None)
        return (held[0], found) if found is not None else None

    def charges(self, lease: Lease) -> list[Charge]:
        self._derive(lease)
        return self._charges[self.books.number(lease)]

    def payments(self, lease: Lease) -> list[Payment]:
        self._derive(lease)
        return self._payments[self.books.number(lease)]

    def paid(self, charge: Charge) -> Decimal:
        return sum(
            (
                payment.amount
                for payment in self._payments.get(charge.lease, [])
                if payment.charge == charge.id and payment.status == "completed"
            ),
            Decimal(0),
        )

    def open_amount(self, charge: Charge) -> Decimal:
        return Decimal(0) if charge.cancelled else charge.amount - self.paid(charge)

    def owed(self, lease: Lease) -> tuple[Decimal, Decimal]:
        """What is still owed on the lease, and how much of it is past due."""
        today = self.books.world.today
        owed = overdue = Decimal(0)
        for charge in self.charges(lease):
            left = self.open_amount(charge)
            owed += left
            if charge.due < today:
                overdue += left
        return owed, overdue

    def bill(self, lease: Lease, amount: Decimal, due: date, description: str) -> Charge:
        number = self.books.number(lease)
        charges = self.charges(lease)
        charge = Charge(
            id=number * 1000 + 500 + len(charges),
            lease=number,
            tenant=self._signer(lease),
            issued=self.books.world.today,
            due=due,
            amount=amount,
            description=description,
        )
        charges.append(charge)
        return charge

    def pay(
        self, lease: Lease, charge: Charge, amount: Decimal, paid_at: datetime, method: str
    ) -> Payment:
        made = [p for p in self.payments(lease) if p.charge == charge.id]
        payment = Payment(
            id=charge.id * 100 + 10 + len(made),
            charge=charge.id,
            lease=charge.lease,
            tenant=charge.tenant,
            paid_at=paid_at,
            amount=amount,
            method=method,
            status="completed",
        )
        self.payments(lease).append(payment)
        return payment

    def refund(self, lease: Lease, payment: Payment) -> Payment:
        refunded = replace(payment, status="refunded")
        kept = self.payments(lease)
        kept[kept.index(payment)] = refunded
        return refunded

    def _signer(self, lease: Lease) -> int:
        return min(self.books.tenants(lease))

    def _derive(self, lease: Lease) -> None:
        number = self.books.number(lease)
        if number in self._charges:
            return
        today = self.books.world.today
        rng = random.Random(f"ledger:{number}")
        charges: list[Charge] = []
        payments: list[Payment] = []
        tenant = self._signer(lease)
        for index, due in enumerate(_months(lease, today)):
            rent = Decimal(self.books.rent_on(lease, due))
            charge = Charge(
                id=number * 1000 + index + 1,
                lease=number,
                tenant=tenant,
                issued=max(lease.start, due - timedelta(days=10)),
                due=due,
                amount=rent,
                description=f"Rent {due:%Y-%m}",
            )
            charges.append(charge)
            payments += _paid(rng, charge, today)
        self._charges[number] = charges
        self._payments[number] = payments


def _months(lease: Lease, today: date) -> list[date]:
    """The due date of each month billed: the lease's first day, then each first of the month
    while the lease runs, none after today nor older than the history kept."""
    oldest = today - timedelta(days=HISTORY_DAYS)
    last = min(lease.end, today)
    dues = [lease.start] if lease.start <= last else []
    month = date(lease.start.year, lease.start.month, 1)
    while True:
        month = (month + timedelta(days=32)).replace(day=1)
        if month > last:
            break
        dues.append(month)
    return [due for due in dues if due >= oldest]


def _at(day: date, rng: random.Random) -> datetime:
    """A moment of that local day, as a bank or card processor stamps it, in UTC."""
    local = datetime.combine(day, time(rng.randint(7, 21), rng.randint(0, 59)), LOCAL)
    return local.astimezone(UTC)


def _paid(rng: random.Random, charge: Charge, today: date) -> list[Payment]:
    """Most bills paid within a week of falling due; 4 % after a card that failed first;
    6 % (and most of today's) not yet."""
    due_today = charge.due == today
    roll = rng.random()
    if (due_today and roll < 0.6) or (not due_today and roll < 0.06):
        return []
    method = rng.choice(_METHODS)
    payments = []
    day = charge.due + timedelta(days=0 if due_today else rng.randint(0, 6))
    if roll > 0.96 and not due_today:
        failed = _at(day, rng)
        payments.append(
            Payment(
                charge.id * 100 + 1,
                charge.id,
                charge.lease,
                charge.tenant,
                failed,
                charge.amount,
                "card",
                "failed",
            )
        )
        day += timedelta(days=3)
    day = min(day, today)
    payments.append(
        Payment(
            charge.id * 100 + 2,
            charge.id,
            charge.lease,
            charge.tenant,
            _at(day, rng),
            charge.amount,
            method,
            "completed",
        )
    )
    return payments
