"""email feedback: consumes EmailFeedbackQueue (SES events from EventBridge) and records each as a
visitor event (footprint.services.email_feedback).

Failures are reported per record (partial batch response): a message that cannot be parsed, or
whose event could not be stored, fails only itself; SQS retries it and, after the queue's
maxReceiveCount, moves it to EmailFeedbackDeadLetterQueue.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from footprint.adapters.email_wiring import email_feedback_service
from footprint.tracing import traced

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def on_message(record: SQSRecord) -> None:
    try:
        recorded = email_feedback_service().on_message(record.body)
    except Exception:
        # The batch processor reports the record as failed but says nothing of why.
        logger.exception("SES event not recorded", extra={"sqs_message_id": record.message_id})
        raise
    if recorded:
        metrics.add_metric(name="EmailFeedbackRecorded", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@traced
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=on_message, processor=processor, context=context)
