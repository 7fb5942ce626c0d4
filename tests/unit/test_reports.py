"""Funnel reports from journey steps: the definitions in footprint/services/reports.py, checked on the steps the
real engine records for the services flow (seed 000) and on hand-made steps for the edge cases."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from footprint.engine import EventInput, ProfileView, RecordStep, Simulator
from footprint.models.journey import Journey, load_journey_yaml
from footprint.services.reports import FunnelReport, funnel, journey_report, render_report

SERVICES_YAML = (Path(__file__).resolve().parents[2] / "journeys" / "services-consult.yaml").read_text(encoding="utf-8")
SERVICES = load_journey_yaml(SERVICES_YAML)
START = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 09:00 in Ho Chi Minh City
PRODUCT = {"product_id": "vay-nu-he", "name": "Váy nữ phong cách hè", "dwell_seconds": 16}


def event(event_name: str, after: timedelta, message_id: str, **properties: Any) -> EventInput:
    return EventInput(id=message_id, name=event_name, properties=properties, timestamp=START + after)


def services_flow_steps() -> list[RecordStep]:
    """Four visitors through services-consult on the engine, every RecordStep it asks to record:

    - an: dismisses the form, gets the onsite push, then the web push a day later, and clicks it;
    - binh: added the product to the cart while reading, so never enters;
    - chi: ignores the form and cannot get web push;
    - dung: buys while the form waits for an answer (the goal).
    """
    visitors = {
        name: ProfileView(
            id=name,
            timezone="Asia/Ho_Chi_Minh",
            reachable_channels=frozenset({"web_push"} if name == "an" else set()),
        )
        for name in ("an", "binh", "chi", "dung")
    }
    simulator = Simulator(SERVICES, profiles=visitors)
    for name in visitors:
        simulator.add_event(name, event("product_viewed", timedelta(0), f"{name}-view", **PRODUCT))
    on_form = {"journey_id": SERVICES.id, "node_id": "consult_form"}
    simulator.add_event("an", event("form_dismissed", timedelta(seconds=15), "an-dismiss", **on_form))
    clicked = {"journey_id": SERVICES.id, "node_id": "web_push_reminder"}
    simulator.add_event("an", event("message_clicked", timedelta(days=1, hours=1), "an-click", **clicked))
    simulator.add_event("binh", event("add_to_cart", timedelta(seconds=-5), "binh-cart", product_id="vay-nu-he"))
    simulator.add_event("dung", event("purchase", timedelta(minutes=5), "dung-buy"))
    simulator.run()
    return [effect for step in simulator.steps for effect in step.decision.effects if isinstance(effect, RecordStep)]


def step(
    node_id: str,
    outcome: str,
    enrollment_id: str = "e1",
    *,
    at: datetime = START,
    journey_id: str = "services-consult",
    version: int = 1,
    **fields: Any,
) -> RecordStep:
    return RecordStep.model_validate(
        {
            "key": f"{enrollment_id}.{node_id}.1.{outcome}",
            "at": at,
            "profile_id": f"p-{enrollment_id}",
            "journey_id": journey_id,
            "journey_version": version,
            "enrollment_id": enrollment_id,
            "node_id": node_id,
            "outcome": outcome,
            **fields,
        }
    )


def nodes_of(report: FunnelReport) -> dict[str, Any]:
    return {node.node_id: node for node in report.nodes}


# ------------------------------------------------------------------------------------------- the services flow


@pytest.fixture(scope="module")
def flow() -> FunnelReport:
    return funnel(SERVICES.id, services_flow_steps(), SERVICES)


def test_journey_totals_count_enrollments_and_conversion_is_converted_over_entered(flow: FunnelReport) -> None:
    assert (flow.triggered, flow.not_entered, flow.pending, flow.entered) == (4, 1, 0, 3)
    assert (flow.converted, flow.exited, flow.completed, flow.in_progress) == (1, 0, 2, 0)
    assert flow.conversion_rate == pytest.approx(1 / 3)
    assert flow.versions == [1]
    assert flow.version == 1
    assert flow.first_step_at == START
    assert flow.last_step_at == START + timedelta(days=1, hours=1)


def test_nodes_come_in_the_order_the_journey_declares_them(flow: FunnelReport) -> None:
    assert [node.node_id for node in flow.nodes] == list(SERVICES.nodes)
    assert nodes_of(flow)["consult_form"].type == "send"
    assert nodes_of(flow)["web_push_reminder"].stage == "conversion"


def test_each_node_counts_its_visitors_and_what_happened_there(flow: FunnelReport) -> None:
    nodes = nodes_of(flow)
    counts = {
        node_id: (node.visited, node.sent, node.converted, node.completed)
        for node_id, node in nodes.items()
        if node.visited
    }

    assert counts == {
        "viewed_without_cart": (3, 0, 0, 0),  # binh did not enter: not a visit
        "consult_form": (3, 3, 0, 0),
        "await_form_response": (3, 0, 1, 0),  # dung bought while the form waited
        "pause_after_dismiss": (1, 0, 0, 0),
        "onsite_offer": (1, 1, 0, 0),
        "can_web_push": (2, 0, 0, 0),
        "one_day_after_view": (1, 0, 0, 0),
        "web_push_reminder": (1, 1, 0, 0),
        "await_reminder_click": (1, 0, 0, 0),
        "done_clicked": (1, 0, 0, 1),
        "done_unreachable": (1, 0, 0, 1),
    }
    assert nodes["viewed_without_cart"].outcomes == {"entered": 3, "not_entered": 1}
    assert nodes["await_form_response"].outcomes == {"converted": 1, "happened": 1, "timed_out": 1, "waiting": 3}
    assert nodes["can_web_push"].branches == {"no": 1, "yes": 1}
    assert nodes["viewed_without_cart"].conversion_rate == pytest.approx(1 / 3)
    assert nodes["can_web_push"].conversion_rate == 0
    assert nodes["next_evening"].visited == 0
    assert nodes["next_evening"].conversion_rate is None


def test_the_main_path_follows_first_ways_out_and_drop_off_is_visited_but_not_the_next(flow: FunnelReport) -> None:
    path = [(s.from_node, s.to_node, s.visited, s.went_on, s.dropped) for s in flow.main_path]

    assert path == [
        ("viewed_without_cart", "consult_form", 3, 3, 0),
        ("consult_form", "await_form_response", 3, 3, 0),
        ("await_form_response", "pause_after_dismiss", 3, 1, 2),  # `happened` is the first way out
        ("pause_after_dismiss", "onsite_offer", 1, 1, 0),
        ("onsite_offer", "can_web_push", 1, 1, 0),
        ("can_web_push", "one_day_after_view", 2, 1, 1),  # chi reached it by the timeout, not the path
        ("one_day_after_view", "web_push_reminder", 1, 1, 0),
        ("web_push_reminder", "await_reminder_click", 1, 1, 0),
        ("await_reminder_click", "done_clicked", 1, 1, 0),
    ]
    assert flow.main_path[2].drop_off_rate == pytest.approx(2 / 3)
    assert {node.node_id for node in flow.nodes if node.on_main_path} == {s.from_node for s in flow.main_path} | {
        "done_clicked"
    }


def test_channels_count_enrollments_messaged_and_those_of_them_that_converted(flow: FunnelReport) -> None:
    assert [(c.channel, c.sent, c.converted) for c in flow.channels] == [
        ("onsite_form", 3, 1),
        ("onsite_push", 1, 0),
        ("web_push", 1, 0),
    ]


def test_the_table_shows_the_same_numbers(flow: FunnelReport) -> None:
    text = render_report(flow)
    lines = text.splitlines()

    assert lines[0].startswith("services-consult (v1, nodes of v1): ")
    assert "triggered 4 · entered 3 · did not enter 1 · pending 0 · in progress 0 · converted 1" in text
    assert "conversion rate 33.3 % (converted / entered)" in text
    form = next(line for line in lines if line.startswith("* consult_form "))
    assert form.split()[2:6] == ["send", "3", "3", "0"]
    waiting = next(line for line in lines if line.startswith("* await_form_response "))
    assert waiting.split()[2:11] == ["wait_for", "3", "0", "0", "0", "0", "1", "0", "0"]
    assert "happened 1, timed_out 1, waiting 3" in waiting
    drop = next(line for line in lines if line.startswith("await_form_response "))
    # All three runs have ended (in progress 0), so the two that did not go on are dropped.
    assert drop.split() == ["await_form_response", "pause_after_dismiss", "3", "1", "0", "2", "66.7", "%"]
    assert any(line.split()[:3] == ["onsite_form", "3", "1"] for line in lines)


# ------------------------------------------------------------------------------------------- definitions


def test_a_step_recorded_twice_and_a_node_passed_twice_count_once() -> None:
    steps = [
        step("viewed_without_cart", "entered"),
        step("consult_form", "sent", channel="onsite_form"),
        step("consult_form", "sent", channel="onsite_form"),
        step("consult_form", "sent", at=START + timedelta(days=2), channel="onsite_form"),
    ]

    report = funnel(SERVICES.id, steps, SERVICES)

    assert nodes_of(report)["consult_form"].sent == 1
    assert report.steps == 4
    assert report.channels[0].sent == 1


def test_steps_of_other_journeys_are_left_out() -> None:
    report = funnel(SERVICES.id, [step("viewed_without_cart", "entered"), step("x", "entered", journey_id="other")])

    assert report.entered == 1
    assert [node.node_id for node in report.nodes] == ["viewed_without_cart"]


def test_without_the_journey_nodes_follow_their_first_step_and_there_is_no_main_path() -> None:
    steps = [
        step("b_second", "waiting", at=START + timedelta(minutes=1)),
        step("a_first", "entered"),
        step("c_third", "completed", at=START + timedelta(minutes=2)),
    ]

    report = funnel(SERVICES.id, reversed(steps))

    assert [node.node_id for node in report.nodes] == ["a_first", "b_second", "c_third"]
    assert all(node.type is None and not node.on_main_path for node in report.nodes)
    assert report.main_path == []
    assert report.version is None
    assert "main path" not in render_report(report)


def test_nodes_of_another_version_follow_the_declared_ones() -> None:
    steps = [step("viewed_without_cart", "entered", version=2), step("old_node", "waiting", version=1)]

    report = funnel(SERVICES.id, steps, SERVICES)

    assert report.nodes[-1].node_id == "old_node"
    assert report.nodes[-1].type is None
    assert report.versions == [1, 2]


def test_pending_entries_and_runs_still_on_their_way() -> None:
    steps = [
        step("viewed_without_cart", "pending", "waits"),
        step("viewed_without_cart", "pending", "goes-on"),
        step("viewed_without_cart", "entered", "goes-on"),
        step("await_form_response", "waiting", "goes-on"),
        step("viewed_without_cart", "pending", "finished"),
        step("viewed_without_cart", "entered", "finished"),
        step("await_form_response", "exited", "finished", detail="session_started"),
    ]

    report = funnel(SERVICES.id, steps, SERVICES)

    assert (report.triggered, report.pending, report.entered, report.in_progress, report.exited) == (3, 1, 2, 1, 1)
    assert report.conversion_rate == 0
    assert nodes_of(report)["await_form_response"].exited == 1


def test_no_steps_is_an_empty_funnel_with_no_rates() -> None:
    report = funnel(SERVICES.id, [], SERVICES)

    assert report.entered == 0
    assert report.conversion_rate is None
    assert all(node.visited == 0 for node in report.nodes)
    assert all(path_step.drop_off_rate is None for path_step in report.main_path)
    assert "no steps recorded" in render_report(report).splitlines()[0]


def test_a_main_path_that_loops_back_stops_before_repeating_a_node() -> None:
    journey = load_journey_yaml(
        """
id: reminders
name: Reminders until clicked
version: 1
nodes:
  visited: {type: trigger, event: page_viewed, next: remind}
  remind: {type: send, channel: onsite_push, content: {title: "Hi"}, next: await_click}
  await_click: {type: wait_for, event: message_clicked, timeout: P1D, happened: remind, timed_out: done}
  done: {type: exit}
"""
    )

    report = funnel(journey.id, [], journey)

    assert [(s.from_node, s.to_node) for s in report.main_path] == [("visited", "remind"), ("remind", "await_click")]


# ------------------------------------------------------------------------------------------- reading


class FakeReader:
    def __init__(self, steps: Iterable[RecordStep]) -> None:
        self.rows = list(steps)
        self.asked: list[dict[str, Any]] = []

    def steps(
        self,
        journey_id: str,
        *,
        version: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[RecordStep]:
        self.asked.append({"journey_id": journey_id, "version": version, "since": since, "until": until})
        return [row for row in self.rows if version is None or row.journey_version == version]


class FakeCatalog:
    def __init__(self, *journeys: Journey) -> None:
        self.journeys = {(journey.id, journey.version): journey for journey in journeys}

    def version(self, journey_id: str, version: int) -> Journey | None:
        return self.journeys.get((journey_id, version))

    def latest_version(self, journey_id: str) -> int | None:
        return max((v for (j, v) in self.journeys if j == journey_id), default=None)


V2 = load_journey_yaml(SERVICES_YAML.replace("\nversion: 1\n", "\nversion: 2\n"))
V3 = load_journey_yaml(SERVICES_YAML.replace("\nversion: 1\n", "\nversion: 3\n"))


def test_the_report_follows_the_asked_version_else_the_newest_with_steps_else_the_latest_published() -> None:
    reader = FakeReader([step("viewed_without_cart", "entered", version=1), step("consult_form", "sent", version=2)])
    catalog = FakeCatalog(SERVICES, V2, V3)
    window = {"since": START, "until": START + timedelta(days=1)}

    asked = journey_report(reader, catalog, SERVICES.id, version=1, **window)
    newest = journey_report(reader, catalog, SERVICES.id)
    empty = journey_report(FakeReader([]), catalog, SERVICES.id)

    assert (asked.version, asked.versions, asked.entered) == (1, [1], 1)
    assert reader.asked[0] == {"journey_id": SERVICES.id, "version": 1, **window}
    assert (asked.since, asked.until) == (window["since"], window["until"])
    assert (newest.version, newest.versions) == (2, [1, 2])
    assert (empty.version, empty.steps, len(empty.nodes)) == (3, 0, len(SERVICES.nodes))
    assert journey_report(FakeReader([]), FakeCatalog(), "unknown").version is None


def test_an_empty_window_is_refused() -> None:
    with pytest.raises(ValueError, match="since must come before until"):
        journey_report(FakeReader([]), FakeCatalog(), SERVICES.id, since=START, until=START)


def test_a_message_send_could_not_deliver_is_failed_not_sent() -> None:
    # Given two visitors queued the same web push; send could not render the first one's
    steps = [
        step("web_push_reminder", "sent", "e1", channel="web_push"),
        step("web_push_reminder", "failed", "e1", channel="web_push", detail="template error: unknown filter"),
        step("web_push_reminder", "sent", "e2", channel="web_push"),
        step("onsite_offer", "sent", "e3", channel="onsite_push"),
        step("onsite_offer", "skipped", "e3", channel="onsite_push", detail="onsite messages declined"),
    ]

    report = funnel("services-consult", steps, SERVICES)

    nodes = nodes_of(report)
    assert (nodes["web_push_reminder"].sent, nodes["web_push_reminder"].failed) == (1, 1)
    assert (nodes["onsite_offer"].sent, nodes["onsite_offer"].skipped) == (0, 1)
    assert [(c.channel, c.sent) for c in report.channels] == [("web_push", 1)]
    row = next(line for line in render_report(report).splitlines() if line.startswith("* web_push_reminder "))
    assert row.split()[2:6] == ["send", "2", "1", "1"]  # visited, sent, failed


def test_a_visitor_still_waiting_is_in_progress_not_dropped() -> None:
    steps = [
        *(step("viewed_without_cart", "entered", e) for e in ("e1", "e2", "e3")),
        *(step("consult_form", "sent", e, channel="onsite_form") for e in ("e1", "e2", "e3")),
        *(step("await_form_response", "waiting", e) for e in ("e1", "e2", "e3")),
        step("pause_after_dismiss", "waiting", "e1"),  # went on
        step("can_web_push", "branched", "e2", detail="no"),  # timed out, took the other way...
        step("done_unreachable", "completed", "e2"),  # ...and finished
        # e3 is still waiting for the form's answer
    ]

    report = funnel(SERVICES.id, steps, SERVICES)

    [hop] = [s for s in report.main_path if s.from_node == "await_form_response"]
    assert (hop.visited, hop.went_on, hop.in_progress, hop.dropped) == (3, 1, 1, 1)
    assert hop.drop_off_rate == pytest.approx(1 / 3)


def test_what_became_of_each_message_is_counted_per_node_once_per_enrollment() -> None:
    steps = [
        *(step("viewed_without_cart", "entered", e) for e in ("e1", "e2", "e3")),
        *(step("consult_form", "sent", e, channel="onsite_form") for e in ("e1", "e2", "e3")),
        step("consult_form", "shown", "e1"),
        step("consult_form", "shown", "e2"),
        step("consult_form", "submitted", "e1"),
        step("consult_form", "dismissed", "e2"),
        step("web_push_reminder", "sent", "e1", channel="web_push"),
        step("web_push_reminder", "accepted", "e1"),
        step("web_push_reminder", "clicked", "e1"),
        step("web_push_reminder", "clicked", "e1", at=START + timedelta(minutes=1)),  # twice: one visitor
    ]

    nodes = nodes_of(funnel(SERVICES.id, steps, SERVICES))

    form, push = nodes["consult_form"], nodes["web_push_reminder"]
    assert (form.sent, form.shown, form.submitted, form.dismissed, form.accepted) == (3, 2, 1, 1, 0)
    assert (push.sent, push.accepted, push.clicked) == (1, 1, 1)
    assert nodes["viewed_without_cart"].visited == 3
    assert "accepted" in render_report(funnel(SERVICES.id, steps, SERVICES))


def test_the_stage_funnel_follows_the_journeys_stage_model_in_order() -> None:
    # services-consult is tagged with ACCSR: its trigger and forms are consideration, its pushes conversion.
    steps = [
        *(step("viewed_without_cart", "entered", e) for e in ("e1", "e2", "e3", "e4")),
        *(step("consult_form", "sent", e, channel="onsite_form") for e in ("e1", "e2", "e3", "e4")),
        step("web_push_reminder", "sent", "e1", channel="web_push"),
        step("done_clicked", "completed", "e1"),
        step("done_unreachable", "completed", "e2"),  # left without reaching conversion
        step("await_form_response", "waiting", "e3"),  # still deciding
        step("web_push_reminder", "sent", "e4", channel="web_push"),  # at conversion, still open
    ]

    report = funnel(SERVICES.id, steps, SERVICES)

    assert report.stage_model == "ACCSR"
    stages = {row.stage: row for row in report.stages}
    assert [row.stage for row in report.stages] == ["awareness", "consideration", "conversion", "service", "retention"]
    consideration = stages["consideration"]
    assert (consideration.reached, consideration.went_on, consideration.in_progress, consideration.dropped) == (
        4,
        2,
        1,
        1,
    )
    assert stages["awareness"].reached == 4  # nothing is tagged awareness: reaching later stages counts
    assert (stages["conversion"].reached, stages["conversion"].went_on) == (2, 0)
    assert stages["retention"].went_on is None
    assert "stages (ACCSR)" in render_report(report)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"stage_model": "AIDA", "stage": "conversion"}, "stage 'conversion' is not a stage of AIDA"),
        ({"stage_model": "funnel-of-mine", "stage": "top"}, "for a model of your own, list its `stages`"),
        ({"stage_model": "AIDA", "stages": ["a"], "stage": "action"}, "has its own stages"),
    ],
)
def test_stages_that_their_model_does_not_have_are_refused(fields: dict[str, Any], problem: str) -> None:
    stage = fields.pop("stage")
    data = load_journey_yaml(SERVICES_YAML).model_dump(mode="json", exclude_none=True) | fields
    for node in data["nodes"].values():
        if "stage" in node:
            node["stage"] = stage
    with pytest.raises(ValueError, match=re.escape(problem)):
        Journey.model_validate(data)


def test_a_model_of_your_own_lists_its_stages() -> None:
    data = load_journey_yaml(SERVICES_YAML).model_dump(mode="json", exclude_none=True)
    data |= {"stage_model": "shop-funnel", "stages": ["browse", "consideration", "conversion"]}
    journey = Journey.model_validate(data)
    report = funnel(journey.id, [step("viewed_without_cart", "entered")], journey)
    assert [row.stage for row in report.stages] == ["browse", "consideration", "conversion"]


def test_each_conversion_is_credited_to_the_channel_of_the_last_message_before_it() -> None:
    later = START + timedelta(hours=1)
    steps = [
        *(step("viewed_without_cart", "entered", e) for e in ("e1", "e2", "e3")),
        *(step("consult_form", "sent", e, channel="onsite_form") for e in ("e1", "e2", "e3")),
        step("web_push_reminder", "sent", "e1", at=later, channel="web_push"),
        step("done_clicked", "converted", "e1", at=later + timedelta(minutes=5)),  # web push was last
        step("await_form_response", "converted", "e2", at=START + timedelta(minutes=1)),  # the form was
        # e3 was sent a push that failed, then converted: the form is its last delivered touch.
        step("web_push_reminder", "sent", "e3", at=later, channel="web_push"),
        step("web_push_reminder", "failed", "e3", at=later),
        step("done_clicked", "converted", "e3", at=later + timedelta(minutes=5)),
    ]

    report = funnel(SERVICES.id, steps, SERVICES)

    channels = {row.channel: row for row in report.channels}
    assert (channels["onsite_form"].converted, channels["onsite_form"].last_touch) == (3, 2)
    assert (channels["web_push"].sent, channels["web_push"].converted, channels["web_push"].last_touch) == (1, 1, 1)
    assert sum(row.last_touch for row in report.channels) == report.converted
    assert report.attribution_rule.startswith("last touch")
    assert f"attribution: {report.attribution_rule}" in render_report(report)


def test_conversion_is_reported_per_path_most_travelled_first() -> None:
    def run(enrollment: str, *nodes: str, converted: bool = False) -> list[RecordStep]:
        steps = [step(nodes[0], "entered", enrollment)]
        steps += [
            step(node, "waiting", enrollment, at=START + timedelta(minutes=i)) for i, node in enumerate(nodes[1:])
        ]
        if converted:
            steps.append(step(nodes[-1], "converted", enrollment, at=START + timedelta(hours=1)))
        return steps

    form_then_push = ("viewed_without_cart", "consult_form", "await_form_response", "can_web_push")
    steps = [
        *run("e1", *form_then_push, converted=True),
        *run("e2", *form_then_push),
        *run("e3", "viewed_without_cart", "consult_form", "await_form_response", converted=True),
        step("viewed_without_cart", "pending", "e4"),  # never entered: no path
    ]

    report = funnel(SERVICES.id, steps, SERVICES)

    assert [(p.nodes, p.entered, p.converted) for p in report.paths] == [
        (list(form_then_push), 2, 1),
        (["viewed_without_cart", "consult_form", "await_form_response"], 1, 1),
    ]
    assert report.paths[0].conversion_rate == 0.5
    assert report.other_paths == 0
    assert "viewed_without_cart > consult_form > await_form_response > can_web_push" in render_report(report)
