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
