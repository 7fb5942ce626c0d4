"""Journey definitions ("kịch bản"): versioned YAML that marketers edit and the engine runs.

A journey is a small graph. One ``trigger`` node lets a visitor in; every other node names the
node(s) that follow it by id (``next``, ``yes``/``no``, ``happened``/``timed_out``, split branches):

    id: services-consult
    version: 3
    status: active
    nodes:
      viewed:   {type: trigger, event: product_viewed, next: form,
                 where: [{property: dwell_seconds, op: gte, value: 15}],
                 unless: {event: add_to_cart, match_property: product_id, before: 15s,
                          before_property: dwell_seconds}}
      form:     {type: send, channel: onsite_form, content: {...}, next: wait_day}
      wait_day: {type: wait, duration: P1D, next: done}
      done:     {type: exit}

Everything here is validated when the journey is loaded, so a mistake (an unknown node id, an
unreachable node, a loop that never waits, a web push without a title) fails at publish time with
a message that names the node, not at 3 a.m. in a visitor's browser.

Durations are ISO-8601 (``PT10S``, ``P1D``, ``P1DT12H``) or short (``10s``, ``15m``, ``2h``, ``1d``,
``2w``, ``1h30m``); times of day are ``"HH:MM"`` in the visitor's time zone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from footprint.models.channels import MessageCategory
from footprint.models.events import MAX_EVENT_NAME_LENGTH, canonical_event_name
from footprint.models.stages import stage_problems
from footprint.models.timing import VISITOR_CHANNELS, Channel, Duration, QuietHours, TimeOfDay, TimeZoneName

JOURNEY_ID_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
NODE_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"

EventName = Annotated[
    str,
    BeforeValidator(lambda value: canonical_event_name(value) if isinstance(value, str) else value),
    Field(min_length=1, max_length=MAX_EVENT_NAME_LENGTH),
]
NodeId = Annotated[str, Field(pattern=NODE_ID_PATTERN)]
# A stage of a stage model (footprint.models.stages): "interest", "conversion", "aware"...
StageName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]


def _as_list(value: object) -> object:
    return [value] if isinstance(value, str) else value


PropertyKeys = Annotated[
    list[str],
    BeforeValidator(_as_list),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------------------------------------
# Conditions
# ---------------------------------------------------------------------------------------------

Operator = Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "contains", "exists"]
_ORDERING_OPERATORS = frozenset({"gt", "gte", "lt", "lte"})


class Comparison(_Strict):
    op: Operator = "eq"
    value: Any = None

    @model_validator(mode="after")
    def _value_fits_operator(self) -> Comparison:
        if self.op == "in" and not isinstance(self.value, list):
            raise ValueError("op 'in' needs a list value, e.g. value: [a, b]")
        if self.op == "exists" and self.value is not None and not isinstance(self.value, bool):
            raise ValueError("op 'exists' takes value true (default) or false")
        if self.op in _ORDERING_OPERATORS and (self.value is None or isinstance(self.value, list | dict | bool)):
            raise ValueError(f"op '{self.op}' needs a number, a string or a date as value")
        if self.op == "contains" and self.value is None:
            raise ValueError("op 'contains' needs a value")
        return self


class PropertyCondition(Comparison):
    """A test on an event property; ``property`` may be a dotted path (``product.price``)."""

    property: str = Field(min_length=1)


class AttributeCondition(Comparison):
    """A test on a profile attribute (``city``, ``tags``, ``lifecycle_stage``, ``visit_count``...)."""

    attribute: str = Field(min_length=1)


class EventMatch(_Strict):
    """An event by name, optional property tests, and correlation with the trigger event:
    ``match_property: product_id`` means "the same product_id as the event that started the journey"."""

    event: EventName
    where: list[PropertyCondition] = Field(default_factory=list)
    match_property: PropertyKeys = Field(default_factory=list)


# The longest look-back ``before_property`` can ask for (a page left open all day is not a "reading time").
MAX_LOOK_BACK = timedelta(days=1)


class Unless(EventMatch):
    """The negative half of "did X and not Y": Y is this event (correlated with X by
    ``match_property``), and the window is decided by the events' own timestamps, never by when
    they happen to be processed.

    ``before`` looks back: a Y stamped up to that long before X (or, with ``before_property``, since
    the start of X's own duration, e.g. ``dwell_seconds``: the reading time), or any time after it
    that is known when X is processed, keeps the visitor out, and the journey starts at once.
    ``within`` waits forward: the entry is pending until ``within`` after X, and a Y stamped in that
    time cancels it. Both may be given. A Y that arrives late (stamped inside the window, processed
    after the journey started) ends the enrollment as ``exited``, never as a conversion."""

    before: Duration | None = Field(
        default=None,
        description="Look back this long before the trigger event: a matching event then keeps the visitor out.",
    )
    before_property: str | None = Field(
        default=None,
        min_length=1,
        description=(
            "A trigger event property holding seconds (e.g. dwell_seconds: how long the page was read); the "
            f"look-back reaches back that far when it is longer than `before` (at most {MAX_LOOK_BACK.days} day)."
        ),
    )
    within: Duration | None = Field(
        default=None,
        description="Wait this long after the trigger event before entering: a matching event in that time cancels it.",
    )

    @model_validator(mode="after")
    def _has_a_window(self) -> Unless:
        if self.before is None and self.before_property is None and self.within is None:
            raise ValueError("unless needs a window: `before` (look back), `within` (wait forward), or both")
        return self

    def look_back(self, trigger_properties: Mapping[str, Any]) -> timedelta:
        """How far before the trigger event the window starts."""
        reach = self.before or timedelta(0)
        if self.before_property is not None:
            seconds = trigger_properties.get(self.before_property)
            if isinstance(seconds, str):
                try:
                    seconds = float(seconds)  # browsers send numbers as strings now and then
                except ValueError:
                    seconds = None
            if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds > 0:
                reach = max(reach, timedelta(seconds=min(seconds, MAX_LOOK_BACK.total_seconds())))
        return reach


class ProfileCheck(AttributeCondition):
    kind: Literal["profile"]


class TriggerPropertyCheck(PropertyCondition):
    """A test on a property of the event that started the journey."""

    kind: Literal["trigger"]


class EventHistoryCheck(_Strict):
    """The visitor did ``event`` at least ``min_count`` times in the last ``within``."""

    kind: Literal["event_history"]
    event: EventName
    within: Duration
    min_count: int = Field(default=1, ge=1)


class ReachableCheck(_Strict):
    """The visitor can be reached on ``channel`` now: a web push subscription, an email or a phone
    with consent. Onsite channels and webhooks need no consent and are always reachable."""

    kind: Literal["reachable"]
    channel: Channel


BranchCondition = Annotated[
    ProfileCheck | TriggerPropertyCheck | EventHistoryCheck | ReachableCheck,
    Field(discriminator="kind"),
]

# ---------------------------------------------------------------------------------------------
# Message content
# ---------------------------------------------------------------------------------------------


class FormField(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str
    type: Literal["text", "tel", "email", "textarea", "select", "checkbox"] = "text"
    required: bool = False
    options: list[str] = Field(default_factory=list)


class PushAction(_Strict):
    """A button on a web push notification; ``url`` opens on its click (default: the push's url)."""

    action: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")
    title: str = Field(min_length=1)
    url: str | None = None


# A webhook's own signing secret, by its name under footprint/webhooks/ in Secrets Manager.
WEBHOOK_SECRET_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"  # noqa: S105 - a pattern, not a secret


class MessageContent(_Strict):
    """What a message says. String values may use Liquid (``{{ trigger.product_name }}``,
    ``{{ profile.first_name | default: 'bạn' }}``); the send function renders them."""

    title: str | None = None
    body: str | None = None
    url: str | None = None
    icon: str | None = None
    image: str | None = None
    cta: str | None = None
    offer_code: str | None = None
    # web_push: the small monochrome icon (Android), up to two buttons, and how the push service
    # treats it (RFC 8030): how long it keeps the push for an offline browser, its urgency, and a
    # topic under which a newer push replaces an undelivered older one. `tag` replaces an unread
    # notification of the same tag on screen (default: the journey id).
    badge: str | None = None
    actions: list[PushAction] = Field(default_factory=list, max_length=2)
    tag: str | None = Field(default=None, max_length=64)
    ttl: int | None = Field(default=None, ge=0, le=28 * 24 * 3600)
    urgency: Literal["very-low", "low", "normal", "high"] | None = None
    topic: str | None = Field(default=None, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")
    require_interaction: bool | None = None
    # email: the text part (else derived from html), the inbox preview line after the subject,
    # the From name (the address is the stack's SenderEmail) and a Reply-To address
    subject: str | None = None
    html: str | None = None
    text: str | None = None
    preheader: str | None = Field(default=None, max_length=200)
    from_name: str | None = Field(default=None, max_length=100)
    reply_to: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    # onsite_form
    fields: list[FormField] = Field(default_factory=list)
    submit_label: str | None = None
    # the consent line shown under the form; submitting it grants consent to the form's channels
    consent_text: str | None = None
    # sms: the sender id (brandname) shown to the recipient, where the operator allows one
    sender: str | None = Field(default=None, max_length=11, pattern=r"^[A-Za-z0-9 ]+$")
    # zalo_zns: an approved template and its parameters
    template_id: str | None = None
    params: dict[str, str] = Field(default_factory=dict)
    # webhook: JSON payload posted to `url`, with extra request headers (an API key, a tenant id);
    # the Standard Webhooks headers (webhook-id, -timestamp, -signature) are the stack's own.
    # `secret` signs it with the Secrets Manager secret footprint/webhooks/<secret> instead of the
    # stack's WebhookSigningSecret, so each receiver can hold its own key.
    payload: dict[str, Any] = Field(default_factory=dict)
    headers: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")], str] = Field(default_factory=dict)
    secret: str | None = Field(default=None, pattern=WEBHOOK_SECRET_NAME_PATTERN)
    # free variables for the template
    vars: dict[str, Any] = Field(default_factory=dict)

    @field_validator("headers")
    @classmethod
    def _leaves_signature_headers_alone(cls, headers: dict[str, str]) -> dict[str, str]:
        reserved = sorted(name for name in headers if name.lower() in RESERVED_WEBHOOK_HEADERS)
        if reserved:
            raise ValueError(f"{', '.join(reserved)}: set by Footprint when it signs the webhook")
        return headers


# Headers a webhook's signature depends on (Standard Webhooks): never taken from a journey.
RESERVED_WEBHOOK_HEADERS = frozenset(
    {"webhook-id", "webhook-timestamp", "webhook-signature", "idempotency-key", "content-type", "content-length"}
)


_CHANNEL_NEEDS: dict[str, tuple[tuple[str, ...], str]] = {
    # channel: (any of these content fields must be set, human explanation)
    "onsite_form": (("fields",), "an onsite form needs content.fields (name, phone, email...)"),
    "onsite_push": (("title", "body"), "an onsite push needs content.title or content.body"),
    "web_push": (("title",), "a web push needs content.title"),
    "email": (("subject",), "an email needs content.subject"),
    "sms": (("body",), "an SMS needs content.body"),
    "zalo_zns": (("template_id",), "a Zalo ZNS message needs content.template_id (an approved template)"),
    "webhook": (("url",), "a webhook needs content.url"),
}

# ---------------------------------------------------------------------------------------------
# Nodes
# ---------------------------------------------------------------------------------------------


class _Node(_Strict):
    # Stage of the journey model this step belongs to (AIDA "interest", ACCSR "conversion"...).
    stage: StageName | None = None
    label: str | None = None

    def exits(self) -> list[tuple[str, str]]:
        """(exit name, target node id) for every edge leaving this node."""
        return []

    @property
    def waits(self) -> bool:
        """Whether arriving here ends the step (the visitor stays until a wake-up or an event)."""
        return False


class TriggerNode(_Node):
    """Lets a visitor in when ``event`` happens with matching properties and the profile matches
    ``audience``, unless the ``unless`` event (correlated by ``unless.match_property``) happened in
    its window: looking back (``unless.before``: the visitor enters at once) and/or waiting forward
    (``unless.within``: the entry is pending until the window has passed)."""

    type: Literal["trigger"]
    event: EventName
    where: list[PropertyCondition] = Field(default_factory=list)
    audience: list[AttributeCondition] = Field(default_factory=list)
    unless: Unless | None = None
    next: NodeId

    def exits(self) -> list[tuple[str, str]]:
        return [("next", self.next)]


class WaitNode(_Node):
    """Waits ``duration``, or until the next ``until_local_time`` in the visitor's time zone, or
    both (first the duration, then the next such time). ``relative_to: entry`` measures the
    duration from the moment the visitor entered the journey ("1 day after the behaviour")."""

    type: Literal["wait"]
    duration: Duration | None = None
    until_local_time: TimeOfDay | None = None
    relative_to: Literal["arrival", "entry"] = "arrival"
    next: NodeId

    @model_validator(mode="after")
    def _says_how_long(self) -> WaitNode:
        if self.duration is None and self.until_local_time is None:
            raise ValueError("a wait needs a duration (e.g. PT10S, 1d) or until_local_time ('09:00')")
        return self

    def exits(self) -> list[tuple[str, str]]:
        return [("next", self.next)]

    @property
    def waits(self) -> bool:
        return True


class WaitForNode(_Node):
    """Waits for an event until ``timeout``; leaves by ``happened`` or ``timed_out``.

    ``match_property`` correlates with the trigger event (the same product_id); ``match_message``
    names an earlier send node and matches events that carry that message's ``journey_id`` and
    ``node_id`` properties (a click on that web push, a dismissal of that form)."""

    type: Literal["wait_for"]
    event: EventName
    where: list[PropertyCondition] = Field(default_factory=list)
    match_property: PropertyKeys = Field(default_factory=list)
    match_message: NodeId | None = None
    timeout: Duration
    happened: NodeId
    timed_out: NodeId

    def exits(self) -> list[tuple[str, str]]:
        return [("happened", self.happened), ("timed_out", self.timed_out)]

    @property
    def waits(self) -> bool:
        return True


class ConditionNode(_Node):
    """A yes/no branch on the profile, its event history, channel reachability or the trigger event."""

    type: Literal["condition"]
    conditions: list[BranchCondition] = Field(min_length=1)
    match: Literal["all", "any"] = "all"
    yes: NodeId
    no: NodeId

    def exits(self) -> list[tuple[str, str]]:
        return [("yes", self.yes), ("no", self.no)]


class SplitBranch(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
    weight: float = Field(gt=0)
    next: NodeId


class Holdout(_Strict):
    """A control group: its visitors get no messages but stay counted until the goal window ends,
    so conversions with and without the journey can be compared."""

    weight: float = Field(gt=0)


class SplitNode(_Node):
    """A weighted random split (A/B/n), the same branch every time for one visitor."""

    type: Literal["split"]
    branches: list[SplitBranch] = Field(min_length=1)
    holdout: Holdout | None = None

    @field_validator("branches")
    @classmethod
    def _distinct_names(cls, branches: list[SplitBranch]) -> list[SplitBranch]:
        names = [branch.name for branch in branches]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates or "holdout" in names:
            raise ValueError(f"branch names must be distinct and not 'holdout' (repeated: {duplicates})")
        return branches

    def exits(self) -> list[tuple[str, str]]:
        return [(f"branch {branch.name}", branch.next) for branch in self.branches]


class SendNode(_Node):
    """Sends one message on ``channel``: inline ``content``, or a ``template`` file (with
    ``content.vars`` for it)."""

    type: Literal["send"]
    channel: Channel
    # marketing (the default): needs the visitor's consent, and an email carries an unsubscribe
    # link; transactional (an order confirmation): needs only a deliverable address, no promotion.
    category: MessageCategory = "marketing"
    content: MessageContent | None = None
    template: str | None = None
    next: NodeId

    @model_validator(mode="after")
    def _has_something_to_say(self) -> SendNode:
        if self.template:
            return self
        if self.content is None:
            raise ValueError(f"a {self.channel} send needs content or a template")
        fields, explanation = _CHANNEL_NEEDS[self.channel]
        if not any(getattr(self.content, field) for field in fields):
            raise ValueError(explanation)
        if self.content.secret and self.channel != "webhook":
            raise ValueError(f"content.secret signs a webhook; a {self.channel} send is not signed")
        return self

    def exits(self) -> list[tuple[str, str]]:
        return [("next", self.next)]


class UpdateNode(_Node):
    """Changes the profile: attributes, tags, lifecycle stage."""

    type: Literal["update"]
    set_attributes: dict[str, Any] = Field(default_factory=dict)
    add_tags: list[str] = Field(default_factory=list)
    remove_tags: list[str] = Field(default_factory=list)
    lifecycle_stage: str | None = None
    next: NodeId

    @model_validator(mode="after")
    def _changes_something(self) -> UpdateNode:
        if not (self.set_attributes or self.add_tags or self.remove_tags or self.lifecycle_stage):
            raise ValueError("an update needs set_attributes, add_tags, remove_tags or lifecycle_stage")
        return self

    def exits(self) -> list[tuple[str, str]]:
        return [("next", self.next)]


class ExitNode(_Node):
    """The visitor has finished the journey (status ``completed``)."""

    type: Literal["exit"]

    @property
    def waits(self) -> bool:
        return True


Node = Annotated[
    TriggerNode | WaitNode | WaitForNode | ConditionNode | SplitNode | SendNode | UpdateNode | ExitNode,
    Field(discriminator="type"),
]

# ---------------------------------------------------------------------------------------------
# Journey-level rules
# ---------------------------------------------------------------------------------------------


class Goal(_Strict):
    """Reaching any of ``events`` within ``within`` of entry ends the journey as ``converted``."""

    events: list[EventMatch] = Field(min_length=1)
    within: Duration | None = None


class ReEnterOnce(_Strict):
    policy: Literal["once"]


class ReEnterOncePer(_Strict):
    """At most one entry per ``period``, counted from the previous entry."""

    policy: Literal["once_per"]
    period: Duration


class ReEnterEveryTime(_Strict):
    """Enter again on every trigger, once ``cooldown`` has passed since the previous run finished."""

    policy: Literal["every_time"]
    cooldown: Duration | None = None


ReEntry = Annotated[ReEnterOnce | ReEnterOncePer | ReEnterEveryTime, Field(discriminator="policy")]


class FrequencyCap(_Strict):
    """At most ``max_sends`` messages on ``channels`` per visitor in any ``period`` of this journey;
    a send over the cap is skipped."""

    max_sends: int = Field(ge=1)
    period: Duration
    channels: list[Channel] = Field(default_factory=lambda: list(VISITOR_CHANNELS))


class PerOccurrence(_Strict):
    """Run once per value of a trigger property (an order, a cart): several enrollments of one
    visitor side by side, each hearing only the events that name its value (or name none)."""

    property: str = Field(min_length=1, max_length=128)
    # A visitor's open enrollments in this journey at most; an occurrence beyond it does not enter.
    max_open: int = Field(default=20, ge=1, le=100)


class Journey(_Strict):
    id: str = Field(pattern=JOURNEY_ID_PATTERN, max_length=64)
    name: str = Field(min_length=1)
    status: Literal["draft", "active", "paused"] = "draft"
    version: int = Field(ge=1)
    description: str = ""
    # The sources (their source_id) whose visitors may enter; empty: every source of the stack.
    sources: list[str] = Field(default_factory=list)
    # The stage model the nodes' `stage` tags refer to: AIDA, ACC, ACCSR, ACPRA, ACCRA, value-journey
    # (footprint.models.stages), or a name of your own with its `stages` in order.
    stage_model: str | None = Field(default=None, min_length=1, max_length=64)
    stages: list[StageName] = Field(default_factory=list, max_length=20)
    # For visitors whose profile has no (valid) time zone.
    default_timezone: TimeZoneName = "UTC"
    nodes: dict[NodeId, Node] = Field(min_length=2)
    goal: Goal | None = None
    exit_when: list[EventMatch] = Field(default_factory=list)
    re_entry: ReEntry = Field(default_factory=lambda: ReEnterOnce(policy="once"))
    # Unset: one enrollment per visitor (re-entry decides what a second trigger does). Set: one per
    # occurrence; re-entry then applies within one occurrence.
    per_occurrence: PerOccurrence | None = None
    frequency_cap: FrequencyCap | None = None
    quiet_hours: QuietHours | None = None

    @model_validator(mode="after")
    def _graph_is_sound(self) -> Journey:
        tagged = {node_id: node.stage for node_id, node in self.nodes.items() if node.stage is not None}
        problems = journey_graph_problems(self) + stage_problems(self.stage_model, self.stages, tagged)
        if problems:
            raise ValueError("the journey graph is not valid:\n  - " + "\n  - ".join(problems))
        return self

    @property
    def trigger_id(self) -> str:
        return next(node_id for node_id, node in self.nodes.items() if isinstance(node, TriggerNode))

    @property
    def trigger(self) -> TriggerNode:
        node = self.nodes[self.trigger_id]
        assert isinstance(node, TriggerNode)
        return node


def journey_graph_problems(journey: Journey) -> list[str]:
    """Everything wrong with the node graph, in words a marketer can act on."""
    problems: list[str] = []
    nodes = journey.nodes
    known = ", ".join(nodes)
    triggers = [node_id for node_id, node in nodes.items() if isinstance(node, TriggerNode)]
    if len(triggers) != 1:
        problems.append(f"a journey needs exactly one trigger node (found {len(triggers)}: {triggers})")
    for node_id, node in nodes.items():
        for exit_name, target in node.exits():
            if target not in nodes:
                problems.append(f"node {node_id!r}: {exit_name} {target!r} is not a node of this journey ({known})")
            elif isinstance(nodes[target], TriggerNode):
                problems.append(f"node {node_id!r}: {exit_name} leads back to the trigger {target!r}")
        if isinstance(node, WaitForNode) and node.match_message is not None:
            target_node = nodes.get(node.match_message)
            if not isinstance(target_node, SendNode):
                problems.append(f"node {node_id!r}: match_message {node.match_message!r} is not a send node")
    if len(triggers) != 1:
        return problems

    reachable = _reachable_from(nodes, triggers[0])
    unreachable = [node_id for node_id in nodes if node_id not in reachable]
    if unreachable:
        problems.append(f"nodes {unreachable} cannot be reached from the trigger {triggers[0]!r}")
    cycle = _instant_cycle(nodes)
    if cycle:
        problems.append("the loop " + " -> ".join(cycle) + " never waits; put a wait or wait_for node in it")
    return problems


def _reachable_from(nodes: Mapping[str, _Node], start: str) -> set[str]:
    seen = {start}
    frontier = [start]
    while frontier:
        for _, target in nodes[frontier.pop()].exits():
            if target in nodes and target not in seen:
                seen.add(target)
                frontier.append(target)
    return seen


def _instant_cycle(nodes: Mapping[str, _Node]) -> list[str] | None:
    """A loop made only of nodes that run at once (it would spin forever in one step)."""
    instant = {node_id for node_id, node in nodes.items() if not node.waits}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node_id: str) -> list[str] | None:
        state[node_id] = 1
        path.append(node_id)
        for _, target in nodes[node_id].exits():
            if target not in instant:  # a waiting node, or an unknown id (reported above)
                continue
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        path.pop()
        state[node_id] = 2
        return None

    for node_id in sorted(instant):
        if node_id not in state:
            found = visit(node_id)
            if found:
                return found
    return None


# ---------------------------------------------------------------------------------------------
# Loading and the JSON Schema
# ---------------------------------------------------------------------------------------------


# Journey YAML nests a few levels and holds a few hundred values; far more is refused unread.
MAX_YAML_DEPTH = 64
MAX_YAML_NODES = 100_000


class JourneyDefinitionError(ValueError):
    """A journey file that cannot be used, with one readable line per problem."""


def parse_journey(data: object, *, origin: str = "journey") -> Journey:
    """Validate a journey from parsed YAML/JSON data."""
    try:
        return Journey.model_validate(data)
    except ValidationError as error:
        lines = []
        for problem in error.errors(include_url=False):
            where = ".".join(str(part) for part in problem["loc"]) or "(top level)"
            message = str(problem["msg"]).removeprefix("Value error, ")
            lines.append(f"{where}: {message}")
        raise JourneyDefinitionError(f"{origin} is not a valid journey:\n" + "\n".join(lines)) from error


def load_journey_yaml(text: str, *, origin: str = "journey") -> Journey:
    """Parse and validate journey YAML."""
    return parse_journey(read_journey_yaml(text, origin=origin), origin=origin)


def read_journey_yaml(text: str, *, origin: str = "journey") -> object:
    """Journey YAML as plain data, with YAML 1.2 scalars: only true/false are booleans, so
    ``yes:``/``no:`` stay keys, and ``19:30`` stays a time instead of the number 1170."""
    import yaml

    class JourneyYamlLoader(yaml.SafeLoader):
        """Refuses YAML nested too deeply for the (recursive) composer, or whose aliases expand to more
        nodes than any journey has ("billion laughs"), before anything walks it."""

        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self.depth = 0
            self.nodes = 0
            self.sizes: dict[int, int] = {}

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                node = super().compose_node(parent, index)
                self._count(self.sizes.get(id(node), 1))
                return node
            if self.depth >= MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_YAML_DEPTH} levels", mark)
            before = self.nodes
            self.depth += 1
            try:
                node = super().compose_node(parent, index)
            finally:
                self.depth -= 1
            self._count(1)
            self.sizes[id(node)] = self.nodes - before
            return node

        def _count(self, nodes: int) -> None:
            self.nodes += nodes
            if self.nodes > MAX_YAML_NODES:
                mark = self.peek_event().start_mark if self.check_event() else None
                raise yaml.composer.ComposerError(None, None, f"more than {MAX_YAML_NODES} values", mark)

    bool_tag, int_tag, float_tag = (f"tag:yaml.org,2002:{name}" for name in ("bool", "int", "float"))
    JourneyYamlLoader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag not in (bool_tag, int_tag, float_tag)]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    JourneyYamlLoader.add_implicit_resolver(
        bool_tag, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
    )
    JourneyYamlLoader.add_implicit_resolver(int_tag, re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789"))
    JourneyYamlLoader.add_implicit_resolver(
        float_tag,
        re.compile(r"^[-+]?(?:(?:0|[1-9][0-9]*)\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"),
        list("-+0123456789."),
    )
    try:
        return yaml.load(text, Loader=JourneyYamlLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        raise JourneyDefinitionError(f"{origin} is not valid YAML: {error}") from error
    except ValueError as error:  # an integer of more than 4,300 digits (Python's conversion limit)
        raise JourneyDefinitionError(f"{origin} is not valid YAML: a number has more than 4300 digits") from error


def journey_json_schema() -> dict[str, Any]:
    """The JSON Schema of a journey file (journeys/schema.json), for editors and CI."""
    schema = Journey.model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Footprint journey",
        **{key: value for key, value in schema.items() if key != "title"},
    }


def render_journey_json_schema() -> str:
    return json.dumps(journey_json_schema(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"
