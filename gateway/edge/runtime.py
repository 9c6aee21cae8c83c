"""What one running gateway holds and does beyond answering queries: it takes the providers'
webhook deliveries once each, evicting what they change from the cache and publishing the
changes to subscribers, asks the providers to send them, and starts and stops what it holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from gateway.clock import Clock
from gateway.config import Settings
from gateway.connectors.capabilities import WebhookSource
from gateway.errors import GatewayError, LinksUnavailable
from gateway.events import Change, ChangeKind, Delivery, differences
from gateway.federation.fan_out import Federation
from gateway.federation.links.rebuild import RebuildFailed, rebuild
from gateway.model import Record, Selection
from gateway.observability.metrics import Metrics
from gateway.observability.tracing import Tracing
from gateway.sandbox import Sandbox
from gateway.state.bus import EventBus
from gateway.state.bus.redis import RedisBus
from gateway.state.links import masked, reference
from gateway.state.redis import RedisLink, RedisUnavailable
from gateway.state.seen import Seen
from gateway.state.vault import Vault
from gateway.upstream.client import Upstream

__all__ = ["Gateway"]

logger = logging.getLogger("gateway")


@dataclass
class Gateway:
    """What one running gateway holds: its connectors, their upstreams, and the sandbox if any;
    with Redis configured, the link that the replicas' shared tokens, cache, de-duplication
    and change feed go through."""

    federation: Federation
    upstreams: list[Upstream]
    sandbox: Sandbox | None
    settings: Settings
    vault: Vault
    clock: Clock
    bus: EventBus
    seen: Seen
    metrics: Metrics = field(default_factory=Metrics)
    tracing: Tracing | None = None
    redis: RedisLink | None = None
    processed: int = 0

    async def take(self, provider: str, delivery: Delivery) -> dict[str, Any]:
        """Processes a delivery once: a repeat within its window is acknowledged, not redone.

        The claim is atomic (no await between check and mark in this process, SET NX
        across replicas), so two copies arriving together cannot both pass; if the work
        or the publishing fails, the claim is released so the provider's retry is
        processed. A repeat still evicts the cache (eviction is idempotent). Raises
        `RedisUnavailable` when the replicas' shared state cannot be reached.
        """
        before = [await self._kept(change) for change in delivery.changes]
        await self._evict(delivery.changes)
        if delivery.key is not None and not await self.seen.claim(
            provider, delivery.key, delivery.window
        ):
            return {**delivery.outcome, "duplicate": True}
        try:
            changes, outcome = delivery.changes, dict(delivery.outcome)
            changes = tuple(
                [
                    await self._described(change, kept)
                    for change, kept in zip(changes, before, strict=True)
                ]
            )
            if delivery.work is not None:
                done, said = await delivery.work()
                changes, outcome = changes + done, {**outcome, **said}
                await self._evict(done)
            for change in await self._told_for_groups(changes):
                await self.bus.publish(change)
        except BaseException:
            if delivery.key is not None:
                with contextlib.suppress(RedisUnavailable):
                    await self.seen.release(provider, delivery.key)
            raise
        self.processed += 1
        return {**outcome, "changes": len(changes)}

    async def _told_for_groups(self, changes: Sequence[Change]) -> list[Change]:
        """Each change, and for every record linked with the one changed, that the thing it
        is changed too (told once, and not over the record's own change, which says what
        changed); a record its provider deleted leaves its group. Raises
        `LinksUnavailable`: a change told to part of its group must not be acknowledged."""
        told: list[Change] = []
        linking = self.federation.linking
        direct = {
            (change.entity, reference(change.provider, change.source_id)) for change in changes
        }
        for change in changes:
            if change not in told:
                told.append(change)
            ref = reference(change.provider, change.source_id)
            group = (await linking.groups(change.entity, [ref]))[ref]
            for member in group.members:
                if (change.entity, member) in direct:
                    continue
                provider, _, source_id = member.partition(":")
                linked = Change(ChangeKind.UPDATED, change.entity, provider, source_id)
                if linked not in told:
                    told.append(linked)
            if change.kind is ChangeKind.DELETED:
                await linking.forget(change.entity, ref)
        return told

    async def _evict(self, changes: Sequence[Change]) -> None:
        for change in changes:
            await self.federation.cache.evict(change.provider, change.entity, change.source_id)

    async def _kept(self, change: Change) -> tuple[Selection, Record] | None:
        """The record as it was before the change: the copy a write through the gateway set
        aside (a copy cached since shows the written state already), else its cached copy
        before the change evicts it, if either was kept."""
        if change.kind is not ChangeKind.UPDATED:
            return None
        cache, place = self.federation.cache, (change.provider, change.entity, change.source_id)
        return await cache.aside(*place) or await cache.peek(*place)

    async def _described(self, change: Change, kept: tuple[Selection, Record] | None) -> Change:
        """The change with what changed: its cached copy against the record read fresh (the
        fields that copy was read with), then what the provider's payload said of the others.
        A fresh read that fails leaves the change as the payload told it."""
        if kept is None:
            return change
        selection, before = kept
        try:
            found = await self.federation.fetch(
                change.provider, change.entity, "id", [change.source_id], selection
            )
        except GatewayError as error:
            logger.info("%s: what changed could not be read: %s", change.provider, error.message)
            return change
        after = found.get(change.source_id)
        if not after:
            return change
        compared = differences(before, after[0], selection.fields)
        told = tuple(item for item in change.changes if item.field not in selection.fields)
        return replace(change, changes=compared + told)

    async def start(self) -> None:
        if isinstance(self.bus, RedisBus):
            await self.bus.start()
        store = self.federation.linking.store
        try:
            await store.ready()
        except LinksUnavailable as error:
            logger.warning(
                "The link store %s cannot be used (%s). Linking waits for it; everything "
                "else is answered.",
                masked(store.url, store.url),
                masked(store.url, error.reason),
            )

    async def subscribe_webhooks(self, public_url: str | None, attempts: int = 6) -> None:
        """Asks every provider that sends webhooks to send them here.

        Runs beside start-up, not in it: a sandbox provider served by this very
        process can only answer once the server listens. A refusal is retried with
        backoff, then logged: the gateway still answers, and `gateway webhooks
        subscribe` can try again.
        """
        if public_url is None:
            return
        waiting = list(self.federation.capable(WebhookSource).items())
        for attempt in range(attempts):
            failed = []
            for name, connector in waiting:
                try:
                    entities = await connector.subscribe_webhooks(public_url)
                except GatewayError as error:
                    logger.warning("%s: webhook subscription failed: %s", name, error.message)
                    failed.append((name, connector))
                    continue
                except Exception:
                    logger.exception("%s: webhook subscription failed unexpectedly", name)
                    continue
                if entities:
                    logger.info("%s sends webhooks for %s", name, ", ".join(entities))
            if not failed:
                return
            waiting = failed
            await asyncio.sleep(0.5 * 2**attempt)

    async def rebuild_links(self) -> None:
        """Links the records of every provider by the rules (`gateway links rebuild`, run
        here for a sandbox gateway, whose world, and so whose links, are made at start)."""
        today = (
            self.sandbox.world.today
            if self.sandbox is not None
            else datetime.fromtimestamp(self.clock(), UTC).date()
        )
        try:
            rebuilt = await rebuild(self.federation, today=today)
        except (RebuildFailed, LinksUnavailable) as error:
            logger.warning("links were not rebuilt: %s", error)
            return
        logger.info(
            "links rebuilt in %.1f s: %s",
            rebuilt.seconds,
            ", ".join(f"{count} {kind}" for kind, count in rebuilt.groups.items()),
        )

    async def aclose(self) -> None:
        if isinstance(self.bus, RedisBus):
            await self.bus.aclose()
        for upstream in self.upstreams:
            await upstream.aclose()
        if self.redis is not None:
            await self.redis.aclose()
        await self.federation.linking.store.aclose()
        self.vault.close()
        if self.tracing is not None:
            await self.tracing.shutdown()
