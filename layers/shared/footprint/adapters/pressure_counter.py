"""The stack-wide frequency caps' counters, in MessagesTable next to the outbox rows.

One item per visitor, channel and window: ``pk = pressure#{profile_id}#{channel}``, ``sk =
day#2026-12-02`` or ``week#2026-W49``, holding the string set of the idempotency keys counted in
it. A send adds its key to every window in one transaction, each update conditional on the set
having room or already holding the key: two journeys sending at the same second cannot both take
the last slot (no check-then-write race), and a retried message is never counted twice. Items
expire after their window (``expires_at``, the table's TTL).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from footprint.models.messages import OutgoingMessage
from footprint.models.pressure import CapWindow


class DynamoPressureCounter:
    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table_name = table_name

    def admit(self, message: OutgoingMessage, profile_id: str, windows: Sequence[CapWindow]) -> CapWindow | None:
        if not windows:
            return None
        key = message.idempotency_key
        updates = [
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": {"pk": {"S": f"pressure#{profile_id}#{message.channel}"}, "sk": {"S": window.key}},
                    "UpdateExpression": "ADD message_keys :keys SET expires_at = :expires",
                    "ConditionExpression": (
                        "attribute_not_exists(message_keys) OR contains(message_keys, :key) "
                        "OR size(message_keys) < :limit"
                    ),
                    "ExpressionAttributeValues": {
                        ":keys": {"SS": [key]},
                        ":key": {"S": key},
                        ":limit": {"N": str(window.limit)},
                        ":expires": {"N": str(int(window.expires_at.timestamp()))},
                    },
                }
            }
            for window in windows
        ]
        try:
            self.client.transact_write_items(TransactItems=updates)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = error.response.get("CancellationReasons") or []
            for window, reason in zip(windows, reasons, strict=False):
                if reason.get("Code") == "ConditionalCheckFailed":
                    return window
            raise  # cancelled for another reason (a conflict): let SQS retry
        return None
