"""The demo shop and client pages as a visitor's tab sees them, and what the local stack stored from them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from playwright.sync_api import ConsoleMessage, Page, Request

from footprint.models import keys
from footprint.models.profile import Profile
from footprint_local.stack import DEFAULT_WRITE_KEY, LocalStack

DEMO_SOURCE_ID = "demo"  # the source footprint_local seeds for the demo write key
# The visitor's browser settings: values a page could not produce by accident (the machine runs in UTC).
VISITOR_TIMEZONE = "Asia/Ho_Chi_Minh"
VISITOR_LOCALE = "vi-VN"
PAGE_CLOCK_START = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def shop_url(stack: LocalStack, page: str = "", *, host: str = "localhost", **query: str) -> str:
    """A page of the demo shop on ``host`` (another origin than the API's 127.0.0.1), sending to the stack's API."""
    port = urlsplit(stack.api_url).port
    return f"http://{host}:{port}/demo/{page}?{urlencode({'api': stack.api_url, **query})}"


def client_page(stack: LocalStack, body: str, *, options: str = "{}", head: str = "") -> str:
    """A client site's page: the README's snippet (sending to the stack's API), ``head``, then ``body``."""
    host = stack.api_url
    return f"""<!doctype html><html lang="vi"><head><meta charset="utf-8"><title>Client page</title>
<link rel="icon" href="data:,">
<script>{SNIPPET.replace("https://TRACKING_HOST", host)}
footprint.load("{DEFAULT_WRITE_KEY}", {options});
</script>{head}</head><body>{body}</body></html>"""


def readme_snippet() -> str:
    """The one-line snippet of the README's "Put Footprint on your site", word for word."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    line = next(line for line in readme.splitlines() if line.startswith("!function(w,d,u)"))
    return line.replace("https://<tracking host>", "https://TRACKING_HOST")


SNIPPET = readme_snippet()


@dataclass
class Visit:
    """One visitor's tab (its own browser context: its own cookies and localStorage) and what went wrong in it."""

    page: Page
    problems: list[str] = field(default_factory=list)
    tracking: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.page.on("requestfailed", self._on_request_failed)
        self.page.on("request", self._on_request)

    @property
    def anonymous_id(self) -> str:
        value = self.page.evaluate("footprint.anonymousId()")
        assert isinstance(value, str), "the page has no anonymous id"
        return value

    @property
    def timezone(self) -> str:
        """The time zone the page's Intl reports (what the script sends as context.timezone)."""
        return str(self.page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone"))

    def hold_clock(self) -> None:
        """Install Playwright's clock, paused: the page's time moves only when the test runs it
        (``clock.run_for``), so no real second spent on a busy machine counts as reading time.
        It starts where the stack's clock does (09:00 in Ho Chi Minh City)."""
        self.page.clock.install(time=PAGE_CLOCK_START)
        # Some ahead of the start, which flows until paused: pausing can only move the clock forward.
        self.page.clock.pause_at(PAGE_CLOCK_START + timedelta(seconds=10))

    def open(self, url: str) -> None:
        """Go to ``url`` and wait until footprint.js has loaded its settings."""
        self.page.goto(url)
        self.wait_for_script()

    def wait_for_script(self) -> None:
        self.page.wait_for_function("window.footprint && window.footprint.version")
        self.page.evaluate("new Promise((done) => footprint.ready(() => done()))")

    def calls(self, event: str | None = None, path: str = "/v1/batch") -> list[dict[str, Any]]:
        """The calls the page sent so far (each batch's messages, in order), those named ``event`` with it."""
        found = []
        for request in self.tracking:
            if urlsplit(request.url).path != path:
                continue
            payload = request_json(request)
            for message in payload.get("batch", [payload]):
                if event is None or message.get("event") == event or message.get("type") == event:
                    found.append(message)
        return found

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.problems.append(f"console: {message.text}")

    def _on_request_failed(self, request: Request) -> None:
        # A beacon or keepalive call still in flight when the page goes away is reported as failed.
        if "ERR_ABORTED" not in (request.failure or ""):
            self.problems.append(f"request failed: {request.method} {request.url} ({request.failure})")

    def _on_request(self, request: Request) -> None:
        if "/v1/" in request.url:
            self.tracking.append(request)


def request_json(request: Request) -> dict[str, Any]:
    try:
        payload = json.loads(request.post_data or "{}")
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


# ---------------------------------------------------------------------------------------- what the stack stored


def stored_events(stack: LocalStack, anonymous_id: str) -> list[dict[str, Any]]:
    """The visitor's items in EventsTable, each with its stored body (a TrackedEvent) parsed."""
    response = stack.clients.dynamodb.query(
        TableName=stack.resources.table_name("EventsTable"),
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"visitor#{DEMO_SOURCE_ID}#{anonymous_id}"}},
        ConsistentRead=True,
    )
    return [json.loads(item["body"]["S"]) for item in response.get("Items", [])]


def stored_profile(stack: LocalStack, anonymous_id: str, *, page_view_count: int | None = None) -> Profile | None:
    """The profile the visitor's anonymous id points to (through its alias), as evaluate stored it.

    With ``page_view_count``, only once it has counted that many page views (for ``wait_until``).
    """
    table = stack.resources.table_name("ProfilesTable")
    alias_key = keys.alias_key(DEMO_SOURCE_ID, "anon", anonymous_id)
    alias = stack.clients.dynamodb.get_item(
        TableName=table, Key={name: {"S": value} for name, value in alias_key.items()}
    )
    if "Item" not in alias:
        return None
    profile_key = keys.profile_key(alias["Item"]["profile_id"]["S"])
    item = stack.clients.dynamodb.get_item(
        TableName=table, Key={name: {"S": value} for name, value in profile_key.items()}
    )
    if "Item" not in item:
        return None
    profile = Profile.model_validate_json(item["Item"]["data"]["S"])
    return profile if page_view_count in (None, profile.page_view_count) else None
