"""The SQL store commits the app's writes, the dedupe row and the version together."""

from __future__ import annotations

import pytest
from sqlalchemy import String, func, select
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from scimbus_consumer import HandlerFailed, Outcome, ResourceState
from scimbus_consumer.sql_store import ProcessedEvent, SqlStore, sqlite_engine


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[str] = mapped_column(String, primary_key=True)


@pytest.fixture
async def sessionmaker(tmp_path):
    engine = sqlite_engine(str(tmp_path / "app.db"))
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    await SqlStore.create_tables(engine)
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


async def count(sessionmaker, column):
    async with sessionmaker() as session:
        return await session.scalar(select(func.count(column)))


async def test_the_handlers_writes_and_the_dedupe_row_commit_together(make_consumer, factory, sessionmaker):
    consumer = make_consumer(store=SqlStore(sessionmaker))

    @consumer.on("scimbus.user.created")
    async def create(event, ctx):
        ctx.session.add(Account(id=event.data.resource.id))

    event = factory.user_created("u1")
    assert await consumer.handle(event) is Outcome.APPLIED
    assert await count(sessionmaker, Account.id) == 1
    assert await count(sessionmaker, ProcessedEvent.event_id) == 1
    assert await consumer.handle(event) is Outcome.DUPLICATE


async def test_a_failure_after_the_handler_wrote_rolls_back_everything(make_consumer, factory, sessionmaker):
    consumer = make_consumer(store=SqlStore(sessionmaker), max_attempts=2)

    @consumer.on("scimbus.user.created")
    async def create_then_fail(event, ctx):
        ctx.session.add(Account(id=event.data.resource.id))
        await ctx.session.flush()
        raise RuntimeError("after the write")

    with pytest.raises(HandlerFailed):
        await consumer.handle(factory.user_created("u1"))
    assert await count(sessionmaker, Account.id) == 0
    assert await count(sessionmaker, ProcessedEvent.event_id) == 0


async def test_versions_cursors_and_resync_marks_survive_a_new_store(make_consumer, factory, sessionmaker):
    consumer = make_consumer(store=SqlStore(sessionmaker))
    await consumer.handle(factory.user_created("u1"))
    await consumer.handle(factory.user_updated("u1", 2))
    await consumer.mark_resync("acme", "Users/u9")
    store = SqlStore(sessionmaker)
    async with store.transaction() as tx:
        await store.set_cursor("acme", 42, tx)
    async with store.transaction() as tx:
        assert await store.get_state("acme", "Users/u1", tx) == ResourceState(version=2)
        assert await store.get_cursor("acme", tx) == 42
        assert await store.needing_resync(tx) == [("acme", "Users/u9")]
        assert await store.subjects("acme", tx) == ["Users/u1", "Users/u9"]


async def test_dropping_a_tenant_forgets_its_states_and_cursor_only(make_consumer, factory, sessionmaker):
    store = SqlStore(sessionmaker)
    consumer = make_consumer(store=store)
    await consumer.handle(factory.user_created("u1"))
    async with store.transaction() as tx:
        await store.set_cursor("acme", 5, tx)
        await store.set_cursor("globex", 7, tx)
        await store.put_state("globex", "Users/x", ResourceState(version=3), tx)
    assert await consumer.handle(factory.tenant_deleted()) is Outcome.APPLIED
    async with store.transaction() as tx:
        assert await store.get_state("acme", "Users/u1", tx) is None
        assert await store.get_cursor("acme", tx) is None
        assert await store.get_cursor("globex", tx) == 7
        assert await store.get_state("globex", "Users/x", tx) == ResourceState(version=3)
    assert await consumer.handle(factory.user_created("u2")) is Outcome.STALE


async def test_dedupe_records_older_than_the_retention_are_pruned(make_consumer, sessionmaker):
    from datetime import datetime, timedelta, timezone

    consumer = make_consumer(store=SqlStore(sessionmaker), dedupe_retention=timedelta(days=14))
    now = datetime(2026, 11, 29, tzinfo=timezone.utc)
    async with sessionmaker() as session, session.begin():
        for i, age in enumerate([1, 13, 15, 30]):
            session.add(ProcessedEvent(event_id=f"e{i}", recorded_at=now - timedelta(days=age)))
    assert await consumer.prune_once(now) == 2
    assert await count(sessionmaker, ProcessedEvent.event_id) == 2
    assert await consumer.prune_once(now) == 0
    keep = make_consumer(store=SqlStore(sessionmaker), dedupe_retention=None)
    assert await keep.prune_once(now + timedelta(days=365)) == 0
