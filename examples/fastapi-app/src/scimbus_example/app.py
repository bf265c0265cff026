"""The FastAPI app: `GET /users`, `GET /healthz`, `POST /sessions`, and the consumer in
the lifespan. Run with `uvicorn scimbus_example.app:app` (settings from the environment)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from scimbus_consumer import Consumer, PullClient
from scimbus_consumer.fastapi import ActiveUser, require_active_user, set_push_router
from scimbus_consumer.sets import SetReceiver, SetVerifier
from scimbus_consumer.sql_store import SqlStore, sqlite_engine

from .db import Base, Group, Membership, Session, User
from .handlers import register
from .settings import Settings


class Provisioning:
    """The database and the consumer of one app instance."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine: AsyncEngine = (
            create_async_engine(settings.database_url) if settings.database_url else sqlite_engine(settings.db_path)
        )
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self.store = SqlStore(self.sessionmaker)
        pull: PullClient | None = None
        if settings.scimbus_url and settings.app_token:
            pull = PullClient(settings.scimbus_url, app_token=settings.app_token)
        elif settings.scimbus_url and settings.tokens:
            pull = PullClient(settings.scimbus_url, settings.tokens)
        broker = settings.transport == "broker"
        sets = settings.transport == "sets"
        self.consumer = Consumer(
            external=sets,
            amqp_url=settings.amqp_url if broker else None,
            queue=settings.queue if broker else None,
            exchange=settings.exchange,
            declare_exchange=settings.declare_exchange,
            tenants=settings.tenants or None,
            poll_wait=settings.poll_wait,
            tenant_refresh_interval=settings.tenant_refresh_interval,
            store=self.store,
            pull=pull,
            max_attempts=settings.max_attempts,
            queue_arguments=settings.queue_arguments,
            reconnect_interval=settings.reconnect_interval,
            auto_delete_dead_letter_exchange=settings.auto_delete_dead_letter_exchange,
            gating_groups=settings.gating_groups or None,
        )
        self.set_receiver: SetReceiver | None = None
        if sets:
            assert settings.scimbus_url is not None and settings.set_audience is not None
            base = settings.scimbus_url.rstrip("/")
            # Each tenant's SCIM base URL, or (no tenants named) every tenant of this scimbus.
            issuers = [f"{base}/scim/v2/{t}" for t in settings.tenants] or [f"{base}/scim/v2/"]
            verifier = SetVerifier(f"{base}/sets/v1/jwks.json", issuers=issuers, audience=settings.set_audience)
            self.set_receiver = SetReceiver(self.consumer, verifier)
        register(
            self.consumer,
            handler_delay_ms=settings.handler_delay_ms,
            mail_url=settings.mail_url,
            session_service_url=settings.session_service_url,
        )

    async def create_tables(self) -> None:
        # Safe when several workers start together (one lock on PostgreSQL).
        await SqlStore.create_tables(self.engine, Base.metadata)

    async def close(self) -> None:
        if self.set_receiver is not None:
            await self.set_receiver.verifier.jwks.aclose()
        await self.engine.dispose()


class UserOut(BaseModel):
    tenant: str
    id: str
    userName: str
    displayName: str | None
    email: str | None
    active: bool
    groups: list[str]


class SessionIn(BaseModel):
    tenant: str
    user_id: str


def create_app(provisioning: Provisioning | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        prov = provisioning or Provisioning(Settings.from_env())
        app.state.provisioning = prov
        await prov.create_tables()
        try:
            async with prov.consumer.lifespan(app):
                yield
        finally:
            await prov.close()

    app = FastAPI(title="scimbus example app", lifespan=lifespan)
    if provisioning is not None:
        app.state.provisioning = provisioning

    def db(request: Request) -> async_sessionmaker[AsyncSession]:
        prov: Provisioning = request.app.state.provisioning
        return prov.sessionmaker

    def set_receiver(request: Request) -> SetReceiver:
        prov: Provisioning = request.app.state.provisioning
        if prov.set_receiver is None:
            raise HTTPException(status_code=404, detail="this app does not receive SETs (SCIMBUS_EXAMPLE_TRANSPORT=sets)")
        return prov.set_receiver

    def set_authorization(request: Request) -> str | None:
        prov: Provisioning = request.app.state.provisioning
        return prov.settings.set_authorization

    # Security event tokens scimbus pushes (RFC 8935), with SCIMBUS_EXAMPLE_TRANSPORT=sets.
    app.include_router(set_push_router(set_receiver, authorization=set_authorization), prefix="/scim-events")

    @app.get("/users", response_model=list[UserOut])
    async def list_users(request: Request, tenant: str | None = None) -> list[dict[str, Any]]:
        async with request.app.state.provisioning.store.reading() as session:
            query = select(User).order_by(User.tenant, User.user_name)
            if tenant is not None:
                query = query.where(User.tenant == tenant)
            users = list(await session.scalars(query))
            rows = await session.execute(
                select(Membership.tenant, Membership.member_id, Group.display_name)
                .join(Group, (Group.tenant == Membership.tenant) & (Group.id == Membership.group_id))
                .order_by(Group.display_name)
            )
            groups: dict[tuple[str, str], list[str]] = {}
            for t, member, name in rows:
                groups.setdefault((t, member), []).append(name)
        return [
            {
                "tenant": u.tenant,
                "id": u.id,
                "userName": u.user_name,
                "displayName": u.display_name,
                "email": u.email,
                "active": u.active,
                "groups": groups.get((u.tenant, u.id), []),
            }
            for u in users
        ]

    async def session_user(request: Request, authorization: str = Header("")) -> tuple[str, str] | None:
        """The app's own session lookup: `Authorization: Bearer <session token>`."""
        token = authorization.removeprefix("Bearer ").strip()
        if not token:
            return None
        prov: Provisioning = request.app.state.provisioning
        async with prov.store.reading() as session:  # a read: no write lock on SQLite
            row = await session.scalar(select(Session).where(Session.token == token))
        return None if row is None else (row.tenant, row.user_id)

    active_user = require_active_user(lambda request: request.app.state.provisioning.consumer.store, session_user)

    @app.post("/sessions", status_code=201)
    async def open_session(request: Request, body: SessionIn) -> dict[str, str]:
        """Log a user in (a stand-in for the app's real login): only users with access get a
        session (the same rule as `GET /me`)."""
        prov: Provisioning = request.app.state.provisioning
        async with prov.store.reading() as tx:
            access = await prov.store.access_of(body.tenant, body.user_id, tx)
        if access is None or not access.granted:
            raise HTTPException(status_code=403, detail="unknown user or no access")
        async with db(request)() as session, session.begin():
            token = secrets.token_hex(16)
            session.add(Session(tenant=body.tenant, user_id=body.user_id, token=token))
        return {"token": token}

    @app.get("/me")
    async def me(user: ActiveUser = Depends(active_user)) -> dict[str, str]:  # noqa: B008
        """What a signed-in user sees; refused (403) once scimbus has taken their access away."""
        return {"tenant": user.tenant, "id": user.user_id}

    @app.get("/healthz")
    async def healthz(request: Request) -> dict[str, Any]:
        """Liveness: the app serves (with or without the broker), and where the consumer is."""
        consumer = request.app.state.provisioning.consumer
        status = consumer.status()
        return {
            "status": "ok",
            "transport": status.transport,
            "broker": status.broker_connected,
            "consuming": consumer.consuming.is_set(),
            "state": status.state,
            "lag_seconds": status.lag_seconds,
        }

    @app.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        """Readiness: 200 while the consumer consumes (over a live broker connection, or with
        its last long-polls answered), else 503 with the consumer's state (connecting,
        catching_up, reconnecting, failed)."""
        status = request.app.state.provisioning.consumer.status()
        body = {"ready": status.ready, "state": status.state, "error": status.last_error}
        return JSONResponse(body, status_code=200 if status.ready else 503)

    return app


async def build_consumer() -> Consumer:
    """The app's consumer with its handlers, store and pull client, from the environment, for
    `scimbus-consumer reconcile|dead-letters|effects --consumer scimbus_example.app:build_consumer`."""
    prov = Provisioning(Settings.from_env())
    await prov.create_tables()
    return prov.consumer


def __getattr__(name: str) -> Any:
    # `uvicorn scimbus_example.app:app` builds the app on first use, from the environment.
    if name == "app":
        return create_app()
    raise AttributeError(name)
