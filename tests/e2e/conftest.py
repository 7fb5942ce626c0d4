"""One local stack per test module, on free ports, with a clock the tests move by hand.

The stack is module-scoped rather than session-scoped on purpose: it sets process-wide things (the
clock, AWS_ENDPOINT_URL, the function environment) and shares moto's backends with any in-process
``mock_aws`` test, so it must be gone before another module's tests run on the same worker. Mark
e2e modules ``pytest.mark.xdist_group("local_stack")`` so they run on one worker.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from footprint.clock import ManualClock
from footprint_local.stack import LocalStack
from tests.e2e.journeys import journey_clock, journey_stack

# 08:00 in Ho Chi Minh City: a plausible moment for a visitor to browse the shop.
STACK_START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def stack_clock() -> ManualClock:
    return ManualClock(STACK_START)


@pytest.fixture(scope="module")
def local_stack(stack_clock: ManualClock) -> Iterator[LocalStack]:
    stack = LocalStack(
        port=0,
        moto_port=0,
        clock=stack_clock,
        # Tests drive retries as fast as the pumps go: failed SQS messages reappear at once.
        sqs_retry_seconds=0,
        stream_retry_pause_seconds=0.02,
        scheduler_poll_seconds=0.05,
    )
    with stack:
        yield stack


# A stack running the shipped journeys (tests/e2e/journeys.py), for the modules that drive them.
@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return journey_clock()


@pytest.fixture(scope="module")
def stack(clock: ManualClock) -> Iterator[LocalStack]:
    with journey_stack(clock) as running:
        yield running
