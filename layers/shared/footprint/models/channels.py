"""The channels Footprint sends on, one name everywhere (journey YAML, messages, reports, docs)."""

from __future__ import annotations

from typing import Literal

MessageChannel = Literal["onsite_form", "onsite_push", "web_push", "email", "sms", "zalo_zns", "webhook"]
