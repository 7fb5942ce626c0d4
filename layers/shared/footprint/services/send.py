"""What send does with each message of SendQueue: deliver it on its channel, exactly once.

Exactly once, out of an at-least-once queue, takes two guards:

1. Powertools idempotency around :meth:`SendService.deliver` (wired in ``adapters/send_wiring``): a
   redelivered SQS message, or a second message with the same idempotency key, gets the stored
   result of the first; while the first is still running, the second fails its record and SQS
   retries it later.
2. The outbox row (MessagesTable), claimed with a conditional put *before* the channel is called:
   whatever slips past the first guard (its record expired after 7 days, a re-run journey step, a
   Lambda that timed out mid-send) finds the row and delivers nothing.

A failure that may pass on retry (network, 5xx, throttling) releases the claim and raises, so SQS
retries the message; a permanent one (bad address, subscription gone, 4xx) is recorded as
"failed" with its reason. If an attempt died between claim and result, nobody can tell whether the
provider got the message; it is recorded as "failed" rather than risk sending it twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from footprint.clock import Clock
from footprint.engine import RecordStep, StepOutcome
from footprint.models.messages import DeliveryRecord, DeliveryStatus, MessageChannel, OutgoingMessage
from footprint.models.profile import Channel, Profile
from footprint.templating import ContentRenderer, TemplateError, template_variables

logger = logging.getLogger(__name__)

# A message for an anonymous profile that has since merged into a known contact goes to the contact.
MAX_MERGE_REDIRECTS = 3
# Rendered content is kept in the outbox row (the onsite inbox reads it there) and in the idempotency
# record; both are DynamoDB items (at most 400 KB), so oversized content is recorded by its size only.
MAX_RENDERED_BYTES = 64 * 1024
# A claim older than this cannot belong to a running attempt (SendFunction's timeout is 30 s).
DEFAULT_CLAIM_STALE_AFTER = timedelta(minutes=2)

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
UNKNOWN_PROFILE = "unknown profile"
NOT_CONFIGURED = "channel not configured"
# Delivery results that evaluate's "sent" step does not already tell: recorded as steps by send.
STEP_OUTCOMES: dict[str, StepOutcome] = {"failed": "failed", "skipped": "skipped"}
OUTCOME_UNKNOWN = "outcome unknown: an earlier attempt stopped mid-delivery; not resent to avoid a duplicate"


class RetryableDeliveryError(Exception):
    """The channel may accept the message later (network error, 5xx, throttling): SQS retries it."""


@dataclass(frozen=True)
class DeliveryResult:
    """What a channel adapter reports for one message."""

    status: DeliveryStatus
    detail: str = ""
    # Addresses the provider says no longer exist (web push endpoints answered 404/410).
    gone_addresses: tuple[str, ...] = ()


class ChannelSender(Protocol):
    def send(self, message: OutgoingMessage, profile: Profile, rendered: Mapping[str, Any]) -> DeliveryResult:
        """Deliver ``rendered`` content; return "sent"/"queued_onsite", or "failed" for a permanent
        refusal; raise RetryableDeliveryError when a later attempt may succeed."""
        ...


class ProfileLookup(Protocol):
    def get_profile(self, profile_id: str) -> Profile | None: ...


class SubscriptionPruner(Protocol):
    def forget_web_push_subscriptions(self, profile_id: str, endpoints: Sequence[str]) -> None:
        """Drop subscriptions the push service says are gone, so they are not tried again."""
        ...


@dataclass(frozen=True)
class Claim:
    """The outcome of trying to claim a message's outbox row."""

    acquired: bool
    # When not acquired: the result an earlier attempt recorded, or None while that attempt's
    # claim is still open (it is running, or it died mid-delivery).
    settled: DeliveryRecord | None = None
    claimed_at: datetime | None = None


class Outbox(Protocol):
    def claim(self, message: OutgoingMessage, at: datetime) -> Claim:
        """Create the message's row in state "sending" unless a row exists (conditional put)."""
        ...

    def settle(self, record: DeliveryRecord) -> bool:
        """Write the result over our open claim; False if the claim was no longer open."""
        ...

    def release(self, idempotency_key: str) -> None:
        """Delete our open claim, so a retry can claim again."""
        ...


class SendSteps(Protocol):
    def record(self, step: RecordStep) -> None:
        """Store the step once (a conditional put keyed by ``step.key``)."""
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
    ) -> None:
        self.steps = steps
        self.profiles = profiles
        self.pruner = pruner
        self.outbox = outbox
        self.channels = dict(channels)
        self.clock = clock
        self.renderer = renderer or ContentRenderer()
        self.metrics = metrics or NoMetrics()
        self.claim_stale_after = claim_stale_after
        # The guard needs the payload as a keyword argument (Powertools' data_keyword_argument).
        self._guarded_deliver: DeliverFunction = guard(self._deliver_once) if guard else self._deliver_once

    def deliver(self, message: OutgoingMessage) -> DeliveryRecord:
        """Deliver ``message`` unless a message with its idempotency key was delivered already."""
        return self._guarded_deliver(message=message)

    def _deliver_once(self, message: OutgoingMessage) -> DeliveryRecord:
        claim = self.outbox.claim(message, self.clock.now())
        if not claim.acquired:
            return self._already_claimed(message, claim)
        try:
            prepared = self._prepare(message)
            result = prepared if isinstance(prepared, DeliveryResult) else self._send(message, prepared)
        except BaseException:
            # Nothing left our hands (or the channel says so): let the retry claim again.
            self.outbox.release(message.idempotency_key)
            self.metrics.count("retried", message.channel)
            raise
        rendered = prepared.rendered if isinstance(prepared, _Prepared) else {}
        record = self._settle(message, result, rendered)
        if result.gone_addresses and self.pruner is not None and isinstance(prepared, _Prepared):
            try:
                self.pruner.forget_web_push_subscriptions(prepared.profile.profile_id, result.gone_addresses)
            except Exception:  # the message is settled; a stale subscription only costs a 410 next time
                logger.exception("could not drop gone subscriptions of %s", prepared.profile.profile_id)
        return record

    def _prepare(self, message: OutgoingMessage) -> _Prepared | DeliveryResult:
        sender = self.channels.get(message.channel)
        if sender is None:
            return DeliveryResult("skipped", NOT_CONFIGURED)
        profile = self._load_profile(message.profile_id)
        if profile is None:
            return DeliveryResult("skipped", UNKNOWN_PROFILE)
        needs = PROFILE_CHANNEL[message.channel]
        if not profile.reachable_on(needs):
            return DeliveryResult("skipped", UNREACHABLE_REASON[needs])
        try:
            rendered = self.renderer.render(message.content, template_variables(message, profile))
        except TemplateError as error:
            return DeliveryResult("failed", f"template error: {error}")
        return _Prepared(profile=profile, sender=sender, rendered=rendered)

    def _send(self, message: OutgoingMessage, prepared: _Prepared) -> DeliveryResult:
        try:
            return prepared.sender.send(message, prepared.profile, prepared.rendered)
        except RetryableDeliveryError:
            raise
        except Exception as error:
            # The adapter did not say what happened, so it may have delivered: record, do not retry.
            logger.exception("channel %s raised for %s", message.channel, message.idempotency_key)
            return DeliveryResult("failed", f"unexpected error: {type(error).__name__}: {error}"[:500])

    def _load_profile(self, profile_id: str) -> Profile | None:
        profile = self.profiles.get_profile(profile_id)
        for _ in range(MAX_MERGE_REDIRECTS):
            if profile is None or not profile.merged_into:
                break
            profile = self.profiles.get_profile(profile.merged_into)
        return profile

    def _already_claimed(self, message: OutgoingMessage, claim: Claim) -> DeliveryRecord:
        if claim.settled is not None:
            self.metrics.count("duplicate", message.channel)
            return claim.settled
        claimed_at = claim.claimed_at or self.clock.now()
        if self.clock.now() - claimed_at < self.claim_stale_after:
            # Another attempt holds the claim and may still be running: look again later.
            raise RetryableDeliveryError(f"{message.idempotency_key} is being delivered by another attempt")
        logger.warning("claim of %s left open by a stopped attempt", message.idempotency_key)
        return self._settle(message, DeliveryResult("failed", OUTCOME_UNKNOWN), {})

    def _settle(
        self,
        message: OutgoingMessage,
        result: DeliveryResult,
        rendered: dict[str, Any],
    ) -> DeliveryRecord:
        record = DeliveryRecord(
            idempotency_key=message.idempotency_key,
            profile_id=message.profile_id,
            journey_id=message.journey_id,
            node_id=message.node_id,
            channel=message.channel,
            status=result.status,
            detail=result.detail,
            rendered=_storable(rendered),
            sent_at=self.clock.now(),
        )
        if not self.outbox.settle(record):
            logger.warning("outbox row of %s was settled by another attempt", message.idempotency_key)
        self.metrics.count(record.status, record.channel)
        self._record_step(message, record)
        return record

    def _record_step(self, message: OutgoingMessage, record: DeliveryRecord) -> None:
        """A message that was not delivered is a journey step too: the funnel must not count it as sent."""
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


def _storable(rendered: dict[str, Any]) -> dict[str, Any]:
    size = len(json.dumps(rendered, ensure_ascii=False, default=str).encode())
    return rendered if size <= MAX_RENDERED_BYTES else {"truncated": True, "size_bytes": size}
