"""Client of scimbus's pull API (`/events/v1`): events, long-polls, snapshots and the
tenants a credential may read, with one bearer token per tenant or one application
credential for many tenants."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import httpx

ResourceType = Literal["Users", "Groups"]

APP_TOKEN_PREFIX = "scimbus_app_"
MAX_WAIT = 30
"""The longest `wait` scimbus accepts, in seconds."""
LONG_POLL_MARGIN = 10.0
"""A long-poll's read timeout is its `wait` plus this, so the client never gives up first."""
LIST_LIMIT = 1000


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


@dataclass(frozen=True)
class ListedTenant:
    tenant: str
    deleted: bool
    """Deleted in scimbus: its events (ending with `scimbus.tenant.deleted`) stay readable
    with an application credential until retention removes them."""


@dataclass(frozen=True)
class TenantList:
    """`GET /events/v1`, every page: the tenants the credential may read, by slug."""

    tenants: list[ListedTenant]
    all_tenants: bool
    """The credential covers every tenant, those created later included."""


class PullClient:
    """Reads events and snapshots, either with one token per tenant
    (`PullClient(url, {tenant: token})`, scope `events:read`) or with one application
    credential (`PullClient(url, app_token="scimbus_app_…")`) for every tenant it covers;
    `refresh()` lists those.

    Connections: long-polls (`events(…, wait=…)`) go through a pool of their own without a
    limit, since a consumer keeps one open per tenant it follows (so scimbus sees as many
    connections as followed tenants); every other request (catch-up pages, snapshots,
    resyncs, listings) shares a pool of at most `max_connections`. A burst of resyncs then
    cannot starve the long-polls, nor many tenants' long-polls the resyncs. A `transport`
    given carries both, with its own limits.
    """

    def __init__(
        self,
        base_url: str,
        tokens: Mapping[str, str] | None = None,
        *,
        app_token: str | None = None,
        timeout: float = 30.0,
        max_connections: int = 100,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if (tokens is None) == (app_token is None):
            raise ValueError("give either tokens={tenant: token} or app_token=")
        if app_token is not None and not app_token.startswith(APP_TOKEN_PREFIX):
            raise ValueError(f"an application credential starts with {APP_TOKEN_PREFIX!r}; per-tenant tokens go in tokens=")
        self.tokens = dict(tokens or {})
        self.app_token = app_token
        self.all_tenants = False
        """With an application credential, whether the last listing covered every tenant."""
        self._listed: dict[str, bool] = {}
        self.timeout = timeout
        base = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=base, timeout=timeout, transport=transport, limits=httpx.Limits(max_connections=max_connections)
        )
        self._polls = httpx.AsyncClient(
            base_url=base,
            timeout=timeout,
            transport=transport,
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
        )

    @property
    def tenants(self) -> list[str]:
        """The tenants it has a token for; with an application credential, those of the last
        listing (`refresh()`) that are not deleted."""
        if self.app_token is None:
            return sorted(self.tokens)
        return sorted(t for t, deleted in self._listed.items() if not deleted)

    @property
    def deleted_tenants(self) -> list[str]:
        """With an application credential, the tenants of the last listing that were deleted."""
        return sorted(t for t, deleted in self._listed.items() if deleted)

    def has_tenant(self, tenant: str) -> bool:
        """Whether it may read the tenant: a token for it, or an application credential
        that covers every tenant (a tenant newer than the last listing included) or listed it."""
        if self.app_token is None:
            return tenant in self.tokens
        return self.all_tenants or tenant in self._listed

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._polls.aclose()

    def _token(self, tenant: str) -> str:
        token = self.app_token or self.tokens.get(tenant)
        if token is None:
            raise NoToken(tenant)
        return token

    @staticmethod
    async def _send(
        client: httpx.AsyncClient, token: str, path: str, params: dict[str, Any], timeout: httpx.Timeout | None = None
    ) -> httpx.Response:
        return await client.get(
            path,
            params={k: v for k, v in params.items() if v is not None},
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
        )

    @staticmethod
    def _error(response: httpx.Response) -> PullError:
        try:
            detail = str(response.json().get("detail", ""))
        except ValueError:
            detail = response.text[:200]
        cls = Gone if response.status_code == 410 else PullError
        return cls(response.status_code, detail)

    async def events(
        self,
        tenant: str,
        after: int = 0,
        *,
        limit: int = 100,
        types: list[str] | None = None,
        wait: float | None = None,
    ) -> EventPage:
        """`GET /events/v1/{tenant}?after=&limit=&types=&wait=`: events in `sequence` order.

        With `wait` (seconds, rounded up to whole seconds, at most 30) scimbus holds the
        request while no event follows `after`, answering as soon as one commits, or with an
        empty page (`next` = `after`) when `wait` passes. Such a long-poll reads for up to
        `wait` + 10 s before timing out, in the long-poll pool."""
        if wait is not None and wait < 0:
            raise ValueError("wait must not be negative")
        seconds = min(MAX_WAIT, math.ceil(wait)) if wait else None
        params = {"after": after, "limit": limit, "types": ",".join(types) if types else None, "wait": seconds}
        path = f"/events/v1/{quote(tenant, safe='')}"
        token = self._token(tenant)
        if seconds is None:
            response = await self._send(self._http, token, path, params)
        else:
            timeout = httpx.Timeout(self.timeout, read=seconds + LONG_POLL_MARGIN)
            response = await self._send(self._polls, token, path, params, timeout)
        if response.status_code != 200:
            raise self._error(response)
        body = response.json()
        return EventPage(events=body["events"], next=int(body["next"]), has_more=bool(body["hasMore"]))

    async def snapshot_page(
        self, tenant: str, resource_type: ResourceType, after: str | None = None, *, limit: int = 100
    ) -> SnapshotPage:
        """`GET /events/v1/{tenant}/snapshot/{Users|Groups}?after=&limit=`."""
        response = await self._send(
            self._http,
            self._token(tenant),
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
        response = await self._send(
            self._http,
            self._token(tenant),
            f"/events/v1/{quote(tenant, safe='')}/snapshot/{resource_type}/{quote(resource_id, safe='')}",
            {},
        )
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._error(response)
        body: dict[str, Any] = response.json()
        return body

    async def list_tenants(self) -> TenantList:
        """`GET /events/v1?after=&limit=`, page by page: the tenants the credential may read,
        sorted by slug. With per-tenant tokens, each token lists its own tenant (401 for a
        token that no longer works, e.g. of a deleted tenant)."""
        if self.app_token is not None:
            return await self._list(self.app_token)
        listed: list[ListedTenant] = []
        for tenant in sorted(self.tokens):
            listed += (await self._list(self.tokens[tenant])).tenants
        return TenantList(tenants=listed, all_tenants=False)

    async def _list(self, token: str) -> TenantList:
        listed: list[ListedTenant] = []
        after: str | None = None
        while True:
            response = await self._send(self._http, token, "/events/v1", {"after": after, "limit": LIST_LIMIT})
            if response.status_code != 200:
                raise self._error(response)
            body = response.json()
            listed += [ListedTenant(tenant=t["tenant"], deleted=bool(t["deleted"])) for t in body["tenants"]]
            if not body["hasMore"] or body.get("next") is None:
                return TenantList(tenants=listed, all_tenants=bool(body["allTenants"]))
            after = body["next"]

    async def refresh(self) -> TenantList:
        """List the tenants (`list_tenants`); with an application credential they become
        `tenants`, `deleted_tenants` and `all_tenants`. Per-tenant tokens keep their tenants."""
        listing = await self.list_tenants()
        if self.app_token is not None:
            self._listed = {t.tenant: t.deleted for t in listing.tenants}
            self.all_tenants = listing.all_tenants
        return listing
