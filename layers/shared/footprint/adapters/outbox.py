"""MessagesTable: the outbox, one row per idempotency key, and the onsite inbox.

Row (pk ``message#{idempotency_key}``, sk ``message``): ``profile_id``, ``journey_id``, ``node_id``,
``channel``, ``status``, ``claimed_at``; once settled also ``sent_at``, ``detail``, ``data`` (the
DeliveryRecord as JSON) and ``expires_at`` (DynamoDB TTL). ``status`` is "sending" while a claim is
open, then one of the DeliveryStatus values.

Onsite messages (onsite form, onsite push) are not sent anywhere: the row *is* the visitor's inbox.
A queued row carries ``onsite_pending = "1"`` next to ``profile_id`` until the browser has shown it.
Today :meth:`DynamoOutbox.pending_onsite` finds them with a filtered Scan (fine for the local stack
and small tables). Follow-up for production volumes: a sparse GSI that only pending rows enter,
e.g. HASH ``onsite_inbox`` (= profile_id, written only while pending) RANGE ``sent_at``, queried by
the endpoint the browser snippet polls.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from footprint.models import keys
from footprint.models.messages import DeliveryRecord, OutgoingMessage
from footprint.services.send import Claim

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

CLAIMED = "sending"
ONSITE_PENDING = "1"
CONDITION_FAILED = "ConditionalCheckFailedException"


class DynamoOutbox:
    def __init__(self, client: DynamoDBClient, table_name: str, retention: timedelta) -> None:
        self.client = client
        self.table_name = table_name
        # Rows outlive the Powertools idempotency records by far: they are the last duplicate guard.
        self.retention = retention

    def claim(self, message: OutgoingMessage, at: datetime) -> Claim:
        item = {
            **_key(message.idempotency_key),
            "profile_id": {"S": message.profile_id},
            "journey_id": {"S": message.journey_id},
            "node_id": {"S": message.node_id},
            "channel": {"S": message.channel},
            "status": {"S": CLAIMED},
            "claimed_at": {"S": at.isoformat()},
        }
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=item,
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != CONDITION_FAILED:
                raise
            return self._existing_claim(message.idempotency_key)
        return Claim(acquired=True, claimed_at=at)

    def settle(self, record: DeliveryRecord) -> bool:
        item: dict[str, Any] = {
            **_key(record.idempotency_key),
            "profile_id": {"S": record.profile_id},
            "journey_id": {"S": record.journey_id},
            "node_id": {"S": record.node_id},
            "channel": {"S": record.channel},
            "status": {"S": record.status},
            "detail": {"S": record.detail},
            "sent_at": {"S": record.sent_at.isoformat()},
            "data": {"S": record.model_dump_json()},
            "expires_at": {"N": str(int((record.sent_at + self.retention).timestamp()))},
        }
        if record.status == "queued_onsite":
            item["onsite_pending"] = {"S": ONSITE_PENDING}
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=item,
                ConditionExpression="#status = :claimed",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":claimed": {"S": CLAIMED}},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != CONDITION_FAILED:
                raise
            return False
        return True

    def release(self, idempotency_key: str) -> None:
        try:
            self.client.delete_item(
                TableName=self.table_name,
                Key=_key(idempotency_key),
                ConditionExpression="#status = :claimed",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":claimed": {"S": CLAIMED}},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != CONDITION_FAILED:
                raise

    def get(self, idempotency_key: str) -> DeliveryRecord | None:
        """The settled record of ``idempotency_key``; None if there is none (or only an open claim)."""
        item = self._item(idempotency_key)
        return _record(item) if item and "data" in item else None

    def pending_onsite(self, profile_id: str) -> list[DeliveryRecord]:
        """Onsite messages queued for ``profile_id`` and not shown yet, oldest first (a Scan: see above)."""
        records: list[DeliveryRecord] = []
        paginator = self.client.get_paginator("scan")
        pages = paginator.paginate(
            TableName=self.table_name,
            FilterExpression="profile_id = :profile AND onsite_pending = :pending",
            ExpressionAttributeValues={":profile": {"S": profile_id}, ":pending": {"S": ONSITE_PENDING}},
            ConsistentRead=True,
        )
        for page in pages:
            records.extend(_record(item) for item in page.get("Items", []))
        return sorted(records, key=lambda record: record.sent_at)

    def mark_onsite_shown(self, idempotency_key: str) -> None:
        """The browser showed the message: take it out of the inbox (idempotent; unknown keys are ignored)."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=_key(idempotency_key),
                UpdateExpression="REMOVE onsite_pending",
                # Without it, an update of a missing row would create a row holding only the key.
                ConditionExpression="attribute_exists(pk)",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != CONDITION_FAILED:
                raise

    def _item(self, idempotency_key: str) -> dict[str, Any] | None:
        key = _key(idempotency_key)
        return self.client.get_item(TableName=self.table_name, Key=key, ConsistentRead=True).get("Item")

    def _existing_claim(self, idempotency_key: str) -> Claim:
        item = self._item(idempotency_key)
        if item is None:
            # Released between our put and our read: the other attempt will be retried by SQS.
            return Claim(acquired=False, claimed_at=None)
        if item["status"]["S"] == CLAIMED:
            return Claim(acquired=False, claimed_at=datetime.fromisoformat(item["claimed_at"]["S"]))
        return Claim(acquired=False, settled=_record(item))


def _key(idempotency_key: str) -> dict[str, Any]:
    return {name: {"S": value} for name, value in keys.message_key(idempotency_key).items()}


def _record(item: dict[str, Any]) -> DeliveryRecord:
    return DeliveryRecord.model_validate_json(item["data"]["S"])
