"""Revocation latency: IdP write → session refused, through scimbus, RabbitMQ and the example
app, at a steady rate. Each write deactivates a different signed-in user (Okta's path-less
PATCH); the user's old session is then polled on `GET /me` until it is refused, and the time
from sending the PATCH to the first refusal is that write's latency.

In CI this runs briefly and asserts only that every session ends refused. `scripts/bench-revocation
revocation` runs it longer against the release binary and reports p50/p99 (docs/benchmarks.md):
SCIMBUS_REVOCATION_SECONDS (default 3), SCIMBUS_REVOCATION_RATE writes/s (default 50),
SCIMBUS_REVOCATION_POLL_MS (default 25), SCIMBUS_REVOCATION_APP_DB (`postgres`, the default,
or `sqlite`: the example app's database), SCIMBUS_REVOCATION_TRANSPORT (`broker`, the
default, or `pull`: scimbus without RabbitMQ, the app long-polling its pull API)."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import time
import uuid

import httpx
import pytest

from harness import BRAKE_OFF, set_brake, ADMIN_DB, BIN, PATCH, USER, ExampleApp, Scimbus, delete_broker_objects, provision_tenant

pytestmark = pytest.mark.skipif(not BIN, reason="SCIMBUS_BIN is not set (scripts/python-test sets it)")

SECONDS = float(os.environ.get("SCIMBUS_REVOCATION_SECONDS", "3"))
RATE = float(os.environ.get("SCIMBUS_REVOCATION_RATE", "50"))
POLL = float(os.environ.get("SCIMBUS_REVOCATION_POLL_MS", "25")) / 1000
APP_DB = os.environ.get("SCIMBUS_REVOCATION_APP_DB", "postgres")
TRANSPORT = os.environ.get("SCIMBUS_REVOCATION_TRANSPORT", "broker")
TENANT = "latency"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


async def test_a_deactivation_refuses_the_users_session(tmp_path) -> None:
    run = uuid.uuid4().hex[:12]
    scimbus = Scimbus(run, broker=TRANSPORT == "broker")
    scimbus.start()
    queue = f"latency.{run}.example-app"
    app: ExampleApp | None = None
    writes = max(1, int(SECONDS * RATE))
    app_db = f"latency_app_{run}"
    env: dict[str, str] = {}
    if APP_DB == "postgres":
        subprocess.run(["psql", ADMIN_DB, "-qc", f"CREATE DATABASE {app_db}"], check=True)
        base = ADMIN_DB.rsplit("/", 1)[0].replace("postgres://", "postgresql+asyncpg://", 1)
        env["SCIMBUS_EXAMPLE_DATABASE_URL"] = f"{base}/{app_db}"
    try:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            scim, token = await provision_tenant(client, scimbus, TENANT)
            # A deliberate mass deprovisioning: the brake (on by default) would hold it.
            await set_brake(client, scimbus, TENANT, BRAKE_OFF)
            app = ExampleApp(
                str(tmp_path / "app.db"), queue, scimbus.exchange, scimbus.url, {TENANT: token}, env=env, transport=TRANSPORT
            )
            await app.start()

            users = []
            for i in range(writes):
                body = {"schemas": [USER], "userName": f"user{i}@latency.example", "active": True}
                users.append((await scim.call("POST", "/Users", body, expect=201))["id"])
            sessions: dict[str, dict[str, str]] = {}
            deadline = time.monotonic() + 60
            for uid in users:
                while True:
                    r = await client.post(f"{app.url}/sessions", json={"tenant": TENANT, "user_id": uid})
                    if r.status_code == 201:
                        sessions[uid] = {"Authorization": f"Bearer {r.json()['token']}"}
                        break
                    assert time.monotonic() < deadline, "the users were not provisioned"
                    await asyncio.sleep(0.02)

            deactivate = {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": False}}]}

            async def revoke(uid: str) -> float:
                started = time.monotonic()
                await scim.call("PATCH", f"/Users/{uid}", deactivate)
                while True:
                    status = (await client.get(f"{app.url}/me", headers=sessions[uid])).status_code
                    if status in (401, 403):
                        return time.monotonic() - started
                    assert status == 200, status
                    assert time.monotonic() - started < 60, "the session was not refused within 60 s"
                    await asyncio.sleep(POLL)

            tasks = []
            begin = time.monotonic()
            for i, uid in enumerate(users):
                await asyncio.sleep(max(0.0, begin + i / RATE - time.monotonic()))
                tasks.append(asyncio.create_task(revoke(uid)))
            latencies = await asyncio.gather(*tasks)
            achieved = writes / (time.monotonic() - begin)

        assert len(latencies) == writes  # every old session ended refused
        report = {
            "writes": writes,
            "target_rate": RATE,
            "sent_rate": round(writes / max(1e-9, (writes - 1) / RATE) if writes > 1 else RATE, 1),
            "completed_rate": round(achieved, 1),
            "poll_ms": POLL * 1000,
            "app_db": APP_DB,
            "transport": TRANSPORT,
            "p50_ms": round(statistics.median(latencies) * 1000, 1),
            "p90_ms": round(percentile(latencies, 90) * 1000, 1),
            "p99_ms": round(percentile(latencies, 99) * 1000, 1),
            "max_ms": round(max(latencies) * 1000, 1),
        }
        print(f"\nrevocation latency: {json.dumps(report)}")
    finally:
        if app is not None:
            app.stop()
        scimbus.stop()
        if APP_DB == "postgres":
            subprocess.run(["psql", ADMIN_DB, "-qc", f"DROP DATABASE IF EXISTS {app_db} WITH (FORCE)"], check=False)
        await delete_broker_objects(queue, scimbus)
