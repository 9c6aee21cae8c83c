"""Maintenance as a property manager's books keep it: requests, the work orders that answer
them and the vendors who do the work, on top of the world's units and tenancies.

Everything is derived from the world, so it agrees with every provider's units and tenants
whatever the seed: a unit has had a few requests over the past year, each reported by the
tenant living there on that day (if anyone was), assigned to a vendor of the right trade a
week after, and done a few weeks later; what a write adds is kept beside what was derived.
The status flow is enforced here, once, for every provider that keeps maintenance (pms's
Operations service, Primmo's service calls); each sandbox answers its refusals in its own
words. Kept apart from `data.py`, which generates the world itself.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from gateway.clock import Clock
from gateway.sandbox.data import BUILDING_PROVIDERS, World

__all__ = [
    "JOBS_FROM",
    "PROBLEMS",
    "REQUESTS_FROM",
    "TRADES",
    "Clash",
    "Invalid",
    "Job",
    "Missing",
    "Problem",
    "Ticket",
    "Vendor",
    "Workshop",
]

REQUESTS_FROM = 80_000_000
"""Derived requests are numbered `REQUESTS_FROM + 4 * unit id + k`: apart from every other
kind of world id, and stable whatever else the world holds."""
JOBS_FROM = 90_000_000
"""A derived request's work order is numbered `JOBS_FROM` plus the request's own place."""
VENDORS_FROM = 85_000_000


@dataclass(frozen=True)
class Problem:
    trade: str
    title: str
    description: str
    title_fr: str
    description_fr: str
    """Primmo is a Québec product: its service calls are written in French."""


PROBLEMS = (
    Problem(
        "plumbing",
        "Leaking faucet",
        "The kitchen faucet drips day and night.",
        "Robinet qui fuit",
        "Le robinet de la cuisine fuit jour et nuit.",
    ),
    Problem(
        "plumbing",
        "Clogged drain",
        "The bathroom sink drains very slowly.",
        "Drain bouché",
        "Le lavabo de la salle de bain se vide très lentement.",
    ),
    Problem(
        "electrical",
        "Dead outlet",
        "The bedroom outlets stopped working.",
        "Prise sans courant",
        "Les prises de la chambre ne fonctionnent plus.",
    ),
    Problem(
        "heating",
        "No heat",
        "The living-room baseboard heater stays cold.",
        "Pas de chauffage",
        "La plinthe chauffante du salon reste froide.",
    ),
    Problem(
        "appliances",
        "Fridge not cooling",
        "The refrigerator no longer keeps food cold.",
        "Réfrigérateur qui ne refroidit plus",
        "Le réfrigérateur ne garde plus les aliments au froid.",
    ),
    Problem(
        "locksmith",
        "Broken lock",
        "The front door lock sticks and will not turn.",
        "Serrure brisée",
        "La serrure de la porte d'entrée coince et ne tourne plus.",
    ),
    Problem(
        "general",
        "Window will not close",
        "The balcony window does not close all the way.",
        "Fenêtre qui ne ferme pas",
        "La fenêtre du balcon ne ferme pas complètement.",
    ),
)

TRADES = (
    ("Plomberie Gagnon", "plumbing"),
    ("Électricité Roy", "electrical"),
    ("Chauffage Côté", "heating"),
    ("Électroménagers Morin", "appliances"),
    ("Serrurerie Lavoie", "locksmith"),
    ("Entretien Fortin", "general"),
)
"""The vendors every provider that keeps maintenance has on file, one per trade."""

PRIORITIES = ("low", "normal", "high", "urgent")


class Missing(LookupError):
    """No such request, work order or vendor: a 404, as each provider says one."""


class Clash(Exception):
    """The step does not fit where the record stands (completing a completed request): a 409."""


class Invalid(ValueError):
    """What was given cannot be taken; `field` is the neutral name of the field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Vendor:
    id: int
    name: str
    trade: str
    email: str
    phone: str


@dataclass
class Ticket:
    """A maintenance request."""

    id: int
    unit_id: int
    building_id: int
    tenant_id: int | None
    priority: str
    status: str
    """open, assigned or completed."""
    reported: datetime
    problem: Problem | None = None
    title: str | None = None
    description: str | None = None
    """What a caller wrote, for a request made through an API (`problem` is None then)."""
    vendor_id: int | None = None
    scheduled: date | None = None
    completed: datetime | None = None
    resolution: str | None = None

    def words(self, french: bool = False) -> tuple[str | None, str]:
        """Its title and description, in the provider's language for a derived one."""
        if self.problem is None:
            return self.title, self.description or ""
        problem = self.problem
        return problem.title, problem.description_fr if french else problem.description


@dataclass
class Job:
    id: int
    request_id: int
    vendor_id: int
    description: str
    """What a caller wrote; a derived one's is its problem's title, in the provider's
    language (`words`)."""
    status: str
    """scheduled, in_progress, completed or cancelled."""
    scheduled: date
    started: datetime | None = None
    completed: datetime | None = None
    cost: Decimal | None = None
    """In the provider's currency: the estimate until done, then what it cost."""
    reason: str | None = None
    problem: Problem | None = None

    def words(self, french: bool = False) -> str:
        if self.problem is None:
            return self.description
        return self.problem.title_fr if french else self.problem.title


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), UTC)


@dataclass
class Workshop:
    """One provider's maintenance books: derived once from the world, then kept by writes."""

    world: World
    provider: str
    clock: Clock
    vendors: dict[int, Vendor] = field(default_factory=dict)
    requests: dict[int, Ticket] = field(default_factory=dict)
    jobs: dict[int, Job] = field(default_factory=dict)

    def __post_init__(self) -> None:
        base = VENDORS_FROM + 100 * BUILDING_PROVIDERS.index(self.provider)
        for index, (name, trade) in enumerate(TRADES):
            domain = "".join(ch for ch in name.split()[-1].lower() if ch.isalpha())
            self.vendors[base + index] = Vendor(
                base + index,
                name,
                trade,
                f"service@{domain}.example",
                f"+1-418-555-{7000 + index:04d}",
            )
        for building in self.world.buildings_of(self.provider):
            for unit in self.world.units_in(building.id):
                self._derive(unit.id, building.id)

    def _derive(self, unit_id: int, building_id: int) -> None:
        """A unit's past ten months: none, one or two requests, more of them recent; older
        ones done, the last month's assigned, the last week's still open."""
        rng = random.Random(f"maintenance:{unit_id}")
        today = self.world.today
        for k in range(rng.choices((0, 1, 2), weights=(60, 30, 10))[0]):
            problem = rng.choice(PROBLEMS)
            age = int(rng.random() ** 2 * 300)
            reported = _at(today - timedelta(days=age), rng.randint(13, 20), rng.choice((0, 30)))
            tenant = next(
                (
                    tenant.id
                    for tenant in self.world.tenants_of(unit_id)
                    if tenant.lease.covers(reported.date())
                ),
                None,
            )
            request = Ticket(
                id=REQUESTS_FROM + 4 * unit_id + k,
                unit_id=unit_id,
                building_id=building_id,
                tenant_id=tenant,
                priority=rng.choice(PRIORITIES),
                status="open",
                reported=reported,
                problem=problem,
            )
            self.requests[request.id] = request
            if age <= 7:
                continue
            request.status = "assigned"
            request.vendor_id = self.vendor_for(problem.trade).id
            request.scheduled = reported.date() + timedelta(days=rng.randint(1, 7))
            job = Job(
                id=JOBS_FROM + request.id - REQUESTS_FROM,
                request_id=request.id,
                vendor_id=request.vendor_id,
                description=problem.title,
                status="scheduled",
                scheduled=request.scheduled,
                cost=Decimal(rng.randrange(80, 900, 5)),
                problem=problem,
            )
            self.jobs[job.id] = job
            if request.scheduled <= today:
                job.status, job.started = "in_progress", _at(request.scheduled, 14)
            if age > 30:
                request.status = job.status = "completed"
                job.started = _at(request.scheduled, 14)
                request.completed = job.completed = _at(request.scheduled, 19)
                request.resolution = "Repaired on site."

    def vendor_for(self, trade: str) -> Vendor:
        return next(vendor for vendor in self.vendors.values() if vendor.trade == trade)

    def now(self) -> datetime:
        """The world's today, at the clock's time of day: what a write is stamped with."""
        return _at(self.world.today, 0) + timedelta(seconds=self.clock() % 86400)

    def request(self, request_id: int) -> Ticket:
        found = self.requests.get(request_id)
        if found is None:
            raise Missing(f"No maintenance request {request_id}.")
        return found

    def job(self, job_id: int) -> Job:
        found = self.jobs.get(job_id)
        if found is None:
            raise Missing(f"No work order {job_id}.")
        return found

    def _vendor(self, vendor_id: int | None) -> int:
        if vendor_id is None or vendor_id not in self.vendors:
            raise Invalid("vendor", f"No vendor {vendor_id}.")
        return vendor_id

    def open(
        self,
        unit_id: int,
        description: str,
        *,
        title: str | None = None,
        priority: str = "normal",
        tenant_id: int | None = None,
    ) -> Ticket:
        unit = next((u for u in self.world.units if u.id == unit_id), None)
        homes = {b.id for b in self.world.buildings_of(self.provider)}
        if unit is None or unit.building_id not in homes:
            raise Invalid("unit", f"No unit {unit_id}.")
        if not description.strip():
            raise Invalid("description", "A description is required.")
        if priority not in PRIORITIES:
            raise Invalid("priority", f"Priority is one of {', '.join(PRIORITIES)}.")
        if tenant_id is not None and tenant_id not in {
            t.id for t in self.world.occupants_of(unit_id)
        }:
            raise Invalid("tenant", f"Tenant {tenant_id} does not live in unit {unit_id}.")
        request = Ticket(
            id=self.world.new_id(),
            unit_id=unit_id,
            building_id=unit.building_id,
            tenant_id=tenant_id,
            priority=priority,
            status="open",
            reported=self.now(),
            title=title,
            description=description,
        )
        self.requests[request.id] = request
        return request

    def assign(self, request_id: int, vendor_id: int | None, scheduled: date | None) -> Ticket:
        request = self.request(request_id)
        if request.status == "completed":
            raise Clash(f"Maintenance request {request_id} is completed.")
        request.vendor_id = self._vendor(vendor_id)
        request.scheduled = scheduled or request.scheduled
        request.status = "assigned"
        return request

    def complete(self, request_id: int, resolution: str | None) -> Ticket:
        request = self.request(request_id)
        if request.status == "completed":
            raise Clash(f"Maintenance request {request_id} is already completed.")
        request.status, request.completed = "completed", self.now()
        request.resolution = resolution
        return request

    def add_job(
        self,
        request_id: int,
        vendor_id: int | None,
        description: str,
        scheduled: date | None = None,
        cost: Decimal | None = None,
    ) -> Job:
        request = self.request(request_id)
        if request.status == "completed":
            raise Clash(f"Maintenance request {request_id} is completed.")
        vendor = self._vendor(vendor_id)
        if not description.strip():
            raise Invalid("description", "A description is required.")
        if cost is not None and cost < 0:
            raise Invalid("cost", "A cost is not negative.")
        job = Job(
            id=self.world.new_id(),
            request_id=request_id,
            vendor_id=vendor,
            description=description,
            status="scheduled",
            scheduled=scheduled or self.world.today,
            cost=cost,
        )
        self.jobs[job.id] = job
        return job

    def start(self, job_id: int) -> Job:
        job = self.job(job_id)
        if job.status != "scheduled":
            raise Clash(f"Work order {job_id} is {job.status.replace('_', ' ')}.")
        job.status, job.started = "in_progress", self.now()
        return job

    def finish(self, job_id: int, cost: Decimal | None) -> Job:
        job = self.job(job_id)
        if job.status not in ("scheduled", "in_progress"):
            raise Clash(f"Work order {job_id} is {job.status}.")
        if cost is not None and cost < 0:
            raise Invalid("cost", "A cost is not negative.")
        job.started = job.started or self.now()
        job.status, job.completed = "completed", self.now()
        job.cost = cost if cost is not None else job.cost
        return job

    def cancel(self, job_id: int, reason: str | None) -> Job:
        job = self.job(job_id)
        if job.status in ("completed", "cancelled"):
            raise Clash(f"Work order {job_id} is {job.status}.")
        job.status, job.reason = "cancelled", reason
        return job
