"""Security event tokens checked with an independent JOSE library (PyJWT): a real scimbus
(PostgreSQL, no broker; the binary in SCIMBUS_BIN) with a poll receiver registered for a
tenant. Okta- and Entra-style changes go over SCIM; the receiver polls them over RFC 8936,
and every SET must verify against the published JWKS with its `kid`, `typ`, issuer and
audience, carry the RFC 9967 event of its change in order, and stop coming once
acknowledged. Both algorithms scimbus signs with (RS256, ES256) are checked."""

from __future__ import annotations

import json
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
            # Okta deactivates with a path-less replace; Entra with a capitalised op.
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
