"""The SSRF guard for URLs that come from outside: web push endpoints (and, later, webhook URLs).

The public write key lets anyone report a ``web_push_subscribed`` event, so a push endpoint is an
address chosen by a stranger; the send function must never POST to the stack's own network, the
instance metadata service or a private range. Two checks, one rule set:

- :func:`check_url_syntax` (no DNS; track runs it when it accepts a subscription): ``https``, a host
  name (no IP literal, no ``localhost``, no ``.local``/``.internal``/``.localhost`` names), no
  credentials in the URL, port 443.
- :func:`check_public_url` (send runs it just before each POST): the syntax check, then every
  address the host resolves to must be public (not loopback, private, link-local, shared, reserved,
  multicast or the metadata address). A name may resolve differently later (DNS rebinding), which
  is why send checks again at the moment it sends.

``allow_loopback`` (the stack parameter AllowLoopbackDestinations, true on the local stack and in
tests) additionally admits plain ``http`` to loopback hosts (127.0.0.0/8, ::1, localhost), any port:
a push service a test runs on the same machine. Private ranges stay refused even then.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from urllib.parse import SplitResult, urlsplit

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]

MAX_URL_LENGTH = 2048
LOCAL_NAME_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa", ".lan")
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


class UnsafeUrlError(ValueError):
    """A URL Footprint will not call, with the reason (safe to show to the sender)."""


def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (A and AAAA)."""
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as error:
        raise UnsafeUrlError(f"the host {host!r} does not resolve") from error
    return [str(info[4][0]) for info in infos]


def check_url_syntax(url: str, *, allow_loopback: bool = False) -> SplitResult:
    """The parsed URL when its form is acceptable (no DNS lookup); raises UnsafeUrlError."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise UnsafeUrlError(f"must be a URL of at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise UnsafeUrlError("is not a valid URL") from error
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise UnsafeUrlError("has no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrlError("must not carry credentials")
    if allow_loopback and _is_loopback_host(host):
        if parts.scheme not in ("http", "https"):
            raise UnsafeUrlError("must be an http(s) URL")
        return parts
    if parts.scheme != "https":
        raise UnsafeUrlError("must be an https URL")
    if port not in (None, 443):
        raise UnsafeUrlError("must use the https port (443)")
    if _ip_literal(host) is not None:
        raise UnsafeUrlError("must name a host, not an IP address")
    if host in LOOPBACK_NAMES or host.endswith(LOCAL_NAME_SUFFIXES) or "." not in host:
        raise UnsafeUrlError(f"the host {host!r} is not a public name")
    return parts


def check_public_url(url: str, *, allow_loopback: bool = False, resolve: Resolver = resolve_host) -> list[IpAddress]:
    """The addresses ``url``'s host resolves to, when every one is public; raises UnsafeUrlError."""
    parts = check_url_syntax(url, allow_loopback=allow_loopback)
    host = (parts.hostname or "").rstrip(".").lower()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    literal = _ip_literal(host)
    names = [str(literal)] if literal is not None else resolve(host, port)
    addresses = [_ip_literal(name.split("%", 1)[0]) for name in names]
    if not addresses or any(address is None for address in addresses):
        raise UnsafeUrlError(f"the host {host!r} does not resolve to IP addresses")
    checked = [address for address in addresses if address is not None]
    for address in checked:
        if allow_loopback and address.is_loopback:
            continue
        if not is_public_address(address):
            raise UnsafeUrlError(f"the host {host!r} resolves to a non-public address")
    return checked


def is_public_address(address: IpAddress) -> bool:
    """Globally routable unicast: not loopback, private, link-local (the metadata service), shared
    (100.64/10), reserved, multicast or unspecified; IPv4-mapped IPv6 judged as its IPv4."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def _is_loopback_host(host: str) -> bool:
    literal = _ip_literal(host)
    if literal is not None:
        return literal.is_loopback
    return host in LOOPBACK_NAMES or host.endswith(".localhost")


def _ip_literal(host: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
