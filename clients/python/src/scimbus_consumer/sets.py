"""Security event tokens (SETs: RFC 8417, in the SCIM profile of RFC 9967) from scimbus,
verified and turned into the consumer's typed events, received by push (RFC 8935, the
router `scimbus_consumer.fastapi.set_push_router`) or by poll (RFC 8936, `SetPoller`).
Needs PyJWT with cryptography: `pip install 'scimbus-consumer[sets]'`.

Verification (`SetVerifier`): the JWS signature with the key its `kid` names in scimbus's
JWKS (`GET /sets/v1/jwks.json`, cached, fetched again once on an unknown `kid`), `typ:
secevent+jwt`, `alg` RS256 or ES256, `iss` among the accepted issuers (a tenant's SCIM base
URL `{scimbus}/scim/v2/{tenant}`, or a prefix ending in `/`, `{scimbus}/scim/v2/`, which
accepts every tenant; the tenant is the last path segment), `aud`, and the claims RFC 8417
requires. A failure raises `SetError` with the RFC 8935 code: `invalid_key` (signature,
unknown `kid`, algorithm), `invalid_issuer`, `invalid_audience`, `invalid_request`
(anything malformed). A JWKS that cannot be fetched raises `JwksUnavailable` (transient).

Mapping (`SetReceiver`): each SET becomes at most one of the consumer's events and goes
through `Consumer.submit`, the same path as the broker's and the pull API's events (the
resource's lane, its lock, dedupe, the version rule, handlers, access tracking and the
`on_access_revoked` / `on_access_granted` hooks, effects). The event's `id` is the SET's
`jti` (dedupe: a SET delivered again is a duplicate), its `time` the `toe`, its `txn` the
`txn`, `dataschema` the SET's event URI, and `sequence` "0" (SETs carry none; scimbus
delivers them in the tenant's order).

| SET | event |
|---|---|
| `prov:create:full` | `UserCreated` / `GroupCreated` (`changed` and `previous` empty) |
| `prov:put:full` of a user | `UserDeactivated` when it makes an active user inactive, `UserReactivated` when it makes an inactive one active (as scimbus decides them), else `UserUpdated`; `previous` empty |
| `prov:put:full` of a group | `GroupUpdated` |
| `prov:patch:full` | `GroupMembersAdded` / `GroupMembersRemoved` (one chunk) |
| `prov:delete` | `UserDeleted` / `GroupDeleted`; the SET has no resource, so `data.resource` has only `id`, `externalId` and `meta` (empty `userName` / `displayName`), at the version after the applied one |
| `prov:deactivate`, `prov:activate`, CAEP `session-revoked`, RISC `account-disabled` / `account-purged` | none: acknowledged. They follow, in the same `txn`, the `put` or `delete` that already carried the change (and revoked access through the access hooks), so a handler does not run twice |
| `prov:*:notice` | none: with a pull client that reads the tenant, the resource is resynced from its snapshot (what a SCIM GET would return); without one it is logged and acknowledged |
| an unknown URI | none: logged and acknowledged |

So register receivers in the full form with the default events (`signals` optional): a
receiver given only `prov:deactivate` or the signals would see no change here. A user's
put is classified with the access record of the user (read in the resource's lane before
the event's transaction): scimbus delivers one tenant's SETs in order, one at a time, so
that record is the previous event's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

import httpx
from pydantic import ValidationError

from .consumer import Consumer, Outcome
from .models import Envelope, parse_event
from .pull import LONG_POLL_MARGIN, MAX_WAIT

log = logging.getLogger("scimbus_consumer.sets")

SET_TYPE = "secevent+jwt"
ALGORITHMS = ("RS256", "ES256")
PROV = "urn:ietf:params:scim:event:prov:"
CREATE_FULL = PROV + "create:full"
PUT_FULL = PROV + "put:full"
PATCH_FULL = PROV + "patch:full"
DELETE = PROV + "delete"
ACTIVATE = PROV + "activate"
DEACTIVATE = PROV + "deactivate"
SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
ACCOUNT_DISABLED = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
ACCOUNT_PURGED = "https://schemas.openid.net/secevent/risc/event-type/account-purged"
ACKNOWLEDGED = frozenset({ACTIVATE, DEACTIVATE, SESSION_REVOKED, ACCOUNT_DISABLED, ACCOUNT_PURGED})
"""URIs whose change the SET before them (same `txn`) already carried."""
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
_VERSION = re.compile(r'^W/"([0-9]+)"$')
# RFC 7644 §3.5.2.2 `members[value eq "<id>"]`, the id as a JSON string.
_REMOVE_PATH = re.compile(r'^members\[value eq ("(?:[^"\\]|\\.)*")\]$')

ErrorCode = Literal[
    "invalid_request", "invalid_key", "invalid_issuer", "invalid_audience", "authentication_failed", "access_denied"
]


def _jwt() -> Any:
    try:
        import jwt
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError(
            "security event tokens need PyJWT with cryptography: pip install 'scimbus-consumer[sets]'"
        ) from exc
    return jwt


class SetError(Exception):
    """A SET that cannot be accepted, with its RFC 8935 §2.3 error code: the push router
    answers 400 with `body()`, the poll loop sends it back in `setErrs`. scimbus parks a SET
    refused with `invalid_request` (never sends it again) and holds the receiver on the
    other codes (sends it again once the configuration is fixed)."""

    def __init__(self, err: ErrorCode, description: str) -> None:
        super().__init__(f"{err}: {description}")
        self.err = err
        self.description = description

    def body(self) -> dict[str, str]:
        return {"err": self.err, "description": self.description}


class JwksUnavailable(Exception):
    """The JWKS could not be fetched: nothing is wrong with the SET, try again later."""


class Jwks:
    """scimbus's JWKS, cached by `kid`; fetched on first use and again when a SET names a
    `kid` it does not hold, at most once every `min_refresh_interval` seconds (a flood of
    made-up `kid`s cannot turn into a flood of fetches: those SETs get `invalid_key`,
    which scimbus resends later)."""

    def __init__(
        self, url: str, *, client: httpx.AsyncClient | None = None, min_refresh_interval: float = 5.0, timeout: float = 10.0
    ) -> None:
        self.url = url
        self._client = client
        self._own_client = client is None
        self.timeout = timeout
        self.min_refresh_interval = min_refresh_interval
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def key(self, kid: str) -> Any:
        """The `jwt.PyJWK` of `kid`; `SetError("invalid_key")` when the JWKS has none."""
        if kid not in self._keys:
            async with self._lock:
                now = asyncio.get_running_loop().time()
                due = self._fetched_at is None or now - self._fetched_at >= self.min_refresh_interval
                if kid not in self._keys and due:
                    await self._fetch()
        key = self._keys.get(kid)
        if key is None:
            raise SetError("invalid_key", f"no key {kid!r} in the JWKS")
        return key

    async def _fetch(self) -> None:
        jwt = _jwt()
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout)
        try:
            response = await self._client.get(self.url, headers={"Accept": "application/json"})
            response.raise_for_status()
            listed = response.json().get("keys", [])
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            raise JwksUnavailable(f"fetching the JWKS at {self.url} failed: {exc!r}") from exc
        self._fetched_at = asyncio.get_running_loop().time()
        self.fetches += 1
        keys: dict[str, Any] = {}
        for jwk in listed if isinstance(listed, list) else []:
            try:
                key = jwt.PyJWK.from_dict(jwk)
            except jwt.PyJWKError:
                continue  # a key type this PyJWT cannot use: SETs signed with it fail as invalid_key
            if key.key_id:
                keys[key.key_id] = key
        self._keys = keys

    async def aclose(self) -> None:
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None


@dataclass(frozen=True)
class VerifiedSet:
    """A SET whose signature and claims were checked."""

    token: str
    claims: dict[str, Any]
    tenant: str
    """From `iss`."""
    event_uri: str
    payload: dict[str, Any]
    """The event's object (`events[event_uri]`)."""
    subject: str
    """`Users/{id}` or `Groups/{id}`, from `sub_id`."""

    @property
    def jti(self) -> str:
        return str(self.claims["jti"])


class SetVerifier:
    """Checks SETs (see the module): `issuers` are tenant SCIM base URLs
    (`https://scimbus.example/scim/v2/acme`) or prefixes ending in `/`
    (`https://scimbus.example/scim/v2/`: every tenant); `audience` the receiver's audience
    (one, or several accepted)."""

    def __init__(
        self,
        jwks: Jwks | str,
        *,
        issuers: Iterable[str],
        audience: str | Iterable[str],
        algorithms: Iterable[str] = ALGORITHMS,
    ) -> None:
        self.jwks = Jwks(jwks) if isinstance(jwks, str) else jwks
        self.issuers = [i for i in issuers if not i.endswith("/")]
        self.prefixes = [i for i in issuers if i.endswith("/")]
        if not self.issuers and not self.prefixes:
            raise ValueError("give at least one accepted issuer (a tenant's SCIM base URL, or a prefix ending in /)")
        self.audiences = [audience] if isinstance(audience, str) else list(audience)
        if not self.audiences:
            raise ValueError("give the receiver's audience")
        self.algorithms = list(algorithms)

    def tenant_of(self, issuer: str) -> str | None:
        """The tenant an accepted issuer names; None for an issuer not accepted."""
        if issuer in self.issuers:
            tenant = issuer.rstrip("/").rsplit("/", 1)[-1]
            return tenant or None
        for prefix in self.prefixes:
            rest = issuer[len(prefix) :] if issuer.startswith(prefix) else ""
            if rest and "/" not in rest:
                return rest
        return None

    async def verify(self, token: str) -> VerifiedSet:
        jwt = _jwt()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as exc:
            raise SetError("invalid_request", f"not a compact JWS: {exc}") from exc
        typ = str(header.get("typ", "")).lower()
        if typ not in (SET_TYPE, f"application/{SET_TYPE}"):
            raise SetError("invalid_request", f"typ is {header.get('typ')!r}, not {SET_TYPE!r}")
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise SetError("invalid_key", f"algorithm {alg!r} is not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise SetError("invalid_key", "the header names no kid")
        key = await self.jwks.key(kid)
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=self.audiences,
                # The issuer is checked below (prefixes); `iat` only for presence: a receiver
                # whose clock runs behind must not refuse SETs for good.
                options={
                    "require": ["jti", "iss", "aud", "iat", "events"],
                    "verify_iss": False,
                    "verify_iat": False,
                    "verify_exp": False,
                    "verify_nbf": False,
                },
            )
        except jwt.InvalidSignatureError as exc:
            raise SetError("invalid_key", "the signature does not verify") from exc
        except (jwt.InvalidAlgorithmError, jwt.InvalidKeyError) as exc:
            raise SetError("invalid_key", str(exc)) from exc
        except jwt.InvalidAudienceError as exc:
            raise SetError("invalid_audience", f"aud is not {' or '.join(self.audiences)}") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise SetError("invalid_request", str(exc)) from exc
        except jwt.PyJWTError as exc:
            raise SetError("invalid_request", str(exc)) from exc
        issuer = claims.get("iss")
        tenant = self.tenant_of(issuer) if isinstance(issuer, str) else None
        if tenant is None:
            raise SetError("invalid_issuer", f"issuer {issuer!r} is not accepted")
        events = claims.get("events")
        if not isinstance(events, dict) or len(events) != 1:
            raise SetError("invalid_request", "events must hold exactly one event")
        ((event_uri, payload),) = events.items()
        if not isinstance(payload, dict):
            raise SetError("invalid_request", "the event is not an object")
        if not isinstance(claims.get("jti"), str) or not claims["jti"]:
            raise SetError("invalid_request", "jti is not a string")
        return VerifiedSet(
            token=token, claims=claims, tenant=tenant, event_uri=event_uri, payload=payload, subject=_subject(claims)
        )


def _subject(claims: Mapping[str, Any]) -> str:
    """`Users/{id}` / `Groups/{id}` from RFC 9967's `scim` subject or RFC 9493's `iss_sub`
    (the Shared Signals SETs, always about a user)."""
    sub = claims.get("sub_id")
    if isinstance(sub, dict) and sub.get("format") == "scim":
        uri, rid = sub.get("uri"), sub.get("id")
        if isinstance(uri, str) and isinstance(rid, str) and rid:
            kind = uri.lstrip("/").split("/", 1)[0]
            if kind in ("Users", "Groups"):
                return f"{kind}/{rid}"
    if isinstance(sub, dict) and sub.get("format") == "iss_sub" and isinstance(sub.get("sub"), str) and sub["sub"]:
        return f"Users/{sub['sub']}"
    raise SetError("invalid_request", "sub_id names no SCIM user or group")


def _version(verified: VerifiedSet) -> int:
    text = verified.payload.get("version")
    if text is None:
        data = verified.payload.get("data")
        text = data.get("meta", {}).get("version") if isinstance(data, dict) else None
    match = _VERSION.match(text) if isinstance(text, str) else None
    if match is None:
        raise SetError("invalid_request", f"no resource version (W/\"n\") in {verified.event_uri}")
    return int(match.group(1))


def _time(claims: Mapping[str, Any]) -> str:
    seconds = claims.get("toe", claims.get("iat"))
    if not isinstance(seconds, int):
        raise SetError("invalid_request", "toe and iat are not integers")
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat()


def _members_change(payload: Mapping[str, Any]) -> tuple[str, list[str]]:
    """The PatchOp of a `prov:patch:full` as (`members_added` | `members_removed`, ids)."""
    data = payload.get("data")
    operations = data.get("Operations") if isinstance(data, dict) else None
    if not isinstance(operations, list) or not operations:
        raise SetError("invalid_request", "the PatchOp has no Operations")
    ops = {str(o.get("op", "")).lower() for o in operations if isinstance(o, dict)}
    members: list[str] = []
    if ops == {"add"}:
        for op in operations:
            for value in op.get("value") or []:
                if isinstance(value, dict) and isinstance(value.get("value"), str):
                    members.append(value["value"])
        return "members_added", members
    if ops == {"remove"}:
        for op in operations:
            match = _REMOVE_PATH.match(str(op.get("path", "")))
            if match is None:
                raise SetError("invalid_request", f"unexpected remove path {op.get('path')!r}")
            members.append(json.loads(match.group(1)))
        return "members_removed", members
    raise SetError("invalid_request", f"a PatchOp of {sorted(ops)} is not a membership change")


class SetReceiver:
    """Verifies SETs and hands them to the consumer (see the module for the mapping).
    `receive(token)` returns the consumer's outcome (None: nothing to process), raises
    `SetError` for a SET that is refused, `JwksUnavailable` or the handler's failure for one
    to deliver again. The consumer is typically `Consumer(external=True, …)`."""

    def __init__(self, consumer: Consumer, verifier: SetVerifier) -> None:
        self.consumer = consumer
        self.verifier = verifier

    async def receive(self, token: str) -> Outcome | None:
        return await self.process(await self.verifier.verify(token))

    async def process(self, verified: VerifiedSet) -> Outcome | None:
        return await self.consumer.submit(
            verified.tenant, verified.subject, lambda: self.event_of(verified), origin="sets"
        )

    async def event_of(self, verified: VerifiedSet) -> Envelope | None:
        """The consumer's event for a verified SET; None when there is none to process
        (after resyncing the resource of a notice). Run in the resource's lane."""
        uri, payload, tenant, subject = verified.event_uri, verified.payload, verified.tenant, verified.subject
        kind, resource_id = subject.split("/", 1)
        word = "user" if kind == "Users" else "group"
        if uri in ACKNOWLEDGED:
            log.debug("SET %s (%s) acknowledged: its change came with the SET before it", verified.jti, uri)
            return None
        if uri.startswith(PROV) and uri.endswith(":notice"):
            if self.consumer._can_resync(tenant):
                await self.consumer.resync(tenant, subject)
            else:
                log.warning("notice SET %s on %s/%s: no pull client to read the resource; ignored", verified.jti, tenant, subject)
            return None
        if uri in (CREATE_FULL, PUT_FULL):
            resource = payload.get("data")
            if not isinstance(resource, dict):
                raise SetError("invalid_request", f"{uri} has no data")
            action = "created" if uri == CREATE_FULL else "updated"
            if kind == "Users" and action == "updated":
                action = await self._user_put(tenant, resource_id, resource)
            data: dict[str, Any] = {"resource": resource, "version": _version(verified), "changed": [], "previous": {}}
        elif uri == PATCH_FULL:
            if kind != "Groups":
                raise SetError("invalid_request", "a membership change is about a group")
            action, members = _members_change(payload)
            data = {"group": resource_id, "version": _version(verified), "members": members, "chunk": {"index": 1, "count": 1}}
        elif uri == DELETE:
            action = "deleted"
            data = {"resource": await self._gone_resource(verified), "version": await self._next_version(tenant, subject), "changed": [], "previous": {}}
        else:
            log.info("SET %s with event %s: not a change this package knows; acknowledged", verified.jti, uri)
            return None
        raw = {
            "specversion": "1.0",
            "id": verified.jti,
            "source": verified.claims["iss"],
            "type": f"scimbus.{word}.{action}",
            "subject": subject,
            "time": _time(verified.claims),
            "datacontenttype": "application/json",
            "dataschema": uri,
            "tenant": tenant,
            "sequence": "0",
            "txn": verified.claims.get("txn"),
            "data": data,
        }
        try:
            event = parse_event(raw)
        except ValidationError as exc:
            raise SetError("invalid_request", f"{uri} does not describe a {kind[:-1]}: {exc.error_count()} errors") from exc
        if not self.consumer.wants(event):
            return None
        return event

    async def _user_put(self, tenant: str, user_id: str, resource: Mapping[str, Any]) -> str:
        """`updated`, or `deactivated` / `reactivated` when `active` flips (scimbus's rule)."""
        store = self.consumer.store
        reading = getattr(store, "reading", None) or store.transaction
        async with reading() as tx:
            state = await store.access_of(tenant, user_id, tx)
        if state is None or not state.present:
            return "updated"
        active = resource.get("active") is not False
        if state.active and not active:
            return "deactivated"
        if not state.active and active:
            return "reactivated"
        return "updated"

    async def _next_version(self, tenant: str, subject: str) -> int:
        """A deletion takes the version after the resource's last (scimbus); the SET has none."""
        store = self.consumer.store
        reading = getattr(store, "reading", None) or store.transaction
        async with reading() as tx:
            state = await store.get_state(tenant, subject, tx)
        return 1 if state is None else state.version + 1

    async def _gone_resource(self, verified: VerifiedSet) -> dict[str, Any]:
        kind, resource_id = verified.subject.split("/", 1)
        when = _time(verified.claims)
        resource: dict[str, Any] = {
            "schemas": [USER_SCHEMA if kind == "Users" else GROUP_SCHEMA],
            "id": resource_id,
            "meta": {
                "resourceType": kind[:-1],
                "created": when,
                "lastModified": when,
                "location": f"{verified.claims['iss']}/{verified.subject}",
                "version": 'W/"0"',
            },
        }
        resource["userName" if kind == "Users" else "displayName"] = ""
        sub = verified.claims.get("sub_id")
        if isinstance(sub, dict) and isinstance(sub.get("externalId"), str):
            resource["externalId"] = sub["externalId"]
        return resource


class PollError(Exception):
    """The poll endpoint answered with an error (RFC 8936 `{"err", "description"}`)."""

    def __init__(self, status: int, err: str, description: str) -> None:
        super().__init__(f"poll answered {status} {err}: {description}")
        self.status = status
        self.err = err
        self.description = description


@dataclass
class PollResult:
    """What one `SetPoller.poll_once()` did."""

    received: int = 0
    processed: list[str] = field(default_factory=list)
    """jtis processed (acknowledged with the next poll)."""
    refused: dict[str, str] = field(default_factory=dict)
    """jti → RFC 8935 error code (sent back in `setErrs` with the next poll)."""
    deferred: list[str] = field(default_factory=list)
    """jtis not processed this time (a failure, or after one): the next poll brings them again."""
    more: bool = False


class SetPoller:
    """RFC 8936 poll loop of one receiver credential (`scimbus_r_…`): each `poll_once()`
    sends the acknowledgements and errors of what the previous one processed, gets the next
    SETs (a long poll: scimbus answers as soon as a change commits, or after 30 s), and
    processes them in order through the receiver. A SET is acknowledged only once
    processed; one refused for good (`SetError`) goes back in `setErrs`; at the first SET
    that fails otherwise (a handler, the database) the rest of the batch waits, so the next
    poll brings them again in order. `run()` polls until cancelled, retrying with backoff."""

    def __init__(
        self,
        receiver: SetReceiver,
        base_url: str,
        token: str,
        *,
        max_events: int = 100,
        client: httpx.AsyncClient | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        self.receiver = receiver
        self.url = f"{base_url.rstrip('/')}/sets/v1/poll"
        self._token = token
        self.max_events = max_events
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(30.0, read=MAX_WAIT + LONG_POLL_MARGIN))
        self._own_client = client is None
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._ack: list[str] = []
        self._errs: dict[str, dict[str, str]] = {}

    async def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        response = await self._client.post(self.url, json=body, headers={"Authorization": f"Bearer {self._token}"})
        if response.status_code != 200:
            try:
                error = response.json()
            except ValueError:
                error = {}
            raise PollError(response.status_code, str(error.get("err", "")), str(error.get("description", "")))
        answer: dict[str, Any] = response.json()
        return answer

    async def poll_once(self, *, wait: bool = True) -> PollResult:
        answer = await self._post(
            {"ack": self._ack, "setErrs": self._errs, "maxEvents": self.max_events, "returnImmediately": not wait}
        )
        self._ack, self._errs = [], {}  # scimbus has them
        sets: dict[str, str] = answer.get("sets") or {}
        result = PollResult(received=len(sets), more=bool(answer.get("moreAvailable")))
        failed = False
        for jti, token in sets.items():  # in the tenant's order (JSON object order)
            if failed:
                result.deferred.append(jti)
                continue
            try:
                await self.receiver.receive(token)
            except SetError as exc:
                log.warning("SET %s refused: %s", jti, exc)
                self._errs[jti] = exc.body()
                result.refused[jti] = exc.err
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - not acknowledged: it comes again
                log.exception("processing SET %s failed; it and the SETs after it come again", jti)
                failed = True
                result.deferred.append(jti)
            else:
                self._ack.append(jti)
                result.processed.append(jti)
        return result

    async def flush(self) -> None:
        """Send the pending acknowledgements and errors without asking for more."""
        if self._ack or self._errs:
            await self._post({"ack": self._ack, "setErrs": self._errs, "maxEvents": 0, "returnImmediately": True})
            self._ack, self._errs = [], {}

    async def run(self) -> None:
        failures = 0
        try:
            while True:
                try:
                    result = await self.poll_once(wait=True)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - retried with backoff
                    failures += 1
                    log.warning("polling %s failed (%r); retrying", self.url, exc)
                    await asyncio.sleep(min(self.backoff_max, self.backoff_initial * 2 ** min(failures - 1, 32)))
                    continue
                failures = 0
                if result.deferred:
                    await asyncio.sleep(self.backoff_initial)
        finally:
            try:
                await asyncio.shield(self.flush())
            except Exception:  # noqa: BLE001 - unacknowledged SETs come again (deduplicated)
                log.debug("sending the last acknowledgements failed", exc_info=True)

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()
