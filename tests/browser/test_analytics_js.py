"""Segment's analytics.js, unchanged but for its host, sends to Footprint from a real browser.

The page carries Segment's standard snippet (tests/fixtures/segment_snippet.js, as Segment's docs give
it) with one change: ``https://cdn.segment.com`` becomes the tracking host. The library itself is the
npm package's standalone build (``make analytics-js`` fetches the pinned version into ``.cache/``).
The browser resolves that https host to the local stack through Playwright's routing, as DNS would
resolve a deployed stack's; analytics.js then reads its settings from Footprint's settings route and
sends where they say. A first attempt answered 500 shows its retry carries ``X-Retry-Count`` through
CORS and is stored once.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Request, Route

from footprint_local.stack import LocalStack
from tests.browser.shop import Visit, stored_events

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("local_stack")]

ROOT = Path(__file__).resolve().parents[2]
ANALYTICS_JS = ROOT / ".cache" / "analytics-next-1.84.3" / "dist" / "umd"  # the Makefile's ANALYTICS_JS_VERSION
SNIPPET = (ROOT / "tests" / "fixtures" / "segment_snippet.js").read_text(encoding="utf-8")
TRACKING_HOST = "https://tracking.footprint.test"


@pytest.fixture(scope="module")
def library() -> Path:
    if not (ANALYTICS_JS / "standalone.js").exists():
        reason = "analytics.js is not fetched (make analytics-js)"
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(f"{reason}: make test fetches it.", pytrace=False)
        pytest.skip(reason)
    return ANALYTICS_JS


def segment_page(stack: LocalStack) -> str:
    snippet = SNIPPET.replace("https://cdn.segment.com", TRACKING_HOST).replace("YOUR_WRITE_KEY", stack.write_key)
    return f"""<!doctype html><html lang="vi"><head><meta charset="utf-8"><title>Segment client</title>
<link rel="icon" href="data:,"><script>{snippet}</script></head><body><h1>Cửa hàng</h1></body></html>"""


def test_the_standard_snippet_with_only_its_host_changed_sends_to_footprint_and_retries_once(
    stack: LocalStack, visit: Visit, library: Path
) -> None:
    port = urlsplit(stack.api_url).port
    client = f"http://localhost:{port}/client/segment.html"
    visit.page.route(
        client, lambda route: route.fulfill(content_type="text/html; charset=utf-8", body=segment_page(stack))
    )

    asked: list[str] = []

    def tracking_host(route: Route) -> None:
        path = urlsplit(route.request.url).path
        asked.append(path)
        if path.endswith("/analytics.min.js"):  # the site's copy of the library (Segment's CDN serves the same)
            route.fulfill(content_type="text/javascript", body=(library / "standalone.js").read_bytes())
        elif path.startswith("/analytics-next/bundles/"):  # its lazily loaded parts
            route.fulfill(content_type="text/javascript", body=(library / path.rsplit("/", 1)[1]).read_bytes())
        else:  # everything else is the stack's
            route.fulfill(response=route.fetch(url=stack.api_url + path))

    visit.page.route(f"{TRACKING_HOST}/**", tracking_host)
    failed_once: list[str] = []

    def fail_the_first_track(route: Route) -> None:
        if route.request.method == "POST" and not failed_once:
            failed_once.append(route.request.url)
            route.fulfill(status=500, content_type="application/json", body='{"error": "injected"}')
        else:
            route.fallback()

    visit.page.route("**/v1/t", fail_the_first_track)
    sent: list[Request] = []
    visit.page.on("requestfinished", lambda request: request.method == "POST" and sent.append(request))

    visit.page.goto(client)
    visit.page.wait_for_function("window.analytics && window.analytics.initialized === true")
    visit.page.evaluate(
        """analytics.track("Product Viewed", {product_id: "vay-nu-he", name: "Váy nữ phong cách hè", price: 459000})"""
    )
    anonymous_id = visit.page.evaluate("analytics.user().anonymousId()")
    assert isinstance(anonymous_id, str)

    def stored() -> list[dict[str, object]]:
        events = stored_events(stack, anonymous_id)
        return events if {event["event"] for event in events} >= {"page_viewed", "Product Viewed"} else []

    # Waiting in the page: Playwright answers the routes above only while the test is in one of its calls.
    deadline = time.monotonic() + 30
    while not ((events := stored()) and len(sent) == 3):  # the page, the refused track, its retry
        assert time.monotonic() < deadline, f"analytics.js' calls never arrived: {[r.url for r in sent]}"
        visit.page.wait_for_timeout(100)
    [viewed] = [event for event in events if event["event"] == "Product Viewed"]
    assert viewed["properties"]["name"] == "Váy nữ phong cách hè"
    assert viewed["context"]["library"]["name"] == "analytics.js"
    assert len(failed_once) == 1  # one of the two calls was refused once...
    retried = [request for request in sent if request.all_headers().get("x-retry-count")]
    assert [request.all_headers()["x-retry-count"] for request in retried] == ["1"]  # ...and sent again, through CORS
    answer = retried[0].response()
    assert answer is not None
    assert answer.status == 200
    assert len(events) == 2  # stored once each
    # Its settings came from Footprint's settings route, and they sent it to this stack's API.
    assert f"/v1/projects/{stack.write_key}/settings" in asked
    assert {urlsplit(request.url).netloc for request in sent} == {urlsplit(stack.api_url).netloc}
    assert [problem for problem in visit.problems if "500" not in problem] == []  # only the injected failure
