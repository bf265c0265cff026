"""A `Store` in the app's own database (SQLAlchemy 2.x, asyncio).

The consumer opens the transaction (`transaction()`), hands its `AsyncSession` to the
handler as `Context.session`, and adds its own rows (`record`, `put_state`, `set_cursor`)
to the same session: the app's side effects, the dedupe row and the version commit together
or not at all.

Several processes may share the database (`uvicorn --workers N`, replicas). On PostgreSQL
each event's transaction first takes a transaction-scoped advisory lock of its resource
(`lock`), so a second process waits for the first to commit and then judges its event
against the version the first wrote. On SQLite the engine of `sqlite_engine` begins every
transaction IMMEDIATE, which serialises writers of the file. Other databases are not
supported with more than one process.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    delete,
    event,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .access import AccessState
from .effects import Effect
from .store import ResourceState

log = logging.getLogger("scimbus_consumer")

# Two-key advisory locks (a key space of their own, apart from single bigint keys): the
# first key says what is locked, the second is the 32-bit hash of its name. A collision
# only makes two resources wait for each other.
_LOCK_RESOURCE = 0x5C1B0001
_LOCK_TENANT = 0x5C1B0002
_LOCK_SCHEMA = 0x5C1B0003


class _Base(DeclarativeBase):
    metadata = MetaData()


class ProcessedEvent(_Base):
    __tablename__ = "scimbus_processed_events"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class StartedAttempt(_Base):
    """Started attempts of redelivered events (see `Consumer.crash_limit`)."""

    __tablename__ = "scimbus_started_attempts"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class ResourceVersion(_Base):
    __tablename__ = "scimbus_resource_versions"

    tenant: Mapped[str] = mapped_column(String(63), primary_key=True)
    subject: Mapped[str] = mapped_column(String(512), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    from_snapshot: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    needs_resync: Mapped[bool] = mapped_column(Boolean, default=False, index=True)


class PullCursor(_Base):
    __tablename__ = "scimbus_pull_cursors"

    tenant: Mapped[str] = mapped_column(String(63), primary_key=True)
    sequence: Mapped[int] = mapped_column(BigInteger)


class UserAccess(_Base):
    """Each user's last known presence, `active` and granted access (see `access`)."""

    __tablename__ = "scimbus_user_access"

    tenant: Mapped[str] = mapped_column(String(63), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    present: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    granted: Mapped[bool] = mapped_column(Boolean, default=False)


class Gate(_Base):
    """A group the app gates access on (matched by display name)."""

    __tablename__ = "scimbus_gates"

    tenant: Mapped[str] = mapped_column(String(63), primary_key=True)
    group_id: Mapped[str] = mapped_column(String(255), primary_key=True)


class GateMember(_Base):
    __tablename__ = "scimbus_gate_members"
    __table_args__ = (Index("scimbus_gate_members_member", "tenant", "member_id"),)

    tenant: Mapped[str] = mapped_column(String(63), primary_key=True)
    group_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(255), primary_key=True)


class AppEffect(_Base):
    """A deferred side effect (see `scimbus_consumer.effects`)."""

    __tablename__ = "scimbus_effects"
    __table_args__ = (Index("scimbus_effects_due", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    """When the next attempt may start (a lease while one runs); NULL when done or dead."""
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


metadata = _Base.metadata
"""The store's tables; create them with `SqlStore.create_tables` or your migrations."""

_CHUNK = 1000
"""Ids per statement (PostgreSQL allows 32 767 parameters)."""


def _chunks(items: list[str]) -> list[list[str]]:
    return [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]


READ_ONLY = "scimbus_read_only"
"""Execution option of the connections `SqlStore.reading` hands out."""


def sqlite_engine(path: str, **kwargs: Any) -> AsyncEngine:
    """An aiosqlite engine fit for concurrent handlers: WAL, a busy timeout, and write
    transactions begun as IMMEDIATE (a deferred one that upgrades its lock fails with
    SQLITE_BUSY instead of waiting)."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}", connect_args={"timeout": 30}, **kwargs)

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy, not the driver, begins transactions
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Any) -> None:
        # Readers (`SqlStore.reading`) begin deferred: in WAL mode they neither wait for
        # nor block the writer.
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


class SqlStore:
    """`Store` on SQLAlchemy 2.x. `Context.session` is the transaction's `AsyncSession`."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker
        self._warned = False

    @staticmethod
    async def create_tables(engine: AsyncEngine, *more: MetaData) -> None:
        """Create the store's tables (and those of `more`, e.g. the app's own metadata) that
        do not exist yet. Safe when several processes start together: on PostgreSQL one
        advisory lock serialises them, on SQLite the IMMEDIATE transaction does."""
        async with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(select(func.pg_advisory_xact_lock(_LOCK_SCHEMA, 0)))
            for each in (metadata, *more):
                await conn.run_sync(each.create_all)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as session, session.begin():
            yield session

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only (the app's request path: `require_active_user`, its own
        lookups). On `sqlite_engine` it begins deferred instead of IMMEDIATE, so requests do
        not queue behind the consumer's writes; elsewhere it is an ordinary transaction."""
        async with self.sessionmaker() as session:
            await session.connection(execution_options={READ_ONLY: True})
            yield session

    async def lock(self, tenant: str, subject: str, tx: AsyncSession) -> None:
        dialect = tx.bind.dialect.name
        if dialect == "postgresql":
            tenant_key = func.hashtext(tenant)
            if subject.startswith("Tenants/"):
                await tx.execute(select(func.pg_advisory_xact_lock(_LOCK_TENANT, tenant_key)))
                return
            await tx.execute(
                select(
                    func.pg_advisory_xact_lock_shared(_LOCK_TENANT, tenant_key),
                    func.pg_advisory_xact_lock(_LOCK_RESOURCE, func.hashtext(f"{tenant}/{subject}")),
                )
            )
        elif dialect != "sqlite" and not self._warned:
            self._warned = True
            log.warning("SqlStore cannot lock resources on %s: run a single consumer process", dialect)

    async def is_processed(self, event_id: str, tx: AsyncSession) -> bool:
        return await tx.get(ProcessedEvent, event_id) is not None

    async def note_attempt(self, event_id: str) -> int:
        async with self.transaction() as tx:
            now = datetime.now(timezone.utc)
            insert = self._insert(tx, StartedAttempt).values(event_id=event_id, attempts=1, recorded_at=now)
            upsert = insert.on_conflict_do_update(
                index_elements=[StartedAttempt.event_id],
                set_={"attempts": StartedAttempt.attempts + 1, "recorded_at": now},
            ).returning(StartedAttempt.attempts)
            return int((await tx.execute(upsert)).scalar_one())

    async def record(self, event_id: str, session: AsyncSession) -> None:
        """Add the dedupe row to `session`; it commits with the app's own writes."""
        session.add(ProcessedEvent(event_id=event_id, recorded_at=datetime.now(timezone.utc)))

    async def get_state(self, tenant: str, subject: str, tx: AsyncSession) -> ResourceState | None:
        row = await tx.get(ResourceVersion, (tenant, subject))
        if row is None:
            return None
        return ResourceState(
            version=row.version,
            from_snapshot=row.from_snapshot,
            deleted=row.deleted,
            needs_resync=row.needs_resync,
        )

    async def put_state(self, tenant: str, subject: str, state: ResourceState, tx: AsyncSession) -> None:
        row = await tx.get(ResourceVersion, (tenant, subject))
        if row is None:
            row = ResourceVersion(tenant=tenant, subject=subject)
            tx.add(row)
        row.version = state.version
        row.from_snapshot = state.from_snapshot
        row.deleted = state.deleted
        row.needs_resync = state.needs_resync

    async def subjects(self, tenant: str, tx: AsyncSession) -> list[str]:
        result = await tx.scalars(
            select(ResourceVersion.subject)
            .where(ResourceVersion.tenant == tenant, ResourceVersion.deleted.is_(False))
            .order_by(ResourceVersion.subject)
        )
        return list(result)

    async def needing_resync(self, tx: AsyncSession) -> list[tuple[str, str]]:
        result = await tx.execute(
            select(ResourceVersion.tenant, ResourceVersion.subject)
            .where(ResourceVersion.needs_resync.is_(True))
            .order_by(ResourceVersion.tenant, ResourceVersion.subject)
        )
        return [(t, s) for t, s in result]

    async def get_cursor(self, tenant: str, tx: AsyncSession) -> int | None:
        row = await tx.get(PullCursor, tenant)
        return None if row is None else row.sequence

    async def set_cursor(self, tenant: str, sequence: int, tx: AsyncSession) -> None:
        row = await tx.get(PullCursor, tenant)
        if row is None:
            tx.add(PullCursor(tenant=tenant, sequence=sequence))
        else:
            row.sequence = sequence

    async def drop_tenant(self, tenant: str, tx: AsyncSession) -> None:
        tables = (ResourceVersion, PullCursor, UserAccess, Gate, GateMember)
        for table in tables:
            await tx.execute(delete(table).where(table.tenant == tenant))
        # The bulk deletes bypass the identity map; drop what it still holds of the tenant.
        for obj in list(tx.identity_map.values()):
            if isinstance(obj, tables) and obj.tenant == tenant:
                tx.expunge(obj)

    # --- access ------------------------------------------------------------------------------

    def _insert(self, tx: AsyncSession, table: type[_Base]) -> Any:
        dialect = tx.bind.dialect.name
        if dialect == "postgresql":
            return postgresql.insert(table)
        if dialect == "sqlite":
            return sqlite.insert(table)
        raise NotImplementedError(f"SqlStore supports PostgreSQL and SQLite, not {dialect}")

    async def lock_access(self, tenant: str, user_ids: list[str], tx: AsyncSession) -> dict[str, AccessState]:
        # One statement per chunk: insert the missing rows, and "update" the present ones to
        # themselves, which locks them (PostgreSQL; on SQLite the IMMEDIATE transaction
        # already holds the write lock) and returns every row's current values.
        states: dict[str, AccessState] = {}
        for chunk in _chunks(list(dict.fromkeys(user_ids))):
            insert = self._insert(tx, UserAccess).values(
                [{"tenant": tenant, "user_id": u, "present": False, "active": False, "granted": False} for u in chunk]
            )
            upsert = insert.on_conflict_do_update(
                index_elements=[UserAccess.tenant, UserAccess.user_id], set_={"present": UserAccess.present}
            ).returning(UserAccess.user_id, UserAccess.present, UserAccess.active, UserAccess.granted)
            for user_id, present, active, granted in await tx.execute(upsert):
                states[user_id] = AccessState(present=present, active=active, granted=granted)
        return {u: states.get(u, AccessState()) for u in user_ids}

    async def put_access(self, tenant: str, user_id: str, state: AccessState, tx: AsyncSession) -> None:
        insert = self._insert(tx, UserAccess).values(
            tenant=tenant, user_id=user_id, present=state.present, active=state.active, granted=state.granted
        )
        await tx.execute(
            insert.on_conflict_do_update(
                index_elements=[UserAccess.tenant, UserAccess.user_id],
                set_={"present": state.present, "active": state.active, "granted": state.granted},
            )
        )

    async def access_of(self, tenant: str, user_id: str, tx: AsyncSession) -> AccessState | None:
        row = (
            await tx.execute(
                select(UserAccess.present, UserAccess.active, UserAccess.granted).where(
                    UserAccess.tenant == tenant, UserAccess.user_id == user_id
                )
            )
        ).first()
        return None if row is None else AccessState(present=row[0], active=row[1], granted=row[2])

    async def granted_users(self, tenant: str, tx: AsyncSession) -> list[str]:
        result = await tx.scalars(
            select(UserAccess.user_id)
            .where(UserAccess.tenant == tenant, UserAccess.granted.is_(True))
            .order_by(UserAccess.user_id)
        )
        return list(result)

    async def gate_members(self, tenant: str, group_id: str, tx: AsyncSession) -> set[str] | None:
        gate = await tx.scalar(select(Gate.group_id).where(Gate.tenant == tenant, Gate.group_id == group_id))
        if gate is None:
            return None
        result = await tx.scalars(
            select(GateMember.member_id).where(GateMember.tenant == tenant, GateMember.group_id == group_id)
        )
        return set(result)

    async def set_gate(self, tenant: str, group_id: str, members: set[str] | None, tx: AsyncSession) -> None:
        await tx.execute(delete(GateMember).where(GateMember.tenant == tenant, GateMember.group_id == group_id))
        if members is None:
            await tx.execute(delete(Gate).where(Gate.tenant == tenant, Gate.group_id == group_id))
            return
        await tx.execute(self._insert(tx, Gate).values(tenant=tenant, group_id=group_id).on_conflict_do_nothing())
        await self.change_gate_members(tenant, group_id, members, set(), tx)

    async def change_gate_members(
        self, tenant: str, group_id: str, added: set[str], removed: set[str], tx: AsyncSession
    ) -> None:
        for chunk in _chunks(sorted(removed)):
            await tx.execute(
                delete(GateMember).where(
                    GateMember.tenant == tenant, GateMember.group_id == group_id, GateMember.member_id.in_(chunk)
                )
            )
        for chunk in _chunks(sorted(added - removed)):
            rows = [{"tenant": tenant, "group_id": group_id, "member_id": m} for m in chunk]
            await tx.execute(self._insert(tx, GateMember).values(rows).on_conflict_do_nothing())

    async def in_gates(self, tenant: str, user_ids: list[str], tx: AsyncSession) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(user_ids):
            result = await tx.scalars(
                select(GateMember.member_id)
                .where(GateMember.tenant == tenant, GateMember.member_id.in_(chunk))
                .distinct()
            )
            found.update(result)
        return found

    # --- deferred effects ----------------------------------------------------------------

    async def add_effect(self, tenant: str, kind: str, key: str, payload: dict[str, Any], tx: AsyncSession) -> None:
        now = datetime.now(timezone.utc)
        insert = self._insert(tx, AppEffect).values(
            tenant=tenant, kind=kind, key=key, payload=payload, created_at=now, attempts=0, due_at=now
        )
        await tx.execute(insert.on_conflict_do_nothing(index_elements=[AppEffect.key]))

    async def claim_effects(self, now: datetime, lease_until: datetime, limit: int) -> list[Effect]:
        async with self.transaction() as tx:
            due = (
                select(AppEffect.id)
                .where(AppEffect.due_at <= now)
                .order_by(AppEffect.due_at, AppEffect.id)
                .limit(limit)
            )
            if tx.bind.dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True)
            ids = list(await tx.scalars(due))
            if not ids:
                return []
            rows = await tx.execute(
                update(AppEffect)
                .where(AppEffect.id.in_(ids))
                .values(due_at=lease_until, attempts=AppEffect.attempts + 1)
                .returning(AppEffect.id, AppEffect.tenant, AppEffect.kind, AppEffect.key, AppEffect.payload, AppEffect.attempts)
                .execution_options(synchronize_session=False)
            )
            return sorted((Effect(*row) for row in rows), key=lambda e: e.id)

    async def settle_effect(
        self, effect_id: int, *, error: str | None, retry_at: datetime | None, attempt: int
    ) -> None:
        values: dict[str, Any] = {"last_error": error, "due_at": retry_at}
        if error is None:
            values["done_at"] = datetime.now(timezone.utc)
        async with self.transaction() as tx:
            await tx.execute(
                update(AppEffect)
                .where(AppEffect.id == effect_id, AppEffect.attempts == attempt, AppEffect.done_at.is_(None))
                .values(**values)
                .execution_options(synchronize_session=False)
            )

    async def list_effects(self, *, dead: bool) -> list[dict[str, Any]]:
        condition = AppEffect.due_at.is_(None) if dead else AppEffect.due_at.is_not(None)
        async with self.transaction() as tx:
            rows = await tx.execute(
                select(
                    AppEffect.id, AppEffect.tenant, AppEffect.kind, AppEffect.key, AppEffect.payload,
                    AppEffect.attempts, AppEffect.last_error, AppEffect.created_at,
                )
                .where(AppEffect.done_at.is_(None), condition)
                .order_by(AppEffect.id)
            )
            return [dict(row._mapping) for row in rows]

    async def retry_dead(self) -> int:
        async with self.transaction() as tx:
            result = await tx.execute(
                update(AppEffect)
                .where(AppEffect.done_at.is_(None), AppEffect.due_at.is_(None))
                .values(due_at=datetime.now(timezone.utc), attempts=0)
                .execution_options(synchronize_session=False)
            )
            return int(result.rowcount or 0)

    async def prune_processed(self, before: datetime) -> int:
        """Delete dedupe rows recorded before `before` (older than any redelivery)."""
        async with self.transaction() as tx:
            result = await tx.execute(delete(ProcessedEvent).where(ProcessedEvent.recorded_at < before))
            # Performed effects are kept as long, so a key deferred again is still recognised.
            await tx.execute(delete(AppEffect).where(AppEffect.done_at < before))
            await tx.execute(delete(StartedAttempt).where(StartedAttempt.recorded_at < before))
            return int(result.rowcount or 0)
