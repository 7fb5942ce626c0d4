"""A person's data rights (Vietnam's Decree 13/2023, GDPR): export everything Footprint holds about
them, and delete it, through ``POST /admin/people/export`` and ``/admin/people/delete`` and
``footprint people export|delete``.

A person is named as their source and one of their ids: ``user_id``, ``anonymous_id`` or
``profile_id``; the request covers the known contact that id belongs to and every anonymous visitor
merged into it (footprint.adapters.person_data lists where that data lives).

Deleting removes it all, cancels their pending wake-ups and leaves, for ``TOMBSTONE_DAYS``, a
tombstone per profile and alias (holding ids only, expiring by DynamoDB TTL) so that events already
in flight (a stream retry, a queued wake-up, a page still open) are dropped rather than re-creating
the person; a send already queued finds no one to send to. The deletion is recorded in ConfigTable
(``deletion/<id>``): when, by whom, and how many items of each kind, with the person named only by
a digest of their id.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from footprint.models.profile import Profile
from footprint.services.admin_api import InvalidRequestError, PersonNotFoundError

TOMBSTONE_DAYS = 30
MAX_EXPORTED_EVENTS = 10_000  # an admin API answer (6 MB at most); the CLI exports everything


class PersonRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source_id: str = Field(min_length=1, max_length=64)
    user_id: str | None = Field(default=None, min_length=1, max_length=256)
    anonymous_id: str | None = Field(default=None, min_length=1, max_length=256)
    profile_id: str | None = Field(default=None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _one_id(self) -> PersonRequest:
        if sum(value is not None for value in (self.user_id, self.anonymous_id, self.profile_id)) != 1:
            raise ValueError("name the person by exactly one of user_id, anonymous_id, profile_id")
        return self

    @property
    def subject(self) -> str:
        """The person in the deletion record: a digest, not the id."""
        kind, value = next((k, v) for k in ("user_id", "anonymous_id", "profile_id") if (v := getattr(self, k)))
        return hashlib.sha256(f"{self.source_id}\x1f{kind}\x1f{value}".encode()).hexdigest()

    def named_profile_id(self, aliases: AliasLookup) -> str | None:
        """The profile the request names: its profile_id, or the one its user or anonymous id belongs to."""
        if self.profile_id is not None:
            return self.profile_id
        if self.user_id is not None:
            return aliases.profile_id_for_alias(self.source_id, "user", self.user_id)
        return aliases.profile_id_for_alias(self.source_id, "anon", self.anonymous_id or "")


class AliasLookup(Protocol):
    def profile_id_for_alias(self, source_id: str, kind: str, value: str) -> str | None: ...


class PersonStore(Protocol):
    """footprint.adapters.person_data.DynamoPersonData."""

    def profile_id_for_alias(self, source_id: str, kind: str, value: str) -> str | None: ...
    def collect(self, profile_id: str) -> Any: ...
    def delete(self, found: Any, *, deleted_at: datetime, tombstone_expires_at: datetime) -> dict[str, int]: ...


class DeletionLog(Protocol):
    def record(self, record: DeletionRecord) -> None: ...


class DeletionRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    deletion_id: str
    subject: str
    source_id: str
    requested_by: str
    deleted_at: datetime
    tombstones_expire_at: datetime
    deleted: dict[str, int]


class PersonExport(BaseModel):
    model_config = ConfigDict(frozen=True)

    source_id: str
    profile_ids: list[str]
    exported_at: datetime
    profiles: list[dict[str, Any]]
    aliases: list[dict[str, str]]
    events: list[dict[str, Any]]
    enrollments: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    truncated: bool = False


class DataRights:
    def __init__(self, store: PersonStore, log: DeletionLog, now: Callable[[], datetime]) -> None:
        self.store = store
        self.log = log
        self.now = now

    def export(self, body: Mapping[str, Any], *, max_events: int | None = MAX_EXPORTED_EVENTS) -> PersonExport:
        request = parse_person_request(body)
        found = self._found(request)
        events = [_event(item) for item in found.events]
        truncated = max_events is not None and len(events) > max_events
        return PersonExport(
            source_id=request.source_id,
            profile_ids=found.profile_ids,
            exported_at=self.now(),
            profiles=[_profile(profile) for profile in found.profiles],
            aliases=[{"alias": item["pk"]["S"], "profile_id": item["profile_id"]["S"]} for item in found.aliases],
            events=events[:max_events] if truncated else events,
            enrollments=[enrollment.model_dump(mode="json") for enrollment in found.enrollments],
            steps=[_plain(item) for item in found.steps],
            messages=[_plain(item) for item in found.messages],
            truncated=truncated,
        )

    def delete(self, body: Mapping[str, Any], *, requested_by: str = "") -> DeletionRecord:
        request = parse_person_request(body)
        found = self._found(request)
        now = self.now()
        expires = now + timedelta(days=TOMBSTONE_DAYS)
        deleted = self.store.delete(found, deleted_at=now, tombstone_expires_at=expires)
        record = DeletionRecord(
            deletion_id=f"del_{uuid.uuid4().hex}",
            subject=request.subject,
            source_id=request.source_id,
            requested_by=requested_by,
            deleted_at=now,
            tombstones_expire_at=expires,
            deleted=deleted,
        )
        self.log.record(record)
        return record

    def _found(self, request: PersonRequest) -> Any:
        profile_id = request.named_profile_id(self.store)
        found = self.store.collect(profile_id) if profile_id else None
        profiles: list[Profile] = found.profiles if found is not None else []
        live = [profile for profile in profiles if profile.deleted_at is None]
        if not live or any(profile.source_id != request.source_id for profile in profiles):
            raise PersonNotFoundError("unknown_person", f"no person of source {request.source_id!r} has this id")
        return found


def parse_person_request(body: Mapping[str, Any]) -> PersonRequest:
    try:
        return PersonRequest.model_validate(body)
    except ValidationError as error:
        problems = [{"location": ".".join(["body", *map(str, e["loc"])]), "message": e["msg"]} for e in error.errors()]
        raise InvalidRequestError("invalid_person", problems[0]["message"], problems) from error


def _profile(profile: Profile) -> dict[str, Any]:
    return profile.model_dump(mode="json", exclude={"revision"})


def _event(item: dict[str, Any]) -> dict[str, Any]:
    body = item.get("body", {}).get("S")
    return json.loads(body) if body else _plain(item)


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    """A low-level DynamoDB item as plain JSON values (strings, numbers, nested JSON decoded)."""
    plain: dict[str, Any] = {}
    for name, value in item.items():
        kind, raw = next(iter(value.items()))
        if kind == "N":
            plain[name] = float(raw) if "." in raw else int(raw)
        elif kind == "S" and name in ("data", "body", "rendered", "content") and raw[:1] in "{[":
            plain[name] = json.loads(raw)
        elif kind in ("S", "BOOL"):
            plain[name] = raw
        elif kind == "NULL":
            plain[name] = None
        else:
            plain[name] = raw if isinstance(raw, str | int | float | bool) else json.loads(json.dumps(raw, default=str))
    return plain
