"""Poison records: inputs evaluate can never process, set aside at once instead of retried.

A record is poison when the models or the engine refuse it: it is not an event item, or its event
or wake-up does not validate (a pydantic ``ValidationError``, wrapped or not in
``PoisonRecordError``). Retrying cannot change that, and on the stream every retry holds the shard
behind it, so evaluate records it in EvaluatePoisonQueue and reports it processed. Every other
error (DynamoDB throttling, a conflicting write, a timeout, a bug) is retried as before, through the
partial batch response.

The records of one invocation are parked together after the batch (``PoisonTriage.park``); one that
could not be parked is reported failed, so it is retried (and parked then) rather than lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar

from pydantic import ValidationError

logger = logging.getLogger(__name__)


class PoisonRecordError(Exception):
    """A record that can never be processed (footprint.services.evaluate raises it)."""


# What makes a record poison; anything else is retried.
POISON_ERRORS: tuple[type[Exception], ...] = (PoisonRecordError, ValidationError)
# The reason kept with a record: enough to see what was refused, bounded (a ValidationError may be long).
MAX_REASON_LENGTH = 2_000

PoisonSource = Literal["events_stream", "timers_queue"]
Record = TypeVar("Record")


@dataclass(frozen=True)
class PoisonRecord:
    """One refused record, as the event source delivered it."""

    item_id: str  # what the partial batch response names: a stream SequenceNumber, an SQS messageId
    source: PoisonSource
    reason: str
    record: Mapping[str, Any]

    def message(self) -> dict[str, Any]:
        """The poison queue's message body: what a redrive needs (docs/architecture.md, "Poison records")."""
        return {"source": self.source, "item_id": self.item_id, "reason": self.reason, "record": dict(self.record)}


class PoisonQueue(Protocol):
    def park(self, records: Sequence[PoisonRecord]) -> list[str]:
        """Record every one (batched); the ``item_id`` of each that could not be recorded."""
        ...


@dataclass
class PoisonTriage:
    """One invocation's poison records: ``guard`` each record's handler, then ``park`` them together."""

    queue: PoisonQueue | None
    pending: list[PoisonRecord] = field(default_factory=list)

    def guard(
        self,
        source: PoisonSource,
        item_id: Callable[[Record], str],
        raw: Callable[[Record], Mapping[str, Any]],
        handle: Callable[[Record], None],
    ) -> Callable[[Record], None]:
        """``handle`` with poison set aside instead of raised (without a queue, it is raised: retried as before)."""

        def guarded(record: Record) -> None:
            try:
                handle(record)
            except POISON_ERRORS as error:
                if self.queue is None:
                    raise
                reason = f"{type(error).__name__}: {error}"[:MAX_REASON_LENGTH]
                self.pending.append(PoisonRecord(item_id(record), source, reason, raw(record)))
                logger.warning("poison record set aside", extra={"source": source, "item_id": item_id(record)})

        return guarded

    def park(self) -> list[str]:
        """Record the pending poison records; the ids of those that could not be (to report failed)."""
        if not self.pending or self.queue is None:
            return []
        records, self.pending = self.pending, []
        return self.queue.park(records)


class AfterAFailedRecordError(Exception):
    """Not processed: an earlier record of this stream batch failed and will be retried first."""


class InStreamOrder(Generic[Record]):
    """Stops a stream batch at its first failed record. The stream retries from the lowest failed
    sequence number, so the records after it come back anyway; processing them now would run a
    visitor's later events (a login, a purchase) before the earlier one that failed. Poison records
    do not count as failures (the triage inside ``handle`` sets them aside)."""

    def __init__(self, handle: Callable[[Record], None]) -> None:
        self.handle = handle
        self.failed = False

    def __call__(self, record: Record) -> None:
        if self.failed:
            raise AfterAFailedRecordError("an earlier record of this batch failed")
        try:
            self.handle(record)
        except Exception:
            self.failed = True
            raise
