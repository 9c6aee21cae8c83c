"""Mutations: typed inputs, typed payloads, and errors as data where the caller can act on them.

A provider's validation refusal and a write whose outcome is unknown come back
in the payload's `errors` (the caller fixes the input, or checks before trying
again); anything else is a GraphQL error. Writes are sent once, never retried.
"""

from __future__ import annotations

from typing import cast

import strawberry

from gateway import model
from gateway.errors import InvalidId, OutcomeUnknown, ValidationFailed
from schema.ids import decode_id
from schema.permissions import requires
from schema.types import Info, Tenant

__all__ = ["Mutation"]


@strawberry.type(description="Something the caller can fix or check, returned as data.")
class UserError:
    code: str = strawberry.field(description="VALIDATION_FAILED or OUTCOME_UNKNOWN.")
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
            problems = error.details or [{"field": "", "message": error.message}]
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
