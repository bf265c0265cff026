"""Side effects outside the app's database, after commit: an app-side outbox.

A handler's writes through `ctx.session` commit with the event or not at all; an email sent
or a session ended in Redis or another service cannot be part of that transaction. So a
handler defers it: `await consumer.defer(ctx, kind, key=..., payload=...)` adds a row to the
store in the handler's transaction, and the consumer's drainer performs it after the commit
with the performer registered by `@consumer.effect(kind)`. Delivery is at least once: a
process that dies after performing but before recording it performs it again, so the
performer passes `effect.key` (an idempotency key, unique per effect) to the service, or
checks it itself. A key deferred twice (a handler run again) is kept once.

A failed attempt is retried with exponential backoff; after `max_attempts` the effect is
dead (kept, listed by `Store.list_effects(dead=True)`, and retried by `retry_dead`). Several
processes drain one store: an attempt leases its rows (`FOR UPDATE SKIP LOCKED` on
PostgreSQL), so each due effect is attempted by one process at a time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from .metrics import Metrics

log = logging.getLogger("scimbus_consumer")


@dataclass(frozen=True)
class Effect:
    id: int
    tenant: str
    kind: str
    key: str
    """The idempotency key the handler gave: pass it on to the service that performs it."""
    payload: dict[str, Any]
    attempt: int
    """1 on the first attempt."""


Performer = Callable[[Effect], Awaitable[Any]]


class Effects:
    """Performs deferred effects of one store; the consumer starts and stops it."""

    def __init__(
        self,
        store: Any,
        *,
        max_attempts: int = 10,
        backoff_initial: float = 1.0,
        backoff_max: float = 300.0,
        lease: float = 60.0,
        poll_interval: float = 1.0,
        batch: int = 32,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.max_attempts = max_attempts
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.lease = lease
        self.poll_interval = poll_interval
        self.batch = batch
        self.metrics = metrics
        self.performers: dict[str, Performer] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def register(self, kind: str, performer: Performer) -> None:
        if kind in self.performers:
            raise ValueError(f"effect {kind!r} already has a performer")
        self.performers[kind] = performer

    def wake(self) -> None:
        """Something was deferred and committed: drain now rather than at the next poll."""
        self._wake.set()

    async def drain_once(self, now: datetime | None = None) -> int:
        """Claims the due effects (up to `batch`) and performs them; returns how many were
        attempted."""
        now = now or datetime.now(timezone.utc)
        claimed = await self.store.claim_effects(now, now + timedelta(seconds=self.lease), self.batch)
        if claimed:
            await asyncio.gather(*(self._perform(effect) for effect in claimed))
        return len(claimed)

    async def _perform(self, effect: Effect) -> None:
        performer = self.performers.get(effect.kind)
        try:
            if performer is None:
                raise LookupError(f"no performer for effect {effect.kind!r} (register @consumer.effect)")
            # Well within the lease, so no other process claims it while this attempt runs.
            await asyncio.wait_for(performer(effect), self.lease / 2)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - recorded on the effect, retried later
            dead = effect.attempt >= self.max_attempts
            delay = min(self.backoff_initial * 2 ** (effect.attempt - 1), self.backoff_max)
            log.warning(
                "effect %s %s (%s) failed (attempt %d)%s: %r",
                effect.kind, effect.id, effect.key, effect.attempt, ", now dead" if dead else "", exc,
            )
            retry_at = datetime.now(timezone.utc) + timedelta(seconds=delay)
            await self.store.settle_effect(
                effect.id, error=repr(exc)[:1000], retry_at=None if dead else retry_at, attempt=effect.attempt
            )
            if self.metrics is not None:
                self.metrics.effect(effect.kind, "dead" if dead else "failed")
        else:
            await self.store.settle_effect(effect.id, error=None, retry_at=None, attempt=effect.attempt)
            if self.metrics is not None:
                self.metrics.effect(effect.kind, "done")

    def start(self) -> None:
        if self._task is None and self.performers:
            self._task = asyncio.create_task(self._loop(), name="scimbus-effects")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                attempted = await self.drain_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the store is down: try again at the next poll
                log.warning("draining effects failed", exc_info=True)
                attempted = 0
            if attempted < self.batch:
                try:
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)
                except asyncio.TimeoutError:
                    pass
