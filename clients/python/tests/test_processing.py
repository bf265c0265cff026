"""One event at a time through `Consumer.handle`: versions, gaps, chunks, dedupe, retries.
No broker here; resyncs go to the fake pull API."""

from __future__ import annotations

import pytest

from scimbus_consumer import HandlerFailed, Outcome, ResourceGone, ResourceState
from scimbus_consumer.store import MemoryStore


def recording(consumer, recorder, *types):
    for event_type in types:

        @consumer.on(event_type)
        async def handler(event, ctx, _t=event_type):
            await recorder.add(_t, event)


USER_TYPES = (
    "scimbus.user.created",
    "scimbus.user.updated",
    "scimbus.user.deactivated",
    "scimbus.user.reactivated",
    "scimbus.user.deleted",
    "scimbus.user.snapshot",
)
GROUP_TYPES = (
    "scimbus.group.created",
    "scimbus.group.updated",
    "scimbus.group.deleted",
    "scimbus.group.members_added",
    "scimbus.group.members_removed",
    "scimbus.group.snapshot",
)


async def state(consumer, subject, tenant="acme"):
    async with consumer.store.transaction() as tx:
        return await consumer.store.get_state(tenant, subject, tx)


async def test_deltas_in_order_are_applied_and_move_the_version(make_consumer, factory, recorder):
    consumer = make_consumer()
    recording(consumer, recorder, *USER_TYPES)
    assert await consumer.handle(factory.user_created("u1")) is Outcome.APPLIED
    assert await consumer.handle(factory.user_updated("u1", 2)) is Outcome.APPLIED
    assert await consumer.handle(factory.user_deactivated("u1", 3)) is Outcome.APPLIED
    assert [type(e).__name__ for _, e in recorder.calls] == ["UserCreated", "UserUpdated", "UserDeactivated"]
    assert await state(consumer, "Users/u1") == ResourceState(version=3)


async def test_a_redelivered_event_is_a_duplicate_and_runs_no_handler(make_consumer, factory, recorder):
    consumer = make_consumer()
    recording(consumer, recorder, *USER_TYPES)
    created = factory.user_created("u1")
    assert await consumer.handle(created) is Outcome.APPLIED
    assert await consumer.handle(created) is Outcome.DUPLICATE
    assert len(recorder.calls) == 1


async def test_an_older_version_with_a_new_id_is_stale(make_consumer, factory, recorder):
    consumer = make_consumer()
    recording(consumer, recorder, *USER_TYPES)
    await consumer.handle(factory.user_created("u1"))
    await consumer.handle(factory.user_updated("u1", 2))
    assert await consumer.handle(factory.user_updated("u1", 2)) is Outcome.STALE
    assert await consumer.handle(factory.user_created("u1")) is Outcome.STALE
    assert len(recorder.calls) == 2


async def test_a_gap_resyncs_the_resource_from_its_snapshot_instead_of_applying_the_delta(
    make_consumer, factory, fake, recorder
):
    consumer = make_consumer()
    recording(consumer, recorder, *USER_TYPES)
    await consumer.handle(factory.user_created("u1"))
    fake.tenant("acme").users["u1"] = factory.user_snapshot("u1", 4, displayName="Now")

    assert await consumer.handle(factory.user_updated("u1", 3)) is Outcome.RESYNCED

    assert [e.type for _, e in recorder.calls] == ["scimbus.user.created", "scimbus.user.snapshot"]
    assert recorder.calls[-1][1].data.resource.display_name == "Now"
    assert await state(consumer, "Users/u1") == ResourceState(version=4, from_snapshot=True)
    assert await consumer.handle(factory.user_updated("u1", 5)) is Outcome.APPLIED


async def test_a_gap_whose_snapshot_equals_the_delta_version_applies_the_snapshot(make_consumer, factory, fake, recorder):
    consumer = make_consumer()
    recording(consumer, recorder, *USER_TYPES)
    fake.tenant("acme").users["u1"] = factory.user_snapshot("u1", 3)
    assert await consumer.handle(factory.user_updated("u1", 3)) is Outcome.RESYNCED
    assert await state(consumer, "Users/u1") == ResourceState(version=3, from_snapshot=True)


async def test_a_gap_on_a_resource_that_no_longer_exists_reports_it_gone_once(make_consumer, factory, fake, recorder):
    consumer = make_consumer()
    recording(consumer, recorder, *USER_TYPES)

    @consumer.on_gone
    async def gone(item, ctx):
        await recorder.add("gone", item)

    await consumer.handle(factory.user_created("u1"))
    assert await consumer.handle(factory.user_updated("u1", 5)) is Outcome.RESYNCED
    assert recorder.of("gone") == [ResourceGone("acme", "Users/u1")]
    assert (await state(consumer, "Users/u1")).deleted
    assert await consumer.handle(factory.user_updated("u1", 6)) is Outcome.STALE
    assert len(recorder.of("gone")) == 1


async def test_an_unknown_resource_seen_mid_life_is_resynced(make_consumer, factory, fake, recorder):
    consumer = make_consumer()
    recording(consumer, recorder, *GROUP_TYPES)
    fake.tenant("acme").groups["g1"] = factory.group_snapshot("g1", 3, ["u1", "u2"])
    assert await consumer.handle(factory.members_added("g1", 3, ["u2"])) is Outcome.RESYNCED
    [(_, snapshot)] = recorder.calls
    assert [m.value for m in snapshot.data.members] == ["u1", "u2"]


async def test_group_events_of_one_version_and_its_chunks_are_all_applied(make_consumer, factory, recorder):
    consumer = make_consumer()
    recording(consumer, recorder, *GROUP_TYPES)
    events = [
        factory.group_created("g1"),
        factory.members_added("g1", 1, ["u1"]),
        factory.group_updated("g1", 2, displayName="Renamed"),
        factory.members_removed("g1", 2, ["u1"]),
        factory.members_added("g1", 2, [f"a{i}" for i in range(500)], chunk=(1, 2)),
        factory.members_added("g1", 2, ["b1"], chunk=(2, 2)),
        factory.members_removed("g1", 3, ["b1"]),
    ]
    outcomes = [await consumer.handle(e) for e in events]
    assert outcomes == [Outcome.APPLIED] * len(events)
    assert await state(consumer, "Groups/g1") == ResourceState(version=3)


async def test_a_later_chunk_of_a_version_not_started_is_a_gap(make_consumer, factory, fake, recorder):
    consumer = make_consumer()
    recording(consumer, recorder, *GROUP_TYPES)
    await consumer.handle(factory.group_created("g1"))
    fake.tenant("acme").groups["g1"] = factory.group_snapshot("g1", 2, ["x", "y"])
    assert await consumer.handle(factory.members_added("g1", 2, ["y"], chunk=(2, 2))) is Outcome.RESYNCED
    assert recorder.calls[-1][0] == "scimbus.group.snapshot"


async def test_a_snapshot_covers_later_events_of_its_own_version(make_consumer, factory, recorder):
    consumer = make_consumer()
    recording(consumer, recorder, *GROUP_TYPES)
    assert await consumer.handle(factory.group_snapshot("g1", 2, ["u1"])) is Outcome.APPLIED
    assert await consumer.handle(factory.members_added("g1", 2, ["u1"])) is Outcome.STALE
    assert await consumer.handle(factory.members_removed("g1", 3, ["u1"])) is Outcome.APPLIED


async def test_snapshots_apply_when_newer_or_forced(make_consumer, factory, recorder):
    consumer = make_consumer()
    recording(consumer, recorder, *USER_TYPES)
    assert await consumer.handle(factory.user_snapshot("u1", 5)) is Outcome.APPLIED
    assert await consumer.handle(factory.user_snapshot("u1", 5)) is Outcome.STALE
    assert await consumer.handle(factory.user_snapshot("u1", 4)) is Outcome.STALE
    assert await consumer.handle(factory.user_snapshot("u1", 6)) is Outcome.APPLIED
    # After a database restore versions may rewind: a forced bootstrap applies them anyway.
    assert await consumer.handle(factory.user_snapshot("u1", 2), force=True) is Outcome.APPLIED
    assert await state(consumer, "Users/u1") == ResourceState(version=2, from_snapshot=True)


async def test_a_snapshot_at_a_version_reached_by_deltas_completes_it(make_consumer, factory, recorder):
    consumer = make_consumer()
    recording(consumer, recorder, *GROUP_TYPES)
    await consumer.handle(factory.group_created("g1"))
    await consumer.handle(factory.members_added("g1", 2, ["a"], chunk=(1, 2)))
    assert await consumer.handle(factory.group_snapshot("g1", 2, ["a", "b"])) is Outcome.APPLIED


async def test_a_failing_handler_is_retried_in_place_then_succeeds(make_consumer, factory):
    consumer = make_consumer(max_attempts=3)
    attempts = []

    @consumer.on("scimbus.user.created")
    async def flaky(event, ctx):
        attempts.append(ctx.attempt)
        if len(attempts) < 3:
            raise RuntimeError("database busy")

    assert await consumer.handle(factory.user_created("u1")) is Outcome.APPLIED
    assert attempts == [1, 2, 3]


async def test_a_handler_that_keeps_failing_gives_up_and_marks_the_resource_for_resync(
    make_consumer, factory, fake, recorder
):
    consumer = make_consumer(max_attempts=2)
    recording(consumer, recorder, "scimbus.user.snapshot", "scimbus.user.deactivated")
    calls = []

    @consumer.on("scimbus.user.updated")
    async def broken(event, ctx):
        calls.append(event.id)
        raise RuntimeError("bug")

    await consumer.handle(factory.user_created("u1"))
    with pytest.raises(HandlerFailed):
        await consumer.handle(factory.user_updated("u1", 2))
    assert len(calls) == 2
    assert await state(consumer, "Users/u1") == ResourceState(version=1, needs_resync=True)

    # The next event of that resource resyncs it first.
    fake.tenant("acme").users["u1"] = factory.user_snapshot("u1", 2)
    assert await consumer.handle(factory.user_deactivated("u1", 3)) is Outcome.APPLIED
    assert [e.type for _, e in recorder.calls] == ["scimbus.user.snapshot", "scimbus.user.deactivated"]
    assert await state(consumer, "Users/u1") == ResourceState(version=3)


async def test_resync_pending_resyncs_every_marked_resource(make_consumer, factory, fake, recorder):
    consumer = make_consumer()
    recording(consumer, recorder, *USER_TYPES)
    await consumer.mark_resync("acme", "Users/u1")
    fake.tenant("acme").users["u1"] = factory.user_snapshot("u1", 7)
    await consumer.resync_pending()
    assert await state(consumer, "Users/u1") == ResourceState(version=7, from_snapshot=True)


async def test_a_failed_handler_leaves_no_dedupe_record_or_version(make_consumer, factory):
    store = MemoryStore()
    consumer = make_consumer(max_attempts=1, store=store)

    @consumer.on("scimbus.user.created")
    async def broken(event, ctx):
        raise RuntimeError("no")

    event = factory.user_created("u1")
    with pytest.raises(HandlerFailed):
        await consumer.handle(event)
    assert event["id"] not in store.processed
    assert store.states[("acme", "Users/u1")] == ResourceState(version=0, needs_resync=True)


async def test_tenant_deleted_drops_the_tenant_and_later_events_are_stale(make_consumer, factory, recorder):
    consumer = make_consumer()
    recording(consumer, recorder, *USER_TYPES, "scimbus.tenant.deleted")
    await consumer.handle(factory.user_created("u1"))
    assert await consumer.handle(factory.tenant_deleted()) is Outcome.APPLIED
    assert await state(consumer, "Users/u1") is None
    assert await consumer.handle(factory.user_created("u2")) is Outcome.STALE
    assert [e.type for _, e in recorder.calls] == ["scimbus.user.created", "scimbus.tenant.deleted"]


async def test_the_catch_all_gets_types_without_a_handler_of_their_own(make_consumer, factory, recorder):
    consumer = make_consumer()
    recording(consumer, recorder, "scimbus.user.created")

    @consumer.on_any
    async def anything(event, ctx):
        await recorder.add("any", event)

    unknown = factory.tenant_deleted()
    unknown["type"] = "scimbus.tenant.renamed"
    await consumer.handle(factory.user_created("u1"))
    await consumer.handle(factory.user_updated("u1", 2))
    assert await consumer.handle(unknown) is Outcome.APPLIED
    assert [k for k, _ in recorder.calls] == ["scimbus.user.created", "any", "any"]


async def test_a_redacted_event_resyncs_its_resource_without_calling_handlers(make_consumer, factory, fake, recorder):
    consumer = make_consumer()
    recording(consumer, recorder, *USER_TYPES)

    @consumer.on_gone
    async def gone(item, ctx):
        await recorder.add("gone", item)

    await consumer.handle(factory.user_created("u1"))
    erased = factory.user_updated("u1", 2)
    erased["data"] = {"redacted": True}
    assert await consumer.handle(erased) is Outcome.RESYNCED
    assert await consumer.handle(erased) is Outcome.DUPLICATE
    assert [k for k, _ in recorder.calls] == ["scimbus.user.created", "gone"]


async def test_without_a_pull_token_a_gap_is_applied_as_it_comes(make_consumer, factory, recorder):
    consumer = make_consumer(with_pull=False)
    recording(consumer, recorder, *USER_TYPES)
    assert await consumer.handle(factory.user_updated("u1", 4)) is Outcome.APPLIED
    assert await state(consumer, "Users/u1") == ResourceState(version=4)


async def test_user_deletion_removes_it_from_its_groups_first(make_consumer, factory, recorder):
    consumer = make_consumer()
    recording(consumer, recorder, *USER_TYPES, *GROUP_TYPES)
    for event in [
        factory.user_created("u1"),
        factory.group_created("g1"),
        factory.members_added("g1", 1, ["u1"]),
        factory.members_removed("g1", 2, ["u1"]),
        factory.user_deleted("u1", 2),
    ]:
        assert await consumer.handle(event) is Outcome.APPLIED
    assert await state(consumer, "Users/u1") == ResourceState(version=2, deleted=True)
    assert await state(consumer, "Groups/g1") == ResourceState(version=2)


async def test_a_tenant_deletion_that_keeps_failing_is_never_dead_lettered(make_consumer, factory):
    from scimbus_consumer import HandlerFailed

    consumer = make_consumer(max_attempts=2)

    @consumer.on("scimbus.tenant.deleted")
    async def broken(event, ctx):
        raise RuntimeError("the session service is down")

    with pytest.raises(RuntimeError):  # not HandlerFailed: the delivery is requeued
        await consumer.handle(factory.tenant_deleted())
    try:
        await consumer.handle(factory.tenant_deleted())
    except HandlerFailed:  # pragma: no cover - the assertion below names the problem
        pytest.fail("a tenant deletion was dead-lettered")
    except RuntimeError:
        pass


async def test_a_dead_lettered_event_has_its_resource_resynced_soon(make_consumer, factory, fake):
    from scimbus_consumer import HandlerFailed

    consumer = make_consumer(max_attempts=2)
    fake.tenant("acme").users["u1"] = factory.user_snapshot("u1", 2, active=False)

    @consumer.on("scimbus.user.created")
    async def created(event, ctx):
        pass

    @consumer.on("scimbus.user.deactivated")
    async def broken(event, ctx):
        raise RuntimeError("bug")

    await consumer.handle(factory.user_created("u1"))
    with pytest.raises(HandlerFailed):
        await consumer.handle(factory.user_deactivated("u1", 2))
    await consumer._lanes.drain(10)
    async with consumer.store.transaction() as tx:
        state = await consumer.store.get_state("acme", "Users/u1", tx)
    assert state is not None and (state.version, state.needs_resync) == (2, False)
