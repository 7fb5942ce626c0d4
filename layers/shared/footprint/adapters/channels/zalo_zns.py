"""Zalo ZNS (Zalo Notification Service) template messages: straight to Zalo, or through a relay.

ZNS sends a template approved by Zalo, from the business's Zalo Official Account, to a Vietnamese
phone number.

**Direct** (:class:`ZaloZnsSender`, ZALO_ZNS_SECRET_NAME set): Footprint calls Zalo's API itself,
``POST https://business.openapi.zalo.me/message/template`` with header ``access_token`` and
``{"phone": "84…", "template_id", "template_data", "tracking_id"}`` (``mode: "development"`` when
ZALO_ZNS_MODE says so: free test sends to the OA's admins). The access token is kept fresh by
``zalo_tokens.ZaloAccessTokens``. Zalo answers HTTP 200 with an ``error`` code, mapped by
:data:`ZALO_ERRORS`: an expired token is refreshed once and the message retried; a quota or an
unknown error is retried later (SQS); a bad number, template or data, or a recipient who cannot
receive ZNS, is a permanent failure with Zalo's code in the reason.

**Relay** (:class:`ZaloZnsRelaySender`, only ZALO_ZNS_PROVIDER_URL set), for a gateway the user
already runs. What a user configures (read by send_wiring; with neither set the channel is "not
configured" and ZNS steps are recorded as skipped):

- ZALO_ZNS_PROVIDER_URL (the stack parameter ZaloZnsProviderUrl): the relay's https endpoint. The
  body is shaped like Zalo's own ``POST /message/template`` request, so the relay only adds the
  ``access_token`` header and forwards it:
  ``{"phone": "84912345678", "template_id", "template_data": {...}, "tracking_id"}``
  (``tracking_id`` = the idempotency key), plus header ``Idempotency-Key``.
- ZALO_ZNS_PROVIDER_SECRET_NAME (ZaloZnsProviderSecretName, optional): a Secrets Manager secret
  ``{"token": "..."}`` sent to the relay as ``Authorization: Bearer <token>``.

The relay answers 2xx when Zalo accepted the message (Zalo's ``error`` = 0), 4xx for a refusal
that will not change (unknown template, number not on Zalo), 429/5xx to have it retried.
Content of a ZNS step: ``template_id`` and ``params`` (sent to Zalo as ``template_data``; string values
are Liquid-rendered).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from footprint.adapters.channels.http_json import DEFAULT_TIMEOUT_SECONDS, InvalidEndpointError, deliver_json, post_json
from footprint.adapters.channels.sms import RelaySender, relay_headers
from footprint.adapters.channels.zalo_tokens import ZaloAccessTokens
from footprint.models.messages import OutgoingMessage
from footprint.models.profile import Profile, suppression_key
from footprint.services.retries import RetryableDeliveryError
from footprint.services.send import DeliveryResult

ZALO_ZNS_URL = "https://business.openapi.zalo.me/message/template"
# Zalo keeps at most 48 characters of tracking_id.
MAX_TRACKING_ID = 48
ACCESS_TOKEN_INVALID = -124
# Zalo's documented error codes that are retried later; every other non-zero code is permanent.
RETRY_LATER = {
    -100: "unknown error at Zalo",
    -115: "the ZNS account is out of quota",
}
ZALO_ERRORS = {
    -108: "invalid phone number",
    -109: "invalid template id",
    -110: "the recipient's Zalo version cannot show ZNS",
    -111: "empty template data",
    -112: "invalid template data",
    -114: "the recipient is inactive, declined ZNS or cannot receive it",
    -117: "the OA or app may not use this template",
    -118: "no Zalo account for this number",
    -119: "this account cannot receive ZNS",
    ACCESS_TOKEN_INVALID: "access token invalid",
}

# Codes that put the number on the suppression list: not a phone number at all, and (for ZNS only)
# a number whose owner has no Zalo account able to receive ZNS or declined it.
INVALID_PHONE = -108
CANNOT_RECEIVE = frozenset({-114, -118, -119})

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
            return DeliveryResult(
                "failed",
                "no Vietnamese phone number for Zalo",
                # Zalo only: a number abroad may still take SMS.
                invalid_address=suppression_key("zalo_zns", profile.phone) if profile.phone else None,
            )
        payload = {
            "phone": phone,
            "template_id": template_id,
            "template_data": dict(template_data),
            "tracking_id": message.idempotency_key,
        }
        headers = relay_headers(message, self.token)
        return deliver_json("zalo_zns relay", self.endpoint, payload, headers=headers, timeout=self.timeout)


def tracking_id(idempotency_key: str) -> str:
    """Zalo's tracking_id for a message: the idempotency key, or a digest of it past 48 characters."""
    if len(idempotency_key) <= MAX_TRACKING_ID:
        return idempotency_key
    return "fp-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[: MAX_TRACKING_ID - 3]


class ZaloZnsSender:
    """ZNS straight to Zalo's API (see the module docstring)."""

    def __init__(
        self,
        tokens: ZaloAccessTokens,
        *,
        url: str = ZALO_ZNS_URL,
        development: bool = False,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self.tokens = tokens
        self.url = url
        self.development = development
        self.timeout = timeout

    def send(self, message: OutgoingMessage, profile: Profile, rendered: Mapping[str, Any]) -> DeliveryResult:
        template_id = str(rendered.get("template_id") or "").strip()
        template_data = rendered.get("params") or {}
        if not template_id or not isinstance(template_data, Mapping):
            return DeliveryResult("failed", "zalo_zns content needs template_id and a params mapping")
        phone = zalo_phone(profile.phone or "")
        if phone is None:
            return DeliveryResult(
                "failed",
                "no Vietnamese phone number for Zalo",
                # Zalo only: a number abroad may still take SMS.
                invalid_address=suppression_key("zalo_zns", profile.phone) if profile.phone else None,
            )
        payload: dict[str, Any] = {
            "phone": phone,
            "template_id": template_id,
            "template_data": dict(template_data),
            "tracking_id": tracking_id(message.idempotency_key),
        }
        if self.development:
            payload["mode"] = "development"
        token = self.tokens.current()
        code, answer = self._post(payload, token)
        if code == ACCESS_TOKEN_INVALID:
            # Expired early or revoked: refresh once (unless someone already did) and try again.
            code, answer = self._post(payload, self.tokens.refresh(rejected=token))
        return _result(code, answer, profile.phone)

    def _post(self, payload: Mapping[str, Any], token: str) -> tuple[int, dict[str, Any]]:
        try:
            reply = post_json(self.url, payload, headers={"access_token": token}, timeout=self.timeout)
        except InvalidEndpointError as error:
            raise RetryableDeliveryError(f"zalo_zns: {error}") from error
        if reply.status == 429 or reply.status >= 500:
            raise RetryableDeliveryError(f"zalo_zns answered {reply.status}")
        try:
            answer = json.loads(reply.body)
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or not isinstance(answer.get("error"), int):
            return -1, {"message": f"zalo_zns answered {reply.status} without an error code"}
        return answer["error"], answer


def _result(code: int, answer: Mapping[str, Any], phone: str | None) -> DeliveryResult:
    if code == 0:
        data = answer.get("data")
        msg_id = data.get("msg_id", "?") if isinstance(data, Mapping) else "?"
        return DeliveryResult("sent", f"zalo msg_id {msg_id}")
    said = str(answer.get("message") or "")[:200]
    if code in RETRY_LATER:
        raise RetryableDeliveryError(f"zalo_zns error {code}: {RETRY_LATER[code]} ({said})")
    meaning = ZALO_ERRORS.get(code, "refused")
    detail = f"zalo_zns error {code}: {meaning}" + (f" ({said})" if said else "")
    invalid = None
    if phone and code == INVALID_PHONE:
        invalid = phone  # not a phone number: no SMS either
    elif phone and code in CANNOT_RECEIVE:
        invalid = suppression_key("zalo_zns", phone)
    return DeliveryResult("failed", detail, invalid_address=invalid)
