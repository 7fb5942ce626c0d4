"""A tracking call as Footprint stores it, after validation and clock-skew correction.

The HTTP payloads (Segment's spec) are parsed in ``footprint.models.segment``; this is the
normalised form written to EventsTable and read back from its stream by evaluate.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

EventType = Literal["track", "identify", "page", "screen", "alias", "group"]
# Who vouches for the identity a call names (set by track, see footprint.identity and the trust model
# in docs/architecture.md): "server" = a trusted source's write key, which only a site's backend
# holds; "signed" = a browser call whose userId carries a valid user_hash; "browser" = nobody (the
# public write key alone). Events stored before the trust model have none and count as "browser".
Trust = Literal["browser", "signed", "server"]


class TrackedEvent(BaseModel):
    """One accepted call (track, identify, page, ...) from one source."""

    model_config = ConfigDict(frozen=True)

    source_id: str
    message_id: str
    type: EventType
    # `event` for track calls; page/screen calls get their name in `name` and `event` = "page_viewed".
    event: str | None = None
    name: str | None = None
    anonymous_id: str | None = None
    user_id: str | None = None
    previous_id: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)
    # When it happened, corrected for the client's clock skew (Segment's rule).
    timestamp: datetime
    original_timestamp: datetime | None = None
    sent_at: datetime | None = None
    received_at: datetime
    trust: Trust = "browser"

    @property
    def visitor_id(self) -> str:
        """The id the event arrived under: the device's anonymous id, else the user id."""
        return self.anonymous_id or self.user_id or ""

    @property
    def identity_verified(self) -> bool:
        """Whether the userId of this call is proven (a trusted source, or a valid user_hash)."""
        return self.trust != "browser"

    @property
    def canonical_event(self) -> str:
        """The event name journeys match on: snake_case, so Segment's spec names work too."""
        return canonical_event_name(self.event or self.type)


def canonical_event_name(name: str) -> str:
    """Segment's "Product Viewed" and Footprint's "product_viewed" are the same event."""
    return "_".join(name.strip().lower().replace("-", " ").split())
