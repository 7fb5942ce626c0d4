"""A visitor's recent ``unless`` events in ProfilesTable, next to the profile:
pk profile#<id>, sk recent#<event>#<timestamp>#<messageId>, expiring after a few days."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from footprint.engine import EventInput
from footprint.models import keys

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# Longer than any look-back (a day at most) plus the time a late trigger may take to arrive.
KEEP_FOR = timedelta(days=3)
# A trigger needs one match; the newest hundred of one event name are plenty to find it.
RECALL_LIMIT = 100


class DynamoRecentEvents:
    def __init__(self, client: DynamoDBClient, profiles_table: str) -> None:
        self.client = client
        self.table = profiles_table

    def remember(self, profile_id: str, event: EventInput, now: datetime) -> None:
        key = keys.recent_event_key(profile_id, event.name, event.timestamp, event.id)
        # The same event lands on the same item: remembering it again (a redelivery, a merge) is harmless.
        self.client.put_item(
            TableName=self.table,
            Item={
                **{name: {"S": value} for name, value in key.items()},
                "data": {"S": event.model_dump_json()},
                "expires_at": {"N": str(int((max(now, event.timestamp) + KEEP_FOR).timestamp()))},
            },
        )

    def recall(self, profile_id: str, name: str, since: datetime) -> list[EventInput]:
        low, high = keys.recent_event_range(profile_id, name, since)
        query: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
            "ExpressionAttributeValues": {":pk": {"S": low["pk"]}, ":low": {"S": low["sk"]}, ":high": {"S": high}},
            "ScanIndexForward": False,  # newest first
            "Limit": RECALL_LIMIT,
            "ConsistentRead": True,
        }
        items = self.client.query(**query).get("Items", [])
        return [EventInput.model_validate_json(item["data"]["S"]) for item in items]
