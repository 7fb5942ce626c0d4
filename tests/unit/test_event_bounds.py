"""One definition of an event's bounds (footprint.models.events): the stored event and the engine's input
refuse what the tracking API refuses, so nothing track accepts can fail evaluate on every attempt."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import TypeAdapter, ValidationError

from footprint.engine import EventInput
from footprint.models.events import (
    EARLIEST_EVENT_TIME,
    LATEST_EVENT_TIME,
    MAX_CLOCK_AHEAD,
    MAX_EVENT_NAME_LENGTH,
    TrackedEvent,
)
from footprint.models.timing import MAX_DURATION, Duration, parse_duration
from tests.builders import T0, tracked


@pytest.mark.parametrize("name", ["x" * (MAX_EVENT_NAME_LENGTH + 1), "x" * 512, "-", " ", "--  -"])
def test_a_stored_event_and_an_engine_input_refuse_the_same_names(name: str) -> None:
    with pytest.raises(ValidationError, match="event"):
        tracked(event=name)
    with pytest.raises(ValidationError):
        EventInput(id="m", name=name, timestamp=T0)


@pytest.mark.parametrize(
    "moment",
    [datetime(9999, 12, 31, tzinfo=UTC), LATEST_EVENT_TIME, EARLIEST_EVENT_TIME - timedelta(seconds=1)],
)
def test_a_stored_event_and_an_engine_input_refuse_the_same_times(moment: datetime) -> None:
    with pytest.raises(ValidationError, match="timestamp"):
        tracked(at=moment)
    with pytest.raises(ValidationError):
        EventInput(id="m", name="product_viewed", timestamp=moment)


def test_a_stored_event_may_be_stamped_at_most_a_day_after_its_receipt() -> None:
    stored = tracked(at=T0).model_dump()
    assert TrackedEvent.model_validate({**stored, "timestamp": T0 + MAX_CLOCK_AHEAD}).timestamp > T0
    with pytest.raises(ValidationError, match="after the request was received"):
        TrackedEvent.model_validate({**stored, "timestamp": T0 + MAX_CLOCK_AHEAD + timedelta(seconds=1)})


def test_page_and_identify_calls_have_no_event_name_to_check() -> None:
    assert tracked("identify").canonical_event == "identify"


@pytest.mark.parametrize("text", ["1000000000d", "99999999999w", 1e300, "3654d"])
def test_journey_durations_are_bounded_and_never_overflow(text: object) -> None:
    with pytest.raises(ValidationError, match="duration"):
        TypeAdapter(Duration).validate_python(text)


def test_the_longest_wait_from_the_latest_event_is_still_a_date() -> None:
    assert datetime.max.replace(tzinfo=UTC) > LATEST_EVENT_TIME + MAX_DURATION
    assert parse_duration("3653d") == MAX_DURATION
