"""Mutations: typed inputs, typed payloads, and errors as data where the caller can act on them.

A provider's validation refusal and a write whose outcome is unknown come back
in the payload's `errors` (the caller fixes the input, or checks before trying
again); anything else is a GraphQL error. Writes are sent once, never retried.
"""

from __future__ import annotations

import enum
from datetime import date
from typing import cast

import strawberry

from gateway import model
from gateway.errors import BadUserInput, InvalidId, OutcomeUnknown, Refused, ValidationFailed
from schema.ids import decode_id
from schema.permissions import requires
from schema.types import Info, Landlord, Relationship, Role, Tenant

__all__ = ["Mutation"]


@strawberry.type(description="Something the caller can fix or check, returned as data.")
class UserError:
    code: str = strawberry.field(
        description="VALIDATION_FAILED, OUTCOME_UNKNOWN, NOT_FOUND, EXTERNAL_ID_IN_USE, "
        "CONFLICT, INVALID_ACCOUNT_NUMBER, ACTIVATION_TOKEN_NOT_FOUND, ACTIVATION_TOKEN_EXPIRED "
        "or LANDLORD_NOT_VERIFIED."
    )
    message: str
    field: str | None = None


@strawberry.input
class CreateTenantInput:
    unit_id: strawberry.ID = strawberry.field(description="Global id of the unit.")
    first_name: str
    last_name: str
    email: str | None = None
    phone: str | None = None


@strawberry.type
class CreateTenantPayload:
    tenant: Tenant | None
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
    relationship: Relationship | None
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
    acknowledged: list[Relationship]
    errors: list[UserError]


def _recorder(info: Info, wanted: str | None) -> str:
    """The provider that records relationships: the one asked for, or the only one."""
    recorders = info.context.federation.referencing(model.Entity.RELATIONSHIP, "building")
    if wanted is not None:
        if wanted not in recorders:
            raise BadUserInput(f"{wanted} does not record property relationships.")
        return wanted
    if len(recorders) != 1:
        raise BadUserInput("Say which provider records this: " + ", ".join(recorders))
    return recorders[0]


def _refusal(error: Refused | OutcomeUnknown) -> UserError:
    return UserError(code=error.code, message=error.message)


def _relationship_source(global_id: str, info: Info) -> tuple[str, str]:
    entity, provider, source_id = decode_id(global_id)
    if (
        entity is not model.Entity.RELATIONSHIP
        or provider not in info.context.federation.connectors
    ):
        raise InvalidId(f"'{global_id}' is not the id of a relationship.")
    return provider, source_id


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
    landlord: Landlord | None
    errors: list[UserError]


@strawberry.input
class ActivateLandlordInput:
    landlord_id: strawberry.ID
    activation_token: str | None = strawberry.field(
        default=None,
        description="From the provider's verification callback. Left out, the token the "
        "gateway received at /webhooks/<provider> is used.",
    )


def _onboarder(info: Info, wanted: str | None) -> str:
    connectors = info.context.federation.connectors
    onboarders = [
        name for name, connector in sorted(connectors.items()) if connector.onboards_landlords
    ]
    if wanted is not None:
        if wanted not in onboarders:
            raise BadUserInput(f"{wanted} does not onboard landlords.")
        return wanted
    if len(onboarders) != 1:
        raise BadUserInput("Say which provider onboards this landlord: " + ", ".join(onboarders))
    return onboarders[0]


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Creates a tenant in a unit at the unit's provider (Primmo, pms).",
        extensions=requires("tenant:manage"),
    )
    async def create_tenant(self, info: Info, input: CreateTenantInput) -> CreateTenantPayload:
        entity, provider, unit_id = decode_id(input.unit_id)
        if entity is not model.Entity.UNIT or provider not in info.context.federation.connectors:
            raise InvalidId(f"'{input.unit_id}' is not the id of a unit.")
        new = model.NewTenant(
            first_name=input.first_name.strip(),
            last_name=input.last_name.strip(),
            email=input.email,
            phone=input.phone,
        )
        try:
            created = await info.context.federation.write(
                provider, lambda connector: connector.create_tenant(unit_id, new)
            )
        except ValidationFailed as error:
            problems = error.problems or [{"field": "", "message": error.message}]
            return CreateTenantPayload(
                tenant=None,
                errors=[
                    UserError(code=error.code, message=item["message"], field=item["field"] or None)
                    for item in problems
                ],
            )
        except OutcomeUnknown as error:
            return CreateTenantPayload(
                tenant=None, errors=[UserError(code=error.code, message=error.message)]
            )
        return CreateTenantPayload(tenant=cast(Tenant, created), errors=[])

    @strawberry.mutation(
        description="Records that an account holds a role on a property from a date.",
        extensions=requires("relationship:manage"),
    )
    async def associate_property(
        self, info: Info, input: AssociatePropertyInput
    ) -> RelationshipPayload:
        provider = _recorder(info, input.provider)
        try:
            created = await info.context.federation.write(
                provider,
                lambda connector: connector.associate(
                    input.account_number.strip(),
                    input.property_code.strip(),
                    input.role.value,
                    input.start_date,
                ),
            )
        except (Refused, OutcomeUnknown) as error:
            return RelationshipPayload(relationship=None, errors=[_refusal(error)])
        return RelationshipPayload(relationship=cast(Relationship, created), errors=[])

    @strawberry.mutation(
        description="Sets the external id a relationship can then be found and acknowledged by.",
        extensions=requires("relationship:manage"),
    )
    async def set_relationship_external_id(
        self, info: Info, input: SetRelationshipExternalIdInput
    ) -> RelationshipPayload:
        provider, identifier = _relationship_source(input.relationship_id, info)
        external_id = input.external_id.strip()
        if not external_id:
            raise BadUserInput("`externalId` must not be empty.", field="externalId")
        try:
            updated = await info.context.federation.write(
                provider, lambda connector: connector.set_external_id(identifier, external_id)
            )
        except (Refused, OutcomeUnknown) as error:
            return RelationshipPayload(relationship=None, errors=[_refusal(error)])
        return RelationshipPayload(relationship=cast(Relationship, updated), errors=[])

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
        by_id = [_relationship_source(global_id, info) for global_id in input.ids]
        providers = {provider for provider, _ in by_id}
        provider = _recorder(
            info, input.provider or (providers.pop() if len(providers) == 1 else None)
        )
        federation = info.context.federation
        keys = [identifier for _, identifier in by_id]
        fresh = model.Selection()

        async def look_up() -> tuple[list[model.Record], list[str]]:
            by_key = await federation.fetch(provider, model.Entity.RELATIONSHIP, "id", keys, fresh)
            by_external = await federation.fetch(
                provider, model.Entity.RELATIONSHIP, "external_id", input.external_ids, fresh
            )
            missing = [k for k in keys if not by_key.get(k)] + [
                k for k in input.external_ids if not by_external.get(k)
            ]
            found = [r for records in (*by_key.values(), *by_external.values()) for r in records]
            return found, missing

        _, missing = await look_up()
        if missing:
            return AcknowledgePayload(
                acknowledged=[],
                errors=[
                    UserError(
                        code="NOT_FOUND",
                        message=f"No relationship {', '.join(missing[:5])}; none was acknowledged.",
                    )
                ],
            )
        try:
            if keys:
                await federation.write(provider, lambda c: c.acknowledge(keys, False))
            if input.external_ids:
                await federation.write(provider, lambda c: c.acknowledge(input.external_ids, True))
        except (Refused, OutcomeUnknown) as error:
            return AcknowledgePayload(acknowledged=[], errors=[_refusal(error)])
        records, _ = await look_up()
        return AcknowledgePayload(acknowledged=cast(list[Relationship], records), errors=[])

    @strawberry.mutation(
        description="Creates a landlord at SCOM (status PENDING until SCOM verifies it).",
        extensions=requires("landlord:manage"),
    )
    async def create_landlord(self, info: Info, input: CreateLandlordInput) -> LandlordPayload:
        provider = _onboarder(info, input.provider)
        new = model.NewLandlord(
            name=input.name.strip(),
            company_type=input.company_type.value,
            billing_address=input.billing_address.strip(),
            billing_postal_code=input.billing_postal_code.strip(),
            business_number=input.business_number.strip(),
        )
        try:
            created = await info.context.federation.write(
                provider, lambda connector: connector.create_landlord(new)
            )
        except (Refused, OutcomeUnknown) as error:
            return LandlordPayload(landlord=None, errors=[_refusal(error)])
        return LandlordPayload(landlord=cast(Landlord, created), errors=[])

    @strawberry.mutation(
        description="Activates a verified landlord. Its token goes to the gateway's vault and "
        "is never returned: the landlord's buildings become readable.",
        extensions=requires("landlord:manage"),
    )
    async def activate_landlord(self, info: Info, input: ActivateLandlordInput) -> LandlordPayload:
        entity, provider, landlord_id = decode_id(input.landlord_id)
        if (
            entity is not model.Entity.LANDLORD
            or provider not in info.context.federation.connectors
        ):
            raise InvalidId(f"'{input.landlord_id}' is not the id of a landlord.")
        token = input.activation_token.strip() if input.activation_token else None
        try:
            landlord = await info.context.federation.write(
                provider, lambda connector: connector.activate_landlord(landlord_id, token)
            )
        except (Refused, OutcomeUnknown) as error:
            return LandlordPayload(landlord=None, errors=[_refusal(error)])
        return LandlordPayload(landlord=cast(Landlord, landlord), errors=[])
