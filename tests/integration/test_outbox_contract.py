"""The Outbox protocol (footprint.services.send), run against DynamoOutbox on moto and against the
in-memory fake the unit tests use, so the fake cannot drift from the real rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from footprint.adapters.outbox import DynamoOutbox
from footprint.models.messages import DeliveryRecord, DeliveryStatus, MessageChannel, OutgoingMessage
from footprint.services.send import Claim, Outbox
from tests.builders import T0
from tests.fakes import InMemoryOutbox
from tests.integration.conftest import Tables

pytestmark = pytest.mark.integration

LATER = T0 + timedelta(minutes=3)


@pytest.fixture(params=["dynamo", "in_memory"])
def outbox(request: pytest.FixtureRequest) -> Iterator[Outbox]:
    if request.param == "in_memory":
        yield InMemoryOutbox()
        return
    tables: Tables = request.getfixturevalue("tables")
    yield DynamoOutbox(tables.client, tables.messages, retention=timedelta(days=400))


def message(key: str = "k", channel: MessageChannel = "email") -> OutgoingMessage:
    return OutgoingMessage(
        idempotency_key=key,
        profile_id="p-1",
        source_id="demo",
        journey_id="cart-abandoned",
        journey_version=1,
        enrollment_id="e-1",
        node_id="n-1",
        channel=channel,
        requested_at=T0,
    )


def record(key: str = "k", status: DeliveryStatus = "sent", **fields: Any) -> DeliveryRecord:
    values: dict[str, Any] = {
        "idempotency_key": key,
        "profile_id": "p-1",
        "journey_id": "cart-abandoned",
        "node_id": "n-1",
        "channel": "email",
        "status": status,
        "detail": "ok",
        "sent_at": T0,
    }
    return DeliveryRecord.model_validate({**values, **fields})


def open_claim(attempt: str, state: Any = "claimed", at: Any = T0) -> Claim:
    return Claim(acquired=False, attempt_id=attempt, state=state, claimed_at=at)


def test_a_message_is_claimed_once_and_others_see_who_holds_it(outbox: Outbox) -> None:
    first = outbox.claim(message(), "a", T0)
    second = outbox.claim(message(), "b", T0 + timedelta(seconds=1))

    assert first == Claim(acquired=True, attempt_id="a", state="claimed", claimed_at=T0)
    assert second == open_claim("a")


def test_a_claim_sent_again_by_its_own_attempt_is_still_its_claim(outbox: Outbox) -> None:
    # botocore resends a put whose response was lost; the row it finds is its own.
    outbox.claim(message(), "a", T0)

    assert outbox.claim(message(), "a", T0).acquired is True


def test_only_the_holder_marks_calling_and_its_own_retry_succeeds(outbox: Outbox) -> None:
    outbox.claim(message(), "a", T0)

    assert outbox.mark_calling("k", "b", T0) is False
    assert outbox.mark_calling("k", "a", T0) is True
    assert outbox.mark_calling("k", "a", T0) is True
    assert outbox.claim(message(), "b", T0) == open_claim("a", "calling_provider")
    # Once calling, not even the holder's claim counts as acquired again: it already went on.
    assert outbox.claim(message(), "a", T0).acquired is False


def test_only_the_holder_settles_and_a_settle_sent_again_changes_nothing(outbox: Outbox) -> None:
    assert outbox.settle(record(), "a") is False
    outbox.claim(message(), "a", T0)
    outbox.mark_calling("k", "a", T0)

    assert outbox.settle(record(status="failed"), "b") is False
    assert outbox.settle(record(), "a") is True
    assert outbox.settle(record(detail="again"), "a") is True

    assert outbox.claim(message(), "c", T0).settled == record()
    assert outbox.mark_calling("k", "a", T0) is False


def test_release_drops_only_the_holder_s_open_claim(outbox: Outbox) -> None:
    outbox.claim(message(), "a", T0)
    outbox.mark_calling("k", "a", T0)

    outbox.release("k", "b")
    assert outbox.claim(message(), "b", T0) == open_claim("a", "calling_provider")
    outbox.release("k", "a")
    assert outbox.claim(message(), "b", T0).acquired is True

    outbox.settle(record(), "b")
    outbox.release("k", "b")
    assert outbox.claim(message(), "c", T0).settled == record()


def test_a_stale_claim_is_taken_over_and_its_old_holder_can_do_nothing_more(outbox: Outbox) -> None:
    outbox.claim(message(), "a", T0)
    stale = outbox.claim(message(), "b", LATER)

    taken = outbox.take_over(message(), stale, "b", LATER)

    assert taken == Claim(acquired=True, attempt_id="b", state="claimed", claimed_at=LATER)
    assert outbox.mark_calling("k", "a", LATER) is False
    assert outbox.settle(record(), "a") is False
    outbox.release("k", "a")
    assert outbox.claim(message(), "c", LATER) == open_claim("b", at=LATER)


def test_a_calling_claim_can_be_taken_over_too(outbox: Outbox) -> None:
    # (send does it for onsite messages only: nothing of theirs left the system)
    outbox.claim(message(channel="onsite_push"), "a", T0)
    outbox.mark_calling("k", "a", T0)
    stale = outbox.claim(message(channel="onsite_push"), "b", LATER)

    assert outbox.take_over(message(channel="onsite_push"), stale, "b", LATER).acquired is True
    assert outbox.mark_calling("k", "b", LATER) is True


def test_of_two_attempts_taking_over_one_stale_claim_only_the_first_gets_it(outbox: Outbox) -> None:
    outbox.claim(message(), "a", T0)
    stale = outbox.claim(message(), "b", LATER)

    first = outbox.take_over(message(), stale, "b", LATER)
    second = outbox.take_over(message(), stale, "c", LATER)

    assert first.acquired is True
    assert second == open_claim("b", at=LATER)
    # and the winner's take-over sent again is still its own
    assert outbox.take_over(message(), stale, "b", LATER).acquired is True


def test_a_take_over_finds_a_result_recorded_meanwhile(outbox: Outbox) -> None:
    outbox.claim(message(), "a", T0)
    stale = outbox.claim(message(), "b", LATER)
    outbox.settle(record(), "a")

    assert outbox.take_over(message(), stale, "b", LATER).settled == record()


def test_a_take_over_of_a_claim_released_meanwhile_gets_nothing(outbox: Outbox) -> None:
    outbox.claim(message(), "a", T0)
    stale = outbox.claim(message(), "b", LATER)
    outbox.release("k", "a")

    assert outbox.take_over(message(), stale, "b", LATER) == Claim(acquired=False)
    assert outbox.claim(message(), "b", LATER).acquired is True


def test_a_stale_claim_is_settled_in_its_holder_s_name(outbox: Outbox) -> None:
    # What send does with a stale "calling_provider" claim: record the outcome as unknown.
    outbox.claim(message(), "a", T0)
    outbox.mark_calling("k", "a", T0)

    assert outbox.settle(record(status="failed", detail="outcome unknown"), "a") is True
    assert outbox.claim(message(), "b", LATER).settled == record(status="failed", detail="outcome unknown")
