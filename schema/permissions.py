"""Scopes on fields: without the scope, `FORBIDDEN` on that field and data everywhere else."""

from __future__ import annotations

from typing import Any

from strawberry.extensions.field_extension import FieldExtension
from strawberry.permission import BasePermission, PermissionExtension

from gateway.edge.callers import Caller
from gateway.errors import Forbidden

__all__ = ["Scope", "demand", "requires"]


def demand(caller: Caller, scope: str, refusal: str | None = None) -> None:
    """For checks a field extension cannot make: a subscription, or one argument of a field."""
    if not caller.allows(scope):
        raise Forbidden(refusal or f"This needs the `{scope}` scope.", scope=scope)


class Scope(BasePermission):
    """Decided by the caller alone, never by the object or the arguments: so the compiled
    executor (`schema/compiled`) checks it once per request for every field it guards,
    and reads a permitted field straight from the record."""

    def __init__(self, scope: str) -> None:
        self.scope = scope
        self.message = f"This needs the `{scope}` scope."

    def check(self, caller: Caller) -> None:
        demand(caller, self.scope)

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:  # noqa: ARG002
        self.check(info.context.caller)
        return True


def requires(scope: str) -> list[FieldExtension]:
    return [PermissionExtension(permissions=[Scope(scope)], use_directives=False)]
