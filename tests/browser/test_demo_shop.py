"""A visitor on the demo shop, in headless Chromium: what the page sends and what the stack keeps of it.

The page's 15 s of reading time pass on Playwright's fake clock (``page.clock``), never in the test:
the page runs its real timer and threshold, only faster.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from footprint_local.stack import DEFAULT_WRITE_KEY, LocalStack
from tests.browser.shop import (
    VISITOR_LOCALE,
    VISITOR_TIMEZONE,
    Visit,
    request_json,
    shop_url,
    stored_events,
    stored_profile,
)

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("local_stack")]

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
PRODUCT = {"product_id": "vay-nu-he", "name": "Váy nữ phong cách hè"}
REFERRER = "https://zalo.me/"


def is_vietnam_time(timezone: str) -> bool:
    """The visitor's zone by either name: Chromium reports Asia/Ho_Chi_Minh as Asia/Saigon (ICU's canonical id)."""
    return timezone in (VISITOR_TIMEZONE, "Asia/Saigon")


def test_the_page_call_reaches_the_events_table_across_origins(stack: LocalStack, visit: Visit) -> None:
    url = shop_url(stack, utm_source="zalo", utm_campaign="he")

    with visit.page.expect_response(lambda response: response.url.endswith("/v1/page")) as answered:
        visit.page.goto(url, referer=REFERRER)
    anonymous_id = visit.anonymous_id
    [event] = stack.wait_until(lambda: stored_events(stack, anonymous_id), message="the page call was not stored")

    response = answered.value
    assert response.status == 200, response.text()
    # A cross-origin request the browser let through: it sent Origin and read the answer.
    request_headers = response.request.all_headers()
    assert request_headers["origin"] == f"http://localhost:{urlsplit(stack.api_url).port}"
    assert response.all_headers()["access-control-allow-origin"] in ("*", request_headers["origin"])
    assert request_headers["content-type"] == "text/plain"  # a simple request: no preflight
    sent = request_json(response.request)
    assert sent["writeKey"] == DEFAULT_WRITE_KEY
    assert UUID.match(sent["messageId"])
    assert UUID.match(anonymous_id)

    assert event["type"] == "page"
    assert event["anonymous_id"] == anonymous_id
    assert event["message_id"] == sent["messageId"]
    assert event["name"] == PRODUCT["name"]
    assert event["properties"]["product_id"] == PRODUCT["product_id"]
    context = event["context"]
    assert context["timezone"] == visit.timezone  # from Intl, in the visitor's browser
    assert is_vietnam_time(context["timezone"])
    assert context["locale"] == VISITOR_LOCALE
    assert context["page"]["url"] == url
    assert context["page"]["referrer"] == REFERRER
    assert context["page"]["title"].startswith(PRODUCT["name"])
    assert context["campaign"] == {"source": "zalo", "name": "he"}
    assert "Chrome/" in context["userAgent"]
    # Stored at the stack's time: the browser's own clock only tells the skew (Segment's rule).
    assert event["timestamp"].startswith(stack.clock.now().isoformat()[:16])
    assert visit.problems == []


def test_product_viewed_after_15_visible_seconds(stack: LocalStack, visit: Visit) -> None:
    visit.page.clock.install()
    visit.page.goto(shop_url(stack))
    visit.wait_for_log("/v1/page page → 200")
    anonymous_id = visit.anonymous_id

    # Time the page spends hidden does not count. Headless Chromium keeps every page visible, so the
    # test hides this one the only way it can: in the page.
    visit.page.evaluate("Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true})")
    visit.page.clock.run_for(30_000)
    visit.page.evaluate("delete document.visibilityState")  # the browser's own (visible) again
    visit.page.clock.run_for(14_000)
    # One second short: the countdown shows it and nothing was sent.
    assert visit.page.text_content("#dwell") == "product_viewed in 1 s…"
    assert visit.sent("product_viewed") == []

    with visit.page.expect_response(lambda response: response.url.endswith("/v1/track")):
        visit.page.clock.run_for(1_000)
    viewed = stack.wait_until(
        lambda: [event for event in stored_events(stack, anonymous_id) if event["event"] == "product_viewed"],
        message="product_viewed was not stored",
    )

    [event] = viewed
    assert event["properties"]["dwell_seconds"] == 15  # visible seconds only
    assert event["properties"] | PRODUCT == event["properties"]
    assert is_vietnam_time(event["context"]["timezone"])
    assert visit.problems == []


def test_add_to_cart_names_the_product(stack: LocalStack, visit: Visit) -> None:
    visit.page.goto(shop_url(stack))
    visit.wait_for_log("/v1/page page → 200")
    anonymous_id = visit.anonymous_id

    with visit.page.expect_response(lambda response: response.url.endswith("/v1/track")) as answered:
        visit.page.get_by_role("button", name="Thêm vào giỏ").click()
    added = stack.wait_until(
        lambda: [event for event in stored_events(stack, anonymous_id) if event["event"] == "add_to_cart"],
        message="add_to_cart was not stored",
    )

    assert answered.value.status == 200
    [event] = added
    assert event["type"] == "track"
    assert event["properties"]["product_id"] == PRODUCT["product_id"]
    assert event["properties"]["name"] == PRODUCT["name"]
    assert visit.problems == []


def test_a_reload_is_the_same_visitor_with_two_page_views(stack: LocalStack, visit: Visit) -> None:
    visit.page.goto(stack.demo_url)  # as `make run` serves it: the shop and the API on one origin
    visit.wait_for_log("/v1/page page → 200")
    first_visit = visit.anonymous_id

    visit.page.reload()
    visit.wait_for_log("/v1/page page → 200")
    assert visit.anonymous_id == first_visit

    profile = stack.wait_until(
        lambda: stored_profile(stack, first_visit, page_view_count=2),
        message="the profile did not count two page views",
    )
    events = stored_events(stack, first_visit)
    assert [event["type"] for event in events] == ["page", "page"]
    assert len({event["message_id"] for event in events}) == 2  # two calls, not one call sent twice
    assert profile is not None
    assert profile.anonymous_ids == [first_visit]
    assert profile.timezone == VISITOR_TIMEZONE  # IANA's current name, whichever name the browser used
    assert visit.problems == []


def test_a_site_the_source_does_not_allow_is_refused(stack: LocalStack, visit: Visit) -> None:
    # *.localhost is loopback to Chromium, but the demo source allows only localhost and 127.0.0.1.
    with visit.page.expect_response(lambda response: response.url.endswith("/v1/page")) as answered:
        visit.page.goto(shop_url(stack, host="shop.localhost"))
    anonymous_id = visit.anonymous_id

    response = answered.value
    # CORS (the API's, allowing any origin) lets the page read the answer; track's own check refuses it.
    assert response.status == 403
    assert response.json()["error"]["code"] == "origin_not_allowed"
    assert stored_events(stack, anonymous_id) == []  # track answers after its write, so none will come
