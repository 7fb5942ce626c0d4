"""The benchmarks still run on tiny inputs and count what they claim to count.

No assertion here is about speed: timings only have to exist (positive, finite). The local-stack part
of ``bench.aws_calls`` needs moto, so it runs in tests/e2e/test_bench_calls.py; its counting
machinery (``bench.calls``) is tested here against botocore's Stubber, and its report on given rows.
"""

from __future__ import annotations

import importlib
import math
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from bench import aws_calls, cold_start, cost, engine_throughput, layer_size
from bench.calls import ApiCall, CallCounter, by_operation, item_size
from bench.journey_ports import QueuedTimers
from footprint.engine import WakeUp, relevant_events


def test_journey_variants_get_their_own_ids_and_event_families() -> None:
    journeys = engine_throughput.journey_variants(8)

    assert len({journey.id for journey in journeys}) == 8
    assert journeys[0].trigger.event == "product_viewed"  # family 0 keeps the real names
    assert journeys[4].id == "services-consult-004"
    assert journeys[4].trigger.event == "product_viewed_f1"
    assert all(name.endswith("_f1") for name in relevant_events(journeys[4]))


def test_the_synthetic_stream_is_ordered_and_deserializes() -> None:
    journeys = engine_throughput.journey_variants(8)
    stream = engine_throughput.synthetic_stream(50, journeys)

    events = [engine_throughput.deserialize(item) for item in stream]
    assert len(events) == 50
    assert len({event.id for event in events}) == 50
    assert [event.timestamp for event in events] == sorted(event.timestamp for event in events)
    assert engine_throughput.deserialize_pass(stream) == 50


def test_the_engine_benchmark_runs_the_service_and_counts_the_same_work_every_time() -> None:
    result = engine_throughput.run(records=60, journeys=8, repeats=1)

    counts = result.counts
    assert counts.records == 60
    assert counts.event_evaluations > 0
    assert counts.changed > 0  # journeys really ran: entries, steps, messages
    assert counts.steps["entered"] > 0
    assert counts.records_offered <= counts.records
    assert counts.changed + counts.unchanged == counts.evaluations
    # The service offers an event only to journeys that name it.
    assert counts.unnamed_event_evaluations == 0
    assert counts.not_trigger_changes == 0
    assert all(math.isfinite(value) and value > 0 for value in [*result.engine_ratios, *result.profile_view_ratios])
    journeys = engine_throughput.journey_variants(8)
    stream = engine_throughput.synthetic_stream(60, journeys)
    again = engine_throughput.count_engine_pass(stream, engine_throughput.folded_profiles(stream), journeys)
    assert again == counts
    assert "engine pass / deserialize-only pass" in engine_throughput.report(result)


def test_the_engine_pass_delivers_the_wake_ups_it_schedules() -> None:
    journeys = engine_throughput.journey_variants(8)
    stream = engine_throughput.synthetic_stream(120, journeys)
    profiles = engine_throughput.folded_profiles(stream)

    ports = engine_throughput.engine_pass(stream, profiles, journeys)
    counts = engine_throughput.count_engine_pass(stream, profiles, journeys)

    assert counts.wake_up_evaluations > 0
    assert ports.timers.scheduled == counts.wake_ups_scheduled
    # Every wake-up scheduled was delivered, deleted before it fired, or is not due yet.
    assert counts.wake_ups_scheduled == counts.wake_up_evaluations + counts.schedules_deleted + counts.wake_ups_pending
    assert sum(ports.send_queue.by_channel.values()) == counts.steps["sent"]


def test_the_timers_port_deletes_schedules_but_cannot_recall_sqs_timers() -> None:
    timers = QueuedTimers()
    timers.now = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    short = _wake_up("short", timers.now + timedelta(seconds=10))
    long = _wake_up("long", timers.now + timedelta(hours=1))
    timers.schedule(short)
    timers.schedule(long)
    timers.schedule(long)  # the same step again: the first schedule stands

    timers.cancel("short", short.due_at)
    timers.cancel("long", long.due_at)

    assert timers.pop_due(timers.now + timedelta(days=1)) == short
    assert timers.pop_due(timers.now + timedelta(days=1)) is None
    assert (timers.scheduled, timers.cancelled, timers.pending()) == (2, 1, 0)


def _wake_up(wake_up_id: str, due_at: datetime) -> WakeUp:
    return WakeUp(
        id=wake_up_id,
        enrollment_id="e",
        profile_id="p",
        journey_id="j",
        journey_version=1,
        node_id="n",
        token="t",
        due_at=due_at,
    )


@pytest.fixture
def counter() -> Any:
    with CallCounter() as installed:
        yield installed


def test_calls_are_counted_per_operation_only_inside_recording(counter: CallCounter) -> None:
    client = boto3.client("dynamodb", region_name="us-east-1")
    big = {"pk": {"S": "profile#1"}, "sk": {"S": "profile"}, "data": {"S": "x" * 1500}}
    with Stubber(client) as stub:
        stub.add_response("put_item", {})
        stub.add_response("get_item", {"Item": big})
        stub.add_client_error("put_item", "ConditionalCheckFailedException")
        stub.add_response("query", {"Items": []})

        client.put_item(TableName="Profiles", Item=big)  # not recording: not counted
        with counter.recording() as calls:
            client.get_item(TableName="Profiles", Key={"pk": big["pk"], "sk": big["sk"]}, ConsistentRead=True)
            with pytest.raises(client.exceptions.ConditionalCheckFailedException):
                client.put_item(TableName="Profiles", Item=big, ConditionExpression="attribute_not_exists(pk)")
            client.query(TableName="Profiles", KeyConditionExpression="pk = :pk")

    assert by_operation(calls) == Counter({"dynamodb.GetItem": 1, "dynamodb.PutItem": 1, "dynamodb.Query": 1})
    get, put, query = calls
    assert get.read_units == 1.0  # about 1.5 KB, consistent: one 4 KB unit
    assert put.error == "ConditionalCheckFailedException"
    assert put.write_units == 2.0  # a failed conditional write is billed for the item's size
    assert query.read_units == 0.5  # eventually consistent minimum


def test_an_update_is_billed_by_the_size_of_the_item_it_changes(counter: CallCounter) -> None:
    client = boto3.client("dynamodb", region_name="us-east-1")
    item = {"pk": {"S": "profile#1"}, "sk": {"S": "enrollment#j"}, "data": {"S": "y" * 2500}}
    key = {"pk": item["pk"], "sk": item["sk"]}
    marker = {"pk": {"S": "applied#1"}, "sk": {"S": "applied"}}
    with Stubber(client) as stub, counter.recording() as calls:
        stub.add_response("transact_write_items", {})
        stub.add_response("update_item", {})
        client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "Profiles", "Item": item}},
                {"Put": {"TableName": "Profiles", "Item": marker}},
            ]
        )
        client.update_item(TableName="Profiles", Key=key, UpdateExpression="REMOVE unsettled_effects")

    transaction, update = calls
    assert transaction.write_units == 2 * 3 + 2 * 1  # two units per started KB in a transaction
    assert update.write_units == 3  # the 2.5 KB item written just before
    assert item_size(item) > 2500


def test_calls_on_other_threads_are_not_counted(counter: CallCounter) -> None:
    client = boto3.client("sqs", region_name="us-east-1")
    with Stubber(client) as stub, counter.recording() as calls:
        stub.add_response("send_message", {"MessageId": "1", "MD5OfMessageBody": "x"})
        worker = threading.Thread(target=lambda: client.send_message(QueueUrl="https://q", MessageBody="{}"))
        worker.start()
        worker.join()
    assert calls == []


def test_the_cost_of_an_invocation_adds_up_its_parts() -> None:
    track = cost.invocation_cost("TrackFunction", [ApiCall("dynamodb.BatchWriteItem", write_units=1)])
    assert track.total == pytest.approx(0.625e-6 + 0.20e-6 + 1.00e-6)

    wake_up = cost.invocation_cost(
        "EvaluateFunction",
        [ApiCall("sqs.SendMessage"), ApiCall("scheduler.CreateSchedule"), ApiCall("dynamodb.Query", read_units=1)],
    )
    assert wake_up.http_api == 0
    assert wake_up.sqs == pytest.approx(2 * 3 * 0.40e-6)  # two messages, each sent, received and deleted
    assert wake_up.scheduler == pytest.approx(1.00e-6)
    assert wake_up.dynamodb == pytest.approx(0.125e-6)


def _row(scenario: str, function: str, calls: list[ApiCall], records: int = 1) -> aws_calls.Row:
    invocation = aws_calls.Invocation(function, {}, calls, datetime(2026, 3, 2, tzinfo=UTC))
    return aws_calls.Row(scenario, invocation, records)


def test_the_calls_and_cost_reports_show_every_scenario() -> None:
    write = ApiCall("dynamodb.BatchWriteItem", write_units=1)
    warm = [
        _row("track: one /v1/page request", "TrackFunction", [write]),
        _row("(a) no journey: page view of a known visitor", "EvaluateFunction", [ApiCall("dynamodb.Query")]),
        _row("(a) no journey: 4 page views, per record", "EvaluateFunction", [ApiCall("dynamodb.Query")] * 8, 4),
    ]
    cold = [_row("track: one /v1/page request", "TrackFunction", [ApiCall("dynamodb.GetItem"), write])]
    result = aws_calls.CallsResult(warm=warm, cold=cold, profile_item_bytes=1500)

    calls_report = aws_calls.report(result)
    assert "dynamodb.BatchWriteItem 1" in calls_report
    assert "dynamodb.Query 2.00" in calls_report  # per record of the batch
    assert "dynamodb.GetItem 1" in calls_report  # the cold extra
    assert "dynamodb.BatchWriteItem 1 in 1 of 1" in calls_report  # track, per single-message request
    cost_report = cost.report(result)
    assert "page view of a known visitor" in cost_report
    assert "ESTIMATE" in cost_report
    assert "Side by side with Amazon Pinpoint" in cost_report


def test_footprint_is_set_against_pinpoints_list_price_on_the_same_traffic() -> None:
    # A page view at Pinpoint's own price is a ratio of 1; a visitor with 4 events at $0.50 per 1,000 visitors
    # costs Pinpoint 4 x $1 per million + $0.0012 per targeted endpoint.
    lines = "\n".join(cost.pinpoint_comparison(page_view=1e-6, visitor=0.0005, events_per_visitor=4)).splitlines()
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines if line.startswith("| ")]
    assert ["page views only, per million", "$1.0000", "$1.0000", "1.00"] in cells
    assert ["reference scenario, per 1,000 visitors (4 events each)", "$0.5000", "$1.2040", "0.42"] in cells


def test_import_timing_runs_in_a_fresh_interpreter() -> None:
    sample = cold_start.time_import("bench.tables", factory=("os", "getcwd"))
    assert math.isfinite(sample.ready)
    assert 0 < sample.imported <= sample.ready
    factory = cold_start.SERVICE_FACTORIES["track_handler"]
    profile = cold_start.import_profile("track_handler", cold_start.HANDLERS["track_handler"], factory)
    assert "track_handler" in profile
    assert "footprint.adapters.events_store" in profile  # imported by the factory, not by the handler
    shares = cold_start.package_shares(profile)
    assert 0 < sum(share for _, share in shares) <= 1


def test_every_handler_is_measured_with_the_factory_its_first_invocation_calls() -> None:
    assert set(cold_start.HANDLERS) == {path.name + "_handler" for path in (cold_start.FUNCTIONS).iterdir()}
    assert set(cold_start.SERVICE_FACTORIES) == set(cold_start.HANDLERS) == set(cold_start.UNUSED_BY)
    for module, factory in cold_start.SERVICE_FACTORIES.values():
        assert callable(getattr(importlib.import_module(module), factory))


def test_the_layer_size_counts_the_package_and_every_requirement() -> None:
    result = layer_size.run()

    names = {layer_size._canonical(requirement.name) for requirement in layer_size.requirements()}
    assert names <= set(result.distributions) | set(result.missing)
    assert "aws-xray-sdk" in result.distributions  # aws-lambda-powertools[tracer], an extra followed
    assert "jmespath" in result.distributions  # a dependency of a dependency (botocore's)
    assert result.package_bytes > 0
    assert all(size > 0 for size in result.distributions.values())
    assert 0 < result.share_of_limit < 1
    assert "250 MB" in layer_size.report(result)
