"""Writes at providers, each at a provider with the capability it needs.

The schema names what to do and where, in the model's terms; which providers can,
the refusal when one cannot, and the steps of a write that is more than one call
(acknowledging: look up, write, read back) are here, so every caller gets the same.
Writes are guarded like reads but never retried: a late answer means the outcome is unknown.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING

from gateway.connectors.capabilities import LandlordOnboarding, RelationshipRecords, TenantWrites
from gateway.errors import Refused
from gateway.model import (
    Entity,
    Landlord,
    NewLandlord,
    NewTenant,
    Relationship,
    Selection,
    Tenant,
)

if TYPE_CHECKING:
    from gateway.federation.fan_out import Federation

__all__ = ["Writes"]


class Writes:
    def __init__(self, federation: Federation) -> None:
        self._federation = federation

    async def create_tenant(self, provider: str, unit_id: str, tenant: NewTenant) -> Tenant:
        """A tenant in the unit with this source id, at the unit's provider."""
        writer = self._federation.able(TenantWrites, provider)
        return await self._federation.write(provider, lambda: writer.create_tenant(unit_id, tenant))

    async def associate(
        self, wanted: str | None, account: str, property_code: str, role: str, start: date
    ) -> Relationship:
        provider, recorder = self._federation.choose(RelationshipRecords, wanted)
        return await self._federation.write(
            provider, lambda: recorder.associate(account, property_code, role, start)
        )

    async def set_external_id(
        self, provider: str, identifier: str, external_id: str
    ) -> Relationship:
        recorder = self._federation.able(RelationshipRecords, provider)
        return await self._federation.write(
            provider, lambda: recorder.set_external_id(identifier, external_id)
        )

    async def acknowledge(
        self,
        wanted: str | None,
        ids: Sequence[tuple[str, str]],
        external_ids: Sequence[str],
    ) -> list[Relationship]:
        """Acknowledges all or none: one unknown key refuses the lot (`NOT_FOUND`) before
        anything is written. `ids` are (provider, source id); without `wanted`, the provider
        is theirs when they name one. Returns the relationships as they are afterwards."""
        named = {provider for provider, _ in ids}
        provider, recorder = self._federation.choose(
            RelationshipRecords, wanted or (named.pop() if len(named) == 1 else None)
        )
        keys = [identifier for _, identifier in ids]
        _, missing = await self._relationships(provider, keys, external_ids)
        if missing:
            raise Refused(
                "NOT_FOUND", f"No relationship {', '.join(missing[:5])}; none was acknowledged."
            )
        if keys:
            await self._federation.write(provider, lambda: recorder.acknowledge(keys, False))
        if external_ids:
            await self._federation.write(provider, lambda: recorder.acknowledge(external_ids, True))
        found, _ = await self._relationships(provider, keys, external_ids)
        return found

    async def _relationships(
        self, provider: str, keys: Sequence[str], external_ids: Sequence[str]
    ) -> tuple[list[Relationship], list[str]]:
        """The relationships by id and by external id, read fresh, and the keys with none."""
        fetch = self._federation.fetch
        by_key = await fetch(provider, Entity.RELATIONSHIP, "id", keys, Selection())
        by_external = await fetch(
            provider, Entity.RELATIONSHIP, "external_id", external_ids, Selection()
        )
        missing = [k for k in keys if not by_key.get(k)] + [
            k for k in external_ids if not by_external.get(k)
        ]
        found = [
            record
            for records in (*by_key.values(), *by_external.values())
            for record in records
            if isinstance(record, Relationship)
        ]
        return found, missing

    async def create_landlord(self, wanted: str | None, landlord: NewLandlord) -> Landlord:
        provider, onboarder = self._federation.choose(LandlordOnboarding, wanted)
        return await self._federation.write(provider, lambda: onboarder.create_landlord(landlord))

    async def activate_landlord(
        self, provider: str, landlord_id: str, activation_token: str | None
    ) -> Landlord:
        """Its token goes to the vault and is never returned."""
        onboarder = self._federation.able(LandlordOnboarding, provider)
        return await self._federation.write(
            provider, lambda: onboarder.activate_landlord(landlord_id, activation_token)
        )
