"""Webhooks a sandbox provider sends: in order per receiver, retried with backoff until taken.

Real providers retry a failed delivery for a while (Primmo's document says so);
the sandbox does too, so a gateway that was down for a few seconds still gets
every change, exactly as it would from the real provider. Each receiver URL has
its own queue, so one unreachable receiver holds up no other; a 4xx other than
408 or 429 is the receiver refusing the letter, and it is not sent again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import httpx

from gateway.sandbox.server import ProviderState

__all__ = ["Outbox"]

logger = logging.getLogger("gateway.sandbox.outbox")
_RETRYABLE_REFUSALS = frozenset({408, 429})


@dataclass(frozen=True)
class _Letter:
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
        backlog: int = 10_000,
    ) -> None:
        self._state = state
        self._attempts = attempts
        self._first_wait = first_wait
        self._longest_wait = longest_wait
        self._backlog = backlog
        self._queues: dict[str, asyncio.Queue[_Letter]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._sending = 0
        self.delivered = 0
        self.given_up = 0
        self.attempts = 0

    def send(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        queue = self._queues.get(url)
        worker = self._workers.get(url)
        if queue is None or worker is None or worker.done():
            queue = self._queues[url] = asyncio.Queue(self._backlog)
            self._workers[url] = asyncio.get_running_loop().create_task(self._work(url, queue))
        if queue.full():
            self.given_up += 1
            logger.warning(
                "%s: %s is %d letters behind; dropped one", self._state.name, url, self._backlog
            )
            return
        queue.put_nowait(_Letter(body, headers))

    @property
    def pending(self) -> int:
        return sum(queue.qsize() for queue in self._queues.values()) + self._sending

    async def _work(self, url: str, letters: asyncio.Queue[_Letter]) -> None:
        async with httpx.AsyncClient(transport=self._state.outbound, timeout=5) as client:
            while True:
                letter = await letters.get()
                self._sending += 1
                try:
                    await self._deliver(client, url, letter)
                finally:
                    self._sending -= 1
                    letters.task_done()

    async def _deliver(self, client: httpx.AsyncClient, url: str, letter: _Letter) -> None:
        wait = self._first_wait
        for _ in range(self._attempts):
            self.attempts += 1
            try:
                response = await client.post(
                    url,
                    content=letter.body,
                    headers={"Content-Type": "application/json", **letter.headers},
                )
            except Exception as error:  # any failure to send is retried
                logger.debug("%s: delivery to %s failed: %s", self._state.name, url, error)
            else:
                if response.is_success:
                    self.delivered += 1
                    return
                if 400 <= response.status_code < 500 and (
                    response.status_code not in _RETRYABLE_REFUSALS
                ):
                    break
            await asyncio.sleep(wait)
            wait = min(self._longest_wait, wait * 2)
        self.given_up += 1
        logger.warning("%s gave up delivering to %s", self._state.name, url)
