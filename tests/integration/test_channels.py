"""Channel adapters against real protocols: webhook-style POSTs to a loopback server, SES and the
outbox on moto, and the channels send_wiring configures."""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_string
from email.message import EmailMessage
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, get_args

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends
from standardwebhooks import Webhook, WebhookVerificationError

from footprint.adapters import send_wiring
from footprint.adapters.channels import http_json, public_urls
from footprint.adapters.channels.email import SesEmailSender
from footprint.adapters.channels.onsite import OnsiteInboxSender
from footprint.adapters.channels.sms import SmsRelaySender, SnsSmsSender
from footprint.adapters.channels.webhook import WebhookSender
from footprint.adapters.channels.zalo_zns import ZaloZnsRelaySender, ZaloZnsSender, zalo_phone
from footprint.adapters.outbox import DynamoOutbox
from footprint.clock import ManualClock
from footprint.email_links import LinkSigner
from footprint.models.messages import DeliveryRecord, MessageChannel, OutgoingMessage
from footprint.models.profile import Profile
from footprint.services.retries import RetryableDeliveryError, retry_delay_seconds
from footprint.settings import Settings
from tests.builders import T0
from tests.integration.conftest import Tables

pytestmark = pytest.mark.integration

REGION = "us-east-1"


# ------------------------------------------------------------------ a loopback HTTP receiver


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    raw: bytes = b""


class Receiver:
    """Records each POST; answers 200, or the status scripted for the path (302 redirects to /target)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.status_for: dict[str, int] = {}
        self.retry_after_for: dict[str, str] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.received.append(Received(self.path, headers, json.loads(raw or b"null"), raw))
                status = receiver.status_for.get(self.path, 200)
                self.send_response(status)
                if status in (301, 302, 307, 308):
                    self.send_header("Location", "/target")
                if self.path in receiver.retry_after_for:
                    self.send_header("Retry-After", receiver.retry_after_for[self.path])
                reply = b'{"error": "template not found"}' if status == 400 else b"{}"
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            do_POST = _answer
            do_GET = _answer

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def message(channel: MessageChannel, key: str = "j:1:e:n:0") -> OutgoingMessage:
    return OutgoingMessage(
        idempotency_key=key,
        profile_id="p-1",
        source_id="demo",
        journey_id="cart-abandoned",
        journey_version=2,
        enrollment_id="e-1",
        node_id="n-1",
        channel=channel,
        context={"cart_value": 720000},
        requested_at=T0,
    )


LAN = Profile(
    profile_id="p-1",
    source_id="demo",
    user_id="u-42",
    email="lan@example.com",
    phone="0912 345 678",
    traits={"name": "Trần Lan", "city": "Hà Nội"},
)


# ------------------------------------------------------------------ webhook

# A Standard Webhooks secret as a receiver configures it (whsec_ + base64 of the key).
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"a 24-byte key for tests!").decode()


def webhooks(secret: str | None = WEBHOOK_SECRET, at: datetime = T0) -> WebhookSender:
    # The receiver listens on loopback, as AllowLoopbackDestinations lets the local stack do.
    return WebhookSender(ManualClock(at), lambda: secret, timeout=5, allow_loopback=True)


def test_a_webhook_is_signed_so_the_standard_webhooks_library_verifies_it(receiver: Receiver) -> None:
    rendered = {"url": f"{receiver.url}/crm", "payload": {"note": "Gọi lại cho Lan"}}
    # The receiver's library refuses timestamps more than 5 minutes from its own clock.
    sent_at = datetime.now(UTC).replace(microsecond=0)

    assert webhooks(at=sent_at).send(message("webhook"), LAN, rendered).status == "sent"

    [request] = receiver.received
    assert request.headers["webhook-id"] == "j:1:e:n:0"
    assert request.headers["webhook-timestamp"] == str(int(sent_at.timestamp()))
    assert request.headers["webhook-signature"].startswith("v1,")
    # What a receiver runs: the specification's reference library.
    receiver_side = Webhook(WEBHOOK_SECRET)
    assert receiver_side.verify(request.raw, request.headers)["payload"] == {"note": "Gọi lại cho Lan"}
    tampered = request.raw.replace(b"Lan", b"Mai")
    with pytest.raises(WebhookVerificationError):
        receiver_side.verify(tampered, request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + base64.b64encode(b"another key").decode()).verify(request.raw, request.headers)


def test_a_retried_webhook_keeps_its_id_so_the_receiver_drops_the_duplicate(receiver: Receiver) -> None:
    webhooks().send(message("webhook"), LAN, {"url": f"{receiver.url}/crm"})
    webhooks().send(message("webhook"), LAN, {"url": f"{receiver.url}/crm"})

    assert [r.headers["webhook-id"] for r in receiver.received] == ["j:1:e:n:0", "j:1:e:n:0"]


def test_a_journey_cannot_override_the_signature_headers(receiver: Receiver) -> None:
    forged = {"webhook-signature": "v1,forged", "Webhook-Id": "other", "Content-Type": "text/plain", "X-Ok": "1"}

    webhooks().send(message("webhook"), LAN, {"url": f"{receiver.url}/crm", "headers": forged})

    [request] = receiver.received
    assert request.headers["webhook-id"] == "j:1:e:n:0"
    assert request.headers["webhook-signature"] != "v1,forged"
    assert request.headers["content-type"] == "application/json; charset=utf-8"
    assert request.headers["x-ok"] == "1"


def test_without_a_signing_secret_a_webhook_goes_out_unsigned(receiver: Receiver) -> None:
    webhooks(secret=None).send(message("webhook"), LAN, {"url": f"{receiver.url}/crm"})

    [request] = receiver.received
    assert "webhook-signature" not in request.headers
    assert request.headers["webhook-id"] == "j:1:e:n:0"


@pytest.mark.parametrize(
    ("retry_after", "expected"), [("120", 120), ("Thu, 01 Jan 1970 00:00:00 GMT", 0), ("soon", None)]
)
def test_a_webhook_retry_waits_for_the_receivers_retry_after(
    receiver: Receiver, retry_after: str, expected: int | None
) -> None:
    receiver.status_for["/busy"] = 429
    receiver.retry_after_for["/busy"] = retry_after

    with pytest.raises(RetryableDeliveryError) as raised:
        webhooks().send(message("webhook"), LAN, {"url": f"{receiver.url}/busy"})

    assert raised.value.retry_after_seconds == expected


def test_retries_back_off_and_a_longer_retry_after_wins() -> None:
    assert [retry_delay_seconds(n) for n in range(1, 8)] == [30, 60, 120, 240, 480, 900, 900]
    assert retry_delay_seconds(1, retry_after_seconds=3600) == 3600
    assert retry_delay_seconds(4, retry_after_seconds=5) == 240
    assert retry_delay_seconds(1, retry_after_seconds=10**9) == 12 * 3600


def test_a_webhook_posts_the_message_with_its_idempotency_key(receiver: Receiver) -> None:
    rendered = {
        "url": f"{receiver.url}/crm",
        "headers": {"X-Team": "sales"},
        "payload": {"note": "Gọi lại cho Lan"},
    }

    result = webhooks().send(message("webhook"), LAN, rendered)

    assert (result.status, result.detail) == ("sent", "webhook answered 200")
    [request] = receiver.received
    assert request.path == "/crm"
    assert request.headers["idempotency-key"] == "j:1:e:n:0"
    assert request.headers["x-team"] == "sales"
    assert request.headers["content-type"] == "application/json; charset=utf-8"
    assert request.body == {
        "message_id": "j:1:e:n:0",
        "journey_id": "cart-abandoned",
        "journey_version": 2,
        "node_id": "n-1",
        "channel": "webhook",
        "profile": {
            "profile_id": "p-1",
            "user_id": "u-42",
            "email": "lan@example.com",
            "phone": "0912 345 678",
            "traits": {"name": "Trần Lan", "city": "Hà Nội"},
        },
        "context": {"cart_value": 720000},
        "payload": {"note": "Gọi lại cho Lan"},
    }


@pytest.mark.parametrize("status", [408, 429, 500, 503])
def test_a_webhook_answering_later_maybe_is_retried(receiver: Receiver, status: int) -> None:
    receiver.status_for["/hook"] = status

    with pytest.raises(RetryableDeliveryError, match=str(status)):
        webhooks().send(message("webhook"), LAN, {"url": f"{receiver.url}/hook"})


@pytest.mark.parametrize("status", [400, 401, 404, 410])
def test_a_webhook_refusal_is_permanent(receiver: Receiver, status: int) -> None:
    receiver.status_for["/hook"] = status

    result = webhooks().send(message("webhook"), LAN, {"url": f"{receiver.url}/hook"})

    assert result.status == "failed"
    assert result.detail.startswith(f"webhook answered {status}")


@pytest.mark.parametrize("status", [302, 307])
def test_a_webhook_redirect_is_not_followed(receiver: Receiver, status: int) -> None:
    receiver.status_for["/moved"] = status

    result = webhooks().send(message("webhook"), LAN, {"url": f"{receiver.url}/moved"})

    assert result.status == "failed"
    assert [r.path for r in receiver.received] == ["/moved"]


@pytest.mark.parametrize("url", ["", "file:///etc/passwd", "ftp://example.com/x", "javascript:alert(1)", "http://"])
def test_a_webhook_needs_an_http_url(url: str) -> None:
    result = webhooks().send(message("webhook"), LAN, {"url": url})

    assert result.status == "failed"
    assert "refused destination" in result.detail


@pytest.mark.parametrize(
    ("url", "resolves_to"),
    [
        ("https://crm.example.com/hook", ["10.0.0.7"]),  # a private range
        ("https://crm.example.com/hook", ["93.184.216.34", "169.254.169.254"]),  # one address is the metadata service
        ("https://crm.example.com/hook", ["::ffff:127.0.0.1"]),  # loopback behind IPv6
        ("https://127.0.0.1/hook", ["127.0.0.1"]),  # an IP literal
        ("http://crm.example.com/hook", ["93.184.216.34"]),  # not https
        ("https://metadata.google.internal/hook", ["93.184.216.34"]),  # an internal name
    ],
)
def test_a_webhook_never_goes_to_a_private_address(url: str, resolves_to: list[str]) -> None:
    asked: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        return resolves_to

    sender = WebhookSender(ManualClock(T0), lambda: WEBHOOK_SECRET, timeout=5, resolve=resolve)
    result = sender.send(message("webhook"), LAN, {"url": url})

    assert result.status == "failed"
    assert "refused destination" in result.detail


def test_a_webhook_connects_to_the_address_it_checked_not_a_second_dns_answer(receiver: Receiver) -> None:
    # The name does not resolve at all outside the check: the request can only have gone to the
    # checked address, with the name kept as the Host header.
    port = receiver.url.rsplit(":", 1)[1]
    reply = http_json.post(
        f"http://hooks.invalid:{port}/crm", b"{}", "application/json", connect_to="127.0.0.1", timeout=5
    )

    assert reply.status == 200
    [request] = receiver.received
    assert request.headers["host"] == f"hooks.invalid:{port}"


def test_a_webhook_whose_host_does_not_resolve_yet_is_retried() -> None:
    def resolve(host: str, port: int) -> list[str]:
        raise public_urls.UnsafeUrlError("the host does not resolve") from socket.gaierror("no answer")

    sender = WebhookSender(ManualClock(T0), timeout=5, resolve=resolve)
    with pytest.raises(RetryableDeliveryError):
        sender.send(message("webhook"), LAN, {"url": "https://crm.example.com/hook"})


def test_an_unreachable_webhook_is_retried(receiver: Receiver) -> None:
    url = receiver.url
    receiver.close()

    with pytest.raises(RetryableDeliveryError):
        webhooks().send(message("webhook"), LAN, {"url": f"{url}/hook"})


# ------------------------------------------------------------------ SMS and Zalo ZNS relays


def test_an_sms_goes_to_the_relay_with_a_bearer_token(receiver: Receiver) -> None:
    sender = SmsRelaySender(f"{receiver.url}/sms", token=lambda: "s3cret", timeout=5)

    result = sender.send(message("sms"), LAN, {"body": "Giỏ hàng của bạn còn 2 sản phẩm", "sender": "SHOP"})

    assert result.status == "sent"
    [request] = receiver.received
    assert request.headers["authorization"] == "Bearer s3cret"
    assert request.headers["idempotency-key"] == "j:1:e:n:0"
    assert request.body == {
        "to": "+84912345678",  # E.164, whatever the visitor typed
        "text": "Giỏ hàng của bạn còn 2 sản phẩm",
        "sender": "SHOP",
        "message_id": "j:1:e:n:0",
        "profile_id": "p-1",
        "journey_id": "cart-abandoned",
        "node_id": "n-1",
    }


def test_an_sms_without_text_fails_without_calling_the_relay(receiver: Receiver) -> None:
    result = SmsRelaySender(f"{receiver.url}/sms", timeout=5).send(message("sms"), LAN, {"body": "  "})

    assert (result.status, result.detail) == ("failed", "sms content needs a body")
    assert receiver.received == []


def test_a_zalo_zns_message_is_shaped_like_zalo_s_template_request(receiver: Receiver) -> None:
    sender = ZaloZnsRelaySender(f"{receiver.url}/zns", timeout=5)
    rendered = {"template_id": "231456", "params": {"customer_name": "Trần Lan", "order_code": "A-17"}}

    result = sender.send(message("zalo_zns"), LAN, rendered)

    assert result.status == "sent"
    [request] = receiver.received
    assert "authorization" not in request.headers
    assert request.body == {
        "phone": "84912345678",
        "template_id": "231456",
        "template_data": {"customer_name": "Trần Lan", "order_code": "A-17"},
        "tracking_id": "j:1:e:n:0",
    }


def test_a_zalo_relay_refusal_is_recorded_with_its_reason(receiver: Receiver) -> None:
    receiver.status_for["/zns"] = 400
    sender = ZaloZnsRelaySender(f"{receiver.url}/zns", timeout=5)

    result = sender.send(message("zalo_zns"), LAN, {"template_id": "1", "params": {}})

    assert result.status == "failed"
    assert "template not found" in result.detail


@pytest.mark.parametrize(
    ("phone", "expected"),
    [
        ("0912345678", "84912345678"),
        ("0912 345 678", "84912345678"),
        ("+84 912-345-678", "84912345678"),
        ("0084912345678", "84912345678"),
        ("84912345678", "84912345678"),
        ("+1 415 555 0100", None),
        ("12", None),
        ("", None),
    ],
)
def test_zalo_phone_numbers(phone: str, expected: str | None) -> None:
    assert zalo_phone(phone) == expected


def test_a_foreign_number_is_not_sent_to_zalo(receiver: Receiver) -> None:
    sender = ZaloZnsRelaySender(f"{receiver.url}/zns", timeout=5)
    foreign = LAN.model_copy(update={"phone": "+1 415 555 0100"})

    result = sender.send(message("zalo_zns"), foreign, {"template_id": "1", "params": {}})

    assert result.status == "failed"
    assert receiver.received == []


# ------------------------------------------------------------------ onsite


def test_onsite_messages_are_queued_without_any_call() -> None:
    result = OnsiteInboxSender().send(message("onsite_push"), LAN, {"title": "Ưu đãi"})

    assert result.status == "queued_onsite"


# ------------------------------------------------------------------ email (SES v2 on moto)


@pytest.fixture
def ses(moto_aws: None) -> Any:
    return boto3.client("sesv2")


def sent_emails() -> list[Any]:
    return list(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages)


LINK_KEY = b"k" * 32
SIGNER = LinkSigner("https://track.example.com", lambda: LINK_KEY)


def mime(sent: Any) -> EmailMessage:
    """The raw MIME message SES received (moto keeps it as sent)."""
    parsed = message_from_string(sent.raw_data, policy=default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def parts(email: EmailMessage) -> tuple[str, str]:
    text, html_part = email.get_body(("plain",)), email.get_body(("html",))
    assert text is not None
    assert html_part is not None
    # SMTP line endings (CRLF) read back as newlines.
    return str(text.get_content()).replace("\r\n", "\n"), str(html_part.get_content()).replace("\r\n", "\n")


def test_an_email_is_sent_from_the_verified_sender(ses: Any) -> None:
    ses.create_email_identity(EmailIdentity="shop@example.com")
    rendered = {
        "subject": "Lan ơi, giỏ hàng đang chờ",
        "html": "<p>Còn <b>2</b> sản phẩm</p>",
        "body": "Còn 2",
    }

    result = SesEmailSender(ses, "shop@example.com", links=SIGNER).send(message("email"), LAN, rendered)

    assert result.status == "sent"
    assert result.detail.startswith("ses message id ")
    [email] = sent_emails()
    assert email.source == "shop@example.com"
    # moto lists the destination and, again, the To header's address.
    assert set(email.destinations) == {"lan@example.com"}
    sent = mime(email)
    assert sent["Subject"] == "Lan ơi, giỏ hàng đang chờ"
    assert sent["To"] == "lan@example.com"
    text, html_part = parts(sent)
    assert text.startswith("Còn 2")
    assert html_part.startswith("<p>Còn <b>2</b> sản phẩm</p>")


def test_an_unverified_sender_is_a_permanent_failure(ses: Any) -> None:
    sender = SesEmailSender(ses, "nobody@example.com", links=SIGNER)

    result = sender.send(message("email"), LAN, {"subject": "s", "body": "t"})

    assert result.status == "failed"
    assert "MessageRejected" in result.detail
    assert sent_emails() == []


def test_an_email_without_subject_or_body_fails_before_ses(ses: Any) -> None:
    ses.create_email_identity(EmailIdentity="shop@example.com")
    sender = SesEmailSender(ses, "shop@example.com", links=SIGNER)

    assert sender.send(message("email"), LAN, {"subject": "", "body": "t"}).status == "failed"
    assert sender.send(message("email"), LAN, {"subject": "s"}).status == "failed"
    assert sent_emails() == []


def test_a_text_only_email_gets_an_escaped_html_part(ses: Any) -> None:
    ses.create_email_identity(EmailIdentity="shop@example.com")

    rendered = {"subject": "s", "body": "a < b\nxin chào"}

    SesEmailSender(ses, "shop@example.com", links=SIGNER).send(message("email"), LAN, rendered)

    _, html_part = parts(mime(sent_emails()[0]))
    assert html_part.startswith("a &lt; b<br>\nxin chào")


# ------------------------------------------------------------------ the outbox (MessagesTable on moto)


@pytest.fixture
def outbox(tables: Tables) -> DynamoOutbox:
    return DynamoOutbox(tables.client, tables.messages, retention=timedelta(days=400))


def record(key: str, status: Any = "sent", channel: MessageChannel = "email") -> DeliveryRecord:
    return DeliveryRecord(
        idempotency_key=key,
        profile_id="p-1",
        journey_id="cart-abandoned",
        node_id="n-1",
        channel=channel,
        status=status,
        detail="ok",
        rendered={"title": "Ưu đãi"},
        sent_at=T0,
    )


def keys_of(idempotency_key: str) -> dict[str, Any]:
    return {"pk": {"S": f"message#{idempotency_key}"}, "sk": {"S": "message"}}


# The protocol itself (claim, take over, mark calling, settle, release) is in test_outbox_contract.py.


def test_a_settled_row_keeps_the_message_s_fields_and_expires(outbox: DynamoOutbox) -> None:
    outbox.claim(message("email", "k"), "a-1", T0)

    assert outbox.settle(record("k"), "a-1") is True

    assert outbox.get("k") == record("k")
    key = {"pk": {"S": "message#k"}, "sk": {"S": "message"}}
    item = outbox.client.get_item(TableName=outbox.table_name, Key=key)["Item"]
    names = ("profile_id", "journey_id", "node_id", "channel", "status", "attempt_id")
    assert {name: item[name]["S"] for name in names} == {
        "profile_id": "p-1",
        "journey_id": "cart-abandoned",
        "node_id": "n-1",
        "channel": "email",
        "status": "sent",
        "attempt_id": "a-1",
    }
    assert int(item["expires_at"]["N"]) == int((T0 + timedelta(days=400)).timestamp())
    assert "onsite_inbox" not in item


def test_an_open_claim_is_not_a_record(outbox: DynamoOutbox) -> None:
    outbox.claim(message("email", "k"), "a-1", T0)
    outbox.mark_calling("k", "a-1", T0)

    assert outbox.get("k") is None


def test_queued_onsite_rows_are_the_profile_s_inbox_until_shown(outbox: DynamoOutbox) -> None:
    rows: list[tuple[str, MessageChannel, str]] = [
        ("a", "onsite_form", "queued_onsite"),
        ("b", "email", "sent"),
        ("c", "onsite_push", "queued_onsite"),
    ]
    for key, channel, status in rows:
        outbox.claim(message(channel, key), "a-1", T0)
        outbox.settle(record(key, status, channel), "a-1")

    assert [r.idempotency_key for r in outbox.pending_onsite("p-1")] == ["a", "c"]
    assert outbox.pending_onsite("p-other") == []

    outbox.mark_onsite_shown("a")
    outbox.mark_onsite_shown("a")
    outbox.mark_onsite_shown("unknown")

    assert [r.idempotency_key for r in outbox.pending_onsite("p-1")] == ["c"]
    assert outbox.get("unknown") is None
    shown = outbox.client.get_item(TableName=outbox.table_name, Key=keys_of("a"))["Item"]
    assert "onsite_inbox" not in shown
    assert shown["status"]["S"] == "queued_onsite"  # the delivery record itself stays


def test_the_inbox_is_a_query_of_the_sparse_index_oldest_first_from_a_time_on(outbox: DynamoOutbox) -> None:
    calls: list[str] = []
    outbox.client.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    for minutes, key in ((5, "late"), (0, "early"), (2, "middle")):
        outbox.claim(message("onsite_form", key), "a-1", T0)
        queued = record(key, "queued_onsite", "onsite_form").model_copy(
            update={"sent_at": T0 + timedelta(minutes=minutes)}
        )
        outbox.settle(queued, "a-1")
    calls.clear()

    assert [r.idempotency_key for r in outbox.pending_onsite("p-1")] == ["early", "middle", "late"]
    assert [r.idempotency_key for r in outbox.pending_onsite("p-1", limit=2)] == ["early", "middle"]
    since = T0 + timedelta(minutes=1)
    assert [r.idempotency_key for r in outbox.pending_onsite("p-1", since=since)] == ["middle", "late"]
    assert set(calls) == {"Query"}  # never a Scan

    outbox.mark_onsite_shown("early", T0 + timedelta(minutes=9))
    outbox.mark_onsite_shown("early", T0 + timedelta(minutes=20))  # a retried ack keeps the first time
    item = outbox.client.get_item(TableName=outbox.table_name, Key=keys_of("early"))["Item"]
    assert item["shown_at"]["S"] == (T0 + timedelta(minutes=9)).isoformat()


# ------------------------------------------------------------------ which channels are configured


@pytest.fixture
def settings() -> Iterator[Settings]:
    send_wiring.reset()
    tables = {"events_table": "e", "profiles_table": "p", "config_table": "c", "messages_table": "m"}
    yield Settings.model_validate({**tables, "idempotency_table": "i", "steps_table": "s"})
    send_wiring.reset()


def test_channels_without_configuration_are_left_out(settings: Settings) -> None:
    bare = settings.model_copy(update={"sender_email": "", "vapid_secret_name": ""})

    assert sorted(send_wiring.channels(bare)) == ["onsite_form", "onsite_push", "webhook"]


def test_configured_channels_are_wired(settings: Settings) -> None:
    configured = settings.model_copy(
        update={
            "sender_email": "shop@example.com",
            "vapid_secret_name": "footprint/vapid",
            "sms_provider_url": "https://relay.example/sms",
            "zalo_zns_provider_url": "https://relay.example/zns",
        }
    )

    channels = send_wiring.channels(configured)

    assert sorted(channels) == [
        "email",
        "onsite_form",
        "onsite_push",
        "sms",
        "web_push",
        "webhook",
        "zalo_zns",
    ]
    assert isinstance(channels["sms"], SmsRelaySender)
    assert channels["sms"].endpoint == "https://relay.example/sms"


@pytest.mark.parametrize(
    "update",
    [
        {"sender_email": "", "vapid_secret_name": ""},
        {},
        {"sms_provider": "sns", "zalo_zns_secret_name": "footprint/zalo"},
        {"sms_provider_url": "https://relay.example/sms", "zalo_zns_provider_url": "https://relay.example/zns"},
        {"sms_provider": "relay"},  # a relay without its URL is still off
    ],
)
def test_publish_refuses_exactly_the_channels_send_cannot_deliver(settings: Settings, update: dict[str, str]) -> None:
    configured = settings.model_copy(update={"sender_email": "shop@example.com", "vapid_secret_name": "v"} | update)

    wired = set(send_wiring.channels(configured))

    assert wired.isdisjoint(configured.unconfigured_channels())
    assert wired | set(configured.unconfigured_channels()) == set(get_args(MessageChannel))


def test_configured_sns_sms_and_direct_zalo_are_wired(settings: Settings) -> None:
    configured = settings.model_copy(update={"sms_provider": "sns", "zalo_zns_secret_name": "footprint/zalo"})

    channels = send_wiring.channels(configured)

    assert isinstance(channels["sms"], SnsSmsSender)
    assert isinstance(channels["zalo_zns"], ZaloZnsSender)
