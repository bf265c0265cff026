"""The app's own tables: what it knows of users, their sessions, groups and memberships."""

from __future__ import annotations

from sqlalchemy import Boolean, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    tenant: Mapped[str] = mapped_column(String(63), primary_key=True)
    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_name: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    email: Mapped[str | None] = mapped_column(String(255), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Session(Base):
    """A login session of the app; deactivating or deleting the user revokes them."""

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(63), index=True)
    user_id: Mapped[str] = mapped_column(String(255), index=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)


class Group(Base):
    __tablename__ = "groups"

    tenant: Mapped[str] = mapped_column(String(63), primary_key=True)
    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(255))


class Membership(Base):
    """Direct membership; `member_id` is a user or a group (events do not say which), so it
    has no foreign key, and a membership may arrive before its member."""

    __tablename__ = "memberships"

    tenant: Mapped[str] = mapped_column(String(63), primary_key=True)
    group_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(255), primary_key=True, index=True)


class HandledEvent(Base):
    """The app's activity log: one row per event whose handler ran and committed, written in
    the handler's transaction (so a row means the handler's writes are in too)."""

    __tablename__ = "handled_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(63), index=True)
    event_id: Mapped[str] = mapped_column(String(36), index=True)
    type: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(512))
    origin: Mapped[str] = mapped_column(String(16))


__all__ = ["Base", "Group", "HandledEvent", "Membership", "Session", "User"]
