"""E.164 normalisation of the numbers visitors type, and SMS parts as operators bill them."""

from __future__ import annotations

import pytest

from footprint.sms import sms_segments, to_e164


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("0912345678", "+84912345678"),
        ("0912 345 678", "+84912345678"),
        ("091-234-5678", "+84912345678"),
        ("84912345678", "+84912345678"),
        ("+84912345678", "+84912345678"),
        ("+84 (0) 912 345 678", "+84912345678"),
        ("0084 912 345 678", "+84912345678"),
        ("02838123456", "+842838123456"),  # a Hồ Chí Minh City landline
        ("+1 (415) 555-0100", "+14155550100"),
        ("912345678", "+84912345678"),  # the leading 0 lost in a spreadsheet
        ("12", None),
        ("", None),
        ("not a number", None),
        ("+0123456789", None),
    ],
)
def test_numbers_as_visitors_type_them_become_e164(typed: str, expected: str | None) -> None:
    assert to_e164(typed) == expected


def test_plain_text_is_gsm7_and_160_characters_a_part() -> None:
    assert sms_segments("x" * 160) == sms_segments("x" * 160)
    assert (sms_segments("x" * 160).encoding, sms_segments("x" * 160).parts) == ("GSM-7", 1)
    assert sms_segments("x" * 161).parts == 2  # 153 + 8
    assert sms_segments("x" * 306).parts == 2
    assert sms_segments("x" * 307).parts == 3


def test_extension_characters_count_twice() -> None:
    assert sms_segments("€" * 80).characters == 160
    assert sms_segments("€" * 81).parts == 2


def test_vietnamese_with_diacritics_is_ucs2_and_70_characters_a_part() -> None:
    text = "Chào chị Lan, váy nữ phong cách hè đang giảm 10%"
    assert sms_segments(text).encoding == "UCS-2"
    assert sms_segments("ư" * 70).parts == 1
    assert sms_segments("ư" * 71).parts == 2  # 67 + 4
    assert sms_segments("ư" * 134).parts == 2
    assert sms_segments("ư" * 135).parts == 3


def test_without_diacritics_vietnamese_stays_gsm7() -> None:
    assert sms_segments("Chao chi Lan, vay nu he giam 10%").encoding == "GSM-7"
