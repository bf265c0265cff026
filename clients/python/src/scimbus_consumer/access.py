"""Access as one concept: whether a user may use the app, tracked by the consumer on every
path that changes it, so an app writes one function that ends sessions.

A user has access when scimbus has them (created, not deleted, not gone on resync, tenant
not deleted), they are active, and, when the app gates access on groups for the tenant, they
are a direct member of at least one of those groups (by `displayName`). The consumer keeps
each user's last known presence, `active` and access in the store, in the event's own
transaction, and calls `on_access_revoked` / `on_access_granted` handlers only when access
changes, inside that transaction: the session revocation commits with the event or not at
all, and runs again if the event is processed again.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class AccessState:
    """What the store remembers of one user's access."""

    present: bool = False
    """scimbus has the user (a user event was applied and no deletion since)."""
    active: bool = False
    granted: bool = False
    """The access last reported to the app's handlers."""


class AccessReason(str, enum.Enum):
    """Why access changed."""

    PROVISIONED = "provisioned"
    """The user appeared (created, or found by a snapshot), active and, if gated, in a gate."""
    REACTIVATED = "reactivated"
    ADDED_TO_GROUP = "added_to_group"
    """Added to a gating group (or a group they are in became one)."""
    DEACTIVATED = "deactivated"
    """`active` became false: a deactivation, an update, a replace or a snapshot."""
    DELETED = "deleted"
    """`user.deleted`."""
    GONE = "gone"
    """A resync found the user no longer exists (deleted while events were missed, erased)."""
    REMOVED_FROM_GROUP = "removed_from_group"
    """No longer in any gating group: removed, the group deleted or renamed."""
    TENANT_DELETED = "tenant_deleted"


@dataclass(frozen=True)
class AccessChange:
    """What `on_access_revoked` / `on_access_granted` handlers get beside the context."""

    tenant: str
    user_id: str
    granted: bool
    reason: AccessReason
    event_id: str | None
    """The event that changed access (None for a resync that found the user gone)."""


class Gating:
    """The groups an app gates access on, by `displayName`: one list for every tenant, or a
    list per tenant (a tenant absent from the mapping is not gated)."""

    def __init__(self, groups: Iterable[str] | Mapping[str, Iterable[str]] | None) -> None:
        self._all: frozenset[str] | None = None
        self._per_tenant: dict[str, frozenset[str]] = {}
        if groups is None:
            return
        if isinstance(groups, Mapping):
            self._per_tenant = {t: frozenset(names) for t, names in groups.items()}
        elif isinstance(groups, str):
            raise TypeError("gating_groups takes a list of group display names, not one string")
        else:
            self._all = frozenset(groups)

    def gated(self, tenant: str) -> bool:
        names = self._all if self._all is not None else self._per_tenant.get(tenant)
        return bool(names)

    def is_gate(self, tenant: str, display_name: str | None) -> bool:
        names = self._all if self._all is not None else self._per_tenant.get(tenant, frozenset())
        return display_name is not None and display_name in names


def decide_access(state: AccessState, *, gated: bool, in_gate: bool) -> bool:
    return state.present and state.active and (not gated or in_gate)


def reason_for(old: AccessState, new: AccessState, granted: bool, *, removal: AccessReason) -> AccessReason:
    """Why access went from `old.granted` to `granted` given the user's old and new state;
    `removal` is the reason when the user is present and active (a gate membership)."""
    if granted:
        if not old.present:
            return AccessReason.PROVISIONED
        if not old.active:
            return AccessReason.REACTIVATED
        return AccessReason.ADDED_TO_GROUP
    if not new.present:
        return removal if removal in (AccessReason.GONE, AccessReason.TENANT_DELETED) else AccessReason.DELETED
    if not new.active:
        return AccessReason.DEACTIVATED
    return AccessReason.REMOVED_FROM_GROUP
