"""A visitor on the demo shop, in headless Chromium: the shop uses only footprint.js, as a client site would.

Reading time passes on Playwright's fake clock (``page.clock``), never in the test: the script runs its
real timers, only faster.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest

from footprint_local.stack import DEFAULT_WRITE_KEY, LocalStack
from tests.browser.shop import VISITOR_LOCALE, VISITOR_TIMEZONE, Visit, shop_url, stored_events, stored_profile

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("local_stack")]

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
PRODUCT = {"product_id": "vay-nu-he", "name": "Váy nữ phong cách hè", "price": 459000, "currency": "VND"}
REFERRER = "https://zalo.me/"


def is_vietnam_time(timezone: str) -> bool:
    """The visitor's zone by either name: Chromium reports Asia/Ho_Chi_Minh as Asia/Saigon (ICU's canonical id)."""
    return timezone in (VISITOR_TIMEZONE, "Asia/Saigon")


def events_named(stack: LocalStack, anonymous_id: str, name: str) -> list[dict]:
    return [event for event in stored_events(stack, anonymous_id) if event["event"] == name]


def test_the_page_call_reaches_the_events_table_across_origins(stack: LocalStack, visit: Visit) -> None:
    url = shop_url(stack, "vay-nu-he.html", utm_source="zalo", utm_campaign="he")

    with visit.page.expect_response(lambda response: response.url.endswith("/v1/batch")) as answered:
        visit.page.goto(url, referer=REFERRER)
    anonymous_id = visit.anonymous_id
    [event] = stack.wait_until(lambda: events_named(stack, anonymous_id, "page_viewed") or None, message="no page")

    response = answered.value
    assert response.status == 200, response.text()
    # A cross-origin request the browser let through: it sent Origin and read the answer.
    request_headers = response.request.all_headers()
    assert request_headers["origin"] == f"http://localhost:{urlsplit(stack.api_url).port}"
    assert response.all_headers()["access-control-allow-origin"] in ("*", request_headers["origin"])
    assert request_headers["content-type"] == "text/plain"  # a simple request: no preflight
    [page_call] = visit.calls("page")
    assert visit.calls()[0]["event"] == "session_started"  # the visit starts before its first page
    assert UUID.match(page_call["messageId"])
    assert UUID.match(anonymous_id)

    assert event["type"] == "page"
    assert event["anonymous_id"] == anonymous_id
    assert event["message_id"] == page_call["messageId"]
    assert event["name"] == PRODUCT["name"]
    context = event["context"]
    assert context["timezone"] == visit.timezone  # from Intl, in the visitor's browser
    assert is_vietnam_time(context["timezone"])
    assert context["locale"] == VISITOR_LOCALE
    assert context["page"]["url"] == url
    assert context["page"]["referrer"] == REFERRER
    assert context["page"]["title"].startswith(PRODUCT["name"])
    assert context["campaign"] == {"source": "zalo", "name": "he"}
    assert context["library"]["name"] == "footprint.js"
    assert "Chrome/" in context["userAgent"]
    # Stored at the stack's time: the browser's own clock only tells how long before sending it happened.
    happened = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))
    assert timedelta(0) <= stack.clock.now() - happened < timedelta(seconds=5)
    assert visit.problems == []


def test_product_viewed_after_15_visible_seconds_from_the_page_s_data_attributes(
    stack: LocalStack, visit: Visit
) -> None:
    visit.hold_clock()
    visit.open(shop_url(stack, "vay-nu-he.html"))
    anonymous_id = visit.anonymous_id

    # Time the page spends hidden does not count. Headless Chromium keeps every page visible, so the
    # test hides this one the only way it can: in the page, with the event a real tab switch fires.
    visit.page.evaluate("""() => {
        Object.defineProperty(document, 'hidden', {value: true, configurable: true});
        document.dispatchEvent(new Event('visibilitychange'));
    }""")
    visit.page.clock.run_for(30_000)
    visit.page.evaluate("""() => {
        delete document.hidden;
        document.dispatchEvent(new Event('visibilitychange'));
    }""")
    visit.page.clock.run_for(14_000)
    assert visit.calls("product_viewed") == []  # one second short

    visit.page.clock.run_for(1_000)

    def stored_view() -> list[dict[str, Any]]:
        # The page's clock is held: let its send timers run (another batch, such as the page call's
        # retry on a busy machine, may answer first), a few page milliseconds per look.
        visit.page.clock.run_for(10)
        return events_named(stack, anonymous_id, "product_viewed")

    [event] = stack.wait_until(stored_view, timeout=30, interval=0.1, message="no view")

    assert event["properties"]["dwell_seconds"] == 15  # visible seconds only
    assert event["properties"]["added_to_cart"] is False
    assert event["properties"] | PRODUCT == event["properties"]  # from the data-* attributes
    assert event["properties"]["url"].startswith(shop_url(stack, "vay-nu-he.html").split("?")[0])
    assert visit.problems == []


def test_the_marked_up_add_to_cart_button_reports_the_product(stack: LocalStack, visit: Visit) -> None:
    visit.open(shop_url(stack, "vay-nu-he.html"))
    anonymous_id = visit.anonymous_id

    with visit.page.expect_response(lambda response: response.url.endswith("/v1/batch")) as answered:
        visit.page.get_by_role("button", name="Thêm vào giỏ").click()
    [event] = stack.wait_until(lambda: events_named(stack, anonymous_id, "add_to_cart"), message="no add_to_cart")

    assert answered.value.status == 200
    assert event["type"] == "track"
    assert event["properties"] | PRODUCT == event["properties"]
    assert visit.page.text_content("#cart-count") == "1"  # the shop's own cart still works
    assert visit.problems == []


def test_checkout_sends_purchase_with_the_order(stack: LocalStack, visit: Visit) -> None:
    visit.open(shop_url(stack, "tui-coi.html"))
    visit.page.get_by_role("button", name="Thêm vào giỏ").click()
    visit.page.get_by_role("link", name=re.compile("Giỏ hàng")).click()
    visit.page.get_by_role("link", name=re.compile("Thanh toán")).click()
    visit.wait_for_script()
    anonymous_id = visit.anonymous_id

    visit.page.get_by_role("button", name="Đặt hàng").click()
    [event] = stack.wait_until(lambda: events_named(stack, anonymous_id, "purchase"), message="no purchase")

    properties = event["properties"]
    assert properties["revenue"] == 259000
    assert properties["currency"] == "VND"
    assert properties["order_id"].startswith("DH-")
    assert [product["product_id"] for product in properties["products"]] == ["tui-coi"]
    assert "Cảm ơn bạn" in visit.page.text_content("#status")
    assert visit.problems == []


def test_a_reload_is_the_same_visitor_in_the_same_session(stack: LocalStack, visit: Visit) -> None:
    visit.open(stack.demo_url)  # as `make run` serves it: the shop and the API on one origin
    first_visit = visit.anonymous_id
    visit.page.reload()
    visit.wait_for_script()
    assert visit.anonymous_id == first_visit

    profile = stack.wait_until(
        lambda: stored_profile(stack, first_visit, page_view_count=2),
        message="the profile did not count two page views",
    )
    events = stored_events(stack, first_visit)
    assert [event["type"] for event in events if event["type"] == "page"] == ["page", "page"]
    assert len([event for event in events if event["event"] == "session_started"]) == 1
    assert len({event["message_id"] for event in events}) == len(events)  # calls, not one call sent twice
    assert profile is not None
    assert profile.anonymous_ids == [first_visit]
    assert profile.timezone == VISITOR_TIMEZONE  # IANA's current name, whichever name the browser used
    assert visit.problems == []


def test_a_site_the_source_does_not_allow_is_refused(stack: LocalStack, visit: Visit) -> None:
    # *.localhost is loopback to Chromium, but the demo source allows only localhost and 127.0.0.1.
    with visit.page.expect_response(lambda response: response.url.endswith("/v1/batch")) as answered:
        visit.page.goto(shop_url(stack, host="shop.localhost"))
    anonymous_id = visit.anonymous_id

    response = answered.value
    # CORS (the API's, allowing any origin) lets the page read the answer; track's own check refuses it.
    assert response.status == 403
    assert response.json()["error"]["code"] == "origin_not_allowed"
    assert stored_events(stack, anonymous_id) == []  # track answers after its write, so none will come
    assert DEFAULT_WRITE_KEY in (response.request.post_data or "")
