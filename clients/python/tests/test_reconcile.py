"""Reconciliation finds what differs from scimbus's snapshots, reports it and repairs it
through the same handlers (and the access hooks)."""

from __future__ import annotations

import asyncio

from sqlalchemy import Boolean, String, delete, select
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from scimbus_consumer import AccessReason
from scimbus_consumer.sql_store import ResourceVersion, SqlStore, sqlite_engine


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[str] = mapped_column(String, primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean)


async def test_injected_divergences_are_reported_then_repaired(make_consumer, factory, fake, tmp_path):
    engine = sqlite_engine(str(tmp_path / "app.db"))
    await SqlStore.create_tables(engine, Base.metadata)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    consumer = make_consumer(store=SqlStore(sessions))
    revoked: list[tuple[str, AccessReason]] = []

    @consumer.on("scimbus.user.created")
    @consumer.on("scimbus.user.updated")
    @consumer.on("scimbus.user.deactivated")
    @consumer.on("scimbus.user.snapshot")
    async def upsert(event, ctx):
        await ctx.session.merge(Account(id=event.data.resource.id, active=event.data.resource.is_active))

    @consumer.on_gone
    async def gone(item, ctx):
        await ctx.session.execute(delete(Account).where(Account.id == item.resource_id))

    @consumer.on_access_revoked
    async def end_sessions(change, ctx):
        revoked.append((change.user_id, change.reason))

    @consumer.verifier
    async def same(snapshot, ctx):
        if snapshot.resource_type != "Users":
            return True
        account = await ctx.session.get(Account, snapshot.resource_id)
        return account is not None and account.active == snapshot.data.resource.is_active

    data = fake.tenant("acme")
    for user in ("u1", "u2", "u3", "u4"):
        await consumer.handle(factory.user_created(user))
        data.users[user] = factory.user_snapshot(user, 1)
    assert (await consumer.reconcile(grace=0)).divergences == []

    # u1: the app's row was deleted by hand. u2: its deactivation was lost (dead-lettered and
    # purged, say). u3: deleted in scimbus while the app missed it. u4 is fine.
    async with sessions() as s, s.begin():
        await s.execute(delete(Account).where(Account.id == "u1"))
    data.users["u2"] = factory.user_snapshot("u2", 2, active=False)
    del data.users["u3"]

    report = await consumer.reconcile(repair=False, grace=0)
    assert report.checked == 3
    assert sorted((d.subject, d.why, d.repaired) for d in report.divergences) == [
        ("Users/u1", "verify", False),
        ("Users/u2", "behind", False),
        ("Users/u3", "extra", False),
    ]
    async with sessions() as s:
        assert await s.get(Account, "u1") is None

    report = await consumer.reconcile(grace=0)
    assert report.repaired == 3
    async with sessions() as s:
        accounts = {a.id: a.active for a in await s.scalars(select(Account))}
        versions = {r.subject: r.version for r in await s.scalars(select(ResourceVersion))}
    assert accounts == {"u1": True, "u2": False, "u4": True}
    assert versions["Users/u2"] == 2
    assert sorted(revoked) == [("u2", AccessReason.DEACTIVATED), ("u3", AccessReason.GONE)]
    assert (await consumer.reconcile(grace=0)).divergences == []
    await engine.dispose()


async def test_a_version_behind_only_because_events_are_on_their_way_is_not_reported(make_consumer, factory, fake):
    consumer = make_consumer()
    await consumer.handle(factory.user_created("u1"))
    fake.tenant("acme").users["u1"] = factory.user_snapshot("u1", 2)
    update_event = factory.user_updated("u1", 2)

    async def arrives_during_the_grace() -> None:
        await asyncio.sleep(0.05)
        await consumer.handle(update_event)

    arriving = asyncio.create_task(arrives_during_the_grace())
    report = await consumer.reconcile(grace=0.3)
    await arriving
    assert report.divergences == []


async def test_the_command_reports_divergence_in_its_exit_code_and_repairs_it(make_consumer, factory, fake, capsys):
    import json
    import sys
    import types

    from scimbus_consumer.__main__ import parser, run

    from scimbus_consumer import MemoryStore

    store = MemoryStore()
    await make_consumer(store=store).handle(factory.user_created("u1"))
    fake.tenant("acme").users["u1"] = factory.user_snapshot("u1", 3, active=False)  # two events missed

    async def build():  # each run builds its consumer, as a new process does
        return make_consumer(store=store)

    module = types.ModuleType("scimbus_reconcile_target")
    module.build = build  # type: ignore[attr-defined]
    sys.modules["scimbus_reconcile_target"] = module
    command = ["reconcile", "--grace", "0", "--consumer", "scimbus_reconcile_target:build"]
    try:
        assert await run(parser().parse_args([*command, "--check"])) == 1
        assert await run(parser().parse_args(command)) == 1  # found, and repaired
        assert await run(parser().parse_args(command)) == 0
    finally:
        del sys.modules["scimbus_reconcile_target"]
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0] == {"tenant": "acme", "subject": "Users/u1", "why": "behind", "repaired": False}
    assert lines[2] == {"tenant": "acme", "subject": "Users/u1", "why": "behind", "repaired": True}
    assert lines[-1] == {"checked": 1, "divergences": 0, "repaired": 0}


async def test_a_repair_never_applies_a_snapshot_older_than_what_was_applied(make_consumer, factory, fake):
    consumer = make_consumer()
    accounts: dict[str, tuple[bool, int]] = {}

    @consumer.on("scimbus.user.created")
    @consumer.on("scimbus.user.deactivated")
    @consumer.on("scimbus.user.snapshot")
    async def upsert(event, ctx):
        accounts[event.data.resource.id] = (event.data.resource.is_active, event.data.version)

    @consumer.verifier
    async def same(snapshot, ctx):
        return accounts.get(snapshot.resource_id, (None, 0))[0] == snapshot.data.resource.is_active

    await consumer.handle(factory.user_created("u1"))
    await consumer.handle(factory.user_deactivated("u1", 2))
    # scimbus's snapshot (read before the deactivation was applied, say) is still v1.
    fake.tenant("acme").users["u1"] = factory.user_snapshot("u1", 1)
    await consumer.reconcile(grace=0)
    assert accounts["u1"] == (False, 2), "the older snapshot re-activated the account"
