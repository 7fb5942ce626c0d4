"""The onsite service's pure parts: dwell thresholds from journeys, outcome events of an ack."""

from __future__ import annotations

from pathlib import Path

from footprint.models.journey import load_journey_yaml
from footprint.models.messages import DeliveryRecord
from footprint.models.segment import Source
from footprint.services.onsite import Visitor, dwell_thresholds, outcome_messages
from tests.builders import T0

SERVICES = (Path(__file__).resolve().parents[2] / "journeys" / "services-consult.yaml").read_text(encoding="utf-8")


def journey(threshold: str, op: str = "gte", event: str = "product_viewed", prop: str = "dwell_seconds"):  # type: ignore[no-untyped-def]
    text = (
        SERVICES.replace("op: gte, value: 15", f"op: {op}, value: {threshold}")
        .replace("event: product_viewed", f"event: {event}")
        .replace("property: dwell_seconds", f"property: {prop}")
    )
    return load_journey_yaml(text)


def test_thresholds_are_the_sorted_distinct_dwell_comparisons_of_product_views() -> None:
    journeys = [
        journey("15"),
        journey("10", op="gt"),
        journey("45", op="eq"),
        journey("15"),
        journey("7.5"),
        journey("60", op="lt"),  # "less than 60 s" is no moment to report
        journey("30", event="Product Viewed"),  # Segment's spelling is the same event
        journey("20", event="page_viewed"),
        journey("25", prop="scroll_depth"),
    ]

    assert dwell_thresholds(journeys) == [7.5, 10, 15, 30, 45]
    assert dwell_thresholds([]) == []


def record(channel: str = "onsite_form", rendered: dict[str, object] | None = None) -> DeliveryRecord:
    return DeliveryRecord(
        idempotency_key="k-1",
        profile_id="p-1",
        journey_id="services-consult",
        node_id="consult_form",
        enrollment_id="e-1",
        channel=channel,  # type: ignore[arg-type]
        status="queued_onsite",
        rendered=rendered or {},
        sent_at=T0,
    )


VISITOR = Visitor(Source(source_id="demo"), anonymous_id="anon-1", user_id=None, profile_ids=("p-1",))


def test_an_outcome_has_a_message_id_per_message_and_action_and_names_its_message() -> None:
    [shown] = outcome_messages(VISITOR, record(), "shown", {})
    [again] = outcome_messages(VISITOR, record(), "shown", {})

    assert shown == again
    assert shown == {
        "type": "track",
        "event": "message_shown",
        "messageId": "k-1:shown",
        "anonymousId": "anon-1",
        "properties": {
            "message_id": "k-1",
            "journey_id": "services-consult",
            "node_id": "consult_form",
            "enrollment_id": "e-1",
            "channel": "onsite_form",
        },
    }
    assert outcome_messages(VISITOR, record("onsite_push"), "dismissed", {})[0]["event"] == "message_dismissed"
    assert outcome_messages(VISITOR, record(), "dismissed", {})[0]["event"] == "form_dismissed"


def test_form_fields_cannot_overwrite_which_message_they_answer() -> None:
    fields = {"node_id": "another_node", "journey_id": "x", "city": "Huế"}

    [submitted] = outcome_messages(VISITOR, record(), "submitted", fields)  # no address field: no identify

    assert submitted["properties"]["node_id"] == "consult_form"
    assert submitted["properties"]["journey_id"] == "services-consult"
    assert submitted["properties"]["city"] == "Huế"
    assert "consent_status" not in submitted["properties"]  # the form showed no consent line
