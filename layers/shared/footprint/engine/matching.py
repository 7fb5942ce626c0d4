"""Does an event, a profile or a history match a journey's conditions? Pure predicates."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from footprint.engine.inputs import EventInput, ProfileView, lookup
from footprint.engine.state import TriggerSnapshot
from footprint.models.journey import (
    AttributeCondition,
    BranchCondition,
    Comparison,
    EventHistoryCheck,
    EventMatch,
    Operator,
    ProfileCheck,
    PropertyCondition,
    ReachableCheck,
    TriggerPropertyCheck,
)


def compare(found: bool, actual: Any, op: Operator, expected: Any) -> bool:
    """``actual <op> expected``; a missing value only satisfies ``ne`` and ``exists: false``.
    Values that cannot be compared (a number against a word) do not match instead of failing."""
    if op == "exists":
        return found == (expected is not False)
    if not found or actual is None:
        return op == "ne" and expected is not None
    actual, expected = _coerce(actual, expected)
    try:
        match op:
            case "eq":
                return _equal(actual, expected)
            case "ne":
                return not _equal(actual, expected)
            case "gt":
                return bool(actual > expected)
            case "gte":
                return bool(actual >= expected)
            case "lt":
                return bool(actual < expected)
            case "lte":
                return bool(actual <= expected)
            case "in":
                return any(_equal(actual, option) for option in expected)
            case "contains":
                if isinstance(actual, str):
                    return isinstance(expected, str) and expected.casefold() in actual.casefold()
                if isinstance(actual, Mapping):
                    return expected in actual
                if isinstance(actual, Iterable):
                    return expected in list(actual)
                return False
    except TypeError:
        return False
    return False


def _coerce(actual: Any, expected: Any) -> tuple[Any, Any]:
    """Browsers send numbers as strings ("15"); compare them as numbers when the other side is one."""
    if _is_number(expected) and isinstance(actual, str):
        return _to_number(actual, actual), expected
    if _is_number(actual) and isinstance(expected, str):
        return actual, _to_number(expected, expected)
    if isinstance(actual, datetime) and isinstance(expected, str):
        return actual.isoformat(), expected
    return actual, expected


def _equal(actual: Any, expected: Any) -> bool:
    left, right = _coerce(actual, expected)
    return bool(left == right)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _to_number(text: str, fallback: Any) -> Any:
    try:
        return float(text)
    except ValueError:
        return fallback


def matches_properties(conditions: Iterable[PropertyCondition], properties: Mapping[str, Any]) -> bool:
    """All property conditions hold for ``properties``."""
    return all(_holds(condition, *lookup(dict(properties), condition.property)) for condition in conditions)


def matches_audience(conditions: Iterable[AttributeCondition], profile: ProfileView) -> bool:
    return all(_holds(condition, *profile.attribute(condition.attribute)) for condition in conditions)


def _holds(condition: Comparison, found: bool, actual: Any) -> bool:
    return compare(found, actual, condition.op, condition.value)


def correlated(keys: Iterable[str], properties: Mapping[str, Any], trigger: TriggerSnapshot) -> bool:
    """The event carries the same value as the trigger event for every key (both must have it)."""
    for key in keys:
        found, value = lookup(dict(properties), key)
        trigger_found, trigger_value = lookup(trigger.properties, key)
        if not (found and trigger_found) or value != trigger_value:
            return False
    return True


def matches_event(match: EventMatch, event: EventInput, trigger: TriggerSnapshot) -> bool:
    return (
        event.name == match.event
        and matches_properties(match.where, event.properties)
        and correlated(match.match_property, event.properties, trigger)
    )


def branch_condition_holds(
    condition: BranchCondition, profile: ProfileView, trigger: TriggerSnapshot, now: datetime
) -> bool:
    match condition:
        case ProfileCheck():
            return _holds(condition, *profile.attribute(condition.attribute))
        case TriggerPropertyCheck():
            return _holds(condition, *lookup(trigger.properties, condition.property))
        case EventHistoryCheck():
            since = now - condition.within
            recent = [stamp for stamp in profile.event_history.get(condition.event, []) if since <= stamp <= now]
            return len(recent) >= condition.min_count
        case ReachableCheck():
            return profile.can_reach(condition.channel)
