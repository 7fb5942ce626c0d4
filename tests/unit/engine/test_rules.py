"""Journey-level rules and the engine's guarantees: goal, exit criteria, quiet hours, frequency cap,
duplicate inputs, stale and early wake-ups, revisions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from footprint.engine import CancelWakeUp, ScheduleWakeUp, evaluate
from footprint.engine.state import SEEN_INPUT_IDS
from tests.unit.engine.builders import (
    EXIT,
    T0,
    Visitor,
    at,
    event,
    flow,
    journey,
    onsite_push,
    profile,
    schedules,
    sends,
    steps,
    web_push,
)

HCM = "Asia/Ho_Chi_Minh"


def reminder_flow(**fields: Any) -> Visitor:
    """start -> wait 1 day -> web push -> done, for a visitor with web push in Ho Chi Minh City."""
    journey = flow(("tomorrow", {"type": "wait", "duration": "P1D"}), ("push", web_push()), **fields)
    return Visitor(journey, profile(reachable=("web_push",), timezone=HCM))


class TestGoal:
    goal = {
        "events": [{"event": "purchase", "where": [{"property": "total", "op": "gt", "value": 0}]}],
        "within": "P3D",
    }

    def test_reaching_the_goal_converts(self) -> None:
        visitor = reminder_flow(goal=self.goal)
        visitor.does("product_viewed")
        pending = visitor.pending()
        decision = visitor.does("purchase", at(hours=5), total=350_000)
        assert steps(decision) == [("tomorrow", "converted")]
        assert CancelWakeUp(wake_up_id=pending.id, due_at=pending.due_at) in decision.effects
        assert visitor.enrollment is not None
        assert visitor.enrollment.status == "converted"
        assert visitor.enrollment.finish_reason == "purchase"
        assert visitor.feed(pending).note == "stale_wake_up"

    def test_the_goal_conditions_apply(self) -> None:
        visitor = reminder_flow(goal=self.goal)
        visitor.does("product_viewed")
        assert visitor.does("purchase", at(hours=5), total=0).note == "no_effect"

    def test_after_the_window_the_goal_no_longer_counts(self) -> None:
        visitor = reminder_flow(goal={**self.goal, "within": "PT12H"})
        visitor.does("product_viewed")
        assert visitor.does("purchase", at(hours=13), total=1).note == "no_effect"
        assert visitor.status == "active"

    def test_the_goal_can_be_correlated_with_the_trigger(self) -> None:
        goal = {"events": [{"event": "add_to_cart", "match_property": "product_id"}]}
        visitor = reminder_flow(goal=goal)
        visitor.does("product_viewed", T0, product_id="A")
        assert visitor.does("add_to_cart", at(60), product_id="B").note == "no_effect"
        assert steps(visitor.does("add_to_cart", at(61), product_id="A")) == [("tomorrow", "converted")]


class TestExitCriteria:
    def test_an_exit_event_removes_the_visitor_at_once(self) -> None:
        visitor = reminder_flow(exit_when=[{"event": "session_started"}, {"event": "unsubscribed"}])
        visitor.does("product_viewed")
        timer = visitor.pending()
        decision = visitor.does("unsubscribed", at(hours=2))
        assert steps(decision) == [("tomorrow", "exited")]
        assert visitor.status == "exited"
        assert visitor.feed(timer).note == "stale_wake_up"  # no push tomorrow

    def test_goal_wins_over_exit(self) -> None:
        visitor = reminder_flow(goal={"events": [{"event": "purchase"}]}, exit_when=[{"event": "purchase"}])
        visitor.does("product_viewed")
        assert steps(visitor.does("purchase", at(60))) == [("tomorrow", "converted")]

    def test_events_from_before_the_trigger_do_not_exit(self) -> None:
        visitor = reminder_flow(exit_when=[{"event": "session_started"}])
        visitor.does("product_viewed", at(100))
        assert visitor.does("session_started", at(50)).note == "no_effect"


class TestQuietHours:
    quiet = {"start": "21:00", "end": "08:00"}

    def night_visitor(self, **quiet: Any) -> Visitor:
        visitor = reminder_flow(quiet_hours={**self.quiet, **quiet})
        night = datetime(2025, 6, 1, 16, 0, tzinfo=UTC)  # 23:00 in HCM; the push falls due at 23:00 next day
        visitor.does("product_viewed", night)
        return visitor

    def test_hold_until_the_end_of_quiet_hours(self) -> None:
        visitor = self.night_visitor()
        decision = visitor.wake()
        assert steps(decision) == [("push", "held")]
        assert sends(decision) == []
        [wake_up] = schedules(decision)
        morning = datetime(2025, 6, 3, 1, 0, tzinfo=UTC)  # 08:00 in HCM
        assert wake_up.due_at == morning
        assert visitor.node == "push"
        resumed = visitor.wake()
        assert steps(resumed) == [("push", "sent"), ("done", "completed")]
        [message] = sends(resumed)
        assert message.occurrence == 1  # the held message, not a new one

    def test_skip(self) -> None:
        visitor = self.night_visitor(behaviour="skip")
        decision = visitor.wake()
        assert steps(decision) == [("push", "skipped"), ("done", "completed")]
        assert [r.detail for r in decision.effects if getattr(r, "outcome", None) == "skipped"] == ["quiet_hours"]

    def test_uses_the_visitors_time_zone(self) -> None:
        visitor = reminder_flow(quiet_hours=self.quiet)
        visitor.profile = profile(reachable=("web_push",), timezone="Europe/Paris")
        visitor.does("product_viewed", datetime(2025, 6, 1, 16, 0, tzinfo=UTC))  # 18:00 in Paris
        assert steps(visitor.wake())[0] == ("push", "sent")

    def test_only_listed_channels_are_quiet(self) -> None:
        journey = flow(
            ("tomorrow", {"type": "wait", "duration": "P1D"}), ("offer", onsite_push()), quiet_hours=self.quiet
        )
        visitor = Visitor(journey, profile(timezone=HCM))
        visitor.does("product_viewed", datetime(2025, 6, 1, 16, 0, tzinfo=UTC))
        assert steps(visitor.wake())[0] == ("offer", "sent")  # onsite messages show while they browse


class TestFrequencyCap:
    def capped(self, **cap: Any) -> Visitor:
        journey = flow(
            ("first", onsite_push("1")),
            ("second", onsite_push("2")),
            ("pause", {"type": "wait", "duration": "PT6H"}),
            ("third", onsite_push("3")),
            ("later", {"type": "wait", "duration": "P1D"}),
            ("fourth", onsite_push("4")),
            frequency_cap={"max_sends": 2, "period": "P1D", **cap},
        )
        return Visitor(journey)

    def test_sends_over_the_cap_are_skipped(self) -> None:
        visitor = self.capped()
        assert [m.node_id for m in sends(visitor.does("product_viewed"))] == ["first", "second"]
        decision = visitor.wake()
        assert ("third", "skipped") in steps(decision)
        assert [r.detail for r in decision.effects if getattr(r, "outcome", None) == "skipped"] == ["frequency_cap"]
        # A day later the window has moved on.
        assert [m.node_id for m in sends(visitor.wake())] == ["fourth"]

    def test_only_the_listed_channels_count(self) -> None:
        visitor = self.capped(channels=["web_push"])
        visitor.does("product_viewed")
        assert [m.node_id for m in sends(visitor.wake())] == ["third"]

    def test_the_cap_spans_re_entries(self) -> None:
        journey = flow(
            ("first", onsite_push("1")),
            frequency_cap={"max_sends": 1, "period": "P1D"},
            re_entry={"policy": "every_time"},
        )
        visitor = Visitor(journey)
        assert len(sends(visitor.does("product_viewed", T0))) == 1
        assert sends(visitor.does("product_viewed", at(hours=1))) == []
        assert len(sends(visitor.does("product_viewed", at(hours=25)))) == 1


class TestDuplicatesAndStaleInputs:
    def test_a_duplicate_event_changes_nothing(self) -> None:
        visitor = reminder_flow()
        first = event("product_viewed", T0, id="m-1")
        visitor.feed(first)
        before = visitor.enrollment
        decision = visitor.feed(first, now=at(5))
        assert decision.note == "duplicate_input"
        assert not decision.changed
        assert decision.effects == []
        assert decision.enrollment == before

    def test_a_duplicate_wake_up_changes_nothing(self) -> None:
        visitor = reminder_flow()
        visitor.does("product_viewed")
        wake_up = visitor.pending()
        visitor.feed(wake_up)
        again = visitor.feed(wake_up)
        assert not again.changed
        assert again.effects == []

    def test_a_wake_up_for_another_enrollment_is_stale(self) -> None:
        visitor = reminder_flow()
        visitor.does("product_viewed")
        foreign = visitor.pending().model_copy(update={"enrollment_id": "enr_other"})
        assert visitor.feed(foreign).note == "stale_wake_up"

    def test_a_wake_up_with_an_old_token_is_stale(self) -> None:
        visitor = reminder_flow()
        visitor.does("product_viewed")
        old = visitor.pending().model_copy(update={"token": "t0", "id": "x-t0"})
        assert visitor.feed(old).note == "stale_wake_up"

    def test_a_wake_up_without_enrollment_is_stale(self) -> None:
        visitor = reminder_flow()
        visitor.does("product_viewed")
        wake_up = visitor.pending()
        assert evaluate(visitor.journey, None, wake_up, visitor.profile, at(days=1)).note == "stale_wake_up"

    def test_an_early_wake_up_is_scheduled_again(self) -> None:
        visitor = reminder_flow()
        visitor.does("product_viewed")
        wake_up = visitor.pending()
        decision = visitor.feed(wake_up, now=at(hours=23))
        assert decision.note == "early_wake_up"
        assert not decision.changed
        assert decision.effects == [ScheduleWakeUp(wake_up=wake_up)]
        assert steps(visitor.feed(wake_up, now=at(days=1)))[0] == ("push", "sent")

    def test_seen_ids_are_bounded(self) -> None:
        # A wait_for that loops onto itself: every ping changes the enrollment.
        visitor = Visitor(
            journey(
                {
                    "start": {"type": "trigger", "event": "product_viewed", "next": "ping"},
                    "ping": {
                        "type": "wait_for",
                        "event": "ping",
                        "timeout": "P1D",
                        "happened": "ping",
                        "timed_out": "done",
                    },
                    "done": EXIT,
                }
            )
        )
        visitor.does("product_viewed", T0, id="entry")
        for index in range(SEEN_INPUT_IDS + 5):
            assert visitor.does("ping", at(index + 1), id=f"ping-{index}").changed
        assert visitor.enrollment is not None
        assert len(visitor.enrollment.seen_input_ids) == SEEN_INPUT_IDS
        assert visitor.enrollment.seen_input_ids[-1] == f"ping-{SEEN_INPUT_IDS + 4}"
        assert "entry" not in visitor.enrollment.seen_input_ids

    def test_revision_counts_changes(self) -> None:
        visitor = reminder_flow()
        visitor.does("product_viewed")
        assert visitor.enrollment is not None
        assert visitor.enrollment.revision == 1
        visitor.does("unrelated", at(5))
        assert visitor.enrollment.revision == 1
        visitor.wake()
        assert visitor.enrollment.revision == 2

    def test_inputs_are_not_mutated(self) -> None:
        visitor = reminder_flow()
        visitor.does("product_viewed")
        stored = visitor.enrollment
        assert stored is not None
        snapshot = stored.model_dump()
        evaluate(visitor.journey, stored, visitor.pending(), visitor.profile, at(days=1))
        assert stored.model_dump() == snapshot
