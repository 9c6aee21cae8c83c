"""Scopes on fields: without the scope, `FORBIDDEN` on that field and data everywhere else."""

from __future__ import annotations

from typing import Any

from strawberry.extensions.field_extension import FieldExtension
from strawberry.permission import BasePermission, PermissionExtension

from gateway.edge.callers import Caller
from gateway.errors import Forbidden

__all__ = ["demand", "requires"]


def demand(caller: Caller, scope: str, refusal: str | None = None) -> None:
    """For checks a field extension cannot make: a subscription, or one argument of a field."""
    if not caller.allows(scope):
        raise Forbidden(refusal or f"This needs the `{scope}` scope.", scope=scope)


class _Scope(BasePermission):
    def __init__(self, scope: str) -> None:
        self.scope = scope
        self.message = f"This needs the `{scope}` scope."

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:  # noqa: ARG002
        demand(info.context.caller, self.scope)
        return True


def requires(scope: str) -> list[FieldExtension]:
    return [PermissionExtension(permissions=[_Scope(scope)], use_directives=False)]
