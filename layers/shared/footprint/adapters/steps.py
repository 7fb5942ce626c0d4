"""Journey steps as structured log lines and CloudWatch metrics (per journey, node and outcome).

Funnel reports per step read these; a queryable step table is the reports work's to add.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from footprint.engine import RecordStep

logger = Logger(child=True)


class LoggedStepLog:
    def __init__(self, metrics: Metrics | None = None) -> None:
        self.metrics = metrics

    def record(self, step: RecordStep) -> None:
        logger.info("journey step", extra={"step": step.model_dump(mode="json", exclude_none=True)})
        if self.metrics is not None:
            self.metrics.add_metric(name=f"step_{step.outcome}", unit=MetricUnit.Count, value=1)
