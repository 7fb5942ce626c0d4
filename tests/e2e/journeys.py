"""A local stack running the shipped journeys, on a clock the test moves, and a visitor's calls into it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from footprint.clock import ManualClock
from footprint_local.stack import LocalStack

JOURNEYS = Path(__file__).resolve().parents[2] / "journeys"
START = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 09:00 in Ho Chi Minh City, outside quiet hours
WRITE_KEY = "demo-write-key"


def journey_clock() -> ManualClock:
    # Timers not yet due are looked at again every 0.2 s of real time until the test moves the clock.
    return ManualClock(START, pending_delay=0.2)


@contextmanager
def journey_stack(clock: ManualClock) -> Iterator[LocalStack]:
    with LocalStack(
        port=0,
        moto_port=0,
        clock=clock,
        journeys_dir=JOURNEYS,
        sqs_retry_seconds=0,
        stream_retry_pause_seconds=0.02,
        scheduler_poll_seconds=0.05,
    ) as running:
        yield running


def track(
    stack: LocalStack, clock: ManualClock, event: str, *, visitor: str, message_id: str | None = None, **properties: Any
) -> None:
    """A track call from a browser in Vietnam, stamped with the stack's clock."""
    response = requests.post(
        f"{stack.api_url}/v1/track",
        auth=(WRITE_KEY, ""),
        json={
            "anonymousId": visitor,
            "messageId": message_id or f"{visitor}-{event}",
            "event": event,
            "properties": properties,
            "timestamp": clock.now().isoformat(),
            "context": {"timezone": "Asia/Ho_Chi_Minh"},
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text
