"""Readable logs for the local stack: one compact line per thing that happened, stamped with the
stack clock as well as the wall clock, and the recent lines kept for the local page."""

from __future__ import annotations

import logging
import sys
import threading
from collections import deque
from typing import Any

from footprint.adapters.steps import STEP_LOGGER
from footprint.clock import Clock

STACK_LOGGER = "footprint_local"


class StackTimeFilter(logging.Filter):
    """Adds ``stack_time``: what the stack clock (warped or manual) says at the moment of logging."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self._clock = clock

    def filter(self, record: logging.LogRecord) -> bool:
        record.stack_time = self._clock.now().strftime("%Y-%m-%d %H:%M:%S")
        return True


class ActivityLog(logging.Handler):
    """The last lines the stack logged, for the local page."""

    def __init__(self, clock: Clock, capacity: int = 200) -> None:
        super().__init__(level=logging.INFO)
        self._clock = clock
        self._lines: deque[dict[str, Any]] = deque(maxlen=capacity)
        self._lines_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            # Only the first line: tracebacks go to the console, not to the page.
            message = record.getMessage().splitlines()[0] if record.getMessage() else ""
        except Exception:  # a broken log call must not break the stack
            self.handleError(record)
            return
        entry = {"at": self._clock.now().isoformat(timespec="seconds"), "level": record.levelname, "text": message}
        with self._lines_lock:
            self._lines.append(entry)

    def recent(self, limit: int = 60) -> list[dict[str, Any]]:
        """Newest first."""
        with self._lines_lock:
            return list(self._lines)[-limit:][::-1]


# The stack's own lines and the journey steps the real evaluate function logs.
READABLE_LOGGERS = (STACK_LOGGER, STEP_LOGGER)


def configure_console(clock: Clock, level: int = logging.INFO) -> None:
    """One line per event on stderr: ``12:00:01 [stack 2026-03-01 08:00:00] INFO message``."""
    formatter = logging.Formatter("%(asctime)s [stack %(stack_time)s] %(levelname)-7s %(message)s", datefmt="%H:%M:%S")

    def console() -> logging.Handler:
        handler = logging.StreamHandler(sys.stderr)
        handler.addFilter(StackTimeFilter(clock))
        handler.setFormatter(formatter)
        return handler

    # The stack's lines get their own handler: Powertools' Logger(service="footprint") filters every
    # logger whose name contains "footprint" out of the root handlers.
    for name in READABLE_LOGGERS:
        readable = logging.getLogger(name)
        readable.addHandler(console())
        readable.setLevel(level)
        readable.propagate = False
    # Libraries (botocore, moto, werkzeug) only when they warn.
    root = logging.getLogger()
    root.addHandler(console())
    root.setLevel(logging.WARNING)
