"""The consumer's memory: processed event ids, per-resource versions, pull cursors.

`Store` is the protocol; `MemoryStore` keeps everything in the process (tests, apps whose
state is rebuilt at start), `scimbus_consumer.sql_store.SqlStore` keeps it in the app's own
database, in the app's own transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class ResourceState:
    """What the consumer has applied of one resource (`tenant` + `subject`).

    `version` 0 means nothing applied yet. `from_snapshot` says the state at `version` came
    from a snapshot, so it already holds every event of that version (group events share a
    version when one write changes attributes and members, or is split into chunks).
    """

    version: int = 0
    from_snapshot: bool = False
    deleted: bool = False
    needs_resync: bool = False


@runtime_checkable
class Store(Protocol):
    """What the consumer needs to remember. Every method that takes `tx` runs inside the
    transaction `transaction()` yielded; the consumer hands the same `tx` to the handler
    (`Context.session`), so the handler's writes and the store's commit together."""

    def transaction(self) -> Any:
        """An async context manager yielding a transaction handle; commits on normal exit,
        rolls back on an exception."""
        ...

    async def lock(self, tenant: str, subject: str, tx: Any) -> None:
        """Hold the resource's lock until `tx` ends, so that every process sharing the store
        judges and applies one resource's events one at a time, each seeing what the last
        committed. A `Tenants/<slug>` subject takes its tenant's lock exclusively; any other
        subject takes it shared (a tenant's deletion waits for its resources' transactions
        and they for it)."""
        ...

    async def is_processed(self, event_id: str, tx: Any) -> bool: ...

    async def record(self, event_id: str, tx: Any) -> None:
        """Remember `event_id` as processed, inside `tx`."""
        ...

    async def get_state(self, tenant: str, subject: str, tx: Any) -> ResourceState | None: ...

    async def put_state(self, tenant: str, subject: str, state: ResourceState, tx: Any) -> None: ...

    async def subjects(self, tenant: str, tx: Any) -> list[str]:
        """Subjects of the tenant with a state that is not deleted."""
        ...

    async def needing_resync(self, tx: Any) -> list[tuple[str, str]]:
        """(tenant, subject) of every resource marked for resync."""
        ...

    async def get_cursor(self, tenant: str, tx: Any) -> int | None: ...

    async def set_cursor(self, tenant: str, sequence: int, tx: Any) -> None: ...

    async def drop_tenant(self, tenant: str, tx: Any) -> None:
        """Forget the tenant's states and cursor (processed ids stay: they are unique)."""
        ...


@dataclass
class _MemoryTx:
    processed: set[str] = field(default_factory=set)
    states: dict[tuple[str, str], ResourceState] = field(default_factory=dict)
    cursors: dict[str, int] = field(default_factory=dict)
    dropped: set[str] = field(default_factory=set)


class MemoryStore:
    """A `Store` in process memory. Writes are buffered per transaction and applied on a
    normal exit, so a failed handler leaves no trace. `Context.session` is the buffer."""

    def __init__(self) -> None:
        self.processed: dict[str, datetime] = {}
        self.states: dict[tuple[str, str], ResourceState] = {}
        self.cursors: dict[str, int] = {}

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_MemoryTx]:
        tx = _MemoryTx()
        yield tx
        now = datetime.now(timezone.utc)
        for tenant in tx.dropped:
            self._drop(tenant)
        for event_id in tx.processed:
            self.processed[event_id] = now
        self.states.update(tx.states)
        self.cursors.update(tx.cursors)

    async def lock(self, tenant: str, subject: str, tx: _MemoryTx) -> None:
        """Nothing to do: a `MemoryStore` belongs to one process, whose consumer already
        runs one resource's events one at a time. Several processes need a shared store."""

    def _drop(self, tenant: str) -> None:
        for key in [k for k in self.states if k[0] == tenant]:
            del self.states[key]
        self.cursors.pop(tenant, None)

    async def is_processed(self, event_id: str, tx: _MemoryTx) -> bool:
        return event_id in self.processed or event_id in tx.processed

    async def record(self, event_id: str, tx: _MemoryTx) -> None:
        tx.processed.add(event_id)

    async def get_state(self, tenant: str, subject: str, tx: _MemoryTx) -> ResourceState | None:
        key = (tenant, subject)
        if key in tx.states:
            return tx.states[key]
        if tenant in tx.dropped:
            return None
        return self.states.get(key)

    async def put_state(self, tenant: str, subject: str, state: ResourceState, tx: _MemoryTx) -> None:
        tx.states[(tenant, subject)] = replace(state)

    async def subjects(self, tenant: str, tx: _MemoryTx) -> list[str]:
        merged = {**self.states, **tx.states}
        return sorted(s for (t, s), st in merged.items() if t == tenant and not st.deleted)

    async def needing_resync(self, tx: _MemoryTx) -> list[tuple[str, str]]:
        merged = {**self.states, **tx.states}
        return sorted(k for k, st in merged.items() if st.needs_resync)

    async def get_cursor(self, tenant: str, tx: _MemoryTx) -> int | None:
        if tenant in tx.cursors:
            return tx.cursors[tenant]
        if tenant in tx.dropped:
            return None
        return self.cursors.get(tenant)

    async def set_cursor(self, tenant: str, sequence: int, tx: _MemoryTx) -> None:
        tx.cursors[tenant] = sequence

    async def drop_tenant(self, tenant: str, tx: _MemoryTx) -> None:
        tx.dropped.add(tenant)
        for key in [k for k in tx.states if k[0] == tenant]:
            del tx.states[key]
        tx.cursors.pop(tenant, None)
