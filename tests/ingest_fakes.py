"""In-memory fakes of the ingest ports (SourceDirectory, EventStore).

The contract test in tests/integration/test_track_handler.py runs the same assertions against
these fakes and the DynamoDB adapters, so they cannot drift.
"""

from __future__ import annotations

from collections.abc import Sequence

from footprint.models import keys
from footprint.models.events import TrackedEvent
from footprint.models.segment import Source


class InMemorySourceDirectory:
    def __init__(self, sources: dict[str, Source] | None = None) -> None:
        self.sources = dict(sources or {})
        self.lookups: list[str] = []

    def find_source(self, write_key: str) -> Source | None:
        self.lookups.append(write_key)
        return self.sources.get(write_key)


class InMemoryEventStore:
    """Keyed like EventsTable: a re-sent (source, visitor, messageId) overwrites its item."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], TrackedEvent] = {}
        self.put_calls = 0

    def put_events(self, events: Sequence[TrackedEvent]) -> None:
        self.put_calls += 1
        for event in events:
            key = keys.event_key(event.source_id, event.visitor_id, event.message_id)
            self.items[(key["pk"], key["sk"])] = event

    @property
    def events(self) -> list[TrackedEvent]:
        return list(self.items.values())
