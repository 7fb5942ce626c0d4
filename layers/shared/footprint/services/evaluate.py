"""What evaluate does with each new event and each wake-up: profile first, then journeys."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pydantic import ValidationError

from footprint.clock import Clock
from footprint.engine import Decision, EventInput, WakeUp
from footprint.models.events import TrackedEvent
from footprint.models.profile import Profile
from footprint.services.journeys import EnrollmentConflictError, JourneyService
from footprint.services.poison import PoisonRecordError
from footprint.services.profiles import ProfileService, ProfileUpdate

MAX_MERGE_HOPS = 3


class ProfileReader(Protocol):
    def get_profile(self, profile_id: str) -> Profile | None: ...


def event_from_stream_image(new_image: Mapping[str, Any]) -> TrackedEvent:
    """The TrackedEvent inside an EventsTable stream record (low-level attribute values)."""
    try:
        return TrackedEvent.model_validate_json(new_image["body"]["S"])
    except (KeyError, TypeError, ValidationError) as error:
        raise PoisonRecordError(f"not an event item: {error}") from error


def wake_up_from_body(body: str) -> WakeUp:
    try:
        return WakeUp.model_validate_json(body)
    except ValidationError as error:
        raise PoisonRecordError(f"not a wake-up: {error}") from error


@dataclass
class EvaluateService:
    profiles: ProfileService
    profile_reader: ProfileReader
    journeys: JourneyService
    clock: Clock

    def on_stream_image(self, new_image: Mapping[str, Any]) -> ProfileUpdate:
        event = event_from_stream_image(new_image)
        now = self.clock.now()
        update = self.profiles.apply(event, now=now)
        if update.deleted:
            return update  # in flight when the person was deleted: dropped, no journey sees it
        if update.merged_from:
            self.journeys.adopt(update.merged_from, update.profile, now)
        elif update.already_applied:
            # A previous run may have stopped between the merge and the adoption; adoption is idempotent.
            for merged in update.profile.merged_profile_ids:
                self.journeys.adopt(merged, update.profile, now)
        # Also on a redelivery (already_applied): journeys dedupe by event id themselves, and a
        # previous run may have stopped before reaching them.
        self.journeys.on_event(update.profile, EventInput.from_tracked(event), now)
        return update

    def on_timer(self, body: str) -> Decision | None:
        wake_up = wake_up_from_body(body)
        now = self.clock.now()
        profile_id = wake_up.profile_id
        for _ in range(MAX_MERGE_HOPS + 1):
            profile = self._live_profile(profile_id, now)
            if profile is None or profile.deleted_at is not None:
                return None  # the person was deleted (a data-rights request): nothing left to do
            conflict: EnrollmentConflictError | None = None
            try:
                decision = self.journeys.on_wake_up(profile, wake_up, now)
            except EnrollmentConflictError as error:
                decision, conflict = None, error
            if conflict is None and (decision is None or decision.note != "stale_wake_up"):
                return decision
            # Stale or conflicting: a login may have merged the profile after we read it, moving the
            # enrollment this wake-up belongs to. Read again; if it redirects now, follow it there.
            fresh = self.profile_reader.get_profile(profile.profile_id)
            if fresh is None or not fresh.merged_into:
                if conflict is not None:
                    raise conflict
                return decision
            profile_id = profile.profile_id
        return None

    def _live_profile(self, profile_id: str, now: datetime) -> Profile | None:
        """The profile, or the known contact it was merged into (moving its journeys there first)."""
        profile = self.profile_reader.get_profile(profile_id)
        hops = 0
        while profile is not None and profile.merged_into and hops < MAX_MERGE_HOPS:
            # The visitor became a known contact since this timer was set: their journeys moved there.
            merged_id = profile.profile_id
            profile = self.profile_reader.get_profile(profile.merged_into)
            if profile is not None:
                self.journeys.adopt(merged_id, profile, now)
            hops += 1
        return profile
