"""A fake of scimbus's pull API for unit tests: a real HTTP server (aiohttp) on a random
local port serving the documented shapes from in-memory data, with long-polls (`wait`),
per-tenant tokens, application credentials and the tenant listing. The end-to-end test
against scimbus itself lives with scimbus."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


def _error(status: int, detail: str, **headers: str) -> web.Response:
    body = {"schemas": [ERROR_SCHEMA], "status": str(status), "detail": detail}
    return web.json_response(body, status=status, headers=headers)


@dataclass
class TenantData:
    events: list[dict[str, Any]] = field(default_factory=list)
    """Envelopes in `sequence` order."""
    retained_after: int = 0
    """`after` below this answers 410 Gone (older events were pruned)."""
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Snapshot envelopes by resource id."""
    snapshot_sequence: int | None = None
    """`sequence` of snapshot pages; default: the last event's."""
    deleted: bool = False
    """Deleted in scimbus: listed with `deleted: true`, its per-tenant tokens answer 401."""


class FakeScimbus:
    def __init__(self) -> None:
        self.tenants: dict[str, TenantData] = {}
        self.tokens: dict[str, tuple[str, set[str]]] = {}
        self.app_tokens: dict[str, set[str] | None] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.held: dict[str, int] = {}
        """Long-polls being held now, by tenant."""
        self._appended = asyncio.Condition()
        app = web.Application()
        app.router.add_get("/events/v1", self._list)
        app.router.add_get("/events/v1/{tenant}", self._events)
        app.router.add_get("/events/v1/{tenant}/snapshot/{kind}", self._snapshot_page)
        app.router.add_get("/events/v1/{tenant}/snapshot/{kind}/{id}", self._snapshot_one)
        # A client that gives up on a long-poll ends its handler, as scimbus does.
        self._runner = web.AppRunner(app, handler_cancellation=True)
        self.base_url = ""

    def tenant(self, slug: str) -> TenantData:
        return self.tenants.setdefault(slug, TenantData())

    def add_token(self, token: str, tenant: str, scopes: set[str] | None = None) -> None:
        self.tokens[token] = (tenant, scopes if scopes is not None else {"events:read"})

    def add_app_token(self, token: str, tenants: set[str] | None = None) -> None:
        """An application credential (`scimbus_app_…`) for `tenants`, or every tenant (None)."""
        self.app_tokens[token] = tenants

    async def append_event(self, tenant: str, envelope: dict[str, Any]) -> None:
        """Commit an event: long-polls waiting on the tenant answer at once."""
        async with self._appended:
            self.tenant(tenant).events.append(envelope)
            self._appended.notify_all()

    async def long_polled(self, tenant: str, timeout: float = 10.0) -> None:
        """Wait (bounded) until a long-poll of the tenant is held, waiting for an event."""
        async with self._appended:
            await asyncio.wait_for(self._appended.wait_for(lambda: self.held.get(tenant, 0) > 0), timeout)

    async def start(self) -> str:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def stop(self) -> None:
        await self._runner.cleanup()

    @staticmethod
    def _bearer(request: web.Request) -> str:
        header = request.headers.get("Authorization", "")
        return header.removeprefix("Bearer ") if header.startswith("Bearer ") else ""

    def _covers(self, token: str, tenant: str) -> bool:
        """Whether an application credential covers an existing tenant."""
        if token not in self.app_tokens or tenant not in self.tenants:
            return False
        covered = self.app_tokens[token]
        return covered is None or tenant in covered

    def _authorize(self, request: web.Request) -> web.Response | TenantData:
        self.requests.append((request.path, dict(request.query)))
        token = self._bearer(request)
        tenant = request.match_info["tenant"]
        if self._covers(token, tenant):
            return self.tenants[tenant]
        grant = self.tokens.get(token)
        if grant is None or grant[0] != tenant or self.tenant(tenant).deleted:
            return _error(401, "authentication required", **{"WWW-Authenticate": "Bearer"})
        if "events:read" not in grant[1]:
            return _error(403, "insufficient_scope")
        return self.tenant(tenant)

    async def _list(self, request: web.Request) -> web.Response:
        self.requests.append((request.path, dict(request.query)))
        token = self._bearer(request)
        if token in self.app_tokens:
            readable = sorted(t for t in self.tenants if self._covers(token, t))
            all_tenants = self.app_tokens[token] is None
        elif token in self.tokens and "events:read" in self.tokens[token][1] and not self.tenant(self.tokens[token][0]).deleted:
            readable, all_tenants = [self.tokens[token][0]], False
        else:
            return _error(401, "authentication required", **{"WWW-Authenticate": "Bearer"})
        after = request.query.get("after")
        limit = int(request.query.get("limit", "100"))
        rest = [t for t in readable if after is None or t > after]
        page = rest[:limit]
        has_more = len(rest) > limit
        return web.json_response(
            {
                "tenants": [{"tenant": t, "deleted": self.tenants[t].deleted} for t in page],
                "allTenants": all_tenants,
                "next": page[-1] if has_more else None,
                "hasMore": has_more,
            }
        )

    def _sequence(self, data: TenantData) -> int:
        if data.snapshot_sequence is not None:
            return data.snapshot_sequence
        return int(data.events[-1]["sequence"]) if data.events else 0

    async def _events(self, request: web.Request) -> web.Response:
        data = self._authorize(request)
        if isinstance(data, web.Response):
            return data
        after = int(request.query.get("after", "0"))
        limit = int(request.query.get("limit", "100"))
        if after < data.retained_after:
            return _error(410, "events after this sequence were pruned")
        types = set(request.query["types"].split(",")) if "types" in request.query else None

        def matching() -> list[dict[str, Any]]:
            return [e for e in data.events if int(e["sequence"]) > after and (types is None or e["type"] in types)]

        wait = int(request.query.get("wait", "0"))
        if wait and not matching():
            tenant = request.match_info["tenant"]
            async with self._appended:
                self.held[tenant] = self.held.get(tenant, 0) + 1
                self._appended.notify_all()
                try:
                    await asyncio.wait_for(self._appended.wait_for(lambda: bool(matching())), wait)
                except TimeoutError:
                    pass
                finally:
                    self.held[tenant] -= 1
        found = matching()
        page = found[:limit]
        next_after = int(page[-1]["sequence"]) if page else after
        return web.json_response({"events": page, "next": next_after, "hasMore": len(found) > limit})

    async def _snapshot_page(self, request: web.Request) -> web.Response:
        data = self._authorize(request)
        if isinstance(data, web.Response):
            return data
        kind = request.match_info["kind"]
        resources = {"Users": data.users, "Groups": data.groups}.get(kind)
        if resources is None:
            return _error(404, "not found")
        after = request.query.get("after")
        limit = int(request.query.get("limit", "100"))
        ids = sorted(i for i in resources if after is None or i > after)
        page = ids[:limit]
        has_more = len(ids) > limit
        sequence = self._sequence(data)
        events = [{**resources[i], "sequence": f"{sequence:019d}"} for i in page]
        return web.json_response(
            {"events": events, "next": page[-1] if has_more else None, "hasMore": has_more, "sequence": sequence}
        )

    async def _snapshot_one(self, request: web.Request) -> web.Response:
        data = self._authorize(request)
        if isinstance(data, web.Response):
            return data
        resources = {"Users": data.users, "Groups": data.groups}.get(request.match_info["kind"], {})
        snapshot = resources.get(request.match_info["id"])
        if snapshot is None:
            return _error(404, "resource not found")
        return web.json_response({**snapshot, "sequence": f"{self._sequence(data):019d}"})
