"""Headless Chromium against the local stack's demo shop: the browser side of tracking, for real.

Playwright drives the system's Chromium (Debian's ``chromium`` package): Playwright's own browser
download needs the internet, which CI and the development machines may not have. Without Chromium
the tests skip locally but fail in CI (``CI=true``), so a CI run can never pass without them.

The shop page is opened on ``localhost`` and sends to the API on ``127.0.0.1``: two origins, as a
client's site and its tracking endpoint are, so the browser really applies CORS and sends ``Origin``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from footprint.clock import ManualClock
from footprint_local.stack import LocalStack
from tests.browser.shop import VISITOR_LOCALE, VISITOR_TIMEZONE, Visit

# 09:00 in Ho Chi Minh City, when the visitor browses the shop.
STACK_START = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
# A browser that is quiet and self-contained on a CI machine: no sandbox (CI runs as root), no
# network of its own, no first-run or component downloads.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
    # Client pages the tests serve through Playwright's router have no network address, so Chromium
    # counts them as public and would refuse their calls to the API on loopback (Local Network Access).
    # A real site and a deployed API are both public: the check has nothing to say about them.
    "--disable-features=LocalNetworkAccessChecks",
]
BROWSER_TIMEOUT_MS = 10_000


@pytest.fixture(scope="module", autouse=True)
def chromium() -> str:
    """The system's Chromium; checked before anything starts, so a skip costs nothing."""
    executable = shutil.which("chromium")
    if executable:
        return executable
    reason = "Chromium is not installed (Debian: apt-get install chromium); the browser tests need it"
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"{reason}. CI must run them: .ci/run installs it.", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        # launch() starts from a new, empty, temporary user data directory and removes it afterwards.
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(
        port=0,
        moto_port=0,
        clock=ManualClock(STACK_START),
        sqs_retry_seconds=0,
        stream_retry_pause_seconds=0.02,
        scheduler_poll_seconds=0.05,
    ) as running:
        yield running


ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def journey_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A stack running the reference scenario (services-consult), for the onsite and web push tests,
    and callback-request, a form with every field type.

    Module-scoped like ``stack``: a stack sets the process's clock and environment while it runs, so
    two must never be up at once, nor one outlive the browser tests (integration tests share workers).
    """
    journeys = tmp_path_factory.mktemp("journeys")
    shipped = (ROOT / "journeys" / "services-consult.yaml").read_text(encoding="utf-8")
    (journeys / "services-consult.yaml").write_text(shipped, encoding="utf-8")
    # and a form with every field type, started only by its own event
    form = (ROOT / "tests" / "browser" / "journeys" / "callback-request.yaml").read_text(encoding="utf-8")
    (journeys / "callback-request.yaml").write_text(form, encoding="utf-8")
    with LocalStack(
        port=0,
        moto_port=0,
        clock=ManualClock(STACK_START),
        sqs_retry_seconds=0,
        stream_retry_pause_seconds=0.02,
        scheduler_poll_seconds=0.05,
        journeys_dir=journeys,
    ) as running:
        yield running


@pytest.fixture
def visit(browser: Browser) -> Iterator[Visit]:
    context = browser.new_context(timezone_id=VISITOR_TIMEZONE, locale=VISITOR_LOCALE)
    context.set_default_timeout(BROWSER_TIMEOUT_MS)
    page = context.new_page()
    try:
        yield Visit(page)
    finally:
        context.close()
