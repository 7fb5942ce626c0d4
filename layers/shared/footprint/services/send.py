"""What send does with each message of SendQueue: deliver it on its channel, exactly once.

Exactly once, out of an at-least-once queue, takes two guards:

1. Powertools idempotency around :meth:`SendService.deliver` (wired in ``adapters/send_wiring``): a
   redelivered SQS message, or a second message with the same idempotency key, gets the stored
   result of the first; while the first is still running, the second fails its record and SQS
   retries it later. An attempt that crashed leaves its record "in progress" until its Lambda
   time is up (the handler registers the Lambda context), then the retry goes through.
2. The outbox row (MessagesTable), one per idempotency key, claimed *before* the channel is
   called. It is the guard that holds on its own (the Powertools record expired after 7 days, a
   re-run journey step, a crashed attempt), and it knows how far a stopped attempt got.

The Outbox protocol (``DynamoOutbox``; ``tests/fakes.InMemoryOutbox`` follows the same rules). Each
attempt draws a fresh ``attempt_id``; an open row names the attempt that holds it, and every write
after the claim is conditional on that id. A stopped attempt that wakes up can therefore no longer
act on a row another attempt took over, and a write whose response was lost (botocore sends it
again) recognises its own row::

    (no row) --claim--> claimed --mark_calling--> calling_provider --settle--> settled
                        claimed --settle (skipped; failed before any call)---> settled
    claimed | calling_provider --release--> (no row)      the provider was not reached, or said "retry"
    claimed, stale                --take_over--> claimed   (another attempt id, a new claimed_at)
    calling_provider, stale       --settle "failed", OUTCOME_UNKNOWN--> settled   (leaves the system)
    calling_provider, stale       --take_over--> claimed                          (onsite channels)

- ``claimed``: an attempt holds the row and has not called the provider. Found older than
  ``claim_stale_after`` (longer than SendFunction can run), its attempt has stopped: it is taken
  over and the message delivered. Nothing is lost, nothing can be doubled.
- ``calling_provider``: written just before the provider call, after everything that can fail
  without sending (profile, consent, rendering). Found stale, the provider may have the message:
  it is recorded "failed" with OUTCOME_UNKNOWN, never resent. Onsite channels (INBOX_CHANNELS)
  never write it: their delivery is the settled row itself, so they can always be redone.
- settled: ``status`` is a DeliveryStatus ("sent", "queued_onsite", "skipped", "failed"); final.

A failure that may pass on retry (network, 5xx, throttling, or any error before the provider
call) releases the claim and raises, so SQS retries the message; a permanent one (bad address,
subscription gone, 4xx, a template error) is recorded as "failed" with its reason. A crash runs
no cleanup at all, so the stale-claim rules above are what handle it; docs/architecture.md gives
the resulting guarantee per step and per channel.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from footprint.clock import Clock
from footprint.engine import RecordStep, StepOutcome
from footprint.engine.timing import in_quiet_hours, quiet_hours_end, visitor_zone
from footprint.models.consent import ConsentPolicy
from footprint.models.messages import OUTCOME_EVENTS, DeliveryRecord, DeliveryStatus, MessageChannel, OutgoingMessage
from footprint.models.pressure import CapWindow, MessagingPolicy, cap_windows
from footprint.models.profile import Channel, Profile
from footprint.services.profiles import ProfileLookup, live_profile
from footprint.services.retries import RetryableDeliveryError
from footprint.templating import ContentRenderer, TemplateError, template_variables

logger = logging.getLogger(__name__)

# Rendered content is kept in the outbox row (the onsite inbox reads it there) and in the idempotency
# record; both are DynamoDB items (at most 400 KB), so oversized content is recorded by its size only.
MAX_RENDERED_BYTES = 64 * 1024
# A claim older than this cannot belong to a running attempt (SendFunction's timeout is 30 s), and
# SendQueue's visibility timeout (180 s) is longer, so the first redelivery finds it stale.
DEFAULT_CLAIM_STALE_AFTER = timedelta(minutes=2)
# Channels whose delivery is the outbox row itself (the visitor's inbox): nothing leaves the system,
# so an attempt that stopped anywhere can be redone without a duplicate.
INBOX_CHANNELS: frozenset[MessageChannel] = frozenset({"onsite_form", "onsite_push"})

# Which address and consent of the profile a message channel needs (Profile.reachable_on).
PROFILE_CHANNEL: dict[MessageChannel, Channel] = {
    "onsite_form": "onsite",
    "onsite_push": "onsite",
    "web_push": "web_push",
    "email": "email",
    "sms": "sms",
    "zalo_zns": "zalo_zns",
    "webhook": "webhook",
}
UNREACHABLE_REASON: dict[Channel, str] = {
    "onsite": "onsite messages declined",
    "web_push": "no web push subscription, or web push declined",
    "email": "no email address, or email declined",
    "sms": "no phone number, or sms declined",
    "zalo_zns": "no phone number, or zalo_zns declined",
    "webhook": "webhook declined",
}
SUPPRESSED_REASON = "address suppressed: it bounced permanently or reported spam"
UNKNOWN_PROFILE = "unknown profile"
NOT_CONFIGURED = "channel not configured"
# Delivery results that evaluate's "sent" step does not already tell: recorded as steps by send.
STEP_OUTCOMES: dict[str, StepOutcome] = {"failed": "failed", "skipped": "skipped"}
# ...and as events on the visitor's timeline, which journeys can wait_for and branch on (with
# match_message) and reports count: the provider accepted it, refused it, or it was not sent (no
# consent, a suppressed address, a cap, quiet hours...). An onsite message has none: the browser
# reports it shown. The provider's own feedback follows (message_delivered, message_bounced...).
OUTCOME_UNKNOWN = (
    "outcome unknown: an earlier attempt stopped while calling the provider; not resent to avoid a duplicate"
)


@dataclass(frozen=True)
class DeliveryResult:
    """What a channel adapter reports for one message."""

    status: DeliveryStatus
    detail: str = ""
    # Addresses the provider says no longer exist (web push endpoints answered 404/410).
    gone_addresses: tuple[str, ...] = ()
    # The profile's address is no address at all on this channel (not a phone number, no Zalo
    # account): it goes on the suppression list (Profile.suppressed) under this key, with the detail.
    invalid_address: str | None = None


class ChannelSender(Protocol):
    def send(self, message: OutgoingMessage, profile: Profile, rendered: Mapping[str, Any]) -> DeliveryResult:
        """Deliver ``rendered`` content; return "sent"/"queued_onsite", or "failed" for a permanent
        refusal; raise RetryableDeliveryError when a later attempt may succeed."""
        ...


class SubscriptionPruner(Protocol):
    def forget_web_push_subscriptions(self, profile_id: str, endpoints: Sequence[str]) -> None:
        """Drop subscriptions the push service says are gone, so they are not tried again."""
        ...

    def suppress_address(self, profile_id: str, key: str, reason: str) -> None:
        """Put an address the provider refused as invalid on the profile's suppression list."""
        ...


# The states of an open outbox row (see the module docstring); a settled row has a DeliveryStatus.
ClaimState = Literal["claimed", "calling_provider"]
CLAIMED: ClaimState = "claimed"
CALLING_PROVIDER: ClaimState = "calling_provider"


@dataclass(frozen=True)
class Claim:
    """What a message's outbox row holds, as seen by one attempt's claim or take-over."""

    # The row is an open claim of the asking attempt (in state "claimed").
    acquired: bool
    # The row is settled: the result an earlier attempt recorded.
    settled: DeliveryRecord | None = None
    # The open claim: which attempt holds it, how far it got and since when. All None when the row
    # is settled, or was gone when we looked (released in between: SQS retries the message).
    attempt_id: str | None = None
    state: ClaimState | None = None
    claimed_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.state is not None


class Outbox(Protocol):
    """MessagesTable's outbox rows; every write is one conditional write (see the module docstring)."""

    def claim(self, message: OutgoingMessage, attempt_id: str, at: datetime) -> Claim:
        """Create the row in state "claimed" for ``attempt_id`` unless a row exists. Acquired also
        when the row already is ``attempt_id``'s claim (a retried put whose first try landed)."""
        ...

    def take_over(self, message: OutgoingMessage, stale: Claim, attempt_id: str, at: datetime) -> Claim:
        """Make ``stale`` (an open claim of a stopped attempt) ``attempt_id``'s claim, state
        "claimed", claimed at ``at``; only if the row is still exactly ``stale``. Otherwise the
        row as it is now (acquired if it already is ``attempt_id``'s claim)."""
        ...

    def mark_calling(self, idempotency_key: str, attempt_id: str, at: datetime) -> bool:
        """Move ``attempt_id``'s claim to "calling_provider"; False if the row is not its claim any
        more (taken over). True also when it already is (a retried write whose first try landed)."""
        ...

    def settle(self, record: DeliveryRecord, attempt_id: str) -> bool:
        """Write the result over ``attempt_id``'s open claim; False if the row is not its open claim.
        True also when the row already is ``attempt_id``'s settled result (a retried write)."""
        ...

    def release(self, idempotency_key: str, attempt_id: str) -> None:
        """Delete ``attempt_id``'s open claim, so a retry can claim again; no-op for any other row."""
        ...


class PressureCounter(Protocol):
    def admit(self, message: OutgoingMessage, profile_id: str, windows: Sequence[CapWindow]) -> CapWindow | None:
        """Count ``message`` in every window at once, unless one is full: return that window, else None.
        Counting the same message again (a retry) is free and admits it."""
        ...


class HeldForQuietHours(RetryableDeliveryError):
    """Quiet hours began before the message left (a retry, a slow queue): SQS brings it back at their end."""


class SendSteps(Protocol):
    def record(self, step: RecordStep) -> None:
        """Store the step once (a conditional put keyed by ``step.key``)."""
        ...


class OutcomeEvents(Protocol):
    def record(
        self,
        profile_id: str,
        name: str,
        *,
        event_id: str,
        properties: Mapping[str, Any],
        at: datetime,
        now: datetime,
    ) -> bool:
        """Store event ``name`` on the profile's timeline, once per ``event_id``; False if it is gone."""
        ...


class DeliveryMetrics(Protocol):
    def count(self, outcome: str, channel: MessageChannel) -> None:
        """One message reached ``outcome`` (a DeliveryStatus, "duplicate" or "retried")."""
        ...


class NoMetrics:
    def count(self, outcome: str, channel: MessageChannel) -> None:
        return None


DeliverFunction = Callable[..., DeliveryRecord]
# Wraps the delivery with a second, independent duplicate guard (Powertools idempotency in Lambda).
DeliveryGuard = Callable[[DeliverFunction], DeliverFunction]


@dataclass(frozen=True)
class _Prepared:
    profile: Profile
    sender: ChannelSender
    rendered: dict[str, Any]


class SendService:
    def __init__(
        self,
        *,
        profiles: ProfileLookup,
        outbox: Outbox,
        channels: Mapping[MessageChannel, ChannelSender],
        clock: Clock,
        renderer: ContentRenderer | None = None,
        metrics: DeliveryMetrics | None = None,
        guard: DeliveryGuard | None = None,
        claim_stale_after: timedelta = DEFAULT_CLAIM_STALE_AFTER,
        pruner: SubscriptionPruner | None = None,
        steps: SendSteps | None = None,
        new_attempt_id: Callable[[], str] | None = None,
        policy: MessagingPolicy | None = None,
        pressure: PressureCounter | None = None,
        outcomes: OutcomeEvents | None = None,
        consent: ConsentPolicy | None = None,
    ) -> None:
        self.consent = consent or ConsentPolicy()
        self.steps = steps
        self.outcomes = outcomes
        self.policy = policy or MessagingPolicy()
        self.pressure = pressure
        self.profiles = profiles
        self.pruner = pruner
        self.outbox = outbox
        # Kept as given: footprint.adapters.send_wiring's mapping builds each sender at its first message.
        self.channels = channels
        self.clock = clock
        self.renderer = renderer or ContentRenderer()
        self.metrics = metrics or NoMetrics()
        self.claim_stale_after = claim_stale_after
        self.new_attempt_id = new_attempt_id or (lambda: uuid.uuid4().hex)
        # The guard needs the payload as a keyword argument (Powertools' data_keyword_argument).
        self._guarded_deliver: DeliverFunction = guard(self._deliver_once) if guard else self._deliver_once

    def deliver(self, message: OutgoingMessage) -> DeliveryRecord:
        """Deliver ``message`` unless a message with its idempotency key was delivered already."""
        return self._guarded_deliver(message=message)

    def _deliver_once(self, message: OutgoingMessage) -> DeliveryRecord:
        attempt = self.new_attempt_id()
        claim = self._claim(message, attempt)
        if claim.settled is not None:
            return self._duplicate(message, claim.settled)
        if not claim.acquired:
            claim = self._take_over_stale(message, claim, attempt)
            if claim.settled is not None:
                return claim.settled
        return self._deliver_claimed(message, attempt)

    def _duplicate(self, message: OutgoingMessage, settled: DeliveryRecord) -> DeliveryRecord:
        self.metrics.count("duplicate", message.channel)
        # Again (stored once, by its key): the attempt that settled may have stopped before its step.
        self._record_step(message, settled)
        return settled

    def _claim(self, message: OutgoingMessage, attempt: str) -> Claim:
        try:
            return self.outbox.claim(message, attempt, self.clock.now())
        except Exception:
            # The put may have landed unheard: drop it, so the retry need not wait for it to go stale.
            self._release_quietly(message.idempotency_key, attempt)
            raise

    def _take_over_stale(self, message: OutgoingMessage, claim: Claim, attempt: str) -> Claim:
        """Acquire an open claim left by a stopped attempt, or settle it as OUTCOME_UNKNOWN; raise
        RetryableDeliveryError while its attempt may still be running."""
        key = message.idempotency_key
        claimed_at = claim.claimed_at or self.clock.now()
        if not claim.is_open or self.clock.now() - claimed_at < self.claim_stale_after:
            # Another attempt holds the claim and may still be running (or just released it).
            raise RetryableDeliveryError(f"{key} is being delivered by another attempt")
        stopped = claim.attempt_id or ""
        if claim.state == CALLING_PROVIDER and message.channel not in INBOX_CHANNELS:
            logger.warning("attempt %s stopped while calling the provider for %s", stopped, key)
            record = self._record(message, DeliveryResult("failed", OUTCOME_UNKNOWN), {})
            if not self.outbox.settle(record, stopped):
                raise RetryableDeliveryError(f"{key} changed while being recorded as outcome unknown")
            self.metrics.count(record.status, record.channel)
            self._record_step(message, record)
            return Claim(acquired=False, settled=record)
        logger.warning("attempt %s stopped before calling the provider for %s: taking over", stopped, key)
        try:
            taken = self.outbox.take_over(message, claim, attempt, self.clock.now())
        except Exception:
            self._release_quietly(key, attempt)
            raise
        if taken.settled is not None:
            return Claim(acquired=False, settled=self._duplicate(message, taken.settled))
        if not taken.acquired:
            raise RetryableDeliveryError(f"{key} was taken over by another attempt")
        return taken

    def _deliver_claimed(self, message: OutgoingMessage, attempt: str) -> DeliveryRecord:
        try:
            prepared = self._prepare(message)
            if isinstance(prepared, DeliveryResult):
                result = prepared
            else:
                self._mark_calling(message, attempt)
                result = self._send(message, prepared)
        except Exception:
            # The provider was not reached, or it said to try again: let the retry claim afresh.
            # (A crash runs none of this; the stale-claim rules handle it.)
            self._release_quietly(message.idempotency_key, attempt)
            self.metrics.count("retried", message.channel)
            raise
        rendered = prepared.rendered if isinstance(prepared, _Prepared) else {}
        record = self._settle(message, result, rendered, attempt)
        if result.gone_addresses and self.pruner is not None and isinstance(prepared, _Prepared):
            try:
                self.pruner.forget_web_push_subscriptions(prepared.profile.profile_id, result.gone_addresses)
            except Exception:  # the message is settled; a stale subscription only costs a 410 next time
                logger.exception("could not drop gone subscriptions of %s", prepared.profile.profile_id)
        if result.invalid_address and self.pruner is not None and isinstance(prepared, _Prepared):
            try:
                self.pruner.suppress_address(prepared.profile.profile_id, result.invalid_address, result.detail)
            except Exception:  # settled; the next message to it fails the same way and tries again
                logger.exception("could not suppress an invalid address of %s", prepared.profile.profile_id)
        return record

    def _mark_calling(self, message: OutgoingMessage, attempt: str) -> None:
        if message.channel in INBOX_CHANNELS:
            return  # nothing leaves the system: the settled row is the delivery
        if not self.outbox.mark_calling(message.idempotency_key, attempt, self.clock.now()):
            # We stalled past claim_stale_after and another attempt took the message over.
            raise RetryableDeliveryError(f"{message.idempotency_key} was taken over by another attempt")

    def _release_quietly(self, idempotency_key: str, attempt: str) -> None:
        try:
            self.outbox.release(idempotency_key, attempt)
        except Exception:  # the caller re-raises the first error; a leftover claim goes stale
            logger.exception("could not release the claim of %s", idempotency_key)

    def _prepare(self, message: OutgoingMessage) -> _Prepared | DeliveryResult:
        sender = self.channels.get(message.channel)
        if sender is None:
            return DeliveryResult("skipped", NOT_CONFIGURED)
        profile = self._load_profile(message.profile_id)
        if profile is None:
            return DeliveryResult("skipped", UNKNOWN_PROFILE)
        needs = PROFILE_CHANNEL[message.channel]
        # Rechecked here, not only when the journey decided: an unsubscribe or a bounce may have
        # come in since. A transactional message asks for a deliverable address, not consent.
        if profile.is_suppressed(needs):
            return DeliveryResult("skipped", SUPPRESSED_REASON)
        if message.category == "marketing":
            reachable = profile.reachable_on(needs, self.consent.for_source(profile.source_id))
        else:
            reachable = profile.deliverable_on(needs)
        if not reachable:
            return DeliveryResult("skipped", UNREACHABLE_REASON[needs])
        quiet = self._quiet_now(message, profile)
        if quiet is not None:
            return quiet
        try:
            rendered = self.renderer.render(message.content, template_variables(message, profile))
        except TemplateError as error:
            return DeliveryResult("failed", f"template error: {error}")
        # Last, once nothing else can refuse the message: a counted slot is a message that goes out.
        # The stack's caps ration promotion: a transactional message (an order confirmation) is not
        # held back by them, and takes no slot.
        windows = cap_windows(self.policy, message.channel, self.clock.now().astimezone(self._zone(message, profile)))
        if windows and self.pressure is not None and message.category == "marketing":
            full = self.pressure.admit(message, profile.profile_id, windows)
            if full is not None:
                return DeliveryResult("skipped", f"frequency cap: {full.label}")
        return _Prepared(profile=profile, sender=sender, rendered=rendered)

    def _zone(self, message: OutgoingMessage, profile: Profile) -> Any:
        return visitor_zone(profile.timezone, message.timezone or self.policy.timezone)

    def _quiet_now(self, message: OutgoingMessage, profile: Profile) -> DeliveryResult | None:
        """The journey's quiet hours (or the stack's default) checked again at the last moment."""
        # The stack's default quiet hours hold promotion only; a journey's own apply to all its sends.
        stack_default = self.policy.quiet_hours if message.category == "marketing" else None
        quiet = message.quiet_hours or stack_default
        now = self.clock.now()
        zone = self._zone(message, profile)
        if quiet is None or message.channel not in quiet.channels or not in_quiet_hours(now, quiet, zone):
            return None
        if quiet.behaviour == "skip":
            return DeliveryResult("skipped", "quiet hours")
        wait = math.ceil((quiet_hours_end(now, quiet, zone) - now).total_seconds())
        raise HeldForQuietHours(f"{message.idempotency_key} held: quiet hours for {wait} s", retry_after_seconds=wait)

    def _send(self, message: OutgoingMessage, prepared: _Prepared) -> DeliveryResult:
        try:
            return prepared.sender.send(message, prepared.profile, prepared.rendered)
        except RetryableDeliveryError:
            raise
        except Exception as error:
            if message.channel in INBOX_CHANNELS:
                raise  # nothing left the system: the retry can do it again
            # The adapter did not say what happened, so it may have delivered: record, do not retry.
            logger.exception("channel %s raised for %s", message.channel, message.idempotency_key)
            return DeliveryResult("failed", f"unexpected error: {type(error).__name__}: {error}"[:500])

    def _load_profile(self, profile_id: str) -> Profile | None:
        return live_profile(self.profiles, profile_id)

    def _record(self, message: OutgoingMessage, result: DeliveryResult, rendered: dict[str, Any]) -> DeliveryRecord:
        return DeliveryRecord(
            idempotency_key=message.idempotency_key,
            profile_id=message.profile_id,
            journey_id=message.journey_id,
            node_id=message.node_id,
            enrollment_id=message.enrollment_id,
            channel=message.channel,
            status=result.status,
            detail=result.detail,
            rendered=_storable(rendered),
            sent_at=self.clock.now(),
        )

    def _settle(
        self,
        message: OutgoingMessage,
        result: DeliveryResult,
        rendered: dict[str, Any],
        attempt: str,
    ) -> DeliveryRecord:
        record = self._record(message, result, rendered)
        if not self.outbox.settle(record, attempt):
            logger.warning("outbox row of %s was settled by another attempt", message.idempotency_key)
        self.metrics.count(record.status, record.channel)
        self._record_step(message, record)
        return record

    def _record_step(self, message: OutgoingMessage, record: DeliveryRecord) -> None:
        """What became of the message, told twice: as an outcome event, and, when it was not delivered,
        as a journey step (the funnel must not count it as sent). Both are stored once by their keys,
        so a redelivery that finds the row settled tells them again safely."""
        self._record_outcome_event(message, record)
        if self.steps is None or record.status not in STEP_OUTCOMES:
            return
        outcome = STEP_OUTCOMES[record.status]
        step = RecordStep(
            key=f"{message.idempotency_key}:{outcome}",
            at=record.sent_at,
            profile_id=message.profile_id,
            journey_id=message.journey_id,
            journey_version=message.journey_version,
            enrollment_id=message.enrollment_id,
            node_id=message.node_id,
            outcome=outcome,
            detail=record.detail or None,
            channel=message.channel,
            idempotency_key=message.idempotency_key,
        )
        try:
            self.steps.record(step)
        except Exception:  # the delivery is settled; a lost step only makes the report less exact
            logger.exception("could not record the %s step of %s", outcome, message.idempotency_key)

    def _record_outcome_event(self, message: OutgoingMessage, record: DeliveryRecord) -> None:
        name = OUTCOME_EVENTS.get(record.status)
        if self.outcomes is None or name is None:
            return
        properties: dict[str, Any] = {
            "message_id": message.idempotency_key,
            "journey_id": message.journey_id,
            "journey_version": message.journey_version,
            "node_id": message.node_id,
            "enrollment_id": message.enrollment_id,
            "channel": message.channel,
            "category": message.category,
        }
        if record.detail:
            properties["reason"] = record.detail
        try:
            self.outcomes.record(
                message.profile_id,
                name,
                event_id=f"{message.idempotency_key}:{name}",
                properties=properties,
                at=record.sent_at,
                now=self.clock.now(),
            )
        except Exception as error:
            # Journeys branch on it, so it must not be lost: SQS brings the message back, which finds
            # the row settled (nothing is sent again) and records the event then.
            raise RetryableDeliveryError(f"{name} of {message.idempotency_key} not recorded yet: {error}") from error


def _storable(rendered: dict[str, Any]) -> dict[str, Any]:
    size = len(json.dumps(rendered, ensure_ascii=False, default=str).encode())
    return rendered if size <= MAX_RENDERED_BYTES else {"truncated": True, "size_bytes": size}
