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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from footprint.clock import Clock
from footprint.email_links import InvalidLinkError, LinkClaims, message_links, verify
from footprint.models.messages import DeliveryRecord
from footprint.services.timeline import ProfileEvents

logger = logging.getLogger(__name__)


class MessageLookup(Protocol):
    def get(self, idempotency_key: str) -> DeliveryRecord | None: ...


class UnknownRecipientError(InvalidLinkError):
    """The link is genuine but its profile is gone (erased): nothing to record."""


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
