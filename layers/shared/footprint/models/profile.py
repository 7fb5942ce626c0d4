"""The visitor's 360° profile and the pure rules that fold events into it.

A profile starts anonymous (one browser's ``anonymousId``) and becomes a known contact when an
``identify`` call names a ``userId`` or traits such as email and phone. Folding is pure: the
evaluate function loads a profile, calls :func:`fold_event`, and writes the result back with a
conditional write, so the same rules run in tests, in the simulator and in Lambda.

Two rules shape every fold (docs/architecture.md, "Trust model for the public write key" and
"Profile limits"):
- who vouches for the call (``TrackedEvent.trust``) decides what it may change: a call nobody
  vouches for binds no userId and changes no known contact's addresses or consent, and an address
  or a consent given from a browser waits for confirmation (consent "pending");
- every collection is bounded (footprint.models.limits), so no visitor outgrows the item.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol, get_args
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field

from footprint.models.consent import OPT_IN, ChannelConsent
from footprint.models.events import TrackedEvent, Trust
from footprint.models.limits import (
    MAX_ANONYMOUS_IDS,
    MAX_COUNTED_EVENT_NAME_CHARS,
    MAX_EMAIL_CHARS,
    MAX_EVENT_NAMES,
    MAX_LAST_VIEWED_PRODUCT_BYTES,
    MAX_MERGED_PROFILE_IDS,
    MAX_PHONE_CHARS,
    MAX_PUSH_ENDPOINT_CHARS,
    MAX_PUSH_KEY_CHARS,
    MAX_SHORT_TEXT_CHARS,
    MAX_TRAIT_KEY_CHARS,
    MAX_TRAIT_VALUE_BYTES,
    MAX_TRAITS,
    MAX_TRAITS_BYTES,
    MAX_WEB_PUSH_SUBSCRIPTIONS,
    RECENT_EVENTS_PER_NAME,
)

Channel = Literal["email", "sms", "zalo_zns", "web_push", "onsite", "webhook"]
CHANNELS: frozenset[str] = frozenset(get_args(Channel))
# "pending": given from a browser, waiting for confirmation (double opt-in); not reachable yet.
ConsentState = Literal["granted", "denied", "pending"]
NOT_REACHABLE: frozenset[str] = frozenset({"denied", "pending"})

# A visit ends after 30 minutes without activity (the common analytics convention).
SESSION_GAP = timedelta(minutes=30)
PRODUCT_VIEW_EVENTS = frozenset({"product_viewed"})
# Provider feedback that suppresses an email address, and the reason kept for it (for the latest
# addresses only: a profile holds one email address at a time).
MAX_SUPPRESSED_ADDRESSES = 10
# Consent changes kept on the profile; older ones remain on the timeline as the calls that made them.
MAX_CONSENT_RECORDS = 20
MAX_CONSENT_TEXT_CHARS = 1000
SUPPRESSING_EVENTS = {"message_bounced": "bounced", "message_complained": "complained"}
# Traits that are channel addresses rather than free attributes, and the channels each one reaches
# (Zalo ZNS messages go to the phone number).
ADDRESS_TRAITS = {"email": "email", "phone": "phone"}
ADDRESS_CHANNELS: dict[str, tuple[Channel, ...]] = {"email": ("email",), "phone": ("sms", "zalo_zns")}
CHANNEL_ADDRESS: dict[str, str] = {"email": "email", "sms": "phone", "zalo_zns": "phone"}
ADDRESS_LIMITS = {"email": MAX_EMAIL_CHARS, "phone": MAX_PHONE_CHARS}
# Channels that belong to the browser itself (its push subscription, its page): the browser may
# grant and withdraw them without proof. Every other channel reaches the contact's addresses.
DEVICE_CHANNELS: frozenset[str] = frozenset({"web_push", "onsite"})
# A trusted backend's confirmation that an address given from a browser is its owner's (the link
# of a double opt-in email, a code sent by SMS): {"channel": "email", "address": "lan@example.com"}.
CONSENT_CONFIRMED = "consent_confirmed"
CHANNEL_EVENTS = frozenset(
    {"web_push_subscribed", "web_push_unsubscribed", "unsubscribed", "consent_updated", CONSENT_CONFIRMED}
)


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


class ConsentRecord(BaseModel):
    """One change of a channel's consent, and the proof of it: when, from which source and call,
    on which page, and the words the visitor agreed to (a form's consent line)."""

    model_config = ConfigDict(frozen=True)

    channel: str
    state: ConsentState | None  # None: the record was cleared (a backend vouched for a new address)
    at: datetime
    source_id: str
    event: str  # the call that changed it: identify, consent_updated, unsubscribed, ...
    message_id: str
    trust: Trust  # "server" (a backend), "signed" (a page with a signed userId) or "browser"
    text: str | None = None
    page: str | None = None


class Profile(BaseModel):
    profile_id: str
    source_id: str
    revision: int = 0
    anonymous_ids: list[str] = Field(default_factory=list)
    user_id: str | None = None
    # The last userId a call named without proof (no user_hash, not a trusted source): kept for
    # support and reports, never used to find, merge or reach anyone.
    unverified_user_id: str | None = None
    # Set when this profile was merged into a known contact; it then only redirects.
    merged_into: str | None = None
    # Profiles merged into this one (their journeys move here).
    merged_profile_ids: list[str] = Field(default_factory=list)
    # Set on the tombstone a deletion request leaves (footprint.services.data_rights): it holds
    # nothing else, and events still in flight for the person are dropped instead of re-creating them.
    deleted_at: datetime | None = None

    traits: dict[str, Any] = Field(default_factory=dict)
    # Traits not kept because of the profile limits (too many keys, a key or value too large).
    dropped_trait_count: int = 0
    email: str | None = None
    phone: str | None = None
    timezone: str | None = None
    consent: dict[str, ConsentState] = Field(default_factory=dict)
    # Every change of ``consent``, newest last (at most MAX_CONSENT_RECORDS): who said yes or no, when,
    # where and to which words; the timeline (EventsTable) holds the calls themselves.
    consent_log: list[ConsentRecord] = Field(default_factory=list)
    # Addresses no message may go to, whatever its category: email address -> why ("bounced" for a
    # hard bounce, "complained" for a spam report), from the provider's feedback events.
    suppressed: dict[str, str] = Field(default_factory=dict)
    web_push_subscriptions: list[WebPushSubscription] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    lifecycle_stage: str | None = None

    first_seen_at: datetime | None = None
    last_seen_at: datetime | None = None
    event_count: int = 0
    page_view_count: int = 0
    visit_count: int = 0
    event_counts: dict[str, int] = Field(default_factory=dict)
    # Events whose name found no room in event_counts (footprint.models.limits.MAX_EVENT_NAMES).
    other_event_count: int = 0
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

    def is_suppressed(self, channel: Channel) -> bool:
        """Whether the profile's address on ``channel`` is on its suppression list: an email that
        bounced hard or reported spam, a phone number the SMS or Zalo provider refused as invalid, a
        number with no Zalo account able to receive ZNS."""
        match channel:
            case "email":
                return bool(self.email) and self.email in self.suppressed
            case "sms" | "zalo_zns":
                phone = self.phone
                if not phone:
                    return False
                return phone in self.suppressed or suppression_key(channel, phone) in self.suppressed
            case _:
                return False

    def deliverable_on(self, channel: Channel) -> bool:
        """Whether a transactional message on ``channel`` can be sent: an address that is not
        suppressed; marketing consent is not asked."""
        match channel:
            case "email":
                return bool(self.email) and not self.is_suppressed("email")
            case "sms" | "zalo_zns":
                return bool(self.phone) and not self.is_suppressed(channel)
            case "web_push":
                return bool(self.web_push_subscriptions)
            case _:
                return self.reachable_on(channel)

    def reachable_on(self, channel: Channel, consent: ChannelConsent = OPT_IN) -> bool:
        """Whether a marketing message on ``channel`` may be sent now: address present, consent
        neither withdrawn ("denied") nor still waiting for confirmation ("pending"), and, where the
        source's policy is opt-in (footprint.models.consent), given ("granted")."""
        state = self.consent.get(channel)
        allowed = state == "granted" if consent.needs_grant(channel) else state not in NOT_REACHABLE
        match channel:
            case "email":
                return self.deliverable_on("email") and allowed
            case "sms" | "zalo_zns":
                return self.deliverable_on(channel) and allowed
            case "web_push":
                return bool(self.web_push_subscriptions) and allowed
            case _:
                return allowed


def suppression_key(channel: str, address: str) -> str:
    """The suppression-list key of an address refused on one channel only (a number with no Zalo
    account may still take SMS); a bare address is refused on every channel it serves."""
    return f"{channel}:{address}"


def profile_id_for(source_id: str, kind: Literal["anon", "user"], value: str) -> str:
    """Deterministic id for a new profile, so two deliveries of one first event agree on it."""
    digest = hashlib.sha256(f"{source_id}\x1f{kind}\x1f{value}".encode()).hexdigest()
    return f"p_{digest[:24]}"


def new_profile(profile_id: str, source_id: str) -> Profile:
    return Profile(profile_id=profile_id, source_id=source_id)


def fold_event(profile: Profile, event: TrackedEvent) -> Profile:
    """Return ``profile`` updated by one event. Pure; the caller guarantees each event folds once.

    Only what the event changes is copied (a profile at its limits is some 100 KB, and evaluate
    folds every event), so the result shares unchanged collections with ``profile``: treat both
    as read-only.
    """
    name = event.canonical_event
    at = event.timestamp
    update: dict[str, Any] = {}

    anonymous_id = event.anonymous_id
    if anonymous_id and (not profile.anonymous_ids or profile.anonymous_ids[-1] != anonymous_id):
        ids = [a for a in profile.anonymous_ids if a != anonymous_id]
        update["anonymous_ids"] = [*ids, anonymous_id][-MAX_ANONYMOUS_IDS:]
    if event.user_id and event.user_id != profile.user_id:
        if not event.identity_verified:
            update["unverified_user_id"] = event.user_id
        elif not profile.user_id:
            update["user_id"] = event.user_id

    first, last = profile.first_seen_at, profile.last_seen_at
    update["first_seen_at"] = at if first is None or at < first else first
    update["last_seen_at"] = at if last is None or at > last else last
    if last is None or at - last > SESSION_GAP:
        update["visit_count"] = profile.visit_count + 1
        touch = traffic_source(event)
        update["last_touch"] = touch
        if profile.first_touch is None:
            update["first_touch"] = touch
    update["event_count"] = profile.event_count + 1
    _count_event(profile, name, at, update)

    timezone = _valid_timezone(event.context.get("timezone"))
    if timezone and timezone != profile.timezone:
        update["timezone"] = timezone
    if event.type in ("page", "screen"):
        update["page_view_count"] = profile.page_view_count + 1
    if name in PRODUCT_VIEW_EVENTS and event.properties:
        update["last_viewed_product"] = {
            **_bounded_map(event.properties, MAX_LAST_VIEWED_PRODUCT_BYTES),
            "viewed_at": at.isoformat(),
        }

    traits = event.traits or event.context.get("traits") or {}
    # A group call's traits describe the group (a company's name, plan, size), not the person.
    sets_traits = event.type == "identify" or (bool(event.traits) and event.type != "group")
    if (sets_traits and isinstance(traits, dict)) or name in CHANNEL_EVENTS:
        draft = _Draft.of(profile, timezone=update.get("timezone", profile.timezone))
        # A call nobody vouches for that reaches a known contact (through the anonymous id of one of
        # the contact's browsers) may not change the contact's addresses or consent.
        protected = profile.user_id is not None and not event.identity_verified
        if sets_traits:
            _apply_traits(draft, traits if isinstance(traits, dict) else {}, event, protected)
        _apply_channel_events(draft, name, event, protected)
        update |= draft.changes(profile)
    if name in SUPPRESSING_EVENTS:
        _apply_feedback(profile, name, event, update)
    if "consent" in update and update["consent"] != profile.consent:
        update["consent_log"] = _logged_consent(profile, update["consent"], name, event)
    return profile.model_copy(update=update)


def _logged_consent(profile: Profile, consent: dict[str, ConsentState], name: str, event: TrackedEvent) -> list[Any]:
    page = event.context.get("page")
    url = page.get("url") if isinstance(page, dict) else None
    text = event.properties.get("consent_text") or event.context.get("consent_text")
    records = [
        ConsentRecord(
            channel=channel,
            state=consent.get(channel),
            at=event.timestamp,
            source_id=event.source_id,
            event=name,
            message_id=event.message_id,
            trust=event.trust,
            text=str(text)[:MAX_CONSENT_TEXT_CHARS] if text else None,
            page=str(url)[:MAX_CONSENT_TEXT_CHARS] if url else None,
        )
        for channel in sorted(set(consent) | set(profile.consent))
        if consent.get(channel) != profile.consent.get(channel)
    ]
    return [*profile.consent_log, *records][-MAX_CONSENT_RECORDS:]


def _apply_feedback(profile: Profile, name: str, event: TrackedEvent, update: dict[str, Any]) -> None:
    """A hard bounce or a spam report (footprint.services.email_feedback, which writes them as a
    trusted server): that address gets nothing more, and a spam report also withdraws consent."""
    props = event.properties
    if event.trust != "server" or props.get("channel") != "email":
        return
    if name == "message_bounced" and props.get("bounce_type") != "Permanent":
        return
    email = update.get("email", profile.email)
    address = props.get("email") if isinstance(props.get("email"), str) else email
    if address:
        suppressed = {**profile.suppressed, address.strip().lower(): SUPPRESSING_EVENTS[name]}
        update["suppressed"] = dict(list(suppressed.items())[-MAX_SUPPRESSED_ADDRESSES:])
    if name == "message_complained":
        update["consent"] = {**update.get("consent", profile.consent), "email": "denied"}


def _count_event(profile: Profile, name: str, at: datetime, update: dict[str, Any]) -> None:
    """Count ``name`` (and keep its recent times) if it has room, else count it as "other"."""
    counts = profile.event_counts
    if name not in counts and (len(counts) >= MAX_EVENT_NAMES or len(name) > MAX_COUNTED_EVENT_NAME_CHARS):
        update["other_event_count"] = profile.other_event_count + 1
        return
    update["event_counts"] = {**counts, name: counts.get(name, 0) + 1}
    stamps = profile.recent_events.get(name, [])
    if not stamps or at >= stamps[-1]:  # the usual case: events arrive in order
        recent = [*stamps[-(RECENT_EVENTS_PER_NAME - 1) :], at]
    else:
        recent = sorted([*stamps, at])[-RECENT_EVENTS_PER_NAME:]
    update["recent_events"] = {**profile.recent_events, name: recent}


@dataclass
class _Draft:
    """The fields traits and channel events change, edited in place, then diffed into an update."""

    traits: dict[str, Any]
    email: str | None
    phone: str | None
    timezone: str | None
    lifecycle_stage: str | None
    consent: dict[str, ConsentState]
    web_push_subscriptions: list[WebPushSubscription]
    dropped_trait_count: int
    _traits_copied: bool = False
    _traits_bytes: int | None = field(default=None, repr=False)

    @classmethod
    def of(cls, profile: Profile, *, timezone: str | None) -> _Draft:
        return cls(
            traits=profile.traits,
            email=profile.email,
            phone=profile.phone,
            timezone=timezone,
            lifecycle_stage=profile.lifecycle_stage,
            consent=dict(profile.consent),
            web_push_subscriptions=list(profile.web_push_subscriptions),
            dropped_trait_count=profile.dropped_trait_count,
        )

    def changes(self, profile: Profile) -> dict[str, Any]:
        names = ("email", "phone", "timezone", "lifecycle_stage", "consent", "web_push_subscriptions")
        changed = {name: getattr(self, name) for name in names if getattr(self, name) != getattr(profile, name)}
        if self._traits_copied:
            changed["traits"] = self.traits
        if self.dropped_trait_count != profile.dropped_trait_count:
            changed["dropped_trait_count"] = self.dropped_trait_count
        return changed

    def set_trait(self, key: str, value: Any) -> None:
        """Keep a free trait if it fits the limits; count it as dropped otherwise."""
        value_bytes = _json_bytes(value)
        size = _entry_bytes(key, value)
        if self._traits_bytes is None:
            self._traits_bytes = _json_bytes(self.traits)
        old = _entry_bytes(key, self.traits[key]) if key in self.traits else 0
        if (
            len(key) > MAX_TRAIT_KEY_CHARS
            or value_bytes > MAX_TRAIT_VALUE_BYTES
            or (key not in self.traits and len(self.traits) >= MAX_TRAITS)
            or self._traits_bytes - old + size > MAX_TRAITS_BYTES
        ):
            self.dropped_trait_count += 1
            return
        if not self._traits_copied:
            self.traits = dict(self.traits)
            self._traits_copied = True
        self.traits[key] = value
        self._traits_bytes += size - old


def _apply_traits(draft: _Draft, traits: dict[str, Any], event: TrackedEvent, protected: bool) -> None:
    for key, value in traits.items():
        if key in ADDRESS_TRAITS and isinstance(value, str) and value.strip():
            _set_address(draft, key, value, event, protected)
        elif key == "timezone" and _valid_timezone(value):
            draft.timezone = _valid_timezone(value)
        elif key == "lifecycle_stage" and isinstance(value, str):
            if len(value) <= MAX_SHORT_TEXT_CHARS:
                draft.lifecycle_stage = value
        elif key == "consent" and isinstance(value, dict):
            for channel, granted in value.items():
                _set_consent(draft, str(channel), bool(granted), event, protected)
        else:
            draft.set_trait(str(key), value)


def _normalised_address(kind: str, value: str) -> str:
    return value.strip().lower() if kind == "email" else value.strip()


def _set_address(draft: _Draft, kind: str, value: str, event: TrackedEvent, protected: bool) -> None:
    address = _normalised_address(kind, value)
    if protected or len(address) > ADDRESS_LIMITS[kind] or address == getattr(draft, kind):
        return
    setattr(draft, kind, address)
    for channel in ADDRESS_CHANNELS[kind]:
        state = draft.consent.get(channel)
        if event.trust == "server":
            if state == "pending":  # the backend vouches for the new address
                del draft.consent[channel]
        elif state != "denied":
            # Anyone can type any address into a page: it waits for its owner's confirmation.
            draft.consent[channel] = "pending"


def _set_consent(draft: _Draft, channel: str, granted: bool, event: TrackedEvent, protected: bool) -> None:
    if channel not in CHANNELS or (protected and channel not in DEVICE_CHANNELS):
        return
    if not granted:
        draft.consent[channel] = "denied"
    elif event.trust == "server" or channel in DEVICE_CHANNELS:
        draft.consent[channel] = "granted"
    elif draft.consent.get(channel) != "granted":
        draft.consent[channel] = "pending"


def _confirm_consent(draft: _Draft, props: dict[str, Any], event: TrackedEvent) -> None:
    """``consent_confirmed`` from a trusted source: a pending channel becomes granted, if the
    confirmation is for the address the profile has now (a link sent to an old address confirms
    nothing)."""
    channel = props.get("channel")
    if event.trust != "server" or not isinstance(channel, str) or channel not in CHANNEL_ADDRESS:
        return
    kind = CHANNEL_ADDRESS[channel]
    current = getattr(draft, kind)
    address = props.get("address")
    if not current or (
        address is not None and (not isinstance(address, str) or _normalised_address(kind, address) != current)
    ):
        return
    if draft.consent.get(channel) != "denied":
        draft.consent[channel] = "granted"


def _web_push_subscription(value: Any, at: datetime) -> WebPushSubscription | None:
    """A PushSubscription.toJSON() within the limits (only the two keys Web Push uses), else None."""
    if not isinstance(value, dict):
        return None
    endpoint, keys = value.get("endpoint"), value.get("keys")
    if not isinstance(endpoint, str) or not endpoint or len(endpoint) > MAX_PUSH_ENDPOINT_CHARS:
        return None
    if not isinstance(keys, dict):
        return None
    kept = {name: keys[name] for name in ("p256dh", "auth") if isinstance(keys.get(name), str)}
    if len(kept) != 2 or any(len(key) > MAX_PUSH_KEY_CHARS for key in kept.values()):
        return None
    return WebPushSubscription(endpoint=endpoint, keys=kept, subscribed_at=at)


def _apply_channel_events(draft: _Draft, name: str, event: TrackedEvent, protected: bool) -> None:
    """Subscriptions and consent reported by the snippet or by the client's backend."""
    props = event.properties
    if name == "web_push_subscribed":
        subscription = _web_push_subscription(props.get("subscription"), event.timestamp)
        if subscription is not None:
            subs = [s for s in draft.web_push_subscriptions if s.endpoint != subscription.endpoint]
            draft.web_push_subscriptions = [*subs, subscription][-MAX_WEB_PUSH_SUBSCRIPTIONS:]
            draft.consent["web_push"] = "granted"  # the browser's own permission prompt said yes
    elif name == "web_push_unsubscribed":
        endpoint = props.get("endpoint")
        draft.web_push_subscriptions = [s for s in draft.web_push_subscriptions if endpoint and s.endpoint != endpoint]
        if not draft.web_push_subscriptions:
            draft.consent["web_push"] = "denied"
    elif name == "unsubscribed" and isinstance(props.get("channel"), str):
        _set_consent(draft, props["channel"], False, event, protected)
    elif name == "consent_updated" and isinstance(props.get("channel"), str):
        _set_consent(draft, props["channel"], bool(props.get("granted")), event, protected)
    elif name == CONSENT_CONFIRMED:
        _confirm_consent(draft, props, event)


def merge_profiles(winner: Profile, loser: Profile) -> tuple[Profile, Profile]:
    """Fold an anonymous profile into the known contact it turned out to be.

    The winner keeps its own traits where both have one, and each address keeps the consent given
    for it (a pending address stays pending); counters add up; history is the union, within the
    profile limits (the loser's browser, which is logging in now, counts as the newest).
    Returns (merged winner, loser marked as merged into the winner).
    """
    w = winner.model_dump()
    known_ids = set(winner.anonymous_ids)
    w["anonymous_ids"] = [*winner.anonymous_ids, *(a for a in loser.anonymous_ids if a not in known_ids)][
        -MAX_ANONYMOUS_IDS:
    ]
    w["user_id"] = winner.user_id or loser.user_id
    w["unverified_user_id"] = winner.unverified_user_id or loser.unverified_user_id
    w["merged_profile_ids"] = [*winner.merged_profile_ids, loser.profile_id][-MAX_MERGED_PROFILE_IDS:]

    draft = _Draft.of(winner, timezone=winner.timezone)
    for key, value in loser.traits.items():
        if key not in winner.traits:
            draft.set_trait(key, value)
    w["traits"] = draft.traits
    w["dropped_trait_count"] = draft.dropped_trait_count + loser.dropped_trait_count
    consent = {c: s for c, s in {**loser.consent, **winner.consent}.items() if c in CHANNELS}
    for kind, channels in ADDRESS_CHANNELS.items():
        # Consent belongs to an address: the kept address brings its own (or none).
        owner = winner if getattr(winner, kind) else loser
        w[kind] = getattr(owner, kind)
        for channel in channels:
            consent.pop(channel, None)
            if channel in owner.consent:
                consent[channel] = owner.consent[channel]
    w["consent"] = consent
    log = sorted([*loser.consent_log, *winner.consent_log], key=lambda record: record.at)
    w["consent_log"] = log[-MAX_CONSENT_RECORDS:]
    for name in ("timezone", "lifecycle_stage", "last_viewed_product"):
        if w[name] is None:
            w[name] = getattr(loser, name)
    endpoints = {s.endpoint for s in winner.web_push_subscriptions}
    subscriptions = [
        *winner.web_push_subscriptions,
        *(s for s in loser.web_push_subscriptions if s.endpoint not in endpoints),
    ]
    subscriptions.sort(key=lambda s: s.subscribed_at)
    w["web_push_subscriptions"] = [s.model_dump() for s in subscriptions[-MAX_WEB_PUSH_SUBSCRIPTIONS:]]
    w["suppressed"] = dict(list({**loser.suppressed, **winner.suppressed}.items())[-MAX_SUPPRESSED_ADDRESSES:])
    w["tags"] = sorted(set(winner.tags) | set(loser.tags))
    w["first_seen_at"] = min(filter(None, [winner.first_seen_at, loser.first_seen_at]), default=None)
    w["last_seen_at"] = max(filter(None, [winner.last_seen_at, loser.last_seen_at]), default=None)
    for counter in ("event_count", "page_view_count", "visit_count", "other_event_count"):
        w[counter] = getattr(winner, counter) + getattr(loser, counter)
    for name, count in loser.event_counts.items():
        if name in w["event_counts"] or len(w["event_counts"]) < MAX_EVENT_NAMES:
            w["event_counts"][name] = w["event_counts"].get(name, 0) + count
            stamps = {*w["recent_events"].get(name, []), *loser.recent_events.get(name, [])}
            w["recent_events"][name] = sorted(stamps)[-RECENT_EVENTS_PER_NAME:]
        else:
            w["other_event_count"] += count
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
    referrer = _opt_str(page.get("referrer") or None) if isinstance(page, dict) else None
    if isinstance(campaign, dict) and campaign.get("source"):
        return TrafficSource(
            source=str(campaign["source"])[:MAX_SHORT_TEXT_CHARS],
            medium=_opt_str(campaign.get("medium")),
            campaign=_opt_str(campaign.get("name")),
            term=_opt_str(campaign.get("term")),
            content=_opt_str(campaign.get("content")),
            referrer=referrer,
        )
    if referrer:
        try:
            host = urlparse(referrer).hostname
        except ValueError:  # "http://[" and the like: a referrer, not a host
            host = None
        if host:
            return TrafficSource(source=host[:MAX_SHORT_TEXT_CHARS], medium="referral", referrer=referrer)
    return TrafficSource()


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
    return None if value is None else str(value)[:MAX_SHORT_TEXT_CHARS]


def _json_bytes(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON (what it costs in the stored profile)."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8"))


def _entry_bytes(key: str, value: Any) -> int:
    """Bytes of ``"key":value,`` in a JSON object."""
    return _json_bytes(key) + _json_bytes(value) + 2


def _bounded_map(data: dict[str, Any], limit: int) -> dict[str, Any]:
    """``data`` if it fits in ``limit`` bytes as JSON, else the entries that fit, in order."""
    if _json_bytes(data) <= limit:
        return dict(data)
    kept: dict[str, Any] = {}
    total = 2
    for key, value in data.items():
        size = _entry_bytes(key, value)
        if total + size <= limit:
            kept[key] = value
            total += size
    return kept
