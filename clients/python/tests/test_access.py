"""Access as one concept: `on_access_revoked` / `on_access_granted` fire once per change, on
every path that changes access, in the event's transaction; with every store."""

from __future__ import annotations

import pytest

from scimbus_consumer import AccessReason, HandlerFailed, Outcome

R = AccessReason


def watch(consumer) -> list[tuple[str, bool, AccessReason]]:
    changes: list[tuple[str, bool, AccessReason]] = []

    @consumer.on_access_revoked
    @consumer.on_access_granted
    async def record(change, ctx):
        assert ctx.session is not None and change.tenant == ctx.tenant == "acme"
        changes.append((change.user_id, change.granted, change.reason))

    return changes


async def test_the_lifecycle_of_a_user_grants_and_revokes_once_per_change(make_consumer, factory, store):
    consumer = make_consumer(store=store)
    changes = watch(consumer)
    for event in (
        factory.user_created("u1"),
        factory.user_updated("u1", 2),  # still active: nothing
        factory.user_deactivated("u1", 3),
        factory.user_updated("u1", 4, active=False),  # still inactive: nothing
        factory.user_reactivated("u1", 5),
        factory.user_updated("u1", 6, active=False),  # a PUT or path-less PATCH that deactivates
        factory.user_updated("u1", 7),
        factory.user_deleted("u1", 8),
    ):
        assert await consumer.handle(event) is Outcome.APPLIED
    assert changes == [
        ("u1", True, R.PROVISIONED),
        ("u1", False, R.DEACTIVATED),
        ("u1", True, R.REACTIVATED),
        ("u1", False, R.DEACTIVATED),
        ("u1", True, R.REACTIVATED),
        ("u1", False, R.DELETED),
    ]


async def test_a_user_created_inactive_never_gets_access(make_consumer, factory, store):
    consumer = make_consumer(store=store)
    changes = watch(consumer)
    await consumer.handle(factory.user_created("u1", active=False))
    await consumer.handle(factory.user_deleted("u1", 2))
    assert changes == []


async def test_a_resync_that_finds_the_user_gone_or_inactive_revokes(make_consumer, factory, fake, store):
    consumer = make_consumer(store=store)
    changes = watch(consumer)
    await consumer.handle(factory.user_created("u1"))
    await consumer.handle(factory.user_created("u2"))
    # Missed events: u1 was deleted (404 on resync), u2 deactivated (the snapshot says so).
    fake.tenant("acme").users["u2"] = factory.user_snapshot("u2", 3, active=False)
    assert await consumer.handle(factory.user_updated("u1", 3)) is Outcome.RESYNCED  # gap: resync 404
    assert await consumer.handle(factory.user_updated("u2", 4, active=False)) is Outcome.APPLIED  # after the snapshot
    assert changes[2:] == [("u1", False, R.GONE), ("u2", False, R.DEACTIVATED)]


async def test_an_erased_user_loses_access_through_the_resync(make_consumer, factory, store):
    consumer = make_consumer(store=store)
    changes = watch(consumer)
    await consumer.handle(factory.user_created("u1"))
    erased = factory.user_deleted("u1", 2)
    erased["data"] = {"redacted": True}
    assert await consumer.handle(erased) is Outcome.RESYNCED  # the pull API answers 404
    assert changes == [("u1", True, R.PROVISIONED), ("u1", False, R.GONE)]


async def test_a_deleted_tenant_revokes_everyone_who_had_access(make_consumer, factory, store):
    consumer = make_consumer(store=store)
    changes = watch(consumer)
    for user in ("u1", "u2", "u3"):
        await consumer.handle(factory.user_created(user))
    await consumer.handle(factory.user_deactivated("u2", 2))
    changes.clear()
    assert await consumer.handle(factory.tenant_deleted()) is Outcome.APPLIED
    assert sorted(changes) == [("u1", False, R.TENANT_DELETED), ("u3", False, R.TENANT_DELETED)]


async def test_gating_groups_grant_and_revoke_by_membership(make_consumer, factory, fake, store):
    consumer = make_consumer(store=store, gating_groups=["crm-users"])
    changes = watch(consumer)
    for user in ("u1", "u2", "u3"):
        await consumer.handle(factory.user_created(user))
    assert changes == []  # present and active, but in no gating group
    await consumer.handle(factory.group_created("g1", display_name="crm-users"))
    await consumer.handle(factory.members_added("g1", 1, ["u1", "u2", "u9"]))  # u9 arrives later
    await consumer.handle(factory.group_created("other", display_name="staff"))
    await consumer.handle(factory.members_added("other", 1, ["u3"]))
    assert sorted(changes) == [("u1", True, R.ADDED_TO_GROUP), ("u2", True, R.ADDED_TO_GROUP)]
    changes.clear()

    await consumer.handle(factory.user_created("u9"))
    await consumer.handle(factory.members_removed("g1", 2, ["u1"]))
    await consumer.handle(factory.user_deactivated("u2", 2))
    await consumer.handle(factory.members_removed("g1", 3, ["u2"]))  # already without access
    await consumer.handle(factory.members_removed("other", 2, ["u3"]))  # not a gate
    assert changes == [("u9", True, R.PROVISIONED), ("u1", False, R.REMOVED_FROM_GROUP), ("u2", False, R.DEACTIVATED)]
    changes.clear()

    # Renamed away from the gating name: its members lose access; renamed back: the consumer
    # resyncs the group (its members are not in the event) and they get it again.
    await consumer.handle(factory.group_updated("g1", 4, display_name="crm-users-old"))
    assert changes == [("u9", False, R.REMOVED_FROM_GROUP)]
    fake.tenant("acme").groups["g1"] = factory.group_snapshot("g1", 5, ["u9", "u3"], display_name="crm-users")
    await consumer.handle(factory.group_updated("g1", 5, display_name="crm-users"))
    assert sorted(changes[1:]) == [("u3", True, R.ADDED_TO_GROUP), ("u9", True, R.ADDED_TO_GROUP)]
    changes.clear()

    await consumer.handle(factory.group_deleted("g1", 6))
    assert sorted(changes) == [("u3", False, R.REMOVED_FROM_GROUP), ("u9", False, R.REMOVED_FROM_GROUP)]


async def test_a_bootstrap_snapshot_grants_to_gate_members_only(make_consumer, factory, store):
    consumer = make_consumer(store=store, gating_groups={"acme": ["crm-users"]})
    changes = watch(consumer)
    for user, active in (("u1", True), ("u2", True), ("u3", False)):
        await consumer.handle(factory.user_snapshot(user, 1, active=active))
    await consumer.handle(factory.group_snapshot("g1", 2, ["u1", "u3", ("g2", "Group")], display_name="crm-users"))
    assert changes == [("u1", True, R.ADDED_TO_GROUP)]
    changes.clear()
    # A newer snapshot of the gate without u1 (membership removed while events were missed).
    await consumer.handle(factory.group_snapshot("g1", 3, ["u2", "u3"], display_name="crm-users"))
    assert sorted(changes) == [("u1", False, R.REMOVED_FROM_GROUP), ("u2", True, R.ADDED_TO_GROUP)]


async def test_a_failing_revocation_handler_rolls_the_event_back_and_runs_again(make_consumer, factory, store):
    consumer = make_consumer(store=store, max_attempts=3)
    calls: list[int] = []

    @consumer.on_access_revoked
    async def end_sessions(change, ctx):
        calls.append(ctx.attempt)
        if ctx.attempt == 1:
            raise RuntimeError("the session service is down")

    await consumer.handle(factory.user_created("u1"))
    assert await consumer.handle(factory.user_deactivated("u1", 2)) is Outcome.APPLIED
    assert calls == [1, 2]
    assert await consumer.handle(factory.user_deleted("u1", 3)) is Outcome.APPLIED
    assert calls == [1, 2]  # no access left to revoke


async def test_a_revocation_handler_that_keeps_failing_leaves_access_granted(make_consumer, factory, store):
    consumer = make_consumer(store=store, max_attempts=2)

    @consumer.on_access_revoked
    async def broken(change, ctx):
        raise RuntimeError("bug")

    await consumer.handle(factory.user_created("u1"))
    with pytest.raises(HandlerFailed):
        await consumer.handle(factory.user_deactivated("u1", 2))
    async with store.transaction() as tx:
        assert (await store.granted_users("acme", tx)) == ["u1"]


def test_an_unknown_event_type_is_refused_when_registered(make_consumer):
    consumer = make_consumer()
    with pytest.raises(ValueError, match="unknown event type 'scimbus.user.deactivate'"):
        consumer.on("scimbus.user.deactivate")
    with pytest.raises(TypeError):
        make_consumer(gating_groups="crm-users")
