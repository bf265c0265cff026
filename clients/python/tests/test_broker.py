"""Against the real RabbitMQ at 127.0.0.1:5672 (guest/guest), on an exchange and queues of
the test's own (unique names, `x-expires`)."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from typing import Any

import aio_pika
import pytest

from conftest import TOKEN
from scimbus_consumer import Consumer, MemoryStore, PullClient, ResourceState
from scimbus_consumer.models import parse_event, routing_key
from tcp_proxy import TcpProxy

AMQP_HOST = os.environ.get("SCIMBUS_TEST_AMQP_HOST", "127.0.0.1")
AMQP_PORT = int(os.environ.get("SCIMBUS_TEST_AMQP_PORT", "5672"))
AMQP_URL = f"amqp://guest:guest@{AMQP_HOST}:{AMQP_PORT}/"
WAIT = 20.0


class Broker:
    def __init__(self) -> None:
        self.name = f"scimbus-test-{uuid.uuid4().hex[:12]}"
        self.connection: aio_pika.abc.AbstractConnection | None = None
        self.channel: aio_pika.abc.AbstractChannel | None = None
        self.exchange: aio_pika.abc.AbstractExchange | None = None

    async def start(self) -> None:
        self.connection = await aio_pika.connect(AMQP_URL)
        self.channel = await self.connection.channel()
        self.exchange = await self.channel.declare_exchange(
            self.name, aio_pika.ExchangeType.TOPIC, durable=False, auto_delete=True
        )

    def consumer(self, url: str = AMQP_URL, **kwargs: Any) -> Consumer:
        options: dict[str, Any] = dict(
            amqp_url=url,
            queue=f"{self.name}.app",
            exchange=self.name,
            routing_keys=["acme.user.*", "acme.group.*", "acme.tenant.deleted"],
            queue_arguments={"x-expires": 60_000},
            auto_delete_dead_letter_exchange=True,
            reconnect_interval=0.1,
            max_attempts=3,
            backoff_initial=0,
            catch_up=False,
        )
        options.update(kwargs)
        return Consumer(**options)

    async def publish(self, event: dict[str, Any] | bytes, key: str | None = None) -> None:
        assert self.exchange is not None
        body = event if isinstance(event, bytes) else json.dumps(event).encode()
        if key is None:
            key = routing_key(parse_event(body))
        message_id = None if isinstance(event, bytes) else event["id"]
        await self.exchange.publish(
            aio_pika.Message(body, message_id=message_id, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=key,
        )

    async def ready_count(self, queue: str) -> int:
        assert self.channel is not None
        declared = await self.channel.declare_queue(queue, passive=True)
        return int(declared.declaration_result.message_count)

    async def stop(self) -> None:
        assert self.channel is not None and self.connection is not None
        for queue in (f"{self.name}.app", f"{self.name}.app.dlq"):
            try:
                channel = await self.connection.channel()
                await channel.queue_delete(queue)
            except Exception:  # noqa: BLE001 - not declared by this test; x-expires cleans up anyway
                pass
        await self.connection.close()


async def ready(broker: Broker, queue: str, count: int) -> None:
    """Waits (bounded) until `queue` holds `count` ready messages: messages a closed channel
    held unacked are returned to their queue asynchronously."""
    deadline = asyncio.get_running_loop().time() + WAIT
    while (ready_now := await broker.ready_count(queue)) != count:
        assert asyncio.get_running_loop().time() < deadline, f"{queue}: {ready_now} ready, not {count}"
        await asyncio.sleep(0.05)


@pytest.fixture
async def broker():
    b = Broker()
    await b.start()
    yield b
    await b.stop()


async def test_an_event_is_acked_only_after_its_handler_succeeded(broker, factory, recorder):
    gate = asyncio.Event()
    first = broker.consumer(drain_timeout=0)

    @first.on("scimbus.user.created")
    async def stuck(event, ctx):
        await recorder.add("stuck", event.id)
        await gate.wait()

    await first.start()
    event = factory.user_created("u1")
    await broker.publish(event)
    await recorder.wait_for(lambda: recorder.of("stuck"))
    await first.stop()  # the handler never finished: the delivery goes back to the queue

    second = broker.consumer()

    @second.on("scimbus.user.created")
    async def works(event, ctx):
        await recorder.add("done", event.id)

    await second.start()
    await recorder.wait_for(lambda: recorder.of("done"))
    await second.stop()
    assert recorder.of("done") == [event["id"]]
    assert await broker.ready_count(second.queue_name) == 0


async def test_each_resource_is_processed_in_order_and_different_resources_concurrently(broker, factory, recorder):
    consumer = broker.consumer()
    started = {"Users/u1": asyncio.Event(), "Users/u2": asyncio.Event()}
    in_flight: dict[str, int] = {}
    overlap: list[int] = []

    async def handler(event, ctx):
        in_flight[event.subject] = in_flight.get(event.subject, 0) + 1
        overlap.append(in_flight[event.subject])
        if event.version == 1:
            # Each resource's first handler waits for the other's to start: this only
            # finishes if the two resources run concurrently.
            started[event.subject].set()
            other = "Users/u2" if event.subject == "Users/u1" else "Users/u1"
            await asyncio.wait_for(started[other].wait(), WAIT)
        await asyncio.sleep(0)
        in_flight[event.subject] -= 1
        await recorder.add(event.subject, event.version)

    consumer.on("scimbus.user.created")(handler)
    consumer.on("scimbus.user.updated")(handler)
    await consumer.start()
    for user in ("u1", "u2"):
        await broker.publish(factory.user_created(user))
    for version in range(2, 11):
        for user in ("u1", "u2"):
            await broker.publish(factory.user_updated(user, version))
    await recorder.wait_for(lambda: len(recorder.calls) == 20)
    await consumer.stop()
    assert recorder.of("Users/u1") == list(range(1, 11))
    assert recorder.of("Users/u2") == list(range(1, 11))
    assert max(overlap) == 1


async def test_a_handler_that_keeps_failing_is_retried_then_dead_lettered(broker, factory, recorder):
    consumer = broker.consumer(max_attempts=3)

    @consumer.on("scimbus.user.created")
    async def broken(event, ctx):
        await recorder.add("attempt", ctx.attempt)
        raise RuntimeError("bug")

    await consumer.start()
    event = factory.user_created("u1")
    await broker.publish(event)
    await broker.publish(b"{not json", key="acme.user.created")

    assert broker.connection is not None
    channel = await broker.connection.channel()
    dlq = await channel.declare_queue(consumer.dead_letter_queue, passive=True)
    dead = []
    async with dlq.iterator() as messages:
        async for message in messages:
            dead.append(message)
            await message.ack()
            if len(dead) == 2:
                break
    await consumer.stop()
    assert {m.body for m in dead} == {json.dumps(event).encode(), b"{not json"}
    assert recorder.of("attempt") == [1, 2, 3]
    async with consumer.store.transaction() as tx:
        assert await consumer.store.get_state("acme", "Users/u1", tx) == ResourceState(version=0, needs_resync=True)


async def test_the_consumer_reconnects_after_the_connection_drops(broker, factory, recorder):
    proxy = TcpProxy(AMQP_HOST, AMQP_PORT)
    port = await proxy.start()
    consumer = broker.consumer(url=f"amqp://guest:guest@127.0.0.1:{port}/")

    @consumer.on_any
    async def anything(event, ctx):
        await recorder.add(event.type, event.version)

    await consumer.start()
    await asyncio.wait_for(consumer.consuming.wait(), WAIT)
    await broker.publish(factory.user_created("u1"))
    await recorder.wait_for(lambda: len(recorder.calls) == 1)

    proxy.cut()
    await broker.publish(factory.user_updated("u1", 2))
    await recorder.wait_for(lambda: len(recorder.calls) == 2)
    await consumer.stop()
    await proxy.stop()
    assert recorder.calls == [("scimbus.user.created", 1), ("scimbus.user.updated", 2)]
    assert proxy.connections >= 2


async def test_a_message_delivered_twice_runs_its_handler_once(broker, factory, recorder):
    consumer = broker.consumer()

    @consumer.on_any
    async def anything(event, ctx):
        await recorder.add(event.type, event.id)

    await consumer.start()
    created = factory.user_created("u1")
    await broker.publish(created)
    await broker.publish(created)
    await broker.publish(factory.user_updated("u1", 2))
    await recorder.wait_for(lambda: recorder.of("scimbus.user.updated"))
    await consumer.stop()
    assert recorder.of("scimbus.user.created") == [created["id"]]


async def test_catch_up_runs_before_the_queue_and_overlaps_are_deduplicated(broker, factory, fake, recorder):
    data = fake.tenant("acme")
    data.snapshot_sequence = 0
    created, updated = factory.user_created("u1"), factory.user_updated("u1", 2)
    data.events.extend([created, updated])
    consumer = broker.consumer(catch_up=True, pull=PullClient(fake.base_url, {"acme": TOKEN}))

    @consumer.on_any
    async def anything(event, ctx):
        await recorder.add(event.type, (event.version, ctx.origin))

    await consumer.start()
    await broker.publish(updated)
    await broker.publish(factory.user_updated("u1", 3))
    await recorder.wait_for(lambda: len(recorder.calls) == 3)
    await consumer.stop()
    assert [item for _, item in recorder.calls] == [(1, "pull"), (2, "pull"), (3, "broker")]


async def test_the_fastapi_lifespan_starts_and_stops_the_consumer(broker, factory, recorder):
    from fastapi import FastAPI

    consumer = broker.consumer()

    @consumer.on_any
    async def anything(event, ctx):
        await recorder.add(event.type, event.id)

    app = FastAPI(lifespan=consumer.lifespan)
    async with app.router.lifespan_context(app):
        await asyncio.wait_for(consumer.consuming.wait(), WAIT)
        await broker.publish(factory.user_created("u1"))
        await recorder.wait_for(lambda: len(recorder.calls) == 1)
        assert consumer.connected
    assert not consumer.connected


async def test_one_consumer_of_the_queue_is_active_and_another_takes_over_when_it_goes(broker, factory, recorder):
    first, second = broker.consumer(), broker.consumer()
    for index, consumer in enumerate((first, second)):

        @consumer.on_any
        async def anything(event, ctx, index=index):
            await recorder.add(index, (event.subject, event.version))

    await first.start()
    await asyncio.wait_for(first.consuming.wait(), WAIT)
    await second.start()
    await asyncio.wait_for(second.consuming.wait(), WAIT)
    for user in range(20):
        await broker.publish(factory.user_created(f"u{user}"))
    await recorder.wait_for(lambda: len(recorder.calls) == 20)
    await first.stop()
    for user in range(20):
        await broker.publish(factory.user_updated(f"u{user}", 2))
    await recorder.wait_for(lambda: len(recorder.calls) == 40)
    await second.stop()
    assert sorted(recorder.of(0)) == sorted((f"Users/u{u}", 1) for u in range(20))
    assert sorted(recorder.of(1)) == sorted((f"Users/u{u}", 2) for u in range(20))


async def test_a_queue_declared_with_other_arguments_is_named_in_the_error(broker):
    from scimbus_consumer import QueueMismatch

    assert broker.channel is not None
    await broker.channel.declare_queue(
        f"{broker.name}.app", durable=True, arguments={"x-queue-type": "quorum", "x-expires": 60_000}
    )
    consumer = broker.consumer()
    with pytest.raises(QueueMismatch, match="exists with other arguments"):
        await consumer.start()
    assert not consumer.connected


async def test_dead_letters_are_listed_and_replayed_once_the_handler_is_fixed(broker, factory, recorder):
    import sys
    import types

    from scimbus_consumer.__main__ import parser, run

    consumer = broker.consumer(max_attempts=2)
    broken = True

    @consumer.on("scimbus.user.created")
    async def created(event, ctx):
        await recorder.add(ctx.origin, event.id)
        if broken:
            raise RuntimeError("bug")

    await consumer.start()
    event = factory.user_created("u1")
    await broker.publish(event)
    await broker.publish(b"{not json", key="acme.user.created")
    deadline = asyncio.get_running_loop().time() + WAIT
    while await broker.ready_count(consumer.dead_letter_queue) < 2:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)
    await consumer.stop()

    listed = await consumer.dead_letters()
    assert [(d.event.id if d.event else None, d.reason) for d in listed] == [(event["id"], "rejected"), (None, "rejected")]
    await ready(broker, consumer.dead_letter_queue, 2)  # listing leaves them (returned as its channel closes)

    broken = False
    module = types.ModuleType("scimbus_cli_target")
    module.CONSUMER = consumer  # type: ignore[attr-defined]
    sys.modules["scimbus_cli_target"] = module
    try:
        code = await run(parser().parse_args(["dead-letters", "--replay", "--consumer", "scimbus_cli_target:CONSUMER"]))
    finally:
        del sys.modules["scimbus_cli_target"]
    assert code == 1  # the unreadable message is left
    assert recorder.of("replay") == [event["id"]]
    await ready(broker, consumer.dead_letter_queue, 1)
    remaining = await consumer.dead_letters()
    assert [(d.event, d.error is not None) for d in remaining] == [(None, True)]


async def test_an_event_whose_handler_kills_the_process_is_dead_lettered_and_the_rest_goes_on(broker, factory, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).with_name("crashing_consumer.py")
    queue = f"{broker.name}.app"
    declare = broker.consumer()  # the queue exists before anything is published
    await declare.start()
    await declare.stop()
    await broker.publish(factory.user_created("p1", user_name="poison"))
    for i in range(5):  # delivered beside the poison, counted by the broker with it
        await broker.publish(factory.user_created(f"u{i}"))
    handled: list[str] = []
    runs = 0
    while len(handled) < 5 or await broker.ready_count(declare.dead_letter_queue) == 0:
        runs += 1
        assert runs <= 6, f"the poison message kept coming back ({handled})"
        proc = subprocess.Popen(
            [sys.executable, str(script), AMQP_URL, broker.name, queue, str(tmp_path / "app.db")],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            out, _ = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:  # alive: it handled what was left
            proc.kill()
            out, _ = proc.communicate()
        handled += out.split()
    letters = await declare.dead_letters()
    assert [(d.event.subject if d.event else None, d.reason) for d in letters] == [("Users/p1", "rejected")]
    assert sorted(handled) == [f"u{i}" for i in range(5)]
    assert runs == 4  # three crashes (the first delivery, then two counted attempts), then rejected


async def test_the_app_starts_while_the_broker_is_down_and_the_consumer_connects_later(broker, factory, fake, recorder):
    from fastapi import FastAPI

    proxy = TcpProxy(AMQP_HOST, AMQP_PORT)
    port = await proxy.start()
    proxy.refusing = True
    data = fake.tenant("acme")
    data.snapshot_sequence = 0
    missed = factory.user_created("u0")  # committed while the broker was down
    data.events.append(missed)
    consumer = broker.consumer(
        url=f"amqp://guest:guest@127.0.0.1:{port}/", catch_up=True, pull=PullClient(fake.base_url, {"acme": TOKEN})
    )

    @consumer.on_any
    async def anything(event, ctx):
        await recorder.add(ctx.origin, event.subject)

    app = FastAPI(lifespan=consumer.lifespan)
    async with app.router.lifespan_context(app):  # starts: the broker is down
        status = consumer.status()
        assert status.state in ("connecting", "catching_up") and not status.broker_connected and not status.ready
        assert status.last_error is not None
        await recorder.wait_for(lambda: recorder.of("pull") == ["Users/u0"])  # caught up meanwhile
        proxy.refusing = False
        await asyncio.wait_for(consumer.consuming.wait(), WAIT)
        assert consumer.status().ready and consumer.status().broker_connected
        await broker.publish(factory.user_created("u1"))
        await recorder.wait_for(lambda: recorder.of("broker") == ["Users/u1"])

        proxy.refusing = True
        proxy.cut()  # a broker outage while consuming: the status says so
        deadline = asyncio.get_running_loop().time() + WAIT
        while consumer.status().broker_connected:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)
        assert consumer.status().state == "reconnecting" and not consumer.status().ready
        proxy.refusing = False
        while not consumer.status().ready:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)
        await broker.publish(factory.user_updated("u1", 2))
        await recorder.wait_for(lambda: len(recorder.of("broker")) == 2)
    await proxy.stop()
    assert consumer.status().state == "stopped"


async def test_the_pull_cursor_follows_settled_deliveries_so_a_restart_reads_only_what_it_missed(broker, factory, fake):
    data = fake.tenant("acme")
    data.snapshot_sequence = 0
    store = MemoryStore()
    consumer = broker.consumer(catch_up=True, pull=PullClient(fake.base_url, {"acme": TOKEN}), store=store)
    await consumer.start()
    await asyncio.wait_for(consumer.consuming.wait(), WAIT)
    events = [factory.user_created("u1"), factory.user_created("u2"), factory.user_updated("u1", 2)]
    data.events.extend(events)
    for event in (events[1], events[0], events[2]):  # settled out of order
        await broker.publish(event)
    deadline = asyncio.get_running_loop().time() + WAIT
    while consumer._progress.cursor.get("acme") != 3:
        assert asyncio.get_running_loop().time() < deadline, consumer._progress.cursor
        await asyncio.sleep(0.02)
    await consumer.stop()
    async with store.transaction() as tx:
        assert await store.get_cursor("acme", tx) == 3
    fake.requests.clear()
    again = broker.consumer(catch_up=True, pull=PullClient(fake.base_url, {"acme": TOKEN}), store=store)
    await again.start()
    await asyncio.wait_for(again.consuming.wait(), WAIT)
    await again.stop()
    reads = [query for path, query in fake.requests if path == "/events/v1/acme"]
    assert reads and reads[0]["after"] == "3", reads


async def test_a_credential_of_every_tenant_binds_wildcards_so_a_new_tenants_events_arrive_by_themselves(
    broker, fake, recorder
):
    from scimbus_consumer.testing import EventFactory

    fake.add_app_token("scimbus_app_all")
    fake.tenant("acme").snapshot_sequence = 0
    consumer = broker.consumer(
        routing_keys=None,
        catch_up=True,
        pull=PullClient(fake.base_url, app_token="scimbus_app_all"),
        tenant_refresh_interval=3600,  # refreshed by the test
    )

    @consumer.on_any
    async def anything(event, ctx):
        await recorder.add(event.tenant, (event.type, event.id))

    await consumer.start()
    await asyncio.wait_for(consumer.consuming.wait(), WAIT)
    assert consumer.routing_keys == ["*.user.*", "*.group.*", "*.tenant.*"]

    globex = EventFactory(tenant="globex")
    events = [globex.tenant_created(), globex.user_created("u1")]
    for event in events:
        await fake.append_event("globex", event)
        await broker.publish(event)  # scimbus's relay publishes them: the wildcard bindings take them
    await recorder.wait_for(lambda: len(recorder.of("globex")) == 2)
    changes = await consumer.refresh_tenants()  # catches the new tenant up through the pull API too
    assert changes.added == ["globex"]
    await consumer.stop()
    assert sorted(recorder.of("globex")) == sorted((e["type"], e["id"]) for e in events)  # each handled once


async def test_a_credential_of_some_tenants_binds_a_new_tenant_at_refresh_and_unbinds_one_that_left(
    broker, factory, fake, recorder
):
    from scimbus_consumer.testing import EventFactory

    fake.add_app_token("scimbus_app_some", {"acme"})
    fake.tenant("acme").snapshot_sequence = 0
    consumer = broker.consumer(
        routing_keys=None,
        catch_up=True,
        pull=PullClient(fake.base_url, app_token="scimbus_app_some"),
        tenant_refresh_interval=3600,  # refreshed by the test
    )

    @consumer.on_any
    async def anything(event, ctx):
        await recorder.add(event.tenant, (event.type, ctx.origin))

    await consumer.start()
    await asyncio.wait_for(consumer.consuming.wait(), WAIT)
    assert consumer.routing_keys == ["acme.user.*", "acme.group.*", "acme.tenant.*"]

    globex = EventFactory(tenant="globex")
    for event in [globex.tenant_created(), globex.user_created("u1")]:
        await fake.append_event("globex", event)
        await broker.publish(event)  # published before the app may read globex: no binding takes it
    fake.app_tokens["scimbus_app_some"] = {"acme", "globex"}
    assert (await consumer.refresh_tenants()).added == ["globex"]
    assert "globex.user.*" in consumer.routing_keys
    await recorder.wait_for(lambda: len(recorder.of("globex")) == 2)  # through the pull API from its first event
    updated = globex.user_updated("u1", 2)
    await fake.append_event("globex", updated)
    await broker.publish(updated)
    await recorder.wait_for(lambda: len(recorder.of("globex")) == 3)

    fake.app_tokens["scimbus_app_some"] = {"globex"}
    assert (await consumer.refresh_tenants()).removed == ["acme"]
    await broker.publish(factory.user_created("u9"))  # acme's keys are unbound: not routed to the queue
    last = globex.user_updated("u1", 3)
    await fake.append_event("globex", last)
    await broker.publish(last)
    await recorder.wait_for(lambda: len(recorder.of("globex")) == 4)
    await consumer.stop()
    assert recorder.of("globex") == [
        ("scimbus.tenant.created", "pull"),
        ("scimbus.user.created", "pull"),
        ("scimbus.user.updated", "broker"),
        ("scimbus.user.updated", "broker"),
    ]
    assert recorder.of("acme") == []
    assert await broker.ready_count(consumer.queue_name) == 0
