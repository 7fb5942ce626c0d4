"""Wake-ups: EventBridge Scheduler for waits of a minute or more, SQS message timers below.

Scheduler fires with one-minute precision, so the seed's "10 seconds after" step goes through an
SQS delay (0-900 s) instead. Both land on TimersQueue, so evaluate has one way in for timers.
A schedule is named after the wake-up id, so a retried step collides with its own schedule
instead of creating a second one. A wake-up that arrives early is re-armed by the engine.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from footprint.clock import Clock
from footprint.engine import WakeUp

SCHEDULER_MIN_SECONDS = 60
SQS_MAX_DELAY_SECONDS = 900


class SchedulerTimers:
    def __init__(
        self,
        scheduler: Any,
        sqs: Any,
        clock: Clock,
        *,
        schedule_group: str,
        timers_queue_url: str,
        timers_queue_arn: str,
        scheduler_role_arn: str,
        dead_letter_arn: str,
    ) -> None:
        self.scheduler = scheduler
        self.sqs = sqs
        self.clock = clock
        self.schedule_group = schedule_group
        self.timers_queue_url = timers_queue_url
        self.timers_queue_arn = timers_queue_arn
        self.scheduler_role_arn = scheduler_role_arn
        self.dead_letter_arn = dead_letter_arn

    def schedule(self, wake_up: WakeUp) -> None:
        # Which mechanism follows the journey's time; how long SQS holds the message follows the
        # wall clock (they differ only on the local stack's warped clock).
        if (wake_up.due_at - self.clock.now()).total_seconds() < SCHEDULER_MIN_SECONDS:
            delay = self.clock.real_seconds_until(wake_up.due_at)
            self.sqs.send_message(
                QueueUrl=self.timers_queue_url,
                MessageBody=wake_up.model_dump_json(),
                DelaySeconds=min(SQS_MAX_DELAY_SECONDS, math.ceil(delay)),
            )
            return
        try:
            self.scheduler.create_schedule(
                Name=wake_up.id,
                GroupName=self.schedule_group,
                ScheduleExpression=f"at({wake_up.due_at.astimezone(UTC):%Y-%m-%dT%H:%M:%S})",
                ScheduleExpressionTimezone="UTC",
                FlexibleTimeWindow={"Mode": "OFF"},
                ActionAfterCompletion="DELETE",
                Target={
                    "Arn": self.timers_queue_arn,
                    "RoleArn": self.scheduler_role_arn,
                    "Input": wake_up.model_dump_json(),
                    "RetryPolicy": {"MaximumEventAgeInSeconds": 86_400, "MaximumRetryAttempts": 185},
                    "DeadLetterConfig": {"Arn": self.dead_letter_arn},
                },
            )
        except ClientError as error:
            # The same step scheduled twice (a retried batch): the first schedule stands.
            if error.response["Error"]["Code"] != "ConflictException":
                raise

    def cancel(self, wake_up_id: str, due_at: datetime) -> None:
        if (due_at - self.clock.now()).total_seconds() < SCHEDULER_MIN_SECONDS:
            return  # an SQS timer cannot be recalled; the engine ignores it as stale
        try:
            self.scheduler.delete_schedule(Name=wake_up_id, GroupName=self.schedule_group)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
