"""Cold start cost: importing each handler module in a fresh interpreter, then building its service,
against bare boto3.

Each sample is a new ``python`` process that times the import of the handler (``time.perf_counter``
around it), then the call to the factory its first invocation makes (``SERVICE_FACTORIES``: the
composition root imports a function's adapters and services there, and creates its clients), then
the creation of Powertools' Tracer that a stack with ``Tracing=Active`` adds to the first invocation
(``footprint.tracing``; off by default, so left out of the first two figures), so interpreter
start-up is left out, as it is the same for every Lambda. The samples are interleaved (boto3, track,
evaluate, send, admin, email links, email feedback, boto3, ...) and the median of each is reported
as a ratio to the median of ``import boto3``: every function imports boto3 by its first AWS call,
so 1.0 would mean the rest is free.
One more run per module with ``python -X importtime`` splits the time (import and service) by
top-level package (its own overhead inflates the absolute figures, not the shares).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.tables import markdown_table

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "boto3"
FUNCTIONS = ROOT / "functions"
HANDLERS = {
    "track_handler": FUNCTIONS / "track",
    "evaluate_handler": FUNCTIONS / "evaluate",
    "send_handler": FUNCTIONS / "send",
    "admin_handler": FUNCTIONS / "admin",
    "email_links_handler": FUNCTIONS / "email_links",
    "email_feedback_handler": FUNCTIONS / "email_feedback",
}
# What a handler's first invocation calls before its first AWS call: (module, factory). Admin builds a
# service per route family; journey_admin() is the one behind `footprint publish` and the journeys routes.
SERVICE_FACTORIES = {
    "track_handler": ("footprint.adapters.wiring", "ingest_service"),
    "evaluate_handler": ("footprint.adapters.wiring", "evaluate_service"),
    "send_handler": ("footprint.adapters.send_wiring", "send_service"),
    "admin_handler": ("footprint.adapters.wiring", "journey_admin"),
    "email_links_handler": ("footprint.adapters.email_wiring", "email_link_service"),
    "email_feedback_handler": ("footprint.adapters.email_wiring", "email_feedback_service"),
}
# What a cold start should cost, as ratios to `import boto3` (reported, never asserted).
IMPORT_TARGET = 1.5
READY_TARGET = 2.5
# Loaded only when the stack's Tracing parameter is Active (footprint.tracing).
TRACING_ONLY = ("aws_xray_sdk",)
# pywebpush and what it imports at module level (aiohttp for its async API, which send never uses):
# loaded only when a web push is sent.
WEB_PUSH_ONLY = (
    "pywebpush",
    "py_vapid",
    "http_ece",
    "aiohttp",
    "aiohappyeyeballs",
    "aiosignal",
    "frozenlist",
    "multidict",
    "propcache",
    "yarl",
)
# Modules a function could load but never calls before its first AWS call (a regression guard: each was
# loaded once). Tracing is off, as the template deploys it by default.
UNUSED_BY = {
    "track_handler": (
        *TRACING_ONLY,
        *WEB_PUSH_ONLY,
        "footprint.engine",
        "footprint.models.journey",
        "footprint.services.journeys",
        "footprint.services.profiles",
        "footprint.adapters.enrollments_store",
        "footprint.adapters.timers",
    ),
    "evaluate_handler": (
        *TRACING_ONLY,
        *WEB_PUSH_ONLY,
        "footprint.engine.simulator",
        "footprint.models.segment",
        "footprint.services.ingest",
        "footprint.adapters.events_store",
        "footprint.adapters.sources",
    ),
    "send_handler": (*TRACING_ONLY, *WEB_PUSH_ONLY, "footprint.engine", "footprint.models.journey"),
    "admin_handler": (*TRACING_ONLY, *WEB_PUSH_ONLY),
    "email_links_handler": (*TRACING_ONLY, *WEB_PUSH_ONLY, "footprint.engine", "footprint.models.journey"),
    "email_feedback_handler": (*TRACING_ONLY, *WEB_PUSH_ONLY, "footprint.engine", "footprint.models.journey"),
}
# One interpreter: import the module, call the factory (if named), then create the Tracer as a stack with
# Tracing=Active does at the first invocation (enabled, so it patches botocore and the rest as in Lambda).
TIMER = (
    "import importlib, sys, time\n"
    "sys.path.insert(0, sys.argv[2])\n"
    "started = time.perf_counter()\n"
    "importlib.import_module(sys.argv[1])\n"
    "imported = time.perf_counter()\n"
    "if len(sys.argv) > 3:\n"
    "    getattr(importlib.import_module(sys.argv[3]), sys.argv[4])()\n"
    "ready = time.perf_counter()\n"
    "if len(sys.argv) > 3:\n"
    "    from aws_lambda_powertools import Tracer\n"
    "    Tracer(disabled=False)\n"
    "print(imported - started, ready - started, time.perf_counter() - started)\n"
)
# Placeholders for the settings every function gets from the template (no AWS call is made).
SETTINGS_ENVIRONMENT = {
    "EVENTS_TABLE": "footprint-events",
    "PROFILES_TABLE": "footprint-profiles",
    "CONFIG_TABLE": "footprint-config",
    "MESSAGES_TABLE": "footprint-messages",
    "IDEMPOTENCY_TABLE": "footprint-idempotency",
    "STEPS_TABLE": "footprint-steps",
    # The channels a deployed stack configures by default (send builds each one's sender on first use).
    "SENDER_EMAIL": "noreply@example.com",
    "VAPID_SECRET_NAME": "footprint/vapid",
    "EMAIL_LINK_SECRET_NAME": "footprint-email-links",
    "PUBLIC_API_URL": "https://track.example.com",
}


@dataclass(frozen=True)
class Sample:
    imported: float  # seconds to import the module
    ready: float  # seconds to import it and build its service (the same as ``imported`` for boto3)
    traced: float = 0.0  # ``ready`` plus creating Powertools' Tracer, as with Tracing=Active (0: not measured)


@dataclass(frozen=True)
class ImportResult:
    repeats: int
    samples: dict[str, list[Sample]]  # module -> one per fresh interpreter
    shares: dict[str, list[tuple[str, float]]]  # handler -> (top-level package, share of import + service)
    unused: dict[str, float]  # handler -> share of import + service spent in modules it never calls (UNUSED_BY)

    def median(self, module: str) -> float:
        return statistics.median(sample.imported for sample in self.samples[module])

    def median_ready(self, module: str) -> float:
        return statistics.median(sample.ready for sample in self.samples[module])

    def ratio(self, module: str) -> float:
        """Importing the module, over importing boto3."""
        return self.median(module) / self.median(BASELINE)

    def ready_ratio(self, module: str) -> float:
        """Importing the module and building its service (a cold start before its first AWS call), over
        importing boto3."""
        return self.median_ready(module) / self.median(BASELINE)

    def traced_ratio(self, module: str) -> float:
        """The same with the stack's Tracing parameter Active (Powertools' Tracer and the X-Ray SDK loaded)."""
        return statistics.median(sample.traced for sample in self.samples[module]) / self.median(BASELINE)


def _environment() -> dict[str, str]:
    """A Lambda-like environment: Powertools as the template deploys it by default (Tracing=PassThrough, so
    POWERTOOLS_TRACE_DISABLED=true), no AWS call is made at import."""
    environment = {name: value for name, value in os.environ.items() if not name.startswith("POWERTOOLS_")}
    environment.update(
        {
            "AWS_DEFAULT_REGION": "us-east-1",
            "POWERTOOLS_SERVICE_NAME": "footprint",
            "POWERTOOLS_TRACE_DISABLED": "true",
            **SETTINGS_ENVIRONMENT,
        }
    )
    return environment


def time_import(module: str, path: Path | None = None, factory: tuple[str, str] | None = None) -> Sample:
    """Import ``module`` in a fresh interpreter, then call ``factory`` (module, function) if given."""
    completed = subprocess.run(
        [sys.executable, "-c", TIMER, module, str(path or ROOT), *(factory or ())],
        capture_output=True,
        text=True,
        check=True,
        env=_environment(),
        cwd=ROOT,
    )
    imported, ready, traced = completed.stdout.strip().splitlines()[-1].split()
    return Sample(float(imported), float(ready), float(traced))


def import_profile(module: str, path: Path, factory: tuple[str, str] | None = None) -> dict[str, int]:
    """Self time in microseconds per imported module (``-X importtime``), the factory's imports included."""
    build = f"; from {factory[0]} import {factory[1]}; {factory[1]}()" if factory else ""
    completed = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-c",
            f"import sys; sys.path.insert(0, {str(path)!r}); import {module}{build}",
        ],
        capture_output=True,
        text=True,
        check=True,
        env=_environment(),
        cwd=ROOT,
    )
    profile: dict[str, int] = {}
    for line in completed.stderr.splitlines():
        if line.startswith("import time:") and "self [us]" not in line:
            self_us, name = _parse(line)
            profile[name] = profile.get(name, 0) + self_us
    return profile


def package_shares(profile: dict[str, int], top: int = 6) -> list[tuple[str, float]]:
    """The largest top-level packages by self time, as shares of the whole import."""
    by_package: Counter[str] = Counter()
    for name, micros in profile.items():
        by_package[name.split(".")[0]] += micros
    total = sum(by_package.values()) or 1
    return [(package, micros / total) for package, micros in by_package.most_common(top)]


def unused_share(profile: dict[str, int], prefixes: tuple[str, ...]) -> float:
    total = sum(profile.values()) or 1
    unused = sum(micros for name, micros in profile.items() if name.startswith(prefixes))
    return unused / total


def _parse(line: str) -> tuple[int, str]:
    """``import time: <self us> | <cumulative us> | <indent><name>`` -> (self us, name)."""
    self_us, _, name = line.removeprefix("import time:").split("|", 2)
    return int(self_us.strip()), name.strip()


def run(repeats: int = 7, breakdown: bool = True) -> ImportResult:
    samples: dict[str, list[Sample]] = {BASELINE: [], **{name: [] for name in HANDLERS}}
    for _ in range(repeats):
        samples[BASELINE].append(time_import(BASELINE))
        for name, path in HANDLERS.items():
            samples[name].append(time_import(name, path, SERVICE_FACTORIES[name]))
    shares: dict[str, list[tuple[str, float]]] = {}
    unused: dict[str, float] = {}
    if breakdown:
        for name, path in HANDLERS.items():
            profile = import_profile(name, path, SERVICE_FACTORIES[name])
            shares[name] = package_shares(profile)
            if name in UNUSED_BY:
                unused[name] = unused_share(profile, UNUSED_BY[name])
    return ImportResult(repeats=repeats, samples=samples, shares=shares, unused=unused)


def report(result: ImportResult) -> str:
    def ratio(value: float, target: float) -> str:
        return f"{value:.2f}x" + ("" if value <= target else f" (over {target}x)")

    rows = [
        [
            name,
            ratio(result.ratio(name), IMPORT_TARGET),
            ratio(result.ready_ratio(name), READY_TARGET),
            f"{result.traced_ratio(name):.2f}x",
            f"{100 * result.unused[name]:.0f} %" if name in result.unused else "",
            ", ".join(f"{package} {100 * share:.0f} %" for package, share in result.shares.get(name, [])),
        ]
        for name in HANDLERS
    ]
    common = (*TRACING_ONLY, *WEB_PUSH_ONLY)
    lines = [
        "## Import (cold start) cost",
        "",
        f"Median of {result.repeats} fresh interpreters per module, interleaved; ratio to `import boto3` "
        f"(on this machine boto3 took {1000 * result.median(BASELINE):.0f} ms, for orientation only). "
        "'+ service' adds the factory the first invocation calls: "
        + ", ".join(f"{name}: {factory}()" for name, (_, factory) in SERVICE_FACTORIES.items())
        + f". Targets: import {IMPORT_TARGET}x, import + service {READY_TARGET}x. Tracing off (the template's "
        "default); the Tracing=Active column adds creating Powertools' Tracer, as the first invocation then does.",
        "",
        markdown_table(
            [
                "handler module",
                "import / import boto3",
                "import + service / import boto3",
                "+ Tracer (Tracing=Active) / import boto3",
                "in modules it never calls",
                "largest shares of import + service (-X importtime, self time by package)",
            ],
            rows,
        ),
        "",
        f"Modules checked as never called: by every handler, {', '.join(common)}; "
        + "; ".join(
            f"{name}: {', '.join(prefix for prefix in prefixes if prefix not in common)}"
            for name, prefixes in UNUSED_BY.items()
            if set(prefixes) - set(common)
        ),
    ]
    return "\n".join(lines)
