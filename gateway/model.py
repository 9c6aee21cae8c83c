"""The unified records, free of Strawberry and of any provider's vocabulary.

Connectors produce these; `schema/` exposes them. Relations are `Link`s: a
pointer only the owning connector can follow, so that the schema and the
federation layer can resolve a relation without knowing how a provider
spells it.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import pycountry

__all__ = [
    "Across",
    "Merged",
    "AMOUNT_DIGITS",
    "Agent",
    "Assignment",
    "AvailableBetween",
    "Balance",
    "Between",
    "Building",
    "Cancellation",
    "Charge",
    "ChargeStatus",
    "Completion",
    "Condition",
    "Contains",
    "Criteria",
    "currency_code",
    "ENTITY_OF",
    "Entity",
    "Equals",
    "Landlord",
    "LATER",
    "Lease",
    "LeaseEnding",
    "LeaseStatus",
    "LeaseTerms",
    "Link",
    "Listing",
    "ListingStatus",
    "made_later",
    "MaintenanceRequest",
    "MaintenanceStatus",
    "Money",
    "NewCharge",
    "NewLandlord",
    "NewMaintenanceRequest",
    "NewPayment",
    "NewProperty",
    "NewRentChange",
    "NewTenant",
    "NewWorkOrder",
    "Occupancy",
    "Payment",
    "PaymentStatus",
    "Priority",
    "ReadLater",
    "Readers",
    "Record",
    "Relation",
    "Relationship",
    "RentChange",
    "Selection",
    "settled",
    "significant_digits",
    "Tenant",
    "Unavailable",
    "Unit",
    "UnitStatusChange",
    "Vendor",
    "Within",
    "WorkOrder",
    "WorkOrderCompletion",
    "WorkOrderStatus",
]


class Entity(enum.Enum):
    LANDLORD = "Landlord"
    BUILDING = "Building"
    UNIT = "Unit"
    TENANT = "Tenant"
    RELATIONSHIP = "Relationship"
    LEASE = "Lease"
    CHARGE = "Charge"
    PAYMENT = "Payment"
    BALANCE = "Balance"
    RENT_CHANGE = "RentChange"
    # operations and listings
    MAINTENANCE_REQUEST = "MaintenanceRequest"
    WORK_ORDER = "WorkOrder"
    VENDOR = "Vendor"
    LISTING = "Listing"
    AGENT = "Agent"


class LeaseStatus(enum.Enum):
    ACTIVE = "ACTIVE"
    UPCOMING = "UPCOMING"
    ENDED = "ENDED"


class ChargeStatus(enum.Enum):
    OPEN = "OPEN"
    PAID = "PAID"
    CANCELLED = "CANCELLED"


class PaymentStatus(enum.Enum):
    COMPLETED = "COMPLETED"
    PENDING = "PENDING"
    FAILED = "FAILED"
    REFUNDED = "REFUNDED"


class Occupancy(enum.Enum):
    VACANT = "VACANT"
    OCCUPIED = "OCCUPIED"
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True, slots=True)
class Link:
    """Where related records live, in terms only their provider's connector understands.

    `by` names a key kind of that connector ("id", "building", ...) and `key` its
    value. A connector that already fetched the related records in the same
    upstream call (an OData `$expand`) hands them over in `prefetched`, so the
    relation costs no further request.
    """

    provider: str
    entity: Entity
    by: str
    key: str
    prefetched: tuple[Record, ...] | None = field(default=None, compare=False, hash=False)
    within: tuple[str, str] | None = None
    """Only those of the records found that this relation of theirs names, by its key
    (`("unit", "prop_1/unit_2")`): for a provider that lists them only under a broader key
    (a property's), whose one read then serves every narrower relation."""


@dataclass(frozen=True, slots=True)
class Unavailable:
    """A relation the provider's API cannot give. Answering it with nothing would look like
    data (a landlord without buildings); so the caller is told why, as a warning."""

    provider: str
    entity: Entity
    reason: str


@dataclass(frozen=True, slots=True)
class Across:
    """A relation of records linked as one thing (at several providers): what each of their
    links finds, together, each linked group once."""

    links: tuple[Link, ...]

    @property
    def entity(self) -> Entity:
        return self.links[0].entity


Relation = Link | Unavailable | Across
"""Where a record's related records are, or why its provider cannot say."""


_Fields = ParamSpec("_Fields")
_R = TypeVar("_R")

Readers = Mapping[str, Callable[[Any], Any]]
"""How to read fields of a record from the provider's row it came from, by field name."""


class _Later:
    def __repr__(self) -> str:
        return "LATER"


LATER: Any = _Later()
"""What a field that `made_later` reads from the row is given when it is not given a value:
pass it to say so where a value is given only sometimes."""


class ReadLater:
    """Base of records whose fields a connector may leave in the provider's row until something
    reads them (`made_later`). A list of a thousand units whose relations no query selects
    built four links for each, two fifths of decoding it, to throw them all away.

    The record stays an instance of its own class, so whatever tells records by class (the
    compiled plan, the entity cache, `ENTITY_OF`) sees no difference: only a field not yet
    set reaches `__getattr__`, which reads it once and sets its slot. A field read later must
    be one whose reading cannot fail (a link, a text), since it runs wherever it is first
    read, not in the connector."""

    __slots__ = ("_later",)

    if not TYPE_CHECKING:  # mypy would take every attribute of a record for one

        def __getattr__(self, name: str) -> Any:
            return _read_later(self, name)


_later_of = vars(ReadLater)["_later"].__get__
_let_go = vars(ReadLater)["_later"].__delete__


def _read_later(record: ReadLater, name: str) -> Any:
    """Where every failed attribute lookup on such a record ends, `hasattr(record,
    "__await__")` included (graphql-core asks it of values it cannot tell by class), so a
    name no reader answers is refused before anything else is done: 1.5 µs, where a record
    without readers refuses in 0.04 µs. The compiled plan tells records by class and never
    asks."""
    try:
        readers, row = _later_of(record)
        read = readers[name]
    except (AttributeError, KeyError):
        message = f"{type(record).__name__!r} object has no attribute {name!r}"
        raise AttributeError(message, name=name, obj=record) from None
    value = read(row)
    getattr(type(record), name).__set__(record, value)
    return value


def settled(record: _R) -> _R:
    """The record with every field it left for later read, and its row let go: for records
    kept past the request that read them (a cache), which would otherwise keep their
    provider's rows alive as long (about 1.1 kB a tenant's, as measured)."""
    if isinstance(record, ReadLater):
        try:
            _later_of(record)
        except AttributeError:
            return record
        for each in dataclasses.fields(record):  # type: ignore[arg-type]
            getattr(record, each.name)
        _let_go(record)
    return record


AMOUNT_DIGITS = 15
"""The most significant digits an amount may have: it travels to providers as a JSON number,
and a JSON reader that holds numbers in doubles (most do) keeps any decimal of up to 15
significant digits exactly, and no more (`99999999999999.99` reads as `…99.98`)."""


def currency_code(text: object) -> str | None:
    """`text` as an ISO 4217 code (`cad` is `CAD`), or None where it names no currency: the
    standard's own list (pycountry's), not three letters of any kind (`ZZZ`)."""
    if not isinstance(text, str):
        return None
    code = text.strip().upper()
    return code if len(code) == 3 and pycountry.currencies.get(alpha_3=code) else None


def significant_digits(amount: Decimal) -> int:
    """`1250.00` has 3 (`1.25E+3`), `0.05` has 1: the digits a double must hold exactly."""
    return 0 if amount.is_zero() else len(amount.normalize().as_tuple().digits)


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in a currency. A `Decimal`, never a float: 0.10 + 0.20 is 0.30, and an
    amount read from a provider is the amount it sent. `currency` is an ISO 4217 code
    (`CAD`); the amount carries at least the currency's minor units (`1250.00`)."""

    amount: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class Merged:
    """Set on a record made of a linked group's records (a `distinct` list's row,
    `node(entityId)`): it is the group, not any one of them, and is known by its label."""

    label: str
    records: tuple[Record, ...]
    """In precedence order, each as its provider gave it."""
    selection: Selection
    """What was asked of them."""


@dataclass(frozen=True, slots=True)
class Landlord:
    provider: str
    source_id: str
    name: str | None = None
    status: str | None = None
    company_type: str | None = None
    billing_address: str | None = None
    billing_postal_code: str | None = None
    business_number: str | None = None
    buildings: Relation | None = None
    merged: Merged | None = None


@dataclass(frozen=True, slots=True)
class Building(ReadLater):
    provider: str
    source_id: str
    name: str | None = None
    code: str | None = None
    street: str | None = None
    city: str | None = None
    postal_code: str | None = None
    landlord: Relation | None = None
    units: Relation | None = None
    maintenance_requests: Relation | None = None
    merged: Merged | None = None


@dataclass(frozen=True, slots=True)
class Unit(ReadLater):
    provider: str
    source_id: str
    code: str | None = None
    rooms: float | None = None
    occupancy: Occupancy | None = None
    housing_type: str | None = None
    address: str | None = None
    """Its own street address, unit included, where the provider gives one (a listing's)."""
    city: str | None = None
    building: Relation | None = None
    tenants: Relation | None = None
    landlord: Relation | None = None
    maintenance_requests: Relation | None = None
    listing: Relation | None = None
    merged: Merged | None = None


@dataclass(frozen=True, slots=True)
class Tenant(ReadLater):
    provider: str
    source_id: str
    first_name: str | None = None
    last_name: str | None = None
    tenant_number: str | None = None
    tenant_type: str | None = None
    email: str | None = None
    phone: str | None = None
    current: bool | None = None
    """Whether its tenancy runs today, where its provider's record says (pms's status);
    None where it does not."""
    unit: Relation | None = None
    lease: Relation | None = None
    maintenance_requests: Relation | None = None
    charges: Relation | None = None
    payments: Relation | None = None
    balance: Relation | None = None
    merged: Merged | None = None


@dataclass(frozen=True, slots=True)
class Lease:
    """The terms a unit is let under: `rent` is the rent in effect today, `tenants` the
    parties who signed it."""

    provider: str
    source_id: str
    start_date: date | None = None
    end_date: date | None = None
    rent: Money | None = None
    deposit: Money | None = None
    status: LeaseStatus | None = None
    tenants: Relation | None = None
    unit: Relation | None = None
    rent_changes: Relation | None = None
    charges: Relation | None = None
    payments: Relation | None = None
    balance: Relation | None = None
    merged: Merged | None = None


@dataclass(frozen=True, slots=True)
class RentChange:
    """The rent a lease moves to from a date: scheduled (a preprogrammed increase) or recorded."""

    provider: str
    source_id: str
    effective_date: date | None = None
    rent: Money | None = None
    lease: Relation | None = None
    merged: Merged | None = None


@dataclass(frozen=True, slots=True)
class Charge:
    """An amount billed to a tenant for a lease (an invoice at pms and Primmo): `balance` is
    what is still owed on it."""

    provider: str
    source_id: str
    number: str | None = None
    description: str | None = None
    amount: Money | None = None
    balance: Money | None = None
    issued_on: date | None = None
    due_on: date | None = None
    paid_at: datetime | None = None
    status: ChargeStatus | None = None
    tenant: Relation | None = None
    lease: Relation | None = None
    payments: Relation | None = None
    merged: Merged | None = None


@dataclass(frozen=True, slots=True)
class Payment:
    provider: str
    source_id: str
    amount: Money | None = None
    paid_at: datetime | None = None
    """With the offset the provider sent."""
    status: PaymentStatus | None = None
    method: str | None = None
    tenant: Relation | None = None
    lease: Relation | None = None
    charge: Relation | None = None
    merged: Merged | None = None


@dataclass(frozen=True, slots=True)
class Balance:
    """What a tenant or a lease still owes, as its provider reckons it; `source_id` is the
    tenant's or the lease's."""

    provider: str
    source_id: str
    owed: Money | None = None
    overdue: Money | None = None
    merged: Merged | None = None


@dataclass(frozen=True, slots=True)
class Relationship:
    """A party's role on a place over time. `derived` ones are read off tenants and buildings
    (a tenant occupies its unit, a landlord owns its building) rather than recorded by a provider.
    """

    provider: str
    source_id: str
    role: str | None = None
    start_date: date | None = None
    end_date: date | None = None
    external_id: str | None = None
    unacked_since: datetime | None = None
    account_number: str | None = None
    property_code: str | None = None
    derived: bool = False
    building: Relation | None = None
    unit: Relation | None = None
    party: Relation | None = None
    merged: Merged | None = None

    @property
    def acknowledged(self) -> bool | None:
        return None if self.derived else self.unacked_since is None


# --- Operations (maintenance, work orders, vendors) and listings (listings, agents) ---


class Priority(enum.Enum):
    LOW = "LOW"
    NORMAL = "NORMAL"
    HIGH = "HIGH"
    URGENT = "URGENT"


class MaintenanceStatus(enum.Enum):
    """A request's flow: reported (OPEN), given to a vendor (ASSIGNED), done (COMPLETED)."""

    OPEN = "OPEN"
    ASSIGNED = "ASSIGNED"
    COMPLETED = "COMPLETED"


class WorkOrderStatus(enum.Enum):
    """A work order's flow: SCHEDULED, then IN_PROGRESS, then COMPLETED; or CANCELLED
    before it is done."""

    SCHEDULED = "SCHEDULED"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"


class ListingStatus(enum.Enum):
    AVAILABLE = "AVAILABLE"
    RENTED = "RENTED"


@dataclass(frozen=True, slots=True)
class MaintenanceRequest:
    """Something to fix in a unit, as a tenant or a manager reported it. Timestamps keep the
    offset the provider sent."""

    provider: str
    source_id: str
    title: str | None = None
    description: str | None = None
    priority: Priority | None = None
    status: MaintenanceStatus | None = None
    reported_at: datetime | None = None
    scheduled_for: date | None = None
    completed_at: datetime | None = None
    unit: Relation | None = None
    building: Relation | None = None
    tenant: Relation | None = None
    vendor: Relation | None = None
    work_orders: Relation | None = None
    merged: Merged | None = None


@dataclass(frozen=True, slots=True)
class WorkOrder:
    """A job a vendor does for a maintenance request; `cost` is what it cost once done, or
    the estimate before."""

    provider: str
    source_id: str
    description: str | None = None
    status: WorkOrderStatus | None = None
    scheduled_for: date | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    cost: Money | None = None
    request: Relation | None = None
    vendor: Relation | None = None
    unit: Relation | None = None
    merged: Merged | None = None


@dataclass(frozen=True, slots=True)
class Vendor:
    """A contractor or supplier who does maintenance work."""

    provider: str
    source_id: str
    name: str | None = None
    trade: str | None = None
    email: str | None = None
    phone: str | None = None
    merged: Merged | None = None


@dataclass(frozen=True, slots=True)
class Listing:
    """A unit advertised for rent: the asking price, and the agent showing it."""

    provider: str
    source_id: str
    title: str | None = None
    price: Money | None = None
    bedrooms: int | None = None
    status: ListingStatus | None = None
    available_from: date | None = None
    unit: Relation | None = None
    agent: Relation | None = None
    merged: Merged | None = None


@dataclass(frozen=True, slots=True)
class Agent:
    """Someone who shows and lets advertised units."""

    provider: str
    source_id: str
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    merged: Merged | None = None


Record = (
    Landlord
    | Building
    | Unit
    | Tenant
    | Relationship
    | Lease
    | MaintenanceRequest
    | WorkOrder
    | Vendor
    | Listing
    | Agent
    | RentChange
    | Charge
    | Payment
    | Balance
)

ENTITY_OF: dict[type, Entity] = {
    Landlord: Entity.LANDLORD,
    Building: Entity.BUILDING,
    Unit: Entity.UNIT,
    Tenant: Entity.TENANT,
    Relationship: Entity.RELATIONSHIP,
    Lease: Entity.LEASE,
    MaintenanceRequest: Entity.MAINTENANCE_REQUEST,
    WorkOrder: Entity.WORK_ORDER,
    Vendor: Entity.VENDOR,
    Listing: Entity.LISTING,
    Agent: Entity.AGENT,
    RentChange: Entity.RENT_CHANGE,
    Charge: Entity.CHARGE,
    Payment: Entity.PAYMENT,
    Balance: Entity.BALANCE,
}


@dataclass(frozen=True, slots=True)
class NewTenant:
    """What a caller gives to create a tenant in a unit; each provider takes what it knows."""

    first_name: str
    last_name: str
    email: str | None = None
    phone: str | None = None
    tenant_type: str | None = None


@dataclass(frozen=True, slots=True)
class LeaseTerms:
    """What a caller changes in a lease's terms; only what is given."""

    end_date: date | None = None
    deposit: Money | None = None


@dataclass(frozen=True, slots=True)
class LeaseEnding:
    """A lease ended early: its last day, and why where the provider keeps it."""

    end_date: date
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class NewRentChange:
    effective_date: date
    rent: Money


@dataclass(frozen=True, slots=True)
class NewCharge:
    amount: Money
    due_date: date
    description: str | None = None


@dataclass(frozen=True, slots=True)
class NewPayment:
    amount: Money
    paid_at: datetime | None = None
    method: str | None = None


@dataclass(frozen=True, slots=True)
class NewLandlord:
    name: str
    company_type: str
    billing_address: str
    billing_postal_code: str
    business_number: str


# --- What callers give to the operations writes; required fields first, optional ones
# default None (`gateway.federation.writes.taken` refuses an optional one a provider has
# no place for). ---


@dataclass(frozen=True, slots=True)
class NewMaintenanceRequest:
    description: str
    title: str | None = None
    priority: Priority | None = None
    tenant_id: str | None = None
    """The reporting tenant's source id, at the unit's provider."""


@dataclass(frozen=True, slots=True)
class Assignment:
    vendor_id: str
    scheduled_for: date | None = None


@dataclass(frozen=True, slots=True)
class Completion:
    resolution: str | None = None


@dataclass(frozen=True, slots=True)
class NewWorkOrder:
    vendor_id: str
    description: str
    scheduled_for: date | None = None
    estimated_cost: Money | None = None


@dataclass(frozen=True, slots=True)
class WorkOrderCompletion:
    cost: Money | None = None


@dataclass(frozen=True, slots=True)
class Cancellation:
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class UnitStatusChange:
    occupancy: Occupancy


@dataclass(frozen=True, slots=True)
class NewProperty:
    """A building a landlord adds to its account at a provider."""

    name: str
    street: str | None = None
    city: str | None = None
    postal_code: str | None = None


@dataclass(frozen=True, slots=True)
class Selection:
    """What a query asks of one entity: unified field names, and nested relations.

    Connectors read it to ask their provider for those fields only (`$select`,
    `fields=`) and to fetch a relation in the same call where they can (`$expand`).
    """

    fields: frozenset[str] = frozenset()
    relations: Mapping[str, Selection] = field(default_factory=dict)
    _hash: int = field(init=False, repr=False, compare=False)
    """Loaders are keyed by selection, and looked up once per parent object: hashed once."""

    def __post_init__(self) -> None:
        relations = tuple(sorted(self.relations.items(), key=lambda kv: kv[0]))
        object.__setattr__(self, "_hash", hash((self.fields, relations)))

    def __hash__(self) -> int:
        return self._hash


@dataclass(frozen=True, slots=True)
class Contains:
    """Case-insensitive substring match on a text field."""

    text: str


@dataclass(frozen=True, slots=True)
class Equals:
    """Exact match; codes compare without their padding."""

    value: str | int | float | bool


@dataclass(frozen=True, slots=True)
class Between:
    """Inclusive numeric range; an open end is `None`."""

    low: float | None = None
    high: float | None = None


@dataclass(frozen=True, slots=True)
class AvailableBetween:
    """Free to rent for the whole of [start, end]: the provider's own availability, not a status."""

    start: date
    end: date


@dataclass(frozen=True, slots=True)
class Within:
    """Inclusive date range; an open end is `None`."""

    low: date | None = None
    high: date | None = None


Condition = Contains | Equals | Between | AvailableBetween | Within
Criteria = Mapping[str, Condition]


def _assigned_by_slot(cls: type) -> None:
    """Gives a frozen record an `__init__` that assigns each field through its slot's own
    descriptor. The dataclass's assigns through `object.__setattr__`, which looks the name up
    in the class first: a Unit took 1.8 µs to build, and a connector builds a record for
    every row it reads (a Primmo unit's three records, before its links were read later,
    took two fifths of its decoding). The parameters and defaults are the dataclass's own,
    so is everything else the dataclass made (frozen `__setattr__`, `__eq__`, `__hash__`,
    `__repr__`); a class whose fields need more than a value (a default factory, a field
    outside `__init__`, `__post_init__`) keeps the dataclass's `__init__`, and so does one
    without slots."""
    fields = dataclasses.fields(cls)
    if (
        "__slots__" not in vars(cls)
        or hasattr(cls, "__post_init__")
        or any(not each.init or each.default_factory is not MISSING for each in fields)
    ):
        return
    namespace: dict[str, Any] = {}
    parameters = []
    for each in fields:
        namespace[f"_set_{each.name}"] = getattr(cls, each.name).__set__
        if each.default is MISSING:
            parameters.append(each.name)
        else:
            namespace[f"_default_{each.name}"] = each.default
            parameters.append(f"{each.name}=_default_{each.name}")
    body = "".join(f"\n    _set_{each.name}(self, {each.name})" for each in fields)
    exec(f"def __init__(self, {', '.join(parameters)}):{body}", namespace)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__annotations__ = vars(cls)["__init__"].__annotations__
    type.__setattr__(cls, "__init__", init)


def made_later(
    cls: Callable[_Fields, _R], readers: Readers
) -> Callable[Concatenate[Any, _Fields], _R]:
    """A function that builds `cls`'s records (a `ReadLater` class) for a connector, which
    builds one for every row: `made_later(Unit, readers)(row, provider=..., ...)` takes the
    class's own parameters (checked as the class's), and each field that `readers` can read
    and the call does not give is read from `row` when first asked.

    Like the class's `__init__` above, but a plain function: calling a class packs keyword
    arguments into a dict for `__init__` (a Unit took 2.1 µs that way)."""
    record: Any = cls
    fields = {each.name: each for each in dataclasses.fields(record)}
    _can_read_later(record, fields, readers)
    namespace: dict[str, Any] = {
        "_new": object.__new__,
        "_cls": record,
        "_LATER": LATER,
        "_READERS": readers,
        "_keep_row": vars(ReadLater)["_later"].__set__,
    }
    parameters, body = [], ["    _made = _new(_cls)"]
    for name, each in fields.items():
        namespace[f"_set_{name}"] = getattr(record, name).__set__
        set_it = f"_set_{name}(_made, {name})"
        if name in readers:
            namespace[f"_default_{name}"] = LATER
            body.append(f"    if {name} is not _LATER: {set_it}")
        else:
            namespace[f"_default_{name}"] = each.default
            body += [f"    if {name} is _LATER: _unread({name!r})", f"    {set_it}"]
        required = each.default is MISSING
        parameters.append(name if required else f"{name}=_default_{name}")
    namespace["_unread"] = partial(_no_reader, record)
    body += ["    _keep_row(_made, (_READERS, _row))", "    return _made"]
    exec(f"def make(_row, {', '.join(parameters)}):\n" + "\n".join(body), namespace)
    make: Callable[Concatenate[Any, _Fields], _R] = namespace["make"]
    make.__qualname__ = f"made_later({record.__qualname__})"
    return make


def _can_read_later(record: type, fields: Mapping[str, Field[Any]], readers: Readers) -> None:
    """`made_later`'s maker is generated code, with names of its own beside the fields'
    (which start with `_`, or are `self`), and the class's parameters: refused at import,
    rather than a field silently shadowing a name, or a parameter silently changed."""
    unknown = sorted(set(readers) - set(fields))
    if not issubclass(record, ReadLater) or unknown:
        raise TypeError(f"{record.__name__} cannot read {unknown or sorted(readers)} later.")
    for name, each in fields.items():
        if name.startswith("_") or name == "self":
            raise TypeError(f"{record.__name__}.{name} would shadow the maker's own names.")
        if not each.init or each.default_factory is not MISSING:
            raise TypeError(f"{record.__name__}.{name} needs more than a value.")
        if name in readers and each.default is MISSING:
            raise TypeError(f"{record.__name__}.{name} is required: it cannot be read later.")
    if hasattr(record, "__post_init__"):
        raise TypeError(f"{record.__name__} has a __post_init__ the maker would not run.")


def _no_reader(record: type, name: str) -> None:
    raise TypeError(f"{record.__name__}.{name} was given LATER, but nothing reads it later.")


def _records(namespace: Mapping[str, object]) -> list[type]:
    return [
        value
        for value in namespace.values()
        if isinstance(value, type)
        and dataclasses.is_dataclass(value)
        and value.__module__ == __name__
    ]


for _record in _records(globals()):
    _assigned_by_slot(_record)
