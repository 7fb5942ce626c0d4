"""Signed email links: what a token carries, and that no changed byte passes."""

from __future__ import annotations

import pytest

from footprint.email_links import (
    InvalidLinkError,
    LinkClaims,
    LinkSigner,
    decode_tag,
    encode_tag,
    message_links,
    sign,
    verify,
)

KEY = b"k" * 64
CLAIMS = LinkClaims(
    kind="unsubscribe",
    profile_id="p_0123",
    channel="email",
    message_id="cart-abandonment.v1.enr_1.email_reminder.1",
    journey_id="cart-abandonment",
    node_id="email_reminder",
    enrollment_id="enr_1",
)


def test_a_token_carries_profile_channel_and_message_and_verifies_with_the_key() -> None:
    assert verify(KEY, sign(KEY, CLAIMS), "unsubscribe") == CLAIMS


def test_a_click_token_carries_its_url_and_is_no_unsubscribe_token() -> None:
    signer = LinkSigner("https://track.example.com/", lambda: KEY)
    url = signer.click_url(CLAIMS, "https://shop.example.com/cart?a=1&b=Váy")
    token = url.split("token=", 1)[1]

    assert url.startswith("https://track.example.com/v1/email/click?token=")
    assert verify(KEY, token, "click").url == "https://shop.example.com/cart?a=1&b=Váy"
    with pytest.raises(InvalidLinkError):
        verify(KEY, token, "unsubscribe")


@pytest.mark.parametrize("position", [0, 5, 20, -3, -1])
def test_any_changed_character_is_refused(position: int) -> None:
    token = sign(KEY, CLAIMS)
    changed = "B" if token[position] != "B" else "C"
    tampered = token[:position] + changed + token[position + 1 :] if position != -1 else token[:-1] + changed

    with pytest.raises(InvalidLinkError):
        verify(KEY, tampered, "unsubscribe")


@pytest.mark.parametrize("token", [None, "", "abc", "a.b.c", "x" * 5000, "é.é"])
def test_malformed_tokens_are_refused(token: str | None) -> None:
    with pytest.raises(InvalidLinkError):
        verify(KEY, token, "unsubscribe")


def test_another_key_does_not_verify() -> None:
    with pytest.raises(InvalidLinkError):
        verify(b"another key of enough length!!!!", sign(KEY, CLAIMS), "unsubscribe")


def test_message_ids_survive_the_tag_alphabet() -> None:
    encoded = encode_tag("cart-abandonment.v1.enr_1.email_reminder.1")
    assert set(encoded) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
    assert decode_tag(encoded) == "cart-abandonment.v1.enr_1.email_reminder.1"


def test_message_links_reads_absolute_links_as_a_browser_does() -> None:
    html = (
        '<a href="https://a.example/x?u=1&amp;v=2">A</a> <a href=\'http://b.example\'>B</a> <a href="mailto:x@y">m</a>'
    )
    assert message_links(html) == ["https://a.example/x?u=1&v=2", "http://b.example"]
