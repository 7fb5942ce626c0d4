"""A tracking call as Footprint stores it, after validation and clock-skew correction.

The HTTP payloads (Segment's spec) are parsed in ``footprint.models.segment``; this is the
normalised form written to EventsTable and read back from its stream by evaluate.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

EventType = Literal["track", "identify", "page", "screen", "alias", "group"]
# Who vouches for the identity a call names (set by track, see footprint.identity and the trust model
# in docs/architecture.md): "server" = a trusted source's write key, which only a site's backend
# holds; "signed" = a browser call whose userId carries a valid user_hash; "browser" = nobody (the
# public write key alone). Events stored before the trust model have none and count as "browser".
Trust = Literal["browser", "signed", "server"]

# The bounds of an event, one definition for the tracking API (which answers 400 outside them), the
# stored event evaluate reads back and the engine's inputs (a record outside them is poison).
# Journeys name events in their canonical form (canonical_event_name), at most this long.
MAX_EVENT_NAME_LENGTH = 128
# Event times the engine can do arithmetic on: a journey adds its waits (at most
# footprint.models.timing.MAX_DURATION) to them, which must stay far from datetime's year 9999.
EARLIEST_EVENT_TIME = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_EVENT_TIME = datetime(2100, 1, 1, tzinfo=UTC)
# How far after its receipt an event may be stamped, once corrected for clock skew: a client whose
# clock runs ahead and that sends no sentAt (which would correct it) gets this much slack, no more.
MAX_CLOCK_AHEAD = timedelta(days=1)


class TrackedEvent(BaseModel):
    """One accepted call (track, identify, page, ...) from one source."""

    model_config = ConfigDict(frozen=True)

    source_id: str
    message_id: str
    type: EventType
    # `event` for track calls; page/screen calls get their name in `name` and `event` = "page_viewed".
    event: str | None = None
    name: str | None = None
    anonymous_id: str | None = None
    user_id: str | None = None
    previous_id: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)
    # When it happened, corrected for the client's clock skew (Segment's rule).
    timestamp: datetime
    original_timestamp: datetime | None = None
    sent_at: datetime | None = None
    received_at: datetime
    trust: Trust = "browser"

    @model_validator(mode="after")
    def _within_event_bounds(self) -> TrackedEvent:
        if self.type == "track":
            event_name_problem = check_event_name(self.event or "")
            if event_name_problem:
                raise ValueError(f"event {event_name_problem}")
        timestamp_problem = check_event_timestamp(self.timestamp, received_at=self.received_at)
        if timestamp_problem:
            raise ValueError(f"timestamp {timestamp_problem}")
        received_problem = check_event_time(self.received_at)
        if received_problem:
            raise ValueError(f"received_at {received_problem}")
        return self

    @property
    def visitor_id(self) -> str:
        """The id the event arrived under: the device's anonymous id, else the user id."""
        return self.anonymous_id or self.user_id or ""

    @property
    def identity_verified(self) -> bool:
        """Whether the userId of this call is proven (a trusted source, or a valid user_hash)."""
        return self.trust != "browser"

    @property
    def canonical_event(self) -> str:
        """The event name journeys match on: snake_case, so Segment's spec names work too."""
        return canonical_event_name(self.event or self.type)


def canonical_event_name(name: str) -> str:
    """Segment's "Product Viewed" and Footprint's "product_viewed" are the same event."""
    return "_".join(name.strip().lower().replace("-", " ").split())


def check_event_name(name: str) -> str | None:
    """Why ``name`` cannot be an event name journeys match on (None if it can)."""
    canonical = canonical_event_name(name)
    if not canonical:
        return "must not be empty once normalised (spaces and hyphens only separate words)"
    if len(canonical) > MAX_EVENT_NAME_LENGTH:
        return f"must be at most {MAX_EVENT_NAME_LENGTH} characters once normalised to snake_case"
    return None


def check_event_time(moment: datetime) -> str | None:
    """Why ``moment`` cannot be an event's time (None if it can); a naive time is taken as UTC."""
    if not EARLIEST_EVENT_TIME <= _aware(moment) < LATEST_EVENT_TIME:
        return f"must be between {EARLIEST_EVENT_TIME:%Y-%m-%d} and {LATEST_EVENT_TIME:%Y-%m-%d} (UTC)"
    return None


def check_event_timestamp(timestamp: datetime, *, received_at: datetime) -> str | None:
    """Why ``timestamp`` cannot be the stored time of an event received at ``received_at``."""
    problem = check_event_time(timestamp)
    if problem is None and _aware(timestamp) > _aware(received_at) + MAX_CLOCK_AHEAD:
        hours = int(MAX_CLOCK_AHEAD.total_seconds() // 3600)
        problem = (
            f"must be at most {hours} hours after the request was received (send sentAt to correct a client clock)"
        )
    return problem


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
