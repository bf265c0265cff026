"""Security event tokens (scimbus_consumer.sets): SETs signed here with a locally generated
key and served by a fake JWKS, shaped like those scimbus renders (src/events/set.rs), pushed
to the FastAPI router or polled, go through the consumer's usual path: verified or refused
with RFC 8935's error codes, deduplicated by `jti`, handlers and access hooks run once,
versions judged as for the other transports."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI

from scimbus_consumer import AccessReason, Consumer, MemoryStore, Outcome
from scimbus_consumer.fastapi import set_push_router
from scimbus_consumer.sets import Jwks, SetError, SetPoller, SetReceiver, SetVerifier

SCIMBUS = "https://scimbus.example"
ISSUER = f"{SCIMBUS}/scim/v2/acme"
AUDIENCE = "https://app.example/sets"
JWKS_URL = f"{SCIMBUS}/sets/v1/jwks.json"
PROV = "urn:ietf:params:scim:event:prov:"
SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
ACCOUNT_DISABLED = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
PUSH_AUTH = "Bearer push-secret"


class Signer:
    """A signing key and the JWKS entry of its public half."""

    def __init__(self, kid: str, alg: str = "RS256") -> None:
        self.kid, self.alg = kid, alg
        if alg == "RS256":
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        else:
            self.private = ec.generate_private_key(ec.SECP256R1())
            jwk = jwt.algorithms.ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        self.jwk = {**jwk, "kid": kid, "alg": alg, "use": "sig"}

    def sign(self, claims: dict[str, Any], *, typ: str = "secevent+jwt", kid: str | None = None) -> str:
        return jwt.encode(claims, self.private, algorithm=self.alg, headers={"typ": typ, "kid": kid or self.kid})


class FakeJwks:
    """The JWKS endpoint, counting fetches."""

    def __init__(self, *signers: Signer) -> None:
        self.keys = [s.jwk for s in signers]
        self.fetches = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.fetches += 1
        return httpx.Response(200, json={"keys": self.keys})


def claims(
    event: str,
    payload: dict[str, Any],
    *,
    subject: str,
    jti: str | None = None,
    txn: str = "tx-1",
    iss: str = ISSUER,
    aud: str = AUDIENCE,
    external_id: str | None = None,
) -> dict[str, Any]:
    kind, rid = subject.split("/", 1)
    if event.startswith(PROV):
        sub_id: dict[str, Any] = {"format": "scim", "uri": f"/{subject}", "id": rid}
        if external_id:
            sub_id["externalId"] = external_id
    else:
        sub_id = {"format": "iss_sub", "iss": iss, "sub": rid}
    return {
        "jti": jti or str(uuid.uuid4()),
        "iss": iss,
        "aud": aud,
        "iat": 1_800_000_000,
        "toe": 1_800_000_000,
        "txn": txn,
        "sub_id": sub_id,
        "events": {event: payload},
    }


def user(uid: str, version: int, *, active: bool = True) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": uid,
        "userName": f"{uid}@example.com",
        "active": active,
        "meta": {
            "resourceType": "User",
            "created": "2026-12-07T10:00:00.000Z",
            "lastModified": "2026-12-07T10:00:00.000Z",
            "location": f"{ISSUER}/Users/{uid}",
            "version": f'W/"{version}"',
        },
    }


def group(gid: str, version: int, name: str = "staff") -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": gid,
        "displayName": name,
        "meta": {
            "resourceType": "Group",
            "created": "2026-12-07T10:00:00.000Z",
            "lastModified": "2026-12-07T10:00:00.000Z",
            "location": f"{ISSUER}/Groups/{gid}",
            "version": f'W/"{version}"',
        },
    }


def full(kind: str, resource: dict[str, Any], version: int) -> tuple[str, dict[str, Any]]:
    return PROV + f"{kind}:full", {"data": resource, "version": f'W/"{version}"'}


def deactivation(signer: Signer, uid: str, version: int) -> list[str]:
    """What scimbus renders for `scimbus.user.deactivated` with signals, in order."""
    eid = str(uuid.uuid4())
    uri, payload = full("put", user(uid, version, active=False), version)
    revoked = {"initiating_entity": "admin", "reason_admin": {"en": "Deprovisioned"}}
    return [
        signer.sign(claims(uri, payload, subject=f"Users/{uid}", jti=eid, txn=eid)),
        signer.sign(claims(PROV + "deactivate", {}, subject=f"Users/{uid}", jti=f"{eid}-1", txn=eid)),
        signer.sign(claims(SESSION_REVOKED, revoked, subject=f"Users/{uid}", jti=f"{eid}-2", txn=eid)),
        signer.sign(claims(ACCOUNT_DISABLED, {}, subject=f"Users/{uid}", jti=f"{eid}-3", txn=eid)),
    ]


class World:
    """A consumer fed by SETs: handlers record what they saw."""

    def __init__(self, signer: Signer, *, issuers: list[str] | None = None, min_refresh_interval: float = 5.0) -> None:
        self.signer = signer
        self.jwks = FakeJwks(signer)
        self.http = httpx.AsyncClient(transport=httpx.MockTransport(self.jwks.handler))
        self.consumer = Consumer(external=True, store=MemoryStore())
        verifier = SetVerifier(
            Jwks(JWKS_URL, client=self.http, min_refresh_interval=min_refresh_interval),
            issuers=issuers or [ISSUER],
            audience=AUDIENCE,
        )
        self.receiver = SetReceiver(self.consumer, verifier)
        self.seen: list[tuple[str, str, str]] = []
        self.access: list[tuple[str, bool, AccessReason]] = []
        self.fail = 0

        @self.consumer.on_any
        async def record(event: Any, ctx: Any) -> None:
            if self.fail:
                self.fail -= 1
                raise RuntimeError("the handler's database is down")
            self.seen.append((event.type, event.subject, event.id))

        @self.consumer.on_access_revoked
        @self.consumer.on_access_granted
        async def access(change: Any, ctx: Any) -> None:
            self.access.append((change.user_id, change.granted, change.reason))

        app = FastAPI()
        app.include_router(set_push_router(self.receiver, authorization=PUSH_AUTH), prefix="/scim-events")
        self.app = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app")

    async def push(self, token: str, *, auth: str | None = PUSH_AUTH) -> httpx.Response:
        headers = {"Content-Type": "application/secevent+jwt"}
        if auth is not None:
            headers["Authorization"] = auth
        return await self.app.post("/scim-events", content=token, headers=headers)

    def types(self) -> list[str]:
        return [t for t, _, _ in self.seen]


@pytest.fixture
async def world() -> AsyncIterator[World]:
    w = World(Signer("k1"))
    await w.consumer.start()
    yield w
    await w.consumer.stop()
    await w.app.aclose()
    await w.http.aclose()


async def test_a_set_pushed_twice_is_accepted_both_times_and_handled_once(world: World) -> None:
    uri, payload = full("create", user("u1", 1), 1)
    token = world.signer.sign(claims(uri, payload, subject="Users/u1", external_id="00u1"))

    first = await world.push(token)
    again = await world.push(token)

    assert (first.status_code, again.status_code) == (202, 202)
    assert world.types() == ["scimbus.user.created"]
    assert world.access == [("u1", True, AccessReason.PROVISIONED)]


async def test_the_receiver_maps_each_set_to_the_consumers_typed_event() -> None:
    world = World(Signer("k1"))
    uri, payload = full("create", user("u1", 1), 1)
    token = world.signer.sign(claims(uri, payload, subject="Users/u1"))
    verified = await world.receiver.verifier.verify(token)
    event = await world.receiver.event_of(verified)
    assert event is not None
    assert (event.type, event.tenant, event.subject, event.id, event.version) == (
        "scimbus.user.created", "acme", "Users/u1", verified.jti, 1,
    )
    assert event.data.resource.user_name == "u1@example.com"
    await world.http.aclose()
    await world.app.aclose()


async def test_a_deactivation_runs_the_deactivated_handler_once_and_revokes_access_once(world: World) -> None:
    uri, payload = full("create", user("u1", 1), 1)
    assert (await world.push(world.signer.sign(claims(uri, payload, subject="Users/u1")))).status_code == 202

    for token in deactivation(world.signer, "u1", 2):
        assert (await world.push(token)).status_code == 202

    assert world.types() == ["scimbus.user.created", "scimbus.user.deactivated"]
    assert world.access == [("u1", True, AccessReason.PROVISIONED), ("u1", False, AccessReason.DEACTIVATED)]
    async with world.consumer.store.transaction() as tx:
        state = await world.consumer.store.access_of("acme", "u1", tx)
    assert state is not None and not state.granted


async def test_a_deletion_without_a_resource_takes_the_next_version_and_ends_access(world: World) -> None:
    uri, payload = full("create", user("u1", 1), 1)
    await world.push(world.signer.sign(claims(uri, payload, subject="Users/u1")))
    uri, payload = full("put", user("u1", 2), 2)
    await world.push(world.signer.sign(claims(uri, payload, subject="Users/u1")))

    eid = str(uuid.uuid4())
    deleted = world.signer.sign(claims(PROV + "delete", {}, subject="Users/u1", jti=eid, external_id="00u1"))
    revoked = {"initiating_entity": "admin", "reason_admin": {"en": "Deprovisioned"}}
    signal = world.signer.sign(claims(SESSION_REVOKED, revoked, subject="Users/u1", jti=f"{eid}-1"))
    assert (await world.push(deleted)).status_code == 202
    assert (await world.push(signal)).status_code == 202

    assert world.types() == ["scimbus.user.created", "scimbus.user.updated", "scimbus.user.deleted"]
    assert world.access[-1] == ("u1", False, AccessReason.DELETED)
    async with world.consumer.store.transaction() as tx:
        state = await world.consumer.store.get_state("acme", "Users/u1", tx)
    assert state is not None and state.deleted and state.version == 3
    # Later changes of a deleted resource are stale, as for every transport.
    uri, payload = full("put", user("u1", 4), 4)
    assert (await world.push(world.signer.sign(claims(uri, payload, subject="Users/u1")))).status_code == 202
    assert world.types()[-1] == "scimbus.user.deleted"


async def test_an_older_version_is_stale_and_its_handler_does_not_run(world: World) -> None:
    for version in (1, 3):
        kind = "create" if version == 1 else "put"
        uri, payload = full(kind, user("u1", version), version)
        assert (await world.push(world.signer.sign(claims(uri, payload, subject="Users/u1")))).status_code == 202
    uri, payload = full("put", user("u1", 2), 2)
    outcome = await world.receiver.receive(world.signer.sign(claims(uri, payload, subject="Users/u1")))

    assert outcome is Outcome.STALE
    assert world.types() == ["scimbus.user.created", "scimbus.user.updated"]


async def test_membership_patches_become_members_added_and_removed(world: World) -> None:
    uri, payload = full("create", group("g1", 1), 1)
    await world.push(world.signer.sign(claims(uri, payload, subject="Groups/g1")))
    add = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "add", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}]}]}
    remove = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
              "Operations": [{"op": "remove", "path": 'members[value eq "u2"]'}]}
    # Created with members: the members come at the creation's version.
    await world.push(world.signer.sign(claims(PROV + "patch:full", {"data": add, "version": 'W/"1"'}, subject="Groups/g1")))
    await world.push(world.signer.sign(claims(PROV + "patch:full", {"data": remove, "version": 'W/"2"'}, subject="Groups/g1")))

    assert world.types() == ["scimbus.group.created", "scimbus.group.members_added", "scimbus.group.members_removed"]


async def test_a_prefix_issuer_accepts_every_tenant_and_names_it() -> None:
    world = World(Signer("k1"), issuers=[f"{SCIMBUS}/scim/v2/"])
    uri, payload = full("create", user("u1", 1), 1)
    token = world.signer.sign(claims(uri, payload, subject="Users/u1", iss=f"{SCIMBUS}/scim/v2/globex"))
    verified = await world.receiver.verifier.verify(token)
    assert verified.tenant == "globex"
    nested = world.signer.sign(claims(uri, payload, subject="Users/u1", iss=f"{SCIMBUS}/scim/v2/a/b"))
    with pytest.raises(SetError) as refused:
        await world.receiver.verifier.verify(nested)
    assert refused.value.err == "invalid_issuer"
    await world.http.aclose()
    await world.app.aclose()


def _forged_signature(world: World) -> str:
    uri, payload = full("create", user("u1", 1), 1)
    return Signer("k1").sign(claims(uri, payload, subject="Users/u1"))  # another key, same kid


def _tampered(world: World) -> str:
    uri, payload = full("create", user("u1", 1), 1)
    head, body, sig = world.signer.sign(claims(uri, payload, subject="Users/u1")).split(".")
    forged = json.loads(jwt.utils.base64url_decode(body))
    forged["events"][uri]["data"]["active"] = True
    forged["aud"] = AUDIENCE
    return ".".join([head, jwt.utils.base64url_encode(json.dumps(forged).encode()).decode(), sig])


def _set(world: World, **kwargs: Any) -> str:
    uri, payload = full("create", user("u1", 1), 1)
    typ = kwargs.pop("typ", "secevent+jwt")
    kid = kwargs.pop("kid", None)
    return world.signer.sign(claims(uri, payload, subject="Users/u1", **kwargs), typ=typ, kid=kid)


@pytest.mark.parametrize(
    ("make", "err"),
    [
        (_forged_signature, "invalid_key"),
        (_tampered, "invalid_key"),
        (lambda w: _set(w, kid="k-unknown"), "invalid_key"),
        (lambda w: _set(w, iss=f"{SCIMBUS}/scim/v2/globex"), "invalid_issuer"),
        (lambda w: _set(w, aud="https://other.example/sets"), "invalid_audience"),
        (lambda w: _set(w, typ="JWT"), "invalid_request"),
        (lambda w: "not.a.jws", "invalid_request"),
        (lambda w: w.signer.sign({"jti": "x", "iss": ISSUER, "aud": AUDIENCE, "iat": 1, "events": {}}), "invalid_request"),
    ],
    ids=["other-key", "tampered", "unknown-kid", "issuer", "audience", "typ", "garbage", "no-event"],
)
async def test_a_set_that_does_not_verify_answers_400_with_its_rfc_8935_code(world: World, make: Any, err: str) -> None:
    response = await world.push(make(world))

    assert response.status_code == 400, response.text
    assert response.json()["err"] == err and response.json()["description"]
    assert world.seen == []


async def test_a_push_without_the_configured_authorization_answers_401(world: World) -> None:
    for auth in (None, "Bearer wrong"):
        response = await world.push(_set(world), auth=auth)
        assert response.status_code == 401
        assert response.json()["err"] == "authentication_failed"
    assert world.seen == []


async def test_a_failing_handler_answers_503_and_the_same_set_is_applied_when_sent_again(world: World) -> None:
    token = _set(world)
    world.fail = 1

    failed = await world.push(token)
    again = await world.push(token)

    assert failed.status_code == 503 and failed.status_code != 400
    assert again.status_code == 202
    assert world.types() == ["scimbus.user.created"]


async def test_an_unknown_kid_fetches_the_jwks_again_once() -> None:
    world = World(Signer("k1"), min_refresh_interval=0)
    try:
        await world.receiver.verifier.verify(_set(world))
        assert world.jwks.fetches == 1
        rotated = Signer("k2", alg="ES256")
        world.jwks.keys.append(rotated.jwk)
        uri, payload = full("create", user("u2", 1), 1)

        verified = await world.receiver.verifier.verify(rotated.sign(claims(uri, payload, subject="Users/u2")))
        await world.receiver.verifier.verify(_set(world))

        assert verified.subject == "Users/u2"
        assert world.jwks.fetches == 2
    finally:
        await world.http.aclose()
        await world.app.aclose()


class FakePoll:
    """scimbus's poll endpoint: hands out `batches` in turn and records each request."""

    def __init__(self, batches: list[dict[str, str]]) -> None:
        self.batches = batches
        self.requests: list[dict[str, Any]] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer scimbus_r_test"
        self.requests.append(json.loads(request.content))
        sets = self.batches.pop(0) if self.batches else {}
        return httpx.Response(200, json={"sets": sets, "moreAvailable": bool(self.batches)})


async def test_polled_sets_are_acknowledged_once_processed_and_refused_ones_sent_back(world: World) -> None:
    good, bad = _set(world), _set(world, aud="https://other.example/sets")
    uri, payload = full("put", user("u1", 2), 2)
    failing = world.signer.sign(claims(uri, payload, subject="Users/u1"))
    jti = lambda token: jwt.decode(token, options={"verify_signature": False})["jti"]  # noqa: E731
    fake = FakePoll([{jti(good): good, jti(bad): bad}, {jti(failing): failing}, {jti(failing): failing}])
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake.handler)) as http:
        poller = SetPoller(world.receiver, SCIMBUS, "scimbus_r_test", client=http)

        first = await poller.poll_once(wait=False)
        world.fail = 1
        second = await poller.poll_once(wait=False)
        third = await poller.poll_once(wait=False)
        await poller.flush()

    assert first.processed == [jti(good)] and first.refused == {jti(bad): "invalid_audience"}
    assert second.deferred == [jti(failing)] and third.processed == [jti(failing)]
    assert fake.requests[0]["ack"] == [] and fake.requests[0]["returnImmediately"] is True
    assert fake.requests[1]["ack"] == [jti(good)]
    assert fake.requests[1]["setErrs"] == {jti(bad): {"err": "invalid_audience", "description": "aud is not " + AUDIENCE}}
    assert fake.requests[2]["ack"] == []  # the failed one is not acknowledged
    assert fake.requests[3] == {"ack": [jti(failing)], "setErrs": {}, "maxEvents": 0, "returnImmediately": True}
    assert world.types() == ["scimbus.user.created", "scimbus.user.updated"]
