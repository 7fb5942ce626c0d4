"""An estimate in USD per 1,000 events, from the counted calls and the list prices (us-east-1).

Estimated, not billed: DynamoDB capacity units come from item sizes (``bench.calls``), and the
queue traffic the Lambda service and Scheduler generate is modelled, not observed:

- every SQS message sent (by evaluate, or by Scheduler when a schedule fires) is received and
  deleted by Lambda's poller: 3 SQS requests per message, the worst case (batches of one);
- every schedule created fires once (1 Scheduler invocation; the first 14 M a month are free,
  which this ignores) and delivers one SQS message;
- every function invocation is one Lambda request; each track invocation one HTTP API request;
- DynamoDB Streams reads by Lambda are free; Lambda duration (GB-seconds), SES, Secrets Manager,
  CloudWatch and X-Ray are not included (their prices are not in the brief's list).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bench.aws_calls import CallsResult, Row
from bench.calls import ApiCall
from bench.tables import markdown_table
from footprint.services.onsite import ONSITE_POLL_SECONDS

PER_MILLION = 1e-6
DYNAMODB_WRITE_UNIT = 0.625 * PER_MILLION
DYNAMODB_READ_UNIT = 0.125 * PER_MILLION
LAMBDA_REQUEST = 0.20 * PER_MILLION
HTTP_API_REQUEST = 1.00 * PER_MILLION
SQS_REQUEST = 0.40 * PER_MILLION
SCHEDULER_INVOCATION = 1.00 * PER_MILLION
SQS_REQUESTS_PER_MESSAGE = 3  # send, receive, delete
SQS_SENDS = {"sqs.SendMessage": 1, "sqs.SendMessageBatch": 1}
# Amazon Pinpoint's list prices (the brief): events $1 per million after 100 M free a month, and
# $0.0012 per endpoint a journey or campaign targets in a month. Compared above the free tier.
PINPOINT_EVENT = 1.00 * PER_MILLION
PINPOINT_TARGETED_ENDPOINT = 0.0012


@dataclass(frozen=True)
class Cost:
    dynamodb: float = 0.0
    lambda_requests: float = 0.0
    http_api: float = 0.0
    sqs: float = 0.0
    scheduler: float = 0.0

    @property
    def total(self) -> float:
        return self.dynamodb + self.lambda_requests + self.http_api + self.sqs + self.scheduler

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            self.dynamodb + other.dynamodb,
            self.lambda_requests + other.lambda_requests,
            self.http_api + other.http_api,
            self.sqs + other.sqs,
            self.scheduler + other.scheduler,
        )

    def scaled(self, factor: float) -> Cost:
        return Cost(
            self.dynamodb * factor,
            self.lambda_requests * factor,
            self.http_api * factor,
            self.sqs * factor,
            self.scheduler * factor,
        )


def invocation_cost(function: str, calls: Iterable[ApiCall], invocations: float = 1.0) -> Cost:
    """The cost of one invocation of ``function`` that made ``calls``."""
    calls = list(calls)
    messages = sum(1 for call in calls if call.operation in SQS_SENDS)
    schedules = sum(1 for call in calls if call.operation == "scheduler.CreateSchedule")
    return Cost(
        dynamodb=sum(call.write_units for call in calls) * DYNAMODB_WRITE_UNIT
        + sum(call.read_units for call in calls) * DYNAMODB_READ_UNIT,
        lambda_requests=invocations * LAMBDA_REQUEST,
        http_api=invocations * HTTP_API_REQUEST if function == "TrackFunction" else 0.0,
        sqs=(messages + schedules) * SQS_REQUESTS_PER_MESSAGE * SQS_REQUEST,
        scheduler=schedules * SCHEDULER_INVOCATION,
    )


def row_cost(row: Row) -> Cost:
    """Per event: a batch row spreads its invocation(s) over its records."""
    invocation = row.invocation
    cost = invocation_cost(invocation.function, invocation.calls)
    return cost.scaled(1 / row.records)


def journey_rows(rows: Iterable[Row]) -> list[Row]:
    """One visitor's steps through the flow (the single-request rows, not the batch)."""
    return [row for row in rows if row.records == 1 and "/v1/batch" not in row.scenario]


def total_cost(rows: Iterable[Row]) -> Cost:
    return sum((row_cost(row) for row in rows), Cost())


def usd(value: float) -> str:
    return f"${value:.4f}"


# footprint.js polls at load and then every ONSITE_POLL_SECONDS while the page is visible.
POLLED_SECONDS_PER_PAGE_VIEW = 60


def pinpoint_comparison(page_view: float, visitor: float, events_per_visitor: int) -> list[str]:
    """Footprint next to Pinpoint's list price on the same traffic: page views only, and the reference
    scenario's mix (one visitor's events through the flow, each visitor a targeted endpoint)."""
    pinpoint_visitor = events_per_visitor * PINPOINT_EVENT + PINPOINT_TARGETED_ENDPOINT
    rows = [
        [
            "page views only, per million",
            usd(1_000_000 * page_view),
            usd(1_000_000 * PINPOINT_EVENT),
            f"{page_view / PINPOINT_EVENT:.2f}",
        ],
        [
            f"reference scenario, per 1,000 visitors ({events_per_visitor} events each)",
            usd(1000 * visitor),
            usd(1000 * pinpoint_visitor),
            f"{visitor / pinpoint_visitor:.2f}",
        ],
    ]
    return [
        "### Side by side with Amazon Pinpoint (list prices, above its free tier; messages' own cost excluded)",
        "",
        markdown_table(["traffic", "Footprint", "Pinpoint", "ratio"], rows),
        "",
    ]


def report(result: CallsResult) -> str:
    rows = [
        [row.scenario, usd(1000 * cost.total), usd(1000 * cost.dynamodb), usd(1000 * (cost.total - cost.dynamodb))]
        for row, cost in ((row, row_cost(row)) for row in result.warm)
    ]
    page_view = [row for row in result.warm if "page" in row.scenario and row.records == 1]
    plain = total_cost(page_view)
    steps = journey_rows(result.warm)
    flow = total_cost(steps)
    lines = [
        "## Estimated cost per 1,000 events (USD, us-east-1 list prices)",
        "",
        "ESTIMATE: DynamoDB units from item sizes; SQS traffic of Lambda's pollers and Scheduler modelled; Lambda "
        "duration, SES, Secrets Manager, CloudWatch and X-Ray not included.",
        "",
        markdown_table(["scenario (x 1,000)", "total", "DynamoDB", "Lambda + HTTP API + SQS + Scheduler"], rows),
        "",
        f"- a page view (track + evaluate, no journey): {usd(1000 * plain.total)} per 1,000 "
        f"({usd(1_000_000 * plain.total)} per million)",
        f"- one visitor through the whole flow above ({len(steps)} invocations): {usd(1000 * flow.total)} "
        f"per 1,000 visitors (DynamoDB {usd(1000 * flow.dynamodb)}, "
        f"Lambda requests {usd(1000 * flow.lambda_requests)}, HTTP API {usd(1000 * flow.http_api)}, "
        f"SQS {usd(1000 * flow.sqs)}, Scheduler {usd(1000 * flow.scheduler)})",
    ]
    events = sum(1 for row in steps if row.scenario.startswith("track:") and "/v1/onsite" not in row.scenario)
    lines += ["", *pinpoint_comparison(plain.total, flow.total, events)]
    polls = [row for row in result.warm if "/v1/onsite poll" in row.scenario]
    if polls:
        poll = total_cost(polls)
        per_view = POLLED_SECONDS_PER_PAGE_VIEW / ONSITE_POLL_SECONDS + 1  # one at load, then every interval
        lines.append(
            f"- onsite polling: one poll {usd(1000 * poll.total)} per 1,000; a page view read for "
            f"{POLLED_SECONDS_PER_PAGE_VIEW} s polls {per_view:.0f} times: {usd(1000 * per_view * poll.total)} "
            f"per 1,000 page views"
        )
    return "\n".join(lines)
