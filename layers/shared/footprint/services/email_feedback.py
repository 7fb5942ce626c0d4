"""SES's word on each email, fed back as visitor events.

Path: the stack's SES configuration set publishes delivery, bounce, complaint and open events to
EventBridge; a rule puts them on EmailFeedbackQueue; EmailFeedbackFunction turns each into a visitor
event written through the normal event path, so evaluate folds it into the profile and journeys can
``wait_for`` or branch on it:

    Delivery -> message_delivered    Bounce -> message_bounced    Complaint -> message_complained
    Open     -> message_opened       Click  -> message_clicked

Properties: ``message_id``, ``journey_id``, ``node_id``, ``enrollment_id`` and ``channel`` ("email"),
read back from the SES message tags the send function set, plus what the event tells (bounce type,
the recipient address, the clicked link). The event's messageId is derived from the EventBridge
event id, so a redelivered SQS message stores the same event and folds once. A permanent bounce or
a complaint suppresses the address (footprint.models.profile.fold_event). Events of emails Footprint
did not send (no tags) are ignored.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from footprint.clock import Clock
from footprint.email_links import TAG_MESSAGE, TAG_PROFILE, InvalidLinkError, decode_tag
from footprint.services.timeline import ProfileEvents

logger = logging.getLogger(__name__)

# SES eventType -> the visitor event it becomes. Send, Reject, Rendering Failure, DeliveryDelay and
# Subscription tell a visitor's journey nothing (send itself records what it handed to SES).
FEEDBACK_EVENTS = {
    "Delivery": "message_delivered",
    "Bounce": "message_bounced",
    "Complaint": "message_complained",
    "Open": "message_opened",
    "Click": "message_clicked",
}
_DATETIME = TypeAdapter(datetime)


class MalformedFeedbackError(ValueError):
    """A queue message that is not an SES event from EventBridge (it goes to the dead-letter queue)."""


class EmailFeedbackService:
    def __init__(self, events: ProfileEvents, clock: Clock) -> None:
        self.events = events
        self.clock = clock

    def on_message(self, body: str) -> str | None:
        """Record the event of one EmailFeedbackQueue message; its name, or None when ignored."""
        try:
            envelope = json.loads(body)
            detail = envelope["detail"]
            event_id = str(envelope["id"])
            mail = detail["mail"]
        except (ValueError, KeyError, TypeError) as error:
            raise MalformedFeedbackError(f"not an SES event from EventBridge: {error}") from error
        event_type = detail.get("eventType") or detail.get("notificationType")
        name = FEEDBACK_EVENTS.get(str(event_type))
        if name is None:
            return None
        tags: dict[str, Any] = mail.get("tags") or {}
        profile_id = _tag(tags, TAG_PROFILE)
        encoded_message = _tag(tags, TAG_MESSAGE)
        if not profile_id or not encoded_message:
            logger.info("SES %s event of an email Footprint did not send: ignored", event_type)
            return None
        try:
            message_id = decode_tag(encoded_message)
        except InvalidLinkError:
            logger.warning("SES %s event with an unreadable %s tag: ignored", event_type, TAG_MESSAGE)
            return None
        properties: dict[str, Any] = {
            "message_id": message_id,
            "journey_id": _tag(tags, "journey_id"),
            "node_id": _tag(tags, "node_id"),
            "enrollment_id": _tag(tags, "enrollment_id"),
            "channel": "email",
            "ses_message_id": mail.get("messageId"),
            **_specifics(str(event_type), detail),
        }
        now = self.clock.now()
        at = _when(detail.get(str(event_type).lower()), envelope.get("time"), now)
        recorded = self.events.record(
            profile_id,
            name,
            event_id=f"ses-{event_id}",
            properties={key: value for key, value in properties.items() if value is not None},
            at=at,
            now=now,
        )
        if not recorded:
            logger.info("SES %s event for profile %s, which is gone: ignored", event_type, profile_id)
            return None
        return name


def _tag(tags: dict[str, Any], name: str) -> str | None:
    """SES publishes each tag as a list of values."""
    values = tags.get(name)
    if isinstance(values, list) and values and isinstance(values[0], str):
        return values[0]
    return values if isinstance(values, str) else None


def _specifics(event_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    part = detail.get(event_type.lower())
    if not isinstance(part, dict):
        return {}
    match event_type:
        case "Bounce":
            recipients = part.get("bouncedRecipients") or [{}]
            return {
                "bounce_type": part.get("bounceType"),
                "bounce_sub_type": part.get("bounceSubType"),
                "email": _address(recipients[0].get("emailAddress")),
                "diagnostic": str(recipients[0].get("diagnosticCode") or "")[:500] or None,
            }
        case "Complaint":
            recipients = part.get("complainedRecipients") or [{}]
            return {
                "complaint_type": part.get("complaintFeedbackType"),
                "email": _address(recipients[0].get("emailAddress")),
            }
        case "Click":
            return {"url": part.get("link")}
        case _:
            return {}


def _address(value: Any) -> str | None:
    return value.strip().lower() if isinstance(value, str) and value.strip() else None


def _when(part: Any, envelope_time: Any, now: datetime) -> datetime:
    for candidate in ((part or {}).get("timestamp") if isinstance(part, dict) else None, envelope_time):
        if candidate:
            try:
                return _DATETIME.validate_python(candidate)
            except ValidationError:
                continue
    return now
