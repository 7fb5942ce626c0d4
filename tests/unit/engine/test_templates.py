"""The scenario templates under journeys/: each loads, and each plays out as the brief describes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from footprint.engine import EventInput, ProfileView, SimulatedEvent, Simulator, TimelineEntry, simulate
from footprint.engine.ids import split_point
from footprint.models.journey import load_journey_yaml
from tests.unit.engine.builders import JOURNEYS_DIR, T0, at, event, profile, template

TEMPLATES = sorted(path.stem for path in JOURNEYS_DIR.glob("*.yaml"))
VAY = {"product_id": "vay-nu-he", "name": "Váy nữ phong cách hè", "url": "/products/vay-nu-he", "price": 350_000}
HCM = "Asia/Ho_Chi_Minh"


def line(entries: list[TimelineEntry]) -> list[tuple[datetime, str, str]]:
    return [(entry.at, entry.node_id, entry.outcome) for entry in entries]


def visit(name: str, when: datetime, /, **properties: Any) -> SimulatedEvent:
    return SimulatedEvent(profile_id="p1", event=event(name, when, **properties))


def message_event(name: str, when: datetime, journey_id: str, node_id: str, /, **extra: Any) -> SimulatedEvent:
    return visit(name, when, journey_id=journey_id, node_id=node_id, **extra)


def test_there_are_templates() -> None:
    assert {"services-consult", "cart-abandonment", "welcome-first-visit", "web-push-click-no-purchase"} <= set(
        TEMPLATES
    )


@pytest.mark.parametrize("name", TEMPLATES)
def test_each_template_loads_and_is_named_after_its_file(name: str) -> None:
    journey = template(name)
    assert journey.id == name
    assert journey.status == "active"
    assert journey.default_timezone == HCM
    text = (JOURNEYS_DIR / f"{name}.yaml").read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=./schema.json")
    assert load_journey_yaml(text) == journey


@pytest.mark.parametrize("name", TEMPLATES)
def test_each_template_runs_to_the_end_for_an_engaged_visitor(name: str) -> None:
    journey = template(name)
    view = profile(
        reachable=("web_push", "email", "zalo_zns"),
        timezone=HCM,
        last_viewed_product={"product_id": "vay-nu-he", "name": "Váy nữ phong cách hè"},
    )
    trigger = journey.trigger
    properties: dict[str, Any] = {**VAY, "dwell_seconds": 20, "first_visit": True, "channel": "web_push"}
    timeline = simulate(
        journey, [SimulatedEvent(profile_id="p1", profile=view, event=event(trigger.event, T0, **properties))]
    )
    assert "entered" in {entry.outcome for entry in timeline}, [entry.describe() for entry in timeline]
    assert timeline[-1].outcome in ("completed", "converted", "exited")
    assert any(entry.outcome == "sent" for entry in timeline)


class TestServicesConsult:
    """Seed 000: dwell 15 s without add to cart -> form -> onsite push -> web push -> stronger web push."""

    journey = template("services-consult")
    subscriber = profile(reachable=("web_push",), timezone=HCM)

    def run(self, *events: SimulatedEvent, view: ProfileView | None = None) -> list[TimelineEntry]:
        return simulate(self.journey, events, profiles={"p1": view or self.subscriber})

    def viewed(self, when: datetime = T0) -> SimulatedEvent:
        return visit("product_viewed", when, dwell_seconds=15, **VAY)

    def test_the_reference_timeline(self) -> None:
        # Monday 10:00 in Ho Chi Minh City: the 15th second on "Váy nữ phong cách hè", no add to cart.
        timeline = self.run(
            self.viewed(),
            message_event("form_dismissed", at(40), "services-consult", "consult_form"),
        )
        entered = T0  # the reading time is behind us: nothing to wait for
        second_push = datetime(2025, 6, 4, 12, 30, tzinfo=UTC)  # Wednesday 19:30 local
        assert line(timeline) == [
            (entered, "viewed_without_cart", "entered"),
            (entered, "consult_form", "sent"),  # the consult form at once
            (entered, "await_form_response", "waiting"),
            (at(40), "await_form_response", "happened"),  # the visitor closes the form
            (at(40), "pause_after_dismiss", "waiting"),
            (at(50), "onsite_offer", "sent"),  # onsite push 10 s after the touchpoint
            (at(50), "can_web_push", "branched"),
            (at(50), "one_day_after_view", "waiting"),
            (entered + timedelta(days=1), "web_push_reminder", "sent"),  # web push 1 day after
            (entered + timedelta(days=1), "await_reminder_click", "waiting"),
            (entered + timedelta(days=2), "await_reminder_click", "timed_out"),  # ignored
            (entered + timedelta(days=2), "next_evening", "waiting"),
            (second_push, "web_push_stronger", "sent"),  # the stronger web push
            (second_push, "await_stronger_click", "waiting"),
            (second_push + timedelta(days=2), "await_stronger_click", "timed_out"),
            (second_push + timedelta(days=2), "done_ignored", "completed"),
        ]
        sent = [(entry.node_id, entry.channel) for entry in timeline if entry.outcome == "sent"]
        assert sent == [
            ("consult_form", "onsite_form"),
            ("onsite_offer", "onsite_push"),
            ("web_push_reminder", "web_push"),
            ("web_push_stronger", "web_push"),
        ]
        first_push = timeline[8].at
        assert timedelta(days=1) <= second_push - first_push <= timedelta(days=2)
        assert all(entry.message for entry in timeline if entry.outcome == "sent")

    def test_add_to_cart_while_reading_means_no_journey(self) -> None:
        # Added to the cart 7 s before the 15th second of reading: no form.
        timeline = self.run(visit("add_to_cart", at(-7), **VAY), self.viewed())
        assert line(timeline) == [(T0, "viewed_without_cart", "not_entered")]
        assert timeline[0].detail == "add_to_cart PT7S before"
        # Another product in the cart does not count.
        other = self.run(visit("add_to_cart", at(-7), product_id="ao-so-mi"), self.viewed())
        assert line(other)[:2] == [(T0, "viewed_without_cart", "entered"), (T0, "consult_form", "sent")]

    def test_add_to_cart_while_reading_that_arrives_late_stops_the_journey_unconverted(self) -> None:
        simulator = Simulator(self.journey, profiles={"p1": self.subscriber})
        simulator.add_event("p1", event("product_viewed", T0, dwell_seconds=15, **VAY))
        # Stamped during the reading time, held up by retries: it reaches evaluate after the form went out.
        simulator.add_input("p1", event("add_to_cart", at(-5), **VAY), at=at(20))
        timeline = simulator.run()
        assert line(timeline)[-1] == (at(20), "await_form_response", "exited")
        assert timeline[-1].detail == "add_to_cart PT5S before, arrived late"
        assert "converted" not in {entry.outcome for entry in timeline}
        assert [entry.node_id for entry in timeline if entry.outcome == "sent"] == ["consult_form"]

    def test_add_to_cart_after_the_form_converts(self) -> None:
        for product in (VAY, {"product_id": "ao-so-mi"}):
            timeline = self.run(self.viewed(), visit("add_to_cart", at(7), **product))
            assert line(timeline)[-1] == (at(7), "await_form_response", "converted")

    def test_submitting_the_form_ends_the_journey(self) -> None:
        timeline = self.run(self.viewed(), message_event("form_submitted", at(30), "services-consult", "consult_form"))
        assert line(timeline)[-1] == (at(30), "await_form_response", "exited")
        assert [entry.node_id for entry in timeline if entry.outcome == "sent"] == ["consult_form"]

    def test_a_click_on_the_first_web_push(self) -> None:
        clicked_at = at(days=1, hours=2)
        timeline = self.run(
            self.viewed(),
            message_event("form_dismissed", at(40), "services-consult", "consult_form"),
            message_event("message_clicked", clicked_at, "services-consult", "web_push_reminder"),
        )
        assert line(timeline)[-2:] == [
            (clicked_at, "await_reminder_click", "happened"),
            (clicked_at, "done_clicked", "completed"),
        ]

    def test_adding_to_cart_later_converts(self) -> None:
        timeline = self.run(self.viewed(), visit("add_to_cart", at(hours=3), **VAY))
        assert line(timeline)[-1] == (at(hours=3), "one_day_after_view", "converted")
        assert [entry.node_id for entry in timeline if entry.outcome == "sent"] == ["consult_form"]

    def test_a_return_visit_ends_the_journey(self) -> None:
        timeline = self.run(self.viewed(), visit("session_started", at(hours=20)))
        assert line(timeline)[-1] == (at(hours=20), "one_day_after_view", "exited")

    def test_no_web_push_subscription(self) -> None:
        timeline = self.run(
            self.viewed(),
            message_event("form_dismissed", at(40), "services-consult", "consult_form"),
            view=profile(timezone=HCM),
        )
        assert line(timeline)[-2:] == [(at(50), "can_web_push", "branched"), (at(50), "done_unreachable", "completed")]

    def test_the_form_left_open_skips_the_onsite_push(self) -> None:
        timeline = self.run(self.viewed())
        assert (at(minutes=30), "await_form_response", "timed_out") in line(timeline)
        assert "onsite_offer" not in [entry.node_id for entry in timeline]

    def test_a_late_night_view_holds_the_web_push_until_morning(self) -> None:
        night = datetime(2025, 6, 2, 15, 0, tzinfo=UTC)  # 22:00 local
        timeline = self.run(self.viewed(night))
        held = [entry for entry in timeline if entry.node_id == "web_push_reminder"]
        assert [(entry.outcome, entry.at) for entry in held] == [
            ("held", night + timedelta(days=1)),
            ("sent", datetime(2025, 6, 4, 1, 0, tzinfo=UTC)),  # 08:00 local
        ]

    def test_visitors_do_not_share_enrollments(self) -> None:
        simulator = Simulator(self.journey, profiles={"p1": self.subscriber, "p2": self.subscriber})
        simulator.add_event("p1", event("product_viewed", T0, dwell_seconds=15, **VAY))
        simulator.add_event("p2", event("product_viewed", at(5), dwell_seconds=15, **VAY))
        simulator.add_event("p2", event("add_to_cart", at(2), **VAY))  # while reading
        simulator.run(until=at(minutes=1))
        assert simulator.enrollments["p1", self.journey.id].status == "active"
        assert simulator.enrollments["p2", self.journey.id].status == "cancelled"


class TestCartAbandonment:
    journey = template("cart-abandonment")

    def visitor_in(self, branch: str) -> str:
        """A profile id that the reminder_test split puts in ``branch`` (45/45/10)."""
        bounds = {"discount": (0.0, 0.45), "free_shipping": (0.45, 0.9), "holdout": (0.9, 1.0)}[branch]
        for index in range(1000):
            point = split_point(f"p{index}", "cart-abandonment", "reminder_test")
            if bounds[0] <= point < bounds[1]:
                return f"p{index}"
        raise AssertionError(branch)

    def run(self, profile_id: str, *events: EventInput, **view: Any) -> list[TimelineEntry]:
        items = [SimulatedEvent(profile_id=profile_id, event=item) for item in events]
        return simulate(self.journey, items, profiles={profile_id: profile(profile_id, timezone=HCM, **view)})

    def test_discount_reminder_then_email(self) -> None:
        profile_id = self.visitor_in("discount")
        timeline = self.run(profile_id, event("add_to_cart", T0, **VAY), reachable=("web_push", "email"))
        sent = [(entry.at, entry.node_id) for entry in timeline if entry.outcome == "sent"]
        assert sent == [(at(minutes=30), "push_discount"), (at(minutes=30, days=1), "email_reminder")]
        assert [entry.detail for entry in timeline if entry.node_id == "reminder_test"] == ["discount"]
        assert timeline[-1].node_id == "done_reminded"

    def test_free_shipping_reminder_clicked(self) -> None:
        profile_id = self.visitor_in("free_shipping")
        click = event("message_clicked", at(hours=2), journey_id="cart-abandonment", channel="web_push")
        timeline = self.run(profile_id, event("add_to_cart", T0, **VAY), click, reachable=("web_push",))
        assert [entry.node_id for entry in timeline if entry.outcome == "sent"] == ["push_shipping"]
        assert line(timeline)[-1] == (at(hours=2), "done_clicked", "completed")

    def test_holdout_gets_nothing_but_is_measured(self) -> None:
        profile_id = self.visitor_in("holdout")
        timeline = self.run(
            profile_id, event("add_to_cart", T0, **VAY), event("purchase", at(days=2)), reachable=("web_push",)
        )
        assert [entry.outcome for entry in timeline] == ["entered", "waiting", "holdout", "converted"]

    def test_zalo_for_known_phones_without_email(self) -> None:
        profile_id = self.visitor_in("discount")
        timeline = self.run(profile_id, event("add_to_cart", T0, **VAY), reachable=("zalo_zns",))
        assert [(entry.node_id, entry.outcome) for entry in timeline if entry.node_id.startswith(("push", "zalo"))] == [
            ("push_discount_ok", "branched"),
            ("zalo_ok", "branched"),
            ("zalo_reminder", "sent"),
        ]

    def test_purchase_converts(self) -> None:
        timeline = self.run(self.visitor_in("discount"), event("add_to_cart", T0, **VAY), event("purchase", at(600)))
        assert line(timeline)[-1] == (at(600), "cool_off", "converted")


class TestWelcomeFirstVisit:
    journey = template("welcome-first-visit")

    def run(self, *events: EventInput, **view: Any) -> list[TimelineEntry]:
        items = [SimulatedEvent(profile_id="p1", event=item) for item in events]
        return simulate(self.journey, items, profiles={"p1": profile(timezone=HCM, **view)})

    def test_welcome_then_next_morning_push(self) -> None:
        timeline = self.run(event("session_started", T0, first_visit=True), reachable=("web_push",))
        assert [(entry.at, entry.node_id) for entry in timeline if entry.outcome in ("sent", "updated")] == [
            (at(20), "welcome_onsite"),
            (at(20), "mark_visitor"),
            (datetime(2025, 6, 3, 2, 0, tzinfo=UTC), "welcome_push"),  # 09:00 local, after 12 h
        ]

    def test_returning_visitors_are_not_welcomed(self) -> None:
        assert self.run(event("session_started", T0, first_visit=False)) == []

    def test_buyers_get_no_push(self) -> None:
        timeline = self.run(
            event("session_started", T0, first_visit=True),
            event("purchase", at(hours=1)),
            reachable=("web_push",),
        )
        assert line(timeline)[-1] == (at(hours=1), "next_morning", "converted")

    def test_only_once(self) -> None:
        timeline = self.run(
            event("session_started", T0, first_visit=True), event("session_started", at(days=3), first_visit=True)
        )
        assert [entry.outcome for entry in timeline].count("entered") == 1


class TestWebPushClickNoPurchase:
    journey = template("web-push-click-no-purchase")
    last_viewed = {"product_id": "vay-nu-he", "name": "Váy nữ phong cách hè", "url": "/products/vay-nu-he"}

    def run(self, *events: EventInput, **view: Any) -> list[TimelineEntry]:
        items = [SimulatedEvent(profile_id="p1", event=item) for item in events]
        return simulate(self.journey, items, profiles={"p1": profile(timezone=HCM, **view)})

    def test_email_about_the_last_viewed_product(self) -> None:
        timeline = self.run(
            event("message_clicked", T0, channel="web_push"),
            reachable=("email",),
            last_viewed_product=self.last_viewed,
        )
        sent = [entry for entry in timeline if entry.outcome == "sent"]
        assert [(entry.at, entry.node_id, entry.channel) for entry in sent] == [
            (at(hours=2), "email_last_viewed", "email")
        ]

    def test_a_purchase_within_two_hours_means_no_email(self) -> None:
        timeline = self.run(
            event("message_clicked", T0, channel="web_push"),
            event("purchase", at(minutes=45)),
            reachable=("email",),
            last_viewed_product=self.last_viewed,
        )
        assert line(timeline) == [(T0, "clicked_push", "pending"), (at(minutes=45), "clicked_push", "not_entered")]

    def test_clicks_on_other_channels_do_not_count(self) -> None:
        assert self.run(event("message_clicked", T0, channel="email"), reachable=("email",)) == []

    def test_no_email_consent(self) -> None:
        timeline = self.run(event("message_clicked", T0, channel="web_push"), last_viewed_product=self.last_viewed)
        assert [entry.outcome for entry in timeline if entry.outcome == "sent"] == []
        assert line(timeline)[-1] == (at(hours=2), "done", "completed")
