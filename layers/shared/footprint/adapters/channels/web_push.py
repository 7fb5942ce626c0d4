"""Web push (RFC 8030) to every browser the visitor subscribed, encrypted (RFC 8291, aes128gcm)
and signed with the stack's VAPID key (RFC 8292) by pywebpush.

What a user configures: a Secrets Manager secret named by VAPID_SECRET_NAME holding JSON
``{"private_key_pem": "-----BEGIN PRIVATE KEY-----...", "public_key": "<base64url, uncompressed
P-256 point>", "subject": "mailto:ops@example.com"}``; the snippet subscribes browsers with that
``public_key`` as ``applicationServerKey``.

Content of a web push step (Liquid-rendered; models.journey.MessageContent): ``title``, ``body``,
``url`` (opened on click), ``icon``, ``image``, ``badge``, ``actions`` (up to two buttons, each
``{action, title, url}``), ``tag`` (defaults to the journey id, so a later push of the same
journey replaces an unread earlier one), ``require_interaction``, and for the push service
(RFC 8030) ``ttl`` (seconds it keeps the push for an offline browser), ``urgency`` (very-low,
low, normal, high) and ``topic`` (a newer push of the same topic replaces an undelivered one).
The browser's service worker (footprint-sw.js) receives the JSON of :func:`push_payload`.

Before any POST, the endpoint is checked again (footprint.adapters.channels.public_urls): https, a
public host name, every address it resolves to public; a refused endpoint is a permanent failure of
that subscription. The stack parameter AllowLoopbackDestinations admits loopback push services
(the local stack, tests).

Outcomes per subscription: 201 delivered; 404/410 subscription gone (permanent); 429, 5xx and
network errors retry; other 4xx (bad VAPID key, payload too large) are permanent. With several
subscriptions, one delivery is enough to call the message sent: retrying would send it again to
the browsers that already got it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from py_vapid import Vapid, Vapid01
from pywebpush import WebPushException, webpush
from requests.adapters import HTTPAdapter
from requests.models import PreparedRequest, Response
from requests.sessions import Session

from footprint.adapters.channels.public_urls import IpAddress, Resolver, UnsafeUrlError, check_public_url, resolve_host
from footprint.models.messages import OutgoingMessage
from footprint.models.profile import Profile, WebPushSubscription
from footprint.services.retries import RetryableDeliveryError
from footprint.services.send import DeliveryResult

DEFAULT_TTL_SECONDS = 24 * 60 * 60
DEFAULT_TIMEOUT_SECONDS = 10.0
GONE_STATUSES = frozenset({404, 410})
RETRYABLE_STATUSES = frozenset({408, 425, 429})
URGENCIES = frozenset({"very-low", "low", "normal", "high"})


class VapidKeyError(ValueError):
    """The VAPID secret does not hold a usable key pair."""


@dataclass(frozen=True)
class VapidKeys:
    signer: Vapid01
    public_key: str
    subject: str


def vapid_keys_from_secret(secret: Mapping[str, Any]) -> VapidKeys:
    """Parse the secret's JSON (see the module docstring)."""
    try:
        pem = str(secret["private_key_pem"]).strip().encode()
        subject = str(secret["subject"])
        # pywebpush does not take a PEM string as the key; Vapid.from_pem does.
        signer = Vapid.from_pem(pem)
    except (KeyError, ValueError, TypeError) as error:
        raise VapidKeyError(f"VAPID secret unusable: {type(error).__name__}") from error
    return VapidKeys(signer=signer, public_key=str(secret.get("public_key", "")), subject=subject)


class CachedVapidKeys:
    """Parses the secret again only when its content changes (the secret itself is cached upstream)."""

    def __init__(self, read_secret: Callable[[], Mapping[str, Any]]) -> None:
        self.read_secret = read_secret
        self._lock = threading.Lock()
        self._parsed: tuple[str, VapidKeys] | None = None

    def __call__(self) -> VapidKeys:
        secret = self.read_secret()
        fingerprint = json.dumps(secret, sort_keys=True, default=str)
        with self._lock:
            if self._parsed is None or self._parsed[0] != fingerprint:
                self._parsed = (fingerprint, vapid_keys_from_secret(secret))
            return self._parsed[1]


@dataclass
class _Attempts:
    delivered: int = 0
    gone: list[str] = field(default_factory=list)  # endpoints the push service says no longer exist
    refused: list[str] | None = None
    retryable: list[str] | None = None

    def refuse(self, reason: str) -> None:
        self.refused = [*(self.refused or []), reason]

    def retry(self, reason: str) -> None:
        self.retryable = [*(self.retryable or []), reason]


class WebPushSender:
    def __init__(
        self,
        keys: Callable[[], VapidKeys],
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        default_ttl: int = DEFAULT_TTL_SECONDS,
        session: requests.Session | None = None,
        allow_loopback: bool = False,
        resolve: Resolver = resolve_host,
    ) -> None:
        self.keys = keys
        self.timeout = timeout
        self.default_ttl = default_ttl
        # None: each push gets a session pinned to the address just checked (pinned_session); a test may
        # hand in a session with a recording transport instead.
        self.session = session
        self.allow_loopback = allow_loopback
        self.resolve = resolve

    def send(self, message: OutgoingMessage, profile: Profile, rendered: Mapping[str, Any]) -> DeliveryResult:
        try:
            keys = self.keys()
        except VapidKeyError as error:
            raise RetryableDeliveryError(str(error)) from error
        payload = json.dumps(push_payload(message, rendered, profile), ensure_ascii=False)
        ttl = _int(rendered.get("ttl"), self.default_ttl)
        urgency = str(rendered.get("urgency") or "normal")
        headers: dict[str, str | int | float] = {"Urgency": urgency if urgency in URGENCIES else "normal"}
        if rendered.get("topic"):
            headers["Topic"] = str(rendered["topic"])
        attempts = _Attempts()
        for subscription in profile.web_push_subscriptions:
            self._push(subscription, payload, keys=keys, ttl=ttl, headers=headers, attempts=attempts)
        return _outcome(attempts, len(profile.web_push_subscriptions))

    def _push(
        self,
        subscription: WebPushSubscription,
        payload: str,
        *,
        keys: VapidKeys,
        ttl: int,
        headers: dict[str, str | int | float],
        attempts: _Attempts,
    ) -> None:
        try:
            # At send time, not only when subscribed: a name may point elsewhere by now (DNS rebinding).
            checked = check_public_url(subscription.endpoint, allow_loopback=self.allow_loopback, resolve=self.resolve)
        except UnsafeUrlError as error:
            attempts.refuse(f"endpoint refused: {error}")
            return
        # ...and the POST goes to the address that was checked, not to what a second lookup returns.
        session = self.session or pinned_session(subscription.endpoint, checked[0])
        try:
            webpush(
                subscription_info={"endpoint": subscription.endpoint, "keys": dict(subscription.keys)},
                data=payload,
                vapid_private_key=keys.signer,
                # A fresh dict per call: pywebpush writes `aud` and `exp` into it.
                vapid_claims={"sub": keys.subject},
                timeout=self.timeout,
                ttl=ttl,
                headers=headers,
                requests_session=session,
            )
        except WebPushException as error:
            status = error.status_code
            if status in GONE_STATUSES:
                attempts.gone.append(subscription.endpoint)
            elif status is not None and (status in RETRYABLE_STATUSES or status >= 500):
                attempts.retry(f"push service answered {status}")
            else:
                attempts.refuse(f"push service refused: {status or error.message}")
        except requests.RequestException as error:
            attempts.retry(f"push service unreachable: {type(error).__name__}")
        except (ValueError, TypeError, KeyError) as error:
            # Malformed subscription keys (p256dh not a P-256 point, auth missing, ...).
            attempts.refuse(f"invalid subscription: {type(error).__name__}")
        else:
            attempts.delivered += 1
        finally:
            if session is not self.session:
                session.close()


class PinnedAdapter(HTTPAdapter):
    """A requests transport that connects to one address already checked by :func:`check_public_url`,
    whatever the name resolves to by the time the connection opens (DNS rebinding), while TLS still
    sends the host name (SNI) and checks the certificate against it, and the Host header keeps it."""

    def __init__(self, address: IpAddress, host: str) -> None:
        self.address = address
        self.host = host
        super().__init__(max_retries=0)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any) -> None:
        # urllib3 drops these for plain http (loopback push services in development).
        pool_kwargs |= {"server_hostname": self.host, "assert_hostname": self.host}
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)

    def send(self, request: PreparedRequest, *args: Any, **kwargs: Any) -> Response:
        parts = urlsplit(request.url or "")
        literal = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        request.headers["Host"] = parts.netloc
        request.url = urlunsplit(parts._replace(netloc=literal + (f":{parts.port}" if parts.port else "")))
        return super().send(request, *args, **kwargs)


def pinned_session(url: str, address: IpAddress) -> Session:
    """A session whose every request goes to ``address`` for ``url``'s host; it follows no redirect."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    session = Session()
    session.max_redirects = 0
    adapter = PinnedAdapter(address, host)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def push_payload(message: OutgoingMessage, rendered: Mapping[str, Any], profile: Profile) -> dict[str, Any]:
    """What the service worker receives: the notification, and what its click reports back as
    ``message_clicked`` (the message's ids, and the visitor's anonymous id, because a service
    worker cannot read the page's cookie). Only the subscribed browser can decrypt it."""
    actions = rendered.get("actions")
    return {
        "title": str(rendered.get("title") or ""),
        "body": str(rendered.get("body") or ""),
        "url": str(rendered.get("url") or ""),
        "icon": str(rendered.get("icon") or ""),
        "image": str(rendered.get("image") or ""),
        "badge": str(rendered.get("badge") or ""),
        "tag": str(rendered.get("tag") or message.journey_id),
        "require_interaction": bool(rendered.get("require_interaction")),
        "actions": [
            {"action": str(a.get("action")), "title": str(a.get("title") or ""), "url": str(a.get("url") or "")}
            for a in (actions if isinstance(actions, list) else [])
            if isinstance(a, Mapping)
        ],
        "message_id": message.idempotency_key,
        "journey_id": message.journey_id,
        "node_id": message.node_id,
        "enrollment_id": message.enrollment_id,
        "channel": "web_push",
        "anonymous_id": profile.anonymous_ids[-1] if profile.anonymous_ids else None,
    }


def _outcome(attempts: _Attempts, subscriptions: int) -> DeliveryResult:
    notes = [*(attempts.refused or []), *(attempts.retryable or [])]
    gone = tuple(attempts.gone)
    if gone:
        notes.append(f"{len(gone)} subscription(s) gone (404/410)")
    if attempts.delivered:
        detail = f"delivered to {attempts.delivered} of {subscriptions} subscription(s)"
        return DeliveryResult("sent", "; ".join([detail, *notes]), gone_addresses=gone)
    if attempts.retryable:
        raise RetryableDeliveryError("; ".join(notes))
    if gone and not attempts.refused:
        return DeliveryResult("failed", "subscription gone (404/410)", gone_addresses=gone)
    return DeliveryResult("failed", "; ".join(notes) or "no subscription", gone_addresses=gone)


def _int(value: object, default: int) -> int:
    try:
        return max(0, int(str(value)))
    except ValueError:
        return default
