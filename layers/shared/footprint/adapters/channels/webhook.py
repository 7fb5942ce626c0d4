"""Webhook: POST the message as JSON to the URL in the step's content (CRM, call centre, Zapier...).

Content of a webhook step: ``url`` (required, http or https), ``headers`` (optional mapping of
extra request headers), ``payload`` (optional, anything the receiver needs; Liquid-rendered),
``secret`` (optional, the name of the receiver's own signing secret, below). Do not build the
URL's host from visitor-supplied traits: string values are rendered with the profile.

Body: ``{"message_id", "journey_id", "journey_version", "node_id", "channel", "profile":
{"profile_id", "user_id", "email", "phone", "traits"}, "context", "payload"}``.

Signed as the Standard Webhooks specification says, so receivers verify it with that
specification's libraries (Python, Node, Go, ...): ``webhook-id`` (the message's idempotency key,
the same on every retry, so a receiver drops a POST it has seen), ``webhook-timestamp`` (Unix
seconds) and ``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` with the stack's
``whsec_`` secret. ``Idempotency-Key`` carries the same id for receivers that know that header.

A step with ``secret: crm`` is signed instead with the Secrets Manager secret
``footprint/webhooks/crm`` (:data:`JOURNEY_SECRETS_PREFIX`), shaped like the stack's:
``{"signing_secret": "whsec_..."}``, read and cached per container like the other secrets. That
secret missing, or holding no ``signing_secret``, is a permanent failure: the step named a key the
receiver verifies with, so the webhook is never sent unsigned or signed with another.
Signing is five lines of stdlib, so the layer does not take the specification's library (and its
HTTP client) as a dependency; the tests verify with that library.

Where it may go: the URL is rendered with the visitor's data, so before each POST the SSRF guard
(public_urls.check_public_url, shared with web push) requires https on a public host name whose
every address is public (no loopback, private, link-local or metadata address), and the
connection is pinned to the address it checked. ``allow_loopback`` (AllowLoopbackDestinations,
local stack and tests) admits loopback receivers.

2xx delivered; 408/425/429/5xx and network errors retry (honouring ``Retry-After``); redirects and
other 4xx are permanent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
from collections.abc import Callable, Mapping
from typing import Any

from footprint.adapters.channels.http_json import DEFAULT_TIMEOUT_SECONDS, InvalidEndpointError, post, result_of
from footprint.adapters.channels.public_urls import Resolver, UnsafeUrlError, check_public_url, resolve_host
from footprint.adapters.channels.secrets import SecretNotFoundError
from footprint.clock import Clock
from footprint.models.journey import RESERVED_WEBHOOK_HEADERS
from footprint.models.messages import OutgoingMessage
from footprint.models.profile import Profile
from footprint.services.retries import RetryableDeliveryError
from footprint.services.send import DeliveryResult

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix of a secret, not one
# Where a journey's own webhook secrets live in Secrets Manager (SendFunction may read only these).
JOURNEY_SECRETS_PREFIX = "footprint/webhooks/"

SigningSecret = Callable[[], str | None]
# The signing_secret of footprint/webhooks/<name> (None if it has none); SecretNotFoundError if no such secret.
NamedSigningSecret = Callable[[str], str | None]


def no_signing_secret() -> str | None:
    return None


def no_named_secrets(name: str) -> str | None:
    raise SecretNotFoundError(f"secret {JOURNEY_SECRETS_PREFIX + name!r} not found")


def signing_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret: base64 after the optional ``whsec_`` prefix."""
    encoded = secret.strip().removeprefix(SECRET_PREFIX)
    return base64.b64decode(encoded + "=" * (-len(encoded) % 4))


def signature(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class WebhookSender:
    def __init__(
        self,
        clock: Clock,
        signing_secret: SigningSecret = no_signing_secret,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        *,
        named_secret: NamedSigningSecret = no_named_secrets,
        allow_loopback: bool = False,
        resolve: Resolver = resolve_host,
    ) -> None:
        self.clock = clock
        self.signing_secret = signing_secret
        self.named_secret = named_secret
        self.timeout = timeout
        self.allow_loopback = allow_loopback
        self.resolve = resolve

    def send(self, message: OutgoingMessage, profile: Profile, rendered: Mapping[str, Any]) -> DeliveryResult:
        url = str(rendered.get("url") or "").strip()
        try:
            addresses = check_public_url(url, allow_loopback=self.allow_loopback, resolve=self.resolve)
        except UnsafeUrlError as error:
            if isinstance(error.__cause__, socket.gaierror):
                raise RetryableDeliveryError(f"webhook: {error}") from error  # DNS may answer later
            return DeliveryResult("failed", f"webhook: refused destination {url[:200]!r}: {error}")
        extra = rendered.get("headers")
        headers = {
            str(k): str(v)
            for k, v in (extra.items() if isinstance(extra, Mapping) else ())
            if str(k).lower() not in RESERVED_WEBHOOK_HEADERS
        }
        body = json.dumps(webhook_body(message, profile, rendered), ensure_ascii=False, default=str).encode()
        webhook_id = message.idempotency_key
        timestamp = int(self.clock.now().timestamp())
        headers |= {"webhook-id": webhook_id, "webhook-timestamp": str(timestamp), "Idempotency-Key": webhook_id}
        secret = self._secret_for(str(rendered.get("secret") or ""))
        if isinstance(secret, DeliveryResult):
            return secret
        if secret:
            headers["webhook-signature"] = signature(secret, webhook_id, timestamp, body)
        try:
            reply = post(
                url,
                body,
                "application/json; charset=utf-8",
                headers=headers,
                timeout=self.timeout,
                connect_to=str(addresses[0]),
            )
        except InvalidEndpointError as error:
            return DeliveryResult("failed", f"webhook: {error}")
        return result_of(reply, "webhook")

    def _secret_for(self, own_secret: str) -> str | DeliveryResult | None:
        """The key that signs this webhook: the step's own secret if it names one, else the stack's."""
        if not own_secret:
            return self.signing_secret()
        where = f"webhook: the step's signing secret {JOURNEY_SECRETS_PREFIX + own_secret!r}"
        try:
            secret = self.named_secret(own_secret)
        except SecretNotFoundError:
            return DeliveryResult("failed", f"{where} does not exist")
        return secret or DeliveryResult("failed", f"{where} has no signing_secret")


def webhook_body(message: OutgoingMessage, profile: Profile, rendered: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "message_id": message.idempotency_key,
        "journey_id": message.journey_id,
        "journey_version": message.journey_version,
        "node_id": message.node_id,
        "channel": message.channel,
        "profile": {
            "profile_id": profile.profile_id,
            "user_id": profile.user_id,
            "email": profile.email,
            "phone": profile.phone,
            "traits": profile.model_dump(mode="json", include={"traits"})["traits"],
        },
        "context": message.model_dump(mode="json", include={"context"})["context"],
        "payload": rendered.get("payload"),
    }
