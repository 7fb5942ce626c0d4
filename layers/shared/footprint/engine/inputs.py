"""What the engine reads: the input that moves a visitor (an event or a wake-up) and a view of
the visitor's profile. The service builds these from stored items; the engine never loads anything."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from footprint.models.consent import OPT_IN, ChannelConsent
from footprint.models.events import TrackedEvent, check_event_time
from footprint.models.journey import Channel, EventName
from footprint.models.profile import Channel as ProfileChannel
from footprint.models.profile import Profile
from footprint.models.timing import UtcDatetime, as_utc


def _event_time(moment: datetime) -> datetime:
    moment = as_utc(moment)
    problem = check_event_time(moment)
    if problem:
        raise ValueError(problem)
    return moment


# An event's time, within the bounds every event has (footprint.models.events).
EventTime = Annotated[datetime, AfterValidator(_event_time)]


class EventInput(BaseModel):
    """Something the visitor did (or that happened to them: a message was clicked, dismissed...)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["event"] = "event"
    id: str = Field(min_length=1)  # the event's messageId: the dedupe key
    name: EventName  # canonical snake_case, as journeys name events
    properties: dict[str, Any] = Field(default_factory=dict)
    timestamp: EventTime

    @classmethod
    def from_tracked(cls, event: TrackedEvent) -> EventInput:
        return cls(
            id=event.message_id,
            name=event.canonical_event,
            properties=dict(event.properties),
            timestamp=event.timestamp,
        )


class WakeUp(BaseModel):
    """A timer the engine asked for (ScheduleWakeUp), delivered back to it when due.

    It carries what the service needs to load the right items: the profile, the journey and the
    version the enrollment is pinned to."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["wake_up"] = "wake_up"
    id: str
    enrollment_id: str
    profile_id: str
    journey_id: str
    journey_version: int
    node_id: str
    token: str
    due_at: UtcDatetime


EngineInput = Annotated[EventInput | WakeUp, Field(discriminator="kind")]

# Onsite channels need no address or consent (the visitor is on the site); webhooks reach a system.
ALWAYS_REACHABLE: frozenset[Channel] = frozenset({"onsite_form", "onsite_push", "webhook"})
# The channels that need an address and consent, with the profile's name for each.
_CONSENTED_CHANNELS: tuple[tuple[Channel, ProfileChannel], ...] = (
    ("web_push", "web_push"),
    ("email", "email"),
    ("sms", "sms"),
    ("zalo_zns", "zalo_zns"),
)


class ProfileView(BaseModel):
    """The part of a profile journeys read.

    ``event_history`` maps an event name to recent timestamps (for "did X in the last N days");
    ``reachable_channels`` lists the channels with an address and consent right now (the onsite
    channels and webhooks are always reachable)."""

    model_config = ConfigDict(frozen=True)

    id: str
    # The source (site or app) the profile belongs to, for journeys limited to some sources.
    source_id: str | None = None
    timezone: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    lifecycle_stage: str | None = None
    reachable_channels: frozenset[Channel] = frozenset()
    # Channels with a deliverable address whatever the consent (for transactional messages).
    deliverable_channels: frozenset[Channel] = frozenset()
    event_history: dict[str, list[UtcDatetime]] = Field(default_factory=dict)

    def can_reach(self, channel: Channel) -> bool:
        return channel in ALWAYS_REACHABLE or channel in self.reachable_channels

    def can_deliver(self, channel: Channel) -> bool:
        """Whether a transactional message can reach the visitor (consent is not asked)."""
        return self.can_reach(channel) or channel in self.deliverable_channels

    def attribute(self, path: str) -> tuple[bool, Any]:
        """(found, value) of an attribute; ``tags``, ``lifecycle_stage``, ``timezone`` and ``id``
        are the profile's own fields, anything else is looked up in ``attributes`` (dotted paths)."""
        if path in ("tags", "lifecycle_stage", "timezone", "id"):
            value = getattr(self, path)
            return value is not None, value
        return lookup(self.attributes, path)

    @classmethod
    def from_profile(cls, profile: Profile, consent: ChannelConsent = OPT_IN) -> ProfileView:
        """The view of a stored profile: traits, addresses and counters become attributes; ``consent``
        is its source's consent policy (which channels are opt-in)."""
        attributes: dict[str, Any] = {
            **profile.traits,
            "email": profile.email,
            "phone": profile.phone,
            "is_known": profile.is_known,
            "is_returning": profile.is_returning,
            "visit_count": profile.visit_count,
            "page_view_count": profile.page_view_count,
            "event_count": profile.event_count,
            "event_counts": dict(profile.event_counts),
            "first_seen_at": profile.first_seen_at,
            "last_seen_at": profile.last_seen_at,
            "last_viewed_product": profile.last_viewed_product,
            "first_touch": profile.first_touch.model_dump() if profile.first_touch else None,
            "last_touch": profile.last_touch.model_dump() if profile.last_touch else None,
        }
        reachable = frozenset(
            channel
            for channel, profile_channel in _CONSENTED_CHANNELS
            if profile.reachable_on(profile_channel, consent)
        )
        deliverable = frozenset(
            channel for channel, profile_channel in _CONSENTED_CHANNELS if profile.deliverable_on(profile_channel)
        )
        return cls(
            id=profile.profile_id,
            source_id=profile.source_id,
            timezone=profile.timezone,
            attributes={key: value for key, value in attributes.items() if value is not None},
            tags=list(profile.tags),
            lifecycle_stage=profile.lifecycle_stage,
            reachable_channels=reachable,
            deliverable_channels=deliverable,
            event_history={name: list(stamps) for name, stamps in profile.recent_events.items()},
        )


def lookup(data: dict[str, Any], path: str) -> tuple[bool, Any]:
    """(found, value) for a key or a dotted path into nested mappings; an exact key wins."""
    if path in data:
        return True, data[path]
    current: Any = data
    for part in path.split("."):
        if not isinstance(current, dict) or part not in current:
            return False, None
        current = current[part]
    return True, current
