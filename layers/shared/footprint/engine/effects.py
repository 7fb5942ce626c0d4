"""What the engine asks the world to do. The service performs effects after it has stored the new
enrollment; every effect carries a deterministic id, so performing one twice is harmless."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from footprint.engine.inputs import ProfileView, UtcDatetime, WakeUp
from footprint.engine.state import Enrollment
from footprint.engine.steps import RecordStep
from footprint.models.channels import MessageCategory
from footprint.models.journey import Channel, MessageContent, QuietHours


class _Effect(BaseModel):
    model_config = ConfigDict(frozen=True)


class ScheduleWakeUp(_Effect):
    """Deliver ``wake_up`` back to the engine at ``wake_up.due_at`` (SQS delay under 60 s, else a
    one-time Scheduler schedule named ``wake_up.id``). A due time in the past means "at once"."""

    type: Literal["schedule_wake_up"] = "schedule_wake_up"
    wake_up: WakeUp


class CancelWakeUp(_Effect):
    """The wake-up is no longer needed. Optional to perform: a stale wake-up is ignored anyway."""

    type: Literal["cancel_wake_up"] = "cancel_wake_up"
    wake_up_id: str
    due_at: UtcDatetime


class SendMessage(_Effect):
    """Send one message. ``idempotency_key`` is the same for every retry of the same step."""

    type: Literal["send_message"] = "send_message"
    idempotency_key: str
    profile_id: str
    journey_id: str
    journey_version: int
    enrollment_id: str
    node_id: str
    occurrence: int
    channel: Channel
    category: MessageCategory = "marketing"
    content: MessageContent | None = None
    template: str | None = None
    # Properties of the event that started the journey (the product being viewed...), for templates.
    trigger_properties: dict[str, Any] = Field(default_factory=dict)
    # The journey's quiet hours and time zone, checked again by send just before the provider call.
    quiet_hours: QuietHours | None = None
    default_timezone: str | None = None


class UpdateProfile(_Effect):
    type: Literal["update_profile"] = "update_profile"
    profile_id: str
    journey_id: str
    node_id: str
    set_attributes: dict[str, Any] = Field(default_factory=dict)
    add_tags: list[str] = Field(default_factory=list)
    remove_tags: list[str] = Field(default_factory=list)
    lifecycle_stage: str | None = None

    def apply_to(self, profile: ProfileView) -> ProfileView:
        """The profile view after this change (what later nodes of the same step see)."""
        tags = [tag for tag in profile.tags if tag not in self.remove_tags]
        tags += [tag for tag in self.add_tags if tag not in tags]
        return profile.model_copy(
            update={
                "attributes": {**profile.attributes, **self.set_attributes},
                "tags": tags,
                "lifecycle_stage": self.lifecycle_stage or profile.lifecycle_stage,
            }
        )


class RecordOutcomeEvent(_Effect):
    """Put ``event`` on the visitor's timeline, once per ``event_id``: what became of a message the
    engine decided not to send (``message_suppressed``), so journeys can ``wait_for`` it as they do for
    the outcomes send records (message_sent, message_failed)."""

    type: Literal["record_outcome_event"] = "record_outcome_event"
    profile_id: str
    event: str
    event_id: str
    at: UtcDatetime
    properties: dict[str, Any] = Field(default_factory=dict)


Effect = Annotated[
    ScheduleWakeUp | CancelWakeUp | SendMessage | UpdateProfile | RecordOutcomeEvent | RecordStep,
    Field(discriminator="type"),
]


class Decision(BaseModel):
    """The result of one input.

    ``changed`` True: store ``enrollment`` (its ``revision`` is one more than the stored one, write
    it conditionally on the old one), then perform ``effects`` in order. ``changed`` False: store
    nothing; ``note`` says why (a duplicate input, a stale wake-up, an event this journey does not
    care about...). Only an early wake-up has effects without a change: it is scheduled again."""

    model_config = ConfigDict(frozen=True)

    enrollment: Enrollment | None
    effects: list[Effect] = Field(default_factory=list)
    changed: bool = False
    note: str | None = None
