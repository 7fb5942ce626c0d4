"""Engine throughput: the real ``JourneyService`` with 100 active journeys over synthetic stream records.

The figure is a ratio, measured in one process with the passes interleaved: the time to run the
stream through the journey service over the time to merely deserialize the same records
(``TrackedEvent.model_validate_json`` of the item body, then ``EventInput.from_tracked``), which every
evaluate invocation pays anyway. A ratio of 3 means the journeys cost twice what reading the records costs.

The 100 journeys are the four templates in journeys/, each copied 25 times with its own id. They are
spread over ten "event families": the copies in family ``g`` listen to ``product_viewed_g``,
``add_to_cart_g``... (family 0 keeps the real names), and each synthetic visitor's events belong to
one family. So an event is relevant to a handful of the 100 journeys (a product view: the two or
three services-consult copies of its family; a purchase: every goal in its family), as on a site
where journeys target different sections or products.

Passes over the same records:
- ``deserialize``: parse each record, nothing else (the baseline);
- ``profile_view``: parse, and build one ``ProfileView.from_profile`` of the visitor (the service
  builds one per input), to price that part;
- ``engine``: parse, then ``JourneyService.on_event`` with the visitor's profile, as evaluate calls it;
  before each record, every wake-up that has fallen due goes to ``JourneyService.on_wake_up`` (as
  TimersQueue would deliver it). The service is the real one; its ports are in-memory
  (``bench.journey_ports``), so the pass measures the service and the engine, not DynamoDB.

The profile each call gets is the visitor's profile with the record folded in (what ProfileService
hands the journeys in evaluate), computed once before timing: folding is the profile service's work,
not the journeys'. Half of the visitors can get web push and a third have an email address.

The counts (evaluate() calls, what changed, why the others changed nothing) come from one more engine
pass, untimed, that observes each evaluate() call the service makes; the timed passes run it untouched.
"""

from __future__ import annotations

import copy
import gc
import itertools
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

from bench.journey_ports import InMemoryPorts, StaticCatalog
from footprint.engine import Decision, Enrollment, EventInput, ProfileView, WakeUp, evaluate, relevant_events
from footprint.models.events import TrackedEvent
from footprint.models.journey import Journey, parse_journey, read_journey_yaml
from footprint.models.profile import Profile, WebPushSubscription, fold_event, profile_id_for
from footprint.services import journeys as journeys_service

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
    records_offered: int = 0  # records the service offered to at least one journey
    event_evaluations: int = 0
    wake_up_evaluations: int = 0
    changed: int = 0
    unchanged_notes: Counter[str] = field(default_factory=Counter)  # why a decision changed nothing
    # Evaluations for an event the journey does not name (the engine leaves it as it is).
    unnamed_event_evaluations: int = 0
    unnamed_event_changes: int = 0
    # Evaluations of a visitor outside the journey (no open enrollment) for an event the journey names,
    # but not as its trigger (a goal, an exit, an unless, a wait_for): only the trigger can enter them.
    not_trigger_evaluations: int = 0
    not_trigger_changes: int = 0
    # From the ports, at the end of the pass.
    steps: Counter[str] = field(default_factory=Counter)  # RecordStep outcomes
    messages: Counter[str] = field(default_factory=Counter)  # queued sends by channel
    profile_updates: int = 0
    wake_ups_scheduled: int = 0
    schedules_deleted: int = 0  # cancelled before they fired
    wake_ups_pending: int = 0  # not yet due when the stream ended
    open_enrollments: int = 0  # at the end

    @property
    def evaluations(self) -> int:
        return self.event_evaluations + self.wake_up_evaluations

    @property
    def inputs(self) -> int:
        """Calls into the service (records and delivered wake-ups): one ProfileView each."""
        return self.records + self.wake_up_evaluations

    @property
    def unchanged(self) -> int:
        return sum(self.unchanged_notes.values())

    def observe(
        self, journey: Journey, enrollment: Enrollment | None, engine_input: EventInput | WakeUp, decision: Decision
    ) -> None:
        """One evaluate() call the service made."""
        if decision.changed:
            self.changed += 1
        else:
            self.unchanged_notes[decision.note or "unknown"] += 1
        if isinstance(engine_input, WakeUp):
            self.wake_up_evaluations += 1
            return
        self.event_evaluations += 1
        if engine_input.name not in relevant_events(journey):
            self.unnamed_event_evaluations += 1
            self.unnamed_event_changes += decision.changed
        elif engine_input.name != journey.trigger.event and not (enrollment and enrollment.is_open):
            self.not_trigger_evaluations += 1
            self.not_trigger_changes += decision.changed

    def add_ports(self, ports: InMemoryPorts) -> None:
        self.steps = Counter(ports.steps.outcomes)
        self.messages = Counter(ports.send_queue.by_channel)
        self.profile_updates = ports.profiles.updates
        self.wake_ups_scheduled = ports.timers.scheduled
        self.schedules_deleted = ports.timers.cancelled
        self.wake_ups_pending = ports.timers.pending()
        self.open_enrollments = ports.enrollments.open_enrollments()


@dataclass(frozen=True)
class EngineResult:
    journeys: int
    records: int
    visitors: int
    repeats: int
    counts: EngineCounts
    engine_ratios: list[float]  # engine pass / deserialize pass, one per repetition
    profile_view_ratios: list[float]  # deserialize + one ProfileView.from_profile per record / deserialize
    # Medians per pass, for the per-call figure and the rate below only (the headline is a ratio).
    deserialize_seconds: float
    engine_seconds: float

    @property
    def engine_ratio(self) -> float:
        return statistics.median(self.engine_ratios)

    @property
    def profile_view_in_deserializations(self) -> float:
        """One ``ProfileView.from_profile`` in record deserializations."""
        return statistics.median(self.profile_view_ratios) - 1

    @property
    def work_per_evaluation_in_deserializations(self) -> float:
        """The engine pass beyond deserializing (selection, profile views, evaluate(), the ports), per
        evaluate() call, in record deserializations."""
        if not self.counts.evaluations:
            return 0.0
        per_record = self.deserialize_seconds / self.records
        beyond = max(0.0, self.engine_seconds - self.deserialize_seconds)
        return beyond / self.counts.evaluations / per_record

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


def folded_profiles(stream: Sequence[StreamRecord], seed: int = 11) -> list[Profile]:
    """For each record, the visitor's profile with that record folded in (as ProfileService hands it
    to the journeys). Half of the visitors start with a web push subscription, a third with an email."""
    rng = random.Random(seed)
    current: dict[str, Profile] = {}
    folded = []
    for item in stream:
        profile = current.get(item.visitor) or starting_profile(item.visitor, rng)
        profile = fold_event(profile, TrackedEvent.model_validate_json(item.body))
        current[item.visitor] = profile
        folded.append(profile)
    return folded


def starting_profile(visitor: str, rng: random.Random) -> Profile:
    subscriptions = []
    consent: dict[str, Any] = {}
    if rng.random() < 0.5:
        endpoint = f"https://push.example/{visitor}"
        subscriptions.append(
            WebPushSubscription(endpoint=endpoint, keys={"p256dh": "k", "auth": "a"}, subscribed_at=START)
        )
        consent["web_push"] = "granted"
    email = f"{visitor}@example.com" if rng.random() < 0.33 else None
    if email:
        consent["email"] = "granted"
    return Profile(
        profile_id=profile_id_for(SOURCE_ID, "anon", visitor),
        source_id=SOURCE_ID,
        email=email,
        consent=consent,
        web_push_subscriptions=subscriptions,
    )


# ------------------------------------------------------------------------------------ passes


def deserialize(item: StreamRecord) -> EventInput:
    """What evaluate does with every record before any journey is looked at."""
    return EventInput.from_tracked(TrackedEvent.model_validate_json(item.body))


def deserialize_pass(stream: Sequence[StreamRecord]) -> int:
    return sum(1 for item in stream if deserialize(item).id)


def profile_view_pass(stream: Sequence[StreamRecord], profiles: Sequence[Profile]) -> int:
    """Parse, and build the engine's view of the visitor's profile once per record."""
    return sum(
        1
        for item, profile in zip(stream, profiles, strict=True)
        if deserialize(item).id and ProfileView.from_profile(profile).id
    )


def engine_pass(
    stream: Sequence[StreamRecord],
    profiles: Sequence[Profile],
    journeys: Sequence[Journey],
    counts: EngineCounts | None = None,
) -> InMemoryPorts:
    """Every record through the real JourneyService, with the wake-ups it schedules delivered when due.

    ``counts``, when given, is filled in (the timed runs pass None, so counting costs them nothing)."""
    ports = InMemoryPorts(StaticCatalog(journeys))
    service = ports.service()
    timers = ports.timers
    latest: dict[str, Profile] = {}
    for item, profile in zip(stream, profiles, strict=True):
        event = deserialize(item)
        while (wake_up := timers.pop_due(event.timestamp)) is not None:
            timers.now = wake_up.due_at
            service.on_wake_up(latest[wake_up.profile_id], wake_up, wake_up.due_at)
        latest[profile.profile_id] = profile
        timers.now = event.timestamp
        decisions = service.on_event(profile, event, event.timestamp)
        if counts is not None:
            counts.records += 1
            counts.records_offered += bool(decisions)
    if counts is not None:
        counts.add_ports(ports)
    return ports


def count_engine_pass(
    stream: Sequence[StreamRecord], profiles: Sequence[Profile], journeys: Sequence[Journey]
) -> EngineCounts:
    """The engine pass once, untimed, with every evaluate() call the service makes observed (the timed
    passes run the service untouched)."""
    counts = EngineCounts()

    def observed(
        journey: Journey,
        enrollment: Enrollment | None,
        engine_input: EventInput | WakeUp,
        profile: ProfileView,
        now: datetime,
        *,
        recent: Sequence[EventInput] = (),
    ) -> Decision:
        decision = evaluate(journey, enrollment, engine_input, profile, now, recent=recent)
        counts.observe(journey, enrollment, engine_input, decision)
        return decision

    with mock.patch.object(journeys_service, "evaluate", observed):
        engine_pass(stream, profiles, journeys, counts)
    return counts


def _timed(work: Callable[[], object]) -> float:
    gc.collect()
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def run(records: int = 3_000, journeys: int = 100, repeats: int = 7) -> EngineResult:
    catalogue = journey_variants(journeys)
    stream = synthetic_stream(records, catalogue)
    profiles = folded_profiles(stream)
    counts = count_engine_pass(stream, profiles, catalogue)  # also warms every code path once
    times: dict[str, list[float]] = {}
    for repeat in range(repeats):
        # Interleaved, and the order flips every round, so drift (thermal, other load) hits every pass.
        passes: list[tuple[str, Callable[[], object]]] = [
            ("deserialize", lambda: deserialize_pass(stream)),
            ("profile_view", lambda: profile_view_pass(stream, profiles)),
            ("engine", lambda: engine_pass(stream, profiles, catalogue)),
        ]
        if repeat % 2:
            passes.reverse()
        for name, work in passes:
            times.setdefault(name, []).append(_timed(work))
    baseline = times["deserialize"]
    return EngineResult(
        journeys=len(catalogue),
        records=len(stream),
        visitors=len({item.visitor for item in stream}),
        repeats=repeats,
        counts=counts,
        engine_ratios=[value / base for value, base in zip(times["engine"], baseline, strict=True)],
        profile_view_ratios=[value / base for value, base in zip(times["profile_view"], baseline, strict=True)],
        deserialize_seconds=statistics.median(baseline),
        engine_seconds=statistics.median(times["engine"]),
    )


def report(result: EngineResult) -> str:
    counts = result.counts
    notes = ", ".join(f"{note} {count}" for note, count in counts.unchanged_notes.most_common())
    steps = ", ".join(f"{outcome} {count}" for outcome, count in counts.steps.most_common())
    messages = ", ".join(f"{channel} {count}" for channel, count in counts.messages.most_common())
    lines = [
        "## Engine throughput",
        "",
        f"{result.journeys} active journeys, {result.records} stream records of {result.visitors} visitors, "
        f"through the real JourneyService on in-memory ports; median of {result.repeats} interleaved runs.",
        "",
        f"- engine pass / deserialize-only pass: **{result.engine_ratio:.2f}x** "
        f"(runs: {', '.join(f'{value:.2f}' for value in result.engine_ratios)})",
        f"- the engine pass beyond deserializing, per evaluate() call (selection, profile view, engine, ports): "
        f"**{result.work_per_evaluation_in_deserializations:.2f}** record deserializations",
        f"- one ProfileView.from_profile: **{result.profile_view_in_deserializations:.2f}** record "
        f"deserializations; the service builds one per input: {counts.inputs / max(1, counts.records):.2f} per record",
        f"- evaluate() calls: {counts.evaluations} ({counts.event_evaluations} for events, "
        f"{counts.wake_up_evaluations} for wake-ups), {counts.evaluations / max(1, counts.records):.2f} per record",
        f"- records offered to at least one journey: {counts.records_offered} of {counts.records} "
        f"({_percent(counts.records_offered, counts.records)})",
        f"- evaluations that changed nothing: {counts.unchanged} ({_percent(counts.unchanged, counts.evaluations)}): "
        f"{notes or 'none'}",
        f"- evaluations for an event the journey does not name: {counts.unnamed_event_evaluations} "
        f"(changed something: {counts.unnamed_event_changes})",
        "- evaluations of a visitor outside the journey for an event it names but not as its trigger: "
        f"{counts.not_trigger_evaluations} ({_percent(counts.not_trigger_evaluations, counts.evaluations)}; "
        f"changed something: {counts.not_trigger_changes})",
        f"- decisions that changed an enrollment: {counts.changed}; steps: {steps or 'none'}",
        f"- messages queued: {sum(counts.messages.values())} ({messages or 'none'}); "
        f"profile updates: {counts.profile_updates}",
        f"- wake-ups scheduled: {counts.wake_ups_scheduled}, delivered: {counts.wake_up_evaluations}, "
        f"schedules deleted before firing: {counts.schedules_deleted}, not yet due at the end: "
        f"{counts.wake_ups_pending}; open enrollments at the end: {counts.open_enrollments}",
        f"- on this machine: about {result.evaluations_per_second:,.0f} evaluate() calls per second "
        "(for orientation only; compare the ratios)",
    ]
    return "\n".join(lines)


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / max(1, whole):.0f} %"
