"""Writes at providers, each at a provider with the capability it needs, with one set of
guarantees for all of them.

The schema names what to do and where, in the model's terms; which providers can,
the refusal when one cannot, and the steps of a write that is more than one call
(acknowledging: look up, write, read back) are here, so every caller gets the same:

- every field the caller gave reaches the provider, or the write is refused before anything
  is sent (`VALIDATION_FAILED` naming the field): a connector says what it takes
  (`Capability.accepts`), and nothing is silently dropped;
- sent once, never retried; once a request of it may have left, a late or unreadable answer
  means the outcome is unknown (`OUTCOME_UNKNOWN`), never a failure to retry;
- the written record's cached copies are evicted, whatever the outcome, and the fullest kept
  aside, so the change the provider reports says what it changed;
- under an idempotency key, a retry gets the first outcome and never writes again
  (`gateway.state.idempotency`); a write that never left frees its key.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, TypeVar

from gateway.connectors.capabilities import (
    Capability,
    ChargeWrites,
    LandlordOnboarding,
    LeaseWrites,
    MaintenanceWrites,
    PaymentWrites,
    PropertyCreation,
    RelationshipRecords,
    RentChanges,
    TenantWrites,
    UnitStatusWrites,
)
from gateway.errors import (
    Conflict,
    CredentialsRefused,
    GatewayError,
    NotFound,
    OutcomeUnknown,
    RateLimited,
    Refused,
    SharedStateUnavailable,
    TokenRequestRejected,
    Unconfirmed,
    UpstreamDenied,
    UpstreamRejected,
    ValidationFailed,
)
from gateway.model import (
    Assignment,
    Building,
    Cancellation,
    Charge,
    Completion,
    Entity,
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
    Record,
    Relationship,
    RentChange,
    Selection,
    Tenant,
    Unit,
    UnitStatusChange,
    WorkOrder,
    WorkOrderCompletion,
)
from gateway.state import records
from gateway.state.idempotency import Idempotency
from gateway.state.redis import RedisUnavailable
from gateway.upstream.dispatch import Dispatch, watching

if TYPE_CHECKING:
    from gateway.federation.fan_out import Federation

__all__ = ["Outcome", "Refusal", "Writes", "taken"]

logger = logging.getLogger("gateway.writes")

R = TypeVar("R", bound=Record)
W = TypeVar("W", bound=Capability)

_OPERATIONS: dict[type, str] = {
    NewTenant: "create_tenant",
    LeaseTerms: "update_lease",
    LeaseEnding: "end_lease",
    NewRentChange: "change_rent",
    NewCharge: "create_charge",
    NewPayment: "record_payment",
    NewMaintenanceRequest: "create_maintenance_request",
    Assignment: "assign_maintenance_request",
    Completion: "complete_maintenance_request",
    NewWorkOrder: "create_work_order",
    WorkOrderCompletion: "complete_work_order",
    Cancellation: "cancel_work_order",
    UnitStatusChange: "update_unit_status",
    NewProperty: "create_property",
}
"""Each write's input, by the capability method (`Capability.accepts` key) that takes it."""


@dataclass(frozen=True)
class Refusal:
    """Something the caller can fix or check, as the payload's `errors` shows it; `field` is
    the unified name of the input field it is about."""

    code: str
    message: str
    field: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What a write came to: the record as written (or as known), and what was refused."""

    record: Record | None
    refusals: tuple[Refusal, ...] = ()

    def dumps(self) -> str:
        return json.dumps(
            {
                "record": records.dumps([self.record]) if self.record is not None else None,
                "refusals": [dataclasses.asdict(refusal) for refusal in self.refusals],
            }
        )

    @classmethod
    def loads(cls, text: str) -> Outcome:
        kept = json.loads(text)
        record = records.loads(kept["record"])[0] if kept["record"] is not None else None
        return cls(record, tuple(Refusal(**refusal) for refusal in kept["refusals"]))


_UNPROCESSED = (
    RateLimited,
    UpstreamDenied,
    UpstreamRejected,
    CredentialsRefused,
    TokenRequestRejected,
)
"""What a provider answers to a request it did not carry out (a 429, access refused, a request
it could not read): nothing was written, so the write is not in doubt even once sent."""


async def _settled(write: Callable[[], Awaitable[Record]], dispatch: Dispatch) -> Outcome:
    """A refusal the caller can act on, or an unknown outcome, comes back as data; a write
    that happened but could not be read back comes with what is known of its record. Once a
    request of the write may have left, any failure but a provider's refusal is an unknown
    outcome: a 502 from a proxy, or a 200 the gateway cannot read, says nothing of whether
    the provider wrote, and a caller told it failed would write it again."""
    try:
        return Outcome(await write())
    except ValidationFailed as error:
        problems = error.problems or [{"field": "", "message": error.message}]
        return Outcome(
            None,
            tuple(
                Refusal(error.code, item["message"], item.get("field") or None) for item in problems
            ),
        )
    except (Refused, OutcomeUnknown, Conflict, NotFound) as error:
        return Outcome(None, (Refusal(error.code, error.message),))
    except Unconfirmed as error:
        return Outcome(error.record, (Refusal(error.code, error.message),))
    except GatewayError as error:
        if not dispatch.left or isinstance(error, _UNPROCESSED):
            raise
        return _unknown(error.message)


def _unknown(said: str) -> Outcome:
    return Outcome(
        None,
        (
            Refusal(
                OutcomeUnknown.code,
                f"{said.rstrip('. ')}. The write was sent, so it may have happened: read the "
                "record before writing it again.",
            ),
        ),
    )


def taken(provider: str, capability: Capability, operation: str, given: Any) -> None:
    """Refuses, before anything is sent, each optional field given that the provider has no
    place for: its required fields it always takes, its optional ones as it `accepts`."""
    offered = [
        item.name
        for item in dataclasses.fields(given)
        if item.default is None and getattr(given, item.name) is not None
    ]
    refused = [name for name in offered if name not in capability.accepts.get(operation, ())]
    if refused:
        raise ValidationFailed(
            provider,
            f"{provider} has no place for {', '.join(refused)}: nothing was sent.",
            [
                {"field": name, "message": f"{provider} has no place for {name}; nothing was sent."}
                for name in refused
            ],
        )


class Writes:
    def __init__(self, federation: Federation, idempotency: Idempotency) -> None:
        self._federation = federation
        self._idempotency = idempotency

    async def once(
        self, key: str | None, fingerprint: str, write: Callable[[], Awaitable[Record]]
    ) -> Outcome:
        """The write's outcome; under `key`, the first request's outcome for every retry with
        the same `fingerprint`. The key keeps every outcome of a write that may have reached
        its provider, an unknown one included, so a retry never writes twice; a write none of
        whose requests left (refused before sending, its provider unreachable) frees it, for
        the corrected or later retry to run."""
        with watching() as dispatch:
            if key is None:
                return await _settled(write, dispatch)
            try:
                first = await self._idempotency.begin(key, fingerprint)
            except RedisUnavailable as error:
                raise SharedStateUnavailable(
                    f"{error} The write was not sent; try again."
                ) from None
            if first is not None:
                return Outcome.loads(first)
            try:
                done = await _settled(write, dispatch)
            except BaseException as error:
                if dispatch.left and not isinstance(error, _UNPROCESSED):
                    said = error.message if isinstance(error, GatewayError) else "It was cut short."
                    await self._keep(key, fingerprint, _unknown(said))
                else:
                    with contextlib.suppress(RedisUnavailable):
                        await self._idempotency.release(key, fingerprint)
                raise
            if not dispatch.left:
                with contextlib.suppress(RedisUnavailable):
                    await self._idempotency.release(key, fingerprint)
                return done
            await self._keep(key, fingerprint, done)
            return done

    async def _keep(self, key: str, fingerprint: str, outcome: Outcome) -> None:
        try:
            await self._idempotency.finish(key, fingerprint, outcome.dumps())
        except RedisUnavailable:
            logger.warning("an idempotency key's outcome could not be kept: Redis is unavailable")

    async def _by(
        self,
        capability: type[W],
        provider: str,
        given: Any,
        changed: tuple[Entity, str] | None,
        write: Callable[[W], Awaitable[R]],
    ) -> R:
        """A write at a provider with `capability`: what it has no place for in `given` (the
        input of the capability's method named as `write` calls it; None for a write that
        takes none, as starting a work order) refused before anything is sent; sent once
        through the provider's guard; the changed record's cached copies evicted whether or
        not the answer came back, since the write may have happened, the fullest set aside
        for the provider's report of the write to say what changed."""
        writer = self._federation.able(capability, provider)
        if given is not None:
            taken(provider, writer, _OPERATIONS[type(given)], given)
        try:
            return await self._federation.write(provider, lambda: write(writer))
        finally:
            if changed is not None:
                await self._federation.cache.set_aside(provider, *changed)

    async def create_tenant(self, provider: str, unit_id: str, tenant: NewTenant) -> Tenant:
        """A tenant in the unit with this source id, at the unit's provider."""
        return await self._by(
            TenantWrites, provider, tenant, None, lambda w: w.create_tenant(unit_id, tenant)
        )

    async def update_lease(self, provider: str, lease_id: str, terms: LeaseTerms) -> Lease:
        lease = (Entity.LEASE, lease_id)
        return await self._by(
            LeaseWrites, provider, terms, lease, lambda w: w.update_lease(lease_id, terms)
        )

    async def end_lease(self, provider: str, lease_id: str, ending: LeaseEnding) -> Lease:
        lease = (Entity.LEASE, lease_id)
        return await self._by(
            LeaseWrites, provider, ending, lease, lambda w: w.end_lease(lease_id, ending)
        )

    async def change_rent(self, provider: str, lease_id: str, change: NewRentChange) -> RentChange:
        lease = (Entity.LEASE, lease_id)
        return await self._by(
            RentChanges, provider, change, lease, lambda w: w.change_rent(lease_id, change)
        )

    async def create_charge(self, provider: str, lease_id: str, charge: NewCharge) -> Charge:
        return await self._by(
            ChargeWrites, provider, charge, None, lambda w: w.create_charge(lease_id, charge)
        )

    async def record_payment(self, provider: str, charge_id: str, payment: NewPayment) -> Payment:
        return await self._by(
            PaymentWrites,
            provider,
            payment,
            (Entity.CHARGE, charge_id),
            lambda w: w.record_payment(charge_id, payment),
        )

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
        is theirs when they name one. An id of another provider is none of this one's, even
        where this one has a relationship of that source id. Returns the relationships as
        they are afterwards."""
        named = {provider for provider, _ in ids}
        provider, recorder = self._federation.choose(
            RelationshipRecords, wanted or (named.pop() if len(named) == 1 else None)
        )
        keys = [identifier for at, identifier in ids if at == provider]
        foreign = [f"{at}:{identifier}" for at, identifier in ids if at != provider]
        _, unknown = await self._relationships(provider, keys, external_ids)
        missing = foreign + [f"{provider}:{key}" for key in unknown]
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

    # --- Operations: maintenance requests, work orders, unit statuses, properties ---

    async def create_maintenance_request(
        self, provider: str, unit_id: str, new: NewMaintenanceRequest
    ) -> MaintenanceRequest:
        return await self._by(
            MaintenanceWrites,
            provider,
            new,
            None,
            lambda w: w.create_maintenance_request(unit_id, new),
        )

    async def assign_maintenance_request(
        self, provider: str, request_id: str, assignment: Assignment
    ) -> MaintenanceRequest:
        request = (Entity.MAINTENANCE_REQUEST, request_id)
        return await self._by(
            MaintenanceWrites,
            provider,
            assignment,
            request,
            lambda w: w.assign_maintenance_request(request_id, assignment),
        )

    async def complete_maintenance_request(
        self, provider: str, request_id: str, completion: Completion
    ) -> MaintenanceRequest:
        request = (Entity.MAINTENANCE_REQUEST, request_id)
        return await self._by(
            MaintenanceWrites,
            provider,
            completion,
            request,
            lambda w: w.complete_maintenance_request(request_id, completion),
        )

    async def create_work_order(
        self, provider: str, request_id: str, order: NewWorkOrder
    ) -> WorkOrder:
        return await self._by(
            MaintenanceWrites,
            provider,
            order,
            None,
            lambda w: w.create_work_order(request_id, order),
        )

    async def start_work_order(self, provider: str, order_id: str) -> WorkOrder:
        order = (Entity.WORK_ORDER, order_id)
        return await self._by(
            MaintenanceWrites, provider, None, order, lambda w: w.start_work_order(order_id)
        )

    async def complete_work_order(
        self, provider: str, order_id: str, completion: WorkOrderCompletion
    ) -> WorkOrder:
        order = (Entity.WORK_ORDER, order_id)
        return await self._by(
            MaintenanceWrites,
            provider,
            completion,
            order,
            lambda w: w.complete_work_order(order_id, completion),
        )

    async def cancel_work_order(
        self, provider: str, order_id: str, cancellation: Cancellation
    ) -> WorkOrder:
        order = (Entity.WORK_ORDER, order_id)
        return await self._by(
            MaintenanceWrites,
            provider,
            cancellation,
            order,
            lambda w: w.cancel_work_order(order_id, cancellation),
        )

    async def update_unit_status(
        self, provider: str, unit_id: str, change: UnitStatusChange
    ) -> Unit:
        unit = (Entity.UNIT, unit_id)
        return await self._by(
            UnitStatusWrites,
            provider,
            change,
            unit,
            lambda w: w.update_unit_status(unit_id, change),
        )

    async def create_property(self, provider: str, landlord_id: str, new: NewProperty) -> Building:
        """With the landlord's own credentials, at the landlord's provider."""
        return await self._by(
            PropertyCreation, provider, new, None, lambda w: w.create_property(landlord_id, new)
        )
