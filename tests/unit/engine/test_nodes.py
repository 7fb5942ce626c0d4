"""Each node type on its own: wait, wait_for, condition, split, send, update, exit."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from footprint.engine import CancelWakeUp, ProfileView, RecordOutcomeEvent, UpdateProfile
from footprint.engine.ids import idempotency_key, split_point
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
    records,
    schedules,
    sends,
    steps,
    web_push,
)

HCM = "Asia/Ho_Chi_Minh"


def wait(**fields: Any) -> dict[str, Any]:
    return {"type": "wait", **fields}


def wait_for(event: str = "message_clicked", **fields: Any) -> dict[str, Any]:
    return {
        "type": "wait_for",
        "event": event,
        "timeout": "P1D",
        "happened": "yes_path",
        "timed_out": "no_path",
        **fields,
    }


def branching(
    node: dict[str, Any], *before: tuple[str, dict[str, Any]], view: ProfileView | None = None, **fields: Any
) -> Visitor:
    """trigger -> [before...] -> node -> yes_path / no_path (onsite pushes) -> done."""
    names = [name for name, _ in before] + ["node"]
    nodes: dict[str, dict[str, Any]] = {"start": {"type": "trigger", "event": "product_viewed", "next": names[0]}}
    for (name, step), following in zip(before, names[1:], strict=True):
        nodes[name] = {**step, "next": following}
    nodes["node"] = node
    nodes["yes_path"] = {**onsite_push("yes"), "next": "done"}
    nodes["no_path"] = {**onsite_push("no"), "next": "done"}
    nodes["done"] = EXIT
    return Visitor(journey(nodes, **fields), view)


def visitor_with(node: dict[str, Any], view: ProfileView | None = None, **fields: Any) -> Visitor:
    return branching(node, view=view, **fields)


class TestWait:
    def test_duration(self) -> None:
        visitor = Visitor(flow(("pause", wait(duration="PT10S")), ("offer", onsite_push())))
        decision = visitor.does("product_viewed")
        assert steps(decision) == [("start", "entered"), ("pause", "waiting")]
        [wake_up] = schedules(decision)
        assert wake_up.due_at == at(10)
        assert visitor.node == "pause"
        assert steps(visitor.wake()) == [("offer", "sent"), ("done", "completed")]

    def test_until_a_local_time(self) -> None:
        visitor = Visitor(flow(("evening", wait(until_local_time="19:30"))), profile(timezone=HCM))
        [wake_up] = schedules(visitor.does("product_viewed"))
        assert wake_up.due_at == datetime(2025, 6, 2, 12, 30, tzinfo=UTC)  # 19:30 in HCM

    def test_local_time_defaults_to_the_journey_zone_then_utc(self) -> None:
        in_journey_zone = Visitor(flow(("morning", wait(until_local_time="09:00")), default_timezone=HCM))
        [wake_up] = schedules(in_journey_zone.does("product_viewed"))
        assert wake_up.due_at == datetime(2025, 6, 3, 2, 0, tzinfo=UTC)
        in_utc = Visitor(flow(("morning", wait(until_local_time="09:00"))))
        [wake_up] = schedules(in_utc.does("product_viewed"))
        assert wake_up.due_at == datetime(2025, 6, 2, 9, 0, tzinfo=UTC)

    def test_a_bad_profile_zone_falls_back(self) -> None:
        visitor = Visitor(
            flow(("morning", wait(until_local_time="09:00")), default_timezone=HCM), profile(timezone="Nope/Nope")
        )
        [wake_up] = schedules(visitor.does("product_viewed"))
        assert wake_up.due_at == datetime(2025, 6, 3, 2, 0, tzinfo=UTC)

    def test_duration_then_local_time(self) -> None:
        # 10:00 + 12 h = 22:00, then the next 09:00: tomorrow morning.
        visitor = Visitor(flow(("later", wait(duration="PT12H", until_local_time="09:00"))), profile(timezone=HCM))
        [wake_up] = schedules(visitor.does("product_viewed"))
        assert wake_up.due_at == datetime(2025, 6, 3, 2, 0, tzinfo=UTC)

    def test_relative_to_entry(self) -> None:
        visitor = Visitor(
            flow(
                ("pause", wait(duration="PT1H")),
                ("one_day", wait(duration="P1D", relative_to="entry")),
            )
        )
        visitor.does("product_viewed")
        [wake_up] = schedules(visitor.wake())
        assert wake_up.due_at == at(days=1)  # one day after entry, not after the first wait

    def test_relative_to_entry_already_past_is_due_at_once(self) -> None:
        visitor = Visitor(flow(("pause", wait(duration="P2D")), ("one_day", wait(duration="P1D", relative_to="entry"))))
        visitor.does("product_viewed")
        [wake_up] = schedules(visitor.wake())
        assert wake_up.due_at == at(days=2)

    def test_wake_up_ids_are_unique_and_scheduler_safe(self) -> None:
        visitor = Visitor(flow(("a", wait(duration="1m")), ("b", wait(duration="1m")), ("c", wait(duration="1m"))))
        ids = [schedules(visitor.does("product_viewed"))[0].id]
        ids += [schedules(visitor.wake())[0].id for _ in range(2)]
        assert len(set(ids)) == 3
        for wake_up_id in ids:
            assert 1 <= len(wake_up_id) <= 64
            assert all(char.isalnum() or char in "-_." for char in wake_up_id)


class TestWaitFor:
    def test_happened(self) -> None:
        visitor = branching(wait_for("form_dismissed"))
        visitor.does("product_viewed")
        pending = visitor.pending()
        decision = visitor.does("form_dismissed", at(30))
        assert steps(decision) == [("node", "happened"), ("yes_path", "sent"), ("done", "completed")]
        assert CancelWakeUp(wake_up_id=pending.id, due_at=pending.due_at) in decision.effects
        # The timeout still fires later: stale.
        assert visitor.feed(pending).note == "stale_wake_up"

    def test_timed_out(self) -> None:
        visitor = branching(wait_for("form_dismissed", timeout="PT30M"))
        decision = visitor.does("product_viewed")
        [wake_up] = schedules(decision)
        assert wake_up.due_at == at(minutes=30)
        assert steps(visitor.wake()) == [("node", "timed_out"), ("no_path", "sent"), ("done", "completed")]

    def test_property_conditions(self) -> None:
        visitor = branching(wait_for("form_submitted", where=[{"property": "phone", "op": "exists"}]))
        visitor.does("product_viewed")
        assert visitor.does("form_submitted", at(5)).note == "no_effect"
        assert steps(visitor.does("form_submitted", at(6), phone="0901234567"))[0] == ("node", "happened")

    def test_correlated_with_the_trigger(self) -> None:
        visitor = branching(wait_for("add_to_cart", match_property="product_id"))
        visitor.does("product_viewed", T0, product_id="A")
        assert visitor.does("add_to_cart", at(5), product_id="B").note == "no_effect"
        assert steps(visitor.does("add_to_cart", at(6), product_id="A"))[0] == ("node", "happened")

    def test_a_click_on_the_previous_message(self) -> None:
        visitor = branching(wait_for(match_message="push"), ("push", web_push()), view=profile(reachable=("web_push",)))
        visitor.does("product_viewed")
        assert visitor.enrollment is not None
        enrollment_id = visitor.enrollment.id
        other_node = {"journey_id": "test-journey", "node_id": "other", "enrollment_id": enrollment_id}
        assert visitor.does("message_clicked", at(60), **other_node).note == "no_effect"
        other_journey = {"journey_id": "another", "node_id": "push"}
        assert visitor.does("message_clicked", at(61), **other_journey).note == "no_effect"
        older_run = {"journey_id": "test-journey", "node_id": "push", "enrollment_id": "enr_old"}
        assert visitor.does("message_clicked", at(62), **older_run).note == "no_effect"
        this_one = {"journey_id": "test-journey", "node_id": "push", "enrollment_id": enrollment_id}
        assert steps(visitor.does("message_clicked", at(63), **this_one))[0] == ("node", "happened")

    def test_an_event_after_the_deadline_does_not_count(self) -> None:
        visitor = branching(wait_for("form_dismissed", timeout="PT1M"))
        visitor.does("product_viewed")
        # Stamped after the timeout but processed before the timeout's wake-up arrived.
        assert visitor.does("form_dismissed", at(61)).note == "no_effect"
        assert steps(visitor.wake(at(62)))[0] == ("node", "timed_out")

    def test_an_event_from_before_the_wait_does_not_count(self) -> None:
        visitor = branching(wait_for("form_dismissed"), ("pause", wait(duration="1m")))
        visitor.does("product_viewed")
        visitor.wake()  # arrives at the wait_for at T0 + 1 min
        assert visitor.does("form_dismissed", at(30)).note == "no_effect"


class TestCondition:
    @pytest.mark.parametrize(
        ("check", "view", "answer"),
        [
            ({"kind": "profile", "attribute": "city", "value": "Hà Nội"}, profile(city="Hà Nội"), "yes"),
            ({"kind": "profile", "attribute": "city", "value": "Hà Nội"}, profile(city="Huế"), "no"),
            ({"kind": "profile", "attribute": "tags", "op": "contains", "value": "vip"}, profile(tags=("vip",)), "yes"),
            ({"kind": "reachable", "channel": "web_push"}, profile(reachable=("web_push",)), "yes"),
            ({"kind": "reachable", "channel": "email"}, profile(reachable=("web_push",)), "no"),
            ({"kind": "reachable", "channel": "onsite_push"}, profile(), "yes"),
            ({"kind": "reachable", "channel": "webhook"}, profile(), "yes"),
            (
                {"kind": "event_history", "event": "purchase", "within": "P30D"},
                profile(history={"purchase": [T0 - timedelta(days=29)]}),
                "yes",
            ),
            (
                {"kind": "event_history", "event": "purchase", "within": "P30D"},
                profile(history={"purchase": [T0 - timedelta(days=31)]}),
                "no",
            ),
            (
                {"kind": "event_history", "event": "product_viewed", "within": "P7D", "min_count": 3},
                profile(history={"product_viewed": [T0 - timedelta(days=d) for d in (1, 2)]}),
                "no",
            ),
            (
                {"kind": "event_history", "event": "product_viewed", "within": "P7D", "min_count": 3},
                profile(history={"product_viewed": [T0 - timedelta(days=d) for d in (1, 2, 3)]}),
                "yes",
            ),
        ],
    )
    def test_checks(self, check: dict[str, Any], view: ProfileView, answer: str) -> None:
        visitor = visitor_with({"type": "condition", "conditions": [check], "yes": "yes_path", "no": "no_path"}, view)
        decision = visitor.does("product_viewed")
        assert ("node", "branched") in steps(decision)
        assert [r.detail for r in decision.effects if getattr(r, "outcome", None) == "branched"] == [answer]
        assert (f"{answer}_path", "sent") in steps(decision)

    def test_trigger_property(self) -> None:
        node = {
            "type": "condition",
            "conditions": [{"kind": "trigger", "property": "price", "op": "gte", "value": 500_000}],
            "yes": "yes_path",
            "no": "no_path",
        }
        assert ("yes_path", "sent") in steps(visitor_with(node).does("product_viewed", T0, price=750_000))
        assert ("no_path", "sent") in steps(visitor_with(node).does("product_viewed", T0, price=350_000))

    @pytest.mark.parametrize(("match", "answer"), [("all", "no_path"), ("any", "yes_path")])
    def test_all_or_any(self, match: str, answer: str) -> None:
        node = {
            "type": "condition",
            "match": match,
            "conditions": [
                {"kind": "reachable", "channel": "onsite_push"},
                {"kind": "reachable", "channel": "sms"},
            ],
            "yes": "yes_path",
            "no": "no_path",
        }
        assert (answer, "sent") in steps(visitor_with(node).does("product_viewed"))


class TestSplit:
    three_way = {
        "type": "split",
        "branches": [
            {"name": "a", "weight": 1, "next": "yes_path"},
            {"name": "b", "weight": 1, "next": "no_path"},
            {"name": "c", "weight": 2, "next": "done"},
        ],
    }

    def branch_of(self, profile_id: str, node: dict[str, Any] | None = None) -> str | None:
        visitor = visitor_with(node or self.three_way, profile(profile_id))
        decision = visitor.does("product_viewed")
        return next(r.detail for r in decision.effects if getattr(r, "node_id", None) == "node")

    def test_the_same_visitor_always_gets_the_same_branch(self) -> None:
        for index in range(20):
            assert self.branch_of(f"p{index}") == self.branch_of(f"p{index}")

    def test_weights_are_respected(self) -> None:
        counts = Counter(self.branch_of(f"visitor-{index}") for index in range(800))
        assert set(counts) == {"a", "b", "c"}
        assert 150 <= counts["a"] <= 250
        assert 150 <= counts["b"] <= 250
        assert 330 <= counts["c"] <= 470

    def test_split_points_are_independent_per_node_and_journey(self) -> None:
        points = {split_point("p1", journey_id, node) for journey_id in ("j1", "j2") for node in ("s1", "s2")}
        assert len(points) == 4
        assert all(0 <= point < 1 for point in points)

    def holdout_visitor(self, **fields: Any) -> Visitor:
        node = {
            "type": "split",
            "branches": [{"name": "a", "weight": 1, "next": "yes_path"}, {"name": "b", "weight": 1, "next": "no_path"}],
            "holdout": {"weight": 2},
        }
        for index in range(100):
            candidate = visitor_with(node, profile(f"h{index}"), **fields)
            if split_point(f"h{index}", "test-journey", "node") >= 0.5:
                return candidate
        raise AssertionError("no visitor fell into the holdout")

    def test_holdout_waits_out_the_goal_window_without_messages(self) -> None:
        visitor = self.holdout_visitor(goal={"events": [{"event": "purchase"}], "within": "P3D"})
        decision = visitor.does("product_viewed")
        assert steps(decision) == [("start", "entered"), ("node", "holdout")]
        assert sends(decision) == []
        assert visitor.enrollment is not None
        assert visitor.enrollment.holdout
        [wake_up] = schedules(decision)
        assert wake_up.due_at == at(days=3)
        assert steps(visitor.wake()) == [("node", "completed")]
        assert visitor.status == "completed"

    def test_holdout_conversions_count(self) -> None:
        visitor = self.holdout_visitor(goal={"events": [{"event": "purchase"}], "within": "P3D"})
        visitor.does("product_viewed")
        assert steps(visitor.does("purchase", at(days=1))) == [("node", "converted")]
        assert visitor.status == "converted"

    def test_holdout_without_a_goal_window_finishes_at_once(self) -> None:
        visitor = self.holdout_visitor()
        assert steps(visitor.does("product_viewed")) == [
            ("start", "entered"),
            ("node", "holdout"),
            ("node", "completed"),
        ]


class TestSend:
    def test_message(self) -> None:
        visitor = Visitor(flow(("push", web_push("Váy nữ phong cách hè")), version=3), profile(reachable=("web_push",)))
        decision = visitor.does("product_viewed", T0, product_id="vay-nu-he")
        [message] = sends(decision)
        assert visitor.enrollment is not None
        assert message.channel == "web_push"
        assert message.content is not None
        assert message.content.title == "Váy nữ phong cách hè"
        assert message.trigger_properties == {"product_id": "vay-nu-he"}
        assert (message.journey_id, message.journey_version, message.node_id) == ("test-journey", 3, "push")
        assert message.idempotency_key == idempotency_key("test-journey", 3, visitor.enrollment.id, "push", 1)
        [sent] = [r for r in decision.effects if getattr(r, "outcome", None) == "sent"]
        assert sent.channel == "web_push"  # type: ignore[union-attr]
        assert sent.idempotency_key == message.idempotency_key  # type: ignore[union-attr]

    def test_a_node_visited_again_gets_a_new_key(self) -> None:
        loop = journey(
            {
                "start": {"type": "trigger", "event": "product_viewed", "next": "push"},
                "push": {**onsite_push(), "next": "pause"},
                "pause": {"type": "wait", "duration": "P1D", "next": "again"},
                "again": {
                    "type": "condition",
                    "conditions": [{"kind": "profile", "attribute": "stop", "op": "exists"}],
                    "yes": "done",
                    "no": "push",
                },
                "done": EXIT,
            }
        )
        visitor = Visitor(loop)
        first = sends(visitor.does("product_viewed"))[0]
        second = sends(visitor.wake())[0]
        assert first.occurrence == 1
        assert second.occurrence == 2
        assert first.idempotency_key != second.idempotency_key

    def test_template_reference(self) -> None:
        visitor = Visitor(
            flow(("mail", {"type": "send", "channel": "email", "template": "templates/welcome.liquid"})),
            profile(reachable=("email",)),
        )
        [message] = sends(visitor.does("product_viewed"))
        assert message.template == "templates/welcome.liquid"
        assert message.content is None

    def test_unreachable_visitors_are_skipped(self) -> None:
        visitor = Visitor(flow(("push", web_push())))
        decision = visitor.does("product_viewed")
        assert sends(decision) == []
        assert steps(decision) == [("start", "entered"), ("push", "skipped"), ("done", "completed")]
        assert [r.detail for r in decision.effects if getattr(r, "outcome", None) == "skipped"] == ["unreachable"]

    def test_a_skipped_send_puts_message_suppressed_on_the_visitors_timeline_once(self) -> None:
        visitor = Visitor(flow(("mail", {"type": "send", "channel": "email", "content": {"subject": "Ưu đãi"}})))
        viewed = event("product_viewed")
        decision = visitor.feed(viewed)
        [outcome] = [effect for effect in decision.effects if isinstance(effect, RecordOutcomeEvent)]
        [skipped] = [step for step in records(decision) if step.outcome == "skipped"]
        assert outcome.event == "message_suppressed"
        assert outcome.profile_id == "p1"
        assert outcome.at == T0
        # The shape send gives the outcomes it records, so match_message finds it.
        assert outcome.properties == {
            "message_id": skipped.idempotency_key,
            "journey_id": "test-journey",
            "journey_version": 1,
            "node_id": "mail",
            "enrollment_id": visitor.enrollment.id if visitor.enrollment else None,
            "channel": "email",
            "category": "marketing",
            "reason": "unreachable",
        }
        assert outcome.event_id == f"{skipped.idempotency_key}:message_suppressed"
        assert skipped.channel == "email"
        # The same input again changes nothing, so nothing is recorded twice.
        assert not visitor.feed(viewed).changed

    def test_quiet_hours_skip_and_frequency_caps_say_why_they_suppressed(self) -> None:
        quiet = flow(
            ("push", web_push()),
            quiet_hours={"start": "09:00", "end": "12:00", "behaviour": "skip"},
        )
        reasons = [
            effect.properties["reason"]
            for effect in Visitor(quiet, profile(reachable=("web_push",), timezone=HCM)).does("product_viewed").effects
            if isinstance(effect, RecordOutcomeEvent)
        ]
        assert reasons == ["quiet_hours"]
        capped = flow(
            ("first", web_push("Một")),
            ("second", web_push("Hai")),
            frequency_cap={"max_sends": 1, "period": "P1D", "channels": ["web_push"]},
        )
        decision = Visitor(capped, profile(reachable=("web_push",))).does("product_viewed")
        assert [m.node_id for m in sends(decision)] == ["first"]
        assert [
            (effect.properties["node_id"], effect.properties["reason"])
            for effect in decision.effects
            if isinstance(effect, RecordOutcomeEvent)
        ] == [("second", "frequency_cap")]

    def test_a_transactional_email_needs_an_address_not_marketing_consent(self) -> None:
        order = {"type": "send", "channel": "email", "category": "transactional", "content": {"subject": "Đơn hàng"}}
        promotion = {"type": "send", "channel": "email", "content": {"subject": "Giảm 20%"}}
        unsubscribed = ProfileView(id="p1", deliverable_channels=frozenset({"email"}))

        [message] = sends(Visitor(flow(("order", order)), unsubscribed).does("product_viewed"))
        assert message.category == "transactional"
        assert sends(Visitor(flow(("promo", promotion)), unsubscribed).does("product_viewed")) == []
        no_address = Visitor(flow(("order", order)), profile())
        assert sends(no_address.does("product_viewed")) == []


class TestUpdate:
    def test_changes_the_profile_and_later_nodes_see_it(self) -> None:
        node = {
            "type": "update",
            "set_attributes": {"interested_in": "vay"},
            "add_tags": ["warm_lead"],
            "lifecycle_stage": "lead",
        }
        visitor = branching(
            {
                "type": "condition",
                "conditions": [
                    {"kind": "profile", "attribute": "tags", "op": "contains", "value": "warm_lead"},
                    {"kind": "profile", "attribute": "lifecycle_stage", "value": "lead"},
                    {"kind": "profile", "attribute": "interested_in", "value": "vay"},
                ],
                "yes": "yes_path",
                "no": "no_path",
            },
            ("mark", node),
        )
        decision = visitor.does("product_viewed")
        [update] = [effect for effect in decision.effects if isinstance(effect, UpdateProfile)]
        assert update == UpdateProfile(
            profile_id="p1",
            journey_id="test-journey",
            node_id="mark",
            set_attributes={"interested_in": "vay"},
            add_tags=["warm_lead"],
            lifecycle_stage="lead",
        )
        assert ("mark", "updated") in steps(decision)
        assert ("yes_path", "sent") in steps(decision)

    def test_apply_to_removes_and_adds_tags(self) -> None:
        change = UpdateProfile(profile_id="p1", journey_id="j", node_id="n", add_tags=["b", "c"], remove_tags=["a"])
        assert change.apply_to(profile(tags=("a", "b"))).tags == ["b", "c"]


class TestExit:
    def test_exit_completes(self) -> None:
        visitor = Visitor(flow())
        decision = visitor.does("product_viewed")
        assert steps(decision) == [("start", "entered"), ("done", "completed")]
        assert visitor.enrollment is not None
        assert visitor.enrollment.status == "completed"
        assert visitor.enrollment.finished_at == T0
        assert visitor.enrollment.current_node is None
        assert visitor.enrollment.pending_wake_up is None

    def test_stage_tags_are_recorded(self) -> None:
        visitor = Visitor(
            journey(
                {
                    "start": {"type": "trigger", "event": "product_viewed", "next": "offer", "stage": "interest"},
                    "offer": {**onsite_push(), "next": "done", "stage": "desire"},
                    "done": {"type": "exit", "stage": "action"},
                },
                stage_model="AIDA",
            )
        )
        decision = visitor.does("product_viewed")
        assert [getattr(r, "stage", None) for r in decision.effects if getattr(r, "type", "") == "record_step"] == [
            "interest",
            "desire",
            "action",
        ]
