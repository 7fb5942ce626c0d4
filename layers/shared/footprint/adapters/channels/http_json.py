"""JSON over HTTP POST for the webhook-style channels (webhook, SMS relay, Zalo ZNS relay).

Only http and https URLs are accepted and redirects are never followed (http.client, not urllib):
a webhook that answers 3xx is recorded as failed, instead of the body being replayed to (or a GET
sent to) another place.
2xx means delivered; 408, 425, 429 and 5xx may pass later (RetryableDeliveryError, SQS retries,
not before the reply's ``Retry-After``); any other status is a permanent refusal.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from footprint.services.retries import RetryableDeliveryError
from footprint.services.send import DeliveryResult

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
    connect_to: str | None = None,
) -> HttpReply:
    """POST ``body``; redirects are answers, never followed. ``connect_to`` pins the connection to an
    address already checked (public_urls.check_public_url), so the name is not resolved again: a
    DNS answer that changes after the check (rebinding) cannot aim the request elsewhere. TLS still
    verifies the certificate against the URL's host name."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ALLOWED_SCHEMES or not parts.hostname:
        raise InvalidEndpointError(f"not an http(s) URL: {url[:200]!r}")
    try:
        port = parts.port
    except ValueError as error:
        raise InvalidEndpointError(f"not an http(s) URL: {url[:200]!r}") from error
    connection = _connection(parts.scheme.lower(), parts.hostname, port, timeout, connect_to)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request_headers = {"Content-Type": content_type, "User-Agent": "footprint-send", **(headers or {})}
    try:
        connection.request("POST", target, body=body, headers=request_headers)
        response = connection.getresponse()
        with response:
            wait = retry_after_seconds(response.headers) if response.status >= 400 else None
            return HttpReply(response.status, _text(response.read(MAX_REPLY_BYTES)), wait)
    except (http.client.HTTPException, OSError) as error:
        raise RetryableDeliveryError(f"{parts.hostname}: {error}") from error
    finally:
        connection.close()


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int | None, timeout: float, address: str) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int | None, timeout: float, address: str) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def _connection(
    scheme: str, host: str, port: int | None, timeout: float, connect_to: str | None
) -> http.client.HTTPConnection:
    if connect_to is None:
        if scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=timeout, context=ssl.create_default_context())
        return http.client.HTTPConnection(host, port, timeout=timeout)
    if scheme == "https":
        return _PinnedHTTPSConnection(host, port, timeout, connect_to)
    return _PinnedHTTPConnection(host, port, timeout, connect_to)


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
