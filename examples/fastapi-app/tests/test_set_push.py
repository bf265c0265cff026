"""The example app receiving security event tokens by push (RFC 8935), with no RabbitMQ
anywhere: a real scimbus (PostgreSQL, no broker; the binary in SCIMBUS_BIN) pushes each SET
of a tenant to the app's `POST /scim-events`, which verifies it against scimbus's JWKS and
feeds the consumer. A user provisioned over SCIM can sign in; an Entra-style deactivation
(PATCH `Replace active "False"`) then ends their session, and scimbus parked nothing."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest

from harness import ADMIN_TOKEN, BIN, PATCH, USER, WAIT, ExampleApp, Scimbus, provision_tenant

pytestmark = pytest.mark.skipif(not BIN, reason="SCIMBUS_BIN is not set (scripts/python-test sets it)")

TENANT = "acme"
AUDIENCE = "https://example-app.test/scim-events"
PUSH_AUTH = "Bearer push-secret-0123456789"


async def eventually(check, what: str) -> None:
    """Polls a condition the test cannot be told about (the app's view), bounded."""
    deadline = time.monotonic() + WAIT
    while not await check():
        assert time.monotonic() < deadline, f"{what} within {WAIT} s"
        await asyncio.sleep(0.05)


async def test_a_deactivation_pushed_as_sets_refuses_the_users_session_without_rabbitmq(tmp_path) -> None:
    run = uuid.uuid4().hex[:12]
    scimbus = Scimbus(
        run,
        broker=False,
        env={"SCIMBUS_SET_KEY_SECRET": "push-e2e-set-key-secret-0123456789", "SCIMBUS_SET_PUSH_ALLOW_PRIVATE": "on"},
    )
    scimbus.start()
    app: ExampleApp | None = None
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    try:
        async with httpx.AsyncClient(timeout=60) as client:
            scim, token = await provision_tenant(client, scimbus, TENANT)
            app = ExampleApp(
                str(tmp_path / "app.db"),
                f"unused.{run}",
                f"unused.{run}",
                scimbus.url,
                {TENANT: token},  # the pull API serves resyncs only
                transport="sets",
                env={"SCIMBUS_EXAMPLE_SET_AUDIENCE": AUDIENCE, "SCIMBUS_EXAMPLE_SET_AUTHORIZATION": PUSH_AUTH},
            )
            await app.start()
            assert (await client.get(f"{app.url}/healthz")).json()["transport"] == "sets"
            r = await client.post(
                f"{scimbus.url}/admin/v1/tenants/{TENANT}/receivers",
                json={
                    "name": "example-app",
                    "endpoint": f"{app.url}/scim-events",
                    "authorization": PUSH_AUTH,
                    "signals": True,
                    "audience": AUDIENCE,
                    "after": 0,
                },
                headers=admin,
            )
            assert r.status_code == 201, r.text
            receiver = r.json()
            assert "token" not in receiver

            user = await scim.call(
                "POST", "/Users", {"schemas": [USER], "userName": "ada@example.com", "externalId": "00u1", "active": True}, expect=201
            )
            uid = user["id"]
            session: dict[str, str] = {}

            async def signed_in() -> bool:
                r = await client.post(f"{app.url}/sessions", json={"tenant": TENANT, "user_id": uid})
                if r.status_code == 201:
                    session["Authorization"] = f"Bearer {r.json()['token']}"
                return r.status_code == 201

            await eventually(signed_in, "the user was provisioned by push")
            assert (await client.get(f"{app.url}/me", headers=session)).status_code == 200

            # Entra's deactivation: a capitalised op and the value as a string.
            await scim.call(
                "PATCH", f"/Users/{uid}", {"schemas": [PATCH], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]}
            )

            async def refused() -> bool:
                status = (await client.get(f"{app.url}/me", headers=session)).status_code
                assert status in (200, 401, 403), status
                return status in (401, 403)

            await eventually(refused, "the session was refused")
            users = (await client.get(f"{app.url}/users", params={"tenant": TENANT})).json()
            assert [(u["id"], u["active"]) for u in users] == [(uid, False)]
            assert app.sessions(uid) == 0
            assert (await client.post(f"{app.url}/sessions", json={"tenant": TENANT, "user_id": uid})).status_code == 403

            r = await client.get(f"{scimbus.url}/admin/v1/tenants/{TENANT}/receivers/{receiver['id']}/parked", headers=admin)
            assert r.status_code == 200, r.text
            assert r.json()["parked"] == []
    finally:
        if app is not None:
            app.stop()
        scimbus.stop()
