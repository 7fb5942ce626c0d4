"""A person's data rights on the local stack: a visitor browses, is waiting in the services flow and
becomes a known contact; their export holds it all; their deletion leaves nothing but expiring
tombstones in any table, cancels their wake-ups, and a late event does not bring them back."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import requests

from footprint.clock import ManualClock
from footprint_local.stack import LocalStack
from tests.e2e.journeys import track

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local_stack")]

VISITOR = "anon-thu"
USER_ID = "u-thu-1987"
EMAIL = "thu.nguyen@example.vn"
PHONE = "+84912345678"
PEOPLE = {"source_id": "demo", "user_id": USER_ID}


def admin(stack: LocalStack, path: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(f"{stack.api_url}/admin/people/{path}", json=body, timeout=10)


def table_items(stack: LocalStack) -> dict[str, list[dict[str, Any]]]:
    names = ("EventsTable", "ProfilesTable", "StepsTable", "MessagesTable")
    return {name: stack.clients.dynamodb.scan(TableName=stack.resources.tables[name].ref)["Items"] for name in names}


def mentions(item: dict[str, Any], *needles: str) -> bool:
    text = json.dumps(item, ensure_ascii=False)
    return any(needle in text for needle in needles)


def identify(stack: LocalStack, clock: ManualClock) -> None:
    """The shop's backend names the visitor after their order (a trusted key)."""
    response = requests.post(
        f"{stack.api_url}/v1/identify",
        auth=(stack.server_write_key, ""),
        json={
            "anonymousId": VISITOR,
            "userId": USER_ID,
            "messageId": "thu-identify",
            "traits": {"email": EMAIL, "phone": PHONE, "name": "Thu"},
            "timestamp": clock.now().isoformat(),
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text


def test_a_person_is_exported_then_deleted_without_a_trace(stack: LocalStack, clock: ManualClock) -> None:
    track(stack, clock, "product_viewed", visitor=VISITOR, product_id="vay-nu-he", name="Váy nữ", dwell_seconds=16)
    identify(stack, clock)
    stack.wait_until(lambda: admin(stack, "export", PEOPLE).status_code == 200, timeout=20)
    exported = stack.wait_until(
        lambda: (body := admin(stack, "export", PEOPLE).json())["enrollments"] and body["messages"] and body, timeout=20
    )
    schedules_before = [s.name for s in stack.scheduler_pump.pending()] if stack.scheduler_pump else []

    # The export: the contact, both ids, every event, the journey run, its steps and its messages.
    [contact] = [p for p in exported["profiles"] if p["user_id"] == USER_ID]
    assert (contact["email"], contact["phone"]) == (EMAIL, PHONE)
    assert {e["message_id"] for e in exported["events"]} >= {"anon-thu-product_viewed", "thu-identify"}
    assert {e["journey_id"] for e in exported["enrollments"]} >= {"services-consult"}
    assert {s["node_id"] for s in exported["steps"]} >= {"viewed_without_cart", "consult_form"}
    assert any(m["journey_id"] == "services-consult" for m in exported["messages"])
    profile_ids = exported["profile_ids"]

    deleted = admin(stack, "delete", PEOPLE)

    assert deleted.status_code == 200, deleted.text
    record = deleted.json()
    assert record["deleted"]["events"] >= 2
    assert record["deleted"]["steps"] >= 1
    assert record["deleted"]["messages"] >= 1
    assert USER_ID not in json.dumps(record)
    # Nothing of the person is left: only tombstones (ids, a deletion time, an expiry) of profiles and aliases.
    for table, items in table_items(stack).items():
        left = [item for item in items if mentions(item, VISITOR, USER_ID, *profile_ids)]
        for item in left:
            assert table == "ProfilesTable", (table, item)
            assert "expires_at" in item, item
            assert not mentions(item, EMAIL, PHONE, "Váy", "vay-nu-he"), item
            if item["sk"]["S"] == "profile":
                assert json.loads(item["data"]["S"])["deleted_at"]
    # The wake-ups they were waiting for are gone.
    if stack.scheduler_pump and schedules_before:
        # pending() is the pump's last poll: wait for one after the deletion.
        pump = stack.scheduler_pump
        stack.wait_until(lambda: not {s.name for s in pump.pending()} & set(schedules_before), timeout=10)
    # A deletion is recorded; the person is not named in it.
    config = stack.clients.dynamodb.scan(TableName=stack.resources.tables["ConfigTable"].ref)["Items"]
    records = [json.loads(i["value"]["S"]) for i in config if i["id"]["S"].startswith("deletion/")]
    assert [r["deletion_id"] for r in records] == [record["deletion_id"]]
    assert admin(stack, "export", PEOPLE).status_code == 404

    # An event still in flight (a page left open) does not bring them back.
    clock.advance(timedelta(seconds=30))
    track(
        stack, clock, "product_viewed", visitor=VISITOR, message_id="late-view", product_id="tui-coi", dwell_seconds=20
    )
    stack.wait_for_pump_cycles(stack.pumps[0], cycles=3)  # the EventsTable stream
    profiles = table_items(stack)["ProfilesTable"]
    assert not [i for i in profiles if mentions(i, *profile_ids) and i["sk"]["S"].startswith("enrollment#")]
    for item in profiles:
        if item["sk"]["S"] == "profile" and item["pk"]["S"].removeprefix("profile#") in profile_ids:
            data = json.loads(item["data"]["S"])
            assert data["deleted_at"]
            assert data["event_count"] == 0
            assert not data["anonymous_ids"]
    assert admin(stack, "export", PEOPLE).status_code == 404


def test_requests_that_name_no_one_get_4xx(stack: LocalStack) -> None:
    assert admin(stack, "export", {"source_id": "demo", "user_id": "nobody"}).status_code == 404
    both = admin(stack, "delete", {"source_id": "demo", "user_id": "a", "anonymous_id": "b"})
    assert both.status_code == 400
    assert both.json()["error"]["code"] == "invalid_person"
    assert admin(stack, "delete", {"user_id": "a"}).status_code == 400
    assert admin(stack, "export", {"source_id": "other-shop", "user_id": USER_ID}).status_code == 404


def test_the_cli_exports_and_deletes_the_same_way(stack: LocalStack, clock: ManualClock) -> None:
    track(stack, clock, "page_viewed", visitor="anon-minh", path="/")
    target = ["demo", "--anonymous-id", "anon-minh", "--local", stack.api_url]
    stack.wait_until(lambda: admin(stack, "export", {"source_id": "demo", "anonymous_id": "anon-minh"}).ok, timeout=20)

    exported = json.loads(cli(["people", "export", *target]))
    record = json.loads(cli(["people", "delete", *target]))

    assert [e["message_id"] for e in exported["events"]] == ["anon-minh-page_viewed"]
    assert record["deleted"]["events"] == 1
    assert record["requested_by"].startswith("cli:")
    assert admin(stack, "export", {"source_id": "demo", "anonymous_id": "anon-minh"}).status_code == 404


def cli(argv: list[str]) -> str:
    import io

    from footprint_local.cli import main as footprint_cli

    out = io.StringIO()
    assert footprint_cli(argv, out=out) == 0, out.getvalue()
    return out.getvalue()
