"""The operator console in a real browser (Chromium through Selenium): sign-in with a named
operator token, the tenants' health, a tripped brake released from the tenant's page, a
failed Entra PATCH found in the journal and read with its bodies, a form forged on another
page refused, and sign-out."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import ADMIN_TOKEN, WAIT, Server, browser, needs_binary, screenshot, serve
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

pytestmark = needs_binary

# A page being replaced (a form sent, a reload) while a wait reads it.
RELOADING = (NoSuchElementException, StaleElementReferenceException)

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    # A relay to the machine's RabbitMQ (scripts/test starts it): the events page charts
    # the relay's lag.
    amqp = os.environ.get("SCIMBUS_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f")
    yield from serve({"SCIMBUS_CONSOLE": "on", "SCIMBUS_AMQP_URL": amqp})


def shown(chrome: webdriver.Chrome, element_id: str):
    """The element, once the page that a click asked for has it."""
    return WebDriverWait(chrome, WAIT, ignored_exceptions=RELOADING).until(
        lambda d: d.find_element(By.ID, element_id)
    )


def shown_css(chrome: webdriver.Chrome, selector: str):
    """The first element the selector finds, once the page that a click asked for has it."""
    return WebDriverWait(chrome, WAIT, ignored_exceptions=RELOADING).until(
        lambda d: d.find_element(By.CSS_SELECTOR, selector)
    )


def held(server: Server) -> bool:
    status, view = server.request("GET", "/admin/v1/tenants/acme/brake")
    assert status == 200, view
    return view.get("hold") is not None


def trip_the_brake(server: Server, token: str) -> None:
    """Six Entra-style deactivations over a threshold of five."""
    status, body = server.request("PUT", "/admin/v1/tenants/acme/brake", {
        "enabled": True,
        "window_seconds": 3600,
        "users": {"count": 5, "percent": 100.0, "min": 1_000_000},
        "members": {"count": 1000, "percent": 100.0, "min": 1_000_000},
        "groups": {"count": 1000, "percent": 100.0, "min": 1_000_000},
        "auto_release_seconds": None,
    })
    assert status == 200, body
    for i in range(6):
        status, user = server.request("POST", "/scim/v2/acme/Users", {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": f"staff{i}@acme.example"
        }, token)
        assert status == 201, user
        status, body = server.request("PATCH", f"/scim/v2/acme/Users/{user['id']}", {
            "schemas": [PATCH], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]
        }, token)
        assert status == 200, body
    assert held(server)


def test_an_operator_releases_a_brake_and_reads_a_failed_patch_without_the_cli(
    server: Server, chrome: webdriver.Chrome, tmp_path: Path
) -> None:
    status, issued = server.request("POST", "/admin/v1/tenants/acme/tokens", {"name": "entra"})
    assert status == 201, issued
    token = issued["token"]
    trip_the_brake(server, token)
    # Entra's PATCH of a user the tenant does not hold: 404, journaled with its body.
    status, _ = server.request("PATCH", "/scim/v2/acme/Users/5d48a0a8-e2a7-4a3f-9d0c-8a8f3f0e1c11", {
        "schemas": [PATCH], "Operations": [{"op": "Replace", "path": "displayName", "value": "Zed Example"}]
    }, token)
    assert status == 404

    # Signed out, every page leads to the sign-in form; a wrong token is refused.
    chrome.get(f"{server.url}/console/tenants")
    chrome.find_element(By.ID, "token").send_keys("scimbus_a_wrong")
    chrome.find_element(By.ID, "sign-in").click()
    assert "not a live operator token" in shown_css(chrome, ".refused").text
    shown(chrome, "token").send_keys(ADMIN_TOKEN)
    chrome.find_element(By.ID, "sign-in").click()
    WebDriverWait(chrome, WAIT, ignored_exceptions=RELOADING).until(lambda d: d.current_url.endswith("/console/tenants"))
    assert chrome.find_element(By.ID, "operator").text == "bootstrap"
    acme = chrome.find_element(By.CSS_SELECTOR, 'tr[data-tenant="acme"]')
    assert "holding since" in acme.find_element(By.CLASS_NAME, "brake").text
    assert chrome.find_element(By.CSS_SELECTOR, 'tr[data-tenant="globex"] .brake').text == "clear"
    screenshot(chrome, "console-tenants")

    # A form forged on another page does not reach the console (no session goes with it).
    forged = tmp_path / "forged.html"
    forged.write_text(
        f'<form id="f" method="post" action="{server.url}/console/tenants/acme/brake/release">'
        '<input type="hidden" name="csrf" value="forged"><button id="go">go</button></form>'
    )
    chrome.get(forged.as_uri())
    chrome.find_element(By.ID, "go").click()
    WebDriverWait(chrome, WAIT, ignored_exceptions=RELOADING).until(lambda d: d.current_url.startswith(server.url))
    assert held(server), "a forged form released nothing"

    # The tenant's page: a token issued (its secret shown once) and revoked.
    chrome.get(f"{server.url}/console/tenants")
    chrome.find_element(By.LINK_TEXT, "acme").click()
    shown(chrome, "token-name").send_keys("okta-prod")
    chrome.find_element(By.ID, "issue").click()
    secret = shown(chrome, "issued-token").get_attribute("value")
    assert secret and secret.startswith("scimbus_t_")
    assert server.request("GET", "/scim/v2/acme/Users", None, secret)[0] == 200
    chrome.find_element(By.CSS_SELECTOR, 'tr[data-token="okta-prod"] button.revoke').click()
    WebDriverWait(chrome, WAIT, ignored_exceptions=RELOADING).until(
        lambda d: "revoked" in d.find_element(By.CSS_SELECTOR, 'tr[data-token="okta-prod"] .state').text
    )
    assert secret not in chrome.page_source
    assert server.request("GET", "/scim/v2/acme/Users", None, secret)[0] == 401

    # A setup link made for the customer, opened by them, then revoked here.
    chrome.find_element(By.ID, "create-link").click()
    link = shown(chrome, "issued-link").get_attribute("value")
    assert link and link.startswith(f"{server.url}/setup/scimbus_s_")
    customer = browser()
    try:
        customer.get(link)
        assert customer.find_element(By.ID, "scim-base").get_attribute("value") == f"{server.url}/scim/v2/acme"
        customer.get(f"{server.url}/console/tenants")
        assert customer.find_elements(By.ID, "sign-in"), "a setup link is no way into the console"
        chrome.get(f"{server.url}/console/tenants/acme")
        chrome.find_element(By.CSS_SELECTOR, "#link-list button.revoke").click()
        WebDriverWait(chrome, WAIT, ignored_exceptions=RELOADING).until(
            lambda d: d.find_element(By.CSS_SELECTOR, "#link-list .state").text == "revoked"
        )
        customer.get(link)
        assert "revoked" in customer.find_element(By.CLASS_NAME, "refused").text
    finally:
        customer.quit()
    assert link not in chrome.page_source

    # The hold, released with one click, in order.
    assert "Holding its events since" in shown(chrome, "brake-state").text
    screenshot(chrome, "console-tenant")
    chrome.find_element(By.ID, "release").click()
    WebDriverWait(chrome, WAIT, ignored_exceptions=RELOADING).until(
        lambda d: "Not holding" in d.find_element(By.ID, "brake-state").text
    )
    assert not held(server)

    # The failed PATCH, through the journal's filters, with its bodies side by side.
    Select(chrome.find_element(By.NAME, "status")).select_by_value("4xx")
    Select(chrome.find_element(By.NAME, "method")).select_by_value("PATCH")
    chrome.find_element(By.ID, "filter").click()
    WebDriverWait(chrome, WAIT, ignored_exceptions=RELOADING).until(
        lambda d: "status=4xx" in d.current_url and d.execute_script("return document.readyState") == "complete"
    )
    rows = chrome.find_elements(By.CSS_SELECTOR, "#entries tbody tr")
    assert len(rows) == 1, chrome.find_element(By.ID, "entries").text
    rows[0].find_element(By.TAG_NAME, "a").click()
    assert "Zed Example" in shown(chrome, "request-body").text
    assert "404" in chrome.find_element(By.ID, "response-body").text
    assert token not in chrome.page_source
    screenshot(chrome, "console-entry")

    # The tenant's events: per minute and the relay's lag, drawn as SVG.
    chrome.get(f"{server.url}/console/tenants/acme")
    chrome.find_element(By.ID, "events-chart").click()
    assert shown(chrome, "events-per-minute").tag_name == "svg"
    assert chrome.find_elements(By.CSS_SELECTOR, "#events-per-minute rect"), "a bar for the minute's events"
    assert chrome.find_element(By.ID, "relay-lag").tag_name == "svg"
    screenshot(chrome, "console-events")

    # Sign-out ends the session.
    chrome.find_element(By.ID, "sign-out").click()
    chrome.get(f"{server.url}/console/tenants")
    assert chrome.find_elements(By.ID, "sign-in")
