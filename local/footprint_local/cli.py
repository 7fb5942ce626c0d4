"""``footprint``: check, simulate and publish journeys, against the local stack or a deployed one.

    footprint validate journeys/*.yaml                           # offline
    footprint validate --stack footprint-prod journeys/x.yaml    # ...and against a stack's channels
    footprint simulate journeys/services-consult.yaml events.jsonl
    footprint publish journeys/services-consult.yaml            # the local stack (make run)
    footprint publish --stack footprint-prod journeys/x.yaml     # a deployed stack (AWS credentials)
    footprint list | pause ID | resume ID [--version N]
    footprint sources list | create SOURCE_ID --origin https://shop.example | rotate KEY_ID | revoke KEY_ID
    footprint report services-consult [--version N] [--since T] [--until T]   # the funnel of recorded steps

``simulate`` reads one JSON object per line (the format of ``footprint.services.simulation``, which
POST /admin/journeys/simulate shares): ``{"at": "2026-11-23T09:00:00Z" | "after": "15s",
"visitor": "v1", "event": "product_viewed", "properties": {...}, "id": "optional message id",
"profile": {optional profile view: timezone, attributes, tags, reachable_channels}}``. ``after`` is
counted from ``--start`` (default: the first ``at``, else 2026-01-01T09:00Z). It prints the
timeline of steps and messages on a virtual clock: deterministic, and offline.

``publish`` (and ``validate`` given ``--local`` or ``--stack``) refuses a journey that sends on a
channel the stack has not turned on, as the admin API does and with its words: a deployed stack's
channels come from its CloudFormation parameters, the local stack's from ``/_local/stack.json``.
``publish --config-table`` names a table, not a stack, so it cannot check.
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
from footprint.models.channels import ChannelSettings
from footprint.models.journey import Journey, JourneyDefinitionError
from footprint.models.timing import parse_duration
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

    validate = commands.add_parser("validate", help="check journey files (offline, or also against a stack)")
    validate.add_argument("files", nargs="+", type=Path)
    target = validate.add_mutually_exclusive_group()
    target.add_argument(
        "--local", metavar="URL", nargs="?", const=DEFAULT_LOCAL, help="also check the local stack's channels"
    )
    target.add_argument("--stack", help="also check the channels of a deployed CloudFormation stack")
    validate.set_defaults(run=cmd_validate, config_table=None)

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
        (
            "publish",
            "publish journey versions (active ones start taking visitors); refuses a journey on a channel the "
            "stack has not turned on",
            cmd_publish,
        ),
        ("list", "list published journeys and the active version of each", cmd_list),
        ("pause", "stop new entries into a journey (visitors in flight finish)", cmd_pause),
        ("resume", "let visitors enter a journey again", cmd_resume),
    ):
        command = commands.add_parser(name, help=helptext)
        _target_options(command)
        if name == "publish":
            command.add_argument("files", nargs="+", type=Path)
        elif name in ("pause", "resume"):
            command.add_argument("journey_id")
            if name == "resume":
                command.add_argument("--version", type=int)
        command.set_defaults(run=func)

    _sources_parser(commands)
    _people_parser(commands)

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


def _target_options(command: argparse.ArgumentParser) -> None:
    """Which stack's ConfigTable a command works on: the local one unless told otherwise."""
    target = command.add_mutually_exclusive_group()
    target.add_argument("--local", metavar="URL", nargs="?", const=DEFAULT_LOCAL, help="the local stack (default)")
    target.add_argument("--stack", help="a deployed CloudFormation stack, read with your AWS credentials")
    target.add_argument("--config-table", help="the ConfigTable name, with your AWS credentials")


def _sources_parser(commands: Any) -> None:
    sources = commands.add_parser("sources", help="create, list, rotate and revoke write keys and their origins")
    actions = sources.add_subparsers(required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="every write key, its source, origins and status")
    listing.add_argument("--source-id", help="only this source's keys")
    create = actions.add_parser("create", help="a new write key (shown once, with its identity secret)")
    create.add_argument("source_id", help="the source: a site, an app or a backend (a-z, 0-9, - and _)")
    create.add_argument("--name", default="")
    create.add_argument("--origin", action="append", default=[], help="an allowed browser origin (repeatable)")
    create.add_argument("--trusted", action="store_true", help="a backend key: trusted, no browser origin")
    create.add_argument("--identity-secret", action="store_true", help="also make a secret to sign userIds with")
    rotate = actions.add_parser("rotate", help="a new key with the same settings; the old one ends after --grace")
    rotate.add_argument("key_id")
    rotate.add_argument("--grace", default="24h", help="how long the old key keeps working (default 24h)")
    revoke = actions.add_parser("revoke", help="the key stops working")
    revoke.add_argument("key_id")
    origins = actions.add_parser("origins", help="replace a key's allowed origins")
    origins.add_argument("key_id")
    origins.add_argument("--origin", action="append", default=[], help="an allowed browser origin (repeatable)")
    for action in (listing, create, rotate, revoke, origins):
        _target_options(action)
        action.add_argument("--json", action="store_true", help="print the answer as JSON")
        action.set_defaults(run=cmd_sources, action=action.prog.rsplit(" ", 1)[-1])


def cmd_sources(args: argparse.Namespace, out: TextIO) -> int:
    import boto3

    from footprint import clock
    from footprint.adapters.source_keys import DynamoSourceKeyStore
    from footprint.services.admin_api import AdminError, parse_grace
    from footprint.services.sources import SourceAdmin

    table = args.config_table or _stack_tables(args).get("ConfigTable")
    if not table:
        raise CliError(f"stack {args.stack} has no ConfigTableName output")
    admin = SourceAdmin(DynamoSourceKeyStore(boto3.client("dynamodb"), table), now=clock.now)
    answer: Any
    try:
        match args.action:
            case "list":
                answer = admin.list_keys(args.source_id)
            case "create":
                body = {
                    "source_id": args.source_id,
                    "name": args.name,
                    "allowed_origins": args.origin,
                    "trusted": args.trusted,
                    "identity_secret": args.identity_secret,
                }
                answer = admin.create(body)
            case "rotate":
                answer = admin.rotate(args.key_id, parse_grace(args.grace))
            case "revoke":
                answer = admin.revoke(args.key_id)
            case _:
                answer = admin.set_origins(args.key_id, {"allowed_origins": args.origin})
    except AdminError as error:
        problems = "".join(f"\n  {problem['location']}: {problem['message']}" for problem in error.errors)
        raise CliError(f"{error.reason}{problems}") from error
    if args.json:
        dumped = (
            [key.model_dump(mode="json") for key in answer]
            if isinstance(answer, list)
            else answer.model_dump(mode="json")
        )
        print(json.dumps(dumped, indent=2, ensure_ascii=False), file=out)
        return 0
    for line in _source_lines(answer):
        print(line, file=out)
    return 0


def _source_lines(answer: Any) -> list[str]:
    from footprint.services.sources import CreatedKey

    if isinstance(answer, CreatedKey):
        lines = [f"write key {answer.key.write_key}  (key_id {answer.key.key_id}, source {answer.key.source_id})"]
        if answer.identity_secret:
            lines.append(f"identity secret {answer.identity_secret}  (keep it on your backend; shown once)")
        if answer.replaced:
            lines.append(
                f"old key {answer.replaced.key_id} works until {answer.replaced.expires_at:%Y-%m-%d %H:%M} UTC"
            )
        return lines
    keys = answer if isinstance(answer, list) else [answer]
    if not keys:
        return ["no write keys"]
    return [
        f"{key.key_id}  {key.source_id:<16} {key.status:<9} {'trusted' if key.trusted else 'browser':<8} "
        f"{key.write_key:<34} {', '.join(key.allowed_origins) or '-'}"
        for key in keys
    ]


def _people_parser(commands: Any) -> None:
    people = commands.add_parser("people", help="export or delete everything held about one person")
    actions = people.add_subparsers(required=True, metavar="ACTION")
    for name, helptext in (
        ("export", "print the person's profiles, aliases, events, enrollments, steps and messages as JSON"),
        ("delete", "delete all of it, cancel their wake-ups, and print the deletion record"),
    ):
        action = actions.add_parser(name, help=helptext)
        action.add_argument("source_id")
        person = action.add_mutually_exclusive_group(required=True)
        person.add_argument("--user-id")
        person.add_argument("--anonymous-id")
        person.add_argument("--profile-id")
        target = action.add_mutually_exclusive_group()
        target.add_argument("--local", metavar="URL", nargs="?", const=DEFAULT_LOCAL, help="the local stack (default)")
        target.add_argument("--stack", help="a deployed CloudFormation stack, read with your AWS credentials")
        action.set_defaults(run=cmd_people, action=name, config_table=None)


def cmd_people(args: argparse.Namespace, out: TextIO) -> int:
    import boto3

    from footprint import clock
    from footprint.adapters.person_data import DynamoDeletionLog, DynamoPersonData
    from footprint.services.admin_api import AdminError
    from footprint.services.data_rights import DataRights

    tables = _stack_tables(args)
    client = boto3.client("dynamodb")
    store = DynamoPersonData(
        client,
        profiles_table=tables["ProfilesTable"],
        events_table=tables["EventsTable"],
        steps_table=tables["StepsTable"],
        messages_table=tables["MessagesTable"],
        scheduler=boto3.client("scheduler"),
        schedule_group=_schedule_group(args),
    )
    rights = DataRights(store, DynamoDeletionLog(client, tables["ConfigTable"]), now=clock.now)
    body = {"source_id": args.source_id, "user_id": args.user_id, "anonymous_id": args.anonymous_id,
            "profile_id": args.profile_id}  # fmt: skip
    body = {key: value for key, value in body.items() if value is not None}
    try:
        if args.action == "export":
            answer: Any = rights.export(body, max_events=None)
        else:
            answer = rights.delete(body, requested_by=f"cli:{os.environ.get('USER', '')}")
    except AdminError as error:
        raise CliError(error.reason) from error
    print(answer.model_dump_json(indent=2), file=out)
    return 0


def cmd_validate(args: argparse.Namespace, out: TextIO) -> int:
    channels = _stack_channels(args) if args.local or args.stack else None
    failed = 0
    for path in args.files:
        try:
            journey = _load(path)
        except JourneyDefinitionError as error:
            failed += 1
            print(f"✗ {error}", file=out)
            continue
        refusal = _channel_refusal(path, journey, channels)
        if refusal:
            failed += 1
            print(f"✗ {refusal}", file=out)
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
    # Every file is checked before any is published: a refused one publishes none.
    journeys = [(path, _load(path)) for path in args.files]
    channels = _stack_channels(args)
    refusals = [refusal for path, journey in journeys if (refusal := _channel_refusal(path, journey, channels))]
    if refusals:
        raise CliError("\n".join(refusals))
    catalog = _catalog(args)
    for path, journey in journeys:
        catalog.publish(journey, _published_text(path))
        print(f"published {journey.id} v{journey.version} ({journey.status})", file=out)
    return 0


def _channel_refusal(path: Path, journey: Journey, channels: ChannelSettings | None) -> str:
    """Why the stack would refuse the journey (the admin API's reason and problems), "" if it would not."""
    from footprint.services.admin import refuse_unconfigured_channels
    from footprint.services.admin_api import AdminError

    if channels is None:
        return ""
    try:
        refuse_unconfigured_channels(journey, channels.unconfigured(), location="")
    except AdminError as error:
        return f"{path}: {error.reason}" + "".join(f"\n  {p['location']}: {p['message']}" for p in error.errors)
    return ""


def _stack_channels(args: argparse.Namespace) -> ChannelSettings | None:
    """What the chosen stack sends on: a deployed stack's parameters, or what the local stack says; None
    for a bare --config-table (a table, no stack to ask)."""
    if args.config_table:
        return None
    if args.stack:
        parameters = _describe_stack(args.stack).get("Parameters", [])
        return ChannelSettings.of_stack({p["ParameterKey"]: p.get("ParameterValue", "") for p in parameters})
    url, stack = _local_stack(args)
    if "channels" not in stack:
        raise CliError(f"the local stack at {url} does not say which channels it sends on; restart it (`make run`)")
    return ChannelSettings.model_validate(stack["channels"])


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
    from footprint.services.admin_api import UnknownJourneyError

    try:
        _catalog(args).pause(args.journey_id)
    except UnknownJourneyError as error:
        raise CliError(str(error)) from error
    print(f"paused {args.journey_id}: no new entries; visitors in flight finish", file=out)
    return 0


def cmd_resume(args: argparse.Namespace, out: TextIO) -> int:
    from footprint.services.admin_api import UnknownJourneyError

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
    if args.stack:
        outputs = _describe_stack(args.stack).get("Outputs", [])
        # The template outputs <LogicalId>Name for every table.
        return {
            o["OutputKey"].removesuffix("Name"): o["OutputValue"]
            for o in outputs
            if o["OutputKey"].endswith("TableName")
        }
    _, stack = _local_stack(args)
    os.environ.update(stack["aws_environment"])
    return dict(stack["tables"])


def _schedule_group(args: argparse.Namespace) -> str:
    """The stack's Scheduler group (where wake-ups are), "" if it has none."""
    if args.stack:
        outputs = _describe_stack(args.stack).get("Outputs", [])
        return next((o["OutputValue"] for o in outputs if o["OutputKey"] == "ScheduleGroupName"), "")
    return str(_local_stack(args)[1].get("schedule_groups", {}).get("ScheduleGroup", ""))


def _describe_stack(name: str) -> dict[str, Any]:
    """A deployed stack as CloudFormation describes it: its Parameters and Outputs."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return dict(boto3.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0])
    except (BotoCoreError, ClientError) as error:
        raise CliError(f"stack {name}: {error}") from error


def _local_stack(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The URL of the local stack's /_local/stack.json, and what it answers."""
    url = (args.local or DEFAULT_LOCAL).rstrip("/") + "/_local/stack.json"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - a loopback URL the user gave
            return url, dict(json.load(response))
    except OSError as error:
        raise CliError(f"no local stack at {url} ({error}); start it with `make run`") from error


if __name__ == "__main__":
    raise SystemExit(main())
