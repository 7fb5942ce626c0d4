"""Per-source limits through the real track handler, DynamoDB on moto: 429 with Retry-After and the JSON
error shape, the daily counter in ConfigTable, and the calls each request costs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import boto3
import pytest

import track_handler
from footprint.adapters import wiring
from footprint.adapters.quota_counter import DynamoDailyCounter
from footprint.clock import ManualClock, current_clock, use_clock
from footprint.models import keys
from footprint.services.quotas import seconds_until_next_utc_day
from tests.api_gateway import HttpResult, http_api_event, http_result
from tests.builders import T0
from tests.integration.conftest import Tables
from tests.lambda_context import lambda_context

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

SOURCES: dict[str, dict[str, Any]] = {
    "wk-rate": {"source_id": "rated", "limits": {"events_per_second": 2, "events_burst": 4}},
    "wk-day": {"source_id": "daily", "limits": {"events_per_day": 5000}},  # counter synced every 5 events
    "wk-batch": {"source_id": "small", "limits": {"messages_per_request": 2}},
    "wk-browser": {
        "source_id": "shop",
        "allowed_origins": ["https://shop.example.com"],
        "limits": {"events_per_second": 1},
    },
}


@dataclass
class TrackApi:
    tables: Tables
    clock: ManualClock
    dynamodb_calls: list[str]
    sent: int = 0

    def post(self, write_key: str, count: int = 1, **options: Any) -> HttpResult:
        batch = [{"type": "track", "anonymousId": "a-1", "event": "product_viewed"} for _ in range(count)]
        for message in batch:
            self.sent += 1
            message["messageId"] = f"m-{self.sent}"
        event = http_api_event("/v1/batch", {"batch": batch}, write_key=write_key, **options)
        return http_result(track_handler.handler(event, lambda_context("TrackFunction")))

    def stored(self) -> int:
        return len(self.tables.client.scan(TableName=self.tables.events)["Items"])

    def counter(self, source_id: str) -> int | None:
        item = self.tables.client.get_item(
            TableName=self.tables.config, Key={"id": {"S": keys.quota_counter(source_id, self.clock.now().date())}}
        ).get("Item")
        return int(item["events"]["N"]) if item else None


@pytest.fixture
def api(tables: Tables) -> Iterator[TrackApi]:
    for write_key, source in SOURCES.items():
        tables.client.put_item(
            TableName=tables.config, Item={"id": {"S": f"source/{write_key}"}, "value": {"S": json.dumps(source)}}
        )
    session = boto3.DEFAULT_SESSION
    assert session is not None
    calls: list[str] = []
    session.events.register(
        "before-call.dynamodb", lambda model, **_: calls.append(model.name), unique_id="count-quota-calls"
    )
    wiring.reset()
    previous_clock = current_clock()
    clock = ManualClock(T0)
    use_clock(clock)
    yield TrackApi(tables=tables, clock=clock, dynamodb_calls=calls)
    use_clock(previous_clock)
    session.events.unregister("before-call.dynamodb", unique_id="count-quota-calls")
    wiring.reset()


def assert_limited(result: HttpResult, code: str) -> int:
    assert result.status == 429, result.body
    assert result.headers["content-type"] == "application/json"
    assert set(result.body) == {"error"}
    error = result.body["error"]
    assert set(error) == {"code", "reason", "errors"}
    assert (error["code"], error["errors"]) == (code, [])
    assert error["reason"]
    retry_after = result.headers["retry-after"]
    assert retry_after.isdigit()  # HTTP delta-seconds
    return int(retry_after)


def test_over_its_rate_a_source_gets_429_with_retry_after_and_stores_nothing(api: TrackApi) -> None:
    assert api.post("wk-rate", 3).status == 200
    assert api.post("wk-rate", 1).status == 200

    retry_after = assert_limited(api.post("wk-rate", 2), "rate_limited")

    assert retry_after == 1  # 2 tokens at 2 a second
    assert api.stored() == 4
    api.clock.advance(timedelta(seconds=retry_after))
    assert api.post("wk-rate", 2).status == 200
    assert api.stored() == 6


def test_a_browser_source_is_limited_like_any_other(api: TrackApi) -> None:
    origin = {"origin": "https://shop.example.com"}
    assert api.post("wk-browser", 1, headers=origin).status == 200

    # API Gateway adds the CORS headers, exposing retry-after (tests/integration/test_template.py).
    assert_limited(api.post("wk-browser", 1, headers=origin), "rate_limited")


def test_the_daily_quota_is_kept_in_config_table_and_answers_429_until_utc_midnight(api: TrackApi) -> None:
    assert api.post("wk-day", 5).status == 200  # five uncounted: the first sync
    assert api.counter("daily") == 5
    DynamoDailyCounter(api.tables.client, api.tables.config).add("daily", T0.date(), 4985)  # other containers
    assert api.post("wk-day", 5).status == 200  # still believes 5; syncs and reads 4995 back
    assert api.post("wk-day", 5).status == 200  # exactly the quota

    retry_after = assert_limited(api.post("wk-day", 1), "quota_exceeded")

    assert api.counter("daily") == 5000
    assert api.stored() == 15
    assert retry_after == seconds_until_next_utc_day(api.clock.now())
    api.clock.advance(timedelta(seconds=retry_after))
    assert api.post("wk-day", 5).status == 200
    assert api.counter("daily") == 5  # the new day's counter


def test_a_cold_container_learns_the_day_s_total_from_the_counter(api: TrackApi) -> None:
    DynamoDailyCounter(api.tables.client, api.tables.config).add("daily", T0.date(), 4998)

    assert api.post("wk-day", 1).status == 200  # believes 1, holds 1 uncounted (under 5)
    assert api.post("wk-day", 4).status == 200  # 5 uncounted: syncs, reads 5003 back

    assert api.counter("daily") == 5003  # the overshoot: under sync_every (5) for this container
    assert_limited(api.post("wk-day", 1), "quota_exceeded")


def test_more_messages_than_the_source_allows_is_a_400(api: TrackApi) -> None:
    assert api.post("wk-batch", 2).status == 200

    result = api.post("wk-batch", 3)

    assert result.status == 400
    assert result.body["error"]["code"] == "too_many_messages"
    assert "retry-after" not in result.headers


def test_limits_cost_no_dynamodb_call_in_the_common_case(api: TrackApi) -> None:
    api.post("wk-rate", 1)
    api.post("wk-day", 1)
    api.dynamodb_calls.clear()

    for _ in range(3):
        assert api.post("wk-rate", 1).status == 200
        assert api.post("wk-day", 1).status == 200  # 2, 3, 4 of every 5: no sync
    assert_limited(api.post("wk-rate", 1), "rate_limited")

    assert api.dynamodb_calls == ["BatchWriteItem"] * 6
    assert api.post("wk-day", 1).status == 200  # the fifth uncounted event: one UpdateItem
    assert api.dynamodb_calls[6:] == ["BatchWriteItem", "UpdateItem"]
