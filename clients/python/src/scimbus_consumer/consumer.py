"""The consumer: one durable quorum queue per app on scimbus's topic exchange, or, without a
broker, long-polls of scimbus's pull API per tenant; per-resource ordering, version tracking
with resync on gaps, dedupe by event id, retries in place then dead-lettering, catch-up
through the pull API at start, and tenants followed as an application credential gains them."""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import aio_pika
from aio_pika.abc import (
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractQueueIterator,
    AbstractRobustChannel,
    AbstractRobustConnection,
)
from aiormq.exceptions import ChannelInvalidStateError, ChannelPreconditionFailed
from pydantic import ValidationError

from .access import AccessChange, AccessReason, AccessState, Gating, decide_access, reason_for
from .effects import Effects, Performer
from .metrics import Metrics
from .lanes import KeyedLanes
from .models import (
    DELETIONS,
    EVENT_MODELS,
    SNAPSHOTS,
    Envelope,
    GroupCreated,
    GroupDeleted,
    GroupMembersAdded,
    GroupMembersRemoved,
    GroupSnapshot,
    GroupUpdated,
    TenantDeleted,
    UserCreated,
    UserDeactivated,
    UserDeleted,
    UserReactivated,
    UserSnapshot,
    UserUpdated,
    parse_event,
    routing_key,
)
from .pull import MAX_WAIT, EventPage, Gone, PullClient
from .store import MemoryStore, ResourceState, Store
from .tracing import Tracing

log = logging.getLogger("scimbus_consumer")

Origin = Literal["broker", "pull", "snapshot", "resync", "reconcile", "replay", "sets"]
VERSIONED_RESOURCES = ("Users", "Groups")
# The store lock taken to move a tenant's pull cursor: a key of its own beside the resources',
# so that two processes cannot both read a cursor and the later write move it back.
CURSOR_LOCK = "Cursors/pull"


class Outcome(enum.Enum):
    """What `Consumer.handle` did with an event."""

    APPLIED = "applied"
    """The handlers ran and the event's version (if any) is now the resource's."""
    DUPLICATE = "duplicate"
    """The event id was processed before; nothing ran."""
    STALE = "stale"
    """Not newer than what is applied (or the resource/tenant is deleted); nothing ran."""
    RESYNCED = "resynced"
    """The event showed a gap; the resource's snapshot was applied instead, covering it."""


class HandlerFailed(Exception):
    """Processing an event failed `max_attempts` times; the resource is marked for resync."""

    def __init__(self, event: Envelope, cause: BaseException) -> None:
        super().__init__(f"{event.type} {event.id} ({event.tenant}/{event.subject}) failed: {cause!r}")
        self.event = event
        self.cause = cause


@dataclass
class DeadLetter:
    """A message of the dead-letter queue."""

    body: bytes
    reason: str | None
    """Why the broker dead-lettered it (`rejected`, `delivery_limit`, …) from `x-death`."""
    event: Envelope | None = None
    error: str | None = None
    outcome: Outcome | None = None
    """After a replay that succeeded."""


def _death_reason(message: AbstractIncomingMessage) -> str | None:
    deaths = (message.headers or {}).get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        reason = deaths[0].get("reason")
        return reason.decode() if isinstance(reason, bytes) else str(reason) if reason is not None else None
    return None


@dataclass
class Divergence:
    """One resource whose local state differed from scimbus's snapshot."""

    tenant: str
    subject: str
    why: str
    """`behind` (an older version applied), `missing` (never applied or deleted here),
    `extra` (deleted in scimbus, not here) or `verify` (the app's verifier said it differs)."""
    repaired: bool = False


@dataclass
class ReconcileReport:
    checked: int = 0
    divergences: list[Divergence] = field(default_factory=list)

    @property
    def repaired(self) -> int:
        return sum(1 for d in self.divergences if d.repaired)


class _ResyncFirst(Exception):
    """Inside an event's transaction: the resource is marked for resync, do that first."""


class _Progress:
    """Per tenant, the pull cursor as queue deliveries settle: the highest sequence up to
    which every event was settled, whatever order they settled in. Restarts then catch up
    from there (what was missed) instead of from the last start (the uptime)."""

    def __init__(self) -> None:
        self.cursor: dict[str, int] = {}
        self._done: dict[str, set[int]] = {}
        self.dirty: set[str] = set()

    def start(self, tenant: str, cursor: int) -> None:
        """The tenant's cursor is `cursor` (after a catch-up); deliveries past it count."""
        if cursor >= self.cursor.get(tenant, -1):
            self.cursor[tenant] = cursor
            self._done[tenant] = {s for s in self._done.get(tenant, set()) if s > cursor}
            self._advance(tenant)

    def settle(self, tenant: str, sequence: int) -> None:
        if tenant not in self.cursor or sequence <= self.cursor[tenant]:
            return
        self._done[tenant].add(sequence)
        self._advance(tenant)

    def gaps(self) -> dict[str, int]:
        """Tenants whose cursor waits for a sequence while later ones are settled: the
        cursor of each."""
        return {t: c for t, c in self.cursor.items() if self._done.get(t) and min(self._done[t]) > c + 1}

    def skip_to(self, tenant: str, sequence: int) -> None:
        """Sequences up to `sequence` will never be delivered (the pull API does not serve
        them: discarded by an operator): the cursor may pass them."""
        if tenant in self.cursor and sequence > self.cursor[tenant]:
            self.cursor[tenant] = sequence
            self._done[tenant] = {s for s in self._done[tenant] if s > sequence}
            self.dirty.add(tenant)
            self._advance(tenant)

    def _advance(self, tenant: str) -> None:
        done, cursor = self._done[tenant], self.cursor[tenant]
        start = cursor
        while cursor + 1 in done:
            cursor += 1
            done.discard(cursor)
        if cursor != start:
            self.cursor[tenant] = cursor
            self.dirty.add(tenant)


@dataclass(frozen=True)
class Status:
    """`Consumer.status()`."""

    state: str
    """`connecting` (the broker, or in pull-only mode the tenant listing, cannot be reached
    yet), `catching_up` (through the pull API), `consuming`, `reconnecting` (consuming, but
    the broker connection is down now; in pull-only mode: a tenant's pulls fail now),
    `stopped`, or `failed` (a configuration error, see `last_error`)."""
    broker_connected: bool
    ready: bool
    """Consuming over a live broker connection; in pull-only mode, consuming with every
    followed tenant's last pull successful."""
    last_error: str | None
    last_applied_at: datetime | None
    """When this process last settled an event."""
    lag_seconds: float | None
    """Now minus the `time` of the newest event settled: how far behind scimbus the app is
    when events keep coming (it grows while none come, so read it with `last_applied_at`)."""
    transport: Literal["broker", "pull", "sets"]
    """How events arrive: the app's queue, long-polls of the pull API (pull-only mode), or
    security event tokens handed in from outside (`external`, `scimbus_consumer.sets`)."""


@dataclass(frozen=True)
class TenantChanges:
    """What one round of `Consumer.refresh_tenants()` changed."""

    added: list[str]
    """Tenants followed from now on (from their first event, or their stored cursor)."""
    removed: list[str]
    """Tenants no longer followed: gone from the listing, or deleted (then read through
    their `scimbus.tenant.deleted` once more, when the app holds anything of them)."""


def default_routing_keys(tenants: Iterable[str], *, all_tenants: bool = False) -> list[str]:
    """The bindings that follow `tenants`: each one's user, group and tenant events, or,
    for a credential covering every tenant, the same for any tenant (`*.user.*`, …), so a
    tenant created later has its events in the queue from its first one on."""
    if all_tenants:
        return ["*.user.*", "*.group.*", "*.tenant.*"]
    return [k for t in tenants for k in (f"{t}.user.*", f"{t}.group.*", f"{t}.tenant.*")]


def _redact(url: str) -> str:
    """The URL without its password."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"


class QueueMismatch(Exception):
    """The app's queue exists with other arguments than the consumer declares (e.g. it was
    made before single-active-consumer was the default): RabbitMQ cannot change them."""


class VersionGap(Exception):
    """A delta's version is still not the next one after a resync."""


@dataclass(frozen=True)
class Context:
    """What a handler gets beside the event."""

    session: Any
    """The store's transaction: an `AsyncSession` for `SqlStore` (write through it, do not
    commit), an in-memory buffer for `MemoryStore`."""
    tenant: str
    subject: str
    origin: Origin
    """Where the event came from: the queue, the pull API, a bootstrap snapshot page, or a
    resync of one resource."""
    force: bool
    """True while a forced bootstrap applies snapshots whatever their version (after the
    app's database was restored)."""
    attempt: int


@dataclass(frozen=True)
class ResourceGone:
    """A resync found that the resource no longer exists (the pull API answered 404)."""

    tenant: str
    subject: str

    @property
    def resource_type(self) -> str:
        return self.subject.split("/", 1)[0]

    @property
    def resource_id(self) -> str:
        return self.subject.split("/", 1)[1]


Handler = Callable[[Any, Context], Awaitable[Any]]


class _Decision(enum.Enum):
    APPLY = 1
    STALE = 2
    GAP = 3


def topic_matches(pattern: str, key: str) -> bool:
    """AMQP topic matching: `*` is one word, `#` zero or more."""
    words, parts = pattern.split("."), key.split(".")

    def match(i: int, j: int) -> bool:
        if i == len(words):
            return j == len(parts)
        if words[i] == "#":
            return any(match(i + 1, k) for k in range(j, len(parts) + 1))
        if j == len(parts):
            return False
        return words[i] in ("*", parts[j]) and match(i + 1, j + 1)

    return match(0, 0)


def _versioned(event: Envelope) -> bool:
    return event.version is not None and event.resource_type in VERSIONED_RESOURCES


def _redelivered(message: AbstractIncomingMessage) -> bool:
    count = (message.headers or {}).get("x-delivery-count")
    return bool(message.redelivered) or (isinstance(count, int) and count > 0)


def decide(event: Envelope, state: ResourceState, *, force: bool = False, refresh: bool = False) -> _Decision:
    """The version rule for one event against what is applied of its resource.

    Snapshots apply when newer, or at the same version when that version was reached by
    deltas (a group's version can span several events, so the snapshot completes it), or
    always when `force`. Deltas apply when they bring the next version; a group event at the
    current version is another part of the same change (attributes plus members, or a
    further chunk) unless a snapshot already covered that version; older is stale; further
    ahead (or chunk > 1 of a version not started) is a gap.
    """
    version = event.version
    assert version is not None
    if event.type in SNAPSHOTS:
        if force or version > state.version or (version == state.version and (refresh or not state.from_snapshot)):
            return _Decision.APPLY
        return _Decision.STALE
    if state.deleted or version < state.version:
        return _Decision.STALE
    if version == state.version:
        same_step = event.resource_type == "Groups" and event.type != "scimbus.group.created"
        return _Decision.APPLY if same_step and not state.from_snapshot else _Decision.STALE
    if version == state.version + 1:
        if isinstance(event, (GroupMembersAdded, GroupMembersRemoved)) and event.data.chunk.index > 1:
            return _Decision.GAP
        return _Decision.APPLY
    return _Decision.GAP


class Consumer:
    """Consumes scimbus events for one app.

    With `amqp_url`, declares `queue` (durable, `x-queue-type: quorum`, dead-lettering to
    `<queue>.dlx`, a fanout exchange bound to the quorum queue `<queue>.dlq`) and binds it to
    `exchange` with `routing_keys`. Without (`amqp_url=None`, pull-only mode), `pull` is
    required and each followed tenant is read by long-polls of the pull API (`poll_wait`
    seconds each); RabbitMQ is never contacted.

    Which tenants, which bindings:

    - `routing_keys` given: bound as given, never changed; they also filter what catch-up
      and long-polls apply.
    - otherwise `tenants` given: `<t>.user.*`, `<t>.group.*`, `<t>.tenant.*` for each.
    - otherwise the pull client's per-tenant tokens: the same for each token's tenant.
    - otherwise the pull client's application credential: tenants are listed at start and
      every `tenant_refresh_interval` seconds; a credential covering every tenant binds
      `*.user.*`, `*.group.*`, `*.tenant.*` (new tenants' events arrive by themselves), one
      covering a set binds each listed tenant's keys, binding a new tenant's and unbinding
      those that left the listing at each refresh.

    The tenants followed (caught up; in pull-only mode, long-polled) are the pull client's:
    its tokens' tenants, or those its application credential lists, limited to `tenants`
    when given. With an application credential the listing is refreshed whatever was
    given, so a tenant created later (and in `tenants`, when given) is followed without a
    restart, from its first event (`scimbus.tenant.created`). Bindings of a tenant that left
    the credential while the app was stopped stay on the queue (remove them with
    `rabbitmqctl`).

    With the OpenTelemetry API installed (extra `otel`), each attempt at an event runs in a
    CONSUMER span `process <type>` whose parent is the event's `traceparent` (the SCIM
    request's span in scimbus), on `tracer_provider` (default: the global provider).
    """

    def __init__(
        self,
        *,
        amqp_url: str | None = None,
        queue: str | None = None,
        routing_keys: Iterable[str] | None = None,
        tenants: Iterable[str] | None = None,
        exchange: str = "scimbus.events",
        declare_exchange: bool = False,
        store: Store | None = None,
        pull: PullClient | None = None,
        max_attempts: int = 5,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        prefetch_count: int = 64,
        queue_arguments: dict[str, Any] | None = None,
        auto_delete_dead_letter_exchange: bool = False,
        reconnect_interval: float = 5.0,
        catch_up: bool = True,
        page_limit: int = 100,
        drain_timeout: float = 30.0,
        dedupe_retention: timedelta | None = timedelta(days=14),
        prune_interval: float = 3600.0,
        single_active_consumer: bool = True,
        delivery_limit: int | None = 20,
        crash_limit: int | None = 3,
        max_queue_length: int | None = 1_000_000,
        gating_groups: Iterable[str] | Mapping[str, Iterable[str]] | None = None,
        effect_max_attempts: int = 10,
        metrics: Metrics | None = None,
        poll_wait: float = 30.0,
        tenant_refresh_interval: float = 30.0,
        tracer_provider: Any = None,
        external: bool = False,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if external and amqp_url is not None:
            raise ValueError("an external consumer (events handed in as SETs) has no broker: drop amqp_url")
        if amqp_url is None and pull is None and not external:
            raise ValueError("without amqp_url (pull-only mode) a pull client is required")
        if amqp_url is not None and queue is None:
            raise ValueError("with amqp_url, name the app's queue")
        if not 0 < poll_wait <= MAX_WAIT:
            raise ValueError(f"poll_wait must be more than 0 and at most {MAX_WAIT} seconds")
        self.amqp_url = amqp_url
        self.queue_name = queue
        self.exchange_name = exchange
        self.declare_exchange = declare_exchange
        self.store: Store = store if store is not None else MemoryStore()
        self.pull = pull
        # With an application credential the tenants are discovered (listed at start, then
        # every `tenant_refresh_interval` seconds), whatever else was given.
        self._discovers = pull is not None and pull.app_token is not None
        self._tenant_filter = set(tenants) if tenants else None
        tenant_list = list(tenants) if tenants is not None else (pull.tenants if pull else [])
        # The bindings follow the listing only when nothing fixed them.
        self._keys_follow_listing = self._discovers and routing_keys is None and not tenants
        # External: events are handed in (`scimbus_consumer.sets`); the pull client, if any,
        # only serves resyncs, and without tenants every tenant's events are wanted.
        self.external = external
        if routing_keys is None and external and not tenant_list:
            routing_keys = default_routing_keys([], all_tenants=True)
        if routing_keys is None:
            if not tenant_list and not self._discovers:
                raise ValueError("give routing_keys, tenants, or a pull client with tokens or an application credential")
            all_tenants = self._keys_follow_listing and pull is not None and pull.all_tenants
            routing_keys = default_routing_keys(tenant_list, all_tenants=all_tenants)
        self.routing_keys = list(routing_keys)
        self.tenants = tenant_list
        self.poll_wait = poll_wait
        self.tenant_refresh_interval = tenant_refresh_interval
        self.max_attempts = max_attempts
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.prefetch_count = prefetch_count
        self.queue_arguments = dict(queue_arguments or {})
        self.auto_delete_dead_letter_exchange = auto_delete_dead_letter_exchange
        self.reconnect_interval = reconnect_interval
        self.catch_up_at_start = catch_up
        self.page_limit = page_limit
        self.drain_timeout = drain_timeout
        # Dedupe records older than this are pruned (a store that supports it, like
        # SqlStore): longer than scimbus keeps events (7 days by default), so nothing the
        # pull API or a redelivery can bring back is forgotten. None keeps them forever.
        self.dedupe_retention = dedupe_retention
        self.prune_interval = prune_interval
        # One active consumer per queue (the broker fails over to a waiting one when it goes):
        # every process of the app may start a consumer, and each resource's events still
        # reach one of them in order, so every handler runs instead of version gaps being
        # repaired by resync. The store's resource locks cover the other paths (catch-up of
        # a process that starts, resync, a delivery still running on a dropped connection).
        self.single_active_consumer = single_active_consumer
        # A delivery that keeps coming back without being settled (the process dies in its
        # handler) is dead-lettered after this many deliveries instead of blocking its
        # resource forever. None: no limit.
        self.delivery_limit = delivery_limit
        # A redelivered event whose handling started this many times without finishing (the
        # process died in it) is dead-lettered and its resource marked for resync.
        self.crash_limit = crash_limit
        # A stopped app cannot fill the broker: past this many messages the oldest are
        # dead-lettered (quorum queues drop the head), and the dead-letter queue drops its
        # oldest. Nothing is lost while scimbus retains the events: the consumer catches up
        # through the pull API from its cursor when it starts. None: unbounded.
        self.max_queue_length = max_queue_length
        self._prune_task: asyncio.Task[None] | None = None

        # Access is granted to present, active users who (when the tenant is gated) are direct
        # members of a group with one of these display names; see `scimbus_consumer.access`.
        self.gating = Gating(gating_groups)
        # Side effects outside the app's database, performed after commit (app-side outbox).
        self.metrics = metrics or Metrics()
        self.effects = Effects(self.store, max_attempts=effect_max_attempts, metrics=self.metrics)
        # With the OpenTelemetry API installed, each attempt at an event runs in a CONSUMER
        # span continuing the event's `traceparent` (see `scimbus_consumer.tracing`).
        self.tracing = Tracing(tracer_provider, exchange=exchange if amqp_url is not None else None, queue=queue)
        self._revoked: list[Handler] = []
        self._granted: list[Handler] = []
        self._handlers: dict[str, list[Handler]] = {}
        self._catch_all: list[Handler] = []
        self._gone: list[Handler] = []
        self._verifiers: list[Callable[[Envelope, Context], Awaitable[bool]]] = []
        self._reconcile_observers: list[Callable[[ReconcileReport], Any]] = []
        self._observers: list[Callable[[Envelope, Outcome], Awaitable[Any]]] = []
        self._lanes = KeyedLanes()
        self._suspects = asyncio.Lock()
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._queue: AbstractQueue | None = None
        self._exchange: AbstractExchange | None = None
        self._bound: list[str] = []
        self._iterator: AbstractQueueIterator | None = None
        self._run_task: asyncio.Task[None] | None = None
        self._progress = _Progress()
        self._cursor_task: asyncio.Task[None] | None = None
        self.cursor_flush_interval = 5.0
        self._state = "stopped"
        self._link_up = False
        self._broker_error: str | None = None
        self._listed = False
        self._listing_error: str | None = None
        self._refresh_task: asyncio.Task[None] | None = None
        # Pull-only mode: one task per followed tenant, and the error of each whose last
        # round failed (the status is not ready while any did).
        self._follows: dict[str, asyncio.Task[None]] = {}
        self._pull_errors: dict[str, str] = {}
        # Broker mode: tenants found by a refresh whose catch-up from their first event
        # failed; the next refresh tries again.
        self._behind: set[str] = set()
        self._last_applied_at: datetime | None = None
        self._last_event_time: datetime | None = None
        self.consuming = asyncio.Event()
        """Set once catch-up is over and messages are being consumed from the queue."""
        self.catch_up_error: BaseException | None = None

    # --- registration --------------------------------------------------------------------

    def on(self, event_type: str) -> Callable[[Handler], Handler]:
        """Register `async def handler(event, ctx)` for one CloudEvents `type` (one of
        `EVENT_MODELS`; anything else raises `ValueError` here rather than never firing)."""
        if event_type not in EVENT_MODELS:
            raise ValueError(f"unknown event type {event_type!r}; known: {', '.join(sorted(EVENT_MODELS))}")

        def register(handler: Handler) -> Handler:
            self._handlers.setdefault(event_type, []).append(handler)
            return handler

        return register

    def on_any(self, handler: Handler) -> Handler:
        """Register a catch-all handler: it gets every event whose type has no handler of its own."""
        self._catch_all.append(handler)
        return handler

    def on_access_revoked(self, handler: Handler) -> Handler:
        """Register `async def handler(change: AccessChange, ctx)`: a user lost access to the
        app, on whichever path (deactivated, deleted, removed from every gating group, found
        gone or inactive by a resync or snapshot, tenant deleted, erased). Runs in the
        event's transaction, after the event's own handlers: end the user's sessions here."""
        self._revoked.append(handler)
        return handler

    def on_access_granted(self, handler: Handler) -> Handler:
        """Register `async def handler(change: AccessChange, ctx)`: a user gained access
        (provisioned, reactivated, added to a gating group)."""
        self._granted.append(handler)
        return handler

    def effect(self, kind: str) -> Callable[[Performer], Performer]:
        """Register `async def perform(effect: Effect)` for effects of `kind` deferred with
        `defer`: run after the deferring transaction committed, at least once (pass
        `effect.key` on as the idempotency key), retried with backoff until it succeeds or
        `effect_max_attempts` is reached (then it is dead: `store.list_effects(dead=True)`)."""

        def register(performer: Performer) -> Performer:
            self.effects.register(kind, performer)
            return performer

        return register

    async def defer(self, ctx: Context, kind: str, *, key: str, payload: dict[str, Any]) -> None:
        """From a handler: perform effect `kind` with `payload` once this event's transaction
        commits. `key` identifies the effect (e.g. `f"welcome/{tenant}/{user_id}"`): deferring
        a key again, as a handler run again does, adds nothing."""
        await self.store.add_effect(ctx.tenant, kind, key, payload, ctx.session)

    def verifier(
        self, verify: Callable[[Envelope, Context], Awaitable[bool]]
    ) -> Callable[[Envelope, Context], Awaitable[bool]]:
        """Register `async def verify(snapshot, ctx) -> bool` for `reconcile`: given a user or
        group snapshot, does the app's own state match it? False makes reconcile apply the
        snapshot again through the snapshot handlers (forced)."""
        self._verifiers.append(verify)
        return verify

    def on_gone(self, handler: Handler) -> Handler:
        """Register `async def handler(gone: ResourceGone, ctx)`: a resync found the resource deleted."""
        self._gone.append(handler)
        return handler

    def on_outcome(self, observer: Callable[[Envelope, Outcome], Awaitable[Any]]) -> Callable[[Envelope, Outcome], Awaitable[Any]]:
        """Register `async def observer(event, outcome)`, called after each event is settled
        (applied, duplicate, stale or resynced), outside its transaction: for metrics and tests."""
        self._observers.append(observer)
        return observer

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.queue_name}.dlx"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.queue_name}.dlq"

    @property
    def connected(self) -> bool:
        """The broker connection is up now (false during a cut, while aio-pika reconnects)."""
        return self._connection is not None and not self._connection.is_closed and self._link_up

    @property
    def pull_only(self) -> bool:
        """No broker: events come from long-polls of the pull API."""
        return self.amqp_url is None

    @property
    def _name(self) -> str:
        return self.queue_name or "pull"

    def status(self) -> Status:
        """Where the consumer stands, for readiness checks and dashboards."""
        state = self._state
        if self.pull_only:
            trouble = self._listing_error or next(iter(self._pull_errors.values()), None)
            if state == "consuming" and self._pull_errors:
                state = "reconnecting"
            last_error = trouble or self._broker_error
        else:
            if state == "consuming" and not self.connected:
                state = "reconnecting"
            last_error = self._broker_error or self._listing_error
        now = datetime.now(timezone.utc)
        lag = None if self._last_event_time is None else max(0.0, (now - self._last_event_time).total_seconds())
        return Status(
            state=state,
            broker_connected=self.connected,
            ready=state == "consuming",
            last_error=last_error,
            last_applied_at=self._last_applied_at,
            lag_seconds=lag,
            transport="sets" if self.external else "pull" if self.pull_only else "broker",
        )

    async def start(self) -> None:
        """Start consuming, in the background.

        With a broker, one attempt to reach it is made here (after listing the tenants, with
        an application credential whose listing decides the bindings), so a configuration
        error (`QueueMismatch`) is raised at once; when the broker cannot be reached, the app
        starts all the same: the consumer keeps trying every `reconnect_interval` seconds
        and, with a pull client, catches up through the pull API meanwhile. Once connected it
        declares the topology, catches up, and consumes the queue (`consuming` is set).

        Pull-only, nothing is contacted here: in the background the consumer lists the
        tenants (application credential), catches them up, resyncs marked resources, sets
        `consuming`, then follows each tenant with long-polls; failures are retried with
        backoff (`backoff_initial` … `backoff_max`) forever. `status()` says where it stands."""
        self._state = "connecting"
        if not self.pull_only:
            await self._start_broker()
        self._run_task = asyncio.create_task(self._run(), name=f"scimbus-consumer-{self._name}")
        self._run_task.add_done_callback(self._run_ended)
        if self.pull is not None and not self.pull_only:
            self._cursor_task = asyncio.create_task(self._cursor_loop(), name=f"scimbus-cursors-{self._name}")
        self.effects.start()
        if self.dedupe_retention is not None and hasattr(self.store, "prune_processed"):
            self._prune_task = asyncio.create_task(self._prune_loop(), name=f"scimbus-prune-{self._name}")

    async def _start_broker(self) -> None:
        assert self.amqp_url is not None
        if self._discovers:
            await self._refresh_quietly()
            if not self._listed:
                return  # the bindings are not known yet: the run task lists, then connects
        try:
            await self._connect()
        except QueueMismatch:
            self._state = "failed"
            raise
        except Exception as exc:  # noqa: BLE001 - the broker is down or unreachable: retried
            self._broker_error = repr(exc)
            log.warning(
                "RabbitMQ at %s cannot be reached (%r); the app starts without it and the consumer "
                "retries every %ss%s",
                _redact(self.amqp_url), exc, self.reconnect_interval,
                ", catching up through the pull API meanwhile" if self.pull is not None else "",
            )

    def _run_ended(self, task: asyncio.Task[None]) -> None:
        """Consumption stopped by itself (not by `stop()`): the status says so (readiness
        fails, so an orchestrator restarts the process) and the cause is logged."""
        if task.cancelled() or self._state in ("stopped", "failed"):
            return
        exc = task.exception()
        self._state = "failed"
        self.consuming.clear()
        self._broker_error = repr(exc) if exc is not None else "the queue iterator ended"
        log.error("consuming %s stopped: %s", self._name, self._broker_error)

    async def _connect(self) -> None:
        """Connect (robustly: aio-pika reconnects and restores the topology afterwards) and
        declare the exchange binding, the queue and the dead-letter queue."""
        assert self.amqp_url is not None
        connection = await aio_pika.connect_robust(self.amqp_url, reconnect_interval=self.reconnect_interval)
        try:
            await self._declare(connection)
        except BaseException:
            await connection.close()
            raise
        connection.close_callbacks.add(self._link_lost)
        connection.reconnect_callbacks.add(self._link_back)
        self._connection = connection
        self._link_up = True
        self._broker_error = None

    def _link_lost(self, _sender: Any, exc: BaseException | None = None) -> None:
        self._link_up = False
        if exc is not None:
            self._broker_error = repr(exc)

    def _link_back(self, _sender: Any) -> None:
        self._link_up = True
        self._broker_error = None

    async def _declare(self, connection: AbstractRobustConnection) -> None:
        channel = await connection.channel()
        assert isinstance(channel, AbstractRobustChannel)
        self._channel = channel
        await channel.set_qos(prefetch_count=self.prefetch_count)
        if self.declare_exchange:
            exchange = await channel.declare_exchange(self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)
        else:
            exchange = await channel.get_exchange(self.exchange_name, ensure=True)
        self._exchange = exchange
        dlx = await channel.declare_exchange(
            self.dead_letter_exchange,
            aio_pika.ExchangeType.FANOUT,
            durable=True,
            auto_delete=self.auto_delete_dead_letter_exchange,
        )
        bounds: dict[str, Any] = {} if self.max_queue_length is None else {"x-max-length": self.max_queue_length}
        dlq = await channel.declare_queue(
            self.dead_letter_queue,
            durable=True,
            arguments={**bounds, **self.queue_arguments, "x-queue-type": "quorum"},
        )
        await dlq.bind(dlx, routing_key="")
        arguments: dict[str, Any] = {
            **bounds,
            **self.queue_arguments,
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": self.dead_letter_exchange,
        }
        if self.single_active_consumer:
            arguments["x-single-active-consumer"] = True
        if self.delivery_limit is not None:
            arguments["x-delivery-limit"] = self.delivery_limit
        try:
            self._queue = await channel.declare_queue(self.queue_name, durable=True, arguments=arguments)
        except ChannelPreconditionFailed as exc:
            raise QueueMismatch(
                f"queue {self.queue_name!r} exists with other arguments than {arguments!r} ({exc}). "
                "Delete it (rabbitmqctl delete_queue), or declare it as it is; the consumer catches "
                "up through the pull API on its next start."
            ) from exc
        self._bound = list(self.routing_keys)
        for key in self._bound:
            await self._queue.bind(exchange, routing_key=key)

    async def flush_cursors(self) -> None:
        """Store the cursors queue deliveries advanced (never moving one back: another
        process's catch-up may have stored a later one)."""
        for tenant in list(self._progress.dirty):
            self._progress.dirty.discard(tenant)
            try:
                await self._advance_cursor(tenant, self._progress.cursor[tenant])
            except BaseException:
                self._progress.dirty.add(tenant)  # the next round tries again
                raise

    async def skip_unserved(self, gaps: Mapping[str, int] | None = None) -> None:
        """A tenant's cursor that waits for a sequence the broker will never deliver (an
        event an operator discarded from a brake's hold is never published) moves past it:
        the pull API's first event after the cursor says which sequences do not exist for
        consumers. Checked for the gaps given (default: every gap now)."""
        if self.pull is None:
            return
        for tenant, cursor in (self._progress.gaps() if gaps is None else gaps).items():
            if self._progress.cursor.get(tenant) != cursor:
                continue  # it moved meanwhile
            try:
                page = await self.pull.events(tenant, after=cursor, limit=1)
            except Gone:
                continue  # the next start catches up from the retained events
            if page.events:
                first = int(page.events[0]["sequence"])
                if first > cursor + 1:
                    log.info("tenant %s: sequences %d to %d are not served (discarded); the cursor passes them", tenant, cursor + 1, first - 1)
                    self._progress.skip_to(tenant, first - 1)

    async def _cursor_loop(self) -> None:
        gaps: dict[str, int] = {}
        while True:
            await asyncio.sleep(self.cursor_flush_interval)
            try:
                # A gap seen on two rounds in a row is not a delivery still in flight.
                lasting = {t: c for t, c in self._progress.gaps().items() if gaps.get(t) == c}
                if lasting:
                    await self.skip_unserved(lasting)
                gaps = self._progress.gaps()
                await self.flush_cursors()
            except Exception:  # noqa: BLE001 - retried next round
                log.warning("storing the pull cursors failed", exc_info=True)

    async def prune_once(self, now: datetime | None = None) -> int:
        """Deletes dedupe records older than `dedupe_retention`; returns how many went."""
        prune = getattr(self.store, "prune_processed", None)
        if self.dedupe_retention is None or prune is None:
            return 0
        now = now or datetime.now(timezone.utc)
        return int(await prune(now - self.dedupe_retention))

    async def _prune_loop(self) -> None:
        while True:
            try:
                pruned = await self.prune_once()
                if pruned:
                    log.info("pruned %d dedupe records older than %s", pruned, self.dedupe_retention)
            except Exception:  # noqa: BLE001 - retried next round
                log.warning("pruning dedupe records failed", exc_info=True)
            await asyncio.sleep(self.prune_interval)

    async def stop(self) -> None:
        """Stop consuming (a pending long-poll is abandoned at once), let in-flight events
        finish (up to `drain_timeout`), disconnect."""
        if self._prune_task is not None:
            self._prune_task.cancel()
            await asyncio.gather(self._prune_task, return_exceptions=True)
            self._prune_task = None
        if self._run_task is not None:
            self._run_task.cancel()
            await asyncio.gather(self._run_task, return_exceptions=True)
            self._run_task = None
        if self._refresh_task is not None:
            self._refresh_task.cancel()
            await asyncio.gather(self._refresh_task, return_exceptions=True)
            self._refresh_task = None
        for tenant in list(self._follows):
            await self._unfollow(tenant)
        if self._iterator is not None:
            try:
                await self._iterator.close()
            except Exception:  # noqa: BLE001 - the connection may already be gone
                log.debug("closing the queue iterator failed", exc_info=True)
            self._iterator = None
        await self._lanes.drain(self.drain_timeout)
        if self._cursor_task is not None:
            self._cursor_task.cancel()
            await asyncio.gather(self._cursor_task, return_exceptions=True)
            self._cursor_task = None
        try:
            await self.flush_cursors()
        except Exception:  # noqa: BLE001 - the next start catches up from the older cursor
            log.warning("storing the pull cursors at stop failed", exc_info=True)
        await self.effects.stop()
        self.consuming.clear()
        self._state = "stopped"
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
        if self.pull is not None:
            await self.pull.aclose()

    async def __aenter__(self) -> Consumer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @asynccontextmanager
    async def lifespan(self, app: Any = None) -> AsyncIterator[None]:
        """`FastAPI(lifespan=consumer.lifespan)`, or `async with consumer.lifespan(app):`
        inside your own lifespan."""
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    async def _run(self) -> None:
        if self.external:
            await self._run_external()
        elif self.pull_only:
            await self._run_pull()
        else:
            await self._run_broker()

    async def _run_broker(self) -> None:
        while self._connection is None:
            if self._discovers:
                await self._refresh_quietly()
            # The broker is down: keep the app current through the pull API, then try again.
            if self.catch_up_at_start and self.pull is not None:
                self._state = "catching_up"
                try:
                    await self.catch_up()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - retried with the next attempt
                    self.catch_up_error = exc
                    log.warning("catch-up through the pull API failed: %r", exc)
            self._state = "connecting"
            await asyncio.sleep(self.reconnect_interval)
            if self._discovers and not self._listed:
                continue  # the bindings depend on the listing
            try:
                await self._connect()
            except asyncio.CancelledError:
                raise
            except QueueMismatch as exc:
                self._state = "failed"
                self._broker_error = str(exc)
                log.error("%s", exc)
                return
            except Exception as exc:  # noqa: BLE001 - still down: the next round tries again
                self._broker_error = repr(exc)
                log.debug("RabbitMQ still unreachable: %r", exc)
        log.info("connected to RabbitMQ at %s", _redact(self.amqp_url))
        self._state = "catching_up"
        if self.catch_up_at_start and self.pull is not None:
            try:
                await self.catch_up()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the queue is consumed all the same
                self.catch_up_error = exc
                log.exception("catch-up through the pull API failed; consuming the queue without it")
        try:
            await self.resync_pending()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001
            log.exception("resync of marked resources failed")
        if self._discovers:
            self._refresh_task = asyncio.create_task(self._refresh_loop(), name=f"scimbus-tenants-{self._name}")
        assert self._queue is not None
        self._iterator = self._queue.iterator()
        async with self._iterator as messages:
            self._state = "consuming"
            self.consuming.set()
            async for message in messages:
                await self._dispatch(message)

    async def _run_external(self) -> None:
        """External mode: nothing to follow; the pull client (if any) is listed once, so
        that resyncs know the tenants an application credential covers, then marked
        resources are resynced and events are accepted (`consuming`)."""
        if self.pull is not None and self._discovers:
            try:
                await self.pull.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - resyncs wait for a later listing
                self._listing_error = repr(exc)
                log.warning("listing the tenants of the application credential failed: %r", exc)
        try:
            await self.resync_pending()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001
            log.exception("resync of marked resources failed")
        self._state = "consuming"
        self.consuming.set()
        await asyncio.Event().wait()  # events are handed in until stop()

    async def submit(
        self, tenant: str, subject: str, event: Callable[[], Awaitable[Envelope | None]], *, origin: Origin
    ) -> Outcome | None:
        """Process one event handed in from outside (a pushed or polled SET, see
        `scimbus_consumer.sets`) in the resource's lane, after what the lane holds. `event`
        makes the envelope there (so it may read what the lane's earlier events applied);
        None: nothing to process. One attempt, whose failure is raised as it is (the sender
        delivers the event again: scimbus resends a SET until it is accepted), without
        marking the resource."""

        async def work() -> Outcome | None:
            envelope = await event()
            if envelope is None:
                return None
            return await self.handle(envelope, origin=origin, attempts=1)

        result: Outcome | None = await self._lanes.submit((tenant, subject), work)
        return result

    def wants(self, event: Envelope) -> bool:
        """Whether the consumer's routing keys (or tenants) cover the event."""
        return self._wants(event)

    async def _run_pull(self) -> None:
        attempt = 0
        while self._discovers and not self._listed:
            # Which tenants to follow is not known yet: the listing is retried with backoff.
            if not await self._refresh_quietly():
                attempt += 1
                await asyncio.sleep(self._backoff(attempt))
        self._state = "catching_up"
        if self.catch_up_at_start:
            try:
                await self.catch_up()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - each tenant's follow task catches up again
                self.catch_up_error = exc
                log.warning("catch-up through the pull API failed: %r", exc)
        try:
            await self.resync_pending()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001
            log.exception("resync of marked resources failed")
        self._state = "consuming"
        self.consuming.set()
        for tenant in self._followable():
            self._follow_soon(tenant)
        if self._discovers:
            await self._refresh_loop()
        else:
            await asyncio.Event().wait()  # the tenants are fixed: the follow tasks carry on until stop()

    # --- the queue ---------------------------------------------------------------------------

    async def _dispatch(self, message: AbstractIncomingMessage) -> None:
        try:
            event = parse_event(message.body)
        except (ValidationError, ValueError) as exc:
            log.error("dead-lettering an unreadable message %s: %s", message.message_id, exc)
            self.metrics.dead_lettered("unreadable")
            await self._settle(message.reject(requeue=False))
            return
        self._lanes.submit((event.tenant, event.subject), lambda: self._deliver(event, message))

    async def _deliver(self, event: Envelope, message: AbstractIncomingMessage) -> None:
        try:
            message.channel  # noqa: B018 - raises when the delivery's channel is gone
        except ChannelInvalidStateError:
            # Delivered on a connection that has since dropped: the broker redelivers it on
            # the new one, in order, so this copy is left alone.
            return
        if _redelivered(message) and self.crash_limit is not None:
            # Left unsettled by a consumer before (it may have died in this event's handler):
            # handled alone, one redelivered event at a time, with its started attempts
            # counted, so a crash is charged to the one event that was running, and an event
            # whose handler kills its process is dead-lettered after `crash_limit` attempts.
            # (The broker's delivery count rises for every delivery prefetched beside it.)
            async with self._suspects:
                try:
                    started = await self.store.note_attempt(event.id)
                except Exception:  # noqa: BLE001 - the store is down: the delivery comes back
                    log.warning("could not count the attempts of %s", event.id, exc_info=True)
                    await self._settle(message.nack(requeue=True))
                    return
                if started > self.crash_limit and not isinstance(event, TenantDeleted):
                    log.error("dead-lettering %s: %d attempts started and none finished", event.id, started - 1)
                    self.metrics.dead_lettered(event.type)
                    if _versioned(event):
                        await self.mark_resync(event.tenant, event.subject)
                        self._resync_soon(event.tenant, event.subject)
                    await self._settle(message.reject(requeue=False))
                    self._progress.settle(event.tenant, event.sequence_number)
                    return
                await self._handle_and_settle(event, message)
            return
        await self._handle_and_settle(event, message)

    async def _handle_and_settle(self, event: Envelope, message: AbstractIncomingMessage) -> None:
        try:
            await self.handle(event, origin="broker")
        except HandlerFailed as exc:
            log.error("dead-lettering %s: %s", event.id, exc)
            self.metrics.dead_lettered(event.type)
            await self._settle(message.reject(requeue=False))
            # Settled for the cursor too: its resource is marked for resync.
            self._progress.settle(event.tenant, event.sequence_number)
        except Exception:  # noqa: BLE001 - never lose the lane on an unexpected error
            log.exception("unexpected error on %s; it will be redelivered", event.id)
            # A pause first, so a database outage does not spend the broker's delivery limit
            # in a few milliseconds.
            await asyncio.sleep(min(self.backoff_max, 5.0))
            await self._settle(message.nack(requeue=True))
        else:
            await self._settle(message.ack())
            self._progress.settle(event.tenant, event.sequence_number)

    @staticmethod
    async def _settle(settlement: Awaitable[Any]) -> None:
        try:
            await settlement
        except Exception:  # noqa: BLE001 - a dropped channel: the broker redelivers
            log.info("could not settle a delivery (channel closed); the broker redelivers it", exc_info=True)

    # --- one event -----------------------------------------------------------------------

    def _wants(self, event: Envelope) -> bool:
        key = routing_key(event)
        return any(topic_matches(pattern, key) for pattern in self.routing_keys)

    async def handle(
        self,
        event: Envelope | bytes | str | dict[str, Any],
        *,
        origin: Origin = "broker",
        force: bool = False,
        attempts: int | None = None,
    ) -> Outcome:
        """Process one event with retries in place (bounded exponential backoff). After
        `max_attempts` failures the resource is marked for resync and `HandlerFailed` is
        raised; with `attempts`, after that many the failure is raised as it is instead (for
        a sender that delivers the event again). Callers must not run two events of one
        resource at once (the queue and catch-up go through per-resource lanes)."""
        if not isinstance(event, Envelope):
            event = parse_event(event)
        attempt = 0
        while True:
            attempt += 1
            try:
                outcome = await self._handle_once(event, origin, force, attempt)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if attempts is not None and attempt >= attempts:
                    raise
                if attempt >= self.max_attempts:
                    if isinstance(event, TenantDeleted):
                        # Never dead-lettered: its users would keep access. The caller
                        # requeues it (after a pause) until it goes through.
                        raise
                    if _versioned(event):
                        # Dead-lettered only once its resource is marked for resync (and the
                        # resync is on its way); a mark that cannot be written (the database
                        # is down) leaves the delivery to be requeued instead.
                        await self.mark_resync(event.tenant, event.subject)
                        self._resync_soon(event.tenant, event.subject)
                    raise HandlerFailed(event, exc) from exc
                delay = self._backoff(attempt)
                log.warning("%s %s failed (attempt %d), retrying in %.3fs: %r", event.type, event.id, attempt, delay, exc)
                self.metrics.retry(event.type)
                await asyncio.sleep(delay)
                continue
            if self.effects.performers:
                self.effects.wake()
            lag = (datetime.now(timezone.utc) - event.time).total_seconds() if outcome is Outcome.APPLIED else None
            self._last_applied_at = datetime.now(timezone.utc)
            if self._last_event_time is None or event.time > self._last_event_time:
                self._last_event_time = event.time
            self.metrics.event(event.type, outcome.value, lag)
            for observer in self._observers:
                try:
                    await observer(event, outcome)
                except Exception:  # noqa: BLE001 - an observer never fails the event
                    log.exception("outcome observer failed")
            return outcome

    async def _handle_once(self, event: Envelope, origin: Origin, force: bool, attempt: int) -> Outcome:
        """One attempt at an event, whatever brought it (queue, pull API, snapshot, resync,
        reconcile, replay), in its tracing span: every event's handlers run from here."""
        with self.tracing.process(event, origin, attempt) as span:
            outcome = await self._apply_once(event, origin, force, attempt)
            self.tracing.outcome(span, outcome.value)
            return outcome

    async def _apply_once(self, event: Envelope, origin: Origin, force: bool, attempt: int) -> Outcome:
        tenant, subject = event.tenant, event.subject
        is_snapshot = event.type in SNAPSHOTS
        resynced = redacted = applied = resync_gate = marked = False
        while True:
            try:
                async with self.store.transaction() as tx:
                    # First the resource's lock: another process applying the same resource
                    # commits before this one reads the dedupe row and the version.
                    await self.store.lock(tenant, subject, tx)
                    if not is_snapshot and await self.store.is_processed(event.id, tx):
                        return Outcome.DUPLICATE
                    if not isinstance(event, TenantDeleted):
                        tomb = await self.store.get_state(tenant, f"Tenants/{tenant}", tx)
                        if tomb is not None and tomb.deleted:
                            await self._record(event, tx)
                            return Outcome.STALE
                    ctx = Context(session=tx, tenant=tenant, subject=subject, origin=origin, force=force, attempt=attempt)
                    if event.redacted and not isinstance(event, TenantDeleted):
                        redacted = True
                        break
                    if not _versioned(event):
                        await self._run_handlers(event, ctx)
                        if isinstance(event, TenantDeleted):
                            await self._tenant_gone(ctx, event.id)
                            await self.store.drop_tenant(tenant, tx)
                            await self.store.put_state(tenant, f"Tenants/{tenant}", ResourceState(deleted=True), tx)
                        await self._record(event, tx)
                        return Outcome.APPLIED
                    state = await self.store.get_state(tenant, subject, tx) or ResourceState()
                    if state.needs_resync and not is_snapshot and not marked and self._can_resync(tenant):
                        raise _ResyncFirst  # marked after a dead letter: its snapshot goes first
                    decision = decide(event, state, force=force, refresh=origin == "reconcile")
                    if decision is _Decision.STALE:
                        if is_snapshot and state.needs_resync:
                            await self.store.put_state(tenant, subject, replace(state, needs_resync=False), tx)
                        await self._record(event, tx)
                        return Outcome.RESYNCED if resynced else Outcome.STALE
                    if decision is _Decision.APPLY or (decision is _Decision.GAP and not self._can_resync(tenant)):
                        if decision is _Decision.GAP:
                            log.warning(
                                "version gap on %s/%s (have %d, got %s) and no pull token for the tenant: applying it",
                                tenant, subject, state.version, event.version,
                            )
                        await self._run_handlers(event, ctx)
                        resync_gate = await self._track_access(event, ctx)
                        version = event.version
                        assert version is not None
                        new_state = ResourceState(
                            version=version,
                            from_snapshot=is_snapshot,
                            deleted=event.type in DELETIONS,
                            # A group renamed into a gate stays marked until its members came.
                            needs_resync=resync_gate and self._can_resync(tenant),
                        )
                        await self.store.put_state(tenant, subject, new_state, tx)
                        await self._record(event, tx)
                        applied = True
                        break  # leaves the loop; the transaction commits on the way out
            except _ResyncFirst:
                await self.resync(tenant, subject)
                marked = True
                continue
            if redacted:
                break
            # A gap: the snapshot replaces the missing deltas, then this one is judged again.
            if resynced:
                raise VersionGap(f"{tenant}/{subject}: version {event.version} still ahead after a resync")
            log.info("version gap on %s/%s at %s: resyncing", tenant, subject, event.version)
            await self.resync(tenant, subject)
            resynced = True
        if applied:
            if resync_gate and self._can_resync(tenant):
                # The group became a gate by a rename: its snapshot brings the members (if
                # this fails, the mark written above makes the next event resync first).
                try:
                    await self.resync(tenant, subject)
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - retried in the background, marked meanwhile
                    self._resync_soon(tenant, subject)
            return Outcome.APPLIED
        # Erasure removed the payload (only the envelope is left): the resource's snapshot
        # says what remains of it, so no handler sees the event.
        outcome = Outcome.STALE
        if event.resource_type in VERSIONED_RESOURCES and self._can_resync(tenant):
            await self.resync(tenant, subject)
            outcome = Outcome.RESYNCED
        async with self.store.transaction() as tx:
            await self.store.lock(tenant, subject, tx)
            await self._record(event, tx)
        return outcome

    async def _record(self, event: Envelope, tx: Any) -> None:
        if event.type not in SNAPSHOTS:
            await self.store.record(event.id, tx)

    async def _run_handlers(self, event: Envelope, ctx: Context) -> None:
        handlers = self._handlers.get(event.type) or self._catch_all
        for handler in handlers:
            await handler(event, ctx)

    def _can_resync(self, tenant: str) -> bool:
        return self.pull is not None and self.pull.has_tenant(tenant)

    # --- access ------------------------------------------------------------------------------

    async def _track_access(self, event: Envelope, ctx: Context) -> bool:
        """Update access after an applied event and run the access handlers of what changed.
        Returns True when a group became a gate without its members being known (a rename):
        the caller resyncs it."""
        tenant, tx = ctx.tenant, ctx.session
        if isinstance(event, (UserCreated, UserUpdated, UserDeactivated, UserReactivated, UserSnapshot)):
            user = event.data.resource  # type: ignore[union-attr]
            await self._set_user(ctx, user.id, present=True, active=user.is_active, event_id=event.id)
            return False
        if isinstance(event, UserDeleted):
            await self._set_user(ctx, event.resource_id, present=False, event_id=event.id, reason=AccessReason.DELETED)
            return False
        if not self.gating.gated(tenant) or event.resource_type != "Groups":
            return False
        group_id = event.resource_id
        current = await self.store.gate_members(tenant, group_id, tx)
        affected: set[str] = set()
        resync = False
        if isinstance(event, GroupSnapshot):
            members = {m.value for m in event.data.members if m.type != "Group"}
            if self.gating.is_gate(tenant, event.data.resource.display_name):
                await self.store.set_gate(tenant, group_id, members, tx)
                affected = (current or set()) ^ members
            elif current is not None:
                await self.store.set_gate(tenant, group_id, None, tx)
                affected = current
        elif isinstance(event, (GroupCreated, GroupUpdated)):
            is_gate = self.gating.is_gate(tenant, event.data.resource.display_name)  # type: ignore[union-attr]
            if is_gate and current is None:
                await self.store.set_gate(tenant, group_id, set(), tx)
                resync = isinstance(event, GroupUpdated)  # renamed into a gate: members unknown here
            elif not is_gate and current is not None:
                await self.store.set_gate(tenant, group_id, None, tx)
                affected = current
        elif isinstance(event, GroupDeleted):
            if current is not None:
                await self.store.set_gate(tenant, group_id, None, tx)
                affected = current
        elif isinstance(event, (GroupMembersAdded, GroupMembersRemoved)) and current is not None:
            members = set(event.data.members)  # type: ignore[union-attr]
            if isinstance(event, GroupMembersAdded):
                await self.store.change_gate_members(tenant, group_id, members - current, set(), tx)
                affected = members - current
            else:
                await self.store.change_gate_members(tenant, group_id, set(), members & current, tx)
                affected = members & current
        await self._recompute(ctx, sorted(affected), event.id)
        return resync

    async def _set_user(
        self,
        ctx: Context,
        user_id: str,
        *,
        present: bool,
        event_id: str | None,
        active: bool | None = None,
        reason: AccessReason = AccessReason.DELETED,
    ) -> None:
        tenant, tx = ctx.tenant, ctx.session
        old = (await self.store.lock_access(tenant, [user_id], tx))[user_id]
        new = AccessState(present=present, active=old.active if active is None else active, granted=old.granted)
        gated = self.gating.gated(tenant)
        in_gate = gated and user_id in await self.store.in_gates(tenant, [user_id], tx)
        granted = decide_access(new, gated=gated, in_gate=in_gate)
        new = AccessState(present=new.present, active=new.active, granted=granted)
        if new != old:
            await self.store.put_access(tenant, user_id, new, tx)
        if granted != old.granted:
            await self._announce(ctx, AccessChange(tenant, user_id, granted, reason_for(old, new, granted, removal=reason), event_id))

    async def _recompute(self, ctx: Context, user_ids: list[str], event_id: str | None) -> None:
        """Access of users whose gate membership changed (sorted ids: lock order)."""
        if not user_ids:
            return
        tenant, tx = ctx.tenant, ctx.session
        states = await self.store.lock_access(tenant, user_ids, tx)
        in_gate = await self.store.in_gates(tenant, user_ids, tx)
        for user_id in user_ids:
            old = states[user_id]
            granted = decide_access(old, gated=True, in_gate=user_id in in_gate)
            if granted != old.granted:
                new = AccessState(present=old.present, active=old.active, granted=granted)
                await self.store.put_access(tenant, user_id, new, tx)
                reason = AccessReason.ADDED_TO_GROUP if granted else AccessReason.REMOVED_FROM_GROUP
                await self._announce(ctx, AccessChange(tenant, user_id, granted, reason, event_id))

    async def _resource_gone(self, ctx: Context) -> None:
        """A resync found the resource deleted: a user loses access, a gate its members."""
        resource_type, resource_id = ctx.subject.split("/", 1)
        if resource_type == "Users":
            await self._set_user(ctx, resource_id, present=False, event_id=None, reason=AccessReason.GONE)
        elif resource_type == "Groups" and self.gating.gated(ctx.tenant):
            current = await self.store.gate_members(ctx.tenant, resource_id, ctx.session)
            if current is not None:
                await self.store.set_gate(ctx.tenant, resource_id, None, ctx.session)
                await self._recompute(ctx, sorted(current), None)

    async def _tenant_gone(self, ctx: Context, event_id: str) -> None:
        for user_id in await self.store.granted_users(ctx.tenant, ctx.session):
            await self._announce(ctx, AccessChange(ctx.tenant, user_id, False, AccessReason.TENANT_DELETED, event_id))

    async def _announce(self, ctx: Context, change: AccessChange) -> None:
        self.metrics.access_change(change.granted, change.reason.value)
        for handler in self._granted if change.granted else self._revoked:
            await handler(change, ctx)

    # --- resync ------------------------------------------------------------------------------

    def _resync_soon(self, tenant: str, subject: str) -> None:
        """Resync a marked resource in its lane, after what the lane holds, retried; a
        failure leaves the mark for the next event, the next start or reconciliation."""
        if not self._can_resync(tenant):
            return
        future = self._lanes.submit((tenant, subject), lambda: self._retrying(lambda: self.resync(tenant, subject)))

        def done(f: asyncio.Future[Any]) -> None:
            if not f.cancelled() and f.exception() is not None:
                log.warning("resync of %s/%s failed: %r; it stays marked", tenant, subject, f.exception())

        future.add_done_callback(done)

    async def mark_resync(self, tenant: str, subject: str) -> None:
        async with self.store.transaction() as tx:
            await self.store.lock(tenant, subject, tx)
            state = await self.store.get_state(tenant, subject, tx) or ResourceState()
            await self.store.put_state(tenant, subject, replace(state, needs_resync=True), tx)

    async def resync(self, tenant: str, subject: str) -> Outcome:
        """Fetch one resource's snapshot and apply it (when newer, see `decide`); a 404 runs
        the `on_gone` handlers once and marks the resource deleted."""
        assert self.pull is not None
        resource_type, resource_id = subject.split("/", 1)
        raw = await self.pull.snapshot_one(tenant, resource_type, resource_id)
        if raw is None:
            async with self.store.transaction() as tx:
                await self.store.lock(tenant, subject, tx)
                state = await self.store.get_state(tenant, subject, tx) or ResourceState()
                if not state.deleted:
                    ctx = Context(session=tx, tenant=tenant, subject=subject, origin="resync", force=False, attempt=1)
                    for handler in self._gone:
                        await handler(ResourceGone(tenant, subject), ctx)
                    await self._resource_gone(ctx)
                await self.store.put_state(
                    tenant, subject, replace(state, deleted=True, needs_resync=False, from_snapshot=False), tx
                )
            return Outcome.APPLIED
        return await self._handle_once(parse_event(raw), "resync", False, 1)

    async def resync_pending(self) -> None:
        """Resync every resource marked for resync (after a dead-lettered event)."""
        async with self.store.transaction() as tx:
            marked = await self.store.needing_resync(tx)
        futures = [
            self._lanes.submit((t, s), lambda t=t, s=s: self._retrying(lambda: self.resync(t, s)))
            for t, s in marked
            if self._can_resync(t)
        ]
        for result in await asyncio.gather(*futures, return_exceptions=True):
            if isinstance(result, Exception):
                log.error("resync failed: %r", result)

    async def _retrying(self, work: Callable[[], Awaitable[Any]]) -> Any:
        attempt = 0
        while True:
            attempt += 1
            try:
                return await work()
            except (asyncio.CancelledError, Gone):
                raise
            except Exception:
                if attempt >= self.max_attempts:
                    raise
                await asyncio.sleep(self._backoff(attempt))

    def _backoff(self, attempt: int) -> float:
        """The pause after failed attempt `attempt`: `backoff_initial · 2^(attempt-1)`, at most
        `backoff_max` (the exponent bounded, so a long outage cannot overflow it)."""
        return float(min(self.backoff_initial * 2 ** min(attempt - 1, 32), self.backoff_max))

    # --- dead letters --------------------------------------------------------------------------

    async def dead_letters(self, *, replay: bool = False, limit: int = 10_000) -> list[DeadLetter]:
        """The messages in `<queue>.dlq` (oldest first, up to `limit`), left in place; with
        `replay`, each readable one is processed again through `handle` (origin `replay`) and
        removed from the dead-letter queue when that succeeds. Messages that fail again or
        cannot be read stay."""
        if self.amqp_url is None:
            raise ValueError("a pull-only consumer has no dead-letter queue")
        connection = await aio_pika.connect(self.amqp_url)
        letters: list[DeadLetter] = []
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(self.dead_letter_queue, passive=True)
            held: list[AbstractIncomingMessage] = []
            while len(held) < limit:
                message = await queue.get(no_ack=False, fail=False)
                if message is None:
                    break
                held.append(message)
            for message in held:
                letter = DeadLetter(body=message.body, reason=_death_reason(message))
                try:
                    letter.event = parse_event(message.body)
                except (ValidationError, ValueError) as exc:
                    letter.error = f"unreadable: {exc}"
                if replay and letter.event is not None:
                    event = letter.event
                    try:
                        letter.outcome = await self._lanes.submit(
                            (event.tenant, event.subject), lambda e=event: self.handle(e, origin="replay")
                        )
                    except Exception as exc:  # noqa: BLE001 - reported, the message stays
                        letter.error = repr(exc)
                    else:
                        await message.ack()
                letters.append(letter)
            # Closing the channel returns every message not acked to the dead-letter queue.
        return letters

    # --- reconciliation ----------------------------------------------------------------------

    async def reconcile(
        self, tenants: Iterable[str] | None = None, *, repair: bool = True, grace: float = 5.0
    ) -> ReconcileReport:
        """Compare what is applied with scimbus's snapshots (pull API) and, with `repair`,
        repair each divergence through the same handlers: a resource behind or missing is
        resynced, one deleted in scimbus but not here is resynced (404: `on_gone` and access
        revoked), one the app's verifiers reject gets its snapshot applied again (forced).
        Version differences are checked again after `grace` seconds, so events still on
        their way are not reported. Logs each divergence; returns the report."""
        assert self.pull is not None, "reconcile needs a pull client"
        if tenants is None and self._discovers and not self._listed:
            await self.refresh_tenants()
        report = ReconcileReport()
        for tenant in list(tenants) if tenants is not None else self._followable():
            await self._reconcile_tenant(tenant, report, repair=repair, grace=grace)
        for d in report.divergences:
            log.warning(
                "divergence on %s/%s (%s)%s", d.tenant, d.subject, d.why, ", repaired" if d.repaired else ""
            )
        for d in report.divergences:
            self.metrics.divergence(d.why)
        for observer in self._reconcile_observers:
            observer(report)
        return report

    async def _reconcile_tenant(self, tenant: str, report: ReconcileReport, *, repair: bool, grace: float) -> None:
        assert self.pull is not None
        suspects: dict[str, str] = {}
        verify_failed: list[Envelope] = []
        seen: set[str] = set()
        for resource_type in self._wanted_resource_types(tenant):
            after: str | None = None
            while True:
                page = await self._retrying(
                    lambda: self.pull.snapshot_page(tenant, resource_type, after, limit=self.page_limit)  # type: ignore[union-attr]
                )
                for raw in page.events:
                    snapshot = parse_event(raw)
                    seen.add(snapshot.subject)
                    report.checked += 1
                    why = await self._compare(snapshot)
                    if why is not None:
                        suspects[snapshot.subject] = why
                    elif self._verifiers and not await self._verify(snapshot):
                        verify_failed.append(snapshot)
                if not page.has_more or page.next is None:
                    break
                after = page.next
        async with self.store.transaction() as tx:
            known = await self.store.subjects(tenant, tx)
        wanted = self._wanted_resource_types(tenant)
        for subject in known:
            if subject not in seen and subject.split("/", 1)[0] in wanted:
                suspects[subject] = "extra"
        if suspects and grace > 0:
            await asyncio.sleep(grace)  # events on their way land meanwhile
        for subject, why in sorted(suspects.items()):
            resource_type, resource_id = subject.split("/", 1)
            raw = await self.pull.snapshot_one(tenant, resource_type, resource_id)
            still = ("extra" if why == "extra" else None) if raw is None else await self._compare(parse_event(raw))
            if raw is None and why != "extra":
                async with self.store.transaction() as tx:
                    state = await self.store.get_state(tenant, subject, tx)
                still = None if state is None or state.deleted else "extra"
            if still is None:
                continue
            divergence = Divergence(tenant, subject, still)
            if repair:
                await self._lanes.submit((tenant, subject), lambda t=tenant, s=subject: self._retrying(lambda: self.resync(t, s)))
                divergence.repaired = True
            report.divergences.append(divergence)
        for snapshot in verify_failed:
            divergence = Divergence(tenant, snapshot.subject, "verify")
            if repair:
                await self._lanes.submit(
                    (tenant, snapshot.subject),
                    lambda e=snapshot: self._retrying(lambda: self._reapply(e)),
                )
                divergence.repaired = True
            report.divergences.append(divergence)

    async def _reapply(self, snapshot: Envelope) -> Outcome:
        """Applies the resource's current snapshot again through the handlers, read anew (the
        page's may be older than what was applied since) and applied only at or above the
        applied version, judged under the resource's lock."""
        assert self.pull is not None
        resource_type, resource_id = snapshot.subject.split("/", 1)
        raw = await self.pull.snapshot_one(snapshot.tenant, resource_type, resource_id)
        if raw is None:
            return await self.resync(snapshot.tenant, snapshot.subject)
        return await self._handle_once(parse_event(raw), "reconcile", False, 1)

    async def _compare(self, snapshot: Envelope) -> str | None:
        async with self.store.transaction() as tx:
            state = await self.store.get_state(snapshot.tenant, snapshot.subject, tx)
        assert snapshot.version is not None
        if state is None or state.deleted:
            return "missing"
        if state.version < snapshot.version:
            return "behind"
        return None

    async def _verify(self, snapshot: Envelope) -> bool:
        async with self.store.transaction() as tx:
            ctx = Context(session=tx, tenant=snapshot.tenant, subject=snapshot.subject, origin="reconcile", force=False, attempt=1)
            for verify in self._verifiers:
                if not await verify(snapshot, ctx):
                    return False
        return True

    # --- pull API ----------------------------------------------------------------------------

    async def catch_up(self) -> None:
        """For each followed tenant: bootstrap from snapshots when no cursor is stored, then
        apply the pull API's events after the cursor, page by page. Then each tenant the
        listing shows deleted is read up to its `scimbus.tenant.deleted`, when the app holds
        a cursor of it."""
        assert self.pull is not None
        failed: list[tuple[str, BaseException]] = []
        for tenant in self._followable() + self._followable(deleted=True):
            try:
                await self.catch_up_tenant(tenant)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - one tenant does not stop the others
                log.warning("catch-up of tenant %s failed: %r", tenant, exc)
                failed.append((tenant, exc))
        if failed:
            raise failed[0][1]

    async def catch_up_tenant(self, tenant: str, *, from_start: bool = False) -> int | None:
        """Bootstrap the tenant when no cursor is stored (`from_start`: begin at its first
        event instead), then apply its events after the cursor, page by page, storing the
        cursor after each. Returns the cursor; None when there is nothing to read (the
        tenant's deletion was applied, or it was deleted before the app held anything of it)."""
        assert self.pull is not None
        cursor = await self._start_cursor(tenant, from_start=from_start)
        if cursor is None:
            return None
        while True:
            try:
                page = await self._retrying(lambda: self.pull.events(tenant, after=cursor, limit=self.page_limit))  # type: ignore[union-attr]
            except Gone:
                log.warning("events of %s after %d were pruned: full resync", tenant, cursor)
                cursor = await self.bootstrap(tenant)
                continue
            cursor = await self._apply_after(tenant, page, None)
            if not page.has_more:
                self._progress.start(tenant, cursor)
                return cursor

    async def _start_cursor(self, tenant: str, *, from_start: bool) -> int | None:
        """Where reading the tenant starts: its stored cursor; else 0 (stored) when
        `from_start`; else a bootstrap's. None for a tenant whose deletion was applied, or
        that is listed deleted without a cursor (nothing of it is held)."""
        assert self.pull is not None
        if await self._tombstoned(tenant):
            return None
        async with self.store.transaction() as tx:
            await self.store.lock(tenant, CURSOR_LOCK, tx)
            cursor = await self.store.get_cursor(tenant, tx)
            if cursor is None and from_start:
                cursor = 0
                await self.store.set_cursor(tenant, cursor, tx)
        if cursor is None and tenant not in self.pull.deleted_tenants:
            cursor = await self.bootstrap(tenant)
        return cursor

    async def _apply_after(self, tenant: str, page: EventPage, previous: asyncio.Task[int] | None) -> int:
        """Applies a page while the next one is already being long-polled: its events go to
        their lanes at once (each resource's events stay in order across pages), the cursor
        is stored once this page and every earlier one are applied; an earlier page's
        failure is this one's too."""
        futures = await self._submit_batch(page.events, origin="pull")
        if previous is not None:
            await previous
        await self._await_batch(futures)
        await self._advance_cursor(tenant, page.next)
        return page.next

    async def _advance_cursor(self, tenant: str, cursor: int) -> None:
        """Store the tenant's cursor, never moving it back (another process may be ahead) nor
        bringing back one the tenant's deletion dropped; read under the lock it is written by."""
        async with self.store.transaction() as tx:
            await self.store.lock(tenant, CURSOR_LOCK, tx)
            stored = await self.store.get_cursor(tenant, tx)
            if stored is not None and stored < cursor:
                await self.store.set_cursor(tenant, cursor, tx)

    async def _tombstoned(self, tenant: str) -> bool:
        async with self.store.transaction() as tx:
            tomb = await self.store.get_state(tenant, f"Tenants/{tenant}", tx)
        return tomb is not None and tomb.deleted

    def _followable(self, *, deleted: bool = False) -> list[str]:
        """The pull client's tenants (with an application credential: those listed, not
        deleted, or with `deleted` those listed deleted) that `tenants`, when given, lets through."""
        assert self.pull is not None
        listed = self.pull.deleted_tenants if deleted else self.pull.tenants
        return [t for t in listed if self._tenant_filter is None or t in self._tenant_filter]

    # --- following tenants ---------------------------------------------------------------------

    async def refresh_tenants(self) -> TenantChanges:
        """One round of tenant discovery with an application credential (run at start, then
        every `tenant_refresh_interval` seconds while consuming): list the tenants, then
        follow each new one from its first event (`scimbus.tenant.created`; from its stored
        cursor if another process stored one; 410 Gone bootstraps it), stop following those
        that left the listing or were deleted, and read a deleted one up to its
        `scimbus.tenant.deleted` when the app holds a cursor of it. Bindings that follow the
        listing are changed first (new ones bound before old ones are unbound). The first
        round only learns the tenants: starting catches them up."""
        assert self.pull is not None and self.pull.app_token is not None, "tenant discovery needs an application credential"
        before = set(self.tenants)
        first = not self._listed
        await self.pull.refresh()
        now = self._followable()
        if self._keys_follow_listing:
            self.routing_keys = default_routing_keys(now, all_tenants=self.pull.all_tenants)
            await self._rebind()
        self.tenants = now
        self._listed = True
        self._listing_error = None
        if first:
            return TenantChanges(added=list(now), removed=[])
        added = [t for t in now if t not in before]
        removed = sorted(before - set(now))
        for tenant in removed:
            log.info("tenant %s left the listing or was deleted: no longer followed", tenant)
            await self._unfollow(tenant)
            self._behind.discard(tenant)
        if self.external:
            pass  # events are handed in: nothing to follow
        elif self.pull_only:
            for tenant in added:
                self._follow_soon(tenant, from_start=True)
        else:
            # The queue has the new tenant's events from its binding on; those before (its
            # `scimbus.tenant.created` at least) come through the pull API.
            self._behind.update(added)
            await self._catch_up_each(sorted(self._behind), from_start=True, behind=True)
        await self._catch_up_each(self._followable(deleted=True), from_start=False, behind=False)
        if added:
            log.info("following new tenants: %s", ", ".join(added))
        return TenantChanges(added=added, removed=removed)

    async def _catch_up_each(self, tenants: list[str], *, from_start: bool, behind: bool) -> None:
        for tenant in tenants:
            try:
                await self.catch_up_tenant(tenant, from_start=from_start)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the next refresh tries again
                log.warning("catch-up of tenant %s failed: %r; the next refresh tries again", tenant, exc)
            else:
                if behind:
                    self._behind.discard(tenant)

    async def _refresh_quietly(self) -> bool:
        """`refresh_tenants()`, a failure logged and kept for the status; True when it worked."""
        try:
            await self.refresh_tenants()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the next round tries again
            self._listing_error = repr(exc)
            log.warning("listing the tenants of the application credential failed: %r", exc)
            return False
        return True

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.tenant_refresh_interval)
            await self._refresh_quietly()

    async def _rebind(self) -> None:
        """Broker mode: bind the routing keys not bound yet, then unbind those no longer
        wanted. Before the queue is declared there is nothing to do: `_declare` binds them."""
        if self._queue is None or self._exchange is None:
            return
        for key in [k for k in self.routing_keys if k not in self._bound]:
            await self._queue.bind(self._exchange, routing_key=key)
            self._bound.append(key)
        for key in [k for k in self._bound if k not in self.routing_keys]:
            await self._queue.unbind(self._exchange, routing_key=key)
            self._bound.remove(key)

    def _follow_soon(self, tenant: str, *, from_start: bool = False) -> None:
        task = asyncio.create_task(self._follow(tenant, from_start=from_start), name=f"scimbus-follow-{tenant}")
        self._follows[tenant] = task

        def ended(done: asyncio.Task[None]) -> None:
            if self._follows.get(tenant) is done:
                del self._follows[tenant]
                self._pull_errors.pop(tenant, None)

        task.add_done_callback(ended)

    async def _unfollow(self, tenant: str) -> None:
        task = self._follows.pop(tenant, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._pull_errors.pop(tenant, None)

    async def _follow(self, tenant: str, *, from_start: bool) -> None:
        """Pull-only mode: follow one tenant until stopped or its deletion is applied. Each
        round long-polls after the cursor (`poll_wait`), applies the page as catch-up does
        (lanes, the store's locks and dedupe: processes sharing the store may follow the
        same tenant) and stores the cursor. A failure (scimbus unreachable, an error
        status, the store) is retried after a backoff, forever; the status is not ready
        meanwhile."""
        assert self.pull is not None
        loop = asyncio.get_running_loop()
        cursor: int | None = None
        failures = 0
        # The page being applied while the next one is long-polled (a round does not wait
        # for the handlers of the last page before asking for more: events stream as they
        # do from the broker).
        applying: asyncio.Task[int] | None = None
        try:
            while True:
                try:
                    if applying is not None and applying.done():
                        applying.result()  # an earlier page failed: start again from the stored cursor
                    if cursor is None:
                        cursor = await self._start_cursor(tenant, from_start=from_start)
                        if cursor is None:
                            return
                    asked = loop.time()
                    try:
                        page = await self.pull.events(tenant, after=cursor, limit=self.page_limit, wait=self.poll_wait)
                    except Gone:
                        if applying is not None:
                            await applying
                            applying = None
                        log.warning("events of %s after %d were pruned: full resync", tenant, cursor)
                        cursor = await self.bootstrap(tenant)
                        continue
                    applying = asyncio.create_task(self._apply_after(tenant, page, applying))
                    cursor = page.next
                    deleted = any(e.get("type") == "scimbus.tenant.deleted" for e in page.events)
                    if deleted:
                        await applying
                        applying = None
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - retried until it works
                    if applying is not None:
                        await asyncio.gather(applying, return_exceptions=True)
                        applying = None
                    cursor = None
                    failures += 1
                    self._pull_errors[tenant] = repr(exc)
                    if failures == 1:
                        log.warning("following tenant %s failed (%r); retrying with backoff", tenant, exc)
                    await asyncio.sleep(self._backoff(failures))
                    continue
                if failures:
                    log.info("following tenant %s again after %d failed rounds", tenant, failures)
                    failures = 0
                self._pull_errors.pop(tenant, None)
                if deleted and await self._tombstoned(tenant):
                    log.info("tenant %s was deleted: no longer followed", tenant)
                    return
                if not page.events and loop.time() - asked < self.poll_wait:
                    # Empty before the wait ran out: this scimbus did not hold the request (one
                    # without long-polls), so a pause instead of asking again at once.
                    await asyncio.sleep(self._backoff(1))
        finally:
            if applying is not None and not applying.done():
                applying.cancel()
                await asyncio.gather(applying, return_exceptions=True)

    def _wanted_resource_types(self, tenant: str) -> list[str]:
        wanted = []
        for resource_type, word in (("Users", "user"), ("Groups", "group")):
            types = [t for t in EVENT_MODELS if t.startswith(f"scimbus.{word}.")]
            keys = [f"{tenant}.{word}.{t.rsplit('.', 1)[1]}" for t in types]
            if any(topic_matches(p, k) for p in self.routing_keys for k in keys):
                wanted.append(resource_type)
        return wanted

    async def bootstrap(self, tenant: str, *, force: bool = False) -> int:
        """Apply every snapshot page of Users then Groups (`force`: whatever the stored
        versions, after the app's database was restored), check resources the snapshot no
        longer lists, store and return the cursor: the smallest `sequence` of the first pages."""
        assert self.pull is not None
        first_sequences: list[int] = []
        seen: set[str] = set()
        wanted = self._wanted_resource_types(tenant)
        for resource_type in wanted:
            after: str | None = None
            first = True
            while True:
                page = await self._retrying(
                    lambda: self.pull.snapshot_page(tenant, resource_type, after, limit=self.page_limit)  # type: ignore[union-attr]
                )
                if first:
                    first_sequences.append(page.sequence)
                    first = False
                seen.update(e.get("subject", "") for e in page.events)
                await self._process_batch(page.events, origin="snapshot", force=force)
                if not page.has_more or page.next is None:
                    break
                after = page.next
        async with self.store.transaction() as tx:
            known = await self.store.subjects(tenant, tx)
        missing = [s for s in known if s not in seen and s.split("/", 1)[0] in wanted]
        futures = [
            self._lanes.submit((tenant, s), lambda s=s: self._retrying(lambda: self.resync(tenant, s)))
            for s in missing
        ]
        await asyncio.gather(*futures)
        sequence = min(first_sequences) if first_sequences else 0
        async with self.store.transaction() as tx:
            await self.store.set_cursor(tenant, sequence, tx)
        return sequence

    async def _process_batch(self, raws: list[dict[str, Any]], *, origin: Origin, force: bool = False) -> None:
        await self._await_batch(await self._submit_batch(raws, origin=origin, force=force))

    async def _submit_batch(
        self, raws: list[dict[str, Any]], *, origin: Origin, force: bool = False
    ) -> list[asyncio.Future[Any]]:
        """Submits each event to its resource's lane (in order per resource) without waiting
        for them; `_await_batch` waits."""
        futures = []
        for raw in raws:
            try:
                event = parse_event(raw)
            except ValidationError as exc:
                log.error("skipping an unreadable %s event %s: %s", origin, raw.get("id"), exc)
                tenant, subject = raw.get("tenant"), str(raw.get("subject", ""))
                if isinstance(tenant, str) and subject.split("/", 1)[0] in VERSIONED_RESOURCES:
                    await self.mark_resync(tenant, subject)
                continue
            if not self._wants(event):
                continue
            futures.append(
                self._lanes.submit((event.tenant, event.subject), lambda e=event: self.handle(e, origin=origin, force=force))
            )
        return futures

    @staticmethod
    async def _await_batch(futures: list[asyncio.Future[Any]]) -> None:
        for result in await asyncio.gather(*futures, return_exceptions=True):
            if isinstance(result, HandlerFailed):
                log.error("%s; the resource is marked for resync", result)
            elif isinstance(result, BaseException):
                raise result
