"""The local stack end to end: HTTP into the real track handler, the stream, SQS and scheduler pumps.

Time is the stack's ManualClock: tests move it with ``advance`` and poll (``wait_until``) only for
the pumps' threads to catch up, never to let virtual time pass.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from botocore.exceptions import ClientError

from footprint.clock import ManualClock
from footprint_local.pumps import SchedulerPump, StreamPump
from footprint_local.stack import DEFAULT_WRITE_KEY, LocalStack

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local_stack")]

TIMEOUT = 10
JOURNEYS = Path(__file__).resolve().parents[2] / "journeys"


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def post_track(
    stack: LocalStack, visitor: str, *, message_id: str | None = None, write_key: str = DEFAULT_WRITE_KEY
) -> requests.Response:
    payload: dict[str, Any] = {
        "event": "product_viewed",
        "anonymousId": visitor,
        "properties": {"product_id": "vay-nu-phong-cach-he", "price": 459000, "currency": "VND"},
    }
    if message_id:
        payload["messageId"] = message_id
    return requests.post(f"{stack.api_url}/v1/track", json=payload, auth=(write_key, ""), timeout=TIMEOUT)


def local_state(stack: LocalStack) -> dict[str, Any]:
    response = requests.get(f"{stack.api_url}/_local/state.json", timeout=TIMEOUT)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def records_of(received: list[Any]) -> list[dict[str, Any]]:
    return [record for event in received for record in event["Records"]]


def stream_records_for(received: list[Any], visitor: str) -> list[dict[str, Any]]:
    return [
        record
        for record in records_of(received)
        if record["eventSource"] == "aws:dynamodb"
        and record["dynamodb"]["NewImage"].get("anonymous_id", {}).get("S") == visitor
    ]


def the_pump(stack: LocalStack, kind: type[Any], name_prefix: str = "") -> Any:
    return next(pump for pump in stack.pumps if isinstance(pump, kind) and pump.name.startswith(name_prefix))


def succeed(event: Any, context: Any) -> dict[str, Any]:
    return {"batchItemFailures": []}


def at_expression(moment: datetime, timezone: str) -> str:
    return f"at({moment.astimezone(ZoneInfo(timezone)):%Y-%m-%dT%H:%M:%S})"


def receive_all(stack: LocalStack, queue_logical_id: str) -> list[dict[str, Any]]:
    """Peek at a queue (the messages stay visible)."""
    response = stack.clients.sqs.receive_message(
        QueueUrl=stack.resources.queue_url(queue_logical_id),
        MaxNumberOfMessages=10,
        VisibilityTimeout=0,
        MessageAttributeNames=["All"],
    )
    return [dict(message) for message in response.get("Messages", [])]


def create_wake_up(
    stack: LocalStack,
    *,
    due: datetime,
    payload: dict[str, Any],
    after_completion: str = "DELETE",
    target_arn: str | None = None,
) -> str:
    name = new_id("wake")
    stack.clients.scheduler.create_schedule(
        Name=name,
        GroupName=stack.resources.schedule_group_name("ScheduleGroup"),
        ScheduleExpression=at_expression(due, "Asia/Ho_Chi_Minh"),
        ScheduleExpressionTimezone="Asia/Ho_Chi_Minh",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={
            "Arn": target_arn or stack.resources.queue_arn("TimersQueue"),
            "RoleArn": stack.resources.physical["SchedulerRole"].attributes["Arn"],
            "Input": json.dumps(payload),
            "DeadLetterConfig": {"Arn": stack.resources.queue_arn("SchedulerDeadLetterQueue")},
        },
        ActionAfterCompletion=after_completion,  # type: ignore[arg-type]
    )
    return name


def schedule_exists(stack: LocalStack, name: str) -> bool:
    try:
        stack.clients.scheduler.get_schedule(Name=name, GroupName=stack.resources.schedule_group_name("ScheduleGroup"))
    except ClientError as error:
        if error.response["Error"]["Code"] == "ResourceNotFoundException":
            return False
        raise
    return True


# ---------------------------------------------------------------------------------------- tracking API


def test_a_track_call_with_the_demo_key_is_stored_on_the_stack_clock(
    local_stack: LocalStack, stack_clock: ManualClock
) -> None:
    visitor = new_id("visitor")

    response = post_track(local_stack, visitor)

    assert response.status_code == 200, response.text
    assert response.json()["success"] is True
    events = local_stack.wait_until(
        lambda: [event for event in local_state(local_stack)["events"] if event.get("anonymous_id") == visitor]
    )
    assert events[0]["source_id"] == "demo"
    assert events[0]["event"] == "product_viewed"
    # The handler read the stack's ManualClock, not the wall clock.
    assert datetime.fromisoformat(events[0]["received_at"]) == stack_clock.now()


def test_an_unknown_write_key_is_refused(local_stack: LocalStack) -> None:
    response = post_track(local_stack, new_id("visitor"), write_key="not-a-key")

    assert response.status_code == 401


def test_preflight_is_answered_from_the_apis_cors_configuration(local_stack: LocalStack) -> None:
    response = requests.options(
        f"{local_stack.api_url}/v1/track",
        headers={
            "Origin": "http://localhost:3000",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,authorization",
        },
        timeout=TIMEOUT,
    )

    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] in ("*", "http://localhost:3000")
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "authorization" in response.headers["access-control-allow-headers"]


def test_analytics_libraries_retry_and_identity_headers_pass_the_preflight(local_stack: LocalStack) -> None:
    response = requests.options(
        f"{local_stack.api_url}/v1/batch",
        headers={
            "Origin": "http://localhost:3000",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-retry-count,anonymousid,sentat",
        },
        timeout=TIMEOUT,
    )

    allowed = set(response.headers["access-control-allow-headers"].lower().split(","))
    assert {"x-retry-count", "anonymousid", "sentat"} <= allowed


def test_every_icon_the_shipped_journeys_show_is_served(local_stack: LocalStack) -> None:
    icons = {
        value
        for path in JOURNEYS.glob("*.yaml")
        for value in re.findall(r"^\s*(?:icon|badge|image): (\S+)", path.read_text(encoding="utf-8"), re.M)
        if value.startswith("/")
    }

    assert icons  # services-consult's web push shows one
    for icon in icons:
        response = requests.get(f"{local_stack.api_url}{icon}", timeout=TIMEOUT)
        assert response.status_code == 200, icon
        assert response.headers["content-type"].startswith("image/"), icon


def test_an_unknown_route_is_404(local_stack: LocalStack) -> None:
    response = requests.post(f"{local_stack.api_url}/v2/nothing", json={}, timeout=TIMEOUT)

    assert response.status_code == 404


# ---------------------------------------------------------------------------------------- stream pump


def test_new_events_reach_evaluate_as_stream_records_and_resends_do_not(local_stack: LocalStack) -> None:
    visitor, message_id = new_id("visitor"), new_id("message")
    stream_pump: StreamPump = the_pump(local_stack, StreamPump)

    with local_stack.override_handler("EvaluateFunction", succeed) as received:
        assert post_track(local_stack, visitor, message_id=message_id).status_code == 200
        records = local_stack.wait_until(lambda: stream_records_for(received, visitor))
        # The same messageId again overwrites the item: a MODIFY, which the template's filter drops.
        assert post_track(local_stack, visitor, message_id=message_id).status_code == 200
        local_stack.wait_for_pump_cycles(stream_pump, 3)
        records_after_resend = stream_records_for(received, visitor)

    assert len(records) == 1
    assert records_after_resend == records
    record = records[0]
    assert record["eventName"] == "INSERT"
    assert record["eventSource"] == "aws:dynamodb"
    assert record["eventSourceARN"] == local_stack.resources.tables["EventsTable"].attributes["StreamArn"]
    assert record["dynamodb"]["NewImage"]["message_id"] == {"S": message_id}
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], int)


def test_a_record_that_keeps_failing_is_retried_then_reported_to_the_failure_queue(local_stack: LocalStack) -> None:
    poisoned = new_id("visitor")
    attempts: list[str] = []

    def fail_the_poisoned_visitor(event: Any, context: Any) -> dict[str, Any]:
        failures = []
        for record in event["Records"]:
            if record["dynamodb"]["NewImage"].get("anonymous_id", {}).get("S") == poisoned:
                attempts.append(record["dynamodb"]["SequenceNumber"])
                failures.append({"itemIdentifier": record["dynamodb"]["SequenceNumber"]})
        return {"batchItemFailures": failures}

    def failure_reports() -> list[dict[str, Any]]:
        reports = [json.loads(message["Body"]) for message in receive_all(local_stack, "EvaluateFailureQueue")]
        return [
            report
            for report in reports
            if attempts and report["DDBStreamBatchInfo"]["startSequenceNumber"] == attempts[0]
        ]

    with local_stack.override_handler("EvaluateFunction", fail_the_poisoned_visitor):
        assert post_track(local_stack, poisoned).status_code == 200
        reports = local_stack.wait_until(failure_reports)

    info = reports[0]["DDBStreamBatchInfo"]
    assert info["streamArn"] == local_stack.resources.tables["EventsTable"].attributes["StreamArn"]
    assert info["batchSize"] == 1
    assert reports[0]["requestContext"]["condition"] == "RetryAttemptsExhausted"
    # The first attempt, then the template's MaximumRetryAttempts (5) retries, then it moved on.
    assert len(attempts) == 6
    assert set(attempts) == {info["startSequenceNumber"]}


# ---------------------------------------------------------------------------------------- scheduler pump


def test_a_wake_up_schedule_fires_into_timers_queue_when_the_stack_clock_reaches_it(
    local_stack: LocalStack, stack_clock: ManualClock
) -> None:
    scheduler_pump: SchedulerPump = the_pump(local_stack, SchedulerPump)
    payload = {"kind": "wake_up", "marker": new_id("marker")}
    body = json.dumps(payload)

    def delivered(received: list[Any]) -> Callable[[], list[dict[str, Any]]]:
        return lambda: [record for record in records_of(received) if record.get("body") == body]

    with local_stack.override_handler("EvaluateFunction", succeed) as received:
        name = create_wake_up(local_stack, due=stack_clock.now() + timedelta(hours=2), payload=payload)
        local_stack.wait_for_pump_cycles(scheduler_pump, 3)
        assert schedule_exists(local_stack, name)
        assert name in [schedule["name"] for schedule in local_state(local_stack)["schedules"]]

        local_stack.advance(timedelta(hours=1, minutes=59))
        local_stack.wait_for_pump_cycles(scheduler_pump, 3)
        assert delivered(received)() == []
        assert schedule_exists(local_stack, name)

        local_stack.advance(timedelta(minutes=1))
        records = local_stack.wait_until(delivered(received))

    assert records[0]["eventSource"] == "aws:sqs"
    assert records[0]["eventSourceARN"] == local_stack.resources.queue_arn("TimersQueue")
    assert records[0]["attributes"]["ApproximateReceiveCount"] == "1"
    # ActionAfterCompletion DELETE: the schedule is gone once it fired.
    local_stack.wait_until(lambda: not schedule_exists(local_stack, name))


def test_a_schedule_that_is_kept_after_completion_fires_only_once(
    local_stack: LocalStack, stack_clock: ManualClock
) -> None:
    scheduler_pump: SchedulerPump = the_pump(local_stack, SchedulerPump)
    body = json.dumps({"kind": "wake_up", "marker": new_id("marker")})

    with local_stack.override_handler("EvaluateFunction", succeed) as received:
        name = create_wake_up(
            local_stack, due=stack_clock.now() + timedelta(minutes=5), payload=json.loads(body), after_completion="NONE"
        )
        local_stack.advance(timedelta(minutes=5))
        local_stack.wait_until(lambda: [record for record in records_of(received) if record.get("body") == body])
        local_stack.wait_for_pump_cycles(scheduler_pump, 3)
        deliveries = [record for record in records_of(received) if record.get("body") == body]

    assert len(deliveries) == 1
    assert schedule_exists(local_stack, name)


def test_a_wake_up_that_cannot_be_delivered_goes_to_the_schedulers_dead_letter_queue(
    local_stack: LocalStack, stack_clock: ManualClock
) -> None:
    marker = new_id("marker")
    missing_queue = "arn:aws:sqs:us-east-1:123456789012:footprint-local-NoSuchQueue"

    create_wake_up(
        local_stack, due=stack_clock.now() + timedelta(minutes=2), payload={"marker": marker}, target_arn=missing_queue
    )
    local_stack.advance(timedelta(minutes=2))

    dead_letters = local_stack.wait_until(
        lambda: [m for m in receive_all(local_stack, "SchedulerDeadLetterQueue") if marker in m["Body"]]
    )
    assert json.loads(dead_letters[0]["Body"]) == {"marker": marker}
    assert dead_letters[0]["MessageAttributes"]["TARGET_ARN"]["StringValue"] == missing_queue
    assert dead_letters[0]["MessageAttributes"]["ERROR_CODE"]["StringValue"]


# ---------------------------------------------------------------------------------------- SQS pumps


def test_send_queue_messages_are_delivered_and_failures_redrive_to_the_dead_letter_queue(
    local_stack: LocalStack,
) -> None:
    good, poison = new_id("good"), new_id("poison")
    deliveries: list[str] = []

    def fail_poison(event: Any, context: Any) -> dict[str, Any]:
        failures = []
        for record in event["Records"]:
            deliveries.append(json.loads(record["body"])["marker"])
            if json.loads(record["body"])["marker"] == poison:
                failures.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failures}

    send_queue = local_stack.resources.queue_url("SendQueue")
    with local_stack.override_handler("SendFunction", fail_poison) as received:
        for marker in (good, poison):
            local_stack.clients.sqs.send_message(QueueUrl=send_queue, MessageBody=json.dumps({"marker": marker}))
        dead = local_stack.wait_until(
            lambda: [m for m in receive_all(local_stack, "SendDeadLetterQueue") if poison in m["Body"]]
        )

    assert json.loads(dead[0]["Body"]) == {"marker": poison}
    # Delivered and deleted once; the poison message was received maxReceiveCount (5) times.
    assert deliveries.count(good) == 1
    assert deliveries.count(poison) == 5
    first = next(record for record in records_of(received) if good in record["body"])
    assert first["eventSource"] == "aws:sqs"
    assert first["eventSourceARN"] == local_stack.resources.queue_arn("SendQueue")
    assert {"messageId", "receiptHandle", "attributes", "messageAttributes", "md5OfBody"} <= set(first)


# ---------------------------------------------------------------------------------------- local page, clock


def test_the_local_page_the_demo_shop_and_the_skip_ahead_control(
    local_stack: LocalStack, stack_clock: ManualClock
) -> None:
    page = requests.get(f"{local_stack.api_url}/_local/", timeout=TIMEOUT)
    demo = requests.get(f"{local_stack.api_url}/demo/", timeout=TIMEOUT)
    before = stack_clock.now()

    moved = requests.post(f"{local_stack.api_url}/_local/advance?seconds=90", timeout=TIMEOUT)

    assert page.status_code == 200
    assert "/_local/state.json" in page.text
    assert demo.status_code == 200
    assert "Váy nữ phong cách hè" in demo.text
    assert moved.status_code == 200
    assert stack_clock.now() == before + timedelta(seconds=90)
    state = local_state(local_stack)
    assert datetime.fromisoformat(state["clock"]["now"]) == stack_clock.now()
    assert {queue["logical_id"] for queue in state["queues"] if queue["dead_letter"]} >= {
        "SendDeadLetterQueue",
        "TimersDeadLetterQueue",
        "EvaluateFailureQueue",
        "EvaluatePoisonQueue",
        "SchedulerDeadLetterQueue",
    }
    config = requests.get(f"{local_stack.api_url}/_local/demo-config.json", timeout=TIMEOUT).json()
    assert config["writeKey"] == DEFAULT_WRITE_KEY
    # The VAPID public key web push subscriptions need: an uncompressed P-256 point.
    point = base64.urlsafe_b64decode(config["vapidPublicKey"] + "=" * (-len(config["vapidPublicKey"]) % 4))
    assert len(point) == 65
    assert point[0] == 4
