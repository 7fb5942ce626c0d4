"""EventsTable through boto3: the tracking API's one write, and the way evaluate reads it back.

Item layout: pk "visitor#{source_id}#{visitor}", sk
"event#{messageId}", a few attributes for queries and the console, and ``body``: the TrackedEvent
as JSON, the one attribute readers parse.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import boto3
from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import BotoCoreError, ClientError

from footprint.models import keys
from footprint.models.events import TrackedEvent
from footprint.services.tracking import StoreUnavailableError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import WriteRequestTypeDef

# BatchWriteItem takes at most 25 put requests.
BATCH_WRITE_LIMIT = 25
# Unprocessed items (throttling) are retried a few times, quickly: the browser is waiting.
MAX_WRITE_ATTEMPTS = 4
FIRST_BACKOFF_SECONDS = 0.05


def iso_utc(moment: datetime) -> str:
    """ISO-8601 in UTC with milliseconds and a Z: sorts as text, reads in the console."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_item(event: TrackedEvent, retention: timedelta) -> dict[str, Any]:
    """The EventsTable item of one event, in DynamoDB's attribute-value format."""
    item: dict[str, Any] = {
        **{
            name: {"S": value}
            for name, value in keys.event_key(event.source_id, event.visitor_id, event.message_id).items()
        },
        "source_id": {"S": event.source_id},
        "message_id": {"S": event.message_id},
        "type": {"S": event.type},
        "timestamp": {"S": iso_utc(event.timestamp)},
        "received_at": {"S": iso_utc(event.received_at)},
        "expires_at": {"N": str(int((event.received_at + retention).timestamp()))},
        "body": {"S": event.model_dump_json()},
    }
    optional = {"event": event.event, "anonymous_id": event.anonymous_id, "user_id": event.user_id}
    item.update({name: {"S": value} for name, value in optional.items() if value is not None})
    return item


def tracked_event_from_stream_image(new_image: Mapping[str, Any]) -> TrackedEvent:
    """The event inside a DynamoDB stream record's NewImage (low-level attribute values)."""
    item = TypeDeserializer().deserialize({"M": dict(new_image)})
    body = item.get("body")
    if not isinstance(body, str):
        raise ValueError("the stream image has no event body")
    return TrackedEvent.model_validate_json(body)


class DynamoDBEventStore:
    """The EventStore port on EventsTable: one BatchWriteItem per 25 events."""

    def __init__(
        self,
        table_name: str,
        retention_days: int,
        client: DynamoDBClient | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.table_name = table_name
        self.retention = timedelta(days=retention_days)
        self.client = client or boto3.client("dynamodb")
        self._sleep = sleep

    def put_events(self, events: Sequence[TrackedEvent]) -> None:
        # BatchWriteItem rejects two requests for one key: the last copy of a message wins,
        # as it would if they had come in two requests.
        items = {}
        for event in events:
            item = event_item(event, self.retention)
            items[(item["pk"]["S"], item["sk"]["S"])] = item
        requests: list[WriteRequestTypeDef] = [{"PutRequest": {"Item": item}} for item in items.values()]
        for start in range(0, len(requests), BATCH_WRITE_LIMIT):
            self._write(requests[start : start + BATCH_WRITE_LIMIT])

    def _write(self, requests: list[WriteRequestTypeDef]) -> None:
        pending = requests
        for attempt in range(MAX_WRITE_ATTEMPTS):
            if attempt:
                # Exponential backoff with jitter: 25-50 ms, 50-100 ms, 100-200 ms.
                base = FIRST_BACKOFF_SECONDS * 2 ** (attempt - 1)
                self._sleep(random.uniform(base / 2, base))
            try:
                response = self.client.batch_write_item(RequestItems={self.table_name: pending})
            except (ClientError, BotoCoreError) as error:
                # botocore has already retried throttling and 5xx with its own backoff.
                raise StoreUnavailableError("store_unavailable", "events could not be stored; retry later") from error
            # Unprocessed requests come back in the shape they were sent.
            pending = cast("list[WriteRequestTypeDef]", response.get("UnprocessedItems", {}).get(self.table_name, []))
            if not pending:
                return
        raise StoreUnavailableError(
            "store_unavailable", f"{len(pending)} events could not be stored (throttled); retry later"
        )
