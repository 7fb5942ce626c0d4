"""evaluate: consumes EventsTable's stream (new events) and TimersQueue (wake-ups).

A record the models or the engine refuse (footprint.services.poison) is poison: it goes to
EvaluatePoisonQueue with its reason and counts as processed, never retried. Other failures are
reported per record (partial batch response): a stream batch stops at its first failed record (the
ones after it are reported failed unprocessed, so one visitor's events never run out of order), the
stream retries from there a bounded number of times, then hands the batch to the on-failure queue;
a failed wake-up returns to TimersQueue and, after its receive limit, to the timers dead-letter queue.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from footprint.adapters.wiring import evaluate_service, poison_queue
from footprint.services.poison import InStreamOrder, PoisonTriage
from footprint.tracing import traced

logger = Logger()
metrics = Metrics()
stream_processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)
timers_processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def on_event_record(record: DynamoDBRecord) -> None:
    evaluate_service().on_stream_image(record.raw_event["dynamodb"].get("NewImage") or {})


def on_timer_record(record: SQSRecord) -> None:
    evaluate_service().on_timer(record.body)


def sequence_number(record: DynamoDBRecord) -> str:
    return str(record.raw_event.get("dynamodb", {}).get("SequenceNumber", ""))


@logger.inject_lambda_context
@traced
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records") or []
    if not records:
        return {"batchItemFailures": []}
    triage = PoisonTriage(poison_queue())
    if records[0].get("eventSource") == "aws:dynamodb":
        handle = triage.guard("events_stream", sequence_number, lambda record: record.raw_event, on_event_record)
        response = process_partial_response(
            event=event, record_handler=InStreamOrder(handle), processor=stream_processor, context=context
        )
    else:
        handle = triage.guard(
            "timers_queue", lambda record: record.message_id, lambda record: record.raw_event, on_timer_record
        )
        response = process_partial_response(
            event=event, record_handler=handle, processor=timers_processor, context=context
        )
    if triage.pending:
        metrics.add_metric(name="PoisonRecords", unit=MetricUnit.Count, value=len(triage.pending))
    response["batchItemFailures"].extend({"itemIdentifier": item_id} for item_id in triage.park())
    return response
