"""Deferred effects (app-side outbox): performed after commit, at least once, retried, dead
after a bound, drained by several processes without doing one twice; with every store."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from scimbus_consumer import HandlerFailed, MemoryStore
from scimbus_consumer.effects import Effects
from scimbus_consumer.sql_store import SqlStore


def later(seconds: float) -> datetime:
    return datetime.now(timezone.utc) + timedelta(seconds=seconds)


async def test_an_effect_runs_after_its_event_committed_and_a_key_is_kept_once(make_consumer, factory, store):
    consumer = make_consumer(store=store)
    sent: list[tuple[str, dict[str, Any], int]] = []

    @consumer.effect("welcome_email")
    async def send(effect):
        sent.append((effect.key, effect.payload, effect.attempt))

    @consumer.on("scimbus.user.created")
    @consumer.on("scimbus.user.updated")
    async def created(event, ctx):
        uid = event.data.resource.id
        await consumer.defer(ctx, "welcome_email", key=f"welcome/{ctx.tenant}/{uid}", payload={"to": uid})

    await consumer.handle(factory.user_created("u1"))
    await consumer.handle(factory.user_updated("u1", 2))  # defers the same key again
    assert await consumer.effects.drain_once() == 1
    assert sent == [("welcome/acme/u1", {"to": "u1"}, 1)]
    assert await consumer.effects.drain_once() == 0


async def test_an_event_that_fails_after_deferring_defers_nothing(make_consumer, factory, store):
    consumer = make_consumer(store=store, max_attempts=2)

    @consumer.on("scimbus.user.created")
    async def created(event, ctx):
        await consumer.defer(ctx, "welcome_email", key="k1", payload={})
        raise RuntimeError("after deferring")

    with pytest.raises(HandlerFailed):
        await consumer.handle(factory.user_created("u1"))
    assert await store.claim_effects(later(1), later(60), 10) == []


async def test_a_failing_effect_is_retried_then_dead_then_retried_on_request(make_consumer, factory, store):
    consumer = make_consumer(store=store, effect_max_attempts=3)
    consumer.effects.backoff_initial = 0
    outcomes = iter([RuntimeError("down"), None, RuntimeError("a"), RuntimeError("b"), RuntimeError("c"), None])
    attempts: list[tuple[str, int]] = []

    @consumer.effect("end_sessions")
    async def end(effect):
        attempts.append((effect.key, effect.attempt))
        error = next(outcomes)
        if error is not None:
            raise error

    @consumer.on("scimbus.user.deactivated")
    async def deactivated(event, ctx):
        await consumer.defer(ctx, "end_sessions", key=event.id, payload={"user": event.data.resource.id})

    first, second = factory.user_deactivated("u1", 1), factory.user_deactivated("u2", 1)
    await consumer.handle(first)
    for _ in range(2):
        await consumer.effects.drain_once(later(1))
    assert attempts == [(first["id"], 1), (first["id"], 2)]

    await consumer.handle(second)
    for _ in range(4):
        await consumer.effects.drain_once(later(1))
    assert attempts[2:] == [(second["id"], 1), (second["id"], 2), (second["id"], 3)]
    dead = await store.list_effects(dead=True)
    assert [(d["key"], d["attempts"]) for d in dead] == [(second["id"], 3)]
    assert "RuntimeError('c')" in dead[0]["last_error"]
    assert await store.retry_dead() == 1
    await consumer.effects.drain_once(later(1))
    assert attempts[-1] == (second["id"], 1)
    assert await store.list_effects(dead=True) == [] and await store.list_effects(dead=False) == []


async def test_an_effect_whose_process_died_mid_attempt_runs_again_after_its_lease(store):
    async with store.transaction() as tx:
        await store.add_effect("acme", "email", "k1", {"n": 1}, tx)
    claimed = await store.claim_effects(later(0), later(60), 10)  # the process dies here
    assert [e.attempt for e in claimed] == [1]
    assert await store.claim_effects(later(30), later(90), 10) == []  # leased
    again = await store.claim_effects(later(61), later(120), 10)
    assert [(e.key, e.attempt) for e in again] == [("k1", 2)]


async def test_two_processes_draining_one_database_attempt_each_effect_once(pg_url):
    engines = [create_async_engine(pg_url) for _ in range(2)]
    try:
        await SqlStore.create_tables(engines[0])
        stores = [SqlStore(async_sessionmaker(e, expire_on_commit=False)) for e in engines]
        async with stores[0].transaction() as tx:
            for i in range(200):
                await stores[0].add_effect("acme", "email", f"k{i}", {"i": i}, tx)
        performed: list[str] = []

        async def perform(effect):
            await asyncio.sleep(0.001)
            performed.append(effect.key)

        drainers = []
        for store in stores:
            drainer = Effects(store, batch=7)
            drainer.register("email", perform)
            drainers.append(drainer)

        async def drain(drainer: Effects) -> None:
            while await drainer.drain_once():
                pass

        await asyncio.gather(*(drain(d) for d in drainers))
        assert sorted(performed) == sorted(f"k{i}" for i in range(200))
    finally:
        for engine in engines:
            await engine.dispose()


async def test_a_late_settlement_of_an_attempt_that_outlived_its_lease_changes_nothing(store):
    async with store.transaction() as tx:
        await store.add_effect("acme", "email", "k1", {}, tx)
    [first] = await store.claim_effects(later(0), later(60), 10)
    [second] = await store.claim_effects(later(61), later(120), 10)  # the first one's lease ran out
    await store.settle_effect(second.id, error=None, retry_at=None, attempt=second.attempt)
    await store.settle_effect(first.id, error="timed out", retry_at=later(0), attempt=first.attempt)
    assert await store.claim_effects(later(3600), later(3660), 10) == []
    assert await store.list_effects(dead=False) == [] and await store.list_effects(dead=True) == []


async def test_an_effect_of_a_transaction_that_rolls_back_is_never_performed(store):
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await store.add_effect("acme", "email", "k1", {}, tx)
            if isinstance(store, MemoryStore):  # (SQLite: a second writer would wait for this one)
                assert await store.claim_effects(later(1), later(60), 10) == []  # not before commit
            raise RuntimeError("the handler failed after deferring")
    assert await store.claim_effects(later(1), later(60), 10) == []
