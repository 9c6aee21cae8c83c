"""Time as a dependency, so token lifetimes can be tested without waiting a day."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SystemClock", "said_at", "seconds_until"]


def seconds_until(until: float | None, clock: Clock) -> float | None:
    """Seconds from now to `until`, for what says how long a wait still lasts (None: none)."""
    return None if until is None else until - clock()


def said_at(at: float) -> str:
    """A moment as messages to callers write it: UTC, to the second, `Z`."""
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Clock(Protocol):
    def __call__(self) -> float:
        """Seconds since the epoch."""
        ...


class SystemClock:
    def __call__(self) -> float:
        return time.time()


class ManualClock:
    """A clock that moves only when told to; shared by a sandbox and a gateway in tests."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
