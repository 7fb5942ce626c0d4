"""SendService with in-memory fakes: every status path, and exactly-once under duplicates and retries."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

import pytest

from footprint.clock import ManualClock
from footprint.engine import RecordStep
from footprint.models.messages import DeliveryRecord, MessageChannel, OutgoingMessage
from footprint.models.profile import Profile, WebPushSubscription
from footprint.services.retries import RetryableDeliveryError
from footprint.services.send import (
    NOT_CONFIGURED,
    OUTCOME_UNKNOWN,
    SUPPRESSED_REASON,
    UNKNOWN_PROFILE,
    ChannelSender,
    Claim,
    DeliverFunction,
    DeliveryResult,
    SendService,
)
from tests.builders import T0
from tests.fakes import InMemoryOutbox, OutboxRow

# ------------------------------------------------------------------ fakes


class FakeProfiles:
    def __init__(self, *profiles: Profile) -> None:
        self.profiles = {p.profile_id: p for p in profiles}
        self.fail_with: Exception | None = None

    def get_profile(self, profile_id: str) -> Profile | None:
        if self.fail_with:
            raise self.fail_with
        return self.profiles.get(profile_id)


class RecordingChannel:
    """Answers with the next scripted outcome (a DeliveryResult or an exception to raise)."""

    def __init__(self, *outcomes: DeliveryResult | Exception) -> None:
        self.outcomes = list(outcomes) or [DeliveryResult("sent", "ok")]
        self.sent: list[tuple[OutgoingMessage, Profile, dict[str, Any]]] = []

    def send(self, message: OutgoingMessage, profile: Profile, rendered: Mapping[str, Any]) -> DeliveryResult:
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, Exception):
            raise outcome
        self.sent.append((message, profile, dict(rendered)))
        return outcome


class RecordingMetrics:
    def __init__(self) -> None:
        self.counts: list[tuple[str, str]] = []

    def count(self, outcome: str, channel: MessageChannel) -> None:
        self.counts.append((outcome, channel))


class RecordedOutcomes:
    """The visitor's timeline, as send's outcome events reach it (stored once per event id)."""

    def __init__(self) -> None:
        self.events: dict[str, tuple[str, str, dict[str, Any]]] = {}
        self.failures: list[Exception] = []

    def record(
        self,
        profile_id: str,
        name: str,
        *,
        event_id: str,
        properties: Mapping[str, Any],
        at: datetime,
        now: datetime,
    ) -> bool:
        if self.failures:
            raise self.failures.pop(0)
        self.events[event_id] = (profile_id, name, dict(properties))
        return True

    def names(self) -> list[str]:
        return [name for _, name, _ in self.events.values()]


# ------------------------------------------------------------------ builders

HOA = Profile(
    profile_id="p-hoa",
    source_id="demo",
    email="hoa@example.com",
    phone="0912345678",
    # Email and SMS marketing are opt-in: Hoa said yes on both.
    consent={"email": "granted", "sms": "granted", "zalo_zns": "granted"},
    traits={"name": "Nguyễn Thị Hoa"},
    web_push_subscriptions=[
        WebPushSubscription(
            endpoint="https://push.example/1",
            keys={"p256dh": "k", "auth": "a"},
            subscribed_at=T0,
        )
    ],
)


def outgoing(channel: MessageChannel = "email", key: str = "k-1", **fields: Any) -> OutgoingMessage:
    values: dict[str, Any] = {
        "idempotency_key": key,
        "profile_id": "p-hoa",
        "source_id": "demo",
        "journey_id": "view-no-cart",
        "journey_version": 1,
        "enrollment_id": "e-1",
        "node_id": "n-1",
        "channel": channel,
        "content": {"subject": "Chào {{ profile.name }}", "body": "Váy hè đang chờ bạn"},
        "requested_at": T0,
    }
    values.update(fields)
    return OutgoingMessage.model_validate(values)


class World:
    def __init__(
        self,
        *profiles: Profile,
        channels: Mapping[MessageChannel, ChannelSender] | None = None,
    ) -> None:
        self.clock = ManualClock(T0)
        self.outbox = InMemoryOutbox()
        self.profiles = FakeProfiles(*(profiles or (HOA,)))
        self.metrics = RecordingMetrics()
        self.channel = RecordingChannel()
        self.outcomes = RecordedOutcomes()
        names: list[MessageChannel] = ["onsite_form", "onsite_push", "web_push", "email", "sms", "webhook"]
        all_channels: dict[MessageChannel, ChannelSender] = dict.fromkeys(names, self.channel)
        self.service = SendService(
            profiles=self.profiles,
            outbox=self.outbox,
            channels=all_channels if channels is None else channels,
            clock=self.clock,
            metrics=self.metrics,
            outcomes=self.outcomes,
        )


# ------------------------------------------------------------------ status paths


def test_a_reachable_profile_gets_the_rendered_message_and_the_outbox_records_it() -> None:
    world = World()

    record = world.service.deliver(outgoing())

    assert [(m.idempotency_key, p.profile_id, r) for m, p, r in world.channel.sent] == [
        ("k-1", "p-hoa", {"subject": "Chào Nguyễn Thị Hoa", "body": "Váy hè đang chờ bạn"})
    ]
    assert record == world.outbox.records["k-1"]
    assert (record.status, record.detail, record.channel, record.sent_at) == ("sent", "ok", "email", T0)
    assert record.rendered["subject"] == "Chào Nguyễn Thị Hoa"
    assert world.metrics.counts == [("sent", "email")]


def test_onsite_messages_are_queued_for_the_browser() -> None:
    world = World()
    world.channel.outcomes = [DeliveryResult("queued_onsite", "waiting")]

    content = {"title": "Ưu đãi cho {{ profile.name }}"}

    record = world.service.deliver(outgoing("onsite_push", content=content))

    assert record.status == "queued_onsite"
    assert record.rendered == {"title": "Ưu đãi cho Nguyễn Thị Hoa"}


def test_unknown_profile_is_skipped_without_calling_the_channel() -> None:
    world = World()

    record = world.service.deliver(outgoing(profile_id="p-nobody"))

    assert (record.status, record.detail) == ("skipped", UNKNOWN_PROFILE)
    assert world.channel.sent == []
    assert world.outbox.records["k-1"].status == "skipped"
    assert world.metrics.counts == [("skipped", "email")]


@pytest.mark.parametrize(
    ("channel", "profile_update", "reason"),
    [
        ("email", {"email": None}, "no email address"),
        ("email", {"consent": {"email": "denied"}}, "email declined"),
        ("web_push", {"web_push_subscriptions": []}, "no web push subscription"),
        ("sms", {"phone": None}, "no phone number"),
        ("onsite_form", {"consent": {"onsite": "denied"}}, "onsite messages declined"),
    ],
)
def test_unreachable_profiles_are_skipped_with_the_reason(
    channel: MessageChannel, profile_update: dict[str, Any], reason: str
) -> None:
    world = World(HOA.model_copy(update=profile_update))

    record = world.service.deliver(outgoing(channel))

    assert record.status == "skipped"
    assert reason in record.detail
    assert world.channel.sent == []


def test_a_transactional_message_needs_no_marketing_consent_but_a_deliverable_address() -> None:
    unsubscribed = HOA.model_copy(update={"consent": {"email": "denied"}})
    bounced = HOA.model_copy(update={"suppressed": {str(HOA.email): "bounced"}})

    assert World(unsubscribed).service.deliver(outgoing(category="transactional")).status == "sent"
    assert World(unsubscribed).service.deliver(outgoing(category="marketing")).status == "skipped"
    for category in ("marketing", "transactional"):
        record = World(bounced).service.deliver(outgoing(category=category))
        assert (record.status, record.detail) == ("skipped", SUPPRESSED_REASON), category


def test_onsite_needs_no_address() -> None:
    world = World(Profile(profile_id="p-hoa", source_id="demo"))

    assert world.service.deliver(outgoing("onsite_form")).status == "sent"


def test_a_channel_without_configuration_is_skipped() -> None:
    world = World(channels={})

    record = world.service.deliver(outgoing("zalo_zns"))

    assert (record.status, record.detail) == ("skipped", NOT_CONFIGURED)


def test_a_template_mistake_fails_the_message_without_sending() -> None:
    world = World()

    record = world.service.deliver(outgoing(content={"subject": "{% if %}", "body": "x"}))

    assert record.status == "failed"
    assert record.detail.startswith("template error:")
    assert world.channel.sent == []


def test_a_permanent_refusal_is_recorded_as_failed() -> None:
    world = World()
    world.channel.outcomes = [DeliveryResult("failed", "subscription gone (404/410)")]

    record = world.service.deliver(outgoing("web_push"))

    assert (record.status, record.detail) == ("failed", "subscription gone (404/410)")
    assert world.metrics.counts == [("failed", "web_push")]


def test_oversized_content_is_sent_whole_but_recorded_by_size() -> None:
    world = World()
    long_text = "Váy hè " * 20_000

    record = world.service.deliver(outgoing(content={"subject": "s", "text": long_text}))

    assert world.channel.sent[0][2]["text"] == long_text
    assert record.rendered["truncated"] is True
    assert record.rendered["size_bytes"] > 64 * 1024


def test_a_merged_profile_redirects_to_the_known_contact() -> None:
    anonymous = Profile(profile_id="p-anon", source_id="demo", merged_into="p-hoa")
    world = World(anonymous, HOA)

    world.service.deliver(outgoing(profile_id="p-anon"))

    assert [p.profile_id for _, p, _ in world.channel.sent] == ["p-hoa"]


# ------------------------------------------------------------------ retries and duplicates


def test_a_retryable_failure_releases_the_claim_and_raises_then_the_retry_sends_once() -> None:
    world = World()
    world.channel.outcomes = [RetryableDeliveryError("ses throttled"), DeliveryResult("sent", "ok")]

    with pytest.raises(RetryableDeliveryError):
        world.service.deliver(outgoing())
    assert world.outbox.rows == {}

    record = world.service.deliver(outgoing())

    assert record.status == "sent"
    assert len(world.channel.sent) == 1
    assert world.metrics.counts == [("retried", "email"), ("sent", "email")]


def test_a_failing_profile_read_releases_the_claim_and_raises() -> None:
    world = World()
    world.profiles.fail_with = ConnectionError("dynamodb unreachable")

    with pytest.raises(ConnectionError):
        world.service.deliver(outgoing())

    assert world.outbox.rows == {}
    world.profiles.fail_with = None
    assert world.service.deliver(outgoing()).status == "sent"


def test_the_same_message_twice_is_delivered_once_and_the_second_gets_the_first_record() -> None:
    world = World()

    first = world.service.deliver(outgoing())
    world.clock.advance(timedelta(days=30))
    second = world.service.deliver(outgoing())

    assert second == first
    assert len(world.channel.sent) == 1
    assert world.metrics.counts == [("sent", "email"), ("duplicate", "email")]


def test_a_skipped_message_stays_skipped_when_the_profile_appears_later() -> None:
    world = World()
    world.profiles.profiles.clear()
    assert world.service.deliver(outgoing()).status == "skipped"

    world.profiles.profiles["p-hoa"] = HOA

    assert world.service.deliver(outgoing()).status == "skipped"
    assert world.channel.sent == []


def test_an_open_claim_of_a_running_attempt_is_retried_later_without_sending() -> None:
    world = World()
    world.outbox.rows["k-1"] = OutboxRow("claimed", "other", T0 - timedelta(seconds=10))

    with pytest.raises(RetryableDeliveryError):
        world.service.deliver(outgoing())

    assert world.channel.sent == []
    assert world.outbox.rows == {"k-1": OutboxRow("claimed", "other", T0 - timedelta(seconds=10))}


def test_a_stale_claim_that_never_reached_the_provider_is_taken_over_and_sent() -> None:
    # Regression: this used to be recorded "failed: outcome unknown" and never sent.
    world = World()
    world.outbox.rows["k-1"] = OutboxRow("claimed", "stopped", T0 - timedelta(minutes=5))

    record = world.service.deliver(outgoing())

    assert (record.status, len(world.channel.sent)) == ("sent", 1)
    assert world.outbox.records == {"k-1": record}


def test_a_stale_claim_that_was_calling_the_provider_is_recorded_unknown_not_resent() -> None:
    world = World()
    world.outbox.rows["k-1"] = OutboxRow("calling_provider", "stopped", T0 - timedelta(minutes=5))

    record = world.service.deliver(outgoing())

    assert (record.status, record.detail) == ("failed", OUTCOME_UNKNOWN)
    assert world.channel.sent == []
    assert world.outbox.rows["k-1"] == OutboxRow("failed", "stopped", T0 - timedelta(minutes=5), record)
    assert world.service.deliver(outgoing()) == record


def test_a_stale_onsite_claim_is_always_redone() -> None:
    world = World()
    world.channel.outcomes = [DeliveryResult("queued_onsite", "waiting")]
    world.outbox.rows["k-1"] = OutboxRow("calling_provider", "stopped", T0 - timedelta(minutes=5))

    record = world.service.deliver(outgoing("onsite_form"))

    assert record.status == "queued_onsite"
    assert world.outbox.records == {"k-1": record}


def test_an_unexpected_channel_error_is_recorded_and_never_resent() -> None:
    world = World()
    world.channel.outcomes = [KeyError("MessageId")]

    record = world.service.deliver(outgoing())
    again = world.service.deliver(outgoing())

    assert record.status == "failed"
    assert record.detail.startswith("unexpected error: KeyError")
    assert again == record


def test_the_guard_wraps_delivery_and_receives_the_message_by_keyword() -> None:
    seen: list[dict[str, Any]] = []

    def guard(deliver: DeliverFunction) -> DeliverFunction:
        def guarded(*args: Any, **kwargs: Any) -> DeliveryRecord:
            seen.append(kwargs)
            return deliver(*args, **kwargs)

        return guarded

    world = World()
    service = SendService(
        profiles=world.profiles,
        outbox=world.outbox,
        channels={"email": world.channel},
        clock=world.clock,
        guard=guard,
    )

    record = service.deliver(outgoing())

    assert seen == [{"message": outgoing()}]
    assert record.status == "sent"


def test_many_duplicates_in_any_order_deliver_each_key_once() -> None:
    world = World()
    keys = ["a", "b", "a", "c", "b", "a"]

    records = [world.service.deliver(outgoing(key=key)) for key in keys]

    assert sorted(m.idempotency_key for m, _, _ in world.channel.sent) == ["a", "b", "c"]
    assert {r.idempotency_key: r for r in records} == world.outbox.records


class RecordingPruner:
    def __init__(self, profiles: FakeProfiles | None = None) -> None:
        self.forgotten: list[tuple[str, tuple[str, ...]]] = []
        self.profiles = profiles

    def forget_web_push_subscriptions(self, profile_id: str, endpoints: Sequence[str]) -> None:
        self.forgotten.append((profile_id, tuple(endpoints)))

    def suppress_address(self, profile_id: str, key: str, reason: str) -> None:
        assert self.profiles is not None
        profile = self.profiles.profiles[profile_id]
        self.profiles.profiles[profile_id] = profile.model_copy(
            update={"suppressed": {**profile.suppressed, key: reason}}
        )


@pytest.mark.parametrize(
    ("refused", "key", "sms_after", "zns_after"),
    [
        # Not a phone number (SNS, or Zalo's -108): neither SMS nor ZNS tries it again.
        ("sms", "0912345678", "skipped", "skipped"),
        # No Zalo account for it (-118): ZNS stops, SMS still goes.
        ("zalo_zns", "zalo_zns:0912345678", "sent", "skipped"),
    ],
)
def test_a_number_the_provider_refuses_as_invalid_is_suppressed_for_the_next_message(
    refused: MessageChannel, key: str, sms_after: str, zns_after: str
) -> None:
    invalid = DeliveryResult("failed", "not a number", invalid_address=key)
    channel = RecordingChannel(invalid, DeliveryResult("sent", "ok"))
    world = World(channels=dict.fromkeys(("sms", "zalo_zns"), channel))  # type: ignore[arg-type]
    world.service.pruner = RecordingPruner(world.profiles)
    content = {"body": "Giỏ hàng còn 2 sản phẩm", "template_id": "t-1", "params": {}}

    assert world.service.deliver(outgoing(refused, key="k-1", content=content)).status == "failed"

    assert world.profiles.profiles["p-hoa"].suppressed == {key: "not a number"}
    after = {c: world.service.deliver(outgoing(c, key=f"k-{c}", content=content)) for c in ("sms", "zalo_zns")}
    assert (after["sms"].status, after["zalo_zns"].status) == (sms_after, zns_after)
    assert all(r.detail == SUPPRESSED_REASON for r in after.values() if r.status == "skipped")


def test_subscriptions_a_push_service_says_are_gone_are_dropped_from_the_profile() -> None:
    endpoint = HOA.web_push_subscriptions[0].endpoint
    gone = DeliveryResult("failed", "subscription gone (404/410)", gone_addresses=(endpoint,))
    world = World(channels={"web_push": RecordingChannel(gone)})
    pruner = RecordingPruner()
    world.service.pruner = pruner
    record = world.service.deliver(outgoing("web_push"))
    assert record.status == "failed"
    assert pruner.forgotten == [("p-hoa", (endpoint,))]


def test_a_delivered_push_forgets_nothing() -> None:
    world = World(channels={"web_push": RecordingChannel(DeliveryResult("sent", "delivered to 1 of 1"))})
    pruner = RecordingPruner()
    world.service.pruner = pruner
    world.service.deliver(outgoing("web_push"))
    assert pruner.forgotten == []


# ------------------------------------------------------------------ crashes at every step


class Crash(BaseException):
    """The process stops here (Lambda timeout, out of memory): no except or finally of ours runs."""


class Hiccup(Exception):
    """An error raised at that point (a DynamoDB error, a bug): the attempt's cleanup runs."""


Result = TypeVar("Result")


class FaultyOutbox:
    """An InMemoryOutbox that runs ``hook`` once, at ``point`` ("after:claim", "before:settle",
    ...), and records the order of operations. A hook that raises is a fault at that point."""

    def __init__(self, inner: InMemoryOutbox, point: str = "", hook: Callable[[], object] | None = None) -> None:
        self.inner = inner
        self.point = point
        self.hook = hook
        self.calls: list[str] = []

    def _at(self, when: str, operation: str) -> None:
        if self.hook is not None and self.point == f"{when}:{operation}":
            hook, self.hook = self.hook, None
            hook()

    def _run(self, operation: str, call: Callable[[], Result]) -> Result:
        self.calls.append(operation)
        self._at("before", operation)
        result = call()
        self._at("after", operation)
        return result

    def claim(self, message: OutgoingMessage, attempt_id: str, at: datetime) -> Claim:
        return self._run("claim", lambda: self.inner.claim(message, attempt_id, at))

    def take_over(self, message: OutgoingMessage, stale: Claim, attempt_id: str, at: datetime) -> Claim:
        return self._run("take_over", lambda: self.inner.take_over(message, stale, attempt_id, at))

    def mark_calling(self, idempotency_key: str, attempt_id: str, at: datetime) -> bool:
        return self._run("mark_calling", lambda: self.inner.mark_calling(idempotency_key, attempt_id, at))

    def settle(self, record: DeliveryRecord, attempt_id: str) -> bool:
        return self._run("settle", lambda: self.inner.settle(record, attempt_id))

    def release(self, idempotency_key: str, attempt_id: str) -> None:
        self._run("release", lambda: self.inner.release(idempotency_key, attempt_id))


def raising(fault: BaseException) -> Callable[[], None]:
    def hook() -> None:
        raise fault

    return hook


class AcceptThenCrash(RecordingChannel):
    """The provider accepts the message (it is out), then the process stops before anything else."""

    def __init__(self, fault: BaseException, result: DeliveryResult) -> None:
        super().__init__(result)
        self.fault: BaseException | None = fault

    def send(self, message: OutgoingMessage, profile: Profile, rendered: Mapping[str, Any]) -> DeliveryResult:
        result = super().send(message, profile, rendered)
        if self.fault is not None:
            fault, self.fault = self.fault, None
            raise fault
        return result


class StoredSteps:
    """StepsTable's rule: a step is stored once, by its key."""

    def __init__(self) -> None:
        self.stored: dict[str, RecordStep] = {}

    def record(self, step: RecordStep) -> None:
        self.stored.setdefault(step.key, step)


class FaultWorld:
    """A SendService over a FaultyOutbox and one channel, retried the way SQS retries it."""

    def __init__(self, channel: MessageChannel, point: str = "", hook: Callable[[], object] | None = None) -> None:
        self.clock = ManualClock(T0)
        self.store = InMemoryOutbox()
        self.outbox = FaultyOutbox(self.store, point, hook)
        result = DeliveryResult("queued_onsite" if channel in ("onsite_form", "onsite_push") else "sent", "ok")
        self.channel: RecordingChannel = RecordingChannel(result)
        self.message = outgoing(channel)
        self.attempts = 0
        self.steps = StoredSteps()
        self.service = self._service()

    def _service(self) -> SendService:
        def attempt_id() -> str:
            self.attempts += 1
            return f"attempt-{self.attempts}"

        return SendService(
            profiles=FakeProfiles(HOA),
            outbox=self.outbox,
            channels={self.message.channel: self.channel},
            clock=self.clock,
            new_attempt_id=attempt_id,
            steps=self.steps,
        )

    def use_channel(self, channel: RecordingChannel) -> None:
        self.channel = channel
        self.service = self._service()

    def deliver_until_settled(self, *, retries: int = 5) -> DeliveryRecord:
        """Deliver; after any failure or crash, come back when SQS would (visibility timeout, 180 s)."""
        for _ in range(retries):
            try:
                return self.service.deliver(self.message)
            except (Exception, Crash):
                self.clock.advance(timedelta(seconds=180))
        raise AssertionError("never settled")


EXTERNAL_CRASHES = [
    # point, fault, provider calls, final status, final detail
    pytest.param("after:claim", Crash(), 1, "sent", "ok", id="crash after the claim put: taken over, sent"),
    pytest.param("after:claim", Hiccup(), 1, "sent", "ok", id="error after the claim put: released, sent"),
    pytest.param("before:mark_calling", Crash(), 1, "sent", "ok", id="crash before the mark: taken over, sent"),
    pytest.param("after:mark_calling", Hiccup(), 1, "sent", "ok", id="error after the mark: released, sent"),
    pytest.param(
        "after:mark_calling", Crash(), 0, "failed", OUTCOME_UNKNOWN, id="crash after the mark: unknown, not resent"
    ),
    pytest.param("before:settle", Crash(), 1, "failed", OUTCOME_UNKNOWN, id="crash before settle: unknown, not resent"),
    pytest.param("before:settle", Hiccup(), 1, "failed", OUTCOME_UNKNOWN, id="settle fails: unknown, not resent"),
    pytest.param("after:settle", Crash(), 1, "sent", "ok", id="crash after settle: the retry is a duplicate"),
]


@pytest.mark.parametrize(("point", "fault", "calls", "status", "detail"), EXTERNAL_CRASHES)
@pytest.mark.parametrize("channel", ["email", "web_push", "sms", "webhook"])
def test_a_crash_at_any_step_never_sends_twice_and_loses_nothing_the_provider_did_not_get(
    channel: MessageChannel, point: str, fault: BaseException, calls: int, status: str, detail: str
) -> None:
    world = FaultWorld(channel, point, raising(fault))

    record = world.deliver_until_settled()

    assert len(world.channel.sent) == calls
    assert (record.status, record.detail) == (status, detail)
    assert world.store.records == {"k-1": record}
    assert world.service.deliver(world.message) == record
    assert len(world.channel.sent) == calls


@pytest.mark.parametrize(
    ("fault", "detail"),
    [(Crash(), OUTCOME_UNKNOWN), (Hiccup("boom"), "unexpected error: Hiccup: boom")],
    ids=["crash", "error"],
)
def test_provider_accepted_then_the_attempt_stopped_is_recorded_failed_and_never_resent(
    fault: BaseException, detail: str
) -> None:
    # The one window where the record can be wrong (the message did go out): between the
    # provider's answer and the settle write. It is never a duplicate.
    world = FaultWorld("email")
    world.use_channel(AcceptThenCrash(fault, DeliveryResult("sent", "ok")))

    record = world.deliver_until_settled()

    assert (record.status, record.detail) == ("failed", detail)
    assert len(world.channel.sent) == 1


ONSITE_POINTS = ["after:claim", "before:settle", "after:settle", "provider"]


@pytest.mark.parametrize("fault", [Crash(), Hiccup()], ids=["crash", "error"])
@pytest.mark.parametrize("point", ONSITE_POINTS)
@pytest.mark.parametrize("channel", ["onsite_form", "onsite_push"])
def test_an_onsite_message_reaches_the_inbox_exactly_once_whatever_stops_an_attempt(
    channel: MessageChannel, point: str, fault: BaseException
) -> None:
    world = FaultWorld(channel, point, raising(fault))
    if point == "provider":
        world.use_channel(AcceptThenCrash(fault, DeliveryResult("queued_onsite", "ok")))

    record = world.deliver_until_settled()

    assert record.status == "queued_onsite"
    assert world.store.records == {"k-1": record}
    assert "mark_calling" not in world.outbox.calls


def test_a_crash_after_the_claim_is_taken_over_once_the_claim_is_stale_not_before() -> None:
    world = FaultWorld("email", "after:claim", raising(Crash()))
    with pytest.raises(Crash):
        world.service.deliver(world.message)

    world.clock.advance(timedelta(seconds=119))
    with pytest.raises(RetryableDeliveryError):
        world.service.deliver(world.message)
    assert world.channel.sent == []

    world.clock.advance(timedelta(seconds=2))
    assert world.service.deliver(world.message).status == "sent"
    assert len(world.channel.sent) == 1


def test_an_error_right_after_the_claim_put_releases_it_so_the_retry_need_not_wait() -> None:
    # e.g. botocore gave up on a put whose write did land
    world = FaultWorld("email", "after:claim", raising(Hiccup()))
    with pytest.raises(Hiccup):
        world.service.deliver(world.message)

    assert world.store.rows == {}
    assert world.service.deliver(world.message).status == "sent"


def test_a_claim_put_sent_twice_by_botocore_is_recognised_as_its_own() -> None:
    # The first put landed, its response was lost, botocore sent it again and got "condition failed".
    world = FaultWorld("email")
    store = world.store
    world.outbox.hook = lambda: store.claim(world.message, "attempt-1", T0)
    world.outbox.point = "before:claim"

    record = world.service.deliver(world.message)

    assert (record.status, len(world.channel.sent)) == ("sent", 1)


def test_the_provider_call_is_announced_after_everything_that_can_fail_without_sending() -> None:
    sent = FaultWorld("email")
    sent.service.deliver(sent.message)
    broken = FaultWorld("email")
    broken.message = outgoing(content={"subject": "{% if %}", "body": "x"})
    failed = broken.service.deliver(broken.message)
    onsite = FaultWorld("onsite_push")
    onsite.service.deliver(onsite.message)

    assert sent.outbox.calls == ["claim", "mark_calling", "settle"]
    # A template error is recorded "failed" and never reaches the provider, nor the mark.
    assert (failed.status, failed.detail.startswith("template error:")) == ("failed", True)
    assert broken.outbox.calls == ["claim", "settle"]
    assert broken.channel.sent == []
    assert onsite.outbox.calls == ["claim", "settle"]


# ------------------------------------------------------------------ concurrent attempts


def test_a_second_attempt_while_the_first_calls_the_provider_waits_then_finds_the_result() -> None:
    world = FaultWorld("email")
    seen: list[BaseException] = []

    class Reentrant(RecordingChannel):
        def send(self, message: OutgoingMessage, profile: Profile, rendered: Mapping[str, Any]) -> DeliveryResult:
            if not self.sent:
                try:
                    world.service.deliver(message)
                except RetryableDeliveryError as error:
                    seen.append(error)
            return super().send(message, profile, rendered)

    world.use_channel(Reentrant(DeliveryResult("sent", "ok")))

    first = world.service.deliver(world.message)
    second = world.service.deliver(world.message)

    assert len(seen) == 1
    assert second == first
    assert len(world.channel.sent) == 1


def test_an_attempt_stalled_past_its_claim_cannot_send_after_another_took_it_over() -> None:
    world = FaultWorld("email")

    def meanwhile() -> None:
        world.clock.advance(timedelta(minutes=3))
        assert world.service.deliver(world.message).status == "sent"

    world.outbox.point, world.outbox.hook = "after:claim", meanwhile

    with pytest.raises(RetryableDeliveryError, match="taken over"):
        world.service.deliver(world.message)

    assert len(world.channel.sent) == 1
    assert world.store.records["k-1"].status == "sent"


def test_two_attempts_taking_over_one_stale_claim_send_once() -> None:
    world = FaultWorld("email", "after:claim", raising(Crash()))
    with pytest.raises(Crash):
        world.service.deliver(world.message)
    world.clock.advance(timedelta(minutes=3))
    world.outbox.point = "before:take_over"
    world.outbox.hook = lambda: world.service.deliver(world.message)

    record = world.service.deliver(world.message)

    assert record.status == "sent"
    assert len(world.channel.sent) == 1


def test_a_crash_between_the_result_and_its_step_loses_no_step() -> None:
    world = FaultWorld("email", "after:settle", raising(Crash()))
    world.message = outgoing(profile_id="p-nobody")

    record = world.deliver_until_settled()

    assert (record.status, record.detail) == ("skipped", UNKNOWN_PROFILE)
    assert [(step.outcome, step.node_id) for step in world.steps.stored.values()] == [("skipped", "n-1")]


# ------------------------------------------------------------------ outcome events


def test_each_settled_message_tells_the_visitor_s_timeline_what_became_of_it() -> None:
    world = World(HOA, HOA.model_copy(update={"profile_id": "p-anon", "email": None}))
    world.channel.outcomes = [
        DeliveryResult("sent", "ok"),
        DeliveryResult("failed", "address refused"),
        DeliveryResult("queued_onsite", "in the inbox"),
    ]

    world.service.deliver(outgoing(key="k-sent"))
    world.service.deliver(outgoing(key="k-refused"))
    world.service.deliver(outgoing(key="k-broken", content={"subject": "{% if %}"}))
    world.service.deliver(outgoing(key="k-no-address", profile_id="p-anon"))
    world.service.deliver(outgoing("onsite_push", key="k-onsite", content={"title": "Váy hè"}))

    events = world.outcomes.events
    assert {key: name for key, (_, name, _) in events.items()} == {
        "k-sent:message_sent": "message_sent",
        "k-refused:message_failed": "message_failed",
        "k-broken:message_failed": "message_failed",
        "k-no-address:message_suppressed": "message_suppressed",
    }  # an onsite message has none: the browser reports it shown
    profile_id, _, sent = events["k-sent:message_sent"]
    assert profile_id == "p-hoa"
    assert sent == {
        "message_id": "k-sent",  # what match_message compares, as for message_clicked
        "journey_id": "view-no-cart",
        "journey_version": 1,
        "node_id": "n-1",
        "enrollment_id": "e-1",
        "channel": "email",
        "category": "marketing",
        "reason": "ok",
    }
    assert events["k-refused:message_failed"][2]["reason"] == "address refused"
    assert events["k-broken:message_failed"][2]["reason"].startswith("template error:")
    assert events["k-no-address:message_suppressed"][2]["reason"] == "no email address, or email declined"


def test_an_outcome_event_that_could_not_be_stored_is_recorded_by_the_retry_without_sending_again() -> None:
    world = World()
    world.outcomes.failures = [TimeoutError("events table timed out")]

    with pytest.raises(RetryableDeliveryError, match="message_sent of k-1 not recorded yet"):
        world.service.deliver(outgoing())
    record = world.service.deliver(outgoing())  # SQS brings the message back

    assert record.status == "sent"
    assert len(world.channel.sent) == 1
    assert world.outcomes.names() == ["message_sent"]
