"""Properties of the engine over random visitor behaviour (Hypothesis).

For random streams of events against every template and a journey with loops and a split:
- an enrollment is never in two places: an open one has exactly one current node, and its one
  pending wake-up (if any) belongs to that node; a finished one has neither;
- every wait yields exactly one wake-up, and a waiting node always has one pending;
- a duplicate input changes nothing;
- a stale wake-up changes nothing;
- the same inputs give the same timeline;
- split assignment is deterministic and follows the weights.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from footprint.engine import (
    Decision,
    Enrollment,
    EventInput,
    RecordStep,
    ScheduleWakeUp,
    Simulator,
    WakeUp,
    evaluate,
    relevant_events,
)
from footprint.engine.core import assign_branch
from footprint.engine.ids import split_point
from footprint.models.journey import Journey, SendNode, SplitNode, WaitForNode, WaitNode
from tests.unit.engine.builders import EXIT, T0, journey, onsite_push, profile, template, web_push

PROPERTY_SETTINGS = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)

LOOPING = journey(
    {
        "start": {
            "type": "trigger",
            "event": "product_viewed",
            "unless": {"event": "add_to_cart", "match_property": "product_id", "within": "10s"},
            "next": "test",
        },
        "test": {
            "type": "split",
            "branches": [{"name": "a", "weight": 3, "next": "push"}, {"name": "b", "weight": 1, "next": "offer"}],
            "holdout": {"weight": 1},
        },
        "push": {**web_push(), "next": "await_click"},
        "offer": {**onsite_push(), "next": "await_click"},
        "await_click": {
            "type": "wait_for",
            "event": "message_clicked",
            "match_message": "push",
            "timeout": "PT6H",
            "happened": "done",
            "timed_out": "again",
        },
        "again": {
            "type": "condition",
            "conditions": [{"kind": "event_history", "event": "product_viewed", "within": "P1D", "min_count": 2}],
            "yes": "evening",
            "no": "done",
        },
        "evening": {"type": "wait", "until_local_time": "19:30", "next": "mark"},
        "mark": {"type": "update", "add_tags": ["looped"], "next": "push"},
        "done": EXIT,
    },
    goal={"events": [{"event": "purchase"}], "within": "P3D"},
    exit_when=[{"event": "unsubscribed"}],
    re_entry={"policy": "every_time", "cooldown": "PT1H"},
    quiet_hours={"start": "21:00", "end": "08:00"},
    frequency_cap={"max_sends": 3, "period": "P1D"},
    default_timezone="Asia/Ho_Chi_Minh",
)
JOURNEYS: list[Journey] = [
    LOOPING,  # three times: it has the most moving parts
    LOOPING,
    LOOPING,
    template("services-consult"),
    template("cart-abandonment"),
    template("welcome-first-visit"),
    template("web-push-click-no-purchase"),
]


@st.composite
def visitor_events(draw: st.DrawFn, journey_: Journey) -> list[EventInput]:
    """Mostly events the journey reacts to, starting with its trigger event, plus some noise."""
    send_nodes = [node_id for node_id, node in journey_.nodes.items() if isinstance(node, SendNode)]
    names = [*sorted(relevant_events(journey_)), "page_viewed"]
    gaps = st.sampled_from([0, 1, 5, 9, 11, 40, 600, 3_600, 6 * 3_600, 86_400, 2 * 86_400])
    count = draw(st.integers(min_value=1, max_value=10))
    moment = T0
    events = []
    for index in range(count):
        moment += timedelta(seconds=draw(gaps))
        name = journey_.trigger.event if index == 0 else draw(st.sampled_from(names))
        properties: dict[str, Any] = {
            "product_id": draw(st.sampled_from(["A", "A", "B"])),
            "dwell_seconds": draw(st.sampled_from([5, 15, 30])),
            "first_visit": draw(st.booleans()),
            "channel": draw(st.sampled_from(["web_push", "web_push", "email"])),
            "journey_id": journey_.id,
            "node_id": draw(st.sampled_from(send_nodes)),
        }
        events.append(EventInput(id=f"e{index}", name=name, properties=properties, timestamp=moment))
    return events


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Journey, list[EventInput], Any]:
    journey_ = draw(st.sampled_from(JOURNEYS))
    events = draw(visitor_events(journey_))
    view = profile(
        reachable=tuple(draw(st.sets(st.sampled_from(["web_push", "email", "zalo_zns"])))),
        timezone=draw(st.sampled_from([None, "Asia/Ho_Chi_Minh", "Europe/Paris"])),
    )
    return journey_, events, view


def play(journey_: Journey, events: list[EventInput], view: Any) -> Simulator:
    simulator = Simulator(journey_, profiles={"p1": view})
    for item in events:
        simulator.add_event("p1", item)
    simulator.run(until=T0 + timedelta(days=30))
    return simulator


def check_shape(journey_: Journey, enrollment: Enrollment | None) -> None:
    if enrollment is None:
        return
    pending = enrollment.pending_wake_up
    if enrollment.is_open:
        assert enrollment.current_node in journey_.nodes
        assert pending is None or pending.node_id == enrollment.current_node
        node = journey_.nodes[enrollment.current_node]
        if isinstance(node, WaitNode | WaitForNode) or enrollment.status == "pending":
            assert pending is not None, f"{enrollment.current_node} waits without a wake-up"
    else:
        assert enrollment.current_node is None
        assert pending is None


def check_wake_ups(decision: Decision) -> None:
    scheduled = [effect.wake_up for effect in decision.effects if isinstance(effect, ScheduleWakeUp)]
    waits = [
        effect
        for effect in decision.effects
        if isinstance(effect, RecordStep) and effect.outcome in ("waiting", "held", "pending")
    ]
    assert len(scheduled) <= 1
    if decision.note == "early_wake_up":
        return
    assert [(w.node_id) for w in scheduled] == [record.node_id for record in waits] or (
        # a holdout parks at the split until its goal window ends
        len(scheduled) == 1 and not waits and decision.enrollment is not None and decision.enrollment.holdout
    )
    if scheduled and decision.enrollment is not None:
        assert decision.enrollment.pending_wake_up is not None
        assert decision.enrollment.pending_wake_up.token == scheduled[0].token


@PROPERTY_SETTINGS
@given(scenarios())
def test_one_place_one_wake_up_per_wait(scenario: tuple[Journey, list[EventInput], Any]) -> None:
    journey_, events, view = scenario
    simulator = play(journey_, events, view)
    for step in simulator.steps:
        check_shape(journey_, step.decision.enrollment)
        check_wake_ups(step.decision)


@PROPERTY_SETTINGS
@given(scenarios())
def test_duplicates_and_stale_wake_ups_change_nothing(scenario: tuple[Journey, list[EventInput], Any]) -> None:
    journey_, events, view = scenario
    simulator = play(journey_, events, view)
    for step in simulator.steps:
        decision = step.decision
        if not decision.changed:
            continue
        # The same input again, against the state it produced.
        again = evaluate(journey_, decision.enrollment, step.input, simulator.profiles["p1"], step.at)
        assert not again.changed
        assert again.effects == []
        assert again.enrollment == decision.enrollment
    final = simulator.enrollments.get("p1")
    if final is None:
        return
    current = final.pending_wake_up.token if final.pending_wake_up else None
    delivered: list[WakeUp] = [
        effect.wake_up
        for step in simulator.steps
        for effect in step.decision.effects
        if isinstance(effect, ScheduleWakeUp) and effect.wake_up.token != current
    ]
    for wake_up in delivered:
        replay = evaluate(journey_, final, wake_up, simulator.profiles["p1"], wake_up.due_at + timedelta(days=60))
        assert not replay.changed, replay.note
        assert replay.effects == []


@PROPERTY_SETTINGS
@given(scenarios())
def test_the_same_inputs_give_the_same_timeline(scenario: tuple[Journey, list[EventInput], Any]) -> None:
    journey_, events, view = scenario
    assert play(journey_, events, view).timeline == play(journey_, list(events), view).timeline


SPLIT_IDS = [f"visitor-{index}" for index in range(2_000)]
SPLIT_POINTS = [split_point(profile_id, "exp", "split") for profile_id in SPLIT_IDS]


@settings(max_examples=60, deadline=None)
@given(
    weights=st.lists(st.integers(min_value=1, max_value=10), min_size=1, max_size=4),
    holdout=st.one_of(st.none(), st.integers(min_value=1, max_value=5)),
)
def test_split_assignment_is_deterministic_and_follows_weights(weights: list[int], holdout: int | None) -> None:
    split = SplitNode.model_validate(
        {
            "type": "split",
            "branches": [{"name": f"b{index}", "weight": weight, "next": "x"} for index, weight in enumerate(weights)],
            "holdout": {"weight": holdout} if holdout else None,
        }
    )
    chosen = [assign_branch(split, point) for point in SPLIT_POINTS]
    assert chosen == [assign_branch(split, split_point(pid, "exp", "split")) for pid in SPLIT_IDS]
    total = sum(weights) + (holdout or 0)
    names = [branch.name if branch else "holdout" for branch in chosen]
    expected = {f"b{index}": weight / total for index, weight in enumerate(weights)}
    if holdout:
        expected["holdout"] = holdout / total
    for name, share in expected.items():
        assert abs(names.count(name) / len(names) - share) < 0.05, (name, share)
