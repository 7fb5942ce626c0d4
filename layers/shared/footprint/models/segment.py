"""The Segment HTTP Tracking API, as Footprint accepts it (no I/O here).

Existing Segment and RudderStack libraries send to Footprint by changing only the host, so these
models accept exactly the top-level fields those libraries send and nothing else (``extra="forbid"``):
the Segment spec's fields plus what analytics.js, analytics-python and the RudderStack SDKs add on
the wire (``writeKey``, ``_metadata``, ``channel``, ``version``, ``category``). ``properties``,
``traits``, ``context`` and ``integrations`` are free maps. Every optional field also accepts
``null``, because the RudderStack SDKs send ``"event": null`` and ``"properties": null``.

Decisions:
- a message without ``messageId`` gets one derived from a hash of its content
  (:func:`derive_message_id`), so a retried call lands on the same item;
- the stored time is corrected for the client's clock skew with Segment's rule
  (:func:`corrected_timestamp`);
- a signed identity (``user_hash``, footprint.identity) travels in ``context.user_hash``, which
  every Segment library can set; a top-level ``user_hash`` (Footprint's own snippet and onsite
  API) is accepted too and moved there. Track checks it and does not store it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from footprint.models.events import EventType, check_event_name
from footprint.models.limits import SourceLimits

# Segment's limits: a message may be 32 KB serialised, a request (a batch) 500 KB.
MAX_MESSAGE_BYTES = 32 * 1024
MAX_REQUEST_BYTES = 500 * 1024
# Segment states no count; 500 covers every library's default batch (analytics-python 100,
# analytics.js 10, RudderStack <= 100) and bounds the DynamoDB calls of one request (20).
MAX_BATCH_MESSAGES = 500
# Ids become DynamoDB key parts (sort keys are limited to 1,024 bytes, partition keys to 2,048).
MAX_ID_BYTES = 512

# The stored event name of calls other than `track`, whose name is the event itself.
PAGE_VIEWED = "page_viewed"
SCREEN_VIEWED = "screen_viewed"

# Fields that differ between two sends of the same message (retries add or refresh them), so they
# do not count as content when a messageId is derived.
_VOLATILE_FIELDS = frozenset({"messageId", "sentAt", "writeKey", "_metadata", "receivedAt"})


def _id_from_json(value: Any) -> str | None:
    """Segment ids are strings; numbers are accepted and stringified as analytics-python does."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("must be a string")
    text = value if isinstance(value, str) else str(value)
    if not text:
        return None  # an empty id is no id
    if len(text.encode("utf-8", errors="surrogatepass")) > MAX_ID_BYTES:
        raise ValueError(f"must be at most {MAX_ID_BYTES} bytes")
    return text


def _empty_map_for_null(value: Any) -> Any:
    return {} if value is None else value


def _as_utc(moment: datetime) -> datetime:
    """Timestamps without a zone are UTC (Segment's rule); every stored time is UTC."""
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError as error:
        raise ValueError("is out of range") from error


SegmentId = Annotated[str | None, BeforeValidator(_id_from_json)]
FreeMap = Annotated[dict[str, Any], BeforeValidator(_empty_map_for_null)]
UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


def _event_name(name: str) -> str:
    """A track event's name must be one journeys can match: the bounds are footprint.models.events'."""
    problem = check_event_name(name)
    if problem:
        raise ValueError(problem)
    return name


EventNameText = Annotated[str, AfterValidator(_event_name)]


class SegmentMessage(BaseModel):
    """The fields every call may carry; each call type below states what it requires."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: EventType
    message_id: SegmentId = Field(default=None, alias="messageId")
    anonymous_id: SegmentId = Field(default=None, alias="anonymousId")
    user_id: SegmentId = Field(default=None, alias="userId")
    previous_id: SegmentId = Field(default=None, alias="previousId")
    group_id: SegmentId = Field(default=None, alias="groupId")
    # Only a track call's event is stored (TrackMessage checks it); other calls store their type.
    event: str | None = None
    name: str | None = None
    category: str | None = None
    properties: FreeMap = Field(default_factory=dict)
    traits: FreeMap = Field(default_factory=dict)
    context: FreeMap = Field(default_factory=dict)
    integrations: FreeMap = Field(default_factory=dict)
    timestamp: UtcDatetime | None = None
    original_timestamp: UtcDatetime | None = Field(default=None, alias="originalTimestamp")
    sent_at: UtcDatetime | None = Field(default=None, alias="sentAt")
    # Accepted for replays of stored payloads and ignored: the server sets receivedAt.
    received_at: UtcDatetime | None = Field(default=None, alias="receivedAt")
    channel: str | None = None
    version: int | str | None = None
    write_key: str | None = Field(default=None, alias="writeKey")
    metadata: FreeMap = Field(default_factory=dict, alias="_metadata")

    @model_validator(mode="before")
    @classmethod
    def _user_hash_into_context(cls, data: Any) -> Any:
        """A top-level ``user_hash`` is read as ``context.user_hash`` (which wins if both are set)."""
        if not isinstance(data, dict) or "user_hash" not in data:
            return data
        moved = {key: value for key, value in data.items() if key != "user_hash"}
        context = moved.get("context")
        if context is None:
            context = {}
        if isinstance(context, dict):
            moved["context"] = {"user_hash": data["user_hash"], **context}
        return moved

    @model_validator(mode="after")
    def _has_an_identity(self) -> SegmentMessage:
        if not (self.anonymous_id or self.user_id):
            raise ValueError("anonymousId or userId is required")
        return self

    @property
    def client_time(self) -> datetime | None:
        """When the client says the call happened (analytics.js: timestamp; RudderStack: originalTimestamp)."""
        return self.original_timestamp or self.timestamp

    @property
    def stored_event_name(self) -> str:
        """The `event` Footprint stores: the track event, else a fixed name per call type."""
        if self.type == "page":
            return PAGE_VIEWED
        if self.type == "screen":
            return SCREEN_VIEWED
        return self.event if self.type == "track" and self.event else self.type


class TrackMessage(SegmentMessage):
    type: Literal["track"] = "track"
    event: EventNameText


class IdentifyMessage(SegmentMessage):
    type: Literal["identify"] = "identify"


class PageMessage(SegmentMessage):
    type: Literal["page"] = "page"


class ScreenMessage(SegmentMessage):
    type: Literal["screen"] = "screen"


class GroupMessage(SegmentMessage):
    type: Literal["group"] = "group"

    @model_validator(mode="after")
    def _names_its_group(self) -> GroupMessage:
        if not self.group_id:
            raise ValueError("groupId is required")
        return self


class AliasMessage(SegmentMessage):
    type: Literal["alias"] = "alias"

    @model_validator(mode="after")
    def _names_both_ids(self) -> AliasMessage:
        if not (self.previous_id and self.user_id):
            raise ValueError("alias needs both previousId and userId")
        return self


MESSAGE_MODELS: dict[str, type[SegmentMessage]] = {
    "track": TrackMessage,
    "identify": IdentifyMessage,
    "page": PageMessage,
    "screen": ScreenMessage,
    "group": GroupMessage,
    "alias": AliasMessage,
}


class SegmentBatch(BaseModel):
    """The envelope of ``POST /v1/batch``: its ``context`` merges under each message's, its
    ``sentAt`` applies to messages that carry none. Messages are validated one by one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    batch: list[Any]
    # analytics-go (and RudderStack's fork) give each request an id of its own; it is not a message's.
    message_id: str | None = Field(default=None, alias="messageId")
    sent_at: UtcDatetime | None = Field(default=None, alias="sentAt")
    # RudderStack's Node SDK stamps the batch with the time it sends it: its sentAt.
    timestamp: UtcDatetime | None = None
    context: FreeMap = Field(default_factory=dict)
    integrations: FreeMap = Field(default_factory=dict)
    write_key: str | None = Field(default=None, alias="writeKey")
    metadata: FreeMap = Field(default_factory=dict, alias="_metadata")


class Source(BaseModel):
    """A website or app that sends events, found by its write key (ConfigTable ``source/{write_key}``)."""

    model_config = ConfigDict(frozen=True)

    source_id: str = Field(min_length=1)
    name: str = ""
    # Browser origins allowed to use the write key: exact ("https://shop.example.com") or with
    # wildcards ("http://localhost:*", "https://*.example.com", "*"). Empty: no browser calls.
    allowed_origins: tuple[str, ...] = ()
    # Rate, daily quota and batch size limits (footprint.models.limits); none by default.
    limits: SourceLimits = SourceLimits()
    # Server-side key that signs userIds (footprint.identity): a browser call naming a known contact
    # counts as that contact only with a valid ``user_hash``. Never shown to browsers or in reprs.
    identity_secret: str | None = Field(default=None, repr=False)
    # A backend's write key, never put in a page: its calls are trusted to name any contact and to
    # set addresses and consent directly (see the trust model in docs/architecture.md). A trusted
    # source accepts no browser origin, so a key pasted into a page by mistake fails loudly.
    trusted: bool = False
    # The key's life (footprint.services.sources): a key rotated out keeps working until
    # ``expires_at`` (the grace period for pages still cached with it); a revoked one never again.
    created_at: UtcDatetime | None = None
    expires_at: UtcDatetime | None = None
    revoked_at: UtcDatetime | None = None

    def usable_at(self, now: datetime) -> bool:
        """Whether the tracking API accepts this write key at ``now``."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)

    @model_validator(mode="after")
    def _trusted_keys_stay_off_pages(self) -> Source:
        if self.trusted and self.allowed_origins:
            raise ValueError("a trusted source is for servers only: it cannot have allowed_origins")
        return self

    def allows_origin(self, origin: str) -> bool:
        return any(origin_matches(origin, pattern) for pattern in self.allowed_origins)


def origin_matches(origin: str, pattern: str) -> bool:
    """Whether a request's Origin header matches one allowed-origin pattern (case-insensitive)."""
    return _origin_regex(pattern.strip().rstrip("/").lower()).fullmatch(origin.strip().lower()) is not None


@lru_cache(maxsize=256)
def _origin_regex(pattern: str) -> re.Pattern[str]:
    if pattern == "*":
        return re.compile(r".*")
    # A wildcard stands for one or more host-name or port characters, never for a scheme separator
    # or a path, so "https://*.example.com" cannot match "https://example.com.evil.test".
    return re.compile("[a-z0-9.-]+".join(re.escape(part) for part in pattern.split("*")))


def corrected_timestamp(*, received_at: datetime, sent_at: datetime | None, client_time: datetime | None) -> datetime:
    """Segment's clock-skew rule: ``receivedAt - (sentAt - originalTimestamp)``.

    The client's clock may be wrong, but the interval between the call and its sending is measured
    on that same clock, so it is applied to the server's receive time. Without ``sentAt`` the
    client's time is taken as is; without any client time, the receive time. Raises
    OverflowError for times so far apart that the result is not a date.
    """
    if client_time is None:
        return received_at
    if sent_at is None:
        return client_time
    return received_at - (sent_at - client_time)


def derive_message_id(message: Mapping[str, Any], call: str | None = None) -> str:
    """A deterministic messageId for a message sent without one.

    Segment libraries always send a messageId; hand-written clients may not. The id is a hash of
    the message's content, leaving out what a retry refreshes (sentAt, writeKey, _metadata), so
    a retried call overwrites its first copy instead of counting twice. The flip side: two
    identical calls without messageId and without timestamp count once; send a messageId (or a
    timestamp) to keep them apart.
    """
    content = {key: value for key, value in message.items() if key not in _VOLATILE_FIELDS}
    if call is not None:
        content.setdefault("type", call)
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "derived-" + hashlib.sha256(canonical.encode("ascii")).hexdigest()[:32]


def serialised_size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON, the measure of Segment's size limits."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
