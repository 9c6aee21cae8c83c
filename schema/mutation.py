"""Mutations: typed inputs, typed payloads, and errors as data where the caller can act on them.

A provider's validation refusal and a write whose outcome is unknown come back
in the payload's `errors` (the caller fixes the input, or checks before trying
again); anything else is a GraphQL error. Writes are sent once, never retried.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable
from datetime import date
from typing import TypeVar

import strawberry

from gateway import model
from gateway.errors import BadUserInput, OutcomeUnknown, Refused, Unconfirmed
from schema import linked
from schema.leasing import LeaseMutations
from schema.ledger import LedgerMutations
from schema.operations_writes import OperationsMutations
from schema.permissions import requires
from schema.types import Info, Landlord, Relationship, Role, Tenant
from schema.writes import IdempotencyKey, UserError, errors_of, source_of, written

__all__ = ["Mutation"]

T = TypeVar("T")


@strawberry.input(
    description="A provider that has no place for a field given is refused before anything is "
    "sent (VALIDATION_FAILED naming the field)."
)
class CreateTenantInput:
    unit_id: strawberry.ID = strawberry.field(description="Global id of the unit.")
    first_name: str
    last_name: str
    email: str | None = None
    phone: str | None = None
    tenant_type: str | None = strawberry.field(
        default=None,
        description="The provider's own code; its default if left out.",
    )
    idempotency_key: str | None = IdempotencyKey


@strawberry.type
class CreateTenantPayload:
    tenant: model.Tenant | None = strawberry.field(graphql_type=Tenant | None)
    errors: list[UserError]


@strawberry.input
class AssociatePropertyInput:
    account_number: str = strawberry.field(description="The provider's account (8 digits).")
    property_code: str = strawberry.field(description="The provider's property identifier.")
    role: Role
    start_date: date
    provider: str | None = strawberry.field(
        default=None,
        description="Where to record it; the one provider that records "
        "relationships when left out.",
    )


@strawberry.type
class RelationshipPayload:
    relationship: model.Relationship | None = strawberry.field(graphql_type=Relationship | None)
    errors: list[UserError]


@strawberry.input
class SetRelationshipExternalIdInput:
    relationship_id: strawberry.ID
    external_id: str


@strawberry.input(description="Give ids, or external ids, or both.")
class AcknowledgeRelationshipsInput:
    ids: list[strawberry.ID] = strawberry.field(default_factory=list)
    external_ids: list[str] = strawberry.field(default_factory=list)
    provider: str | None = None


@strawberry.type
class AcknowledgePayload:
    acknowledged: list[model.Relationship] = strawberry.field(graphql_type=list[Relationship])
    errors: list[UserError]


def _refusal(error: Refused | OutcomeUnknown | Unconfirmed) -> UserError:
    return UserError(code=error.code, message=error.message)


async def _as_data(write: Awaitable[T]) -> tuple[T | None, list[UserError]]:
    """A refusal the caller can act on, or an unknown outcome, comes back as data; a write
    that happened but could not be read back comes with what is known of its record."""
    try:
        return await write, []
    except (Refused, OutcomeUnknown) as error:
        return None, [_refusal(error)]
    except Unconfirmed as error:
        return error.record, [_refusal(error)]


@strawberry.enum(description="What kind of company a landlord is registered as.")
class CompanyType(enum.Enum):
    REAL_ESTATE_AGENCY = "REAL_ESTATE_AGENCY"
    PROPERTY_MANAGEMENT = "PROPERTY_MANAGEMENT"
    INDIVIDUAL_LANDLORD = "INDIVIDUAL_LANDLORD"
    DEVELOPER = "DEVELOPER"


@strawberry.input
class CreateLandlordInput:
    name: str
    company_type: CompanyType
    billing_address: str
    billing_postal_code: str
    business_number: str
    provider: str | None = strawberry.field(
        default=None,
        description="Where to create it; the one provider that onboards "
        "landlords (SCOM) when left out.",
    )


@strawberry.type
class LandlordPayload:
    landlord: model.Landlord | None = strawberry.field(graphql_type=Landlord | None)
    errors: list[UserError]


@strawberry.input
class ActivateLandlordInput:
    landlord_id: strawberry.ID
    activation_token: str | None = strawberry.field(
        default=None,
        description="From the provider's verification callback. Left out, the token the "
        "gateway received at /webhooks/<provider> is used.",
    )


@strawberry.input(description="Global ids of records of one type, at any providers.")
class LinkInput:
    ids: list[strawberry.ID]


@strawberry.type
class LinkPayload:
    groups: list[linked.LinkedGroup] = strawberry.field(
        description="The groups the records named are in afterwards."
    )
    errors: list[UserError]


@strawberry.type
class Mutation(LeaseMutations, LedgerMutations, OperationsMutations):
    """Each domain module's writes are inherited (`LeaseMutations`, ...), beside these."""

    @strawberry.mutation(
        description="Creates a tenant in a unit at the unit's provider (Primmo, pms).",
        extensions=requires("tenant:manage"),
    )
    async def create_tenant(self, info: Info, input: CreateTenantInput) -> CreateTenantPayload:
        provider, unit_id = source_of(info, input.unit_id, model.Entity.UNIT)
        new = model.NewTenant(
            first_name=input.first_name.strip(),
            last_name=input.last_name.strip(),
            email=input.email,
            phone=input.phone,
            tenant_type=input.tenant_type,
        )
        outcome = await written(
            info,
            "createTenant",
            input,
            lambda: info.context.federation.writes.create_tenant(provider, unit_id, new),
        )
        tenant = outcome.record if isinstance(outcome.record, model.Tenant) else None
        return CreateTenantPayload(tenant=tenant, errors=errors_of(outcome, "unitId"))

    @strawberry.mutation(
        description="Records that an account holds a role on a property from a date.",
        extensions=requires("relationship:manage"),
    )
    async def associate_property(
        self, info: Info, input: AssociatePropertyInput
    ) -> RelationshipPayload:
        created, errors = await _as_data(
            info.context.federation.writes.associate(
                input.provider,
                input.account_number.strip(),
                input.property_code.strip(),
                input.role.value,
                input.start_date,
            )
        )
        return RelationshipPayload(relationship=created, errors=errors)

    @strawberry.mutation(
        description="Sets the external id a relationship can then be found and acknowledged by.",
        extensions=requires("relationship:manage"),
    )
    async def set_relationship_external_id(
        self, info: Info, input: SetRelationshipExternalIdInput
    ) -> RelationshipPayload:
        provider, identifier = source_of(info, input.relationship_id, model.Entity.RELATIONSHIP)
        external_id = input.external_id.strip()
        if not external_id:
            raise BadUserInput("`externalId` must not be empty.", field="externalId")
        updated, errors = await _as_data(
            info.context.federation.writes.set_external_id(provider, identifier, external_id)
        )
        return RelationshipPayload(relationship=updated, errors=errors)

    @strawberry.mutation(
        description="Clears `unackedSince` on the relationships (not on their property or "
        "account). All or none: one unknown id acknowledges nothing.",
        extensions=requires("relationship:manage"),
    )
    async def acknowledge_relationships(
        self, info: Info, input: AcknowledgeRelationshipsInput
    ) -> AcknowledgePayload:
        if not input.ids and not input.external_ids:
            raise BadUserInput("Give `ids` or `externalIds`.")
        by_id = [source_of(info, global_id, model.Entity.RELATIONSHIP) for global_id in input.ids]
        acknowledged, errors = await _as_data(
            info.context.federation.writes.acknowledge(input.provider, by_id, input.external_ids)
        )
        return AcknowledgePayload(acknowledged=acknowledged or [], errors=errors)

    @strawberry.mutation(
        description="Creates a landlord at SCOM (status PENDING until SCOM verifies it).",
        extensions=requires("landlord:manage"),
    )
    async def create_landlord(self, info: Info, input: CreateLandlordInput) -> LandlordPayload:
        new = model.NewLandlord(
            name=input.name.strip(),
            company_type=input.company_type.value,
            billing_address=input.billing_address.strip(),
            billing_postal_code=input.billing_postal_code.strip(),
            business_number=input.business_number.strip(),
        )
        created, errors = await _as_data(
            info.context.federation.writes.create_landlord(input.provider, new)
        )
        return LandlordPayload(landlord=created, errors=errors)

    @strawberry.mutation(
        description="Activates a verified landlord. Its token goes to the gateway's vault and "
        "is never returned: the landlord's buildings become readable.",
        extensions=requires("landlord:manage"),
    )
    async def activate_landlord(self, info: Info, input: ActivateLandlordInput) -> LandlordPayload:
        provider, landlord_id = source_of(info, input.landlord_id, model.Entity.LANDLORD)
        token = input.activation_token.strip() if input.activation_token else None
        landlord, errors = await _as_data(
            info.context.federation.writes.activate_landlord(provider, landlord_id, token)
        )
        return LandlordPayload(landlord=landlord, errors=errors)

    @strawberry.mutation(
        description="Links records (2 to 20) as one thing, with the groups they are in: a "
        "person's link, which rules never undo. Refused (KEPT_APART) if it would join records "
        "a person kept apart, unless it names those two; NOT_FOUND if a record is not at its "
        "provider.",
        extensions=requires("identity:manage"),
    )
    async def link(self, info: Info, input: LinkInput) -> LinkPayload:
        return _decided(*await linked.link(info, input.ids))

    @strawberry.mutation(
        description="Takes each record named (1 to 20) out of its group, kept apart from that "
        "group's other records and from the others named (which dismisses a proposal between "
        "them); no rule links them again. NOT_FOUND if a record is neither at its provider nor "
        "in a group.",
        extensions=requires("identity:manage"),
    )
    async def unlink(self, info: Info, input: LinkInput) -> LinkPayload:
        return _decided(*await linked.unlink(info, input.ids))


def _decided(groups: list[linked.LinkedGroup], refusals: list[linked.Refusal]) -> LinkPayload:
    return LinkPayload(
        groups=groups,
        errors=[UserError(code=r.code, message=r.message, field=r.field) for r in refusals],
    )
