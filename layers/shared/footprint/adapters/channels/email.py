"""Email through Amazon SES v2 (``SendEmail`` with Simple content: subject, HTML and text parts).

What a user configures: SENDER_EMAIL, an address whose identity (the address or its domain) is
verified in SES in the stack's region; out of the SES sandbox to reach unverified recipients.

Content of an email step (Liquid-rendered; ``html`` values are HTML-escaped as they are
inserted): ``subject`` and at least one of ``html`` / ``text`` (``body`` is accepted for
``text``). A missing part is derived from the other. ``unsubscribe_url`` adds List-Unsubscribe
headers (one-click, RFC 8058), which large mailbox providers expect from marketing mail.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from footprint.models.messages import OutgoingMessage
from footprint.models.profile import Profile
from footprint.services.send import DeliveryResult, RetryableDeliveryError

if TYPE_CHECKING:
    from mypy_boto3_sesv2 import SESV2Client
    from mypy_boto3_sesv2.type_defs import EmailContentTypeDef, MessageTagTypeDef

# SES errors a later attempt may get past; every other client error is a permanent refusal.
RETRYABLE_CODES = frozenset(
    {
        "TooManyRequestsException",
        "LimitExceededException",
        "ThrottlingException",
        "Throttling",
        "InternalFailure",
    }
)
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_TAGS = re.compile(r"<[^>]+>")


class SesEmailSender:
    def __init__(self, client: SESV2Client, sender_email: str, configuration_set: str | None = None) -> None:
        self.client = client
        self.sender_email = sender_email
        self.configuration_set = configuration_set

    def send(self, message: OutgoingMessage, profile: Profile, rendered: Mapping[str, Any]) -> DeliveryResult:
        subject = str(rendered.get("subject") or "").strip()
        html_part, text_part = _parts(rendered)
        if not subject or not (html_part or text_part):
            return DeliveryResult("failed", "email content needs a subject and html or text")
        if not profile.email:
            return DeliveryResult("failed", "no email address")
        content: EmailContentTypeDef = {
            "Simple": {
                "Subject": {"Data": subject, "Charset": "UTF-8"},
                "Body": {
                    "Html": {"Data": html_part, "Charset": "UTF-8"},
                    "Text": {"Data": text_part, "Charset": "UTF-8"},
                },
            }
        }
        unsubscribe = str(rendered.get("unsubscribe_url") or "")
        if unsubscribe.startswith("https://"):
            content["Simple"]["Headers"] = [
                {"Name": "List-Unsubscribe", "Value": f"<{unsubscribe}>"},
                {"Name": "List-Unsubscribe-Post", "Value": "List-Unsubscribe=One-Click"},
            ]
        request: dict[str, Any] = {
            "FromEmailAddress": self.sender_email,
            "Destination": {"ToAddresses": [profile.email]},
            "Content": content,
            "EmailTags": _tags(message),
        }
        if self.configuration_set:
            request["ConfigurationSetName"] = self.configuration_set
        try:
            response = self.client.send_email(**request)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            if code in RETRYABLE_CODES or status >= 500:
                raise RetryableDeliveryError(f"ses {code}") from error
            reason = error.response.get("Error", {}).get("Message", "")
            return DeliveryResult("failed", f"ses refused: {code}: {reason}"[:500])
        except BotoCoreError as error:
            raise RetryableDeliveryError(f"ses unreachable: {type(error).__name__}") from error
        return DeliveryResult("sent", f"ses message id {response.get('MessageId', '')}")


def _parts(rendered: Mapping[str, Any]) -> tuple[str, str]:
    html_part = str(rendered.get("html") or "")
    text_part = str(rendered.get("body") or "")
    if html_part and not text_part:
        text_part = html.unescape(_TAGS.sub("", html_part)).strip()
    if text_part and not html_part:
        html_part = "<br>\n".join(html.escape(line) for line in text_part.splitlines())
    return html_part, text_part


def _tags(message: OutgoingMessage) -> list[MessageTagTypeDef]:
    """SES message tags (for event destinations): journey and step, with characters SES accepts."""
    values = {"journey_id": message.journey_id, "node_id": message.node_id, "channel": message.channel}
    return [{"Name": name, "Value": _TAG_UNSAFE.sub("_", v)[:256] or "none"} for name, v in values.items()]
