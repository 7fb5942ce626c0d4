"""evaluate on moto: an anonymous visitor's journeys move to the known contact when they log in.

A merge must keep every enrollment id unique (they key sends and steps), carry the send history and
the seen input ids, keep effects a crashed run left unconfirmed, and a wake-up that read the profile
before the merge must find the journey where it moved.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest

from footprint.adapters.enrollments_store import DynamoEnrollmentStore
from footprint.adapters.journey_catalog import DynamoJourneyCatalog
from footprint.adapters.profiles_store import DynamoProfileStore
from footprint.adapters.send_queue import SqsSendQueue
from footprint.engine import Enrollment
from footprint.models.journey import load_journey_yaml
from footprint.models.profile import profile_id_for
from tests.builders import tracked
from tests.integration.test_evaluate_journeys import START, drain, evaluate, sqs_event, stack
from tests.integration.test_evaluate_profiles import store_event

__all__ = ["stack"]  # the fixture, shared with test_evaluate_journeys

# Every request gets a thank-you at once and a reminder an hour later, then a day's wait: enough to
# see ids, sends and timers cross a merge. Nothing in it is quiet or capped.
FOLLOW_UP = """
id: follow-up
name: Follow up a quote request
status: active
version: 1
re_entry: {policy: every_time}
nodes:
  asked: {type: trigger, event: quote_requested, next: thanks}
  thanks: {type: send, channel: onsite_push, content: {title: "Thanks", body: "We will call you"}, next: later}
  later: {type: wait, duration: 1h, next: reminder}
  reminder: {type: send, channel: onsite_push, content: {title: "Still there?", body: "Call us"}, next: a_day}
  a_day: {type: wait, duration: P1D, next: done}
  done: {type: exit}
"""
CONTACT = profile_id_for("demo", "user", "u1")
LAPTOP = profile_id_for("demo", "anon", "laptop")


@pytest.fixture
def journeys(stack: dict[str, Any]) -> dict[str, Any]:
    tables = stack["tables"]
    DynamoJourneyCatalog(tables.client, tables.config, cache_seconds=0).publish(load_journey_yaml(FOLLOW_UP), FOLLOW_UP)
    return stack


def track(stack: dict[str, Any], *args: Any, **fields: Any) -> dict[str, Any]:
    event = tracked(*args, at=fields.pop("at", stack["clock"].now()), **fields)
    return evaluate({"Records": [store_event(stack["tables"], event)]})


def request_quote(stack: dict[str, Any], anonymous_id: str, user_id: str | None = None) -> dict[str, Any]:
    return track(stack, event="quote_requested", anonymous_id=anonymous_id, user_id=user_id)


def log_in(stack: dict[str, Any], anonymous_id: str) -> dict[str, Any]:
    return track(stack, "identify", anonymous_id=anonymous_id, user_id="u1")


def known_contact(stack: dict[str, Any]) -> None:
    """u1 is a known contact from their phone, so a login on the laptop merges two profiles."""
    track(stack, "identify", anonymous_id="phone", user_id="u1", at=START - timedelta(days=3))


def due_wake_ups(stack: dict[str, Any], node_id: str) -> list[dict[str, Any]]:
    """Scheduler schedules (moto never fires them) waiting at ``node_id`` and due now, as SQS messages."""
    client = boto3.client("scheduler")
    found = []
    for summary in client.list_schedules(GroupName="footprint-wake-ups")["Schedules"]:
        schedule = client.get_schedule(Name=summary["Name"], GroupName="footprint-wake-ups")
        body = schedule["Target"]["Input"]
        wake_up = json.loads(body)
        if wake_up["node_id"] == node_id and datetime.fromisoformat(wake_up["due_at"]) <= stack["clock"].now():
            found.append({"MessageId": summary["Name"], "ReceiptHandle": summary["Name"], "Body": body})
            client.delete_schedule(Name=summary["Name"], GroupName="footprint-wake-ups")  # ActionAfterCompletion
    return found


def fire(stack: dict[str, Any], node_id: str) -> dict[str, Any]:
    wake_ups = due_wake_ups(stack, node_id)
    assert wake_ups, f"nothing waiting at {node_id}"
    return evaluate(sqs_event(*wake_ups))


def follow_up_sends(stack: dict[str, Any]) -> list[dict[str, Any]]:
    bodies = [json.loads(message["Body"]) for message in drain(stack, "send")]
    return [body for body in bodies if body["journey_id"] == "follow-up"]


def stored(stack: dict[str, Any], profile_id: str) -> Enrollment:
    tables = stack["tables"]
    return DynamoEnrollmentStore(tables.client, tables.profiles).load_for_profile(profile_id)["follow-up"].enrollment


def run_to_the_end(stack: dict[str, Any]) -> None:
    stack["clock"].advance(timedelta(hours=1))
    fire(stack, "later")
    stack["clock"].advance(timedelta(days=1))
    fire(stack, "a_day")


def test_a_merged_enrollment_keeps_ids_unique_and_the_contact_history(journeys: dict[str, Any]) -> None:
    stack = journeys
    clock = stack["clock"]
    # The contact went through the journey twice on their phone.
    for _ in range(2):
        request_quote(stack, "phone", user_id="u1")
        run_to_the_end(stack)
    assert stored(stack, CONTACT).status == "completed"
    history = stored(stack, CONTACT)
    # A week later they ask again on a laptop, anonymously, and log in while the reminder is pending.
    clock.advance(timedelta(days=7))
    request_quote(stack, "laptop")
    log_in(stack, "laptop")
    moved = stored(stack, CONTACT)
    assert moved.status == "active"
    assert moved.entries == history.entries + 1 == 3
    assert {send.at for send in history.sends} <= {send.at for send in moved.sends}
    assert set(history.seen_input_ids) <= set(moved.seen_input_ids)
    run_to_the_end(stack)
    # And once more, as the known contact: a new id, so its sends are new sends.
    clock.advance(timedelta(days=7))
    request_quote(stack, "phone", user_id="u1")
    run_to_the_end(stack)

    sends = follow_up_sends(stack)
    assert len(sends) == 8  # four runs, a thank-you and a reminder each
    assert len({send["idempotency_key"] for send in sends}) == 8
    assert len({send["enrollment_id"] for send in sends}) == 4
    steps = stack["tables"].client.scan(TableName=stack["tables"].steps)["Items"]
    step_ids = [(item["enrollment_id"]["S"], item["node_id"]["S"], item["outcome"]["S"]) for item in steps]
    assert len(step_ids) == len(set(step_ids)), "a step recorded twice"


def test_a_merge_keeps_the_effects_a_crashed_wake_up_left_unconfirmed(
    journeys: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = journeys
    known_contact(stack)
    request_quote(stack, "laptop")
    assert [send["node_id"] for send in follow_up_sends(stack)] == ["thanks"]
    stack["clock"].advance(timedelta(hours=1))
    [wake_up] = due_wake_ups(stack, "later")

    # The reminder's run stores its step, then dies before queueing the message and the next timer.
    enqueue = SqsSendQueue.enqueue
    crashes = iter([True])

    def crash_once(self: SqsSendQueue, message: Any) -> None:
        if next(crashes, False):
            raise RuntimeError("the function timed out")
        enqueue(self, message)

    monkeypatch.setattr(SqsSendQueue, "enqueue", crash_once)
    assert evaluate(sqs_event(wake_up))["batchItemFailures"] != []
    # The visitor logs in before SQS delivers the wake-up again: the journey moves to the contact.
    log_in(stack, "laptop")
    assert evaluate(sqs_event(wake_up)) == {"batchItemFailures": []}

    assert [send["node_id"] for send in follow_up_sends(stack)] == ["reminder"]
    stack["clock"].advance(timedelta(days=1))
    fire(stack, "a_day")
    assert stored(stack, CONTACT).status == "completed"
    assert stored(stack, LAPTOP).status == "exited"


def test_a_wake_up_that_read_the_profile_before_a_login_follows_it(
    journeys: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = journeys
    tables = stack["tables"]
    known_contact(stack)
    request_quote(stack, "laptop")
    follow_up_sends(stack)
    stack["clock"].advance(timedelta(hours=1))
    [wake_up] = due_wake_ups(stack, "later")
    before_login = DynamoProfileStore(tables.client, tables.profiles).get_profile(LAPTOP)
    log_in(stack, "laptop")

    # The wake-up read the laptop's profile just before the merge wrote it.
    get_profile = DynamoProfileStore.get_profile
    reads = iter([before_login])

    def stale_first(self: DynamoProfileStore, profile_id: str) -> Any:
        if profile_id == LAPTOP and (stale := next(reads, None)) is not None:
            return stale
        return get_profile(self, profile_id)

    monkeypatch.setattr(DynamoProfileStore, "get_profile", stale_first)
    assert evaluate(sqs_event(wake_up)) == {"batchItemFailures": []}

    assert [(send["node_id"], send["profile_id"]) for send in follow_up_sends(stack)] == [("reminder", CONTACT)]
    assert stored(stack, CONTACT).current_node == "a_day"


def test_a_journey_the_visitor_finished_anonymously_stays_finished_for_the_contact(journeys: dict[str, Any]) -> None:
    stack = journeys
    tables = stack["tables"]
    once = FOLLOW_UP.replace("id: follow-up", "id: follow-up-once").replace("policy: every_time", "policy: once")
    DynamoJourneyCatalog(tables.client, tables.config, cache_seconds=0).publish(load_journey_yaml(once), once)
    known_contact(stack)
    request_quote(stack, "laptop")
    run_to_the_end(stack)
    log_in(stack, "laptop")
    drain(stack, "send")

    store = DynamoEnrollmentStore(tables.client, tables.profiles)
    contact = store.load_for_profile(CONTACT)["follow-up-once"].enrollment
    assert (contact.status, contact.entries) == ("completed", 1)
    assert store.load_for_profile(LAPTOP)["follow-up-once"].enrollment.merged_into == CONTACT
    # `once` means once for the person, whichever browser they used.
    request_quote(stack, "phone", user_id="u1")
    assert [json.loads(message["Body"])["journey_id"] for message in drain(stack, "send")] == ["follow-up"]


def test_a_wake_up_whose_write_loses_to_a_login_follows_it(
    journeys: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = journeys
    known_contact(stack)
    request_quote(stack, "laptop")
    follow_up_sends(stack)
    stack["clock"].advance(timedelta(hours=1))
    [wake_up] = due_wake_ups(stack, "later")

    # The wake-up has read the laptop's enrollment and decided; the login merges before it writes.
    save = DynamoEnrollmentStore.save
    logins = iter([True])

    def login_first(self: DynamoEnrollmentStore, enrollment: Enrollment, effects: Any, read_revision: Any) -> None:
        if enrollment.profile_id == LAPTOP and enrollment.current_node == "a_day" and next(logins, False):
            log_in(stack, "laptop")
        save(self, enrollment, effects, read_revision)

    monkeypatch.setattr(DynamoEnrollmentStore, "save", login_first)
    assert evaluate(sqs_event(wake_up)) == {"batchItemFailures": []}

    assert [(send["node_id"], send["profile_id"]) for send in follow_up_sends(stack)] == [("reminder", CONTACT)]
    assert stored(stack, CONTACT).current_node == "a_day"
    assert stored(stack, LAPTOP).status == "exited"
