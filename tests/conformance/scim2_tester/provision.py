"""Waits for a fresh scimbus to answer /healthz, then creates a tenant and a SCIM token.

    python provision.py BASE_URL SLUG   (SCIMBUS_ADMIN_TOKEN in the environment)

Prints the token's secret alone on stdout. Bounded: gives up after
SCIM2_TESTER_STARTUP_SECS (default 60) seconds of waiting for /healthz. Standard library
only, so it runs before anything is known about the server.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request


def request(method: str, url: str, token: str | None = None, body: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback URL
        payload = resp.read()
        return resp.status, json.loads(payload) if payload else None


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


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit("usage: provision.py BASE_URL SLUG")
    base, slug = sys.argv[1].rstrip("/"), sys.argv[2]
    admin = os.environ.get("SCIMBUS_ADMIN_TOKEN")
    if not admin:
        sys.exit("provision.py: set SCIMBUS_ADMIN_TOKEN")
    wait_healthy(base, float(os.environ.get("SCIM2_TESTER_STARTUP_SECS", "60")))
    try:
        status, _ = request("POST", f"{base}/admin/v1/tenants", admin, {"slug": slug})
        if status != 201:
            sys.exit(f"provision.py: creating tenant {slug} answered {status}")
        status, token = request(
            "POST", f"{base}/admin/v1/tenants/{slug}/tokens", admin, {"name": "scim2-tester"}
        )
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        sys.exit(f"provision.py: {exc.url}: HTTP {exc.code}: {detail}")
    if status != 201 or not isinstance(token, dict) or not token.get("token"):
        sys.exit(f"provision.py: issuing a token answered {status}: {token}")
    print(token["token"])


if __name__ == "__main__":
    main()
