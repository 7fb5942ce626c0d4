"""The simulator: a virtual clock, a queue of wake-ups, a deterministic timeline."""

from __future__ import annotations

from datetime import datetime

import pytest

from footprint.engine import SendMessage, SimulatedEvent, SimulationLimitError, Simulator, TimelineEntry, simulate
from tests.unit.engine.builders import T0, at, event, flow, journey, onsite_push, profile, template

PAUSE_THEN_PUSH = flow(("pause", {"type": "wait", "duration": "PT1H"}), ("offer", onsite_push("Ưu đãi")))


def outcomes(timeline: list[TimelineEntry]) -> list[tuple[datetime, str, str]]:
    return [(entry.at, entry.node_id, entry.outcome) for entry in timeline]


def test_events_are_played_in_time_order_with_wake_ups_between_them() -> None:
    journey_ = flow(
        (
            "await_click",
            {"type": "wait_for", "event": "clicked", "timeout": "PT1H", "happened": "offer", "timed_out": "done"},
        ),
        ("offer", onsite_push()),
    )
    # Given out of order: the click first, the trigger second.
    timeline = simulate(
        journey_,
        [
            SimulatedEvent(profile_id="p1", event=event("clicked", at(minutes=90))),
            SimulatedEvent(profile_id="p1", event=event("product_viewed", T0)),
        ],
    )
    assert outcomes(timeline) == [
        (T0, "start", "entered"),
        (T0, "await_click", "waiting"),
        (at(hours=1), "await_click", "timed_out"),  # the timeout came before the late click
        (at(hours=1), "done", "completed"),
    ]


def test_an_event_at_the_deadline_beats_the_timeout() -> None:
    journey_ = flow(
        (
            "await_click",
            {"type": "wait_for", "event": "clicked", "timeout": "PT1H", "happened": "offer", "timed_out": "done"},
        ),
        ("offer", onsite_push()),
    )
    timeline = simulate(
        journey_,
        [
            SimulatedEvent(profile_id="p1", event=event("product_viewed", T0)),
            SimulatedEvent(profile_id="p1", event=event("clicked", at(hours=1))),
        ],
    )
    assert (at(hours=1), "await_click", "happened") in outcomes(timeline)


def test_until_stops_the_clock_and_run_continues() -> None:
    simulator = Simulator(PAUSE_THEN_PUSH)
    simulator.add_event("p1", event("product_viewed", T0))
    first = list(simulator.run(until=at(minutes=59)))
    assert [entry.outcome for entry in first] == ["entered", "waiting"]
    assert simulator.enrollments["p1", simulator.journey.id].status == "active"
    simulator.run()
    assert [entry.outcome for entry in simulator.timeline] == ["entered", "waiting", "sent", "completed"]
    assert simulator.clock == at(hours=1)


def test_a_journey_that_never_ends_needs_until() -> None:
    forever = journey(
        {
            "start": {"type": "trigger", "event": "product_viewed", "next": "tick"},
            "tick": {"type": "wait", "duration": "P1D", "next": "tock"},
            "tock": {"type": "wait", "duration": "P1D", "next": "tick"},
        }
    )
    simulator = Simulator(forever)
    simulator.add_event("p1", event("product_viewed", T0))
    with pytest.raises(SimulationLimitError, match="pass an earlier `until`"):
        simulator.run(max_inputs=50)
    events = [SimulatedEvent(profile_id="p1", event=event("product_viewed", T0))]
    timeline = simulate(forever, events, until=at(days=10))
    assert len([entry for entry in timeline if entry.outcome == "waiting"]) == 11


def test_the_same_inputs_give_the_same_timeline() -> None:
    services = template("services-consult")
    view = profile(reachable=("web_push",), timezone="Asia/Ho_Chi_Minh")
    events = [
        SimulatedEvent(
            profile_id=f"p{index}",
            profile=view.model_copy(update={"id": f"p{index}"}),
            event=event(
                "product_viewed", at(index * 7), id=f"view-{index}", product_id="vay-nu-he", dwell_seconds=15 + index
            ),
        )
        for index in range(5)
    ]
    assert simulate(services, events) == simulate(services, events)


def test_snapshots_history_and_updates_feed_the_profile_view() -> None:
    journey_ = flow(
        ("mark", {"type": "update", "add_tags": ["seen"]}),
        (
            "pause",
            {"type": "wait", "duration": "P1D"},
        ),
        (
            "check",
            {
                "type": "condition",
                "conditions": [
                    {"kind": "profile", "attribute": "tags", "op": "contains", "value": "seen"},
                    {"kind": "event_history", "event": "page_viewed", "within": "P1D", "min_count": 2},
                    {"kind": "profile", "attribute": "city", "value": "Hà Nội"},
                ],
                "yes": "offer",
                "no": "done",
            },
        ),
        ("offer", onsite_push()),
    )
    simulator = Simulator(journey_)
    simulator.add_event("p1", event("product_viewed", T0), profile("p1", city="Hà Nội"))
    simulator.add_event("p1", event("page_viewed", at(hours=1)))
    simulator.add_event("p1", event("page_viewed", at(hours=2)))
    timeline = simulator.run()
    assert [entry.detail for entry in timeline if entry.node_id == "check"] == ["yes"]
    assert simulator.profiles["p1"].tags == ["seen"]
    assert len(simulator.profiles["p1"].event_history["page_viewed"]) == 2


def test_describe_and_message_summaries() -> None:
    [entered, waiting, sent, completed] = simulate(
        PAUSE_THEN_PUSH,
        [SimulatedEvent(profile_id="p1", event=event("product_viewed", T0))],
        describe_message=lambda message: f"[{message.channel}] {message.node_id}",
    )
    assert sent.message == "[onsite_push] offer"
    assert (
        sent.describe()
        == "2025-06-02 04:00:00Z  p1  offer                    sent        onsite_push: [onsite_push] offer"
    )
    assert waiting.describe().endswith("waiting     until 2025-06-02T04:00:00Z")
    assert entered.message is None
    assert completed.outcome == "completed"


def test_default_summary_is_the_title_cut_short() -> None:
    long_title = "Váy nữ phong cách hè " * 6
    [*_, sent, _] = simulate(
        flow(("offer", onsite_push(long_title))),
        [SimulatedEvent(profile_id="p1", event=event("product_viewed", T0))],
    )
    assert sent.message is not None
    assert len(sent.message) == 80
    assert sent.message.endswith("…")


def test_steps_keep_every_decision() -> None:
    simulator = Simulator(PAUSE_THEN_PUSH)
    simulator.add_event("p1", event("product_viewed", T0))
    simulator.run()
    assert [step.decision.changed for step in simulator.steps] == [True, True]
    assert simulator.steps[0].before is None
    assert any(isinstance(effect, SendMessage) for effect in simulator.steps[1].decision.effects)


EMAIL_OR_ONSITE = flow(
    ("mail", {"type": "send", "channel": "email", "content": {"subject": "Chiếc váy vẫn chờ bạn"}}),
    (
        "mail_suppressed",
        {
            "type": "wait_for",
            "event": "message_suppressed",
            "match_message": "mail",
            "timeout": "PT1H",
            "happened": "offer",
            "timed_out": "done",
        },
    ),
    ("offer", onsite_push("Chiếc váy vẫn chờ bạn")),
)


def test_a_send_the_engine_skips_comes_back_as_message_suppressed_and_the_journey_falls_back() -> None:
    anonymous = simulate(EMAIL_OR_ONSITE, [SimulatedEvent(profile_id="p1", event=event("product_viewed", T0))])
    assert outcomes(anonymous) == [
        (T0, "start", "entered"),
        (T0, "mail", "skipped"),
        (T0, "mail_suppressed", "waiting"),
        (T0, "mail_suppressed", "happened"),
        (T0, "offer", "sent"),
        (T0, "done", "completed"),
    ]
    known = simulate(
        EMAIL_OR_ONSITE,
        [SimulatedEvent(profile_id="p1", event=event("product_viewed", T0), profile=profile(reachable=("email",)))],
    )
    assert [(entry.node_id, entry.outcome) for entry in known][1:] == [
        ("mail", "sent"),
        ("mail_suppressed", "waiting"),
        ("mail_suppressed", "timed_out"),
        ("done", "completed"),
    ]
