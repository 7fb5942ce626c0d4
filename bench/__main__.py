"""``python -m bench [--quick] [--only engine,calls,imports,layer,cost]``: run the benchmarks, print Markdown.

The full run takes under a minute on two cores; ``--quick`` uses tiny sizes (seconds), for checking
that the benchmarks still run, not for figures.
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

PARTS = ("engine", "calls", "imports", "layer", "cost")


@dataclass(frozen=True)
class Sizes:
    records: int
    engine_repeats: int
    import_repeats: int


FULL = Sizes(records=3_000, engine_repeats=5, import_repeats=5)
QUICK = Sizes(records=200, engine_repeats=2, import_repeats=1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the benchmarks run")
    parser.add_argument(
        "--only", default=",".join(PARTS), help=f"comma-separated subset of {', '.join(PARTS)} (cost needs calls)"
    )
    arguments = parser.parse_args(argv)
    parts = {part.strip() for part in arguments.only.split(",") if part.strip()}
    unknown = parts - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    if "cost" in parts:
        parts.add("calls")
    sizes = QUICK if arguments.quick else FULL
    logging.basicConfig(level=logging.ERROR)
    started = time.perf_counter()
    print(f"# Footprint benchmarks{' (quick sizes)' if arguments.quick else ''}")
    print(f"\nPython {platform.python_version()} on {platform.machine()}, {_cores()} core(s)\n")

    if "engine" in parts:
        from bench import engine_throughput

        print(engine_throughput.report(engine_throughput.run(records=sizes.records, repeats=sizes.engine_repeats)))
        print(flush=True)
    if "calls" in parts:
        from bench import aws_calls, cost

        calls = aws_calls.run(quick=arguments.quick)
        print(aws_calls.report(calls))
        print()
        if "cost" in parts:
            print(cost.report(calls))
            print(flush=True)
    if "imports" in parts:
        from bench import cold_start

        print(cold_start.report(cold_start.run(repeats=sizes.import_repeats)))
        print()
    if "layer" in parts:
        from bench import layer_size

        print(layer_size.report(layer_size.run()))
        print()
    print(f"(benchmarks finished in {time.perf_counter() - started:.0f} s)", file=sys.stderr)
    return 0


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


if __name__ == "__main__":
    raise SystemExit(main())
