"""SMS through an HTTP relay: Footprint holds no SMS provider credentials of its own.

What a user configures (both read by send_wiring; without the URL the channel is "not configured"
and SMS steps are recorded as skipped):

- SMS_PROVIDER_URL: an https endpoint that sends one SMS per POST, e.g. a small function in front
  of the user's provider (Amazon End User Messaging SMS, Twilio, a Vietnamese brandname gateway...).
- SMS_PROVIDER_SECRET_NAME (optional): a Secrets Manager secret ``{"token": "..."}``, sent as
  ``Authorization: Bearer <token>``. SendFunction's role must be allowed to read it.

The relay receives ``{"to": "<profile phone as stored>", "text", "sender", "message_id",
"profile_id", "journey_id", "node_id"}`` with header ``Idempotency-Key``, and answers 2xx once the
provider accepted the SMS; 408/425/429/5xx are retried, other statuses are recorded as failed.
Content of an SMS step (Liquid-rendered): ``text`` (or ``body``), optional ``sender`` (brandname).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from footprint.adapters.channels.http_json import DEFAULT_TIMEOUT_SECONDS, deliver_json
from footprint.models.messages import OutgoingMessage
from footprint.models.profile import Profile
from footprint.services.send import DeliveryResult

TokenSource = Callable[[], str | None]


def no_token() -> str | None:
    return None


def relay_headers(message: OutgoingMessage, token: TokenSource) -> dict[str, str]:
    headers = {"Idempotency-Key": message.idempotency_key}
    bearer = token()
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    return headers


@dataclass(frozen=True)
class RelaySender:
    """A channel delivered by POSTing JSON to a relay that holds the provider's credentials."""

    endpoint: str
    token: TokenSource = no_token
    timeout: float = DEFAULT_TIMEOUT_SECONDS


class SmsRelaySender(RelaySender):
    def send(self, message: OutgoingMessage, profile: Profile, rendered: Mapping[str, Any]) -> DeliveryResult:
        text = str(rendered.get("body") or "").strip()
        if not text:
            return DeliveryResult("failed", "sms content needs a body")
        if not profile.phone:
            return DeliveryResult("failed", "no phone number")
        payload = {
            "to": profile.phone,
            "text": text,
            "sender": rendered.get("sender"),
            "message_id": message.idempotency_key,
            "profile_id": profile.profile_id,
            "journey_id": message.journey_id,
            "node_id": message.node_id,
        }
        headers = relay_headers(message, self.token)
        return deliver_json("sms relay", self.endpoint, payload, headers=headers, timeout=self.timeout)
