"""Import (cold start) cost: importing each handler module in a fresh interpreter, against bare boto3.

Each sample is a new ``python`` process that times only the import (``time.perf_counter`` around
it), so interpreter start-up is left out, as it is the same for every Lambda. The samples are
interleaved (boto3, track, evaluate, send, boto3, ...) and the median of each is reported as a
ratio to the median of ``import boto3``: every handler imports boto3 too, so 1.0 would mean the
rest is free. One more run per module with ``python -X importtime`` splits the time by top-level
package (its own overhead inflates the absolute figures, not the shares).
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
HANDLERS = {
    "track_handler": ROOT / "functions" / "track",
    "evaluate_handler": ROOT / "functions" / "evaluate",
    "send_handler": ROOT / "functions" / "send",
}
# Modules a function imports (through the shared composition root) but never calls.
UNUSED_BY = {
    "track_handler": (
        "footprint.engine",
        "footprint.models.journey",
        "footprint.services.journeys",
        "footprint.services.profiles",
        "footprint.adapters.enrollments_store",
        "footprint.adapters.journey_catalog",
        "footprint.adapters.timers",
        "footprint.adapters.profiles_store",
    ),
    "evaluate_handler": (
        "footprint.models.segment",
        "footprint.services.ingest",
        "footprint.adapters.events_store",
        "footprint.adapters.sources",
    ),
    # profiles_store imports footprint.engine for the UpdateProfile annotation; send never runs a journey.
    "send_handler": ("footprint.engine", "footprint.models.journey"),
}
TIMER = (
    "import sys, time\n"
    "sys.path.insert(0, sys.argv[2])\n"
    "started = time.perf_counter()\n"
    "__import__(sys.argv[1])\n"
    "print(time.perf_counter() - started)\n"
)


@dataclass(frozen=True)
class ImportResult:
    repeats: int
    samples: dict[str, list[float]]  # module -> seconds per sample
    shares: dict[str, list[tuple[str, float]]]  # handler -> (top-level package, share of its import time)
    unused: dict[str, float]  # handler -> share of its import spent in modules it never calls (UNUSED_BY)

    def median(self, module: str) -> float:
        return statistics.median(self.samples[module])

    def ratio(self, module: str) -> float:
        return self.median(module) / self.median(BASELINE)


def _environment() -> dict[str, str]:
    """A Lambda-like environment: Powertools as deployed (tracing on), no AWS call is made at import."""
    environment = {name: value for name, value in os.environ.items() if not name.startswith("POWERTOOLS_")}
    environment.update({"AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_SERVICE_NAME": "footprint"})
    return environment


def time_import(module: str, path: Path | None = None) -> float:
    completed = subprocess.run(
        [sys.executable, "-c", TIMER, module, str(path or ROOT)],
        capture_output=True,
        text=True,
        check=True,
        env=_environment(),
        cwd=ROOT,
    )
    return float(completed.stdout.strip().splitlines()[-1])


def import_profile(module: str, path: Path) -> dict[str, int]:
    """Self time in microseconds per imported module (``-X importtime``)."""
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import sys; sys.path.insert(0, {str(path)!r}); import {module}"],
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
    samples: dict[str, list[float]] = {BASELINE: [], **{name: [] for name in HANDLERS}}
    for _ in range(repeats):
        samples[BASELINE].append(time_import(BASELINE))
        for name, path in HANDLERS.items():
            samples[name].append(time_import(name, path))
    shares: dict[str, list[tuple[str, float]]] = {}
    unused: dict[str, float] = {}
    if breakdown:
        for name, path in HANDLERS.items():
            profile = import_profile(name, path)
            shares[name] = package_shares(profile)
            if name in UNUSED_BY:
                unused[name] = unused_share(profile, UNUSED_BY[name])
    return ImportResult(repeats=repeats, samples=samples, shares=shares, unused=unused)


def report(result: ImportResult) -> str:
    rows = [
        [
            name,
            f"{result.ratio(name):.2f}x",
            f"{100 * result.unused[name]:.0f} %" if name in result.unused else "",
            ", ".join(f"{package} {100 * share:.0f} %" for package, share in result.shares.get(name, [])),
        ]
        for name in HANDLERS
    ]
    lines = [
        "## Import (cold start) cost",
        "",
        f"Median of {result.repeats} fresh interpreters per module, interleaved; ratio to `import boto3` "
        f"(on this machine boto3 took {1000 * result.median(BASELINE):.0f} ms, for orientation only).",
        "",
        markdown_table(
            [
                "handler module",
                "import / import boto3",
                "in modules it never calls",
                "largest shares of its import (-X importtime, self time by package)",
            ],
            rows,
        ),
        "",
        "Modules never called: " + "; ".join(f"{name}: {', '.join(prefixes)}" for name, prefixes in UNUSED_BY.items()),
    ]
    return "\n".join(lines)
