"""Profiles stay bounded (footprint.models.limits): a visitor who sends everything track accepts,
100,000 times, still fits well inside one DynamoDB item."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from footprint.adapters.profiles_store import profile_from_item, profile_to_item
from footprint.models import limits
from footprint.models.events import TrackedEvent
from footprint.models.profile import Profile, fold_event, merge_profiles, new_profile
from footprint.models.segment import MAX_ID_BYTES
from tests.builders import T0, tracked

DYNAMODB_ITEM_LIMIT = 400 * 1024


def item_bytes(profile: Profile) -> int:
    """DynamoDB's measure of an item: attribute names plus values, in UTF-8."""
    total = 0
    for name, value in profile_to_item(profile).items():
        (text,) = value.values()
        total += len(name.encode()) + len(str(text).encode())
    return total


def long_text(prefix: str, length: int) -> str:
    return (prefix + "-" + "x" * length)[:length]


def hostile_events(count: int) -> list[TrackedEvent]:
    """Every collection grown as fast as the tracking API allows: new trait keys with the largest
    values, new event names, anonymous ids, push subscriptions, huge product properties and
    campaign fields. Built from a few templates, so 100,000 of them take little time."""
    campaign = {key: long_text(key, 5000) for key in ("source", "medium", "name", "term", "content")}
    context = {"campaign": campaign, "page": {"referrer": "https://ref.example/" + "r" * 5000}}
    track = tracked(event="x", anonymous_id="a", trust="browser", context=context)
    product = track.model_copy(
        update={"event": "product_viewed", "properties": {f"p{n}": long_text("v", 900) for n in range(30)}}
    )
    events: list[TrackedEvent] = []
    anonymous_id = "a"
    for i in range(count):
        at = T0 + timedelta(minutes=31 * i)  # every event a new visit: touches are rewritten each time
        if i % 500 == 0:
            anonymous_id = long_text(f"anon{i}", MAX_ID_BYTES)
        update: dict[str, Any] = {
            "message_id": f"m{i}",
            "timestamp": at,
            "received_at": at,
            "anonymous_id": anonymous_id,
        }
        if i % 1000 == 1:
            traits = {long_text(f"k{i}-{n}", limits.MAX_TRAIT_KEY_CHARS): long_text("v", 1000) for n in range(25)}
            events.append(
                track.model_copy(update={**update, "type": "identify", "event": "identify", "traits": traits})
            )
        elif i % 700 == 2:
            subscription = {
                "endpoint": long_text(f"https://push.example/{i}", limits.MAX_PUSH_ENDPOINT_CHARS),
                "keys": {"p256dh": "k" * limits.MAX_PUSH_KEY_CHARS, "auth": "a" * limits.MAX_PUSH_KEY_CHARS},
            }
            events.append(
                track.model_copy(
                    update={**update, "event": "web_push_subscribed", "properties": {"subscription": subscription}}
                )
            )
        elif i % 100 == 3:
            events.append(product.model_copy(update=update))
        else:
            name = long_text(f"event{i % 300}", limits.MAX_COUNTED_EVENT_NAME_CHARS)
            events.append(track.model_copy(update={**update, "event": name}))
    return events


def test_a_visitor_with_100000_events_stays_well_below_the_item_limit() -> None:
    profile = new_profile("p1", "demo")
    for event in hostile_events(100_000):
        profile = fold_event(profile, event)

    assert profile.event_count == 100_000
    assert sum(profile.event_counts.values()) + profile.other_event_count == 100_000
    assert len(profile.event_counts) == limits.MAX_EVENT_NAMES
    assert profile.other_event_count > 0
    assert set(profile.recent_events) == set(profile.event_counts)
    assert all(len(stamps) <= limits.RECENT_EVENTS_PER_NAME for stamps in profile.recent_events.values())
    assert len(profile.traits) <= limits.MAX_TRAITS
    assert profile.dropped_trait_count > 0
    # Lists keep the newest: the last anonymous id and push subscription seen are there.
    assert len(profile.anonymous_ids) == limits.MAX_ANONYMOUS_IDS
    assert profile.anonymous_ids[-1].startswith("anon99500")
    assert len(profile.web_push_subscriptions) == limits.MAX_WEB_PUSH_SUBSCRIPTIONS
    assert profile.web_push_subscriptions[-1].endpoint.startswith("https://push.example/99402")
    # What is stored reads back as the same profile, and is under half of DynamoDB's 400 KB.
    assert profile.last_touch is not None
    assert profile.last_touch.campaign is not None
    assert len(profile.last_touch.campaign) == limits.MAX_SHORT_TEXT_CHARS
    assert profile_from_item(profile_to_item(profile)) == profile
    assert item_bytes(profile) < DYNAMODB_ITEM_LIMIT / 2


def test_traits_beyond_the_limits_are_counted_not_kept() -> None:
    identify = tracked("identify", trust="browser")
    profile = fold_event(
        new_profile("p1", "demo"),
        identify.model_copy(
            update={
                "traits": {
                    "name": "Lan",
                    "k" * (limits.MAX_TRAIT_KEY_CHARS + 1): 1,
                    "bio": "x" * limits.MAX_TRAIT_VALUE_BYTES,
                    **{f"t{n}": n for n in range(limits.MAX_TRAITS + 5)},
                }
            }
        ),
    )
    assert profile.traits["name"] == "Lan"
    assert "bio" not in profile.traits  # over the value limit once quoted as JSON
    assert len(profile.traits) == limits.MAX_TRAITS
    assert profile.dropped_trait_count == 2 + 6
    # A kept key still updates at the limit.
    again = fold_event(profile, identify.model_copy(update={"message_id": "m2", "traits": {"name": "Lan Nguyen"}}))
    assert again.traits["name"] == "Lan Nguyen"
    assert again.dropped_trait_count == profile.dropped_trait_count


def test_oversized_addresses_and_malformed_push_subscriptions_are_ignored() -> None:
    profile = fold_event(
        new_profile("p1", "demo"),
        tracked("identify", traits={"email": "a" * 250 + "@example.com", "phone": "9" * 40}),
    )
    assert profile.email is None
    assert profile.phone is None
    for subscription in (
        {
            "endpoint": "https://push.example/" + "x" * limits.MAX_PUSH_ENDPOINT_CHARS,
            "keys": {"p256dh": "k", "auth": "a"},
        },
        {"endpoint": "https://push.example/1", "keys": {"p256dh": "k"}},
        {"endpoint": "https://push.example/1", "keys": {"p256dh": "k", "auth": "a" * 300}},
    ):
        event = tracked(event="web_push_subscribed", properties={"subscription": subscription})
        assert fold_event(profile, event).web_push_subscriptions == []
    extra_keys = {"endpoint": "https://push.example/1", "keys": {"p256dh": "k", "auth": "a", "junk": "j" * 5000}}
    kept = fold_event(profile, tracked(event="web_push_subscribed", properties={"subscription": extra_keys}))
    assert kept.web_push_subscriptions[0].keys == {"p256dh": "k", "auth": "a"}


def test_consent_keeps_only_known_channels() -> None:
    profile = fold_event(
        new_profile("p1", "demo"),
        tracked("identify", traits={"consent": {"email": True, **{f"junk{n}": True for n in range(1000)}}}),
    )
    assert profile.consent == {"email": "granted"}
    unsubscribed = fold_event(profile, tracked(event="unsubscribed", properties={"channel": "x" * 10_000}))
    assert unsubscribed.consent == {"email": "granted"}


def test_a_merge_stays_within_the_limits() -> None:
    winner = fold_event(
        Profile(profile_id="p2", source_id="demo", user_id="u1"),
        tracked("identify", anonymous_id="w", user_id="u1", traits={f"w{n}": "w" * 300 for n in range(60)}),
    )
    loser = new_profile("p1", "demo")
    for i, event in enumerate(hostile_events(3_000)):
        loser = fold_event(loser, event.model_copy(update={"anonymous_id": f"anon-{i // 100}"}))
    merged, _ = merge_profiles(winner, loser)
    assert len(merged.traits) <= limits.MAX_TRAITS
    assert len(json.dumps(merged.traits)) <= limits.MAX_TRAITS_BYTES
    assert merged.dropped_trait_count > loser.dropped_trait_count
    assert all(merged.traits[f"w{n}"] == "w" * 300 for n in range(60))  # the contact's own traits are kept
    assert len(merged.event_counts) == limits.MAX_EVENT_NAMES
    assert sum(merged.event_counts.values()) + merged.other_event_count == merged.event_count
    assert len(merged.anonymous_ids) == limits.MAX_ANONYMOUS_IDS
    assert merged.anonymous_ids[-1] == "anon-29"  # the browser logging in now is kept
    assert len(merged.web_push_subscriptions) == limits.MAX_WEB_PUSH_SUBSCRIPTIONS
    assert item_bytes(merged) < DYNAMODB_ITEM_LIMIT / 2


def test_a_profile_keeps_its_newest_merged_profile_ids() -> None:
    contact = Profile(profile_id="p0", source_id="demo", user_id="u1")
    for n in range(limits.MAX_MERGED_PROFILE_IDS + 10):
        contact, _ = merge_profiles(contact, new_profile(f"anon-{n}", "demo"))
    assert len(contact.merged_profile_ids) == limits.MAX_MERGED_PROFILE_IDS
    assert contact.merged_profile_ids[-1] == f"anon-{limits.MAX_MERGED_PROFILE_IDS + 9}"
