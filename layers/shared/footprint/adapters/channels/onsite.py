"""Onsite form and onsite push: shown by the snippet in the visitor's open page, nothing is sent.

The outbox row written for the message (status "queued_onsite", ``onsite_inbox`` = the profile id)
is the visitor's inbox; the browser fetches its pending rows with ``POST /v1/onsite`` and marks them
shown with ``POST /v1/onsite/ack`` (footprint.services.onsite, footprint.adapters.outbox). Rendered
content (title, body, fields, offer, ...) is kept in the row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from footprint.models.messages import OutgoingMessage
from footprint.models.profile import Profile
from footprint.services.send import DeliveryResult


class OnsiteInboxSender:
    def send(self, message: OutgoingMessage, profile: Profile, rendered: Mapping[str, Any]) -> DeliveryResult:
        return DeliveryResult("queued_onsite", "waiting for the visitor's browser to fetch it")
