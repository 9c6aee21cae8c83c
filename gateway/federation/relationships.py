"""Relationships read off the records themselves: a tenant occupies its unit, a landlord owns
its building. They sit beside the ones LEAP records, and can be fetched again by id like any
node: "occupier:<tenant id>" and "owner:<building id>" at the record's own provider.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from gateway.model import (
    Building,
    Entity,
    Landlord,
    Link,
    Record,
    Relationship,
    Selection,
    Tenant,
)

if TYPE_CHECKING:
    from gateway.federation.fan_out import Federation
    from gateway.federation.loaders import Loaders

__all__ = ["derive", "derived", "is_derived", "occupier", "owner"]

_NEEDS = Selection(frozenset({"name", "first_name", "last_name"}))


def is_derived(source_id: str) -> bool:
    """Whether a relationship's id is one the gateway gave a relationship it derived."""
    return source_id.partition(":")[0] in ("occupier", "owner")


def occupier(tenant: Tenant) -> Relationship:
    return Relationship(
        provider=tenant.provider,
        source_id=f"occupier:{tenant.source_id}",
        role="OCCUPIER",
        derived=True,
        unit=tenant.unit,
        party=Link(tenant.provider, Entity.TENANT, "id", tenant.source_id),
    )


def owner(building: Building) -> Relationship:
    return Relationship(
        provider=building.provider,
        source_id=f"owner:{building.source_id}",
        role="OWNER",
        derived=True,
        building=Link(building.provider, Entity.BUILDING, "id", building.source_id),
        party=building.landlord,
    )


async def derive(
    federation: Federation, provider: str, by: str, keys: Sequence[str]
) -> Mapping[str, Sequence[Record]]:
    """Derived relationships by their ids, from the tenants and buildings they are read off."""
    if by != "id":
        return {}
    wanted = {
        kind: [key.partition(":")[2] for key in keys if key.startswith(f"{kind}:")]
        for kind in ("occupier", "owner")
    }
    found: dict[str, Sequence[Record]] = {}
    if wanted["occupier"]:
        tenants = await federation.fetch(provider, Entity.TENANT, "id", wanted["occupier"], _NEEDS)
        for key, records in tenants.items():
            found[f"occupier:{key}"] = [occupier(r) for r in records if isinstance(r, Tenant)]
    if wanted["owner"]:
        buildings = await federation.fetch(provider, Entity.BUILDING, "id", wanted["owner"], _NEEDS)
        for key, records in buildings.items():
            found[f"owner:{key}"] = [owner(r) for r in records if isinstance(r, Building)]
    return found


async def derived(loaders: Loaders, record: Landlord | Building | Tenant) -> list[Relationship]:
    """The relationships read off a record: a tenant occupies its unit, a building with a
    landlord is owned, a landlord owns each of its buildings (loaded in the request's batch)."""
    if isinstance(record, Tenant):
        return [occupier(record)]
    if isinstance(record, Building):
        return [owner(record)] if record.landlord is not None else []
    buildings = await loaders.many(record.buildings, Selection(frozenset({"name"})))
    return [owner(building) for building in buildings if isinstance(building, Building)]
