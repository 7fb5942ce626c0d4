"""SendService with in-memory fakes: every status path, and exactly-once under duplicates and retries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest

from footprint.clock import ManualClock
from footprint.models.messages import DeliveryRecord, MessageChannel, OutgoingMessage
from footprint.models.profile import Profile, WebPushSubscription
from footprint.services.send import (
    NOT_CONFIGURED,
    OUTCOME_UNKNOWN,
    UNKNOWN_PROFILE,
    ChannelSender,
    Claim,
    DeliverFunction,
    DeliveryResult,
    RetryableDeliveryError,
    SendService,
)
from tests.builders import T0

# ------------------------------------------------------------------ fakes


class InMemoryOutbox:
    """Same rules as DynamoOutbox (tests/integration/test_channels.py checks the real one)."""

    def __init__(self) -> None:
        self.claims: dict[str, datetime] = {}
        self.records: dict[str, DeliveryRecord] = {}

    def claim(self, message: OutgoingMessage, at: datetime) -> Claim:
        key = message.idempotency_key
        if key in self.records:
            return Claim(acquired=False, settled=self.records[key])
        if key in self.claims:
            return Claim(acquired=False, claimed_at=self.claims[key])
        self.claims[key] = at
        return Claim(acquired=True, claimed_at=at)

    def settle(self, record: DeliveryRecord) -> bool:
        if record.idempotency_key not in self.claims:
            return False
        del self.claims[record.idempotency_key]
        self.records[record.idempotency_key] = record
        return True

    def release(self, idempotency_key: str) -> None:
        self.claims.pop(idempotency_key, None)


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


# ------------------------------------------------------------------ builders

HOA = Profile(
    profile_id="p-hoa",
    source_id="demo",
    email="hoa@example.com",
    phone="0912345678",
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
        names: list[MessageChannel] = ["onsite_form", "onsite_push", "web_push", "email", "sms", "webhook"]
        all_channels: dict[MessageChannel, ChannelSender] = dict.fromkeys(names, self.channel)
        self.service = SendService(
            profiles=self.profiles,
            outbox=self.outbox,
            channels=all_channels if channels is None else channels,
            clock=self.clock,
            metrics=self.metrics,
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
    assert world.outbox.claims == {}
    assert world.outbox.records == {}

    record = world.service.deliver(outgoing())

    assert record.status == "sent"
    assert len(world.channel.sent) == 1
    assert world.metrics.counts == [("retried", "email"), ("sent", "email")]


def test_a_failing_profile_read_releases_the_claim_and_raises() -> None:
    world = World()
    world.profiles.fail_with = ConnectionError("dynamodb unreachable")

    with pytest.raises(ConnectionError):
        world.service.deliver(outgoing())

    assert world.outbox.claims == {}
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
    world.outbox.claims["k-1"] = T0 - timedelta(seconds=10)

    with pytest.raises(RetryableDeliveryError):
        world.service.deliver(outgoing())

    assert world.channel.sent == []
    assert world.outbox.claims == {"k-1": T0 - timedelta(seconds=10)}


def test_an_open_claim_left_by_a_stopped_attempt_is_failed_not_resent() -> None:
    world = World()
    world.outbox.claims["k-1"] = T0 - timedelta(minutes=5)

    record = world.service.deliver(outgoing())

    assert (record.status, record.detail) == ("failed", OUTCOME_UNKNOWN)
    assert world.channel.sent == []
    assert world.outbox.records["k-1"] == record


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
    def __init__(self) -> None:
        self.forgotten: list[tuple[str, tuple[str, ...]]] = []

    def forget_web_push_subscriptions(self, profile_id: str, endpoints: Sequence[str]) -> None:
        self.forgotten.append((profile_id, tuple(endpoints)))


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
