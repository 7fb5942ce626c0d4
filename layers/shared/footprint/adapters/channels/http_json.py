"""JSON over HTTP POST for the webhook-style channels (webhook, SMS relay, Zalo ZNS relay).

Only http and https URLs are accepted and redirects are never followed: a webhook that answers
3xx is recorded as failed, instead of the body being replayed to (or a GET sent to) another place.
2xx means delivered; 408, 425, 429 and 5xx may pass later (RetryableDeliveryError, SQS retries,
not before the reply's ``Retry-After``); any other status is a permanent refusal.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from footprint.services.send import DeliveryResult, RetryableDeliveryError

ALLOWED_SCHEMES = frozenset({"http", "https"})
DEFAULT_TIMEOUT_SECONDS = 10.0
RETRYABLE_STATUSES = frozenset({408, 425, 429})
# Enough of a reply to explain a refusal in the outbox row.
MAX_REPLY_BYTES = 2048


class InvalidEndpointError(ValueError):
    """The URL is not an absolute http(s) URL."""


@dataclass(frozen=True)
class HttpReply:
    status: int
    body: str
    # Seconds the receiver asked us to wait (Retry-After, RFC 9110 section 10.2.3), if it did.
    retry_after_seconds: int | None = None


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        # Returning None makes urllib raise HTTPError with the 3xx status instead of following it.
        return None


def post_json(
    url: str,
    payload: Mapping[str, Any],
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> HttpReply:
    """POST ``payload`` as UTF-8 JSON; network failures raise RetryableDeliveryError."""
    body = json.dumps(payload, ensure_ascii=False, default=str).encode("utf-8")
    return post(url, body, "application/json; charset=utf-8", headers=headers, timeout=timeout)


def post_form(
    url: str,
    fields: Mapping[str, str],
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> HttpReply:
    """POST ``fields`` as an HTML form (OAuth token endpoints); network failures are retryable."""
    body = urllib.parse.urlencode(fields).encode("ascii")
    return post(url, body, "application/x-www-form-urlencoded", headers=headers, timeout=timeout)


def post(
    url: str,
    body: bytes,
    content_type: str,
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> HttpReply:
    parts = urlsplit(url)
    if parts.scheme.lower() not in ALLOWED_SCHEMES or not parts.hostname:
        raise InvalidEndpointError(f"not an http(s) URL: {url[:200]!r}")
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        url,
        data=body,
        method="POST",
        headers={"Content-Type": content_type, "User-Agent": "footprint-send", **(headers or {})},
    )
    opener = urllib.request.build_opener(_RefuseRedirects)
    try:
        with opener.open(request, timeout=timeout) as response:
            return HttpReply(response.status, _text(response.read(MAX_REPLY_BYTES)))
    except urllib.error.HTTPError as error:
        with error:
            wait = retry_after_seconds(error.headers)
            return HttpReply(error.code, _text(error.read(MAX_REPLY_BYTES)), wait)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        raise RetryableDeliveryError(f"{parts.hostname}: {error}") from error


def deliver_json(
    what: str,
    url: str,
    payload: Mapping[str, Any],
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> DeliveryResult:
    """POST and map the reply; ``what`` names the receiver in the outbox row's detail."""
    try:
        reply = post_json(url, payload, headers=headers, timeout=timeout)
    except InvalidEndpointError as error:
        return DeliveryResult("failed", f"{what}: {error}")
    return result_of(reply, what)


def result_of(reply: HttpReply, what: str) -> DeliveryResult:
    """Map an HTTP reply to a delivery outcome (see the module docstring)."""
    if 200 <= reply.status < 300:
        return DeliveryResult("sent", f"{what} answered {reply.status}")
    if reply.status in RETRYABLE_STATUSES or reply.status >= 500:
        raise RetryableDeliveryError(f"{what} answered {reply.status}", reply.retry_after_seconds)
    return DeliveryResult("failed", f"{what} answered {reply.status}: {reply.body[:200]}".rstrip(": "))


def retry_after_seconds(headers: Message | None, now: datetime | None = None) -> int | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP-date; None when absent or unreadable."""
    value = (headers.get("Retry-After") if headers is not None else None) or ""
    value = value.strip()
    if value.isdigit():
        return int(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0, int((when - (now or datetime.now(UTC))).total_seconds()))


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")
