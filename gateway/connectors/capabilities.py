"""What a provider can do beyond reading: each an abstract mixin a connector declares in its bases.

A connector names its capabilities where it is defined (`class LeapConnector(Connector,
RelationshipRecords)`), and the federation finds them by type (`federation.capable(TenantWrites)`).
So there are no flags to keep in step with methods, and no defaults that refuse: a provider
without a capability has none of its methods, and the federation, which sees that it lacks it,
is the one place that refuses (`Federation.able` and `Federation.choose`).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from datetime import date
from typing import ClassVar

from gateway.events import Delivery
from gateway.model import (
    Assignment,
    Building,
    Cancellation,
    Charge,
    Completion,
    Landlord,
    Lease,
    LeaseEnding,
    LeaseTerms,
    MaintenanceRequest,
    NewCharge,
    NewLandlord,
    NewMaintenanceRequest,
    NewPayment,
    NewProperty,
    NewRentChange,
    NewTenant,
    NewWorkOrder,
    Payment,
    Relationship,
    RentChange,
    Tenant,
    Unit,
    UnitStatusChange,
    WorkOrder,
    WorkOrderCompletion,
)

__all__ = [
    "CAPABILITIES",
    "Capability",
    "ChargeWrites",
    "LandlordOnboarding",
    "LeaseWrites",
    "MaintenanceWrites",
    "PaymentWrites",
    "PropertyCreation",
    "RelationshipRecords",
    "RentChanges",
    "TenantWrites",
    "UnitStatusWrites",
    "WebhookSource",
]


class Capability:
    """What every capability is: something a provider may lack, said so in one phrase."""

    ability: ClassVar[str]
    """What it lets a provider do, as refusals say it: "<provider> does not <ability>"."""
    accepts: ClassVar[Mapping[str, frozenset[str]]] = {}
    """For each write it makes (by method name), the optional fields of its input it has a
    place for; a caller who gives another is refused before anything is sent, never
    silently ignored (`gateway.federation.writes.taken`). Required fields always go."""


class TenantWrites(Capability, abc.ABC):
    ability = "take new tenants through its API"

    @abc.abstractmethod
    async def create_tenant(self, unit_id: str, tenant: NewTenant, /) -> Tenant:
        """Creates a tenant in the unit with this source id, with every field `accepts` names
        for `create_tenant` that the caller gave. Writes are sent once, never retried."""


class LeaseWrites(Capability, abc.ABC):
    """A lease's terms can be changed, and the lease ended, through the provider's API."""

    ability = "change leases through its API"

    @abc.abstractmethod
    async def update_lease(self, lease_id: str, terms: LeaseTerms, /) -> Lease:
        """Changes the terms given; returns the lease as the provider now has it."""

    @abc.abstractmethod
    async def end_lease(self, lease_id: str, ending: LeaseEnding, /) -> Lease: ...


class RentChanges(Capability, abc.ABC):
    ability = "record rent changes"

    @abc.abstractmethod
    async def change_rent(self, lease_id: str, change: NewRentChange, /) -> RentChange:
        """Records that the lease's rent becomes `change.rent` from its effective date."""


class ChargeWrites(Capability, abc.ABC):
    ability = "take new charges through its API"

    @abc.abstractmethod
    async def create_charge(self, lease_id: str, charge: NewCharge, /) -> Charge:
        """Bills the lease's tenant; returns the charge as the provider filed it."""


class PaymentWrites(Capability, abc.ABC):
    ability = "record payments through its API"

    @abc.abstractmethod
    async def record_payment(self, charge_id: str, payment: NewPayment, /) -> Payment: ...


class RelationshipRecords(Capability, abc.ABC):
    """The provider keeps property relationships about other providers' records (LEAP)."""

    ability = "record property relationships"
    references: ClassVar[frozenset[str]]
    """Key kinds by which it finds records about other providers' records: "building" and
    "party" (relationships about a building, or held by a tenant or landlord), keyed
    "<provider>:<sourceId>"."""

    @abc.abstractmethod
    async def associate(
        self, account: str, property_code: str, role: str, start: date, /
    ) -> Relationship:
        """Records that an account holds a role on a property from a date."""

    @abc.abstractmethod
    async def set_external_id(self, identifier: str, external_id: str, /) -> Relationship: ...

    @abc.abstractmethod
    async def acknowledge(self, keys: Sequence[str], external: bool, /) -> None:
        """Clears `unacked-since` on the relationships named by id, or by external id."""


class LandlordOnboarding(Capability, abc.ABC):
    """Landlords are created and activated through the provider (SCOM). Activation hands over
    the landlord's token, so a provider with this capability needs the gateway's vault."""

    ability = "onboard landlords"

    @abc.abstractmethod
    async def create_landlord(self, landlord: NewLandlord, /) -> Landlord: ...

    @abc.abstractmethod
    async def activate_landlord(
        self, landlord_id: str, activation_token: str | None, /
    ) -> Landlord:
        """Activates a verified landlord and keeps its token in the vault, never returning it.

        Without an activation token, the one the provider's callback delivered is used.
        """


class WebhookSource(Capability, abc.ABC):
    """The provider calls the gateway back at `/webhooks/<name>`.

    Subscribing is optional within it: a provider that calls back where it was configured
    (SCOM's callback URL) has nothing to subscribe to, so those three answer "nothing"."""

    ability = "send callbacks the gateway listens to"

    @abc.abstractmethod
    async def receive(
        self, body: bytes, headers: Mapping[str, str], params: Mapping[str, str], /
    ) -> Delivery:
        """What the provider calls back with.

        Raises `Unauthenticated` for a delivery that does not prove its origin, and
        `BadUserInput` for one that cannot be read."""

    async def webhook_subscriptions(self) -> list[str]:
        """What the provider currently sends this gateway webhooks for."""
        return []

    async def subscribe_webhooks(self, _gateway_url: str, /) -> list[str]:
        """Asks the provider to call `<gateway_url>/webhooks/<name>` on changes; idempotent."""
        return []

    async def unsubscribe_webhooks(self) -> list[str]:
        return []


class MaintenanceWrites(Capability, abc.ABC):
    """Maintenance requests and work orders move along their flow through the provider's API
    (pms's Operations service, Primmo's service calls). Ids are the provider's source ids;
    each method returns the record as the provider answered it, and a step that does not
    fit the record's status is the provider's refusal (`CONFLICT`), never guessed here."""

    ability = "take maintenance requests and work orders through its API"

    @abc.abstractmethod
    async def create_maintenance_request(
        self, unit_id: str, request: NewMaintenanceRequest, /
    ) -> MaintenanceRequest: ...

    @abc.abstractmethod
    async def assign_maintenance_request(
        self, request_id: str, assignment: Assignment, /
    ) -> MaintenanceRequest: ...

    @abc.abstractmethod
    async def complete_maintenance_request(
        self, request_id: str, completion: Completion, /
    ) -> MaintenanceRequest: ...

    @abc.abstractmethod
    async def create_work_order(self, request_id: str, order: NewWorkOrder, /) -> WorkOrder: ...

    @abc.abstractmethod
    async def start_work_order(self, order_id: str, /) -> WorkOrder: ...

    @abc.abstractmethod
    async def complete_work_order(
        self, order_id: str, completion: WorkOrderCompletion, /
    ) -> WorkOrder: ...

    @abc.abstractmethod
    async def cancel_work_order(
        self, order_id: str, cancellation: Cancellation, /
    ) -> WorkOrder: ...


class UnitStatusWrites(Capability, abc.ABC):
    ability = "update unit statuses through its API"

    @abc.abstractmethod
    async def update_unit_status(self, unit_id: str, change: UnitStatusChange, /) -> Unit: ...


class PropertyCreation(Capability, abc.ABC):
    """A landlord's buildings are created at the provider under the landlord's own credentials
    (SCOM: with the token its activation handed over)."""

    ability = "create properties for a landlord"

    @abc.abstractmethod
    async def create_property(self, landlord_id: str, new: NewProperty, /) -> Building: ...


CAPABILITIES: tuple[type[Capability], ...] = (
    TenantWrites,
    LeaseWrites,
    RentChanges,
    ChargeWrites,
    PaymentWrites,
    RelationshipRecords,
    LandlordOnboarding,
    WebhookSource,
    MaintenanceWrites,
    UnitStatusWrites,
    PropertyCreation,
)
