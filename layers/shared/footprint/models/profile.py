"""The visitor's 360° profile and the pure rules that fold events into it.

A profile starts anonymous (one browser's ``anonymousId``) and becomes a known contact when an
``identify`` call names a ``userId`` or traits such as email and phone. Folding is pure: the
evaluate function loads a profile, calls :func:`fold_event`, and writes the result back with a
conditional write, so the same rules run in tests, in the simulator and in Lambda.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field

from footprint.models.events import TrackedEvent

Channel = Literal["email", "sms", "zalo_zns", "web_push", "onsite", "webhook"]
ConsentState = Literal["granted", "denied"]

# A visit ends after 30 minutes without activity (the common analytics convention).
SESSION_GAP = timedelta(minutes=30)
# How many recent timestamps per event name the profile keeps for journey conditions
# ("viewed a product 3 times in the last 7 days").
RECENT_EVENTS_PER_NAME = 20
PRODUCT_VIEW_EVENTS = frozenset({"product_viewed"})
# Traits that are channel addresses rather than free attributes.
ADDRESS_TRAITS = {"email": "email", "phone": "phone"}


class TrafficSource(BaseModel):
    """Where a visit came from: UTM campaign fields, else the referrer's host, else direct."""

    model_config = ConfigDict(frozen=True)

    source: str = "direct"
    medium: str | None = None
    campaign: str | None = None
    term: str | None = None
    content: str | None = None
    referrer: str | None = None


class WebPushSubscription(BaseModel):
    """A browser's PushSubscription.toJSON(), as the snippet reports it."""

    model_config = ConfigDict(frozen=True)

    endpoint: str
    keys: dict[str, str]
    subscribed_at: datetime


class Profile(BaseModel):
    profile_id: str
    source_id: str
    revision: int = 0
    anonymous_ids: list[str] = Field(default_factory=list)
    user_id: str | None = None
    # Set when this profile was merged into a known contact; it then only redirects.
    merged_into: str | None = None
    # Profiles merged into this one (their journeys move here).
    merged_profile_ids: list[str] = Field(default_factory=list)

    traits: dict[str, Any] = Field(default_factory=dict)
    email: str | None = None
    phone: str | None = None
    timezone: str | None = None
    consent: dict[str, ConsentState] = Field(default_factory=dict)
    web_push_subscriptions: list[WebPushSubscription] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    lifecycle_stage: str | None = None

    first_seen_at: datetime | None = None
    last_seen_at: datetime | None = None
    event_count: int = 0
    page_view_count: int = 0
    visit_count: int = 0
    event_counts: dict[str, int] = Field(default_factory=dict)
    recent_events: dict[str, list[datetime]] = Field(default_factory=dict)
    last_viewed_product: dict[str, Any] | None = None
    first_touch: TrafficSource | None = None
    last_touch: TrafficSource | None = None

    @property
    def is_known(self) -> bool:
        return bool(self.user_id or self.email or self.phone)

    @property
    def is_returning(self) -> bool:
        return self.visit_count > 1

    def has_consent(self, channel: Channel) -> bool:
        return self.consent.get(channel) == "granted"

    def reachable_on(self, channel: Channel) -> bool:
        """Whether a message on ``channel`` may be sent now (address present and consent given)."""
        match channel:
            case "email":
                return bool(self.email) and self.consent.get("email") != "denied"
            case "sms" | "zalo_zns":
                return bool(self.phone) and self.consent.get(channel) != "denied"
            case "web_push":
                return bool(self.web_push_subscriptions) and self.consent.get("web_push") != "denied"
            case _:
                return self.consent.get(channel) != "denied"


def profile_id_for(source_id: str, kind: Literal["anon", "user"], value: str) -> str:
    """Deterministic id for a new profile, so two deliveries of one first event agree on it."""
    digest = hashlib.sha256(f"{source_id}\x1f{kind}\x1f{value}".encode()).hexdigest()
    return f"p_{digest[:24]}"


def new_profile(profile_id: str, source_id: str) -> Profile:
    return Profile(profile_id=profile_id, source_id=source_id)


def fold_event(profile: Profile, event: TrackedEvent) -> Profile:
    """Return ``profile`` updated by one event. Pure; the caller guarantees each event folds once."""
    data = profile.model_dump()
    name = event.canonical_event
    at = event.timestamp

    if event.anonymous_id and event.anonymous_id not in data["anonymous_ids"]:
        data["anonymous_ids"].append(event.anonymous_id)
    if event.user_id and not data["user_id"]:
        data["user_id"] = event.user_id

    previous_last_seen = profile.last_seen_at
    data["first_seen_at"] = min(filter(None, [profile.first_seen_at, at]))
    data["last_seen_at"] = max(filter(None, [profile.last_seen_at, at]))
    if previous_last_seen is None or at - previous_last_seen > SESSION_GAP:
        data["visit_count"] += 1
        touch = traffic_source(event)
        data["last_touch"] = touch
        if profile.first_touch is None:
            data["first_touch"] = touch
    data["event_count"] += 1
    data["event_counts"][name] = data["event_counts"].get(name, 0) + 1
    recent = sorted([*profile.recent_events.get(name, []), at])[-RECENT_EVENTS_PER_NAME:]
    data["recent_events"][name] = recent

    timezone = _valid_timezone(event.context.get("timezone"))
    if timezone:
        data["timezone"] = timezone

    if event.type in ("page", "screen"):
        data["page_view_count"] += 1
    if name in PRODUCT_VIEW_EVENTS and event.properties:
        data["last_viewed_product"] = {**event.properties, "viewed_at": at}

    if event.type == "identify" or event.traits:
        _apply_traits(data, event.traits or event.context.get("traits", {}))
    _apply_channel_events(data, name, event)
    return Profile.model_validate(data)


def merge_profiles(winner: Profile, loser: Profile) -> tuple[Profile, Profile]:
    """Fold an anonymous profile into the known contact it turned out to be.

    The winner keeps its own traits where both have one; counters add up; history is the union.
    Returns (merged winner, loser marked as merged into the winner).
    """
    w = winner.model_dump()
    for anon in loser.anonymous_ids:
        if anon not in w["anonymous_ids"]:
            w["anonymous_ids"].append(anon)
    w["user_id"] = winner.user_id or loser.user_id
    w["merged_profile_ids"] = [*winner.merged_profile_ids, loser.profile_id]
    w["traits"] = {**loser.traits, **winner.traits}
    for field in ("email", "phone", "timezone", "lifecycle_stage", "last_viewed_product"):
        if w[field] is None:
            w[field] = getattr(loser, field)
    w["consent"] = {**loser.consent, **winner.consent}
    known = {s.endpoint for s in winner.web_push_subscriptions}
    w["web_push_subscriptions"] += [s.model_dump() for s in loser.web_push_subscriptions if s.endpoint not in known]
    w["tags"] = sorted(set(winner.tags) | set(loser.tags))
    w["first_seen_at"] = min(filter(None, [winner.first_seen_at, loser.first_seen_at]), default=None)
    w["last_seen_at"] = max(filter(None, [winner.last_seen_at, loser.last_seen_at]), default=None)
    for counter in ("event_count", "page_view_count", "visit_count"):
        w[counter] = getattr(winner, counter) + getattr(loser, counter)
    for name, count in loser.event_counts.items():
        w["event_counts"][name] = w["event_counts"].get(name, 0) + count
    for name, stamps in loser.recent_events.items():
        w["recent_events"][name] = sorted({*w["recent_events"].get(name, []), *stamps})[-RECENT_EVENTS_PER_NAME:]
    if winner.first_touch is None:
        w["first_touch"] = loser.first_touch
    if winner.last_touch is None:
        w["last_touch"] = loser.last_touch
    merged_loser = loser.model_copy(update={"merged_into": winner.profile_id})
    return Profile.model_validate(w), merged_loser


def apply_profile_update(
    profile: Profile,
    change: ProfileChange,
) -> Profile:
    """A journey's update node applied to the stored profile."""
    tags = [tag for tag in profile.tags if tag not in change.remove_tags]
    tags += [tag for tag in change.add_tags if tag not in tags]
    return profile.model_copy(
        update={
            "traits": {**profile.traits, **change.set_attributes},
            "tags": tags,
            "lifecycle_stage": change.lifecycle_stage or profile.lifecycle_stage,
        }
    )


class ProfileChange(Protocol):
    """What a journey's update node asks for (footprint.engine.UpdateProfile)."""

    @property
    def set_attributes(self) -> dict[str, Any]: ...
    @property
    def add_tags(self) -> list[str]: ...
    @property
    def remove_tags(self) -> list[str]: ...
    @property
    def lifecycle_stage(self) -> str | None: ...


def traffic_source(event: TrackedEvent) -> TrafficSource:
    campaign = event.context.get("campaign") or {}
    page = event.context.get("page") or {}
    referrer = page.get("referrer") or None
    if isinstance(campaign, dict) and campaign.get("source"):
        return TrafficSource(
            source=str(campaign["source"]),
            medium=_opt_str(campaign.get("medium")),
            campaign=_opt_str(campaign.get("name")),
            term=_opt_str(campaign.get("term")),
            content=_opt_str(campaign.get("content")),
            referrer=referrer,
        )
    if referrer:
        host = urlparse(str(referrer)).hostname
        if host:
            return TrafficSource(source=host, medium="referral", referrer=str(referrer))
    return TrafficSource()


def _apply_traits(data: dict[str, Any], traits: dict[str, Any]) -> None:
    for key, value in traits.items():
        if key in ADDRESS_TRAITS and isinstance(value, str) and value.strip():
            data[ADDRESS_TRAITS[key]] = value.strip().lower() if key == "email" else value.strip()
        elif key == "timezone" and _valid_timezone(value):
            data["timezone"] = value
        elif key == "lifecycle_stage" and isinstance(value, str):
            data["lifecycle_stage"] = value
        elif key == "consent" and isinstance(value, dict):
            for channel, granted in value.items():
                data["consent"][str(channel)] = "granted" if granted else "denied"
        else:
            data["traits"][key] = value


def _apply_channel_events(data: dict[str, Any], name: str, event: TrackedEvent) -> None:
    """Subscriptions and consent reported by the snippet or by the client's backend."""
    props = event.properties
    if name == "web_push_subscribed" and isinstance(props.get("subscription"), dict):
        sub = props["subscription"]
        if isinstance(sub.get("endpoint"), str) and isinstance(sub.get("keys"), dict):
            subs = [s for s in data["web_push_subscriptions"] if s["endpoint"] != sub["endpoint"]]
            subs.append({"endpoint": sub["endpoint"], "keys": sub["keys"], "subscribed_at": event.timestamp})
            data["web_push_subscriptions"] = subs
            data["consent"]["web_push"] = "granted"
    elif name == "web_push_unsubscribed":
        endpoint = props.get("endpoint")
        data["web_push_subscriptions"] = [
            s for s in data["web_push_subscriptions"] if endpoint and s["endpoint"] != endpoint
        ]
        if not data["web_push_subscriptions"]:
            data["consent"]["web_push"] = "denied"
    elif name == "unsubscribed" and isinstance(props.get("channel"), str):
        data["consent"][props["channel"]] = "denied"
    elif name == "consent_updated" and isinstance(props.get("channel"), str):
        data["consent"][props["channel"]] = "granted" if props.get("granted") else "denied"


# Browsers report time zones by ICU's (CLDR's) canonical names, some of which are IANA's old names:
# Chrome in Vietnam says "Asia/Saigon". Profiles keep IANA's current name, so journeys and segments
# can compare time zones as text.
ICU_TO_IANA = {
    "Asia/Saigon": "Asia/Ho_Chi_Minh",
    "Asia/Calcutta": "Asia/Kolkata",
    "Asia/Katmandu": "Asia/Kathmandu",
    "Asia/Rangoon": "Asia/Yangon",
    "Europe/Kiev": "Europe/Kyiv",
    "Atlantic/Faeroe": "Atlantic/Faroe",
    "America/Buenos_Aires": "America/Argentina/Buenos_Aires",
    "America/Indianapolis": "America/Indiana/Indianapolis",
    "America/Louisville": "America/Kentucky/Louisville",
    "Pacific/Truk": "Pacific/Chuuk",
    "Pacific/Ponape": "Pacific/Pohnpei",
}


def _valid_timezone(value: object) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    name = ICU_TO_IANA.get(value, value)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)
