"""Randomized fault injection through the real evaluate and send functions, on moto.

Many visitors walk through the shipped journeys (journeys/*.yaml). Their events are written to
EventsTable as track writes them and handed to evaluate_handler as DynamoDB stream batches; the
wake-ups and sends the functions produce go through the real adapters into moto (SQS, Scheduler,
DynamoDB, SES) and are delivered back to evaluate_handler and send_handler the way Lambda's event
source mappings and EventBridge Scheduler do (the model below). Time is a ManualClock moved from
one due item to the next, never slept.

The same visitors run twice with the same seed: once without faults, once with faults injected at
every boundary (see FAULT_KINDS). The second run must deliver what the first delivered, once:

- no duplicate delivery: what the providers (SES, the fake push service, the onsite inbox)
  received, counted per idempotency key, is at most one;
- no lost message: every message of the fault-free run reached its provider, and in each run every
  decided send was delivered or recorded skipped/failed by send;
- no lost or duplicated step: every StepsTable step of the fault-free run is there, each once;
- no stuck enrollment: after every queue is drained and time is past every wait, none is open;
- nothing parked: no stream record ran out of retries and no message went to a dead-letter queue.

``python -m tests.faults`` (``make faults``) runs a larger set and prints a table per fault kind.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import os
import random
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, redirect_stdout, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _path in ("layers/shared", "local", "functions/evaluate", "functions/send", "."):
    if str(ROOT / _path) not in sys.path:
        sys.path.insert(0, str(ROOT / _path))

# The same environment as tests/conftest.py, for `python -m tests.faults` outside pytest.
for _name, _value in {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_SERVICE_NAME": "footprint",
    "POWERTOOLS_METRICS_NAMESPACE": "Footprint",
    "POWERTOOLS_LOG_LEVEL": "CRITICAL",
}.items():
    os.environ.setdefault(_name, _value)

import boto3  # noqa: E402
import botocore.loaders  # noqa: E402
import botocore.session  # noqa: E402
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType  # noqa: E402
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError  # noqa: E402
from moto import mock_aws  # noqa: E402

import evaluate_handler  # noqa: E402
import send_handler  # noqa: E402
from footprint.adapters import send_wiring, wiring  # noqa: E402
from footprint.adapters.channels.email import SesEmailSender  # noqa: E402
from footprint.adapters.channels.onsite import OnsiteInboxSender  # noqa: E402
from footprint.adapters.journey_catalog import DynamoJourneyCatalog  # noqa: E402
from footprint.clock import ManualClock, SystemClock, use_clock  # noqa: E402
from footprint.engine import Enrollment  # noqa: E402
from footprint.models import keys  # noqa: E402
from footprint.models.events import TrackedEvent  # noqa: E402
from footprint.models.journey import load_journey_yaml  # noqa: E402
from footprint.models.messages import OutgoingMessage  # noqa: E402
from footprint.models.profile import Profile, profile_id_for  # noqa: E402
from footprint.services.retries import RetryableDeliveryError  # noqa: E402
from footprint.services.send import DeliveryResult  # noqa: E402

JOURNEYS = sorted((ROOT / "journeys").glob("*.yaml"))
START = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 09:00 in Ho Chi Minh City, outside quiet hours
TIMEZONE = "Asia/Ho_Chi_Minh"
SOURCE = "demo"
SENDER = "shop@example.com"

# The event source mappings and queues of infra/template.yaml.
STREAM_BATCH_SIZE = 100
STREAM_MAX_RETRIES = 5
STREAM_RETRY_SECONDS = 1
STREAM_SHARDS = 4
QUEUE_BATCH_SIZE = 10
MAX_RECEIVE_COUNT = 5
SEND_VISIBILITY_SECONDS = 180
TIMERS_VISIBILITY_SECONDS = 360
SCHEDULER_MIN_SECONDS = 60  # footprint.adapters.timers: shorter waits are SQS message timers
# A crashed invocation's Powertools record stays "in progress" until its Lambda deadline.
LAMBDA_TIMEOUT_SECONDS = 30

# ---------------------------------------------------------------------------------- fault kinds

FAULT_KINDS: dict[str, str] = {
    "stream_duplicate": "a stream record delivered twice (in its batch, or again in the next one)",
    "stream_reordered": "shards' batches, and a batch's devices, in another order (each device's records keep theirs)",
    "stream_late": "a shard held back 5-60 s before its batch is delivered",
    "wake_up_double_fired": "a schedule or SQS timer delivered twice",
    "wake_up_early": "a wake-up delivered before it is due, as well as when due",
    "wake_up_late": "a schedule fired 1-120 s late",
    "sqs_redelivered": "a SendQueue message delivered twice",
    "aws_error_before": "an AWS call fails before it is made (5xx, throttling, no connection)",
    "aws_timeout_after": "an AWS call lands, then its response is lost (read timeout)",
    "stream_record_error": "either of the two above inside a stream batch: that record fails, the batch goes on",
    "crash_before_aws": "the Lambda stops just before an AWS call",
    "crash_after_aws": "the Lambda stops just after an AWS call landed",
    "provider_error_before": "the provider (SES, push service) cannot be reached",
    "provider_error_after": "the push service took the message, then its answer fails (recorded failed, not resent)",
    "provider_crash_after": "the provider took the message, then the Lambda stops",
    "concurrent_invocation": "two invocations for one person interleaved (the first paused mid-call)",
}
# Inputs rather than faults: the same in both runs, counted for the table.
INPUT_KINDS = {
    "merge_during_wait": "a visitor identifies (userId) while a journey waits for them",
    "merge_then_re_entry": "a known contact with earlier entries adopts a device's journey, then enters it again",
    "cart_in_unless_window": "an add_to_cart 4 s after the product view, inside the consult form's 10 s window",
}

# Kinds that still find a defect on main: each names the defect and the branch fixing it. The
# integrator removes the entry once that branch is merged. Nothing else is ever disabled.
KNOWN_DEFECTS: dict[str, str] = {
    # None now. A stream record that failed with an error used not to stop its batch (a device's later
    # records ran before it was retried); evaluate now stops a stream batch at its first failure.
}

# Faults that would exercise a documented limit, not a defect (docs/architecture.md, "Sends"): a
# provider call stopped between the "calling provider" mark and the provider's answer is recorded
# "failed, outcome unknown" and never resent (at most once), and an answer lost after the provider
# took the message is retried (SES has no idempotency token). The harness does not inject there.
AT_MOST_ONCE_WINDOW = "crash between the calling-provider mark and the provider's answer"

DEFAULT_RATES: dict[str, float] = {
    "stream_duplicate": 0.08,
    "stream_reordered": 1.0,
    "stream_late": 0.08,
    "wake_up_double_fired": 0.1,
    "wake_up_early": 0.08,
    "wake_up_late": 0.1,
    "sqs_redelivered": 0.1,
    "aws_error_before": 0.006,
    "aws_timeout_after": 0.006,
    "stream_record_error": 0.006,
    "crash_before_aws": 0.004,
    "crash_after_aws": 0.004,
    "provider_error_before": 0.1,
    "provider_error_after": 0.15,
    "provider_crash_after": 0.1,
    "concurrent_invocation": 0.15,
}
# Calls on a received SQS message, which the harness's queue model answers.
HARNESS_ANSWERS = frozenset({("sqs", "change_message_visibility"), ("sqs", "delete_message")})
# The calls that reach a provider (the rest of the AWS calls are the stack's own).
PROVIDER_CALLS = frozenset({("sesv2", "send_email"), ("sns", "publish")})


class Crash(BaseException):
    """The Lambda stops here (timeout, out of memory): no except or finally of the function runs,
    Powertools keeps its record "in progress", and the event source delivers the batch again."""


def enabled_kinds(exclude: Mapping[str, str] | None = None) -> frozenset[str]:
    """Every fault kind but those excluded for a known defect (KNOWN_DEFECTS by default)."""
    excluded = KNOWN_DEFECTS if exclude is None else exclude
    return frozenset(kind for kind in FAULT_KINDS if kind not in excluded)


def enabled_inputs(exclude: Mapping[str, str] | None = None) -> frozenset[str]:
    """Every input kind but those excluded for a known defect (KNOWN_DEFECTS by default)."""
    excluded = KNOWN_DEFECTS if exclude is None else exclude
    return frozenset(kind for kind in INPUT_KINDS if kind not in excluded)


@dataclass
class _Invocation:
    """What the proxies need to know about the invocation running on this thread."""

    faults_allowed: bool
    stream: bool = False  # a batch of EventsTable's stream (its records fail one by one)
    calls: int = 0
    pause_at: int | None = None
    paused: threading.Event | None = None
    resume: threading.Event | None = None
    message: OutgoingMessage | None = None  # the message a channel is sending right now
    # The provider refused (an injected error): the outbox row is "calling provider" until the
    # release that follows, and a stop before that release is the at-most-once window.
    provider_refused: bool = False


class Faults:
    """Seeded coin flips, one per boundary crossing, and a count of what was injected."""

    def __init__(self, seed: int, kinds: frozenset[str], rates: Mapping[str, float] | None = None) -> None:
        self.rng = random.Random(seed)
        self.kinds = kinds
        self.rates = {**DEFAULT_RATES, **(rates or {})}
        self.injected: Counter[str] = Counter()
        self._local = threading.local()

    def flip(self, kind: str) -> bool:
        if kind not in self.kinds or not self.rng.random() < self.rates[kind]:
            return False
        self.injected[kind] += 1
        return True

    def uniform(self, low: float, high: float) -> float:
        return self.rng.uniform(low, high)

    def choice(self, items: list[Any]) -> Any:
        return self.rng.choice(items)

    # -- the invocation on this thread

    @property
    def invocation(self) -> _Invocation | None:
        return getattr(self._local, "invocation", None)

    @contextmanager
    def invoking(self, invocation: _Invocation) -> Iterator[_Invocation]:
        previous = self.invocation
        self._local.invocation = invocation
        try:
            yield invocation
        finally:
            self._local.invocation = previous

    def call_fault(self, kind: str) -> bool:
        """A coin flip for one AWS or provider call of the running invocation (none on its last attempt)."""
        invocation = self.invocation
        if invocation is None or not invocation.faults_allowed:
            return False
        if invocation.stream and kind in ("aws_error_before", "aws_timeout_after"):
            kind = "stream_record_error"
        return self.flip(kind)


# ------------------------------------------------------------------------------ client proxies


class FaultyClient:
    """A boto3 client whose operations may fail before or after the real call, by coin flips.

    ``observe`` sees every call that succeeded (before an after-fault, which cannot undo it): the
    harness learns from it what the functions put on queues and schedules, as AWS would."""

    def __init__(
        self, client: Any, service: str, faults: Faults, observe: Callable[[str, str, dict[str, Any], Any], None]
    ) -> None:
        self._client = client
        self._service = service
        self._faults = faults
        self._observe = observe
        self._operations = set(client.meta.method_to_api_mapping)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name not in self._operations:
            return attribute

        def call(**kwargs: Any) -> Any:
            return self._call(name, attribute, kwargs)

        return call

    def _call(self, operation: str, method: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        faults = self._faults
        invocation = faults.invocation
        if invocation is not None:
            invocation.calls += 1
            if invocation.pause_at == invocation.calls and invocation.paused and invocation.resume:
                invocation.paused.set()  # the other invocation runs now
                invocation.resume.wait()
        provider = (self._service, operation) in PROVIDER_CALLS
        if invocation is not None and invocation.provider_refused and _is_outbox_release(operation, kwargs):
            invocation.provider_refused = False
            return method(**kwargs)
        if provider:
            # Not a crash here: after the mark, it is the documented at-most-once window.
            if faults.call_fault("provider_error_before"):
                _refused(faults)
                raise _client_error("ThrottlingException", operation, 400)
        else:
            if faults.call_fault("crash_before_aws"):
                raise Crash(f"before {self._service}.{operation}")
            if faults.call_fault("aws_error_before"):
                raise faults.choice(
                    [
                        _client_error("InternalServerError", operation, 500),
                        _client_error("ThrottlingException", operation, 400),
                        EndpointConnectionError(endpoint_url=f"https://{self._service}.us-east-1.amazonaws.com"),
                    ]
                )
        # The harness is the receiving side of the queues (moto's receipt handles are never used), so
        # it answers calls on a received message itself.
        result = {} if (self._service, operation) in HARNESS_ANSWERS else method(**kwargs)
        self._observe(self._service, operation, kwargs, result)
        if provider:
            if faults.call_fault("provider_crash_after"):
                raise Crash(f"after {self._service}.{operation}")
        else:
            # A stop right after the mark landed is the at-most-once window, not injected.
            if not _is_calling_mark(kwargs) and faults.call_fault("crash_after_aws"):
                raise Crash(f"after {self._service}.{operation}")
            if faults.call_fault("aws_timeout_after"):
                raise ReadTimeoutError(endpoint_url=f"https://{self._service}.us-east-1.amazonaws.com")
        return result


def _client_error(code: str, operation: str, status: int) -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": "injected"}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, operation)


def _refused(faults: Faults) -> None:
    if faults.invocation is not None:
        faults.invocation.provider_refused = True


def _is_outbox_release(operation: str, kwargs: Mapping[str, Any]) -> bool:
    return operation == "delete_item" and kwargs.get("TableName") == "footprint-messages"


def _is_calling_mark(kwargs: Mapping[str, Any]) -> bool:
    """The outbox's "calling provider" mark: after it lands, a stop is the at-most-once window."""
    return ":calling" in str(kwargs.get("UpdateExpression", ""))


# ------------------------------------------------------------------------------ fake providers


@dataclass
class Delivery:
    key: str
    channel: str
    message: OutgoingMessage
    at: datetime


class Providers:
    """What left the stack, per idempotency key: SES (through its client), the push service, the inbox."""

    def __init__(self, clock: ManualClock, faults: Faults) -> None:
        self.clock = clock
        self.faults = faults
        self.received: Counter[str] = Counter()
        self.arrivals: dict[str, datetime] = {}
        self.deliveries: list[Delivery] = []
        self.on_delivery: Callable[[Delivery], None] = lambda delivery: None
        self._inbox: set[str] = set()

    def receive(self, message: OutgoingMessage) -> None:
        self.received[message.idempotency_key] += 1
        self.arrivals.setdefault(message.idempotency_key, self.clock.now())
        delivery = Delivery(message.idempotency_key, message.channel, message, self.clock.now())
        self.deliveries.append(delivery)
        self.on_delivery(delivery)

    def inbox_row_written(self, message: OutgoingMessage) -> None:
        # The row is the inbox: written once by its conditional put (a retried put of the same
        # attempt succeeds again, so the harness counts rows, not puts).
        if message.idempotency_key not in self._inbox:
            self._inbox.add(message.idempotency_key)
            self.receive(message)


class CountingSender:
    """A channel adapter, told which message it is sending (SES's client proxy counts by it)."""

    def __init__(self, inner: Any, faults: Faults) -> None:
        self.inner = inner
        self.faults = faults

    def send(self, message: OutgoingMessage, profile: Profile, rendered: Mapping[str, Any]) -> DeliveryResult:
        invocation = self.faults.invocation
        if invocation is not None:
            # Kept after the call: the inbox row is the outbox's settle put that follows it.
            invocation.message = message
        result: DeliveryResult = self.inner.send(message, profile, rendered)
        return result


class FakePushService:
    """A web push service: it counts what it accepts (pywebpush's HTTP is not the point here)."""

    def __init__(self, providers: Providers, faults: Faults) -> None:
        self.providers = providers
        self.faults = faults

    def send(self, message: OutgoingMessage, profile: Profile, rendered: Mapping[str, Any]) -> DeliveryResult:
        if self.faults.call_fault("provider_error_before"):
            _refused(self.faults)
            raise RetryableDeliveryError("push service unreachable")
        self.providers.receive(message)
        if self.faults.call_fault("provider_error_after"):
            # Not RetryableDeliveryError: a retry after the service took it would be the documented
            # duplicate window (an answer lost after the provider accepted; docs/architecture.md).
            raise ConnectionResetError("the push service's answer was cut off")
        if self.faults.call_fault("provider_crash_after"):
            raise Crash("after the push service took the message")
        return DeliveryResult("sent", "push service accepted")


# ------------------------------------------------------------------------------------ visitors


@dataclass(frozen=True)
class Scheduled:
    at: datetime
    person: int
    event: TrackedEvent


@dataclass
class Person:
    """One visitor: one or two devices, maybe a known contact (userId, email) later."""

    index: int
    devices: list[str]
    user_id: str
    email: str
    subscribed: bool
    profile_ids: set[str] = field(default_factory=set)
    active_device: str = ""
    counter: int = 0

    def next_message_id(self) -> str:
        self.counter += 1
        return f"p{self.index}-m{self.counter}"


def _rng_for(seed: int, *parts: object) -> random.Random:
    """A coin that depends only on what it decides, so both runs decide alike."""
    digest = hashlib.sha256("\x1f".join(str(part) for part in (seed, *parts)).encode()).hexdigest()
    return random.Random(int(digest[:16], 16))


def _event(
    person: Person,
    at: datetime,
    name: str | None,
    *,
    type_: str = "track",
    device: str | None = None,
    properties: dict[str, Any] | None = None,
    traits: dict[str, Any] | None = None,
    user_id: str | None = None,
    message_id: str | None = None,
) -> Scheduled:
    event = TrackedEvent(
        source_id=SOURCE,
        message_id=message_id or person.next_message_id(),
        type=type_,
        event=name if type_ == "track" else type_,
        anonymous_id=device or person.active_device,
        user_id=user_id,
        properties=properties or {},
        traits=traits or {},
        context={"timezone": TIMEZONE},
        timestamp=at,
        received_at=at,
        # Logins are identified by the site's backend (a trusted source), so a userId may merge
        # devices into the contact and an email given there needs no double opt-in.
        trust="server" if type_ == "identify" else "browser",
    )
    return Scheduled(at, person.index, event)


PRODUCTS = [
    {"product_id": "vay-nu-he", "name": "Váy nữ phong cách hè", "url": "/p/vay-nu-he"},
    {"product_id": "ao-so-mi", "name": "Áo sơ mi lụa", "url": "/p/ao-so-mi"},
    {"product_id": "tui-xach", "name": "Túi xách da", "url": "/p/tui-xach"},
]


def make_people(
    count: int, seed: int, inputs: frozenset[str] = frozenset(INPUT_KINDS)
) -> tuple[list[Person], list[Scheduled]]:
    """The visitors and their scripted events (the reactions to messages come later, see Visitors)."""
    people: list[Person] = []
    script: list[Scheduled] = []
    for index in range(count):
        rng = _rng_for(seed, "person", index)
        devices = [f"anon-{index}-a"] + ([f"anon-{index}-b"] if rng.random() < 0.3 else [])
        person = Person(
            index=index,
            devices=devices,
            user_id=f"user-{index}",
            email=f"visitor{index}@example.com",
            subscribed=rng.random() < 0.6,
            active_device=devices[0],
        )
        person.profile_ids = {profile_id_for(SOURCE, "anon", d) for d in devices} | {
            profile_id_for(SOURCE, "user", person.user_id)
        }
        people.append(person)
        t0 = START + timedelta(seconds=index * 37 + rng.randint(0, 20))
        product = rng.choice(PRODUCTS)
        script.append(_event(person, t0, "session_started", properties={"first_visit": True}))
        if person.subscribed:
            subscription = {"endpoint": f"https://push.example/{index}", "keys": {"p256dh": "k", "auth": "a"}}
            script.append(
                _event(
                    person, t0 + timedelta(seconds=5), "web_push_subscribed", properties={"subscription": subscription}
                )
            )
        viewed = t0 + timedelta(seconds=30)
        dwell = 16 if rng.random() < 0.85 else 8
        script.append(_event(person, viewed, "product_viewed", properties={**product, "dwell_seconds": dwell}))
        cart = rng.random()
        if cart < 0.2:  # inside the 10 s `unless` window: no consult form
            if "cart_in_unless_window" in inputs:
                script.append(_event(person, viewed + timedelta(seconds=4), "add_to_cart", properties=product))
        elif cart < 0.45:  # later: the services journey converts, cart abandonment starts
            script.append(_event(person, viewed + timedelta(minutes=20), "add_to_cart", properties=product))
        merge = rng.random()
        identify_traits = {"email": person.email, "name": f"Khách {index}"}
        login: datetime | None = None
        if merge < 0.1:  # just as the welcome journey's 20 s wait ends: the login races its wake-up
            login = t0 + timedelta(seconds=20)
        elif merge < 0.2:  # just as the consult form's 10 s `unless` window ends
            login = viewed + timedelta(seconds=10)
        elif merge < 0.35:  # during the 30 min wait for the form's answer
            login = viewed + timedelta(minutes=rng.randint(4, 25))
        elif merge < 0.5:  # during the one-day wait
            login = viewed + timedelta(hours=rng.randint(2, 20))
        if login is not None:
            script.append(_event(person, login, None, type_="identify", user_id=person.user_id, traits=identify_traits))
        if len(devices) > 1:
            # The same person on a second device, later: a product view (and maybe a cart), then a
            # login that merges this device into the contact while its journeys wait.
            second = viewed + timedelta(hours=rng.randint(1, 6))
            script.append(
                _event(person, second, "product_viewed", device=devices[1], properties={**product, "dwell_seconds": 20})
            )
            if rng.random() < 0.5:
                script.append(
                    _event(person, second + timedelta(minutes=20), "add_to_cart", device=devices[1], properties=product)
                )
            at = second + timedelta(minutes=rng.randint(3, 20))
            script.append(
                _event(
                    person,
                    at,
                    None,
                    type_="identify",
                    device=devices[1],
                    user_id=person.user_id,
                    traits=identify_traits,
                )
            )
        if rng.random() < 0.3:
            # Back a week later: cart abandonment may be entered again (re-entry after P7D).
            again = viewed + timedelta(days=8, minutes=rng.randint(0, 600))
            script.append(_event(person, again, "add_to_cart", device=devices[0], properties=rng.choice(PRODUCTS)))
        if rng.random() < 0.2 and "merge_then_re_entry" in inputs:
            # A loyal contact: known on a third device, carts every week; in between, an anonymous
            # device's cart journey merges into theirs while it waits, and they come back after it.
            phone = f"anon-{index}-c"
            person.devices.append(phone)
            person.profile_ids.add(profile_id_for(SOURCE, "anon", phone))
            known = viewed + timedelta(hours=1)
            script.append(
                _event(
                    person, known, None, type_="identify", device=phone, user_id=person.user_id, traits=identify_traits
                )
            )
            for day in (0, 8, 19):
                at = known + timedelta(days=day, minutes=5)
                script.append(_event(person, at, "add_to_cart", device=phone, properties=rng.choice(PRODUCTS)))
            tablet = f"anon-{index}-d"
            person.devices.append(tablet)
            person.profile_ids.add(profile_id_for(SOURCE, "anon", tablet))
            at = known + timedelta(days=11, minutes=5)
            script.append(_event(person, at, "add_to_cart", device=tablet, properties=rng.choice(PRODUCTS)))
            script.append(
                _event(
                    person,
                    at + timedelta(minutes=10),
                    None,
                    type_="identify",
                    device=tablet,
                    user_id=person.user_id,
                    traits=identify_traits,
                )
            )
        if rng.random() < 0.15:
            script.append(_event(person, viewed + timedelta(days=2, hours=1), "purchase", properties=product))
        if rng.random() < 0.15:  # a return visit exits the services journey
            script.append(_event(person, viewed + timedelta(days=1, hours=3), "session_started"))
    return people, script


class Visitors:
    """How visitors react to what reaches them; decided by the message's key, so alike in both runs.

    A reaction comes a fixed time after the message arrived in the fault-free run (``arrivals``), or
    right after it arrives if faults delayed it past that: faults must not move a visitor's clicks
    around their other, scripted events, or the runs would differ for the visitor's sake."""

    def __init__(
        self,
        seed: int,
        people: list[Person],
        add: Callable[[Scheduled], None],
        arrivals: Mapping[str, datetime] | None = None,
    ) -> None:
        self.seed = seed
        self.people = people
        self.by_profile = {pid: person for person in people for pid in person.profile_ids}
        self.add = add
        self.arrivals = arrivals or {}

    def on_delivery(self, delivery: Delivery) -> None:
        message = delivery.message
        person = self.by_profile.get(message.profile_id)
        expected = self.arrivals.get(delivery.key)
        if expected is not None and expected > delivery.at:
            delivery = Delivery(delivery.key, delivery.channel, delivery.message, expected)
        if person is None:
            return
        rng = _rng_for(self.seed, "reaction", delivery.key)
        about = {
            "journey_id": message.journey_id,
            "node_id": message.node_id,
            "enrollment_id": message.enrollment_id,
            "channel": message.channel,
        }
        base = f"p{person.index}-{delivery.key}"
        if message.channel == "onsite_form":
            roll = rng.random()
            if roll < 0.5:
                at = delivery.at + timedelta(seconds=40)
                self.add(_event(person, at, "form_dismissed", properties=about, message_id=f"{base}-dismissed"))
            elif roll < 0.75:
                at = delivery.at + timedelta(seconds=60)
                self.add(_event(person, at, "form_submitted", properties=about, message_id=f"{base}-submitted"))
                traits = {"email": person.email, "name": f"Khách {person.index}"}
                self.add(
                    _event(
                        person,
                        at + timedelta(seconds=1),
                        None,
                        type_="identify",
                        user_id=person.user_id,
                        traits=traits,
                        message_id=f"{base}-identify",
                    )
                )
        elif message.channel == "web_push" and rng.random() < 0.4:
            at = delivery.at + timedelta(minutes=5)
            self.add(_event(person, at, "message_clicked", properties=about, message_id=f"{base}-clicked"))


# ------------------------------------------------------------------------------ the AWS model


@dataclass
class QueuedMessage:
    body: str
    visible_at: datetime
    sequence: int
    receives: int = 0


@dataclass
class Shard:
    records: list[dict[str, Any]] = field(default_factory=list)
    not_before: datetime = START
    attempts: int = 0
    batch_limit: int | None = None


@dataclass
class Outcome:
    """What one run left behind."""

    received: Counter[str]
    arrivals: dict[str, datetime]  # when each key first reached its provider
    decided: Counter[str]  # "sent" steps per idempotency key
    not_delivered: Counter[str]  # "skipped"/"failed" steps per idempotency key
    step_rows: Counter[str]  # StepsTable rows per step key
    steps: list[dict[str, str]]  # every StepsTable row, readable (for looking into a violation)
    open_enrollments: list[str]
    parked_records: int
    dead_letters: int
    parked: list[str]
    injected: Counter[str]
    merges_during_wait: int
    invocations: int
    seconds: float


class Simulation:
    """One run: moto, the real functions, and the delivery rules of Lambda, SQS and Scheduler."""

    def __init__(
        self,
        *,
        visitors: int,
        seed: int,
        faults: Faults,
        inputs: frozenset[str] = frozenset(INPUT_KINDS),
        arrivals: Mapping[str, datetime] | None = None,
    ) -> None:
        self.seed = seed
        self.faults = faults
        self.clock = ManualClock(START, pending_delay=0)
        self.people, script = make_people(visitors, seed, inputs)
        self.agenda: list[Scheduled] = sorted(script, key=lambda item: (item.at, item.event.message_id))
        self.providers = Providers(self.clock, faults)
        self.visitors = Visitors(seed, self.people, self._add, arrivals)
        self.providers.on_delivery = self.visitors.on_delivery
        self.shards: dict[int, Shard] = defaultdict(Shard)
        self.timers: list[QueuedMessage] = []
        self.sends: list[QueuedMessage] = []
        self.schedules: dict[str, tuple[datetime, str]] = {}
        self.early: list[tuple[datetime, str]] = []
        self.sequence = 0
        self.parked_records = 0
        self.dead_letters = 0
        self.parked: list[str] = []
        self.hidden_until: dict[int, datetime] = {}
        self.send_failures: list[datetime] = []
        self.errors: dict[str, str] = {}
        self.invocations = 0
        self.merges_during_wait = 0
        self.urls: dict[str, str] = {}

    # -- setup

    @contextmanager
    def stack(self) -> Iterator[None]:
        saved_env = dict(os.environ)
        saved: dict[tuple[Any, str], Any] = {
            (wiring, "dynamodb"): wiring.dynamodb,
            (wiring, "sqs"): wiring.sqs,
            (wiring, "scheduler"): wiring.scheduler,
            (send_wiring, "dynamodb"): send_wiring.dynamodb,
            (send_wiring, "sqs"): send_wiring.sqs,
            (send_wiring, "sesv2"): send_wiring.sesv2,
            (send_wiring, "channels"): send_wiring.channels,
        }
        with mock_aws():
            session = botocore.session.get_session()
            session.register_component("data_loader", _LOADER)
            boto3.setup_default_session(botocore_session=session)
            try:
                self._create_resources()
                proxies = {
                    name: FaultyClient(boto3.client(name), name, self.faults, self._observe)
                    for name in ("dynamodb", "sqs", "scheduler", "sesv2")
                }
                # Cached like the factories they replace, so wiring.reset() still works.
                replacements: dict[tuple[Any, str], Any] = {
                    (wiring, "dynamodb"): cache(lambda: proxies["dynamodb"]),
                    (wiring, "sqs"): cache(lambda: proxies["sqs"]),
                    (wiring, "scheduler"): cache(lambda: proxies["scheduler"]),
                    (send_wiring, "dynamodb"): cache(lambda: proxies["dynamodb"]),
                    (send_wiring, "sqs"): cache(lambda: proxies["sqs"]),
                    (send_wiring, "sesv2"): cache(lambda: proxies["sesv2"]),
                    (send_wiring, "channels"): lambda settings: self._channels(proxies["sesv2"]),
                }
                for (module, name), value in replacements.items():
                    setattr(module, name, value)
                wiring.reset()
                send_wiring.reset()
                use_clock(self.clock)
                yield
            finally:
                use_clock(SystemClock())
                for (module, name), value in saved.items():
                    setattr(module, name, value)
                wiring.reset()
                send_wiring.reset()
                os.environ.clear()
                os.environ.update(saved_env)

    def _create_resources(self) -> None:
        self.dynamodb = boto3.client("dynamodb")
        self.scheduler = boto3.client("scheduler")
        sqs = boto3.client("sqs")
        tables = {
            "EVENTS_TABLE": "footprint-events",
            "PROFILES_TABLE": "footprint-profiles",
            "CONFIG_TABLE": "footprint-config",
            "MESSAGES_TABLE": "footprint-messages",
            "IDEMPOTENCY_TABLE": "footprint-idempotency",
            "STEPS_TABLE": "footprint-steps",
        }
        for variable, name in tables.items():
            key_names = ["id"] if variable in ("CONFIG_TABLE", "IDEMPOTENCY_TABLE") else ["pk", "sk"]
            schema: Any = [{"AttributeName": key, "KeyType": kind} for key, kind in zip(key_names, ("HASH", "RANGE"))]
            self.dynamodb.create_table(
                TableName=name,
                BillingMode="PAY_PER_REQUEST",
                KeySchema=schema,
                AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"} for key in key_names],
            )
            os.environ[variable] = name
        self.tables = tables
        for name in ("send", "timers", "scheduler-dlq"):
            self.urls[name] = sqs.create_queue(QueueName=name)["QueueUrl"]
        timers_arn = sqs.get_queue_attributes(QueueUrl=self.urls["timers"], AttributeNames=["QueueArn"])
        dlq_arn = sqs.get_queue_attributes(QueueUrl=self.urls["scheduler-dlq"], AttributeNames=["QueueArn"])
        self.scheduler.create_schedule_group(Name="footprint-wake-ups")
        boto3.client("sesv2").create_email_identity(EmailIdentity=SENDER)
        os.environ.update(
            {
                "SEND_QUEUE_URL": self.urls["send"],
                "TIMERS_QUEUE_URL": self.urls["timers"],
                "TIMERS_QUEUE_ARN": timers_arn["Attributes"]["QueueArn"],
                "SCHEDULE_GROUP": "footprint-wake-ups",
                "SCHEDULER_ROLE_ARN": "arn:aws:iam::123456789012:role/scheduler",
                "SCHEDULER_DEAD_LETTER_ARN": dlq_arn["Attributes"]["QueueArn"],
                "SENDER_EMAIL": SENDER,
                "VAPID_SECRET_NAME": "",
            }
        )
        catalog = DynamoJourneyCatalog(self.dynamodb, tables["CONFIG_TABLE"], cache_seconds=0)
        for path in JOURNEYS:
            text = path.read_text(encoding="utf-8")
            catalog.publish(load_journey_yaml(text), text)

    def _channels(self, sesv2: Any) -> dict[str, Any]:
        onsite = CountingSender(OnsiteInboxSender(), self.faults)
        return {
            "onsite_form": onsite,
            "onsite_push": onsite,
            "email": CountingSender(SesEmailSender(sesv2, SENDER), self.faults),
            "web_push": CountingSender(FakePushService(self.providers, self.faults), self.faults),
        }

    # -- what the functions did, as AWS sees it

    def _observe(self, service: str, operation: str, kwargs: dict[str, Any], result: Any) -> None:
        now = self.clock.now()
        if service == "sqs" and operation == "send_message":
            body = kwargs["MessageBody"]
            if kwargs["QueueUrl"] == self.urls["send"]:
                self.sends.append(QueuedMessage(body, now, self._next()))
            elif kwargs["QueueUrl"] == self.urls["timers"]:
                due = datetime.fromisoformat(json.loads(body)["due_at"])
                # SQS holds it for DelaySeconds: in AWS, until the wake-up is due.
                visible = now + timedelta(seconds=max(0, math.ceil((due - now).total_seconds())))
                self.timers.append(QueuedMessage(body, visible, self._next()))
                if visible > now and self.faults.flip("wake_up_early"):
                    self.early.append((now + (visible - now) * self.faults.uniform(0.1, 0.9), body))
        elif service == "sqs" and operation == "change_message_visibility":
            # send backs off a message that may pass later: it comes back after this delay.
            sequence = int(kwargs["ReceiptHandle"].split("-")[1])
            self.hidden_until[sequence] = now + timedelta(seconds=int(kwargs["VisibilityTimeout"]))
        elif service == "scheduler" and operation == "create_schedule":
            expression = kwargs["ScheduleExpression"]
            due = datetime.fromisoformat(expression[3:-1]).replace(tzinfo=UTC)
            body = kwargs["Target"]["Input"]
            self.schedules[kwargs["Name"]] = (due, body)
            if due > now and self.faults.flip("wake_up_early"):
                self.early.append((now + (due - now) * self.faults.uniform(0.1, 0.9), body))
        elif service == "scheduler" and operation == "delete_schedule":
            self.schedules.pop(kwargs["Name"], None)
        elif service == "sesv2" and operation == "send_email":
            invocation = self.faults.invocation
            if invocation is not None and invocation.message is not None:
                self.providers.receive(invocation.message)
        elif service == "dynamodb" and operation == "put_item" and kwargs.get("TableName") == "footprint-messages":
            item = kwargs["Item"]
            if item.get("status", {}).get("S") == "queued_onsite":
                invocation = self.faults.invocation
                message = invocation.message if invocation is not None else None
                if message is None or item["pk"]["S"] != keys.message_key(message.idempotency_key)["pk"]:
                    raise AssertionError(f"an inbox row written outside its channel call: {item['pk']}")
                self.providers.inbox_row_written(message)

    def _next(self) -> int:
        self.sequence += 1
        return self.sequence

    def _add(self, item: Scheduled) -> None:
        self.agenda.append(item)
        self.agenda.sort(key=lambda entry: (entry.at, entry.event.message_id))

    # -- the run

    def run(self, until: timedelta = timedelta(days=26)) -> Outcome:
        started = time.monotonic()
        with self.stack():
            end = START + until
            while True:
                now = self.clock.now()
                progressed = self._round(now)
                if progressed:
                    continue
                following = self._next_due()
                if following is None or following > end:
                    break
                self.clock.set(max(following, now))
            return self._outcome(time.monotonic() - started)

    def _next_due(self) -> datetime | None:
        candidates: list[datetime] = [item.at for item in self.agenda[:1]]
        candidates += [shard.not_before for shard in self.shards.values() if shard.records]
        candidates += [message.visible_at for message in self.timers + self.sends]
        candidates += [due for due, _ in self.schedules.values()]
        candidates += [at for at, _ in self.early]
        return min(candidates) if candidates else None

    def _round(self, now: datetime) -> bool:
        progressed = False
        while self.agenda and self.agenda[0].at <= now:
            self._track(self.agenda.pop(0))
            progressed = True
        for name, (due, body) in sorted(self.schedules.items(), key=lambda item: item[1][0]):
            if due <= now:
                self._fire(name, body, now)
                progressed = True
        for at, body in list(self.early):
            if at <= now:
                self.early.remove((at, body))
                self.timers.append(QueuedMessage(body, now, self._next()))
                progressed = True
        # The stream and TimersQueue are polled independently: with concurrency faults on, either may
        # come first (a wake-up first, paused, lets a login from the stream run in the middle of it).
        timers_first = "concurrent_invocation" in self.faults.kinds and self.faults.rng.random() < 0.5
        if timers_first and self._deliver_queue(self.timers, now, TIMERS_VISIBILITY_SECONDS, self._invoke_evaluate):
            progressed = True
        ready = [shard for _, shard in sorted(self.shards.items()) if shard.records and shard.not_before <= now]
        if len(ready) > 1 and self.faults.flip("stream_reordered"):
            self.faults.rng.shuffle(ready)  # shards are independent: any order
        for shard in ready:
            self._deliver_stream(shard, now)
            progressed = True
        if not timers_first and self._deliver_queue(self.timers, now, TIMERS_VISIBILITY_SECONDS, self._invoke_evaluate):
            progressed = True
        if self._deliver_queue(self.sends, now, SEND_VISIBILITY_SECONDS, self._invoke_send):
            progressed = True
        return progressed

    # -- track: the event item and its stream record

    def _track(self, item: Scheduled) -> None:
        event = item.event
        person = self.people[item.person]
        if event.anonymous_id:
            person.active_device = event.anonymous_id
        if event.type == "identify" and self._waiting(person):
            self.merges_during_wait += 1
        key = keys.event_key(event.source_id, event.visitor_id, event.message_id)
        image = {**{k: {"S": v} for k, v in key.items()}, "body": {"S": event.model_dump_json()}}
        self.dynamodb.put_item(TableName=self.tables["EVENTS_TABLE"], Item=image)
        sequence = f"{self._next():021d}"
        record = {
            "eventID": f"id-{sequence}",
            "eventName": "INSERT",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/footprint-events/stream/2026",
            "dynamodb": {
                "Keys": {"pk": image["pk"], "sk": image["sk"]},
                "NewImage": image,
                "SequenceNumber": sequence,
                "StreamViewType": "NEW_IMAGE",
                "ApproximateCreationDateTime": self.clock.now().timestamp(),
            },
        }
        # One partition key per device: its records keep their order on one shard.
        shard = int(hashlib.sha256(key["pk"].encode()).hexdigest()[:8], 16) % STREAM_SHARDS
        self.shards[shard].records.append(record)

    def _waiting(self, person: Person) -> bool:
        """Whether one of the person's enrollments is open (a merge now lands in the middle of a wait)."""
        for profile_id in person.profile_ids:
            page = self.dynamodb.query(
                TableName=self.tables["PROFILES_TABLE"],
                KeyConditionExpression="pk = :pk AND begins_with(sk, :e)",
                ExpressionAttributeValues={":pk": {"S": f"profile#{profile_id}"}, ":e": {"S": "enrollment#"}},
            )
            if any(item["status"]["S"] in ("active", "pending") for item in page.get("Items", [])):
                return True
        return False

    # -- Lambda's DynamoDB stream event source mapping

    def _deliver_stream(self, shard: Shard, now: datetime) -> None:
        faults_allowed = shard.attempts < STREAM_MAX_RETRIES
        if faults_allowed and shard.attempts == 0 and self.faults.flip("stream_late"):
            shard.not_before = now + timedelta(seconds=self.faults.uniform(5, 60))
            return
        batch = shard.records[: shard.batch_limit or STREAM_BATCH_SIZE]
        delivered = list(batch)
        if faults_allowed and len({_device(r) for r in delivered}) > 1 and self.faults.flip("stream_reordered"):
            delivered = _interleave_devices(delivered, self.faults.rng)
        if faults_allowed and self.faults.flip("stream_duplicate"):
            index = self.faults.rng.randrange(len(delivered))
            delivered.insert(index + 1, delivered[index])
        result = self._invoke_with_partner(
            "stream", delivered, faults_allowed, lambda: self._invoke_evaluate_records(delivered, faults_allowed)
        )
        sequences = [record["dynamodb"]["SequenceNumber"] for record in batch]
        failed_at = _first_failure(result, sequences)
        if failed_at is None:
            del shard.records[: len(batch)]
            shard.attempts, shard.batch_limit = 0, None
            if faults_allowed and self.faults.flip("stream_duplicate"):
                shard.records.insert(0, self.faults.choice(batch))  # delivered again in the next batch
            return
        del shard.records[:failed_at]
        failed = batch[failed_at:]
        shard.not_before = now + timedelta(seconds=STREAM_RETRY_SECONDS)
        if isinstance(result, BaseException) and len(failed) > 1:
            shard.batch_limit = len(failed) // 2  # bisect: a split uses up no retry
            return
        shard.attempts += 1
        if shard.attempts > STREAM_MAX_RETRIES:
            del shard.records[: len(failed)]
            shard.attempts, shard.batch_limit = 0, None
            self.parked_records += len(failed)
            for record in failed:
                sequence = record["dynamodb"]["SequenceNumber"]
                body = record["dynamodb"]["NewImage"]["body"]["S"]
                self.parked.append(f"parked record {_describe(body)}: {self.errors.get(sequence)}")

    # -- SQS event source mappings (TimersQueue -> evaluate, SendQueue -> send) and Scheduler

    def _fire(self, name: str, body: str, now: datetime) -> None:
        del self.schedules[name]
        with suppress(ClientError):  # ActionAfterCompletion DELETE
            self.scheduler.delete_schedule(Name=name, GroupName="footprint-wake-ups")
        late = timedelta(seconds=self.faults.uniform(1, 120)) if self.faults.flip("wake_up_late") else timedelta()
        self.timers.append(QueuedMessage(body, now + late, self._next()))
        if self.faults.flip("wake_up_double_fired"):
            self.timers.append(
                QueuedMessage(body, now + late + timedelta(seconds=self.faults.uniform(0, 5)), self._next())
            )

    def _deliver_queue(
        self,
        queue: list[QueuedMessage],
        now: datetime,
        visibility: int,
        invoke: Callable[[list[QueuedMessage], bool], Any],
    ) -> bool:
        visible = sorted((m for m in queue if m.visible_at <= now), key=lambda m: (m.visible_at, m.sequence))
        if not visible:
            return False
        batch = visible[:QUEUE_BATCH_SIZE]
        for message in batch:
            queue.remove(message)
            message.receives += 1
        faults_allowed = all(message.receives < MAX_RECEIVE_COUNT for message in batch)
        kind = "sqs_redelivered" if queue is self.sends else "wake_up_double_fired"
        if faults_allowed and self.faults.flip(kind):
            copy = self.faults.choice(batch)
            queue.append(QueuedMessage(copy.body, now + timedelta(seconds=self.faults.uniform(0, 30)), self._next()))
        result = invoke(batch, faults_allowed)
        failed = _failed_ids(result, [str(message.sequence) for message in batch])
        for message in batch:
            if str(message.sequence) not in failed:
                continue
            if message.receives >= MAX_RECEIVE_COUNT:
                self.dead_letters += 1
                self.parked.append(f"dead letter {_describe(message.body)}: {self.errors.get(str(message.sequence))}")
            else:
                message.visible_at = self.hidden_until.pop(message.sequence, now + timedelta(seconds=visibility))
                queue.append(message)
        return True

    def _invoke_evaluate(self, batch: list[QueuedMessage], faults_allowed: bool) -> Any:
        event = {"Records": [_sqs_record(message, "timers") for message in batch]}
        return self._invoke_with_partner(
            "timers", batch, faults_allowed, lambda: self._call(evaluate_handler.handler, event, faults_allowed)
        )

    def _invoke_evaluate_records(self, records: list[dict[str, Any]], faults_allowed: bool) -> Any:
        return self._call(evaluate_handler.handler, {"Records": records}, faults_allowed)

    def _invoke_send(self, batch: list[QueuedMessage], faults_allowed: bool) -> Any:
        self._lambda_deadlines_pass()
        event = {"Records": [_sqs_record(message, "send") for message in batch]}
        result = self._invoke_with_partner(
            "send", batch, faults_allowed, lambda: self._call(send_handler.handler, event, faults_allowed)
        )
        self._note_send_failure(result, [str(message.sequence) for message in batch])
        return result

    def _call(self, handler: Callable[..., Any], event: dict[str, Any], faults_allowed: bool) -> Any:
        self.invocations += 1
        # The first of two interleaved invocations already has its own (with the pause point).
        invocation = self.faults.invocation or _Invocation(faults_allowed)
        invocation.stream = (event.get("Records") or [{}])[0].get("eventSource") == "aws:dynamodb"
        with self.faults.invoking(invocation):
            try:
                # Powertools' metrics go to stdout as EMF lines in Lambda; here they are noise.
                with redirect_stdout(io.StringIO()):
                    result = handler(event, _Context())
            except Crash as crash:
                return crash
        self._remember_errors(event)
        return result

    def _remember_errors(self, event: dict[str, Any]) -> None:
        """Why records failed (the batch processor that just ran keeps it), for the report."""
        records = event.get("Records") or []
        if not records:
            return
        if records[0].get("eventSource") == "aws:dynamodb":
            processor = evaluate_handler.stream_processor
        elif records[0]["eventSourceARN"].endswith(":timers"):
            processor = evaluate_handler.timers_processor
        else:
            processor = send_handler.processor
        for failed, error in zip(processor.fail_messages, processor.exceptions, strict=False):
            raw = getattr(failed, "raw_event", {})
            identifier = raw.get("messageId") or raw.get("dynamodb", {}).get("SequenceNumber", "")
            self.errors[str(identifier)] = f"{error[0].__name__ if error[0] else ''}: {error[1]}"[:200]

    # -- two invocations for one person, interleaved

    def _invoke_with_partner(
        self, source: str, batch: list[Any], faults_allowed: bool, first: Callable[[], Any]
    ) -> Any:
        if not faults_allowed or not self.faults.flip("concurrent_invocation"):
            return first()
        partner = self._partner(source, batch)
        pause_at = self.faults.rng.randint(1, 12)
        paused, resume = threading.Event(), threading.Event()
        outcome: dict[str, Any] = {}

        def run_first() -> None:
            invocation = _Invocation(faults_allowed, pause_at=pause_at, paused=paused, resume=resume)
            with self.faults.invoking(invocation):
                try:
                    outcome["result"] = first()
                except BaseException as error:  # a Crash too: the first container's result
                    outcome["result"] = error
                finally:
                    paused.set()

        thread = threading.Thread(target=run_first, name="first-invocation")
        thread.start()
        paused.wait()
        with _second_container():
            partner()
        resume.set()
        thread.join()
        return outcome["result"]

    def _partner(self, source: str, batch: list[Any]) -> Callable[[], Any]:
        """Another invocation for a person of ``batch``: the next stream record of another of their
        devices, a wake-up or a send of theirs, else the same SQS message in a second container."""
        profiles: set[str] = set()
        for item in batch:
            profiles |= self._profiles_of(item.body if isinstance(item, QueuedMessage) else _body(item))
        persons = {pid for person in self.people if person.profile_ids & profiles for pid in person.profile_ids}
        now = self.clock.now()
        for shard in self.shards.values():
            if not shard.records or shard.not_before > now or any(shard.records[0] is item for item in batch):
                continue
            head = shard.records[0]
            if self._profiles_of(_body(head)) & persons:
                return self._stream_partner(shard, head)
        for queue, handler in ((self.timers, evaluate_handler.handler), (self.sends, send_handler.handler)):
            for message in sorted(queue, key=lambda m: m.sequence):
                if message.visible_at <= now and json.loads(message.body).get("profile_id") in persons:
                    # Delivered now to a second container; it stays queued, so it comes again (at least once).
                    name = "timers" if queue is self.timers else "send"
                    return self._partner_call(handler, {"Records": [_sqs_record(message, name)]})
        if source == "stream":
            return lambda: None
        name = "timers" if source == "timers" else "send"
        handler = evaluate_handler.handler if source == "timers" else send_handler.handler
        return self._partner_call(handler, {"Records": [_sqs_record(batch[0], name)]})

    def _profiles_of(self, body: str) -> set[str]:
        data = json.loads(body)
        if "profile_id" in data:
            return {data["profile_id"]}
        visitor = data.get("anonymous_id") or data.get("user_id")
        return next((set(p.profile_ids) for p in self.people if visitor in p.devices), set())

    def _stream_partner(self, shard: Shard, head: dict[str, Any]) -> Callable[[], Any]:
        """The head record of another shard, in its own invocation; checkpointed if it succeeded."""

        def call() -> Any:
            result = self._call(evaluate_handler.handler, {"Records": [head]}, faults_allowed=False)
            if _first_failure(result, [head["dynamodb"]["SequenceNumber"]]) is None and shard.records[:1] == [head]:
                shard.records.pop(0)
            return result

        return call

    def _partner_call(self, handler: Callable[..., Any], event: dict[str, Any]) -> Callable[[], Any]:
        def call() -> Any:
            result = self._call(handler, event, faults_allowed=False)
            if handler is send_handler.handler:
                self._note_send_failure(result, [record["messageId"] for record in event["Records"]])
            return result

        return call

    def _note_send_failure(self, result: Any, identifiers: list[str]) -> None:
        if _failed_ids(result, identifiers):
            self.send_failures.append(self.clock.now())

    def _lambda_deadlines_pass(self) -> None:
        """Powertools keeps a stopped attempt's record "in progress" until that invocation's deadline
        (30 s), by the real clock. Before a send invocation (none is running then), the records left
        by attempts that stopped 30 s ago or more have expired, as they would have in AWS."""
        now = self.clock.now()
        due = [at for at in self.send_failures if now - at >= timedelta(seconds=LAMBDA_TIMEOUT_SECONDS)]
        if not due:
            return
        self.send_failures = [at for at in self.send_failures if at not in due]
        items = self.dynamodb.scan(
            TableName=self.tables["IDEMPOTENCY_TABLE"],
            FilterExpression="#s = :p",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":p": {"S": "INPROGRESS"}},
        )["Items"]
        for item in items:
            self.dynamodb.update_item(
                TableName=self.tables["IDEMPOTENCY_TABLE"],
                Key={"id": item["id"]},
                UpdateExpression="SET in_progress_expiration = :past",
                ExpressionAttributeValues={":past": {"N": "0"}},
            )

    # -- what the run left behind

    def _outcome(self, seconds: float) -> Outcome:
        decided: Counter[str] = Counter()
        not_delivered: Counter[str] = Counter()
        step_rows: Counter[str] = Counter()
        steps: list[dict[str, str]] = []
        for item in _scan(self.dynamodb, self.tables["STEPS_TABLE"]):
            steps.append({name: value.get("S", value.get("N", "")) for name, value in item.items()})
            step_rows[item["sk"]["S"].split("#", 1)[1]] += 1
            key = item.get("idempotency_key", {}).get("S")
            outcome = item["outcome"]["S"]
            if key and outcome == "sent":
                decided[key] += 1
            elif key and outcome in ("skipped", "failed"):
                not_delivered[key] += 1
        open_enrollments = []
        for item in _scan(self.dynamodb, self.tables["PROFILES_TABLE"]):
            if item["sk"]["S"].startswith(keys.ENROLLMENT_PREFIX):
                enrollment = Enrollment.model_validate_json(item["data"]["S"])
                if enrollment.is_open:
                    open_enrollments.append(f"{enrollment.journey_id}/{enrollment.id} at {enrollment.current_node}")
        return Outcome(
            received=Counter(self.providers.received),
            arrivals=self.providers.arrivals,
            decided=decided,
            not_delivered=not_delivered,
            step_rows=step_rows,
            steps=sorted(steps, key=lambda step: step["sk"]),
            open_enrollments=sorted(open_enrollments),
            parked_records=self.parked_records,
            dead_letters=self.dead_letters,
            parked=list(self.parked),
            injected=Counter(self.faults.injected),
            merges_during_wait=self.merges_during_wait,
            invocations=self.invocations,
            seconds=seconds,
        )


_LOADER = botocore.loaders.create_loader()


@dataclass
class _Context:
    """The Lambda context Powertools reads."""

    function_name: str = "footprint"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:footprint"
    aws_request_id: str = "request"

    def get_remaining_time_in_millis(self) -> int:
        return LAMBDA_TIMEOUT_SECONDS * 1000


@contextmanager
def _second_container() -> Iterator[None]:
    """Another Lambda container: its own batch processors (the module-level ones hold per-batch state)."""
    saved = (evaluate_handler.stream_processor, evaluate_handler.timers_processor, send_handler.processor)
    evaluate_handler.stream_processor = BatchProcessor(EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)
    evaluate_handler.timers_processor = BatchProcessor(EventType.SQS, raise_on_entire_batch_failure=False)
    send_handler.processor = BatchProcessor(EventType.SQS, raise_on_entire_batch_failure=False)
    try:
        yield
    finally:
        evaluate_handler.stream_processor, evaluate_handler.timers_processor, send_handler.processor = saved


def _describe(body: str) -> str:
    data = json.loads(body)
    if "idempotency_key" in data:
        return f"send {data['idempotency_key']}"
    if data.get("kind") == "wake_up":
        return f"wake-up {data['journey_id']}/{data['enrollment_id']} {data['node_id']}"
    return f"event {data.get('type')} {data.get('event')} {data.get('message_id')}"


def _sqs_record(message: QueuedMessage, queue: str) -> dict[str, Any]:
    return {
        "messageId": str(message.sequence),
        "receiptHandle": f"rh-{message.sequence}-{message.receives}",
        "body": message.body,
        "attributes": {"ApproximateReceiveCount": str(max(1, message.receives))},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:us-east-1:123456789012:{queue}",
        "awsRegion": "us-east-1",
    }


def _body(record: dict[str, Any]) -> str:
    return str(record["dynamodb"]["NewImage"]["body"]["S"])


def _device(record: dict[str, Any]) -> str:
    return str(record["dynamodb"]["Keys"]["pk"]["S"])


def _interleave_devices(records: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """Another order of the batch in which each device's records keep their order."""
    lanes: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        lanes[_device(record)].append(record)
    order = [device for device, lane in lanes.items() for _ in lane]
    rng.shuffle(order)
    return [lanes[device].pop(0) for device in order]


def _first_failure(result: Any, identifiers: list[str]) -> int | None:
    if isinstance(result, BaseException):
        return 0
    failures = [item["itemIdentifier"] for item in (result or {}).get("batchItemFailures", [])]
    indexes = [identifiers.index(identifier) for identifier in failures if identifier in identifiers]
    return min(indexes) if indexes else None


def _failed_ids(result: Any, identifiers: list[str]) -> set[str]:
    if isinstance(result, BaseException):
        return set(identifiers)
    return {item["itemIdentifier"] for item in (result or {}).get("batchItemFailures", [])}


def _scan(client: Any, table: str) -> Iterator[dict[str, Any]]:
    paginator = client.get_paginator("scan")
    for page in paginator.paginate(TableName=table):
        yield from page.get("Items", [])


# ---------------------------------------------------------------------------------- comparison


@dataclass
class Report:
    """The invariants, checked on a faulted run against the fault-free run of the same visitors."""

    baseline: Outcome
    faulted: Outcome

    def violations(self) -> dict[str, list[str]]:
        base, run = self.baseline, self.faulted
        found: dict[str, list[str]] = {
            "duplicate deliveries": [],
            "lost messages": [],
            "lost steps": [],
            "duplicated steps": [],
            "stuck enrollments": [],
            "parked inputs": [],
            "unexpected deliveries": [],
        }
        for label, outcome in (("fault-free", base), ("faulted", run)):
            for key, count in sorted(outcome.received.items()):
                if count > 1:
                    found["duplicate deliveries"].append(f"{label}: {key} received {count} times")
            for key, count in sorted(outcome.decided.items()):
                missing = count - outcome.received[key] - outcome.not_delivered[key]
                if missing > 0:
                    found["lost messages"].append(
                        f"{label}: {key} decided {count}x, delivered {outcome.received[key]}x"
                    )
            for key, count in sorted(outcome.step_rows.items()):
                if count > 1:
                    found["duplicated steps"].append(f"{label}: {key} stored {count} times")
            found["stuck enrollments"] += [f"{label}: {enrollment}" for enrollment in outcome.open_enrollments]
            found["parked inputs"] += [f"{label}: {parked}" for parked in outcome.parked]
        for key in sorted(set(base.received) - set(run.received)):
            found["lost messages"].append(f"faulted: {key} delivered without faults, never with them")
        for key in sorted(set(base.step_rows) - set(run.step_rows)):
            found["lost steps"].append(f"faulted: {key}")
        # A message the same inputs do not send without faults (a decision made on a wrong state).
        for key in sorted(set(run.received) - set(base.received)):
            found["unexpected deliveries"].append(f"faulted: {key} delivered only with faults")
        return found

    def ok(self) -> bool:
        return not any(self.violations().values())

    def count(self, invariant: str, run: str) -> int:
        """Violations of ``invariant`` seen in one run ("fault-free" or "faulted")."""
        return sum(1 for problem in self.violations()[invariant] if problem.startswith(f"{run}:"))

    def summary(self) -> str:
        lines = []
        for invariant, problems in self.violations().items():
            lines.append(f"{invariant}: {len(problems)}")
            lines += [f"  {problem}" for problem in problems[:10]]
            if len(problems) > 10:
                lines.append(f"  ... and {len(problems) - 10} more")
        return "\n".join(lines)


def run(
    visitors: int,
    seed: int,
    kinds: frozenset[str],
    inputs: frozenset[str] | None = None,
    rates: Mapping[str, float] | None = None,
    baseline: Outcome | None = None,
) -> Outcome:
    """One run of ``visitors`` with the fault ``kinds`` (none: the fault-free run) and input kinds;
    visitors react on the ``baseline`` run's timing."""
    chosen = enabled_inputs() if inputs is None else inputs
    faults = Faults(seed, kinds, rates)
    arrivals = baseline.arrivals if baseline else None
    return Simulation(visitors=visitors, seed=seed, faults=faults, inputs=chosen, arrivals=arrivals).run()


def compare(
    visitors: int,
    seed: int,
    kinds: frozenset[str],
    inputs: frozenset[str] | None = None,
    baseline: Outcome | None = None,
) -> Report:
    """The fault-free run (or the one given) against a run with ``kinds`` enabled, same visitors."""
    base = baseline or run(visitors, seed, frozenset(), inputs)
    return Report(base, run(visitors, seed, kinds, inputs, baseline=base))


# ---------------------------------------------------------------------------------- make faults


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--visitors", type=int, default=300)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--per-kind", action="store_true", help="also one run per fault kind, to attribute violations")
    parser.add_argument("--all-kinds", action="store_true", help="enable the kinds KNOWN_DEFECTS excludes too")
    args = parser.parse_args(argv)
    kinds = frozenset(FAULT_KINDS) if args.all_kinds else enabled_kinds()
    inputs = frozenset(INPUT_KINDS) if args.all_kinds else enabled_inputs()
    for kind, reason in KNOWN_DEFECTS.items():
        print(f"{'enabled' if args.all_kinds else 'disabled'}: {kind} ({reason})")
    baseline = run(args.visitors, args.seed, frozenset(), inputs)
    print(
        f"{args.visitors} visitors, seed {args.seed}, inputs {', '.join(sorted(inputs))}: fault-free run "
        f"{baseline.seconds:.0f} s, {baseline.invocations} invocations, {sum(baseline.received.values())} "
        f"messages delivered, {sum(baseline.step_rows.values())} steps, {baseline.merges_during_wait} merges "
        "during a wait",
        flush=True,
    )
    runs: list[tuple[str, Report]] = []
    for label, enabled in [*((kind, frozenset({kind})) for kind in sorted(kinds) if args.per_kind), ("all", kinds)]:
        report = compare(args.visitors, args.seed, enabled, inputs, baseline)
        runs.append((label, report))
        print(f"  {label}: {report.faulted.seconds:.0f} s, {sum(report.faulted.injected.values())} faults", flush=True)
    invariants = list(runs[-1][1].violations())
    rows = [["run", "faults injected", *invariants]]
    rows.append(["fault-free", "0", *(str(runs[-1][1].count(name, "fault-free")) for name in invariants)])
    for label, report in runs:
        injected = str(sum(report.faulted.injected.values()))
        rows.append([label, injected, *(str(report.count(name, "faulted")) for name in invariants)])
    final = runs[-1][1]
    print()
    print(_table(rows))
    print()
    kind_rows = [[kind, str(final.faulted.injected[kind]), what] for kind, what in FAULT_KINDS.items()]
    print(_table([["fault kind", "injected", "what"], *kind_rows]))
    print(f"merges during a wait: {final.faulted.merges_during_wait}; inputs: {', '.join(sorted(inputs))}")
    print()
    print(final.summary())
    return 0 if all(report.ok() for _, report in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
