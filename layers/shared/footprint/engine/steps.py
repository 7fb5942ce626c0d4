"""What a journey step is: the one effect send records too (a send that failed or was skipped), kept apart
from the other effects so that send does not build the journey models to record one."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from footprint.models.channels import MessageChannel as Channel
from footprint.models.timing import UtcDatetime

StepOutcome = Literal[
    "pending",  # a trigger with `unless` matched; entry waits out the window
    "not_entered",  # the pending entry was cancelled (the `unless` event, an exit or the goal happened)
    "entered",
    "waiting",  # arrived at a wait or wait_for node
    "happened",  # the awaited event arrived (wait_for)
    "timed_out",  # it did not (wait_for)
    "branched",  # condition or split; `detail` names the branch
    "holdout",  # put in the split's control group
    "sent",
    "held",  # a send inside quiet hours, held until they end
    "skipped",  # a send not made; `detail` says why (quiet_hours, frequency_cap, unreachable)
    "failed",  # recorded by send: the message could not be delivered; `detail` says why (a template error...)
    "updated",  # profile changed
    "completed",  # reached an exit node, or a holdout's goal window ended
    "exited",  # exit criteria
    "converted",  # goal reached
    # What became of a message, from its outcome events (footprint.services.journeys records them):
    "accepted",  # the provider took it (message_sent)
    "delivered",  # the provider says it reached the inbox (message_delivered)
    "shown",  # an onsite message was on the page (message_shown)
    "opened",  # an email was opened (message_opened)
    "clicked",  # message_clicked
    "dismissed",  # closed without acting (message_dismissed, form_dismissed)
    "submitted",  # a form was sent (form_submitted)
    "bounced",  # message_bounced
    "complained",  # marked as spam (message_complained)
]

# The outcome event that tells each of those, as send, the onsite routes, the service worker and SES
# feedback name them.
MESSAGE_OUTCOME_STEPS: dict[str, StepOutcome] = {
    "message_sent": "accepted",
    "message_delivered": "delivered",
    "message_shown": "shown",
    "message_opened": "opened",
    "message_clicked": "clicked",
    "message_dismissed": "dismissed",
    "form_dismissed": "dismissed",
    "form_submitted": "submitted",
    "message_bounced": "bounced",
    "message_complained": "complained",
}


class RecordStep(BaseModel):
    """One line of the journey's history (funnel, drop-off, channel attribution). ``key`` is unique
    per step, so a re-run step is recorded once."""

    model_config = ConfigDict(frozen=True)

    type: Literal["record_step"] = "record_step"
    key: str
    at: UtcDatetime
    profile_id: str
    journey_id: str
    journey_version: int
    enrollment_id: str
    node_id: str
    stage: str | None = None
    outcome: StepOutcome
    detail: str | None = None
    channel: Channel | None = None
    idempotency_key: str | None = None
