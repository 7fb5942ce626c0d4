"""Engine throughput: the pure journey engine with 100 active journeys over synthetic stream records.

The figure is a ratio, measured in one process with the passes interleaved: the time to run the
stream through the engine (as evaluate's service does it, minus the I/O) over the time to merely
deserialize the same records (``TrackedEvent.model_validate_json`` of the item body, then
``EventInput.from_tracked``), which every evaluate invocation pays anyway. A ratio of 3 means the
engine costs twice what reading the records costs.

The 100 journeys are the four templates in journeys/, each copied 25 times with its own id. They are
spread over ten "event families": the copies in family ``g`` listen to ``product_viewed_g``,
``add_to_cart_g``... (family 0 keeps the real names), and each synthetic visitor's events belong to
one family. So an event is relevant to a handful of the 100 journeys (a product view: the two or
three services-consult copies of its family; a purchase: every goal in its family), as on a site
where journeys target different sections or products.

Three passes over the same records:
- ``deserialize``: parse each record, nothing else (the baseline);
- ``select``: parse, then pick the journeys the service offers the event to (its open enrollments,
  and the active journeys whose ``relevant_events`` name it), computed the way
  ``JourneyService._journeys_for`` does, per event;
- ``engine``: parse, select, run ``evaluate`` for each, keep the enrollments in memory and deliver
  the wake-ups the engine asks for when they fall due (as TimersQueue would), like ``simulate``.
"""

from __future__ import annotations

import copy
import gc
import heapq
import itertools
import random
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from footprint.engine import (
    EventInput,
    ProfileView,
    ScheduleWakeUp,
    SendMessage,
    WakeUp,
    evaluate,
    relevant_events,
)
from footprint.engine.state import Enrollment
from footprint.models.events import TrackedEvent
from footprint.models.journey import Journey, parse_journey, read_journey_yaml
from footprint.models.profile import Profile, fold_event, new_profile

JOURNEYS_DIR = Path(__file__).resolve().parents[1] / "journeys"
TEMPLATES = ("services-consult", "cart-abandonment", "welcome-first-visit", "web-push-click-no-purchase")
FAMILIES = 10
START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 08:00 in Ho Chi Minh City
SOURCE_ID = "bench-source"

# What visitors do, with weights: mostly browsing; now and then something a journey listens to.
EVENT_MIX: tuple[tuple[str, int], ...] = (
    ("page_viewed", 34),
    ("product_viewed", 26),
    ("session_started", 8),
    ("add_to_cart", 8),
    ("form_dismissed", 5),
    ("message_clicked", 5),
    ("purchase", 4),
    ("web_push_subscribed", 3),
    ("cart_emptied", 2),
    ("search", 5),
)
PRODUCTS = [f"san-pham-{number:02d}" for number in range(20)]


@dataclass(frozen=True)
class StreamRecord:
    """What evaluate reads of one EventsTable stream record: the item body, and whose it is."""

    visitor: str
    record: dict[str, Any]

    @property
    def body(self) -> str:
        return str(self.record["dynamodb"]["NewImage"]["body"]["S"])


@dataclass
class EngineCounts:
    """What the engine pass did (the same in every repetition: the inputs are fixed)."""

    records: int = 0
    records_offered: int = 0  # records offered to at least one journey
    event_evaluations: int = 0
    wake_up_evaluations: int = 0
    changed: int = 0
    sends: int = 0
    entries: int = 0
    # Evaluations of an open enrollment for an event its journey does not name (always "no change").
    unnamed_event_evaluations: int = 0
    unnamed_event_changes: int = 0

    @property
    def evaluations(self) -> int:
        return self.event_evaluations + self.wake_up_evaluations


@dataclass(frozen=True)
class EngineResult:
    journeys: int
    records: int
    visitors: int
    repeats: int
    counts: EngineCounts
    engine_ratios: list[float]  # engine pass / deserialize pass, one per repetition
    select_ratios: list[float]  # select pass / deserialize pass
    cached_select_ratios: list[float]  # select pass with relevant_events computed once per journey / deserialize
    profile_view_ratios: list[float]  # deserialize + one ProfileView.from_profile per record / deserialize
    # Medians per pass, for the per-call figure and the rate below only (the headline is a ratio).
    deserialize_seconds: float
    select_seconds: float
    engine_seconds: float

    @property
    def engine_ratio(self) -> float:
        return statistics.median(self.engine_ratios)

    @property
    def select_ratio(self) -> float:
        return statistics.median(self.select_ratios)

    @property
    def cached_select_ratio(self) -> float:
        return statistics.median(self.cached_select_ratios)

    @property
    def profile_view_in_deserializations(self) -> float:
        """One ``ProfileView.from_profile`` (the service builds one per evaluate call) in deserializations."""
        return statistics.median(self.profile_view_ratios) - 1

    @property
    def evaluate_call_in_deserializations(self) -> float:
        """One evaluate() call (and its bookkeeping, selection excluded) in record deserializations."""
        per_record = self.deserialize_seconds / self.records
        engine_only = max(0.0, self.engine_seconds - self.select_seconds)
        return engine_only / self.counts.evaluations / per_record if self.counts.evaluations else 0.0

    @property
    def evaluations_per_second(self) -> float:
        """Machine-dependent; printed for orientation, never compared across machines."""
        return self.counts.evaluations / self.engine_seconds if self.engine_seconds else 0.0


# ------------------------------------------------------------------------------------ inputs


def journey_variants(count: int = 100, families: int = FAMILIES) -> list[Journey]:
    """``count`` active journeys: the templates in turn, each copy with its id and event family."""
    templates = {
        name: read_journey_yaml((JOURNEYS_DIR / f"{name}.yaml").read_text(encoding="utf-8"), origin=name)
        for name in TEMPLATES
    }
    journeys = []
    for index in range(count):
        name = TEMPLATES[index % len(TEMPLATES)]
        family = (index // len(TEMPLATES)) % families
        data = copy.deepcopy(templates[name])
        assert isinstance(data, dict)
        data["id"] = f"{name}-{index:03d}"
        data["status"] = "active"
        journeys.append(parse_journey(_rename_events(data, family), origin=data["id"]))
    return journeys


def family_event(name: str, family: int) -> str:
    return name if family == 0 else f"{name}_f{family}"


def _rename_events(data: Any, family: int) -> Any:
    """Every ``event:`` value of a journey (trigger, unless, wait_for, exit, goal, history) moved to a family."""
    if isinstance(data, dict):
        return {
            key: family_event(value, family)
            if key == "event" and isinstance(value, str)
            else _rename_events(value, family)
            for key, value in data.items()
        }
    if isinstance(data, list):
        return [_rename_events(item, family) for item in data]
    return data


def synthetic_stream(records: int, journeys: list[Journey], seed: int = 7) -> list[StreamRecord]:
    """``records`` stream records of about records/12 visitors, in timestamp order, as evaluate gets them."""
    rng = random.Random(seed)
    services_ids: dict[int, list[str]] = {}
    for index, journey in enumerate(journeys):
        if journey.id.startswith("services-consult"):
            services_ids.setdefault((index // len(TEMPLATES)) % FAMILIES, []).append(journey.id)
    visitors = max(2, records // 12)
    names = [name for name, _ in EVENT_MIX]
    weights = [weight for _, weight in EVENT_MIX]
    timeline: list[tuple[datetime, int, TrackedEvent]] = []
    counter = itertools.count()
    per_visitor = _split(records, visitors, rng)
    for visitor_index, count in enumerate(per_visitor):
        visitor = f"visitor-{visitor_index:05d}"
        family = visitor_index % FAMILIES
        moment = START + timedelta(seconds=rng.uniform(0, 3 * 86_400))
        for position in range(count):
            name = "session_started" if position == 0 else rng.choices(names, weights)[0]
            properties = _properties(name, position, rng, services_ids.get(family, ["services-consult"]))
            event = TrackedEvent(
                source_id=SOURCE_ID,
                message_id=f"{visitor}-{position:04d}",
                type="page" if name == "page_viewed" else "track",
                event=family_event(name, family),
                anonymous_id=visitor,
                properties=properties,
                context={"timezone": "Asia/Ho_Chi_Minh", "page": {"url": "https://shop.example/p"}},
                timestamp=moment,
                received_at=moment + timedelta(milliseconds=rng.randint(20, 400)),
            )
            timeline.append((moment, next(counter), event))
            moment += timedelta(seconds=rng.choice((4, 9, 16, 30, 75, 240, 900, 3_600, 20_000)))
    timeline.sort(key=lambda entry: (entry[0], entry[1]))
    return [StreamRecord(event.anonymous_id or "", stream_record(event)) for _, _, event in timeline]


def _split(total: int, parts: int, rng: random.Random) -> list[int]:
    """``total`` events over ``parts`` visitors, unevenly (a few visitors browse a lot)."""
    weights = [rng.paretovariate(1.5) for _ in range(parts)]
    scale = total / sum(weights)
    counts = [max(1, int(weight * scale)) for weight in weights]
    while sum(counts) > total:
        counts[counts.index(max(counts))] -= 1
    while sum(counts) < total:
        counts[rng.randrange(parts)] += 1
    return counts


def _properties(name: str, position: int, rng: random.Random, services_ids: list[str]) -> dict[str, Any]:
    product = rng.choice(PRODUCTS)
    match name:
        case "session_started":
            return {"first_visit": position == 0}
        case "product_viewed":
            return {
                "product_id": product,
                "name": f"Sản phẩm {product}",
                "price": 459_000,
                "dwell_seconds": rng.randint(3, 40),
            }
        case "add_to_cart" | "purchase":
            return {"product_id": product, "price": 459_000, "currency": "VND"}
        case "form_dismissed":
            return {"journey_id": rng.choice(services_ids), "node_id": "consult_form"}
        case "message_clicked":
            return {"journey_id": rng.choice(services_ids), "node_id": "web_push_reminder", "channel": "web_push"}
        case "web_push_subscribed":
            return {"subscription": {"endpoint": "https://push.example/x", "keys": {"p256dh": "k", "auth": "a"}}}
        case "search":
            return {"query": rng.choice(("váy", "áo", "giày"))}
    return {"path": f"/collections/{product}"}


def stream_record(event: TrackedEvent) -> dict[str, Any]:
    """An EventsTable INSERT record as Lambda delivers it (the attributes evaluate reads)."""
    body = event.model_dump_json()
    return {
        "eventID": event.message_id,
        "eventName": "INSERT",
        "eventSource": "aws:dynamodb",
        "dynamodb": {
            "Keys": {
                "pk": {"S": f"visitor#{event.source_id}#{event.visitor_id}"},
                "sk": {"S": f"event#{event.message_id}"},
            },
            "NewImage": {
                "pk": {"S": f"visitor#{event.source_id}#{event.visitor_id}"},
                "sk": {"S": f"event#{event.message_id}"},
                "message_id": {"S": event.message_id},
                "type": {"S": event.type},
                "body": {"S": body},
            },
            "SizeBytes": len(body) + 120,
            "StreamViewType": "NEW_IMAGE",
        },
    }


def profile_views(stream: Iterable[StreamRecord], seed: int = 11) -> dict[str, ProfileView]:
    """A fixed view per visitor: half can get web push, a third have an email address."""
    rng = random.Random(seed)
    views: dict[str, ProfileView] = {}
    for item in stream:
        if item.visitor in views:
            continue
        reachable = {channel for channel, share in (("web_push", 0.5), ("email", 0.33)) if rng.random() < share}
        attributes: dict[str, Any] = {
            "last_viewed_product": {"product_id": "san-pham-01", "name": "Váy", "url": "/p/1"}
        }
        views[item.visitor] = ProfileView(
            id=item.visitor,
            timezone="Asia/Ho_Chi_Minh",
            attributes=attributes,
            reachable_channels=frozenset(reachable),
        )
    return views


# ------------------------------------------------------------------------------------ passes


def deserialize(item: StreamRecord) -> EventInput:
    """What evaluate does with every record before any journey is looked at."""
    return EventInput.from_tracked(TrackedEvent.model_validate_json(item.body))


def deserialize_pass(stream: list[StreamRecord]) -> int:
    return sum(1 for item in stream if deserialize(item).id)


def select_pass(stream: list[StreamRecord], journeys: list[Journey]) -> int:
    """Parse and choose journeys per event as the service does (no open enrollments: a lower bound)."""
    offered = 0
    for item in stream:
        event = deserialize(item)
        offered += sum(1 for journey in journeys if event.name in relevant_events(journey))
    return offered


def stored_profiles(stream: Iterable[StreamRecord]) -> dict[str, Profile]:
    """Each visitor's profile with all their events folded in (as ProfilesTable would hold it at the end)."""
    profiles: dict[str, Profile] = {}
    for item in stream:
        event = TrackedEvent.model_validate_json(item.body)
        profiles[item.visitor] = fold_event(profiles.get(item.visitor) or new_profile(item.visitor, SOURCE_ID), event)
    return profiles


def profile_view_pass(stream: list[StreamRecord], profiles: dict[str, Profile]) -> int:
    """Parse, and build the engine's view of the visitor's profile once per record."""
    return sum(1 for item in stream if deserialize(item).id and ProfileView.from_profile(profiles[item.visitor]).id)


def cached_select_pass(stream: list[StreamRecord], journeys: list[Journey]) -> int:
    """The same choice with each journey's event names computed once (what a cache in the catalog would give)."""
    names = [(journey, relevant_events(journey)) for journey in journeys]
    offered = 0
    for item in stream:
        event = deserialize(item)
        offered += sum(1 for _, relevant in names if event.name in relevant)
    return offered


@dataclass(order=True)
class _Due:
    at: datetime
    order: int
    visitor: str = field(compare=False)
    wake_up: WakeUp = field(compare=False)


def engine_pass(stream: list[StreamRecord], journeys: list[Journey], views: dict[str, ProfileView]) -> EngineCounts:
    """Every record through the engine, with in-memory enrollments and wake-ups delivered when due."""
    counts = EngineCounts()
    by_id = {journey.id: journey for journey in journeys}
    named = {journey.id: relevant_events(journey) for journey in journeys}  # for the counts only
    enrollments: dict[str, dict[str, Enrollment]] = {}
    due: list[_Due] = []
    order = itertools.count()

    def run(journey: Journey, visitor: str, engine_input: EventInput | WakeUp, now: datetime) -> None:
        mine = enrollments.setdefault(visitor, {})
        current = mine.get(journey.id)
        decision = evaluate(journey, current, engine_input, views[visitor], now)
        unnamed = isinstance(engine_input, EventInput) and engine_input.name not in named[journey.id]
        counts.unnamed_event_evaluations += unnamed
        if not decision.changed or decision.enrollment is None:
            return
        counts.changed += 1
        counts.unnamed_event_changes += unnamed
        if current is None or current.entry_seq != decision.enrollment.entry_seq:
            counts.entries += 1
        mine[journey.id] = decision.enrollment
        for effect in decision.effects:
            if isinstance(effect, ScheduleWakeUp):
                heapq.heappush(due, _Due(effect.wake_up.due_at, next(order), visitor, effect.wake_up))
            elif isinstance(effect, SendMessage):
                counts.sends += 1

    for item in stream:
        event = deserialize(item)
        while due and due[0].at <= event.timestamp:
            timer = heapq.heappop(due)
            counts.wake_up_evaluations += 1
            run(by_id[timer.wake_up.journey_id], timer.visitor, timer.wake_up, timer.at)
        counts.records += 1
        chosen = _journeys_for(event, enrollments.get(item.visitor, {}), journeys, by_id)
        if chosen:
            counts.records_offered += 1
        for journey in chosen:
            counts.event_evaluations += 1
            run(journey, item.visitor, event, event.timestamp)
    return counts


def _journeys_for(
    event: EventInput, mine: dict[str, Enrollment], journeys: list[Journey], by_id: dict[str, Journey]
) -> list[Journey]:
    """``JourneyService._journeys_for``: open enrollments, then active journeys that name the event."""
    chosen = [by_id[journey_id] for journey_id, enrollment in mine.items() if enrollment.is_open]
    seen = {journey.id for journey in chosen}
    chosen += [journey for journey in journeys if journey.id not in seen and event.name in relevant_events(journey)]
    return chosen


def _timed(work: Callable[[], object]) -> float:
    gc.collect()
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def run(records: int = 3_000, journeys: int = 100, repeats: int = 7) -> EngineResult:
    catalogue = journey_variants(journeys)
    stream = synthetic_stream(records, catalogue)
    views = profile_views(stream)
    profiles = stored_profiles(stream)
    counts = engine_pass(stream, catalogue, views)  # also warms every code path once
    times: dict[str, list[float]] = {}
    engine_ratios: list[float] = []
    select_ratios: list[float] = []
    cached_select_ratios: list[float] = []
    for repeat in range(repeats):
        # Interleaved, and the order flips every round, so drift (thermal, other load) hits both sides.
        passes: list[tuple[str, Callable[[], object]]] = [
            ("deserialize", lambda: deserialize_pass(stream)),
            ("select", lambda: select_pass(stream, catalogue)),
            ("select_cached", lambda: cached_select_pass(stream, catalogue)),
            ("profile_view", lambda: profile_view_pass(stream, profiles)),
            ("engine", lambda: engine_pass(stream, catalogue, views)),
        ]
        if repeat % 2:
            passes.reverse()
        timings = {name: _timed(work) for name, work in passes}
        for name, seconds in timings.items():
            times.setdefault(name, []).append(seconds)
        engine_ratios.append(timings["engine"] / timings["deserialize"])
        select_ratios.append(timings["select"] / timings["deserialize"])
        cached_select_ratios.append(timings["select_cached"] / timings["deserialize"])
    return EngineResult(
        journeys=len(catalogue),
        records=len(stream),
        visitors=len(views),
        repeats=repeats,
        counts=counts,
        engine_ratios=engine_ratios,
        select_ratios=select_ratios,
        cached_select_ratios=cached_select_ratios,
        profile_view_ratios=[
            value / base for value, base in zip(times["profile_view"], times["deserialize"], strict=True)
        ],
        deserialize_seconds=statistics.median(times["deserialize"]),
        select_seconds=statistics.median(times["select"]),
        engine_seconds=statistics.median(times["engine"]),
    )


def report(result: EngineResult) -> str:
    counts = result.counts
    lines = [
        "## Engine throughput",
        "",
        f"{result.journeys} active journeys, {result.records} stream records of {result.visitors} visitors; "
        f"median of {result.repeats} interleaved runs.",
        "",
        f"- engine pass / deserialize-only pass: **{result.engine_ratio:.2f}x** "
        f"(runs: {', '.join(f'{value:.2f}' for value in result.engine_ratios)})",
        f"- journey selection alone, as the service does it (relevant_events per journey per event) / "
        f"deserialize: **{result.select_ratio:.2f}x**; with each journey's event names computed once: "
        f"**{result.cached_select_ratio:.2f}x**",
        f"- one evaluate() call costs about **{result.evaluate_call_in_deserializations:.2f}** record deserializations",
        f"- one ProfileView.from_profile (JourneyService builds one per evaluate() call) costs about "
        f"**{result.profile_view_in_deserializations:.2f}** record deserializations",
        f"- evaluate() calls: {counts.evaluations} ({counts.event_evaluations} for events, "
        f"{counts.wake_up_evaluations} for wake-ups), {counts.evaluations / max(1, counts.records):.2f} per record",
        f"- records offered to at least one journey: {counts.records_offered} of {counts.records} "
        f"({_percent(counts.records_offered, counts.records)})",
        f"- decisions that changed an enrollment: {counts.changed}; entries: {counts.entries}; sends: {counts.sends}",
        "- evaluations of an open enrollment for an event its journey does not name: "
        f"{counts.unnamed_event_evaluations} "
        f"({_percent(counts.unnamed_event_evaluations, counts.evaluations)} of all), "
        f"of which changed something: {counts.unnamed_event_changes}",
        f"- on this machine: about {result.evaluations_per_second:,.0f} evaluate() calls per second "
        "(for orientation only; compare the ratios)",
    ]
    return "\n".join(lines)


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / max(1, whole):.0f} %"
