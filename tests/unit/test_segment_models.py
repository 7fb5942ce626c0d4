"""The Segment payload models, clock-skew rule, origin patterns and derived message ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from footprint.models.segment import (
    MAX_ID_BYTES,
    MESSAGE_MODELS,
    PAGE_VIEWED,
    SCREEN_VIEWED,
    AliasMessage,
    GroupMessage,
    IdentifyMessage,
    PageMessage,
    ScreenMessage,
    SegmentBatch,
    Source,
    TrackMessage,
    corrected_timestamp,
    derive_message_id,
    origin_matches,
    serialised_size,
)
from tests.builders import T0


def error_locations(error: ValidationError) -> list[str]:
    return [".".join(str(part) for part in detail["loc"]) for detail in error.errors()]


# ---------------------------------------------------------------- accepted shapes


def test_track_with_every_segment_field_is_accepted() -> None:
    message = TrackMessage.model_validate(
        {
            "type": "track",
            "messageId": "m-1",
            "anonymousId": "a-1",
            "userId": "u-1",
            "event": "product_viewed",
            "properties": {"product_id": "vay-nu-he"},
            "context": {"library": {"name": "analytics.js"}},
            "integrations": {"All": True},
            "timestamp": "2026-11-23T09:00:00.000Z",
            "originalTimestamp": "2026-11-23T08:59:59Z",
            "sentAt": "2026-11-23T09:00:01+07:00",
            "receivedAt": "2026-11-23T09:00:02Z",
            "channel": "web",
            "version": 2,
            "writeKey": "wk",
            "_metadata": {"bundled": ["Segment.io"]},
        }
    )
    assert message.event == "product_viewed"
    assert message.sent_at == datetime(2026, 11, 23, 2, 0, 1, tzinfo=UTC)
    assert message.client_time == datetime(2026, 11, 23, 8, 59, 59, tzinfo=UTC)


def test_nulls_sent_by_rudderstack_and_analytics_python_mean_absent() -> None:
    message = PageMessage.model_validate(
        {"anonymousId": "a-1", "userId": None, "name": None, "category": None, "properties": None, "traits": None}
    )
    assert message.user_id is None
    assert message.properties == {}
    assert message.traits == {}


def test_numeric_ids_are_stringified_and_empty_ids_are_absent() -> None:
    message = IdentifyMessage.model_validate({"userId": 42, "anonymousId": ""})
    assert message.user_id == "42"
    assert message.anonymous_id is None


def test_a_timestamp_without_zone_is_utc() -> None:
    message = TrackMessage.model_validate({"anonymousId": "a", "event": "e", "timestamp": "2026-11-23T09:00:00"})
    assert message.timestamp == datetime(2026, 11, 23, 9, tzinfo=UTC)


def test_batch_envelope_accepts_what_libraries_send() -> None:
    envelope = SegmentBatch.model_validate(
        {"batch": [{}], "sentAt": "2026-11-23T09:00:00Z", "context": {"ip": "1.2.3.4"}, "writeKey": "wk"}
    )
    assert envelope.sent_at == T0
    assert envelope.context == {"ip": "1.2.3.4"}


# ---------------------------------------------------------------- refused shapes


def test_unknown_top_level_field_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        TrackMessage.model_validate({"anonymousId": "a", "event": "e", "evnt": "typo"})
    assert error_locations(caught.value) == ["evnt"]


def test_snake_case_names_are_not_segment_fields() -> None:
    with pytest.raises(ValidationError) as caught:
        TrackMessage.model_validate({"anonymous_id": "a", "event": "e"})
    assert "anonymous_id" in error_locations(caught.value)


@pytest.mark.parametrize("model", list(MESSAGE_MODELS.values()))
def test_every_call_needs_an_anonymous_id_or_a_user_id(model: type[Any]) -> None:
    fields: dict[str, Any] = {"event": "e", "groupId": "g", "previousId": "p"}
    with pytest.raises(ValidationError, match="anonymousId or userId is required"):
        model.model_validate(fields)


def test_track_needs_a_non_empty_event() -> None:
    with pytest.raises(ValidationError) as caught:
        TrackMessage.model_validate({"anonymousId": "a"})
    assert error_locations(caught.value) == ["event"]
    with pytest.raises(ValidationError):
        TrackMessage.model_validate({"anonymousId": "a", "event": ""})


def test_alias_needs_previous_id_and_user_id() -> None:
    assert AliasMessage.model_validate({"previousId": "anon-1", "userId": "u-1"}).previous_id == "anon-1"
    with pytest.raises(ValidationError, match="previousId and userId"):
        AliasMessage.model_validate({"userId": "u-1"})


def test_group_needs_a_group_id() -> None:
    assert GroupMessage.model_validate({"userId": "u", "groupId": 7}).group_id == "7"
    with pytest.raises(ValidationError, match="groupId is required"):
        GroupMessage.model_validate({"userId": "u"})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("properties", []),
        ("context", "ctx"),
        ("traits", 3),
        ("integrations", [1]),
        ("userId", True),
        ("userId", {"id": 1}),
        ("anonymousId", "x" * (MAX_ID_BYTES + 1)),
        ("timestamp", "yesterday"),
        ("timestamp", "0001-01-01T00:00:00+01:00"),
        ("name", 5),
    ],
)
def test_wrong_types_are_refused_at_their_location(field: str, value: Any) -> None:
    fields = {"anonymousId": "a", "event": "e", field: value}
    with pytest.raises(ValidationError) as caught:
        TrackMessage.model_validate(fields)
    assert any(location.startswith(field) for location in error_locations(caught.value))


def test_a_type_contradicting_the_route_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        TrackMessage.model_validate({"type": "identify", "anonymousId": "a", "event": "e"})
    assert error_locations(caught.value) == ["type"]


# ---------------------------------------------------------------- stored names


@pytest.mark.parametrize(
    ("model", "fields", "expected"),
    [
        (TrackMessage, {"event": "product_viewed"}, "product_viewed"),
        (PageMessage, {"name": "Product"}, PAGE_VIEWED),
        (ScreenMessage, {"name": "Home"}, SCREEN_VIEWED),
        (IdentifyMessage, {}, "identify"),
        (GroupMessage, {"groupId": "g"}, "group"),
        (AliasMessage, {"previousId": "p", "userId": "u"}, "alias"),
    ],
)
def test_stored_event_name_per_call_type(model: type[Any], fields: dict[str, Any], expected: str) -> None:
    message = model.model_validate({"anonymousId": "a", **fields})
    assert message.stored_event_name == expected


# ---------------------------------------------------------------- clock skew


def test_skew_is_the_client_interval_applied_to_the_receive_time() -> None:
    # The client clock runs 5 minutes fast; the call happened 2 s before it was sent.
    client_time = T0 + timedelta(minutes=5) - timedelta(seconds=2)
    sent_at = T0 + timedelta(minutes=5)
    received_at = T0 + timedelta(milliseconds=300)
    result = corrected_timestamp(received_at=received_at, sent_at=sent_at, client_time=client_time)
    assert result == received_at - timedelta(seconds=2)


def test_without_sent_at_the_client_time_stands() -> None:
    client_time = T0 - timedelta(days=30)  # a historical import
    assert corrected_timestamp(received_at=T0, sent_at=None, client_time=client_time) == client_time


def test_without_any_client_time_the_receive_time_stands() -> None:
    assert corrected_timestamp(received_at=T0, sent_at=T0 + timedelta(hours=1), client_time=None) == T0


def test_absurd_skew_overflows_instead_of_inventing_a_date() -> None:
    with pytest.raises(OverflowError):
        corrected_timestamp(
            received_at=T0,
            sent_at=datetime(9999, 12, 31, tzinfo=UTC),
            client_time=datetime(1, 1, 1, tzinfo=UTC),
        )


# ---------------------------------------------------------------- derived message ids


def test_derived_message_id_ignores_what_a_retry_changes() -> None:
    first = {"anonymousId": "a", "event": "e", "timestamp": "t", "sentAt": "s1", "writeKey": "k"}
    retry = {**first, "sentAt": "s2", "_metadata": {"retryCount": 1}}
    assert derive_message_id(first, "track") == derive_message_id(retry, "track")
    assert derive_message_id(first, "track").startswith("derived-")


def test_derived_message_id_changes_with_content_and_call_type() -> None:
    message = {"anonymousId": "a", "event": "e", "timestamp": "t"}
    assert derive_message_id(message, "track") != derive_message_id({**message, "event": "f"}, "track")
    assert derive_message_id(message, "track") != derive_message_id(message, "page")
    # Key order is not content.
    assert derive_message_id(dict(reversed(list(message.items()))), "track") == derive_message_id(message, "track")


# ---------------------------------------------------------------- origins and sizes


@pytest.mark.parametrize(
    ("origin", "pattern", "allowed"),
    [
        ("https://shop.example.com", "https://shop.example.com", True),
        ("https://SHOP.example.com", "https://shop.example.com/", True),
        ("http://shop.example.com", "https://shop.example.com", False),
        ("http://localhost:3000", "http://localhost:*", True),
        ("http://localhost", "http://localhost:*", False),
        ("https://a.b.example.com", "https://*.example.com", True),
        ("https://example.com", "https://*.example.com", False),
        ("https://example.com.evil.test", "https://*.example.com", False),
        ("https://evil-example.com", "https://*.example.com", False),
        ("null", "*", True),
        ("null", "https://shop.example.com", False),
    ],
)
def test_origin_patterns(origin: str, pattern: str, allowed: bool) -> None:
    assert origin_matches(origin, pattern) is allowed


def test_a_source_without_allowed_origins_refuses_every_browser() -> None:
    assert not Source(source_id="server").allows_origin("https://shop.example.com")
    assert Source(source_id="web", allowed_origins=("https://x.test", "http://localhost:*")).allows_origin(
        "http://localhost:8080"
    )


def test_serialised_size_counts_utf8_bytes_of_compact_json() -> None:
    assert serialised_size({"a": "é"}) == len('{"a":"é"}'.encode())
