"""MessagesTable: the outbox, one row per idempotency key, and the onsite inbox.

Row (pk ``message#{idempotency_key}``, sk ``message``): ``profile_id``, ``journey_id``, ``node_id``,
``channel``, ``status``, ``attempt_id`` (the attempt that wrote it), ``claimed_at``; while calling
the provider also ``calling_at``; once settled ``sent_at``, ``detail``, ``data`` (the
DeliveryRecord as JSON) and ``expires_at`` (DynamoDB TTL). ``status`` is "claimed" or
"calling_provider" while a claim is open, then one of the DeliveryStatus values. The states and
their transitions are the Outbox protocol of footprint.services.send; each transition here is one
conditional write naming the attempt, and a failed condition returns the row as it is
(``ReturnValuesOnConditionCheckFailure``), so no extra read is needed to tell our own landed write
(botocore retried it after a lost response) from another attempt's.

Onsite messages (onsite form, onsite push) are not sent anywhere: the row *is* the visitor's inbox.
A queued row carries ``onsite_inbox`` = its profile_id until the browser has shown it; the sparse
GSI ``OnsiteInbox`` (HASH ``onsite_inbox``, RANGE ``sent_at``) holds only those rows, so
:meth:`DynamoOutbox.pending_onsite` is one Query of the visitor's own partition (what
``POST /v1/onsite`` answers), never a Scan. Marking a message shown removes the attribute, which
takes the row out of the index; the row itself stays (it is the delivery record).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from footprint.models import keys
from footprint.models.messages import DeliveryRecord, OutgoingMessage
from footprint.services.send import CALLING_PROVIDER, CLAIMED, Claim, ClaimState

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

OPEN_STATES: frozenset[str] = frozenset({CLAIMED, CALLING_PROVIDER})
ONSITE_INBOX_INDEX = "OnsiteInbox"
CONDITION_FAILED = "ConditionalCheckFailedException"
# The row is an open claim of :attempt (either state).
_OPEN_CLAIM_OF_ATTEMPT = "attempt_id = :attempt AND #status IN (:claimed, :calling)"


class DynamoOutbox:
    def __init__(self, client: DynamoDBClient, table_name: str, retention: timedelta) -> None:
        self.client = client
        self.table_name = table_name
        # Rows outlive the Powertools idempotency records by far: they are the last duplicate guard.
        self.retention = retention

    def claim(self, message: OutgoingMessage, attempt_id: str, at: datetime) -> Claim:
        item = {
            **_key(message.idempotency_key),
            "profile_id": {"S": message.profile_id},
            "journey_id": {"S": message.journey_id},
            "node_id": {"S": message.node_id},
            "channel": {"S": message.channel},
            "status": {"S": CLAIMED},
            "attempt_id": {"S": attempt_id},
            "claimed_at": {"S": at.isoformat()},
        }
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=item,
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            return _claim_in(_row_of_failed_condition(error), attempt_id)
        return Claim(acquired=True, attempt_id=attempt_id, state=CLAIMED, claimed_at=at)

    def take_over(self, message: OutgoingMessage, stale: Claim, attempt_id: str, at: datetime) -> Claim:
        if stale.attempt_id is None or stale.state is None:
            raise ValueError("only an open claim can be taken over")
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=_key(message.idempotency_key),
                UpdateExpression="SET attempt_id = :attempt, #status = :claimed, claimed_at = :at REMOVE calling_at",
                ConditionExpression="attempt_id = :stale AND #status = :stale_state",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":attempt": {"S": attempt_id},
                    ":claimed": {"S": CLAIMED},
                    ":at": {"S": at.isoformat()},
                    ":stale": {"S": stale.attempt_id},
                    ":stale_state": {"S": stale.state},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            return _claim_in(_row_of_failed_condition(error), attempt_id)
        return Claim(acquired=True, attempt_id=attempt_id, state=CLAIMED, claimed_at=at)

    def mark_calling(self, idempotency_key: str, attempt_id: str, at: datetime) -> bool:
        try:
            # Either state in the condition: a retried write whose first try landed succeeds too.
            self.client.update_item(
                TableName=self.table_name,
                Key=_key(idempotency_key),
                UpdateExpression="SET #status = :calling, calling_at = :at",
                ConditionExpression=_OPEN_CLAIM_OF_ATTEMPT,
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    **_open_states(),
                    ":attempt": {"S": attempt_id},
                    ":at": {"S": at.isoformat()},
                },
            )
        except ClientError as error:
            _row_of_failed_condition(error)
            return False
        return True

    def settle(self, record: DeliveryRecord, attempt_id: str) -> bool:
        item: dict[str, Any] = {
            **_key(record.idempotency_key),
            "profile_id": {"S": record.profile_id},
            "journey_id": {"S": record.journey_id},
            "node_id": {"S": record.node_id},
            "channel": {"S": record.channel},
            "status": {"S": record.status},
            "attempt_id": {"S": attempt_id},
            "detail": {"S": record.detail},
            "sent_at": {"S": record.sent_at.isoformat()},
            "data": {"S": record.model_dump_json()},
            "expires_at": {"N": str(int((record.sent_at + self.retention).timestamp()))},
        }
        if record.status == "queued_onsite":
            item["onsite_inbox"] = {"S": record.profile_id}
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=item,
                ConditionExpression=_OPEN_CLAIM_OF_ATTEMPT,
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={**_open_states(), ":attempt": {"S": attempt_id}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            row = _row_of_failed_condition(error)
            # Our own settle, landed on a first try whose response was lost: done, and not written
            # twice (the browser may already have marked an onsite message shown).
            return row is not None and _attempt(row) == attempt_id and _status(row) not in OPEN_STATES
        return True

    def release(self, idempotency_key: str, attempt_id: str) -> None:
        try:
            self.client.delete_item(
                TableName=self.table_name,
                Key=_key(idempotency_key),
                ConditionExpression=_OPEN_CLAIM_OF_ATTEMPT,
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={**_open_states(), ":attempt": {"S": attempt_id}},
            )
        except ClientError as error:
            _row_of_failed_condition(error)

    def get(self, idempotency_key: str) -> DeliveryRecord | None:
        """The settled record of ``idempotency_key``; None if there is none (or only an open claim)."""
        item = self._item(idempotency_key)
        return _record(item) if item and "data" in item else None

    def pending_onsite(
        self, profile_id: str, *, since: datetime | None = None, limit: int | None = None
    ) -> list[DeliveryRecord]:
        """Onsite messages queued for ``profile_id`` and not shown yet, oldest first: one Query of the
        OnsiteInbox index (eventually consistent, like every GSI read), from ``since`` on."""
        condition = "onsite_inbox = :profile"
        values: dict[str, Any] = {":profile": {"S": profile_id}}
        if since is not None:
            condition += " AND sent_at >= :since"
            values[":since"] = {"S": since.isoformat()}
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": ONSITE_INBOX_INDEX,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": True,
        }
        if limit is not None:
            query["Limit"] = limit
        records: list[DeliveryRecord] = []
        while True:
            page = self.client.query(**query)
            records.extend(_record(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page or (limit is not None and len(records) >= limit):
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return records[:limit] if limit is not None else records

    def mark_onsite_shown(self, idempotency_key: str, at: datetime | None = None) -> None:
        """The browser showed the message: take it out of the inbox (idempotent; unknown keys are ignored)."""
        update: dict[str, Any] = {"UpdateExpression": "REMOVE onsite_inbox"}
        if at is not None:
            # if_not_exists: a retried ack keeps the first time it was shown.
            update = {
                "UpdateExpression": "SET shown_at = if_not_exists(shown_at, :at) REMOVE onsite_inbox",
                "ExpressionAttributeValues": {":at": {"S": at.isoformat()}},
            }
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=_key(idempotency_key),
                # Without it, an update of a missing row would create a row holding only the key.
                ConditionExpression="attribute_exists(pk)",
                **update,
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != CONDITION_FAILED:
                raise

    def _item(self, idempotency_key: str) -> dict[str, Any] | None:
        key = _key(idempotency_key)
        return self.client.get_item(TableName=self.table_name, Key=key, ConsistentRead=True).get("Item")


def _row_of_failed_condition(error: ClientError) -> dict[str, Any] | None:
    """The row a conditional write found (None: there was none); re-raises any other error."""
    if error.response["Error"]["Code"] != CONDITION_FAILED:
        raise error
    item: dict[str, Any] | None = error.response.get("Item")  # type: ignore[assignment]
    return item


def _claim_in(item: dict[str, Any] | None, attempt_id: str) -> Claim:
    """What ``attempt_id`` finds in the row: its own claim (acquired), another's, or a result."""
    if item is None:
        # Released between the other attempt's write and ours: SQS retries this one.
        return Claim(acquired=False)
    status = _status(item)
    if status not in OPEN_STATES:
        return Claim(acquired=False, settled=_record(item))
    state: ClaimState = CALLING_PROVIDER if status == CALLING_PROVIDER else CLAIMED
    holder = _attempt(item)
    return Claim(
        acquired=holder == attempt_id and state == CLAIMED,
        attempt_id=holder,
        state=state,
        claimed_at=datetime.fromisoformat(item["claimed_at"]["S"]),
    )


def _open_states() -> dict[str, Any]:
    return {":claimed": {"S": CLAIMED}, ":calling": {"S": CALLING_PROVIDER}}


def _status(item: dict[str, Any]) -> str:
    return str(item["status"]["S"])


def _attempt(item: dict[str, Any]) -> str:
    return str(item.get("attempt_id", {}).get("S", ""))


def _key(idempotency_key: str) -> dict[str, Any]:
    return {name: {"S": value} for name, value in keys.message_key(idempotency_key).items()}


def _record(item: dict[str, Any]) -> DeliveryRecord:
    return DeliveryRecord.model_validate_json(item["data"]["S"])
