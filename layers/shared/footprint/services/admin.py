"""Journey administration, the use cases behind the admin API: validate, publish, list, pause, resume, simulate,
report.

Every refusal is an ``AdminError`` with a stable ``code``, a ``reason`` and a list of
``{"location", "message"}`` problems, the shape the tracking API answers with too. The catalog port is
``footprint.adapters.journey_catalog.DynamoJourneyCatalog`` in Lambda; it raises its own errors for a
version published with other content and for a journey with nothing to resume, which the handler maps.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from footprint.engine import SimulationLimitError, TimelineEntry
from footprint.models.journey import Journey, JourneyDefinitionError, SendNode
from footprint.models.timing import parse_duration
from footprint.services.admin_api import (
    InvalidJourneyError,
    InvalidRequestError,
    InvalidSimulationError,
    JourneyNotFoundError,
)
from footprint.services.content import JourneyContentError, journey_notes, load_checked_journey
from footprint.services.reports import FunnelReport, StepReader, journey_report
from footprint.services.simulation import (
    DEFAULT_HORIZON,
    SimulationInputError,
    SimulationSummary,
    parse_events,
    parse_time,
    read_event_lines,
    simulate_events,
    summarize,
)

# A simulation runs inside one API request: bound its clock, its work and the size of its answer.
MAX_SIMULATION_HORIZON = timedelta(days=400)
MAX_SIMULATED_INPUTS = 20_000
MAX_TIMELINE_ENTRIES = 10_000


class JourneyCatalog(Protocol):
    def publish(self, journey: Journey, yaml_text: str) -> None: ...
    def pause(self, journey_id: str) -> None: ...
    def resume(self, journey_id: str, version: int | None = None) -> int: ...
    def published(self) -> dict[str, list[int]]: ...
    def active_index(self, fresh: bool = False) -> dict[str, int]: ...
    def version(self, journey_id: str, version: int) -> Journey | None: ...
    def latest_version(self, journey_id: str) -> int | None: ...


# ---------------------------------------------------------------------------------------------- answers


class JourneySummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    version: int
    status: Literal["draft", "active", "paused"]
    trigger: str
    nodes: int
    # What to know before publishing (the billed parts of each SMS), one {location, message} each.
    notes: list[dict[str, str]] = Field(default_factory=list)

    @classmethod
    def of(cls, journey: Journey) -> JourneySummary:
        return cls(
            id=journey.id,
            name=journey.name,
            version=journey.version,
            status=journey.status,
            trigger=journey.trigger_id,
            nodes=len(journey.nodes),
            notes=[_problem(location, note) for location, note in journey_notes(journey)],
        )


class JourneyState(BaseModel):
    """Where new visitors go: ``active_version``, or nowhere while paused."""

    model_config = ConfigDict(frozen=True)

    id: str
    status: Literal["active", "paused"]
    active_version: int | None = None
    versions: list[int] = Field(default_factory=list)


class PublishResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    journey: JourneySummary
    state: JourneyState


class SimulationRequest(BaseModel):
    """POST /admin/journeys/simulate: the journey YAML, the events (a list of the objects ``footprint
    simulate`` reads, or its JSON-lines text), and how long to run after the last event."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    journey: str
    events: list[Any] | str
    until: str | None = None
    start: str | None = None


class SimulationResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    journey: JourneySummary
    timeline: list[TimelineEntry]
    summary: SimulationSummary


# ---------------------------------------------------------------------------------------------- use cases


class JourneyAdmin:
    def __init__(
        self,
        catalog: JourneyCatalog,
        steps: StepReader | None = None,
        unconfigured_channels: Mapping[str, str] | None = None,
    ) -> None:
        self.catalog = catalog
        self.steps = steps
        # channel -> why it cannot send on this stack (Settings.unconfigured_channels); none: all can.
        self.unconfigured_channels = dict(unconfigured_channels or {})

    def validate(self, yaml_text: str) -> JourneySummary:
        journey = load_journey(yaml_text)
        refuse_unconfigured_channels(journey, self.unconfigured_channels)
        return JourneySummary.of(journey)

    def publish(self, yaml_text: str) -> PublishResult:
        """Store the version (idempotent for the same content); an active one takes new visitors from now."""
        journey = load_journey(yaml_text)
        refuse_unconfigured_channels(journey, self.unconfigured_channels)
        self.catalog.publish(journey, yaml_text)
        return PublishResult(journey=JourneySummary.of(journey), state=self.state(journey.id))

    def list_journeys(self) -> list[JourneyState]:
        active = self.catalog.active_index(fresh=True)
        published = self.catalog.published()
        return [
            _state(journey_id, active.get(journey_id), published.get(journey_id, []))
            for journey_id in sorted(set(active) | set(published))
        ]

    def state(self, journey_id: str) -> JourneyState:
        versions = self.catalog.published().get(journey_id)
        if not versions:
            raise JourneyNotFoundError("unknown_journey", f"no journey {journey_id!r} is published")
        return _state(journey_id, self.catalog.active_index(fresh=True).get(journey_id), versions)

    def pause(self, journey_id: str) -> JourneyState:
        """Stop new entries (visitors in flight finish); pausing a paused journey changes nothing."""
        state = self.state(journey_id)
        if state.status == "active":
            self.catalog.pause(journey_id)
        return state.model_copy(update={"status": "paused", "active_version": None})

    def resume(self, journey_id: str, version: int | None = None) -> JourneyState:
        """New visitors enter ``version`` (default: the latest published) from now on."""
        state = self.state(journey_id)
        if version is not None and version not in state.versions:
            raise JourneyNotFoundError(
                "unknown_version", f"{journey_id} has no version {version} (published: {state.versions})"
            )
        chosen = self.catalog.resume(journey_id, version)
        return state.model_copy(update={"status": "active", "active_version": chosen})

    def simulate(self, body: str) -> SimulationResult:
        request = parse_simulation_request(body)
        journey = load_journey(request.journey, location="journey")
        horizon = _horizon(request.until)
        try:
            start = parse_time(request.start) if request.start else None
        except ValueError as error:
            raise InvalidSimulationError("invalid_start", str(error), [_problem("start", str(error))]) from error
        try:
            events = parse_events(_located_events(request.events), start)
        except SimulationInputError as error:
            raise InvalidSimulationError(
                "invalid_events", "an event cannot be simulated", [_problem(error.location, error.message)]
            ) from error
        try:
            timeline = simulate_events(journey, events, horizon=horizon, max_inputs=MAX_SIMULATED_INPUTS)
        except SimulationLimitError as error:
            raise _too_large(f"more than {MAX_SIMULATED_INPUTS} steps to play") from error
        if len(timeline) > MAX_TIMELINE_ENTRIES:
            raise _too_large(f"a timeline of more than {MAX_TIMELINE_ENTRIES} steps")
        return SimulationResult(journey=JourneySummary.of(journey), timeline=timeline, summary=summarize(timeline))

    def report(
        self, journey_id: str, version: int | None = None, since: str | None = None, until: str | None = None
    ) -> FunnelReport:
        """The journey's funnel from its recorded steps (footprint.services.reports has the definitions)."""
        if self.steps is None:
            raise RuntimeError("JourneyAdmin was built without a step reader")
        window = {name: _query_time(name, value) for name, value in (("since", since), ("until", until))}
        if window["since"] and window["until"] and window["since"] >= window["until"]:
            raise InvalidRequestError("invalid_window", "since must come before until", [_problem("until", str(until))])
        report = journey_report(self.steps, self.catalog, journey_id, version=version, **window)
        if report.steps == 0 and report.version is None:
            raise JourneyNotFoundError("unknown_journey", f"no journey {journey_id!r} is published")
        return report


# ---------------------------------------------------------------------------------------------- parsing


def refuse_unconfigured_channels(journey: Journey, unconfigured: Mapping[str, str], *, location: str = "body") -> None:
    """A send on a channel the stack cannot use would only ever be skipped: say so before publishing, with
    InvalidJourneyError ``channel_not_configured`` and one problem per such send node. ``unconfigured`` is
    ``ChannelSettings.unconfigured()`` (channel -> what turns it on); the admin API and the CLI both refuse here."""
    refused = {
        node_id: node.channel
        for node_id, node in journey.nodes.items()
        if isinstance(node, SendNode) and node.channel in unconfigured
    }
    if not refused:
        return
    prefix = f"{location}." if location else ""
    problems = [
        _problem(f"{prefix}nodes.{node_id}.channel", unconfigured[channel]) for node_id, channel in refused.items()
    ]
    reason = f"this stack cannot send {', '.join(sorted(set(refused.values())))}"
    raise InvalidJourneyError("channel_not_configured", reason, problems)


def load_journey(yaml_text: str, *, location: str = "body") -> Journey:
    """The journey, or InvalidJourneyError with one ``{"location", "message"}`` per problem."""
    if not yaml_text.strip():
        raise InvalidJourneyError("invalid_journey", "the journey YAML is empty", [_problem(location, "empty")])
    try:
        return load_checked_journey(yaml_text, origin=location)
    except JourneyDefinitionError as error:
        headline = str(error).splitlines()[0].rstrip(":")
        raise InvalidJourneyError("invalid_journey", headline, _definition_problems(error, location)) from error


def parse_simulation_request(body: str) -> SimulationRequest:
    try:
        return SimulationRequest.model_validate_json(body)
    except ValidationError as error:
        if any(problem["type"] == "json_invalid" for problem in error.errors()):
            raise InvalidRequestError("invalid_json", "the body is not JSON") from error
        raise InvalidRequestError(
            "invalid_body",
            'expected {"journey": "<YAML>", "events": [...], "until": "30d"}',
            [_problem(_location(problem["loc"]), problem["msg"]) for problem in error.errors(include_url=False)],
        ) from error


def _definition_problems(error: JourneyDefinitionError, location: str) -> list[dict[str, str]]:
    if isinstance(error, JourneyContentError):
        return [_problem(f"{location}.{where}", message) for where, message in error.problems]
    cause = error.__cause__
    if not isinstance(cause, ValidationError):  # YAML syntax: the parser's message says where
        return [_problem(location, str(error))]
    problems: list[dict[str, str]] = []
    for problem in cause.errors(include_url=False):
        where = _location((location, *problem["loc"]))
        message = str(problem["msg"]).removeprefix("Value error, ")
        # The graph check reports every problem in one message, one "  - " line each.
        head, *items = message.split("\n  - ")
        problems.extend(_problem(where, item) for item in items or [head])
    return problems


def _located_events(events: list[Any] | str) -> Iterable[tuple[str, Any]]:
    if isinstance(events, str):
        return read_event_lines(events.splitlines(), label="events line")
    return ((f"events[{index}]", item) for index, item in enumerate(events))


def _query_time(name: str, value: str | None) -> datetime | None:
    """``?since=`` / ``?until=``: ISO-8601 (``Z`` or an offset; without one, UTC), or absent."""
    if not value:
        return None
    try:
        return parse_time(value)
    except ValueError as error:
        raise InvalidRequestError(
            f"invalid_{name}", f"{name} must be an ISO-8601 time", [_problem(name, repr(value))]
        ) from error


def _horizon(until: str | None) -> timedelta:
    try:
        horizon = parse_duration(until) if until is not None else DEFAULT_HORIZON
    except ValueError as error:
        raise InvalidSimulationError("invalid_until", str(error), [_problem("until", str(error))]) from error
    if not timedelta(0) <= horizon <= MAX_SIMULATION_HORIZON:
        reason = f"until must be between 0 and {MAX_SIMULATION_HORIZON.days} days"
        raise InvalidSimulationError("invalid_until", reason, [_problem("until", str(until))])
    return horizon


def _too_large(what: str) -> InvalidSimulationError:
    return InvalidSimulationError("simulation_too_large", f"{what}; simulate fewer visitors or a shorter until", [])


def _state(journey_id: str, active_version: int | None, versions: list[int]) -> JourneyState:
    status: Literal["active", "paused"] = "active" if active_version is not None else "paused"
    return JourneyState(id=journey_id, status=status, active_version=active_version, versions=versions)


def _location(parts: Iterable[Any]) -> str:
    return ".".join(str(part) for part in parts) or "body"


def _problem(location: str, message: str) -> dict[str, str]:
    return {"location": location, "message": message}
