"""A real web push, end to end on loopback.

A tiny HTTP server on 127.0.0.1 plays the browser vendor's push service. The channel adapter
reads its VAPID key from Secrets Manager (moto), encrypts and signs with pywebpush; the server
checks the VAPID JWT against the public key and decrypts the body with the subscription's private
key and auth secret (http_ece, aes128gcm), as a browser would.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import http_ece
import pytest
import requests
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from footprint.adapters.channels.secrets import SecretJson
from footprint.adapters.channels.web_push import CachedVapidKeys, WebPushSender
from footprint.models.messages import OutgoingMessage
from footprint.models.profile import Profile, WebPushSubscription
from footprint.services.retries import RetryableDeliveryError
from tests.builders import T0

pytestmark = pytest.mark.integration

SECRET_NAME = "footprint/vapid"
SUBJECT = "mailto:ops@shop.example"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_p256_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_point(key: ec.EllipticCurvePrivateKey) -> bytes:
    encoding, point = serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    return key.public_key().public_bytes(encoding, point)


@dataclass
class Browser:
    """A browser's push subscription: an ECDH P-256 key pair and a 16-byte auth secret."""

    private_key: ec.EllipticCurvePrivateKey = field(default_factory=new_p256_key)
    auth_secret: bytes = field(default_factory=lambda: os.urandom(16))

    def subscription(self, endpoint: str) -> WebPushSubscription:
        keys = {"p256dh": b64url(public_point(self.private_key)), "auth": b64url(self.auth_secret)}
        return WebPushSubscription(endpoint=endpoint, keys=keys, subscribed_at=T0)

    def decrypt(self, body: bytes) -> dict[str, Any]:
        secrets = {"private_key": self.private_key, "auth_secret": self.auth_secret}
        plain = http_ece.decrypt(body, version="aes128gcm", **secrets)
        return dict(json.loads(plain))


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class PushService:
    """Loopback push service: records every POST and answers with the status scripted per path."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.status_for: dict[str, int] = {}
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                service.received.append(Received(self.path, headers, body))
                self.send_response(service.status_for.get(self.path, 201))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self) -> PushService:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def vapid_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def sender(moto_aws: None, vapid_key: ec.EllipticCurvePrivateKey) -> WebPushSender:
    client = boto3.client("secretsmanager")
    pem = vapid_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    secret = {"private_key_pem": pem, "public_key": b64url(public_point(vapid_key)), "subject": SUBJECT}
    client.create_secret(Name=SECRET_NAME, SecretString=json.dumps(secret))
    keys = CachedVapidKeys(SecretJson(SecretsProvider(boto3_client=client), SECRET_NAME))
    # The push service below runs on loopback, as with AllowLoopbackDestinations=true.
    return WebPushSender(keys, timeout=5, allow_loopback=True)


@pytest.fixture
def push_service() -> Iterator[PushService]:
    with PushService() as service:
        yield service


def message(**content: Any) -> OutgoingMessage:
    return OutgoingMessage(
        idempotency_key="view-no-cart:1:e-1:push-1:0",
        profile_id="p-1",
        source_id="demo",
        journey_id="view-no-cart",
        journey_version=1,
        enrollment_id="e-1",
        node_id="push-1",
        channel="web_push",
        content=content,
        requested_at=T0,
    )


def profile_with(*subscriptions: WebPushSubscription) -> Profile:
    return Profile(profile_id="p-1", source_id="demo", web_push_subscriptions=list(subscriptions))


def verify_vapid(authorization: str, vapid_key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    """Check `vapid t=<jwt>,k=<key>` (RFC 8292) as a push service does; return the JWT claims."""
    scheme, _, params = authorization.partition(" ")
    assert scheme == "vapid"
    parts = dict(part.strip().split("=", 1) for part in params.split(","))
    assert b64url_decode(parts["k"]) == public_point(vapid_key)
    header, claims, signature = parts["t"].split(".")
    assert json.loads(b64url_decode(header)) == {"typ": "JWT", "alg": "ES256"}
    raw = b64url_decode(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(parts["k"])).verify(
        der, f"{header}.{claims}".encode(), ec.ECDSA(hashes.SHA256())
    )
    return dict(json.loads(b64url_decode(claims)))


RENDERED = {
    "title": "Váy nữ phong cách hè vẫn chờ bạn",
    "body": "Ưu đãi 10% chỉ hôm nay",
    "url": "https://shop.example/vay-he",
    "icon": "https://shop.example/icon.png",
    "ttl": 3600,
}


def test_a_push_is_encrypted_for_the_subscription_and_signed_with_the_vapid_key(
    sender: WebPushSender, push_service: PushService, vapid_key: ec.EllipticCurvePrivateKey
) -> None:
    browser = Browser()

    subscription = browser.subscription(f"{push_service.origin}/push/abc")

    result = sender.send(message(), profile_with(subscription), RENDERED)

    assert result.status == "sent"
    [request] = push_service.received
    assert request.path == "/push/abc"
    assert request.headers["content-encoding"] == "aes128gcm"
    assert request.headers["ttl"] == "3600"
    assert request.headers["urgency"] == "normal"
    claims = verify_vapid(request.headers["authorization"], vapid_key)
    assert claims["aud"] == push_service.origin
    assert claims["sub"] == SUBJECT
    assert claims["exp"] > T0.timestamp()
    assert browser.decrypt(request.body) == {
        "title": "Váy nữ phong cách hè vẫn chờ bạn",
        "body": "Ưu đãi 10% chỉ hôm nay",
        "url": "https://shop.example/vay-he",
        "icon": "https://shop.example/icon.png",
        "image": "",
        "badge": "",
        "tag": "view-no-cart",
        "require_interaction": False,
        "actions": [],
        "message_id": "view-no-cart:1:e-1:push-1:0",
        "journey_id": "view-no-cart",
        "node_id": "push-1",
        "enrollment_id": "e-1",
        "channel": "web_push",
        "anonymous_id": None,
    }


def test_every_web_push_option_of_the_journey_reaches_the_push_service_and_the_browser(
    sender: WebPushSender, push_service: PushService
) -> None:
    browser = Browser()
    visitor = profile_with(browser.subscription(f"{push_service.origin}/push/abc"))
    visitor = visitor.model_copy(update={"anonymous_ids": ["anon-older", "anon-7"]})
    options = {
        "image": "https://shop.example/vay.jpg",
        "badge": "https://shop.example/badge.png",
        "tag": "summer-sale",
        "require_interaction": True,
        "actions": [{"action": "buy", "title": "Mua ngay", "url": "https://shop.example/cart"}],
        "ttl": 600,
        "urgency": "high",
        "topic": "summer-sale",
    }

    assert sender.send(message(), visitor, RENDERED | options).status == "sent"

    [request] = push_service.received
    assert (request.headers["ttl"], request.headers["urgency"], request.headers["topic"]) == (
        "600",
        "high",
        "summer-sale",
    )
    shown = browser.decrypt(request.body)
    assert {name: shown[name] for name in ("image", "badge", "tag", "require_interaction", "actions")} == {
        name: options[name] for name in ("image", "badge", "tag", "require_interaction", "actions")
    }
    # What the service worker's click reports back as message_clicked, for this visitor.
    assert shown["anonymous_id"] == "anon-7"


def test_another_browser_cannot_decrypt_and_another_key_does_not_verify(
    sender: WebPushSender, push_service: PushService
) -> None:
    browser = Browser()
    sender.send(message(), profile_with(browser.subscription(f"{push_service.origin}/p")), RENDERED)
    [request] = push_service.received

    with pytest.raises(Exception, match=r"(?i)decrypt|tag|invalid"):
        Browser().decrypt(request.body)
    with pytest.raises((InvalidSignature, AssertionError)):
        verify_vapid(request.headers["authorization"], ec.generate_private_key(ec.SECP256R1()))


def test_every_call_signs_fresh_claims_for_its_own_push_service(
    sender: WebPushSender, vapid_key: ec.EllipticCurvePrivateKey
) -> None:
    # pywebpush writes `aud` into the claims dict: a shared dict would sign the first origin forever.
    with PushService() as first, PushService() as second:
        sender.send(message(), profile_with(Browser().subscription(f"{first.origin}/a")), RENDERED)
        sender.send(message(), profile_with(Browser().subscription(f"{second.origin}/b")), RENDERED)

        assert verify_vapid(first.received[0].headers["authorization"], vapid_key)["aud"] == first.origin
        assert verify_vapid(second.received[0].headers["authorization"], vapid_key)["aud"] == second.origin


def test_a_gone_subscription_is_a_permanent_failure(sender: WebPushSender, push_service: PushService) -> None:
    push_service.status_for["/gone"] = 410

    subscription = Browser().subscription(f"{push_service.origin}/gone")

    result = sender.send(message(), profile_with(subscription), RENDERED)

    assert (result.status, result.detail) == ("failed", "subscription gone (404/410)")
    assert result.gone_addresses == (subscription.endpoint,)


@pytest.mark.parametrize("status", [429, 500, 503])
def test_throttling_and_server_errors_are_retried(
    sender: WebPushSender, push_service: PushService, status: int
) -> None:
    push_service.status_for["/busy"] = status

    with pytest.raises(RetryableDeliveryError, match=str(status)):
        sender.send(message(), profile_with(Browser().subscription(f"{push_service.origin}/busy")), RENDERED)


def test_an_unreachable_push_service_is_retried(sender: WebPushSender, push_service: PushService) -> None:
    origin = push_service.origin
    push_service.__exit__()  # nothing listens on the port any more

    with pytest.raises(RetryableDeliveryError, match="unreachable"):
        sender.send(message(), profile_with(Browser().subscription(f"{origin}/x")), RENDERED)


def test_one_live_browser_among_gone_and_failing_ones_makes_the_message_sent(
    sender: WebPushSender, push_service: PushService
) -> None:
    push_service.status_for.update({"/gone": 404, "/busy": 503})
    live = Browser()
    subscriptions = [
        Browser().subscription(f"{push_service.origin}/gone"),
        live.subscription(f"{push_service.origin}/live"),
        Browser().subscription(f"{push_service.origin}/busy"),
    ]

    result = sender.send(message(), profile_with(*subscriptions), RENDERED)

    # A retry would push again to the live browser, so the message counts as sent.
    assert result.status == "sent"
    assert result.detail.startswith("delivered to 1 of 3 subscription(s)")
    assert "1 subscription(s) gone" in result.detail
    [live_request] = [r for r in push_service.received if r.path == "/live"]
    assert live.decrypt(live_request.body)["title"] == RENDERED["title"]


class RecordingTransport(requests.adapters.BaseAdapter):
    """Answers 201 to every request and records where it would have gone (no network)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        self.urls.append(str(request.url))
        response = requests.Response()
        response.status_code = 201
        response.request = request
        response._content = b""
        return response

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("endpoint", "resolves_to"),
    [
        # A public-looking name that now points into the stack's network (DNS rebinding)...
        ("https://push.attacker.example/p/1", ["10.0.0.5"]),
        ("https://push.attacker.example/p/2", ["169.254.169.254"]),
        ("https://push.attacker.example/p/3", ["93.184.216.34", "127.0.0.1"]),
        ("https://push.attacker.example/p/4", ["::ffff:192.168.1.1"]),
        # ...or a subscription stored before the check existed.
        ("http://127.0.0.1:9/p/5", ["127.0.0.1"]),
        ("https://metadata.google.internal/p/6", ["169.254.169.254"]),
    ],
)
def test_send_checks_the_endpoint_again_and_never_posts_to_an_internal_address(
    sender: WebPushSender, endpoint: str, resolves_to: list[str]
) -> None:
    transport = RecordingTransport()
    session = requests.Session()
    session.mount("http://", transport)
    session.mount("https://", transport)
    guarded = WebPushSender(sender.keys, session=session, resolve=lambda host, port: resolves_to)

    result = guarded.send(message(), profile_with(Browser().subscription(endpoint)), RENDERED)

    assert result.status == "failed"
    assert "endpoint refused" in result.detail
    assert transport.urls == []


def test_send_posts_to_an_endpoint_whose_host_resolves_to_public_addresses(sender: WebPushSender) -> None:
    transport = RecordingTransport()
    session = requests.Session()
    session.mount("https://", transport)
    guarded = WebPushSender(sender.keys, session=session, resolve=lambda host, port: ["142.250.72.10"])

    result = guarded.send(
        message(), profile_with(Browser().subscription("https://fcm.googleapis.com/fcm/send/x")), RENDERED
    )

    assert result.status == "sent"
    assert transport.urls == ["https://fcm.googleapis.com/fcm/send/x"]


def test_the_push_goes_to_the_address_that_was_checked_not_to_a_second_lookup(
    sender: WebPushSender, push_service: PushService, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = push_service.server.server_address[1]
    endpoint = f"http://localhost:{port}/p/pinned"
    checked = WebPushSender(sender.keys, timeout=5, allow_loopback=True, resolve=lambda host, port: ["127.0.0.1"])
    real_getaddrinfo = socket.getaddrinfo

    def rebound(host: Any, *args: Any, **kwargs: Any) -> Any:
        # After the check, the name no longer resolves (or would point elsewhere): only an address works.
        if host == "localhost":
            raise socket.gaierror("the name moved")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebound)
    browser = Browser()

    result = checked.send(message(title="Xin chào"), profile_with(browser.subscription(endpoint)), RENDERED)

    assert result.status == "sent"
    [received] = push_service.received
    assert received.path == "/p/pinned"
    assert received.headers["host"] == f"localhost:{port}"  # the name the subscription gave
    assert browser.decrypt(received.body)["title"]
