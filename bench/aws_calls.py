"""AWS calls per event: the real handlers on the local stack (moto server mode), counted per invocation.

The stack runs with a ManualClock; the benchmark walks two visitors through the reference scenario
(seed 000) and the "web push clicked, no purchase -> email" rule, one step at a time, and keeps the
calls each function invocation made (``bench.calls``). The first visitor meets cold functions
(nothing cached yet); the second one is the steady state the table reports. The first visitor's
surplus is shown as "cold extra": what a cold start adds once per container.

Each step waits for the one invocation it causes before going on, so an invocation never mixes two
steps. What the pumps do themselves (polling the stream and the queues, firing schedules) is not
counted: in AWS that is the Lambda service's and Scheduler's work, priced separately (``bench.cost``).
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from bench.calls import ApiCall, CallCounter, by_operation, item_size
from bench.tables import markdown_table
from footprint.clock import ManualClock
from footprint.services.quotas import sync_every
from footprint_local.lambdas import Handler
from footprint_local.stack import LocalStack

JOURNEYS_DIR = Path(__file__).resolve().parents[1] / "journeys"
START = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 09:00 in Ho Chi Minh City
WRITE_KEY = "bench-write-key"
# A second source with a daily quota: its counter is synced every sync_every(QUOTA_EVENTS_PER_DAY) events.
QUOTA_WRITE_KEY = "bench-quota-write-key"
QUOTA_EVENTS_PER_DAY = 20_000
QUOTA_REQUESTS = 40
QUICK_QUOTA_REQUESTS = 20
WAIT_SECONDS = 30.0
BATCH_MESSAGES = 30
QUICK_BATCH_MESSAGES = 5


@dataclass(frozen=True)
class Invocation:
    function: str  # the template's logical id: TrackFunction, EvaluateFunction, SendFunction
    event: dict[str, Any]
    calls: list[ApiCall]
    at: datetime  # the stack clock when it started
    failed_records: int = 0

    @property
    def operations(self) -> Counter[str]:
        return by_operation(self.calls)

    def stream_message_ids(self) -> list[str]:
        return [
            str(record["dynamodb"]["NewImage"]["message_id"]["S"])
            for record in self.event.get("Records", [])
            if record.get("eventSource") == "aws:dynamodb"
        ]

    def queue_bodies(self) -> list[dict[str, Any]]:
        return [json.loads(record["body"]) for record in self.event.get("Records", []) if "body" in record]


@dataclass(frozen=True)
class Row:
    scenario: str
    invocation: Invocation
    records: int = 1  # stream records or messages the invocation handled (a batch row divides by it)


@dataclass
class CallsResult:
    warm: list[Row]
    cold: list[Row]
    profile_item_bytes: int = 0
    enrollment_item_bytes: int = 0
    notes: list[str] = field(default_factory=list)
    # Requests of the source with a daily quota (warm), one row per request.
    quota: list[Row] = field(default_factory=list)

    def track_rows(self) -> list[Row]:
        return [row for row in self.warm if row.invocation.function == "TrackFunction"]


class InvocationLog:
    """Every invocation of the stack's functions, in order, with a way to wait for one."""

    def __init__(self) -> None:
        self._items: list[Invocation] = []
        self._changed = threading.Condition()

    def add(self, invocation: Invocation) -> None:
        with self._changed:
            self._items.append(invocation)
            self._changed.notify_all()

    def mark(self) -> int:
        with self._changed:
            return len(self._items)

    def wait_for(self, predicate: Callable[[Invocation], bool], after: int, what: str) -> Invocation:
        deadline = time.monotonic() + WAIT_SECONDS
        with self._changed:
            while True:
                for invocation in self._items[after:]:
                    if predicate(invocation):
                        return invocation
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [f"{item.function} {dict(item.operations)}" for item in self._items[after:]]
                    raise TimeoutError(f"no invocation for {what} within {WAIT_SECONDS} s; saw {seen}")
                self._changed.wait(remaining)


class PushService(http.server.BaseHTTPRequestHandler):
    """A loopback web push service: accepts every push (201), as a browser vendor's would."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def push_service() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), PushService)
    thread = threading.Thread(target=server.serve_forever, name="bench-push", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def browser_keys() -> dict[str, str]:
    """A push subscription's keys, as a browser makes them (P-256 public key, 16-byte auth secret)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return {"p256dh": b64(public), "auth": b64(os.urandom(16))}


class Driver:
    """Moves the stack one step at a time and returns the invocation each step caused."""

    def __init__(self, stack: LocalStack, clock: ManualClock, log: InvocationLog, push_url: str) -> None:
        self.stack = stack
        self.clock = clock
        self.log = log
        self.push_url = push_url

    def post(self, path: str, body: dict[str, Any], write_key: str = WRITE_KEY) -> Invocation:
        """A tracking call; returns track's invocation (the HTTP answer comes after it)."""
        mark = self.log.mark()
        response = requests.post(f"{self.stack.api_url}{path}", auth=(write_key, ""), json=body, timeout=15)
        if response.status_code != 200:
            raise RuntimeError(f"{path} answered {response.status_code}: {response.text}")
        self.stack.wake_pumps()
        return self.log.wait_for(lambda item: item.function == "TrackFunction", mark, f"track {path}")

    def evaluated(self, message_id: str, after: int) -> Invocation:
        return self.log.wait_for(
            lambda item: item.function == "EvaluateFunction" and message_id in item.stream_message_ids(),
            after,
            f"the stream record of {message_id}",
        )

    def woken(self, journey_id: str, after: int) -> Invocation:
        """The wake-up of ``journey_id`` once due (an early one is only re-armed: not this). One visitor
        moves at a time, so the first such invocation after ``after`` is theirs."""

        def due(item: Invocation) -> bool:
            bodies = [body for body in item.queue_bodies() if body.get("journey_id") == journey_id]
            return (
                item.function == "EvaluateFunction"
                and bool(bodies)
                and all(datetime.fromisoformat(str(body["due_at"])) <= item.at for body in bodies)
            )

        return self.log.wait_for(due, after, f"the wake-up of {journey_id}")

    def sent(self, channel: str, journey_id: str, after: int) -> Invocation:
        return self.log.wait_for(
            lambda item: (
                item.function == "SendFunction"
                and any(b.get("channel") == channel and b.get("journey_id") == journey_id for b in item.queue_bodies())
            ),
            after,
            f"the {channel} send",
        )

    def advance(self, delta: timedelta) -> int:
        mark = self.log.mark()
        self.stack.advance(delta)
        return mark

    def track(self, who: str, suffix: str, event: str, **properties: Any) -> tuple[Invocation, str, int]:
        message_id = f"{who}-{suffix}"
        mark = self.log.mark()
        body = {
            "anonymousId": who,
            "messageId": message_id,
            "event": event,
            "properties": properties,
            "timestamp": self.clock.now().isoformat(),
            "context": {"timezone": "Asia/Ho_Chi_Minh"},
        }
        return self.post("/v1/track", body), message_id, mark


def visitor_flow(driver: Driver, who: str, quick: bool = False) -> list[Row]:
    """One visitor through the reference scenario and the click-without-purchase email; ``quick``: only
    the events that match no journey (a first event, a page view, an identify)."""
    rows: list[Row] = []
    subscription = {"endpoint": f"{driver.push_url}/push/{who}", "keys": browser_keys()}
    track, message_id, mark = driver.track(who, "sub", "web_push_subscribed", subscription=subscription)
    rows.append(Row("track: one /v1/track request (web_push_subscribed)", track))
    rows.append(Row("(a) no journey: first event of a new visitor", driver.evaluated(message_id, mark)))

    mark = driver.log.mark()
    page = {
        "anonymousId": who,
        "messageId": f"{who}-page",
        "name": "Váy nữ phong cách hè",
        "properties": {"path": "/p/vay-nu-he", "url": "https://shop.example/p/vay-nu-he"},
        "timestamp": driver.clock.now().isoformat(),
    }
    rows.append(Row("track: one /v1/page request", driver.post("/v1/page", page)))
    rows.append(Row("(a) no journey: page view of a known visitor", driver.evaluated(f"{who}-page", mark)))
    if quick:
        return rows + identify_flow(driver, who)

    product = {"product_id": "vay-nu-he", "name": "Váy nữ phong cách hè", "dwell_seconds": 16, "url": "/p/vay-nu-he"}
    track, message_id, mark = driver.track(who, "view", "product_viewed", **product)
    rows.append(Row("track: one /v1/track request (product_viewed)", track))
    rows.append(
        Row(
            "(b) enters services-consult at once: consult form queued, 30 min timeout scheduled",
            driver.evaluated(message_id, mark),
        )
    )
    rows.append(Row("(d) send onsite_form (outbox only)", driver.sent("onsite_form", "services-consult", mark)))

    mark = driver.advance(timedelta(minutes=30))
    rows.append(
        Row(
            "(c) wake-up: form timed out; wait until 1 day after entry (schedule)",
            driver.woken("services-consult", mark),
        )
    )

    mark = driver.advance(timedelta(days=1))
    rows.append(
        Row("(c) wake-up: web push queued, 1 day click timeout scheduled", driver.woken("services-consult", mark))
    )
    rows.append(Row("(d) send web_push (loopback push service)", driver.sent("web_push", "services-consult", mark)))

    rows += identify_flow(driver, who)

    clicked = {"channel": "web_push", "journey_id": "services-consult", "node_id": "web_push_reminder"}
    track, message_id, mark = driver.track(who, "click", "message_clicked", **clicked)
    rows.append(Row("track: one /v1/track request (message_clicked)", track))
    rows.append(
        Row(
            "(b) click: leaves services-consult, enters the email rule (2 h schedule)",
            driver.evaluated(message_id, mark),
        )
    )

    mark = driver.advance(timedelta(hours=2))
    rows.append(Row("(c) wake-up: entry confirmed, email queued", driver.woken("web-push-click-no-purchase", mark)))
    rows.append(Row("(d) send email (SES v2)", driver.sent("email", "web-push-click-no-purchase", mark)))
    return rows


def identify_flow(driver: Driver, who: str) -> list[Row]:
    mark = driver.log.mark()
    identify = {
        "anonymousId": who,
        "userId": f"user-{who}",
        "messageId": f"{who}-identify",
        # Email marketing is opt-in: the sign-up recorded her yes.
        "traits": {"email": f"{who}@example.com", "first_name": "Lan", "consent": {"email": True}},
        "timestamp": driver.clock.now().isoformat(),
    }
    # From the site's backend (the trusted key), as a login is: the address and consent count at once.
    return [
        Row("track: one /v1/identify request", driver.post("/v1/identify", identify, driver.stack.server_write_key)),
        Row("(a) no journey: identify with an email", driver.evaluated(f"{who}-identify", mark)),
    ]


def batch_flow(driver: Driver, who: str, messages: int) -> list[Row]:
    """One /v1/batch request of page views: track's writes, and evaluate's calls per record."""
    mark = driver.log.mark()
    batch = [
        {
            "type": "page",
            "anonymousId": who,
            "messageId": f"{who}-{number:03d}",
            "name": f"Trang {number}",
            "properties": {"path": f"/p/{number}"},
            "timestamp": driver.clock.now().isoformat(),
        }
        for number in range(messages)
    ]
    track = driver.post("/v1/batch", {"batch": batch})
    wanted = {str(item["messageId"]) for item in batch}
    seen: set[str] = set()
    calls: list[ApiCall] = []
    counted: list[Invocation] = []
    while seen != wanted:
        invocation = driver.log.wait_for(
            lambda item: (
                item.function == "EvaluateFunction"
                and bool(wanted & set(item.stream_message_ids()))
                and not any(item is other for other in counted)
            ),
            mark,
            "the batch's stream records",
        )
        counted.append(invocation)
        seen |= wanted & set(invocation.stream_message_ids())
        calls += invocation.calls
    invocations = len(counted)
    merged = Invocation("EvaluateFunction", {}, calls, driver.clock.now())
    return [
        Row(f"track: one /v1/batch request of {messages} messages", track),
        Row(f"(a) no journey: {messages} page views in {invocations} invocation(s), per record", merged, messages),
    ]


def onsite_poll_flow(driver: Driver, who: str) -> list[Row]:
    """What a page's poll for its onsite messages costs: one with nothing waiting (almost every poll),
    from a visitor the stack knows."""
    poll = {"writeKey": WRITE_KEY, "anonymousId": who}
    driver.post("/v1/onsite", poll)  # the first reads the source and the journeys into the warm Lambda
    return [Row("track: one /v1/onsite poll, nothing waiting", driver.post("/v1/onsite", poll))]


def quota_flow(driver: Driver, who: str, requests_counted: int) -> list[Row]:
    """Single-event requests of a source with a daily quota: what its counter costs per request. The first
    request (it reads the new source) is not counted."""
    source = {"source_id": "bench-quota", "limits": {"events_per_day": QUOTA_EVENTS_PER_DAY}}
    driver.stack.clients.dynamodb.put_item(
        TableName=driver.stack.resources.tables["ConfigTable"].ref,
        Item={"id": {"S": f"source/{QUOTA_WRITE_KEY}"}, "value": {"S": json.dumps(source)}},
    )
    rows = []
    for number in range(requests_counted + 1):
        body = {"anonymousId": who, "messageId": f"{who}-{number:03d}", "event": "product_viewed", "properties": {}}
        track = driver.post("/v1/track", body, write_key=QUOTA_WRITE_KEY)
        if number:
            rows.append(Row("track: /v1/track of a source with a daily quota", track))
    return rows


@contextmanager
def recorded_functions(stack: LocalStack, counter: CallCounter, log: InvocationLog) -> Iterator[None]:
    """Every function runs its real handler, inside ``counter.recording()`` on the invoking thread."""
    with ExitStack() as overrides:
        for logical_id, function in stack.functions.items():
            if not function.ready():
                raise RuntimeError(f"{logical_id} is {function.describe()}")
            real: Handler = getattr(sys.modules[function.module_name], function.attribute_name)
            overrides.enter_context(function.override(_recording(logical_id, real, stack, counter, log)))
        yield


def _recording(logical_id: str, real: Handler, stack: LocalStack, counter: CallCounter, log: InvocationLog) -> Handler:
    def handler(event: Any, context: Any) -> Any:
        at = stack.clock.now()
        result: Any = None
        with counter.recording() as calls:
            try:
                result = real(event, context)
                return result
            finally:
                failures = result.get("batchItemFailures", []) if isinstance(result, dict) else []
                log.add(Invocation(logical_id, event, list(calls), at, len(failures)))

    return handler


def run(quick: bool = False) -> CallsResult:
    """Both visitors through the whole flow and a batch of 30; ``quick``: only the events that match no
    journey, and a batch of 5 (for checking the counts, in seconds)."""
    clock = ManualClock(START, pending_delay=0.2)
    log = InvocationLog()
    with CallCounter() as counter, push_service() as push_url:
        stack = LocalStack(
            port=0,
            moto_port=0,
            clock=clock,
            write_key=WRITE_KEY,
            journeys_dir=JOURNEYS_DIR,
            handler_log_level="ERROR",
            sqs_retry_seconds=0,
            stream_retry_pause_seconds=0.02,
            scheduler_poll_seconds=0.05,
        )
        with stack, recorded_functions(stack, counter, log):
            driver = Driver(stack, clock, log, push_url)
            cold = visitor_flow(driver, "lan", quick)
            warm = visitor_flow(driver, "mai", quick)
            warm += batch_flow(driver, "hoa", QUICK_BATCH_MESSAGES if quick else BATCH_MESSAGES)
            warm += onsite_poll_flow(driver, "mai")
            quota = quota_flow(driver, "tuan", QUICK_QUOTA_REQUESTS if quick else QUOTA_REQUESTS)
            profile_bytes, enrollment_bytes = _item_sizes(stack, "mai")
    return CallsResult(
        warm=warm, cold=cold, profile_item_bytes=profile_bytes, enrollment_item_bytes=enrollment_bytes, quota=quota
    )


def _item_sizes(stack: LocalStack, who: str) -> tuple[int, int]:
    """The size of the visitor's profile item and largest enrollment item after the flow (they drive write units)."""
    client = stack.clients.dynamodb
    table = stack.resources.tables["ProfilesTable"].ref
    aliases = client.scan(
        TableName=table,
        FilterExpression="sk = :alias AND contains(pk, :who)",
        ExpressionAttributeValues={":alias": {"S": "alias"}, ":who": {"S": f"#anon#{who}"}},
    )["Items"]
    if not aliases:
        return 0, 0
    profile_key = f"profile#{aliases[0]['profile_id']['S']}"
    items = client.query(
        TableName=table, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": profile_key}}
    )["Items"]
    profile_bytes = max((item_size(item) for item in items if item["sk"]["S"] == "profile"), default=0)
    enrollment_bytes = max((item_size(item) for item in items if item["sk"]["S"].startswith("enrollment#")), default=0)
    return profile_bytes, enrollment_bytes


# ------------------------------------------------------------------------------------ report


def format_operations(operations: Counter[str], per: int = 1) -> str:
    if not operations:
        return "none"
    parts = []
    for name, count in sorted(operations.items()):
        value = count / per
        parts.append(f"{name} {value:g}" if per == 1 else f"{name} {value:.2f}")
    return ", ".join(parts)


def cold_extra(cold: Row, warm: Row) -> str:
    extra = cold.invocation.operations - warm.invocation.operations
    return format_operations(extra) if extra else ""


def report(result: CallsResult) -> str:
    rows = []
    cold_by_scenario = {row.scenario: row for row in result.cold}
    for row in result.warm:
        invocation = row.invocation
        operations = invocation.operations
        total = sum(operations.values()) / row.records
        units = sum(call.write_units for call in invocation.calls) / row.records
        reads = sum(call.read_units for call in invocation.calls) / row.records
        errors = Counter(f"{call.operation}:{call.error}" for call in invocation.calls if call.error)
        cold = cold_by_scenario.get(row.scenario)
        rows.append(
            [
                row.scenario,
                invocation.function.removesuffix("Function").lower(),
                format_operations(operations, row.records),
                f"{total:g}" if row.records == 1 else f"{total:.2f}",
                f"{units:g} / {reads:g}" if row.records == 1 else f"{units:.2f} / {reads:.2f}",
                cold_extra(cold, row) if cold else "",
                ", ".join(f"{name} {count}" for name, count in errors.items()),
            ]
        )
    table = markdown_table(
        ["scenario", "function", "calls by operation", "total", "WCU / RCU (est.)", "cold extra", "errors"], rows
    )
    track_counts = Counter(
        format_operations(row.invocation.operations)
        for row in result.track_rows()
        if "/v1/batch" not in row.scenario and "/v1/onsite" not in row.scenario
    )
    lines = [
        "## AWS calls per event",
        "",
        "Counted with botocore event hooks around each handler invocation on the local stack (second visitor: "
        "warm functions; 'cold extra' is what the first visitor's invocations added).",
        "",
        table,
        "",
        "- track, per single-message request (warm source cache): "
        + "; ".join(f"{calls} in {count} of {sum(track_counts.values())}" for calls, count in track_counts.items()),
        f"- the visitor's profile item after the flow: {result.profile_item_bytes} bytes; largest enrollment item: "
        f"{result.enrollment_item_bytes} bytes (write units are billed per started KB, twice in a transaction)",
    ]
    if result.quota:
        quota_calls = Counter[str]()
        for row in result.quota:
            quota_calls += row.invocation.operations
        lines.append(
            f"- track, a source with a daily quota of {QUOTA_EVENTS_PER_DAY:,} events (counter synced every "
            f"{sync_every(QUOTA_EVENTS_PER_DAY)} events), per single-message request over {len(result.quota)}: "
            + format_operations(quota_calls, len(result.quota))
        )
    lines += [f"- {note}" for note in result.notes]
    return "\n".join(lines)
