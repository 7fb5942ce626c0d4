"""Background threads that do what the Lambda service and EventBridge Scheduler do in AWS.

- ``StreamPump``: a DynamoDB stream event source mapping (filter, batch, partial batch response,
  bounded retries, on-failure destination).
- ``SqsPump``: an SQS event source mapping (batch, partial batch response; failed messages become
  visible again so the queue's redrive policy moves them to the dead-letter queue).
- ``SchedulerPump``: fires one-time ``at(...)`` schedules that moto stores but never runs, on the
  stack clock, and deletes them afterwards when ActionAfterCompletion is DELETE.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from botocore.exceptions import ClientError

from footprint.clock import Clock
from footprint_local.events import dynamodb_stream_record, sqs_record
from footprint_local.lambdas import HandlerUnavailableError, Invocation, LambdaFunction

if TYPE_CHECKING:
    from footprint_local.aws import AwsClients

logger = logging.getLogger(__name__)

# An event source mapping's FilterCriteria: does Lambda pass this record to the function?
RecordFilter = Callable[[Mapping[str, Any]], bool]


class Pump:
    """A stoppable polling thread; ``cycles`` counts completed polls (tests wait on it)."""

    # Real seconds to wait between polls that found nothing to do.
    idle_seconds = 0.2

    def __init__(self, name: str) -> None:
        self.name = name
        self.cycles = 0
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_error = ""

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"pump:{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def join(self, timeout: float = 10.0) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.warning("pump %s did not stop within %.0f s", self.name, timeout)

    def wake(self) -> None:
        """Poll now instead of after the idle pause (the stack clock was moved)."""
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def poll(self) -> bool:
        """Do one round of work; True when there may be more to do right away."""
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                busy = self.poll()
                self._last_error = ""
            except Exception as error:
                busy = False
                if self._stopping.is_set():
                    break
                # One log line per distinct problem, not one per poll.
                message = f"{type(error).__name__}: {error}"
                if message != self._last_error:
                    logger.exception("pump %s failed: %s", self.name, message)
                    self._last_error = message
                self._pause(1.0)
            self.cycles += 1
            if not busy:
                self._pause(self.idle_seconds)

    def _pause(self, seconds: float) -> None:
        self._wake.wait(seconds)
        self._wake.clear()


def _first_failed_index(
    invocation: Invocation, identifiers: list[str], *, report_batch_item_failures: bool
) -> int | None:
    """Where a batch failed, by Lambda's rules for partial batch responses (None: all succeeded)."""
    if invocation.failed:
        return 0
    if not report_batch_item_failures or not isinstance(invocation.payload, Mapping):
        return None
    failures = invocation.payload.get("batchItemFailures") or []
    indexes: list[int] = []
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
        if not isinstance(identifier, str) or identifier not in identifiers:
            # An empty, null or unknown identifier makes the whole batch a failure.
            return 0
        indexes.append(identifiers.index(identifier))
    return min(indexes) if indexes else None


@dataclass
class _ShardCursor:
    shard_id: str
    iterator: str | None
    pending: list[dict[str, Any]]
    attempts: int = 0
    # Lowered by BisectBatchOnFunctionError after a function error, back to the batch size on success.
    batch_limit: int | None = None


class StreamPump(Pump):
    """A DynamoDB stream event source mapping.

    Its shard iterators are taken when the pump starts, before the API serves anything, so with a
    fresh table LATEST and TRIM_HORIZON (the template's choice) see the same records.
    """

    def __init__(
        self,
        *,
        clients: AwsClients,
        clock: Clock,
        source_name: str,
        stream_arn: str,
        function: LambdaFunction,
        batch_size: int,
        accepts: RecordFilter,
        max_retries: int,
        bisect_on_function_error: bool,
        report_batch_item_failures: bool,
        on_failure_queue_url: str | None,
        starting_position: str = "LATEST",
        retry_pause_seconds: float = 0.2,
    ) -> None:
        super().__init__(f"{source_name}->{function.logical_id}")
        self.starting_position = starting_position
        self._clients = clients
        self._clock = clock
        self.source_name = source_name
        self.stream_arn = stream_arn
        self.function = function
        self.batch_size = max(1, batch_size)
        self._accepts = accepts
        self.max_retries = max_retries
        self._bisect = bisect_on_function_error
        self._report_batch_item_failures = report_batch_item_failures
        self._on_failure_queue_url = on_failure_queue_url
        self._retry_pause_seconds = retry_pause_seconds
        self._cursors: list[_ShardCursor] = []

    def start(self) -> None:
        description = self._clients.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
        for shard in description.get("Shards", []):
            iterator = self._clients.streams.get_shard_iterator(
                StreamArn=self.stream_arn,
                ShardId=shard["ShardId"],
                ShardIteratorType=self.starting_position,  # type: ignore[arg-type]
            )["ShardIterator"]
            self._cursors.append(_ShardCursor(shard["ShardId"], iterator, []))
        super().start()

    def poll(self) -> bool:
        if not self.function.ready():
            # Leave the records in the stream until the function exists.
            self._pause(1.0)
            return False
        busy = False
        for cursor in self._cursors:
            if self.stopping:
                break
            self._read(cursor)
            if cursor.pending:
                self._deliver(cursor)
                busy = True
        return busy

    def _read(self, cursor: _ShardCursor) -> None:
        if cursor.iterator is None or len(cursor.pending) >= self.batch_size:
            return
        response = self._clients.streams.get_records(ShardIterator=cursor.iterator, Limit=1000)
        cursor.iterator = response.get("NextShardIterator")
        for raw in response.get("Records", []):
            record = dynamodb_stream_record(raw, self.stream_arn)
            # Filtered-out records are dropped for good, before batching, as Lambda does.
            if self._accepts(record):
                cursor.pending.append(record)

    def _deliver(self, cursor: _ShardCursor) -> None:
        batch = cursor.pending[: cursor.batch_limit or self.batch_size]
        sequence_numbers = [record["dynamodb"]["SequenceNumber"] for record in batch]
        try:
            invocation = self.function.invoke({"Records": batch})
        except HandlerUnavailableError:
            return
        failed_at = _first_failed_index(
            invocation, sequence_numbers, report_batch_item_failures=self._report_batch_item_failures
        )
        if failed_at is None:
            del cursor.pending[: len(batch)]
            cursor.attempts = 0
            cursor.batch_limit = None
            logger.info(
                "stream batch delivered: %s -> %s, %d record(s) [%s]",
                self.source_name,
                self.function.logical_id,
                len(batch),
                _summarise_stream_records(batch),
            )
            return
        # Checkpoint before the first failure; retry from there.
        del cursor.pending[:failed_at]
        failed = batch[failed_at:]
        if self._bisect and invocation.failed and len(failed) > 1:
            # Splitting a batch does not use up a retry: it isolates the poison record.
            cursor.batch_limit = len(failed) // 2
            logger.warning(
                "stream batch failed: %s -> %s, %d record(s); bisecting",
                self.source_name,
                self.function.logical_id,
                len(failed),
            )
            return
        cursor.attempts += 1
        if cursor.attempts <= self.max_retries:
            logger.warning(
                "stream batch failed: %s -> %s, %d record(s) from %s; retry %d of %d",
                self.source_name,
                self.function.logical_id,
                len(failed),
                failed[0]["dynamodb"]["SequenceNumber"],
                cursor.attempts,
                self.max_retries,
            )
            self._pause(self._retry_pause_seconds)
            return
        self._discard(cursor, failed, invocation)

    def _discard(self, cursor: _ShardCursor, failed: list[dict[str, Any]], invocation: Invocation) -> None:
        """Retries exhausted: report the batch to the on-failure destination and move on."""
        del cursor.pending[: len(failed)]
        attempts, cursor.attempts, cursor.batch_limit = cursor.attempts, 0, None
        arrivals = [record["dynamodb"].get("ApproximateCreationDateTime") for record in failed]
        report: dict[str, Any] = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self.function.arn,
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": attempts,
            },
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST"},
            "version": "1.0",
            "timestamp": self._clock.now().isoformat(),
            "DDBStreamBatchInfo": {
                "shardId": cursor.shard_id,
                "startSequenceNumber": failed[0]["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": failed[-1]["dynamodb"]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": _epoch_to_iso(arrivals[0]),
                "approximateArrivalOfLastRecord": _epoch_to_iso(arrivals[-1]),
                "batchSize": len(failed),
                "streamArn": self.stream_arn,
            },
        }
        if invocation.failed:
            report["responseContext"]["functionError"] = "Unhandled"
        if self._on_failure_queue_url:
            self._clients.sqs.send_message(QueueUrl=self._on_failure_queue_url, MessageBody=json.dumps(report))
        logger.error(
            "stream batch discarded after %d attempt(s): %s -> %s, %d record(s) %s..%s; %s",
            attempts,
            self.source_name,
            self.function.logical_id,
            len(failed),
            report["DDBStreamBatchInfo"]["startSequenceNumber"],
            report["DDBStreamBatchInfo"]["endSequenceNumber"],
            "reported to the on-failure queue" if self._on_failure_queue_url else "no on-failure destination",
        )


def _epoch_to_iso(value: Any) -> str | None:
    if not isinstance(value, int | float):
        return None
    return datetime.fromtimestamp(value, UTC).isoformat()


def _summarise_stream_records(records: list[dict[str, Any]]) -> str:
    """``track product_viewed x2, page`` from the items' type/event attributes (Footprint's layout)."""
    labels: Counter[str] = Counter()
    for record in records:
        image = record["dynamodb"].get("NewImage") or record["dynamodb"].get("Keys") or {}
        kind = image.get("type", {}).get("S", record["eventName"])
        event = image.get("event", {}).get("S")
        labels[f"{kind} {event}" if event else kind] += 1
    return ", ".join(f"{label} x{count}" if count > 1 else label for label, count in labels.items())


class SqsPump(Pump):
    """An SQS event source mapping."""

    idle_seconds = 0.0  # the long poll already waited

    def __init__(
        self,
        *,
        clients: AwsClients,
        source_name: str,
        queue_url: str,
        queue_arn: str,
        function: LambdaFunction,
        batch_size: int,
        accepts: RecordFilter,
        report_batch_item_failures: bool,
        max_receive_count: int | None,
        dead_letter_name: str | None,
        success_label: str,
        wait_seconds: int = 1,
        retry_visibility_seconds: int | None = None,
    ) -> None:
        super().__init__(f"{source_name}->{function.logical_id}")
        self._clients = clients
        self.source_name = source_name
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.function = function
        # One receive returns at most 10 messages; Lambda's batching window is not imitated.
        self.batch_size = min(10, max(1, batch_size))
        self._accepts = accepts
        self._report_batch_item_failures = report_batch_item_failures
        self._max_receive_count = max_receive_count
        self._dead_letter_name = dead_letter_name
        self._success_label = success_label
        self._wait_seconds = wait_seconds
        self._retry_visibility_seconds = retry_visibility_seconds

    def poll(self) -> bool:
        if not self.function.ready():
            self._pause(1.0)
            return False
        response = self._clients.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=self._wait_seconds,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            return False
        records = [sqs_record(message, self.queue_arn) for message in messages]
        # Lambda deletes messages its filters reject.
        rejected = [record for record in records if not self._accepts(record)]
        batch = [record for record in records if self._accepts(record)]
        self._delete(rejected)
        if not batch:
            return True
        try:
            invocation = self.function.invoke({"Records": batch})
        except HandlerUnavailableError:
            self._retry_later(batch)
            return False
        message_ids = [record["messageId"] for record in batch]
        failed_ids = self._failed_ids(invocation, message_ids)
        succeeded = [record for record in batch if record["messageId"] not in failed_ids]
        failed = [record for record in batch if record["messageId"] in failed_ids]
        self._delete(succeeded)
        for record in succeeded:
            logger.info("%s: %s [%s]", self._success_label, self.source_name, _summarise_body(record["body"]))
        for record in failed:
            receive_count = int(record["attributes"].get("ApproximateReceiveCount", "1"))
            last = self._max_receive_count is not None and receive_count >= self._max_receive_count
            logger.warning(
                "%s -> %s failed on message %s (receive %d%s)%s",
                self.source_name,
                self.function.logical_id,
                record["messageId"],
                receive_count,
                f" of {self._max_receive_count}" if self._max_receive_count else "",
                f"; SQS moves it to {self._dead_letter_name} on the next receive" if last else "",
            )
        self._retry_later(failed)
        return True

    def _failed_ids(self, invocation: Invocation, message_ids: list[str]) -> set[str]:
        if invocation.failed:
            return set(message_ids)
        if not self._report_batch_item_failures or not isinstance(invocation.payload, Mapping):
            return set()
        failed: set[str] = set()
        for failure in invocation.payload.get("batchItemFailures") or []:
            identifier = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
            if not isinstance(identifier, str) or identifier not in message_ids:
                return set(message_ids)  # an invalid identifier fails the whole batch
            failed.add(identifier)
        return failed

    def _delete(self, records: list[dict[str, Any]]) -> None:
        for start in range(0, len(records), 10):
            chunk = records[start : start + 10]
            self._clients.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": record["receiptHandle"]} for index, record in enumerate(chunk)
                ],
            )

    def _retry_later(self, records: list[dict[str, Any]]) -> None:
        # In AWS a failed message reappears after the queue's visibility timeout; locally that wait
        # can be shortened so retries and dead-lettering are watchable.
        if self._retry_visibility_seconds is None:
            return
        for record in records:
            self._clients.sqs.change_message_visibility(
                QueueUrl=self.queue_url,
                ReceiptHandle=record["receiptHandle"],
                VisibilityTimeout=self._retry_visibility_seconds,
            )


def _summarise_body(body: str, limit: int = 160) -> str:
    """The interesting keys of a JSON message body, for one log line."""
    try:
        data = json.loads(body)
    except ValueError:
        return body[:limit]
    if not isinstance(data, dict):
        return body[:limit]
    interesting = [
        "kind",
        "channel",
        "journey_id",
        "step_id",
        "profile_id",
        "visitor_id",
        "due_at",
        "idempotency_key",
    ]
    parts = [f"{key}={data[key]}" for key in interesting if key in data]
    return (" ".join(parts) or body)[:limit]


_AT_EXPRESSION = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")


def schedule_due_time(expression: str, timezone: str | None) -> datetime | None:
    """When an ``at(yyyy-mm-ddThh:mm:ss)`` expression fires, in UTC (None for rate/cron)."""
    match = _AT_EXPRESSION.match(expression.strip())
    if match is None:
        return None
    local = datetime.fromisoformat(match.group(1)).replace(tzinfo=ZoneInfo(timezone or "UTC"))
    return local.astimezone(UTC)


@dataclass(frozen=True)
class PendingSchedule:
    group: str
    name: str
    due: datetime | None
    expression: str
    target_arn: str


class SchedulerPump(Pump):
    """Fires due one-time schedules of the stack's schedule groups, by the stack clock."""

    def __init__(
        self,
        *,
        clients: AwsClients,
        clock: Clock,
        groups: list[str],
        function_for_arn: Callable[[str], LambdaFunction | None],
        poll_seconds: float = 0.2,
    ) -> None:
        super().__init__("scheduler")
        self.idle_seconds = poll_seconds
        self._clients = clients
        self._clock = clock
        self.groups = groups
        self._function_for_arn = function_for_arn
        # get_schedule answers, keyed by (group, name, last modification): list_schedules omits the
        # expression and target input.
        self._details: dict[tuple[str, str, str], dict[str, Any]] = {}
        # One-time schedules kept after firing (ActionAfterCompletion NONE) fire only once.
        self._fired: set[tuple[str, str, str]] = set()
        self._queue_urls: dict[str, str] = {}
        self._pending: list[PendingSchedule] = []
        self._unsupported: set[tuple[str, str]] = set()

    def pending(self) -> list[PendingSchedule]:
        """Schedules seen on the last poll that have not fired (for the local page)."""
        return list(self._pending)

    def poll(self) -> bool:
        now = self._clock.now()
        pending: list[PendingSchedule] = []
        seen: set[tuple[str, str, str]] = set()
        for group in self.groups:
            for summary in self._list(group):
                if self.stopping:
                    return False
                key = (group, summary["Name"], str(summary.get("LastModificationDate")))
                seen.add(key)
                if summary.get("State", "ENABLED") != "ENABLED" or key in self._fired:
                    continue
                detail = self._details.get(key)
                if detail is None:
                    detail = dict(self._clients.scheduler.get_schedule(Name=summary["Name"], GroupName=group))
                    self._details[key] = detail
                expression = detail.get("ScheduleExpression", "")
                due = schedule_due_time(expression, detail.get("ScheduleExpressionTimezone"))
                if due is None:
                    self._warn_unsupported(group, summary["Name"], expression)
                elif due <= now:
                    self._fire(key, detail, due)
                    continue
                pending.append(PendingSchedule(group, summary["Name"], due, expression, detail["Target"]["Arn"]))
        # Forget cached answers of schedules that are gone.
        self._details = {key: value for key, value in self._details.items() if key in seen}
        self._pending = sorted(pending, key=lambda item: (item.due is None, item.due or now))
        return False

    def _list(self, group: str) -> list[dict[str, Any]]:
        schedules: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"GroupName": group}
            if token:
                kwargs["NextToken"] = token
            response = self._clients.scheduler.list_schedules(**kwargs)
            schedules.extend(dict(item) for item in response.get("Schedules", []))
            token = response.get("NextToken")
            if not token:
                return schedules

    def _fire(self, key: tuple[str, str, str], detail: Mapping[str, Any], due: datetime) -> None:
        group, name, _ = key
        # Remembered first: whatever fails below, a schedule fires at most once.
        self._fired.add(key)
        target = detail["Target"]
        payload = target.get("Input") or "{}"
        try:
            self._deliver(target, payload)
        except Exception as error:
            try:
                self._dead_letter(detail, payload, error)
            except Exception:
                logger.exception("wake-up lost: schedule %s/%s could not be dead-lettered", group, name)
        else:
            logger.info(
                "wake-up fired: schedule %s/%s (due %s) -> %s",
                group,
                name,
                due.isoformat(timespec="seconds"),
                target["Arn"].rsplit(":", 1)[-1],
            )
        if detail.get("ActionAfterCompletion") == "DELETE":
            try:
                self._clients.scheduler.delete_schedule(Name=name, GroupName=group)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                    raise

    def _deliver(self, target: Mapping[str, Any], payload: str) -> None:
        arn: str = target["Arn"]
        service = arn.split(":")[2]
        if service == "sqs":
            message: dict[str, Any] = {"QueueUrl": self._queue_url(arn), "MessageBody": payload}
            group_id = (target.get("SqsParameters") or {}).get("MessageGroupId")
            if group_id:
                message["MessageGroupId"] = group_id
            self._clients.sqs.send_message(**message)
            return
        if service == "lambda":
            function = self._function_for_arn(arn)
            if function is None:
                raise LookupError(f"no local function for {arn}")
            invocation = function.invoke(json.loads(payload))
            if invocation.failed:
                raise RuntimeError(invocation.error)
            return
        raise ValueError(f"the local scheduler cannot deliver to {service} targets ({arn})")

    def _dead_letter(self, detail: Mapping[str, Any], payload: str, error: Exception) -> None:
        target = detail["Target"]
        dead_letter_arn = (target.get("DeadLetterConfig") or {}).get("Arn")
        logger.error(
            "wake-up failed: schedule %s/%s -> %s: %s%s",
            detail.get("GroupName"),
            detail.get("Name"),
            target["Arn"],
            error,
            "; sent to its dead-letter queue" if dead_letter_arn else "; no dead-letter queue",
        )
        if not dead_letter_arn:
            return
        code = error.response.get("Error", {}).get("Code", "") if isinstance(error, ClientError) else ""
        attributes = {
            "ERROR_CODE": code or type(error).__name__,
            "ERROR_MESSAGE": str(error)[:1000] or type(error).__name__,
            "EXECUTION_ID": str(uuid.uuid4()),
            "RETRY_ATTEMPTS": "0",
            "TARGET_ARN": target["Arn"],
            "X-Amz-Scheduler-Schedule-Arn": str(detail.get("Arn", "")),
            "X-Amz-Scheduler-Group": str(detail.get("GroupName", "")),
            "X-Amz-Scheduler-Attempt": "1",
        }
        self._clients.sqs.send_message(
            QueueUrl=self._queue_url(dead_letter_arn),
            MessageBody=payload,
            MessageAttributes={
                name: {"DataType": "String", "StringValue": value} for name, value in attributes.items() if value
            },
        )

    def _queue_url(self, queue_arn: str) -> str:
        if queue_arn not in self._queue_urls:
            _, _, _, _, account, name = queue_arn.split(":", 5)
            self._queue_urls[queue_arn] = self._clients.sqs.get_queue_url(
                QueueName=name, QueueOwnerAWSAccountId=account
            )["QueueUrl"]
        return self._queue_urls[queue_arn]

    def _warn_unsupported(self, group: str, name: str, expression: str) -> None:
        if (group, name) not in self._unsupported:
            self._unsupported.add((group, name))
            logger.warning(
                "schedule %s/%s uses %r; the local scheduler only fires at(...) schedules", group, name, expression
            )
