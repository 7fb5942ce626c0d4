"""In-memory fakes of Footprint's ports, kept honest by contract tests run against the real adapters."""

from __future__ import annotations

from collections.abc import Iterable

from footprint.models import keys
from footprint.models.profile import Profile
from footprint.services.profiles import AlreadyAppliedError, ConcurrentUpdateError, ProfileCommit


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
