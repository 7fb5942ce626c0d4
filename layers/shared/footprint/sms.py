"""Phone numbers in E.164 and SMS segment counting: pure functions, shared by send and validate.

**E.164.** Profiles keep numbers as the visitor typed them ("0912 345 678"); providers need
``+84912345678``. A number written internationally (``+84…``, ``0084…``, or ``84…`` when that makes
a valid Vietnamese mobile length) keeps its country code; a national one (a leading trunk ``0``)
takes the stack's default country calling code (84, Vietnam); a ``(0)`` after the country code is
dropped. Anything that is not 8 to 15 digits afterwards is not a phone number.

**Segments.** An SMS part holds 160 GSM-7 characters (153 when the message is split, the rest being
the concatenation header), or 70 UCS-2 characters (67 when split) as soon as one character is
outside GSM-7, which Vietnamese with diacritics always is (``ư``, ``ơ``, ``ế``...). Characters of the
GSM-7 extension table (``{ } [ ] ~ \\ | ^ €``) take two places. Operators bill per part.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_COUNTRY_CODE = "84"
_TRUNK_AFTER_COUNTRY = re.compile(r"^\+(\d{1,3})\s*\(0\)")
_NOT_DIGITS = re.compile(r"\D")

GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = "^{}\\[~]|€\f"
_GSM7 = frozenset(GSM7_BASIC)
_GSM7_EXT = frozenset(GSM7_EXTENSION)


def to_e164(phone: str, default_country_code: str = DEFAULT_COUNTRY_CODE) -> str | None:
    """``phone`` as ``+<country code><number>``, or None when it cannot be a phone number."""
    text = phone.strip()
    text = _TRUNK_AFTER_COUNTRY.sub(r"+\1", text)
    digits = _NOT_DIGITS.sub("", text)
    if text.startswith("+"):
        pass
    elif digits.startswith("00"):
        digits = digits[2:]
    elif digits.startswith("0"):
        digits = default_country_code + digits[1:]
    elif not (default_country_code == "84" and digits.startswith("84") and len(digits) in (11, 12)):
        digits = default_country_code + digits
    return f"+{digits}" if 8 <= len(digits) <= 15 and not digits.startswith("0") else None


@dataclass(frozen=True)
class SmsSegments:
    encoding: str  # "GSM-7" or "UCS-2"
    characters: int  # as the encoding counts them (GSM-7 extension characters count twice)
    parts: int


def sms_segments(text: str) -> SmsSegments:
    """How many billed parts ``text`` is (see the module docstring)."""
    if all(char in _GSM7 or char in _GSM7_EXT for char in text):
        length = sum(2 if char in _GSM7_EXT else 1 for char in text)
        single, multi, encoding = 160, 153, "GSM-7"
    else:
        # UCS-2 counts UTF-16 code units: a character outside the BMP (an emoji) takes two.
        length = len(text.encode("utf-16-le")) // 2
        single, multi, encoding = 70, 67, "UCS-2"
    parts = 1 if length <= single else -(-length // multi)
    return SmsSegments(encoding=encoding, characters=length, parts=parts)
