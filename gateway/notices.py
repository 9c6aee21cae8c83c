"""Warnings a provider attaches to an answer, carried to the caller's `extensions.warnings`.

Connectors are shared by all requests, so they cannot hold a request's
warnings; a context variable set for the duration of one GraphQL operation
can, and it follows the operation into every task and loader batch it starts.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

__all__ = ["collecting", "warn"]

_current: ContextVar[list[dict[str, Any]] | None] = ContextVar("gateway_notices", default=None)


def warn(provider: str, message: str, **details: Any) -> None:
    """`details` travel with the warning for what a message cannot hold (an upstream path)."""
    notices = _current.get()
    notice = {"provider": provider, "message": message, **details}
    if notices is not None and notice not in notices:
        notices.append(notice)


@contextmanager
def collecting(into: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    token = _current.set(into)
    try:
        yield into
    finally:
        _current.reset(token)
