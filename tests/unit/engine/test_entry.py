"""Who enters a journey: trigger conditions, the audience, "did X and not Y within T", re-entry,
journey status and version pinning."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from footprint.engine import CancelWakeUp, JourneyMismatchError, evaluate, relevant_events
from footprint.engine.ids import enrollment_id
from tests.unit.engine.builders import T0, Visitor, at, event, flow, onsite_push, profile, schedules, sends, steps

DWELL = {"where": [{"property": "dwell_seconds", "op": "gte", "value": 15}]}
NEGATIVE = {
    **DWELL,
    "unless": {"event": "add_to_cart", "match_property": "product_id", "within": "10s"},
}


def negative_flow() -> Visitor:
    return Visitor(flow(("offer", onsite_push()), trigger=NEGATIVE))


class TestTrigger:
    def test_a_matching_event_enters_and_runs_instant_nodes(self) -> None:
        visitor = Visitor(flow(("offer", onsite_push()), trigger=DWELL))
        decision = visitor.does("product_viewed", T0, product_id="vay-nu-he", dwell_seconds=15)
        assert decision.changed
        assert steps(decision) == [("start", "entered"), ("offer", "sent"), ("done", "completed")]
        assert visitor.status == "completed"
        assert visitor.enrollment is not None
        assert visitor.enrollment.entered_at == T0
        assert visitor.enrollment.entries == 1
        assert visitor.enrollment.trigger.properties == {"product_id": "vay-nu-he", "dwell_seconds": 15}

    def test_property_conditions(self) -> None:
        visitor = Visitor(flow(trigger=DWELL))
        decision = visitor.does("product_viewed", T0, dwell_seconds=9)
        assert not decision.changed
        assert decision.note == "not_triggered"
        assert decision.effects == []
        assert visitor.enrollment is None

    def test_another_event(self) -> None:
        assert Visitor(flow()).does("add_to_cart").note == "not_triggered"

    def test_event_names_are_matched_canonically(self) -> None:
        decision = Visitor(flow()).does("Product Viewed")
        assert decision.changed

    def test_audience(self) -> None:
        journey = flow(trigger={"audience": [{"attribute": "city", "value": "Hà Nội"}]})
        assert Visitor(journey, profile(city="Hà Nội")).does("product_viewed").changed
        assert Visitor(journey, profile(city="Huế")).does("product_viewed").note == "not_triggered"

    def test_a_journey_limited_to_sources_takes_only_their_visitors(self) -> None:
        journey = flow(sources=["shop"])
        shop_visitor = profile().model_copy(update={"source_id": "shop"})
        blog_visitor = profile().model_copy(update={"source_id": "blog"})
        assert Visitor(journey, shop_visitor).does("product_viewed").changed
        assert Visitor(journey, blog_visitor).does("product_viewed").note == "source_not_included"
        assert Visitor(flow(), blog_visitor).does("product_viewed").changed  # no list: every source

    @pytest.mark.parametrize("status", ["draft", "paused"])
    def test_only_active_journeys_take_new_visitors(self, status: str) -> None:
        decision = Visitor(flow(status=status)).does("product_viewed")
        assert decision.note == "journey_not_active"
        assert decision.enrollment is None

    def test_enrollment_ids_are_deterministic(self) -> None:
        first = Visitor(flow()).does("product_viewed")
        again = Visitor(flow()).does("product_viewed")
        assert first.enrollment is not None
        assert again.enrollment is not None
        assert first.enrollment.id == again.enrollment.id == enrollment_id("p1", "test-journey", 1)
        other = Visitor(flow(), profile("p2")).does("product_viewed")
        assert other.enrollment is not None
        assert other.enrollment.id != first.enrollment.id

    def test_the_first_entry_has_revision_one(self) -> None:
        decision = Visitor(flow(("wait", {"type": "wait", "duration": "1d"}))).does("product_viewed")
        assert decision.enrollment is not None
        assert decision.enrollment.revision == 1


class TestNegativeTrigger:
    """product_viewed (dwell >= 15 s) and no add_to_cart of the same product within 10 s."""

    def test_entry_waits_out_the_window(self) -> None:
        visitor = negative_flow()
        decision = visitor.does("product_viewed", T0, product_id="A", dwell_seconds=15)
        assert steps(decision) == [("start", "pending")]
        assert sends(decision) == []
        assert visitor.status == "pending"
        assert visitor.enrollment is not None
        assert visitor.enrollment.entered_at is None
        assert visitor.enrollment.entries == 0
        [wake_up] = schedules(decision)
        assert wake_up.due_at == at(10)
        assert wake_up.node_id == "start"

    def test_no_add_to_cart_confirms_the_entry(self) -> None:
        visitor = negative_flow()
        visitor.does("product_viewed", T0, product_id="A", dwell_seconds=15)
        decision = visitor.wake()
        assert steps(decision) == [("start", "entered"), ("offer", "sent"), ("done", "completed")]
        assert visitor.enrollment is not None
        assert visitor.enrollment.entered_at == at(10)
        assert visitor.enrollment.entries == 1

    def test_add_to_cart_of_the_same_product_cancels(self) -> None:
        visitor = negative_flow()
        visitor.does("product_viewed", T0, product_id="A", dwell_seconds=15)
        pending = visitor.pending()
        decision = visitor.does("add_to_cart", at(6), product_id="A")
        assert steps(decision) == [("start", "not_entered")]
        assert [e for e in decision.effects if isinstance(e, CancelWakeUp)] == [
            CancelWakeUp(wake_up_id=pending.id, due_at=pending.due_at)
        ]
        assert visitor.status == "cancelled"
        assert visitor.enrollment is not None
        assert visitor.enrollment.current_node is None
        assert visitor.enrollment.pending_wake_up is None
        # The timer still fires (SQS delays cannot be cancelled): it is stale and ignored.
        late = visitor.feed(pending)
        assert late.note == "stale_wake_up"
        assert not late.changed

    def test_add_to_cart_of_another_product_does_not_cancel(self) -> None:
        visitor = negative_flow()
        visitor.does("product_viewed", T0, product_id="A", dwell_seconds=15)
        decision = visitor.does("add_to_cart", at(5), product_id="B")
        assert decision.note == "no_effect"
        assert visitor.status == "pending"
        assert steps(visitor.wake())[0] == ("start", "entered")

    def test_add_to_cart_after_the_window_does_not_cancel(self) -> None:
        visitor = negative_flow()
        visitor.does("product_viewed", T0, product_id="A", dwell_seconds=15)
        # Stamped after the window, processed before the wake-up (stream lag): it does not count.
        assert visitor.does("add_to_cart", at(11), product_id="A").note == "no_effect"
        assert visitor.status == "pending"

    def test_add_to_cart_before_the_view_does_not_cancel(self) -> None:
        visitor = negative_flow()
        visitor.does("product_viewed", T0, product_id="A", dwell_seconds=15)
        assert visitor.does("add_to_cart", at(-3), product_id="A").note == "no_effect"

    def test_an_exit_event_cancels_a_pending_entry(self) -> None:
        visitor = Visitor(flow(("offer", onsite_push()), trigger=NEGATIVE, exit_when=[{"event": "purchase"}]))
        visitor.does("product_viewed", T0, product_id="A", dwell_seconds=15)
        decision = visitor.does("purchase", at(4))
        assert steps(decision) == [("start", "not_entered")]
        assert visitor.status == "cancelled"
        assert visitor.enrollment is not None
        assert visitor.enrollment.finish_reason == "purchase"

    def test_a_cancelled_attempt_does_not_count_as_an_entry(self) -> None:
        visitor = negative_flow()  # re-entry policy: once
        visitor.does("product_viewed", T0, product_id="A", dwell_seconds=15)
        visitor.does("add_to_cart", at(3), product_id="A")
        decision = visitor.does("product_viewed", at(60), product_id="B", dwell_seconds=20)
        assert steps(decision) == [("start", "pending")]
        assert decision.enrollment is not None
        assert decision.enrollment.entry_seq == 2
        assert decision.enrollment.trigger.properties["product_id"] == "B"

    def test_other_triggers_while_pending_are_ignored(self) -> None:
        visitor = negative_flow()
        visitor.does("product_viewed", T0, product_id="A", dwell_seconds=15)
        assert visitor.does("product_viewed", at(2), product_id="B", dwell_seconds=30).note == "no_effect"
        assert visitor.enrollment is not None
        assert visitor.enrollment.trigger.properties["product_id"] == "A"

    def test_a_late_trigger_is_confirmed_at_once(self) -> None:
        visitor = negative_flow()
        # Processed 30 s after it happened: the window is already over, the wake-up is due now.
        decision = visitor.feed(event("product_viewed", T0, product_id="A", dwell_seconds=15), now=at(30))
        [wake_up] = schedules(decision)
        assert wake_up.due_at == at(30)


LOOK_BACK = {
    **DWELL,
    "unless": {
        "event": "add_to_cart",
        "match_property": "product_id",
        "before": "15s",
        "before_property": "dwell_seconds",
    },
}


def look_back_flow(*more: tuple[str, dict[str, Any]], **fields: Any) -> Visitor:
    """Seed 000: read the page 15 s without adding the product to the cart -> the offer at once."""
    return Visitor(flow(("offer", onsite_push()), *more, trigger=LOOK_BACK, **fields))


ADD_TO_CART_GOAL = {"events": [{"event": "add_to_cart"}], "within": "P7D"}
A_DAY_LATER = ("later", {"type": "wait", "duration": "1d"})


class TestLookBack:
    """``unless.before``: the window lies before the trigger, so the first step goes out at once;
    decided by the events' own timestamps, whatever order they are processed in."""

    def test_no_add_to_cart_while_reading_enters_at_once(self) -> None:
        visitor = look_back_flow()
        decision = visitor.does("product_viewed", at(15), product_id="A", dwell_seconds=15)
        assert steps(decision) == [("start", "entered"), ("offer", "sent"), ("done", "completed")]
        assert schedules(decision) == []
        assert visitor.enrollment is not None
        assert visitor.enrollment.entered_at == at(15)

    def test_add_to_cart_while_reading_keeps_the_visitor_out(self) -> None:
        visitor = look_back_flow()
        visitor.does("add_to_cart", at(8), product_id="A")
        decision = visitor.does("product_viewed", at(15), product_id="A", dwell_seconds=15)
        assert steps(decision) == [("start", "not_entered")]
        assert sends(decision) == []
        assert visitor.status == "cancelled"
        assert visitor.enrollment is not None
        assert visitor.enrollment.finish_reason == "add_to_cart PT7S before"
        assert visitor.enrollment.entries == 0  # not an entry: the next view may enter

    def test_the_look_back_covers_the_whole_reading_time(self) -> None:
        visitor = look_back_flow()
        visitor.does("add_to_cart", at(1), product_id="A")
        # Read for 40 s: the add_to_cart 39 s before is inside the reading time, though `before` is 15 s.
        assert steps(visitor.does("product_viewed", at(40), product_id="A", dwell_seconds=40)) == [
            ("start", "not_entered")
        ]

    def test_add_to_cart_before_the_reading_began_does_not_count(self) -> None:
        visitor = look_back_flow()
        visitor.does("add_to_cart", at(-60), product_id="A")
        assert steps(visitor.does("product_viewed", at(15), product_id="A", dwell_seconds=15))[0] == (
            "start",
            "entered",
        )

    def test_add_to_cart_of_another_product_does_not_count(self) -> None:
        visitor = look_back_flow()
        visitor.does("add_to_cart", at(8), product_id="B")
        assert steps(visitor.does("product_viewed", at(15), product_id="A", dwell_seconds=15))[0] == (
            "start",
            "entered",
        )

    def test_an_add_to_cart_known_already_counts_even_stamped_after_the_view(self) -> None:
        # The view reached the stream late (a retried batch): by then the visitor had added to cart.
        visitor = look_back_flow()
        visitor.does("add_to_cart", at(17), product_id="A")
        decision = visitor.feed(event("product_viewed", at(15), product_id="A", dwell_seconds=15), now=at(20))
        assert steps(decision) == [("start", "not_entered")]

    def test_an_add_to_cart_while_reading_that_arrives_late_stops_the_journey_without_converting(self) -> None:
        # The add_to_cart at 8 s was delayed by retries; the offer went out at 15 s.
        visitor = look_back_flow(A_DAY_LATER, ("again", onsite_push("Still there?")), goal=ADD_TO_CART_GOAL)
        assert sends(visitor.does("product_viewed", at(15), product_id="A", dwell_seconds=15))
        decision = visitor.feed(event("add_to_cart", at(8), product_id="A"), now=at(40))
        assert steps(decision) == [("later", "exited")]
        assert visitor.status == "exited"
        assert visitor.enrollment is not None
        assert visitor.enrollment.finish_reason == "add_to_cart PT7S before, arrived late"
        assert [e for e in decision.effects if isinstance(e, CancelWakeUp)]

    def test_add_to_cart_after_the_offer_is_the_goal(self) -> None:
        visitor = look_back_flow(A_DAY_LATER, goal=ADD_TO_CART_GOAL)
        visitor.does("product_viewed", at(15), product_id="A", dwell_seconds=15)
        assert steps(visitor.does("add_to_cart", at(30), product_id="A")) == [("later", "converted")]

    def test_a_window_needs_a_length(self) -> None:
        with pytest.raises(ValueError, match="unless needs a window"):
            flow(trigger={"unless": {"event": "add_to_cart"}})


class TestLateUnlessEvents:
    """``unless.within`` waits forward; a Y stamped inside the window but processed after it must
    not let the journey go on, nor count as its conversion."""

    def test_a_purchase_inside_the_window_that_arrives_after_it_ends_the_run_unconverted(self) -> None:
        journey = flow(
            ("email", {"type": "send", "channel": "onsite_push", "content": {"title": "Still thinking?"}}),
            ("later", {"type": "wait", "duration": "1d"}),
            trigger={"unless": {"event": "purchase", "within": "PT2H"}},
            goal={"events": [{"event": "purchase"}], "within": "P3D"},
        )
        visitor = Visitor(journey)
        visitor.does("product_viewed", T0)
        assert sends(visitor.wake())  # no purchase seen in the 2 h: the message goes out
        # The purchase at 1 h 50 reaches evaluate after the window (retries, a slow stream).
        decision = visitor.feed(event("purchase", at(minutes=110)), now=at(hours=2, minutes=5))
        assert steps(decision) == [("later", "exited")]
        assert visitor.status == "exited"
        # A purchase after the window is a conversion as usual.
        other = Visitor(journey)
        other.does("product_viewed", T0)
        other.wake()
        assert steps(other.does("purchase", at(hours=3))) == [("later", "converted")]

    def test_an_add_to_cart_in_the_window_processed_before_the_view_cancels(self) -> None:
        visitor = negative_flow()
        visitor.does("add_to_cart", at(4), product_id="A")  # stamped after the view, processed first
        decision = visitor.does("product_viewed", T0, product_id="A", dwell_seconds=15)
        assert steps(decision) == [("start", "not_entered")]


class TestReEntry:
    def run_once(self, visitor: Visitor, when: timedelta) -> str | None:
        return visitor.does("product_viewed", T0 + when).note

    def test_once(self) -> None:
        visitor = Visitor(flow())
        assert self.run_once(visitor, timedelta(0)) is None
        assert self.run_once(visitor, timedelta(days=365)) == "re_entry_not_allowed"

    def test_once_per_period_counts_from_the_last_entry(self) -> None:
        visitor = Visitor(flow(re_entry={"policy": "once_per", "period": "P7D"}))
        assert self.run_once(visitor, timedelta(0)) is None
        assert self.run_once(visitor, timedelta(days=6, hours=23)) == "re_entry_not_allowed"
        assert self.run_once(visitor, timedelta(days=7)) is None
        assert visitor.enrollment is not None
        assert visitor.enrollment.entry_seq == 2
        assert visitor.enrollment.entries == 2
        assert visitor.enrollment.last_entry_at == T0 + timedelta(days=7)

    def test_every_time_after_a_cooldown_since_the_last_finish(self) -> None:
        journey = flow(
            ("wait", {"type": "wait", "duration": "P1D"}),
            re_entry={"policy": "every_time", "cooldown": "PT1H"},
        )
        visitor = Visitor(journey)
        visitor.does("product_viewed", T0)
        # Still in the journey: a second trigger does not start a second run.
        assert visitor.does("product_viewed", at(hours=2)).note == "no_effect"
        visitor.wake()  # finishes at T0 + 1 day
        assert visitor.does("product_viewed", at(days=1, minutes=59)).note == "re_entry_not_allowed"
        decision = visitor.does("product_viewed", at(days=1, hours=1))
        assert steps(decision)[0] == ("start", "entered")

    def test_every_time_without_cooldown(self) -> None:
        visitor = Visitor(flow(re_entry={"policy": "every_time"}))
        for minute in range(3):
            assert steps(visitor.does("product_viewed", at(minutes=minute)))[0] == ("start", "entered")
        assert visitor.enrollment is not None
        assert visitor.enrollment.entries == 3

    def test_a_new_run_carries_the_history_and_the_revision(self) -> None:
        visitor = Visitor(flow(re_entry={"policy": "every_time"}))
        first = visitor.does("product_viewed", T0, id="first")
        assert first.enrollment is not None
        second = visitor.does("product_viewed", at(60))
        assert second.enrollment is not None
        assert second.enrollment.id != first.enrollment.id
        assert second.enrollment.revision == first.enrollment.revision + 1
        assert "first" in second.enrollment.seen_input_ids
        # The first run's event replayed later is still recognised as a duplicate.
        assert visitor.feed(event("product_viewed", T0, id="first"), now=at(120)).note == "duplicate_input"


class TestPinning:
    def test_in_flight_visitors_stay_on_their_version(self) -> None:
        again = {"policy": "every_time"}
        v1 = flow(("wait", {"type": "wait", "duration": "P1D"}), re_entry=again)
        v2 = flow(("wait", {"type": "wait", "duration": "P2D"}), re_entry=again, version=2)
        visitor = Visitor(v1)
        visitor.does("product_viewed")
        with pytest.raises(JourneyMismatchError, match="pinned to version 1"):
            evaluate(v2, visitor.enrollment, visitor.pending(), visitor.profile, at(days=1))
        # The pinned version finishes the run; the next run enters the new version.
        visitor.wake()
        assert visitor.status == "completed"
        visitor.journey = v2
        decision = visitor.does("product_viewed", at(days=2))
        assert decision.enrollment is not None
        assert decision.enrollment.journey_version == 2
        [wake_up] = schedules(decision)
        assert wake_up.journey_version == 2
        assert wake_up.due_at == at(days=4)

    def test_another_journey_or_profile_is_a_caller_bug(self) -> None:
        visitor = Visitor(flow(("wait", {"type": "wait", "duration": "P1D"})))
        visitor.does("product_viewed")
        other = flow(id="other-journey")
        with pytest.raises(JourneyMismatchError, match="belongs to journey"):
            evaluate(other, visitor.enrollment, event("x"), visitor.profile, T0)
        with pytest.raises(JourneyMismatchError, match="belongs to profile"):
            evaluate(visitor.journey, visitor.enrollment, event("x"), profile("p2"), T0)


def test_relevant_events() -> None:
    journey = flow(
        (
            "clicked",
            {
                "type": "wait_for",
                "event": "message_clicked",
                "timeout": "1d",
                "happened": "done",
                "timed_out": "done",
            },
        ),
        trigger=NEGATIVE,
        goal={"events": [{"event": "purchase"}]},
        exit_when=[{"event": "session_started"}],
    )
    assert relevant_events(journey) == {
        "product_viewed",
        "add_to_cart",
        "message_clicked",
        "purchase",
        "session_started",
    }
