"""Per-source limits on the tracking API: messages per request, events per second, events per day.

A source's ``limits`` (footprint.models.limits) are checked after the request is validated and
before it is stored, so a refused request stores nothing and costs no DynamoDB call:

- **messages per request**: more messages than the source allows is a 400 ``too_many_messages``,
  the code of the API's own 500-message cap. Waiting would not help, so it is not a 429 (Segment
  libraries retry a 429 and drop a 400).
- **events per second**: a token bucket per source in each warm track container, in memory. It is
  approximate by design: N containers accept up to N times the rate, so bound N with the
  template's TrackReservedConcurrency when that matters. A request larger than the bucket is let in
  once the bucket is full and leaves it in debt: a big batch is neither refused forever nor a way
  around the rate. Over the rate: 429 ``rate_limited``, ``Retry-After`` when the bucket will hold it.
- **events per day** (UTC): a counter per source and day in ConfigTable, shared by the containers.
  Each container counts what it accepted and adds that to the counter (one atomic ADD that returns
  the new total) once it holds ``limit // 1000`` uncounted events (at least 1), or as soon as its
  estimate reaches the limit. So a source costs at most about a thousand counter writes a day, whatever
  its traffic, and every other request keeps track's single BatchWriteItem. The estimate (the last
  total read back plus what this container accepted since) never exceeds the true count, so a
  refusal is never wrong; the overshoot is at most ``limit // 1000`` events per container. Over the
  quota: 429 ``quota_exceeded``, ``Retry-After`` until the next UTC midnight.

A counter that cannot be written never fails a request (its events are already stored): the
count is kept and added at the next sync.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

from footprint import clock
from footprint.models.limits import SourceLimits
from footprint.models.segment import Source
from footprint.services.tracking import InvalidPayloadError, StoreUnavailableError, TooManyRequestsError

# A container syncs the daily counter every limit // SYNCS_PER_DAY events it accepts.
SYNCS_PER_DAY = 1000
# Token counts are floats: a refill of exactly the missing tokens must not miss by a rounding error.
_EPSILON = 1e-9


class RateLimitedError(TooManyRequestsError):
    """More events per second than the source's ``events_per_second`` (with its burst)."""


class QuotaExceededError(TooManyRequestsError):
    """The source's ``events_per_day`` is used up until the next UTC midnight."""


class DailyCounter(Protocol):
    def add(self, source_id: str, day: date, count: int) -> int:
        """Add ``count`` to the source's total of ``day`` atomically and return the new total.
        Raises StoreUnavailableError."""
        ...


@dataclass
class TokenBucket:
    """Holds up to ``capacity`` tokens, refilled at ``rate`` per second; one token per event."""

    rate: float
    capacity: int
    tokens: float
    updated_at: float

    @classmethod
    def full(cls, rate: float, capacity: int, at: float) -> TokenBucket:
        return cls(rate=rate, capacity=capacity, tokens=float(capacity), updated_at=at)

    def take(self, count: int, at: float) -> float:
        """Take ``count`` tokens if the bucket holds them (all of it, if ``count`` is over capacity):
        0.0 when taken, else the seconds until they will be there (nothing is taken then)."""
        elapsed = max(0.0, at - self.updated_at)  # a clock that steps back refills nothing
        self.tokens = min(float(self.capacity), self.tokens + elapsed * self.rate)
        self.updated_at = max(self.updated_at, at)
        needed = min(count, self.capacity)
        if self.tokens + _EPSILON < needed:
            return (needed - self.tokens) / self.rate
        self.tokens -= count  # below zero for an oversized request: later requests wait it off
        return 0.0


@dataclass
class _DayTally:
    day: date
    known_total: int = 0  # the shared counter as this container last read it
    uncounted: int = 0  # accepted here since then


def sync_every(events_per_day: int) -> int:
    """How many uncounted events a container may hold before adding them to the shared counter."""
    return max(1, events_per_day // SYNCS_PER_DAY)


def seconds_until_next_utc_day(now: datetime) -> int:
    utc = now.astimezone(UTC)
    midnight = datetime.combine(utc.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    return math.ceil((midnight - utc).total_seconds())


class SourceQuotas:
    """The QuotaGate of IngestService: one per track container (its state is the container's)."""

    def __init__(self, counter: DailyCounter, now: Callable[[], datetime] = clock.now) -> None:
        self.counter = counter
        # The process clock, read per request: days and rates follow the local stack's and the tests' clocks.
        self.now = now
        self._buckets: dict[str, TokenBucket] = {}
        self._tallies: dict[str, _DayTally] = {}
        self._lock = threading.Lock()  # the local stack serves requests on several threads

    def admit(self, source: Source, count: int) -> None:
        limits = source.limits
        if limits.messages_per_request is not None and count > limits.messages_per_request:
            raise InvalidPayloadError(
                "too_many_messages",
                f"the request has {count} messages; this source accepts at most {limits.messages_per_request}",
            )
        with self._lock:
            now = self.now()
            if limits.events_per_day is not None:
                tally = self._tally(source.source_id, now)
                if tally.known_total + tally.uncounted + count > limits.events_per_day:
                    raise QuotaExceededError(
                        "quota_exceeded",
                        f"this source's quota of {limits.events_per_day} events a day (UTC) is used up",
                        seconds_until_next_utc_day(now),
                    )
            if limits.events_per_second is not None:
                wait = self._bucket(source.source_id, limits, now).take(count, now.timestamp())
                if wait > 0:
                    raise RateLimitedError(
                        "rate_limited",
                        f"this source accepts {limits.events_per_second:g} events a second "
                        f"(bursts of {limits.burst}); slow down",
                        math.ceil(wait),
                    )

    def record(self, source: Source, count: int) -> None:
        limit = source.limits.events_per_day
        if limit is None:
            return
        with self._lock:
            tally = self._tally(source.source_id, self.now())
            tally.uncounted += count
            if tally.uncounted < sync_every(limit) and tally.known_total + tally.uncounted < limit:
                return
            try:
                total = self.counter.add(source.source_id, tally.day, tally.uncounted)
            except StoreUnavailableError:
                return  # kept: added with the next sync
            tally.known_total, tally.uncounted = total, 0

    def _tally(self, source_id: str, now: datetime) -> _DayTally:
        day = now.astimezone(UTC).date()
        tally = self._tallies.get(source_id)
        if tally is None or tally.day != day:
            # A new day starts at zero; the last day's uncounted events no longer matter.
            tally = self._tallies[source_id] = _DayTally(day)
        return tally

    def _bucket(self, source_id: str, limits: SourceLimits, now: datetime) -> TokenBucket:
        rate, capacity = float(limits.events_per_second or 0), limits.burst
        bucket = self._buckets.get(source_id)
        if bucket is None or (bucket.rate, bucket.capacity) != (rate, capacity):
            # First request, or the source's limits changed (its cached config was refreshed).
            bucket = self._buckets[source_id] = TokenBucket.full(rate, capacity, now.timestamp())
        return bucket
