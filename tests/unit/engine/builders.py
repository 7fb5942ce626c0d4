"""Builders for engine tests: journeys from a few node dicts, events at offsets from T0, and a
minimal "service" that keeps one visitor's enrollment between inputs."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from footprint.engine import (
    Decision,
    Enrollment,
    EventInput,
    ProfileView,
    RecordStep,
    ScheduleWakeUp,
    SendMessage,
    WakeUp,
    evaluate,
)
from footprint.models.journey import Journey, load_journey_yaml, parse_journey

# Monday 2025-06-02 10:00 in Ho Chi Minh City (UTC+7), 03:00 UTC.
T0 = datetime(2025, 6, 2, 3, 0, tzinfo=UTC)
JOURNEYS_DIR = Path(__file__).resolve().parents[3] / "journeys"
_ids = itertools.count(1)


def at(seconds: float = 0, *, minutes: float = 0, hours: float = 0, days: float = 0) -> datetime:
    return T0 + timedelta(seconds=seconds, minutes=minutes, hours=hours, days=days)


def event(name: str, when: datetime = T0, /, *, id: str | None = None, **properties: Any) -> EventInput:
    return EventInput(id=id or f"evt-{next(_ids)}", name=name, properties=properties, timestamp=when)


def profile(
    id: str = "p1",
    *,
    reachable: tuple[str, ...] = (),
    timezone: str | None = None,
    tags: tuple[str, ...] = (),
    history: dict[str, list[datetime]] | None = None,
    **attributes: Any,
) -> ProfileView:
    return ProfileView(
        id=id,
        timezone=timezone,
        attributes=attributes,
        tags=list(tags),
        reachable_channels=frozenset(reachable),  # type: ignore[arg-type]
        event_history=history or {},
    )


EXIT = {"type": "exit"}


def journey(nodes: dict[str, dict[str, Any]], **fields: Any) -> Journey:
    data = {"id": "test-journey", "name": "Test journey", "status": "active", "version": 1, "nodes": nodes}
    return parse_journey({**data, **fields})


def flow(*steps: tuple[str, dict[str, Any]], trigger: dict[str, Any] | None = None, **fields: Any) -> Journey:
    """trigger -> steps in order -> ``done`` (an exit). A step without ``next`` (and of a kind that
    has one) goes on to the following step."""
    names = [name for name, _ in steps] + ["done"]
    nodes: dict[str, dict[str, Any]] = {
        "start": {"type": "trigger", "event": "product_viewed", **(trigger or {}), "next": names[0]}
    }
    for (name, node), following in zip(steps, names[1:], strict=True):
        single_next = node["type"] in ("wait", "send", "update")
        nodes[name] = {"next": following, **node} if single_next else node
    nodes["done"] = EXIT
    return journey(nodes, **fields)


def template(name: str) -> Journey:
    path = JOURNEYS_DIR / f"{name}.yaml"
    return load_journey_yaml(path.read_text(encoding="utf-8"), origin=path.name)


def web_push(title: str = "Xin chào") -> dict[str, Any]:
    return {"type": "send", "channel": "web_push", "content": {"title": title, "url": "/"}}


def onsite_push(title: str = "Ưu đãi") -> dict[str, Any]:
    return {"type": "send", "channel": "onsite_push", "content": {"title": title}}


class Visitor:
    """One visitor in one journey, driven input by input like the evaluate service would."""

    def __init__(self, journey_: Journey, profile_: ProfileView | None = None) -> None:
        self.journey = journey_
        self.profile = profile_ or profile()
        self.enrollment: Enrollment | None = None
        self.decisions: list[Decision] = []
        # The events named by the trigger's `unless`, kept as the service keeps them for a look-back.
        self.recent: list[EventInput] = []

    def feed(self, item: EventInput | WakeUp, now: datetime | None = None) -> Decision:
        moment = now or (item.timestamp if isinstance(item, EventInput) else item.due_at)
        unless = self.journey.trigger.unless
        if isinstance(item, EventInput) and unless is not None and item.name == unless.event:
            self.recent.append(item)
        decision = evaluate(self.journey, self.enrollment, item, self.profile, moment, recent=self.recent)
        self.decisions.append(decision)
        if decision.changed:
            self.enrollment = decision.enrollment
        return decision

    def does(self, name: str, when: datetime = T0, /, **properties: Any) -> Decision:
        return self.feed(event(name, when, **properties))

    def pending(self) -> WakeUp:
        assert self.enrollment is not None
        wake_up = self.enrollment.pending_wake_up_input()
        assert wake_up is not None, "the enrollment waits for no wake-up"
        return wake_up

    def wake(self, now: datetime | None = None) -> Decision:
        """Deliver the pending wake-up at its due time (or ``now``)."""
        return self.feed(self.pending(), now)

    @property
    def node(self) -> str | None:
        return self.enrollment.current_node if self.enrollment else None

    @property
    def status(self) -> str | None:
        return self.enrollment.status if self.enrollment else None


def steps(decision: Decision) -> list[tuple[str, str]]:
    """(node, outcome) of every RecordStep, in order."""
    return [(effect.node_id, effect.outcome) for effect in decision.effects if isinstance(effect, RecordStep)]


def records(decision: Decision) -> list[RecordStep]:
    return [effect for effect in decision.effects if isinstance(effect, RecordStep)]


def sends(decision: Decision) -> list[SendMessage]:
    return [effect for effect in decision.effects if isinstance(effect, SendMessage)]


def schedules(decision: Decision) -> list[WakeUp]:
    return [effect.wake_up for effect in decision.effects if isinstance(effect, ScheduleWakeUp)]
