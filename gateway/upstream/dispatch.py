"""Whether a write may have reached its provider: what decides if its idempotency key is kept.

A write that failed before any of its requests left (its provider unreachable, its circuit
open, a read before the write refused) certainly did not happen, and a retry may run it. One
whose request left and got no readable answer (a timeout, a proxy's 502, a body cut short)
may well have happened, and a retry must not write it again. Only the transport knows which:
its innermost layer (`gateway.upstream.transports.Sent`) marks the write being watched as
soon as a request of it is handed to the network.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

__all__ = ["Dispatch", "carried_out_nothing", "may_have_left", "watched", "watching"]


@dataclass
class Dispatch:
    """One write's fate so far. Mutable and shared, so a request made in a task of its own
    (a copy of the context) still marks the write that started it."""

    in_doubt: int = 0
    """Requests that change something handed to the network, less those that certainly
    changed nothing (no connection made, or refused unprocessed): counted rather than set,
    so one refused request does not clear another, carried out, of the same write, even
    when the two run at once."""

    @property
    def left(self) -> bool:
        """A request of the write may have changed something at the provider."""
        return self.in_doubt > 0


_watched: ContextVar[Dispatch | None] = ContextVar("propgate_dispatch", default=None)


@contextmanager
def watching() -> Iterator[Dispatch]:
    """Watches the requests made inside: the `Dispatch` says whether any may have left."""
    dispatch = Dispatch()
    token = _watched.set(dispatch)
    try:
        yield dispatch
    finally:
        _watched.reset(token)


def carried_out_nothing() -> None:
    """The provider said in its answer's body that the write's request changed nothing (a
    refusal that comes with a 200, as a GraphQL server's from executing a mutation): that
    request is no longer in doubt. Only for an answer that says so outright."""
    dispatch = _watched.get()
    if dispatch is not None and dispatch.in_doubt > 0:
        dispatch.in_doubt -= 1


def watched() -> Dispatch | None:
    return _watched.get()


def may_have_left() -> bool:
    """Outside a watched write nothing is known, so the answer is the safe one: yes."""
    dispatch = _watched.get()
    return dispatch is None or dispatch.left
