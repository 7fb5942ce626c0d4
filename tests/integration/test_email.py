"""Email end to end on moto: what SES receives (raw MIME, headers included), the public unsubscribe and
click routes, and SES's feedback turned into visitor events that suppress the address.

The path of every event is the real one: the function writes it to EventsTable, and evaluate's
handler folds it into the profile from its stream record (delivered here by hand, as Lambda would).
"""

from __future__ import annotations

import base64
import copy
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_string
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

import email_feedback_handler
import email_links_handler
import send_handler
from footprint.adapters import email_wiring, send_wiring
from footprint.adapters.profiles_store import DynamoProfileStore
from footprint.clock import ManualClock, SystemClock, use_clock
from footprint.email_links import LinkClaims, sign, verify
from footprint.models.messages import OutgoingMessage
from footprint.models.profile import Profile, profile_id_for
from footprint.services.send import SUPPRESSED_REASON
from tests.builders import T0, tracked
from tests.integration.conftest import Tables
from tests.integration.test_evaluate_profiles import deliver, store_event, stream_record
from tests.integration.test_send_handler import LambdaContext, outbox_key, sqs_record
from tests.lambda_context import lambda_context

pytestmark = pytest.mark.integration

REGION = "us-east-1"
SENDER = "shop@example.com"
API = "https://track.shop.example.com"
LINK_SECRET = "footprint-EmailLinkSecret"
KEY = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
CONFIGURATION_SET = "footprint-EmailConfigurationSet"
SES_EVENTS = json.loads((Path(__file__).parents[1] / "fixtures" / "ses_eventbridge_events.json").read_text())
CART = "https://shop.example.com/cart?utm_source=email&amp;utm_campaign=cart"


@dataclass
class EmailStack:
    tables: Tables
    clock: ManualClock
    profile_id: str
    # The parameters of every SendEmail call (moto does not keep the tags).
    requests: list[dict[str, Any]] = field(default_factory=list)
    folded: set[str] = field(default_factory=set)

    def send(self, key: str, category: str = "marketing", **content: Any) -> tuple[str, str]:
        message = OutgoingMessage(
            idempotency_key=key,
            profile_id=self.profile_id,
            source_id="demo",
            journey_id="cart-abandonment",
            journey_version=1,
            enrollment_id="enr_1",
            node_id="email_reminder",
            channel="email",
            category=category,  # type: ignore[arg-type]
            content=content
            or {
                "subject": "{{ profile.first_name }} ơi, giỏ hàng của bạn vẫn còn đây",
                "preheader": "Miễn phí giao hàng hôm nay",
                "from_name": "Váy Hè Shop",
                "reply_to": "cskh@shop.example.com",
                "html": f'<html><body><p>Còn 2 sản phẩm.</p><a href="{CART}">Xem giỏ hàng</a></body></html>',
                "text": "Còn 2 sản phẩm: https://shop.example.com/cart",
            },
            requested_at=T0,
        )
        response = send_handler.handler({"Records": [sqs_record(message.model_dump_json(), key)]}, LambdaContext())
        assert response["batchItemFailures"] == []
        row = self.tables.client.get_item(TableName=self.tables.messages, Key=outbox_key(key))["Item"]
        return row["status"]["S"], row.get("detail", {"S": ""})["S"]

    def fold_new_events(self) -> list[dict[str, Any]]:
        """Run evaluate on the events written since the last call (the stream's INSERTs)."""
        items = self.tables.client.scan(TableName=self.tables.events)["Items"]
        new = [item for item in items if item["sk"]["S"] not in self.folded]
        self.folded |= {item["sk"]["S"] for item in new}
        if new:
            assert deliver(*(stream_record(item, item["sk"]["S"]) for item in new))["batchItemFailures"] == []
        return [json.loads(item["body"]["S"]) for item in new]

    def events(self, name: str) -> list[dict[str, Any]]:
        items = self.tables.client.scan(TableName=self.tables.events)["Items"]
        bodies = [json.loads(item["body"]["S"]) for item in items]
        return [body for body in bodies if body["event"] == name]

    def profile(self) -> Profile:
        profile = DynamoProfileStore(self.tables.client, self.tables.profiles).get_profile(self.profile_id)
        assert profile is not None
        return profile


@pytest.fixture
def stack(tables: Tables, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmailStack]:
    boto3.client("secretsmanager").create_secret(Name=LINK_SECRET, SecretString=KEY.decode())
    boto3.client("sesv2").create_email_identity(EmailIdentity=SENDER)
    for name, value in {
        "SENDER_EMAIL": SENDER,
        "VAPID_SECRET_NAME": "",
        "EMAIL_LINK_SECRET_NAME": LINK_SECRET,
        "PUBLIC_API_URL": API,
        "SES_CONFIGURATION_SET": CONFIGURATION_SET,
    }.items():
        monkeypatch.setenv(name, value)
    clock = ManualClock(T0)
    use_clock(clock)
    send_wiring.reset()
    email_wiring.reset()
    # Hoa fills in the consult form: her profile, known by email, made the normal way.
    identify = tracked(
        "identify",
        anonymous_id="anon-hoa",
        traits={"email": "hoa@example.com", "first_name": "Hoa", "consent": {"email": True}},
    )
    assert deliver(store_event(tables, identify))["batchItemFailures"] == []
    result = EmailStack(tables, clock, profile_id_for("demo", "anon", "anon-hoa"))
    result.folded |= {item["sk"]["S"] for item in tables.client.scan(TableName=tables.events)["Items"]}
    send_wiring.sesv2().meta.events.register(
        "provide-client-params.sesv2.SendEmail", lambda params, **_: result.requests.append(copy.deepcopy(params))
    )
    yield result
    send_wiring.reset()
    email_wiring.reset()
    use_clock(SystemClock())


def sent_emails() -> list[EmailMessage]:
    messages = []
    for sent in ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages:
        parsed = message_from_string(sent.raw_data, policy=default)
        assert isinstance(parsed, EmailMessage)
        messages.append(parsed)
    return messages


def content_of(email: EmailMessage, subtype: str) -> str:
    part = email.get_body((subtype,))
    assert part is not None, subtype
    return str(part.get_content()).replace("\r\n", "\n")


def unsubscribe_url(email: EmailMessage) -> str:
    header = str(email["List-Unsubscribe"])
    assert re.fullmatch(r"<https://[^<>]+>", header), header
    return header[1:-1]


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


def link_request(
    method: str, path: str, token: str | None, body: str = "", content_type: str = "application/x-www-form-urlencoded"
) -> dict[str, Any]:
    """An API Gateway HTTP API (2.0) request to an email link route (a form body arrives base64-encoded)."""
    query = f"token={quote(token, safe='')}" if token is not None else ""
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": query,
        "queryStringParameters": {"token": token} if token is not None else None,
        "headers": {"host": "track.shop.example.com", "accept": "*/*", "content-type": content_type},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "track.shop.example.com",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "198.51.100.4"},
            "requestId": uuid.uuid4().hex,
            "routeKey": f"{method} {path}",
            "stage": "$default",
            "timeEpoch": int(T0.timestamp() * 1000),
        },
        "body": base64.b64encode(body.encode()).decode() if body else None,
        "isBase64Encoded": bool(body),
    }


def call_links(method: str, path: str, token: str | None, body: str = "", **headers: str) -> dict[str, Any]:
    request = link_request(method, path, token, body, **headers)
    return dict(email_links_handler.handler(request, lambda_context("EmailLinks")))


ONE_CLICK = "List-Unsubscribe=One-Click"


# ------------------------------------------------------------------ what SES receives


def test_a_marketing_email_carries_one_click_unsubscribe_a_visible_link_and_tracked_links(stack: EmailStack) -> None:
    status, detail = stack.send("cart.v1.enr_1.email_reminder.1")
    assert (status, detail.startswith("ses message id ")) == ("sent", True)

    [email] = sent_emails()
    assert email["From"].addresses[0].display_name == "Váy Hè Shop"
    assert email["From"].addresses[0].addr_spec == SENDER
    assert email["Reply-To"] == "cskh@shop.example.com"
    assert email["Subject"] == "Hoa ơi, giỏ hàng của bạn vẫn còn đây"
    assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = unsubscribe_url(email)
    assert unsubscribe.startswith(f"{API}/v1/email/unsubscribe?token=")
    claims = verify(KEY, token_of(unsubscribe), "unsubscribe")
    assert (claims.profile_id, claims.channel, claims.message_id) == (
        stack.profile_id,
        "email",
        "cart.v1.enr_1.email_reminder.1",
    )
    assert (claims.journey_id, claims.node_id, claims.enrollment_id) == ("cart-abandonment", "email_reminder", "enr_1")

    text, html_part = content_of(email, "plain"), content_of(email, "html")
    assert text.startswith("Còn 2 sản phẩm: https://shop.example.com/cart")
    assert f"Hủy đăng ký / Unsubscribe: {unsubscribe}" in text
    assert f'<a href="{unsubscribe.replace("&", "&amp;")}">Hủy đăng ký</a>' in html_part
    # The preheader opens the body, hidden; the shop's link became a signed click link.
    assert re.search(r'<body><div style="display:none[^"]*">Miễn phí giao hàng hôm nay</div>', html_part)
    [click] = re.findall(r'href="([^"]+)">Xem giỏ hàng', html_part)
    assert click.startswith(f"{API}/v1/email/click?token=")
    click_claims = verify(KEY, token_of(click.replace("&amp;", "&")), "click")
    assert click_claims.url == "https://shop.example.com/cart?utm_source=email&utm_campaign=cart"

    [request] = stack.requests
    assert request["ConfigurationSetName"] == CONFIGURATION_SET
    assert "Raw" in request["Content"]
    tags = {tag["Name"]: tag["Value"] for tag in request["EmailTags"]}
    assert tags["fp_profile"] == stack.profile_id
    assert tags["journey_id"] == "cart-abandonment"
    assert tags["node_id"] == "email_reminder"
    assert tags["enrollment_id"] == "enr_1"
    assert tags["channel"] == "email"
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value) for value in tags.values())


def test_a_transactional_email_carries_no_unsubscribe(stack: EmailStack) -> None:
    status, _ = stack.send("order.v1.enr_1.confirm.1", "transactional", subject="Đơn hàng #1001", text="Cảm ơn bạn")

    assert status == "sent"
    [email] = sent_emails()
    assert email["List-Unsubscribe"] is None
    assert email["List-Unsubscribe-Post"] is None
    assert "Unsubscribe" not in content_of(email, "plain")
    assert "Hủy đăng ký" not in content_of(email, "html")


# ------------------------------------------------------------------ unsubscribe


def test_the_unsubscribe_link_shows_a_page_and_the_one_click_post_unsubscribes_once(stack: EmailStack) -> None:
    stack.send("cart.v1.enr_1.email_reminder.1")
    token = token_of(unsubscribe_url(sent_emails()[0]))

    page = call_links("GET", "/v1/email/unsubscribe", token)
    assert page["statusCode"] == 200
    assert page["headers"]["Content-Type"].startswith("text/html")
    assert "Hủy đăng ký" in page["body"]
    assert "Unsubscribe" in page["body"]
    assert '<form method="post" action="?token=' in page["body"]
    assert stack.events("unsubscribed") == []  # a GET (a link scanner) changes nothing

    first = call_links("POST", "/v1/email/unsubscribe", token, ONE_CLICK)
    again = call_links("POST", "/v1/email/unsubscribe", token, ONE_CLICK)

    for response in (first, again):
        assert response["statusCode"] == 200
        assert json.loads(response["body"]) == {"unsubscribed": True, "channel": "email"}
    [event] = stack.events("unsubscribed")
    assert event["properties"]["channel"] == "email"
    assert event["properties"]["message_id"] == "cart.v1.enr_1.email_reminder.1"
    assert event["properties"]["method"] == "one_click"
    assert event["anonymous_id"] == "anon-hoa"
    stack.fold_new_events()
    assert stack.profile().consent["email"] == "denied"

    # Marketing stops; an order confirmation still goes out.
    assert stack.send("cart.v1.enr_1.email_reminder.2") == ("skipped", "no email address, or email declined")
    assert stack.send("order.v1.enr_1.confirm.1", "transactional", subject="Đơn hàng #1001", text="Cảm ơn")[0] == "sent"
    assert len(sent_emails()) == 2


def test_an_old_unsubscribe_link_unsubscribes_again_after_the_visitor_opted_back_in(stack: EmailStack) -> None:
    stack.send("cart.v1.enr_1.email_reminder.1")
    token = token_of(unsubscribe_url(sent_emails()[0]))
    call_links("POST", "/v1/email/unsubscribe", token, ONE_CLICK)
    stack.fold_new_events()
    opt_in = tracked(event="consent_updated", anonymous_id="anon-hoa", properties={"channel": "email", "granted": True})
    assert deliver(store_event(stack.tables, opt_in))["batchItemFailures"] == []
    stack.folded.add(f"event#{opt_in.message_id}")
    assert stack.profile().consent["email"] == "granted"

    stack.clock.advance(timedelta(days=1))
    assert call_links("POST", "/v1/email/unsubscribe", token, ONE_CLICK)["statusCode"] == 200
    stack.fold_new_events()

    assert len(stack.events("unsubscribed")) == 2
    assert stack.profile().consent["email"] == "denied"


def test_a_one_click_post_as_multipart_form_data_is_one_click_too(stack: EmailStack) -> None:
    stack.send("cart.v1.enr_1.email_reminder.1")
    token = token_of(unsubscribe_url(sent_emails()[0]))
    body = '--b\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\nOne-Click\r\n--b--\r\n'

    response = call_links("POST", "/v1/email/unsubscribe", token, body, content_type="multipart/form-data; boundary=b")

    assert response["statusCode"] == 200
    assert json.loads(response["body"])["unsubscribed"] is True
    assert stack.events("unsubscribed")[0]["properties"]["method"] == "one_click"


def test_the_pages_button_unsubscribes_and_answers_with_a_page(stack: EmailStack) -> None:
    stack.send("cart.v1.enr_1.email_reminder.1")
    token = token_of(unsubscribe_url(sent_emails()[0]))

    response = call_links("POST", "/v1/email/unsubscribe", token, "confirm=page")

    assert response["statusCode"] == 200
    assert "Đã hủy đăng ký" in response["body"]
    [event] = stack.events("unsubscribed")
    assert event["properties"]["method"] == "page"


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(None, id="no token"),
        pytest.param("", id="empty"),
        pytest.param("not-a-token", id="garbage"),
        pytest.param("e30.AAAA", id="forged signature"),
        pytest.param("é.é", id="not ascii"),
    ],
)
def test_a_bad_unsubscribe_token_is_a_400_page_or_json_never_a_500(stack: EmailStack, token: str | None) -> None:
    page = call_links("GET", "/v1/email/unsubscribe", token)
    one_click = call_links("POST", "/v1/email/unsubscribe", token, ONE_CLICK)

    assert page["statusCode"] == 400
    assert "Liên kết không hợp lệ" in page["body"]
    assert one_click["statusCode"] == 400
    assert json.loads(one_click["body"])["error"]["code"] == "invalid_link"
    assert stack.events("unsubscribed") == []


def test_a_tampered_unsubscribe_token_is_refused(stack: EmailStack) -> None:
    stack.send("cart.v1.enr_1.email_reminder.1")
    payload, signature = token_of(unsubscribe_url(sent_emails()[0])).split(".")
    other = sign(b"not the stack's key" * 2, verify(KEY, f"{payload}.{signature}", "unsubscribe"))
    tampered = [payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1] + "." + signature, other]

    for token in tampered:
        assert call_links("POST", "/v1/email/unsubscribe", token, ONE_CLICK)["statusCode"] == 400
    assert stack.events("unsubscribed") == []


# ------------------------------------------------------------------ clicks


def click_token(email: EmailMessage) -> str:
    [click] = re.findall(r'href="([^"]+)">Xem giỏ hàng', content_of(email, "html"))
    return token_of(click.replace("&amp;", "&"))


def test_a_click_is_recorded_and_forwarded_to_the_messages_own_link(stack: EmailStack) -> None:
    stack.send("cart.v1.enr_1.email_reminder.1")
    token = click_token(sent_emails()[0])

    first = call_links("GET", "/v1/email/click", token)
    again = call_links("GET", "/v1/email/click", token)

    for response in (first, again):
        assert response["statusCode"] == 302
        assert response["headers"]["Location"] == "https://shop.example.com/cart?utm_source=email&utm_campaign=cart"
    [event] = stack.events("message_clicked")
    assert event["properties"] == {
        "message_id": "cart.v1.enr_1.email_reminder.1",
        "journey_id": "cart-abandonment",
        "node_id": "email_reminder",
        "enrollment_id": "enr_1",
        "channel": "email",
        "url": "https://shop.example.com/cart?utm_source=email&utm_campaign=cart",
    }


def test_a_link_with_vietnamese_characters_is_forwarded_percent_encoded(stack: EmailStack) -> None:
    html = '<p><a href="https://shop.example.com/váy-nữ?size=M">Xem giỏ hàng</a></p>'
    stack.send("cart.v1.enr_1.email_reminder.1", subject="Váy", html=html)

    response = call_links("GET", "/v1/email/click", click_token(sent_emails()[0]))

    assert response["statusCode"] == 302
    assert response["headers"]["Location"] == "https://shop.example.com/v%C3%A1y-n%E1%BB%AF?size=M"
    [event] = stack.events("message_clicked")
    assert event["properties"]["url"] == "https://shop.example.com/váy-nữ?size=M"


def test_a_click_link_to_a_url_the_message_does_not_hold_is_refused(stack: EmailStack) -> None:
    stack.send("cart.v1.enr_1.email_reminder.1")
    genuine = verify(KEY, click_token(sent_emails()[0]), "click")
    # Even signed with the stack's own key: not a link of that message, so no open redirect.
    foreign = sign(KEY, LinkClaims(**{**genuine.__dict__, "url": "https://evil.example.net/login"}))
    unknown_message = sign(KEY, LinkClaims(**{**genuine.__dict__, "message_id": "never.sent"}))
    an_unsubscribe_token = token_of(unsubscribe_url(sent_emails()[0]))

    for token in (foreign, unknown_message, an_unsubscribe_token, "garbage", None):
        response = call_links("GET", "/v1/email/click", token)
        assert response["statusCode"] == 400, token
        assert "Location" not in response.get("headers", {})
    assert stack.events("message_clicked") == []


# ------------------------------------------------------------------ SES feedback


def feedback(stack: EmailStack, kind: str, **changes: Any) -> str:
    """The EventBridge event SES publishes for the last email sent, as EmailFeedbackQueue holds it."""
    event = copy.deepcopy(SES_EVENTS[kind])
    tags = {tag["Name"]: [tag["Value"]] for tag in stack.requests[-1]["EmailTags"]}
    event["detail"]["mail"]["tags"] = {
        "ses:configuration-set": [CONFIGURATION_SET],
        "ses:source-ip": ["203.0.113.10"],
        "ses:from-domain": ["example.com"],
        "ses:caller-identity": ["footprint-SendFunctionRole"],
        **tags,
    }
    event.update(changes)
    return json.dumps(event)


def feed(*bodies: str) -> list[str]:
    records = [sqs_record(body, f"m-{index}") for index, body in enumerate(bodies)]
    response = email_feedback_handler.handler({"Records": records}, lambda_context("EmailFeedback"))
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


def test_delivery_and_open_become_events_on_the_visitors_timeline_once(stack: EmailStack) -> None:
    stack.send("cart.v1.enr_1.email_reminder.1")

    assert feed(feedback(stack, "Delivery"), feedback(stack, "Open"), feedback(stack, "Delivery")) == []

    [delivered] = stack.events("message_delivered")
    [opened] = stack.events("message_opened")
    for event in (delivered, opened):
        assert {name: event["properties"][name] for name in ("message_id", "journey_id", "node_id")} == {
            "message_id": "cart.v1.enr_1.email_reminder.1",
            "journey_id": "cart-abandonment",
            "node_id": "email_reminder",
        }
        assert event["properties"]["enrollment_id"] == "enr_1"
        assert event["properties"]["channel"] == "email"
        assert event["anonymous_id"] == "anon-hoa"
    assert delivered["message_id"] == f"ses-{SES_EVENTS['Delivery']['id']}"
    assert delivered["timestamp"].startswith("2026-11-23T09:00:04.512")
    stack.fold_new_events()
    assert stack.profile().event_counts["message_opened"] == 1


def test_an_ses_time_ahead_of_the_stack_clock_is_stamped_on_receipt(stack: EmailStack) -> None:
    stack.send("cart.v1.enr_1.email_reminder.1")
    ahead = json.loads(feedback(stack, "Delivery"))
    ahead["detail"]["delivery"]["timestamp"] = "2027-06-01T00:00:00Z"

    assert feed(json.dumps(ahead)) == []

    [delivered] = stack.events("message_delivered")
    assert delivered["timestamp"].startswith(T0.isoformat()[:19])


def test_a_hard_bounce_suppresses_the_address_and_the_next_email_is_skipped(stack: EmailStack) -> None:
    stack.send("cart.v1.enr_1.email_reminder.1")

    assert feed(feedback(stack, "Bounce")) == []

    [bounced] = stack.events("message_bounced")
    assert bounced["properties"]["bounce_type"] == "Permanent"
    assert bounced["properties"]["email"] == "hoa@example.com"
    stack.fold_new_events()
    assert stack.profile().suppressed == {"hoa@example.com": "bounced"}
    assert stack.send("cart.v1.enr_1.email_reminder.2") == ("skipped", SUPPRESSED_REASON)
    assert stack.send("order.v1.enr_1.confirm.1", "transactional", subject="Đơn hàng", text="x") == (
        "skipped",
        SUPPRESSED_REASON,
    )
    assert len(sent_emails()) == 1


def test_a_soft_bounce_does_not_suppress(stack: EmailStack) -> None:
    stack.send("cart.v1.enr_1.email_reminder.1")
    soft = json.loads(feedback(stack, "Bounce"))
    soft["detail"]["bounce"]["bounceType"] = "Transient"

    assert feed(json.dumps(soft)) == []
    stack.fold_new_events()

    assert stack.profile().suppressed == {}
    assert stack.send("cart.v1.enr_1.email_reminder.2")[0] == "sent"


def test_a_complaint_suppresses_the_address_and_withdraws_consent(stack: EmailStack) -> None:
    stack.send("cart.v1.enr_1.email_reminder.1")

    assert feed(feedback(stack, "Complaint")) == []
    stack.fold_new_events()

    profile = stack.profile()
    assert profile.suppressed == {"hoa@example.com": "complained"}
    assert profile.consent["email"] == "denied"
    assert stack.send("cart.v1.enr_1.email_reminder.2") == ("skipped", SUPPRESSED_REASON)


def test_events_of_other_emails_are_ignored_and_unreadable_ones_fail_alone(stack: EmailStack) -> None:
    stack.send("cart.v1.enr_1.email_reminder.1")
    untagged = copy.deepcopy(SES_EVENTS["Delivery"])  # sent by something else through the account

    failed = feed(json.dumps(untagged), "not json", feedback(stack, "Delivery"))

    assert failed == ["m-1"]
    assert len(stack.events("message_delivered")) == 1
