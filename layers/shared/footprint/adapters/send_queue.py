"""SendQueue: evaluate hands each message to send through SQS (retries and a dead-letter queue for free)."""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from footprint.models.messages import OutgoingMessage

logger = logging.getLogger(__name__)


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


class SqsRetryLater:
    """Hides a message that may pass later for its back-off delay (SQS ChangeMessageVisibility)
    instead of the queue's fixed visibility timeout."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self.sqs = sqs
        self.queue_url = queue_url

    def __call__(self, receipt_handle: str, delay_seconds: int) -> None:
        try:
            self.sqs.change_message_visibility(
                QueueUrl=self.queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=delay_seconds
            )
        except (BotoCoreError, ClientError):
            # Nothing is lost: the message comes back after the queue's own visibility timeout.
            logger.warning("could not delay the retry by %d s", delay_seconds, exc_info=True)
