"""The channels Footprint sends on, one name everywhere (journey YAML, messages, reports, docs)."""

from __future__ import annotations

from typing import Literal

MessageChannel = Literal["onsite_form", "onsite_push", "web_push", "email", "sms", "zalo_zns", "webhook"]
# Marketing messages need the visitor's consent and carry an unsubscribe link; transactional ones
# (an order confirmation) need only a deliverable address and carry no promotion.
MessageCategory = Literal["marketing", "transactional"]
