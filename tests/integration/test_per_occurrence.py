"""A journey that runs per occurrence, on moto with the real evaluate handler: two orders 30 s apart
in a journey with a 50-second wait get two confirmations; cancelling one order ends only its run; the
same order twice is one run; a visitor's open occurrences are capped."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from footprint.adapters.enrollments_store import DynamoEnrollmentStore
from footprint.adapters.journey_catalog import DynamoJourneyCatalog
from footprint.engine import Simulator
from footprint.engine.inputs import EventInput
from footprint.models.journey import load_journey_yaml
from footprint.models.profile import profile_id_for
from tests.builders import tracked
from tests.integration.test_evaluate_journeys import START, drain, evaluate, sqs_event, stack
from tests.integration.test_evaluate_profiles import store_event

__all__ = ["stack"]  # the fixture: moto tables, queues, a schedule group and a moved clock

ORDERS = """
id: order-confirmation
name: Order confirmation
status: active
version: 1
per_occurrence: {property: order_id, max_open: 3}
exit_when:
  - event: order_cancelled
nodes:
  placed: {type: trigger, event: order_placed, next: settle}
  settle: {type: wait, duration: PT50S, next: confirm}
  confirm:
    type: send
    channel: webhook
    category: transactional
    content: {url: "https://crm.example.com/orders", body: "{{ trigger.order_id }}"}
    next: done
  done: {type: exit}
"""


def publish(stack: dict[str, Any]) -> None:
    tables = stack["tables"]
    DynamoJourneyCatalog(tables.client, tables.config, cache_seconds=0).publish(load_journey_yaml(ORDERS), ORDERS)


def order_event(stack: dict[str, Any], name: str, order_id: str, after: timedelta) -> dict[str, Any]:
    event = tracked(event=name, user_id="u-lan", anonymous_id=None, at=START + after, properties={"order_id": order_id})
    return store_event(stack["tables"], event)


def wake_all(stack: dict[str, Any]) -> None:
    """Deliver every timer that is due (SQS timers: waits under a minute)."""
    timers = drain(stack, "timers")
    if timers:
        assert evaluate(sqs_event(*timers)) == {"batchItemFailures": []}


def confirmations(stack: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        json.loads(m["Body"])
        for m in drain(stack, "send")
        if json.loads(m["Body"])["journey_id"] == "order-confirmation"
    ]


def test_two_orders_thirty_seconds_apart_get_two_confirmations(stack: dict[str, Any]) -> None:
    publish(stack)

    evaluate({"Records": [order_event(stack, "order_placed", "A-1", timedelta())]})
    stack["clock"].advance(timedelta(seconds=30))
    evaluate({"Records": [order_event(stack, "order_placed", "B-2", timedelta(seconds=30))]})
    stack["clock"].advance(timedelta(seconds=31))
    wake_all(stack)
    stack["clock"].advance(timedelta(seconds=30))
    wake_all(stack)

    sent = confirmations(stack)
    assert sorted(m["context"]["trigger"]["order_id"] for m in sent) == ["A-1", "B-2"]
    assert len({m["idempotency_key"] for m in sent}) == 2
    stored = DynamoEnrollmentStore(stack["tables"].client, stack["tables"].profiles).load_for_profile(
        profile_id_for("demo", "user", "u-lan")
    )
    runs = {item.enrollment.occurrence: item.enrollment.status for item in stored.values()}
    assert runs == {"A-1": "completed", "B-2": "completed"}


def test_cancelling_one_order_ends_only_its_run_and_a_repeated_order_is_one_run(stack: dict[str, Any]) -> None:
    publish(stack)
    placed_a = order_event(stack, "order_placed", "A-1", timedelta())

    evaluate({"Records": [placed_a, order_event(stack, "order_placed", "B-2", timedelta(seconds=1))]})
    evaluate({"Records": [order_event(stack, "order_placed", "A-1", timedelta(seconds=2))]})  # the same order again
    evaluate({"Records": [order_event(stack, "order_cancelled", "A-1", timedelta(seconds=10))]})
    stack["clock"].advance(timedelta(minutes=2))
    wake_all(stack)

    assert [m["context"]["trigger"]["order_id"] for m in confirmations(stack)] == ["B-2"]


def test_a_visitor_has_at_most_max_open_occurrences_running(stack: dict[str, Any]) -> None:
    publish(stack)

    records = [order_event(stack, "order_placed", f"O-{n}", timedelta(seconds=n)) for n in range(5)]
    evaluate({"Records": records})
    stack["clock"].advance(timedelta(minutes=2))
    wake_all(stack)

    assert sorted(m["context"]["trigger"]["order_id"] for m in confirmations(stack)) == ["O-0", "O-1", "O-2"]


def test_simulate_runs_occurrences_side_by_side_as_evaluate_does() -> None:
    journey = load_journey_yaml(ORDERS)
    simulator = Simulator(journey)
    for order_id, seconds in (("A-1", 0), ("B-2", 30)):
        event = EventInput(id=f"e-{order_id}", name="order_placed", properties={"order_id": order_id},
                           timestamp=START + timedelta(seconds=seconds))  # fmt: skip
        simulator.add_event("lan", event)

    timeline = simulator.run(until=START + timedelta(minutes=5))

    sent = [entry for entry in timeline if entry.node_id == "confirm" and entry.outcome == "sent"]
    assert len(sent) == 2
    assert len({entry.enrollment_id for entry in sent}) == 2
