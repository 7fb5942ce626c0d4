"""Identity resolution and profile updates, run by evaluate for every new event.

Why evaluate and not track: track answers the browser after one batched write and must not wait
on reads; resolving identity and merging profiles needs reads and conditional writes, so it runs
off the request path, on the stream. Each event is folded exactly once: the profile write and an
"applied" marker item (ProfilesTable, expiring after a day) commit in one DynamoDB transaction, so
a redelivered stream record finds the marker and leaves the profile alone (its journeys still run;
they dedupe on their own). The marker is not on the event item because a re-sent messageId
overwrites that item.

Identity follows the trust model (docs/architecture.md): only a call whose userId is vouched for
(``TrackedEvent.identity_verified``) finds, binds or merges by userId. Any other call belongs to
the browser's own anonymous visitor, whatever userId it names. Two profiles that each have a
userId (two people on one shared browser) are merged only by a trusted source's ``alias`` call.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from footprint.models import keys
from footprint.models.events import TrackedEvent
from footprint.models.profile import Profile, fold_event, merge_profiles, new_profile, profile_id_for

AliasKind = Literal["anon", "user"]
MAX_REDIRECTS = 3
MAX_ATTEMPTS = 5


def alias_key(source_id: str, kind: AliasKind, value: str) -> str:
    """The alias item's partition key (see footprint.models.keys)."""
    return keys.alias_key(source_id, kind, value)["pk"]


class ConcurrentUpdateError(Exception):
    """Another writer changed a profile between our read and our write; re-read and retry."""


class AlreadyAppliedError(Exception):
    """The event was folded into its profile by an earlier delivery."""


@dataclass(frozen=True)
class ProfileCommit:
    """Everything one event changes, written atomically."""

    event: TrackedEvent
    applied_at: datetime
    # (profile, revision it was read at; 0 = must not exist yet)
    profiles: list[tuple[Profile, int]] = field(default_factory=list)
    # alias key -> profile id
    aliases: dict[str, str] = field(default_factory=dict)


class ProfileStore(Protocol):
    def get_aliases(self, keys: Iterable[str]) -> dict[str, str]: ...

    def get_profiles(self, profile_ids: Iterable[str]) -> dict[str, Profile]: ...

    def commit(self, change: ProfileCommit) -> None:
        """Write atomically; raise AlreadyAppliedError or ConcurrentUpdateError."""
        ...


@dataclass(frozen=True)
class ProfileUpdate:
    profile: Profile
    merged_from: str | None = None
    already_applied: bool = False
    # The person was deleted (a data-rights request): the event is dropped, nothing is written.
    deleted: bool = False


class ProfileService:
    def __init__(self, store: ProfileStore) -> None:
        self.store = store

    def apply(self, event: TrackedEvent, now: datetime) -> ProfileUpdate:
        """Resolve who ``event`` belongs to, merge identities if it reveals one, fold it in."""
        for _ in range(MAX_ATTEMPTS):
            target, other, known_aliases = self._resolve(event)
            profiles = self._load([target, *([other] if other else [])])
            current = profiles.get(target) or new_profile(target, event.source_id)
            target = current.profile_id  # a stale alias may have redirected us
            if _someone_else(current, event):
                # The browser is known as another contact (a shared computer): this login gets the
                # profile of its own userId, and the browser's alias follows it.
                target = profile_id_for(event.source_id, "user", event.user_id or "")
                profiles |= self._load([target])
                current = profiles.get(target) or new_profile(target, event.source_id)
                other = None
            if current.deleted_at is not None:
                return ProfileUpdate(profile=current, deleted=True)
            to_write: list[tuple[Profile, int]] = []
            aliases = self._event_aliases(event, target)
            merged_from = None
            loser = profiles.get(other) if other else None
            if (
                loser is not None
                and loser.deleted_at is None
                and loser.profile_id != target
                and _may_merge(event, current, loser)
            ):
                current, merged_loser = merge_profiles(current, loser)
                to_write.append((merged_loser.model_copy(update={"revision": loser.revision + 1}), loser.revision))
                aliases |= {alias_key(event.source_id, "anon", a): target for a in loser.anonymous_ids}
                if loser.user_id:
                    aliases[alias_key(event.source_id, "user", loser.user_id)] = target
                merged_from = loser.profile_id
            folded = fold_event(current, event)
            base_revision = profiles[target].revision if target in profiles else 0
            to_write.insert(0, (folded.model_copy(update={"revision": base_revision + 1}), base_revision))
            # Only aliases that are new or point elsewhere are written (most events change none).
            aliases = {key: pid for key, pid in aliases.items() if known_aliases.get(key) != pid}
            try:
                self.store.commit(ProfileCommit(event=event, applied_at=now, profiles=to_write, aliases=aliases))
            except AlreadyAppliedError:
                existing = self._load([target]).get(target) or current
                return ProfileUpdate(profile=existing, already_applied=True)
            except ConcurrentUpdateError:
                continue
            return ProfileUpdate(profile=to_write[0][0], merged_from=merged_from)
        raise ConcurrentUpdateError(f"profile of {event.visitor_id} kept changing; retried {MAX_ATTEMPTS} times")

    def _resolve(self, event: TrackedEvent) -> tuple[str, str | None, dict[str, str]]:
        """The profile this event belongs to, another one it reveals to be the same person, and
        the aliases found on the way."""
        src = event.source_id
        if not event.identity_verified:
            # Nobody vouches for the userId: the call is its browser's own (a call with only a
            # userId is a visitor of its own, apart from the contact of that userId).
            own = _own_alias(event)
            found = self.store.get_aliases([own])
            return found.get(own, profile_id_for(src, "anon", event.visitor_id)), None, found
        user_ids = [event.user_id] if event.user_id else []
        anon_ids = [event.anonymous_id] if event.anonymous_id else []
        if event.type == "alias" and event.previous_id:
            # alias(previousId -> userId): previousId may be an old anonymous id or, from a trusted
            # source only, a user id (a signed userId proves nothing about another one).
            anon_ids.append(event.previous_id)
            if event.trust == "server":
                user_ids.append(event.previous_id)
        lookup = [alias_key(src, "user", u) for u in user_ids] + [alias_key(src, "anon", a) for a in anon_ids]
        found = self.store.get_aliases(lookup)
        by_user = next((found[alias_key(src, "user", u)] for u in user_ids if alias_key(src, "user", u) in found), None)
        others = [found[k] for k in lookup if k in found]
        if by_user:
            return by_user, next((p for p in others if p != by_user), None), found
        if others:
            target = others[0]
            return target, next((p for p in others if p != target), None), found
        if event.user_id:
            return profile_id_for(src, "user", event.user_id), None, found
        return profile_id_for(src, "anon", event.visitor_id), None, found

    def _load(self, profile_ids: list[str]) -> dict[str, Profile]:
        """Load profiles, following merge redirects (a stale alias may point at a merged profile)."""
        loaded = self.store.get_profiles(profile_ids)
        result: dict[str, Profile] = {}
        for wanted in profile_ids:
            profile = loaded.get(wanted)
            hops = 0
            while profile is not None and profile.merged_into and hops < MAX_REDIRECTS:
                profile = self.store.get_profiles([profile.merged_into]).get(profile.merged_into)
                hops += 1
            if profile is not None:
                result[wanted] = profile
        # A redirect means the caller's id is stale: key the result by the live profile too.
        return {**result, **{p.profile_id: p for p in result.values()}}

    @staticmethod
    def _event_aliases(event: TrackedEvent, target: str) -> dict[str, str]:
        if not event.identity_verified:
            return {_own_alias(event): target}
        aliases: dict[str, str] = {}
        if event.anonymous_id:
            aliases[alias_key(event.source_id, "anon", event.anonymous_id)] = target
        if event.user_id:
            aliases[alias_key(event.source_id, "user", event.user_id)] = target
        return aliases


def _own_alias(event: TrackedEvent) -> str:
    """The alias of the visitor a call nobody vouches for belongs to: its anonymous id, else the
    id it came with, in the anonymous namespace (so it never reaches the contact of that userId)."""
    return alias_key(event.source_id, "anon", event.visitor_id)


def _someone_else(profile: Profile, event: TrackedEvent) -> bool:
    """Whether a vouched-for userId finds its browser's profile bound to a different userId."""
    return bool(event.identity_verified and event.user_id and profile.user_id and profile.user_id != event.user_id)


def _may_merge(event: TrackedEvent, winner: Profile, loser: Profile) -> bool:
    """Two contacts (each with its own userId) merge only by a trusted ``alias``; an anonymous
    profile merges into the contact a vouched-for call names."""
    both_known = winner.user_id and loser.user_id and winner.user_id != loser.user_id
    return not both_known or (event.trust == "server" and event.type == "alias")


# ---------------------------------------------------------------- reading a profile (send, email links, the send API)

# A message for an anonymous profile that has since merged into a known contact goes to the contact.
MAX_MERGE_REDIRECTS = 3


class ProfileLookup(Protocol):
    def get_profile(self, profile_id: str) -> Profile | None: ...


def live_profile(profiles: ProfileLookup, profile_id: str) -> Profile | None:
    """The profile, or the known contact it was merged into (following at most MAX_MERGE_REDIRECTS)."""
    profile = profiles.get_profile(profile_id)
    for _ in range(MAX_MERGE_REDIRECTS):
        if profile is None or not profile.merged_into:
            break
        profile = profiles.get_profile(profile.merged_into)
    # A deleted person is no one to send to (their tombstone only stops late events re-creating them).
    return None if profile is None or profile.deleted_at else profile
