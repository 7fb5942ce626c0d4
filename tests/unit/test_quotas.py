"""Per-source limits against an in-memory counter, with a manual clock: rate, daily quota, batch size."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from pydantic import ValidationError

from footprint.clock import ManualClock
from footprint.models.limits import SourceLimits
from footprint.models.segment import Source
from footprint.services.ingest import IngestService
from footprint.services.quotas import (
    QuotaExceededError,
    RateLimitedError,
    SourceQuotas,
    TokenBucket,
    seconds_until_next_utc_day,
    sync_every,
)
from footprint.services.tracking import InvalidPayloadError, StoreUnavailableError
from tests.api_gateway import basic_auth
from tests.builders import T0
from tests.ingest_fakes import InMemoryEventStore, InMemorySourceDirectory
from tests.unit.test_ingest import request, track


class InMemoryDailyCounter:
    """The shared counter, keyed like ConfigTable's quota items; ``fail`` makes it unavailable."""

    def __init__(self) -> None:
        self.totals: dict[tuple[str, date], int] = {}
        self.adds: list[tuple[str, date, int]] = []
        self.fail = False

    def add(self, source_id: str, day: date, count: int) -> int:
        if self.fail:
            raise StoreUnavailableError("store_unavailable", "down")
        self.adds.append((source_id, day, count))
        key = (source_id, day)
        self.totals[key] = self.totals.get(key, 0) + count
        return self.totals[key]


def source(**limits: object) -> Source:
    return Source(source_id="shop", limits=SourceLimits.model_validate(limits))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def counter() -> InMemoryDailyCounter:
    return InMemoryDailyCounter()


def quotas_for(counter: InMemoryDailyCounter, clock: ManualClock) -> SourceQuotas:
    return SourceQuotas(counter, now=clock.now)


@pytest.fixture
def quotas(counter: InMemoryDailyCounter, clock: ManualClock) -> SourceQuotas:
    return quotas_for(counter, clock)


def accept(quotas: SourceQuotas, shop: Source, count: int = 1) -> None:
    quotas.admit(shop, count)
    quotas.record(shop, count)


# ------------------------------------------------------------------------------------------- the model


def test_a_source_without_limits_has_none() -> None:
    assert Source(source_id="shop").limits == SourceLimits()


@pytest.mark.parametrize(
    "limits",
    [
        {"events_per_second": 0},
        {"events_per_second": -1},
        {"events_per_second": float("inf")},
        {"events_per_day": 0},
        {"messages_per_request": 0},
        {"events_burst": 10},  # a burst of what rate?
        {"events_per_minute": 10},  # a typo is an error, not a limit silently ignored
    ],
)
def test_nonsensical_limits_are_refused(limits: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SourceLimits.model_validate(limits)


def test_the_burst_defaults_to_one_seconds_worth() -> None:
    assert SourceLimits(events_per_second=2.5).burst == 3
    assert SourceLimits(events_per_second=0.1).burst == 1
    assert SourceLimits(events_per_second=10, events_burst=50).burst == 50


# ------------------------------------------------------------------------------------------- token bucket


def test_a_bucket_lets_a_burst_through_then_refills_at_its_rate() -> None:
    bucket = TokenBucket.full(rate=2.0, capacity=4, at=0.0)

    assert [bucket.take(1, at=0.0) for _ in range(4)] == [0.0, 0.0, 0.0, 0.0]
    assert bucket.take(1, at=0.0) == pytest.approx(0.5)
    assert bucket.take(1, at=0.5) == 0.0
    assert bucket.take(2, at=0.5) == pytest.approx(1.0)
    assert bucket.take(2, at=1.5) == 0.0
    # Never more than its capacity, however long it rested.
    assert bucket.take(5, at=1000.0) == 0.0  # over capacity: taken from a full bucket...
    assert bucket.take(1, at=1000.0) == pytest.approx(1.0)  # ...which then owes one token


def test_a_clock_stepping_back_refills_nothing() -> None:
    bucket = TokenBucket.full(rate=1.0, capacity=1, at=10.0)

    assert bucket.take(1, at=10.0) == 0.0
    assert bucket.take(1, at=5.0) == pytest.approx(1.0)
    assert bucket.take(1, at=11.0) == 0.0


# ------------------------------------------------------------------------------------------- events per second


def test_over_the_rate_a_source_is_told_when_to_come_back(quotas: SourceQuotas, clock: ManualClock) -> None:
    shop = source(events_per_second=10, events_burst=20)

    accept(quotas, shop, 15)
    accept(quotas, shop, 5)
    with pytest.raises(RateLimitedError) as refused:
        quotas.admit(shop, 5)

    assert refused.value.code == "rate_limited"
    assert refused.value.retry_after_seconds == 1  # 5 tokens at 10 a second: half a second, rounded up
    clock.advance(timedelta(seconds=0.5))
    accept(quotas, shop, 5)


def test_a_refused_request_takes_no_tokens(quotas: SourceQuotas, clock: ManualClock) -> None:
    shop = source(events_per_second=1, events_burst=3)
    accept(quotas, shop, 3)

    for _ in range(5):
        with pytest.raises(RateLimitedError):
            quotas.admit(shop, 3)
    clock.advance(timedelta(seconds=3))

    accept(quotas, shop, 3)


def test_a_batch_larger_than_the_burst_waits_for_a_full_bucket_then_leaves_it_in_debt(
    quotas: SourceQuotas, clock: ManualClock
) -> None:
    shop = source(events_per_second=10)  # burst 10

    accept(quotas, shop, 4)
    with pytest.raises(RateLimitedError) as refused:
        quotas.admit(shop, 100)
    assert refused.value.retry_after_seconds == 1  # until the bucket is full again
    clock.advance(timedelta(seconds=0.4))
    accept(quotas, shop, 100)
    with pytest.raises(RateLimitedError) as refused:
        quotas.admit(shop, 1)

    # 90 tokens owed, then one: 9.1 s at 10 a second.
    assert refused.value.retry_after_seconds == 10


def test_sources_have_their_own_buckets_and_a_changed_rate_takes_effect(quotas: SourceQuotas) -> None:
    slow = source(events_per_second=1)
    other = Source(source_id="blog", limits=SourceLimits(events_per_second=1))
    accept(quotas, slow)
    accept(quotas, other)

    with pytest.raises(RateLimitedError):
        quotas.admit(slow, 1)
    accept(quotas, source(events_per_second=100))  # the operator raised the limit


# ------------------------------------------------------------------------------------------- events per day


def test_the_daily_quota_refuses_what_would_go_over_and_resets_at_utc_midnight(
    quotas: SourceQuotas, clock: ManualClock
) -> None:
    shop = source(events_per_day=10)
    accept(quotas, shop, 6)

    with pytest.raises(QuotaExceededError) as refused:
        quotas.admit(shop, 5)  # all or nothing, like validation
    accept(quotas, shop, 4)
    with pytest.raises(QuotaExceededError) as refused:
        quotas.admit(shop, 1)

    assert refused.value.code == "quota_exceeded"
    assert refused.value.retry_after_seconds == seconds_until_next_utc_day(clock.now())
    clock.advance(timedelta(seconds=refused.value.retry_after_seconds))
    accept(quotas, shop, 10)


def test_seconds_until_next_utc_day() -> None:
    from datetime import UTC, timezone

    assert seconds_until_next_utc_day(datetime(2026, 3, 2, 23, 59, 30, tzinfo=UTC)) == 30
    assert seconds_until_next_utc_day(datetime(2026, 3, 2, 0, 0, tzinfo=UTC)) == 86_400
    # 07:00 in Ho Chi Minh City is midnight UTC.
    assert seconds_until_next_utc_day(datetime(2026, 3, 3, 6, 0, tzinfo=timezone(timedelta(hours=7)))) == 3600


def test_the_counter_is_written_once_per_thousandth_of_the_quota(
    quotas: SourceQuotas, counter: InMemoryDailyCounter
) -> None:
    shop = source(events_per_day=100_000)
    assert sync_every(100_000) == 100

    for _ in range(99):
        accept(quotas, shop)
    assert counter.adds == []
    accept(quotas, shop)

    assert counter.adds == [("shop", T0.date(), 100)]
    for _ in range(250):
        accept(quotas, shop)
    assert [count for _, _, count in counter.adds] == [100, 100, 100]


def test_containers_share_the_daily_quota_through_the_counter(
    counter: InMemoryDailyCounter, clock: ManualClock
) -> None:
    shop = source(events_per_day=1000)  # each container syncs with every event it accepts
    first, second = quotas_for(counter, clock), quotas_for(counter, clock)

    for _ in range(700):
        accept(first, shop)
    for _ in range(300):
        accept(second, shop)  # started at 0; each sync reads the first container's 700 back

    with pytest.raises(QuotaExceededError):
        second.admit(shop, 1)
    # The first still believes 700: it lets one more in (its sync_every), and its sync reads the truth.
    accept(first, shop)
    with pytest.raises(QuotaExceededError):
        first.admit(shop, 1)
    assert counter.totals[("shop", T0.date())] == 1000 + sync_every(1000)


def test_a_container_that_reaches_the_limit_tells_the_counter_at_once(
    quotas: SourceQuotas, counter: InMemoryDailyCounter
) -> None:
    shop = source(events_per_day=10_000)  # sync every 10

    accept(quotas, shop, 9_993)
    accept(quotas, shop, 7)  # fewer than 10 uncounted, but the quota is now used up

    assert [count for _, _, count in counter.adds] == [9_993, 7]
    with pytest.raises(QuotaExceededError):
        quotas.admit(shop, 1)


def test_the_overshoot_is_bounded_by_what_each_container_holds_uncounted(
    counter: InMemoryDailyCounter, clock: ManualClock
) -> None:
    limit = 10_000
    shop = source(events_per_day=limit)
    containers = [quotas_for(counter, clock) for _ in range(5)]
    accepted = 0
    refused = 0
    for turn in range(20_000):
        container = containers[turn % len(containers)]
        try:
            container.admit(shop, 1)
        except QuotaExceededError:
            refused += 1
            continue
        container.record(shop, 1)
        accepted += 1

    assert refused > 0
    assert limit <= accepted <= limit + len(containers) * sync_every(limit)


def test_a_new_day_starts_a_new_counter(
    quotas: SourceQuotas, counter: InMemoryDailyCounter, clock: ManualClock
) -> None:
    shop = source(events_per_day=2)
    accept(quotas, shop, 2)
    clock.advance(timedelta(days=1))

    accept(quotas, shop, 2)

    assert counter.totals == {("shop", T0.date()): 2, ("shop", (T0 + timedelta(days=1)).date()): 2}


def test_an_unavailable_counter_never_fails_a_request_and_catches_up_later(
    quotas: SourceQuotas, counter: InMemoryDailyCounter
) -> None:
    shop = source(events_per_day=2000)  # sync every 2
    counter.fail = True
    accept(quotas, shop)
    accept(quotas, shop)
    accept(quotas, shop)
    counter.fail = False

    accept(quotas, shop)

    assert counter.adds == [("shop", T0.date(), 4)]


def test_a_source_without_a_daily_quota_never_touches_the_counter(
    quotas: SourceQuotas, counter: InMemoryDailyCounter
) -> None:
    shop = source(events_per_second=1000, messages_per_request=10)
    for _ in range(50):
        accept(quotas, shop, 10)

    assert counter.adds == []


# ------------------------------------------------------------------------------------------- messages per request


def test_more_messages_than_the_source_allows_is_a_400_not_a_429(quotas: SourceQuotas) -> None:
    shop = source(messages_per_request=3, events_per_second=1)
    accept(quotas, shop, 1)

    with pytest.raises(InvalidPayloadError) as refused:
        quotas.admit(shop, 4)  # checked first: retrying later would not help

    assert refused.value.code == "too_many_messages"
    assert "at most 3" in refused.value.reason


# ------------------------------------------------------------------------------------------- through ingest


def test_ingest_stores_nothing_it_refuses_and_counts_only_what_it_stored(
    counter: InMemoryDailyCounter, clock: ManualClock
) -> None:
    shop = source(events_per_day=3, messages_per_request=2)
    store = InMemoryEventStore()
    service = IngestService(
        InMemorySourceDirectory({"wk": shop}), store, now=clock.now, quotas=quotas_for(counter, clock)
    )
    auth = basic_auth("wk")

    def batch(*ids: str) -> None:
        messages = [{"type": "track", **track(messageId=message_id)} for message_id in ids]
        service.ingest(request({"batch": messages}, authorization=auth))

    batch("a", "b")
    with pytest.raises(InvalidPayloadError):
        batch("c", "d", "e")
    with pytest.raises(QuotaExceededError):
        batch("c", "d")
    batch("c")

    assert sorted(event.message_id for event in store.events) == ["a", "b", "c"]
    assert store.put_calls == 2
    assert counter.totals == {("shop", T0.date()): 3}
