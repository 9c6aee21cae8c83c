"""Money owed and paid: charges (invoices), payments, balances, and the writes that make them.

Amounts are `Money`, never floats, because a client's double has already changed an amount.
Reading money needs `financial:read` wherever it is reached, since what a tenant owes is not
what a property manager's other callers should see; writing it, `financial:manage`.
Relations that carry money are nullable: a provider that refuses one (a module the client has
not bought) or a caller without the scope costs that field alone, not the whole answer.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from gateway import model
from gateway.errors import BadUserInput
from gateway.federation.fan_out import ListResult
from schema.connection import Connection
from schema.filters import DateRange
from schema.money import Money, MoneyInput
from schema.permissions import requires
from schema.roots import After, First, Providers, connection
from schema.types import Info, Node, follows, many, one, shows
from schema.writes import IdempotencyKey, UserError, errors_of, source_of, written

if TYPE_CHECKING:
    from schema.leasing import Lease
    from schema.types import Tenant

__all__ = [
    "Balance",
    "Charge",
    "ChargeFilter",
    "LedgerMutations",
    "LedgerQueries",
    "Payment",
    "PaymentFilter",
]

ChargeStatus = model.ChargeStatus
strawberry.enum(ChargeStatus, description="Whether anything is still owed on a charge.")
PaymentStatus = model.PaymentStatus
strawberry.enum(PaymentStatus, description="Where a payment stands.")

TenantType = Annotated["Tenant", strawberry.lazy("schema.types")]
LeaseType = Annotated["Lease", strawberry.lazy("schema.leasing")]


@shows(model.Charge)
@strawberry.type(description="An amount billed to a tenant for a lease: an invoice.")
class Charge(Node):
    number: str | None = strawberry.field(description="The provider's invoice number.")
    description: str | None
    amount: Money | None
    balance: Money | None = strawberry.field(description="What is still owed on it.")
    issued_on: date | None
    due_on: date | None
    paid_at: datetime | None = strawberry.field(
        description="When it was paid in full, with the offset the provider sent."
    )
    status: ChargeStatus | None

    @strawberry.field(description="Who it is billed to.", graphql_type=TenantType | None)
    @staticmethod
    @follows("tenant", model.Tenant, plural=False)
    async def tenant(root: strawberry.Parent[model.Charge], info: Info) -> model.Tenant | None:
        return await one(info, root.tenant, model.Tenant)

    @strawberry.field(graphql_type=LeaseType | None)
    @staticmethod
    @follows("lease", model.Lease, plural=False)
    async def lease(root: strawberry.Parent[model.Charge], info: Info) -> model.Lease | None:
        return await one(info, root.lease, model.Lease)

    @strawberry.field(description="Payments made on it.", graphql_type=list["Payment"] | None)
    @staticmethod
    @follows("payments", model.Payment, plural=True)
    async def payments(
        root: strawberry.Parent[model.Charge], info: Info
    ) -> list[model.Payment] | None:
        return await many(info, root.payments, model.Payment)


@shows(model.Payment)
@strawberry.type(description="Money a tenant paid, or tried to.")
class Payment(Node):
    amount: Money | None
    paid_at: datetime | None = strawberry.field(description="With the offset the provider sent.")
    status: PaymentStatus | None
    method: str | None = strawberry.field(description="As the provider names it: card, ...")

    @strawberry.field(graphql_type=TenantType | None)
    @staticmethod
    @follows("tenant", model.Tenant, plural=False)
    async def tenant(root: strawberry.Parent[model.Payment], info: Info) -> model.Tenant | None:
        return await one(info, root.tenant, model.Tenant)

    @strawberry.field(graphql_type=LeaseType | None)
    @staticmethod
    @follows("lease", model.Lease, plural=False)
    async def lease(root: strawberry.Parent[model.Payment], info: Info) -> model.Lease | None:
        return await one(info, root.lease, model.Lease)

    @strawberry.field(description="The charge it pays.", graphql_type=Charge | None)
    @staticmethod
    @follows("charge", model.Charge, plural=False)
    async def charge(root: strawberry.Parent[model.Payment], info: Info) -> model.Charge | None:
        return await one(info, root.charge, model.Charge)


@shows(model.Balance)
@strawberry.type(description="What is still owed, as the provider reckons it.")
class Balance:
    owed: Money | None = strawberry.field(description="Everything still owed.")
    overdue: Money | None = strawberry.field(description="The part of it past its due date.")


@strawberry.input
class ChargeFilter:
    status: ChargeStatus | None = None
    due_on: DateRange | None = None

    def criteria(self) -> model.Criteria:
        criteria: dict[str, model.Condition] = {}
        if self.status is not None:
            criteria["status"] = model.Equals(self.status.value)
        if self.due_on is not None:
            criteria["due_date"] = self.due_on.within("dueOn")
        return criteria


@strawberry.input
class PaymentFilter:
    status: PaymentStatus | None = None

    def criteria(self) -> model.Criteria:
        return {"status": model.Equals(self.status.value)} if self.status is not None else {}


@strawberry.type
class LedgerQueries:
    @strawberry.field(
        description="Charges from every provider that lists them, by due date, then provider, "
        "then id.",
        graphql_type=Connection[Charge] | None,
    )
    async def charges(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        filter: ChargeFilter | None = None,
        providers: Providers = None,
    ) -> ListResult:
        criteria = filter.criteria() if filter else {}
        return await connection(info, model.Entity.CHARGE, criteria, first, after, providers)

    @strawberry.field(
        description="Payments from every provider that lists them, by when they were made "
        "(the instant, whatever the offset), then provider, then id.",
        graphql_type=Connection[Payment] | None,
    )
    async def payments(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        filter: PaymentFilter | None = None,
        providers: Providers = None,
    ) -> ListResult:
        criteria = filter.criteria() if filter else {}
        return await connection(info, model.Entity.PAYMENT, criteria, first, after, providers)


@strawberry.input(description="Bills a lease's tenant.")
class CreateChargeInput:
    lease_id: strawberry.ID
    amount: MoneyInput
    due_on: date
    description: str | None = None
    idempotency_key: str | None = IdempotencyKey


@strawberry.type
class ChargePayload:
    charge: model.Charge | None = strawberry.field(graphql_type=Charge | None)
    errors: list[UserError]


@strawberry.input(description="Records a payment on a charge.")
class RecordPaymentInput:
    charge_id: strawberry.ID
    amount: MoneyInput
    paid_at: datetime | None = strawberry.field(
        default=None, description="When it was made, with its offset; now if left out."
    )
    method: str | None = strawberry.field(
        default=None, description="How it was paid, as the provider names it."
    )
    idempotency_key: str | None = IdempotencyKey


@strawberry.type
class PaymentPayload:
    payment: model.Payment | None = strawberry.field(graphql_type=Payment | None)
    errors: list[UserError]


MANAGE = requires("financial:manage")


@strawberry.type
class LedgerMutations:
    @strawberry.mutation(description="Bills a lease's tenant.", extensions=MANAGE)
    async def create_charge(self, info: Info, input: CreateChargeInput) -> ChargePayload:
        provider, lease_id = source_of(info, input.lease_id, model.Entity.LEASE)
        new = model.NewCharge(
            amount=input.amount.value("amount"),
            due_date=input.due_on,
            description=input.description,
        )
        outcome = await written(
            info,
            "createCharge",
            input,
            lambda: info.context.federation.writes.create_charge(provider, lease_id, new),
        )
        charge = outcome.record if isinstance(outcome.record, model.Charge) else None
        return ChargePayload(charge=charge, errors=errors_of(outcome, "leaseId"))

    @strawberry.mutation(description="Records a payment on a charge.", extensions=MANAGE)
    async def record_payment(self, info: Info, input: RecordPaymentInput) -> PaymentPayload:
        provider, charge_id = source_of(info, input.charge_id, model.Entity.CHARGE)
        if input.paid_at is not None and input.paid_at.utcoffset() is None:
            raise BadUserInput(
                "`paidAt` needs its offset (as 2026-11-03T09:30:00-05:00): without one, when "
                "the payment was made is not known.",
                field="paidAt",
            )
        new = model.NewPayment(
            amount=input.amount.value("amount"), paid_at=input.paid_at, method=input.method
        )
        outcome = await written(
            info,
            "recordPayment",
            input,
            lambda: info.context.federation.writes.record_payment(provider, charge_id, new),
        )
        payment = outcome.record if isinstance(outcome.record, model.Payment) else None
        return PaymentPayload(payment=payment, errors=errors_of(outcome, "chargeId"))
