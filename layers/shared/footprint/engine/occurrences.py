"""Journeys that run per occurrence (``per_occurrence: {property: order_id}``): one enrollment per
order, per cart, side by side for one visitor, instead of one per journey.

Each enrollment has a **slot**: the journey id, and for such a journey a digest of the occurrence
(the trigger event's value of the property). The service keeps enrollments by slot and offers an
event to the slots it belongs to (``belongs_to``): a trigger event to the slot of its own value, any
other event to every open enrollment of the journey unless the event names another occurrence.
"""

from __future__ import annotations

import hashlib

from footprint.engine.inputs import EventInput
from footprint.engine.state import Enrollment
from footprint.models.journey import Journey

MAX_OCCURRENCE_LENGTH = 200


def occurrence_of(journey: Journey, event: EventInput) -> str | None:
    """The occurrence an event names for ``journey`` (None: the journey runs once per visitor, or
    the event does not carry the property)."""
    if journey.per_occurrence is None:
        return None
    value = event.properties.get(journey.per_occurrence.property)
    if value is None or isinstance(value, dict | list | bool) or str(value) == "":
        return None
    return str(value)[:MAX_OCCURRENCE_LENGTH]


def slot(journey_id: str, occurrence: str | None) -> str:
    """Where an enrollment is kept: ``journey_id``, or ``journey_id#<digest>`` for one occurrence."""
    if occurrence is None:
        return journey_id
    return f"{journey_id}#{hashlib.sha256(occurrence.encode()).hexdigest()[:16]}"


def slot_of(enrollment: Enrollment) -> str:
    return slot(enrollment.journey_id, enrollment.occurrence)


def belongs_to(journey: Journey, enrollment: Enrollment, event: EventInput) -> bool:
    """Whether an open enrollment hears ``event``: not when the event names another occurrence."""
    named = occurrence_of(journey, event)
    return named is None or enrollment.occurrence is None or named == enrollment.occurrence
