"""In-memory fakes of Footprint's ports, kept honest by contract tests run against the real adapters."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from footprint.models import keys
from footprint.models.messages import DeliveryRecord, OutgoingMessage
from footprint.models.profile import Profile
from footprint.services.profiles import AlreadyAppliedError, ConcurrentUpdateError, ProfileCommit
from footprint.services.send import CALLING_PROVIDER, CLAIMED, Claim, ClaimState


class InMemoryProfileStore:
    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}
        self.profiles: dict[str, Profile] = {}
        self.applied: set[tuple[str, str]] = set()

    def get_aliases(self, alias_pks: Iterable[str]) -> dict[str, str]:
        return {pk: self.aliases[pk] for pk in alias_pks if pk in self.aliases}

    def get_profiles(self, profile_ids: Iterable[str]) -> dict[str, Profile]:
        return {pid: self.profiles[pid] for pid in profile_ids if pid in self.profiles}

    def commit(self, change: ProfileCommit) -> None:
        event = change.event
        key = keys.applied_marker_key(event.source_id, event.visitor_id, event.message_id)
        marker = (key["pk"], key["sk"])
        if marker in self.applied:
            raise AlreadyAppliedError(key["pk"])
        for profile, read_revision in change.profiles:
            current = self.profiles.get(profile.profile_id)
            if (current.revision if current else 0) != read_revision:
                raise ConcurrentUpdateError(profile.profile_id)
        self.applied.add(marker)
        for profile, _ in change.profiles:
            self.profiles[profile.profile_id] = profile
        self.aliases.update(change.aliases)


@dataclass
class OutboxRow:
    """One MessagesTable row: an open claim ("claimed", "calling_provider") or a settled record."""

    state: str
    attempt_id: str
    claimed_at: datetime
    record: DeliveryRecord | None = None

    @property
    def is_open(self) -> bool:
        return self.state in (CLAIMED, CALLING_PROVIDER)


class InMemoryOutbox:
    """The Outbox protocol of footprint.services.send, with DynamoOutbox's rules
    (tests/integration/test_outbox_contract.py runs the same cases against both)."""

    def __init__(self) -> None:
        self.rows: dict[str, OutboxRow] = {}

    @property
    def records(self) -> dict[str, DeliveryRecord]:
        return {key: row.record for key, row in self.rows.items() if row.record is not None}

    @property
    def open_claims(self) -> dict[str, OutboxRow]:
        return {key: row for key, row in self.rows.items() if row.is_open}

    def claim(self, message: OutgoingMessage, attempt_id: str, at: datetime) -> Claim:
        key = message.idempotency_key
        if key in self.rows:
            return self._claim_in(key, attempt_id)
        self.rows[key] = OutboxRow(CLAIMED, attempt_id, at)
        return self._claim_in(key, attempt_id)

    def take_over(self, message: OutgoingMessage, stale: Claim, attempt_id: str, at: datetime) -> Claim:
        key = message.idempotency_key
        row = self.rows.get(key)
        if row and row.is_open and (row.attempt_id, row.state) == (stale.attempt_id, stale.state):
            self.rows[key] = OutboxRow(CLAIMED, attempt_id, at)
        return self._claim_in(key, attempt_id)

    def mark_calling(self, idempotency_key: str, attempt_id: str, at: datetime) -> bool:
        row = self.rows.get(idempotency_key)
        if row is None or not row.is_open or row.attempt_id != attempt_id:
            return False
        row.state = CALLING_PROVIDER
        return True

    def settle(self, record: DeliveryRecord, attempt_id: str) -> bool:
        row = self.rows.get(record.idempotency_key)
        if row is None or row.attempt_id != attempt_id:
            return False
        if row.is_open:
            self.rows[record.idempotency_key] = OutboxRow(record.status, attempt_id, row.claimed_at, record)
        return True

    def release(self, idempotency_key: str, attempt_id: str) -> None:
        row = self.rows.get(idempotency_key)
        if row is not None and row.is_open and row.attempt_id == attempt_id:
            del self.rows[idempotency_key]

    def _claim_in(self, key: str, attempt_id: str) -> Claim:
        row = self.rows.get(key)
        if row is None:
            return Claim(acquired=False)
        if row.record is not None:
            return Claim(acquired=False, settled=row.record)
        state: ClaimState = CALLING_PROVIDER if row.state == CALLING_PROVIDER else CLAIMED
        return Claim(
            acquired=row.attempt_id == attempt_id and state == CLAIMED,
            attempt_id=row.attempt_id,
            state=state,
            claimed_at=row.claimed_at,
        )
