"""A source's limits on the tracking API (``limits`` in its ConfigTable JSON); no I/O here.

Every limit is optional: a source without ``limits`` is bounded only by the API's stage throttling
and the request size limits. How each one is enforced (and how approximate it is) is in
``footprint.services.quotas``.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, model_validator


class SourceLimits(BaseModel):
    """``{"events_per_second", "events_burst", "events_per_day", "messages_per_request"}``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Sustained rate of accepted events, per warm track container (a token bucket).
    events_per_second: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    # How many events may arrive at once after a quiet spell; default one second's worth.
    events_burst: int | None = Field(default=None, ge=1)
    # Accepted events per UTC day, across all containers (a shared counter, see services.quotas).
    events_per_day: int | None = Field(default=None, ge=1)
    # Messages in one request (a batch); a tighter cap than the API's own 500.
    messages_per_request: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _burst_needs_a_rate(self) -> SourceLimits:
        if self.events_burst is not None and self.events_per_second is None:
            raise ValueError("events_burst needs events_per_second")
        return self

    @property
    def burst(self) -> int:
        """The token bucket's capacity (only meaningful with ``events_per_second``)."""
        if self.events_burst is not None:
            return self.events_burst
        return max(1, math.ceil(self.events_per_second or 1))


# ---------------------------------------------------------------- profile limits
#
# A profile is one DynamoDB item (at most 400 KB, footprint.adapters.profiles_store), and anyone with
# the public write key can send events for their own visitor. So every collection a profile keeps
# is bounded, and the worst case (every limit reached with the largest values track accepts) stays
# under half the item limit: see tests/unit/test_profile_limits.py. What happens at each limit:
# lists keep the newest entries (the oldest are dropped), maps stop taking new keys and count what
# they did not keep.

# Free traits: at most this many keys (a new key beyond it is not kept and counts in
# ``dropped_trait_count``; existing keys still update), each key at most this long, each value at
# most this many bytes as JSON, and all of them together at most ``MAX_TRAITS_BYTES``.
MAX_TRAITS = 100
MAX_TRAIT_KEY_CHARS = 128
MAX_TRAIT_VALUE_BYTES = 1024
MAX_TRAITS_BYTES = 32 * 1024
# Per-event counters (``event_counts``) and recent times (``recent_events``) for at most this many
# distinct event names, each at most this long; later names count in ``other_event_count``.
MAX_EVENT_NAMES = 100
MAX_COUNTED_EVENT_NAME_CHARS = 128
# How many recent times per event name are kept, for conditions such as "viewed a product 3 times
# in the last 7 days".
RECENT_EVENTS_PER_NAME = 20
# The newest anonymous ids (browsers) of a profile; older ones still resolve through their alias
# items, they are only no longer listed on the profile.
MAX_ANONYMOUS_IDS = 20
# The newest web push subscriptions (browsers that allowed notifications): a message goes to each.
MAX_WEB_PUSH_SUBSCRIPTIONS = 5
MAX_PUSH_ENDPOINT_CHARS = 1024
MAX_PUSH_KEY_CHARS = 256
# The newest profiles merged into this one (kept to finish an adoption a crash interrupted).
MAX_MERGED_PROFILE_IDS = 50
# The last viewed product's properties as JSON; larger properties are dropped, last first.
MAX_LAST_VIEWED_PRODUCT_BYTES = 4 * 1024
# Addresses (RFC 5321's path limit; E.164 is at most 15 digits, formatting allowed) and short texts.
MAX_EMAIL_CHARS = 254
MAX_PHONE_CHARS = 32
MAX_SHORT_TEXT_CHARS = 256
