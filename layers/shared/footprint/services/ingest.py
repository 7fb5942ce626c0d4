"""Ingest: one tracking request (Segment HTTP API) in, validated and skew-corrected events stored.

The request path does the least it can: read the body, find the source by its write key (cached
in the warm Lambda), validate, and store every message in one batched write. Identity resolution
and journeys run later, in evaluate, on the EventsTable stream.

Every failure caused by the client is an :class:`IngestError` subclass (footprint.services.tracking)
carrying a stable ``code``, a human ``reason`` and, for validation failures, the list of ``errors``
(location + message); the handler maps each subclass to one HTTP status. Nothing a client sends may
end in a 500.
"""

from __future__ import annotations

import base64
import json
import math
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pydantic import ValidationError

from footprint import clock
from footprint.identity import vouched
from footprint.models.events import EventType, TrackedEvent, check_event_timestamp
from footprint.models.segment import (
    MAX_BATCH_MESSAGES,
    MAX_MESSAGE_BYTES,
    MAX_REQUEST_BYTES,
    MESSAGE_MODELS,
    SegmentBatch,
    SegmentMessage,
    Source,
    corrected_timestamp,
    derive_message_id,
    serialised_size,
)
from footprint.services.tracking import (
    IngestError,
    InvalidPayloadError,
    OriginNotAllowedError,
    PayloadTooLargeError,
    TrackingRequest,
    UnauthorizedError,
    UnsupportedEncodingError,
)

# JSON nested deeper than this is refused before anything walks it recursively.
MAX_NESTING_DEPTH = 64
# Write keys are looked up as DynamoDB keys; longer ones cannot exist.
MAX_WRITE_KEY_LENGTH = 256
# A response lists at most this many validation errors (the count is in the reason).
MAX_REPORTED_ERRORS = 20


# ---------------------------------------------------------------- ports


class SourceDirectory(Protocol):
    def find_source(self, write_key: str) -> Source | None:
        """The source owning ``write_key``, None if there is none. Raises StoreUnavailableError."""
        ...


class EventStore(Protocol):
    def put_events(self, events: Sequence[TrackedEvent]) -> None:
        """Store every event; an event with the same (source, visitor, messageId) as a stored one
        overwrites it. Raises StoreUnavailableError when some could not be stored."""
        ...


class QuotaGate(Protocol):
    """A source's limits (footprint.services.quotas): ``admit`` before the write, ``record`` after it."""

    def admit(self, source: Source, count: int) -> None:
        """Raise an IngestError (429 for rate and daily quota) if ``count`` more events are over a limit."""
        ...

    def record(self, source: Source, count: int) -> None:
        """``count`` events of ``source`` were stored."""
        ...


class NoQuotas:
    """A QuotaGate that admits everything (tests and tools that need no limits)."""

    def admit(self, source: Source, count: int) -> None:
        pass

    def record(self, source: Source, count: int) -> None:
        pass


# ---------------------------------------------------------------- the use case


@dataclass(frozen=True)
class IngestResult:
    source_id: str
    accepted: int
    # The request's Origin when the source allows it (the answer's Access-Control-Allow-Origin).
    allowed_origin: str | None = None


class IngestService:
    def __init__(
        self,
        sources: SourceDirectory,
        store: EventStore,
        now: Callable[[], datetime] = clock.now,
        quotas: QuotaGate | None = None,
        push_endpoint_check: Callable[[str], object] | None = None,
    ) -> None:
        self.sources = sources
        self.store = store
        self.quotas = quotas or NoQuotas()
        # Raises ValueError for a push endpoint send must never call (public_urls.check_url_syntax).
        self.push_endpoint_check = push_endpoint_check or strict_push_endpoint_check
        # The process clock by default, read per request (the local stack may swap it).
        self.now = now

    def ingest(self, request: TrackingRequest) -> IngestResult:
        payload = read_json_object(request)
        source = self.authenticate(request.authorization, payload, request.write_key_parameter)
        check_origin(source, request.origin)
        try:
            result = self.accept(source, payload, request.call)
        except IngestError as error:
            error.allowed_origin = request.origin
            raise
        return IngestResult(result.source_id, result.accepted, allowed_origin=request.origin)

    def accept(self, source: Source, payload: dict[str, Any], call: EventType | None = None) -> IngestResult:
        """Validate and store the messages of ``payload`` for an authenticated ``source`` (also the way
        the onsite routes record their outcome events, so they pass the same checks and limits)."""
        events = tracked_events(payload, call, source_id=source.source_id, received_at=self.now())
        check_push_subscriptions(events, call, self.push_endpoint_check)
        # Who vouches for each call's userId (the trust model in docs/architecture.md).
        events = [vouched(event, source) for event in events]
        self.quotas.admit(source, len(events))
        self.store.put_events(events)
        self.quotas.record(source, len(events))
        return IngestResult(source_id=source.source_id, accepted=len(events))

    def authenticate(
        self, authorization: str | None, payload: Mapping[str, Any], write_key_parameter: str | None = None
    ) -> Source:
        """The write key is the HTTP Basic user (all server libraries), ``writeKey`` in the body
        (analytics.js, whose beacons cannot set headers) or in the query (RudderStack's beacon)."""
        write_key = write_key_from_authorization(authorization) if authorization else None
        if write_key is None:
            body_key = payload.get("writeKey")
            write_key = body_key if isinstance(body_key, str) and body_key else None
        if write_key is None and write_key_parameter:
            write_key = write_key_parameter
        if write_key is None:
            raise UnauthorizedError(
                "missing_write_key", "send the write key as the HTTP Basic user, or as writeKey in the body"
            )
        source = None
        if len(write_key) <= MAX_WRITE_KEY_LENGTH and write_key.isprintable():
            source = self.sources.find_source(write_key)
        if source is None:
            raise UnauthorizedError("unknown_write_key", "no source has this write key")
        if not source.usable_at(self.now()):
            raise UnauthorizedError(
                "write_key_revoked", "this write key was revoked or rotated out: use the source's current key"
            )
        return source


def check_origin(source: Source, origin: str | None) -> None:
    """A browser call (it names its Origin) must come from one of the source's allowed origins."""
    if origin is not None and not source.allows_origin(origin):
        raise OriginNotAllowedError("origin_not_allowed", f"origin {origin!r} is not allowed to send to this source")


def strict_push_endpoint_check(endpoint: str) -> object:
    from footprint.adapters.channels.public_urls import check_url_syntax

    return check_url_syntax(endpoint, allow_loopback=False)


def write_key_from_authorization(header: str) -> str | None:
    """The user of ``Authorization: Basic base64("writeKey:")``; None if the user is empty."""
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise UnauthorizedError("invalid_authorization", "use HTTP Basic authorization with the write key as the user")
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except ValueError as error:  # binascii.Error, non-ASCII input, UnicodeDecodeError
        raise UnauthorizedError("invalid_authorization", "the Basic credentials are not valid base64") from error
    user, _, _password = decoded.partition(":")
    return user or None


# ---------------------------------------------------------------- reading the body


def read_json_object(request: TrackingRequest) -> dict[str, Any]:
    """The body as a JSON object: base64 (API Gateway) and gzip (Content-Encoding) undone, limits
    checked before anything is parsed. Content-Type is not consulted: analytics.js sends JSON as
    text/plain (no CORS preflight) and some clients send none."""
    raw = _body_bytes(request)
    if len(raw) > MAX_REQUEST_BYTES:
        raise PayloadTooLargeError("request_too_large", f"the request body is over {MAX_REQUEST_BYTES // 1024} KB")
    try:
        payload = json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError as error:
        raise InvalidPayloadError("invalid_json", "the body is nested too deeply") from error
    except ValueError as error:  # JSONDecodeError, bad UTF-8, out-of-range numbers
        raise InvalidPayloadError("invalid_json", f"the body is not valid JSON: {error}") from error
    if not isinstance(payload, dict):
        raise InvalidPayloadError("invalid_body", "the body must be a JSON object")
    if _nesting_depth(payload) > MAX_NESTING_DEPTH:
        raise InvalidPayloadError("invalid_json", f"the body is nested deeper than {MAX_NESTING_DEPTH} levels")
    try:
        # Strings must be storable as UTF-8: JSON escapes can spell unpaired surrogates.
        json.dumps(payload, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidPayloadError("invalid_json", "the body contains an unpaired UTF-16 surrogate") from error
    return payload


def _body_bytes(request: TrackingRequest) -> bytes:
    text = request.body or ""
    if request.is_base64_encoded:
        try:
            raw = base64.b64decode(text, validate=True)
        except ValueError as error:  # binascii.Error or non-ASCII input
            raise InvalidPayloadError("invalid_body", "the body is not valid base64") from error
    else:
        try:
            raw = text.encode("utf-8")
        except UnicodeEncodeError as error:
            raise InvalidPayloadError("invalid_body", "the body is not valid UTF-8") from error
    encoding = (request.content_encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding in ("gzip", "x-gzip"):
        return _gunzip(raw)
    raise UnsupportedEncodingError("unsupported_encoding", f"Content-Encoding {encoding!r} is not supported")


def _gunzip(raw: bytes) -> bytes:
    """Decompress at most one byte past the request limit (a small bomb cannot grow into memory)."""
    decompressor = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
    try:
        data = decompressor.decompress(raw, MAX_REQUEST_BYTES + 1)
    except zlib.error as error:
        raise InvalidPayloadError("invalid_body", "the gzip body cannot be decompressed") from error
    if len(data) <= MAX_REQUEST_BYTES and not decompressor.eof:
        raise InvalidPayloadError("invalid_body", "the gzip body is truncated")
    return data


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise ValueError(f"{text} is out of range")
    return number


def _nesting_depth(value: Any) -> int:
    """How deeply containers nest, found without recursion (the input may be hostile)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        children: Iterable[Any]
        if isinstance(current, dict):
            children = current.values()
        elif isinstance(current, list):
            children = current
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_NESTING_DEPTH:
            break
        stack.extend((child, depth + 1) for child in children)
    return deepest


# ---------------------------------------------------------------- validation and normalisation


@dataclass(frozen=True)
class _Envelope:
    """The messages of a request and what a batch shares with them."""

    messages: list[Any]
    sent_at: datetime | None = None
    context: Mapping[str, Any] | None = None
    # Each message is stored with the batch context merged in, so that counts toward its size.
    context_bytes: int = 0


def tracked_events(
    payload: dict[str, Any], call: EventType | None, *, source_id: str, received_at: datetime
) -> list[TrackedEvent]:
    """Validate every message of the request and normalise it; all or nothing: one bad message
    rejects the whole request with a 400 (as Segment answers a malformed batch) whose ``errors`` name
    every bad message and field (``batch.3.event``), so a client never has to guess which of its
    messages were kept, and nothing evaluate would refuse is ever stored."""
    envelope = _envelope(payload, call)
    errors: list[dict[str, str]] = []
    events: list[TrackedEvent] = []
    for index, raw in enumerate(envelope.messages):
        where: tuple[str | int, ...] = ("batch", index) if call is None else ()
        message = _validated_message(raw, call, where, errors, extra_bytes=envelope.context_bytes)
        if message is None:
            continue
        try:
            events.append(
                _tracked_event(message, raw, call, envelope=envelope, source_id=source_id, received_at=received_at)
            )
        except _EventTimeError as error:
            errors.append(_error((*where, error.field), error.problem))
    if errors:
        raise InvalidPayloadError(
            "invalid_payload", _summary(errors, len(envelope.messages)), errors[:MAX_REPORTED_ERRORS]
        )
    return events


def _envelope(payload: dict[str, Any], call: EventType | None) -> _Envelope:
    if call is not None:
        return _Envelope(messages=[payload])
    if isinstance(payload.get("batch"), list):
        count = len(payload["batch"])
        if count == 0:
            raise InvalidPayloadError("empty_batch", "batch must contain at least one message")
        if count > MAX_BATCH_MESSAGES:
            raise InvalidPayloadError(
                "too_many_messages", f"batch has {count} messages; at most {MAX_BATCH_MESSAGES} are accepted"
            )
    try:
        batch = SegmentBatch.model_validate(payload)
    except ValidationError as error:
        errors = _validation_errors(error, ())
        raise InvalidPayloadError("invalid_payload", _summary(errors, 1), errors[:MAX_REPORTED_ERRORS]) from error
    context_bytes = serialised_size(batch.context) if batch.context else 0
    sent_at = batch.sent_at or batch.timestamp
    return _Envelope(batch.batch, sent_at=sent_at, context=batch.context, context_bytes=context_bytes)


# ---------------------------------------------------------------- web push subscriptions

WEB_PUSH_SUBSCRIBED = "web_push_subscribed"
P256_POINT_BYTES = 65  # an uncompressed P-256 point: 0x04, x, y
AUTH_SECRET_BYTES = 16


def check_push_subscriptions(
    events: Sequence[TrackedEvent], call: EventType | None, endpoint_check: Callable[[str], object]
) -> None:
    """``web_push_subscribed`` names the address send will POST to: refuse endpoints that are not
    https on a public host (SSRF) and keys that no browser makes, before anything is stored."""
    errors: list[dict[str, str]] = []
    for index, event in enumerate(events):
        if event.canonical_event != WEB_PUSH_SUBSCRIBED:
            continue
        where: tuple[str | int, ...] = (("batch", index) if call is None else ()) + ("properties", "subscription")
        errors.extend(_subscription_errors(event.properties.get("subscription"), where, endpoint_check))
    if errors:
        raise InvalidPayloadError("invalid_subscription", _summary(errors, len(events)), errors[:MAX_REPORTED_ERRORS])


def _subscription_errors(
    subscription: Any, where: tuple[str | int, ...], endpoint_check: Callable[[str], object]
) -> list[dict[str, str]]:
    if not isinstance(subscription, dict):
        return [_error(where, "must be the browser's PushSubscription: {endpoint, keys: {p256dh, auth}}")]
    errors: list[dict[str, str]] = []
    endpoint = subscription.get("endpoint")
    if not isinstance(endpoint, str):
        errors.append(_error((*where, "endpoint"), "must be a string"))
    else:
        try:
            endpoint_check(endpoint)
        except ValueError as error:
            errors.append(_error((*where, "endpoint"), str(error)))
    keys = subscription.get("keys")
    if not isinstance(keys, dict):
        return [*errors, _error((*where, "keys"), "must hold p256dh and auth")]
    for name, size in (("p256dh", P256_POINT_BYTES), ("auth", AUTH_SECRET_BYTES)):
        raw = _base64url(keys.get(name))
        if raw is None or len(raw) != size or (name == "p256dh" and raw[0] != 0x04):
            errors.append(_error((*where, "keys", name), f"must be {size} bytes in base64url, as browsers make it"))
    return errors


def _base64url(value: Any) -> bytes | None:
    if not isinstance(value, str) or len(value) > 256:
        return None
    try:
        standard = value.rstrip("=").replace("-", "+").replace("_", "/")
        return base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except ValueError:
        return None


def _validated_message(
    raw: Any,
    call: EventType | None,
    where: tuple[str | int, ...],
    errors: list[dict[str, str]],
    *,
    extra_bytes: int = 0,
) -> SegmentMessage | None:
    if not isinstance(raw, dict):
        errors.append(_error(where, "must be a JSON object"))
        return None
    size = serialised_size(raw) + extra_bytes
    if size > MAX_MESSAGE_BYTES:
        location = ".".join(str(part) for part in where) or "body"
        with_context = " with the batch context" if extra_bytes else ""
        raise PayloadTooLargeError(
            "message_too_large",
            f"message {location}{with_context} is {size} bytes; at most {MAX_MESSAGE_BYTES // 1024} KB are accepted",
        )
    # A single-call route names the type (a contradicting `type` fails validation); a batch
    # message must name its own.
    message_type = call or raw.get("type")
    model = MESSAGE_MODELS.get(message_type) if isinstance(message_type, str) else None
    if model is None:
        problem = "Field required" if message_type is None else "must be one of " + ", ".join(MESSAGE_MODELS)
        errors.append(_error((*where, "type"), problem))
        return None
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        errors.extend(_validation_errors(error, where))
        return None


def _tracked_event(
    message: SegmentMessage,
    raw: Mapping[str, Any],
    call: EventType | None,
    *,
    envelope: _Envelope,
    source_id: str,
    received_at: datetime,
) -> TrackedEvent:
    sent_at = message.sent_at or envelope.sent_at
    timestamp = _event_time(message, sent_at, received_at)
    properties = dict(message.properties)
    if message.category is not None:
        # TrackedEvent has no category: a page's category travels in its properties.
        properties.setdefault("category", message.category)
    if message.group_id is not None:
        properties.setdefault("group_id", message.group_id)
    return TrackedEvent(
        source_id=source_id,
        message_id=message.message_id or derive_message_id(raw, call),
        type=message.type,
        event=message.stored_event_name,
        name=message.name,
        anonymous_id=message.anonymous_id,
        user_id=message.user_id,
        previous_id=message.previous_id,
        properties=properties,
        traits=message.traits,
        context=merged(envelope.context or {}, message.context),
        timestamp=timestamp,
        original_timestamp=message.client_time,
        sent_at=sent_at,
        received_at=received_at,
    )


class _EventTimeError(ValueError):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field
        self.problem = problem


def _event_time(message: SegmentMessage, sent_at: datetime | None, received_at: datetime) -> datetime:
    """The stored time (Segment's skew correction), within the bounds evaluate and the engine accept
    (footprint.models.events): an event they would refuse is refused here, naming the client's field."""
    field = "originalTimestamp" if message.original_timestamp else "timestamp"
    corrected = " once corrected for clock skew (sentAt)" if sent_at and message.client_time else ""
    try:
        moment = corrected_timestamp(received_at=received_at, sent_at=sent_at, client_time=message.client_time)
    except OverflowError as error:
        raise _EventTimeError(field, "is out of range once corrected for clock skew") from error
    problem = check_event_timestamp(moment, received_at=received_at)
    if problem:
        raise _EventTimeError(field, problem + corrected)
    return moment


def merged(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` deep-merged over ``base`` (a batch's context under each message's context)."""
    result = dict(base)
    for key, value in override.items():
        below = result.get(key)
        result[key] = merged(below, value) if isinstance(below, dict) and isinstance(value, dict) else value
    return result


def _validation_errors(error: ValidationError, where: tuple[str | int, ...]) -> list[dict[str, str]]:
    return [_error((*where, *detail["loc"]), detail["msg"]) for detail in error.errors(include_url=False)]


def _error(location: Sequence[str | int], message: str) -> dict[str, str]:
    return {"location": ".".join(str(part) for part in location) or "body", "message": message}


def _summary(errors: Sequence[Mapping[str, str]], message_count: int) -> str:
    noun = "problem" if len(errors) == 1 else "problems"
    first = errors[0]
    return f"{len(errors)} {noun} in {message_count} message(s); first: {first['location']}: {first['message']}"
