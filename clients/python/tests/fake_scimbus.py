"""A fake of scimbus's pull API for unit tests: a real HTTP server (aiohttp) on a random
local port serving the documented shapes from in-memory data. The end-to-end test against
scimbus itself lives with scimbus."""

from __future__ import annotations

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


class FakeScimbus:
    def __init__(self) -> None:
        self.tenants: dict[str, TenantData] = {}
        self.tokens: dict[str, tuple[str, set[str]]] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        app = web.Application()
        app.router.add_get("/events/v1/{tenant}", self._events)
        app.router.add_get("/events/v1/{tenant}/snapshot/{kind}", self._snapshot_page)
        app.router.add_get("/events/v1/{tenant}/snapshot/{kind}/{id}", self._snapshot_one)
        self._runner = web.AppRunner(app)
        self.base_url = ""

    def tenant(self, slug: str) -> TenantData:
        return self.tenants.setdefault(slug, TenantData())

    def add_token(self, token: str, tenant: str, scopes: set[str] | None = None) -> None:
        self.tokens[token] = (tenant, scopes if scopes is not None else {"events:read"})

    async def start(self) -> str:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def stop(self) -> None:
        await self._runner.cleanup()

    def _authorize(self, request: web.Request) -> web.Response | TenantData:
        self.requests.append((request.path, dict(request.query)))
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ") if header.startswith("Bearer ") else None
        tenant = request.match_info["tenant"]
        grant = self.tokens.get(token or "")
        if grant is None or grant[0] != tenant:
            return _error(401, "authentication required", **{"WWW-Authenticate": "Bearer"})
        if "events:read" not in grant[1]:
            return _error(403, "insufficient_scope")
        return self.tenant(tenant)

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
        matching = [
            e for e in data.events if int(e["sequence"]) > after and (types is None or e["type"] in types)
        ]
        page = matching[:limit]
        next_after = int(page[-1]["sequence"]) if page else after
        return web.json_response({"events": page, "next": next_after, "hasMore": len(matching) > limit})

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
