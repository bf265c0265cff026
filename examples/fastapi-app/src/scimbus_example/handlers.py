"""Event handlers: each writes through `ctx.session`, the transaction that also records the
event id and the resource version (SqlStore), so a crash never applies half an event."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from scimbus_consumer import AccessChange, Consumer, Context, Effect, ResourceGone, ScimGroup, ScimUser
from scimbus_consumer.models import (
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
)

from .db import Group, HandledEvent, Membership, Session, User

log = logging.getLogger("scimbus_example")


def _primary_email(user: ScimUser) -> str | None:
    emails = (user.model_extra or {}).get("emails") or []
    primary = [e for e in emails if isinstance(e, dict) and e.get("primary")] or emails
    value = primary[0].get("value") if primary and isinstance(primary[0], dict) else None
    return value if isinstance(value, str) else None


async def upsert_user(session: AsyncSession, tenant: str, user: ScimUser) -> None:
    await session.merge(
        User(
            tenant=tenant,
            id=user.id,
            user_name=user.user_name,
            display_name=user.display_name,
            email=_primary_email(user),
            active=user.is_active,
        )
    )


async def revoke_sessions(session: AsyncSession, tenant: str, user_id: str) -> None:
    await session.execute(delete(Session).where(Session.tenant == tenant, Session.user_id == user_id))


async def delete_user(session: AsyncSession, tenant: str, user_id: str) -> None:
    await revoke_sessions(session, tenant, user_id)
    await session.execute(delete(Membership).where(Membership.tenant == tenant, Membership.member_id == user_id))
    await session.execute(delete(User).where(User.tenant == tenant, User.id == user_id))


async def upsert_group(session: AsyncSession, tenant: str, group: ScimGroup) -> None:
    await session.merge(Group(tenant=tenant, id=group.id, display_name=group.display_name))


async def delete_group(session: AsyncSession, tenant: str, group_id: str) -> None:
    await session.execute(
        delete(Membership).where(
            Membership.tenant == tenant, (Membership.group_id == group_id) | (Membership.member_id == group_id)
        )
    )
    await session.execute(delete(Group).where(Group.tenant == tenant, Group.id == group_id))


def _poster(url: str | None, what: str) -> Callable[[Effect], Awaitable[None]]:
    """A performer that POSTs the effect's payload to `url` with its key as `Idempotency-Key`
    (the mail API and the session service dedupe on it); without a URL it only logs."""

    async def perform(effect: Effect) -> None:
        if url is None:
            log.info("%s (no service configured): %s", what, effect.payload)
            return
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(url, json=effect.payload, headers={"Idempotency-Key": effect.key})
            response.raise_for_status()

    return perform


class _Journaled:
    """`consumer.on` whose handlers first await the configured delay, then log the event in
    `handled_events` in the handler's own transaction."""

    def __init__(self, consumer: Consumer, delay_ms: int) -> None:
        self.consumer, self.delay = consumer, delay_ms / 1000

    def on(self, event_type: str) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]]:
        def register(handler: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
            async def journaled(event: Any, ctx: Context) -> None:
                if self.delay:
                    await asyncio.sleep(random.uniform(0, self.delay))
                await handler(event, ctx)
                ctx.session.add(
                    HandledEvent(
                        tenant=ctx.tenant, event_id=event.id, type=event.type, subject=event.subject, origin=ctx.origin
                    )
                )

            self.consumer.on(event_type)(journaled)
            return handler

        return register


def register(
    consumer_: Consumer, *, handler_delay_ms: int = 0, mail_url: str | None = None, session_service_url: str | None = None
) -> None:
    consumer = _Journaled(consumer_, handler_delay_ms)
    consumer_.effect("welcome_email")(_poster(mail_url, "welcome email"))
    consumer_.effect("end_sessions")(_poster(session_service_url, "end sessions"))

    @consumer.on("scimbus.user.created")
    @consumer.on("scimbus.user.updated")
    @consumer.on("scimbus.user.reactivated")
    async def user_changed(event: UserCreated | UserUpdated | UserReactivated, ctx: Context) -> None:
        await upsert_user(ctx.session, ctx.tenant, event.data.resource)
        if isinstance(event, UserCreated):
            user = event.data.resource
            # Sent after the commit, at least once, with a key the mail service dedupes on.
            await consumer_.defer(
                ctx,
                "welcome_email",
                key=f"welcome/{ctx.tenant}/{user.id}",
                payload={"tenant": ctx.tenant, "user_id": user.id, "to": _primary_email(user) or user.user_name},
            )

    @consumer.on("scimbus.user.deactivated")
    async def user_deactivated(event: UserDeactivated, ctx: Context) -> None:
        await upsert_user(ctx.session, ctx.tenant, event.data.resource)

    # Ending access is one function, whatever the path (deactivated, deleted, removed from
    # the gating groups, found gone by a resync, tenant deleted, erased).
    @consumer_.on_access_revoked
    async def access_revoked(change: AccessChange, ctx: Context) -> None:
        await revoke_sessions(ctx.session, change.tenant, change.user_id)
        # Sessions the app keeps outside its database (another service) end after the commit.
        await consumer_.defer(
            ctx,
            "end_sessions",
            key=f"end-sessions/{change.event_id or ctx.subject}/{change.tenant}/{change.user_id}",
            payload={"tenant": change.tenant, "user_id": change.user_id, "reason": change.reason.value},
        )

    @consumer.on("scimbus.user.snapshot")
    async def user_snapshot(event: UserSnapshot, ctx: Context) -> None:
        await upsert_user(ctx.session, ctx.tenant, event.data.resource)

    @consumer.on("scimbus.user.deleted")
    async def user_deleted(event: UserDeleted, ctx: Context) -> None:
        await delete_user(ctx.session, ctx.tenant, event.resource_id)

    @consumer.on("scimbus.group.created")
    @consumer.on("scimbus.group.updated")
    async def group_changed(event: GroupCreated | GroupUpdated, ctx: Context) -> None:
        await upsert_group(ctx.session, ctx.tenant, event.data.resource)

    @consumer.on("scimbus.group.snapshot")
    async def group_snapshot(event: GroupSnapshot, ctx: Context) -> None:
        group = event.data.resource
        await upsert_group(ctx.session, ctx.tenant, group)
        await ctx.session.execute(
            delete(Membership).where(Membership.tenant == ctx.tenant, Membership.group_id == group.id)
        )
        for member in {m.value for m in event.data.members}:
            ctx.session.add(Membership(tenant=ctx.tenant, group_id=group.id, member_id=member))

    @consumer.on("scimbus.group.deleted")
    async def group_deleted(event: GroupDeleted, ctx: Context) -> None:
        await delete_group(ctx.session, ctx.tenant, event.resource_id)

    @consumer.on("scimbus.group.members_added")
    async def members_added(event: GroupMembersAdded, ctx: Context) -> None:
        for member in event.data.members:
            await ctx.session.merge(Membership(tenant=ctx.tenant, group_id=event.data.group, member_id=member))

    @consumer.on("scimbus.group.members_removed")
    async def members_removed(event: GroupMembersRemoved, ctx: Context) -> None:
        await ctx.session.execute(
            delete(Membership).where(
                Membership.tenant == ctx.tenant,
                Membership.group_id == event.data.group,
                Membership.member_id.in_(event.data.members),
            )
        )

    @consumer.on("scimbus.tenant.deleted")
    async def tenant_deleted(event: TenantDeleted, ctx: Context) -> None:
        for table in (Session, Membership, Group, User, HandledEvent):
            await ctx.session.execute(delete(table).where(table.tenant == event.tenant))

    @consumer_.verifier
    async def matches(snapshot: Any, ctx: Context) -> bool:
        """For `scimbus-consumer reconcile`: do the app's rows equal the snapshot?"""
        if isinstance(snapshot, UserSnapshot):
            user = snapshot.data.resource
            row = await ctx.session.get(User, (ctx.tenant, user.id))
            return row is not None and (row.user_name, row.display_name, row.email, row.active) == (
                user.user_name, user.display_name, _primary_email(user), user.is_active
            )
        if isinstance(snapshot, GroupSnapshot):
            group = snapshot.data.resource
            row = await ctx.session.get(Group, (ctx.tenant, group.id))
            members = set(
                await ctx.session.scalars(
                    select(Membership.member_id).where(Membership.tenant == ctx.tenant, Membership.group_id == group.id)
                )
            )
            return row is not None and row.display_name == group.display_name and members == {
                m.value for m in snapshot.data.members
            }
        return True

    @consumer_.on_gone
    async def gone(item: ResourceGone, ctx: Context) -> None:
        if item.resource_type == "Users":
            await delete_user(ctx.session, item.tenant, item.resource_id)
        elif item.resource_type == "Groups":
            await delete_group(ctx.session, item.tenant, item.resource_id)
