"""send: consumes SendQueue and delivers each message on its channel, exactly once per idempotency key.

Failures are reported per record (partial batch response). A body that is not an OutgoingMessage,
or a delivery that may pass later, fails only its own record: SQS retries it (a delivery that may
pass later after a back-off, or the provider's Retry-After) and, after the queue's
maxReceiveCount, moves it to SendDeadLetterQueue. The rest of the batch goes on.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from footprint.adapters.send_wiring import idempotency_config, retry_later, send_service
from footprint.models.messages import OutgoingMessage
from footprint.services.retries import RetryableDeliveryError, retry_delay_seconds
from footprint.tracing import traced

logger = Logger()
metrics = Metrics()
# A batch whose records all failed is still a partial response (all listed), not a function error.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def on_message(record: SQSRecord) -> None:
    message = OutgoingMessage.model_validate_json(record.body)
    try:
        send_service().deliver(message)
    except RetryableDeliveryError as error:
        attempts = int(record.attributes.approximate_receive_count)
        retry_later()(record.receipt_handle, retry_delay_seconds(attempts, error.retry_after_seconds))
        raise


@logger.inject_lambda_context
@traced
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # Lets Powertools expire an in-progress record when this invocation times out.
    idempotency_config().register_lambda_context(context)
    return process_partial_response(
        event=event,
        record_handler=on_message,
        processor=processor,
        context=context,
    )
