"""The pms connector's decoding of rows into records."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.connectors import pms
from gateway.model import Entity, Link
from tests.conftest import Client

_BUILDINGS = '{ buildings(first: 5, providers: ["pms"]) { edges { node { %s } } } }'
"""pms lists no units or tenants of its own: they are read through their buildings."""


async def test_a_page_builds_no_link_until_one_of_its_relations_is_read(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A unit built three links and a tenant six (half of decoding them), which a list
    that selects none of its relations threw away: a relation is read from its row when
    asked."""
    made: list[Link] = []

    def counted(*args: Any, **kwargs: Any) -> Link:
        made.append(Link(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(pms, "Link", counted)
    await client.data(_BUILDINGS % "units { unitCode }")
    assert [link.entity for link in made] == [Entity.UNIT] * 5

    made.clear()
    data = await client.data(_BUILDINGS % "units { unitCode tenants { lastName } }")
    count = sum(len(edge["node"]["units"]) for edge in data["buildings"]["edges"])
    assert count > 5 and any(
        unit["tenants"] for edge in data["buildings"]["edges"] for unit in edge["node"]["units"]
    )
    assert [link.entity for link in made] == [Entity.UNIT] * 5 + [Entity.TENANT] * count


def test_relations_read_later_are_those_of_the_row() -> None:
    unit = pms._unit({"id": "unit_12", "unit_number": "101"}, "prop_3")
    tenant = pms._tenant({"id": "ten_7", "unit_id": "unit_12"}, "prop_3")
    building = pms._building({"id": "prop_3", "organization_id": "org_1"})

    def link(entity: Entity, by: str, key: str, within: tuple[str, str] | None = None) -> Link:
        return Link("pms", entity, by, key, within=within)

    requests = Entity.MAINTENANCE_REQUEST
    assert (unit.building, unit.tenants, unit.maintenance_requests) == (
        link(Entity.BUILDING, "id", "prop_3"),
        link(Entity.TENANT, "unit", "prop_3/unit_12"),
        link(requests, "property", "prop_3", ("unit", "prop_3/unit_12")),
    )
    assert (tenant.unit, tenant.lease, tenant.maintenance_requests) == (
        link(Entity.UNIT, "id", "prop_3/unit_12"),
        link(Entity.LEASE, "tenant", "prop_3/ten_7"),
        link(requests, "property", "prop_3", ("tenant", "prop_3/ten_7")),
    )
    assert (tenant.charges, tenant.payments, tenant.balance) == (
        link(Entity.CHARGE, "tenant", "prop_3/ten_7"),
        link(Entity.PAYMENT, "tenant", "prop_3/ten_7"),
        link(Entity.BALANCE, "tenant", "prop_3/ten_7"),
    )
    assert (building.landlord, building.units, building.maintenance_requests) == (
        link(Entity.LANDLORD, "id", "org_1"),
        link(Entity.UNIT, "property", "prop_3"),
        link(requests, "property", "prop_3"),
    )
    assert pms._tenant({"id": "ten_8"}, "prop_3").unit is None
    assert pms._building({"id": "prop_4"}).landlord is None
