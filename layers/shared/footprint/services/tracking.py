"""What the tracking API's handler (track) needs before its service: the request it hands over and every
refusal it maps to an HTTP status, stdlib only, so that importing the handler builds no model.

Every failure caused by the client is an :class:`IngestError` subclass carrying a stable ``code``, a
human ``reason`` and, for validation failures, the list of ``errors`` (location + message); the handler
maps each subclass to one HTTP status. ``footprint.services.ingest``, ``onsite`` and ``quotas`` raise
them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from footprint.models.events import EventType

# ---------------------------------------------------------------- errors (one HTTP status each)


class IngestError(Exception):
    """A request Footprint will not store, with a stable code and a reason meant for the sender."""

    # Set once the request's origin was found allowed: the error answer names it for CORS.
    allowed_origin: str | None = None

    def __init__(self, code: str, reason: str, errors: Sequence[Mapping[str, str]] = ()) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
        self.errors = [dict(error) for error in errors]


class InvalidPayloadError(IngestError):
    """The body is not a valid Segment call (bad JSON, wrong types, missing ids, ...)."""


class UnauthorizedError(IngestError):
    """No write key, a malformed Authorization header, or a write key no source has."""


class OriginNotAllowedError(IngestError):
    """A browser call from an origin the source does not allow."""


class PayloadTooLargeError(IngestError):
    """Over Segment's limits: 32 KB per message, 500 KB per request."""


class UnsupportedEncodingError(IngestError):
    """A Content-Encoding other than gzip."""


class StoreUnavailableError(IngestError):
    """DynamoDB did not take the request (throttled or failing); the client should retry."""


class IdentityRequiredError(IngestError):
    """A userId without a valid user_hash: 403."""


class NotFoundError(IngestError):
    """An unknown write key on the settings route, or a message that is not this visitor's: 404."""


class TooManyRequestsError(IngestError):
    """429: the source is over a limit for now; ``retry_after_seconds`` says when to try again."""

    def __init__(self, code: str, reason: str, retry_after_seconds: int) -> None:
        super().__init__(code, reason)
        self.retry_after_seconds = max(1, retry_after_seconds)


# ---------------------------------------------------------------- the request


@dataclass(frozen=True)
class TrackingRequest:
    """What ingest needs from one HTTP request (the handler copies it from API Gateway's event)."""

    # The call type of a single-call route (/v1/track, ...); None for /v1/batch.
    call: EventType | None
    body: str | None
    is_base64_encoded: bool = False
    authorization: str | None = None
    origin: str | None = None
    content_encoding: str | None = None
    # ``?writeKey=``: RudderStack's beacon (sendBeacon can set no header, and its body has no key).
    write_key_parameter: str | None = None
