"""The SSRF guard shared by track (a subscription's form) and send (where its host resolves now)."""

from __future__ import annotations

import pytest

from footprint.adapters.channels.public_urls import UnsafeUrlError, check_public_url, check_url_syntax

PUBLIC = "https://fcm.googleapis.com/fcm/send/abc"


@pytest.mark.parametrize(
    "url",
    [
        PUBLIC,
        "https://updates.push.services.mozilla.com/wpush/v2/gAAAA",
        "https://web.push.apple.com/QGuQy:443/x",
        "https://fcm.googleapis.com:443/fcm/send/abc",
    ],
)
def test_push_services_urls_pass(url: str) -> None:
    check_url_syntax(url)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://fcm.googleapis.com/x", "https"),
        ("ftp://fcm.googleapis.com/x", "https"),
        ("https://10.1.2.3/x", "IP address"),
        ("https://8.8.8.8/x", "IP address"),
        ("https://[2001:4860::8888]/x", "IP address"),
        ("https://localhost/x", "public name"),
        ("https://push.localhost/x", "public name"),
        ("https://printer.local/x", "public name"),
        ("https://metadata.google.internal/x", "public name"),
        ("https://intranet/x", "public name"),
        ("https://a:b@fcm.googleapis.com/x", "credentials"),
        ("https://fcm.googleapis.com:8443/x", "port"),
        ("https://fcm.googleapis.com:99999/x", "valid URL"),
        ("https:///x", "no host"),
        ("", "URL"),
        ("https://x.example/" + "a" * 3000, "URL"),
    ],
)
def test_internal_or_odd_urls_are_refused(url: str, reason: str) -> None:
    with pytest.raises(UnsafeUrlError, match=reason):
        check_url_syntax(url)


def test_loopback_is_admitted_only_with_the_development_flag_and_never_private_ranges() -> None:
    for url in ("http://127.0.0.1:8080/push", "http://localhost:9000/p", "http://[::1]:81/p"):
        with pytest.raises(UnsafeUrlError):
            check_url_syntax(url)
        check_url_syntax(url, allow_loopback=True)
        assert check_public_url(url, allow_loopback=True, resolve=lambda host, port: ["127.0.0.1"])
    with pytest.raises(UnsafeUrlError):
        check_url_syntax("https://192.168.1.1/p", allow_loopback=True)


@pytest.mark.parametrize(
    "addresses",
    [
        ["127.0.0.1"],
        ["10.0.0.1"],
        ["172.16.5.4"],
        ["192.168.0.1"],
        ["169.254.169.254"],  # the instance metadata service
        ["100.64.0.1"],  # shared address space (carrier NAT)
        ["0.0.0.0"],
        ["224.0.0.1"],
        ["::1"],
        ["fe80::1%eth0"],
        ["fd00::1"],
        ["::ffff:10.0.0.1"],
        ["142.250.72.10", "10.0.0.1"],  # one bad answer is enough
        [],
        ["not-an-address"],
    ],
)
def test_a_name_resolving_to_any_non_public_address_is_refused(addresses: list[str]) -> None:
    with pytest.raises(UnsafeUrlError):
        check_public_url(PUBLIC, resolve=lambda host, port: addresses)


def test_a_name_resolving_to_public_addresses_passes_with_them() -> None:
    seen: list[tuple[str, int]] = []

    def resolve(host: str, port: int) -> list[str]:
        seen.append((host, port))
        return ["142.250.72.10", "2607:f8b0:4005:80c::200a"]

    assert [str(a) for a in check_public_url(PUBLIC, resolve=resolve)] == ["142.250.72.10", "2607:f8b0:4005:80c::200a"]
    assert seen == [("fcm.googleapis.com", 443)]
