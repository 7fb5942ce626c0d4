"""The visitor's side on the local stack, over HTTP as a browser calls it: a product read for 15 s
becomes the consult form in that browser's onsite inbox, the script and its settings are served."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import requests

from footprint.clock import ManualClock
from footprint_local.stack import LocalStack
from tests.e2e.journeys import WRITE_KEY, track

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local_stack")]

ORIGIN = "http://localhost:8000"  # the demo source allows http://localhost:*


def post(stack: LocalStack, path: str, body: dict[str, Any]) -> requests.Response:
    # What footprint.js sends: text/plain JSON (no CORS preflight), the write key in the body.
    return requests.post(
        f"{stack.api_url}{path}",
        data=json.dumps({"writeKey": WRITE_KEY, **body}, ensure_ascii=False).encode(),
        headers={"content-type": "text/plain", "origin": ORIGIN},
        timeout=10,
    )


def test_a_product_read_for_15_seconds_puts_the_consult_form_in_the_visitor_s_inbox(
    stack: LocalStack, clock: ManualClock
) -> None:
    assert post(stack, "/v1/onsite", {"anonymousId": "hoa"}).json() == {"messages": []}

    product = {"product_id": "vay-nu-he", "name": "Váy nữ phong cách hè", "url": "/demo/", "dwell_seconds": 15}
    track(stack, clock, "product_viewed", visitor="hoa", message_id="hoa-view", **product)
    # services-consult waits 10 s for an add_to_cart of that product before the form.
    clock.advance(timedelta(seconds=10))
    stack.wake_pumps()

    def inbox() -> list[dict[str, Any]]:
        return list(post(stack, "/v1/onsite", {"anonymousId": "hoa"}).json()["messages"])

    [form] = stack.wait_until(inbox, timeout=20, message="the consult form never reached the inbox")
    assert (form["channel"], form["journey_id"], form["node_id"]) == ("onsite_form", "services-consult", "consult_form")
    assert "Váy nữ phong cách hè" in form["content"]["title"]
    assert [field["name"] for field in form["content"]["fields"]] == ["full_name", "phone", "email"]
    answer = post(stack, "/v1/onsite", {"anonymousId": "hoa"})
    # API Gateway (and the local stack, like it) answers with the API's CORS origins: "*" by default.
    assert answer.headers["access-control-allow-origin"] in {ORIGIN, "*"}
    # Another browser sees nothing of it.
    assert post(stack, "/v1/onsite", {"anonymousId": "someone-else"}).json() == {"messages": []}

    shown = post(stack, "/v1/onsite/ack", {"anonymousId": "hoa", "message_id": form["message_id"], "action": "shown"})
    assert shown.status_code == 200, shown.text
    assert inbox() == []


def test_the_script_and_the_settings_are_served_by_the_tracking_api(stack: LocalStack) -> None:
    script = requests.get(f"{stack.api_url}/footprint.js", timeout=10)
    assert script.status_code == 200
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    cached = requests.get(
        f"{stack.api_url}/footprint.js", headers={"if-none-match": script.headers["etag"]}, timeout=10
    )
    assert cached.status_code == 304

    settings = requests.get(f"{stack.api_url}/v1/projects/{WRITE_KEY}/settings", headers={"origin": ORIGIN}, timeout=10)
    assert settings.status_code == 200, settings.text
    body = settings.json()
    assert 15 in body["dwell_thresholds"]
    assert body["vapid_public_key"] == stack.vapid_public_key
    assert body["web_push"] is True
    assert settings.headers["access-control-allow-origin"] in {ORIGIN, "*"}


def test_the_local_stack_accepts_loopback_push_services_but_not_private_ones(
    stack: LocalStack, clock: ManualClock
) -> None:
    keys = {"p256dh": "BN" + "A" * 85, "auth": "A" * 22}
    for endpoint, status in (("http://127.0.0.1:9/push/hoa", 200), ("https://10.0.0.8/push/hoa", 400)):
        response = post(
            stack,
            "/v1/track",
            {
                "anonymousId": "hoa",
                "event": "web_push_subscribed",
                "properties": {"subscription": {"endpoint": endpoint, "keys": keys}},
                "timestamp": clock.now().isoformat(),
            },
        )
        assert response.status_code == status, response.text
