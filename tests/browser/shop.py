"""The demo shop as a visitor's tab sees it, and what the local stack stored from it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from playwright.sync_api import ConsoleMessage, Page, Request, Response

from footprint.models import keys
from footprint.models.profile import Profile
from footprint_local.stack import LocalStack

DEMO_SOURCE_ID = "demo"  # the source footprint_local seeds for the demo write key
# The visitor's browser settings: values a page could not produce by accident (the machine runs in UTC).
VISITOR_TIMEZONE = "Asia/Ho_Chi_Minh"
VISITOR_LOCALE = "vi-VN"


def shop_url(stack: LocalStack, *, host: str = "localhost", **query: str) -> str:
    """The demo shop on ``host`` (another origin than the API's 127.0.0.1), sending to the stack's API."""
    port = urlsplit(stack.api_url).port
    return f"http://{host}:{port}/demo/?{urlencode({'api': stack.api_url, **query})}"


@dataclass
class Visit:
    """One visitor's tab (its own browser context: its own localStorage) and what went wrong in it."""

    page: Page
    problems: list[str] = field(default_factory=list)
    tracking: list[Response] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.page.on("requestfailed", self._on_request_failed)
        self.page.on("response", self._on_response)

    @property
    def anonymous_id(self) -> str:
        value = self.page.evaluate("localStorage.getItem('footprint_demo_anonymous_id')")
        assert isinstance(value, str), "the page stored no anonymous id"
        return value

    @property
    def timezone(self) -> str:
        """The time zone the page's Intl reports (what the demo sends as context.timezone)."""
        return str(self.page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone"))

    def wait_for_log(self, text: str) -> None:
        """The demo logs each call's answer: wait for one (``/v1/page page → 200``)."""
        self.page.wait_for_function("text => document.getElementById('log').textContent.includes(text)", arg=text)

    def sent(self, event: str) -> list[Request]:
        return [response.request for response in self.tracking if request_json(response.request).get("event") == event]

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.problems.append(f"console: {message.text}")

    def _on_request_failed(self, request: Request) -> None:
        self.problems.append(f"request failed: {request.method} {request.url} ({request.failure})")

    def _on_response(self, response: Response) -> None:
        if "/v1/" in response.url:
            self.tracking.append(response)


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
