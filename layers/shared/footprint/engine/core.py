"""The journey interpreter: one input (an event or a wake-up) in, one decision out.

Pure: the journey, the stored enrollment, the profile view and ``now`` come in; the new
enrollment and the effects to perform go out. Nothing is read from the environment or a clock,
so the same code runs in Lambda, in the local stack and in ``simulate``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from footprint.engine.effects import (
    CancelWakeUp,
    Decision,
    Effect,
    RecordOutcomeEvent,
    ScheduleWakeUp,
    SendMessage,
    UpdateProfile,
)
from footprint.engine.ids import enrollment_id, idempotency_key, split_point, step_key, wake_up_id
from footprint.engine.inputs import EventInput, ProfileView, WakeUp, as_utc
from footprint.engine.matching import (
    branch_condition_holds,
    correlated,
    matches_audience,
    matches_event,
    matches_properties,
)
from footprint.engine.occurrences import occurrence_of, slot
from footprint.engine.state import (
    SEEN_INPUT_IDS,
    SEND_HISTORY,
    Enrollment,
    EnrollmentStatus,
    PendingWakeUp,
    SendRecord,
    TriggerSnapshot,
)
from footprint.engine.steps import RecordStep, StepOutcome
from footprint.engine.timing import in_quiet_hours, next_local_time, quiet_hours_end, visitor_zone
from footprint.models.journey import (
    ConditionNode,
    ExitNode,
    Journey,
    ReEnterEveryTime,
    ReEnterOnce,
    ReEnterOncePer,
    SendNode,
    SplitBranch,
    SplitNode,
    TriggerNode,
    Unless,
    UpdateNode,
    WaitForNode,
    WaitNode,
)
from footprint.models.messages import OUTCOME_EVENTS, MessageChannel
from footprint.models.timing import format_duration


class JourneyMismatchError(ValueError):
    """The caller passed a journey (or profile) that is not the one the enrollment belongs to."""


def evaluate(
    journey: Journey,
    enrollment: Enrollment | None,
    input: EventInput | WakeUp,
    profile: ProfileView,
    now: datetime,
    *,
    recent: Sequence[EventInput] = (),
) -> Decision:
    """Move one visitor through one journey by one input.

    ``recent``: events of this visitor processed before, named by the trigger's ``unless`` (the
    service keeps them for ``unless_since``); only an entry reads them.

    ``enrollment`` is the stored enrollment of (profile, journey), finished or not, or None. While
    it is open (pending or active) ``journey`` must be the version it is pinned to; otherwise pass
    the journey's current version (a new entry pins it).

    - An input whose id the enrollment has already seen changes nothing.
    - A wake-up whose token is not the enrollment's pending token is stale and changes nothing.
      That is why leaving a wait early (a wait_for satisfied, an exit) need not cancel the timer:
      CancelWakeUp is only a courtesy.
    - An event first goes to the open enrollment (goal, exit criteria, the awaited event); only a
      visitor without an open enrollment can enter, and only as the re-entry policy allows.
    - Instant nodes (condition, split, send, update) run in the same step until the visitor
      reaches a wait, a wait_for, a held send or an exit.
    """
    now = as_utc(now)
    if enrollment is not None:
        _check_pins(journey, enrollment, profile)
        if input.id in enrollment.seen_input_ids:
            return Decision(enrollment=enrollment, note="duplicate_input")
    if isinstance(input, WakeUp):
        return _on_wake_up(journey, enrollment, input, profile, now)
    if enrollment is not None and enrollment.is_open:
        return _on_event(journey, enrollment, input, profile, now)
    return _try_entry(journey, enrollment, input, profile, now, recent=recent)


def unless_since(journey: Journey, event: EventInput) -> datetime | None:
    """Where the trigger's ``unless`` window starts for ``event``, if ``event`` would trigger the
    journey and it has one: the service passes the ``unless`` events it kept from then on."""
    trigger = journey.trigger
    if trigger.unless is None or event.name != trigger.event or not matches_properties(trigger.where, event.properties):
        return None
    return event.timestamp - trigger.unless.look_back(event.properties)


def in_unless_window(unless: Unless, event: EventInput, trigger: TriggerSnapshot) -> bool:
    """``event`` is the ``unless`` event of this trigger, stamped inside its window (decided by the
    events' timestamps: from the look-back's start to the end of the forward wait)."""
    start = trigger.timestamp - unless.look_back(trigger.properties)
    end = trigger.timestamp + (unless.within or timedelta(0))
    return matches_event(unless, event, trigger) and start <= event.timestamp <= end


def relevant_events(journey: Journey) -> frozenset[str]:
    """Every event name this journey reacts to; any other event leaves its enrollments unchanged,
    so a service need not load them."""
    names = {journey.trigger.event}
    if journey.trigger.unless:
        names.add(journey.trigger.unless.event)
    names.update(node.event for node in journey.nodes.values() if isinstance(node, WaitForNode))
    names.update(match.event for match in journey.exit_when)
    if journey.goal:
        names.update(match.event for match in journey.goal.events)
    return frozenset(names)


def assign_branch(split: SplitNode, point: float) -> SplitBranch | None:
    """The branch at ``point`` (in [0, 1)) of the weights laid end to end; None is the holdout."""
    total = sum(branch.weight for branch in split.branches) + (split.holdout.weight if split.holdout else 0)
    position = point * total
    for branch in split.branches:
        if position < branch.weight:
            return branch
        position -= branch.weight
    return None if split.holdout else split.branches[-1]  # float rounding at the very end


def _check_pins(journey: Journey, enrollment: Enrollment, profile: ProfileView) -> None:
    if enrollment.journey_id != journey.id:
        raise JourneyMismatchError(f"enrollment {enrollment.id} belongs to journey {enrollment.journey_id!r}")
    if enrollment.profile_id != profile.id:
        raise JourneyMismatchError(f"enrollment {enrollment.id} belongs to profile {enrollment.profile_id!r}")
    if enrollment.is_open and enrollment.journey_version != journey.version:
        raise JourneyMismatchError(
            f"enrollment {enrollment.id} is pinned to version {enrollment.journey_version} of "
            f"{journey.id!r}; pass that version, not {journey.version}"
        )


# ---------------------------------------------------------------------------------------------
# Entry
# ---------------------------------------------------------------------------------------------


def _try_entry(
    journey: Journey,
    previous: Enrollment | None,
    event: EventInput,
    profile: ProfileView,
    now: datetime,
    *,
    recent: Sequence[EventInput],
) -> Decision:
    trigger_id, trigger = journey.trigger_id, journey.trigger
    if journey.status != "active":
        return Decision(enrollment=previous, note="journey_not_active")
    if not (
        event.name == trigger.event
        and matches_properties(trigger.where, event.properties)
        and matches_audience(trigger.audience, profile)
    ):
        return Decision(enrollment=previous, note="not_triggered")
    if journey.sources and profile.source_id not in journey.sources:
        return Decision(enrollment=previous, note="source_not_included")
    if previous is not None and not _may_re_enter(journey, previous, now):
        return Decision(enrollment=previous, note="re_entry_not_allowed")

    entry_seq = previous.entry_seq + 1 if previous else 1
    occurrence = occurrence_of(journey, event)
    fresh = Enrollment(
        # An occurrence is part of the id: two orders are two runs, each with its own messages.
        id=enrollment_id(profile.id, slot(journey.id, occurrence), entry_seq),
        occurrence=occurrence,
        profile_id=profile.id,
        journey_id=journey.id,
        journey_version=journey.version,
        entry_seq=entry_seq,
        status="pending",
        current_node=trigger_id,
        node_entered_at=now,
        trigger=TriggerSnapshot(
            event_id=event.id, name=event.name, properties=dict(event.properties), timestamp=event.timestamp
        ),
        node_visits={trigger_id: 1},
        # What outlives one run: re-entry bookkeeping, the send history for the cap, dedupe.
        entries=previous.entries if previous else 0,
        last_entry_at=previous.last_entry_at if previous else None,
        sends=list(previous.sends) if previous else [],
        seen_input_ids=list(previous.seen_input_ids) if previous else [],
        merged_enrollment_ids=list(previous.merged_enrollment_ids) if previous else [],
        revision=previous.revision if previous else 0,
    )
    run = _Run(journey, fresh, profile, now)
    unless = trigger.unless
    if unless is None:
        run.confirm_entry()
        return run.decision(event.id)
    start = event.timestamp - unless.look_back(event.properties)
    # Looking back: a Y in the window, or after it and already known, keeps the visitor out.
    done = next(
        (
            earlier
            for earlier in recent
            if earlier.id != event.id and matches_event(unless, earlier, fresh.trigger) and earlier.timestamp >= start
        ),
        None,
    )
    if done is not None:
        run.finish("cancelled", trigger_id, "not_entered", detail=_unless_detail(unless, done, fresh.trigger))
    elif unless.within is not None:
        # Waiting forward ("did X and not Y within T"): wait out T; Y (or an exit, or the goal) cancels it.
        run.record(trigger_id, "pending", detail=f"unless {unless.event} within {format_duration(unless.within)}")
        run.schedule(trigger_id, event.timestamp + unless.within)
    else:
        run.confirm_entry()  # nothing to wait for: the first step goes out at once
    return run.decision(event.id)


def _may_re_enter(journey: Journey, previous: Enrollment, now: datetime) -> bool:
    if previous.is_open:
        return False
    if previous.entries == 0:  # only cancelled pending entries so far
        return True
    match journey.re_entry:
        case ReEnterOnce():
            return False
        case ReEnterOncePer(period=period):
            return previous.last_entry_at is None or now - previous.last_entry_at >= period
        case ReEnterEveryTime(cooldown=cooldown):
            return cooldown is None or previous.finished_at is None or now - previous.finished_at >= cooldown
    return False


# ---------------------------------------------------------------------------------------------
# Events and wake-ups for an enrollment
# ---------------------------------------------------------------------------------------------


def _on_event(
    journey: Journey, enrollment: Enrollment, event: EventInput, profile: ProfileView, now: datetime
) -> Decision:
    run = _Run(journey, enrollment.model_copy(deep=True), profile, now)
    handled = run.event_while_pending(event) if enrollment.status == "pending" else run.event_while_active(event)
    if not handled:
        return Decision(enrollment=enrollment, note="no_effect")
    return run.decision(event.id)


def _on_wake_up(
    journey: Journey, enrollment: Enrollment | None, wake_up: WakeUp, profile: ProfileView, now: datetime
) -> Decision:
    pending = enrollment.pending_wake_up if enrollment else None
    if (
        enrollment is None
        or pending is None
        or not enrollment.is_open
        or wake_up.enrollment_id != enrollment.id
        or wake_up.token != pending.token
    ):
        return Decision(enrollment=enrollment, note="stale_wake_up")
    if now < pending.due_at:
        # Delivered early (a chained SQS delay, a clock ahead): ask again for the same time.
        again = enrollment.pending_wake_up_input()
        assert again is not None
        return Decision(enrollment=enrollment, effects=[ScheduleWakeUp(wake_up=again)], note="early_wake_up")

    run = _Run(journey, enrollment.model_copy(deep=True), profile, now)
    run.drop_pending(cancel=False)
    node_id = pending.node_id
    match journey.nodes[node_id]:
        case TriggerNode():
            run.confirm_entry()
        case WaitNode() as wait:
            run.arrive(wait.next)
        case WaitForNode() as wait_for:
            run.record(node_id, "timed_out")
            run.arrive(wait_for.timed_out)
        case SendNode() as send:  # held for quiet hours
            following = run.send(node_id, send)
            if following is not None:
                run.arrive(following)
        case SplitNode():  # a holdout's goal window has ended
            run.finish("completed", node_id, "completed", detail="holdout")
        case other:
            raise AssertionError(f"node {node_id!r} ({other.type}) never schedules a wake-up")
    return run.decision(wake_up.id)


# ---------------------------------------------------------------------------------------------
# One step of one enrollment
# ---------------------------------------------------------------------------------------------


class _Run:
    """One step in progress: a private copy of the enrollment, changed in place, and its effects."""

    def __init__(self, journey: Journey, enrollment: Enrollment, profile: ProfileView, now: datetime) -> None:
        self.journey = journey
        self.enrollment = enrollment
        self.profile = profile
        self.now = now
        self.zone = visitor_zone(profile.timezone, journey.default_timezone)
        self.effects: list[Effect] = []

    def decision(self, input_id: str) -> Decision:
        enrollment = self.enrollment
        enrollment.seen_input_ids = [*enrollment.seen_input_ids, input_id][-SEEN_INPUT_IDS:]
        enrollment.revision += 1
        return Decision(enrollment=enrollment, effects=self.effects, changed=True)

    # -- bookkeeping ------------------------------------------------------------------------

    def record(
        self,
        node_id: str,
        outcome: StepOutcome,
        *,
        detail: str | None = None,
        send: SendMessage | None = None,
        channel: MessageChannel | None = None,
        message_key: str | None = None,
    ) -> None:
        enrollment = self.enrollment
        occurrence = enrollment.node_visits.get(node_id, 0)
        self.effects.append(
            RecordStep(
                key=step_key(enrollment.id, node_id, occurrence, outcome),
                at=self.now,
                profile_id=enrollment.profile_id,
                journey_id=enrollment.journey_id,
                journey_version=enrollment.journey_version,
                enrollment_id=enrollment.id,
                node_id=node_id,
                stage=self.journey.nodes[node_id].stage,
                outcome=outcome,
                detail=detail,
                channel=send.channel if send else channel,
                idempotency_key=send.idempotency_key if send else message_key,
            )
        )

    def schedule(self, node_id: str, due_at: datetime) -> datetime:
        """Ask for a wake-up at ``due_at`` (or now, if that has passed); returns when it is due."""
        enrollment = self.enrollment
        enrollment.wake_up_seq += 1
        token = f"t{enrollment.wake_up_seq}"
        enrollment.pending_wake_up = PendingWakeUp(
            id=wake_up_id(enrollment.id, token), token=token, node_id=node_id, due_at=max(due_at, self.now)
        )
        wake_up = enrollment.pending_wake_up_input()
        assert wake_up is not None
        self.effects.append(ScheduleWakeUp(wake_up=wake_up))
        return wake_up.due_at

    def drop_pending(self, *, cancel: bool) -> None:
        pending = self.enrollment.pending_wake_up
        if pending is None:
            return
        if cancel:
            self.effects.append(CancelWakeUp(wake_up_id=pending.id, due_at=pending.due_at))
        self.enrollment.pending_wake_up = None

    def finish(self, status: EnrollmentStatus, node_id: str, outcome: StepOutcome, *, detail: str | None) -> None:
        self.drop_pending(cancel=True)
        self.record(node_id, outcome, detail=detail)
        enrollment = self.enrollment
        enrollment.status = status
        enrollment.finished_at = self.now
        enrollment.finish_reason = detail or outcome
        enrollment.current_node = None
        enrollment.node_entered_at = None

    def confirm_entry(self) -> None:
        enrollment = self.enrollment
        enrollment.status = "active"
        enrollment.entered_at = self.now
        enrollment.entries += 1
        enrollment.last_entry_at = self.now
        self.record(self.journey.trigger_id, "entered")
        self.arrive(self.journey.trigger.next)

    # -- events -------------------------------------------------------------------------------

    def event_while_pending(self, event: EventInput) -> bool:
        trigger = self.enrollment.trigger
        unless = self.journey.trigger.unless
        if unless is None:
            return False
        cancelled_by = None
        if in_unless_window(unless, event, trigger):
            cancelled_by = _unless_detail(unless, event, trigger)
        elif event.timestamp >= trigger.timestamp and (self._goal_reached(event) or self._exit_matched(event)):
            cancelled_by = event.name
        if cancelled_by is None:
            return False
        self.finish("cancelled", self.journey.trigger_id, "not_entered", detail=cancelled_by)
        return True

    def event_while_active(self, event: EventInput) -> bool:
        enrollment = self.enrollment
        node_id = enrollment.current_node
        assert node_id is not None
        unless = self.journey.trigger.unless
        if unless is not None and in_unless_window(unless, event, enrollment.trigger):
            # The entry should not have happened, but its first messages may be out already: the run
            # stops here, and an event from before those messages is no conversion of them.
            detail = f"{_unless_detail(unless, event, enrollment.trigger)}, arrived late"
            self.finish("exited", node_id, "exited", detail=detail)
            return True
        if event.timestamp >= enrollment.trigger.timestamp:
            if self._goal_reached(event):
                self.finish("converted", node_id, "converted", detail=event.name)
                return True
            if self._exit_matched(event):
                self.finish("exited", node_id, "exited", detail=event.name)
                return True
        node = self.journey.nodes[node_id]
        if isinstance(node, WaitForNode) and self._awaited(node, event):
            self.drop_pending(cancel=True)
            self.record(node_id, "happened", detail=event.name)
            self.arrive(node.happened)
            return True
        return False

    def _goal_reached(self, event: EventInput) -> bool:
        goal = self.journey.goal
        if goal is None or not any(matches_event(match, event, self.enrollment.trigger) for match in goal.events):
            return False
        entered_at = self.enrollment.entered_at
        return goal.within is None or entered_at is None or event.timestamp <= entered_at + goal.within

    def _exit_matched(self, event: EventInput) -> bool:
        return any(matches_event(match, event, self.enrollment.trigger) for match in self.journey.exit_when)

    def _awaited(self, node: WaitForNode, event: EventInput) -> bool:
        enrollment = self.enrollment
        if not (
            event.name == node.event
            and matches_properties(node.where, event.properties)
            and correlated(node.match_property, event.properties, enrollment.trigger)
        ):
            return False
        pending = enrollment.pending_wake_up
        if pending is not None and event.timestamp > pending.due_at:
            return False  # too late: the timeout wins, even if its wake-up is still on its way
        if node.match_message is not None:
            # A message event cannot predate its message, so no lower bound (client clocks drift).
            properties = event.properties
            return (
                properties.get("journey_id") == enrollment.journey_id
                and properties.get("node_id") == node.match_message
                and properties.get("enrollment_id", enrollment.id) == enrollment.id
            )
        return enrollment.node_entered_at is None or event.timestamp >= enrollment.node_entered_at

    # -- nodes --------------------------------------------------------------------------------

    def arrive(self, node_id: str) -> None:
        """Enter ``node_id`` and keep going through instant nodes until the visitor has to wait."""
        following: str | None = node_id
        hops = 0
        while following is not None:
            hops += 1
            if hops > len(self.journey.nodes):  # validation forbids loops that never wait
                raise AssertionError(f"journey {self.journey.id!r} loops without waiting at {following!r}")
            following = self._enter(following)

    def _enter(self, node_id: str) -> str | None:
        """Run one node; return the node to go on to, or None if the step ends here."""
        enrollment = self.enrollment
        enrollment.node_visits[node_id] = enrollment.node_visits.get(node_id, 0) + 1
        enrollment.current_node = node_id
        enrollment.node_entered_at = self.now
        match self.journey.nodes[node_id]:
            case WaitNode() as wait:
                start = enrollment.entered_at if wait.relative_to == "entry" and enrollment.entered_at else self.now
                due = start + (wait.duration or timedelta(0))
                if wait.until_local_time is not None:
                    due = next_local_time(max(due, self.now), wait.until_local_time, self.zone)
                due = self.schedule(node_id, due)
                self.record(node_id, "waiting", detail=f"until {_stamp(due)}")
                return None
            case WaitForNode() as wait_for:
                due = self.schedule(node_id, self.now + wait_for.timeout)
                self.record(node_id, "waiting", detail=f"{wait_for.event} until {_stamp(due)}")
                return None
            case ConditionNode() as condition:
                results = (
                    branch_condition_holds(check, self.profile, enrollment.trigger, self.now)
                    for check in condition.conditions
                )
                answer = all(results) if condition.match == "all" else any(results)
                self.record(node_id, "branched", detail="yes" if answer else "no")
                return condition.yes if answer else condition.no
            case SplitNode() as split:
                return self._split(node_id, split)
            case SendNode() as send:
                return self.send(node_id, send)
            case UpdateNode() as update:
                self._update(node_id, update)
                return update.next
            case ExitNode():
                self.finish("completed", node_id, "completed", detail=None)
                return None
            case TriggerNode():
                raise AssertionError("validation keeps every edge away from the trigger")
        raise AssertionError(f"unknown node {node_id!r}")

    def _split(self, node_id: str, split: SplitNode) -> str | None:
        branch = assign_branch(split, split_point(self.profile.id, self.journey.id, node_id))
        if branch is not None:
            self.record(node_id, "branched", detail=branch.name)
            return branch.next
        self.enrollment.holdout = True
        self.record(node_id, "holdout")
        goal = self.journey.goal
        entered_at = self.enrollment.entered_at or self.now
        if goal is not None and goal.within is not None:
            # Stay (without messages) until the goal window closes, so conversions still count.
            self.schedule(node_id, entered_at + goal.within)
        else:
            self.finish("completed", node_id, "completed", detail="holdout")
        return None

    def send(self, node_id: str, node: SendNode) -> str | None:
        """Send, hold (quiet hours) or skip; returns the next node, or None when held."""
        enrollment = self.enrollment
        journey = self.journey
        occurrence = enrollment.node_visits.get(node_id, 1)
        key = idempotency_key(journey.id, journey.version, enrollment.id, node_id, occurrence)
        # A transactional message needs a deliverable address, not the visitor's marketing consent.
        reachable = self.profile.can_reach if node.category == "marketing" else self.profile.can_deliver
        if not reachable(node.channel):
            return self._suppress(node_id, node, key, "unreachable")
        quiet = journey.quiet_hours
        if quiet is not None and node.channel in quiet.channels and in_quiet_hours(self.now, quiet, self.zone):
            if quiet.behaviour == "skip":
                return self._suppress(node_id, node, key, "quiet_hours")
            until = self.schedule(node_id, quiet_hours_end(self.now, quiet, self.zone))
            self.record(node_id, "held", detail=f"quiet hours until {_stamp(until)}")
            return None
        cap = journey.frequency_cap
        if cap is not None:
            enrollment.sends = [record for record in enrollment.sends if record.at > self.now - cap.period]
            if node.channel in cap.channels:
                recent = [record for record in enrollment.sends if record.channel in cap.channels]
                if len(recent) >= cap.max_sends:
                    return self._suppress(node_id, node, key, "frequency_cap")
        message = SendMessage(
            idempotency_key=key,
            profile_id=enrollment.profile_id,
            journey_id=journey.id,
            journey_version=journey.version,
            enrollment_id=enrollment.id,
            node_id=node_id,
            occurrence=occurrence,
            channel=node.channel,
            category=node.category,
            content=node.content,
            template=node.template,
            trigger_properties=dict(enrollment.trigger.properties),
            quiet_hours=journey.quiet_hours,
            default_timezone=journey.default_timezone,
        )
        self.effects.append(message)
        enrollment.sends = [*enrollment.sends, SendRecord(at=self.now, channel=node.channel, node_id=node_id)][
            -SEND_HISTORY:
        ]
        self.record(node_id, "sent", send=message)
        return node.next

    def _suppress(self, node_id: str, node: SendNode, key: str, reason: str) -> str | None:
        """A send not made: a ``skipped`` step, and ``message_suppressed`` on the visitor's timeline in
        the shape send gives its own outcome events, so a ``wait_for`` with ``match_message`` sees it."""
        enrollment = self.enrollment
        self.record(node_id, "skipped", detail=reason, channel=node.channel, message_key=key)
        event = OUTCOME_EVENTS["skipped"]
        self.effects.append(
            RecordOutcomeEvent(
                profile_id=enrollment.profile_id,
                event=event,
                event_id=f"{key}:{event}",
                at=self.now,
                properties={
                    "message_id": key,
                    "journey_id": enrollment.journey_id,
                    "journey_version": enrollment.journey_version,
                    "node_id": node_id,
                    "enrollment_id": enrollment.id,
                    "channel": node.channel,
                    "category": node.category,
                    "reason": reason,
                },
            )
        )
        return node.next

    def _update(self, node_id: str, update: UpdateNode) -> None:
        change = UpdateProfile(
            profile_id=self.profile.id,
            journey_id=self.journey.id,
            node_id=node_id,
            set_attributes=dict(update.set_attributes),
            add_tags=list(update.add_tags),
            remove_tags=list(update.remove_tags),
            lifecycle_stage=update.lifecycle_stage,
        )
        self.effects.append(change)
        # Later nodes of this step see the change, as they will once the service has applied it.
        self.profile = change.apply_to(self.profile)
        self.record(node_id, "updated")


def _unless_detail(unless: Unless, event: EventInput, trigger: TriggerSnapshot) -> str:
    """ "add_to_cart 8s before" (looking back) or "add_to_cart within PT10S" (waiting forward)."""
    if event.timestamp > trigger.timestamp:
        return f"{event.name} within {format_duration(unless.within)}" if unless.within else f"{event.name} after"
    return f"{event.name} {format_duration(trigger.timestamp - event.timestamp)} before"


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
