"""What every mutation shares: its payload's `errors`, and one way to run a write.

A mutation builds the model's input from its GraphQL input and hands the federation a
closure that writes; `written` adds the idempotency key (the `idempotencyKey` input field or
the `Idempotency-Key` header, scoped to the caller and the mutation) and returns the outcome
its payload shows: the record, and refusals as `UserError`s naming the caller's own fields.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import strawberry
from strawberry.utils.str_converters import to_camel_case

from gateway.errors import BadUserInput, InvalidId, NotFound
from gateway.federation.writes import Outcome, Refusal
from gateway.model import Entity, Record
from gateway.state.idempotency import fingerprint
from schema.ids import decode_id
from schema.types import Info

__all__ = ["IdempotencyKey", "UserError", "errors_of", "source_of", "written"]

_KEY = re.compile(r"[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?")
"""1 to 255 printable ASCII characters, a space neither first nor last: HTTP drops a header
field's outer spaces (RFC 9110, 5.5), so a key with one could not be sent as the
`Idempotency-Key` header and as the input field alike."""

KEY_RULE = (
    "An idempotency key is 1 to 255 printable ASCII characters, spaces included but not "
    "first or last (HTTP drops a header's outer spaces)."
)

IdempotencyKey = strawberry.field(
    default=None,
    description="Sent again with the same input, the write happens once and the first "
    "outcome is returned (also accepted as the `Idempotency-Key` header). 1 to 255 printable "
    "ASCII characters, spaces included but not first or last; kept 24 hours.",
)


@strawberry.type(description="Something the caller can fix or check, returned as data.")
class UserError:
    code: str = strawberry.field(
        description="VALIDATION_FAILED, OUTCOME_UNKNOWN, NOT_FOUND, CONFLICT, EXTERNAL_ID_IN_USE, "
        "INVALID_ACCOUNT_NUMBER, ACTIVATION_TOKEN_NOT_FOUND, ACTIVATION_TOKEN_EXPIRED, "
        "LANDLORD_NOT_VERIFIED, ALREADY_ACTIVE, LANDLORD_MISMATCH, ACTIVATION_UNCONFIRMED, "
        "LANDLORD_NOT_ACTIVE or KEPT_APART."
    )
    message: str
    field: str | None = strawberry.field(
        default=None, description="The input field it is about, as the caller named it."
    )


def _shown(refusal: Refusal, about: str | None) -> UserError:
    field = to_camel_case(refusal.field) if refusal.field else None
    if field is None and refusal.code == NotFound.code:
        field = about
    return UserError(code=refusal.code, message=refusal.message, field=field)


def errors_of(outcome: Outcome, about: str | None = None) -> list[UserError]:
    """`about` is the input field naming the record a write is made on, which a provider's
    `NOT_FOUND` is about: the provider answers that it has no such record (a 404) without
    naming a field, and every other record a write names (a vendor, a reporting tenant) is
    refused as `VALIDATION_FAILED` naming its own."""
    return [_shown(refusal, about) for refusal in outcome.refusals]


def source_of(info: Info, global_id: str, entity: Entity) -> tuple[str, str]:
    """The provider and its id for a caller's global id, which must name an `entity`."""
    named, provider, source_id = decode_id(global_id)
    if named is not entity or not info.context.federation.knows(provider):
        raise InvalidId(f"'{global_id[:80]}' is not the id of a {entity.value.lower()}.")
    return provider, source_id


def _canonical(given: Any) -> str:
    fields = {
        name: value
        for name, value in dataclasses.asdict(given).items()
        if name != "idempotency_key"
    }
    return json.dumps(_plain(fields), sort_keys=True, default=str, separators=(",", ":"))


def _plain(value: Any) -> Any:
    """A value as a retry must repeat it: an amount by its number (`11` is `11.00`), its
    currency by its code (`cad` is `CAD`), anything else as given."""
    if isinstance(value, dict):
        if set(value) == {"amount", "currency"} and isinstance(value["amount"], Decimal):
            code = str(value["currency"]).strip().upper()
            return {"amount": str(value["amount"].normalize()), "currency": code}
        return {name: _plain(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _key(info: Info, given: Any) -> str | None:
    """The idempotency key, from the input or the header: both, they must agree. An empty
    key is a malformed key, never none: taken as none, a retry under it wrote again."""
    named, header = getattr(given, "idempotency_key", None), info.context.idempotency_key
    if named is not None and header is not None and named != header:
        raise BadUserInput(
            "The Idempotency-Key header and `idempotencyKey` differ: send one key.",
            field="idempotencyKey",
        )
    key = named if named is not None else header
    if key is not None and not _KEY.fullmatch(key):
        raise BadUserInput(KEY_RULE, field="idempotencyKey")
    if key is not None and info.context.caller.identity is None:
        raise BadUserInput(
            "Idempotency keys are kept per caller, and a token without `sub` names none: "
            "send the write without a key.",
            field="idempotencyKey",
        )
    return key


async def written(
    info: Info, operation: str, given: Any, write: Callable[[], Awaitable[Record]]
) -> Outcome:
    """The write's outcome, once per idempotency key: `given` is the mutation's input, whose
    every field (but the key) a retry must repeat, amounts as numbers."""
    key = _key(info, given)
    identity = info.context.caller.identity
    scoped = f"{identity}\x1f{operation}\x1f{key}" if key is not None else None
    print_ = fingerprint(operation, _canonical(given))
    return await info.context.federation.writes.once(scoped, print_, write)
