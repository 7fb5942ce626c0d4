"""Web push from the visitor's side: opt in on a click, the reminder a day later, the service worker
showing it and reporting the click.

Headless Chromium has no push service (its PushManager.subscribe refuses in a fresh profile and would
need Google's servers otherwise), so the page's PushManager is replaced by one that answers with a
subscription to a loopback push service the test runs, with keys the test holds: everything else is
real — footprint.js asks permission on the click, registers the shop's service worker, reports
``web_push_subscribed``; the stack encrypts the reminder for those keys and the test decrypts it; the
real service worker receives it through the DevTools protocol (``ServiceWorker.deliverPushMessage``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser as Chromium

from footprint_local.stack import LocalStack
from tests.browser.conftest import BROWSER_TIMEOUT_MS
from tests.browser.shop import VISITOR_LOCALE, VISITOR_TIMEZONE, Visit, shop_url, stored_profile
from tests.browser.test_onsite import events_named, inbox, journey_of, read_the_dress, skip_ahead
from tests.integration.test_web_push import Browser as PushKeys
from tests.integration.test_web_push import PushService, b64url, public_point

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("local_stack")]

ONE_DAY = 24 * 3600
# The page's PushManager, answering with the test's subscription (see the module's docstring).
LOOPBACK_PUSH_MANAGER = """(subscription) => {
  let current = null;
  PushManager.prototype.getSubscription = async () => current;
  PushManager.prototype.subscribe = async (options) => {
    window.subscribedWith = { userVisibleOnly: options.userVisibleOnly, key: options.applicationServerKey };
    current = { endpoint: subscription.endpoint, toJSON: () => subscription };
    current.unsubscribe = async () => !(current = null);
    return current;
  };
}"""


@pytest.fixture
def stack(journey_stack: LocalStack) -> LocalStack:
    return journey_stack


def test_a_visitor_who_allowed_notifications_gets_the_reminder_a_day_later_and_its_click_is_reported(
    stack: LocalStack, browser: Chromium
) -> None:
    keys = PushKeys()
    with PushService() as push_service:
        subscription = push_subscription(f"{push_service.origin}/push/visitor-1", keys)
        with notifications_allowed(stack, browser, subscription) as visit:
            run_the_scenario(stack, visit, keys, push_service, subscription)


def push_subscription(endpoint: str, keys: PushKeys) -> dict[str, Any]:
    return {
        "endpoint": endpoint,
        "expirationTime": None,
        "keys": {"p256dh": b64url(public_point(keys.private_key)), "auth": b64url(keys.auth_secret)},
    }


@contextmanager
def notifications_allowed(stack: LocalStack, browser: Chromium, subscription: dict[str, Any]) -> Iterator[Visit]:
    """A page whose visitor has allowed notifications and whose PushManager answers ``subscription``."""
    shop_origin = f"http://localhost:{urlsplit(stack.api_url).port}"
    context = browser.new_context(timezone_id=VISITOR_TIMEZONE, locale=VISITOR_LOCALE)
    context.set_default_timeout(BROWSER_TIMEOUT_MS)
    context.grant_permissions(["notifications"], origin=shop_origin)
    try:
        page = context.new_page()
        page.add_init_script(f"({LOOPBACK_PUSH_MANAGER})({json.dumps(subscription)})")
        yield Visit(page)
    finally:
        context.close()


def run_the_scenario(
    stack: LocalStack, visit: Visit, keys: PushKeys, push_service: PushService, subscription: dict[str, Any]
) -> None:
    # 1. The visitor opts in with the shop's button (a user gesture: the permission prompt needs one).
    visit.open(shop_url(stack, "index.html"))
    anonymous_id = visit.anonymous_id
    visit.page.get_by_role("button", name="Nhận thông báo").click()
    visit.page.get_by_text("Đã bật thông báo.").wait_for()
    settings = visit.page.evaluate(
        f"fetch('{stack.api_url}/v1/projects/{stack.write_key}/settings').then(r => r.json())"
    )
    assert visit.page.evaluate("window.subscribedWith") == {
        "userVisibleOnly": True,
        "key": settings["vapid_public_key"],
    }
    [subscribed] = stack.wait_until(lambda: events_named(stack, anonymous_id, "web_push_subscribed"), message="none")
    assert subscribed["properties"]["subscription"] == subscription
    stack.wait_until(
        lambda: (profile := stored_profile(stack, anonymous_id)) and profile.web_push_subscriptions,
        message="the profile has no push subscription",
    )
    [worker] = visit.page.context.service_workers  # the shop's own /demo/footprint-sw.js
    assert urlsplit(worker.url).path == "/demo/footprint-sw.js"

    # 2. The reference scenario up to the web push: reads the dress, closes the form, the onsite push.
    read_the_dress(stack, visit)
    visit.page.keyboard.press("Escape")
    stack.wait_until(lambda: journey_of(stack, anonymous_id).current_node == "pause_after_dismiss", message="no wait")
    skip_ahead(stack, 10)
    stack.wait_until(lambda: inbox(stack, visit), message="no onsite push")
    stack.wait_until(lambda: journey_of(stack, anonymous_id).current_node == "one_day_after_view", message="no wait")

    # 3. A day later (the local page's skip ahead), the stack pushes: the test's keys decrypt it.
    skip_ahead(stack, ONE_DAY)
    stack.wait_until(lambda: push_service.received, timeout=15, message="no web push arrived")
    [delivery] = push_service.received
    assert delivery.path == "/push/visitor-1"
    payload = keys.decrypt(delivery.body)
    assert "Váy nữ phong cách hè" in payload["title"]
    assert payload["url"] == shop_url(stack, "vay-nu-he.html")  # {{ trigger.url }}: back to the dress
    assert payload["node_id"] == "web_push_reminder"

    # 4. The browser hands it to the service worker, which shows it.
    cdp = visit.page.context.new_cdp_session(visit.page)
    registrations: list[dict[str, Any]] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda event: registrations.extend(event["registrations"]))
    cdp.send("ServiceWorker.enable")
    visit.page.wait_for_function("true")  # lets the protocol's events arrive
    [registration] = [found for found in registrations if found["scopeURL"].endswith("/demo/")]
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {
            "origin": f"http://localhost:{urlsplit(stack.api_url).port}",
            "registrationId": registration["registrationId"],
            "data": json.dumps(payload),
        },
    )
    shown = wait_for_notifications(visit)
    assert [notification["title"] for notification in shown] == [payload["title"]]
    assert shown[0]["body"] == payload["body"]
    assert shown[0]["url"] == payload["url"]
    assert shown[0]["icon"].endswith(payload["icon"])  # the journey's /static/icon-192.png

    # 5. The visitor clicks it: the worker reports message_clicked with the push's ids.
    worker.evaluate("""async () => {
        const [notification] = await self.registration.getNotifications();
        // A click the test makes: an untrusted event's waitUntil throws, after the report has left.
        try { self.dispatchEvent(new NotificationEvent("notificationclick", { notification })); } catch {}
    }""")
    [clicked] = stack.wait_until(lambda: events_named(stack, anonymous_id, "message_clicked"), message="no click")
    assert (
        clicked["properties"]
        | {
            "message_id": payload["message_id"],
            "node_id": "web_push_reminder",
            "journey_id": "services-consult",
            "channel": "web_push",
        }
        == clicked["properties"]
    )
    assert clicked["message_id"] == f"{payload['message_id']}:clicked"  # the same click twice is one event
    # The journey's "ignored web push" branch does not fire: the click moved the visitor on.
    stack.wait_until(lambda: journey_of(stack, anonymous_id).status != "active", message="the click was not seen")


def wait_for_notifications(visit: Visit) -> list[dict[str, Any]]:
    """The notifications the shop's service worker is showing, once there is one."""
    script = """() => navigator.serviceWorker.ready.then((registration) => registration.getNotifications())
        .then((found) => found.map((n) => ({ title: n.title, body: n.body, icon: n.icon, url: n.data.url })))"""
    # Up to 15 s, as for the push itself: a busy machine wakes the worker and draws the notification late.
    for _ in range(300):
        shown: list[dict[str, Any]] = visit.page.evaluate(script)
        if shown:
            return shown
        visit.page.wait_for_timeout(50)
    raise AssertionError("the service worker showed no notification")


def test_a_visitor_who_turns_notifications_off_is_no_longer_pushed(stack: LocalStack, browser: Chromium) -> None:
    subscription = push_subscription("http://127.0.0.1:9/push/visitor-2", PushKeys())
    with notifications_allowed(stack, browser, subscription) as visit:
        visit.open(shop_url(stack, "index.html"))
        anonymous_id = visit.anonymous_id
        visit.page.get_by_role("button", name="Nhận thông báo").click()
        visit.page.get_by_text("Đã bật thông báo.").wait_for()
        stack.wait_until(
            lambda: (profile := stored_profile(stack, anonymous_id)) and profile.web_push_subscriptions,
            message="the profile has no push subscription",
        )

        assert visit.page.evaluate("footprint.push.unsubscribe()") is True

        [unsubscribed] = stack.wait_until(
            lambda: events_named(stack, anonymous_id, "web_push_unsubscribed"), message="no web_push_unsubscribed"
        )
        assert unsubscribed["properties"]["endpoint"] == subscription["endpoint"]
        stack.wait_until(
            lambda: (profile := stored_profile(stack, anonymous_id)) and not profile.web_push_subscriptions,
            message="the subscription is still on the profile",
        )
        assert visit.page.evaluate("footprint.push.unsubscribe()") is False  # nothing left to turn off
