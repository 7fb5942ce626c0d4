"""SMS: through Amazon SNS (the default on AWS), or through an HTTP relay to a local gateway.

**SNS** (:class:`SnsSmsSender`, SMS_PROVIDER=sns): ``Publish`` to the number in E.164, with the
journey's sender id (``AWS.SNS.SMS.SenderID``). SNS sends SMS through AWS End User Messaging, so
the origination numbers, sender ids, spend limit and opt-out list a Pinpoint user already has in the
account apply unchanged; and moto can test it. A refused number is a permanent failure; throttling
and AWS errors are retried.

**Relay** (:class:`SmsRelaySender`, SMS_PROVIDER_URL set), for a Vietnamese brandname gateway or any
other provider, configured as follows (both read by send_wiring; without either provider the channel
is "not configured" and SMS steps are recorded as skipped):

- SMS_PROVIDER_URL (the stack parameter SmsProviderUrl): an https endpoint that sends one SMS per
  POST, e.g. a small function in front of the user's provider (Amazon End User Messaging SMS,
  Twilio, a Vietnamese brandname gateway...).
- SMS_PROVIDER_SECRET_NAME (SmsProviderSecretName, optional): a Secrets Manager secret
  ``{"token": "..."}``, sent as ``Authorization: Bearer <token>``; the stack lets SendFunction read
  it while SMS goes to the relay.

The relay receives ``{"to": "<phone in E.164>", "text", "sender", "message_id",
"profile_id", "journey_id", "node_id"}`` with header ``Idempotency-Key``, and answers 2xx once the
provider accepted the SMS; 408/425/429/5xx are retried, other statuses are recorded as failed.
Content of an SMS step (Liquid-rendered): ``text`` (or ``body``), optional ``sender`` (brandname).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from footprint.adapters.channels.http_json import DEFAULT_TIMEOUT_SECONDS, deliver_json
from footprint.models.messages import OutgoingMessage
from footprint.models.profile import Profile
from footprint.services.retries import RetryableDeliveryError
from footprint.services.send import DeliveryResult
from footprint.sms import to_e164

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

# SNS answers these for a request that will not pass later (a malformed number, a bad sender id).
PERMANENT_SNS_ERRORS = frozenset({"InvalidParameter", "InvalidParameterValue", "ValidationError"})

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
        phone = to_e164(profile.phone or "")
        if phone is None:
            return DeliveryResult("failed", f"not a phone number: {profile.phone!r}", invalid_address=profile.phone)
        payload = {
            "to": phone,
            "text": text,
            "sender": rendered.get("sender"),
            "message_id": message.idempotency_key,
            "profile_id": profile.profile_id,
            "journey_id": message.journey_id,
            "node_id": message.node_id,
        }
        headers = relay_headers(message, self.token)
        return deliver_json("sms relay", self.endpoint, payload, headers=headers, timeout=self.timeout)


class SnsSmsSender:
    """One SMS per message through Amazon SNS ``Publish`` to a phone number."""

    def __init__(self, client: SNSClient) -> None:
        self.client = client

    def send(self, message: OutgoingMessage, profile: Profile, rendered: Mapping[str, Any]) -> DeliveryResult:
        text = str(rendered.get("body") or "").strip()
        if not text:
            return DeliveryResult("failed", "sms content needs a body")
        phone = to_e164(profile.phone or "")
        if phone is None:
            return DeliveryResult("failed", f"not a phone number: {profile.phone!r}", invalid_address=profile.phone)
        attributes: dict[str, Any] = {}
        if rendered.get("sender"):
            attributes["AWS.SNS.SMS.SenderID"] = {"DataType": "String", "StringValue": str(rendered["sender"])}
        try:
            answer = self.client.publish(PhoneNumber=phone, Message=text, MessageAttributes=attributes)
        except ClientError as error:
            code = error.response["Error"]["Code"]
            if code in PERMANENT_SNS_ERRORS:
                said = error.response["Error"].get("Message", "")
                # SNS names the parameter it refused ("Invalid parameter: PhoneNumber Reason: ...").
                invalid = profile.phone if "PhoneNumber" in said else None
                return DeliveryResult("failed", f"sns refused the sms: {code}: {said}", invalid_address=invalid)
            raise RetryableDeliveryError(f"sns: {code}") from error
        except BotoCoreError as error:
            raise RetryableDeliveryError(f"sns: {error}") from error
        return DeliveryResult("sent", f"sns message {answer.get('MessageId', '?')}")
