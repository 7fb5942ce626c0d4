"""A message on its way out: what evaluate puts on SendQueue and send delivers exactly once."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from footprint.models.channels import MessageCategory, MessageChannel
from footprint.models.timing import QuietHours

__all__ = [
    "OUTCOME_EVENTS",
    "DeliveryRecord",
    "DeliveryStatus",
    "MessageCategory",
    "MessageChannel",
    "OutgoingMessage",
]

DeliveryStatus = Literal["sent", "queued_onsite", "skipped", "failed"]

# The event on the visitor's timeline for each delivery status (send records them; the engine records
# message_suppressed itself for the sends it skips). Journeys wait_for these names.
OUTCOME_EVENTS: dict[DeliveryStatus, str] = {
    "sent": "message_sent",
    "failed": "message_failed",
    "skipped": "message_suppressed",
}


class OutgoingMessage(BaseModel):
    """One send step of one enrollment. ``idempotency_key`` is derived from
    (journey id, journey version, enrollment id, node id, occurrence), so a redelivered request
    or a re-run step produces the same key and send delivers it once."""

    model_config = ConfigDict(frozen=True)

    idempotency_key: str
    profile_id: str
    source_id: str
    journey_id: str
    journey_version: int
    enrollment_id: str
    node_id: str
    channel: MessageChannel
    category: MessageCategory = "marketing"
    # Channel content as the journey wrote it (title, body, url, subject, fields, ...); string values
    # are Liquid templates rendered against the profile and `context`.
    content: dict[str, Any] = Field(default_factory=dict)
    # What personalises this message, e.g. the product that triggered the journey.
    context: dict[str, Any] = Field(default_factory=dict)
    requested_at: datetime
    # The journey's quiet hours and default time zone: send checks them again just before the
    # provider call, so a message retried into quiet hours is held, not sent.
    quiet_hours: QuietHours | None = None
    timezone: str | None = None


class DeliveryRecord(BaseModel):
    """The outbox row (MessagesTable) for one message: what was sent, where, and how it went."""

    idempotency_key: str
    profile_id: str
    journey_id: str
    node_id: str
    channel: MessageChannel
    status: DeliveryStatus
    # The enrollment the message belongs to: outcome events (message_shown, form_dismissed, ...) carry it,
    # so a wait_for with match_message hears only its own enrollment's message.
    enrollment_id: str = ""
    detail: str = ""
    rendered: dict[str, Any] = Field(default_factory=dict)
    sent_at: datetime
