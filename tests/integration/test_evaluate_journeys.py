"""evaluate on moto with a published journey: at-least-once in, exactly-once out.

Duplicate stream records, a wake-up delivered twice, a retried batch and effects performed again after a
crash must not produce a second step (a second StepsTable row) or a second message.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

import evaluate_handler
from footprint.adapters import wiring
from footprint.adapters.enrollments_store import DynamoEnrollmentStore
from footprint.adapters.journey_catalog import DynamoJourneyCatalog
from footprint.adapters.steps import STEP_LOGGER
from footprint.clock import ManualClock, SystemClock, use_clock
from footprint.models import keys
from footprint.models.journey import load_journey_yaml
from footprint.models.profile import profile_id_for
from footprint_local.cli import main as footprint_cli
from tests.builders import tracked
from tests.integration.conftest import Tables
from tests.integration.test_evaluate_profiles import store_event
from tests.lambda_context import lambda_context

SERVICES = Path(__file__).resolve().parents[2] / "journeys" / "services-consult.yaml"
START = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 09:00 in Ho Chi Minh City, outside quiet hours


@pytest.fixture
def stack(tables: Tables, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    sqs = boto3.client("sqs")
    queues = {name: sqs.create_queue(QueueName=name)["QueueUrl"] for name in ("send", "timers", "scheduler-dlq")}
    arn = {
        name: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        for name, url in queues.items()
    }
    boto3.client("scheduler").create_schedule_group(Name="footprint-wake-ups")
    monkeypatch.setenv("SEND_QUEUE_URL", queues["send"])
    monkeypatch.setenv("TIMERS_QUEUE_URL", queues["timers"])
    monkeypatch.setenv("TIMERS_QUEUE_ARN", arn["timers"])
    monkeypatch.setenv("SCHEDULE_GROUP", "footprint-wake-ups")
    monkeypatch.setenv("SCHEDULER_ROLE_ARN", "arn:aws:iam::123456789012:role/scheduler")
    monkeypatch.setenv("SCHEDULER_DEAD_LETTER_ARN", arn["scheduler-dlq"])
    clock = ManualClock(START, pending_delay=0)
    use_clock(clock)
    wiring.reset()
    text = SERVICES.read_text(encoding="utf-8")
    DynamoJourneyCatalog(tables.client, tables.config, cache_seconds=0).publish(load_journey_yaml(text), text)
    yield {"sqs": sqs, "queues": queues, "clock": clock, "tables": tables}
    use_clock(SystemClock())


def drain(stack: dict[str, Any], queue: str) -> list[dict[str, Any]]:
    messages = []
    while True:
        batch = stack["sqs"].receive_message(QueueUrl=stack["queues"][queue], MaxNumberOfMessages=10)
        if not batch.get("Messages"):
            return messages
        for message in batch["Messages"]:
            stack["sqs"].delete_message(QueueUrl=stack["queues"][queue], ReceiptHandle=message["ReceiptHandle"])
            messages.append(message)


def sqs_event(*messages: dict[str, Any]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"{m['MessageId']}-{i}",
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:timers",
                "awsRegion": "us-east-1",
            }
            for i, m in enumerate(messages)
        ]
    }


def schedules() -> list[dict[str, Any]]:
    client = boto3.client("scheduler")
    names = [s["Name"] for s in client.list_schedules(GroupName="footprint-wake-ups")["Schedules"]]
    return [client.get_schedule(Name=n, GroupName="footprint-wake-ups") for n in names]


def evaluate(event: dict[str, Any]) -> dict[str, Any]:
    return evaluate_handler.handler(event, lambda_context("evaluate"))


def product_view(stack: dict[str, Any]) -> dict[str, Any]:
    return store_event(
        stack["tables"],
        tracked(
            event="product_viewed",
            anonymous_id="lan",
            at=START,
            properties={"product_id": "vay-nu-he", "name": "Váy nữ phong cách hè", "dwell_seconds": 16},
            context={"timezone": "Asia/Ho_Chi_Minh"},
        ),
    )


def test_duplicate_stream_records_and_a_double_fired_timer_send_once(stack: dict[str, Any]) -> None:
    record = product_view(stack)
    # The same record three times: in one batch, and again in a retried batch.
    assert evaluate({"Records": [record, record]}) == {"batchItemFailures": []}
    assert evaluate({"Records": [record]}) == {"batchItemFailures": []}
    # The consult form goes out at once (the 15 s of reading are behind us), once.
    sends = drain(stack, "send")
    assert [json.loads(m["Body"])["channel"] for m in sends] == ["onsite_form"]
    message = json.loads(sends[0]["Body"])
    assert message["context"]["trigger"]["product_id"] == "vay-nu-he"
    assert message["idempotency_key"].startswith("services-consult.v1.")
    # Waiting for the form answer (30 minutes): a Scheduler schedule, not an SQS timer.
    assert drain(stack, "timers") == []
    [schedule] = schedules()
    assert schedule["ScheduleExpression"] == "at(2026-11-23T02:30:00)"
    assert schedule["ActionAfterCompletion"] == "DELETE"
    assert json.loads(schedule["Target"]["Input"])["node_id"] == "await_form_response"

    # The visitor closes the form: the 10 s pause before the onsite push is an SQS timer...
    stack["clock"].advance(timedelta(seconds=20))
    dismissed = tracked(
        event="form_dismissed",
        anonymous_id="lan",
        at=stack["clock"].now(),
        properties={"journey_id": "services-consult", "node_id": "consult_form"},
    )
    evaluate({"Records": [store_event(stack["tables"], dismissed)]})
    [timer] = drain(stack, "timers")
    assert json.loads(timer["Body"])["due_at"].startswith("2026-11-23T02:00:30")
    stack["clock"].advance(timedelta(seconds=10))
    # ...delivered twice (SQS is at least once), once in a batch with itself.
    assert evaluate(sqs_event(timer, timer)) == {"batchItemFailures": []}
    assert evaluate(sqs_event(timer)) == {"batchItemFailures": []}
    assert [json.loads(m["Body"])["node_id"] for m in drain(stack, "send")] == ["onsite_offer"]


def test_a_schedule_that_fires_twice_advances_the_journey_once(stack: dict[str, Any]) -> None:
    subscription = {"endpoint": "https://push.example/lan", "keys": {"p256dh": "k", "auth": "a"}}
    subscribed = tracked(
        event="web_push_subscribed",
        anonymous_id="lan",
        at=START - timedelta(minutes=1),
        properties={"subscription": subscription},
    )
    evaluate({"Records": [store_event(stack["tables"], subscribed)]})
    evaluate({"Records": [product_view(stack)]})
    drain(stack, "send")
    [schedule] = schedules()
    fired = {"MessageId": "s1", "ReceiptHandle": "r1", "Body": schedule["Target"]["Input"]}
    stack["clock"].advance(timedelta(minutes=30))
    # Scheduler fires at least once: the same Input twice, in two invocations.
    evaluate(sqs_event(fired))
    evaluate(sqs_event(fired))
    # The form timed out; the next step is the one-day wait: exactly one new schedule, no message.
    assert drain(stack, "send") == []
    waits = [s for s in schedules() if json.loads(s["Target"]["Input"])["node_id"] == "one_day_after_view"]
    assert len(waits) == 1
    assert waits[0]["ScheduleExpression"] == "at(2026-11-24T02:00:00)"


def test_journeys_follow_the_visitor_into_the_known_contact(stack: dict[str, Any]) -> None:
    tables = stack["tables"]
    # The contact is known from their phone.
    known = tracked(
        "identify", anonymous_id="phone", user_id="u1", at=START - timedelta(days=3), traits={"name": "Lan"}
    )
    evaluate({"Records": [store_event(tables, known)]})
    # Browsing anonymously on a laptop, they get the consult form (the journey waits for an answer)...
    evaluate({"Records": [product_view(stack)]})
    [form] = drain(stack, "send")
    [schedule] = schedules()
    # ...and log in: the laptop's profile merges into the contact's.
    login = tracked("identify", anonymous_id="lan", user_id="u1", at=START + timedelta(seconds=5))
    evaluate({"Records": [store_event(tables, login)]})
    stack["clock"].advance(timedelta(minutes=30))
    # The timer was set for the anonymous profile; it finds the journey on the known contact.
    laptop = profile_id_for("demo", "anon", "lan")
    contact = profile_id_for("demo", "user", "u1")
    wake_up = json.loads(schedule["Target"]["Input"])
    assert (wake_up["profile_id"], json.loads(form["Body"])["profile_id"]) == (laptop, laptop)
    evaluate(sqs_event({"MessageId": "s1", "ReceiptHandle": "r1", "Body": schedule["Target"]["Input"]}))
    enrollments = tables.client.query(
        TableName=tables.profiles,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :e)",
        ExpressionAttributeValues={":pk": {"S": f"profile#{contact}"}, ":e": {"S": "enrollment#"}},
    )["Items"]
    assert [(item["journey_id"]["S"], item["status"]["S"]) for item in enrollments] == [
        ("services-consult", "completed")  # the form timed out; no web push subscription: done
    ]
    steps = tables.client.scan(TableName=tables.steps)["Items"]
    timed_out = [item for item in steps if item["outcome"]["S"] == "timed_out"]
    assert [item["profile_id"]["S"] for item in timed_out] == [contact]
    [left_behind] = tables.client.query(
        TableName=tables.profiles,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :e)",
        ExpressionAttributeValues={":pk": {"S": f"profile#{laptop}"}, ":e": {"S": "enrollment#"}},
    )["Items"]
    assert left_behind["status"]["S"] == "exited"


def test_visitors_in_flight_finish_on_the_version_they_entered(stack: dict[str, Any]) -> None:
    tables, clock = stack["tables"], stack["clock"]
    evaluate({"Records": [product_view(stack)]})
    assert [json.loads(m["Body"])["journey_version"] for m in drain(stack, "send")] == [1]

    # The marketer publishes version 2: a 20 s pause after the form instead of 10 s.
    v1 = SERVICES.read_text(encoding="utf-8")
    v2 = v1.replace("version: 1", "version: 2").replace("duration: 10s", "duration: 20s")
    assert v2.count("duration: 20s") == 1
    catalog = DynamoJourneyCatalog(tables.client, tables.config, cache_seconds=0)
    catalog.publish(load_journey_yaml(v2), v2)
    wiring.reset()  # a new cold start sees the new active version at once (warm ones within the cache age)
    assert catalog.active_index(fresh=True) == {"services-consult": 2}

    # The visitor already in the journey dismisses the form: they go on with version 1's 10 s pause.
    dismissed = tracked(
        event="form_dismissed",
        anonymous_id="lan",
        at=clock.now(),
        properties={"journey_id": "services-consult", "node_id": "consult_form"},
    )
    evaluate({"Records": [store_event(tables, dismissed)]})
    [pause] = drain(stack, "timers")
    wake_up = json.loads(pause["Body"])
    assert wake_up["journey_version"] == 1
    assert datetime.fromisoformat(wake_up["due_at"]) == clock.now() + timedelta(seconds=10)

    # A new visitor enters version 2.
    newcomer = tracked(
        event="product_viewed",
        anonymous_id="minh",
        at=clock.now(),
        properties={"product_id": "ao-so-mi", "dwell_seconds": 20},
    )
    evaluate({"Records": [store_event(tables, newcomer)]})
    [form] = drain(stack, "send")
    assert json.loads(form["Body"])["journey_version"] == 2


# ------------------------------------------------------------------------------------------- journey steps


def step_rows(tables: Tables) -> list[tuple[str, str]]:
    """(node, outcome) of every row in StepsTable, in time order (then by step key)."""
    items = tables.client.scan(TableName=tables.steps)["Items"]
    return [(item["node_id"]["S"], item["outcome"]["S"]) for item in sorted(items, key=lambda item: item["sk"]["S"])]


def test_the_flow_leaves_one_step_row_per_step_however_often_inputs_arrive(stack: dict[str, Any]) -> None:
    tables, clock = stack["tables"], stack["clock"]
    record = product_view(stack)
    evaluate({"Records": [record, record]})
    evaluate({"Records": [record]})
    clock.advance(timedelta(seconds=15))
    dismissed = tracked(
        event="form_dismissed",
        anonymous_id="lan",
        at=clock.now(),
        properties={"journey_id": "services-consult", "node_id": "consult_form"},
    )
    dismissal = store_event(tables, dismissed)
    evaluate({"Records": [dismissal, dismissal]})

    assert step_rows(tables) == [
        # One engine run: the same time, so rows sort by step key (enrollment, node, occurrence, outcome).
        ("await_form_response", "waiting"),
        ("consult_form", "sent"),
        ("viewed_without_cart", "entered"),
        ("await_form_response", "happened"),
        ("pause_after_dismiss", "waiting"),
    ]
    items = tables.client.scan(TableName=tables.steps)["Items"]
    enrollment_ids = {item["enrollment_id"]["S"] for item in items}
    assert len(enrollment_ids) == 1
    assert {item["pk"]["S"] for item in items} == {f"journey#services-consult#{keys.step_shard(enrollment_ids.pop())}"}
    sent = next(item for item in items if item["outcome"]["S"] == "sent")
    assert sent["channel"]["S"] == "onsite_form"
    assert sent["idempotency_key"]["S"].startswith("services-consult.v1.")


class StepLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.INFO:
            self.lines.append(record.getMessage())


def test_steps_performed_again_after_a_crash_are_recorded_once(
    stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    tables = stack["tables"]
    record = product_view(stack)
    settle = DynamoEnrollmentStore.settle
    crashes = iter([True])

    def crash_once(self: DynamoEnrollmentStore, enrollment: Any) -> None:
        if next(crashes, False):
            raise RuntimeError("the function timed out before confirming its effects")
        settle(self, enrollment)

    monkeypatch.setattr(DynamoEnrollmentStore, "settle", crash_once)
    logged = StepLines()
    step_logger = logging.getLogger(STEP_LOGGER)
    level = step_logger.level
    step_logger.setLevel(logging.INFO)  # the suite keeps Powertools at WARNING
    step_logger.addHandler(logged)
    try:
        # The run writes the enrollment with its effects, performs them, then dies before settling them.
        assert evaluate({"Records": [record]})["batchItemFailures"] != []
        # The stream retries the record: the unsettled effects are performed again, the input is a duplicate.
        assert evaluate({"Records": [record]}) == {"batchItemFailures": []}
    finally:
        step_logger.removeHandler(logged)
        step_logger.setLevel(level)

    assert step_rows(tables) == [
        ("await_form_response", "waiting"),
        ("consult_form", "sent"),
        ("viewed_without_cart", "entered"),
    ]
    assert [line.split(", profile")[0] for line in logged.lines] == [
        "journey step: services-consult v1 viewed_without_cart entered",
        "journey step: services-consult v1 consult_form sent [onsite_form]",
        "journey step: services-consult v1 await_form_response waiting (form_dismissed until 2026-11-23T02:30:00Z)",
    ]
    # The form was queued twice; send delivers it once (its idempotency key is the same).
    sends = [json.loads(message["Body"]) for message in drain(stack, "send")]
    assert len(sends) == 2
    assert len({send["idempotency_key"] for send in sends}) == 1


def test_footprint_report_reads_the_steps_table(stack: dict[str, Any]) -> None:
    tables, clock = stack["tables"], stack["clock"]
    evaluate({"Records": [product_view(stack)]})
    bought = tracked(event="purchase", anonymous_id="lan", at=clock.now() + timedelta(minutes=1))
    clock.advance(timedelta(minutes=1))
    evaluate({"Records": [store_event(tables, bought)]})

    out = io.StringIO()
    status = footprint_cli(
        ["report", "services-consult", "--steps-table", tables.steps, "--config-table", tables.config], out=out
    )

    assert status == 0
    text = out.getvalue()
    assert "triggered 1 · entered 1 · did not enter 0 · pending 0 · in progress 0 · converted 1" in text
    assert "conversion rate 100.0 %" in text
    waiting = next(line for line in text.splitlines() if line.startswith("* await_form_response "))
    assert waiting.split()[2:11] == ["wait_for", "1", "0", "0", "0", "0", "1", "0", "0"]

    out = io.StringIO()
    assert footprint_cli(["report", "services-consult", "--steps-table", tables.steps, "--json"], out=out) == 0
    report = json.loads(out.getvalue())
    assert (report["entered"], report["converted"], report["version"]) == (1, 1, None)  # no ConfigTable: no order
