"""carry_history: on a merge of profiles, one journey history for the person."""

from __future__ import annotations

from footprint.engine import carry_history
from footprint.engine.ids import enrollment_id
from footprint.engine.state import SEEN_INPUT_IDS
from tests.unit.engine.builders import Visitor, at, flow, onsite_push, profile

JOURNEY = flow(
    ("offer", onsite_push()), ("later", {"type": "wait", "duration": "1d"}), re_entry={"policy": "every_time"}
)


def runs(profile_id: str, count: int) -> Visitor:
    """``count`` entries of one visitor, each left in its one-day wait but the last."""
    visitor = Visitor(JOURNEY, profile(profile_id))
    for index in range(count):
        start = at(days=3 * index)
        visitor.does("product_viewed", start)
        if index < count - 1:
            visitor.wake(start + JOURNEY.nodes["later"].duration)  # type: ignore[union-attr]
    return visitor


def test_the_contact_takes_the_other_history_and_its_next_id_is_new() -> None:
    contact, laptop = runs("contact", 3), runs("laptop", 1)
    assert contact.enrollment is not None
    assert laptop.enrollment is not None
    contact.wake(at(days=10))  # the contact's third run finishes
    merged = carry_history(laptop.enrollment.model_copy(update={"profile_id": "contact"}), contact.enrollment)

    assert merged.id == laptop.enrollment.id  # the moved run keeps its id (its timer finds it)
    assert merged.entries == 4
    assert len(merged.sends) == 4
    assert set(contact.enrollment.seen_input_ids) | set(laptop.enrollment.seen_input_ids) == set(merged.seen_input_ids)
    assert merged.merged_enrollment_ids == [contact.enrollment.id]
    used = {enrollment_id("contact", JOURNEY.id, seq) for seq in range(1, 4)}
    assert enrollment_id("contact", JOURNEY.id, merged.entry_seq + 1) not in used


def test_the_history_stays_bounded() -> None:
    contact, laptop = runs("contact", 1), runs("laptop", 1)
    assert contact.enrollment is not None
    assert laptop.enrollment is not None
    many = contact.enrollment.model_copy(update={"seen_input_ids": [f"c{i}" for i in range(SEEN_INPUT_IDS)]})
    merged = carry_history(many, laptop.enrollment)
    assert len(merged.seen_input_ids) == SEEN_INPUT_IDS
    assert merged.seen_input_ids[-1] == f"c{SEEN_INPUT_IDS - 1}"  # the contact's own most recent ones stay
