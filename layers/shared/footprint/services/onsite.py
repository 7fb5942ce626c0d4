"""The visitor's side of the tracking API: the browser script, its settings, the onsite inbox, outcomes.

Routes (track_handler; the contract is docs/architecture.md, "The visitor's side"):
- ``GET /footprint.js``, ``GET /footprint-sw.js``: the script and the service worker, with a strong
  ETag (a hash of the file) so a browser revalidates with a 304.
- ``GET /v1/projects/{writeKey}/settings``: what the script needs to know (VAPID public key, the
  dwell thresholds active journeys wait for, session and polling periods).
- ``POST /v1/onsite``: the onsite messages queued for this visitor and not shown yet.
- ``POST /v1/onsite/ack``: the browser showed a message, or the visitor clicked, dismissed or
  submitted it; recorded as an outcome event through ingest, like any tracking call.

Who the visitor is: the browser's own ``anonymousId`` (random, kept in its cookie), found through
the identity aliases evaluate keeps. A ``userId`` counts only with a valid ``user_hash`` (an HMAC
made by the site's backend, footprint.identity): the write key is public, so knowing someone's
userId must not show their messages. A visitor never learns whether another visitor's message
exists: unknown and foreign message ids are both 404.

Why POST for the inbox: the visitor's ids are credentials of sorts, and a GET would put them in
URLs (logs, proxies, Referer); a ``text/plain`` POST also needs no CORS preflight.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from footprint import clock
from footprint.identity import verify_user_hash
from footprint.models import keys
from footprint.models.events import EventType, canonical_event_name
from footprint.models.journey import Journey
from footprint.models.messages import DeliveryRecord
from footprint.models.profile import SESSION_GAP, Profile
from footprint.models.segment import MAX_ID_BYTES, Source
from footprint.services.ingest import MAX_WRITE_KEY_LENGTH, IngestResult, check_origin, read_json_object
from footprint.services.tracking import (
    IdentityRequiredError,
    IngestError,
    InvalidPayloadError,
    NotFoundError,
    TrackingRequest,
)

ONSITE_CHANNELS = frozenset({"onsite_form", "onsite_push"})
# At most this many messages per answer, oldest first: the script shows one at a time anyway.
MAX_INBOX_MESSAGES = 5
# A queued onsite message older than this is no longer shown (a consult form days later is noise).
ONSITE_MESSAGE_LIFETIME = timedelta(days=1)
# How often an open page asks for new messages (the script may also ask right after a tracked event).
ONSITE_POLL_SECONDS = 15
# Profiles merged into the visitor's may still hold queued messages; the newest few are looked at.
MAX_MERGED_PROFILES = 4
MAX_MERGE_REDIRECTS = 3
# Consult form fields that are channel addresses or the name: they become traits (identify).
FIELD_TRAITS = {"email": "email", "phone": "phone", "full_name": "name"}
MAX_FORM_FIELDS = 30
MAX_FIELD_CHARS = 1000
DWELL_PROPERTY = "dwell_seconds"
DWELL_EVENT = "product_viewed"
DWELL_OPERATORS = frozenset({"gte", "gt", "eq"})

Action = Literal["shown", "clicked", "dismissed", "submitted"]
Body = TypeVar("Body", bound=BaseModel)


# ---------------------------------------------------------------- ports


class SourceDirectory(Protocol):
    def find_source(self, write_key: str) -> Source | None: ...


class EventIntake(Protocol):
    """footprint.services.ingest.IngestService: authenticate a request, store events through ingest."""

    def authenticate(self, authorization: str | None, payload: Mapping[str, Any]) -> Source: ...

    def accept(self, source: Source, payload: dict[str, Any], call: EventType | None = None) -> IngestResult: ...


class ProfileReader(Protocol):
    """footprint.adapters.profiles_store.DynamoProfileStore's reads."""

    def get_aliases(self, alias_pks: Iterable[str]) -> dict[str, str]: ...

    def get_profiles(self, profile_ids: Iterable[str]) -> dict[str, Profile]: ...


class OnsiteInbox(Protocol):
    """footprint.adapters.outbox.DynamoOutbox's inbox side."""

    def pending_onsite(
        self, profile_id: str, *, since: datetime | None = None, limit: int | None = None
    ) -> list[DeliveryRecord]: ...

    def get(self, idempotency_key: str) -> DeliveryRecord | None: ...

    def mark_onsite_shown(self, idempotency_key: str, at: datetime | None = None) -> None: ...


class ActiveJourneys(Protocol):
    def active(self) -> list[Journey]: ...


class WebAssets(Protocol):
    def read(self, name: str) -> bytes:
        """The file's bytes; KeyError for a name that is not served."""
        ...


# ---------------------------------------------------------------- requests and answers


class VisitorBody(BaseModel):
    """The part of a browser's body that says who it is (extra fields are ignored: scripts evolve)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    anonymous_id: str | None = Field(default=None, alias="anonymousId", min_length=1)
    user_id: str | None = Field(default=None, alias="userId", min_length=1)
    user_hash: str | None = Field(default=None, max_length=256)


class AckBody(VisitorBody):
    message_id: str = Field(min_length=1, max_length=MAX_ID_BYTES)
    action: Action
    fields: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class Answer:
    """A JSON body and the origin to name in Access-Control-Allow-Origin (None: not a browser call)."""

    body: dict[str, Any]
    allowed_origin: str | None = None


@dataclass(frozen=True)
class StaticAnswer:
    status: int
    body: bytes
    etag: str


@dataclass(frozen=True)
class Visitor:
    source: Source
    anonymous_id: str | None
    # Set only when its user_hash was valid.
    user_id: str | None
    # The profiles whose inbox is this visitor's: the live profile and those merged into it.
    profile_ids: tuple[str, ...] = field(default_factory=tuple)


# ---------------------------------------------------------------- the use cases


class OnsiteService:
    def __init__(
        self,
        *,
        sources: SourceDirectory,
        intake: EventIntake,
        profiles: ProfileReader,
        inbox: OnsiteInbox,
        journeys: ActiveJourneys,
        assets: WebAssets,
        vapid_public_key: str = "",
        now: Callable[[], datetime] = clock.now,
    ) -> None:
        self.sources = sources
        self.intake = intake
        self.profiles = profiles
        self.inbox = inbox
        self.journeys = journeys
        self.assets = assets
        self.vapid_public_key = vapid_public_key
        self.now = now

    # ------------------------------------------------------------ GET /footprint.js, /footprint-sw.js

    def script(self, name: str, if_none_match: str | None) -> StaticAnswer:
        body = self.assets.read(name)
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        if if_none_match and _etag_matches(if_none_match, etag):
            return StaticAnswer(304, b"", etag)
        return StaticAnswer(200, body, etag)

    # ------------------------------------------------------------ GET /v1/projects/{writeKey}/settings

    def settings(
        self, write_key: str, origin: str | None, api_host: str | None = None, scheme: str = "https"
    ) -> Answer:
        """footprint.js' settings, in the same answer as analytics.js' CDN settings (``integrations``,
        ``plan``): analytics.js loaded with ``cdnURL`` pointing here sends to this stack unchanged."""
        source = None
        if 0 < len(write_key) <= MAX_WRITE_KEY_LENGTH and write_key.isprintable():
            source = self.sources.find_source(write_key)
        if source is None or not source.usable_at(self.now()):
            raise NotFoundError("unknown_write_key", "no source has this write key")
        check_origin(source, origin)
        body = {
            "source_id": source.source_id,
            "vapid_public_key": self.vapid_public_key or None,
            "web_push": bool(self.vapid_public_key),
            "dwell_thresholds": dwell_thresholds(self.journeys.active()),
            "session_timeout_minutes": int(SESSION_GAP.total_seconds() // 60),
            "onsite_poll_seconds": ONSITE_POLL_SECONDS,
        }
        if api_host:
            body |= analytics_js_settings(write_key, api_host, scheme)
        return Answer(body, origin)

    # ------------------------------------------------------------ POST /v1/onsite

    def pending(self, request: TrackingRequest) -> Answer:
        payload, source = self._authenticated(request)
        with _cors_on_errors(request.origin):
            visitor = self._visitor(source, _parse(VisitorBody, payload))
            since = self.now() - ONSITE_MESSAGE_LIFETIME
            records: dict[str, DeliveryRecord] = {}
            for profile_id in visitor.profile_ids:
                for record in self.inbox.pending_onsite(profile_id, since=since, limit=MAX_INBOX_MESSAGES):
                    records[record.idempotency_key] = record
            oldest_first = sorted(records.values(), key=lambda record: record.sent_at)[:MAX_INBOX_MESSAGES]
            return Answer({"messages": [inbox_message(record) for record in oldest_first]}, request.origin)

    # ------------------------------------------------------------ POST /v1/onsite/ack

    def ack(self, request: TrackingRequest) -> Answer:
        payload, source = self._authenticated(request)
        with _cors_on_errors(request.origin):
            body = _parse(AckBody, payload)
            visitor = self._visitor(source, body)
            record = self.inbox.get(body.message_id)
            if record is None or record.channel not in ONSITE_CHANNELS or record.profile_id not in visitor.profile_ids:
                raise NotFoundError("message_not_found", "this visitor has no such message")
            if body.action == "submitted" and record.channel != "onsite_form":
                raise InvalidPayloadError("invalid_action", "only an onsite form can be submitted")
            # Whatever the visitor did, the message was on the page: it leaves the inbox (idempotent).
            self.inbox.mark_onsite_shown(record.idempotency_key, self.now())
            messages = outcome_messages(visitor, record, body.action, _form_fields(body.fields))
            self.intake.accept(source, {"batch": messages})
            return Answer({"success": True}, request.origin)

    # ------------------------------------------------------------ who is asking

    def _authenticated(self, request: TrackingRequest) -> tuple[dict[str, Any], Source]:
        payload = read_json_object(request)
        source = self.intake.authenticate(request.authorization, payload)
        check_origin(source, request.origin)
        return payload, source

    def _visitor(self, source: Source, body: VisitorBody) -> Visitor:
        user_id = body.user_id
        if user_id is not None and not verify_user_hash(source.identity_secret, user_id, body.user_hash):
            raise IdentityRequiredError(
                "identity_required",
                "a userId counts only with its user_hash (the HMAC-SHA256 of the userId your backend makes "
                "with the source's identity secret); send the anonymousId alone otherwise",
            )
        if body.anonymous_id is None and user_id is None:
            raise InvalidPayloadError("invalid_payload", "anonymousId (or a signed userId) is required")
        alias_pks = [keys.alias_key(source.source_id, "user", user_id)["pk"]] if user_id else []
        if body.anonymous_id:
            alias_pks.append(keys.alias_key(source.source_id, "anon", body.anonymous_id)["pk"])
        found = self.profiles.get_aliases(alias_pks)
        aliased = list(dict.fromkeys(found[pk] for pk in alias_pks if pk in found))
        return Visitor(source, body.anonymous_id, user_id, self._inbox_profile_ids(aliased))

    def _inbox_profile_ids(self, aliased: list[str]) -> tuple[str, ...]:
        """The profiles the aliases name, the live ones they were merged into, and the profiles merged
        into those (their queued messages are this visitor's too)."""
        ids: list[str] = list(aliased)
        wanted = list(aliased)
        for _ in range(MAX_MERGE_REDIRECTS + 1):
            if not wanted:
                break
            loaded = self.profiles.get_profiles(wanted)
            wanted = []
            for profile in loaded.values():
                if profile.merged_into:
                    if profile.merged_into not in ids:
                        ids.append(profile.merged_into)
                        wanted.append(profile.merged_into)
                    continue
                ids.extend(pid for pid in profile.merged_profile_ids[-MAX_MERGED_PROFILES:] if pid not in ids)
        return tuple(ids)


# ---------------------------------------------------------------- pure helpers


def analytics_js_settings(write_key: str, api_host: str, scheme: str) -> dict[str, Any]:
    """What Segment's CDN answers at /v1/projects/{writeKey}/settings, pointed at this stack: the
    Segment.io destination (the events' API, analytics.js' short paths /v1/t, /v1/p, ...) and a
    plan that lets every event through."""
    return {
        "integrations": {
            "Segment.io": {
                "apiKey": write_key,
                "apiHost": f"{api_host}/v1",
                "protocol": scheme if scheme in ("http", "https") else "https",
                "unbundledIntegrations": [],
                "addBundledMetadata": True,
            }
        },
        "plan": {
            "track": {"__default": {"enabled": True, "integrations": {}}},
            "identify": {"__default": {"enabled": True}},
            "group": {"__default": {"enabled": True}},
        },
        "edgeFunction": {},
        "analyticsNextEnabled": True,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "metrics": {"sampleRate": 0},
        "legacyVideoPluginsEnabled": False,
        "remotePlugins": [],
    }


def dwell_thresholds(journeys: Iterable[Journey]) -> list[int | float]:
    """Sorted distinct ``dwell_seconds`` values that active journeys' ``product_viewed`` triggers
    compare with (gte, gt, eq): the moments the script reports a reading time."""
    found: set[int | float] = set()
    for journey in journeys:
        trigger = journey.trigger
        if canonical_event_name(trigger.event) != DWELL_EVENT:
            continue
        for condition in trigger.where:
            value = condition.value
            if condition.property != DWELL_PROPERTY or condition.op not in DWELL_OPERATORS:
                continue
            if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
                found.add(int(value) if float(value).is_integer() else float(value))
    return sorted(found)


def inbox_message(record: DeliveryRecord) -> dict[str, Any]:
    return {
        "message_id": record.idempotency_key,
        "channel": record.channel,
        "journey_id": record.journey_id,
        "node_id": record.node_id,
        "enrollment_id": record.enrollment_id,
        "content": record.rendered,
        "queued_at": record.sent_at.isoformat(),
        "expires_at": (record.sent_at + ONSITE_MESSAGE_LIFETIME).isoformat(),
    }


def outcome_event(channel: str, action: Action) -> str:
    match action:
        case "shown":
            return "message_shown"
        case "clicked":
            return "message_clicked"
        case "dismissed":
            return "form_dismissed" if channel == "onsite_form" else "message_dismissed"
        case "submitted":
            return "form_submitted"


def outcome_messages(
    visitor: Visitor, record: DeliveryRecord, action: Action, fields: dict[str, str | bool | int | float]
) -> list[dict[str, Any]]:
    """The Segment messages an ack records: the outcome event (messageId ``{message_id}:{action}``, so a
    retried ack is stored once) and, for a submitted form, an identify with the address fields."""
    ids: dict[str, str] = {}
    if visitor.anonymous_id:
        ids["anonymousId"] = visitor.anonymous_id
    if visitor.user_id:
        ids["userId"] = visitor.user_id
    about = {
        "message_id": record.idempotency_key,
        "journey_id": record.journey_id,
        "node_id": record.node_id,
        "enrollment_id": record.enrollment_id,
        "channel": record.channel,
    }
    properties: dict[str, Any] = dict(about)
    messages: list[dict[str, Any]] = []
    if action == "submitted":
        # The message's own properties win over form fields of the same name (match_message needs them).
        properties = {**fields, **about}
        consent_text = record.rendered.get("consent_text")
        if consent_text:
            # What the visitor agreed to, word for word; an address typed into a page is not proven yet,
            # so marketing waits for its confirmation (the trust model, docs/architecture.md).
            properties |= {"consent_text": str(consent_text), "consent_status": "pending_confirmation"}
        traits = {trait: fields[name] for name, trait in FIELD_TRAITS.items() if isinstance(fields.get(name), str)}
        if traits:
            identify_id = f"{record.idempotency_key}:{action}:identify"
            identify: dict[str, Any] = {"type": "identify", "messageId": identify_id, **ids, "traits": traits}
            if consent_text:  # kept with the consent it leaves pending (Profile.consent_log)
                identify["context"] = {"consent_text": str(consent_text)}
            messages.append(identify)
    messages.append(
        {
            "type": "track",
            "event": outcome_event(record.channel, action),
            "messageId": f"{record.idempotency_key}:{action}",
            **ids,
            "properties": properties,
        }
    )
    return messages


def _form_fields(raw: Mapping[str, Any]) -> dict[str, str | bool | int | float]:
    """Form values as the visitor typed them: scalars only, bounded, empty ones left out."""
    if len(raw) > MAX_FORM_FIELDS:
        raise InvalidPayloadError("invalid_payload", f"a form has at most {MAX_FORM_FIELDS} fields")
    fields: dict[str, str | bool | int | float] = {}
    for name, value in raw.items():
        if not isinstance(value, str | bool | int | float) or len(str(name)) > 64:
            raise InvalidPayloadError("invalid_payload", f"field {str(name)[:64]!r} must be a short text value")
        kept = value.strip()[:MAX_FIELD_CHARS] if isinstance(value, str) else value
        if kept != "":
            fields[str(name)] = kept
    return fields


def _parse(model: type[Body], payload: Mapping[str, Any]) -> Body:
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        errors = [
            {"location": ".".join(str(part) for part in detail["loc"]) or "body", "message": detail["msg"]}
            for detail in error.errors(include_url=False)
        ]
        raise InvalidPayloadError("invalid_payload", f"{len(errors)} problem(s) in the body", errors) from error


def _etag_matches(if_none_match: str, etag: str) -> bool:
    candidates = [candidate.strip().removeprefix("W/") for candidate in if_none_match.split(",")]
    return "*" in candidates or etag in candidates


@contextmanager
def _cors_on_errors(origin: str | None) -> Iterator[None]:
    """An error after the origin was checked still names the origin, so the page can read it (a 429's
    Retry-After, a 403's reason)."""
    try:
        yield
    except IngestError as error:
        if origin is not None:
            error.allowed_origin = origin
        raise
