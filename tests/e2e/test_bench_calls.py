"""AWS calls per event must not regress: ``bench.aws_calls`` in quick mode on the local stack.

Counts, not timings: the same on every machine. The quick run sends two visitors' events that match
no journey (a first event, a page view, an identify) and a batch of page views; the second visitor
meets warm functions, as the figures in docs/benchmarks.md do.
"""

from __future__ import annotations

from collections import Counter

import pytest

from bench import aws_calls
from footprint.services.quotas import sync_every

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local_stack")]


@pytest.fixture(scope="module")
def calls() -> aws_calls.CallsResult:
    return aws_calls.run(quick=True)


def test_track_makes_exactly_one_batch_write_per_single_message_request(calls: aws_calls.CallsResult) -> None:
    singles = [
        row for row in calls.track_rows() if "/v1/batch" not in row.scenario and "/v1/onsite" not in row.scenario
    ]

    assert len(singles) == 3
    for row in singles:
        assert row.invocation.operations == Counter({"dynamodb.BatchWriteItem": 1}), row.scenario


def test_an_onsite_poll_reads_the_visitor_and_queries_the_inbox_index_and_writes_nothing(
    calls: aws_calls.CallsResult,
) -> None:
    (poll,) = [row for row in calls.track_rows() if "/v1/onsite" in row.scenario]

    assert poll.invocation.operations == Counter({"dynamodb.BatchGetItem": 2, "dynamodb.Query": 1})


def test_track_writes_a_small_batch_in_one_call(calls: aws_calls.CallsResult) -> None:
    (batch,) = [row for row in calls.track_rows() if "/v1/batch" in row.scenario]

    assert batch.invocation.operations == Counter({"dynamodb.BatchWriteItem": 1})
    assert sum(call.write_units for call in batch.invocation.calls) == aws_calls.QUICK_BATCH_MESSAGES


def test_an_event_matching_no_journey_costs_evaluate_at_most_four_calls(calls: aws_calls.CallsResult) -> None:
    rows = [row for row in calls.warm if row.scenario.startswith("(a) no journey")]

    assert len(rows) == 4  # first event, page view, identify, and the batch's page views per record
    for row in rows:
        invocation = row.invocation
        assert invocation.function == "EvaluateFunction"
        assert invocation.failed_records == 0, row.scenario
        assert [call for call in invocation.calls if call.error] == [], row.scenario
        assert len(invocation.calls) / row.records <= 4, f"{row.scenario}: {dict(invocation.operations)}"


def test_a_page_view_of_a_known_visitor_rewrites_no_alias(calls: aws_calls.CallsResult) -> None:
    (page,) = [row for row in calls.warm if row.scenario == "(a) no journey: page view of a known visitor"]
    (transaction,) = [call for call in page.invocation.calls if call.operation == "dynamodb.TransactWriteItems"]

    # The applied marker (1 KB) and the profile (under 2 KB here), twice in a transaction; an alias
    # written again would add two more units.
    assert transaction.write_units <= 6


def test_a_daily_quota_costs_one_counter_update_per_sync_and_nothing_else(calls: aws_calls.CallsResult) -> None:
    rows = calls.quota
    every = sync_every(aws_calls.QUOTA_EVENTS_PER_DAY)
    assert every > 1
    assert len(rows) == aws_calls.QUICK_QUOTA_REQUESTS

    # One event per request; the uncounted first request (it read the source) is event 1.
    synced = [number for number, row in enumerate(rows, start=2) if "dynamodb.UpdateItem" in row.invocation.operations]
    assert synced == [number for number in range(2, len(rows) + 2) if number % every == 0]
    for row in rows:
        expected = Counter({"dynamodb.BatchWriteItem": 1})
        if "dynamodb.UpdateItem" in row.invocation.operations:
            expected["dynamodb.UpdateItem"] = 1
        assert row.invocation.operations == expected
