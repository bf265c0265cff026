"""Catch-up through the (fake) pull API: bootstrap from snapshots, events after the cursor,
410 Gone, and the client's error mapping."""

from __future__ import annotations

import pytest

from conftest import TOKEN
from scimbus_consumer import PullClient, PullError, ResourceGone, ResourceState


def record_all(consumer, recorder):
    @consumer.on_any
    async def anything(event, ctx):
        await recorder.add(event.type, (event, ctx))

    @consumer.on_gone
    async def gone(item, ctx):
        await recorder.add("gone", item)


async def cursor(consumer, tenant="acme"):
    async with consumer.store.transaction() as tx:
        return await consumer.store.get_cursor(tenant, tx)


async def test_first_start_bootstraps_from_every_snapshot_page_then_pulls_after_the_snapshot_sequence(
    make_consumer, factory, fake, recorder
):
    data = fake.tenant("acme")
    history = [factory.user_created(f"u{i}") for i in range(1, 6)] + [factory.group_created("g1")]
    data.events.extend(history)
    data.users = {f"u{i}": factory.user_snapshot(f"u{i}", 1) for i in range(1, 6)}
    data.groups = {"g1": factory.group_snapshot("g1", 1, ["u1"])}
    data.snapshot_sequence = 6
    later = [factory.user_updated("u1", 2), factory.members_added("g1", 2, ["u2"])]
    data.events.extend(later)

    consumer = make_consumer(page_limit=2)
    record_all(consumer, recorder)
    await consumer.catch_up()

    kinds = [k for k, _ in recorder.calls]
    assert kinds == ["scimbus.user.snapshot"] * 5 + ["scimbus.group.snapshot", "scimbus.user.updated", "scimbus.group.members_added"]
    assert all(ctx.origin == "snapshot" for k, (_, ctx) in recorder.calls[:6])
    assert await cursor(consumer) == 8
    snapshot_pages = [q.get("after") for p, q in fake.requests if p.endswith("/snapshot/Users")]
    assert snapshot_pages == [None, "u2", "u4"]
    assert [q["after"] for p, q in fake.requests if p == "/events/v1/acme"] == ["6"]


async def test_a_restart_pulls_only_after_the_stored_cursor_and_dedupes_overlaps(make_consumer, factory, fake, recorder):
    data = fake.tenant("acme")
    data.events.extend([factory.user_created("u1"), factory.user_updated("u1", 2)])
    data.snapshot_sequence = 0  # the app started with scimbus, before any event
    consumer = make_consumer()
    record_all(consumer, recorder)
    await consumer.catch_up()
    assert len(recorder.calls) == 2

    data.events.append(factory.user_updated("u1", 3))
    await consumer.catch_up()
    assert [k for k, _ in recorder.calls][-1] == "scimbus.user.updated"
    assert len(recorder.calls) == 3
    assert fake.requests[-1] == ("/events/v1/acme", {"after": "2", "limit": "2"})
    assert await cursor(consumer) == 3

    # The same events again (the queue delivering what the pull API already gave) change nothing.
    for raw in data.events:
        await consumer.handle(raw)
    assert len(recorder.calls) == 3


async def test_pruned_events_trigger_a_full_resync_that_also_finds_deleted_resources(
    make_consumer, factory, fake, recorder
):
    data = fake.tenant("acme")
    data.events.extend([factory.user_created("u1"), factory.user_created("u2")])
    data.snapshot_sequence = 0
    consumer = make_consumer()
    record_all(consumer, recorder)
    await consumer.catch_up()
    assert await cursor(consumer) == 2

    # While the app was away: u2 deleted, u3 created, and everything before 10 pruned.
    factory.sequence = 10
    data.retained_after = 10
    data.snapshot_sequence = 10
    data.users = {"u1": factory.user_snapshot("u1", 3), "u3": factory.user_snapshot("u3", 1)}
    data.events.append(factory.user_updated("u3", 2))

    await consumer.catch_up()

    assert recorder.of("gone") == [ResourceGone("acme", "Users/u2")]
    assert [k for k, _ in recorder.calls][2:] == ["scimbus.user.snapshot", "scimbus.user.snapshot", "gone", "scimbus.user.updated"]
    assert await cursor(consumer) == 11
    async with consumer.store.transaction() as tx:
        assert await consumer.store.get_state("acme", "Users/u3", tx) == ResourceState(version=2)


async def test_a_forced_bootstrap_applies_snapshots_whose_versions_rewound(make_consumer, factory, fake, recorder):
    data = fake.tenant("acme")
    consumer = make_consumer()
    record_all(consumer, recorder)
    await consumer.handle(factory.user_snapshot("u1", 9))
    data.users = {"u1": factory.user_snapshot("u1", 4)}
    await consumer.bootstrap("acme")
    assert len(recorder.calls) == 1
    await consumer.bootstrap("acme", force=True)
    assert len(recorder.calls) == 2 and recorder.calls[-1][1][1].force


async def test_events_the_bindings_do_not_cover_are_skipped(make_consumer, factory, fake, recorder):
    data = fake.tenant("acme")
    data.events.extend([factory.user_created("u1"), factory.group_created("g1")])
    data.snapshot_sequence = 0
    consumer = make_consumer(routing_keys=["acme.group.*"])
    record_all(consumer, recorder)
    await consumer.catch_up()
    assert [k for k, _ in recorder.calls] == ["scimbus.group.created"]
    assert not [p for p, _ in fake.requests if p.endswith("/snapshot/Users")]


async def test_the_pull_client_maps_errors_and_sends_the_tenant_token(fake):
    fake.add_token("no-scope", "acme", scopes={"scim"})
    fake.add_token("other", "globex")
    for token, status in [("no-scope", 403), ("other", 401), ("wrong", 401)]:
        client = PullClient(fake.base_url, {"acme": token})
        with pytest.raises(PullError) as caught:
            await client.events("acme")
        assert caught.value.status == status
        await client.aclose()
    client = PullClient(fake.base_url, {"acme": TOKEN})
    assert await client.snapshot_one("acme", "Users", "missing") is None
    page = await client.events("acme", types=["scimbus.user.created"])
    assert page.events == [] and page.next == 0 and not page.has_more
    assert fake.requests[-1][1]["types"] == "scimbus.user.created"
    await client.aclose()


async def test_a_cursor_passes_sequences_the_pull_api_does_not_serve(make_consumer, factory, fake):
    """An event an operator discarded from a brake's hold is never published: the cursor,
    which follows contiguous deliveries, moves past it once the pull API shows it is not
    served, instead of stalling there until the next start."""
    data = fake.tenant("acme")
    events = [factory.user_created(f"u{i}") for i in range(1, 6)]
    data.events.extend(e for e in events if e["sequence"] != f"{3:019d}")  # 3 was discarded
    consumer = make_consumer()
    consumer._progress.start("acme", 1)
    for sequence in (2, 4, 5):
        consumer._progress.settle("acme", sequence)
    assert consumer._progress.cursor["acme"] == 2
    assert consumer._progress.gaps() == {"acme": 2}
    await consumer.skip_unserved()
    assert consumer._progress.cursor["acme"] == 5
    assert consumer._progress.gaps() == {}
    # A sequence that exists (a delivery still to come) is waited for.
    consumer._progress.start("acme", 5)
    more = [factory.user_created(f"v{i}") for i in range(1, 3)]
    data.events.extend(more)
    consumer._progress.settle("acme", 7)
    await consumer.skip_unserved()
    assert consumer._progress.cursor["acme"] == 5
    await consumer.pull.aclose()
