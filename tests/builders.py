"""Small builders for test data, so tests state only what matters to them."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from footprint.models.events import TrackedEvent

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
_ids = itertools.count(1)


def tracked(
    type_: str = "track",
    event: str | None = "product_viewed",
    *,
    anonymous_id: str | None = "anon-1",
    user_id: str | None = None,
    at: datetime | None = None,
    after: timedelta | None = None,
    source_id: str = "demo",
    message_id: str | None = None,
    trust: str = "server",
    **fields: Any,
) -> TrackedEvent:
    """A stored event. It comes from a trusted backend unless the test says otherwise (``trust``):
    tests of the trust model state it, every other test means a call whose identity holds."""
    moment = at or T0 + (after or timedelta())
    return TrackedEvent(
        source_id=source_id,
        message_id=message_id or f"msg-{next(_ids)}",
        type=type_,  # type: ignore[arg-type]
        event=event if type_ == "track" else fields.pop("event_name", type_),
        anonymous_id=anonymous_id,
        user_id=user_id,
        timestamp=moment,
        received_at=moment,
        trust=trust,  # type: ignore[arg-type]
        **fields,
    )
