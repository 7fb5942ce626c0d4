"""The one clock every function reads.

In Lambda it is the system clock. The local stack swaps in a warped clock so a two-day journey
can be watched in minutes, and tests swap in a manual clock they move by hand. The engine never
reads it: services pass ``now`` into the engine explicitly.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    def real_seconds_until(self, moment: datetime) -> float:
        """How many wall-clock seconds until ``moment`` on this clock (0 if it has passed)."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def real_seconds_until(self, moment: datetime) -> float:
        return max(0.0, (moment - self.now()).total_seconds())


class WarpClock:
    """Runs ``factor`` times faster than the wall clock, from ``start`` (default: now)."""

    def __init__(self, factor: float = 1.0, start: datetime | None = None) -> None:
        if factor <= 0:
            raise ValueError("warp factor must be positive")
        self.factor = factor
        self._real_origin = datetime.now(UTC)
        self._virtual_origin = start or self._real_origin
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            elapsed = datetime.now(UTC) - self._real_origin
            return self._virtual_origin + elapsed * self.factor

    def real_seconds_until(self, moment: datetime) -> float:
        return max(0.0, (moment - self.now()).total_seconds() / self.factor)

    def advance(self, delta: timedelta) -> None:
        """Jump ahead (the local page's "skip ahead" button)."""
        with self._lock:
            self._virtual_origin += delta


class ManualClock:
    """Stands still until a test moves it."""

    def __init__(self, start: datetime, pending_delay: float = 1.0) -> None:
        self._now = start
        # Real seconds before a not-yet-due timer is looked at again (0: at once, for tests that
        # drain queues by hand).
        self.pending_delay = pending_delay
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def real_seconds_until(self, moment: datetime) -> float:
        # Time only moves when the test says so; a timer that is not yet due is retried soon.
        return 0.0 if moment <= self.now() else self.pending_delay

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._now += delta

    def set(self, moment: datetime) -> None:
        with self._lock:
            self._now = moment


_current: Clock = SystemClock()


def use_clock(clock: Clock) -> None:
    """Replace the process clock (local stack and tests only)."""
    global _current  # noqa: PLW0603 - one clock per process is the point
    _current = clock


def current_clock() -> Clock:
    return _current


def now() -> datetime:
    return _current.now()
