"""The customer setup link in a real browser (Chromium through Selenium): a scimbus
process on SQLite, a link an operator made over the admin API, and the page as the
customer's IT admin uses it: the SCIM URL and the steps, the token revealed once, the
connection check turning green after a SCIM request, and a reused, revoked or expired link
refused.

scripts/browser-test installs Chromium and its driver when missing and sets SCIMBUS_BIN;
SCIMBUS_SCREENSHOTS names a directory to save the pages' screenshots in."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

BIN = os.environ.get("SCIMBUS_BIN")
ADMIN_TOKEN = "browser-admin-token-0123456789"
SCREENSHOTS = os.environ.get("SCIMBUS_SCREENSHOTS")
WAIT = 20

pytestmark = pytest.mark.skipif(not BIN, reason="SCIMBUS_BIN is not set (scripts/browser-test sets it)")


class Server:
    """`scimbus serve` on a SQLite file of its own."""

    def __init__(self) -> None:
        self.dir = tempfile.TemporaryDirectory()
        self.db = Path(self.dir.name) / "scimbus.db"
        env = {
            "PATH": os.environ.get("PATH", ""),
            "SCIMBUS_DATABASE_URL": f"sqlite://{self.db}?mode=rwc",
            "SCIMBUS_LISTEN": "127.0.0.1:0",
            "SCIMBUS_ADMIN_TOKEN": ADMIN_TOKEN,
            "SCIMBUS_LOG": "warn",
        }
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


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    s = Server()
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


@pytest.fixture
def chrome() -> Iterator[webdriver.Chrome]:
    driver = browser()
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver: webdriver.Chrome, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(SCREENSHOTS) / f"{name}.png"))


def refused(driver: webdriver.Chrome, words: str) -> None:
    heading = driver.find_element(By.TAG_NAME, "h1").text
    assert "can no longer be used" in heading, heading
    assert words in driver.find_element(By.CLASS_NAME, "refused").text


def test_a_customer_connects_from_the_link_alone(server: Server, chrome: webdriver.Chrome) -> None:
    _, url = server.link("acme")
    chrome.get(url)
    scim = f"{server.url}/scim/v2/acme"
    assert chrome.find_element(By.ID, "scim-base").get_attribute("value") == scim
    steps = chrome.find_element(By.ID, "steps").text
    assert scim in steps and f"{scim}?aadOptscim062020" in steps
    assert "globex" not in chrome.page_source
    assert chrome.find_element(By.ID, "connection").get_attribute("data-state") == "waiting"
    screenshot(chrome, "setup-link")

    # Revealed once, on the click.
    chrome.find_element(By.ID, "reveal").click()
    token = WebDriverWait(chrome, WAIT).until(ec.presence_of_element_located((By.ID, "token-value"))).get_attribute("value")
    assert token and token.startswith("scimbus_t_")
    assert token in chrome.find_element(By.ID, "steps").text
    screenshot(chrome, "setup-link-token")

    # Back on the page (this browser keeps it): the token is not shown again.
    chrome.get(url)
    assert chrome.find_element(By.ID, "token-used")
    assert token not in chrome.page_source

    # The IdP's first requests: a refused one, then one that succeeds; the check turns green.
    status, _ = server.request("POST", "/scim/v2/acme/Users", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]}, token)
    assert status == 400
    WebDriverWait(chrome, WAIT).until(
        lambda d: d.find_element(By.ID, "connection").get_attribute("data-state") == "failing"
    )
    assert "invalidValue" in chrome.find_element(By.ID, "check-requests").text or "400" in chrome.find_element(By.ID, "check-requests").text
    status, _ = server.request("GET", "/scim/v2/acme/Users?filter=userName%20eq%20%22probe%22", None, token)
    assert status == 200
    WebDriverWait(chrome, WAIT).until(
        lambda d: d.find_element(By.ID, "connection").get_attribute("data-state") == "connected"
    )
    assert "Connected" in chrome.find_element(By.ID, "check-state").text
    screenshot(chrome, "setup-link-connected")

    # Another browser (the link forwarded, say) gets nothing.
    other = browser()
    try:
        other.get(url)
        refused(other, "has been used")
        assert token not in other.page_source and scim not in other.page_source
    finally:
        other.quit()


def test_a_revoked_or_expired_link_is_refused(server: Server, chrome: webdriver.Chrome) -> None:
    link_id, url = server.link("globex")
    status, _ = server.request("DELETE", f"/admin/v1/tenants/globex/setup-links/{link_id}")
    assert status == 204
    chrome.get(url)
    refused(chrome, "revoked")

    # Expired: its expiry moved into the past in the database (the server's clock is real).
    link_id, url = server.link("globex")
    with sqlite3.connect(server.db, timeout=WAIT) as db:
        db.execute("UPDATE setup_links SET expires_at = '2001-01-01T00:00:00.000Z' WHERE id = ?", (link_id,))
    chrome.get(url)
    refused(chrome, "expired")
    screenshot(chrome, "setup-link-expired")
