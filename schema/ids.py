"""Opaque global ids: entity, provider and the provider's own id, so any node can be refetched."""

from __future__ import annotations

import base64
import binascii

from gateway.errors import InvalidId
from gateway.model import Entity

__all__ = ["decode_entity_id", "decode_id", "encode_entity_id", "encode_id", "is_entity_id"]

_ENTITIES = {entity.value: entity for entity in Entity}
"""Any entity; whether it is a node that can be fetched by id is the schema's to say."""


def encode_id(entity: Entity, provider: str, source_id: str) -> str:
    raw = f"{entity.value}:{provider}:{source_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_id(text: str) -> tuple[Entity, str, str]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidId(f"'{text[:80]}' is not a global id of this API.") from None
    kind, _, rest = raw.partition(":")
    provider, _, source_id = rest.partition(":")
    entity = _ENTITIES.get(kind)
    if entity is None or not provider or not source_id:
        raise InvalidId(f"'{text[:80]}' is not a global id of this API.")
    return entity, provider, source_id


_ENTITY_PREFIX = "entity:"
"""Entity ids read `entity:<Type>:<provider>:<source id>` (a record of the group), encoded."""


def encode_entity_id(entity: Entity, label: str) -> str:
    """A linked group's id: its label, the reference of the record it was founded on."""
    raw = f"{_ENTITY_PREFIX}{entity.value}:{label}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _raw(text: str) -> str:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidId(f"'{text[:80]}' is not a global id of this API.") from None


def is_entity_id(text: str) -> bool:
    try:
        return _raw(text).startswith(_ENTITY_PREFIX)
    except InvalidId:
        return False


def decode_entity_id(text: str) -> tuple[Entity, str]:
    """(entity, label) of an entity id."""
    kind, _, label = _raw(text).removeprefix(_ENTITY_PREFIX).partition(":")
    provider, _, source_id = label.partition(":")
    entity = _ENTITIES.get(kind)
    if not _raw(text).startswith(_ENTITY_PREFIX) or entity is None or not provider or not source_id:
        raise InvalidId(f"'{text[:80]}' is not an entity id of this API.")
    return entity, label
