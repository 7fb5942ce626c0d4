"""The parts of a journey definition that stack-wide settings, messages and send share with journeys:
channels, durations, times of day, time zones, quiet hours and UTC datetimes.

Kept apart from ``footprint.models.journey`` (which re-exports them) so that what needs only these (the
messaging policy in settings, queued messages, send's quiet hours) does not build the journey models.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    model_validator,
)

from footprint.models.channels import MessageChannel

Channel = MessageChannel
CHANNELS: tuple[Channel, ...] = get_args(MessageChannel)
# Channels that interrupt the visitor away from the site; onsite messages only show while they
# browse and webhooks reach a system, so quiet hours leave those alone by default.
INTERRUPTING_CHANNELS: tuple[Channel, ...] = ("web_push", "email", "sms", "zalo_zns")
VISITOR_CHANNELS: tuple[Channel, ...] = tuple(c for c in CHANNELS if c != "webhook")

# ---------------------------------------------------------------------------------------------
# Durations and times of day
# ---------------------------------------------------------------------------------------------

# The longest wait, window or timeout a journey may have: ten years is beyond any journey, and keeps
# every time the engine computes (an event's time plus its waits) a date.
MAX_DURATION = timedelta(days=3653)
_ISO_DURATION = re.compile(
    r"P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?",
    re.IGNORECASE,
)
_SHORT_DURATION = re.compile(
    r"(?:(?P<weeks>\d+)\s*w)?\s*(?:(?P<days>\d+)\s*d)?\s*(?:(?P<hours>\d+)\s*h)?\s*"
    r"(?:(?P<minutes>\d+)\s*m)?\s*(?:(?P<seconds>\d+(?:\.\d+)?)\s*s)?",
    re.IGNORECASE,
)
DURATION_PATTERN = (
    r"^(?:[Pp](?:\d+[Ww])?(?:\d+[Dd])?(?:[Tt](?:\d+[Hh])?(?:\d+[Mm])?(?:\d+(?:\.\d+)?[Ss])?)?"
    r"|(?:\d+(?:\.\d+)?\s*[wdhmsWDHMS]\s*)+)$"
)


def parse_duration(value: object) -> timedelta:
    """``PT10S``, ``P1D``, ``10s``, ``1h30m``, ``2w`` or a number of seconds -> timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("a duration is a string like 'PT10S', '10s' or '1d', not a boolean")
    if isinstance(value, int | float):
        return _timedelta(seconds=value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError("a duration is a string like 'PT10S', '10s' or '1d'")
    text = value.strip()
    for pattern in (_ISO_DURATION, _SHORT_DURATION):
        match = pattern.fullmatch(text)
        if match and any(match.groupdict().values()) and not text.upper().endswith("T"):
            parts = {key: float(number) for key, number in match.groupdict().items() if number}
            return _timedelta(**parts)
    if text.upper().startswith("P") and re.search(r"[YM]", text.upper().split("T")[0]):
        raise ValueError(f"{value!r}: months and years have no fixed length; use days or weeks (e.g. P30D)")
    raise ValueError(f"{value!r} is not a duration; write e.g. 'PT10S', 'P1D', '10s', '15m', '1d' or '2w'")


def _timedelta(**parts: float) -> timedelta:
    try:
        return timedelta(**parts)
    except (OverflowError, ValueError) as error:  # over ~2.7 million years, or NaN
        raise ValueError("the duration is too long (or not a number)") from error


def format_duration(value: timedelta) -> str:
    """The ISO-8601 form of a duration (``P1DT2H``, ``PT10S``)."""
    total = value.total_seconds()
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    clock = "".join(f"{number:g}{unit}" for number, unit in ((hours, "H"), (minutes, "M"), (seconds, "S")) if number)
    text = "P" + (f"{days:g}D" if days else "") + (f"T{clock}" if clock else "")
    return text if text != "P" else "PT0S"


def _positive_duration(value: object) -> timedelta:
    duration = parse_duration(value)
    if duration <= timedelta(0):
        raise ValueError("a duration must be longer than zero")
    if duration > MAX_DURATION:
        raise ValueError(f"a duration must be at most {MAX_DURATION.days} days")
    return duration


_DURATION_SCHEMA = {
    "anyOf": [
        {"type": "string", "pattern": DURATION_PATTERN, "examples": ["PT10S", "P1D", "10s", "15m", "1d", "2w"]},
        {"type": "number", "exclusiveMinimum": 0, "description": "seconds"},
    ]
}
Duration = Annotated[
    timedelta,
    BeforeValidator(_positive_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(_DURATION_SCHEMA),
]


def parse_time_of_day(value: object) -> time:
    """``"09:00"`` or ``"21:30:00"`` -> time. Quote times in YAML."""
    if isinstance(value, time):
        return value
    if isinstance(value, str):
        try:
            parsed = time.fromisoformat(value.strip())
        except ValueError:
            pass
        else:
            if parsed.tzinfo is None:
                return parsed
    raise ValueError(f"{value!r} is not a time of day; write it in quotes as 'HH:MM', e.g. '09:00'")


TimeOfDay = Annotated[
    time,
    BeforeValidator(parse_time_of_day),
    PlainSerializer(lambda value: value.strftime("%H:%M:%S" if value.second else "%H:%M"), return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$", "examples": ["09:00"]}),
]


def _timezone_name(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"{value!r} is not an IANA time zone (e.g. 'Asia/Ho_Chi_Minh')") from error
    return value


TimeZoneName = Annotated[str, BeforeValidator(lambda value: _timezone_name(str(value)))]


class QuietHours(BaseModel):
    """No message on ``channels`` between ``start`` and ``end`` in the visitor's time zone
    (``start`` after ``end`` spans midnight). ``hold`` sends at the end of quiet hours, ``skip``
    drops the message and moves on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: TimeOfDay
    end: TimeOfDay
    behaviour: Literal["hold", "skip"] = "hold"
    channels: list[Channel] = Field(default_factory=lambda: list(INTERRUPTING_CHANNELS))

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("quiet hours start and end must differ")
        return self


def as_utc(moment: datetime) -> datetime:
    """Aware UTC; a naive datetime is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]
