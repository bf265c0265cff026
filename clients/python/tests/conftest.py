from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest

from fake_scimbus import FakeScimbus
from scimbus_consumer import Consumer, PullClient
from scimbus_consumer.testing import EventFactory

TOKEN = "sbt_acme_events"


@pytest.fixture
def factory() -> EventFactory:
    return EventFactory(tenant="acme")


@pytest.fixture
async def fake() -> AsyncIterator[FakeScimbus]:
    server = FakeScimbus()
    server.add_token(TOKEN, "acme")
    await server.start()
    yield server
    await server.stop()


class Recorder:
    """Collects what handlers saw; `wait_for` waits (bounded) until a condition holds,
    woken by each new record rather than by polling."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self._changed = asyncio.Condition()

    async def add(self, kind: str, item: Any) -> None:
        async with self._changed:
            self.calls.append((kind, item))
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
        async def wait() -> None:
            async with self._changed:
                await self._changed.wait_for(predicate)

        await asyncio.wait_for(wait(), timeout)

    def of(self, kind: str) -> list[Any]:
        return [item for k, item in self.calls if k == kind]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def make_consumer(fake: FakeScimbus) -> Callable[..., Consumer]:
    made: list[Consumer] = []

    def make(*, with_pull: bool = True, **kwargs: Any) -> Consumer:
        options: dict[str, Any] = dict(
            amqp_url="amqp://guest:guest@127.0.0.1:5672/",
            queue="unused",
            tenants=["acme"],
            max_attempts=3,
            backoff_initial=0,
            page_limit=2,
        )
        options.update(kwargs)
        if with_pull and "pull" not in options:
            options["pull"] = PullClient(fake.base_url, {"acme": TOKEN})
        consumer = Consumer(**options)
        made.append(consumer)
        return consumer

    return make


ADMIN_DATABASE_URL = os.environ.get("SCIMBUS_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")


@asynccontextmanager
async def fresh_pg_database() -> AsyncIterator[str]:
    """A fresh PostgreSQL database (dropped afterwards), as a SQLAlchemy asyncpg URL."""
    import asyncpg

    name = f"scimbus_consumer_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(ADMIN_DATABASE_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = ADMIN_DATABASE_URL.rsplit("/", 1)[0].replace("postgres://", "postgresql+asyncpg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        admin = await asyncpg.connect(ADMIN_DATABASE_URL)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A fresh PostgreSQL database for one test."""
    async with fresh_pg_database() as url:
        yield url


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def store(request, tmp_path) -> AsyncIterator[Any]:
    """Each store in turn: MemoryStore, SqlStore on SQLite, SqlStore on a fresh PostgreSQL
    database."""
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    from scimbus_consumer import MemoryStore
    from scimbus_consumer.sql_store import SqlStore, sqlite_engine

    if request.param == "memory":
        yield MemoryStore()
        return
    async with AsyncExitStack() as stack:
        if request.param == "sqlite":
            engine = sqlite_engine(str(tmp_path / "app.db"))
        else:
            engine = create_async_engine(await stack.enter_async_context(fresh_pg_database()))
        stack.push_async_callback(engine.dispose)
        await SqlStore.create_tables(engine)
        yield SqlStore(async_sessionmaker(engine, expire_on_commit=False))
