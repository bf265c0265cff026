"""The operator console's session for scripts/api-fuzz: provision.py signs in before the
run, and hooks.py signs in again when the fuzzer's sign-out ended the session. Standard
library only.

    sign_in(base, admin_token, slug) -> (session cookie value, the session's CSRF token)
"""

from __future__ import annotations

import http.client
import json
import re
import urllib.parse

COOKIE = "scimbus_console"
# The journal entry id the run sends for "the tenant's newest entry" (hooks.py replaces it).
NEWEST_ENTRY = "newest-journal-entry"


def _connection(base: str) -> http.client.HTTPConnection:
    url = urllib.parse.urlsplit(base)
    return http.client.HTTPConnection(url.hostname, url.port, timeout=10)


def sign_in(base: str, admin_token: str, slug: str) -> tuple[str, str]:
    """Signs in as the console's sign-in form does (from the console's origin) and reads the
    CSRF token of the tenant's page."""
    conn = _connection(base)
    try:
        conn.request("POST", "/console/sign-in", urllib.parse.urlencode({"token": admin_token}),
                     {"Content-Type": "application/x-www-form-urlencoded", "Origin": base})
        response = conn.getresponse()
        response.read()
        if response.status != 303:
            raise RuntimeError(f"console sign-in answered {response.status}")
        cookie = response.getheader("Set-Cookie") or ""
        found = re.match(rf"{COOKIE}=([^;]+)", cookie)
        if not found:
            raise RuntimeError(f"console sign-in set no session cookie: {cookie!r}")
        session = found.group(1)
        conn.request("GET", f"/console/tenants/{slug}", headers={"Cookie": f"{COOKIE}={session}"})
        response = conn.getresponse()
        page = response.read().decode()
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        if response.status != 200 or not csrf:
            raise RuntimeError(f"the tenant's console page answered {response.status} without a form")
        return session, csrf.group(1)
    finally:
        conn.close()


def newest_entry(base: str, admin_token: str, slug: str) -> str:
    """The id of the tenant's newest journal entry (the admin API's journal)."""
    conn = _connection(base)
    try:
        conn.request("GET", f"/admin/v1/tenants/{slug}/journal?limit=1",
                     headers={"Authorization": f"Bearer {admin_token}"})
        response = conn.getresponse()
        entries = json.loads(response.read() or b"{}").get("entries") or [{}]
        return entries[0].get("id", NEWEST_ENTRY)
    finally:
        conn.close()
