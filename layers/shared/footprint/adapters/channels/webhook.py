"""Webhook: POST the message as JSON to the URL in the step's content (CRM, call centre, Zapier...).

Content of a webhook step: ``url`` (required, http or https), ``headers`` (optional mapping of
extra request headers), ``data`` (optional, anything the receiver needs; Liquid-rendered). Do not
build the URL's host from visitor-supplied traits: string values are rendered with the profile.

Body: ``{"message_id", "journey_id", "journey_version", "node_id", "channel", "profile":
{"profile_id", "user_id", "email", "phone", "traits"}, "context", "payload"}``; header
``Idempotency-Key`` = the message's idempotency key, so a receiver can drop a POST it has seen.
2xx delivered; 408/425/429/5xx and network errors retry; redirects and other 4xx are permanent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from footprint.adapters.channels.http_json import DEFAULT_TIMEOUT_SECONDS, deliver_json
from footprint.models.messages import OutgoingMessage
from footprint.models.profile import Profile
from footprint.services.send import DeliveryResult


class WebhookSender:
    def __init__(self, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        self.timeout = timeout

    def send(self, message: OutgoingMessage, profile: Profile, rendered: Mapping[str, Any]) -> DeliveryResult:
        url = str(rendered.get("url") or "").strip()
        extra = rendered.get("headers")
        headers = {str(k): str(v) for k, v in extra.items()} if isinstance(extra, Mapping) else {}
        headers["Idempotency-Key"] = message.idempotency_key
        body = webhook_body(message, profile, rendered)
        return deliver_json("webhook", url, body, headers=headers, timeout=self.timeout)


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
