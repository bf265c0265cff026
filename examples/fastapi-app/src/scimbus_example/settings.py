"""Settings from environment variables (`SCIMBUS_EXAMPLE_*`)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Settings:
    transport: str = "broker"
    """`broker` (the app's RabbitMQ queue, caught up through the pull API), `pull` (no
    RabbitMQ: long-polls of scimbus's pull API) or `sets` (no RabbitMQ: security event
    tokens scimbus pushes to `POST /scim-events`)."""
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    scimbus_url: str | None = None
    tokens: dict[str, str] = field(default_factory=dict)
    app_token: str | None = None
    """An application credential (`scimbus_app_…`): the events of every tenant it covers,
    tenants created later included, instead of one token per tenant."""
    tenants: list[str] = field(default_factory=list)
    poll_wait: float = 30.0
    tenant_refresh_interval: float = 30.0
    queue: str = "example-app.scimbus"
    exchange: str = "scimbus.events"
    declare_exchange: bool = False
    """Declare the exchange (topic, durable) instead of expecting scimbus to have made it."""
    db_path: str = "example-app.db"
    database_url: str | None = None
    """A SQLAlchemy async URL (`postgresql+asyncpg://…`); when set, used instead of `db_path`."""
    gating_groups: list[str] = field(default_factory=list)
    """Display names of the groups whose direct members may use the app (empty: every active
    user may)."""
    mail_url: str | None = None
    """The mail API welcome emails are POSTed to (with an `Idempotency-Key`); unset: logged."""
    session_service_url: str | None = None
    """Where the app's sessions kept outside its database are ended (POST, `Idempotency-Key`)."""
    handler_delay_ms: int = 0
    """Each handler first awaits a random delay up to this, as a handler that calls another
    service does (for tests and benchmarks of several workers)."""
    max_attempts: int = 5
    set_audience: str | None = None
    """`sets` transport: the audience the receiver was registered with (`aud`)."""
    set_authorization: str | None = None
    """`sets` transport: the `Authorization` value scimbus sends with each SET (a secret)."""
    # For tests: extra queue arguments (x-expires) and quick reconnects.
    queue_arguments: dict[str, Any] = field(default_factory=dict)
    reconnect_interval: float = 5.0
    auto_delete_dead_letter_exchange: bool = False

    def __repr__(self) -> str:  # tokens are secrets
        return (
            f"Settings(transport={self.transport!r}, amqp_url=<hidden>, scimbus_url={self.scimbus_url!r}, "
            f"tenants={self.tenants!r}, queue={self.queue!r})"
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """`SCIMBUS_EXAMPLE_TRANSPORT` (`broker`, the default, or `pull`: no RabbitMQ),
        `_AMQP_URL`, `_SCIMBUS_URL` (base URL of scimbus, for the pull API),
        `_TENANTS` (comma-separated slugs), `_EVENTS_TOKENS` (`acme=token,globex=token`, one
        `events:read` token per tenant) or `_EVENTS_TOKEN` (with exactly one tenant), or
        `_APP_TOKEN` (an application credential: every tenant it covers, found at runtime;
        `_TENANTS` then optional), `_POLL_WAIT` (seconds a long-poll waits, at most 30),
        `_TENANT_REFRESH_SECONDS` (how often an application credential's tenants are listed), `_QUEUE`,
        `_EXCHANGE`, `_DECLARE_EXCHANGE` (true: declare it), `_DB_PATH` or `_DATABASE_URL`, `_MAX_ATTEMPTS`, `_GATING_GROUPS` (comma-separated
        display names), `_MAIL_URL`, `_SESSION_SERVICE_URL`, `_HANDLER_DELAY_MS`, `_QUEUE_ARGUMENTS` (a JSON object of
        extra queue arguments, e.g. `{"x-max-length": 100000, "x-overflow": "reject-publish"}`),
        `_SET_AUDIENCE` and `_SET_AUTHORIZATION` (transport `sets`: the receiver's audience and
        the `Authorization` value registered with it; `_TENANTS` then limits the tenants accepted)."""
        env = os.environ if env is None else env
        get = lambda name, default=None: env.get(f"SCIMBUS_EXAMPLE_{name}", default)  # noqa: E731
        tenants = [t.strip() for t in (get("TENANTS") or "").split(",") if t.strip()]
        tokens: dict[str, str] = {}
        for pair in (get("EVENTS_TOKENS") or "").split(","):
            if "=" in pair:
                tenant, token = pair.split("=", 1)
                tokens[tenant.strip()] = token.strip()
        single = get("EVENTS_TOKEN")
        if single:
            if len(tenants) != 1:
                raise ValueError("SCIMBUS_EXAMPLE_EVENTS_TOKEN needs exactly one tenant in SCIMBUS_EXAMPLE_TENANTS")
            tokens[tenants[0]] = single
        tenants = tenants or sorted(tokens)
        app_token = get("APP_TOKEN") or None
        transport = get("TRANSPORT", cls.transport)
        if not tenants and app_token is None and transport != "sets":
            raise ValueError(
                "set SCIMBUS_EXAMPLE_TENANTS (and SCIMBUS_EXAMPLE_EVENTS_TOKENS for the pull API), "
                "or SCIMBUS_EXAMPLE_APP_TOKEN"
            )
        if transport not in ("broker", "pull", "sets"):
            raise ValueError(f"SCIMBUS_EXAMPLE_TRANSPORT is `broker`, `pull` or `sets`, not {transport!r}")
        if transport == "pull" and not get("SCIMBUS_URL"):
            raise ValueError("SCIMBUS_EXAMPLE_TRANSPORT=pull reads scimbus's pull API: set SCIMBUS_EXAMPLE_SCIMBUS_URL")
        if transport == "sets" and not (get("SCIMBUS_URL") and get("SET_AUDIENCE")):
            raise ValueError(
                "SCIMBUS_EXAMPLE_TRANSPORT=sets verifies SETs with scimbus's keys and the receiver's audience: "
                "set SCIMBUS_EXAMPLE_SCIMBUS_URL and SCIMBUS_EXAMPLE_SET_AUDIENCE"
            )
        return cls(
            transport=transport,
            app_token=app_token,
            poll_wait=float(get("POLL_WAIT", str(cls.poll_wait))),
            tenant_refresh_interval=float(get("TENANT_REFRESH_SECONDS", str(cls.tenant_refresh_interval))),
            amqp_url=get("AMQP_URL", cls.amqp_url),
            scimbus_url=get("SCIMBUS_URL"),
            tokens=tokens,
            tenants=tenants,
            queue=get("QUEUE", cls.queue),
            exchange=get("EXCHANGE", cls.exchange),
            declare_exchange=(get("DECLARE_EXCHANGE") or "").lower() in ("1", "true", "yes"),
            db_path=get("DB_PATH", cls.db_path),
            database_url=get("DATABASE_URL"),
            queue_arguments=json.loads(get("QUEUE_ARGUMENTS") or "{}"),
            gating_groups=[g.strip() for g in (get("GATING_GROUPS") or "").split(",") if g.strip()],
            mail_url=get("MAIL_URL"),
            session_service_url=get("SESSION_SERVICE_URL"),
            handler_delay_ms=int(get("HANDLER_DELAY_MS", "0")),
            max_attempts=int(get("MAX_ATTEMPTS", str(cls.max_attempts))),
            set_audience=get("SET_AUDIENCE"),
            set_authorization=get("SET_AUTHORIZATION"),
        )
