"""evaluate on moto: services-consult's "15 s of reading without adding the product to the cart",
decided by the events' own timestamps, whatever order the stream delivers them in."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from footprint.adapters.enrollments_store import DynamoEnrollmentStore
from footprint.models.profile import profile_id_for
from tests.builders import tracked
from tests.integration.test_evaluate_journeys import START, drain, evaluate, stack, step_rows
from tests.integration.test_evaluate_profiles import store_event

__all__ = ["stack"]  # the fixture, shared with test_evaluate_journeys

VAY = {"product_id": "vay-nu-he", "name": "Váy nữ phong cách hè"}


def track(stack: dict[str, Any], name: str, seconds: float, anonymous_id: str = "lan", **fields: Any) -> None:
    """``name`` stamped ``seconds`` after START (the 15th second of reading), processed now."""
    event = tracked(event=name, anonymous_id=anonymous_id, at=START + timedelta(seconds=seconds), **fields)
    assert evaluate({"Records": [store_event(stack["tables"], event)]}) == {"batchItemFailures": []}


def view(stack: dict[str, Any], **fields: Any) -> None:
    track(stack, "product_viewed", 0, properties={**VAY, "dwell_seconds": 15}, **fields)


def sent(stack: dict[str, Any]) -> list[str]:
    return [json.loads(message["Body"])["node_id"] for message in drain(stack, "send")]


def test_the_form_goes_out_at_the_fifteenth_second(stack: dict[str, Any]) -> None:
    view(stack)
    assert sent(stack) == ["consult_form"]
    assert drain(stack, "timers") == []  # nothing waited for


def test_an_add_to_cart_while_reading_means_no_form(stack: dict[str, Any]) -> None:
    track(stack, "add_to_cart", -8, properties=VAY)
    stack["clock"].advance(timedelta(seconds=8))
    view(stack)
    assert sent(stack) == []
    assert step_rows(stack["tables"]) == [("viewed_without_cart", "not_entered")]


def test_an_add_to_cart_while_reading_that_arrives_late_ends_the_journey_unconverted(stack: dict[str, Any]) -> None:
    view(stack)
    assert sent(stack) == ["consult_form"]
    stack["clock"].advance(timedelta(seconds=40))
    track(stack, "add_to_cart", -8, properties=VAY)  # held up by retries
    rows = step_rows(stack["tables"])
    assert rows[-1] == ("await_form_response", "exited")
    assert "converted" not in {outcome for _, outcome in rows}
    tables = stack["tables"]
    enrollment = (
        DynamoEnrollmentStore(tables.client, tables.profiles)
        .load_for_profile(profile_id_for("demo", "anon", "lan"))["services-consult"]
        .enrollment
    )
    assert (enrollment.status, enrollment.finish_reason) == ("exited", "add_to_cart PT8S before, arrived late")


def test_an_add_to_cart_before_a_login_counts_for_the_contact(stack: dict[str, Any]) -> None:
    known = tracked("identify", anonymous_id="phone", user_id="u1", at=START - timedelta(days=3))
    evaluate({"Records": [store_event(stack["tables"], known)]})
    # On the laptop: into the cart while reading, a login, then the 15th second's product_viewed.
    track(stack, "add_to_cart", -10, properties=VAY)
    login = tracked("identify", anonymous_id="lan", user_id="u1", at=START - timedelta(seconds=5))
    evaluate({"Records": [store_event(stack["tables"], login)]})
    view(stack, user_id="u1")
    assert sent(stack) == []
    assert step_rows(stack["tables"])[-1] == ("viewed_without_cart", "not_entered")
