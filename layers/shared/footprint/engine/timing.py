"""Time in the visitor's zone: the next 09:00 where they are, and whether it is quiet there now."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from footprint.models.timing import QuietHours


def visitor_zone(timezone: str | None, default: str) -> ZoneInfo:
    """The visitor's IANA zone; a missing or unknown one falls back to the journey's default."""
    for name in (timezone, default):
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def next_local_time(after: datetime, at: time, zone: ZoneInfo) -> datetime:
    """The first moment at or after ``after`` when the clock in ``zone`` shows ``at`` (UTC).

    On a day when ``at`` does not exist (a DST gap) the moment is taken with the offset before the
    change, which lands just after the gap."""
    local = after.astimezone(zone)
    candidate = datetime.combine(local.date(), at, tzinfo=zone)
    if candidate.astimezone(UTC) < after:
        candidate = datetime.combine(local.date() + timedelta(days=1), at, tzinfo=zone)
    return candidate.astimezone(UTC)


def in_quiet_hours(moment: datetime, quiet: QuietHours, zone: ZoneInfo) -> bool:
    local = moment.astimezone(zone).time().replace(tzinfo=None)
    if quiet.start < quiet.end:
        return quiet.start <= local < quiet.end
    return local >= quiet.start or local < quiet.end  # spans midnight


def quiet_hours_end(moment: datetime, quiet: QuietHours, zone: ZoneInfo) -> datetime:
    return next_local_time(moment, quiet.end, zone)
