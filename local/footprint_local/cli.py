"""``footprint``: check, simulate and publish journeys, against the local stack or a deployed one.

    footprint validate journeys/*.yaml
    footprint simulate journeys/services-consult.yaml events.jsonl
    footprint publish journeys/services-consult.yaml            # the local stack (make run)
    footprint publish --stack footprint-prod journeys/x.yaml     # a deployed stack (AWS credentials)
    footprint list | pause ID | resume ID [--version N]
    footprint report services-consult [--version N] [--since T] [--until T]   # the funnel of recorded steps

``simulate`` reads one JSON object per line (the format of ``footprint.services.simulation``, which
POST /admin/journeys/simulate shares): ``{"at": "2026-11-23T09:00:00Z" | "after": "15s",
"visitor": "v1", "event": "product_viewed", "properties": {...}, "id": "optional message id",
"profile": {optional profile view: timezone, attributes, tags, reachable_channels}}``. ``after`` is
counted from ``--start`` (default: the first ``at``, else 2026-01-01T09:00Z). It prints the
timeline of steps and messages on a virtual clock: deterministic, and offline.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from footprint.engine import SimulationLimitError
from footprint.models.journey import Journey, JourneyDefinitionError, parse_duration
from footprint.services.content import inline_templates, journey_notes, load_checked_journey, templates_folder
from footprint.services.reports import journey_report, render_report
from footprint.services.simulation import (
    DEFAULT_HORIZON,
    parse_events,
    parse_time,
    read_event_lines,
    simulate_events,
    summarize,
)
from footprint_local.vapid import new_vapid_secret

DEFAULT_LOCAL = "http://127.0.0.1:4000"


class CliError(Exception):
    """A problem to report in one line, exit status 1."""


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args, out) or 0)
    except (CliError, JourneyDefinitionError, SimulationLimitError) as error:
        print(f"footprint: {error}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="footprint", description="Check, simulate and publish Footprint journeys.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    validate = commands.add_parser("validate", help="check journey files")
    validate.add_argument("files", nargs="+", type=Path)
    validate.set_defaults(run=cmd_validate)

    simulate = commands.add_parser("simulate", help="play a journey over events on a virtual clock")
    simulate.add_argument("journey", type=Path)
    simulate.add_argument("events", type=Path, help="JSON lines, or - for standard input")
    simulate.add_argument("--start", type=parse_time, help="the time `after` offsets count from")
    simulate.add_argument("--until", help="how long after the last event to keep the clock running (default 30d)")
    simulate.add_argument("--json", action="store_true", help="print the timeline as JSON lines")
    simulate.set_defaults(run=cmd_simulate)

    vapid = commands.add_parser("vapid-keys", help="make the VAPID key pair web push needs (a Secrets Manager value)")
    vapid.add_argument("--subject", required=True, help="a contact for push services: mailto:you@shop or https://shop")
    vapid.set_defaults(run=cmd_vapid_keys)

    for name, helptext, func in (
        ("publish", "publish journey versions (active ones start taking visitors)", cmd_publish),
        ("list", "list published journeys and the active version of each", cmd_list),
        ("pause", "stop new entries into a journey (visitors in flight finish)", cmd_pause),
        ("resume", "let visitors enter a journey again", cmd_resume),
    ):
        command = commands.add_parser(name, help=helptext)
        target = command.add_mutually_exclusive_group()
        target.add_argument("--local", metavar="URL", nargs="?", const=DEFAULT_LOCAL, help="the local stack (default)")
        target.add_argument("--stack", help="a deployed CloudFormation stack, read with your AWS credentials")
        target.add_argument("--config-table", help="the ConfigTable name, with your AWS credentials")
        if name == "publish":
            command.add_argument("files", nargs="+", type=Path)
        elif name in ("pause", "resume"):
            command.add_argument("journey_id")
            if name == "resume":
                command.add_argument("--version", type=int)
        command.set_defaults(run=func)

    report = commands.add_parser("report", help="the funnel of a journey from its recorded steps")
    report.add_argument("journey_id")
    report.add_argument("--version", type=int, help="only steps of this version (default: every version)")
    report.add_argument("--since", type=parse_time, help="only steps at or after this time (ISO-8601, UTC)")
    report.add_argument("--until", type=parse_time, help="only steps before this time (ISO-8601, UTC)")
    report.add_argument("--json", action="store_true", help="print the report as JSON")
    target = report.add_mutually_exclusive_group()
    target.add_argument("--local", metavar="URL", nargs="?", const=DEFAULT_LOCAL, help="the local stack (default)")
    target.add_argument("--stack", help="a deployed CloudFormation stack, read with your AWS credentials")
    target.add_argument("--steps-table", help="the StepsTable name, with your AWS credentials")
    report.add_argument("--config-table", help="with --steps-table: the ConfigTable, for the journey's node order")
    report.set_defaults(run=cmd_report)
    return parser


def cmd_validate(args: argparse.Namespace, out: TextIO) -> int:
    failed = 0
    for path in args.files:
        try:
            journey = _load(path)
        except JourneyDefinitionError as error:
            failed += 1
            print(f"✗ {error}", file=out)
            continue
        print(f"✓ {path}: {journey.id} v{journey.version} ({journey.status}), {len(journey.nodes)} nodes", file=out)
        for location, note in journey_notes(journey):
            print(f"  {location}: {note}", file=out)
    return 1 if failed else 0


def cmd_simulate(args: argparse.Namespace, out: TextIO) -> int:
    journey = _load(args.journey)
    lines = sys.stdin.read().splitlines() if str(args.events) == "-" else args.events.read_text().splitlines()
    try:
        horizon = parse_duration(args.until) if args.until else DEFAULT_HORIZON
    except ValueError as error:
        raise CliError(f"--until: {error}") from error
    try:
        events = parse_events(read_event_lines(lines), args.start)
    except ValueError as error:
        raise CliError(f"{args.events}: {error}") from error
    timeline = simulate_events(journey, events, horizon=horizon)
    for entry in timeline:
        print(entry.model_dump_json() if args.json else entry.describe(), file=out)
    if not args.json:
        summary = summarize(timeline)
        print(f"-- {summary.steps} steps, {summary.sent} messages sent, {summary.converted} converted", file=out)
    return 0


def cmd_vapid_keys(args: argparse.Namespace, out: TextIO) -> int:
    if not args.subject.startswith(("mailto:", "https://")):
        raise CliError("--subject must be a mailto: or https: URL (push services use it to reach you)")
    print(json.dumps(new_vapid_secret(args.subject)), file=out)
    return 0


def cmd_publish(args: argparse.Namespace, out: TextIO) -> int:
    catalog = _catalog(args)
    for path in args.files:
        journey = _load(path)
        catalog.publish(journey, _published_text(path))
        print(f"published {journey.id} v{journey.version} ({journey.status})", file=out)
    return 0


def cmd_list(args: argparse.Namespace, out: TextIO) -> int:
    catalog = _catalog(args)
    active = catalog.active_index(fresh=True)
    published = catalog.published()
    if not published:
        print("no journeys published", file=out)
    for journey_id, versions in published.items():
        state = f"active v{active[journey_id]}" if journey_id in active else "paused"
        print(f"{journey_id:<32} {state:<12} versions {', '.join(map(str, versions))}", file=out)
    return 0


def cmd_pause(args: argparse.Namespace, out: TextIO) -> int:
    from footprint.adapters.journey_catalog import UnknownJourneyError

    try:
        _catalog(args).pause(args.journey_id)
    except UnknownJourneyError as error:
        raise CliError(str(error)) from error
    print(f"paused {args.journey_id}: no new entries; visitors in flight finish", file=out)
    return 0


def cmd_resume(args: argparse.Namespace, out: TextIO) -> int:
    from footprint.adapters.journey_catalog import UnknownJourneyError

    try:
        version = _catalog(args).resume(args.journey_id, args.version)
    except UnknownJourneyError as error:
        raise CliError(str(error)) from error
    print(f"resumed {args.journey_id} v{version}", file=out)
    return 0


def cmd_report(args: argparse.Namespace, out: TextIO) -> int:
    import boto3

    from footprint.adapters.journey_catalog import DynamoJourneyCatalog
    from footprint.adapters.steps import DynamoStepReader

    if args.steps_table:
        tables = {"StepsTable": args.steps_table, "ConfigTable": args.config_table}
    else:
        tables = _stack_tables(args)
    if not tables.get("StepsTable"):
        raise CliError("this stack has no StepsTable (deploy the current template)")
    if args.since and args.until and args.since >= args.until:
        raise CliError("--since must come before --until")
    client = boto3.client("dynamodb")
    reader = DynamoStepReader(client, tables["StepsTable"])
    config_table = tables.get("ConfigTable")
    catalog = DynamoJourneyCatalog(client, config_table, cache_seconds=0) if config_table else _NoJourneys()
    report = journey_report(reader, catalog, args.journey_id, version=args.version, since=args.since, until=args.until)
    print(report.model_dump_json(indent=2) if args.json else render_report(report), file=out)
    return 0


class _NoJourneys:
    """No ConfigTable given: the report lists nodes in the order of their first step, without a main path."""

    def version(self, journey_id: str, version: int) -> Journey | None:
        return None

    def latest_version(self, journey_id: str) -> int | None:
        return None


def _load(path: Path) -> Journey:
    return load_checked_journey(_read(path), origin=str(path), templates=templates_folder(path))


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror}") from error


def _published_text(path: Path) -> str:
    """What publish stores: the file, with its ``template:`` references inlined (self-contained)."""
    return inline_templates(_read(path), templates_folder(path), origin=str(path))


def _catalog(args: argparse.Namespace) -> Any:
    """The journey catalog of the chosen stack (the local one unless told otherwise)."""
    import boto3

    from footprint.adapters.journey_catalog import DynamoJourneyCatalog

    table = args.config_table or _stack_tables(args).get("ConfigTable")
    if not table:
        raise CliError(f"stack {args.stack} has no ConfigTableName output")
    return DynamoJourneyCatalog(boto3.client("dynamodb"), table, cache_seconds=0)


def _stack_tables(args: argparse.Namespace) -> dict[str, str]:
    """Table names by logical id (ConfigTable, StepsTable...) of a deployed stack or the local one."""
    import boto3

    if args.stack:
        outputs = boto3.client("cloudformation").describe_stacks(StackName=args.stack)["Stacks"][0].get("Outputs", [])
        # The template outputs <LogicalId>Name for every table.
        return {
            o["OutputKey"].removesuffix("Name"): o["OutputValue"]
            for o in outputs
            if o["OutputKey"].endswith("TableName")
        }
    url = (args.local or DEFAULT_LOCAL).rstrip("/") + "/_local/stack.json"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - a loopback URL the user gave
            stack = json.load(response)
    except OSError as error:
        raise CliError(f"no local stack at {url} ({error}); start it with `make run`") from error
    os.environ.update(stack["aws_environment"])
    return dict(stack["tables"])


if __name__ == "__main__":
    raise SystemExit(main())
