"""Security event tokens checked with an independent JOSE library (PyJWT): a real scimbus
(PostgreSQL, no broker; the binary in SCIMBUS_BIN) with a poll receiver registered for a
tenant. Okta- and Entra-style changes go over SCIM; the receiver polls them over RFC 8936,
and every SET must verify against the published JWKS with its `kid`, `typ`, issuer and
audience, carry the RFC 9967 event of its change in order, and stop coming once
acknowledged. Both algorithms scimbus signs with (RS256, ES256) are checked."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid

import httpx
import jwt
import pytest

from harness import ADMIN_TOKEN, BIN, PATCH, USER, Scimbus, provision_tenant

pytestmark = pytest.mark.skipif(not BIN, reason="SCIMBUS_BIN is not set (scripts/python-test sets it)")

PROV = "urn:ietf:params:scim:event:prov:"
SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
AUDIENCE = "https://receiver.example/sets"


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
async def test_polled_sets_verify_with_pyjwt_and_follow_the_changes(alg: str) -> None:
    scimbus = Scimbus(uuid.uuid4().hex[:12], broker=False, env={"SCIMBUS_SET_KEY_SECRET": "e2e-set-key-secret-0123456789abcdef"})
    scimbus.start()
    try:
        async with httpx.AsyncClient(timeout=60) as client:
            scim, _ = await provision_tenant(client, scimbus, "acme")
            r = await client.post(
                f"{scimbus.url}/admin/v1/tenants/acme/receivers",
                json={"name": "receiver", "alg": alg, "signals": True, "audience": AUDIENCE},
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            )
            assert r.status_code == 201, r.text
            receiver = r.json()
            poll_auth = {"Authorization": f"Bearer {receiver['token']}"}

            user = await scim.call(
                "POST", "/Users", {"schemas": [USER], "userName": "ada@example.com", "externalId": "00u1"}, expect=201
            )
            uid = user["id"]
            # Entra's deactivation: a capitalised op and the value as a string.
            await scim.call("PATCH", f"/Users/{uid}", {"schemas": [PATCH], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]})
            await scim.call("DELETE", f"/Users/{uid}", expect=204)

            jwks = jwt.PyJWKSet.from_dict((await client.get(f"{scimbus.url}/sets/v1/jwks.json")).json())
            issuer = f"{scimbus.url}/scim/v2/acme"
            r = await client.post(f"{scimbus.url}/sets/v1/poll", json={"returnImmediately": True}, headers=poll_auth)
            assert r.status_code == 200, r.text
            answer = r.json()
            assert answer["moreAvailable"] is False
            claims_of = {}
            for jti, token in answer["sets"].items():
                header = jwt.get_unverified_header(token)
                assert header["typ"] == "secevent+jwt" and header["alg"] == alg
                key = jwks[header["kid"]]
                claims = jwt.decode(
                    token,
                    key=key,
                    algorithms=[alg],
                    audience=AUDIENCE,
                    issuer=issuer,
                    options={"require": ["iss", "iat", "jti", "aud", "events"]},
                )
                assert claims["jti"] == jti and "sub" not in claims and "exp" not in claims
                claims_of[jti] = claims
                # A tampered token does not verify.
                head, body, sig = token.split(".")
                forged = json.loads(jwt.utils.base64url_decode(body))
                forged["aud"] = "https://attacker.example"
                forged_body = jwt.utils.base64url_encode(json.dumps(forged).encode()).decode()
                with pytest.raises(jwt.InvalidSignatureError):
                    jwt.decode(f"{head}.{forged_body}.{sig}", key=key, algorithms=[alg], audience="https://attacker.example")
            events = [next(iter(claims_of[j]["events"])) for j in sorted(claims_of)]
            assert events == [
                PROV + "create:full",
                PROV + "put:full",
                PROV + "deactivate",
                SESSION_REVOKED,
                "https://schemas.openid.net/secevent/risc/event-type/account-disabled",
                PROV + "delete",
                SESSION_REVOKED,
                "https://schemas.openid.net/secevent/risc/event-type/account-purged",
            ], events
            first = claims_of[sorted(claims_of)[0]]
            assert first["sub_id"] == {"format": "scim", "uri": f"/Users/{uid}", "id": uid, "externalId": "00u1"}
            assert first["events"][PROV + "create:full"]["data"]["userName"] == "ada@example.com"

            r = await client.post(
                f"{scimbus.url}/sets/v1/poll", json={"ack": list(claims_of), "returnImmediately": True}, headers=poll_auth
            )
            assert r.status_code == 200 and r.json()["sets"] == {}, r.text
    finally:
        scimbus.stop()


BENCH_USERS = int(os.environ.get("SCIMBUS_SETS_BENCH_USERS", "60"))
BENCH_SECONDS = float(os.environ.get("SCIMBUS_SETS_BENCH_SECONDS", "2"))
BENCH_RATE = float(os.environ.get("SCIMBUS_SETS_BENCH_RATE", "50"))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def payload(token: str) -> dict:
    return json.loads(jwt.utils.base64url_decode(token.split(".")[1]))


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
async def test_set_delivery_rate_and_latency(alg: str) -> None:
    """SET signing and delivery per receiver (docs/benchmarks.md; `scripts/bench-sets` runs
    it longer against the release binary and prints the figures): a backlog of creations
    polled to the end (SETs/s rendered, signed and delivered), then writes at a steady rate
    while the receiver long-polls (write answered → SET received, p50/p99). In CI it runs
    briefly and asserts only that every write arrives, once, in order."""
    scimbus = Scimbus(uuid.uuid4().hex[:12], broker=False, env={"SCIMBUS_SET_KEY_SECRET": "bench-set-key-secret-0123456789abcdef", "SCIMBUS_LOG": "error"})
    scimbus.start()
    try:
        limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            scim, _ = await provision_tenant(client, scimbus, "bench")
            r = await client.post(
                f"{scimbus.url}/admin/v1/tenants/bench/receivers",
                json={"name": "bench", "alg": alg},
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            )
            assert r.status_code == 201, r.text
            poll_auth = {"Authorization": f"Bearer {r.json()['token']}"}

            # Backlog: BENCH_USERS creations, then polled to the end.
            sem = asyncio.Semaphore(16)

            async def create(i: int) -> None:
                async with sem:
                    await scim.call("POST", "/Users", {"schemas": [USER], "userName": f"backlog{i}@example.com"}, expect=201)

            await asyncio.gather(*(create(i) for i in range(BENCH_USERS)))
            started = time.monotonic()
            received: list[str] = []
            ack: list[str] = []
            while True:
                r = await client.post(
                    f"{scimbus.url}/sets/v1/poll", json={"ack": ack, "returnImmediately": True, "maxEvents": 1000}, headers=poll_auth
                )
                assert r.status_code == 200, r.text
                sets = r.json()["sets"]
                if not sets:
                    break
                received.extend(payload(t)["sub_id"]["id"] for t in sets.values())
                ack = list(sets)
            elapsed = time.monotonic() - started
            assert len(received) == BENCH_USERS and len(set(received)) == BENCH_USERS
            rate = len(received) / elapsed

            # Steady writes while the receiver long-polls.
            sent: dict[str, float] = {}
            latencies: dict[str, float] = {}
            order: list[str] = []
            writes = max(1, int(BENCH_SECONDS * BENCH_RATE))

            async def receive() -> None:
                acked: list[str] = []
                while len(latencies) < writes:
                    r = await client.post(f"{scimbus.url}/sets/v1/poll", json={"ack": acked}, headers=poll_auth)
                    assert r.status_code == 200, r.text
                    now = time.monotonic()
                    sets = r.json()["sets"]
                    for jti in sorted(sets):
                        uid = payload(sets[jti])["sub_id"]["id"]
                        order.append(uid)
                        latencies.setdefault(uid, now)
                    acked = list(sets)
                await client.post(f"{scimbus.url}/sets/v1/poll", json={"ack": acked, "maxEvents": 0}, headers=poll_auth)

            async def write() -> None:
                for i in range(writes):
                    user = await scim.call("POST", "/Users", {"schemas": [USER], "userName": f"steady{i}@example.com"}, expect=201)
                    sent[user["id"]] = time.monotonic()
                    await asyncio.sleep(1 / BENCH_RATE)

            await asyncio.wait_for(asyncio.gather(receive(), write()), timeout=60 + BENCH_SECONDS)
            assert order == list(sent), "every write arrives once, in order"
            delays = [(latencies[uid] - sent[uid]) * 1000 for uid in sent]
            print(
                f"\nSETs {alg}: backlog of {BENCH_USERS}: {rate:.0f} SETs/s per receiver; "
                f"{writes} writes at {BENCH_RATE:g}/s: write answered → SET received "
                f"p50 {percentile(delays, 50):.1f} ms, p99 {percentile(delays, 99):.1f} ms"
            )
    finally:
        scimbus.stop()


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
async def test_set_push_rate_and_latency(alg: str) -> None:
    """SET push delivery per receiver (docs/benchmarks.md; `scripts/bench-sets`): a backlog
    of creations pushed to a receiver that answers 202 at once (SETs/s rendered, signed and
    POSTed, one at a time, in order), then writes at a steady rate (write answered → SET
    received, p50/p99). In CI it runs briefly and asserts only that every write arrives,
    once, in order."""
    from aiohttp import web

    arrivals: list[tuple[str, float]] = []
    backlog_done = asyncio.Event()

    async def receive(request: web.Request) -> web.Response:
        token = await request.text()
        arrivals.append((payload(token)["sub_id"]["id"], time.monotonic()))
        if len(arrivals) >= BENCH_USERS:
            backlog_done.set()
        return web.Response(status=202)

    receiver = web.Application()
    receiver.router.add_post("/sets", receive)
    runner = web.AppRunner(receiver, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001 - the port chosen
    scimbus = Scimbus(
        uuid.uuid4().hex[:12],
        broker=False,
        env={"SCIMBUS_SET_KEY_SECRET": "bench-set-key-secret-0123456789abcdef", "SCIMBUS_LOG": "error",
             "SCIMBUS_SET_PUSH_ALLOW_PRIVATE": "on"},
    )
    scimbus.start()
    try:
        limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            scim, _ = await provision_tenant(client, scimbus, "bench")
            sem = asyncio.Semaphore(16)

            async def create(i: int) -> None:
                async with sem:
                    await scim.call("POST", "/Users", {"schemas": [USER], "userName": f"backlog{i}@example.com"}, expect=201)

            await asyncio.gather(*(create(i) for i in range(BENCH_USERS)))
            # The backlog exists; the receiver is registered from the start of it.
            started = time.monotonic()
            r = await client.post(
                f"{scimbus.url}/admin/v1/tenants/bench/receivers",
                json={"name": "bench", "alg": alg, "endpoint": f"http://127.0.0.1:{port}/sets", "after": 0},
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            )
            assert r.status_code == 201, r.text
            await asyncio.wait_for(backlog_done.wait(), timeout=120 + BENCH_USERS / 20)
            elapsed = time.monotonic() - started
            backlog = [uid for uid, _ in arrivals[:BENCH_USERS]]
            assert len(set(backlog)) == BENCH_USERS
            rate = BENCH_USERS / elapsed

            sent: dict[str, float] = {}
            writes = max(1, int(BENCH_SECONDS * BENCH_RATE))
            for i in range(writes):
                user = await scim.call("POST", "/Users", {"schemas": [USER], "userName": f"steady{i}@example.com"}, expect=201)
                sent[user["id"]] = time.monotonic()
                await asyncio.sleep(1 / BENCH_RATE)
            deadline = time.monotonic() + 60
            while len(arrivals) < BENCH_USERS + writes and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            steady = arrivals[BENCH_USERS:]
            assert [uid for uid, _ in steady] == list(sent), "every write arrives once, in order"
            delays = [(at - sent[uid]) * 1000 for uid, at in steady]
            print(
                f"\nSET push {alg}: backlog of {BENCH_USERS}: {rate:.0f} SETs/s per receiver; "
                f"{writes} writes at {BENCH_RATE:g}/s: write answered → SET received "
                f"p50 {percentile(delays, 50):.1f} ms, p99 {percentile(delays, 99):.1f} ms"
            )
    finally:
        scimbus.stop()
        await runner.cleanup()
