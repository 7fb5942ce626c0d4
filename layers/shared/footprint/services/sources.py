"""Sources and their write keys, the use cases behind ``/admin/sources`` and ``footprint sources``:
create, list, rotate, revoke and change allowed origins.

A source (a site, an app, a backend) is a ``source_id`` with one or more write keys; each key is its own
ConfigTable item ``source/{write_key}`` holding the whole Source (what the tracking API reads, see
footprint.adapters.sources), so a browser key and a trusted backend key of one source differ in
``trusted`` and ``allowed_origins``. Keys are named in the API by ``key_id``, a digest of the key:
an operator can rotate or revoke a trusted key without pasting the secret into a command line.

- **create** makes a new random key (and, asked for, an ``identity_secret`` to sign userIds). The
  answer is the only time a trusted key or an identity secret is shown in full.
- **rotate** makes a new key with the same settings; the old one keeps working for a grace period
  (default 24 h: pages and apps still cached with it), then the tracking API refuses it.
- **revoke** ends a key now (a leaked key). The item stays, marked, as the record of when.

The tracking API caches a source for ``SourceCacheSeconds`` in each warm function, so a revocation or
an origin change takes effect within that time.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from footprint.models.limits import SourceLimits
from footprint.models.segment import Source
from footprint.services.admin_api import (
    DEFAULT_ROTATION_GRACE,
    InvalidSourceError,
    KeyRevokedError,
    SourceError,
    UnknownKeyError,
)

SOURCE_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
MAX_ROTATION_GRACE = timedelta(days=30)
KEY_ID_LENGTH = 12
_Model = TypeVar("_Model", bound=BaseModel)


class SourceKeyStore(Protocol):
    """Write keys and their sources (footprint.adapters.source_keys on ConfigTable)."""

    def create(self, write_key: str, source: Source) -> None:
        """Store a new key; raises KeyError if the key exists (never overwrite a key)."""
        ...

    def replace(self, write_key: str, source: Source) -> None:
        """Store new settings for an existing key."""
        ...

    def all(self) -> list[tuple[str, Source]]: ...


def key_id(write_key: str) -> str:
    """The name of a write key in the admin API and the CLI (not secret: it cannot be reversed)."""
    return hashlib.sha256(write_key.encode()).hexdigest()[:KEY_ID_LENGTH]


def new_write_key() -> str:
    """32 URL-safe characters, 192 random bits (Segment's keys are 32 characters too)."""
    return secrets.token_urlsafe(24)


class SourceRequest(BaseModel):
    """POST /admin/sources."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source_id: str = Field(pattern=SOURCE_ID_PATTERN)
    name: str = Field(default="", max_length=200)
    allowed_origins: tuple[str, ...] = ()
    trusted: bool = False
    limits: SourceLimits = SourceLimits()
    # Make an identity secret the site's backend signs userIds with (footprint.identity).
    identity_secret: bool = False


class OriginsRequest(BaseModel):
    """PUT /admin/sources/keys/{key_id}/origins."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allowed_origins: tuple[str, ...]


KeyStatus = Literal["active", "expiring", "expired", "revoked"]


class SourceKeyView(BaseModel):
    """A write key as listed. A browser key is public (it is in every page) and shown in full; a
    trusted key only by its first characters."""

    model_config = ConfigDict(frozen=True)

    key_id: str
    write_key: str
    source_id: str
    name: str
    trusted: bool
    allowed_origins: tuple[str, ...]
    limits: dict[str, Any]
    has_identity_secret: bool
    status: KeyStatus
    created_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, write_key: str, source: Source, now: datetime, *, reveal: bool = False) -> SourceKeyView:
        shown = write_key if reveal or not source.trusted else write_key[:4] + "…"
        return cls(
            key_id=key_id(write_key),
            write_key=shown,
            source_id=source.source_id,
            name=source.name,
            trusted=source.trusted,
            allowed_origins=source.allowed_origins,
            limits=source.limits.model_dump(exclude_none=True),
            has_identity_secret=source.identity_secret is not None,
            status=_status(source, now),
            created_at=source.created_at,
            expires_at=source.expires_at,
            revoked_at=source.revoked_at,
        )


class CreatedKey(BaseModel):
    """The answer to create and rotate: the new key in full, and the identity secret if one was
    made. Shown once; Footprint's API never shows a trusted key or an identity secret again."""

    model_config = ConfigDict(frozen=True)

    key: SourceKeyView
    identity_secret: str | None = None
    replaced: SourceKeyView | None = None


class SourceAdmin:
    def __init__(
        self,
        store: SourceKeyStore,
        now: Callable[[], datetime],
        make_key: Callable[[], str] = new_write_key,
    ) -> None:
        self.store = store
        self.now = now
        self.make_key = make_key

    def list_keys(self, source_id: str | None = None) -> list[SourceKeyView]:
        now = self.now()
        keys = [
            SourceKeyView.of(write_key, source, now)
            for write_key, source in self.store.all()
            if source_id is None or source.source_id == source_id
        ]
        return sorted(
            keys, key=lambda view: (view.source_id, view.created_at or datetime.min.replace(tzinfo=now.tzinfo))
        )

    def create(self, body: Mapping[str, Any]) -> CreatedKey:
        request = _parse(SourceRequest, body)
        identity_secret = secrets.token_urlsafe(32) if request.identity_secret else None
        source = _valid_source(
            source_id=request.source_id,
            name=request.name,
            allowed_origins=request.allowed_origins,
            trusted=request.trusted,
            limits=request.limits,
            identity_secret=identity_secret,
            created_at=self.now(),
        )
        write_key = self._store_new(source)
        return CreatedKey(
            key=SourceKeyView.of(write_key, source, self.now(), reveal=True), identity_secret=identity_secret
        )

    def rotate(self, key: str, grace: timedelta = DEFAULT_ROTATION_GRACE) -> CreatedKey:
        if not timedelta(0) <= grace <= MAX_ROTATION_GRACE:
            raise InvalidSourceError(
                "invalid_grace", f"the grace period must be between 0 and {MAX_ROTATION_GRACE.days} days"
            )
        old_key, old = self._find(key)
        now = self.now()
        if not old.usable_at(now):
            raise KeyRevokedError("key_not_usable", f"key {key} is {_status(old, now)}: create a new key instead")
        new = old.model_copy(update={"created_at": now, "expires_at": None, "revoked_at": None})
        write_key = self._store_new(new)
        # The old key ends at the end of the grace period, or at its own earlier end.
        ends = now + grace if old.expires_at is None else min(old.expires_at, now + grace)
        retired = old.model_copy(update={"expires_at": ends})
        self.store.replace(old_key, retired)
        return CreatedKey(
            key=SourceKeyView.of(write_key, new, now, reveal=True),
            replaced=SourceKeyView.of(old_key, retired, now),
        )

    def revoke(self, key: str) -> SourceKeyView:
        write_key, source = self._find(key)
        now = self.now()
        if source.revoked_at is None:  # revoking twice keeps the first time
            source = source.model_copy(update={"revoked_at": now})
            self.store.replace(write_key, source)
        return SourceKeyView.of(write_key, source, now)

    def set_origins(self, key: str, body: Mapping[str, Any]) -> SourceKeyView:
        request = _parse(OriginsRequest, body)
        write_key, source = self._find(key)
        now = self.now()
        if source.revoked_at is not None:
            raise KeyRevokedError("key_not_usable", f"key {key} is revoked")
        changed = _valid_source(**{**source.model_dump(), "allowed_origins": request.allowed_origins})
        self.store.replace(write_key, changed)
        return SourceKeyView.of(write_key, changed, now)

    def _find(self, key: str) -> tuple[str, Source]:
        for write_key, source in self.store.all():
            if key_id(write_key) == key:
                return write_key, source
        raise UnknownKeyError("unknown_key", f"no write key has key_id {key!r}; see GET /admin/sources")

    def _store_new(self, source: Source) -> str:
        for _ in range(3):  # a collision of 192 random bits does not happen; a retry costs nothing
            write_key = self.make_key()
            try:
                self.store.create(write_key, source)
            except KeyError:
                continue
            return write_key
        raise SourceError("key_collision", "could not make a new write key; retry")


def _status(source: Source, now: datetime) -> KeyStatus:
    if source.revoked_at is not None:
        return "revoked"
    if source.expires_at is None:
        return "active"
    return "expiring" if now < source.expires_at else "expired"


def _valid_source(**fields: Any) -> Source:
    origins = fields.get("allowed_origins") or ()
    problems = [
        {"location": f"body.allowed_origins.{index}", "message": message}
        for index, origin in enumerate(origins)
        if (message := origin_problem(origin))
    ]
    if problems:
        raise InvalidSourceError(
            "invalid_origin", "an allowed origin is not a scheme, host and optional port", problems
        )
    try:
        return Source(**fields)
    except ValidationError as error:
        raise InvalidSourceError("invalid_source", _first_reason(error), _problems(error)) from error


_ORIGIN = re.compile(r"^(\*|https?://[a-z0-9*.-]+(:(\d{1,5}|\*))?)$")


def origin_problem(origin: str) -> str | None:
    """What is wrong with an allowed-origin pattern (a browser's Origin: scheme://host[:port], no path)."""
    if not _ORIGIN.fullmatch(origin.strip().rstrip("/").lower()):
        return (
            f"{origin!r} is not an origin such as https://shop.example.com, https://*.example.com or http://localhost:*"
        )
    return None


def _parse(model: type[_Model], body: Mapping[str, Any]) -> _Model:
    try:
        return model.model_validate(body)
    except ValidationError as error:
        raise InvalidSourceError("invalid_source", _first_reason(error), _problems(error)) from error


def _problems(error: ValidationError) -> list[dict[str, str]]:
    return [{"location": ".".join(["body", *map(str, item["loc"])]), "message": item["msg"]} for item in error.errors()]


def _first_reason(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(map(str, first["loc"])) or "body"
    return f"{where}: {first['msg']}"
