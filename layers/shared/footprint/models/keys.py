"""Every DynamoDB key Footprint writes, in one place (docs/architecture.md lists the tables)."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from typing import Literal

PROFILE_SK = "profile"
ALIAS_SK = "alias"
MESSAGE_SK = "message"
ENROLLMENT_PREFIX = "enrollment#"
RECENT_PREFIX = "recent#"
# StepsTable spreads each journey's steps over this many partitions (a report queries them all).
STEP_SHARDS = 10


def event_key(source_id: str, visitor_id: str, message_id: str) -> dict[str, str]:
    """EventsTable: one item per (source, visitor, messageId); a re-sent message lands on the same item."""
    return {"pk": f"visitor#{source_id}#{visitor_id}", "sk": f"event#{message_id}"}


def applied_marker_key(source_id: str, visitor_id: str, message_id: str) -> dict[str, str]:
    """ProfilesTable: "this event is folded into its profile" (expires once redelivery is impossible)."""
    return {"pk": f"applied#{source_id}#{visitor_id}#{message_id}", "sk": "applied"}


def profile_key(profile_id: str) -> dict[str, str]:
    return {"pk": f"profile#{profile_id}", "sk": PROFILE_SK}


def alias_key(source_id: str, kind: Literal["anon", "user"], value: str) -> dict[str, str]:
    """ProfilesTable: which profile an anonymous id or a user id belongs to."""
    return {"pk": f"alias#{source_id}#{kind}#{value}", "sk": ALIAS_SK}


def enrollment_key(profile_id: str, slot: str) -> dict[str, str]:
    """ProfilesTable: a visitor's place in one journey (``slot``: the journey id, or for a journey
    that runs per occurrence the journey id and a digest of it), next to the profile (one Query loads all)."""
    return {"pk": f"profile#{profile_id}", "sk": f"{ENROLLMENT_PREFIX}{slot}"}


def recent_event_key(profile_id: str, name: str, at: datetime, message_id: str) -> dict[str, str]:
    """ProfilesTable: one event an ``unless`` looks back for, next to the profile, sorted by its time."""
    return {"pk": f"profile#{profile_id}", "sk": f"{RECENT_PREFIX}{name}#{step_time(at)}#{message_id}"}


def recent_event_range(profile_id: str, name: str, since: datetime) -> tuple[dict[str, str], str]:
    """The key where a profile's ``name`` events stamped at or after ``since`` start, and the sort key
    past the last of them (for ``sk BETWEEN``)."""
    return (
        {"pk": f"profile#{profile_id}", "sk": f"{RECENT_PREFIX}{name}#{step_time(since)}"},
        f"{RECENT_PREFIX}{name}#~",
    )


def message_key(idempotency_key: str) -> dict[str, str]:
    return {"pk": f"message#{idempotency_key}", "sk": MESSAGE_SK}


def step_shard(enrollment_id: str) -> int:
    """The shard of an enrollment's steps: stable across processes (a digest, not Python's salted hash)."""
    return int(hashlib.sha256(enrollment_id.encode()).hexdigest()[:8], 16) % STEP_SHARDS


def step_partition(journey_id: str, shard: int) -> str:
    return f"journey#{journey_id}#{shard}"


def step_time(moment: datetime) -> str:
    """A step's time as its sort key starts: fixed width, so keys sort by time and time windows are ranges."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def step_key(journey_id: str, enrollment_id: str, at: datetime, key: str) -> dict[str, str]:
    """StepsTable: one item per recorded step (``key`` is the engine's step key, unique per step), so
    recording the same step again lands on the same item. Write-sharded by enrollment: one busy journey
    is ten partitions, not one hot one."""
    return {"pk": step_partition(journey_id, step_shard(enrollment_id)), "sk": f"{step_time(at)}#{key}"}


def source_parameter(write_key: str) -> str:
    """ConfigTable id of a source, looked up by its write key."""
    return f"source/{write_key}"


def quota_counter(source_id: str, day: date) -> str:
    """ConfigTable id of a source's accepted-event counter for one UTC day (footprint.services.quotas)."""
    return f"quota/{source_id}/{day.isoformat()}"
