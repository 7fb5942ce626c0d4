"""Pressure across journeys: what the whole stack allows per visitor, whatever journey sends.

A journey's own ``frequency_cap`` and ``quiet_hours`` hold inside that journey (the engine applies
them). A visitor in three journeys could still get three pushes in one evening, so the stack has a
messaging policy on top, checked by send just before each provider call: at most N messages per
channel per visitor per local calendar day and per ISO week (Pinpoint's daily cap, Braze's global
frequency capping), and default quiet hours for journeys that set none. Onsite channels are exempt
unless the policy names them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from footprint.models.channels import MessageChannel
from footprint.models.timing import QuietHours


class ChannelCap(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    per_day: int | None = Field(default=None, ge=1)
    per_week: int | None = Field(default=None, ge=1)


class MessagingPolicy(BaseModel):
    """The stack's ``MessagingPolicy`` parameter (JSON), e.g.
    ``{"frequency_caps": {"web_push": {"per_day": 1, "per_week": 3}, "sms": {"per_week": 2}},
    "quiet_hours": {"start": "21:00", "end": "08:00"}, "timezone": "Asia/Ho_Chi_Minh"}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    frequency_caps: dict[MessageChannel, ChannelCap] = Field(default_factory=dict)
    # For journeys without quiet hours of their own; a journey's own replace these.
    quiet_hours: QuietHours | None = None
    # The visitor's local day when their profile has no time zone and the journey names none.
    timezone: str = "Asia/Ho_Chi_Minh"


@dataclass(frozen=True)
class CapWindow:
    """One counter a send must fit in: ``key`` names the visitor's local day or ISO week."""

    key: str
    limit: int
    expires_at: datetime
    label: str


def cap_windows(policy: MessagingPolicy, channel: MessageChannel, local_now: datetime) -> list[CapWindow]:
    """The counters a message on ``channel`` at ``local_now`` (the visitor's local time) counts in."""
    cap = policy.frequency_caps.get(channel)
    if cap is None:
        return []
    windows: list[CapWindow] = []
    day = local_now.date()
    if cap.per_day is not None:
        label = f"at most {cap.per_day} {channel} per day across journeys"
        windows.append(CapWindow(f"day#{day.isoformat()}", cap.per_day, local_now + timedelta(days=2), label))
    if cap.per_week is not None:
        year, week, _ = day.isocalendar()
        label = f"at most {cap.per_week} {channel} per week across journeys"
        windows.append(CapWindow(f"week#{year}-W{week:02d}", cap.per_week, local_now + timedelta(days=8), label))
    return windows
