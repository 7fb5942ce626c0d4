"""What the admin API's handler needs before its services: every refusal it maps to an HTTP status, and the
parsing of a request (its body, ``?version=``, ``?grace=``), stdlib only, so that importing the handler
builds no model. The services (admin, sources, data rights, transactional sends) and the journey catalog
raise these.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

MAX_BODY_BYTES = 256 * 1024
MAX_VERSION_DIGITS = 9
DEFAULT_ROTATION_GRACE = timedelta(hours=24)

# ---------------------------------------------------------------- refusals (one HTTP status each)


class AdminError(Exception):
    """A request the admin API refuses, with a stable code and a reason meant for the caller."""

    def __init__(self, code: str, reason: str, errors: Sequence[Mapping[str, str]] = ()) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
        self.errors = [dict(error) for error in errors]


class InvalidRequestError(AdminError):
    """Not the request this route takes: not UTF-8, not JSON, missing fields, a bad query parameter."""


class RequestTooLargeError(AdminError):
    """A body over MAX_BODY_BYTES."""


class InvalidJourneyError(AdminError):
    """Journey YAML that does not parse or does not validate; ``errors`` holds one line per problem."""


class InvalidSimulationError(AdminError):
    """A well-formed simulation request that cannot run: bad events, a horizon too far, too much work."""


class JourneyNotFoundError(AdminError):
    """No published journey (or version) of that id."""


class SourceError(AdminError):
    """A request on sources that is refused (the admin API's error shape)."""


class InvalidSourceError(SourceError):
    """A body that is not a valid source or origin list (422)."""


class UnknownKeyError(SourceError):
    """No write key has this key_id (404)."""


class KeyRevokedError(SourceError):
    """The key is revoked: it cannot be rotated or changed any more (409)."""


class PersonNotFoundError(AdminError):
    """No profile has this id (404)."""


class UnknownPersonError(AdminError):
    """No profile has this id (404)."""


class InvalidMessageError(AdminError):
    """Content that does not validate or render (422)."""


class JourneyVersionExistsError(Exception):
    """Published versions are immutable: publish a new version number instead."""


class UnknownJourneyError(Exception):
    pass


# ---------------------------------------------------------------- parsing


def request_text(body: str | None, is_base64_encoded: bool) -> str:
    """The body API Gateway passed, as text: base64-decoded if it had to be, at most MAX_BODY_BYTES, UTF-8."""
    try:
        data = base64.b64decode(body or "", validate=True) if is_base64_encoded else (body or "").encode()
    except (binascii.Error, UnicodeEncodeError) as error:
        raise InvalidRequestError("invalid_body", "the body could not be decoded") from error
    if len(data) > MAX_BODY_BYTES:
        raise RequestTooLargeError("request_too_large", f"the body is over {MAX_BODY_BYTES // 1024} KB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidRequestError("invalid_encoding", "the body must be UTF-8 text") from error


def parse_json_object(text: str) -> dict[str, Any]:
    """A JSON object body (an empty body is an empty object)."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as error:  # RecursionError: nesting deeper than the parser goes
        raise InvalidRequestError("invalid_json", f"the body is not JSON: {error}") from error
    if not isinstance(value, dict):
        raise InvalidRequestError("invalid_json", "the body must be a JSON object")
    return value


def parse_version(value: str | None) -> int | None:
    """``?version=N``: a positive integer, or absent."""
    if value is None or value == "":
        return None
    # ASCII digits only ("²".isdigit() is true), and few of them: int() refuses over 4,300.
    if not (value.isascii() and value.isdigit() and len(value) <= MAX_VERSION_DIGITS) or int(value) < 1:
        raise InvalidRequestError(
            "invalid_version", "version must be a positive integer", [_problem("version", repr(value))]
        )
    return int(value)


def parse_grace(value: str | None) -> timedelta:
    """``?grace=``: how long a rotated-out key keeps working (``24h``, ``PT1H``, ``0``); default 24 h."""
    if value is None or value == "":
        return DEFAULT_ROTATION_GRACE
    from footprint.models.timing import parse_duration

    try:
        return parse_duration(value)
    except ValueError as error:
        raise InvalidSourceError("invalid_grace", f"grace: {error}") from error


def _problem(location: str, message: str) -> dict[str, str]:
    return {"location": location, "message": message}
