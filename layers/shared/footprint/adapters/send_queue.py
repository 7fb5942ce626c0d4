"""SendQueue: evaluate hands each message to send through SQS (retries and a dead-letter queue for free)."""

from __future__ import annotations

from typing import Any

from footprint.models.messages import OutgoingMessage


class SqsSendQueue:
    def __init__(self, sqs: Any, queue_url: str) -> None:
        self.sqs = sqs
        self.queue_url = queue_url

    def enqueue(self, message: OutgoingMessage) -> None:
        self.sqs.send_message(
            QueueUrl=self.queue_url,
            MessageBody=message.model_dump_json(),
            MessageAttributes={
                "idempotency_key": {"DataType": "String", "StringValue": message.idempotency_key},
                "channel": {"DataType": "String", "StringValue": message.channel},
            },
        )
