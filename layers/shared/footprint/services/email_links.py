"""What the public email links do: unsubscribe in one click, and forward a click to the message's own link.

Both record a visitor event through the normal event path (EventsTable, then evaluate folds it into
the profile and moves journeys): ``unsubscribed`` (channel email: the profile's email consent
becomes "denied") and ``message_clicked`` (what ``wait_for`` with ``match_message`` waits for).
Event ids are derived from the link (and, for an unsubscribe, the UTC day), so a repeated POST or
click stores the same event again and evaluate, which reacts only to new events, applies it once:
both routes are idempotent.

A click forwards only to a URL that the token signs *and* that is a link of that message's rendered
HTML (its outbox row), so a leaked key alone cannot turn the route into an open redirect for URLs
Footprint never sent. A message whose content was too large to keep in the outbox is checked by the
signature alone.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from footprint.clock import Clock
from footprint.email_links import InvalidLinkError, LinkClaims, message_links, verify
from footprint.models.events import TrackedEvent, check_event_timestamp
from footprint.models.messages import DeliveryRecord
from footprint.models.profile import Profile
from footprint.services.profiles import live_profile

logger = logging.getLogger(__name__)


class ProfileLookup(Protocol):
    def get_profile(self, profile_id: str) -> Profile | None: ...


class EventStore(Protocol):
    def put_events(self, events: Sequence[TrackedEvent]) -> None: ...


class MessageLookup(Protocol):
    def get(self, idempotency_key: str) -> DeliveryRecord | None: ...


class UnknownRecipientError(InvalidLinkError):
    """The link is genuine but its profile is gone (erased): nothing to record."""


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
        profile = self._live_profile(profile_id)
        if profile is None:
            return False
        if profile.user_id:
            identity: dict[str, str | None] = {"user_id": profile.user_id, "anonymous_id": None}
        elif profile.anonymous_ids:
            identity = {"user_id": None, "anonymous_id": profile.anonymous_ids[0]}
        else:
            logger.warning("profile %s has no identity to record %s under", profile_id, name)
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
            # Footprint vouches for it: the link was signed by the stack, the feedback came from SES.
            trust="server",
            **identity,
        )
        self.store.put_events([event])
        return True

    def _live_profile(self, profile_id: str) -> Profile | None:
        return live_profile(self.profiles, profile_id)


@dataclass(frozen=True)
class Unsubscribed:
    profile_id: str
    channel: str


class EmailLinkService:
    def __init__(
        self, *, key: Callable[[], bytes], events: ProfileEvents, messages: MessageLookup, clock: Clock
    ) -> None:
        # ``key`` reads the signing key, cached by the adapter.
        self.key = key
        self.events = events
        self.messages = messages
        self.clock = clock

    def check_unsubscribe(self, token: str | None) -> LinkClaims:
        """The claims of a genuine unsubscribe link (the confirmation page shows nothing more)."""
        return verify(self.key(), token, "unsubscribe")

    def unsubscribe(self, token: str | None, method: str) -> Unsubscribed:
        claims = verify(self.key(), token, "unsubscribe")
        now = self.clock.now()
        properties = {**claims.properties(), "method": method}
        # Once a day per link: a mail client's repeated POSTs record one event, and the same old link
        # still unsubscribes on a later day, after the visitor opted in again.
        event_id = "email-unsubscribe-" + _digest(claims.profile_id, claims.message_id, now.date().isoformat())
        if not self.events.record(
            claims.profile_id, "unsubscribed", event_id=event_id, properties=properties, at=now, now=now
        ):
            raise UnknownRecipientError("this link's recipient is no longer known")
        return Unsubscribed(profile_id=claims.profile_id, channel=claims.channel)

    def click(self, token: str | None) -> str:
        """The URL to forward to, after recording ``message_clicked``."""
        claims = verify(self.key(), token, "click")
        record = self.messages.get(claims.message_id)
        if record is None or record.profile_id != claims.profile_id:
            raise InvalidLinkError("this link's message is unknown")
        links = message_links(str(record.rendered.get("html") or ""))
        if not record.rendered.get("truncated") and claims.url not in links:
            raise InvalidLinkError("this link is not one of its message's links")
        now = self.clock.now()
        properties = {**claims.properties(), "url": claims.url}
        event_id = "email-click-" + _digest(claims.profile_id, claims.message_id, claims.url)
        if not self.events.record(
            claims.profile_id, "message_clicked", event_id=event_id, properties=properties, at=now, now=now
        ):
            logger.info("click on a message of a profile that is gone: forwarded, not recorded")
        return claims.url


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
