"""The journey engine: pure (stdlib + pydantic), no I/O, no environment, no clock of its own.

Public API
----------
``evaluate(journey, enrollment, input, profile, now, *, recent=()) -> Decision``
    The one entry point. ``input`` is an ``EventInput`` (something the visitor did) or a
    ``WakeUp`` (a timer the engine asked for). ``enrollment`` is the stored state of this visitor
    in this journey (or None). While it is open, ``journey`` must be the version it is pinned to
    (``enrollment.journey_version``), else the journey's active version. Raises
    ``JourneyMismatchError`` when the caller mixes them up.

``Decision(enrollment, effects, changed, note)``
    ``changed``: write ``enrollment`` (``revision`` = stored revision + 1, conditional on the
    stored one; ``attribute_not_exists`` for a first entry), then perform ``effects`` in order:
    ``ScheduleWakeUp(wake_up)``, ``CancelWakeUp(wake_up_id, due_at)`` (optional: stale wake-ups are
    ignored), ``SendMessage(idempotency_key, channel, content | template, ...)``,
    ``UpdateProfile(set_attributes, add_tags, remove_tags, lifecycle_stage)``,
    ``RecordOutcomeEvent(profile_id, event, event_id, properties)`` (a send the engine skipped:
    ``message_suppressed`` on the visitor's timeline), ``RecordStep(key, node_id, outcome, detail, ...)``.
    Not ``changed``: write nothing (``note``:
    duplicate_input, stale_wake_up, not_triggered, re_entry_not_allowed, no_effect,
    journey_not_active, source_not_included, early_wake_up — the last one re-schedules the same wake-up).

``relevant_events(journey) -> frozenset[str]``
    Event names the journey reacts to; other events need not load its enrollments.

``simulate(journey, events, *, profiles=None, until=None) -> list[TimelineEntry]`` and
``Simulator`` (``add_event``, ``add_input``, ``run(until=...)``, ``enrollments``, ``steps``)
    The same engine on a virtual clock, for ``footprint simulate`` and tests.

``Enrollment``
    The only state: one per (profile, journey), kept after it finishes (the next entry replaces
    it and carries the re-entry bookkeeping, the send history and the seen input ids). Store it
    whole (``model_dump_json``); ``revision`` is for the conditional write, ``status`` /
    ``journey_version`` / ``pending_wake_up`` are worth projecting for queries and repair (an
    open enrollment whose ``pending_wake_up.due_at`` is long past lost its timer:
    ``enrollment.pending_wake_up_input()`` rebuilds the WakeUp to schedule again).

``carry_history(into, other) -> Enrollment``
    On a merge of profiles: the contact's copy of a journey with the other copy's re-entry
    bookkeeping, send history and seen input ids folded in, and an entry sequence ahead of both (so
    the next entry's id is new). ``merged_enrollment_ids`` makes it once per copy.

Journey definitions, their YAML loader (``load_journey_yaml``) and JSON Schema
(``journey_json_schema``) live in ``footprint.models.journey``.

How the rules work
------------------
- Negative trigger ("product_viewed with dwell >= 15 s, and no add_to_cart of the same product
  meanwhile"), decided by the events' timestamps: ``unless.before`` (and ``before_property``, e.g.
  the dwell) looks back, using ``recent`` (the visitor's kept ``unless`` events: the service
  recalls those since ``unless_since``): a match keeps the visitor out (``cancelled``, outcome
  ``not_entered``), otherwise the journey starts at once. ``unless.within`` waits forward: a
  *pending* enrollment and a wake-up at trigger time + ``within``; a matching event stamped inside
  the window, an exit criterion or the goal cancels it, the wake-up confirms the entry. A matching
  event stamped inside the window that arrives once the journey runs ends it (``exited``, never a
  conversion).
- Stale wake-ups: an enrollment has at most one pending wake-up, identified by a token. A wake-up
  with another token (the wait was left early, the enrollment finished, a duplicate delivery) is
  ignored, so timers never need cancelling to be correct.
- Dedupe: the ids of the last 64 inputs that changed an enrollment are kept in it; a duplicate
  changes nothing. Sends carry ``idempotency_key`` = (journey, version, enrollment, node,
  occurrence), so a retried step sends once.
- Quiet hours (visitor's time zone, journey default otherwise): a send on a quiet channel inside
  them is held (a wake-up at their end; the same idempotency key is used then) or skipped.
- Frequency cap: sends over ``max_sends`` per ``period`` (this journey, this visitor, across
  re-entries) are skipped. A visitor without consent/address for a channel is skipped too.
- Re-entry: one open enrollment per (visitor, journey); after it finishes, ``once`` never again,
  ``once_per`` after ``period`` since the last entry, ``every_time`` after ``cooldown`` since the
  last finish. A cancelled pending entry does not count as an entry.
- Versions: an enrollment is pinned to the version it entered on and finishes on it.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from footprint.engine.core import JourneyMismatchError, evaluate, relevant_events, unless_since
    from footprint.engine.effects import (
        CancelWakeUp,
        Decision,
        Effect,
        RecordOutcomeEvent,
        ScheduleWakeUp,
        SendMessage,
        UpdateProfile,
    )
    from footprint.engine.inputs import EngineInput, EventInput, ProfileView, WakeUp
    from footprint.engine.simulator import SimulatedEvent, SimulationLimitError, Simulator, TimelineEntry, simulate
    from footprint.engine.state import (
        Enrollment,
        EnrollmentStatus,
        PendingWakeUp,
        SendRecord,
        TriggerSnapshot,
        carry_history,
    )
    from footprint.engine.steps import RecordStep, StepOutcome

# Each name is imported from its module on first use (PEP 562), so a function that needs one part (send
# records a step, evaluate's service computes quiet hours) does not load the rest: the simulator, the
# journey models behind the engine's core.
_MODULES = {
    "CancelWakeUp": "footprint.engine.effects",
    "Decision": "footprint.engine.effects",
    "Effect": "footprint.engine.effects",
    "EngineInput": "footprint.engine.inputs",
    "Enrollment": "footprint.engine.state",
    "EnrollmentStatus": "footprint.engine.state",
    "EventInput": "footprint.engine.inputs",
    "JourneyMismatchError": "footprint.engine.core",
    "PendingWakeUp": "footprint.engine.state",
    "ProfileView": "footprint.engine.inputs",
    "RecordOutcomeEvent": "footprint.engine.effects",
    "RecordStep": "footprint.engine.steps",
    "ScheduleWakeUp": "footprint.engine.effects",
    "SendMessage": "footprint.engine.effects",
    "SendRecord": "footprint.engine.state",
    "SimulatedEvent": "footprint.engine.simulator",
    "SimulationLimitError": "footprint.engine.simulator",
    "Simulator": "footprint.engine.simulator",
    "StepOutcome": "footprint.engine.steps",
    "TimelineEntry": "footprint.engine.simulator",
    "TriggerSnapshot": "footprint.engine.state",
    "UpdateProfile": "footprint.engine.effects",
    "WakeUp": "footprint.engine.inputs",
    "carry_history": "footprint.engine.state",
    "evaluate": "footprint.engine.core",
    "relevant_events": "footprint.engine.core",
    "simulate": "footprint.engine.simulator",
    "unless_since": "footprint.engine.core",
}


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(_MODULES[name])
    # Bind every name of that module at once: later lookups are plain attribute reads.
    globals().update({other: getattr(module, other) for other, source in _MODULES.items() if source == module.__name__})
    return globals()[name]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "CancelWakeUp",
    "Decision",
    "Effect",
    "EngineInput",
    "Enrollment",
    "EnrollmentStatus",
    "EventInput",
    "JourneyMismatchError",
    "PendingWakeUp",
    "ProfileView",
    "RecordOutcomeEvent",
    "RecordStep",
    "ScheduleWakeUp",
    "SendMessage",
    "SendRecord",
    "SimulatedEvent",
    "SimulationLimitError",
    "Simulator",
    "StepOutcome",
    "TimelineEntry",
    "TriggerSnapshot",
    "UpdateProfile",
    "WakeUp",
    "carry_history",
    "evaluate",
    "relevant_events",
    "simulate",
    "unless_since",
]
