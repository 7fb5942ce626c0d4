"""Zalo ZNS (Zalo Notification Service) template messages, through an HTTP relay.

ZNS sends a template approved by Zalo, from the business's Zalo Official Account, to a Vietnamese
phone number. Zalo's API needs an OA access token that expires every 25 hours and is refreshed
with the app's secret, so Footprint posts to a relay the user runs, which holds the token.

What a user configures (read by send_wiring; without the URL the channel is "not configured" and
ZNS steps are recorded as skipped):

- ZALO_ZNS_PROVIDER_URL: the relay's https endpoint. The body is shaped like Zalo's own
  ``POST /message/template`` request, so the relay only adds the ``access_token`` header and
  forwards it: ``{"phone": "84912345678", "template_id", "template_data": {...}, "tracking_id"}``
  (``tracking_id`` = the idempotency key), plus header ``Idempotency-Key``.
- ZALO_ZNS_PROVIDER_SECRET_NAME (optional): a Secrets Manager secret ``{"token": "..."}`` sent to
  the relay as ``Authorization: Bearer <token>``.

The relay answers 2xx when Zalo accepted the message (Zalo's ``error`` = 0), 4xx for a refusal
that will not change (unknown template, number not on Zalo), 429/5xx to have it retried.
Content of a ZNS step: ``template_id`` and ``params`` (sent to Zalo as ``template_data``; string values
are Liquid-rendered).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from footprint.adapters.channels.http_json import deliver_json
from footprint.adapters.channels.sms import RelaySender, relay_headers
from footprint.models.messages import OutgoingMessage
from footprint.models.profile import Profile
from footprint.services.send import DeliveryResult

_NOT_DIGITS = re.compile(r"\D")


def zalo_phone(phone: str) -> str | None:
    """Zalo's format: 84, then the number without its leading 0 ("0912 345 678" -> "84912345678")."""
    digits = _NOT_DIGITS.sub("", phone)
    if digits.startswith("0") and not digits.startswith("00"):
        digits = "84" + digits[1:]
    elif digits.startswith("0084"):
        digits = digits[2:]
    return digits if digits.startswith("84") and 10 <= len(digits) <= 12 else None


class ZaloZnsRelaySender(RelaySender):
    def send(self, message: OutgoingMessage, profile: Profile, rendered: Mapping[str, Any]) -> DeliveryResult:
        template_id = str(rendered.get("template_id") or "").strip()
        template_data = rendered.get("params") or {}
        if not template_id or not isinstance(template_data, Mapping):
            return DeliveryResult("failed", "zalo_zns content needs template_id and a params mapping")
        phone = zalo_phone(profile.phone or "")
        if phone is None:
            return DeliveryResult("failed", "no Vietnamese phone number for Zalo")
        payload = {
            "phone": phone,
            "template_id": template_id,
            "template_data": dict(template_data),
            "tracking_id": message.idempotency_key,
        }
        headers = relay_headers(message, self.token)
        return deliver_json("zalo_zns relay", self.endpoint, payload, headers=headers, timeout=self.timeout)
