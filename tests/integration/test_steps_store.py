"""StepsTable on moto: a step is stored once however often it is recorded, and a report reads every shard."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aws_lambda_powertools import Metrics

from footprint.adapters.steps import STEP_LOGGER, DynamoStepLog, DynamoStepReader
from footprint.engine import RecordStep
from footprint.models import keys
from tests.integration.conftest import Tables

AT = datetime(2026, 3, 2, 2, 0, 10, tzinfo=UTC)
RETENTION = timedelta(days=400)


def step(enrollment_id: str = "enr_1", outcome: str = "sent", *, at: datetime = AT, **fields: Any) -> RecordStep:
    node_id = fields.pop("node_id", "consult_form")
    return RecordStep.model_validate(
        {
            "key": f"{enrollment_id}.{node_id}.1.{outcome}",
            "at": at,
            "profile_id": "profile-lan",
            "journey_id": fields.pop("journey_id", "services-consult"),
            "journey_version": fields.pop("journey_version", 1),
            "enrollment_id": enrollment_id,
            "node_id": node_id,
            "outcome": outcome,
            **fields,
        }
    )


@pytest.fixture
def metrics() -> Iterator[Metrics]:
    recorder = Metrics(namespace="FootprintTest")
    recorder.clear_metrics()
    yield recorder
    recorder.clear_metrics()


def items(tables: Tables) -> list[dict[str, Any]]:
    return tables.client.scan(TableName=tables.steps)["Items"]


def test_the_same_step_recorded_twice_is_stored_logged_and_counted_once(
    tables: Tables, metrics: Metrics, caplog: pytest.LogCaptureFixture
) -> None:
    log = DynamoStepLog(tables.client, tables.steps, RETENTION, metrics=metrics)
    sent = step(
        channel="onsite_form", idempotency_key="services-consult.v1.enr_1.consult_form.1", stage="consideration"
    )

    with caplog.at_level(logging.INFO, logger=STEP_LOGGER):
        log.record(sent)
        log.record(sent)  # performed again after a crash

    [item] = items(tables)
    assert item == {
        "pk": {"S": f"journey#services-consult#{keys.step_shard('enr_1')}"},
        "sk": {"S": "2026-03-02T02:00:10.000000Z#enr_1.consult_form.1.sent"},
        "journey_id": {"S": "services-consult"},
        "journey_version": {"N": "1"},
        "enrollment_id": {"S": "enr_1"},
        "profile_id": {"S": "profile-lan"},
        "node_id": {"S": "consult_form"},
        "stage": {"S": "consideration"},
        "outcome": {"S": "sent"},
        "channel": {"S": "onsite_form"},
        "idempotency_key": {"S": "services-consult.v1.enr_1.consult_form.1"},
        "at": {"S": "2026-03-02T02:00:10Z"},
        "expires_at": {"N": str(int((AT + RETENTION).timestamp()))},
    }
    lines = [record.getMessage() for record in caplog.records if record.name == STEP_LOGGER]
    assert lines == ["journey step: services-consult v1 consult_form sent [onsite_form], profile profile-lan"]
    assert metrics.metric_set["StepsSent"]["Value"] == [1.0]


def test_distinct_steps_of_one_enrollment_are_all_kept(tables: Tables) -> None:
    log = DynamoStepLog(tables.client, tables.steps, RETENTION)

    log.record(step(outcome="held", detail="quiet hours until 2026-03-03T01:00:00Z"))
    log.record(step(outcome="sent", at=AT + timedelta(hours=23)))

    outcomes = sorted(item["outcome"]["S"] for item in items(tables))
    assert outcomes == ["held", "sent"]
    assert len({item["pk"]["S"] for item in items(tables)}) == 1  # one enrollment, one shard


def test_other_failures_are_not_swallowed(tables: Tables) -> None:
    log = DynamoStepLog(tables.client, "no-such-table", RETENTION)

    with pytest.raises(Exception, match="ResourceNotFound"):
        log.record(step())


def test_the_reader_gathers_every_shard_in_time_order_and_round_trips_steps(tables: Tables) -> None:
    log = DynamoStepLog(tables.client, tables.steps, RETENTION)
    recorded = [
        step(f"enr_{n}", "entered", at=AT + timedelta(minutes=n), node_id="viewed_without_cart", stage="consideration")
        for n in range(40)
    ]
    for item in reversed(recorded):
        log.record(item)
    log.record(step("enr_x", "entered", journey_id="cart-abandonment", node_id="added_to_cart"))

    found = DynamoStepReader(tables.client, tables.steps).steps("services-consult")

    assert found == recorded
    assert len({keys.step_shard(item.enrollment_id) for item in recorded}) == keys.STEP_SHARDS


def test_the_reader_narrows_to_a_window_and_a_version(tables: Tables) -> None:
    log = DynamoStepLog(tables.client, tables.steps, RETENTION)
    for hour in range(6):
        log.record(step(f"enr_{hour}", "entered", at=AT + timedelta(hours=hour), journey_version=1 + hour % 2))
    reader = DynamoStepReader(tables.client, tables.steps)

    def hours(**options: Any) -> list[int]:
        found = reader.steps("services-consult", **options)
        return [int((item.at - AT) / timedelta(hours=1)) for item in found]

    since, until = AT + timedelta(hours=2), AT + timedelta(hours=4)
    assert hours(since=since, until=until) == [2, 3]  # [since, until): a step at `since` is in, at `until` out
    assert hours(since=since) == [2, 3, 4, 5]
    assert hours(until=until) == [0, 1, 2, 3]
    assert hours(version=2) == [1, 3, 5]
    assert hours(version=1, since=since) == [2, 4]
    assert reader.steps("no-such-journey") == []
