"""The browser tests' shared fixture: a headless Chromium per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from harness import browser
from selenium import webdriver


@pytest.fixture
def chrome() -> Iterator[webdriver.Chrome]:
    driver = browser()
    try:
        yield driver
    finally:
        driver.quit()
