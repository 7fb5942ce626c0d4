"""Hostile request bodies for the public tracking routes and the admin routes, from a fixed seed.

Each generator mixes known attacks (deep nesting, numbers past Python's 4,300-digit limit, NaN,
times at year 1 or 9999, names that normalise to nothing or are far too long, lone surrogates,
alias bombs) with random mutations of valid requests, so a run is reproducible and still wide.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from typing import Any

SEED = 20261202
HUGE_INT = "9" * 5000
FAR_TIMES = [
    "9999-12-31T23:59:59Z",
    "9999-12-31T00:00:00Z",
    "0001-01-01T00:00:00Z",
    "1969-12-31T23:59:59Z",
    "2150-01-01T00:00:00+14:00",
    "2026-13-45T99:99:99Z",
    "275760-09-13T00:00:00Z",
    "",
    "now",
]
NAMES = ["-", " ", " - ", "\t", "x" * 129, "y" * 512, "z" * 10_000, "İ" * 128, "\u0000", "_", "Product Viewed"]
STRANGE_VALUES: list[Any] = [
    None,
    True,
    -1,
    0,
    2**63,
    1e308,
    -0.0,
    "",
    "\ud800",
    "\u202e",
    [],
    {},
    [[[[[]]]]],
    {"": {"": {}}},
    *FAR_TIMES,
    *NAMES,
]


def deep_json(depth: int, kind: str = "list") -> str:
    return "[" * depth + "]" * depth if kind == "list" else '{"a":' * depth + "1" + "}" * depth


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def valid_track() -> dict[str, Any]:
    return {
        "type": "track",
        "event": "product_viewed",
        "anonymousId": "v1",
        "messageId": "m-1",
        "properties": {"product_id": "vay-nu-he", "dwell_seconds": 16},
        "timestamp": "2026-11-23T09:00:00Z",
        "sentAt": "2026-11-23T09:00:01Z",
    }


def tracking_bodies(rng: random.Random, count: int) -> Iterator[tuple[str, str]]:
    """(what it is, the body text) for POST /v1/*."""
    fixed = [
        ("deep list", deep_json(100_000)),
        ("deep object", deep_json(100_000, "object")),
        ("deep properties", json.dumps({**valid_track(), "properties": nested(60)})),
        ("deeper properties", json.dumps({**valid_track(), "properties": nested(200)})),
        ("huge int", json.dumps(valid_track())[:-1] + f',"n":{HUGE_INT}}}'),
        (
            "huge int in properties",
            json.dumps(valid_track()).replace('"dwell_seconds": 16', f'"dwell_seconds": {HUGE_INT}'),
        ),
        ("NaN", json.dumps(valid_track())[:-1] + ',"n":NaN}'),
        ("Infinity", json.dumps(valid_track())[:-1] + ',"n":1e999}'),
        ("batch of 501", json.dumps({"batch": [valid_track()] * 501})),
        ("batch of junk", json.dumps({"batch": [None, 1, "x", [], {}]})),
        ("batch not a list", json.dumps({"batch": {"0": valid_track()}})),
        ("lone surrogate", json.dumps(valid_track()).replace("v1", "\\ud800")),
    ]
    for when in FAR_TIMES:
        for field in ("timestamp", "originalTimestamp", "sentAt"):
            fixed.append((f"{field} {when!r}", json.dumps({**valid_track(), field: when})))
        fixed.append(
            (f"timestamp {when!r} without sentAt", json.dumps(_without({**valid_track(), "timestamp": when}, "sentAt")))
        )
    for name in NAMES:
        fixed.append((f"event {name[:10]!r}", json.dumps({**valid_track(), "event": name})))
        fixed.append(
            (f"batch event {name[:10]!r}", json.dumps({"batch": [valid_track(), {**valid_track(), "event": name}]}))
        )
    yield from fixed
    yield from _mutations(rng, count, valid_track, lambda body: json.dumps(body, allow_nan=True))


def journey_yaml_bodies(valid_yaml: str, rng: random.Random, count: int) -> Iterator[tuple[str, str]]:
    """(what it is, the body text) for POST /admin/journeys and /admin/journeys/validate."""
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]\n" for i in range(8)
    )
    fixed = [
        ("deep flow list", "a: " + "[" * 100_000),
        ("deep flow map", "a: " + "{a: " * 10_000 + "1" + "}" * 10_000),
        ("deep block map", "".join(" " * depth + "a:\n" for depth in range(3_000)) + " " * 3_000 + "b: 1\n"),
        ("alias bomb", bomb),
        ("huge int version", valid_yaml.replace("\nversion: 1\n", f"\nversion: {HUGE_INT}\n")),
        ("huge int anywhere", valid_yaml + f"\nextra: {HUGE_INT}\n"),
        ("huge float", valid_yaml.replace("\nversion: 1\n", "\nversion: 1e999\n")),
        ("python tag", "!!python/object/apply:os.system ['true']"),
        ("binary", "\x00\x01\x02"),
        ("lone surrogate escape", 'id: "\\ud800"'),
        ("wait of a billion days", valid_yaml.replace("10s", "1000000000d")),
        ("wait of NaN seconds", valid_yaml.replace("10s", ".nan")),
        ("a list", "- 1\n- 2\n"),
        ("a scalar", "hello"),
        ("tabs", "id:\t\tx\n\t- y"),
    ]
    yield from fixed
    lines = valid_yaml.splitlines()
    for index in range(count):
        mutated = list(lines)
        for _ in range(rng.randint(1, 3)):
            position = rng.randrange(len(mutated))
            key, _, _ = mutated[position].partition(":")
            value = rng.choice(
                [HUGE_INT, "[" * 500, "&x [*x]", "9999-12-31T23:59:59Z", "1e999", "''", "{", "- -", ".nan"]
            )
            mutated[position] = f"{key}: {value}" if rng.random() < 0.7 else value
        yield f"mutated journey {index}", "\n".join(mutated)


def simulation_bodies(valid_yaml: str, rng: random.Random, count: int) -> Iterator[tuple[str, str]]:
    """(what it is, the body text) for POST /admin/journeys/simulate."""

    def request(**fields: Any) -> dict[str, Any]:
        event = {"at": "2026-11-23T09:00:00Z", "visitor": "v1", "event": "product_viewed",
                 "properties": {"product_id": "p", "dwell_seconds": 16}}  # fmt: skip
        return {"journey": valid_yaml, "events": [event], **fields}

    fixed: list[tuple[str, Any]] = [
        ("deep list", deep_json(100_000)),
        ("huge int", json.dumps(request())[:-1] + f',"until":{HUGE_INT}}}'),
        ("deep events", '{"journey":"x","events":[' + deep_json(50_000) + "]}"),
    ]
    for when in FAR_TIMES:
        fixed.append((f"event at {when!r}", json.dumps(request(events=[{"at": when, "event": "product_viewed"}]))))
        fixed.append((f"start {when!r}", json.dumps(request(start=when, events=[{"after": "1d", "event": "x"}]))))
    for until in ["1000000000d", "-1d", "nan", "1e999s", "P9999999D", HUGE_INT, ""]:
        fixed.append((f"until {until[:12]!r}", json.dumps(request(until=until))))
    for after in ["9999999d", "1e300s", "-1d", "nan"]:
        fixed.append((f"after {after!r}", json.dumps(request(events=[{"after": after, "event": "product_viewed"}]))))
    for name in NAMES:
        fixed.append((f"event name {name[:10]!r}", json.dumps(request(events=[{"after": "0s", "event": name}]))))
    fixed.append(("events as deep text", json.dumps(request(events=deep_json(10_000)))))
    fixed.append(("journey as deep yaml", json.dumps(request(journey="a: " + "[" * 100_000))))
    fixed.append(("journey with a huge int", json.dumps(request(journey=f"version: {HUGE_INT}"))))
    yield from fixed
    yield from _mutations(rng, count, request, json.dumps)


def source_bodies(rng: random.Random, count: int) -> Iterator[tuple[str, str]]:
    """(what it is, the body text) for POST /admin/sources and PUT .../origins."""

    def request() -> dict[str, Any]:
        return {"source_id": "shop", "name": "Shop", "allowed_origins": ["https://shop.example.com"],
                "limits": {"events_per_second": 10}, "identity_secret": True}  # fmt: skip

    yield ("deep list", deep_json(100_000))
    yield ("deep object", deep_json(100_000, "object"))
    yield ("huge int", f'{{"source_id": "shop", "limits": {{"events_per_day": {HUGE_INT}}}}}')
    for origin in ["https://shop.example.com/x", "javascript:alert(1)", "*" * 5_000, "\u0000", "", " "]:
        yield (f"origin {origin[:12]!r}", json.dumps({"source_id": "shop", "allowed_origins": [origin]}))
    for name in NAMES:
        yield (f"source id {name[:10]!r}", json.dumps({"source_id": name}))
    yield from _mutations(rng, count, request, json.dumps)


QUERY_VALUES = ["", "0", "-1", "nan", HUGE_INT, "9999-12-31T23:59:59Z", "0001-01-01", "\u0000", "x" * 5_000, "1e999"]


def _without(body: dict[str, Any], field: str) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != field}


def _mutations(
    rng: random.Random, count: int, valid: Callable[[], Any], dump: Callable[[Any], str]
) -> Iterator[tuple[str, str]]:
    """Valid requests with one to three values (at any depth) replaced by strange ones."""
    for index in range(count):
        body = valid()
        for _ in range(rng.randint(1, 3)):
            _replace_somewhere(body, rng)
        try:
            text = dump(body)
        except (ValueError, TypeError):  # a value JSON cannot spell: send it as the raw repr
            text = repr(body)
        yield f"mutation {index}", text


def _replace_somewhere(value: Any, rng: random.Random) -> None:
    container = value
    while True:
        keys = list(container) if isinstance(container, dict) else list(range(len(container)))
        if not keys:
            return
        key = rng.choice(keys)
        child = container[key]
        if isinstance(child, dict | list) and child and rng.random() < 0.5:
            container = child
            continue
        container[key] = rng.choice(STRANGE_VALUES) if rng.random() < 0.9 else nested(rng.randint(60, 300))
        return
