"""footprint.js on a client's page, in headless Chromium: the snippet's queue, ids, sessions, batching,
retries, consent. The page is the README's snippet served by the test on the shop's origin (localhost),
sending to the stack's API on 127.0.0.1. Time moves on Playwright's clock, never in the test.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Route

from footprint_local.stack import LocalStack
from tests.browser.shop import Visit, client_page, shop_url, stored_events
from tests.browser.test_push_opt_in import LOOPBACK_PUSH_MANAGER
from tests.integration.test_web_push import Browser as PushKeys
from tests.integration.test_web_push import b64url, public_point

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("local_stack")]


def origin(stack: LocalStack) -> str:
    return f"http://localhost:{urlsplit(stack.api_url).port}"


def serve(visit: Visit, stack: LocalStack, path: str, html: str) -> str:
    """Serve ``html`` at ``path`` on the client's origin (the browser cannot tell it from a real site)."""
    url = origin(stack) + path
    visit.page.route(url, lambda route: route.fulfill(status=200, content_type="text/html; charset=utf-8", body=html))
    return url


def stored_names(stack: LocalStack, anonymous_id: str) -> list[str]:
    return [event["event"] for event in stored_events(stack, anonymous_id)]


def test_calls_made_before_the_script_loaded_are_kept_in_order(stack: LocalStack, visit: Visit) -> None:
    url = serve(
        visit,
        stack,
        "/client/early.html",
        client_page(
            stack,
            "<p>shop</p>",
            head="""<script>
              window.queuedBeforeLoad = Array.isArray(footprint);
              footprint.page("Trang chủ");
              footprint.track("newsletter_seen", { position: "footer" });
              footprint.identify({ city: "Đà Nẵng" });
            </script>""",
        ),
    )
    visit.open(url)
    anonymous_id = visit.anonymous_id

    assert visit.page.evaluate("window.queuedBeforeLoad") is True  # the stub, not the script, took them
    names = stack.wait_until(
        lambda: (found := stored_names(stack, anonymous_id)) and len(found) == 4 and found, message="calls missing"
    )
    assert sorted(names) == sorted(["session_started", "page_viewed", "newsletter_seen", "identify"])
    sent = [call.get("event") or call["type"] for call in visit.calls()]
    assert sent == ["session_started", "page", "newsletter_seen", "identify"]  # in the order they were made
    assert visit.problems == []


def test_the_anonymous_id_outlives_a_reload_and_either_store_being_cleared(stack: LocalStack, visit: Visit) -> None:
    url = serve(visit, stack, "/client/ids.html", client_page(stack, "<p>shop</p>"))
    visit.open(url)
    first = visit.anonymous_id
    cookies = {cookie["name"]: cookie for cookie in visit.page.context.cookies()}
    assert cookies["footprint_aid"]["value"] == first  # a first-party cookie on the shop's origin
    assert cookies["footprint_aid"]["sameSite"] == "Lax"
    assert cookies["footprint_aid"]["expires"] > 0  # kept across browser restarts, not a session cookie

    visit.page.reload()
    visit.wait_for_script()
    assert visit.anonymous_id == first

    visit.page.evaluate("localStorage.clear()")  # the cookie brings it back
    visit.page.reload()
    visit.wait_for_script()
    assert visit.anonymous_id == first
    assert visit.page.evaluate("JSON.parse(localStorage.footprint_aid)") == first

    visit.page.context.clear_cookies()  # localStorage brings it back
    visit.page.reload()
    visit.wait_for_script()
    assert visit.anonymous_id == first
    assert {cookie["name"] for cookie in visit.page.context.cookies()} == {"footprint_aid"}
    assert visit.problems == []


def test_a_new_session_starts_after_30_idle_minutes_as_a_returning_visit(stack: LocalStack, visit: Visit) -> None:
    visit.page.clock.install()
    url = serve(visit, stack, "/client/session.html", client_page(stack, "<p>shop</p>"))
    visit.open(url)
    visit.page.evaluate("footprint.page()")
    visit.page.clock.fast_forward("29:00")  # a jump: timers due meanwhile fire once, not 116 polls
    visit.page.evaluate("footprint.track('still_here')")  # 29 minutes: the same visit
    visit.page.clock.fast_forward("31:00")
    visit.page.evaluate("footprint.track('back_again')")
    visit.page.clock.run_for(1_000)

    wait_for(visit, lambda: len(visit.calls("session_started")) == 2)
    started = visit.calls("session_started")
    first, second = (call["properties"] for call in started)
    assert first["returning"] is False
    assert second["returning"] is True
    assert first["session_id"] != second["session_id"]
    by_event = {call.get("event") or call["type"]: call for call in visit.calls()}
    assert by_event["still_here"]["context"]["session_id"] == first["session_id"]
    assert by_event["back_again"]["context"]["session_id"] == second["session_id"]
    assert visit.problems == []


def test_calls_waiting_in_the_batch_leave_with_the_page_in_a_beacon(stack: LocalStack, visit: Visit) -> None:
    # A long batching interval: only the page going away can send the call.
    url = serve(visit, stack, "/client/leave.html", client_page(stack, "<p>shop</p>", options="{flushInterval: 60000}"))
    visit.page.clock.install()
    visit.open(url)
    anonymous_id = visit.anonymous_id
    visit.page.evaluate("footprint.track('read_to_the_end')")
    visit.page.clock.run_for(5_000)
    assert visit.calls("read_to_the_end") == []

    # Only a beacon can carry it now: the page's fetch fails from here on.
    visit.page.evaluate("() => { window.fetch = () => Promise.reject(new TypeError('offline')); }")
    visit.page.goto("about:blank")  # pagehide

    names = stack.wait_until(
        lambda: "read_to_the_end" in (found := stored_names(stack, anonymous_id)) and found, message="lost on leaving"
    )
    assert sorted(names) == ["read_to_the_end", "session_started"]


def test_a_refused_batch_is_sent_again_after_retry_after_with_the_same_message_ids(
    stack: LocalStack, visit: Visit
) -> None:
    visit.hold_clock()  # Retry-After's 5 s on the page's clock only
    url = serve(visit, stack, "/client/retry.html", client_page(stack, "<p>shop</p>"))
    answers: list[int] = []

    def over_quota_once(route: Route) -> None:
        if not answers:
            answers.append(429)
            headers = {
                "retry-after": "5",
                "access-control-allow-origin": origin(stack),
                "access-control-expose-headers": "Retry-After",
            }
            body = json.dumps({"error": {"code": "rate_limited", "reason": "slow down"}})
            return route.fulfill(status=429, headers=headers, content_type="application/json", body=body)
        answers.append(200)
        return route.continue_()

    visit.page.route("**/v1/batch", over_quota_once)
    visit.open(url)
    anonymous_id = visit.anonymous_id
    visit.page.evaluate("footprint.track('coupon_copied', { code: 'TUVAN10' })")
    visit.page.clock.run_for(1_000)
    wait_for(visit, lambda: answers == [429])

    visit.page.clock.run_for(3_500)  # the exponential backoff alone would have retried by now
    visit.page.evaluate("footprint.track('urgent_later')")  # however urgent: not before Retry-After
    visit.page.clock.run_for(100)
    visit.page.wait_for_timeout(300)  # real time for a request that must not come
    assert answers == [429]

    visit.page.clock.run_for(1_500)  # 5 s after the 429
    wait_for(visit, lambda: answers == [429, 200])
    first, retried = (request_messages(request) for request in visit.tracking if request.url.endswith("/v1/batch"))
    assert [message["messageId"] for message in retried[: len(first)]] == [message["messageId"] for message in first]
    names = stack.wait_until(lambda: len(found := stored_names(stack, anonymous_id)) == 3 and found, message="lost")
    assert sorted(names) == ["coupon_copied", "session_started", "urgent_later"]


def test_with_require_consent_nothing_is_sent_or_kept_until_the_visitor_says_yes(
    stack: LocalStack, visit: Visit
) -> None:
    visit.page.clock.install()
    url = serve(
        visit, stack, "/client/consent.html", client_page(stack, "<p>shop</p>", options="{requireConsent: true}")
    )
    visit.open(url)
    visit.page.evaluate("footprint.page()")
    visit.page.clock.run_for(20_000)
    assert visit.calls() == []
    assert visit.calls(path="/v1/onsite") == []  # no inbox either: it would say who the visitor is
    assert visit.page.context.cookies() == []
    assert visit.page.evaluate("Object.keys(localStorage).filter((key) => key.includes('aid'))") == []

    visit.page.evaluate("footprint.consent(true)")  # the site's consent banner: yes
    visit.page.clock.run_for(1_000)
    wait_for(visit, lambda: [call["type"] for call in visit.calls()] == ["track", "page"])
    anonymous_id = visit.anonymous_id
    assert {cookie["name"]: cookie["value"] for cookie in visit.page.context.cookies()} == {
        "footprint_aid": anonymous_id
    }

    visit.page.evaluate("footprint.consent(false)")  # and no again: forgotten, nothing more sent
    visit.page.evaluate("footprint.track('after_no')")
    visit.page.clock.run_for(20_000)
    assert visit.calls("after_no") == []
    assert visit.page.context.cookies() == []
    visit.page.reload()
    visit.wait_for_script()
    visit.page.evaluate("footprint.track('next_page')")
    visit.page.clock.run_for(2_000)
    assert visit.calls("next_page") == []  # the "no" is remembered
    assert visit.problems == []


@pytest.mark.parametrize(("site_asks", "sent"), [(True, False), (False, True)])
def test_do_not_track_is_honoured_when_the_site_asks(
    stack: LocalStack, visit: Visit, site_asks: bool, sent: bool
) -> None:
    visit.page.add_init_script("Object.defineProperty(Navigator.prototype, 'doNotTrack', { get: () => '1' })")
    visit.page.clock.install()
    options = "{respectDoNotTrack: true}" if site_asks else "{}"
    url = serve(visit, stack, "/client/dnt.html", client_page(stack, "<p>shop</p>", options=options))
    visit.open(url)
    visit.page.evaluate("footprint.page()")
    visit.page.clock.run_for(2_000)
    if sent:
        wait_for(visit, lambda: visit.calls("page") != [])
    assert bool(visit.calls("page")) is sent
    assert bool(visit.page.context.cookies()) is sent


def test_a_signed_identity_goes_with_every_call_and_inbox_request(stack: LocalStack, visit: Visit) -> None:
    url = serve(visit, stack, "/client/identify.html", client_page(stack, "<p>shop</p>"))
    visit.open(url)
    with visit.page.expect_request("**/v1/onsite"):
        visit.page.evaluate("footprint.identify('u-42', { plan: 'pro' }, { user_hash: 'c0ffee' })")
        visit.page.evaluate("footprint.track('plan_viewed')")
    wait_for(visit, lambda: visit.calls("plan_viewed") != [])

    [identify] = visit.calls("identify")
    [viewed] = visit.calls("plan_viewed")
    assert identify["userId"] == viewed["userId"] == "u-42"
    assert identify["traits"] == {"plan": "pro"}
    assert identify["context"]["user_hash"] == viewed["context"]["user_hash"] == "c0ffee"
    inbox = [json.loads(request.post_data or "{}") for request in visit.tracking if request.url.endswith("/v1/onsite")]
    assert inbox[-1] | {"userId": "u-42", "user_hash": "c0ffee"} == inbox[-1]

    visit.page.evaluate("footprint.reset()")  # logged out: a new anonymous visitor, no userId
    visit.page.evaluate("footprint.track('logged_out')")
    wait_for(visit, lambda: visit.calls("logged_out") != [])
    [after] = visit.calls("logged_out")
    assert "userId" not in after
    assert after["anonymousId"] != identify["anonymousId"]


def request_messages(request: object) -> list[dict]:
    return json.loads(getattr(request, "post_data", None) or "{}").get("batch", [])


def wait_for(visit: Visit, condition: Callable[[], object], timeout: float = 5.0) -> None:
    """Wait for the browser's requests (Playwright reports them while it waits, not while Python sleeps)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the browser did not get there in time")
        visit.page.wait_for_timeout(50)  # real time: the page's clock is Playwright's fake one


def test_an_onsite_push_whose_call_to_action_is_web_push_asks_for_notifications(
    stack: LocalStack, visit: Visit
) -> None:
    # The inbox and its acks answered by the test: only the page's side is under test here.
    message = {
        "message_id": "welcome.v1.enr_1.ask_push.1",
        "channel": "onsite_push",
        "journey_id": "welcome",
        "node_id": "ask_push",
        "enrollment_id": "enr_1",
        "content": {"title": "Nhận tin ưu đãi?", "body": "Bật thông báo", "cta": "Bật", "url": "#web-push"},
    }
    served: list[str] = []
    acks: list[dict[str, Any]] = []
    cors = {"access-control-allow-origin": origin(stack)}

    def inbox(route: Route) -> None:
        messages = [] if served else [message]
        served.append(message["message_id"])
        route.fulfill(
            status=200, headers=cors, content_type="application/json", body=json.dumps({"messages": messages})
        )

    def ack(route: Route) -> None:
        acks.append(json.loads(route.request.post_data or "{}"))
        route.fulfill(status=200, headers=cors, content_type="application/json", body='{"success": true}')

    keys = PushKeys()
    subscription = {
        "endpoint": "http://127.0.0.1:9/push/ask",
        "expirationTime": None,
        "keys": {"p256dh": b64url(public_point(keys.private_key)), "auth": b64url(keys.auth_secret)},
    }
    visit.page.context.grant_permissions(["notifications"], origin=origin(stack))
    visit.page.add_init_script(f"({LOOPBACK_PUSH_MANAGER})({json.dumps(subscription)})")
    visit.page.route("**/v1/onsite", inbox)
    visit.page.route("**/v1/onsite/ack", ack)
    visit.open(shop_url(stack, "index.html"))
    anonymous_id = visit.anonymous_id

    push = visit.page.locator(".fp-push")
    push.wait_for()
    push.get_by_role("link", name="Bật").click()

    [subscribed] = stack.wait_until(
        lambda: [event for event in stored_events(stack, anonymous_id) if event["event"] == "web_push_subscribed"],
        message="no subscription",
    )
    assert subscribed["properties"]["subscription"] == subscription
    wait_for(visit, lambda: len(acks) == 2)
    assert [(ack["message_id"], ack["action"]) for ack in acks] == [
        (message["message_id"], "shown"),
        (message["message_id"], "clicked"),
    ]
    assert push.count() == 0
    assert visit.problems == []
