"""pms and MyCRM errors reach the caller by the provider's own error name, not its status."""

from __future__ import annotations

import pytest

from gateway.sandbox.mycrm import ERRORS as MYCRM_ERRORS
from gateway.sandbox.pms import ERRORS as PMS_ERRORS
from tests.conftest import Client, error_codes

MEANINGS = {
    "pms": {
        "AUTHENTICATION_FAILED": "UPSTREAM_ERROR",
        "TOKEN_EXPIRED": "UPSTREAM_ERROR",
        "INSUFFICIENT_PERMISSIONS": "UPSTREAM_ERROR",
        "RESOURCE_NOT_FOUND": "NOT_FOUND",
        "VALIDATION_ERROR": "UPSTREAM_REJECTED",
        "RATE_LIMIT_EXCEEDED": "RATE_LIMITED",
        "SERVICE_UNAVAILABLE": "UPSTREAM_UNAVAILABLE",
    },
    "mycrm": {
        "ResourceNotFound": "NOT_FOUND",
        "InvalidRequest": "UPSTREAM_REJECTED",
        "InvalidAction": "UPSTREAM_REJECTED",
        "MethodNotAllowed": "UPSTREAM_REJECTED",
        "InternalError": "UPSTREAM_UNAVAILABLE",
        "AuthenticationError": "UPSTREAM_ERROR",
        "AccessDenied": "UPSTREAM_ERROR",
    },
}
"""Each documented name and the gateway code it becomes; a read's VALIDATION_ERROR or
InvalidRequest is the gateway's own request refused."""


def test_every_documented_name_has_a_meaning() -> None:
    assert set(MEANINGS["pms"]) == set(PMS_ERRORS)
    assert set(MEANINGS["mycrm"]) == set(MYCRM_ERRORS)


@pytest.mark.parametrize("status", [None, 400], ids=["documented-status", "plain-400"])
@pytest.mark.parametrize(
    ("provider", "name"),
    [(provider, name) for provider, names in MEANINGS.items() for name in names],
)
async def test_a_provider_error_name_decides_the_code(
    client: Client, provider: str, name: str, status: int | None
) -> None:
    """Sent with its documented status or with a plain 400 (MyCRM promises no more than "a
    400 range http code" with any name), the name says what happened."""
    client.sandbox.states[provider].refuse(name, times=5, status=status)

    body = await client.query(
        f'{{ landlords(first: 1, providers: ["{provider}"]) {{ edges {{ node {{ name }} }} }} }}'
    )

    assert error_codes(body) == [MEANINGS[provider][name]]
    assert body["errors"][0]["extensions"]["provider"] == provider


async def test_a_refused_write_with_any_status_is_a_validation_failure_with_its_fields(
    client: Client,
) -> None:
    building = await client.data(
        '{ buildings(first: 1, providers: ["pms"]) { edges { node { units { id } } } } }'
    )
    unit_id = building["buildings"]["edges"][0]["node"]["units"][0]["id"]
    client.pms.refuse("VALIDATION_ERROR", status=400)

    body = await client.data(
        'mutation($unit: ID!) { createTenant(input: {unitId: $unit, firstName: "Léa", '
        'lastName: "Roy"}) { tenant { id } errors { code field message } } }',
        {"unit": unit_id},
    )

    assert body["createTenant"] == {
        "tenant": None,
        "errors": [
            {
                "code": "VALIDATION_FAILED",
                "field": None,
                "message": PMS_ERRORS["VALIDATION_ERROR"][1],
            }
        ],
    }
