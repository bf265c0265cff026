"""Prepares a fresh scimbus for the API fuzz run (scripts/api-fuzz).

    python provision.py BASE_URL SLUG DICT_DIR   (SCIMBUS_ADMIN_TOKEN in the environment)

Waits for /healthz, then through the admin API creates the tenant SLUG, a token with the
scopes `scim` and `events:read` for the fuzzer, a second token of SLUG (`fuzz-victim`) that
revokeToken may revoke, and a second tenant SLUG-victim that deleteTenant may delete. Through
SCIM it seeds users and groups (with members) so that the by-id operations have real
targets. It writes one libFuzzer-style dictionary per kind of real value into DICT_DIR
(schemathesis.toml binds path parameters to them) and prints the fuzzer's token secret
alone on stdout. Standard library only; bounded by SCIMBUS_FUZZ_STARTUP_SECS (default 60).
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import console_session

USERS = 8
GROUPS = 4


def request(method: str, url: str, token: str | None = None, body: dict | None = None,
            content_type: str = "application/json"):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", content_type)
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback URL
        payload = resp.read()
        return resp.status, json.loads(payload) if payload else None


def expect(status: int, want: int, what: str, body) -> None:
    if status != want:
        sys.exit(f"provision.py: {what} answered {status} (expected {want}): {body}")


def wait_healthy(base: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            status, _ = request("GET", f"{base}/healthz")
            if status == 200:
                return
            last = f"HTTP {status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            last = str(exc)
        time.sleep(0.25)
    sys.exit(f"provision.py: {base}/healthz did not answer 200 within {seconds:g}s ({last})")


def write_dict(directory: Path, name: str, values: list[str]) -> None:
    lines = [json.dumps(v) for v in values]  # a JSON string is a valid libFuzzer entry for these
    (directory / f"{name}.dict").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    if len(sys.argv) != 4:
        sys.exit("usage: provision.py BASE_URL SLUG DICT_DIR")
    base, slug, dict_dir = sys.argv[1].rstrip("/"), sys.argv[2], Path(sys.argv[3])
    admin = os.environ.get("SCIMBUS_ADMIN_TOKEN")
    if not admin:
        sys.exit("provision.py: set SCIMBUS_ADMIN_TOKEN")
    wait_healthy(base, float(os.environ.get("SCIMBUS_FUZZ_STARTUP_SECS", "60")))
    dict_dir.mkdir(parents=True, exist_ok=True)
    victim_slug = f"{slug}-victim"
    scim_type = "application/scim+json"
    try:
        for s in (slug, victim_slug):
            status, body = request("POST", f"{base}/admin/v1/tenants", admin, {"slug": s})
            expect(status, 201, f"creating tenant {s}", body)
        # The fuzzer deletes and deactivates users by the dozen, which is what the brake
        # holds (exclusions.toml, restriction): off for the run's tenant.
        status, brake = request("GET", f"{base}/admin/v1/tenants/{slug}/brake", admin)
        expect(status, 200, "reading the brake", brake)
        settings = dict(brake["settings"], enabled=False)
        status, body = request("PUT", f"{base}/admin/v1/tenants/{slug}/brake", admin, settings)
        expect(status, 200, "turning the brake off", body)
        status, token = request("POST", f"{base}/admin/v1/tenants/{slug}/tokens", admin,
                                {"name": "fuzz", "scopes": ["scim", "events:read"]})
        expect(status, 201, "issuing the fuzz token", token)
        status, victim = request("POST", f"{base}/admin/v1/tenants/{slug}/tokens", admin,
                                 {"name": "fuzz-victim", "scopes": ["scim"]})
        expect(status, 201, "issuing the victim token", victim)
        secret = token["token"]
        scim = f"{base}/scim/v2/{slug}"
        users = []
        for i in range(USERS):
            status, user = request("POST", f"{scim}/Users", secret, {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": f"fuzz.user{i}@example.com",
                "externalId": f"ext-{i}",
                "displayName": f"Fuzz User {i}",
                "active": i % 3 != 0,
                "name": {"givenName": "Fuzz", "familyName": f"User{i}"},
                "emails": [{"value": f"fuzz.user{i}@example.com", "type": "work", "primary": True}],
            }, scim_type)
            expect(status, 201, f"creating user {i}", user)
            users.append(user["id"])
        groups = []
        for i in range(GROUPS):
            members = [{"value": u} for u in users[i:i + 3]]
            if groups:
                members.append({"value": groups[-1]})
            status, group = request("POST", f"{scim}/Groups", secret, {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": f"Fuzz Group {i}",
                "externalId": f"gext-{i}",
                "members": members,
            }, scim_type)
            expect(status, 201, f"creating group {i}", group)
            groups.append(group["id"])
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        sys.exit(f"provision.py: {exc.url}: HTTP {exc.code}: {detail}")
    write_dict(dict_dir, "user_ids", users)
    write_dict(dict_dir, "group_ids", groups)
    write_dict(dict_dir, "resource_ids", users + groups)
    write_dict(dict_dir, "victim_token_ids", [victim["id"]])
    # The admin tokens the run authenticates with (the bootstrap one): hooks.py keeps the
    # admin pass from revoking them; a victim operator token is there to be revoked.
    status, operators = request("GET", f"{base}/admin/v1/operators", admin)
    expect(status, 200, "listing the admin tokens", operators)
    write_dict(dict_dir, "protected_admin_ids",
               [t["id"] for t in operators["tokens"] if t["name"] == "bootstrap"])
    status, victim_operator = request("POST", f"{base}/admin/v1/operators", admin,
                                      {"name": "fuzz-victim-operator"})
    expect(status, 201, "issuing the victim operator token", victim_operator)
    write_dict(dict_dir, "victim_operator_ids", [victim_operator["id"]])
    write_dict(dict_dir, "bulk_paths",
               ["/Users", "/Groups", f"/Users/{users[-3]}", f"/Groups/{groups[0]}",
                "/Users/bulkId:b1"])
    write_dict(dict_dir, "group_patch_paths",
               ["members", "displayName", "externalId", "x-custom"]
               + [f'members[value eq "{u}"]' for u in users[:4]])
    write_dict(dict_dir, "purge_subjects",
               [f"Users/{u}" for u in users[-2:]] + [f"Groups/{g}" for g in groups[-1:]])
    # A SET receiver from the start of the tenant's sequence: pollSets authenticates with
    # its credential (a file beside the dictionaries; scripts/api-fuzz reads it), and the
    # receiver operations address it by id.
    status, receiver = request("POST", f"{base}/admin/v1/tenants/{slug}/receivers", admin,
                               {"name": "fuzz-receiver", "after": 0, "signals": True})
    expect(status, 201, "registering the SET receiver", receiver)
    write_dict(dict_dir, "receiver_ids", [receiver["id"]])
    (Path(dict_dir) / "receiver_token").write_text(receiver["token"])
    # A second one that removeSetReceiver may remove.
    status, victim_receiver = request("POST", f"{base}/admin/v1/tenants/{slug}/receivers", admin,
                                      {"name": "fuzz-victim-receiver"})
    expect(status, 201, "registering the victim SET receiver", victim_receiver)
    write_dict(dict_dir, "victim_receiver_ids", [victim_receiver["id"]])
    # An application credential of every tenant, for its receivers' operations.
    status, app = request("POST", f"{base}/admin/v1/apps", admin,
                          {"name": "fuzz-app", "all_tenants": True})
    expect(status, 201, "issuing the application credential", app)
    write_dict(dict_dir, "app_ids", [app["id"]])
    # A receiver of it that removeAppSetReceiver may remove.
    status, app_receiver = request("POST", f"{base}/admin/v1/apps/{app['id']}/receivers", admin,
                                   {"name": "fuzz-app-receiver",
                                    "endpoint": "https://receiver.example.com/sets"})
    expect(status, 201, "registering the application credential's SET receiver", app_receiver)
    write_dict(dict_dir, "victim_app_receiver_ids", [app_receiver["id"]])
    # Setup links: some that openSetupLink and checkSetupConnection read (never revealed),
    # some that revealSetupToken may use (once each), one that revokeSetupLink may revoke.
    def setup_link() -> dict:
        status, link = request("POST", f"{base}/admin/v1/tenants/{slug}/setup-links", admin,
                               {"expiresInHours": 24})
        expect(status, 201, "creating a setup link", link)
        return link
    def secret_of(link: dict) -> str:
        return link["url"].rsplit("/", 1)[1]
    write_dict(dict_dir, "setup_links_open", [secret_of(setup_link()) for _ in range(2)])
    write_dict(dict_dir, "setup_links_reveal", [secret_of(setup_link()) for _ in range(3)])
    victim_link = setup_link()["id"]
    write_dict(dict_dir, "victim_setup_link_ids", [victim_link])
    # The operator console: a session of the admin token (hooks.py sends its cookie with
    # every console request and signs in again after a sign-out), its CSRF token, what its
    # forms may revoke, and the tenant's newest journal entry to read.
    session, csrf = console_session.sign_in(base, admin, slug)
    (Path(dict_dir) / "console_session").write_text(session)
    write_dict(dict_dir, "console_csrf", [csrf])
    write_dict(dict_dir, "console_tokens", [admin])
    write_dict(dict_dir, "console_confirm", [slug])
    # Its own token and link to revoke: the admin pass, earlier, revokes the others.
    status, console_victim = request("POST", f"{base}/admin/v1/tenants/{slug}/tokens", admin,
                                     {"name": "fuzz-console-victim", "scopes": ["scim"]})
    expect(status, 201, "issuing the console's victim token", console_victim)
    write_dict(dict_dir, "console_revocable_ids", [console_victim["id"], setup_link()["id"]])
    # The tenant's journal keeps its newest entries only, and the earlier passes send
    # thousands: hooks.py puts the newest entry's id where the run sends this one.
    write_dict(dict_dir, "journal_ids", [console_session.NEWEST_ENTRY])
    print(secret)


if __name__ == "__main__":
    main()
