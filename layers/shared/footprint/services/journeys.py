"""Runs the pure engine for one visitor and carries out what it decides, exactly once per step.

The order of work for every input (a new event or a wake-up):

1. Load the visitor's enrollments (one Query: they sit next to the profile).
2. If an enrollment still has effects from an earlier step that were not confirmed done (the
   previous run stopped between its write and its effects), perform them first.
3. Ask the engine. When the enrollment changed, write it with its effects, conditional on the
   revision that was read (no check-then-write race: a concurrent writer makes the write fail,
   and the input is re-run against the fresh state, where it is usually a duplicate).
4. Perform the effects, then mark them done.

Every effect is idempotent on its own (deterministic schedule names, send idempotency keys, and
stale wake-ups ignored by the engine), so performing one twice after a crash is harmless.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, get_args

from footprint.engine import (
    CancelWakeUp,
    Decision,
    Effect,
    Enrollment,
    EventInput,
    ProfileView,
    RecordOutcomeEvent,
    RecordStep,
    ScheduleWakeUp,
    SendMessage,
    UpdateProfile,
    WakeUp,
    carry_history,
    evaluate,
    relevant_events,
    unless_since,
)
from footprint.engine.occurrences import belongs_to, occurrence_of, slot
from footprint.engine.steps import MESSAGE_OUTCOME_STEPS
from footprint.models.channels import MessageChannel
from footprint.models.consent import ConsentPolicy
from footprint.models.journey import MAX_LOOK_BACK, Journey
from footprint.models.messages import OutgoingMessage
from footprint.models.profile import Profile

MAX_ATTEMPTS = 5


class EnrollmentConflictError(Exception):
    """The enrollment changed since it was read."""


@dataclass(frozen=True)
class StoredEnrollment:
    enrollment: Enrollment
    # Effects of the last change that are not yet confirmed performed.
    unsettled_effects: list[Effect] = field(default_factory=list)


class EnrollmentStore(Protocol):
    def load_for_profile(self, profile_id: str) -> dict[str, StoredEnrollment]: ...

    def save(self, enrollment: Enrollment, effects: Sequence[Effect], read_revision: int | None) -> None:
        """Write conditionally on ``read_revision`` (None: must not exist); raise EnrollmentConflictError."""
        ...

    def settle(self, enrollment: Enrollment) -> None:
        """Mark the effects of ``enrollment.revision`` as performed."""
        ...


class RecentEvents(Protocol):
    """The visitor's recent events of the names some trigger's ``unless`` looks for, so a trigger
    can look back at them (they reach no journey of their own while the visitor is in none)."""

    def remember(self, profile_id: str, event: EventInput, now: datetime) -> None:
        """Keep ``event`` (idempotent: the same event is kept once)."""
        ...

    def recall(self, profile_id: str, name: str, since: datetime) -> list[EventInput]:
        """The kept ``name`` events stamped at or after ``since`` (the newest, at most a hundred)."""
        ...


class JourneyCatalog(Protocol):
    def active(self) -> list[Journey]: ...

    def version(self, journey_id: str, version: int) -> Journey | None: ...


class Timers(Protocol):
    def schedule(self, wake_up: WakeUp) -> None: ...

    def cancel(self, wake_up_id: str, due_at: datetime) -> None: ...


class SendQueue(Protocol):
    def enqueue(self, message: OutgoingMessage) -> None: ...


class ProfileEditor(Protocol):
    def update(self, change: UpdateProfile) -> None: ...


class StepLog(Protocol):
    def record(self, step: RecordStep) -> None: ...


class TimelineEvents(Protocol):
    def record_on(
        self,
        profile: Profile,
        name: str,
        *,
        event_id: str,
        properties: Mapping[str, Any],
        at: datetime,
        now: datetime,
    ) -> bool:
        """Store event ``name`` on the profile's timeline, once per ``event_id`` (footprint.services.timeline)."""
        ...


@dataclass(frozen=True)
class _EventNames:
    trigger: str  # the one event that enters the journey
    relevant: frozenset[str]  # every event that can change an enrollment in it
    unless: str | None  # the event its trigger's `unless` looks for


@dataclass
class JourneyService:
    enrollments: EnrollmentStore
    catalog: JourneyCatalog
    timers: Timers
    send_queue: SendQueue
    profiles: ProfileEditor
    steps: StepLog
    recent_events: RecentEvents
    outcomes: TimelineEvents
    # Which channels need a recorded yes before marketing, per source (footprint.models.consent).
    consent: ConsentPolicy = field(default_factory=ConsentPolicy)
    _event_names: dict[tuple[str, int], _EventNames] = field(default_factory=dict, init=False, repr=False)

    def on_event(self, profile: Profile, event: EventInput, now: datetime) -> list[Decision]:
        """Offer an event to every active journey and every open enrollment that names it."""
        view = ProfileView.from_profile(profile, self.consent.for_source(profile.source_id))
        if event.name in self._unless_names():
            # Kept before any journey runs, so a trigger processed after it sees it (a look-back).
            self.recent_events.remember(profile.profile_id, event, now)
        for attempt in range(MAX_ATTEMPTS):
            stored = self.enrollments.load_for_profile(profile.profile_id)
            self._settle_leftovers(stored.values(), profile, now)
            if attempt == 0:
                self._record_message_outcome(event, stored.values())
            try:
                return [
                    self._run(journey, stored.get(key), event, profile=profile, view=view, now=now)
                    for journey, key in self._runs_for(event, stored)
                ]
            except EnrollmentConflictError:
                if attempt == MAX_ATTEMPTS - 1:
                    raise
        return []

    def on_wake_up(self, profile: Profile, wake_up: WakeUp, now: datetime) -> Decision | None:
        journey = self.catalog.version(wake_up.journey_id, wake_up.journey_version)
        if journey is None:
            return None  # the version was deleted; nothing can run on it
        view = ProfileView.from_profile(profile, self.consent.for_source(profile.source_id))
        for attempt in range(MAX_ATTEMPTS):
            stored = self.enrollments.load_for_profile(profile.profile_id)
            self._settle_leftovers(stored.values(), profile, now)
            # The enrollment it was set for (one of several, for a journey that runs per occurrence).
            key = next((k for k, item in stored.items() if item.enrollment.id == wake_up.enrollment_id), journey.id)
            try:
                return self._run(journey, stored.get(key), wake_up, profile=profile, view=view, now=now)
            except EnrollmentConflictError:
                if attempt == MAX_ATTEMPTS - 1:
                    raise
        return None

    def adopt(self, from_profile_id: str, profile: Profile, now: datetime) -> int:
        """Move the enrollments of a profile merged into ``profile`` over to it, so the person's
        journeys carry on where the anonymous visitor left them and one history (entries, sends,
        seen inputs) covers both. Idempotent; returns how many open enrollments moved."""
        for name in sorted(self._unless_names()):
            # What the anonymous visitor did recently counts for the contact's look-backs too.
            for event in self.recent_events.recall(from_profile_id, name, since=now - MAX_LOOK_BACK):
                self.recent_events.remember(profile.profile_id, event, now)
        for attempt in range(MAX_ATTEMPTS):
            theirs = self.enrollments.load_for_profile(from_profile_id)
            ours = self.enrollments.load_for_profile(profile.profile_id)
            try:
                return sum(
                    self._adopt_one(item, ours.get(key), profile.profile_id, now)
                    for key, item in theirs.items()
                    if not _already_moved(item.enrollment)
                )
            except EnrollmentConflictError:
                if attempt == MAX_ATTEMPTS - 1:
                    raise
        return 0

    def _adopt_one(self, item: StoredEnrollment, mine: StoredEnrollment | None, profile_id: str, now: datetime) -> int:
        """One journey: the contact's copy takes the other's history (and, if only the other is in
        the journey, its place), then the other copy is marked as moved. Effects a crashed run left
        unconfirmed on either copy are carried, never dropped: the contact's next input performs them.
        Move first, then close: a crash in between leaves a copy that the next adoption closes, never
        a journey lost; a pending wake-up keeps its id and token, so it finds the moved copy."""
        old = item.enrollment
        moved = 0
        done = mine is not None and (mine.enrollment.id == old.id or old.id in mine.enrollment.merged_enrollment_ids)
        if not done:
            current = mine.enrollment if mine else None
            carried = [*(mine.unsettled_effects if mine else []), *item.unsettled_effects]
            if current is None or (old.is_open and not current.is_open):
                # Only the other copy is in the journey (or the contact never was): it goes on as theirs.
                rehomed = old.model_copy(update={"profile_id": profile_id})
                kept = carry_history(rehomed, current) if current else rehomed
                moved = int(old.is_open)
            else:
                # The contact's copy goes on (or both are finished): it keeps its run, takes the history.
                kept = carry_history(current, old)
            read_revision = current.revision if current else None
            kept = kept.model_copy(update={"revision": (read_revision or 0) + 1})
            self.enrollments.save(kept, carried, read_revision)
        left: dict[str, object] = {"merged_into": profile_id, "revision": old.revision + 1}
        if old.is_open:
            left |= {
                "status": "exited",
                "finish_reason": f"merged into {profile_id}",
                "finished_at": now,
                "current_node": None,
                "node_entered_at": None,
                "pending_wake_up": None,
            }
        # Its unconfirmed effects now travel with the contact's copy.
        self.enrollments.save(old.model_copy(update=left), [], old.revision)
        return moved

    def _runs_for(self, event: EventInput, stored: dict[str, StoredEnrollment]) -> Iterable[tuple[Journey, str]]:
        """The enrollments this event can change, as (journey, slot): the pinned version of each open
        enrollment that names the event (and, per occurrence, is not about another one), and the
        active journeys it triggers into a slot not already open (nothing else can change anything)."""
        open_slots: dict[str, int] = {}  # journey id -> open enrollments (per occurrence, several)
        pinned_slots: set[str] = set()
        for key, item in stored.items():
            enrollment = item.enrollment
            if enrollment.is_open:
                pinned_slots.add(key)
                open_slots[enrollment.journey_id] = open_slots.get(enrollment.journey_id, 0) + 1
                pinned = self.catalog.version(enrollment.journey_id, enrollment.journey_version)
                if (
                    pinned is not None
                    and event.name in self._event_names_of(pinned).relevant
                    and belongs_to(pinned, enrollment, event)
                ):
                    yield pinned, key
        for journey in self.catalog.active():
            # A visitor outside a journey can only enter it, and only its trigger event enters.
            if event.name != self._event_names_of(journey).trigger:
                continue
            key = slot(journey.id, occurrence_of(journey, event))
            if key in pinned_slots or (journey.per_occurrence is None and journey.id in open_slots):
                continue
            if journey.per_occurrence and open_slots.get(journey.id, 0) >= journey.per_occurrence.max_open:
                continue  # as many of this visitor's occurrences open as the journey allows
            yield journey, key

    def _event_names_of(self, journey: Journey) -> _EventNames:
        # Versions are immutable, so their event names are worked out once per process.
        key = (journey.id, journey.version)
        if key not in self._event_names:
            unless = journey.trigger.unless
            self._event_names[key] = _EventNames(
                trigger=journey.trigger.event,
                relevant=relevant_events(journey),
                unless=unless.event if unless else None,
            )
        return self._event_names[key]

    def _unless_names(self) -> set[str]:
        """The events an active journey's trigger looks back for."""
        return {name for journey in self.catalog.active() if (name := self._event_names_of(journey).unless)}

    def _run(
        self,
        journey: Journey,
        stored: StoredEnrollment | None,
        engine_input: EventInput | WakeUp,
        *,
        profile: Profile,
        view: ProfileView,
        now: datetime,
    ) -> Decision:
        current = stored.enrollment if stored else None
        recent: list[EventInput] = []
        if isinstance(engine_input, EventInput) and not (current and current.is_open) and journey.trigger.unless:
            since = unless_since(journey, engine_input)
            if since is not None:  # it would enter: what did the visitor do in the window?
                recent = self.recent_events.recall(profile.profile_id, journey.trigger.unless.event, since)
        decision = evaluate(journey, current, engine_input, view, now, recent=recent)
        if decision.changed and decision.enrollment is not None:
            self.enrollments.save(decision.enrollment, decision.effects, current.revision if current else None)
            self._perform(decision.effects, profile, now)
            self.enrollments.settle(decision.enrollment)
        elif decision.effects:  # an early wake-up: scheduled again, nothing stored
            self._perform(decision.effects, profile, now)
        return decision

    def _record_message_outcome(self, event: EventInput, stored: Iterable[StoredEnrollment]) -> None:
        """An outcome event of one of this visitor's own messages (message_sent, message_clicked, ...)
        becomes a step at its send node, once per message and outcome, so reports count what was
        accepted, delivered, shown, opened, clicked, dismissed and submitted. An event naming another
        visitor's enrollment, or none, records nothing."""
        outcome = MESSAGE_OUTCOME_STEPS.get(event.name)
        if outcome is None:
            return
        props = event.properties
        enrollment = next(
            (item.enrollment for item in stored if item.enrollment.id == props.get("enrollment_id")), None
        )
        node_id, message_id = props.get("node_id"), props.get("message_id")
        if (
            enrollment is None
            or props.get("journey_id") != enrollment.journey_id
            or not isinstance(node_id, str)
            or not isinstance(message_id, str)
        ):
            return
        channel = props.get("channel")
        self.steps.record(
            RecordStep(
                key=f"{message_id}:{outcome}",
                at=event.timestamp,
                profile_id=enrollment.profile_id,
                journey_id=enrollment.journey_id,
                journey_version=enrollment.journey_version,
                enrollment_id=enrollment.id,
                node_id=node_id,
                outcome=outcome,
                channel=channel if channel in get_args(MessageChannel) else None,
                idempotency_key=message_id,
            )
        )

    def _settle_leftovers(self, stored: Iterable[StoredEnrollment], profile: Profile, now: datetime) -> None:
        for item in stored:
            if item.unsettled_effects:
                self._perform(item.unsettled_effects, profile, now)
                self.enrollments.settle(item.enrollment)

    def _perform(self, effects: Iterable[Effect], profile: Profile, now: datetime) -> None:
        for effect in effects:
            match effect:
                case ScheduleWakeUp():
                    self.timers.schedule(effect.wake_up)
                case CancelWakeUp():
                    self.timers.cancel(effect.wake_up_id, effect.due_at)
                case SendMessage():
                    self.send_queue.enqueue(outgoing_message(effect, profile, now))
                case UpdateProfile():
                    self.profiles.update(effect)
                case RecordStep():
                    self.steps.record(effect)
                case RecordOutcomeEvent():
                    self.outcomes.record_on(
                        profile,
                        effect.event,
                        event_id=effect.event_id,
                        properties=effect.properties,
                        at=effect.at,
                        now=now,
                    )


def _already_moved(enrollment: Enrollment) -> bool:
    # Copies closed by a merge before ``merged_into`` existed say so in their finish reason.
    return enrollment.merged_into is not None or (enrollment.finish_reason or "").startswith("merged into ")


def outgoing_message(effect: SendMessage, profile: Profile, now: datetime) -> OutgoingMessage:
    """The SendQueue message for a send step; the trigger's properties personalise it."""
    content = effect.content.model_dump(exclude_none=True, exclude_defaults=True) if effect.content else {}
    if effect.template:
        content["template"] = effect.template
    return OutgoingMessage(
        idempotency_key=effect.idempotency_key,
        profile_id=effect.profile_id,
        source_id=profile.source_id,
        journey_id=effect.journey_id,
        journey_version=effect.journey_version,
        enrollment_id=effect.enrollment_id,
        node_id=effect.node_id,
        channel=effect.channel,
        category=effect.category,
        content=content,
        context={"trigger": effect.trigger_properties, "occurrence": effect.occurrence},
        requested_at=now,
        quiet_hours=effect.quiet_hours,
        timezone=effect.default_timezone,
    )
