"""The ingest use case against in-memory ports: auth, origins, limits, skew, dedupe, derivation."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import timedelta
from typing import Any

import pytest

from footprint.models.segment import MAX_BATCH_MESSAGES, MAX_MESSAGE_BYTES, MAX_REQUEST_BYTES, Source
from footprint.services.ingest import MAX_REPORTED_ERRORS, IngestService, merged
from footprint.services.tracking import (
    InvalidPayloadError,
    OriginNotAllowedError,
    PayloadTooLargeError,
    TrackingRequest,
    UnauthorizedError,
    UnsupportedEncodingError,
)
from tests.api_gateway import basic_auth
from tests.builders import T0
from tests.ingest_fakes import InMemoryEventStore, InMemorySourceDirectory

WRITE_KEY = "wk-shop"
SHOP = Source(source_id="shop", name="Shop", allowed_origins=("https://shop.example.com", "http://localhost:*"))


@pytest.fixture
def store() -> InMemoryEventStore:
    return InMemoryEventStore()


@pytest.fixture
def sources() -> InMemorySourceDirectory:
    return InMemorySourceDirectory({WRITE_KEY: SHOP})


@pytest.fixture
def service(sources: InMemorySourceDirectory, store: InMemoryEventStore) -> IngestService:
    return IngestService(sources, store, now=lambda: T0)


def request(
    body: Any,
    call: Any = None,
    *,
    authorization: str | None = basic_auth(WRITE_KEY),
    origin: str | None = None,
    **options: Any,
) -> TrackingRequest:
    text = body if isinstance(body, str) else json.dumps(body)
    return TrackingRequest(call=call, body=text, authorization=authorization, origin=origin, **options)


def track(**fields: Any) -> dict[str, Any]:
    return {"type": "track", "anonymousId": "anon-1", "event": "product_viewed", **fields}


# ---------------------------------------------------------------- the normal path


def test_a_batch_is_stored_in_one_write_with_skew_corrected_times(
    service: IngestService, store: InMemoryEventStore
) -> None:
    # Given a client whose clock runs 5 minutes fast, sending 2 s and 1 s after two calls
    sent_at = T0 + timedelta(minutes=5)
    body = {
        "batch": [
            track(messageId="m-1", timestamp=(sent_at - timedelta(seconds=2)).isoformat()),
            track(messageId="m-2", timestamp=(sent_at - timedelta(seconds=1)).isoformat(), event="product_added"),
        ],
        "sentAt": sent_at.isoformat(),
    }
    # When it is ingested
    result = service.ingest(request(body))
    # Then both are stored in one call, at the server's time minus the client's interval
    assert (result.source_id, result.accepted, store.put_calls) == ("shop", 2, 1)
    by_id = {event.message_id: event for event in store.events}
    assert by_id["m-1"].timestamp == T0 - timedelta(seconds=2)
    assert by_id["m-2"].timestamp == T0 - timedelta(seconds=1)
    assert by_id["m-1"].original_timestamp == sent_at - timedelta(seconds=2)
    assert by_id["m-1"].received_at == T0
    assert by_id["m-1"].sent_at == sent_at


def test_a_message_sent_at_wins_over_the_batch_sent_at(service: IngestService, store: InMemoryEventStore) -> None:
    body = {
        "batch": [track(timestamp="2026-11-23T10:00:00Z", sentAt="2026-11-23T10:00:03Z")],
        "sentAt": "2026-11-23T11:00:00Z",
    }
    service.ingest(request(body))
    assert store.events[0].timestamp == T0 - timedelta(seconds=3)


def test_a_call_without_client_time_happened_when_received(service: IngestService, store: InMemoryEventStore) -> None:
    service.ingest(request({"anonymousId": "a", "event": "e"}, "track"))
    assert store.events[0].timestamp == T0


def test_batch_context_merges_under_each_message(service: IngestService, store: InMemoryEventStore) -> None:
    body = {
        "batch": [track(context={"page": {"url": "u"}, "library": {"name": "mine"}})],
        "context": {"library": {"name": "analytics-node", "version": "1"}, "ip": "1.2.3.4"},
    }
    service.ingest(request(body))
    assert store.events[0].context == {
        "library": {"name": "mine", "version": "1"},
        "ip": "1.2.3.4",
        "page": {"url": "u"},
    }


def test_merged_keeps_the_override_and_does_not_touch_its_inputs() -> None:
    base = {"a": {"b": 1, "c": 2}}
    override = {"a": {"b": 3}, "d": 4}
    assert merged(base, override) == {"a": {"b": 3, "c": 2}, "d": 4}
    assert base == {"a": {"b": 1, "c": 2}}


@pytest.mark.parametrize(
    ("call", "fields", "event", "name"),
    [
        ("page", {"name": "Product", "category": "Shop"}, "page_viewed", "Product"),
        ("screen", {"name": "Home"}, "screen_viewed", "Home"),
        ("identify", {"traits": {"email": "a@b.c"}}, "identify", None),
        ("group", {"groupId": "acme"}, "group", None),
        ("alias", {"previousId": "anon-1", "userId": "u-1"}, "alias", None),
    ],
)
def test_each_call_type_is_normalised(
    service: IngestService, store: InMemoryEventStore, call: str, fields: dict[str, Any], event: str, name: Any
) -> None:
    service.ingest(request({"anonymousId": "anon-1", **fields}, call))
    stored = store.events[0]
    assert (stored.type, stored.event, stored.name) == (call, event, name)


def test_page_category_and_group_id_travel_in_properties(service: IngestService, store: InMemoryEventStore) -> None:
    service.ingest(request({"anonymousId": "a", "category": "Shop", "properties": {"url": "u"}}, "page"))
    service.ingest(request({"userId": "u", "groupId": "acme", "traits": {"plan": "pro"}}, "group"))
    page, group = sorted(store.events, key=lambda e: e.type, reverse=True)
    assert page.properties == {"url": "u", "category": "Shop"}
    assert group.properties == {"group_id": "acme"}
    assert group.traits == {"plan": "pro"}


# ---------------------------------------------------------------- dedupe and derived ids


def test_the_same_batch_twice_overwrites_the_same_events(service: IngestService, store: InMemoryEventStore) -> None:
    body = {"batch": [track(messageId="m-1"), track(messageId="m-2")]}
    service.ingest(request(body))
    service.ingest(request(body))
    assert sorted(store.items) == [("visitor#shop#anon-1", "event#m-1"), ("visitor#shop#anon-1", "event#m-2")]


def test_a_retry_without_message_id_lands_on_the_same_event(service: IngestService, store: InMemoryEventStore) -> None:
    call = {"anonymousId": "a", "event": "e", "timestamp": "2026-11-23T08:00:00Z"}
    service.ingest(request({**call, "sentAt": "2026-11-23T08:00:01Z"}, "track"))
    service.ingest(request({**call, "sentAt": "2026-11-23T08:00:09Z", "writeKey": WRITE_KEY}, "track"))
    assert len(store.items) == 1
    assert store.events[0].message_id.startswith("derived-")


def test_different_calls_without_message_id_stay_apart(service: IngestService, store: InMemoryEventStore) -> None:
    service.ingest(
        request({"batch": [track(timestamp="2026-11-23T08:00:00Z"), track(timestamp="2026-11-23T08:00:01Z")]})
    )
    assert len(store.items) == 2


# ---------------------------------------------------------------- authentication and origins


def test_the_write_key_may_come_in_the_body(service: IngestService, store: InMemoryEventStore) -> None:
    service.ingest(request({"writeKey": WRITE_KEY, **track()}, "track", authorization=None))
    assert len(store.events) == 1


def test_the_basic_user_wins_over_the_body_key(service: IngestService, sources: InMemorySourceDirectory) -> None:
    service.ingest(request({"writeKey": "someone-else", **track()}, "track"))
    assert sources.lookups == [WRITE_KEY]


@pytest.mark.parametrize(
    ("authorization", "body_key", "code"),
    [
        (None, None, "missing_write_key"),
        (basic_auth(""), None, "missing_write_key"),
        (None, "wk-unknown", "unknown_write_key"),
        (basic_auth("wk-unknown"), None, "unknown_write_key"),
        (basic_auth("x" * 300), None, "unknown_write_key"),
        ("Bearer abc", None, "invalid_authorization"),
        ("Basic not*base64", None, "invalid_authorization"),
        ("Basic " + base64.b64encode(b"\xff\xfe:").decode(), None, "invalid_authorization"),
        ("Basic d2s6é", None, "invalid_authorization"),
    ],
)
def test_requests_without_a_valid_write_key_are_refused(
    service: IngestService, store: InMemoryEventStore, authorization: str | None, body_key: str | None, code: str
) -> None:
    body = track() if body_key is None else {**track(), "writeKey": body_key}
    with pytest.raises(UnauthorizedError) as caught:
        service.ingest(request(body, "track", authorization=authorization))
    assert caught.value.code == code
    assert store.put_calls == 0


@pytest.mark.parametrize("origin", ["https://shop.example.com", "http://localhost:5173"])
def test_allowed_origins_may_send(service: IngestService, store: InMemoryEventStore, origin: str) -> None:
    service.ingest(request(track(), "track", origin=origin))
    assert len(store.events) == 1


def test_other_origins_are_refused(service: IngestService, store: InMemoryEventStore) -> None:
    with pytest.raises(OriginNotAllowedError):
        service.ingest(request(track(), "track", origin="https://evil.test"))
    assert store.put_calls == 0


# ---------------------------------------------------------------- bodies and limits


def test_base64_and_gzip_bodies_are_read(service: IngestService, store: InMemoryEventStore) -> None:
    raw = json.dumps(track(messageId="m-gz")).encode()
    service.ingest(
        TrackingRequest(
            call="track",
            body=base64.b64encode(gzip.compress(raw)).decode(),
            is_base64_encoded=True,
            authorization=basic_auth(WRITE_KEY),
            content_encoding="gzip",
        )
    )
    assert store.events[0].message_id == "m-gz"


def test_other_content_encodings_are_refused(service: IngestService) -> None:
    with pytest.raises(UnsupportedEncodingError):
        service.ingest(request(track(), "track", content_encoding="br"))


def test_a_gzip_bomb_is_refused_without_inflating_it(service: IngestService) -> None:
    bomb = gzip.compress(b'{"a":"' + b"0" * (20 * MAX_REQUEST_BYTES) + b'"}')
    with pytest.raises(PayloadTooLargeError) as caught:
        service.ingest(
            TrackingRequest(
                call="track",
                body=base64.b64encode(bomb).decode(),
                is_base64_encoded=True,
                content_encoding="gzip",
            )
        )
    assert caught.value.code == "request_too_large"


def test_a_message_over_32_kb_is_refused(service: IngestService, store: InMemoryEventStore) -> None:
    big = track(properties={"blob": "x" * MAX_MESSAGE_BYTES})
    with pytest.raises(PayloadTooLargeError) as caught:
        service.ingest(request({"batch": [track(), big]}))
    assert caught.value.code == "message_too_large"
    assert "batch.1" in caught.value.reason
    assert store.put_calls == 0


def test_a_message_just_under_32_kb_is_accepted(service: IngestService, store: InMemoryEventStore) -> None:
    message = track(properties={"blob": ""})
    padding = MAX_MESSAGE_BYTES - len(json.dumps(message, separators=(",", ":")).encode())
    service.ingest(request(track(properties={"blob": "x" * padding}), "track"))
    assert len(store.events) == 1


def test_the_batch_context_counts_toward_each_message_size(service: IngestService) -> None:
    # Every message is stored with the batch context merged in.
    body = {"batch": [track()], "context": {"blob": "x" * MAX_MESSAGE_BYTES}}
    with pytest.raises(PayloadTooLargeError) as caught:
        service.ingest(request(body))
    assert "with the batch context" in caught.value.reason


def test_a_base64_body_with_non_ascii_text_is_refused(service: IngestService) -> None:
    with pytest.raises(InvalidPayloadError) as caught:
        service.ingest(TrackingRequest(call="track", body="eyJ9é", is_base64_encoded=True))
    assert caught.value.code == "invalid_body"


def test_a_request_over_500_kb_is_refused(service: IngestService) -> None:
    messages = [track(properties={"blob": "x" * 30_000}) for _ in range(20)]
    with pytest.raises(PayloadTooLargeError) as caught:
        service.ingest(request({"batch": messages}))
    assert caught.value.code == "request_too_large"


def test_batch_size_bounds(service: IngestService, store: InMemoryEventStore) -> None:
    service.ingest(request({"batch": [track(messageId=f"m-{i}") for i in range(MAX_BATCH_MESSAGES)]}))
    assert len(store.items) == MAX_BATCH_MESSAGES
    with pytest.raises(InvalidPayloadError) as caught:
        service.ingest(request({"batch": [track()] * (MAX_BATCH_MESSAGES + 1)}))
    assert caught.value.code == "too_many_messages"
    with pytest.raises(InvalidPayloadError) as caught:
        service.ingest(request({"batch": []}))
    assert caught.value.code == "empty_batch"


# ---------------------------------------------------------------- validation errors


def test_errors_name_every_bad_field_with_its_location(service: IngestService, store: InMemoryEventStore) -> None:
    body = {
        "batch": [
            track(),
            {"type": "track", "anonymousId": "a"},
            {"type": "identify", "traits": []},  # (the identity check runs once the fields are valid)
            {"type": "visit", "anonymousId": "a"},
            {"anonymousId": "a"},
            "not a message",
            track(evnt="typo"),
        ]
    }
    with pytest.raises(InvalidPayloadError) as caught:
        service.ingest(request(body))
    error = caught.value
    assert error.code == "invalid_payload"
    locations = [entry["location"] for entry in error.errors]
    assert locations == [
        "batch.1.event",
        "batch.2.traits",
        "batch.3.type",
        "batch.4.type",
        "batch.5",
        "batch.6.evnt",
    ]
    assert all(entry["message"] for entry in error.errors)
    assert error.reason.startswith("6 problems in 7 message(s); first: batch.1.event")
    assert store.put_calls == 0  # all or nothing


def test_the_error_list_is_capped(service: IngestService) -> None:
    with pytest.raises(InvalidPayloadError) as caught:
        service.ingest(request({"batch": [{"type": "track"}] * 100}))
    assert len(caught.value.errors) == MAX_REPORTED_ERRORS
    assert caught.value.reason.startswith("100 problems in 100 message(s)")


@pytest.mark.parametrize(
    ("body", "call", "code"),
    [
        ("{", "track", "invalid_json"),
        ("", "track", "invalid_json"),
        ("[1, 2]", "track", "invalid_body"),
        ('"text"', None, "invalid_body"),
        ('{"anonymousId": "a", "event": "e", "properties": {"x": NaN}}', "track", "invalid_json"),
        ('{"anonymousId": "a", "event": "e", "properties": {"x": 1e999}}', "track", "invalid_json"),
        ('{"anonymousId": "a", "event": "e", "properties": {"x": ' + "9" * 5000 + "}}", "track", "invalid_json"),
        ('{"anonymousId": "\\ud800", "event": "e"}', "track", "invalid_json"),
        ('{"p": ' + "[" * 100 + "]" * 100 + "}", "track", "invalid_json"),
        ('{"p": ' + "[" * 5000 + "]" * 5000 + "}", "track", "invalid_json"),
        ('{"batch": {"type": "track"}}', None, "invalid_payload"),
        ('{"messages": []}', None, "invalid_payload"),
        ('{"batch": [{"type": "track", "anonymousId": "a", "event": "e"}], "sentAt": 5e20}', None, "invalid_payload"),
        (
            '{"anonymousId": "a", "event": "e", "sentAt": "9999-12-31T00:00:00Z", "timestamp": "0001-01-02T00:00:00Z"}',
            "track",
            "invalid_payload",
        ),
    ],
)
def test_malformed_bodies_are_refused_with_a_code(service: IngestService, body: str, call: Any, code: str) -> None:
    with pytest.raises(InvalidPayloadError) as caught:
        service.ingest(request(body, call))
    assert caught.value.code == code
    assert caught.value.reason


def test_overflowing_skew_is_reported_at_the_timestamp(service: IngestService) -> None:
    body = {"anonymousId": "a", "event": "e", "sentAt": "9999-12-31T00:00:00Z", "timestamp": "0001-01-02T00:00:00Z"}
    with pytest.raises(InvalidPayloadError) as caught:
        service.ingest(request(body, "track"))
    assert caught.value.errors == [
        {"location": "timestamp", "message": "is out of range once corrected for clock skew"}
    ]


# ---------------------------------------------------------------- the event bounds evaluate shares


@pytest.mark.parametrize(
    ("fields", "location"),
    [
        ({"event": "x" * 129}, "event"),
        ({"event": "x" * 512}, "event"),
        ({"event": "-"}, "event"),
        ({"event": " "}, "event"),
        ({"event": " - -  "}, "event"),
        ({"timestamp": "9999-12-31T00:00:00Z"}, "timestamp"),
        ({"originalTimestamp": "9999-12-31T00:00:00Z"}, "originalTimestamp"),
        ({"timestamp": (T0 + timedelta(days=2)).isoformat()}, "timestamp"),
        ({"timestamp": "1999-12-31T23:59:59Z"}, "timestamp"),
        # A skew correction cannot bring a time evaluate refuses back into range either.
        ({"timestamp": "2150-01-01T00:00:00Z", "sentAt": "2026-01-01T00:00:00Z"}, "timestamp"),
    ],
)
def test_events_evaluate_would_refuse_are_a_400_naming_the_field(
    service: IngestService, store: InMemoryEventStore, fields: dict[str, Any], location: str
) -> None:
    # Given a batch of good events with one evaluate could never process in the middle
    body = {"batch": [track(messageId="ok-1"), track(messageId="bad", **fields), track(messageId="ok-2")]}
    # When it is ingested, the whole batch is refused (Segment answers a malformed batch with 400) ...
    with pytest.raises(InvalidPayloadError) as caught:
        service.ingest(request(body))
    # ... naming the message and the field, and nothing is stored
    assert caught.value.code == "invalid_payload"
    assert [error["location"] for error in caught.value.errors] == [f"batch.1.{location}"]
    assert store.items == {}


def test_every_bad_message_of_a_batch_is_listed(service: IngestService) -> None:
    body = {"batch": [track(event="-"), track(), track(timestamp="9999-12-31T00:00:00Z")]}
    with pytest.raises(InvalidPayloadError) as caught:
        service.ingest(request(body))
    assert [error["location"] for error in caught.value.errors] == ["batch.0.event", "batch.2.timestamp"]
    assert caught.value.reason.startswith("2 problems in 3 message(s)")


@pytest.mark.parametrize(
    "fields",
    [
        {"event": "x" * 128},
        {"event": " Product  Viewed "},
        {"event": "_"},
        {"timestamp": (T0 + timedelta(hours=23)).isoformat()},
        {"timestamp": "2000-01-01T00:00:00Z"},
        # A client clock 30 years ahead, corrected by its sentAt.
        {"timestamp": "2056-11-23T08:59:00Z", "sentAt": "2056-11-23T09:00:00Z"},
    ],
)
def test_events_at_the_bounds_are_stored_and_the_engine_takes_them(
    service: IngestService, store: InMemoryEventStore, fields: dict[str, Any]
) -> None:
    from footprint.engine import EventInput
    from footprint.models.events import TrackedEvent

    service.ingest(request(track(**fields), "track"))
    (stored,) = store.items.values()
    # The stored event reads back (as evaluate reads it) and becomes an engine input.
    event = TrackedEvent.model_validate_json(stored.model_dump_json())
    assert EventInput.from_tracked(event).name == event.canonical_event
