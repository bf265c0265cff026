"""Several consumer processes on one PostgreSQL database (`uvicorn --workers N`, replicas):
each event of a resource is judged and applied under that resource's lock, so a slow
handler in one worker cannot be overtaken by a later version in another, and table
creation is safe when workers start together. Each consumer here has its own engine (its
own connections), as separate processes do; the storm test in examples/fastapi-app runs
real processes."""

from __future__ import annotations

import asyncio

from sqlalchemy import Boolean, Integer, String, select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from scimbus_consumer import Outcome
from scimbus_consumer.sql_store import SqlStore


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "accounts"
    tenant: Mapped[str] = mapped_column(String, primary_key=True)
    id: Mapped[str] = mapped_column(String, primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean)
    version: Mapped[int] = mapped_column(Integer)


async def test_a_slow_update_in_one_worker_cannot_overwrite_a_later_deactivation(pg_url, make_consumer, factory, fake):
    engines = [create_async_engine(pg_url) for _ in range(2)]
    try:
        async with engines[0].begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        await SqlStore.create_tables(engines[0])
        workers = [make_consumer(store=SqlStore(async_sessionmaker(e, expire_on_commit=False))) for e in engines]
        in_handler, release = asyncio.Event(), asyncio.Event()
        ran: list[tuple[int, str]] = []

        for index, worker in enumerate(workers):

            @worker.on("scimbus.user.created")
            @worker.on("scimbus.user.updated")
            @worker.on("scimbus.user.deactivated")
            @worker.on("scimbus.user.snapshot")
            async def apply(event, ctx, index=index):
                user = event.data.resource
                ran.append((index, event.type))
                if index == 0 and event.type == "scimbus.user.updated":
                    in_handler.set()
                    await release.wait()  # the handler awaits I/O while the other worker goes on
                await ctx.session.merge(
                    Account(tenant=ctx.tenant, id=user.id, active=user.is_active, version=event.data.version)
                )

        created, updated = factory.user_created("u1"), factory.user_updated("u1", 2)
        deactivated = factory.user_deactivated("u1", 3)
        fake.tenant("acme").events = [created, updated, deactivated]
        fake.tenant("acme").users["u1"] = factory.user_snapshot("u1", 3, active=False)
        assert await workers[0].handle(created) is Outcome.APPLIED

        slow = asyncio.create_task(workers[0].handle(updated))
        await asyncio.wait_for(in_handler.wait(), 10)
        later = asyncio.create_task(workers[1].handle(deactivated))
        await asyncio.wait({later}, timeout=0.5)  # long enough to overtake when nothing stops it
        release.set()
        outcomes = await asyncio.gather(slow, later)

        async with async_sessionmaker(engines[0])() as session:
            account = await session.scalar(select(Account))
        assert account is not None and (account.active, account.version) == (False, 3)
        assert outcomes == [Outcome.APPLIED, Outcome.APPLIED]  # the deactivation's own handler ran, no resync
        assert ran == [(0, "scimbus.user.created"), (0, "scimbus.user.updated"), (1, "scimbus.user.deactivated")]
    finally:
        for engine in engines:
            await engine.dispose()


async def test_workers_starting_together_create_the_tables_once(pg_url):
    engines = [create_async_engine(pg_url) for _ in range(4)]
    try:
        await asyncio.gather(*(SqlStore.create_tables(e) for e in engines))
        await asyncio.gather(*(SqlStore.create_tables(e) for e in engines))
    finally:
        for engine in engines:
            await engine.dispose()
