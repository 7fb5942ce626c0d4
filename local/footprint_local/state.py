"""What the local page shows: the stack's tables, queues, pending wake-ups and clock, as JSON."""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer

from footprint.clock import Clock

if TYPE_CHECKING:
    from footprint_local.activity import ActivityLog
    from footprint_local.aws import AwsClients
    from footprint_local.lambdas import LambdaFunction
    from footprint_local.pumps import PendingSchedule
    from footprint_local.resources import StackResources

_deserializer = TypeDeserializer()
ROWS = 50


@dataclass
class StackState:
    clients: AwsClients
    resources: StackResources
    clock: Clock
    functions: Mapping[str, LambdaFunction]
    dead_letter_queues: set[str]
    pending_schedules: Callable[[], list[PendingSchedule]]
    activity: ActivityLog

    def snapshot(self) -> dict[str, Any]:
        events = self._scan("EventsTable")
        for event in events:
            # The stored body is the full TrackedEvent as JSON; show it as an object.
            if isinstance(event.get("body"), str):
                with contextlib.suppress(ValueError):
                    event["body"] = json.loads(event["body"])
        profiles_and_enrollments = self._scan("ProfilesTable")
        return {
            "clock": self._clock(),
            "events": _newest_first(events, ("received_at", "timestamp"))[:ROWS],
            "profiles": _newest_first(
                [item for item in profiles_and_enrollments if item.get("sk") == "profile"],
                ("updated_at", "last_seen_at", "created_at"),
            )[:ROWS],
            "enrollments": _newest_first(
                [item for item in profiles_and_enrollments if str(item.get("sk", "")).startswith("enrollment#")],
                ("updated_at", "entered_at", "created_at"),
            )[:ROWS],
            "messages": _newest_first(self._scan("MessagesTable"), ("sent_at", "updated_at", "created_at"))[:ROWS],
            "schedules": [
                {
                    "group": schedule.group,
                    "name": schedule.name,
                    "due": schedule.due.isoformat() if schedule.due else None,
                    "expression": schedule.expression,
                    "target": schedule.target_arn.rsplit(":", 1)[-1],
                }
                for schedule in self.pending_schedules()[:ROWS]
            ],
            "queues": self._queues(),
            "functions": {logical_id: function.describe() for logical_id, function in self.functions.items()},
            "activity": self.activity.recent(),
        }

    def _clock(self) -> dict[str, Any]:
        return {
            "now": self.clock.now().isoformat(timespec="seconds"),
            "kind": type(self.clock).__name__,
            "factor": getattr(self.clock, "factor", None),
            "can_advance": callable(getattr(self.clock, "advance", None)),
        }

    def _scan(self, table_logical_id: str) -> list[dict[str, Any]]:
        if table_logical_id not in self.resources.tables:
            return []
        items: list[dict[str, Any]] = []
        paginator = self.clients.dynamodb.get_paginator("scan")
        for page in paginator.paginate(TableName=self.resources.table_name(table_logical_id)):
            items.extend(_plain(item) for item in page.get("Items", []))
        return items

    def _queues(self) -> list[dict[str, Any]]:
        rows = []
        for logical_id in self.resources.queues:
            attributes = self.clients.sqs.get_queue_attributes(
                QueueUrl=self.resources.queue_url(logical_id),
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                ],
            )["Attributes"]
            rows.append(
                {
                    "logical_id": logical_id,
                    "dead_letter": logical_id in self.dead_letter_queues,
                    "visible": int(attributes.get("ApproximateNumberOfMessages", 0)),
                    "in_flight": int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
                    "delayed": int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
                }
            )
        return rows


def _plain(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _json_ready(_deserializer.deserialize(value)) for name, value in item.items()}


def _json_ready(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Mapping):
        return {str(key): _json_ready(item) for key, item in value.items()}
    if isinstance(value, set | frozenset | list | tuple):
        return [_json_ready(item) for item in value]
    return value


def _newest_first(items: Iterable[dict[str, Any]], time_fields: tuple[str, ...]) -> list[dict[str, Any]]:
    def moment(item: dict[str, Any]) -> str:
        for name in time_fields:
            if item.get(name):
                return str(item[name])
        return ""

    return sorted(items, key=moment, reverse=True)
