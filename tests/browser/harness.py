"""What the browser tests share: a scimbus process on SQLite of its own, headless Chromium
(Debian's, with its driver; scripts/browser-test installs them) and screenshots.

scripts/browser-test sets SCIMBUS_BIN; SCIMBUS_SCREENSHOTS names a directory to save the
pages' screenshots in."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

BIN = os.environ.get("SCIMBUS_BIN")
ADMIN_TOKEN = "browser-admin-token-0123456789"
SCREENSHOTS = os.environ.get("SCIMBUS_SCREENSHOTS")
WAIT = 20

needs_binary = pytest.mark.skipif(not BIN, reason="SCIMBUS_BIN is not set (scripts/browser-test sets it)")


class Server:
    """`scimbus serve` on a SQLite file of its own."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.dir = tempfile.TemporaryDirectory()
        self.db = Path(self.dir.name) / "scimbus.db"
        env = {
            "PATH": os.environ.get("PATH", ""),
            "SCIMBUS_DATABASE_URL": f"sqlite://{self.db}?mode=rwc",
            "SCIMBUS_LISTEN": "127.0.0.1:0",
            "SCIMBUS_ADMIN_TOKEN": ADMIN_TOKEN,
            "SCIMBUS_LOG": "warn",
        } | (env or {})
        assert BIN is not None
        self.proc = subprocess.Popen([BIN, "serve"], env=env, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # "scimbus is serving on http://127.0.0.1:PORT (…)"
        assert "serving on" in line, line
        self.url = line.split("serving on ", 1)[1].split()[0]

    def request(self, method: str, path: str, body: dict | None = None, token: str = ADMIN_TOKEN) -> tuple[int, dict]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {token}")
        request.add_header("Content-Type", "application/scim+json")
        try:
            with urllib.request.urlopen(request, timeout=WAIT) as response:
                text = response.read()
                return response.status, json.loads(text) if text else {}
        except urllib.error.HTTPError as error:
            text = error.read()
            return error.code, json.loads(text) if text else {}

    def link(self, tenant: str) -> tuple[str, str]:
        status, body = self.request("POST", f"/admin/v1/tenants/{tenant}/setup-links", {"expiresInHours": 24})
        assert status == 201, body
        return body["id"], body["url"]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.dir.cleanup()


def serve(env: dict[str, str] | None = None) -> Iterator[Server]:
    """A server with the tenants acme and globex, stopped after."""
    s = Server(env)
    try:
        for tenant in ("acme", "globex"):
            status, body = s.request("POST", "/admin/v1/tenants", {"slug": tenant})
            assert status == 201, body
        yield s
    finally:
        s.stop()


def browser() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("SCIMBUS_CHROMIUM", "/usr/bin/chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,1800"):
        options.add_argument(argument)
    service = Service(executable_path=os.environ.get("SCIMBUS_CHROMEDRIVER", "/usr/bin/chromedriver"))
    return webdriver.Chrome(options=options, service=service)


def screenshot(driver: webdriver.Chrome, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(SCREENSHOTS) / f"{name}.png"))


