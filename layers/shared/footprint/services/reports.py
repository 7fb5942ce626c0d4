"""Funnel reports: a journey's recorded steps in, a funnel per node out. ``funnel`` is pure.

Every count is of distinct **enrollments**: one visitor's one run through the journey (a visitor who
enters again later is a new enrollment; one who passes a node twice in a run counts once there).
The report reads the steps recorded inside its time window [since, until), so an enrollment that
entered before the window shows only its later steps (its conversion counts there, its entry does not).

Journey totals:

- ``triggered``: enrollments with a step at the trigger: entered, pending (a trigger whose
  ``unless`` waits forward) or not entered;
- ``not_entered``: triggers that did not enter: the ``unless`` event happened in its window (looking
  back, or while pending), or an exit or the goal came first;
- ``pending``: pending entries neither confirmed nor cancelled yet;
- ``entered``: enrollments that entered the journey;
- ``converted`` / ``exited`` / ``completed``: enrollments that reached the goal / met an exit
  criterion / reached an exit node (or the end of a holdout);
- ``in_progress``: entered, and none of those three yet;
- ``conversion_rate``: converted / entered.

Per node, in the order the journey declares its nodes (nodes of other versions follow, by first step):

- ``visited``: enrollments with a step at the node; at the trigger, those that entered;
- ``sent``, ``skipped``, ``held``: enrollments with that outcome at the node (a send node); ``sent``
  counts a message evaluate queued only if send did not then record it ``failed`` (a template that
  did not render, an address the provider refused) or ``skipped`` (no address or consent by then);
- ``failed``: enrollments whose message at the node send could not deliver;
- ``accepted``, ``delivered``, ``shown``, ``opened``, ``clicked``, ``dismissed``, ``submitted``,
  ``bounced``: enrollments whose message at the node got that far, from the message's outcome events
  (evaluate records each as a step once: ``message_sent`` is ``accepted``, the provider took it;
  ``message_delivered``, ``message_shown``, ``message_opened``, ``message_clicked``,
  ``message_dismissed`` or ``form_dismissed``, ``form_submitted``, ``message_bounced``). Steps, not
  counters: the report aggregates what StepsTable already holds, so a late or repeated event changes
  nothing twice and a date range is a key condition;
- ``converted``, ``exited``, ``completed``: enrollments that ended with that outcome while at the node;
- ``outcomes``: every outcome recorded at the node, ``branches``: the way out a condition (yes, no)
  or a split (the branch's name) gave;
- ``conversion_rate``: of the node's visitors, the share that converted (there or further on).

The **main path** starts at the trigger and follows each node's first way out: ``next``; ``happened``
of a wait_for; ``yes`` of a condition; the first branch of a split; it ends at an exit node (or where
it would loop). For two consecutive nodes A → B of it, ``went_on`` = enrollments that visited both;
of the visitors of A that did not visit B, ``dropped`` = those whose run has ended (they left the
journey, took another way and finished, or their wait expired into another branch that ended) and
``in_progress`` = those still on their way (waiting at A, or between); ``drop_off_rate`` = dropped /
visitors of A, so a visitor still waiting never counts as lost.

Per channel: ``sent`` = enrollments sent at least one message on it (failed and skipped ones left out),
``converted`` = those of them that converted (a conversion ends the run, so it came after the
message), ``last_touch`` = conversions credited to it by ``ATTRIBUTION_RULE``: the channel of the
run's last message before it converted (the report carries the rule's words).

``paths``: the runs that entered, grouped by the nodes they went through in order (a node at its
first visit; steps of one instant ordered by the journey's graph), the ``MAX_PATHS`` most travelled
with entered, converted and their rate; ``other_paths`` counts the runs on the rest.

``stages`` (a journey with a ``stage_model``; footprint.models.stages): per stage of the model in
order, ``reached`` = runs with a step at a node tagged with that stage or a later one (reaching a
later stage means having passed the earlier ones), then, as on the main path, ``went_on``,
``in_progress`` and ``dropped`` (ended before the next stage).

Per split node, ``experiments``: each variant and the holdout, entered, converted, rate, uplift
against control with its 95 % interval and significance (footprint.services.experiments states the
rules: control, test, minimum sample, winner).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from footprint.engine import RecordStep
from footprint.models.journey import ExitNode, Journey, SplitNode
from footprint.models.stages import model_stages
from footprint.services.experiments import HOLDOUT, ExperimentResult, experiment

# Steps at the trigger that are not (yet) an entry.
_NOT_A_VISIT = frozenset({"pending", "not_entered"})
_ENDINGS = ("converted", "exited", "completed")
# Outcomes send records for a message evaluate queued (a "sent" step) but that was not delivered.
_UNDELIVERED = frozenset({"failed", "skipped"})
DELIVERY_OUTCOMES = ("accepted", "delivered", "shown", "opened", "clicked", "dismissed", "submitted", "bounced")


class NodeFunnel(BaseModel):
    model_config = ConfigDict(frozen=True)

    node_id: str
    type: str | None = None  # None: a node the reported journey version does not have
    stage: str | None = None
    on_main_path: bool = False
    visited: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    held: int = 0
    # What became of the node's messages, from their outcome events (footprint.engine.steps).
    accepted: int = 0
    delivered: int = 0
    shown: int = 0
    opened: int = 0
    clicked: int = 0
    dismissed: int = 0
    submitted: int = 0
    bounced: int = 0
    converted: int = 0
    exited: int = 0
    completed: int = 0
    outcomes: dict[str, int] = Field(default_factory=dict)
    branches: dict[str, int] = Field(default_factory=dict)
    conversion_rate: float | None = None


class PathStep(BaseModel):
    """Two consecutive nodes of the main path and the enrollments lost between them."""

    model_config = ConfigDict(frozen=True)

    from_node: str
    to_node: str
    visited: int  # visitors of from_node
    went_on: int  # of them, visitors of to_node too
    dropped: int  # of the others, those whose run has ended (left, or their wait expired)
    in_progress: int = 0  # of the others, those still on their way (waiting at from_node or between)
    drop_off_rate: float | None = None  # dropped / visited


class PathFunnel(BaseModel):
    """The runs that went through exactly these nodes, in this order (each node at its first visit)."""

    model_config = ConfigDict(frozen=True)

    nodes: list[str]
    entered: int
    converted: int
    conversion_rate: float | None = None


# The most travelled paths a report lists; the rest are summed up as ``other_paths``.
MAX_PATHS = 10


class StageFunnel(BaseModel):
    """One stage of the journey's stage model: the runs that reached it (a node tagged with it or
    with a later stage), and of those, the ones that reached the next stage, are still on their way,
    or ended without it."""

    model_config = ConfigDict(frozen=True)

    stage: str
    reached: int
    went_on: int | None = None  # None at the last stage
    in_progress: int = 0
    dropped: int = 0
    drop_off_rate: float | None = None


# How a conversion is credited to a channel (printed with the report, so nobody has to guess).
ATTRIBUTION_RULE = (
    "last touch: each conversion is credited to the channel of the last message its run was sent before it "
    "converted (sent = queued and not failed or skipped); the engine counts a conversion only inside the goal's "
    "window from entry, so that message is inside it too"
)


class ChannelFunnel(BaseModel):
    model_config = ConfigDict(frozen=True)

    channel: str
    sent: int
    converted: int  # of the runs sent a message on the channel, those that converted (any touch)
    last_touch: int = 0  # conversions credited to the channel by ATTRIBUTION_RULE


class FunnelReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    journey_id: str
    version: int | None = None  # the version whose nodes and main path the report follows
    versions: list[int] = Field(default_factory=list)  # the versions the steps were recorded on
    since: datetime | None = None
    until: datetime | None = None
    first_step_at: datetime | None = None
    last_step_at: datetime | None = None
    steps: int = 0
    triggered: int = 0
    pending: int = 0
    not_entered: int = 0
    entered: int = 0
    in_progress: int = 0
    converted: int = 0
    exited: int = 0
    completed: int = 0
    conversion_rate: float | None = None
    nodes: list[NodeFunnel] = Field(default_factory=list)
    main_path: list[PathStep] = Field(default_factory=list)
    channels: list[ChannelFunnel] = Field(default_factory=list)
    attribution_rule: str = ATTRIBUTION_RULE
    paths: list[PathFunnel] = Field(default_factory=list)
    other_paths: int = 0  # runs on paths beyond the MAX_PATHS most travelled
    stage_model: str | None = None
    stages: list[StageFunnel] = Field(default_factory=list)
    experiments: list[ExperimentResult] = Field(default_factory=list)


@dataclass
class _NodeSteps:
    first_at: datetime
    by_outcome: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    by_branch: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def visitors(self) -> set[str]:
        return set().union(*(ids for outcome, ids in self.by_outcome.items() if outcome not in _NOT_A_VISIT))


def funnel(
    journey_id: str,
    steps: Iterable[RecordStep],
    journey: Journey | None = None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> FunnelReport:
    """The funnel of ``journey_id`` from its recorded steps; ``journey`` (a published version) gives the
    node order, node types and the main path. Steps of other journeys are ignored."""
    mine = sorted((step for step in steps if step.journey_id == journey_id), key=lambda step: (step.at, step.key))
    nodes: dict[str, _NodeSteps] = {}
    by_outcome: dict[str, set[str]] = defaultdict(set)
    by_channel: dict[str, set[str]] = defaultdict(set)
    # enrollment -> (time, channel) of every message sent, for last-touch attribution.
    touches: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    converted_at: dict[str, datetime] = {}
    # enrollment -> node -> when it first visited it (its path, once ordered).
    visits: dict[str, dict[str, datetime]] = defaultdict(dict)
    # send records what became of a queued message: one it could not deliver was not sent.
    undelivered = {(step.enrollment_id, step.node_id) for step in mine if step.outcome in _UNDELIVERED}
    for step in mine:
        if step.outcome == "sent" and (step.enrollment_id, step.node_id) in undelivered:
            continue
        node = nodes.setdefault(step.node_id, _NodeSteps(first_at=step.at))
        if step.outcome not in _NOT_A_VISIT:
            visits[step.enrollment_id].setdefault(step.node_id, step.at)
        node.by_outcome[step.outcome].add(step.enrollment_id)
        if step.outcome == "branched" and step.detail:
            node.by_branch[step.detail].add(step.enrollment_id)
        by_outcome[step.outcome].add(step.enrollment_id)
        if step.outcome == "sent" and step.channel:
            by_channel[step.channel].add(step.enrollment_id)
            touches[step.enrollment_id].append((step.at, step.channel))
        if step.outcome == "converted":
            converted_at.setdefault(step.enrollment_id, step.at)

    converted = by_outcome["converted"]
    entered = by_outcome["entered"]
    ended = set().union(*(by_outcome[outcome] for outcome in _ENDINGS))
    main_path = _main_path(journey) if journey else []
    node_rows = [
        _node_row(node_id, nodes.get(node_id), journey, node_id in main_path, converted)
        for node_id in _node_order(journey, nodes)
    ]
    return FunnelReport(
        journey_id=journey_id,
        version=journey.version if journey else None,
        versions=sorted({step.journey_version for step in mine}),
        since=since,
        until=until,
        first_step_at=mine[0].at if mine else None,
        last_step_at=mine[-1].at if mine else None,
        steps=len(mine),
        triggered=len(entered | by_outcome["pending"] | by_outcome["not_entered"]),
        pending=len(by_outcome["pending"] - entered - by_outcome["not_entered"]),
        not_entered=len(by_outcome["not_entered"]),
        entered=len(entered),
        in_progress=len(entered - ended),
        converted=len(converted),
        exited=len(by_outcome["exited"]),
        completed=len(by_outcome["completed"]),
        conversion_rate=_rate(len(converted), len(entered)),
        nodes=node_rows,
        main_path=[_path_step(a, b, nodes, ended) for a, b in pairwise(main_path)],
        channels=_channels(by_channel, converted, _last_touches(touches, converted_at)),
        **_paths(visits, entered, converted, _graph_order(journey)),
        stage_model=journey.stage_model if journey else None,
        stages=_stages(journey, nodes, ended) if journey else [],
        experiments=_experiments(journey, nodes, converted),
    )


def _stages(journey: Journey, nodes: dict[str, _NodeSteps], ended: set[str]) -> list[StageFunnel]:
    order = model_stages(journey.stage_model, journey.stages)
    if not order:
        return []
    index = {stage: i for i, stage in enumerate(order)}
    # The runs at each stage's nodes; reaching a later stage means having passed the earlier ones.
    at_stage: list[set[str]] = [set() for _ in order]
    for node_id, node in journey.nodes.items():
        if node.stage in index and node_id in nodes:
            at_stage[index[node.stage]] |= nodes[node_id].visitors()
    reached: list[set[str]] = []
    later: set[str] = set()
    for runs in reversed(at_stage):
        later = later | runs
        reached.insert(0, later)
    rows = []
    for i, stage in enumerate(order):
        here = reached[i]
        if i + 1 == len(order):
            rows.append(StageFunnel(stage=stage, reached=len(here)))
            continue
        not_yet = here - reached[i + 1]
        dropped = len(not_yet & ended)
        rows.append(
            StageFunnel(
                stage=stage,
                reached=len(here),
                went_on=len(here & reached[i + 1]),
                in_progress=len(not_yet - ended),
                dropped=dropped,
                drop_off_rate=_rate(dropped, len(here)),
            )
        )
    return rows


def _graph_order(journey: Journey | None) -> dict[str, int]:
    """Nodes by distance from the trigger (breadth first, exits in order): the nodes one step passes
    through in the same instant are ordered as the journey leads through them."""
    if journey is None:
        return {}
    order = {journey.trigger_id: 0}
    frontier = [journey.trigger_id]
    while frontier:
        following = []
        for node_id in frontier:
            for _, target in journey.nodes[node_id].exits():
                if target not in order and target in journey.nodes:
                    order[target] = len(order)
                    following.append(target)
        frontier = following
    return order


def _paths(
    visits: dict[str, dict[str, datetime]], entered: set[str], converted: set[str], order: dict[str, int]
) -> dict[str, Any]:
    runs: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for enrollment_id in entered:
        first = visits[enrollment_id]
        path = sorted(first, key=lambda node: (first[node], order.get(node, len(order)), node))
        runs[tuple(path)].add(enrollment_id)
    ranked = sorted(runs.items(), key=lambda item: (-len(item[1]), item[0]))
    paths = [
        PathFunnel(
            nodes=list(path),
            entered=len(ids),
            converted=len(ids & converted),
            conversion_rate=_rate(len(ids & converted), len(ids)),
        )
        for path, ids in ranked[:MAX_PATHS]
    ]
    return {"paths": paths, "other_paths": sum(len(ids) for _, ids in ranked[MAX_PATHS:])}


def _last_touches(touches: dict[str, list[tuple[datetime, str]]], converted_at: dict[str, datetime]) -> dict[str, int]:
    credited: dict[str, int] = defaultdict(int)
    for enrollment_id, at in converted_at.items():
        before = [touch for touch in touches.get(enrollment_id, []) if touch[0] <= at]
        if before:
            credited[max(before)[1]] += 1  # the latest; the same instant breaks ties by channel name
    return credited


def _channels(by_channel: dict[str, set[str]], converted: set[str], credited: dict[str, int]) -> list[ChannelFunnel]:
    return [
        ChannelFunnel(
            channel=channel, sent=len(ids), converted=len(ids & converted), last_touch=credited.get(channel, 0)
        )
        for channel, ids in sorted(by_channel.items(), key=lambda item: (-len(item[1]), item[0]))
    ]


def _experiments(journey: Journey | None, nodes: dict[str, _NodeSteps], converted: set[str]) -> list[ExperimentResult]:
    results = []
    for node_id, node in journey.nodes.items() if journey else ():
        if not isinstance(node, SplitNode):
            continue
        steps = nodes.get(node_id)
        arms: dict[str, set[str]] = {
            branch.name: set(steps.by_branch.get(branch.name, set())) if steps else set() for branch in node.branches
        }
        if node.holdout is not None:
            arms[HOLDOUT] = set(steps.by_outcome.get("holdout", set())) if steps else set()
        if len(arms) < 2:
            continue
        control = HOLDOUT if node.holdout is not None else node.branches[0].name
        results.append(experiment(node_id, arms, converted, control))
    return results


def _node_order(journey: Journey | None, nodes: dict[str, _NodeSteps]) -> list[str]:
    declared = list(journey.nodes) if journey else []
    others = sorted((node_id for node_id in nodes if node_id not in declared), key=lambda n: (nodes[n].first_at, n))
    return declared + others


def _main_path(journey: Journey) -> list[str]:
    path = [journey.trigger_id]
    while True:
        node = journey.nodes[path[-1]]
        exits = node.exits()
        if isinstance(node, ExitNode) or not exits or exits[0][1] in path:
            return path
        path.append(exits[0][1])


def _node_row(
    node_id: str, steps: _NodeSteps | None, journey: Journey | None, on_main_path: bool, converted: set[str]
) -> NodeFunnel:
    node = journey.nodes.get(node_id) if journey else None
    visitors = steps.visitors() if steps else set()
    outcomes = {outcome: len(ids) for outcome, ids in sorted(steps.by_outcome.items())} if steps else {}
    return NodeFunnel(
        node_id=node_id,
        type=node.type if node else None,
        stage=node.stage if node else None,
        on_main_path=on_main_path,
        visited=len(visitors),
        sent=outcomes.get("sent", 0),
        failed=outcomes.get("failed", 0),
        skipped=outcomes.get("skipped", 0),
        held=outcomes.get("held", 0),
        **{outcome: outcomes.get(outcome, 0) for outcome in DELIVERY_OUTCOMES},
        converted=outcomes.get("converted", 0),
        exited=outcomes.get("exited", 0),
        completed=outcomes.get("completed", 0),
        outcomes=outcomes,
        branches={branch: len(ids) for branch, ids in sorted(steps.by_branch.items())} if steps else {},
        conversion_rate=_rate(len(visitors & converted), len(visitors)),
    )


def _path_step(from_node: str, to_node: str, nodes: dict[str, _NodeSteps], ended: set[str]) -> PathStep:
    here = nodes[from_node].visitors() if from_node in nodes else set()
    there = nodes[to_node].visitors() if to_node in nodes else set()
    not_yet = here - there
    dropped = len(not_yet & ended)
    return PathStep(
        from_node=from_node,
        to_node=to_node,
        visited=len(here),
        went_on=len(here & there),
        dropped=dropped,
        in_progress=len(not_yet - ended),
        drop_off_rate=_rate(dropped, len(here)),
    )


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


# ---------------------------------------------------------------------------------------------- reading


class StepReader(Protocol):
    def steps(
        self,
        journey_id: str,
        *,
        version: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[RecordStep]: ...


class JourneyVersions(Protocol):
    def version(self, journey_id: str, version: int) -> Journey | None: ...

    def latest_version(self, journey_id: str) -> int | None: ...


def journey_report(
    reader: StepReader,
    catalog: JourneyVersions,
    journey_id: str,
    *,
    version: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> FunnelReport:
    """The funnel of a journey (one version, or all) over a window [since, until). It follows the nodes
    of ``version``, else of the newest version that recorded steps, else of the latest published."""
    if since is not None and until is not None and since >= until:
        raise ValueError("the window is empty: since must come before until")
    steps = reader.steps(journey_id, version=version, since=since, until=until)
    shown = version or max((step.journey_version for step in steps), default=None) or catalog.latest_version(journey_id)
    journey = catalog.version(journey_id, shown) if shown else None
    return funnel(journey_id, steps, journey, since=since, until=until)


# ---------------------------------------------------------------------------------------------- text


def render_report(report: FunnelReport) -> str:
    """The report as a readable table (``footprint report``)."""
    lines = [_headline(report)]
    lines.append(
        f"triggered {report.triggered} · entered {report.entered} · did not enter {report.not_entered} · "
        f"pending {report.pending} · in progress {report.in_progress} · converted {report.converted} · "
        f"exited {report.exited} · completed {report.completed}"
    )
    lines.append(f"conversion rate {_percent(report.conversion_rate)} (converted / entered)")
    lines.append("")
    header = [
        "node",
        "type",
        "visited",
        "sent",
        "failed",
        "skipped",
        "held",
        "converted",
        "exited",
        "completed",
        "conv.",
        "other",
    ]
    rows = [
        [
            ("* " if node.on_main_path else "  ") + node.node_id,
            node.type or "?",
            *(
                str(value)
                for value in (
                    node.visited,
                    node.sent,
                    node.failed,
                    node.skipped,
                    node.held,
                    node.converted,
                    node.exited,
                    node.completed,
                )
            ),
            _percent(node.conversion_rate),
            _other(node),
        ]
        for node in report.nodes
    ]
    lines += _table(header, rows, numeric=range(2, 11))
    if report.main_path:
        lines += ["", "main path (*), dropped = visited a node, not the next one, and the run has ended:"]
        lines += _table(
            ["from", "to", "visited", "went on", "in progress", "dropped", "drop-off"],
            [
                [
                    step.from_node,
                    step.to_node,
                    *(str(count) for count in (step.visited, step.went_on, step.in_progress, step.dropped)),
                    _percent(step.drop_off_rate),
                ]
                for step in report.main_path
            ],
            numeric=range(2, 7),
        )
    delivered = [node for node in report.nodes if node.sent or any(getattr(node, o) for o in DELIVERY_OUTCOMES)]
    if delivered:
        lines += ["", "messages, from their outcome events (accepted = the provider took it):"]
        lines += _table(
            ["node", "sent", *DELIVERY_OUTCOMES, "failed", "skipped"],
            [
                [
                    node.node_id,
                    str(node.sent),
                    *(str(getattr(node, outcome)) for outcome in DELIVERY_OUTCOMES),
                    str(node.failed),
                    str(node.skipped),
                ]
                for node in delivered
            ],
            numeric=range(1, len(DELIVERY_OUTCOMES) + 4),
        )
    if report.channels:
        lines += ["", "channels, enrollments sent a message on it and of those converted:"]
        lines += _table(
            ["channel", "sent", "converted", "conv.", "last touch"],
            [
                [
                    channel.channel,
                    str(channel.sent),
                    str(channel.converted),
                    _percent(_rate(channel.converted, channel.sent)),
                    str(channel.last_touch),
                ]
                for channel in report.channels
            ],
            numeric=range(1, 5),
        )
        lines.append(f"attribution: {report.attribution_rule}")
    if report.paths:
        lines += ["", "paths, the nodes a run went through in order, most travelled first:"]
        lines += _table(
            ["entered", "converted", "conv.", "path"],
            [
                [str(path.entered), str(path.converted), _percent(path.conversion_rate), " > ".join(path.nodes)]
                for path in report.paths
            ],
            numeric=range(0, 3),
        )
        if report.other_paths:
            lines.append(f"and {report.other_paths} runs on other paths")
    if report.stages:
        lines += ["", f"stages ({report.stage_model}), reached = at a node of the stage or a later one:"]
        lines += _table(
            ["stage", "reached", "went on", "in progress", "dropped", "drop-off"],
            [
                [
                    stage.stage,
                    str(stage.reached),
                    "-" if stage.went_on is None else str(stage.went_on),
                    str(stage.in_progress),
                    str(stage.dropped),
                    _percent(stage.drop_off_rate),
                ]
                for stage in report.stages
            ],
            numeric=range(1, 6),
        )
    for result in report.experiments:
        lines += ["", f"experiment at {result.node_id} (control: {result.control}): {result.verdict}"]
        lines += _table(
            ["arm", "entered", "converted", "rate", "uplift", "95 % CI", "p"],
            [
                [
                    arm.name + (" (control)" if arm.control else ""),
                    str(arm.entered),
                    str(arm.converted),
                    _percent(arm.rate),
                    "-" if arm.uplift is None else f"{100 * arm.uplift:+.1f} pt",
                    "-"
                    if arm.uplift_low is None or arm.uplift_high is None
                    else f"{100 * arm.uplift_low:+.1f} to {100 * arm.uplift_high:+.1f}",
                    "-" if arm.p_value is None else f"{arm.p_value:.3f}" + ("" if arm.enough_data else " (few)"),
                ]
                for arm in result.arms
            ],
            numeric=range(1, 7),
        )
    return "\n".join(lines)


def _headline(report: FunnelReport) -> str:
    versions = ", ".join(f"v{version}" for version in report.versions) or "no version"
    shown = f", nodes of v{report.version}" if report.version else ""
    window = ""
    if report.since or report.until:
        window = f", window {_stamp(report.since) or '…'} to {_stamp(report.until) or '…'}"
    span = (
        f"{report.steps} steps from {_stamp(report.first_step_at)} to {_stamp(report.last_step_at)}"
        if report.steps
        else "no steps recorded"
    )
    return f"{report.journey_id} ({versions}{shown}{window}): {span}"


def _other(node: NodeFunnel) -> str:
    shown = {"sent", "failed", "skipped", "held", "branched", *_ENDINGS, *DELIVERY_OUTCOMES}
    parts = [f"{outcome} {count}" for outcome, count in node.outcomes.items() if outcome not in shown]
    parts += [f"{branch} {count}" for branch, count in node.branches.items()]
    return ", ".join(parts)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], numeric: Iterable[int]) -> list[str]:
    right = set(numeric)
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(width) if column in right else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [line(header), *(line(row) for row in rows)]


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{100 * rate:.1f} %"


def _stamp(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}Z" if moment else ""
