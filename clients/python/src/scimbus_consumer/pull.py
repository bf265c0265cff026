"""Client of scimbus's pull API (`/events/v1/{tenant}`), one bearer token per tenant."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import httpx

ResourceType = Literal["Users", "Groups"]


class PullError(Exception):
    """The pull API answered with an error; `status` and `detail` come from its SCIM error body."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"pull API answered {status}: {detail}")
        self.status = status
        self.detail = detail


class Gone(PullError):
    """410: `after` is older than the retention window; a full resync is needed."""


class NoToken(LookupError):
    """No token is configured for the tenant."""


@dataclass(frozen=True)
class EventPage:
    events: list[dict[str, Any]]
    next: int
    has_more: bool


@dataclass(frozen=True)
class SnapshotPage:
    events: list[dict[str, Any]]
    next: str | None
    has_more: bool
    sequence: int


class PullClient:
    """Reads events and snapshots of the tenants it holds a token for (scope `events:read`)."""

    def __init__(
        self,
        base_url: str,
        tokens: Mapping[str, str],
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.tokens = dict(tokens)
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport)

    @property
    def tenants(self) -> list[str]:
        return sorted(self.tokens)

    def has_tenant(self, tenant: str) -> bool:
        return tenant in self.tokens

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _get(self, tenant: str, path: str, params: dict[str, Any]) -> httpx.Response:
        token = self.tokens.get(tenant)
        if token is None:
            raise NoToken(tenant)
        response = await self._http.get(
            path,
            params={k: v for k, v in params.items() if v is not None},
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )
        return response

    @staticmethod
    def _error(response: httpx.Response) -> PullError:
        try:
            detail = str(response.json().get("detail", ""))
        except ValueError:
            detail = response.text[:200]
        cls = Gone if response.status_code == 410 else PullError
        return cls(response.status_code, detail)

    async def events(
        self, tenant: str, after: int = 0, *, limit: int = 100, types: list[str] | None = None
    ) -> EventPage:
        """`GET /events/v1/{tenant}?after=&limit=&types=`: events in `sequence` order."""
        response = await self._get(
            tenant,
            f"/events/v1/{quote(tenant, safe='')}",
            {"after": after, "limit": limit, "types": ",".join(types) if types else None},
        )
        if response.status_code != 200:
            raise self._error(response)
        body = response.json()
        return EventPage(events=body["events"], next=int(body["next"]), has_more=bool(body["hasMore"]))

    async def snapshot_page(
        self, tenant: str, resource_type: ResourceType, after: str | None = None, *, limit: int = 100
    ) -> SnapshotPage:
        """`GET /events/v1/{tenant}/snapshot/{Users|Groups}?after=&limit=`."""
        response = await self._get(
            tenant,
            f"/events/v1/{quote(tenant, safe='')}/snapshot/{resource_type}",
            {"after": after, "limit": limit},
        )
        if response.status_code != 200:
            raise self._error(response)
        body = response.json()
        return SnapshotPage(
            events=body["events"],
            next=body.get("next"),
            has_more=bool(body["hasMore"]),
            sequence=int(body["sequence"]),
        )

    async def snapshot_one(self, tenant: str, resource_type: str, resource_id: str) -> dict[str, Any] | None:
        """`GET /events/v1/{tenant}/snapshot/{Users|Groups}/{id}`; None when it no longer exists."""
        response = await self._get(
            tenant,
            f"/events/v1/{quote(tenant, safe='')}/snapshot/{resource_type}/{quote(resource_id, safe='')}",
            {},
        )
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._error(response)
        body: dict[str, Any] = response.json()
        return body
