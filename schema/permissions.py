"""Scopes on fields: without the scope, `FORBIDDEN` on that field and data everywhere else."""

from __future__ import annotations

from typing import Any

from strawberry.extensions.field_extension import FieldExtension
from strawberry.permission import BasePermission, PermissionExtension

from gateway.errors import Forbidden

__all__ = ["requires"]


class _Scope(BasePermission):
    def __init__(self, scope: str) -> None:
        self.scope = scope
        self.refusal = f"This needs the `{scope}` scope."
        self.message = self.refusal

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:  # noqa: ARG002
        if info.context.caller.allows(self.scope):
            return True
        raise Forbidden(self.refusal, scope=self.scope)


def requires(scope: str) -> list[FieldExtension]:
    return [PermissionExtension(permissions=[_Scope(scope)], use_directives=False)]
