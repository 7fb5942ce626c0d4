"""Journey steps in StepsTable, once each, for funnel reports; also a readable log line and a metric.

Item (pk ``journey#<journey id>#<shard>``, sk ``<time>#<step key>``, see ``footprint.models.keys``):
``journey_id``, ``journey_version``, ``enrollment_id``, ``profile_id``, ``node_id``, ``outcome``, ``at``,
``expires_at`` (DynamoDB TTL), and when the step has them ``stage``, ``detail``, ``channel``,
``idempotency_key``.

The evaluate service performs a step's RecordStep again when a run stopped before it confirmed its
effects. The put is conditional on the item not existing, so the step is stored once; a second put
finds it and does nothing. The line and the metric follow a successful put: never twice (a run that
dies right after the put loses them, the report still counts the step).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError

from footprint.engine import RecordStep
from footprint.models import keys

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# A child of the Powertools service logger ("footprint"): in Lambda its records go out through the
# service's JSON formatter with the step as structured fields; the local stack prints them as lines.
STEP_LOGGER = "footprint.journey_steps"
logger = logging.getLogger(STEP_LOGGER)

CONDITION_FAILED = "ConditionalCheckFailedException"
_REQUIRED = ("journey_id", "enrollment_id", "profile_id", "node_id", "outcome", "at")
# Attributes stored only when the step has them.
_OPTIONAL = ("stage", "detail", "channel", "idempotency_key")


class DynamoStepLog:
    """StepLog (footprint.services.journeys): a conditional PutItem per step."""

    def __init__(
        self, client: DynamoDBClient, table_name: str, retention: timedelta, metrics: Metrics | None = None
    ) -> None:
        self.client = client
        self.table_name = table_name
        self.retention = retention
        self.metrics = metrics

    def record(self, step: RecordStep) -> None:
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=step_item(step, self.retention),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != CONDITION_FAILED:
                raise
            logger.debug("journey step already recorded: %s", step.key)
            return
        log_step(step)
        if self.metrics is not None:
            # StepsEntered, StepsSent, StepsConverted...: no dimensions (each combination is a billed metric).
            name = "Steps" + "".join(part.capitalize() for part in step.outcome.split("_"))
            self.metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


class DynamoStepReader:
    """The steps of one journey for reports: one Query per shard, optionally narrowed to a time window
    (by the sort key) and a version (a filter: the shard's items in the window are read either way)."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self.client = client
        self.table_name = table_name

    def steps(
        self,
        journey_id: str,
        *,
        version: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[RecordStep]:
        found = [
            step
            for shard in range(keys.STEP_SHARDS)
            for step in self._shard(keys.step_partition(journey_id, shard), version, since, until)
        ]
        return sorted(found, key=lambda step: (step.at, step.key))

    def _shard(
        self, partition: str, version: int | None, since: datetime | None, until: datetime | None
    ) -> Iterator[RecordStep]:
        values: dict[str, Any] = {":pk": {"S": partition}}
        condition = "pk = :pk"
        # Sort keys start with the step's fixed-width time: "<since" sorts before every step at or after
        # `since`, and every step before `until` sorts before "<until>" + "#...": the window [since, until).
        if since is not None and until is not None:
            condition += " AND sk BETWEEN :since AND :until"
        elif since is not None:
            condition += " AND sk >= :since"
        elif until is not None:
            condition += " AND sk < :until"
        if since is not None:
            values[":since"] = {"S": keys.step_time(since)}
        if until is not None:
            values[":until"] = {"S": keys.step_time(until)}
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }
        if version is not None:
            query["FilterExpression"] = "journey_version = :version"
            values[":version"] = {"N": str(version)}
        while True:
            page = self.client.query(**query)
            for item in page.get("Items", []):
                yield step_from_item(item)
            if "LastEvaluatedKey" not in page:
                return
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def step_item(step: RecordStep, retention: timedelta) -> dict[str, Any]:
    key = keys.step_key(step.journey_id, step.enrollment_id, step.at, step.key)
    texts = step.model_dump(mode="json", include={*_REQUIRED, *_OPTIONAL}, exclude_none=True)
    return {
        **{name: {"S": str(value)} for name, value in (key | texts).items()},
        "journey_version": {"N": str(step.journey_version)},
        "expires_at": {"N": str(int((step.at + retention).timestamp()))},
    }


def step_from_item(item: dict[str, Any]) -> RecordStep:
    """The step an item holds; its key is the sort key after the time."""
    fields: dict[str, Any] = {name: item[name]["S"] for name in (*_REQUIRED, *_OPTIONAL) if name in item}
    return RecordStep.model_validate(
        {**fields, "key": item["sk"]["S"].split("#", 1)[1], "journey_version": int(item["journey_version"]["N"])}
    )


def log_step(step: RecordStep) -> None:
    """One readable line per step (the local stack's console and page show them)."""
    detail = f" ({step.detail})" if step.detail else ""
    channel = f" [{step.channel}]" if step.channel else ""
    logger.info(
        "journey step: %s v%d %s %s%s%s, profile %s",
        step.journey_id,
        step.journey_version,
        step.node_id,
        step.outcome,
        channel,
        detail,
        step.profile_id,
        extra={"step": step.model_dump(mode="json", exclude_none=True)},
    )
