"""The consumer's memory: processed event ids, per-resource versions, pull cursors.

`Store` is the protocol; `MemoryStore` keeps everything in the process (tests, apps whose
state is rebuilt at start), `scimbus_consumer.sql_store.SqlStore` keeps it in the app's own
database, in the app's own transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Protocol, runtime_checkable

from .access import AccessState
from .effects import Effect


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

    async def note_attempt(self, event_id: str) -> int:
        """In a transaction of its own: count one more started attempt of a redelivered
        event; returns the count."""
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
        """Forget the tenant's states, cursor, access and gates (processed ids stay: they are
        unique)."""
        ...

    # --- deferred effects (see `scimbus_consumer.effects`) ----------------------------------

    async def add_effect(self, tenant: str, kind: str, key: str, payload: dict[str, Any], tx: Any) -> None:
        """Add an effect in `tx`; a key already present is kept as it is."""
        ...

    async def claim_effects(self, now: datetime, lease_until: datetime, limit: int) -> list[Effect]:
        """In a transaction of its own: the due effects (oldest first, up to `limit`), each
        leased until `lease_until` and its attempt counted."""
        ...

    async def settle_effect(
        self, effect_id: int, *, error: str | None, retry_at: datetime | None, attempt: int
    ) -> None:
        """Done (`error` None), retry at `retry_at`, or dead (an error and no retry) — unless
        the effect is done already or a later attempt claimed it (a late settlement of an
        attempt that outlived its lease changes nothing)."""
        ...

    async def list_effects(self, *, dead: bool) -> list[dict[str, Any]]:
        """Pending or dead effects, oldest first, with their attempts and last error."""
        ...

    async def retry_dead(self) -> int:
        """Make every dead effect due again (attempts from zero); returns how many."""
        ...

    # --- access (see `scimbus_consumer.access`) ---------------------------------------------

    async def lock_access(self, tenant: str, user_ids: list[str], tx: Any) -> dict[str, AccessState]:
        """Lock the users' access records until `tx` ends (in `user_ids` order, which callers
        sort) and return them; a user without one gets `AccessState()`."""
        ...

    async def put_access(self, tenant: str, user_id: str, state: AccessState, tx: Any) -> None: ...

    async def access_of(self, tenant: str, user_id: str, tx: Any) -> AccessState | None:
        """The user's access record without locking it (None: never seen)."""
        ...

    async def granted_users(self, tenant: str, tx: Any) -> list[str]:
        """Users of the tenant whose access is granted."""
        ...

    async def gate_members(self, tenant: str, group_id: str, tx: Any) -> set[str] | None:
        """The members of a gating group, or None when the group is not one."""
        ...

    async def set_gate(self, tenant: str, group_id: str, members: set[str] | None, tx: Any) -> None:
        """Make the group a gate with exactly `members`, or (None) forget it as a gate."""
        ...

    async def change_gate_members(self, tenant: str, group_id: str, added: set[str], removed: set[str], tx: Any) -> None: ...

    async def in_gates(self, tenant: str, user_ids: list[str], tx: Any) -> set[str]:
        """Which of `user_ids` are members of at least one gating group of the tenant."""
        ...


@dataclass
class _MemoryTx:
    processed: set[str] = field(default_factory=set)
    states: dict[tuple[str, str], ResourceState] = field(default_factory=dict)
    cursors: dict[str, int] = field(default_factory=dict)
    dropped: set[str] = field(default_factory=set)
    # Access and gates are written through, under per-user locks held until the end of the
    # transaction, and undone when it fails.
    held: dict[tuple[str, str], asyncio.Lock] = field(default_factory=dict)
    undo: list[Callable[[], None]] = field(default_factory=list)
    committed: list[Callable[[], None]] = field(default_factory=list)


class MemoryStore:
    """A `Store` in process memory. Writes are buffered per transaction and applied on a
    normal exit, so a failed handler leaves no trace. `Context.session` is the buffer."""

    def __init__(self) -> None:
        self.processed: dict[str, datetime] = {}
        self.states: dict[tuple[str, str], ResourceState] = {}
        self.cursors: dict[str, int] = {}
        self.access: dict[tuple[str, str], AccessState] = {}
        self.gates: dict[tuple[str, str], set[str]] = {}
        self._access_locks: dict[tuple[str, str], asyncio.Lock] = {}
        self.attempts: dict[str, int] = {}
        self.effects: dict[int, dict[str, Any]] = {}
        self._next_effect = 0
        self._effect_keys: dict[str, int] = {}

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_MemoryTx]:
        tx = _MemoryTx()
        try:
            yield tx
        except BaseException:
            for undo in reversed(tx.undo):
                undo()
            raise
        else:
            now = datetime.now(timezone.utc)
            for tenant in tx.dropped:
                self._drop(tenant)
            for event_id in tx.processed:
                self.processed[event_id] = now
            self.states.update(tx.states)
            self.cursors.update(tx.cursors)
            for then in tx.committed:
                then()
        finally:
            for lock in tx.held.values():
                lock.release()

    async def lock(self, tenant: str, subject: str, tx: _MemoryTx) -> None:
        """Nothing to do: a `MemoryStore` belongs to one process, whose consumer already
        runs one resource's events one at a time. Several processes need a shared store."""

    def _drop(self, tenant: str) -> None:
        for table in (self.states, self.access, self.gates):
            for key in [k for k in table if k[0] == tenant]:
                del table[key]
        self.cursors.pop(tenant, None)

    def _set(self, table: dict[Any, Any], key: Any, value: Any, tx: _MemoryTx) -> None:
        """Write through, remembering how to undo it."""
        missing = object()
        old = table.get(key, missing)
        tx.undo.append(lambda: table.pop(key, None) if old is missing else table.__setitem__(key, old))
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value

    async def is_processed(self, event_id: str, tx: _MemoryTx) -> bool:
        return event_id in self.processed or event_id in tx.processed

    async def note_attempt(self, event_id: str) -> int:
        self.attempts[event_id] = self.attempts.get(event_id, 0) + 1
        return self.attempts[event_id]

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

    async def lock_access(self, tenant: str, user_ids: list[str], tx: _MemoryTx) -> dict[str, AccessState]:
        for user_id in user_ids:
            key = (tenant, user_id)
            if key not in tx.held:
                lock = self._access_locks.setdefault(key, asyncio.Lock())
                await lock.acquire()
                tx.held[key] = lock
        return {u: self.access.get((tenant, u), AccessState()) for u in user_ids}

    async def put_access(self, tenant: str, user_id: str, state: AccessState, tx: _MemoryTx) -> None:
        self._set(self.access, (tenant, user_id), state, tx)

    async def access_of(self, tenant: str, user_id: str, tx: _MemoryTx) -> AccessState | None:
        return self.access.get((tenant, user_id))

    async def granted_users(self, tenant: str, tx: _MemoryTx) -> list[str]:
        return sorted(u for (t, u), st in self.access.items() if t == tenant and st.granted)

    async def gate_members(self, tenant: str, group_id: str, tx: _MemoryTx) -> set[str] | None:
        members = self.gates.get((tenant, group_id))
        return None if members is None else set(members)

    async def set_gate(self, tenant: str, group_id: str, members: set[str] | None, tx: _MemoryTx) -> None:
        self._set(self.gates, (tenant, group_id), None if members is None else set(members), tx)

    async def change_gate_members(
        self, tenant: str, group_id: str, added: set[str], removed: set[str], tx: _MemoryTx
    ) -> None:
        members = self.gates.get((tenant, group_id))
        if members is not None:
            self._set(self.gates, (tenant, group_id), (members | added) - removed, tx)

    async def in_gates(self, tenant: str, user_ids: list[str], tx: _MemoryTx) -> set[str]:
        wanted = set(user_ids)
        found: set[str] = set()
        for (t, _), members in self.gates.items():
            if t == tenant:
                found |= members & wanted
        return found

    async def add_effect(self, tenant: str, kind: str, key: str, payload: dict[str, Any], tx: _MemoryTx) -> None:
        if key in self._effect_keys:
            return
        self._next_effect += 1
        effect_id = self._next_effect
        # Not due before the transaction commits (set then); undone with it otherwise.
        row = {
            "id": effect_id, "tenant": tenant, "kind": kind, "key": key, "payload": dict(payload), "attempts": 0,
            "due_at": datetime.max.replace(tzinfo=timezone.utc), "done": False, "dead": False, "last_error": None,
        }
        self._set(self._effect_keys, key, effect_id, tx)
        self._set(self.effects, effect_id, row, tx)
        tx.committed.append(lambda: row.__setitem__("due_at", datetime.now(timezone.utc)))

    async def claim_effects(self, now: datetime, lease_until: datetime, limit: int) -> list[Effect]:
        due = [r for r in self.effects.values() if not r["done"] and not r["dead"] and r["due_at"] <= now][:limit]
        claimed = []
        for row in due:
            row["attempts"] += 1
            row["due_at"] = lease_until
            claimed.append(Effect(row["id"], row["tenant"], row["kind"], row["key"], dict(row["payload"]), row["attempts"]))
        return claimed

    async def settle_effect(
        self, effect_id: int, *, error: str | None, retry_at: datetime | None, attempt: int
    ) -> None:
        row = self.effects[effect_id]
        if row["done"] or row["attempts"] != attempt:
            return
        row["last_error"] = error
        if error is None:
            row["done"] = True
        elif retry_at is None:
            row["dead"] = True
        else:
            row["due_at"] = retry_at

    async def list_effects(self, *, dead: bool) -> list[dict[str, Any]]:
        return [dict(r) for r in self.effects.values() if not r["done"] and r["dead"] == dead]

    async def retry_dead(self) -> int:
        dead = [r for r in self.effects.values() if r["dead"]]
        for row in dead:
            row.update(dead=False, attempts=0, due_at=datetime.now(timezone.utc))
        return len(dead)
