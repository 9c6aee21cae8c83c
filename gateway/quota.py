"""What a provider lets the gateway spend: a rest it asked for.

A provider that answers 429 with a wait longer than a caller can be kept waiting
has said when it will serve again; until then every call would spend its quota,
or its patience, for another 429. So the provider *rests*: nothing is sent to it,
and each caller is told at once when to come back.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from gateway.clock import Clock
from gateway.errors import Resting

__all__ = ["Quota"]


def _moment(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Quota:
    def __init__(self, provider: str, clock: Clock) -> None:
        self._provider = provider
        self._clock = clock
        self._resting_until: float | None = None
        self._why = ""

    @property
    def resting_until(self) -> float | None:
        """When calls may be sent again, while the provider rests."""
        if self._resting_until is None or self._resting_until <= self._clock():
            return None
        return self._resting_until

    @property
    def resting_for(self) -> float | None:
        """Seconds the rest still lasts."""
        until = self.resting_until
        return None if until is None else until - self._clock()

    def rest(self, seconds: float, why: str) -> None:
        """No call until `seconds` from now (a longer rest already under way stands)."""
        until = self._clock() + seconds
        if self._resting_until is None or until > self._resting_until:
            self._resting_until = until
            self._why = why

    def refusal(self) -> Resting | None:
        """Why a call now would not be sent."""
        now = self._clock()
        until = self.resting_until
        if until is not None:
            return Resting(
                self._provider,
                f"{self._provider} {self._why} until {_moment(until)}: the gateway sends it "
                "nothing before then.",
                retryAfter=math.ceil(until - now),
            )
        return None
