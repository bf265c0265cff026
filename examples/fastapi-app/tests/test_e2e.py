"""End to end: a real scimbus (PostgreSQL, with RabbitMQ or without any broker; the binary
in SCIMBUS_BIN) and the example app as its own process, on the broker or in pull-only mode. Okta- and Entra-style sequences go over SCIM; the app's
state is checked after each step within a bounded wait, including group-gated sessions. Then
the app is killed mid-stream and restarted: the final state is correct, and the effects it
defers to services outside its database (welcome emails, ending sessions) were performed
after commit under one idempotency key each.

scripts/python-test builds the binary and sets SCIMBUS_BIN; SCIMBUS_TEST_DATABASE_URL names
an administrative PostgreSQL database to create the test database from."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from harness import (
    BIN,
    ENTERPRISE,
    GROUP,
    PATCH,
    USER,
    WAIT,
    ExampleApp,
    Scim,
    Scimbus,
    Services,
    ADMIN_TOKEN,
    BRAKE_OFF,
    delete_broker_objects,
    issue_app_credential,
    provision_tenant,
    set_brake,
)

EFFECT_LEASE = 60.0
"""How long a claimed effect is leased to the process that claimed it (`Effects.lease`)."""

pytestmark = pytest.mark.skipif(not BIN, reason="SCIMBUS_BIN is not set (scripts/python-test sets it)")


@pytest.fixture(params=["broker", "pull"])
async def world(request, tmp_path) -> AsyncIterator[dict[str, Any]]:
    """scimbus and the app on RabbitMQ, or (`pull`) a scimbus with no broker configured at all
    and the app reading its pull API."""
    transport: str = request.param
    run = uuid.uuid4().hex[:12]
    scimbus = Scimbus(run, broker=transport == "broker")
    scimbus.start()
    apps: list[ExampleApp] = []
    queue = f"e2e.{run}.example-app"
    services = Services()
    await services.start()
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            tokens: dict[str, str] = {}
            scim: dict[str, Scim] = {}
            for tenant in ("okta-co", "entra-co"):
                scim[tenant], tokens[tenant] = await provision_tenant(client, scimbus, tenant)

            def new_app() -> ExampleApp:
                env = {"SCIMBUS_EXAMPLE_GATING_GROUPS": ",".join(f"{t} staff" for t in tokens), **services.env()}
                app = ExampleApp(
                    str(tmp_path / "app.db"), queue, scimbus.exchange, scimbus.url, tokens, env=env, transport=transport
                )
                apps.append(app)
                return app

            yield {
                "client": client, "scim": scim, "new_app": new_app, "services": services, "scimbus": scimbus,
                "transport": transport, "queue": queue, "tmp_path": tmp_path,
            }
    finally:
        await services.stop()
        for app in apps:
            app.stop()
        scimbus.stop()
        await delete_broker_objects(queue, scimbus)


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


async def sign_in(client: httpx.AsyncClient, app: ExampleApp, tenant: str, uid: str) -> dict[str, str]:
    """Opens a session once the app has granted the user access (bounded wait)."""
    deadline = time.monotonic() + WAIT
    while True:
        r = await client.post(f"{app.url}/sessions", json={"tenant": tenant, "user_id": uid})
        if r.status_code == 201:
            return {"Authorization": f"Bearer {r.json()['token']}"}
        assert r.status_code == 403 and time.monotonic() < deadline, r.text
        await asyncio.sleep(0.05)


async def lifecycle(client, app: ExampleApp, scim: Scim, tenant: str, dialect: str) -> str:
    """create, update, add to the gating group (sign in), remove from it (session refused), add
    back, deactivate (session refused), reactivate, delete."""
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

    # Access is gated on the "<tenant> staff" group: a member signs in; removed from the group,
    # the session is refused on its next request; added back, they sign in again.
    session = await sign_in(client, app, tenant, uid)
    assert (await client.get(f"{app.url}/me", headers=session)).status_code == 200
    if okta:  # Okta: remove with a value filter in the path
        remove = {"schemas": [PATCH], "Operations": [{"op": "remove", "path": f'members[value eq "{uid}"]'}]}
    else:  # Entra: remove with a value list
        remove = {"schemas": [PATCH], "Operations": [{"op": "Remove", "path": "members", "value": [{"value": uid}]}]}
    await scim.call("PATCH", f"/Groups/{group['id']}", remove, expect=204)
    await eventually(client, app, lambda u: u[uid]["groups"] == [], "removed from the group")
    assert (await client.get(f"{app.url}/me", headers=session)).status_code in (401, 403)
    r = await client.post(f"{app.url}/sessions", json={"tenant": tenant, "user_id": uid})
    assert r.status_code == 403
    await scim.call("PATCH", f"/Groups/{group['id']}", add, expect=204)
    await eventually(client, app, lambda u: u[uid]["groups"] == [f"{tenant} staff"], "added back")
    session = await sign_in(client, app, tenant, uid)
    assert app.sessions(uid) == 1
    if okta:
        off = {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": False}}]}
    else:
        off = {"schemas": [PATCH], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]}
    await scim.call("PATCH", f"/Users/{uid}", off)
    await eventually(client, app, lambda u: not u[uid]["active"], "deactivated")
    assert (await client.get(f"{app.url}/me", headers=session)).status_code in (401, 403)
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

    # Effects outside the app's database ran after commit, at least once, each under its
    # own idempotency key: one welcome email key per user, and the sessions of the two
    # lifecycle users ended for each revocation.
    services: Services = world["services"]
    everyone = {okta_user: "okta-co", entra_user: "entra-co", **{i: "okta-co" for i in ids}}
    expected = {f"welcome/{t}/{u}" for u, t in everyone.items()}
    # An effect the killed process had claimed (leased for 60 s) is performed by the
    # restarted one once that lease runs out.
    deadline = time.monotonic() + EFFECT_LEASE + WAIT
    while {key for key, _ in services.of("mail")} != expected and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert {key for key, _ in services.of("mail")} == expected
    assert {body["user_id"] for _, body in services.of("mail")} == set(everyone)
    for user in (okta_user, entra_user):
        ended = {key: body["reason"] for key, body in services.of("sessions") if body["user_id"] == user}
        # The deletion also removes the user from the group: whichever event comes first ends it.
        reasons = sorted(ended.values())
        assert len(reasons) == 3 and "deactivated" in reasons and "removed_from_group" in reasons, ended
        assert set(reasons) <= {"deactivated", "deleted", "removed_from_group"}, ended


async def test_one_application_credential_follows_a_tenant_created_after_the_app_started(world) -> None:
    """A SaaS app holds one application credential for every customer tenant: a customer
    onboarded while it runs is provisioned into it without a restart, on either transport."""
    client, scimbus = world["client"], world["scimbus"]
    credential = await issue_app_credential(client, scimbus, "example-app")
    app = ExampleApp(
        str(world["tmp_path"] / "saas.db"), f"{world['queue']}.saas", scimbus.exchange, scimbus.url, {},
        transport=world["transport"], app_token=credential,
        env={"SCIMBUS_EXAMPLE_TENANT_REFRESH_SECONDS": "1"},
    )
    try:
        await app.start()
        existing = await world["scim"]["okta-co"].call("POST", "/Users", {"schemas": [USER], "userName": "old@example.com"}, expect=201)
        await eventually(client, app, lambda u: existing["id"] in u, "a user of a tenant that existed at start")

        scim, _ = await provision_tenant(client, scimbus, "new-customer")
        user = await scim.call("POST", "/Users", {"schemas": [USER], "userName": "first@new.example"}, expect=201)
        users = await eventually(client, app, lambda u: user["id"] in u, "a user of the tenant created after the start")
        assert users[user["id"]]["tenant"] == "new-customer"
        await scim.call("PATCH", f"/Users/{user['id']}", {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": False}}]})
        await eventually(client, app, lambda u: not u[user["id"]]["active"], "deactivated in the new tenant")
    finally:
        app.stop()
        await delete_broker_objects(f"{world['queue']}.saas", scimbus)


async def test_a_held_mass_deactivation_corrected_by_the_idp_then_discarded_leaves_the_app_in_the_idps_state(world) -> None:
    """The brake holds a burst of deactivations from the first one over its threshold: the
    app never sees them. The IdP corrects its mistake (reactivates everyone); the operator
    discards the held deactivations; the app converges on the IdP's state (for the users
    whose deactivation it never saw, through version gap repair)."""
    client, scimbus, scim = world["client"], world["scimbus"], world["scim"]["okta-co"]
    limit = 3
    await set_brake(client, scimbus, "okta-co", {**BRAKE_OFF, "enabled": True, "users": {"count": limit, "percent": 100.0, "min": 1_000_000}})
    app: ExampleApp = world["new_app"]()
    await app.start()
    ids = [
        (await scim.call("POST", "/Users", {"schemas": [USER], "userName": f"held{i}@example.com"}, expect=201))["id"]
        for i in range(6)
    ]
    await eventually(client, app, lambda u: all(i in u and u[i]["active"] for i in ids), "everyone provisioned")
    off = {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": False}}]}
    for uid in ids:
        await scim.call("PATCH", f"/Users/{uid}", off)
    await eventually(client, app, lambda u: sum(not u[i]["active"] for i in ids) == limit, "the deactivations before the hold")
    await asyncio.sleep(1.0)
    users = {u["id"]: u for u in (await client.get(f"{app.url}/users")).json()}
    assert sum(not users[i]["active"] for i in ids) == limit, "a held deactivation reached the app"

    on = {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": True}}]}
    for uid in ids:
        await scim.call("PATCH", f"/Users/{uid}", on)
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    r = await client.post(f"{scimbus.url}/admin/v1/tenants/okta-co/brake/discard", headers=admin)
    assert r.status_code == 200, r.text
    assert r.json() == {"discarded": len(ids) - limit, "released": len(ids)}
    await eventually(client, app, lambda u: all(u[i]["active"] for i in ids), "the IdP's state after the discard")
