"""What a provider lets the gateway spend: a rest it asked for, and the quota it publishes.

A provider that answers 429 with a wait longer than a caller can be kept waiting
has said when it will serve again; until then every call would spend its quota,
or its patience, for another 429. So the provider *rests*: nothing is sent to it,
and each caller is told at once when to come back.

Providers that publish their quota on every answer (`X-RateLimit-Limit`,
`-Remaining`, `-Reset`: pms documents them) are tracked from those headers. The
quota is spent freely down to a reserve; from there what is left is spread evenly
until the reset, so it lasts until it refills rather than running out with most of
the window still to go. With nothing left, the provider rests until the reset.

A provider's word is taken up to a point: a rest, or a window, longer than `max_rest`
(a `Retry-After` of years, a reset in a far future) ends after `max_rest`, and the next
call probes whether it still holds; a provider that still refuses says so again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import httpx

from gateway.clock import Clock, said_at, seconds_until
from gateway.errors import Resting

__all__ = ["Quota", "Window"]

_YEAR = 365 * 24 * 3600
"""A reset larger than this is a Unix time (pms's `X-RateLimit-Reset: 1640995200`); a smaller
one counts seconds from now, as other APIs send it."""


@dataclass(frozen=True)
class Window:
    """The quota as the provider last published it, less what was sent since."""

    limit: int
    remaining: int
    resets_at: float


def _whole(headers: httpx.Headers, name: str) -> int | None:
    try:
        return int(headers[name])
    except (KeyError, ValueError):
        return None


class Quota:
    def __init__(self, provider: str, clock: Clock, reserve: float, max_rest: float) -> None:
        self._provider = provider
        self._clock = clock
        self._reserve = reserve
        self._max_rest = max_rest
        self._resting_until: float | None = None
        self._why = ""
        self._window: Window | None = None
        self._next_turn = 0.0

    @property
    def resting_until(self) -> float | None:
        """When calls may be sent again, while the provider rests."""
        if self._resting_until is None or self._resting_until <= self._clock():
            return None
        return self._resting_until

    @property
    def resting_for(self) -> float | None:
        """Seconds the rest still lasts."""
        return seconds_until(self.resting_until, self._clock)

    @property
    def held_until(self) -> float | None:
        """When the next call may be sent: the end of a rest, or, while what is left of the
        quota is spread, the next call's turn (a call before it is refused all the same)."""
        until = self.resting_until
        return until if until is not None else self._turn(self._clock())

    @property
    def held_for(self) -> float | None:
        """Seconds until the next call may be sent."""
        return seconds_until(self.held_until, self._clock)

    @property
    def window(self) -> Window | None:
        """The published quota, while its window lasts."""
        if self._window is None or self._window.resets_at <= self._clock():
            return None
        return self._window

    def rest(self, seconds: float, why: str) -> None:
        """No call until `seconds` from now, `max_rest` at most (a longer rest already under
        way stands)."""
        until = self._clock() + min(seconds, self._max_rest)
        if self._resting_until is None or until > self._resting_until:
            self._resting_until = until
            self._why = why

    def refusal(self) -> Resting | None:
        """Why a call now would not be sent, without taking its turn."""
        now = self._clock()
        until = self.resting_until
        if until is not None:
            return Resting(
                self._provider,
                f"{self._provider} {self._why} until {said_at(until)}: the gateway sends it "
                "nothing before then.",
                math.ceil(until - now),
            )
        window = self.window
        if window is not None and self._turn(now) is not None:
            return Resting(
                self._provider,
                f"{self._provider}'s quota is nearly spent: the gateway spreads what is left "
                f"until it refills at {said_at(window.resets_at)}; the next call may go at "
                f"{said_at(self._next_turn)}.",
                math.ceil(self._next_turn - now),
            )
        return None

    def spend(self) -> None:
        """Takes one call from the quota, or raises `Resting` without sending it."""
        refused = self.refusal()
        if refused is not None:
            raise refused
        window = self.window
        if window is None:
            return
        now = self._clock()
        if self._pacing(window):
            self._next_turn = now + (window.resets_at - now) / window.remaining
        left = window.remaining - 1
        self._window = Window(window.limit, left, window.resets_at)
        if left <= 0:
            self.rest(window.resets_at - now, "has no quota left")

    def observe(self, headers: httpx.Headers) -> None:
        """The quota an answer publishes; answers to earlier requests may say more is left
        than has been, so within one window the lowest count stands. The answer that shows
        the reserve reached counts as the first paced call."""
        limit = _whole(headers, "x-ratelimit-limit")
        remaining = _whole(headers, "x-ratelimit-remaining")
        reset = _whole(headers, "x-ratelimit-reset")
        if limit is None or remaining is None or reset is None or limit <= 0:
            return
        now = self._clock()
        resets_at = self._resets_at(reset, now)
        current = self._window
        if current is not None and resets_at <= current.resets_at + 1:
            remaining = min(remaining, current.remaining)
            resets_at = current.resets_at
        window = Window(limit, remaining, resets_at)
        if self._pacing(window) and not (current is not None and self._pacing(current)):
            self._next_turn = now + (resets_at - now) / remaining
        self._window = window
        if remaining <= 0 and resets_at > now:
            self.rest(resets_at - now, "has no quota left")

    def _resets_at(self, reset: int, now: float) -> float:
        """When the published window resets, `max_rest` from now at the latest. Compared as
        the integer it was sent as: one beyond what a float holds would overflow."""
        latest = now + self._max_rest
        if reset > _YEAR:
            return float(reset) if reset < latest else latest
        return now + reset if reset < self._max_rest else latest

    def _turn(self, now: float) -> float | None:
        """The next call's turn, while what is left of the quota is spread and it has not come."""
        window = self.window
        if window is not None and self._pacing(window) and self._next_turn > now:
            return self._next_turn
        return None

    def _pacing(self, window: Window) -> bool:
        return 0 < window.remaining <= self._reserve * window.limit
