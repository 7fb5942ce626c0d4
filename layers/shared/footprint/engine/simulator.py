"""Play a journey on a virtual clock: events in, a timeline out (``footprint simulate`` wraps this).

Events are processed in timestamp order; every ScheduleWakeUp goes into a priority queue and comes
back at its due time, exactly as TimersQueue would deliver it. Nothing sleeps: a two-week journey
plays in milliseconds, and the same inputs always give the same timeline.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from footprint.engine.core import evaluate
from footprint.engine.effects import Decision, RecordOutcomeEvent, ScheduleWakeUp, SendMessage, UpdateProfile
from footprint.engine.inputs import EventInput, ProfileView, UtcDatetime, WakeUp
from footprint.engine.occurrences import belongs_to, occurrence_of, slot
from footprint.engine.state import Enrollment
from footprint.engine.steps import RecordStep, StepOutcome
from footprint.models.journey import Channel, Journey

# At the same instant, events go before wake-ups: an event stamped at the very end of a wait_for
# still counts as in time.
_EVENT_FIRST, _WAKE_UP_LATER = 0, 1
# How many `unless` events per visitor the look-back keeps (the service keeps as many per query).
_RECENT_PER_VISITOR = 100


class SimulatedEvent(BaseModel):
    """One event of one visitor; ``profile``, when given, replaces the simulator's view of the
    visitor from this event on (otherwise the view carries on, updated by the journey and by the
    events it has seen)."""

    model_config = ConfigDict(frozen=True)

    profile_id: str
    event: EventInput
    profile: ProfileView | None = None


class TimelineEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: UtcDatetime
    profile_id: str
    enrollment_id: str
    node_id: str
    stage: str | None = None
    outcome: StepOutcome
    detail: str | None = None
    channel: Channel | None = None
    message: str | None = None  # a one-line summary of what was sent

    def describe(self) -> str:
        """One human-readable line, for the CLI."""
        what = f"{self.channel}: {self.message}" if self.channel else (self.detail or "")
        return f"{self.at:%Y-%m-%d %H:%M:%S}Z  {self.profile_id}  {self.node_id:<24} {self.outcome:<11} {what}".rstrip()


@dataclass(frozen=True)
class SimulatedStep:
    """Everything about one processed input, for tests and debugging."""

    at: datetime
    profile_id: str
    input: EventInput | WakeUp
    before: Enrollment | None
    decision: Decision


@dataclass(order=True)
class _Queued:
    at: datetime
    priority: int
    order: int
    profile_id: str = field(compare=False)
    input: EventInput | WakeUp = field(compare=False)
    profile: ProfileView | None = field(compare=False, default=None)


class SimulationLimitError(RuntimeError):
    """The simulation did not settle (a journey that keeps waking up forever); pass ``until``."""


class Simulator:
    """A virtual clock and a queue of inputs for one journey and any number of visitors."""

    def __init__(
        self,
        journey: Journey,
        *,
        profiles: Mapping[str, ProfileView] | None = None,
        describe_message: Callable[[SendMessage], str] | None = None,
    ) -> None:
        self.journey = journey
        # How a sent message is summarised in the timeline (the CLI renders templates here).
        self.describe_message = describe_message or summarize_message
        self.profiles: dict[str, ProfileView] = dict(profiles or {})
        # (visitor, slot) -> enrollment: one slot per journey, or one per occurrence (footprint.engine.occurrences).
        self.enrollments: dict[tuple[str, str], Enrollment] = {}
        self.timeline: list[TimelineEntry] = []
        self.steps: list[SimulatedStep] = []
        self.clock: datetime | None = None
        # Per visitor, the events the trigger's `unless` names, kept for its look-back as the service keeps them.
        self._recent: dict[str, list[EventInput]] = {}
        self._queue: list[_Queued] = []
        self._order = itertools.count()

    def add_event(self, profile_id: str, event: EventInput, profile: ProfileView | None = None) -> None:
        self._push(event.timestamp, _EVENT_FIRST, profile_id, event, profile)

    def add_input(self, profile_id: str, item: EventInput | WakeUp, at: datetime) -> None:
        """Queue any input at any time (tests use it to replay duplicates and stale wake-ups)."""
        self._push(at, _EVENT_FIRST if isinstance(item, EventInput) else _WAKE_UP_LATER, profile_id, item, None)

    def run(self, *, until: datetime | None = None, max_inputs: int = 100_000) -> list[TimelineEntry]:
        """Process queued inputs in time order up to ``until`` (default: until nothing is left)."""
        for _ in range(max_inputs):
            if not self._queue or (until is not None and self._queue[0].at > until):
                return self.timeline
            self._process(heapq.heappop(self._queue))
        raise SimulationLimitError(f"still busy after {max_inputs} inputs; pass an earlier `until`")

    def _push(
        self,
        at: datetime,
        priority: int,
        profile_id: str,
        item: EventInput | WakeUp,
        profile: ProfileView | None,
    ) -> None:
        heapq.heappush(self._queue, _Queued(at, priority, next(self._order), profile_id, item, profile))

    def _process(self, queued: _Queued) -> None:
        now = queued.at if self.clock is None else max(self.clock, queued.at)
        self.clock = now
        profile_id = queued.profile_id
        if queued.profile is not None:
            self.profiles[profile_id] = queued.profile
        profile = self.profiles.get(profile_id) or ProfileView(id=profile_id)
        unless = self.journey.trigger.unless
        recent = self._recent.setdefault(profile_id, [])
        if isinstance(queued.input, EventInput) and unless is not None and queued.input.name == unless.event:
            recent.append(queued.input)
            del recent[:-_RECENT_PER_VISITOR]
        for key in self._slots_for(profile_id, queued.input):
            profile = self._run(key, profile, queued.input, now, recent)
        if isinstance(queued.input, EventInput):
            # The history conditions see events that came before (the service keeps it the same way).
            history = dict(profile.event_history)
            history[queued.input.name] = [*history.get(queued.input.name, []), queued.input.timestamp]
            profile = profile.model_copy(update={"event_history": history})
        self.profiles[profile_id] = profile

    def _slots_for(self, profile_id: str, item: EventInput | WakeUp) -> list[tuple[str, str]]:
        """The visitor's enrollments ``item`` goes to, as the service routes it (footprint.services.journeys)."""
        mine = {key: enrollment for key, enrollment in self.enrollments.items() if key[0] == profile_id}
        if isinstance(item, WakeUp):
            found = next((key for key, enrollment in mine.items() if enrollment.id == item.enrollment_id), None)
            return [found or (profile_id, self.journey.id)]
        keys = [key for key, e in mine.items() if e.is_open and belongs_to(self.journey, e, item)]
        entering = (profile_id, slot(self.journey.id, occurrence_of(self.journey, item)))
        per = self.journey.per_occurrence
        open_count = sum(e.is_open for e in mine.values())
        room = (per is None and open_count == 0) or (per is not None and open_count < per.max_open)
        if room and entering not in keys:
            keys.append(entering)
        return keys

    def _run(
        self,
        key: tuple[str, str],
        profile: ProfileView,
        item: EventInput | WakeUp,
        now: datetime,
        recent: list[EventInput],
    ) -> ProfileView:
        profile_id = key[0]
        before = self.enrollments.get(key)
        decision = evaluate(self.journey, before, item, profile, now, recent=recent)
        self.steps.append(SimulatedStep(now, profile_id, item, before, decision))
        if decision.enrollment is not None:
            self.enrollments[key] = decision.enrollment
        sends = {effect.node_id: effect for effect in decision.effects if isinstance(effect, SendMessage)}
        for effect in decision.effects:
            match effect:
                case ScheduleWakeUp(wake_up=wake_up):
                    self._push(max(wake_up.due_at, now), _WAKE_UP_LATER, profile_id, wake_up, None)
                case UpdateProfile():
                    profile = effect.apply_to(profile)
                case RecordStep():
                    self.timeline.append(self._entry(effect, sends.get(effect.node_id)))
                case RecordOutcomeEvent():
                    # Stored on the timeline, it comes back through the stream as any event does.
                    outcome = EventInput(
                        id=effect.event_id, name=effect.event, properties=effect.properties, timestamp=effect.at
                    )
                    self._push(effect.at, _EVENT_FIRST, profile_id, outcome, None)
        return profile

    def _entry(self, step: RecordStep, send: SendMessage | None) -> TimelineEntry:
        return TimelineEntry(
            at=step.at,
            profile_id=step.profile_id,
            enrollment_id=step.enrollment_id,
            node_id=step.node_id,
            stage=step.stage,
            outcome=step.outcome,
            detail=step.detail,
            channel=step.channel,
            message=self.describe_message(send) if send is not None and step.outcome == "sent" else None,
        )


def simulate(
    journey: Journey,
    events: Iterable[SimulatedEvent],
    *,
    profiles: Mapping[str, ProfileView] | None = None,
    until: datetime | None = None,
    describe_message: Callable[[SendMessage], str] | None = None,
) -> list[TimelineEntry]:
    """The timeline of ``journey`` for ``events`` (any visitors, any order), run to ``until`` or
    until no wake-up is left."""
    simulator = Simulator(journey, profiles=profiles, describe_message=describe_message)
    for item in events:
        simulator.add_event(item.profile_id, item.event, item.profile)
    return simulator.run(until=until)


def summarize_message(send: SendMessage) -> str:
    """The message's title (or subject, body, template), at most 80 characters."""
    content = send.content
    if content is None:
        return f"template {send.template}"
    text = content.title or content.subject or content.body or content.template_id or content.url or ""
    return text if len(text) <= 80 else text[:79] + "…"
