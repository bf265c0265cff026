"""The storm: three consumer processes of the example app on one queue and one PostgreSQL
database (one `uvicorn` process, and one `uvicorn --workers 2`), handlers that await a random
delay, and a fixed-seed random sequence of SCIM operations on up to 200 users and 20 groups
sent to a real scimbus by four concurrent clients. The active consumer is killed with
SIGKILL part-way and started again. At the end the app's accounts, groups and memberships
equal scimbus's, and every event scimbus emitted was handled exactly once by its own
handler (none skipped by a resync, none run twice). The same storm runs in pull-only mode:
a scimbus with no broker, the three processes each long-polling its pull API; and over
security event tokens pushed by scimbus (RFC 8935) to one app process with two workers
behind one port, killed (every worker) and started again.

Seeds and size: SCIMBUS_STORM_SEEDS (default 1,2,3; the pull-only storm runs the first),
SCIMBUS_STORM_OPERATIONS (default 2000)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections import Counter
from typing import Any

import asyncpg
import httpx
import pytest

from harness import ADMIN_TOKEN, BRAKE_OFF, METRICS_TOKEN, set_brake, ADMIN_DB, BIN, GROUP, PATCH, USER, ExampleApp, Scim, Scimbus, delete_broker_objects, provision_tenant, queue_consumers
from scimbus_consumer import PullClient

pytestmark = pytest.mark.skipif(not BIN, reason="SCIMBUS_BIN is not set (scripts/python-test sets it)")

SEEDS = [int(s) for s in os.environ.get("SCIMBUS_STORM_SEEDS", "1,2,3").split(",") if s.strip()]
OPERATIONS = int(os.environ.get("SCIMBUS_STORM_OPERATIONS", "2000"))
MAX_USERS, MAX_GROUPS = 200, 20
CLIENTS = 4
TENANT = "storm"
CONVERGE = 180.0


class Storm:
    """Chooses and sends operation `i` from `random.Random(seed * 1_000_003 + i)`; the ids it
    picks come from what scimbus answered so far (concurrent clients may race for one id,
    so a 404 from a concurrent delete is an accepted answer)."""

    def __init__(self, scim: Scim, seed: int) -> None:
        self.scim, self.seed = scim, seed
        self.users: list[str] = []
        self.groups: list[str] = []
        self.created = 0
        self.counts: Counter[str] = Counter()

    async def call(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 204)) -> Any:
        response = await self.scim.client.request(
            method,
            f"{self.scim.base}{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.scim.token}", "Content-Type": "application/scim+json"},
        )
        assert response.status_code in (*ok, 404), (method, path, body, response.status_code, response.text)
        return response.json() if response.status_code != 404 and response.content else None

    async def run(self, i: int) -> None:
        rng = random.Random(self.seed * 1_000_003 + i)
        roll = rng.random()
        okta = rng.random() < 0.5
        if not self.users or (len(self.users) < MAX_USERS and roll < 0.15):
            return await self.create_user(rng)
        if not self.groups or (len(self.groups) < MAX_GROUPS and roll < 0.20):
            return await self.create_group()
        user, group = rng.choice(self.users), rng.choice(self.groups)
        if roll < 0.35:
            self.counts["update"] += 1
            name = f"Name {rng.randrange(10**6)}"
            op = (
                {"op": "replace", "value": {"displayName": name, "emails": [{"value": f"{rng.randrange(10**6)}@x.example", "primary": True}]}}
                if okta
                else {"op": "Replace", "path": "displayName", "value": name}
            )
            await self.call("PATCH", f"/Users/{user}", {"schemas": [PATCH], "Operations": [op]})
        elif roll < 0.45:
            self.counts["deactivate"] += 1
            op = {"op": "replace", "value": {"active": False}} if okta else {"op": "Replace", "path": "active", "value": "False"}
            await self.call("PATCH", f"/Users/{user}", {"schemas": [PATCH], "Operations": [op]})
        elif roll < 0.52:
            self.counts["reactivate"] += 1
            op = {"op": "replace", "value": {"active": True}} if okta else {"op": "Replace", "path": "active", "value": "True"}
            await self.call("PATCH", f"/Users/{user}", {"schemas": [PATCH], "Operations": [op]})
        elif roll < 0.56:
            self.counts["put"] += 1
            current = await self.call("GET", f"/Users/{user}")
            if current is not None:
                body = {"schemas": [USER], "userName": current["userName"], "displayName": f"Put {i}", "active": rng.random() < 0.7}
                await self.call("PUT", f"/Users/{user}", body)
        elif roll < 0.59:
            self.counts["delete user"] += 1
            if user in self.users:
                self.users.remove(user)
            await self.call("DELETE", f"/Users/{user}")
        elif roll < 0.80:
            self.counts["add members"] += 1
            members = [{"value": u} for u in rng.sample(self.users, min(len(self.users), rng.randint(1, 5)))]
            op = {"op": "add" if okta else "Add", "path": "members", "value": members}
            await self.call("PATCH", f"/Groups/{group}", {"schemas": [PATCH], "Operations": [op]}, ok=(200, 204, 400))
        elif roll < 0.93:
            self.counts["remove members"] += 1
            if okta:
                op = {"op": "remove", "path": f'members[value eq "{user}"]'}
            else:
                op = {"op": "Remove", "path": "members", "value": [{"value": user}]}
            await self.call("PATCH", f"/Groups/{group}", {"schemas": [PATCH], "Operations": [op]})
        elif roll < 0.97:
            self.counts["rename group"] += 1
            op = {"op": "replace", "value": {"displayName": f"group {rng.randrange(10**9)}"}}
            await self.call("PATCH", f"/Groups/{group}", {"schemas": [PATCH], "Operations": [op]})
        else:
            self.counts["delete group"] += 1
            if group in self.groups:
                self.groups.remove(group)
            await self.call("DELETE", f"/Groups/{group}")

    async def create_user(self, rng: random.Random) -> None:
        self.counts["create user"] += 1
        self.created += 1
        name = f"user{self.created}@storm.example"
        body = {
            "schemas": [USER],
            "userName": name,
            "displayName": f"User {self.created}",
            "emails": [{"value": name, "primary": True, "type": "work"}],
            "active": rng.random() < 0.9,
        }
        user = await self.call("POST", "/Users", body, ok=(201,))
        self.users.append(user["id"])

    async def create_group(self) -> None:
        self.counts["create group"] += 1
        self.created += 1
        group = await self.call("POST", "/Groups", {"schemas": [GROUP], "displayName": f"group {self.created}"}, ok=(201,))
        self.groups.append(group["id"])


async def scimbus_state(scim: Scim) -> dict[str, Any]:
    users = (await scim.call("GET", "/Users?count=1000"))["Resources"]
    groups = (await scim.call("GET", "/Groups?count=1000"))["Resources"]

    def email(user: dict[str, Any]) -> str | None:
        emails = user.get("emails") or []
        primary = [e for e in emails if e.get("primary")] or emails
        return primary[0]["value"] if primary else None

    return {
        "users": {u["id"]: (u["userName"], u.get("displayName"), email(u), u.get("active", True)) for u in users},
        "groups": {g["id"]: (g["displayName"], sorted(m["value"] for m in g.get("members", []))) for g in groups},
    }


async def app_state(db: asyncpg.Connection) -> dict[str, Any]:
    users = await db.fetch("SELECT id, user_name, display_name, email, active FROM users WHERE tenant = $1", TENANT)
    groups = await db.fetch("SELECT id, display_name FROM groups WHERE tenant = $1", TENANT)
    members: dict[str, list[str]] = {}
    for row in await db.fetch("SELECT group_id, member_id FROM memberships WHERE tenant = $1", TENANT):
        members.setdefault(row["group_id"], []).append(row["member_id"])
    return {
        "users": {r["id"]: (r["user_name"], r["display_name"], r["email"], r["active"]) for r in users},
        "groups": {r["id"]: (r["display_name"], sorted(members.get(r["id"], []))) for r in groups},
    }


async def emitted_events(base_url: str, token: str) -> list[dict[str, Any]]:
    pull = PullClient(base_url, {TENANT: token})
    events: list[dict[str, Any]] = []
    after = 0
    try:
        while True:
            page = await pull.events(TENANT, after=after, limit=500)
            events.extend(page.events)
            after = page.next
            if not page.has_more:
                return events
    finally:
        await pull.aclose()


def diff(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    lines = []
    for kind in ("users", "groups"):
        for key in sorted(set(expected[kind]) | set(actual[kind])):
            if expected[kind].get(key) != actual[kind].get(key):
                lines.append(f"{kind} {key}: scimbus {expected[kind].get(key)} app {actual[kind].get(key)}")
    return lines


@pytest.mark.parametrize("seed", SEEDS)
async def test_three_consumer_processes_and_a_kill_converge_with_every_handler_run_once(seed: int, tmp_path) -> None:
    await storm_with_a_kill(seed, tmp_path, transport="broker")


async def test_three_pull_only_processes_without_a_broker_and_a_kill_converge_with_every_handler_run_once(tmp_path) -> None:
    await storm_with_a_kill(SEEDS[0], tmp_path, transport="pull")


async def storm_with_a_kill(seed: int, tmp_path: Any, *, transport: str) -> None:
    run = uuid.uuid4().hex[:12]
    scimbus = Scimbus(run, broker=transport == "broker")
    scimbus.start()
    app_db = f"storm_app_{run}"
    subprocess.run(["psql", ADMIN_DB, "-qc", f"CREATE DATABASE {app_db}"], check=True)
    base = ADMIN_DB.rsplit("/", 1)[0]
    queue = f"storm.{run}.example-app"
    apps: list[ExampleApp] = []
    started = time.monotonic()
    try:
        async with httpx.AsyncClient(timeout=60) as client:
            scim, token = await provision_tenant(client, scimbus, TENANT)
            # A deliberate mass deprovisioning: the brake (on by default) would hold it.
            await set_brake(client, scimbus, TENANT, BRAKE_OFF)
            env = {
                "SCIMBUS_EXAMPLE_DATABASE_URL": f"{base.replace('postgres://', 'postgresql+asyncpg://', 1)}/{app_db}",
                "SCIMBUS_EXAMPLE_HANDLER_DELAY_MS": "20",
            }

            def new_app(workers: int = 1) -> ExampleApp:
                app = ExampleApp(
                    str(tmp_path / "unused.db"), queue, scimbus.exchange, scimbus.url, {TENANT: token},
                    workers=workers, env=env, transport=transport,
                )
                apps.append(app)
                return app

            first = new_app()
            await first.start()  # registered first: the queue's active consumer
            await new_app(workers=2).start()
            deadline = time.monotonic() + 30
            while transport == "broker" and queue_consumers(queue) < 3:
                assert time.monotonic() < deadline, f"the three consumers did not register ({queue_consumers(queue)})"
                await asyncio.sleep(0.1)

            storm = Storm(scim, seed)
            pending = iter(range(OPERATIONS))
            kill_at, restart_at = OPERATIONS * 2 // 5, OPERATIONS * 13 // 20
            restarted: list[ExampleApp] = []

            async def client_loop() -> None:
                for i in pending:
                    if i == kill_at:
                        first.kill()
                    elif i == restart_at:
                        again = new_app()
                        await again.start()
                        restarted.append(again)
                    await storm.run(i)

            await asyncio.gather(*(client_loop() for _ in range(CLIENTS)))
            sent = time.monotonic()
            assert restarted, "the killed consumer was started again"

            expected = await scimbus_state(scim)
            db = await asyncpg.connect(f"{base}/{app_db}")
            try:
                deadline = time.monotonic() + CONVERGE
                actual = await app_state(db)
                while actual != expected and time.monotonic() < deadline:
                    await asyncio.sleep(0.5)
                    actual = await app_state(db)
                converged = time.monotonic()
                assert actual == expected, "\n".join(diff(expected, actual)[:40])

                events = await emitted_events(scimbus.url, token)
                runs = Counter(
                    r["event_id"]
                    for r in await db.fetch(
                        "SELECT event_id FROM handled_events WHERE tenant = $1 AND type NOT LIKE '%.snapshot'", TENANT
                    )
                )
            finally:
                await db.close()
            # The tenant existed before the app: its bootstrap snapshot starts after its
            # tenant.created, and its queue did not exist when that was published.
            emitted = {e["id"] for e in events if e["type"] != "scimbus.tenant.created"}
            skipped = sorted(emitted - set(runs))
            twice = sorted(e for e, n in runs.items() if n > 1)
            unknown = sorted(set(runs) - emitted)
            assert not skipped and not twice and not unknown, (
                f"{len(skipped)} handlers skipped, {len(twice)} run twice, {len(unknown)} not emitted: "
                f"{skipped[:5]} {twice[:5]} {unknown[:5]}"
            )
            # The reconciliation command, with the app's verifier, finds nothing to repair.
            check = subprocess.run(
                [sys.executable, "-m", "scimbus_consumer", "reconcile", "--check", "--grace", "0",
                 "--consumer", "scimbus_example.app:build_consumer"],
                env=first.env, capture_output=True, text=True, timeout=120,
            )
            assert check.returncode == 0, check.stdout + check.stderr
            print(
                f"{transport}, seed {seed}: {OPERATIONS} operations {dict(storm.counts)}, {len(events)} events, "
                f"{len(expected['users'])} users and {len(expected['groups'])} groups at the end; "
                f"sent in {sent - started:.1f}s, converged {converged - sent:.1f}s later"
            )
    finally:
        for app in apps:
            app.stop()
        scimbus.stop()
        subprocess.run(["psql", ADMIN_DB, "-qc", f"DROP DATABASE IF EXISTS {app_db} WITH (FORCE)"], check=False)
        await delete_broker_objects(queue, scimbus)


async def test_a_storm_pushed_as_sets_to_two_workers_and_a_kill_converges_with_every_handler_run_once(tmp_path) -> None:
    """The storm over SET push, no RabbitMQ: scimbus pushes each SET of the tenant to the
    app's `POST /scim-events` on one port served by two uvicorn workers (consecutive SETs
    land on either); the app (all its processes) is killed part-way and started again on
    the same port while scimbus retries. The app ends in scimbus's state, every emitted event
    handled once by its own handler (the handled id is the SET's `jti`, the event's id), and
    scimbus parked nothing."""
    seed = SEEDS[0]
    run = uuid.uuid4().hex[:12]
    audience, authorization = "https://storm-app.test/scim-events", "Bearer storm-push-secret"
    scimbus = Scimbus(
        run,
        broker=False,
        env={"SCIMBUS_SET_KEY_SECRET": "storm-set-key-secret-0123456789abcdef", "SCIMBUS_SET_PUSH_ALLOW_PRIVATE": "on"},
    )
    scimbus.start()
    app_db = f"storm_app_{run}"
    subprocess.run(["psql", ADMIN_DB, "-qc", f"CREATE DATABASE {app_db}"], check=True)
    base = ADMIN_DB.rsplit("/", 1)[0]
    app: ExampleApp | None = None
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    started = time.monotonic()
    try:
        async with httpx.AsyncClient(timeout=60) as client:
            scim, token = await provision_tenant(client, scimbus, TENANT)
            await set_brake(client, scimbus, TENANT, BRAKE_OFF)
            app = ExampleApp(
                str(tmp_path / "unused.db"), f"unused.{run}", f"unused.{run}", scimbus.url, {TENANT: token},
                workers=2, transport="sets",
                env={
                    "SCIMBUS_EXAMPLE_DATABASE_URL": f"{base.replace('postgres://', 'postgresql+asyncpg://', 1)}/{app_db}",
                    "SCIMBUS_EXAMPLE_HANDLER_DELAY_MS": "20",
                    "SCIMBUS_EXAMPLE_SET_AUDIENCE": audience,
                    "SCIMBUS_EXAMPLE_SET_AUTHORIZATION": authorization,
                },
            )
            await app.start()
            r = await client.post(
                f"{scimbus.url}/admin/v1/tenants/{TENANT}/receivers",
                json={"name": "storm-app", "endpoint": f"{app.url}/scim-events", "authorization": authorization,
                      "audience": audience, "after": 0},
                headers=admin,
            )
            assert r.status_code == 201, r.text
            receiver = r.json()["id"]

            storm = Storm(scim, seed)
            pending = iter(range(OPERATIONS))
            kill_at, restart_at = OPERATIONS * 2 // 5, OPERATIONS * 13 // 20
            restarted: list[bool] = []

            async def client_loop() -> None:
                assert app is not None
                for i in pending:
                    if i == kill_at:
                        # Every process of the app: the workers first, then their parent.
                        assert app.proc is not None
                        subprocess.run(["pkill", "-KILL", "-P", str(app.proc.pid)], check=False)
                        app.kill()
                    elif i == restart_at:
                        await app.start()
                        restarted.append(True)
                    await storm.run(i)

            await asyncio.gather(*(client_loop() for _ in range(CLIENTS)))
            sent = time.monotonic()
            assert restarted, "the killed app was started again"

            expected = await scimbus_state(scim)
            db = await asyncpg.connect(f"{base}/{app_db}")
            try:
                deadline = time.monotonic() + CONVERGE
                actual = await app_state(db)
                while actual != expected and time.monotonic() < deadline:
                    await asyncio.sleep(0.5)
                    actual = await app_state(db)
                converged = time.monotonic()
                assert actual == expected, "\n".join(diff(expected, actual)[:40])
                events = await emitted_events(scimbus.url, token)
                emitted = {e["id"] for e in events if e["type"] != "scimbus.tenant.created"}
                deadline = time.monotonic() + CONVERGE
                while True:
                    runs = Counter(
                        r["event_id"]
                        for r in await db.fetch(
                            "SELECT event_id FROM handled_events WHERE tenant = $1 AND type NOT LIKE '%.snapshot'", TENANT
                        )
                    )
                    # The state can match before the last events (of resources that ended
                    # as they started) are handled.
                    if emitted <= set(runs) or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.5)
            finally:
                await db.close()
            skipped = sorted(emitted - set(runs))
            twice = sorted(e for e, n in runs.items() if n > 1)
            unknown = sorted(set(runs) - emitted)
            assert not skipped and not twice and not unknown, (
                f"{len(skipped)} handlers skipped, {len(twice)} run twice, {len(unknown)} not emitted: "
                f"{skipped[:5]} {twice[:5]} {unknown[:5]}"
            )
            r = await client.get(f"{scimbus.url}/admin/v1/tenants/{TENANT}/receivers/{receiver}/parked", headers=admin)
            assert r.json()["parked"] == [], r.text
            print(
                f"sets push, seed {seed}: {OPERATIONS} operations {dict(storm.counts)}, {len(events)} events, "
                f"{len(expected['users'])} users and {len(expected['groups'])} groups at the end; "
                f"sent in {sent - started:.1f}s, converged {converged - sent:.1f}s later"
            )
    finally:
        if app is not None and app.proc is not None:
            subprocess.run(["pkill", "-KILL", "-P", str(app.proc.pid)], check=False)
            app.stop()
        scimbus.stop()
        subprocess.run(["psql", ADMIN_DB, "-qc", f"DROP DATABASE IF EXISTS {app_db} WITH (FORCE)"], check=False)


async def test_a_queue_that_refuses_publishes_still_ends_in_scimbus_state(tmp_path) -> None:
    """DESIGN 12: after the broker refuses an event (the app's queue is full, `x-overflow:
    reject-publish`), the relay retries it and it can arrive after later events of its
    resource; the consumer orders by version (resync on the gap, the late event then stale)
    and ends in scimbus's state for every resource."""
    run = uuid.uuid4().hex[:12]
    scimbus = Scimbus(run)
    scimbus.start()
    queue = f"refuse.{run}.example-app"
    app: ExampleApp | None = None
    try:
        async with httpx.AsyncClient(timeout=60) as client:
            scim, token = await provision_tenant(client, scimbus, TENANT)
            # A deliberate mass deprovisioning: the brake (on by default) would hold it.
            await set_brake(client, scimbus, TENANT, BRAKE_OFF)
            env = {
                "SCIMBUS_EXAMPLE_QUEUE_ARGUMENTS": json.dumps({"x-max-length": 5, "x-overflow": "reject-publish"}),
                "SCIMBUS_EXAMPLE_HANDLER_DELAY_MS": "30",
            }
            app = ExampleApp(str(tmp_path / "app.db"), queue, scimbus.exchange, scimbus.url, {TENANT: token}, env=env)
            await app.start()
            storm = Storm(scim, seed=7)
            pending = iter(range(OPERATIONS // 4))

            async def client_loop() -> None:
                for i in pending:
                    await storm.run(i)

            await asyncio.gather(*(client_loop() for _ in range(CLIENTS)))
            metrics = (
                await client.get(f"{scimbus.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
            ).text
            refused = sum(
                float(line.split()[-1]) for line in metrics.splitlines() if line.startswith("scimbus_relay_publish_failures")
            )
            assert refused > 0, "the broker never refused a publish: the test proves nothing"

            expected = await scimbus_state(scim)
            deadline = time.monotonic() + CONVERGE
            actual = await app_state_sqlite(app.db_path)
            while actual != expected and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                actual = await app_state_sqlite(app.db_path)
            assert actual == expected, "\n".join(diff(expected, actual)[:40])
            print(f"refusing queue: {refused:.0f} publishes refused and retried, state equal")
    finally:
        if app is not None:
            app.stop()
        scimbus.stop()
        await delete_broker_objects(queue, scimbus)


async def app_state_sqlite(path: str) -> dict[str, Any]:
    import sqlite3

    with sqlite3.connect(path) as db:
        users = db.execute("SELECT id, user_name, display_name, email, active FROM users WHERE tenant = ?", (TENANT,)).fetchall()
        groups = db.execute("SELECT id, display_name FROM groups WHERE tenant = ?", (TENANT,)).fetchall()
        rows = db.execute("SELECT group_id, member_id FROM memberships WHERE tenant = ?", (TENANT,)).fetchall()
    members: dict[str, list[str]] = {}
    for group_id, member_id in rows:
        members.setdefault(group_id, []).append(member_id)
    return {
        "users": {u: (n, d, e, bool(a)) for u, n, d, e, a in users},
        "groups": {g: (d, sorted(members.get(g, []))) for g, d in groups},
    }
