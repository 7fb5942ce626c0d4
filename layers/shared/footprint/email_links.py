"""Signed email links: one-click unsubscribe and click tracking, working without a login.

A link's token is ``<payload>.<signature>``: the payload is compact JSON in base64url (no padding),
the signature HMAC-SHA256 of ``"fp1." + payload`` with the stack's EmailLinkSecret, in base64url.
The payload names the profile, the channel and the message (its idempotency key), plus the
journey, node and enrollment it came from, so the events a link records are attributed to the
step; a click token also carries the one URL it forwards to. Nothing in a token is secret, only
unforgeable; tokens do not expire (an unsubscribe link must keep working in old emails).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode

LinkKind = Literal["unsubscribe", "click"]
_KIND_CODES: dict[LinkKind, str] = {"unsubscribe": "u", "click": "c"}
_SIGNATURE_CONTEXT = b"fp1."
# Longer tokens cannot come from Footprint (a click URL is at most MAX_LINK_URL characters).
MAX_TOKEN_LENGTH = 4096
MAX_LINK_URL = 2048
# SES message tags that carry the profile and the message (footprint.adapters.channels.email).
TAG_PROFILE = "fp_profile"
TAG_MESSAGE = "fp_message"
UNSUBSCRIBE_PATH = "/v1/email/unsubscribe"
CLICK_PATH = "/v1/email/click"


# href="https://..." of an <a> tag (either quote); other schemes (mailto:, tel:) are left alone.
HREF = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(https?://[^"'<>\s]+)\2""", re.IGNORECASE)


class InvalidLinkError(ValueError):
    """A token that is malformed, or whose signature does not match (tampered or forged)."""


@dataclass(frozen=True)
class LinkClaims:
    """What a verified token says."""

    kind: LinkKind
    profile_id: str
    channel: str
    message_id: str
    journey_id: str = ""
    node_id: str = ""
    enrollment_id: str = ""
    # Click links only: where the visitor goes.
    url: str = ""

    def properties(self) -> dict[str, Any]:
        """The message properties of the events this link records (wait_for match_message reads them)."""
        return {
            "message_id": self.message_id,
            "journey_id": self.journey_id,
            "node_id": self.node_id,
            "enrollment_id": self.enrollment_id,
            "channel": self.channel,
        }


def sign(key: bytes, claims: LinkClaims) -> str:
    body: dict[str, str] = {
        "k": _KIND_CODES[claims.kind],
        "p": claims.profile_id,
        "c": claims.channel,
        "m": claims.message_id,
        "j": claims.journey_id,
        "n": claims.node_id,
        "e": claims.enrollment_id,
    }
    if claims.url:
        body["u"] = claims.url
    payload = _b64(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode())
    return f"{payload}.{_signature(key, payload)}"


def verify(key: bytes, token: str | None, kind: LinkKind) -> LinkClaims:
    """The claims of ``token`` if Footprint signed it for ``kind``; InvalidLinkError otherwise."""
    if not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii() or token.count(".") != 1:
        raise InvalidLinkError("the link is incomplete or malformed")
    payload, signature = token.split(".")
    if not hmac.compare_digest(_signature(key, payload), signature):
        raise InvalidLinkError("the link's signature does not match")
    try:
        body = json.loads(_unb64(payload))
    except ValueError as error:  # only a holder of the key can get here
        raise InvalidLinkError("the link's payload is unreadable") from error
    if not isinstance(body, dict) or body.get("k") != _KIND_CODES[kind]:
        raise InvalidLinkError(f"this is not an {kind} link")
    fields = {name: body.get(name, "") for name in ("p", "c", "m", "j", "n", "e", "u")}
    if not all(isinstance(value, str) for value in fields.values()) or not (fields["p"] and fields["m"]):
        raise InvalidLinkError("the link's payload is incomplete")
    if kind == "click" and not fields["u"]:
        raise InvalidLinkError("the click link names no destination")
    return LinkClaims(
        kind=kind,
        profile_id=fields["p"],
        channel=fields["c"],
        message_id=fields["m"],
        journey_id=fields["j"],
        node_id=fields["n"],
        enrollment_id=fields["e"],
        url=fields["u"],
    )


def message_links(html_part: str) -> list[str]:
    """The absolute links of an HTML part, as a browser reads them (entities decoded)."""
    return [html.unescape(match.group(3)) for match in HREF.finditer(html_part)]


def link_url(base_url: str, path: str, token: str) -> str:
    return f"{base_url.rstrip('/')}{path}?{urlencode({'token': token})}"


def _signature(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, _SIGNATURE_CONTEXT + payload.encode("ascii"), hashlib.sha256).digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError as error:
        raise InvalidLinkError("the link is not base64url") from error


class LinkSigner:
    """Signs the links of outgoing emails: ``base_url`` is the tracking API's public URL, ``key``
    reads the signing key (from Secrets Manager, cached by the caller)."""

    def __init__(self, base_url: str, key: Callable[[], bytes]) -> None:
        self.base_url = base_url
        self.key = key

    def unsubscribe_url(self, claims: LinkClaims) -> str:
        return link_url(self.base_url, UNSUBSCRIBE_PATH, sign(self.key(), claims))

    def click_url(self, claims: LinkClaims, url: str) -> str:
        clicked = LinkClaims(**{**claims.__dict__, "kind": "click", "url": url})
        return link_url(self.base_url, CLICK_PATH, sign(self.key(), clicked))


def encode_tag(value: str) -> str:
    """A message id as an SES tag value (only letters, digits, "_" and "-" are allowed there)."""
    return _b64(value.encode())


def decode_tag(value: str) -> str:
    try:
        return _unb64(value).decode()
    except (InvalidLinkError, UnicodeDecodeError) as error:
        raise InvalidLinkError("not an encoded tag") from error
