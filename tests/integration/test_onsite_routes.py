"""The visitor's side of the tracking API through the real track handler on moto: the script, its
settings, the onsite inbox (the OnsiteInbox index) and the outcomes a browser reports."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

import send_handler
import track_handler
from footprint.adapters import send_wiring, wiring
from footprint.adapters.journey_catalog import DynamoJourneyCatalog
from footprint.adapters.outbox import DynamoOutbox
from footprint.adapters.profiles_store import profile_to_item
from footprint.adapters.web_assets import WEB_DIR
from footprint.clock import ManualClock, current_clock, use_clock
from footprint.identity import sign_user_id
from footprint.models import keys
from footprint.models.events import TrackedEvent
from footprint.models.journey import load_journey_yaml
from footprint.models.messages import DeliveryRecord, MessageChannel, OutgoingMessage
from footprint.models.profile import Profile
from tests.api_gateway import HttpResult, http_api_event, http_result
from tests.builders import T0
from tests.integration.conftest import Tables
from tests.integration.test_evaluate_journeys import drain, evaluate, product_view, sqs_event, stack  # noqa: F401
from tests.integration.test_evaluate_profiles import stream_record
from tests.integration.test_send_handler import LambdaContext as SendContext
from tests.integration.test_send_handler import sqs_record
from tests.lambda_context import lambda_context

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

JOURNEYS = Path(__file__).resolve().parents[2] / "journeys"
WRITE_KEY = "wk-shop"
SECRET = "identity-secret-of-the-shop"
ORIGIN = "https://shop.example.com"
SOURCE = {
    "source_id": "demo",
    "name": "Shop",
    "allowed_origins": [ORIGIN],
    "identity_secret": SECRET,
}
LAN = Profile(profile_id="p-lan", source_id="demo", anonymous_ids=["anon-lan"], user_id="lan@shop")
MINH = Profile(profile_id="p-minh", source_id="demo", anonymous_ids=["anon-minh"])
FORM = {
    "title": "Nhận tư vấn miễn phí cho Váy nữ phong cách hè",
    "offer_code": "TUVAN10",
    "submit_label": "Nhận ưu đãi",
    "consent_text": "Tôi đồng ý nhận tư vấn qua điện thoại và email.",
    "fields": [
        {"name": "full_name", "label": "Họ và tên", "type": "text", "required": True},
        {"name": "phone", "label": "Số điện thoại", "type": "tel", "required": True},
    ],
}


@dataclass
class Browser:
    tables: Tables
    clock: ManualClock

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> HttpResult:
        event = http_api_event(
            path, body, method=method, content_type="text/plain", headers={"origin": ORIGIN, **(headers or {})}
        )
        return http_result(track_handler.handler(event, lambda_context("TrackFunction")))

    def inbox(self, **visitor: Any) -> HttpResult:
        return self.request("POST", "/v1/onsite", {"writeKey": WRITE_KEY, **visitor})

    def ack(self, message_id: str, action: str, **fields: Any) -> HttpResult:
        body = {"writeKey": WRITE_KEY, "anonymousId": "anon-lan", "message_id": message_id, "action": action, **fields}
        return self.request("POST", "/v1/onsite/ack", body)

    def events(self) -> dict[str, TrackedEvent]:
        items = self.tables.client.scan(TableName=self.tables.events)["Items"]
        stored = (TrackedEvent.model_validate_json(item["body"]["S"]) for item in items)
        return {event.message_id: event for event in stored}


def put_source(tables: Tables) -> None:
    item = {"id": {"S": f"source/{WRITE_KEY}"}, "value": {"S": json.dumps(SOURCE)}}
    tables.client.put_item(TableName=tables.config, Item=item)


@pytest.fixture
def browser(tables: Tables) -> Iterator[Browser]:
    put_source(tables)
    for profile in (LAN, MINH):
        tables.client.put_item(TableName=tables.profiles, Item=profile_to_item(profile))
        aliases = [("anon", anon) for anon in profile.anonymous_ids] + (
            [("user", profile.user_id)] * bool(profile.user_id)
        )
        for kind, value in aliases:
            item = {**{k: {"S": v} for k, v in keys.alias_key("demo", kind, value).items()}}  # type: ignore[arg-type]
            tables.client.put_item(TableName=tables.profiles, Item={**item, "profile_id": {"S": profile.profile_id}})
    previous = current_clock()
    clock = ManualClock(T0)
    use_clock(clock)
    wiring.reset()
    yield Browser(tables, clock)
    use_clock(previous)
    wiring.reset()


def queue(tables: Tables, key: str, profile_id: str, channel: MessageChannel = "onsite_form", minutes: int = 0) -> None:
    """What send leaves for an onsite step: a settled outbox row in the visitor's inbox."""
    outbox = DynamoOutbox(tables.client, tables.messages, timedelta(days=400))
    message = OutgoingMessage(
        idempotency_key=key,
        profile_id=profile_id,
        source_id="demo",
        journey_id="services-consult",
        journey_version=1,
        enrollment_id="e-1",
        node_id="consult_form" if channel == "onsite_form" else "onsite_offer",
        channel=channel,
        requested_at=T0,
    )
    outbox.claim(message, "a-1", T0)
    record = DeliveryRecord(
        idempotency_key=key,
        profile_id=profile_id,
        journey_id=message.journey_id,
        node_id=message.node_id,
        enrollment_id="e-1",
        channel=channel,
        status="queued_onsite",
        rendered=FORM if channel == "onsite_form" else {"title": "Giảm 10%", "cta": "Xem ngay"},
        sent_at=T0 + timedelta(minutes=minutes),
    )
    assert outbox.settle(record, "a-1")


# ------------------------------------------------------------------------------------------- the inbox


def test_a_visitor_gets_their_own_queued_consult_form_rendered(browser: Browser) -> None:
    queue(browser.tables, "form-lan", "p-lan")
    queue(browser.tables, "push-lan", "p-lan", channel="onsite_push", minutes=1)
    queue(browser.tables, "form-minh", "p-minh")
    browser.clock.advance(timedelta(minutes=2))

    result = browser.inbox(anonymousId="anon-lan")

    assert result.status == 200, result.body
    assert [m["message_id"] for m in result.body["messages"]] == ["form-lan", "push-lan"]  # oldest first
    form = result.body["messages"][0]
    assert form == {
        "message_id": "form-lan",
        "channel": "onsite_form",
        "journey_id": "services-consult",
        "node_id": "consult_form",
        "enrollment_id": "e-1",
        "content": FORM,
        "queued_at": T0.isoformat(),
        "expires_at": (T0 + timedelta(days=1)).isoformat(),
    }
    assert result.headers["access-control-allow-origin"] == ORIGIN
    assert "retry-after" in result.headers["access-control-expose-headers"].lower()
    assert result.headers["cache-control"] == "no-store"


def test_another_visitor_s_anonymous_id_and_an_unknown_one_get_nothing(browser: Browser) -> None:
    queue(browser.tables, "form-lan", "p-lan")

    assert browser.inbox(anonymousId="anon-minh").body == {"messages": []}
    assert browser.inbox(anonymousId="anon-nobody").body == {"messages": []}


def test_a_user_id_counts_only_with_its_user_hash(browser: Browser) -> None:
    queue(browser.tables, "form-lan", "p-lan")

    for visitor in ({"userId": "lan@shop"}, {"userId": "lan@shop", "user_hash": "0" * 64}):
        refused = browser.inbox(anonymousId="anon-minh", **visitor)
        assert refused.status == 403, refused.body
        assert refused.body["error"]["code"] == "identity_required"
        assert refused.headers["access-control-allow-origin"] == ORIGIN  # the page can read why
    signed = browser.inbox(userId="lan@shop", user_hash=sign_user_id(SECRET, "lan@shop"))
    assert [m["message_id"] for m in signed.body["messages"]] == ["form-lan"]


def test_expired_messages_are_not_shown_and_origins_are_checked(browser: Browser) -> None:
    queue(browser.tables, "form-lan", "p-lan")
    browser.clock.advance(timedelta(days=1, minutes=1))

    assert browser.inbox(anonymousId="anon-lan").body == {"messages": []}
    stranger = browser.request(
        "POST", "/v1/onsite", {"writeKey": WRITE_KEY, "anonymousId": "anon-lan"}, {"origin": "https://evil.test"}
    )
    assert stranger.status == 403
    assert stranger.body["error"]["code"] == "origin_not_allowed"
    assert "access-control-allow-origin" not in stranger.headers
    assert browser.request("POST", "/v1/onsite", {"writeKey": "nope", "anonymousId": "a"}).status == 401
    assert browser.request("POST", "/v1/onsite", {"writeKey": WRITE_KEY}).status == 400


def test_the_inbox_of_a_visitor_is_one_query_of_the_index_per_profile(browser: Browser) -> None:
    calls: list[str] = []
    session = boto3.DEFAULT_SESSION
    assert session is not None
    session.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name), unique_id="c")
    try:
        browser.inbox(anonymousId="anon-lan")
    finally:
        session.events.unregister("before-call.dynamodb", unique_id="c")

    assert "Scan" not in calls
    assert calls.count("Query") == 1


# ------------------------------------------------------------------------------------------- acks


def test_shown_takes_the_message_out_of_the_inbox_and_is_recorded_once_even_when_retried(browser: Browser) -> None:
    queue(browser.tables, "form-lan", "p-lan")

    for _ in range(2):
        result = browser.ack("form-lan", "shown")
        assert result.status == 200, result.body
        assert result.body == {"success": True}

    assert browser.inbox(anonymousId="anon-lan").body == {"messages": []}
    events = browser.events()
    assert list(events) == ["form-lan:shown"]
    shown = events["form-lan:shown"]
    assert (shown.event, shown.anonymous_id, shown.user_id) == ("message_shown", "anon-lan", None)
    assert shown.properties == {
        "message_id": "form-lan",
        "journey_id": "services-consult",
        "node_id": "consult_form",
        "enrollment_id": "e-1",
        "channel": "onsite_form",
    }


def test_an_ack_for_another_visitor_s_message_is_not_found(browser: Browser) -> None:
    queue(browser.tables, "form-minh", "p-minh")

    for message_id in ("form-minh", "no-such-message"):
        result = browser.ack(message_id, "shown")
        assert result.status == 404, result.body
        assert result.body["error"]["code"] == "message_not_found"
    assert [m["message_id"] for m in browser.inbox(anonymousId="anon-minh").body["messages"]] == ["form-minh"]
    assert browser.events() == {}


@pytest.mark.parametrize(
    ("channel", "action", "event"),
    [
        ("onsite_form", "dismissed", "form_dismissed"),
        ("onsite_push", "dismissed", "message_dismissed"),
        ("onsite_push", "clicked", "message_clicked"),
    ],
)
def test_each_action_is_its_outcome_event(browser: Browser, channel: MessageChannel, action: str, event: str) -> None:
    queue(browser.tables, "m-1", "p-lan", channel=channel)

    assert browser.ack("m-1", action).status == 200

    assert browser.events()[f"m-1:{action}"].event == event
    assert browser.inbox(anonymousId="anon-lan").body == {"messages": []}


def test_a_submitted_form_identifies_the_visitor_with_consent_pending(browser: Browser) -> None:
    queue(browser.tables, "form-lan", "p-lan")
    fields = {"full_name": " Trần Thị Lan ", "phone": "0912 345 678", "email": "lan@example.com", "size": "M"}

    assert browser.ack("form-lan", "submitted", fields=fields).status == 200

    events = browser.events()
    submitted = events["form-lan:submitted"]
    assert submitted.event == "form_submitted"
    assert submitted.properties["size"] == "M"
    assert submitted.properties["node_id"] == "consult_form"
    assert submitted.properties["consent_status"] == "pending_confirmation"
    assert submitted.properties["consent_text"] == FORM["consent_text"]
    identify = events["form-lan:submitted:identify"]
    assert identify.type == "identify"
    assert identify.traits == {"name": "Trần Thị Lan", "phone": "0912 345 678", "email": "lan@example.com"}
    assert browser.ack("form-lan", "submitted", fields={"a": {"nested": 1}}).status == 400
    queue(browser.tables, "push-lan", "p-lan", channel="onsite_push")
    assert browser.ack("push-lan", "submitted").body["error"]["code"] == "invalid_action"


# ------------------------------------------------------------------------------------------- settings, script


def publish(tables: Tables, text: str) -> None:
    DynamoJourneyCatalog(tables.client, tables.config, cache_seconds=0).publish(load_journey_yaml(text), text)


def test_settings_list_the_dwell_thresholds_of_active_journeys(
    browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = (JOURNEYS / "services-consult.yaml").read_text(encoding="utf-8")
    publish(browser.tables, services)
    for threshold, status in ((10, "active"), (45, "active"), (99, "paused")):
        variant = services.replace("id: services-consult", f"id: read-{threshold}").replace(
            "value: 15", f"value: {threshold}"
        )
        publish(browser.tables, variant.replace("status: active", f"status: {status}"))
    monkeypatch.setenv("VAPID_PUBLIC_KEY", "BPublicKey_base64url")
    wiring.reset()

    result = browser.request("GET", f"/v1/projects/{WRITE_KEY}/settings")

    assert result.status == 200, result.body
    footprint_js = {name: result.body[name] for name in result.body if name in FOOTPRINT_JS_SETTINGS}
    assert footprint_js == {
        "source_id": "demo",
        "vapid_public_key": "BPublicKey_base64url",
        "web_push": True,
        "dwell_thresholds": [10, 15, 45],
        "session_timeout_minutes": 30,
        "onsite_poll_seconds": 15,
    }
    assert result.headers["cache-control"] == "public, max-age=60"
    assert result.headers["access-control-allow-origin"] == ORIGIN
    unknown = browser.request("GET", "/v1/projects/nope/settings")
    assert unknown.status == 404
    assert unknown.body["error"]["code"] == "unknown_write_key"


FOOTPRINT_JS_SETTINGS = {
    "source_id",
    "vapid_public_key",
    "web_push",
    "dwell_thresholds",
    "session_timeout_minutes",
    "onsite_poll_seconds",
}


def test_the_settings_are_also_what_analytics_js_loads_from_segment_s_cdn(browser: Browser) -> None:
    # analytics.js (AnalyticsBrowser.load({writeKey, cdnURL})) reads its destinations from this route:
    # the Segment.io one must send to this stack, on the paths it posts to (/v1/t, /v1/p, ...).
    result = http_result(track_handler.handler(settings_event(WRITE_KEY), lambda_context("TrackFunction")))

    segment = result.body["integrations"]["Segment.io"]
    assert segment["apiKey"] == WRITE_KEY
    assert segment["apiHost"] == "abc123.execute-api.us-east-1.amazonaws.com/v1"
    assert segment["protocol"] == "https"
    assert result.body["plan"]["track"]["__default"]["enabled"] is True


def settings_event(write_key: str) -> dict[str, Any]:
    event = http_api_event(f"/v1/projects/{write_key}/settings", method="GET", content_type=None)
    event["routeKey"] = "GET /v1/projects/{writeKey}/settings"
    event["pathParameters"] = {"writeKey": write_key}
    return event


def test_settings_without_a_vapid_key_say_web_push_is_off(browser: Browser) -> None:
    result = http_result(track_handler.handler(settings_event(WRITE_KEY), lambda_context("TrackFunction")))

    assert result.status == 200, result.body
    assert (result.body["vapid_public_key"], result.body["web_push"], result.body["dwell_thresholds"]) == (
        None,
        False,
        [],
    )


@pytest.mark.parametrize("name", ["footprint.js", "footprint-ui.js", "footprint-sw.js"])
def test_the_script_is_served_with_an_etag_and_revalidates_with_a_304(browser: Browser, name: str) -> None:
    def get(headers: dict[str, str] | None = None) -> dict[str, Any]:
        event = http_api_event(f"/{name}", method="GET", content_type=None, headers=headers)
        return dict(track_handler.handler(event, lambda_context("TrackFunction")))

    first = get()
    assert first["statusCode"] == 200
    headers = {k.lower(): v for k, v in first["headers"].items()}
    assert headers["content-type"] == "text/javascript; charset=utf-8"
    assert headers["cache-control"] == "public, max-age=300"
    etag = headers["etag"]
    assert etag.startswith('"')
    assert etag.endswith('"')
    body = base64.b64decode(first["body"]) if first.get("isBase64Encoded") else first["body"].encode()
    assert body == (WEB_DIR / name).read_bytes()

    again = get({"if-none-match": etag})
    assert again["statusCode"] == 304
    assert not again.get("body")
    assert get({"if-none-match": '"something-else"'})["statusCode"] == 200


# ------------------------------------------------------------------------------------------- push subscriptions


def subscription(endpoint: str) -> dict[str, Any]:
    return {
        "endpoint": endpoint,
        "keys": {"p256dh": "BN" + "A" * 85, "auth": "A" * 22},  # 65 bytes (0x04...), 16 bytes
    }


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://169.254.169.254/latest/meta-data/",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.7/push",
        "https://[::1]/push",
        "https://localhost/push",
        "https://push.internal/v1",
        "https://user:pass@fcm.googleapis.com/fcm/send/abc",
        "https://fcm.googleapis.com:8443/fcm/send/abc",
        "http://fcm.googleapis.com/fcm/send/abc",
        "http://127.0.0.1:8080/push",
    ],
)
def test_a_push_subscription_to_an_internal_address_is_refused_at_track(browser: Browser, endpoint: str) -> None:
    body = {"writeKey": WRITE_KEY, "anonymousId": "anon-lan", "event": "web_push_subscribed"}
    result = browser.request("POST", "/v1/track", {**body, "properties": {"subscription": subscription(endpoint)}})

    assert result.status == 400, result.body
    assert result.body["error"]["code"] == "invalid_subscription"
    assert result.body["error"]["errors"][0]["location"] == "properties.subscription.endpoint"
    assert browser.events() == {}


def test_a_push_subscription_needs_keys_browsers_make_and_a_public_https_endpoint(browser: Browser) -> None:
    good = subscription("https://fcm.googleapis.com/fcm/send/abc")
    batch = {
        "writeKey": WRITE_KEY,
        "batch": [
            {
                "type": "track",
                "anonymousId": "anon-lan",
                "event": "Web Push Subscribed",
                "properties": {"subscription": good},
            },
        ],
    }
    assert browser.request("POST", "/v1/batch", batch).status == 200

    bad_keys = {**good, "keys": {"p256dh": "k", "auth": "a"}}
    batch["batch"][0]["properties"] = {"subscription": bad_keys}
    result = browser.request("POST", "/v1/batch", batch)
    assert result.status == 400
    locations = [error["location"] for error in result.body["error"]["errors"]]
    assert locations == ["batch.0.properties.subscription.keys.p256dh", "batch.0.properties.subscription.keys.auth"]


def test_loopback_push_endpoints_are_accepted_when_the_stack_allows_them(
    browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALLOW_LOOPBACK_DESTINATIONS", "true")
    wiring.reset()
    body = {"writeKey": WRITE_KEY, "anonymousId": "anon-lan", "event": "web_push_subscribed"}

    loopback = browser.request(
        "POST", "/v1/track", {**body, "properties": {"subscription": subscription("http://127.0.0.1:8080/p")}}
    )
    private = browser.request(
        "POST", "/v1/track", {**body, "properties": {"subscription": subscription("https://10.0.0.7/p")}}
    )

    assert loopback.status == 200, loopback.body
    assert private.status == 400  # the flag opens loopback only


# ------------------------------------------------------------------------------------------- through evaluate


def test_a_dismissed_form_moves_services_consult_s_wait_for(
    stack: dict[str, Any],  # noqa: F811 - the fixture of test_evaluate_journeys
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tables, clock = stack["tables"], stack["clock"]
    put_source(tables)
    # The visitor reads the dress 16 s; no add_to_cart within 10 s: the consult form goes to send.
    evaluate({"Records": [product_view(stack)]})
    clock.advance(timedelta(seconds=10))
    evaluate(sqs_event(*drain(stack, "timers")))
    [message] = drain(stack, "send")
    monkeypatch.setenv("VAPID_SECRET_NAME", "")
    send_wiring.reset()
    assert send_handler.handler({"Records": [sqs_record(message["Body"], "sqs-1")]}, SendContext()) == {
        "batchItemFailures": []
    }

    def post(path: str, body: dict[str, Any]) -> HttpResult:
        event = http_api_event(
            path, {"writeKey": WRITE_KEY, **body}, content_type="text/plain", headers={"origin": ORIGIN}
        )
        return http_result(track_handler.handler(event, lambda_context("TrackFunction")))

    # The browser of "lan" finds the form in its inbox, with the product's name rendered.
    [form] = post("/v1/onsite", {"anonymousId": "lan"}).body["messages"]
    assert form["node_id"] == "consult_form"
    assert "Váy nữ phong cách hè" in form["content"]["title"]
    assert [field["name"] for field in form["content"]["fields"]] == ["full_name", "phone", "email"]

    # Shown, then closed: form_dismissed reaches evaluate through EventsTable's stream.
    clock.advance(timedelta(seconds=5))
    assert (
        post("/v1/onsite/ack", {"anonymousId": "lan", "message_id": form["message_id"], "action": "shown"}).status
        == 200
    )
    assert (
        post("/v1/onsite/ack", {"anonymousId": "lan", "message_id": form["message_id"], "action": "dismissed"}).status
        == 200
    )
    items = tables.client.scan(TableName=tables.events)["Items"]
    dismissal = next(item for item in items if item["sk"]["S"] == f"event#{form['message_id']}:dismissed")
    evaluate({"Records": [stream_record(dismissal, sequence="dismissed")]})

    # The wait_for heard it: the 10 s pause before the onsite push is on its way.
    [pause] = drain(stack, "timers")
    wake_up = json.loads(pause["Body"])
    assert wake_up["node_id"] == "pause_after_dismiss"
    assert post("/v1/onsite", {"anonymousId": "lan"}).body == {"messages": []}
