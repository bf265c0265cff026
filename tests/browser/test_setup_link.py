"""The customer setup link in a real browser (Chromium through Selenium): a scimbus
process on SQLite, a link an operator made over the admin API, and the page as the
customer's IT admin uses it: the SCIM URL and the steps, the token revealed once, the
connection check turning green after a SCIM request, and a reused, revoked or expired link
refused."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from harness import WAIT, Server, browser, needs_binary, screenshot, serve
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = needs_binary

# A page being replaced (a form sent, a reload) while a wait reads it.
RELOADING = (NoSuchElementException, StaleElementReferenceException)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    yield from serve(None)


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
    token = WebDriverWait(chrome, WAIT, ignored_exceptions=RELOADING).until(ec.presence_of_element_located((By.ID, "token-value"))).get_attribute("value")
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
    WebDriverWait(chrome, WAIT, ignored_exceptions=RELOADING).until(
        lambda d: d.find_element(By.ID, "connection").get_attribute("data-state") == "failing"
    )
    assert "invalidValue" in chrome.find_element(By.ID, "check-requests").text or "400" in chrome.find_element(By.ID, "check-requests").text
    status, _ = server.request("GET", "/scim/v2/acme/Users?filter=userName%20eq%20%22probe%22", None, token)
    assert status == 200
    WebDriverWait(chrome, WAIT, ignored_exceptions=RELOADING).until(
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
