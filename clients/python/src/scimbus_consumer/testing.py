"""Builders of scimbus events as they appear on the wire, for tests of apps that consume them.

`EventFactory` numbers `sequence` per tenant like scimbus does; every envelope it builds is
valid against the committed JSON Schemas (the package's own tests check that).
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import datetime, timezone
from typing import Any

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"


def uuid7() -> str:
    """A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, version 7, variant 10, random rest."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    return str(uuid.UUID(int=value))


def _timestamp() -> str:
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


class EventFactory:
    """Builds the envelopes of one tenant."""

    def __init__(self, tenant: str = "acme", public_url: str = "https://scim.example.com") -> None:
        self.tenant = tenant
        self.public_url = public_url.rstrip("/")
        self.sequence = 0

    def _meta(self, resource_type: str, resource_id: str, version: int) -> dict[str, Any]:
        now = _timestamp()
        return {
            "resourceType": resource_type,
            "created": now,
            "lastModified": now,
            "location": f"{self.public_url}/scim/v2/{self.tenant}/{resource_type}s/{resource_id}",
            "version": f'W/"{version}"',
        }

    def envelope(self, event_type: str, subject: str, data: dict[str, Any], *, sequence: int | None = None) -> dict[str, Any]:
        if sequence is None:
            self.sequence += 1
            sequence = self.sequence
        return {
            "specversion": "1.0",
            "id": uuid7(),
            "source": f"/scim/v2/{self.tenant}",
            "type": event_type,
            "subject": subject,
            "time": _timestamp(),
            "datacontenttype": "application/json",
            "dataschema": f"urn:scimbus:events:v1:{event_type}",
            "tenant": self.tenant,
            "sequence": f"{sequence:019d}",
            "data": data,
        }

    # --- resources -----------------------------------------------------------------------

    def user(self, user_id: str, version: int, *, user_name: str | None = None, active: bool = True, **attrs: Any) -> dict[str, Any]:
        resource = {
            "schemas": [USER_SCHEMA],
            "id": user_id,
            "userName": user_name or f"{user_id}@example.com",
            "active": active,
            **attrs,
            "meta": self._meta("User", user_id, version),
        }
        return resource

    def group(self, group_id: str, version: int, *, display_name: str | None = None, **attrs: Any) -> dict[str, Any]:
        return {
            "schemas": [GROUP_SCHEMA],
            "id": group_id,
            "displayName": display_name or group_id,
            **attrs,
            "meta": self._meta("Group", group_id, version),
        }

    # --- user events -----------------------------------------------------------------------

    def user_created(self, user_id: str, **attrs: Any) -> dict[str, Any]:
        resource = self.user(user_id, 1, **attrs)
        changed = [k for k in resource if k not in ("id", "meta")]
        data = {"resource": resource, "version": 1, "changed": changed, "previous": {}}
        return self.envelope("scimbus.user.created", f"Users/{user_id}", data)

    def user_updated(self, user_id: str, version: int, *, previous: dict[str, Any] | None = None, **attrs: Any) -> dict[str, Any]:
        previous = previous if previous is not None else {"displayName": None}
        data = {"resource": self.user(user_id, version, **attrs), "version": version, "changed": sorted(previous), "previous": previous}
        return self.envelope("scimbus.user.updated", f"Users/{user_id}", data)

    def user_deactivated(self, user_id: str, version: int, **attrs: Any) -> dict[str, Any]:
        data = {
            "resource": self.user(user_id, version, active=False, **attrs),
            "version": version,
            "changed": ["active"],
            "previous": {"active": True},
        }
        return self.envelope("scimbus.user.deactivated", f"Users/{user_id}", data)

    def user_reactivated(self, user_id: str, version: int, **attrs: Any) -> dict[str, Any]:
        data = {
            "resource": self.user(user_id, version, active=True, **attrs),
            "version": version,
            "changed": ["active"],
            "previous": {"active": False},
        }
        return self.envelope("scimbus.user.reactivated", f"Users/{user_id}", data)

    def user_deleted(self, user_id: str, version: int, **attrs: Any) -> dict[str, Any]:
        data = {"resource": self.user(user_id, version - 1, **attrs), "version": version, "changed": [], "previous": {}}
        return self.envelope("scimbus.user.deleted", f"Users/{user_id}", data)

    def user_snapshot(self, user_id: str, version: int, *, sequence: int | None = None, **attrs: Any) -> dict[str, Any]:
        data = {"resource": self.user(user_id, version, **attrs), "version": version}
        return self.envelope("scimbus.user.snapshot", f"Users/{user_id}", data, sequence=self.sequence if sequence is None else sequence)

    # --- group events ----------------------------------------------------------------------

    def group_created(self, group_id: str, **attrs: Any) -> dict[str, Any]:
        resource = self.group(group_id, 1, **attrs)
        changed = [k for k in resource if k not in ("id", "meta")]
        data = {"resource": resource, "version": 1, "changed": changed, "previous": {}}
        return self.envelope("scimbus.group.created", f"Groups/{group_id}", data)

    def group_updated(self, group_id: str, version: int, *, previous: dict[str, Any] | None = None, **attrs: Any) -> dict[str, Any]:
        previous = previous if previous is not None else {"displayName": "old"}
        data = {"resource": self.group(group_id, version, **attrs), "version": version, "changed": sorted(previous), "previous": previous}
        return self.envelope("scimbus.group.updated", f"Groups/{group_id}", data)

    def group_deleted(self, group_id: str, version: int, **attrs: Any) -> dict[str, Any]:
        data = {"resource": self.group(group_id, version - 1, **attrs), "version": version, "changed": [], "previous": {}}
        return self.envelope("scimbus.group.deleted", f"Groups/{group_id}", data)

    def members_added(self, group_id: str, version: int, members: list[str], *, chunk: tuple[int, int] = (1, 1)) -> dict[str, Any]:
        data = {"group": group_id, "version": version, "members": members, "chunk": {"index": chunk[0], "count": chunk[1]}}
        return self.envelope("scimbus.group.members_added", f"Groups/{group_id}", data)

    def members_removed(self, group_id: str, version: int, members: list[str], *, chunk: tuple[int, int] = (1, 1)) -> dict[str, Any]:
        data = {"group": group_id, "version": version, "members": members, "chunk": {"index": chunk[0], "count": chunk[1]}}
        return self.envelope("scimbus.group.members_removed", f"Groups/{group_id}", data)

    def group_snapshot(
        self,
        group_id: str,
        version: int,
        members: list[str | tuple[str, str]] = (),  # type: ignore[assignment]
        *,
        sequence: int | None = None,
        **attrs: Any,
    ) -> dict[str, Any]:
        refs = [{"value": m, "type": "User"} if isinstance(m, str) else {"value": m[0], "type": m[1]} for m in members]
        data = {"resource": self.group(group_id, version, **attrs), "version": version, "members": refs}
        return self.envelope("scimbus.group.snapshot", f"Groups/{group_id}", data, sequence=self.sequence if sequence is None else sequence)

    # --- tenant ---------------------------------------------------------------------------------

    def tenant_created(self) -> dict[str, Any]:
        """The tenant's first event: build it before any other (sequence 1)."""
        return self.envelope("scimbus.tenant.created", f"Tenants/{self.tenant}", {"tenant": self.tenant})

    def tenant_deleted(self) -> dict[str, Any]:
        return self.envelope("scimbus.tenant.deleted", f"Tenants/{self.tenant}", {"tenant": self.tenant})
