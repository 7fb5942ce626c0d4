"""evaluate on moto: records the models refuse go to EvaluatePoisonQueue at once, in batched sends, and
never hold up the events around them; transient failures are still retried through the partial batch response.

The poison records are the ones track stored before it checked the event bounds: names of 129-512
characters or that normalise to nothing, times in year 9999 without sentAt, and items that are not events.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from footprint.adapters import wiring
from footprint.adapters.profiles_store import DynamoProfileStore
from footprint.models import keys
from footprint.models.profile import profile_id_for
from footprint.services.profiles import ConcurrentUpdateError
from tests.builders import tracked
from tests.integration.conftest import Tables
from tests.integration.test_evaluate_journeys import START, drain, evaluate, sqs_event, stack, step_rows
from tests.integration.test_evaluate_profiles import stream_record

__all__ = ["stack"]  # the fixture, shared with the journey tests

POISON_BODIES = [
    lambda body: {**body, "event": "x" * 129},
    lambda body: {**body, "event": "y" * 512},
    lambda body: {**body, "event": "-"},
    lambda body: {**body, "event": " "},
    lambda body: {**body, "timestamp": "9999-12-31T00:00:00Z", "original_timestamp": "9999-12-31T00:00:00Z"},
]


@pytest.fixture
def poison(stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    url = stack["sqs"].create_queue(QueueName="evaluate-poison")["QueueUrl"]
    monkeypatch.setenv("EVALUATE_POISON_QUEUE_URL", url)
    wiring.reset()
    calls: list[tuple[str, str]] = []  # (queue URL, operation) of every SQS call evaluate makes

    def count(params: dict[str, Any], model: Any, **_: Any) -> None:
        calls.append((params.get("QueueUrl", ""), model.name))

    wiring.sqs().meta.events.register("before-parameter-build.sqs.*", count)
    stack["queues"]["poison"] = url
    return {**stack, "poison_url": url, "sqs_calls": calls}


def legit_record(tables: Tables, visitor: str) -> dict[str, Any]:
    event = tracked(
        event="product_viewed",
        anonymous_id=visitor,
        at=START,
        properties={"product_id": "vay-nu-he", "name": "Váy nữ phong cách hè", "dwell_seconds": 16},
        context={"timezone": "Asia/Ho_Chi_Minh"},
    )
    return stored_record(tables, event.source_id, visitor, event.message_id, event.model_dump_json())


def poison_record(tables: Tables, index: int) -> dict[str, Any]:
    event = tracked(event="product_viewed", anonymous_id=f"bad-{index}", at=START, message_id=f"bad-{index}")
    if index % (len(POISON_BODIES) + 1) == len(POISON_BODIES):
        body = "{not json"
    else:
        body = json.dumps(POISON_BODIES[index % (len(POISON_BODIES) + 1)](json.loads(event.model_dump_json())))
    return stored_record(tables, event.source_id, event.visitor_id, event.message_id, body)


def stored_record(tables: Tables, source_id: str, visitor: str, message_id: str, body: str) -> dict[str, Any]:
    """The item as track stored it, and its stream record (sequence numbers in stream order)."""
    key = keys.event_key(source_id, visitor, message_id)
    image = {**{k: {"S": v} for k, v in key.items()}, "body": {"S": body}}
    tables.client.put_item(TableName=tables.events, Item=image)
    return stream_record(image, sequence=f"{next(_SEQUENCE):021d}")


_SEQUENCE = itertools.count(1)


@pytest.fixture
def batch_sends(poison: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """The entries of each SendMessageBatch to the poison queue, answered as SQS would without reaching
    moto (whose queues slow down with every message they hold); the tests below use moto's queue."""
    sends: list[list[dict[str, Any]]] = []

    def answer(model: Any, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        request = json.loads(params["body"])
        if request["QueueUrl"] != poison["poison_url"]:
            return None
        entries = request["Entries"]
        sends.append(entries)
        successful = [{"Id": entry["Id"], "MessageId": f"m-{len(sends)}-{entry['Id']}"} for entry in entries]
        for entry in successful:
            entry["MD5OfMessageBody"] = ""
        return AWSResponse(poison["poison_url"], 200, {}, None), {"Successful": successful, "Failed": []}

    wiring.sqs().meta.events.register("before-call.sqs.SendMessageBatch", answer)
    return sends


def parked(poison: dict[str, Any]) -> list[dict[str, Any]]:
    """The poison queue's messages, received once each (hidden afterwards; deleting them is slow on moto)."""
    bodies: list[dict[str, Any]] = []
    while True:
        batch = (
            poison["sqs"]
            .receive_message(QueueUrl=poison["poison_url"], MaxNumberOfMessages=10, VisibilityTimeout=43_200)
            .get("Messages")
        )
        if not batch:
            return bodies
        bodies.extend(json.loads(message["Body"]) for message in batch)


def test_poison_records_are_parked_in_batches_and_the_events_between_them_are_processed(
    poison: dict[str, Any], batch_sends: list[list[dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    tables = poison["tables"]
    # Given one stream batch of 500 poison records with a legitimate event after every tenth
    records, bad, good = [], [], []
    for index in range(500):
        records.append(poison_record(tables, index))
        bad.append(records[-1]["dynamodb"]["SequenceNumber"])
        if index % 10 == 9:
            records.append(legit_record(tables, f"visitor-{index // 10}"))
            good.append(f"visitor-{index // 10}")

    # When evaluate processes it
    response = evaluate({"Records": records})

    # Then the batch reports no failure: nothing is retried
    assert response == {"batchItemFailures": []}
    # every legitimate event moved its visitor into the journey
    assert step_rows(tables).count(("viewed_without_cart", "entered")) == len(good)
    store = DynamoProfileStore(tables.client, tables.profiles)
    assert all(store.get_profile(profile_id_for("demo", "anon", visitor)) for visitor in good)
    # every poison record is in the poison queue, once, with its record and the reason
    messages = [json.loads(entry["MessageBody"]) for entries in batch_sends for entry in entries]
    assert sorted(message["item_id"] for message in messages) == sorted(bad)
    assert {message["source"] for message in messages} == {"events_stream"}
    by_id = {message["item_id"]: message for message in messages}
    first = by_id[bad[0]]
    assert first["record"]["dynamodb"]["SequenceNumber"] == bad[0]
    assert "event must be at most 128 characters" in first["reason"]
    assert "timestamp" in by_id[bad[4]]["reason"]
    assert "not an event item" in by_id[bad[5]]["reason"]
    # sent with SendMessageBatch, 10 a call (SQS's limit), never one call per record
    to_poison = [operation for url, operation in poison["sqs_calls"] if url == poison["poison_url"]]
    assert to_poison == ["SendMessageBatch"] * 50
    assert [len(entries) for entries in batch_sends] == [10] * 50
    # counted in the PoisonRecords metric (an EMF line), to alarm on
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"PoisonRecords"' in line]
    assert [line["PoisonRecords"] for line in metrics] == [[500.0]]
    # and no poison record left a profile or a step behind
    assert store.get_profile(profile_id_for("demo", "anon", "bad-0")) is None


@pytest.mark.parametrize(
    "transient",
    [
        ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, "Commit"),
        ConcurrentUpdateError("the profile kept changing"),
    ],
)
def test_a_transient_failure_is_still_retried_and_never_parked(
    poison: dict[str, Any], monkeypatch: pytest.MonkeyPatch, transient: Exception
) -> None:
    tables = poison["tables"]
    commit = DynamoProfileStore.commit
    failing = True

    def fail_for_lan(self: DynamoProfileStore, change: Any) -> None:
        if change.event.visitor_id == "lan" and failing:
            raise transient
        commit(self, change)

    monkeypatch.setattr(DynamoProfileStore, "commit", fail_for_lan)
    bad, lan, other = poison_record(tables, 0), legit_record(tables, "lan"), legit_record(tables, "minh")

    response = evaluate({"Records": [bad, lan, other]})
    failing = False

    # The batch stops at lan's record: minh's, after it, waits for the retry (never out of order).
    failed = [lan["dynamodb"]["SequenceNumber"], other["dynamodb"]["SequenceNumber"]]
    assert response == {"batchItemFailures": [{"itemIdentifier": item} for item in failed]}
    assert step_rows(tables).count(("viewed_without_cart", "entered")) == 0
    assert [message["item_id"] for message in parked(poison)] == [bad["dynamodb"]["SequenceNumber"]]
    # The stream retries from the failed record: it goes through this time.
    assert evaluate({"Records": [lan, other]}) == {"batchItemFailures": []}
    assert step_rows(tables).count(("viewed_without_cart", "entered")) == 2
    assert parked(poison) == []


def test_a_record_that_cannot_be_parked_is_retried_instead_of_lost(
    poison: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = poison_record(poison["tables"], 2)
    monkeypatch.setenv("EVALUATE_POISON_QUEUE_URL", poison["poison_url"] + "-deleted")
    wiring.reset()

    assert evaluate({"Records": [bad]}) == {
        "batchItemFailures": [{"itemIdentifier": bad["dynamodb"]["SequenceNumber"]}]
    }


def test_a_wake_up_that_is_not_one_is_parked_too(poison: dict[str, Any]) -> None:
    sqs = boto3.client("sqs")
    sqs.send_message(QueueUrl=poison["queues"]["timers"], MessageBody='{"kind": "wake_up"}')
    (message,) = drain(poison, "timers")

    assert evaluate(sqs_event(message)) == {"batchItemFailures": []}
    (parked_wake_up,) = parked(poison)
    assert parked_wake_up["source"] == "timers_queue"
    assert parked_wake_up["record"]["body"] == '{"kind": "wake_up"}'
    assert "not a wake-up" in parked_wake_up["reason"]


def test_large_records_are_parked_within_the_batch_size_limit(poison: dict[str, Any]) -> None:
    from footprint.adapters.poison_queue import SqsPoisonQueue
    from footprint.services.poison import PoisonRecord

    image = {"pk": {"S": "visitor#demo#v"}, "sk": {"S": "event#m"}}
    records = [
        PoisonRecord(str(index), "events_stream", "too big", {"dynamodb": {"Keys": image, "blob": "x" * 60_000}})
        for index in range(6)
    ]
    huge = PoisonRecord("huge", "events_stream", "way too big", {"dynamodb": {"Keys": image, "blob": "x" * 300_000}})

    assert SqsPoisonQueue(wiring.sqs(), poison["poison_url"]).park([*records, huge]) == []

    calls = [operation for url, operation in poison["sqs_calls"] if url == poison["poison_url"]]
    assert calls == ["SendMessageBatch"] * 2  # 4 records of 60 KB fill one batch (256 KB in all)
    messages = {message["item_id"]: message for message in parked(poison)}
    assert set(messages) == {"0", "1", "2", "3", "4", "5", "huge"}
    # A record over the message size limit keeps its keys, to find it again in EventsTable.
    assert messages["huge"]["record"] == {"truncated": True, "eventSourceARN": None, "Keys": image, "messageId": None}
