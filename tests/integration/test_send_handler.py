"""send_handler end to end on moto: SQS batches in, SES emails and outbox rows out, exactly once.

The tables come from tests/integration/conftest.py (the template's key schemas); the handler builds
its own service through send_wiring, as in Lambda.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_string
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.utils import unix_time_millis
from moto.ses.models import ses_backends
from moto.sqs.models import sqs_backends
from standardwebhooks import Webhook, WebhookVerificationError

import send_handler
from footprint.adapters import send_wiring
from footprint.adapters.outbox import DynamoOutbox
from footprint.adapters.profiles_store import profile_to_item
from footprint.clock import ManualClock, SystemClock, use_clock
from footprint.models.messages import OutgoingMessage
from footprint.models.profile import Profile
from footprint.services.send import OUTCOME_UNKNOWN
from tests.builders import T0
from tests.integration.conftest import Tables
from tests.integration.test_channels import Receiver

pytestmark = pytest.mark.integration

REGION = "us-east-1"
SENDER = "shop@example.com"


@dataclass
class LambdaContext:
    function_name: str = "SendFunction"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT_ID}:function:SendFunction"
    aws_request_id: str = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@dataclass
class Stack:
    tables: Tables
    clock: ManualClock

    @property
    def dynamodb(self) -> Any:
        return self.tables.client

    def invoke(self, *bodies: str, message_ids: list[str] | None = None) -> dict[str, Any]:
        ids = message_ids or [str(uuid.uuid4()) for _ in bodies]
        event = {"Records": [sqs_record(body, mid) for body, mid in zip(bodies, ids, strict=True)]}
        return dict(send_handler.handler(event, LambdaContext()))

    def outbox_row(self, key: str) -> dict[str, Any] | None:
        item = self.dynamodb.get_item(TableName=self.tables.messages, Key=outbox_key(key)).get("Item")
        return dict(item) if item else None

    def status_of(self, key: str) -> tuple[str, str]:
        row = self.outbox_row(key)
        assert row is not None
        return row["status"]["S"], row.get("detail", {"S": ""})["S"]

    def forget_idempotency_records(self) -> None:
        """What 7 days (the Powertools record's expiry) do; the outbox row stays."""
        for item in self.dynamodb.scan(TableName=self.tables.idempotency)["Items"]:
            self.dynamodb.delete_item(TableName=self.tables.idempotency, Key={"id": item["id"]})


def outbox_key(key: str) -> dict[str, Any]:
    return {"pk": {"S": f"message#{key}"}, "sk": {"S": "message"}}


def sqs_record(body: str, message_id: str) -> dict[str, Any]:
    """The shape Lambda's SQS event source delivers."""
    return {
        "messageId": message_id,
        "receiptHandle": f"rh-{message_id}",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1795000000000",
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1795000000001",
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:{DEFAULT_ACCOUNT_ID}:SendQueue",
        "awsRegion": REGION,
    }


@pytest.fixture
def stack(tables: Tables, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    monkeypatch.setenv("SENDER_EMAIL", SENDER)
    monkeypatch.setenv("VAPID_SECRET_NAME", "")
    # The tests' webhook receivers listen on loopback.
    monkeypatch.setenv("ALLOW_LOOPBACK_DESTINATIONS", "true")
    # What the stack creates: the key that signs unsubscribe and click links, and the API's URL.
    boto3.client("secretsmanager").create_secret(Name="footprint-email-links", SecretString="s" * 64)
    monkeypatch.setenv("EMAIL_LINK_SECRET_NAME", "footprint-email-links")
    monkeypatch.setenv("PUBLIC_API_URL", "https://track.example.com")
    clock = ManualClock(T0)
    use_clock(clock)
    send_wiring.reset()
    boto3.client("sesv2").create_email_identity(EmailIdentity=SENDER)
    for profile in (HOA, ANONYMOUS):
        tables.client.put_item(TableName=tables.profiles, Item=profile_to_item(profile))
    yield Stack(tables, clock)
    send_wiring.reset()
    use_clock(SystemClock())


KEY = "view-no-cart:1:e-1:email-1:0"
HOA = Profile(
    profile_id="p-hoa",
    source_id="demo",
    email="hoa@example.com",
    consent={"email": "granted"},  # email marketing is opt-in
    traits={"name": "Nguyễn Thị Hoa"},
)
ANONYMOUS = Profile(profile_id="p-anon", source_id="demo")


def email(key: str = KEY, profile_id: str = "p-hoa", **fields: Any) -> str:
    values: dict[str, Any] = {
        "idempotency_key": key,
        "profile_id": profile_id,
        "source_id": "demo",
        "journey_id": "view-no-cart",
        "journey_version": 1,
        "enrollment_id": "e-1",
        "node_id": "email-1",
        "channel": "email",
        "content": {
            "subject": "{{ profile.name }} ơi, {{ product.name }} vẫn còn hàng",
            "html": "<p>Chỉ {{ product.price }}đ</p>",
            "body": "Chỉ {{ product.price }}đ",
        },
        "context": {"product": {"name": "Váy nữ phong cách hè", "price": 350000}},
        "requested_at": T0,
    }
    values.update(fields)
    return OutgoingMessage.model_validate(values).model_dump_json()


def sent_emails() -> list[Any]:
    return list(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages)


def failures(response: dict[str, Any]) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


# ------------------------------------------------------------------ delivery


def test_an_email_message_is_rendered_sent_through_ses_and_recorded(stack: Stack) -> None:
    response = stack.invoke(email())

    assert failures(response) == []
    [sent] = sent_emails()
    assert "hoa@example.com" in sent.destinations
    mime = message_from_string(sent.raw_data, policy=default)
    assert mime["Subject"] == "Nguyễn Thị Hoa ơi, Váy nữ phong cách hè vẫn còn hàng"
    html_part = mime.get_body(("html",))
    assert html_part is not None
    assert html_part.get_content().startswith("<p>Chỉ 350000đ</p>")
    row = stack.outbox_row(KEY)
    assert row is not None
    names = ("profile_id", "journey_id", "node_id", "channel", "status", "sent_at")
    assert {k: row[k]["S"] for k in names} == {
        "profile_id": "p-hoa",
        "journey_id": "view-no-cart",
        "node_id": "email-1",
        "channel": "email",
        "status": "sent",
        "sent_at": T0.isoformat(),
    }
    assert json.loads(row["data"]["S"])["rendered"]["subject"].startswith("Nguyễn Thị Hoa ơi")


def test_skips_are_recorded_and_send_nothing(stack: Stack) -> None:
    response = stack.invoke(
        email("k-unknown", profile_id="p-nobody"),
        email("k-no-address", profile_id="p-anon"),
        email("k-sms", channel="sms", content={"body": "hi"}),
    )

    assert failures(response) == []
    assert sent_emails() == []
    assert stack.status_of("k-unknown") == ("skipped", "unknown profile")
    assert stack.status_of("k-no-address") == ("skipped", "no email address, or email declined")
    assert stack.status_of("k-sms") == ("skipped", "channel not configured")


def test_onsite_messages_wait_in_the_outbox_for_the_browser(stack: Stack) -> None:
    body = email("k-onsite", channel="onsite_push", content={"title": "Ưu đãi cho {{ profile.name }}"})

    stack.invoke(body)

    row = stack.outbox_row("k-onsite")
    assert row is not None
    # In the visitor's inbox (the OnsiteInbox index) until the browser shows it.
    assert (row["status"]["S"], row["onsite_inbox"]["S"], row["profile_id"]["S"]) == (
        "queued_onsite",
        "p-hoa",
        "p-hoa",
    )
    assert json.loads(row["data"]["S"])["rendered"] == {"title": "Ưu đãi cho Nguyễn Thị Hoa"}


# ------------------------------------------------------------------ poison records


def test_a_poison_record_fails_alone_and_the_rest_of_the_batch_is_delivered(stack: Stack) -> None:
    response = stack.invoke(
        email("k-1"),
        "not json at all",
        json.dumps({"idempotency_key": "k-x", "channel": "carrier_pigeon"}),
        email("k-2"),
        message_ids=["m-1", "m-poison", "m-invalid", "m-2"],
    )

    # SQS keeps the failed ones and, after maxReceiveCount, moves them to SendDeadLetterQueue.
    assert failures(response) == ["m-poison", "m-invalid"]
    assert len(sent_emails()) == 2
    assert stack.status_of("k-1")[0] == stack.status_of("k-2")[0] == "sent"


def test_a_batch_of_only_poison_records_is_a_partial_response_not_an_error(stack: Stack) -> None:
    response = stack.invoke("{}", "[]", message_ids=["m-a", "m-b"])

    assert failures(response) == ["m-a", "m-b"]


# ------------------------------------------------------------------ duplicates


def test_the_same_message_twice_in_one_batch_is_delivered_once(stack: Stack) -> None:
    body = email()

    response = stack.invoke(body, body, message_ids=["m-1", "m-1"])

    assert failures(response) == []
    assert len(sent_emails()) == 1


def test_a_redelivered_batch_is_delivered_once(stack: Stack) -> None:
    bodies = (email("k-1"), email("k-2"), email("k-3"))

    first = stack.invoke(*bodies, message_ids=["m-1", "m-2", "m-3"])
    second = stack.invoke(*bodies, message_ids=["m-1", "m-2", "m-3"])

    assert failures(first) == failures(second) == []
    assert len(sent_emails()) == 3


def test_two_sqs_messages_with_the_same_idempotency_key_are_delivered_once(stack: Stack) -> None:
    # e.g. evaluate re-ran a step and enqueued it again: new SQS message id, same key.
    stack.invoke(email(), message_ids=["m-first"])
    stack.clock.advance(timedelta(hours=1))
    stack.invoke(email(), message_ids=["m-second"])

    assert len(sent_emails()) == 1
    assert stack.status_of(KEY)[0] == "sent"


def test_the_outbox_still_guards_after_the_idempotency_records_expire(stack: Stack) -> None:
    stack.invoke(email())
    stack.forget_idempotency_records()
    stack.clock.advance(timedelta(days=8))

    response = stack.invoke(email())

    assert failures(response) == []
    assert len(sent_emails()) == 1


def test_the_idempotency_record_alone_stops_a_duplicate(stack: Stack) -> None:
    # Each guard holds on its own: here the outbox row is gone, the Powertools record is not.
    stack.invoke(email())
    [record] = stack.dynamodb.scan(TableName=stack.tables.idempotency)["Items"]
    assert record["id"]["S"].startswith("footprint-send#")
    assert record["status"]["S"] == "COMPLETED"
    stack.dynamodb.delete_item(TableName=stack.tables.messages, Key=outbox_key(KEY))

    response = stack.invoke(email())

    assert failures(response) == []
    assert len(sent_emails()) == 1


def put_open_claim(stack: Stack, state: str, attempt: str = "stopped-attempt") -> None:
    """An open claim left by an attempt that stopped (as a crashed Lambda leaves it)."""
    stack.dynamodb.put_item(
        TableName=stack.tables.messages,
        Item={
            **outbox_key(KEY),
            "status": {"S": state},
            "attempt_id": {"S": attempt},
            "claimed_at": {"S": T0.isoformat()},
        },
    )


def test_a_claim_left_before_the_provider_call_is_taken_over_and_sent_once_stale(stack: Stack) -> None:
    # Regression: a claim found open after 2 minutes was recorded "failed: outcome unknown".
    put_open_claim(stack, "claimed")

    # While that attempt may still be running, the message goes back to the queue
    assert failures(stack.invoke(email(), message_ids=["m-1"])) == ["m-1"]
    assert sent_emails() == []
    # Once it cannot be running any more, the message is taken over and sent
    stack.clock.advance(timedelta(minutes=3))
    assert failures(stack.invoke(email(), message_ids=["m-1"])) == []

    assert len(sent_emails()) == 1
    assert stack.status_of(KEY)[0] == "sent"


def test_a_claim_left_while_calling_the_provider_is_recorded_unknown_not_resent(stack: Stack) -> None:
    put_open_claim(stack, "calling_provider")

    assert failures(stack.invoke(email(), message_ids=["m-1"])) == ["m-1"]
    stack.clock.advance(timedelta(minutes=3))
    assert failures(stack.invoke(email(), message_ids=["m-1"])) == []

    assert sent_emails() == []
    assert stack.status_of(KEY) == ("failed", OUTCOME_UNKNOWN)


def test_an_onsite_claim_left_anywhere_is_redone_into_the_inbox(stack: Stack) -> None:
    put_open_claim(stack, "calling_provider")
    stack.clock.advance(timedelta(minutes=3))

    body = email(channel="onsite_push", content={"title": "Ưu đãi cho {{ profile.name }}"})
    assert failures(stack.invoke(body)) == []

    row = stack.outbox_row(KEY)
    assert row is not None
    assert (row["status"]["S"], row["onsite_inbox"]["S"]) == ("queued_onsite", "p-hoa")


# ------------------------------------------------------------------ retries


class FlakyWebhook:
    """Answers the scripted statuses in order, then 200."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.calls = 0
        self.retry_after: str | None = None
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                hook.calls += 1
                status = hook.statuses.pop(0) if hook.statuses else 200
                self.send_response(status)
                if status == 429 and hook.retry_after:
                    self.send_header("Retry-After", hook.retry_after)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def flaky_webhook() -> Iterator[FlakyWebhook]:
    hook = FlakyWebhook(503)
    yield hook
    hook.close()


def test_a_retryable_failure_fails_the_record_and_the_retry_delivers_once(
    stack: Stack, flaky_webhook: FlakyWebhook
) -> None:
    body = email("k-hook", channel="webhook", content={"url": flaky_webhook.url})

    first = stack.invoke(body, email("k-mail"), message_ids=["m-hook", "m-mail"])
    assert failures(first) == ["m-hook"]
    assert stack.outbox_row("k-hook") is None  # the claim was released for the retry

    second = stack.invoke(body, message_ids=["m-hook"])
    third = stack.invoke(body, message_ids=["m-hook"])

    assert failures(second) == failures(third) == []
    assert flaky_webhook.calls == 2  # the 503, then one delivery
    assert stack.status_of("k-hook") == ("sent", "webhook answered 200")
    assert len(sent_emails()) == 1


def test_a_retry_backs_off_and_waits_as_long_as_the_receiver_asks(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="SendQueue", Attributes={"VisibilityTimeout": "180"})["QueueUrl"]
    monkeypatch.setenv("SEND_QUEUE_URL", url)
    send_wiring.reset()
    hook = FlakyWebhook(503, 429)
    hook.retry_after = "600"
    try:
        sqs.send_message(QueueUrl=url, MessageBody=email("k-hook", channel="webhook", content={"url": hook.url}))
        hidden_for = []
        for _ in range(2):
            [received] = sqs.receive_message(QueueUrl=url, AttributeNames=["All"], VisibilityTimeout=0)["Messages"]
            record = sqs_record(received["Body"], received["MessageId"])
            record["receiptHandle"] = received["ReceiptHandle"]
            record["attributes"]["ApproximateReceiveCount"] = received["Attributes"]["ApproximateReceiveCount"]
            event = {"Records": [record]}
            assert failures(dict(send_handler.handler(event, LambdaContext()))) == [received["MessageId"]]
            hidden_for.append(seconds_hidden(url, received["MessageId"]))
            # Time passes (moto's SQS keeps real time): the message is back for the next receive.
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=received["ReceiptHandle"], VisibilityTimeout=0)
    finally:
        hook.close()

    # The first retry after 30 s of back-off; the 429 asked for 600 s, longer than the 60 s back-off.
    assert [round(s) for s in hidden_for] == [30, 600]


def seconds_hidden(queue_url: str, message_id: str) -> float:
    queue = sqs_backends[DEFAULT_ACCOUNT_ID][REGION].queues[queue_url.rsplit("/", 1)[-1]]
    [message] = [m for m in queue._messages if m.id == message_id]
    return float(message.visible_at - unix_time_millis()) / 1000


# ------------------------------------------------------------------ webhook signing secrets

STACK_WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"the stack's webhook key, 32 B").decode()
CRM_WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"the CRM's own webhook key, 32 B").decode()


@pytest.fixture
def signing(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    """The stack's WebhookSigningSecret, a journey's own footprint/webhooks/crm, and a receiver; the clock at
    the wall clock's second, as the receiver's library checks the signed timestamp against its own."""
    secrets = boto3.client("secretsmanager")
    secrets.create_secret(
        Name="footprint-webhook-signing", SecretString=json.dumps({"signing_secret": STACK_WEBHOOK_SECRET})
    )
    secrets.create_secret(
        Name="footprint/webhooks/crm", SecretString=json.dumps({"signing_secret": CRM_WEBHOOK_SECRET})
    )
    secrets.create_secret(Name="footprint/webhooks/unsigned", SecretString=json.dumps({"note": "no key here"}))
    monkeypatch.setenv("WEBHOOK_SECRET_NAME", "footprint-webhook-signing")
    send_wiring.reset()
    stack.clock.set(datetime.now(UTC).replace(microsecond=0))
    receiver = Receiver()
    yield receiver
    receiver.close()


def webhook(key: str, receiver: Receiver, **content: Any) -> str:
    return email(
        key, channel="webhook", content={"url": f"{receiver.url}/crm", "payload": {"note": "Gọi Hoa"}, **content}
    )


def test_a_webhook_naming_its_secret_is_signed_with_it_so_its_receiver_verifies_it(
    stack: Stack, signing: Receiver
) -> None:
    assert failures(stack.invoke(webhook("k-own", signing, secret="crm"))) == []

    [request] = signing.received
    assert stack.status_of("k-own") == ("sent", "webhook answered 200")
    # What the CRM runs, configured with its own key: the specification's reference library.
    assert Webhook(CRM_WEBHOOK_SECRET).verify(request.raw, request.headers)["payload"] == {"note": "Gọi Hoa"}
    with pytest.raises(WebhookVerificationError):
        Webhook(STACK_WEBHOOK_SECRET).verify(request.raw, request.headers)


def test_a_webhook_without_a_secret_of_its_own_is_signed_with_the_stacks(stack: Stack, signing: Receiver) -> None:
    assert failures(stack.invoke(webhook("k-stack", signing))) == []

    [request] = signing.received
    assert Webhook(STACK_WEBHOOK_SECRET).verify(request.raw, request.headers)["payload"] == {"note": "Gọi Hoa"}
    with pytest.raises(WebhookVerificationError):
        Webhook(CRM_WEBHOOK_SECRET).verify(request.raw, request.headers)


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        ("erp", "webhook: the step's signing secret 'footprint/webhooks/erp' does not exist"),
        ("unsigned", "webhook: the step's signing secret 'footprint/webhooks/unsigned' has no signing_secret"),
    ],
)
def test_a_webhook_whose_secret_is_missing_fails_for_good_and_is_never_sent(
    stack: Stack, signing: Receiver, secret: str, reason: str
) -> None:
    response = stack.invoke(webhook("k-missing", signing, secret=secret))

    # Not retried: no retry brings the key back; the failure says which secret to create.
    assert failures(response) == []
    assert stack.status_of("k-missing") == ("failed", reason)
    assert signing.received == []
    [step] = stack.dynamodb.scan(TableName=stack.tables.steps)["Items"]
    assert (step["outcome"]["S"], step["detail"]["S"]) == ("failed", reason)


def test_the_stacks_missing_webhook_secret_is_retried_until_the_deployment_is_fixed(
    stack: Stack, signing: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET_NAME", "footprint-not-deployed")
    send_wiring.reset()

    assert failures(stack.invoke(webhook("k-stack", signing), message_ids=["m-stack"])) == ["m-stack"]
    assert stack.outbox_row("k-stack") is None  # released for the retry
    assert signing.received == []


# ------------------------------------------------------------------ what the funnel learns from send


def test_a_message_that_cannot_render_is_a_failed_journey_step_once(stack: Stack) -> None:
    # Given a message whose subject uses a filter that does not exist
    broken = email(content={"subject": "{{ profile.name | shout }}", "body": "x"})

    # When send gets it, and SQS delivers it again later
    stack.invoke(broken)
    stack.forget_idempotency_records()
    stack.invoke(broken)

    # Then nothing went out, and StepsTable holds one `failed` step for the node, with the reason
    assert sent_emails() == []
    steps = stack.dynamodb.scan(TableName=stack.tables.steps)["Items"]
    assert [(s["node_id"]["S"], s["outcome"]["S"], s["channel"]["S"]) for s in steps] == [
        ("email-1", "failed", "email")
    ]
    assert steps[0]["detail"]["S"].startswith("template error:")
    assert steps[0]["enrollment_id"]["S"] == "e-1"


def test_a_delivered_message_adds_no_step(stack: Stack) -> None:
    stack.invoke(email())

    assert len(sent_emails()) == 1
    assert stack.dynamodb.scan(TableName=stack.tables.steps)["Items"] == []


# ------------------------------------------------------------------ crashes, injected into the AWS calls


class Crash(BaseException):
    """The Lambda stops here (timeout, out of memory): no except or finally of the handler runs,
    Powertools keeps its record "in progress", and SQS redelivers the whole batch later."""


Matcher = Callable[[dict[str, Any]], bool]


@dataclass
class Fault:
    """One fault on one AWS call of the send function's clients, through botocore's events."""

    kind: str  # "crash_before" (never sent), "crash_after" (landed, then the Lambda stops),
    # "lost_response" (landed, the response is lost and botocore sends the request again)
    client: Any
    operation: str  # e.g. "dynamodb.PutItem", "sesv2.SendEmail"
    matches: Matcher
    fired: int = 0

    def install(self) -> Fault:
        events = self.client.meta.events
        events.register_first(f"before-parameter-build.{self.operation}", self._before)
        events.register_first(f"after-call.{self.operation}", self._after)
        events.register_first(f"needs-retry.{self.operation}", self._needs_retry)
        return self

    def _before(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if self.fired or not self.matches(params):
            return
        self.fired += 1
        if self.kind == "crash_before":
            raise Crash(f"before {self.operation}")
        context["footprint_fault"] = self.kind

    def _after(self, context: dict[str, Any], **_: Any) -> None:
        if context.get("footprint_fault") == "crash_after":
            raise Crash(f"after {self.operation}")

    def _needs_retry(self, request_dict: dict[str, Any], attempts: int, **_: Any) -> int | None:
        if request_dict["context"].get("footprint_fault") == "lost_response" and attempts == 1:
            return 0  # the write landed; botocore heard nothing and sends it again at once
        return None


def is_claim(params: dict[str, Any]) -> bool:
    return params.get("TableName") == "footprint-messages" and params.get("ConditionExpression") == (
        "attribute_not_exists(pk)"
    )


def is_mark(params: dict[str, Any]) -> bool:
    return ":calling" in params.get("UpdateExpression", "")


def is_settle(params: dict[str, Any]) -> bool:
    return params.get("Item", {}).get("status", {}).get("S") in ("sent", "failed", "queued_onsite", "skipped")


def is_idempotency_success(params: dict[str, Any]) -> bool:
    return params.get("TableName") == "footprint-idempotency"


def anything(params: dict[str, Any]) -> bool:
    return True


def after_the_visibility_timeout(stack: Stack) -> None:
    """What SQS's 180 s do before it redelivers: the crashed invocation's 30 s are long over, so
    Powertools' in-progress record has expired (it counts real time; here it is moved by hand)."""
    stack.clock.advance(timedelta(seconds=180))
    items = stack.dynamodb.scan(TableName=stack.tables.idempotency)["Items"]
    for item in items:
        if item["status"]["S"] == "INPROGRESS":
            stack.dynamodb.update_item(
                TableName=stack.tables.idempotency,
                Key={"id": item["id"]},
                UpdateExpression="SET in_progress_expiration = :past",
                ExpressionAttributeValues={":past": {"N": "0"}},
            )


def deliver_through_crashes(stack: Stack, body: str) -> None:
    """Invoke, and after a crash or a failed record redeliver the way SQS does, up to 5 receives."""
    for _ in range(5):
        try:
            if failures(stack.invoke(body, message_ids=["m-1"])) == []:
                return
        except Crash:
            pass
        after_the_visibility_timeout(stack)
    raise AssertionError("never delivered")


CRASHES = [
    # fault kind, operation, which call, emails SES holds, final status
    pytest.param("crash_after", "dynamodb.PutItem", is_claim, 1, "sent", id="crash after the claim put"),
    pytest.param("lost_response", "dynamodb.PutItem", is_claim, 1, "sent", id="claim response lost"),
    pytest.param("crash_after", "dynamodb.UpdateItem", is_mark, 0, "failed", id="crash after the calling mark"),
    pytest.param("lost_response", "dynamodb.UpdateItem", is_mark, 1, "sent", id="calling mark response lost"),
    pytest.param("crash_before", "sesv2.SendEmail", anything, 0, "failed", id="crash just before SES"),
    pytest.param("crash_after", "sesv2.SendEmail", anything, 1, "failed", id="SES accepted, then crash"),
    pytest.param("crash_before", "dynamodb.PutItem", is_settle, 1, "failed", id="crash before settle"),
    pytest.param("lost_response", "dynamodb.PutItem", is_settle, 1, "sent", id="settle response lost"),
    pytest.param("crash_after", "dynamodb.PutItem", is_settle, 1, "sent", id="crash after settle"),
    pytest.param("crash_before", "dynamodb.UpdateItem", is_idempotency_success, 1, "sent", id="crash before COMPLETED"),
]


@pytest.mark.parametrize(("kind", "operation", "matches", "emails", "status"), CRASHES)
def test_an_email_crashed_at_any_step_is_sent_at_most_once_and_never_lost_before_ses(
    stack: Stack, kind: str, operation: str, matches: Matcher, emails: int, status: str
) -> None:
    service = operation.split(".", maxsplit=1)[0]
    client = send_wiring.dynamodb() if service == "dynamodb" else send_wiring.sesv2()
    fault = Fault(kind, client, operation, matches).install()

    deliver_through_crashes(stack, email())

    assert fault.fired == 1
    assert len(sent_emails()) == emails
    assert stack.status_of(KEY)[0] == status
    if status == "failed":
        assert stack.status_of(KEY)[1] == OUTCOME_UNKNOWN
    # and whatever comes later is a duplicate
    stack.forget_idempotency_records()
    assert failures(stack.invoke(email())) == []
    assert len(sent_emails()) == emails


@pytest.mark.parametrize(
    ("kind", "operation", "matches"),
    [
        ("crash_after", "dynamodb.PutItem", is_claim),
        ("lost_response", "dynamodb.PutItem", is_claim),
        ("crash_before", "dynamodb.PutItem", is_settle),
        ("lost_response", "dynamodb.PutItem", is_settle),
    ],
)
def test_an_onsite_message_crashed_at_any_step_reaches_the_inbox_once(
    stack: Stack, kind: str, operation: str, matches: Matcher
) -> None:
    fault = Fault(kind, send_wiring.dynamodb(), operation, matches).install()
    body = email(channel="onsite_form", content={"title": "Chào {{ profile.name }}"})

    deliver_through_crashes(stack, body)

    assert fault.fired == 1
    outbox = send_wiring.send_service().outbox
    assert isinstance(outbox, DynamoOutbox)
    assert [record.idempotency_key for record in outbox.pending_onsite("p-hoa")] == [KEY]


def test_a_crashed_invocation_blocks_its_retry_only_until_its_lambda_time_is_up(stack: Stack) -> None:
    Fault("crash_after", send_wiring.dynamodb(), "dynamodb.PutItem", is_claim).install()
    with pytest.raises(Crash):
        stack.invoke(email(), message_ids=["m-1"])

    # Powertools holds an in-progress record whose expiry is the invocation's deadline (the
    # handler registers the Lambda context); an early redelivery is refused, nothing is sent.
    [record] = stack.dynamodb.scan(TableName=stack.tables.idempotency)["Items"]
    assert record["status"]["S"] == "INPROGRESS"
    assert "in_progress_expiration" in record
    assert failures(stack.invoke(email(), message_ids=["m-1"])) == ["m-1"]

    after_the_visibility_timeout(stack)
    assert failures(stack.invoke(email(), message_ids=["m-1"])) == []
    assert len(sent_emails()) == 1


def test_a_second_attempt_while_the_first_calls_ses_delivers_nothing_more(stack: Stack) -> None:
    # Two invocations at once for one message: the second comes in while the first is calling
    # SES, once past Powertools' record (still in progress) and once past the outbox alone.
    seen: list[str] = []

    def second_attempt(**_: Any) -> None:
        message = OutgoingMessage.model_validate_json(email())
        for forget_powertools in (False, True):
            if forget_powertools:
                stack.forget_idempotency_records()
            try:
                send_wiring.send_service().deliver(message)
            except Exception as error:  # which one is what the test looks at
                seen.append(type(error).__name__)

    send_wiring.sesv2().meta.events.register_first("before-call.sesv2.SendEmail", second_attempt)

    assert failures(stack.invoke(email(), message_ids=["m-1"])) == []

    assert seen == ["IdempotencyAlreadyInProgressError", "RetryableDeliveryError"]
    assert len(sent_emails()) == 1
    assert failures(stack.invoke(email(), message_ids=["m-1"])) == []
    assert len(sent_emails()) == 1


# ------------------------------------------------------------------ pressure across journeys


@pytest.fixture
def capped(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    """The stack's MessagingPolicy: one email a day and two a week per visitor, across journeys."""
    policy = {"frequency_caps": {"email": {"per_day": 1, "per_week": 2}}, "timezone": "Asia/Ho_Chi_Minh"}
    monkeypatch.setenv("MESSAGING_POLICY", json.dumps(policy))
    send_wiring.reset()
    return stack


def from_journey(journey_id: str, **fields: Any) -> str:
    return email(f"{journey_id}:1:e-1:email-1:0", journey_id=journey_id, **fields)


def test_two_journeys_cannot_together_send_more_than_the_stack_wide_cap(capped: Stack) -> None:
    assert failures(capped.invoke(from_journey("welcome"))) == []
    assert failures(capped.invoke(from_journey("cart-abandonment"))) == []

    assert len(sent_emails()) == 1
    assert capped.status_of("cart-abandonment:1:e-1:email-1:0") == (
        "skipped",
        "frequency cap: at most 1 email per day across journeys",
    )
    # The skip is a journey step, so the funnel shows where the message went.
    steps = capped.dynamodb.scan(TableName=capped.tables.steps)["Items"]
    assert [(s["node_id"]["S"], s["outcome"]["S"]) for s in steps] == [("email-1", "skipped")]


def test_a_transactional_email_is_neither_held_back_by_the_stack_wide_cap_nor_counted(capped: Stack) -> None:
    assert failures(capped.invoke(from_journey("welcome"))) == []
    assert failures(capped.invoke(from_journey("order-confirmation", category="transactional"))) == []
    assert failures(capped.invoke(from_journey("cart-abandonment"))) == []

    assert len(sent_emails()) == 2
    assert capped.status_of("order-confirmation:1:e-1:email-1:0")[0] == "sent"
    assert capped.status_of("cart-abandonment:1:e-1:email-1:0")[0] == "skipped"


def test_a_retried_message_is_not_counted_twice(capped: Stack) -> None:
    first = from_journey("welcome")
    capped.invoke(first)
    capped.forget_idempotency_records()
    capped.dynamodb.delete_item(TableName=capped.tables.messages, Key=outbox_key("welcome:1:e-1:email-1:0"))

    assert failures(capped.invoke(first)) == []  # the same key again: its slot is already its own

    assert capped.status_of("welcome:1:e-1:email-1:0")[0] == "sent"


def test_the_cap_is_per_local_day_and_week_of_the_visitor(capped: Stack) -> None:
    capped.invoke(from_journey("welcome"))
    # 09:00 UTC is 16:00 in Hà Nội; 17:30 UTC is already the next local day.
    capped.clock.advance(timedelta(hours=8, minutes=30))
    capped.invoke(from_journey("cart-abandonment"))
    capped.clock.advance(timedelta(days=1))
    capped.invoke(from_journey("win-back"))

    assert len(sent_emails()) == 2  # the week's two
    assert capped.status_of("win-back:1:e-1:email-1:0") == (
        "skipped",
        "frequency cap: at most 2 email per week across journeys",
    )


def test_a_slot_is_taken_by_one_conditional_write_never_a_read_then_a_write(capped: Stack) -> None:
    # Two journeys sending in the same second cannot both see room: there is no read to race with.
    # (moto does not serialise concurrent transactions, so this is shown on the calls, not threads.)
    calls: list[str] = []
    client = send_wiring.dynamodb()
    client.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))

    capped.invoke(from_journey("welcome"))
    capped.invoke(from_journey("cart-abandonment"))

    pressure = [name for name in calls if name in ("TransactWriteItems", "Query", "Scan")]
    assert pressure == ["TransactWriteItems", "TransactWriteItems"]
    assert len(sent_emails()) == 1


def test_a_message_retried_into_quiet_hours_is_held_until_they_end(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="SendQueue")["QueueUrl"]
    monkeypatch.setenv("SEND_QUEUE_URL", url)
    send_wiring.reset()
    quiet = {"start": "21:00", "end": "08:00", "behaviour": "hold"}
    # 15:00 UTC is 22:00 in Hà Nội: quiet until 08:00 there, ten hours later.
    stack.clock.advance(timedelta(hours=6))
    sqs.send_message(QueueUrl=url, MessageBody=email(quiet_hours=quiet, timezone="Asia/Ho_Chi_Minh"))
    [received] = sqs.receive_message(QueueUrl=url, AttributeNames=["All"])["Messages"]
    record = sqs_record(received["Body"], received["MessageId"])
    record["receiptHandle"] = received["ReceiptHandle"]

    assert failures(dict(send_handler.handler({"Records": [record]}, LambdaContext()))) == [received["MessageId"]]

    assert sent_emails() == []
    assert stack.outbox_row(KEY) is None  # nothing settled: it comes back
    assert round(seconds_hidden(url, received["MessageId"])) == 10 * 3600
    stack.clock.advance(timedelta(hours=10))
    assert failures(stack.invoke(received["Body"])) == []
    assert len(sent_emails()) == 1
