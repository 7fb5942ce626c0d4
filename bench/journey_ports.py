"""In-memory ports for ``JourneyService``, so the engine benchmark runs the real service without I/O.

Each fake keeps what its adapter keeps and behaves as it does where that changes what the service
sees: the enrollment store writes conditionally on the revision read and settles only the revision
it is given; the timers hold wake-ups in a priority queue by due time, a wait of a minute or more
is a "schedule" that a cancel removes (Scheduler's DeleteSchedule) and that is created once per
wake-up id (a second CreateSchedule conflicts), while a shorter one is an SQS timer, which a cancel
cannot recall (the engine ignores it as stale when it arrives). The rest only count what they get.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from footprint.engine import Effect, Enrollment, EventInput, RecordStep, UpdateProfile, WakeUp
from footprint.engine.occurrences import slot_of
from footprint.models.journey import Journey
from footprint.models.messages import OutgoingMessage
from footprint.models.profile import Profile
from footprint.services.journeys import EnrollmentConflictError, JourneyService, StoredEnrollment

# The Timers adapter's threshold between an SQS message timer and a Scheduler schedule.
SCHEDULER_MIN_WAIT = timedelta(seconds=60)


class InMemoryEnrollments:
    """EnrollmentStore: the enrollments of each profile, with their unsettled effects."""

    def __init__(self) -> None:
        self.by_profile: dict[str, dict[str, StoredEnrollment]] = {}

    def load_for_profile(self, profile_id: str) -> dict[str, StoredEnrollment]:
        return dict(self.by_profile.get(profile_id, {}))

    def save(self, enrollment: Enrollment, effects: Sequence[Effect], read_revision: int | None) -> None:
        mine = self.by_profile.setdefault(enrollment.profile_id, {})
        current = mine.get(slot_of(enrollment))
        if (current.enrollment.revision if current else None) != read_revision:
            raise EnrollmentConflictError(enrollment.id)
        mine[slot_of(enrollment)] = StoredEnrollment(enrollment, list(effects))

    def settle(self, enrollment: Enrollment) -> None:
        mine = self.by_profile.get(enrollment.profile_id, {})
        current = mine.get(slot_of(enrollment))
        if current is not None and current.enrollment.revision == enrollment.revision:
            mine[slot_of(enrollment)] = StoredEnrollment(current.enrollment)

    def open_enrollments(self) -> int:
        return sum(item.enrollment.is_open for mine in self.by_profile.values() for item in mine.values())


class StaticCatalog:
    """JourneyCatalog: a fixed set of active journeys (their versions are the only ones published)."""

    def __init__(self, journeys: Iterable[Journey]) -> None:
        self.journeys = list(journeys)
        self.versions = {(journey.id, journey.version): journey for journey in self.journeys}

    def active(self) -> list[Journey]:
        return self.journeys

    def version(self, journey_id: str, version: int) -> Journey | None:
        return self.versions.get((journey_id, version))


@dataclass(order=True)
class _Timer:
    due_at: datetime
    order: int
    wake_up: WakeUp = field(compare=False)
    is_schedule: bool = field(compare=False)


class QueuedTimers:
    """Timers: wake-ups in a priority queue, handed back by ``pop_due`` when they fall due.

    ``now`` is the moment of the input being evaluated (the driver sets it): like the adapter, it
    decides between an SQS timer and a schedule."""

    def __init__(self) -> None:
        self.now = datetime.min.replace(tzinfo=UTC)
        self._queue: list[_Timer] = []
        self._order = itertools.count()
        self._schedules: set[str] = set()  # wake-up ids with a live schedule
        self.scheduled = 0
        self.cancelled = 0  # schedules deleted before they fired

    def schedule(self, wake_up: WakeUp) -> None:
        is_schedule = wake_up.due_at - self.now >= SCHEDULER_MIN_WAIT
        if is_schedule:
            if wake_up.id in self._schedules:
                return  # the same step scheduled twice: the first schedule stands
            self._schedules.add(wake_up.id)
        self.scheduled += 1
        heapq.heappush(self._queue, _Timer(wake_up.due_at, next(self._order), wake_up, is_schedule))

    def cancel(self, wake_up_id: str, due_at: datetime) -> None:
        if due_at - self.now < SCHEDULER_MIN_WAIT:
            return  # an SQS timer cannot be recalled
        if wake_up_id in self._schedules:
            self._schedules.discard(wake_up_id)
            self.cancelled += 1

    def pop_due(self, until: datetime) -> WakeUp | None:
        """The next wake-up due at or before ``until``, or None; deleted schedules never fire."""
        while self._queue and self._queue[0].due_at <= until:
            timer = heapq.heappop(self._queue)
            if not timer.is_schedule:
                return timer.wake_up
            if timer.wake_up.id in self._schedules:
                self._schedules.discard(timer.wake_up.id)
                return timer.wake_up
        return None

    def pending(self) -> int:
        """Wake-ups still to fire (deleted schedules left out)."""
        return sum(1 for timer in self._queue if not timer.is_schedule or timer.wake_up.id in self._schedules)


class CountingSendQueue:
    def __init__(self) -> None:
        self.by_channel: Counter[str] = Counter()

    def enqueue(self, message: OutgoingMessage) -> None:
        self.by_channel[message.channel] += 1


class CountingProfileEditor:
    def __init__(self) -> None:
        self.updates = 0

    def update(self, change: UpdateProfile) -> None:
        self.updates += 1


class CountingStepLog:
    def __init__(self) -> None:
        self.outcomes: Counter[str] = Counter()

    def record(self, step: RecordStep) -> None:
        self.outcomes[step.outcome] += 1


class CountingTimelineEvents:
    def __init__(self) -> None:
        self.events: Counter[str] = Counter()

    def record_on(self, profile: Profile, name: str, **_: object) -> bool:
        self.events[name] += 1
        return True


class InMemoryRecentEvents:
    """RecentEvents: each profile's kept ``unless`` events, newest first when recalled (no expiry)."""

    def __init__(self) -> None:
        self.by_profile: dict[str, dict[str, EventInput]] = {}

    def remember(self, profile_id: str, event: EventInput, now: datetime) -> None:
        self.by_profile.setdefault(profile_id, {})[event.id] = event

    def recall(self, profile_id: str, name: str, since: datetime) -> list[EventInput]:
        kept = [e for e in self.by_profile.get(profile_id, {}).values() if e.name == name and e.timestamp >= since]
        return sorted(kept, key=lambda e: e.timestamp, reverse=True)[:100]


@dataclass
class InMemoryPorts:
    catalog: StaticCatalog
    enrollments: InMemoryEnrollments = field(default_factory=InMemoryEnrollments)
    timers: QueuedTimers = field(default_factory=QueuedTimers)
    send_queue: CountingSendQueue = field(default_factory=CountingSendQueue)
    profiles: CountingProfileEditor = field(default_factory=CountingProfileEditor)
    steps: CountingStepLog = field(default_factory=CountingStepLog)
    recent_events: InMemoryRecentEvents = field(default_factory=InMemoryRecentEvents)
    outcomes: CountingTimelineEvents = field(default_factory=CountingTimelineEvents)

    def service(self) -> JourneyService:
        """The real service, wired to these ports (a fresh one per pass: nothing carries over)."""
        return JourneyService(
            enrollments=self.enrollments,
            catalog=self.catalog,
            timers=self.timers,
            send_queue=self.send_queue,
            profiles=self.profiles,
            steps=self.steps,
            recent_events=self.recent_events,
            outcomes=self.outcomes,
        )
