"""``make run``: the whole stack on this machine, on loopback, until Ctrl-C.

footprint-local [--port 4000] [--warp 600] [--write-key demo-write-key] [--moto-port 0]
"""

from __future__ import annotations

import argparse
import errno
import logging
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path
from types import FrameType

from footprint.clock import WarpClock
from footprint_local.activity import configure_console
from footprint_local.stack import DEFAULT_STACK_NAME, DEFAULT_WRITE_KEY, LocalStack

logger = logging.getLogger("footprint_local.runner")

# The repository's example journeys (the local stack runs from a checkout).
DEFAULT_JOURNEYS_DIR = Path(__file__).resolve().parents[2] / "journeys"


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="footprint-local",
        description="Run Footprint locally: moto, the tracking API, the functions, a local page and a demo shop.",
    )
    parser.add_argument("--port", type=int, default=4000, help="port of the API, local page and demo (default 4000)")
    parser.add_argument("--moto-port", type=int, default=0, help="port of the moto server (default: a free one)")
    parser.add_argument(
        "--warp",
        type=float,
        default=1.0,
        metavar="FACTOR",
        help="virtual seconds per real second for the stack clock; 600 shows a two-day journey in under five "
        "minutes (default 1: real time)",
    )
    parser.add_argument(
        "--start",
        type=datetime.fromisoformat,
        default=None,
        metavar="ISO-8601",
        help="what the stack clock says at start, e.g. 2026-03-01T08:00:00+07:00 (default: now)",
    )
    parser.add_argument(
        "--write-key", default=DEFAULT_WRITE_KEY, help=f"the demo source's write key ({DEFAULT_WRITE_KEY})"
    )
    parser.add_argument("--template", default=None, help="SAM template to mirror (default: infra/template.yaml)")
    parser.add_argument(
        "--journeys",
        default=str(DEFAULT_JOURNEYS_DIR),
        metavar="DIR",
        help="publish every journey YAML of DIR at start (default: the repository's journeys/; '' for none)",
    )
    parser.add_argument("--stack-name", default=DEFAULT_STACK_NAME, help="prefix of physical names")
    parser.add_argument(
        "--handler-log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log level of the functions' Powertools loggers (default WARNING; the stack logs the flow itself)",
    )
    parser.add_argument(
        "--sqs-retry-seconds",
        type=int,
        default=2,
        help="a failed SQS message becomes visible again after this many real seconds instead of the queue's "
        "visibility timeout (default 2; -1 keeps the queue's)",
    )
    parser.add_argument("--verbose", action="store_true", help="also log each stack step at DEBUG")
    arguments = parser.parse_args(argv)
    if arguments.warp <= 0:
        parser.error("--warp must be positive")
    if arguments.start is not None and arguments.start.tzinfo is None:
        parser.error("--start needs a time zone offset, e.g. 2026-03-01T08:00:00+07:00")
    return arguments


def banner(stack: LocalStack, warp: float) -> str:
    clock = stack.clock.now().isoformat(timespec="seconds")
    speed = "real time" if warp == 1 else f"warp x{warp:g}: one real second is {warp:g} s"
    return "\n".join(
        [
            "",
            f"Footprint is running locally (stack clock {clock}, {speed}).",
            f"  Tracking API   {stack.api_url}/v1/...",
            f"  Admin API      {stack.api_url}/admin/journeys  (no IAM locally: unsigned calls are accepted;"
            " in AWS every /admin route needs a SigV4 signature)",
            f"  Local page     {stack.local_page_url}",
            f"  Demo shop      {stack.demo_url}",
            f"  moto endpoint  {stack.moto_endpoint}  (AWS_ENDPOINT_URL for the aws CLI or boto3)",
            "",
            "Send a tracking call with the demo write key:",
            f"  {stack.curl_example()}",
            f"Backend calls (trusted: they may name any userId) use {stack.server_write_key}; the demo page"
            f" signs userIds with the identity secret {stack.identity_secret!r}.",
            "",
            "Ctrl-C stops everything.",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    clock = WarpClock(arguments.warp, start=arguments.start)
    configure_console(clock, logging.DEBUG if arguments.verbose else logging.INFO)

    stop_requested = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        logger.info("%s received; stopping", signal.Signals(signum).name)
        stop_requested.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    stack = LocalStack(
        port=arguments.port,
        moto_port=arguments.moto_port,
        clock=clock,
        write_key=arguments.write_key,
        template_path=arguments.template,
        stack_name=arguments.stack_name,
        journeys_dir=Path(arguments.journeys) if arguments.journeys else None,
        handler_log_level=arguments.handler_log_level,
        sqs_retry_seconds=None if arguments.sqs_retry_seconds < 0 else arguments.sqs_retry_seconds,
    )
    try:
        stack.start()
    except OSError as error:
        hint = " (choose another with --port)" if error.errno == errno.EADDRINUSE else ""
        logger.error("cannot start the local stack: %s%s", error, hint)
        return 1
    try:
        print(banner(stack, arguments.warp), flush=True)
        while not stop_requested.wait(0.5):
            pass
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
