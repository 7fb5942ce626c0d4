"""Email through Amazon SES v2: ``SendEmail`` with Raw content, a MIME message built here.

What a user configures: SENDER_EMAIL, an address whose identity (the address or its domain) is
verified in SES in the stack's region (out of the SES sandbox to reach unverified recipients);
the stack creates the configuration set (SES_CONFIGURATION_SET) whose events come back as visitor
events, and the key that signs links (EMAIL_LINK_SECRET_NAME, with PUBLIC_API_URL for the links).

Content of an email step (Liquid-rendered; ``html`` values are HTML-escaped as they are
inserted): ``subject`` and at least one of ``html`` / ``text`` (``body`` is accepted for
``text``); a missing part is derived from the other. ``preheader`` is the preview line inboxes
show after the subject (hidden in the body); ``from_name`` and ``reply_to`` set the From name and
Reply-To address.

Every absolute link of the HTML part is rewritten to a signed click link (``/v1/email/click``),
which records ``message_clicked`` and forwards to that link only. A marketing message (the
default) also carries ``List-Unsubscribe`` with a signed one-click URL and
``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058, which Gmail and Yahoo require of
bulk senders) and a visible unsubscribe link in both parts; without signed links configured it
is not sent. A transactional message carries neither.

SES message tags carry the profile, the message and its step, so the configuration set's events
(delivered, bounced, complained, opened) are attributed to them (footprint.services.email_feedback).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formataddr, parseaddr
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from footprint.email_links import HREF, MAX_LINK_URL, TAG_MESSAGE, TAG_PROFILE, LinkClaims, LinkSigner, encode_tag
from footprint.models.messages import OutgoingMessage
from footprint.models.profile import Profile
from footprint.services.retries import RetryableDeliveryError
from footprint.services.send import DeliveryResult

if TYPE_CHECKING:
    from mypy_boto3_sesv2 import SESV2Client
    from mypy_boto3_sesv2.type_defs import MessageTagTypeDef

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
# SES tag values: ASCII letters, digits, "_" and "-", at most 256 characters.
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_TAGS = re.compile(r"<[^>]+>")
_BODY_OPEN = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
_BODY_CLOSE = re.compile(r"</body\s*>", re.IGNORECASE)
NO_LINKS = "marketing email needs signed unsubscribe links: set EMAIL_LINK_SECRET_NAME and PUBLIC_API_URL"


class SesEmailSender:
    def __init__(
        self,
        client: SESV2Client,
        sender_email: str,
        configuration_set: str | None = None,
        links: LinkSigner | None = None,
    ) -> None:
        self.client = client
        self.sender_email = sender_email
        self.configuration_set = configuration_set
        self.links = links

    def send(self, message: OutgoingMessage, profile: Profile, rendered: Mapping[str, Any]) -> DeliveryResult:
        subject = str(rendered.get("subject") or "").strip()
        html_part, text_part = _parts(rendered)
        if not subject or not (html_part or text_part):
            return DeliveryResult("failed", "email content needs a subject and html or text")
        if not profile.email:
            return DeliveryResult("failed", "no email address")
        reply_to = str(rendered.get("reply_to") or "").strip()
        if reply_to and "@" not in parseaddr(reply_to)[1]:
            return DeliveryResult("failed", f"reply_to is not an email address: {reply_to[:100]}")
        marketing = message.category == "marketing"
        if marketing and self.links is None:
            return DeliveryResult("failed", NO_LINKS)
        claims = link_claims(message)
        if self.links is not None:
            html_part = rewrite_links(html_part, self.links, claims)
        html_part = with_preheader(html_part, str(rendered.get("preheader") or "").strip())
        mime = EmailMessage(policy=SMTP)
        mime["Subject"] = subject
        mime["From"] = _from_header(str(rendered.get("from_name") or "").strip(), self.sender_email)
        mime["To"] = profile.email
        if reply_to:
            mime["Reply-To"] = reply_to
        if marketing and self.links is not None:
            unsubscribe = self.links.unsubscribe_url(claims)
            mime["List-Unsubscribe"] = f"<{unsubscribe}>"
            mime["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
            html_part, text_part = with_unsubscribe_footer(html_part, text_part, unsubscribe)
        mime.set_content(text_part, charset="utf-8")
        mime.add_alternative(html_part, subtype="html", charset="utf-8")
        request: dict[str, Any] = {
            "FromEmailAddress": self.sender_email,
            "Destination": {"ToAddresses": [profile.email]},
            "Content": {"Raw": {"Data": mime.as_bytes()}},
            "EmailTags": tags(message),
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


def link_claims(message: OutgoingMessage) -> LinkClaims:
    return LinkClaims(
        kind="unsubscribe",
        profile_id=message.profile_id,
        channel="email",
        message_id=message.idempotency_key,
        journey_id=message.journey_id,
        node_id=message.node_id,
        enrollment_id=message.enrollment_id,
    )


def rewrite_links(html_part: str, links: LinkSigner, claims: LinkClaims) -> str:
    def signed(match: re.Match[str]) -> str:
        target = html.unescape(match.group(3))
        if len(target) > MAX_LINK_URL:
            return match.group(0)  # too long to sign into a link: left as it is, not tracked
        quote = match.group(2)
        return f"{match.group(1)}{quote}{html.escape(links.click_url(claims, target))}{quote}"

    return HREF.sub(signed, html_part)


def with_preheader(html_part: str, preheader: str) -> str:
    """The preview text inboxes show after the subject, hidden in the body itself."""
    if not preheader:
        return html_part
    hidden = (
        '<div style="display:none;max-height:0;overflow:hidden;mso-hide:all;font-size:1px;line-height:1px">'
        f"{html.escape(preheader)}</div>"
    )
    opening = _BODY_OPEN.search(html_part)
    if opening:
        return html_part[: opening.end()] + hidden + html_part[opening.end() :]
    return hidden + html_part


def with_unsubscribe_footer(html_part: str, text_part: str, unsubscribe_url: str) -> tuple[str, str]:
    """A visible unsubscribe link in both parts (Vietnamese first, then English)."""
    footer = (
        '<p style="font-size:12px;color:#666666;margin-top:24px">'
        "Bạn không muốn nhận những email như thế này? "
        f'<a href="{html.escape(unsubscribe_url)}">Hủy đăng ký</a> (Unsubscribe)</p>'
    )
    closing = _BODY_CLOSE.search(html_part)
    if closing:
        html_part = html_part[: closing.start()] + footer + html_part[closing.start() :]
    else:
        html_part += footer
    text_part = f"{text_part.rstrip()}\n\n--\nHủy đăng ký / Unsubscribe: {unsubscribe_url}\n"
    return html_part, text_part


def tags(message: OutgoingMessage) -> list[MessageTagTypeDef]:
    """SES message tags, echoed in every event of the configuration set. The message id holds dots
    (not allowed in a tag), so it travels base64url-encoded; the other ids are tag-safe already."""
    values = {
        TAG_PROFILE: message.profile_id,
        TAG_MESSAGE: encode_tag(message.idempotency_key),
        "journey_id": message.journey_id,
        "node_id": message.node_id,
        "enrollment_id": message.enrollment_id,
        "channel": message.channel,
        "category": message.category,
    }
    return [{"Name": name, "Value": _TAG_UNSAFE.sub("_", v)[:256] or "none"} for name, v in values.items()]


def _from_header(from_name: str, sender_email: str) -> str:
    if not from_name:
        return sender_email
    try:
        return str(Address(display_name=from_name, addr_spec=sender_email))
    except (ValueError, IndexError):
        return formataddr((from_name, sender_email))


def _parts(rendered: Mapping[str, Any]) -> tuple[str, str]:
    html_part = str(rendered.get("html") or "")
    text_part = str(rendered.get("text") or rendered.get("body") or "")
    if html_part and not text_part:
        text_part = html.unescape(_TAGS.sub("", html_part)).strip()
    if text_part and not html_part:
        html_part = "<br>\n".join(html.escape(line) for line in text_part.splitlines())
    return html_part, text_part
