"""EvaluatePoisonQueue: the records evaluate refused, parked with SendMessageBatch (10 per call, SQS's limit)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from footprint.services.poison import PoisonRecord

logger = logging.getLogger(__name__)

# SendMessageBatch takes at most 10 messages and 256 KiB in all (each message counts toward both).
MAX_BATCH_ENTRIES = 10
MAX_BATCH_BYTES = 256 * 1024
# A record too large for one message keeps only what finds it again (its keys), with the reason.
MAX_MESSAGE_BYTES = MAX_BATCH_BYTES - 1024


class SqsPoisonQueue:
    def __init__(self, sqs: Any, queue_url: str) -> None:
        self.sqs = sqs
        self.queue_url = queue_url

    def park(self, records: Sequence[PoisonRecord]) -> list[str]:
        unparked: list[str] = []
        for chunk in _chunks([(record, _body(record)) for record in records]):
            entries = [
                {
                    "Id": str(index),
                    "MessageBody": body,
                    "MessageAttributes": {"source": {"DataType": "String", "StringValue": record.source}},
                }
                for index, (record, body) in enumerate(chunk)
            ]
            try:
                response = self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            except (BotoCoreError, ClientError):
                logger.exception("could not park poison records; they will be retried")
                unparked.extend(record.item_id for record, _ in chunk)
                continue
            for failed in response.get("Failed") or []:
                logger.warning("could not park a poison record: %s", failed.get("Message") or failed.get("Code"))
                unparked.append(chunk[int(failed["Id"])][0].item_id)
        return unparked


def _body(record: PoisonRecord) -> str:
    body = json.dumps(record.message(), ensure_ascii=False, separators=(",", ":"), default=str)
    if len(body.encode("utf-8")) <= MAX_MESSAGE_BYTES:
        return body
    inner = record.record.get("dynamodb") or {}
    reduced = {
        "truncated": True,
        "eventSourceARN": record.record.get("eventSourceARN"),
        "Keys": inner.get("Keys") if isinstance(inner, dict) else None,
        "messageId": record.record.get("messageId"),
    }
    return json.dumps({**record.message(), "record": reduced}, ensure_ascii=False, default=str)


def _chunks(items: list[tuple[PoisonRecord, str]]) -> Iterator[list[tuple[PoisonRecord, str]]]:
    chunk: list[tuple[PoisonRecord, str]] = []
    size = 0
    for record, body in items:
        length = len(body.encode("utf-8"))
        if chunk and (len(chunk) == MAX_BATCH_ENTRIES or size + length > MAX_BATCH_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append((record, body))
        size += length
    if chunk:
        yield chunk
