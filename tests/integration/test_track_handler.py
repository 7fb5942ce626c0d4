"""The tracking API end to end in one process: API Gateway HTTP API events into track_handler.handler,
DynamoDB on moto. Payloads are the exact shapes analytics-python, analytics.js and RudderStack send
(tests/fixtures)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import track_handler
from footprint.adapters import wiring
from footprint.adapters.events_store import (
    BATCH_WRITE_LIMIT,
    MAX_WRITE_ATTEMPTS,
    DynamoDBEventStore,
    tracked_event_from_stream_image,
)
from footprint.adapters.sources import DynamoDBSourceDirectory
from footprint.clock import ManualClock, current_clock, use_clock
from footprint.models.events import TrackedEvent
from footprint.models.segment import MAX_MESSAGE_BYTES, MESSAGE_MODELS, Source
from footprint.services.ingest import IngestService
from footprint.services.tracking import StoreUnavailableError
from tests.api_gateway import HttpResult, http_api_event, http_result
from tests.builders import T0, tracked
from tests.ingest_fakes import InMemoryEventStore, InMemorySourceDirectory
from tests.integration.conftest import Tables
from tests.lambda_context import lambda_context

# Refused requests publish no metric; Powertools warns about that, which is expected here.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

FIXTURES = Path(__file__).parent.parent / "fixtures"
SOURCES = {
    "wk-python": {"source_id": "backend", "name": "Backend", "allowed_origins": []},
    "wk-browser": {
        "source_id": "shop",
        "name": "Shop",
        "allowed_origins": ["https://shop.example.com", "http://localhost:*", "https://*.preview.example.com"],
    },
}


def invoke(event: dict[str, Any]) -> dict[str, Any]:
    return track_handler.handler(event, lambda_context("TrackFunction"))


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@dataclass
class TrackApi:
    tables: Tables
    # DynamoDB operations the function made, in order (a botocore before-call hook).
    dynamodb_calls: list[str]

    def post(self, path: str, body: Any = None, **options: Any) -> HttpResult:
        return http_result(invoke(http_api_event(path, body, **options)))

    def items(self) -> list[dict[str, Any]]:
        items = self.tables.client.scan(TableName=self.tables.events)["Items"]
        return sorted(items, key=lambda item: (item["pk"]["S"], item["sk"]["S"]))

    def events(self) -> dict[str, TrackedEvent]:
        return {
            event.message_id: event
            for event in (TrackedEvent.model_validate_json(item["body"]["S"]) for item in self.items())
        }

    def stream_records(self) -> list[dict[str, Any]]:
        streams = boto3.client("dynamodbstreams")
        arn = self.tables.client.describe_table(TableName=self.tables.events)["Table"]["LatestStreamArn"]
        records: list[dict[str, Any]] = []
        for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
            iterator = streams.get_shard_iterator(
                StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            records.extend(streams.get_records(ShardIterator=iterator)["Records"])  # type: ignore[arg-type]
        return records


@pytest.fixture
def api(tables: Tables) -> Iterator[TrackApi]:
    for write_key, source in SOURCES.items():
        tables.client.put_item(
            TableName=tables.config, Item={"id": {"S": f"source/{write_key}"}, "value": {"S": json.dumps(source)}}
        )
    # Clients made from now on (the function's, on its cold start) report every call they make.
    session = boto3.DEFAULT_SESSION
    assert session is not None  # the tables fixture made a client from it
    calls: list[str] = []
    session.events.register(
        "before-call.dynamodb", lambda model, **_: calls.append(model.name), unique_id="count-track-calls"
    )
    wiring.reset()
    track_handler.ingest_service.cache_clear()
    previous_clock = current_clock()
    use_clock(ManualClock(T0))
    yield TrackApi(tables=tables, dynamodb_calls=calls)
    use_clock(previous_clock)
    session.events.unregister("before-call.dynamodb", unique_id="count-track-calls")
    track_handler.ingest_service.cache_clear()


def assert_error(result: HttpResult, status: int, code: str) -> dict[str, Any]:
    assert result.status == status, result.body
    assert result.headers["content-type"] == "application/json"
    error = result.body["error"]
    assert error["code"] == code
    assert isinstance(error["reason"], str)
    assert error["reason"]
    assert isinstance(error["errors"], list)
    return dict(error)


# ---------------------------------------------------------------- what real libraries send


def test_analytics_python_batch_is_stored_as_sent(api: TrackApi) -> None:
    # Given the batch analytics-python posts (default json.dumps separators, Basic auth and writeKey)
    body = fixture("analytics_python_batch.json")
    # When the function receives it, 300 ms after the client's sentAt on a clock 5 minutes fast
    result = api.post("/v1/batch", json.dumps(body), write_key="wk-python")
    # Then Segment's answer, and one item per message keyed by visitor and messageId
    assert (result.status, result.body) == (200, {"success": True, "accepted": 4})
    assert [(item["pk"]["S"], item["sk"]["S"]) for item in api.items()] == [
        ("visitor#backend#user-42", "event#0d3f5c8e-5a6b-4c1e-9f0a-2b7d1e6c4a11"),
        ("visitor#backend#user-42", "event#6b8e2f3a-1c4d-4e5f-8a9b-0c1d2e3f4a22"),
        ("visitor#backend#user-42", "event#9a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c33"),
        ("visitor#backend#user-42", "event#c4d5e6f7-a8b9-4c0d-9e1f-2a3b4c5d6e44"),
    ]
    track_item = api.items()[0]
    assert track_item["event"] == {"S": "product_viewed"}
    assert track_item["type"] == {"S": "track"}
    assert track_item["user_id"] == {"S": "user-42"}
    assert "anonymous_id" not in track_item
    assert track_item["timestamp"] == {"S": "2026-11-23T08:59:58.000Z"}
    assert track_item["received_at"] == {"S": "2026-11-23T09:00:00.000Z"}
    assert track_item["expires_at"] == {"N": str(int((T0 + timedelta(days=400)).timestamp()))}
    events = api.events()
    product_viewed = events["0d3f5c8e-5a6b-4c1e-9f0a-2b7d1e6c4a11"]
    # The client's 2 s between the call and sentAt, applied to the server's receive time.
    assert product_viewed.timestamp == T0 - timedelta(seconds=2)
    assert product_viewed.properties["name"] == "Váy nữ phong cách hè"
    assert product_viewed.context == {"library": {"name": "analytics-python", "version": "2.3.4"}}
    page = events["9a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c33"]
    assert (page.event, page.name, page.properties["category"]) == ("page_viewed", "Product", "Products")
    alias = events["c4d5e6f7-a8b9-4c0d-9e1f-2a3b4c5d6e44"]
    assert (alias.previous_id, alias.user_id) == ("anon-7f3c", "user-42")
    assert events["6b8e2f3a-1c4d-4e5f-8a9b-0c1d2e3f4a22"].traits["city"] == "Hà Nội"


def test_the_same_batch_twice_leaves_the_same_items_and_one_insert_each(api: TrackApi) -> None:
    body = json.dumps(fixture("analytics_python_batch.json"))
    assert api.post("/v1/batch", body, write_key="wk-python").status == 200
    first = api.items()
    use_clock(ManualClock(T0 + timedelta(seconds=30)))  # the library's retry, later
    assert api.post("/v1/batch", body, write_key="wk-python").status == 200
    assert [(i["pk"], i["sk"]) for i in api.items()] == [(i["pk"], i["sk"]) for i in first]
    # evaluate's stream filter passes INSERT only: it sees each messageId once.
    names = [record["eventName"] for record in api.stream_records()]
    assert names.count("INSERT") == 4


def test_a_warm_request_makes_exactly_one_dynamodb_call(api: TrackApi) -> None:
    body = json.dumps(fixture("analytics_python_batch.json"))
    api.post("/v1/batch", body, write_key="wk-python")
    assert api.dynamodb_calls == ["GetItem", "BatchWriteItem"]  # cold: the source is read once
    api.dynamodb_calls.clear()
    api.post("/v1/track", {"userId": "u", "event": "e"}, write_key="wk-python")
    assert api.dynamodb_calls == ["BatchWriteItem"]


def test_a_batch_over_25_messages_is_chunked(api: TrackApi) -> None:
    messages = [{"type": "track", "userId": "u", "event": "e", "messageId": f"m-{i}"} for i in range(60)]
    api.post("/v1/batch", {"batch": messages}, write_key="wk-python")
    assert api.dynamodb_calls.count("BatchWriteItem") == 3
    assert len(api.items()) == 60


def test_duplicates_inside_one_batch_are_collapsed(api: TrackApi) -> None:
    messages = [
        {"type": "track", "userId": "u", "event": "first", "messageId": "m-1"},
        {"type": "track", "userId": "u", "event": "again", "messageId": "m-1"},
    ]
    result = api.post("/v1/batch", {"batch": messages}, write_key="wk-python")
    assert result.body == {"success": True, "accepted": 2}
    assert [item["event"]["S"] for item in api.items()] == ["again"]


def test_analytics_js_beacon_with_text_plain_and_body_write_key(api: TrackApi) -> None:
    # analytics.js posts each call to /v1/<first letter> as text/plain, writeKey in the body.
    body = json.dumps(fixture("analytics_js_track.json"))
    result = api.post("/v1/t", body, content_type="text/plain", headers={"origin": "https://shop.example.com"})
    assert (result.status, result.body["success"]) == (200, True)
    event = api.events()["ajs-next-1795424698000-4b1c2d3e-5f6a-4b7c-8d9e-0f1a2b3c4d55"]
    assert (event.source_id, event.anonymous_id, event.user_id) == (
        "shop",
        "7f3c9a2e-1b4d-4e6f-8a0b-c1d2e3f4a5b6",
        None,
    )
    assert event.context["campaign"] == {"source": "zalo", "name": "he"}
    assert event.timestamp == T0 - timedelta(seconds=2)


def test_analytics_js_batching_dispatcher(api: TrackApi) -> None:
    body = json.dumps(fixture("analytics_js_batch.json"))
    result = api.post("/v1/b", body, content_type="text/plain", headers={"origin": "http://localhost:5173"})
    assert result.body == {"success": True, "accepted": 2}
    assert sorted(event.event or "" for event in api.events().values()) == ["form_dismissed", "page_viewed"]


def test_analytics_go_batch_with_its_own_envelope_id(api: TrackApi) -> None:
    result = api.post("/v1/batch", fixture("analytics_go_batch.json"), write_key="wk-python")
    assert result.body == {"success": True, "accepted": 1}
    event = api.events()["7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c88"]
    assert event.timestamp == T0 - timedelta(seconds=2)


def test_rudderstack_message_with_nulls_channel_and_original_timestamp(api: TrackApi) -> None:
    body = fixture("rudderstack_js_track.json")
    result = api.post("/v1/track", body, write_key="wk-browser", headers={"origin": "https://shop.example.com"})
    assert result.status == 200
    event = api.events()["4f2c8a1e-9b3d-4c5e-8f7a-6b5c4d3e2f66"]
    assert (event.event, event.user_id) == ("product_added", None)  # "" is no user id
    assert event.timestamp == T0 - timedelta(seconds=2)


def test_base64_encoded_and_gzipped_bodies(api: TrackApi) -> None:
    message = {"userId": "u", "event": "e", "messageId": "m-b64"}
    assert api.post("/v1/track", message, write_key="wk-python", base64_encoded=True).status == 200
    gzipped = {**message, "messageId": "m-gz"}
    assert api.post("/v1/track", gzipped, write_key="wk-python", gzipped=True).status == 200
    assert set(api.events()) == {"m-b64", "m-gz"}


@pytest.mark.parametrize(
    ("path", "body", "stored_type"),
    [
        ("/v1/identify", {"userId": "u", "traits": {"email": "a@b.c"}}, "identify"),
        ("/v1/i", {"userId": "u"}, "identify"),
        ("/v1/page", {"anonymousId": "a", "name": "Home"}, "page"),
        ("/v1/p", {"anonymousId": "a"}, "page"),
        ("/v1/screen", {"anonymousId": "a", "name": "Home"}, "screen"),
        ("/v1/s", {"anonymousId": "a"}, "screen"),
        ("/v1/group", {"userId": "u", "groupId": "acme"}, "group"),
        ("/v1/g", {"userId": "u", "groupId": "acme"}, "group"),
        ("/v1/alias", {"previousId": "a", "userId": "u"}, "alias"),
        ("/v1/a", {"previousId": "a", "userId": "u"}, "alias"),
        ("/v1/track", {"userId": "u", "event": "e"}, "track"),
        ("/v1/t", {"userId": "u", "event": "e"}, "track"),
    ],
)
def test_every_single_call_route(api: TrackApi, path: str, body: dict[str, Any], stored_type: str) -> None:
    assert api.post(path, body, write_key="wk-python").status == 200
    assert [item["type"]["S"] for item in api.items()] == [stored_type]


def test_stream_images_read_back_as_the_stored_event(api: TrackApi) -> None:
    api.post("/v1/batch", json.dumps(fixture("analytics_python_batch.json")), write_key="wk-python")
    from_stream = {
        event.message_id: event
        for event in (tracked_event_from_stream_image(r["dynamodb"]["NewImage"]) for r in api.stream_records())
    }
    assert from_stream == api.events()


# ---------------------------------------------------------------- auth and origins


@pytest.mark.parametrize(
    "origin", ["https://shop.example.com", "http://localhost:3000", "https://pr-12.preview.example.com"]
)
def test_allowed_browser_origins(api: TrackApi, origin: str) -> None:
    result = api.post(
        "/v1/track", {"anonymousId": "a", "event": "e"}, write_key="wk-browser", headers={"origin": origin}
    )
    assert result.status == 200


@pytest.mark.parametrize(
    ("write_key", "origin"),
    [
        ("wk-browser", "https://evil.test"),
        ("wk-browser", "https://shop.example.com.evil.test"),
        ("wk-browser", "http://shop.example.com"),
        ("wk-browser", "null"),
        ("wk-python", "https://shop.example.com"),  # a server source takes no browser calls
    ],
)
def test_refused_browser_origins(api: TrackApi, write_key: str, origin: str) -> None:
    body = {"anonymousId": "a", "event": "e"}
    result = api.post("/v1/track", body, write_key=write_key, headers={"origin": origin})
    assert_error(result, 403, "origin_not_allowed")
    assert api.items() == []


def test_server_calls_carry_no_origin_and_pass(api: TrackApi) -> None:
    assert api.post("/v1/track", {"userId": "u", "event": "e"}, write_key="wk-browser").status == 200


@pytest.mark.parametrize(
    ("options", "body", "code"),
    [
        ({}, {"userId": "u", "event": "e"}, "missing_write_key"),
        ({"write_key": "wk-nobody"}, {"userId": "u", "event": "e"}, "unknown_write_key"),
        ({}, {"userId": "u", "event": "e", "writeKey": "wk-nobody"}, "unknown_write_key"),
        ({"headers": {"authorization": "Bearer token"}}, {"userId": "u", "event": "e"}, "invalid_authorization"),
        ({"headers": {"authorization": "Basic %%%"}}, {"userId": "u", "event": "e"}, "invalid_authorization"),
    ],
)
def test_unauthorised_requests(api: TrackApi, options: dict[str, Any], body: Any, code: str) -> None:
    assert_error(api.post("/v1/track", body, **options), 401, code)
    assert api.items() == []


def test_body_write_key_authenticates(api: TrackApi) -> None:
    result = api.post("/v1/track", {"userId": "u", "event": "e", "writeKey": "wk-python"})
    assert result.status == 200


# ---------------------------------------------------------------- bad input: always a 4xx JSON answer

BAD_INPUTS: list[tuple[str, Any, dict[str, Any], int, str]] = [
    ("/v1/track", "{not json", {}, 400, "invalid_json"),
    ("/v1/track", "", {}, 400, "invalid_json"),
    ("/v1/track", b"\xff\xfe\x00garbage", {"base64_encoded": True}, 400, "invalid_json"),
    ("/v1/track", "[]", {}, 400, "invalid_body"),
    ("/v1/track", "null", {}, 400, "invalid_body"),
    ("/v1/batch", {"batch": []}, {}, 400, "empty_batch"),
    ("/v1/batch", {"batch": [{"type": "track", "userId": "u", "event": "e"}] * 501}, {}, 400, "too_many_messages"),
    ("/v1/batch", {"batch": None}, {}, 400, "invalid_payload"),
    ("/v1/batch", {"batch": [None]}, {}, 400, "invalid_payload"),
    ("/v1/batch", {"batch": [{"userId": "u", "event": "e"}]}, {}, 400, "invalid_payload"),
    ("/v1/batch", {"batch": [{"type": "purchase", "userId": "u"}]}, {}, 400, "invalid_payload"),
    ("/v1/batch", {"batch": [{"type": "track", "userId": "u", "event": "e"}], "extra": 1}, {}, 400, "invalid_payload"),
    ("/v1/track", {"event": "e"}, {}, 400, "invalid_payload"),
    ("/v1/track", {"userId": "u"}, {}, 400, "invalid_payload"),
    ("/v1/track", {"userId": "u", "event": "e", "propertys": {}}, {}, 400, "invalid_payload"),
    ("/v1/track", {"userId": "u", "event": "e", "properties": "x"}, {}, 400, "invalid_payload"),
    ("/v1/track", {"userId": "u", "event": "e", "type": "page"}, {}, 400, "invalid_payload"),
    ("/v1/track", {"userId": ["u"], "event": "e"}, {}, 400, "invalid_payload"),
    ("/v1/track", {"userId": "u", "event": "e", "timestamp": "soon"}, {}, 400, "invalid_payload"),
    ("/v1/alias", {"userId": "u"}, {}, 400, "invalid_payload"),
    ("/v1/group", {"userId": "u"}, {}, 400, "invalid_payload"),
    ("/v1/track", '{"userId": "u", "event": "e", "properties": {"x": NaN}}', {}, 400, "invalid_json"),
    ("/v1/track", '{"userId": "\\udc00", "event": "e"}', {}, 400, "invalid_json"),
    ("/v1/track", '{"p":' + "[" * 3000 + "]" * 3000 + "}", {}, 400, "invalid_json"),
    (
        "/v1/track",
        {"userId": "u", "event": "e", "properties": {"b": "x" * MAX_MESSAGE_BYTES}},
        {},
        413,
        "message_too_large",
    ),
    ("/v1/batch", {"batch": [{"type": "track", "userId": "u", "event": "e" * 600}] * 10}, {}, 400, "invalid_payload"),
    (
        "/v1/batch",
        {"batch": [{"type": "track", "userId": "u", "event": "e", "p": "x" * 30000}] * 20},
        {},
        413,
        "request_too_large",
    ),
    ("/v1/track", {"userId": "u", "event": "e"}, {"headers": {"content-encoding": "br"}}, 415, "unsupported_encoding"),
    ("/v1/track", "not gzip", {"headers": {"content-encoding": "gzip"}}, 400, "invalid_body"),
]


@pytest.mark.parametrize(("path", "body", "options", "status", "code"), BAD_INPUTS)
def test_bad_input_is_refused_with_json(
    api: TrackApi, path: str, body: Any, options: dict[str, Any], status: int, code: str
) -> None:
    result = api.post(path, body, write_key="wk-python", **options)
    assert_error(result, status, code)
    assert api.items() == []


def test_validation_errors_list_locations_and_messages(api: TrackApi) -> None:
    body = {"batch": [{"type": "track", "userId": "u"}, {"type": "track", "event": "e", "anonymousId": "a", "x": 1}]}
    error = assert_error(api.post("/v1/batch", body, write_key="wk-python"), 400, "invalid_payload")
    assert error["errors"] == [
        {"location": "batch.0.event", "message": "Field required"},
        {"location": "batch.1.x", "message": "Extra inputs are not permitted"},
    ]


@pytest.mark.parametrize(("method", "path"), [("POST", "/v1/unknown"), ("GET", "/v1/track"), ("POST", "/v2/track")])
def test_unknown_routes_answer_404_json(api: TrackApi, method: str, path: str) -> None:
    result = http_result(invoke(http_api_event(path, {}, method=method)))
    assert_error(result, 404, "not_found")


def test_a_failing_store_answers_503_so_clients_retry(api: TrackApi) -> None:
    api.post("/v1/track", {"userId": "u", "event": "warm"}, write_key="wk-python")
    api.tables.client.delete_table(TableName=api.tables.events)
    result = api.post("/v1/track", {"userId": "u", "event": "e"}, write_key="wk-python")
    assert_error(result, 503, "store_unavailable")


# ---------------------------------------------------------------- never a 500, whatever the body

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(list(MESSAGE_MODELS))
    | st.datetimes(timezones=st.just(UTC)).map(lambda moment: moment.isoformat())
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
segment_field = st.sampled_from(
    ["type", "messageId", "anonymousId", "userId", "previousId", "groupId", "event", "name", "category",
     "properties", "traits", "context", "integrations", "timestamp", "originalTimestamp", "sentAt", "writeKey",
     "channel", "version", "_metadata", "batch", "unexpected"]
)  # fmt: skip
message_like = st.dictionaries(segment_field, json_values, max_size=8)
bodies = (
    json_values
    | message_like
    | st.fixed_dictionaries(
        {"batch": st.lists(message_like | json_values, max_size=4)}, optional={"sentAt": json_values}
    )
)
paths = st.sampled_from(["/v1/batch", "/v1/track", "/v1/page", "/v1/identify", "/v1/alias", "/v1/group", "/v1/b"])


def fake_service() -> IngestService:
    sources = InMemorySourceDirectory({"wk": Source(source_id="s", allowed_origins=("https://ok.test",))})
    return IngestService(sources, InMemoryEventStore(), now=lambda: T0)


def assert_answered_in_json(result: HttpResult) -> None:
    if result.status == 200:
        assert result.body["success"] is True
        return
    assert 400 <= result.status < 500, result.body
    error = result.body["error"]
    assert {"code", "reason", "errors"} <= set(error)
    assert all({"location", "message"} <= set(entry) for entry in error["errors"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=paths, body=bodies, origin=st.sampled_from([None, "https://ok.test", "https://no.test"]))
def test_any_json_body_gets_a_2xx_or_4xx_json_answer(path: str, body: Any, origin: str | None) -> None:
    headers = {"origin": origin} if origin else {}
    with mock.patch.object(track_handler, "ingest_service", fake_service):
        response = invoke(http_api_event(path, json.dumps(body), write_key="wk", headers=headers))
    assert_answered_in_json(http_result(response))


@settings(max_examples=100, deadline=None)
@given(raw=st.binary(max_size=200), encoded=st.booleans(), gzipped=st.booleans())
def test_any_bytes_get_a_4xx_json_answer(raw: bytes, encoded: bool, gzipped: bool) -> None:
    body: Any = raw if encoded or gzipped else raw.decode("latin-1")
    with mock.patch.object(track_handler, "ingest_service", fake_service):
        response = invoke(http_api_event("/v1/batch", body, write_key="wk", base64_encoded=encoded, gzipped=gzipped))
    assert_answered_in_json(http_result(response))


@settings(max_examples=100, deadline=None)
@given(
    authorization=st.one_of(st.text(max_size=30), st.text(max_size=30).map(lambda text: "Basic " + text)),
    origin=st.text(max_size=30),
    encoding=st.one_of(st.text(max_size=10), st.sampled_from(["gzip", "identity", "GZIP", ""])),
)
def test_any_header_values_get_a_json_answer(authorization: str, origin: str, encoding: str) -> None:
    headers = {"authorization": authorization, "origin": origin, "content-encoding": encoding}
    body = {"anonymousId": "a", "event": "e"}
    with mock.patch.object(track_handler, "ingest_service", fake_service):
        response = invoke(http_api_event("/v1/track", body, headers=headers))
    assert_answered_in_json(http_result(response))


# ---------------------------------------------------------------- adapters: contract and failure modes


def dynamodb_store(tables: Tables) -> tuple[DynamoDBEventStore, Callable[[], dict[tuple[str, str], TrackedEvent]]]:
    store = DynamoDBEventStore(tables.events, retention_days=400, client=tables.client)

    def stored() -> dict[tuple[str, str], TrackedEvent]:
        items = tables.client.scan(TableName=tables.events)["Items"]
        return {(i["pk"]["S"], i["sk"]["S"]): TrackedEvent.model_validate_json(i["body"]["S"]) for i in items}

    return store, stored


def memory_store(_: Tables) -> tuple[InMemoryEventStore, Callable[[], dict[tuple[str, str], TrackedEvent]]]:
    store = InMemoryEventStore()
    return store, lambda: dict(store.items)


@pytest.mark.parametrize("make_store", [dynamodb_store, memory_store], ids=["dynamodb", "in-memory"])
def test_event_store_contract(tables: Tables, make_store: Callable[[Tables], tuple[Any, Any]]) -> None:
    store, stored = make_store(tables)
    first = tracked(message_id="m-1", anonymous_id="a", event="first")
    resent = tracked(message_id="m-1", anonymous_id="a", event="resent")
    other_visitor = tracked(message_id="m-1", anonymous_id="b")
    store.put_events([first, other_visitor])
    store.put_events([resent, resent])
    assert stored() == {
        ("visitor#demo#a", "event#m-1"): resent,
        ("visitor#demo#b", "event#m-1"): other_visitor,
    }


class ThrottledClient:
    """A DynamoDB client that leaves some requests unprocessed ``throttled_calls`` times."""

    def __init__(self, throttled_calls: int) -> None:
        self.throttled_calls = throttled_calls
        self.request_counts: list[int] = []

    def batch_write_item(self, RequestItems: dict[str, Sequence[Any]]) -> dict[str, Any]:
        (table, requests), = RequestItems.items()  # fmt: skip
        self.request_counts.append(len(requests))
        if len(self.request_counts) <= self.throttled_calls:
            return {"UnprocessedItems": {table: list(requests[:1])}}
        return {"UnprocessedItems": {}}


def test_unprocessed_items_are_retried_with_a_short_backoff() -> None:
    client = ThrottledClient(throttled_calls=2)
    sleeps: list[float] = []
    store = DynamoDBEventStore("events", 400, client=client, sleep=sleeps.append)  # type: ignore[arg-type]
    store.put_events([tracked(message_id=f"m-{i}") for i in range(3)])
    assert client.request_counts == [3, 1, 1]
    assert len(sleeps) == 2
    assert all(0 < pause <= 0.2 for pause in sleeps)


def test_persistent_throttling_becomes_store_unavailable() -> None:
    client = ThrottledClient(throttled_calls=99)
    store = DynamoDBEventStore("events", 400, client=client, sleep=lambda _: None)  # type: ignore[arg-type]
    with pytest.raises(StoreUnavailableError):
        store.put_events([tracked()])
    assert len(client.request_counts) == MAX_WRITE_ATTEMPTS


def test_requests_are_chunked_by_the_batch_write_limit() -> None:
    client = ThrottledClient(throttled_calls=0)
    store = DynamoDBEventStore("events", 400, client=client)  # type: ignore[arg-type]
    store.put_events([tracked(message_id=f"m-{i}") for i in range(2 * BATCH_WRITE_LIMIT + 3)])
    assert client.request_counts == [BATCH_WRITE_LIMIT, BATCH_WRITE_LIMIT, 3]


def test_client_errors_become_store_unavailable() -> None:
    client = mock.Mock()
    client.batch_write_item.side_effect = ClientError(
        {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, "BatchWriteItem"
    )
    with pytest.raises(StoreUnavailableError):
        DynamoDBEventStore("events", 400, client=client).put_events([tracked()])


def test_sources_are_read_once_per_cache_period(tables: Tables) -> None:
    tables.client.put_item(
        TableName=tables.config,
        Item={"id": {"S": "source/wk"}, "value": {"S": json.dumps({"source_id": "s", "allowed_origins": ["*"]})}},
    )
    resource = boto3.resource("dynamodb")
    reads: list[str] = []
    resource.meta.client.meta.events.register("before-call.dynamodb.GetItem", lambda **_: reads.append("read"))
    directory = DynamoDBSourceDirectory(tables.config, max_age_seconds=60, resource=resource)
    assert directory.find_source("wk") == Source(source_id="s", allowed_origins=("*",))
    assert directory.find_source("wk") == Source(source_id="s", allowed_origins=("*",))
    assert reads == ["read"]
    assert directory.find_source("wk-unknown") is None


def test_an_unknown_write_key_is_read_once_per_cache_period(tables: Tables) -> None:
    resource = boto3.resource("dynamodb")
    reads: list[str] = []
    resource.meta.client.meta.events.register("before-call.dynamodb.GetItem", lambda **_: reads.append("read"))
    now = [1000.0]
    directory = DynamoDBSourceDirectory(tables.config, max_age_seconds=60, resource=resource, monotonic=lambda: now[0])
    for _ in range(5):
        assert directory.find_source("guessed-key") is None
    assert reads == ["read"]
    # Created meanwhile: found once the cache period is over.
    tables.client.put_item(
        TableName=tables.config,
        Item={"id": {"S": "source/guessed-key"}, "value": {"S": json.dumps({"source_id": "s", "allowed_origins": []})}},
    )
    now[0] += 61
    assert directory.find_source("guessed-key") == Source(source_id="s", allowed_origins=())
    assert reads == ["read", "read"]


def test_a_misconfigured_or_unreadable_source_is_store_unavailable(tables: Tables) -> None:
    tables.client.put_item(TableName=tables.config, Item={"id": {"S": "source/bad"}, "value": {"S": "{not json"}})
    with pytest.raises(StoreUnavailableError) as caught:
        DynamoDBSourceDirectory(tables.config, max_age_seconds=60).find_source("bad")
    assert caught.value.code == "source_misconfigured"
    with pytest.raises(StoreUnavailableError) as caught:
        DynamoDBSourceDirectory("no-such-table", max_age_seconds=60).find_source("wk")
    assert caught.value.code == "store_unavailable"


def test_stream_image_without_body_is_rejected() -> None:
    with pytest.raises(ValueError, match="no event body"):
        tracked_event_from_stream_image({"pk": {"S": "visitor#s#a"}})


def test_base64_fixture_helper_round_trips() -> None:
    event = http_api_event("/v1/track", {"a": 1}, base64_encoded=True)
    assert json.loads(base64.b64decode(event["body"])) == {"a": 1}


def test_rudderstack_node_s_batch_timestamp_is_its_send_time(api: TrackApi) -> None:
    sent = T0 + timedelta(hours=1)  # the server's clock runs an hour behind the client's
    body = {
        "batch": [
            {
                "type": "track",
                "event": "order_completed",
                "userId": "u-1",
                "messageId": "rs-node-1",
                "originalTimestamp": (sent - timedelta(seconds=2)).isoformat(),
            }
        ],
        "timestamp": sent.isoformat(),
    }

    result = api.post("/v1/batch", body, write_key="wk-python")

    assert result.status == 200
    assert api.events()["rs-node-1"].timestamp == T0 - timedelta(seconds=2)


def test_rudderstack_s_beacon_names_its_write_key_in_the_query(api: TrackApi) -> None:
    body = {"batch": [{"type": "track", "event": "page_left", "anonymousId": "a-1", "messageId": "rs-beacon-1"}]}
    event = http_api_event(
        "/beacon/v1/batch",
        body,
        content_type="text/plain;charset=UTF-8",
        headers={"origin": "https://shop.example.com"},
    )
    event["rawQueryString"] = "writeKey=wk-browser"
    event["queryStringParameters"] = {"writeKey": "wk-browser"}

    result = http_result(invoke(event))

    assert result.status == 200, result.body
    assert api.events()["rs-beacon-1"].source_id == "shop"


def test_the_beacon_without_a_write_key_is_a_401(api: TrackApi) -> None:
    result = api.post("/beacon/v1/batch", {"batch": [{"type": "track", "event": "e", "anonymousId": "a"}]})

    assert result.status == 401
    assert result.body["error"]["code"] == "missing_write_key"
