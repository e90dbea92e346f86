"""Fixtures of the browser test: the built book on a local server and one headless Chromium."""

from __future__ import annotations

import pytest
from bookcheck import (
    HTML,
    INSTALL_HINT,
    PHONE,
    BookServer,
    BrowserMissing,
    LinkChecker,
    find_chromium,
    launch,
)


@pytest.fixture(scope="session")
def built_book():
    if not (HTML / "index.html").exists():
        pytest.exit(
            f"No built book in {HTML}: run `make book` first, then `make browser-test`.",
            returncode=1,
        )
    return HTML


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium, or a stop with how to install it (never a silent pass or skip)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.exit(
            "Playwright's Python package is not installed: run `make install` "
            "(requirements.txt lists it). " + INSTALL_HINT,
            returncode=1,
        )
    try:
        executable = find_chromium()
    except BrowserMissing as e:
        pytest.exit(str(e), returncode=1)
    with sync_playwright() as playwright:
        try:
            chromium = launch(playwright, executable)
        except Exception as e:  # the reason, not Playwright's stack trace
            first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            pytest.exit(
                f"Chromium at {executable} did not start: {first_line}. {INSTALL_HINT}",
                returncode=1,
            )
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def server(built_book):
    with BookServer(built_book) as s:
        yield s


@pytest.fixture(scope="session")
def links(server):
    return LinkChecker(server)


@pytest.fixture
def context(browser):
    """A fresh browser profile per page: every page is checked as on a reader's first visit."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    yield ctx
    ctx.close()


@pytest.fixture
def phone_context(browser):
    """A phone-sized window (390 px wide, 3 device pixels per CSS pixel), first visit."""
    ctx = browser.new_context(viewport=PHONE, device_scale_factor=3, is_mobile=True, has_touch=True)
    yield ctx
    ctx.close()
