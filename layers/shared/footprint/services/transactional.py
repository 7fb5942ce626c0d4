"""The transactional send API (``POST /admin/messages``, IAM-signed, never the public write key): a
backend sends one message to one person now ("your order is confirmed"), with its own idempotency key.

The answer says at once what became of it:

- ``accepted``: queued on SendQueue; send delivers it exactly once (its outbox claim, as for every
  journey message), renders it against the person's profile and records the outcome
  (``message_sent`` or ``message_failed``, and a step of the pseudo-journey ``api``);
- ``suppressed``: the address bounced or reported spam;
- ``unreachable``: no address on that channel (or, for a marketing message, no consent).

The same ``idempotency_key`` again sends nothing more: while the first is queued it is ``accepted``
again (send drops the copy), once settled the answer is its outbox record (``duplicate: true``).
Keys are scoped to the source, so two sources cannot collide.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from footprint.models.channels import MessageCategory, MessageChannel
from footprint.models.consent import ConsentPolicy
from footprint.models.journey import SendNode
from footprint.models.messages import DeliveryRecord, OutgoingMessage
from footprint.models.profile import Profile
from footprint.services.admin_api import InvalidMessageError, InvalidRequestError, UnknownPersonError
from footprint.services.data_rights import PersonRequest
from footprint.services.profiles import live_profile
from footprint.services.send import PROFILE_CHANNEL, SUPPRESSED_REASON, UNREACHABLE_REASON
from footprint.templating import content_problems

API_JOURNEY = "api"  # the pseudo-journey API messages are recorded under (steps, outbox, outcome events)
ONSITE = frozenset({"onsite_form", "onsite_push"})

Outcome = Literal["accepted", "suppressed", "unreachable"]


class SendRequest(PersonRequest):
    """POST /admin/messages: the person as a data-rights request names them, and the message."""

    idempotency_key: str = Field(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")
    channel: MessageChannel
    category: MessageCategory = "transactional"
    content: dict[str, Any]
    # What personalises the message: ``{{ trigger.order_id }}``, as a journey's trigger properties.
    properties: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _not_onsite(self) -> SendRequest:
        if self.channel in ONSITE:
            raise ValueError("onsite messages need an open page: send them from a journey")
        return self


class SendAnswer(BaseModel):
    model_config = ConfigDict(frozen=True)

    message_id: str
    result: Outcome
    reason: str = ""
    duplicate: bool = False
    # Once send settled it: what the outbox recorded (sent, failed, skipped, ...).
    status: str | None = None


class PeopleDirectory(Protocol):
    def profile_id_for_alias(self, source_id: str, kind: str, value: str) -> str | None: ...
    def get_profile(self, profile_id: str) -> Profile | None: ...


class Outbox(Protocol):
    def get(self, idempotency_key: str) -> DeliveryRecord | None: ...


class SendQueue(Protocol):
    def enqueue(self, message: OutgoingMessage) -> None: ...


class TransactionalSend:
    def __init__(
        self,
        people: PeopleDirectory,
        outbox: Outbox,
        queue: SendQueue,
        now: Callable[[], datetime],
        consent: ConsentPolicy | None = None,
    ) -> None:
        self.consent = consent or ConsentPolicy()
        self.people = people
        self.outbox = outbox
        self.queue = queue
        self.now = now

    def send(self, body: Mapping[str, Any]) -> SendAnswer:
        request = _parse(body)
        node = _checked_node(request)
        message_id = api_message_id(request.source_id, request.idempotency_key)
        settled = self.outbox.get(message_id)
        if settled is not None:
            return SendAnswer(message_id=message_id, result="accepted", duplicate=True, status=settled.status)
        profile = self._profile(request)
        needs = PROFILE_CHANNEL[request.channel]
        if profile.is_suppressed(needs):
            return SendAnswer(message_id=message_id, result="suppressed", reason=SUPPRESSED_REASON)
        if request.category == "transactional":
            reachable = profile.deliverable_on(needs)
        else:
            reachable = profile.reachable_on(needs, self.consent.for_source(profile.source_id))
        if not reachable:
            return SendAnswer(message_id=message_id, result="unreachable", reason=UNREACHABLE_REASON[needs])
        content = node.content.model_dump(exclude_none=True, exclude_defaults=True) if node.content else {}
        self.queue.enqueue(
            OutgoingMessage(
                idempotency_key=message_id,
                profile_id=profile.profile_id,
                source_id=request.source_id,
                journey_id=API_JOURNEY,
                journey_version=1,
                enrollment_id=message_id,
                node_id=request.channel,
                channel=request.channel,
                category=request.category,
                content=content,
                context={"trigger": request.properties, "idempotency_key": request.idempotency_key},
                requested_at=self.now(),
            )
        )
        return SendAnswer(message_id=message_id, result="accepted")

    def _profile(self, request: SendRequest) -> Profile:
        profile_id = request.named_profile_id(self.people)
        profile = live_profile(self.people, profile_id) if profile_id else None
        if profile is None or profile.source_id != request.source_id:
            raise UnknownPersonError("unknown_person", f"no person of source {request.source_id!r} has this id")
        return profile


def api_message_id(source_id: str, idempotency_key: str) -> str:
    """The outbox key of an API message: the caller's key, scoped to its source."""
    digest = hashlib.sha256(f"{source_id}\x1f{idempotency_key}".encode()).hexdigest()[:32]
    return f"{API_JOURNEY}.{digest}"


def _parse(body: Mapping[str, Any]) -> SendRequest:
    try:
        return SendRequest.model_validate(body)
    except ValidationError as error:
        problems = [_problem(error_item) for error_item in error.errors()]
        raise InvalidRequestError("invalid_message", problems[0]["message"], problems) from error


def _checked_node(request: SendRequest) -> SendNode:
    """The content checked as a journey's send node's is: fields the channel needs, templates that render."""
    try:
        node = SendNode.model_validate(
            {
                "type": "send",
                "channel": request.channel,
                "category": request.category,
                "content": request.content,
                "next": "end",
            }
        )
    except ValidationError as error:
        problems = [_problem(error_item) for error_item in error.errors()]
        raise InvalidMessageError("invalid_message", problems[0]["message"], problems) from error
    content = node.content.model_dump(exclude_none=True, exclude_defaults=True) if node.content else {}
    rendering = [{"location": f"body.content.{p.field}", "message": p.message} for p in content_problems(content)]
    if rendering:
        raise InvalidMessageError("invalid_message", "the content does not render", rendering)
    return node


def _problem(error: Any) -> dict[str, str]:
    location = ".".join(["body", *(str(part) for part in error["loc"])])
    return {"location": location, "message": str(error["msg"])}
