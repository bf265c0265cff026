"""End to end: a real scimbus (PostgreSQL + RabbitMQ, the binary in SCIMBUS_BIN) and the
example app as its own process. Okta- and Entra-style sequences go over SCIM; the app's
state is checked after each step within a bounded wait. Then the app is killed mid-stream
and restarted: the final state is correct and the side effect it commits with the SQL
dedupe store (one welcome email per user) ran once per user.

scripts/python-test builds the binary and sets SCIMBUS_BIN; SCIMBUS_TEST_DATABASE_URL names
an administrative PostgreSQL database to create the test database from."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import aio_pika
import httpx
import pytest

BIN = os.environ.get("SCIMBUS_BIN")
ADMIN_DB = os.environ.get("SCIMBUS_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
AMQP_URL = "amqp://guest:guest@{}:{}/".format(
    os.environ.get("SCIMBUS_TEST_AMQP_HOST", "127.0.0.1"), os.environ.get("SCIMBUS_TEST_AMQP_PORT", "5672")
)
ADMIN_TOKEN = "e2e-admin-token-0123456789"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
WAIT = 30.0

pytestmark = pytest.mark.skipif(not BIN, reason="SCIMBUS_BIN is not set (scripts/python-test sets it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Scimbus:
    """A scimbus process on a fresh PostgreSQL database with exchanges of its own."""

    def __init__(self, run: str) -> None:
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
            "SCIMBUS_AMQP_URL": AMQP_URL + "%2f",
            "SCIMBUS_AMQP_EXCHANGE": self.exchange,
            "SCIMBUS_AMQP_UNROUTED_EXCHANGE": self.unrouted,
            "SCIMBUS_AMQP_UNROUTED_QUEUE": self.unrouted,
            "SCIMBUS_RELAY_POLL_MS": "200",
            "SCIMBUS_LOG": "warn",
        }
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
    """The example FastAPI app under uvicorn, as its own process (so it can be killed)."""

    def __init__(self, db_path: str, queue: str, exchange: str, scimbus_url: str, tenants: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "SCIMBUS_EXAMPLE_AMQP_URL": AMQP_URL,
            "SCIMBUS_EXAMPLE_SCIMBUS_URL": scimbus_url,
            "SCIMBUS_EXAMPLE_EVENTS_TOKENS": ",".join(f"{t}={k}" for t, k in tenants.items()),
            "SCIMBUS_EXAMPLE_TENANTS": ",".join(tenants),
            "SCIMBUS_EXAMPLE_QUEUE": queue,
            "SCIMBUS_EXAMPLE_EXCHANGE": exchange,
            "SCIMBUS_EXAMPLE_DB_PATH": db_path,
        }
        self.db_path = db_path
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "scimbus_example.app:app", "--port", str(self.port), "--log-level", "warning"],
            env=self.env,
        )
        async with httpx.AsyncClient() as client:
            deadline = time.monotonic() + WAIT
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

    def welcome_emails(self) -> list[tuple[str, str]]:
        with sqlite3.connect(self.db_path) as db:
            return list(db.execute("SELECT tenant, user_id FROM welcome_emails"))

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


@pytest.fixture
async def world(tmp_path) -> AsyncIterator[dict[str, Any]]:
    run = uuid.uuid4().hex[:12]
    scimbus = Scimbus(run)
    scimbus.start()
    apps: list[ExampleApp] = []
    queue = f"e2e.{run}.example-app"
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            tokens: dict[str, str] = {}
            scim: dict[str, Scim] = {}
            for tenant in ("okta-co", "entra-co"):
                r = await client.post(f"{scimbus.url}/admin/v1/tenants", json={"slug": tenant}, headers=admin)
                assert r.status_code == 201, r.text
                r = await client.post(
                    f"{scimbus.url}/admin/v1/tenants/{tenant}/tokens", json={"name": "idp"}, headers=admin
                )
                scim[tenant] = Scim(client, f"{scimbus.url}/scim/v2/{tenant}", r.json()["token"])
                r = await client.post(
                    f"{scimbus.url}/admin/v1/tenants/{tenant}/tokens",
                    json={"name": "example-app", "scopes": ["events:read"]},
                    headers=admin,
                )
                tokens[tenant] = r.json()["token"]

            def new_app() -> ExampleApp:
                app = ExampleApp(str(tmp_path / "app.db"), queue, scimbus.exchange, scimbus.url, tokens)
                apps.append(app)
                return app

            yield {"client": client, "scim": scim, "new_app": new_app}
    finally:
        for app in apps:
            app.stop()
        scimbus.stop()
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            for name in (queue, f"{queue}.dlq"):
                channel = await connection.channel()
                try:
                    await channel.queue_delete(name)
                except Exception:  # noqa: BLE001 - cleanup of what may not exist
                    pass
            for name in (scimbus.exchange, scimbus.unrouted, f"{queue}.dlx"):
                channel = await connection.channel()
                try:
                    await channel.exchange_delete(name)
                except Exception:  # noqa: BLE001
                    pass
            channel = await connection.channel()
            try:
                await channel.queue_delete(scimbus.unrouted)
            except Exception:  # noqa: BLE001
                pass


async def eventually(client: httpx.AsyncClient, app: ExampleApp, check: Callable[[dict[str, dict]], bool], what: str) -> dict[str, dict]:
    """Polls the app's `GET /users` until `check` holds, within WAIT seconds."""
    deadline = time.monotonic() + WAIT
    users: dict[str, dict] = {}
    while time.monotonic() < deadline:
        users = {u["id"]: u for u in (await client.get(f"{app.url}/users")).json()}
        if check(users):
            return users
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {WAIT}s: {what}; the app has {users}")


async def lifecycle(client, app: ExampleApp, scim: Scim, tenant: str, dialect: str) -> str:
    """create, update, add to group, deactivate (sessions revoked), reactivate, delete."""
    okta = dialect == "okta"
    name = "ada.lovelace@example.com" if okta else "grace.hopper@contoso.com"
    body = {
        "schemas": [USER] if okta else [USER, ENTERPRISE],
        "userName": name,
        "externalId": "00u1okta" if okta else "8d5e-entra",
        "name": {"givenName": name.split(".")[0].title(), "familyName": "Test"},
        "emails": [{"primary": True, "value": name, "type": "work"}],
        "displayName": "First Name",
        "active": True,
    }
    if not okta:
        body[ENTERPRISE] = {"department": "Research"}
    user = await scim.call("POST", "/Users", body, expect=201)
    uid = user["id"]
    await eventually(client, app, lambda u: uid in u and u[uid]["active"] and u[uid]["email"] == name, "created")

    if okta:  # Okta OIN: path-less replace
        update = {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"displayName": "Second Name"}}]}
    else:  # Entra: capitalised op with a path
        update = {"schemas": [PATCH], "Operations": [{"op": "Replace", "path": "displayName", "value": "Second Name"}]}
    await scim.call("PATCH", f"/Users/{uid}", update)
    await eventually(client, app, lambda u: u[uid]["displayName"] == "Second Name", "updated")

    group = await scim.call("POST", "/Groups", {"schemas": [GROUP], "displayName": f"{tenant} staff"}, expect=201)
    add = {"schemas": [PATCH], "Operations": [{"op": "add" if okta else "Add", "path": "members", "value": [{"value": uid}]}]}
    await scim.call("PATCH", f"/Groups/{group['id']}", add, expect=204)
    await eventually(client, app, lambda u: u[uid]["groups"] == [f"{tenant} staff"], "added to the group")

    r = await client.post(f"{app.url}/sessions", json={"tenant": tenant, "user_id": uid})
    assert r.status_code == 201
    assert app.sessions(uid) == 1
    if okta:
        off = {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": False}}]}
    else:
        off = {"schemas": [PATCH], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]}
    await scim.call("PATCH", f"/Users/{uid}", off)
    await eventually(client, app, lambda u: not u[uid]["active"], "deactivated")
    assert app.sessions(uid) == 0, "deactivation revokes the user's sessions"
    r = await client.post(f"{app.url}/sessions", json={"tenant": tenant, "user_id": uid})
    assert r.status_code == 403

    if okta:
        on = {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": True}}]}
    else:
        on = {"schemas": [PATCH], "Operations": [{"op": "Replace", "path": "active", "value": "True"}]}
    await scim.call("PATCH", f"/Users/{uid}", on)
    await eventually(client, app, lambda u: u[uid]["active"], "reactivated")

    await scim.call("DELETE", f"/Users/{uid}", expect=204)
    await eventually(client, app, lambda u: uid not in u, "deleted")
    return uid


async def test_okta_and_entra_sequences_then_a_consumer_killed_mid_stream(world) -> None:
    client, scim = world["client"], world["scim"]
    app: ExampleApp = world["new_app"]()
    await app.start()
    okta_user = await lifecycle(client, app, scim["okta-co"], "okta-co", "okta")
    entra_user = await lifecycle(client, app, scim["entra-co"], "entra-co", "entra")

    # A burst of creations; the app is killed with SIGKILL once it has applied some of them.
    burst = 40
    ids: list[str] = []

    async def write() -> None:
        for i in range(burst):
            user = await scim["okta-co"].call("POST", "/Users", {"schemas": [USER], "userName": f"burst{i}@example.com"}, expect=201)
            ids.append(user["id"])

    writer = asyncio.create_task(write())
    await eventually(client, app, lambda u: sum(1 for x in u.values() if x["userName"].startswith("burst")) >= 5, "part of the burst")
    app.kill()
    await writer

    restarted: ExampleApp = world["new_app"]()
    await restarted.start()
    users = await eventually(client, restarted, lambda u: all(i in u for i in ids), "the whole burst after the restart")
    assert all(users[i]["active"] for i in ids)
    assert okta_user not in users and entra_user not in users

    emails = restarted.welcome_emails()
    assert len(emails) == len(set(emails)), "a side effect ran twice"
    assert sorted(uid for _, uid in emails) == sorted([okta_user, entra_user, *ids])
