"""Pull-only mode (no broker): long-polls of the (fake) pull API per tenant, an application
credential for many tenants, tenants followed as they appear, outages, prompt stops, and
several consumer processes on one PostgreSQL database."""

from __future__ import annotations

import asyncio
from collections import Counter

import aio_pika
import pytest
from sqlalchemy import Boolean, Integer, String, select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from conftest import TOKEN
from scimbus_consumer import (
    ListedTenant,
    Outcome,
    PullClient,
    PullError,
    ResourceState,
    TenantList,
    default_routing_keys,
)
from scimbus_consumer.sql_store import SqlStore
from scimbus_consumer.testing import EventFactory
from tcp_proxy import TcpProxy

WAIT = 15.0
APP_TOKEN = "scimbus_app_test"


def pull_only(make_consumer, **kwargs):
    options = dict(amqp_url=None, queue=None, poll_wait=30, backoff_initial=0.05, backoff_max=0.2)
    options.update(kwargs)
    return make_consumer(**options)


@pytest.fixture
async def running(fake):
    """Starts consumers and waits until they consume; stops them after the test."""
    started = []

    async def start(consumer):
        await consumer.start()
        started.append(consumer)
        await asyncio.wait_for(consumer.consuming.wait(), WAIT)
        return consumer

    yield start
    for consumer in started:
        if consumer.status().state != "stopped":
            await consumer.stop()


async def until(predicate, what: str) -> None:
    """Polls a condition nothing signals (the status), bounded by WAIT."""
    deadline = asyncio.get_running_loop().time() + WAIT
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.02)


async def stored_cursor(consumer, tenant="acme"):
    async with consumer.store.transaction() as tx:
        return await consumer.store.get_cursor(tenant, tx)


async def until_cursor(consumer, expected: int, tenant="acme") -> None:
    """The cursor is stored once a page is applied, while the next long-poll already waits."""
    deadline = asyncio.get_running_loop().time() + WAIT
    while await stored_cursor(consumer, tenant) != expected:
        assert asyncio.get_running_loop().time() < deadline, f"the cursor of {tenant} at {expected}"
        await asyncio.sleep(0.02)


def record_all(consumer, recorder):
    @consumer.on_any
    async def anything(event, ctx):
        await recorder.add(event.type, (event.tenant, event.subject, event.version, ctx.origin))


async def test_a_pull_only_consumer_applies_events_in_order_without_touching_the_broker(
    make_consumer, factory, fake, recorder, running, monkeypatch
):
    async def no_broker(*args, **kwargs):
        raise AssertionError("a pull-only consumer connected to RabbitMQ")

    monkeypatch.setattr(aio_pika, "connect_robust", no_broker)
    monkeypatch.setattr(aio_pika, "connect", no_broker)
    data = fake.tenant("acme")
    data.snapshot_sequence = 0
    data.events.extend(
        [
            factory.user_created("u1"),
            factory.group_created("g1"),
            factory.user_updated("u1", 2),
            factory.members_added("g1", 2, ["u1"]),
            factory.user_deactivated("u1", 3),
        ]
    )
    consumer = pull_only(make_consumer)
    record_all(consumer, recorder)
    await running(consumer)
    await recorder.wait_for(lambda: len(recorder.calls) == 5)
    await fake.append_event("acme", factory.user_reactivated("u1", 4))
    await recorder.wait_for(lambda: len(recorder.calls) == 6)

    assert [v for _, (_, s, v, _) in recorder.calls if s == "Users/u1"] == [1, 2, 3, 4]
    assert [v for _, (_, s, v, _) in recorder.calls if s == "Groups/g1"] == [1, 2]
    assert {origin for _, (*_, origin) in recorder.calls} == {"pull"}
    status = consumer.status()
    assert (status.transport, status.state, status.ready, status.broker_connected) == ("pull", "consuming", True, False)
    await until(lambda: fake.held.get("acme"), "a long-poll after the last event")
    await until_cursor(consumer, 6)
    async with consumer.store.transaction() as tx:
        assert await consumer.store.get_state("acme", "Users/u1", tx) == ResourceState(version=4)


async def test_an_event_committed_during_a_long_poll_is_handled_without_waiting_for_its_timeout(
    make_consumer, factory, fake, recorder, running
):
    fake.tenant("acme").snapshot_sequence = 0
    consumer = pull_only(make_consumer, poll_wait=30)
    record_all(consumer, recorder)
    await running(consumer)
    await fake.long_polled("acme")

    await fake.append_event("acme", factory.user_created("u1"))

    await recorder.wait_for(lambda: len(recorder.calls) == 1, timeout=5)  # well under the 30 s wait
    polls = [q for p, q in fake.requests if p == "/events/v1/acme" and "wait" in q]
    assert polls[0] == {"after": "0", "limit": "2", "wait": "30"}


async def test_stop_returns_promptly_while_a_long_poll_is_held(make_consumer, fake, running):
    fake.tenant("acme").snapshot_sequence = 0
    consumer = pull_only(make_consumer, poll_wait=30)
    await running(consumer)
    await fake.long_polled("acme")

    await asyncio.wait_for(consumer.stop(), 5)

    assert consumer.status().state == "stopped"


async def test_the_status_says_reconnecting_while_scimbus_is_unreachable_and_consuming_once_it_is_back(
    make_consumer, factory, fake, recorder, running
):
    port = int(fake.base_url.rsplit(":", 1)[1])
    proxy = TcpProxy("127.0.0.1", port)
    await proxy.start()
    fake.tenant("acme").snapshot_sequence = 0
    consumer = pull_only(make_consumer, pull=PullClient(f"http://127.0.0.1:{proxy.port}", {"acme": TOKEN}))
    record_all(consumer, recorder)
    try:
        await running(consumer)
        await fake.append_event("acme", factory.user_created("u1"))
        await recorder.wait_for(lambda: len(recorder.calls) == 1)

        proxy.refusing = True
        proxy.cut()  # the held long-poll breaks, and every new connection is refused
        await until(lambda: consumer.status().state == "reconnecting", "the status to say reconnecting")
        status = consumer.status()
        assert not status.ready and status.last_error is not None and status.transport == "pull"
        await fake.append_event("acme", factory.user_updated("u1", 2))  # committed during the outage
        await until(lambda: proxy.refused >= 2, "retries while scimbus is unreachable")
        assert consumer.status().state == "reconnecting"

        proxy.refusing = False
        await recorder.wait_for(lambda: len(recorder.calls) == 2)
        await until(lambda: consumer.status().ready, "the status to be ready again")
        assert consumer.status().state == "consuming" and consumer.status().last_error is None
    finally:
        await consumer.stop()
        await proxy.stop()
    assert [v for _, (_, _, v, _) in recorder.calls] == [1, 2]


async def test_a_tenant_created_after_start_is_followed_from_its_tenant_created_event(
    make_consumer, factory, fake, recorder, running
):
    fake.add_app_token(APP_TOKEN)
    fake.tenant("acme").snapshot_sequence = 0
    consumer = pull_only(
        make_consumer, tenants=None, pull=PullClient(fake.base_url, app_token=APP_TOKEN), tenant_refresh_interval=0.05
    )
    created = []

    @consumer.on("scimbus.tenant.created")
    async def tenant_created(event, ctx):
        created.append((event.data.tenant, ctx.origin))

    record_all(consumer, recorder)
    await running(consumer)
    assert consumer.tenants == ["acme"]

    globex = EventFactory(tenant="globex")
    await fake.append_event("globex", globex.tenant_created())
    await fake.append_event("globex", globex.user_created("u1"))

    await recorder.wait_for(lambda: recorder.of("scimbus.user.created"))
    assert created == [("globex", "pull")]
    assert recorder.of("scimbus.user.created") == [("globex", "Users/u1", 1, "pull")]
    assert consumer.tenants == ["acme", "globex"]
    assert not [p for p, _ in fake.requests if p.startswith("/events/v1/globex/snapshot")]  # from its first event
    await until(lambda: fake.held.get("globex"), "a long-poll of the new tenant")
    await until_cursor(consumer, 2, "globex")


async def test_a_deleted_tenant_is_read_up_to_its_deletion_then_no_longer_followed(
    make_consumer, factory, fake, recorder, running
):
    fake.add_app_token(APP_TOKEN)
    data = fake.tenant("acme")
    data.snapshot_sequence = 0
    consumer = pull_only(
        make_consumer, tenants=None, pull=PullClient(fake.base_url, app_token=APP_TOKEN), tenant_refresh_interval=0.05
    )
    record_all(consumer, recorder)
    await running(consumer)
    await fake.append_event("acme", factory.user_created("u1"))
    await recorder.wait_for(lambda: len(recorder.calls) == 1)

    data.deleted = True
    await fake.append_event("acme", factory.tenant_deleted())

    await recorder.wait_for(lambda: recorder.of("scimbus.tenant.deleted"))
    await until(lambda: not consumer.tenants and not consumer._follows, "acme no longer followed")
    assert consumer.status().ready
    assert len(recorder.of("scimbus.tenant.deleted")) == 1
    async with consumer.store.transaction() as tx:
        assert await consumer.store.get_state("acme", "Users/u1", tx) is None  # dropped with the tenant


async def test_the_pull_client_with_an_application_credential_lists_its_tenants_page_by_page(fake, monkeypatch):
    import scimbus_consumer.pull

    monkeypatch.setattr(scimbus_consumer.pull, "LIST_LIMIT", 1)
    for slug in ("acme", "globex", "initech"):
        fake.tenant(slug)
    fake.tenant("globex").deleted = True
    fake.add_app_token(APP_TOKEN, {"acme", "globex"})
    with pytest.raises(ValueError, match="scimbus_app_"):
        PullClient(fake.base_url, app_token=TOKEN)
    with pytest.raises(ValueError):
        PullClient(fake.base_url)
    client = PullClient(fake.base_url, app_token=APP_TOKEN)
    try:
        assert client.tenants == [] and not client.has_tenant("acme")
        listing = await client.refresh()
        assert isinstance(listing, TenantList) and not listing.all_tenants
        assert [(t.tenant, t.deleted) for t in listing.tenants] == [("acme", False), ("globex", True)]
        assert [q.get("after") for p, q in fake.requests if p == "/events/v1"] == [None, "acme"]
        assert client.tenants == ["acme"] and client.deleted_tenants == ["globex"]
        assert client.has_tenant("globex") and not client.has_tenant("initech")
        await client.events("globex")  # a deleted tenant's events stay readable
        with pytest.raises(PullError) as caught:
            await client.events("initech")
        assert caught.value.status == 401
    finally:
        await client.aclose()

    fake.add_app_token("scimbus_app_all")
    every = PullClient(fake.base_url, app_token="scimbus_app_all")
    tokens = PullClient(fake.base_url, {"acme": TOKEN})
    try:
        await every.refresh()
        assert every.all_tenants and every.has_tenant("created-later")
        assert await tokens.list_tenants() == TenantList(tenants=[ListedTenant("acme", False)], all_tenants=False)
    finally:
        await every.aclose()
        await tokens.aclose()


async def test_routing_keys_are_wildcards_for_a_credential_of_every_tenant_and_per_tenant_otherwise(fake, make_consumer):
    assert default_routing_keys(["acme"]) == ["acme.user.*", "acme.group.*", "acme.tenant.*"]
    assert default_routing_keys(["acme"], all_tenants=True) == ["*.user.*", "*.group.*", "*.tenant.*"]
    fake.tenant("acme")
    fake.tenant("globex")
    fake.add_app_token("scimbus_app_all")
    fake.add_app_token("scimbus_app_some", {"globex"})

    every = make_consumer(tenants=None, pull=PullClient(fake.base_url, app_token="scimbus_app_all"))
    assert every.routing_keys == []  # not known before the first listing
    await every.refresh_tenants()
    assert every.routing_keys == ["*.user.*", "*.group.*", "*.tenant.*"] and every.tenants == ["acme", "globex"]

    some = make_consumer(tenants=None, pull=PullClient(fake.base_url, app_token="scimbus_app_some"))
    await some.refresh_tenants()
    assert some.routing_keys == ["globex.user.*", "globex.group.*", "globex.tenant.*"]
    fake.app_tokens["scimbus_app_some"] = {"acme"}
    changes = await some.refresh_tenants()
    assert (changes.added, changes.removed) == (["acme"], ["globex"])
    assert some.routing_keys == ["acme.user.*", "acme.group.*", "acme.tenant.*"]

    fixed = make_consumer(
        tenants=None, routing_keys=["*.user.*"], pull=PullClient(fake.base_url, app_token="scimbus_app_all")
    )
    await fixed.refresh_tenants()
    assert fixed.routing_keys == ["*.user.*"] and fixed.tenants == ["acme", "globex"]
    one = make_consumer(tenants=["globex"], pull=PullClient(fake.base_url, app_token="scimbus_app_all"))
    await one.refresh_tenants()
    assert one.routing_keys == ["globex.user.*", "globex.group.*", "globex.tenant.*"] and one.tenants == ["globex"]
    for consumer in (every, some, fixed, one):
        await consumer.pull.aclose()

    with pytest.raises(ValueError, match="pull client is required"):
        make_consumer(amqp_url=None, queue=None, with_pull=False)


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "accounts"
    tenant: Mapped[str] = mapped_column(String, primary_key=True)
    id: Mapped[str] = mapped_column(String, primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean)
    version: Mapped[int] = mapped_column(Integer)


async def test_two_pull_only_consumers_on_one_postgresql_run_each_handler_once_in_version_order(
    pg_url, make_consumer, factory, fake, running
):
    users = [f"u{i}" for i in range(8)]
    data = fake.tenant("acme")
    data.snapshot_sequence = 0
    data.events.extend(factory.user_created(u) for u in users)
    engines = [create_async_engine(pg_url) for _ in range(2)]
    workers = []
    try:
        async with engines[0].begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        await SqlStore.create_tables(engines[0])
        ran: list[tuple[int, str, str, int]] = []
        settled: list[tuple[int, str, Outcome]] = []
        for index, engine in enumerate(engines):
            worker = pull_only(make_consumer, store=SqlStore(async_sessionmaker(engine, expire_on_commit=False)))

            @worker.on("scimbus.user.created")
            @worker.on("scimbus.user.updated")
            @worker.on("scimbus.user.deactivated")
            async def apply(event, ctx, index=index):
                user = event.data.resource
                ran.append((index, event.id, user.id, event.data.version))
                await asyncio.sleep(0)  # a handler awaiting I/O lets the other worker run
                await ctx.session.merge(
                    Account(tenant=ctx.tenant, id=user.id, active=user.is_active, version=event.data.version)
                )

            @worker.on_outcome
            async def outcome(event, result, index=index):
                settled.append((index, event.id, result))

            workers.append(worker)
        await asyncio.gather(*(running(w) for w in workers))
        later = [factory.user_updated(u, 2) for u in users] + [factory.user_deactivated(u, 3) for u in users]
        for event in later:
            await fake.append_event("acme", event)
        everything = [e["id"] for e in data.events]

        await until(
            lambda: all(sum(1 for i, _, _ in settled if i == w) == len(everything) for w in (0, 1)),
            "both workers to settle every event",
        )
        await until(lambda: fake.held.get("acme") == 2, "both workers long-polling after the last event")

        assert Counter(event_id for _, event_id, _, _ in ran) == Counter(everything)  # each handler once
        applied = Counter(event_id for _, event_id, outcome in settled if outcome is Outcome.APPLIED)
        assert applied == Counter(everything)
        for user in users:
            assert [v for _, _, u, v in ran if u == user] == [1, 2, 3]
        async with async_sessionmaker(engines[0])() as session:
            accounts = (await session.scalars(select(Account))).all()
        assert sorted((a.id, a.active, a.version) for a in accounts) == [(u, False, 3) for u in users]
        await until_cursor(workers[0], len(everything))
    finally:
        for worker in workers:
            await worker.stop()
        for engine in engines:
            await engine.dispose()
