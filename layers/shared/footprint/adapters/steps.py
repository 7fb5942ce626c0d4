"""Journey steps as log lines (structured JSON in CloudWatch, readable on the local stack) and metrics.

Funnel reports per step read these; a queryable step table is the reports work's to add.
"""

from __future__ import annotations

import logging

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from footprint.engine import RecordStep

# A child of the Powertools service logger ("footprint"): in Lambda its records go out through the
# service's JSON formatter with the step as structured fields; the local stack prints them as lines.
STEP_LOGGER = "footprint.journey_steps"
logger = logging.getLogger(STEP_LOGGER)


class LoggedStepLog:
    def __init__(self, metrics: Metrics | None = None) -> None:
        self.metrics = metrics

    def record(self, step: RecordStep) -> None:
        detail = f" ({step.detail})" if step.detail else ""
        channel = f" [{step.channel}]" if step.channel else ""
        logger.info(
            "journey step: %s v%d %s %s%s%s, profile %s",
            step.journey_id,
            step.journey_version,
            step.node_id,
            step.outcome,
            channel,
            detail,
            step.profile_id,
            extra={"step": step.model_dump(mode="json", exclude_none=True)},
        )
        if self.metrics is not None:
            self.metrics.add_metric(name=f"step_{step.outcome}", unit=MetricUnit.Count, value=1)
