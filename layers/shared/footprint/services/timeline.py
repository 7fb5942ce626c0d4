"""Events Footprint itself puts on a visitor's timeline (outcome events, unsubscribes, email feedback).

They take the normal event path: written to EventsTable under the profile's own identity, then
evaluate folds them into the profile and offers them to journeys, so ``wait_for`` and branches see
them as they see the visitor's events. Ids are deterministic, so a retry stores the same event again
and evaluate, which reacts only to new events, applies it once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from footprint.models.events import TrackedEvent, check_event_timestamp
from footprint.models.profile import Profile
from footprint.services.profiles import ProfileLookup, live_profile

logger = logging.getLogger(__name__)


class EventStore(Protocol):
    def put_events(self, events: Sequence[TrackedEvent]) -> None: ...


class ProfileEvents:
    """Writes an event on a profile's timeline, under an identity evaluate resolves to that profile."""

    def __init__(self, profiles: ProfileLookup, store: EventStore) -> None:
        self.profiles = profiles
        self.store = store

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
        """Store event ``name`` with messageId ``event_id``; False if the profile does not exist."""
        profile = live_profile(self.profiles, profile_id)
        if profile is None:
            return False
        return self.record_on(profile, name, event_id=event_id, properties=properties, at=at, now=now)

    def record_on(
        self,
        profile: Profile,
        name: str,
        *,
        event_id: str,
        properties: Mapping[str, Any],
        at: datetime,
        now: datetime,
    ) -> bool:
        """The same, for a profile the caller already holds (evaluate: no read)."""
        if profile.user_id:
            identity: dict[str, str | None] = {"user_id": profile.user_id, "anonymous_id": None}
        elif profile.anonymous_ids:
            identity = {"user_id": None, "anonymous_id": profile.anonymous_ids[0]}
        else:
            logger.warning("profile %s has no identity to record %s under", profile.profile_id, name)
            return False
        if check_event_timestamp(at, received_at=now) is not None:
            at = now  # a provider clock far ahead of ours (or a time out of range): stamped on receipt
        event = TrackedEvent(
            source_id=profile.source_id,
            message_id=event_id,
            type="track",
            event=name,
            properties=dict(properties),
            context={"library": {"name": "footprint"}},
            timestamp=at,
            received_at=now,
            # Footprint vouches for it: a link the stack signed, SES's feedback, the engine's own outcome.
            trust="server",
            **identity,
        )
        self.store.put_events([event])
        return True
