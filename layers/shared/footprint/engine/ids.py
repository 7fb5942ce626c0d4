"""Deterministic ids: a retried step must produce the same ids, so every id is derived, never random."""

from __future__ import annotations

import hashlib

_SEPARATOR = "\x1f"


def _digest(*parts: object) -> str:
    return hashlib.sha256(_SEPARATOR.join(str(part) for part in parts).encode()).hexdigest()


def enrollment_id(profile_id: str, journey_id: str, entry_seq: int) -> str:
    """One id per (visitor, journey, n-th entry attempt)."""
    return f"enr_{_digest(profile_id, journey_id, entry_seq)[:24]}"


def wake_up_id(enrollment_id_: str, token: str) -> str:
    """Safe as an EventBridge Scheduler schedule name (1-64 chars of [0-9a-zA-Z-_.])."""
    return f"{enrollment_id_}-{token}"


def idempotency_key(journey_id: str, journey_version: int, enrollment_id_: str, node_id: str, occurrence: int) -> str:
    """The key of one send: the same step of the same enrollment always has the same key."""
    return f"{journey_id}.v{journey_version}.{enrollment_id_}.{node_id}.{occurrence}"


def step_key(enrollment_id_: str, node_id: str, occurrence: int, outcome: str) -> str:
    """Unique per recorded step, so a re-run step records once (a conditional put on this key)."""
    return f"{enrollment_id_}.{node_id}.{occurrence}.{outcome}"


def split_point(profile_id: str, journey_id: str, node_id: str) -> float:
    """A stable number in [0, 1) for (visitor, journey, split node): the same branch on every retry
    and every re-entry, independent of other splits."""
    return int(_digest("split", profile_id, journey_id, node_id)[:15], 16) / 16**15
