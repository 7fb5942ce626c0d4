"""evaluate on moto: stream records in, profiles and identity aliases out, each event folded once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

import evaluate_handler
from footprint.adapters.profiles_store import DynamoProfileStore
from footprint.models import keys
from footprint.models.events import TrackedEvent
from footprint.models.profile import profile_id_for
from tests.builders import tracked
from tests.integration.conftest import Tables
from tests.lambda_context import lambda_context


def store_event(tables: Tables, event: TrackedEvent) -> dict[str, Any]:
    """Write the item as track does and return its stream record (NEW_IMAGE, INSERT)."""
    key = keys.event_key(event.source_id, event.visitor_id, event.message_id)
    image = {**{k: {"S": v} for k, v in key.items()}, "body": {"S": event.model_dump_json()}}
    tables.client.put_item(TableName=tables.events, Item=image)
    return stream_record(image, sequence=event.message_id)


def stream_record(image: dict[str, Any], sequence: str) -> dict[str, Any]:
    return {
        "eventID": f"id-{sequence}",
        "eventName": "INSERT",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/footprint-events/stream/2026",
        "dynamodb": {
            "Keys": {"pk": image["pk"], "sk": image["sk"]},
            "NewImage": image,
            "SequenceNumber": sequence,
            "StreamViewType": "NEW_IMAGE",
        },
    }


def deliver(*records: dict[str, Any]) -> dict[str, Any]:
    return evaluate_handler.handler({"Records": list(records)}, lambda_context("evaluate"))


def profile(tables: Tables, profile_id: str):  # type: ignore[no-untyped-def]
    return DynamoProfileStore(tables.client, tables.profiles).get_profile(profile_id)


def test_a_new_event_creates_the_profile(tables: Tables) -> None:
    record = store_event(tables, tracked(anonymous_id="v1", context={"timezone": "Asia/Ho_Chi_Minh"}))
    assert deliver(record) == {"batchItemFailures": []}
    created = profile(tables, profile_id_for("demo", "anon", "v1"))
    assert created is not None
    assert created.event_count == 1
    assert created.timezone == "Asia/Ho_Chi_Minh"


def test_duplicate_stream_records_fold_once(tables: Tables) -> None:
    record = store_event(tables, tracked(anonymous_id="v1"))
    deliver(record, record)
    deliver(record)
    assert profile(tables, profile_id_for("demo", "anon", "v1")).event_count == 1  # type: ignore[union-attr]


def test_identify_through_the_stream_merges_history(tables: Tables) -> None:
    deliver(store_event(tables, tracked(anonymous_id="v1")))
    deliver(store_event(tables, tracked(anonymous_id="v1", after=timedelta(seconds=30))))
    deliver(
        store_event(tables, tracked("identify", anonymous_id="v1", user_id="u1", traits={"email": "lan@example.com"}))
    )
    known = profile(tables, profile_id_for("demo", "anon", "v1"))
    assert known is not None
    assert known.user_id == "u1"
    assert known.email == "lan@example.com"
    assert known.event_count == 3
    # A second device that logs in as the same user joins the same profile.
    deliver(store_event(tables, tracked(anonymous_id="v2")))
    deliver(store_event(tables, tracked("identify", anonymous_id="v2", user_id="u1")))
    merged = profile(tables, known.profile_id)
    assert merged is not None
    assert merged.event_count == 5
    assert sorted(merged.anonymous_ids) == ["v1", "v2"]
    assert profile(tables, profile_id_for("demo", "anon", "v2")).merged_into == known.profile_id  # type: ignore[union-attr]


def test_without_a_poison_queue_a_poison_record_is_retried_and_the_batch_waits_behind_it(tables: Tables) -> None:
    # (With EvaluatePoisonQueue configured it is parked there instead: tests/integration/test_evaluate_poison.py.)
    good = store_event(tables, tracked(anonymous_id="v1"))
    poison = stream_record({"pk": {"S": "visitor#demo#x"}, "sk": {"S": "event#bad"}, "body": {"S": "{not json"}}, "bad")
    response = deliver(poison, good)
    good_id = good["dynamodb"]["SequenceNumber"]
    assert response == {"batchItemFailures": [{"itemIdentifier": "bad"}, {"itemIdentifier": good_id}]}
    assert profile(tables, profile_id_for("demo", "anon", "v1")) is None  # not before the record ahead of it
    assert deliver(good) == {"batchItemFailures": []}
    assert profile(tables, profile_id_for("demo", "anon", "v1")) is not None


@pytest.mark.parametrize("missing", ["body", "NewImage"])
def test_records_without_an_event_are_reported_not_raised(tables: Tables, missing: str) -> None:
    record = store_event(tables, tracked(anonymous_id="v1"))
    if missing == "body":
        del record["dynamodb"]["NewImage"]["body"]
    else:
        del record["dynamodb"]["NewImage"]
    assert deliver(record)["batchItemFailures"] == [{"itemIdentifier": record["dynamodb"]["SequenceNumber"]}]


def test_gone_web_push_subscriptions_are_dropped_from_the_profile(tables: Tables) -> None:
    subscriptions = [
        {"endpoint": f"https://push.example/{name}", "keys": {"p256dh": "k", "auth": "a"}} for name in ("old", "new")
    ]
    for i, subscription in enumerate(subscriptions):
        event = tracked(event="web_push_subscribed", anonymous_id="v1", properties={"subscription": subscription})
        deliver(store_event(tables, event.model_copy(update={"message_id": f"sub-{i}"})))
    store = DynamoProfileStore(tables.client, tables.profiles)
    profile_id = profile_id_for("demo", "anon", "v1")
    store.forget_web_push_subscriptions(profile_id, ["https://push.example/old"])
    remaining = profile(tables, profile_id)
    assert remaining is not None
    assert [s.endpoint for s in remaining.web_push_subscriptions] == ["https://push.example/new"]
    assert remaining.reachable_on("web_push")
