"""Headless Chromium for the report tests: a driver that never touches the network, and its log."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,1000")
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
DRIVERS = ("chromedriver",)


def _which(names: tuple[str, ...]) -> str | None:
    return next((path for name in names if (path := shutil.which(name))), None)


def require_chromium() -> tuple[str, str]:
    """(browser, driver) paths, or skip the test naming what is missing and how to install it."""
    browser, driver = _which(BROWSERS), _which(DRIVERS)
    if not browser or not driver:
        pytest.skip("headless Chromium not installed (apt-get install -y chromium chromium-driver)")
    return browser, driver


@contextmanager
def chromium() -> Iterator:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = require_chromium()
    os.environ.setdefault("SE_AVOID_STATS", "true")  # Selenium Manager would otherwise phone home
    options = webdriver.ChromeOptions()
    options.binary_location = browser  # explicit paths: Selenium Manager never downloads anything
    for flag in FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="polyp_ray_chromium_")
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    session = webdriver.Chrome(options=options, service=Service(driver))
    try:
        yield session
    finally:
        session.quit()
        shutil.rmtree(profile, ignore_errors=True)


def severe(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def full_screenshot(driver, path: Path) -> None:
    """The whole page, not just the window: grow the window to the document's height first."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(int(height) + 100, 16000))
    driver.save_screenshot(str(path))


def wait_for(driver, condition: str, timeout: float = 30.0) -> None:
    """Poll a JavaScript ``condition`` until it holds; fail naming it after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if driver.execute_script(f"return {condition}"):
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {condition}")
