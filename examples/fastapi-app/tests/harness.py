"""What the end-to-end tests of the example app share: a real scimbus process on a fresh
PostgreSQL database with exchanges of its own, the example app as its own uvicorn process,
a SCIM client, and the clean-up of what they leave on the broker.

scripts/python-test builds the binary and sets SCIMBUS_BIN; SCIMBUS_TEST_DATABASE_URL names
an administrative PostgreSQL database to create the test databases from."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from typing import Any

import aio_pika
import httpx
from aiohttp import web

BIN = os.environ.get("SCIMBUS_BIN")
ADMIN_DB = os.environ.get("SCIMBUS_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
AMQP_URL = "amqp://guest:guest@{}:{}/".format(
    os.environ.get("SCIMBUS_TEST_AMQP_HOST", "127.0.0.1"), os.environ.get("SCIMBUS_TEST_AMQP_PORT", "5672")
)
ADMIN_TOKEN = "e2e-admin-token-0123456789"
METRICS_TOKEN = "e2e-metrics-token-0123456789"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
WAIT = 30.0
# A bound on an example app's start: uvicorn's import and the consumer's first connection
# can take over 30 s on a 2-core machine while a storm test loads scimbus and the broker.
START_WAIT = 120.0

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Scimbus:
    """A scimbus process on a fresh PostgreSQL database with exchanges of its own, or
    without RabbitMQ at all (`broker=False`: apps read its pull API); `env` adds to (or
    overrides) its environment."""

    def __init__(self, run: str, *, broker: bool = True, env: dict[str, str] | None = None) -> None:
        self.broker = broker
        self.extra_env = dict(env or {})
        self.db = f"scimbus_e2e_{run}"
        self.exchange = f"e2e.{run}.events"
        self.unrouted = f"e2e.{run}.unrouted"
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self) -> None:
        subprocess.run(["psql", ADMIN_DB, "-qc", f"CREATE DATABASE {self.db}"], check=True)
        base, _, _ = ADMIN_DB.rpartition("/")
        env = {
            "PATH": os.environ.get("PATH", ""),
            "SCIMBUS_DATABASE_URL": f"{base}/{self.db}",
            "SCIMBUS_LISTEN": "127.0.0.1:0",
            "SCIMBUS_RATE_LIMIT": "off",
            "SCIMBUS_ADMIN_TOKEN": ADMIN_TOKEN,
            "SCIMBUS_METRICS_TOKEN": METRICS_TOKEN,
            "SCIMBUS_LOG": "warn",
        }
        if self.broker:
            env |= {
                "SCIMBUS_AMQP_URL": AMQP_URL + "%2f",
                "SCIMBUS_AMQP_EXCHANGE": self.exchange,
                "SCIMBUS_AMQP_UNROUTED_EXCHANGE": self.unrouted,
                "SCIMBUS_AMQP_UNROUTED_QUEUE": self.unrouted,
                "SCIMBUS_RELAY_POLL_MS": "200",
            }
        env |= self.extra_env
        assert BIN is not None
        self.proc = subprocess.Popen([BIN, "serve"], env=env, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # "scimbus is serving on http://127.0.0.1:PORT (…)"
        assert "serving on" in line, line
        self.url = line.split("serving on ", 1)[1].split()[0]

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        subprocess.run(["psql", ADMIN_DB, "-qc", f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)"], check=False)


class ExampleApp:
    """The example FastAPI app under uvicorn, as its own process (so it can be killed):
    `tenants` maps each tenant to its `events:read` token, or `app_token` (an application
    credential) lets it find its tenants; `transport="pull"` runs it without RabbitMQ."""

    def __init__(
        self,
        db_path: str,
        queue: str,
        exchange: str,
        scimbus_url: str,
        tenants: dict[str, str],
        *,
        workers: int = 1,
        env: dict[str, str] | None = None,
        transport: str = "broker",
        app_token: str | None = None,
    ) -> None:
        self.port = free_port()
        self.workers = workers
        self.url = f"http://127.0.0.1:{self.port}"
        credentials = (
            {"SCIMBUS_EXAMPLE_APP_TOKEN": app_token}
            if app_token is not None
            else {
                "SCIMBUS_EXAMPLE_EVENTS_TOKENS": ",".join(f"{t}={k}" for t, k in tenants.items()),
                "SCIMBUS_EXAMPLE_TENANTS": ",".join(tenants),
            }
        )
        self.env = {
            **os.environ,
            "SCIMBUS_EXAMPLE_TRANSPORT": transport,
            "SCIMBUS_EXAMPLE_AMQP_URL": AMQP_URL,
            "SCIMBUS_EXAMPLE_SCIMBUS_URL": scimbus_url,
            **credentials,
            "SCIMBUS_EXAMPLE_QUEUE": queue,
            "SCIMBUS_EXAMPLE_EXCHANGE": exchange,
            "SCIMBUS_EXAMPLE_DB_PATH": db_path,
            **(env or {}),
        }
        self.db_path = db_path
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "uvicorn", "scimbus_example.app:app", "--port", str(self.port),
                "--log-level", "warning", "--workers", str(self.workers),
            ],
            env=self.env,
        )
        async with httpx.AsyncClient() as client:
            deadline = time.monotonic() + START_WAIT
            while time.monotonic() < deadline:
                assert self.proc.poll() is None, "the example app exited"
                try:
                    health = (await client.get(f"{self.url}/healthz")).json()
                    if health.get("consuming"):
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError("the example app did not start consuming")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def sessions(self, user_id: str) -> int:
        with sqlite3.connect(self.db_path) as db:
            return db.execute("SELECT COUNT(*) FROM sessions WHERE user_id = ?", (user_id,)).fetchone()[0]


class Scim:
    def __init__(self, client: httpx.AsyncClient, base: str, token: str) -> None:
        self.client, self.base, self.token = client, base, token

    async def call(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        response = await self.client.request(
            method,
            f"{self.base}{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/scim+json"},
        )
        assert response.status_code == expect, (method, path, response.status_code, response.text)
        return response.json() if response.content else None



async def issue_app_credential(client: httpx.AsyncClient, scimbus: Scimbus, name: str) -> str:
    """An application credential that reads every tenant, those created later included."""
    r = await client.post(
        f"{scimbus.url}/admin/v1/apps",
        json={"name": name, "all_tenants": True},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert r.status_code == 201, r.text
    token: str = r.json()["token"]
    return token


BRAKE_OFF = {
    "enabled": False,
    "window_seconds": 3600,
    "users": {"count": 500, "percent": 20.0, "min": 25},
    "members": {"count": 5000, "percent": 20.0, "min": 250},
    "groups": {"count": 100, "percent": 20.0, "min": 10},
    "auto_release_seconds": None,
}
"""Brake settings that never hold: for tests that deprovision most of a tenant on purpose."""


async def set_brake(client: httpx.AsyncClient, scimbus: Scimbus, tenant: str, settings: dict[str, Any]) -> None:
    r = await client.put(
        f"{scimbus.url}/admin/v1/tenants/{tenant}/brake", json=settings, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert r.status_code == 200, r.text


async def provision_tenant(client: httpx.AsyncClient, scimbus: Scimbus, tenant: str) -> tuple[Scim, str]:
    """Creates the tenant; returns a SCIM client with an IdP token, and an `events:read` token."""
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    r = await client.post(f"{scimbus.url}/admin/v1/tenants", json={"slug": tenant}, headers=admin)
    assert r.status_code == 201, r.text
    r = await client.post(f"{scimbus.url}/admin/v1/tenants/{tenant}/tokens", json={"name": "idp"}, headers=admin)
    assert r.status_code == 201, r.text
    scim = Scim(client, f"{scimbus.url}/scim/v2/{tenant}", r.json()["token"])
    r = await client.post(
        f"{scimbus.url}/admin/v1/tenants/{tenant}/tokens",
        json={"name": "example-app", "scopes": ["events:read"]},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    return scim, r.json()["token"]


async def delete_broker_objects(queue: str, scimbus: Scimbus) -> None:
    """Removes the app's queues and exchanges and scimbus's (each on its own channel: a
    failed delete closes the channel)."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        for kind, name in (
            ("queue", queue),
            ("queue", f"{queue}.dlq"),
            ("queue", scimbus.unrouted),
            ("exchange", scimbus.exchange),
            ("exchange", scimbus.unrouted),
            ("exchange", f"{queue}.dlx"),
        ):
            channel = await connection.channel()
            try:
                if kind == "queue":
                    await channel.queue_delete(name)
                else:
                    await channel.exchange_delete(name)
            except Exception:  # noqa: BLE001 - clean-up of what may not exist
                pass


def queue_consumers(queue: str) -> int:
    """How many consumers the queue has, waiting ones included (AMQP's declare-ok counts only
    the active one of a single-active-consumer queue), from `rabbitmqctl list_consumers`."""
    listed = subprocess.run(
        ["rabbitmqctl", "list_consumers", "-q", "--no-table-headers", "queue_name"],
        capture_output=True, text=True, check=True, timeout=60,
    )
    return sum(1 for line in listed.stdout.splitlines() if line.strip() == queue)


class Services:
    """Stand-ins for the mail API and the session service the example app calls after commit:
    they record each POST with its `Idempotency-Key`."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        app = web.Application()
        app.router.add_post("/{service}", self._record)
        self._runner = web.AppRunner(app)
        self.url = ""

    async def _record(self, request: web.Request) -> web.Response:
        self.calls.append((request.match_info["service"], request.headers.get("Idempotency-Key", ""), await request.json()))
        return web.json_response({}, status=202)

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        await self._runner.cleanup()

    def env(self) -> dict[str, str]:
        return {"SCIMBUS_EXAMPLE_MAIL_URL": f"{self.url}/mail", "SCIMBUS_EXAMPLE_SESSION_SERVICE_URL": f"{self.url}/sessions"}

    def of(self, service: str) -> list[tuple[str, dict[str, Any]]]:
        return [(key, body) for s, key, body in self.calls if s == service]
