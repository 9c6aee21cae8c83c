"""Webhooks a sandbox provider sends: in order, retried with backoff until the receiver takes them.

Real providers retry a failed delivery for a while (Primmo's document says so);
the sandbox does too, so a gateway that was down for a few seconds still gets
every change, exactly as it would from the real provider.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import httpx

from gateway.sandbox.server import ProviderState

__all__ = ["Outbox"]

logger = logging.getLogger("gateway.sandbox.outbox")


@dataclass(frozen=True)
class _Letter:
    url: str
    body: bytes
    headers: dict[str, str]


class Outbox:
    def __init__(
        self,
        state: ProviderState,
        *,
        attempts: int = 60,
        first_wait: float = 0.1,
        longest_wait: float = 1.0,
    ) -> None:
        self._state = state
        self._attempts = attempts
        self._first_wait = first_wait
        self._longest_wait = longest_wait
        self._letters: asyncio.Queue[_Letter] | None = None
        self._worker: asyncio.Task[None] | None = None
        self.delivered = 0
        self.given_up = 0
        self.attempts = 0
        self._sending = 0

    def send(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        if self._letters is None or self._worker is None or self._worker.done():
            self._letters = asyncio.Queue()
            self._worker = asyncio.get_running_loop().create_task(self._work(self._letters))
        self._letters.put_nowait(_Letter(url, body, headers))

    @property
    def pending(self) -> int:
        waiting = self._letters.qsize() if self._letters is not None else 0
        return waiting + self._sending

    async def _work(self, letters: asyncio.Queue[_Letter]) -> None:
        async with httpx.AsyncClient(transport=self._state.outbound, timeout=5) as client:
            while True:
                letter = await letters.get()
                self._sending = 1
                try:
                    await self._deliver(client, letter)
                finally:
                    self._sending = 0
                    letters.task_done()

    async def _deliver(self, client: httpx.AsyncClient, letter: _Letter) -> None:
        wait = self._first_wait
        for _ in range(self._attempts):
            self.attempts += 1
            try:
                response = await client.post(
                    letter.url,
                    content=letter.body,
                    headers={"Content-Type": "application/json", **letter.headers},
                )
                if response.is_success:
                    self.delivered += 1
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(wait)
            wait = min(self._longest_wait, wait * 2)
        self.given_up += 1
        logger.warning("%s gave up delivering to %s", self._state.name, letter.url)
