"""A batch in the exact shape analytics-python sends, through the local stack: stored, deduplicated,
and the anonymous visitor merged into the known contact by evaluate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from footprint.models.profile import Profile, profile_id_for
from footprint_local.pumps import StreamPump
from footprint_local.stack import LocalStack

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local_stack")]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def post(stack: LocalStack, path: str, body: dict[str, Any], write_key: str = "demo-write-key") -> requests.Response:
    return requests.post(f"{stack.api_url}{path}", auth=(write_key, ""), json=body, timeout=10)


def stored_events(stack: LocalStack) -> list[dict[str, Any]]:
    table = stack.resources.table_name("EventsTable")
    return stack.clients.dynamodb.scan(TableName=table)["Items"]


def profile(stack: LocalStack, profile_id: str) -> Profile | None:
    table = stack.resources.table_name("ProfilesTable")
    item = stack.clients.dynamodb.get_item(
        TableName=table, Key={"pk": {"S": f"profile#{profile_id}"}, "sk": {"S": "profile"}}
    ).get("Item")
    return Profile.model_validate_json(item["data"]["S"]) if item else None


def test_an_analytics_python_batch_is_stored_once_and_merges_identity(local_stack: LocalStack) -> None:
    # Before logging in, the visitor browsed anonymously (analytics.js, as the browser sends it).
    browsing = json.loads((FIXTURES / "analytics_js_track.json").read_text())
    browsing.update(anonymousId="anon-7f3c", userId=None)
    browsing.pop("writeKey", None)
    assert post(local_stack, "/v1/track", browsing).status_code == 200
    anonymous = profile_id_for("demo", "anon", "anon-7f3c")
    local_stack.wait_until(lambda: profile(local_stack, anonymous) is not None, timeout=10)

    # analytics-python runs in the shop's backend, with the backend's trusted key: it may say who
    # the visitor is (a browser would need a user_hash for that).
    batch = json.loads((FIXTURES / "analytics_python_batch.json").read_text())
    first = post(local_stack, "/v1/batch", batch, local_stack.server_write_key)
    assert first.status_code == 200, first.text
    assert first.json()["success"] is True
    # The library retries the same batch (a timeout on its side): nothing is stored twice.
    assert post(local_stack, "/v1/batch", batch, local_stack.server_write_key).status_code == 200

    contact = profile_id_for("demo", "user", "user-42")
    local_stack.wait_until(
        lambda: (p := profile(local_stack, contact)) is not None and "anon-7f3c" in p.anonymous_ids, timeout=10
    )
    assert len(stored_events(local_stack)) == 1 + len(batch["batch"])
    # Let the stream pump go round a few more times: a second delivery would show up now.
    stream_pump = next(pump for pump in local_stack.pumps if isinstance(pump, StreamPump))
    local_stack.wait_for_pump_cycles(stream_pump, cycles=3)
    known = profile(local_stack, contact)
    assert known is not None
    assert known.email == "lan@example.com"
    assert known.traits["city"] == "Hà Nội"
    assert known.event_count == 1 + len(batch["batch"])
    assert known.last_viewed_product is not None
    assert known.last_viewed_product["product_id"] == "vay-nu-he"
    merged = profile(local_stack, anonymous)
    assert merged is not None
    assert merged.merged_into == contact
