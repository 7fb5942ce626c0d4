"""An enrollment: one visitor's place in one journey, the only state the engine keeps.

The service stores it as one item per (profile, journey) and writes it back with a conditional
write on ``revision``; everything the engine needs to decide the next step is in here.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from footprint.engine.inputs import UtcDatetime, WakeUp
from footprint.models.journey import Channel

EnrollmentStatus = Literal["pending", "active", "completed", "exited", "converted", "cancelled"]
OPEN_STATUSES: frozenset[str] = frozenset({"pending", "active"})
# How many recent input ids an enrollment remembers for dedupe.
SEEN_INPUT_IDS = 64
# How many sends it remembers for the frequency cap (older ones are also dropped by age).
SEND_HISTORY = 64
# How many ids of other profiles' enrollments it remembers having taken the history of (merges are rare).
MERGED_ENROLLMENTS = 16


class TriggerSnapshot(BaseModel):
    """The event that started the journey: its properties personalise messages and correlate later
    events (``match_property``)."""

    event_id: str
    name: str
    properties: dict[str, Any] = Field(default_factory=dict)
    timestamp: UtcDatetime


class PendingWakeUp(BaseModel):
    """The one timer the enrollment is waiting for. A wake-up with any other token is stale."""

    id: str
    token: str
    node_id: str
    due_at: UtcDatetime


class SendRecord(BaseModel):
    at: UtcDatetime
    channel: Channel
    node_id: str


class Enrollment(BaseModel):
    """Where one visitor is in one journey.

    ``status``: ``pending`` (a trigger with ``unless`` is waiting out its window), ``active``,
    then one of ``completed`` (an exit node), ``exited`` (exit criteria), ``converted`` (the goal),
    ``cancelled`` (a pending entry whose ``unless`` event happened). Only pending and active
    enrollments have a ``current_node``; at most one ``pending_wake_up`` exists and it always
    belongs to ``current_node``.

    A finished enrollment is kept: the next entry replaces it and carries over the re-entry
    bookkeeping (``entries``, ``last_entry_at``), the send history and the seen input ids.

    When the visitor turns out to be a known contact, their enrollments move to the contact's
    profile (``carry_history``): ``merged_into`` marks the copy left behind, and
    ``merged_enrollment_ids`` lists the copies whose history this one already took.
    """

    id: str
    profile_id: str
    journey_id: str
    journey_version: int  # pinned at entry: an in-flight visitor finishes on this version
    entry_seq: int = Field(ge=1)  # counts entry attempts, pending ones included
    status: EnrollmentStatus
    current_node: str | None
    node_entered_at: UtcDatetime | None = None
    entered_at: UtcDatetime | None = None  # None while pending
    finished_at: UtcDatetime | None = None
    finish_reason: str | None = None
    trigger: TriggerSnapshot
    holdout: bool = False
    node_visits: dict[str, int] = Field(default_factory=dict)
    pending_wake_up: PendingWakeUp | None = None
    wake_up_seq: int = 0
    seen_input_ids: list[str] = Field(default_factory=list)
    sends: list[SendRecord] = Field(default_factory=list)
    entries: int = 0  # confirmed entries of this visitor into this journey, all versions
    last_entry_at: UtcDatetime | None = None
    merged_into: str | None = None  # the profile this copy moved to (it only redirects now)
    merged_enrollment_ids: list[str] = Field(default_factory=list)
    # For a journey that runs per occurrence: the trigger's value of its property (an order id).
    occurrence: str | None = None
    # Incremented on every change: the service writes with `revision = <the one it read>`.
    revision: int = 0

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def pending_wake_up_input(self) -> WakeUp | None:
        """The WakeUp message for the pending timer (what a ScheduleWakeUp carried)."""
        if self.pending_wake_up is None:
            return None
        pending = self.pending_wake_up
        return WakeUp(
            id=pending.id,
            enrollment_id=self.id,
            profile_id=self.profile_id,
            journey_id=self.journey_id,
            journey_version=self.journey_version,
            node_id=pending.node_id,
            token=pending.token,
            due_at=pending.due_at,
        )


def carry_history(into: Enrollment, other: Enrollment) -> Enrollment:
    """``into`` (the contact's copy of a journey) with the history of ``other`` (the same journey on a
    profile just merged into the contact) folded in: what outlives one run, so the frequency cap,
    the re-entry rules and duplicate detection see one person.

    ``entry_seq`` stays ahead of both, so the contact's next entry gets an id neither copy has used
    (ids key sends and steps). Call it once per ``other`` (``merged_enrollment_ids`` says whether
    it was); the caller sets ``revision``."""
    # Two copies never share a send (each is folded in once), so the histories simply add up.
    sends = sorted([*other.sends, *into.sends], key=lambda record: record.at)
    seen = list(dict.fromkeys([*other.seen_input_ids, *into.seen_input_ids]))
    last_entries = [moment for moment in (into.last_entry_at, other.last_entry_at) if moment is not None]
    return into.model_copy(
        update={
            "entry_seq": max(into.entry_seq, other.entry_seq),
            "entries": into.entries + other.entries,
            "last_entry_at": max(last_entries, default=None),
            "sends": sends[-SEND_HISTORY:],
            "seen_input_ids": seen[-SEEN_INPUT_IDS:],
            "merged_enrollment_ids": [*into.merged_enrollment_ids, other.id][-MERGED_ENROLLMENTS:],
        },
        deep=True,
    )
