"""Play a journey over visitor events on a virtual clock: ``footprint simulate`` and POST /admin/journeys/simulate.

Both read the same event objects (one per JSON line for the CLI, a JSON list for the admin API)::

    {"at": "2026-11-23T09:00:00Z" | "after": "15s", "visitor": "v1", "event": "product_viewed",
     "properties": {...}, "id": "optional message id",
     "profile": {optional profile view: timezone, attributes, tags, reachable_channels}}

``after`` is counted from ``start`` (default: the first ``at`` seen, else ``DEFAULT_START``). The clock
keeps running for ``horizon`` (default 30 days) after the last event, so waits and timeouts play out.
Deterministic and offline: the same inputs always give the same timeline.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from footprint.engine import EventInput, ProfileView, SimulatedEvent, Simulator, TimelineEntry
from footprint.models.journey import Journey
from footprint.models.timing import parse_duration
from footprint.services.content import preview_message

DEFAULT_START = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
DEFAULT_HORIZON = timedelta(days=30)
DEFAULT_MAX_INPUTS = 100_000


class SimulationInputError(ValueError):
    """An event that cannot be simulated; ``location`` names it (``line 3``, ``events[2]``)."""

    def __init__(self, location: str, message: str) -> None:
        super().__init__(f"{location}: {message}")
        self.location = location
        self.message = message


class SimulationSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    steps: int
    sent: int
    converted: int


def read_event_lines(lines: Iterable[str], label: str = "line") -> Iterator[tuple[str, Any]]:
    """JSON lines as (``line N``, decoded object); blank lines and ``#`` comments are skipped."""
    for number, raw in enumerate(lines, start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        try:
            decoded = json.loads(raw)
        except ValueError as error:
            raise SimulationInputError(f"{label} {number}", str(error)) from error
        except RecursionError as error:
            raise SimulationInputError(f"{label} {number}", "nested too deeply") from error
        yield f"{label} {number}", decoded


def parse_events(items: Iterable[tuple[str, Any]], start: datetime | None = None) -> list[SimulatedEvent]:
    """Event objects, each with the location to name in an error, as the simulator's inputs."""
    origin = start
    events: list[SimulatedEvent] = []
    for location, item in items:
        if not isinstance(item, dict):
            raise SimulationInputError(location, "an event is a JSON object")
        try:
            if "at" in item:
                at = parse_time(str(item["at"]))
                origin = origin or at
            else:
                at = (origin or DEFAULT_START) + parse_duration(item.get("after", "0s"))
            visitor = str(item.get("visitor", "visitor-1"))
            event = EventInput(
                id=str(item.get("id") or location.replace(" ", "-")),
                name=str(item["event"]),
                properties=item.get("properties") or {},
                timestamp=at,
            )
            profile = ProfileView.model_validate({"id": visitor, **item["profile"]}) if "profile" in item else None
        except KeyError as missing:
            raise SimulationInputError(location, f"{missing} is required") from missing
        except (ValueError, TypeError) as error:
            raise SimulationInputError(location, str(error)) from error
        except OverflowError as error:  # "after" a start so late (or so long) that it is past year 9999
            raise SimulationInputError(location, "the event's time is out of range") from error
        events.append(SimulatedEvent(profile_id=visitor, event=event, profile=profile))
    return events


def simulate_events(
    journey: Journey,
    events: Sequence[SimulatedEvent],
    *,
    horizon: timedelta = DEFAULT_HORIZON,
    max_inputs: int = DEFAULT_MAX_INPUTS,
) -> list[TimelineEntry]:
    """The timeline of ``journey`` for ``events``, run until ``horizon`` after the last event.

    Raises ``footprint.engine.SimulationLimitError`` past ``max_inputs`` processed inputs.
    """
    simulator = Simulator(journey, describe_message=preview_message)
    for item in events:
        simulator.add_event(item.profile_id, item.event, item.profile)
    last = max((item.event.timestamp for item in events), default=None)
    return simulator.run(until=(last + horizon) if last else None, max_inputs=max_inputs)


def summarize(timeline: Sequence[TimelineEntry]) -> SimulationSummary:
    return SimulationSummary(
        steps=len(timeline),
        sent=sum(1 for entry in timeline if entry.outcome == "sent"),
        converted=sum(1 for entry in timeline if entry.outcome == "converted"),
    )


def parse_time(value: str) -> datetime:
    """ISO-8601 (``Z`` accepted) in UTC; a time without an offset is taken as UTC."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
