"""The sandbox's money agrees with its tenancies, whatever the seed and size: every lease that
runs is billed each month it ran (two years back at most) the rent in effect then, no bill is
overpaid, a balance is what is billed less what is paid, and pms and Primmo each show their
own leases' ledger, the same as the books hold it."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from gateway.sandbox import Sandbox
from gateway.sandbox.data import WorldSize
from gateway.sandbox.ledger import HISTORY_DAYS

SIZES = {
    "tiny": WorldSize(landlords=2, buildings=5, units_per_building=(0, 3), listed_buildings=2),
    "default": WorldSize(),
}
CASES = [(seed, name) for seed in (1, 2, 3) for name in SIZES]


@pytest.fixture(scope="module", params=CASES, ids=[f"seed{s}-{n}" for s, n in CASES])
def seeded(request: pytest.FixtureRequest) -> Sandbox:
    seed, name = request.param
    return Sandbox(seed=seed, size=SIZES[name])


def _units(sandbox: Sandbox, provider: str) -> set[int]:
    world = sandbox.world
    return {u.id for b in world.buildings_of(provider) for u in world.units_in(b.id)}


@pytest.mark.parametrize("provider", ["pms", "primmo"])
def test_each_month_of_a_lease_is_billed_its_rent_then(seeded: Sandbox, provider: str) -> None:
    tables = seeded.states[provider].records
    books, ledger, today = tables.books, tables.ledger, seeded.world.today
    for lease in books.leases(_units(seeded, provider)):
        dues = [charge.due for charge in ledger.charges(lease)]
        months = {(due.year, due.month) for due in dues}
        assert len(months) == len(dues), "one bill a month"
        assert all(lease.start <= due <= min(lease.end, today) for due in dues)
        assert all(due >= today - timedelta(days=HISTORY_DAYS) for due in dues)
        if lease.covers(today) and lease.start <= today.replace(day=1):
            assert (today.year, today.month) in months, "a running lease is billed this month"
        for charge in ledger.charges(lease):
            assert charge.amount == Decimal(books.rent_on(lease, charge.due))
            assert charge.tenant == min(books.tenants(lease)), "billed to its first signer"


@pytest.mark.parametrize("provider", ["pms", "primmo"])
def test_no_bill_is_overpaid_and_a_balance_is_billed_less_paid(
    seeded: Sandbox, provider: str
) -> None:
    tables = seeded.states[provider].records
    ledger, today = tables.ledger, seeded.world.today
    for lease in tables.books.leases(_units(seeded, provider)):
        charges = ledger.charges(lease)
        for charge in charges:
            assert Decimal(0) <= ledger.paid(charge) <= charge.amount
        for payment in ledger.payments(lease):
            charge = next(c for c in charges if c.id == payment.charge)
            assert charge.due <= payment.paid_at.date() + timedelta(days=1)
            assert payment.paid_at.date() <= today + timedelta(days=1)
            assert payment.paid_at.utcoffset() == timedelta(0)
        owed, overdue = ledger.owed(lease)
        billed = sum((c.amount for c in charges), Decimal(0))
        paid = sum((ledger.paid(c) for c in charges), Decimal(0))
        assert owed == billed - paid and Decimal(0) <= overdue <= owed


def test_rent_changes_fall_within_their_lease_from_its_first_rent(seeded: Sandbox) -> None:
    books = seeded.states["pms"].records.books
    for lease in books.leases({u.id for u in seeded.world.units}):
        changes = books.rent_changes(lease)
        assert all(lease.start < change.effective <= lease.end for change in changes)
        assert books.rent_on(lease, lease.start) == lease.monthly_rent
        rents = [lease.monthly_rent, *(change.rent for change in changes)]
        assert rents == sorted(rents), "scheduled increases only raise the rent"


def test_each_provider_serves_its_own_leases_ledger_as_the_books_hold_it(seeded: Sandbox) -> None:
    pms, primmo = seeded.states["pms"].records, seeded.states["primmo"].records
    invoices, payments = pms.money()
    money = primmo.money()

    pms_leases = pms.books.leases(_units(seeded, "pms"))
    primmo_leases = primmo.books.leases(_units(seeded, "primmo"))
    assert len(invoices) == sum(len(pms.ledger.charges(lease)) for lease in pms_leases)
    assert len(payments) == sum(len(pms.ledger.payments(lease)) for lease in pms_leases)
    assert len(money.invoices) == sum(len(primmo.ledger.charges(lease)) for lease in primmo_leases)
    owed = {row["LeaseId"]: Decimal(str(row["Balance"])) for row in money.receivables}
    for lease in primmo_leases:
        assert owed[primmo.books.number(lease)] == primmo.ledger.owed(lease)[0]
    numbers = {row["LeaseId"] for row in money.invoices}
    assert numbers <= {primmo.books.number(lease) for lease in primmo_leases}
    assert {row["lease_id"] for row in invoices} <= {
        f"lease_{pms.books.number(lease)}" for lease in pms_leases
    }
    assert (
        date.fromisoformat(max(row["due_date"] for row in invoices or [{"due_date": "1970-01-01"}]))
        <= seeded.world.today
    )
