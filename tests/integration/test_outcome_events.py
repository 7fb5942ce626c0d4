"""A send the engine skips becomes ``message_suppressed`` on the visitor's timeline, on moto with the
real evaluate handler: the event lands in EventsTable under the visitor's own identity, comes back
through the stream, and a journey waiting for it with ``match_message`` falls back to another channel.
Duplicate triggers record it once. Marketing email is opt-in unless the source is set opt-out. The
message's own outcome events (message_sent, message_opened...) become steps of its node."""

from __future__ import annotations

import json
from typing import Any

import pytest

from footprint.adapters import wiring
from footprint.adapters.events_store import tracked_event_from_stream_image
from footprint.adapters.journey_catalog import DynamoJourneyCatalog
from footprint.adapters.steps import step_from_item
from footprint.models.journey import load_journey_yaml
from tests.builders import tracked
from tests.integration.test_evaluate_journeys import START, drain, evaluate, stack
from tests.integration.test_evaluate_profiles import store_event, stream_record

__all__ = ["stack"]  # the fixture: moto tables, queues, a schedule group and a moved clock

EMAIL_OR_ONSITE = """
id: checkout-reminder
name: Checkout reminder, by email or else on the site
status: active
version: 1
nodes:
  started: {type: trigger, event: checkout_started, next: mail}
  mail:
    type: send
    channel: email
    content: {subject: "Đơn hàng của bạn đang chờ", html: "<p>Hoàn tất đơn hàng</p>"}
    next: mail_suppressed
  mail_suppressed:
    type: wait_for
    event: message_suppressed
    match_message: mail
    timeout: PT1H
    happened: on_site
    timed_out: done
  on_site:
    type: send
    channel: onsite_push
    content: {title: "Đơn hàng của bạn đang chờ", url: "/checkout"}
    next: done
  done: {type: exit}
"""


def suppressed_items(stack: dict[str, Any]) -> list[dict[str, Any]]:
    tables = stack["tables"]
    items = tables.client.scan(TableName=tables.events)["Items"]
    return [item for item in items if json.loads(item["body"]["S"])["event"] == "message_suppressed"]


def test_an_email_the_engine_cannot_send_is_suppressed_on_the_timeline_and_the_journey_falls_back(
    stack: dict[str, Any],
) -> None:
    tables = stack["tables"]
    DynamoJourneyCatalog(tables.client, tables.config, cache_seconds=0).publish(
        load_journey_yaml(EMAIL_OR_ONSITE), EMAIL_OR_ONSITE
    )
    trigger = store_event(tables, tracked(event="checkout_started", anonymous_id="lan", at=START))
    assert evaluate({"Records": [trigger]}) == {"batchItemFailures": []}
    assert evaluate({"Records": [trigger]}) == {"batchItemFailures": []}  # the stream delivers it again

    [item] = suppressed_items(stack)  # an anonymous visitor has no email address
    outcome = tracked_event_from_stream_image(item)
    assert (outcome.anonymous_id, outcome.user_id, outcome.trust) == ("lan", None, "server")
    assert outcome.properties["reason"] == "unreachable"
    assert outcome.properties["node_id"] == "mail"
    assert outcome.properties["channel"] == "email"
    assert drain(stack, "send") == []  # nothing went to email

    assert evaluate({"Records": [stream_record(item, sequence="suppressed")]}) == {"batchItemFailures": []}
    [fallback] = [json.loads(m["Body"]) for m in drain(stack, "send")]
    assert (fallback["journey_id"], fallback["node_id"], fallback["channel"]) == (
        "checkout-reminder",
        "on_site",
        "onsite_push",
    )
    assert fallback["content"]["title"] == "Đơn hàng của bạn đang chờ"


def hoa_signs_up(stack: dict[str, Any], traits: dict[str, Any]) -> None:
    """The shop's backend (a trusted source) names Hoa and her address, as after a checkout."""
    tables = stack["tables"]
    # Published first: evaluate keeps the active journeys cached for a while.
    DynamoJourneyCatalog(tables.client, tables.config, cache_seconds=0).publish(
        load_journey_yaml(EMAIL_OR_ONSITE), EMAIL_OR_ONSITE
    )
    identify = tracked("identify", user_id="u-hoa", anonymous_id="hoa", at=START, traits=traits)
    assert evaluate({"Records": [store_event(stack["tables"], identify)]}) == {"batchItemFailures": []}


def reminder_for_hoa(stack: dict[str, Any]) -> None:
    tables = stack["tables"]
    started = tracked(event="checkout_started", user_id="u-hoa", anonymous_id="hoa", at=START)
    assert evaluate({"Records": [store_event(tables, started)]}) == {"batchItemFailures": []}


def test_an_address_without_consent_gets_no_marketing_email_under_the_default_opt_in(stack: dict[str, Any]) -> None:
    hoa_signs_up(stack, {"email": "hoa@example.com"})
    reminder_for_hoa(stack)

    [item] = suppressed_items(stack)
    assert tracked_event_from_stream_image(item).properties["reason"] == "unreachable"
    assert drain(stack, "send") == []


def test_a_recorded_yes_lets_the_email_go(stack: dict[str, Any]) -> None:
    hoa_signs_up(stack, {"email": "hoa@example.com", "consent": {"email": True}})
    reminder_for_hoa(stack)
    assert suppressed_items(stack) == []
    [email] = [json.loads(m["Body"]) for m in drain(stack, "send")]
    assert (email["channel"], email["node_id"]) == ("email", "mail")


def test_a_source_set_opt_out_reaches_an_address_until_its_owner_says_no(
    stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONSENT_POLICY", json.dumps({"sources": {"demo": {"email": "opt_out"}}}))
    wiring.reset()
    hoa_signs_up(stack, {"email": "hoa@example.com"})
    reminder_for_hoa(stack)
    assert [json.loads(m["Body"])["channel"] for m in drain(stack, "send")] == ["email"]


def outcome_steps(stack: dict[str, Any]) -> list[tuple[str, str]]:
    tables = stack["tables"]
    steps = [step_from_item(item) for item in tables.client.scan(TableName=tables.steps)["Items"]]
    return sorted((s.node_id, s.outcome) for s in steps if s.outcome in ("accepted", "opened", "clicked"))


def test_the_messages_outcome_events_become_steps_of_its_node_once_and_only_for_its_own_visitor(
    stack: dict[str, Any],
) -> None:
    hoa_signs_up(stack, {"email": "hoa@example.com", "consent": {"email": True}})
    reminder_for_hoa(stack)
    [email] = [json.loads(m["Body"]) for m in drain(stack, "send")]
    about = {key: email[key] for key in ("journey_id", "node_id", "enrollment_id")}
    about |= {"message_id": email["idempotency_key"], "channel": "email"}
    outcomes = [
        tracked(event=name, user_id="u-hoa", anonymous_id=None, at=START, message_id=f"{name}-1", properties=about)
        for name in ("message_sent", "message_opened", "message_clicked")
    ]
    forged = tracked(
        event="message_clicked",
        anonymous_id="someone-else",
        at=START,
        trust="browser",
        properties={**about, "message_id": "other"},
    )
    records = [store_event(stack["tables"], event) for event in [*outcomes, forged]]

    assert evaluate({"Records": records}) == {"batchItemFailures": []}
    assert evaluate({"Records": records[:2]}) == {"batchItemFailures": []}  # redelivered

    assert outcome_steps(stack) == [("mail", "accepted"), ("mail", "clicked"), ("mail", "opened")]
