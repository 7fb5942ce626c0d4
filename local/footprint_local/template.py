"""Reads infra/template.yaml, so the local stack creates exactly what SAM deploys (one source of truth).

The local stack never declares a table, a queue or an environment variable of its own: it asks this module
what the template declares and mirrors it on moto. Short-form CloudFormation tags (!Ref, !GetAtt, !Sub, ...)
are read as their long JSON form ({"Ref": ...}, {"Fn::GetAtt": [...]}), the shape the SAM translator takes too.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

import yaml

if TYPE_CHECKING:
    from mypy_boto3_sqs.literals import QueueAttributeNameType

LOCAL_REGION: Final = "us-east-1"
LOCAL_ACCOUNT_ID: Final = "123456789012"
LOCAL_STACK_NAME: Final = "footprint-local"

# Short tags whose long form is "Fn::<Name>"; !Ref and !Condition keep their own names.
_FN_TAGS: Final = frozenset(
    {
        "And",
        "Base64",
        "Cidr",
        "Equals",
        "FindInMap",
        "GetAtt",
        "GetAZs",
        "If",
        "ImportValue",
        "Join",
        "Length",
        "Not",
        "Or",
        "Select",
        "Split",
        "Sub",
        "ToJsonString",
        "Transform",
    }
)
_SUB_VARIABLE: Final = re.compile(r"\$\{([^}]+)\}")


class TemplateError(ValueError):
    """The template does not have the shape the local stack relies on, or a value cannot be resolved."""


def default_template_path() -> Path:
    """infra/template.yaml of the checkout this package runs from (the local stack runs from a checkout)."""
    return Path(__file__).resolve().parents[2] / "infra" / "template.yaml"


# ---------------------------------------------------------------------------------------------- YAML


class _CloudFormationLoader(yaml.SafeLoader):
    """A safe loader that also understands CloudFormation's short tags."""


def _construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:  # pragma: no cover - yaml has no other node kinds
        raise TemplateError(f"unsupported node for !{tag_suffix}")

    if tag_suffix in ("Ref", "Condition"):
        return {tag_suffix: value}
    if tag_suffix not in _FN_TAGS:
        raise TemplateError(f"unknown CloudFormation tag !{tag_suffix} at {node.start_mark}")
    if tag_suffix == "GetAtt" and isinstance(value, str):
        # !GetAtt Resource.Attribute.Maybe.Dotted -> ["Resource", "Attribute.Maybe.Dotted"]
        logical_id, _, attribute = value.partition(".")
        value = [logical_id, attribute]
    return {f"Fn::{tag_suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _construct_tag)


def parse_template_text(text: str) -> dict[str, Any]:
    """The template as plain data, intrinsic functions in their long JSON form."""
    document = yaml.load(text, Loader=_CloudFormationLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(document, dict) or not isinstance(document.get("Resources"), dict):
        raise TemplateError("a template is a mapping with a Resources section")
    return document


# ---------------------------------------------------------------------------------------------- specs


@dataclass(frozen=True, slots=True)
class TableSpec:
    """What dynamodb.create_table and update_time_to_live need to recreate a template table."""

    logical_id: str
    key_schema: list[dict[str, str]]
    attribute_definitions: list[dict[str, str]]
    billing_mode: str = "PAY_PER_REQUEST"
    stream_view_type: str | None = None
    ttl_attribute: str | None = None
    global_secondary_indexes: list[dict[str, Any]] = field(default_factory=list)

    def create_table_kwargs(self, table_name: str) -> dict[str, Any]:
        """Keyword arguments of dynamodb.create_table for this table under the given physical name."""
        kwargs: dict[str, Any] = {
            "TableName": table_name,
            "KeySchema": self.key_schema,
            "AttributeDefinitions": self.attribute_definitions,
            "BillingMode": self.billing_mode,
        }
        if self.stream_view_type:
            kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": self.stream_view_type}
        if self.global_secondary_indexes:
            kwargs["GlobalSecondaryIndexes"] = self.global_secondary_indexes
        return kwargs


# CloudFormation properties of AWS::SQS::Queue that are plain CreateQueue attributes of the same name.
_QUEUE_ATTRIBUTE_PROPERTIES: Final = (
    "ContentBasedDeduplication",
    "DelaySeconds",
    "FifoQueue",
    "KmsDataKeyReusePeriodSeconds",
    "KmsMasterKeyId",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "SqsManagedSseEnabled",
    "VisibilityTimeout",
)


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """An SQS queue of the template; the redrive target is named by logical id (its ARN is only known later)."""

    logical_id: str
    attributes: dict[str, str]
    redrive_target_logical_id: str | None = None
    max_receive_count: int | None = None

    def create_queue_attributes(self, dead_letter_arn: str | None = None) -> dict[QueueAttributeNameType, str]:
        """Attributes of sqs.create_queue; pass the dead-letter queue's ARN when the queue has one."""
        # The names are CreateQueue attribute names by construction (_QUEUE_ATTRIBUTE_PROPERTIES).
        attributes = cast("dict[QueueAttributeNameType, str]", dict(self.attributes))
        if self.redrive_target_logical_id is not None:
            if dead_letter_arn is None:
                raise TemplateError(f"{self.logical_id} redrives to {self.redrive_target_logical_id}: need its ARN")
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": self.max_receive_count}
            )
        return attributes


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """A Lambda function of the template, with its code folder resolved against the template's folder."""

    logical_id: str
    code_path: Path
    handler: str
    timeout_seconds: int
    memory_mb: int


@dataclass(frozen=True, slots=True)
class EventSourceSpec:
    """A stream or queue that invokes a function, as its event source mapping is configured."""

    function_logical_id: str
    name: str
    source_type: str  # "DynamoDB" or "SQS"
    source_logical_id: str
    batch_size: int
    maximum_batching_window_seconds: int = 0
    starting_position: str | None = None
    report_batch_item_failures: bool = False
    bisect_batch_on_function_error: bool = False
    maximum_retry_attempts: int | None = None
    maximum_record_age_seconds: int | None = None
    on_failure_logical_id: str | None = None
    filter_patterns: list[dict[str, Any]] = field(default_factory=list)

    def accepts(self, record: Mapping[str, Any]) -> bool:
        """Whether Lambda's event filtering would pass this record (any pattern matching is enough)."""
        if not self.filter_patterns:
            return True
        if self.source_type == "SQS":
            record = _with_json_body(record)
        return any(_matches_pattern(pattern, record) for pattern in self.filter_patterns)


@dataclass(frozen=True, slots=True)
class HttpRoute:
    """One route of an HTTP API and the function behind it."""

    method: str
    path: str
    function_logical_id: str
    api_logical_id: str | None = None


@dataclass(frozen=True, slots=True)
class PhysicalResource:
    """What the template's !Ref and !GetAtt of one resource resolve to in a running stack."""

    ref: str
    attributes: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def table(cls, name: str, arn: str, stream_arn: str | None = None) -> PhysicalResource:
        attributes = {"Arn": arn} | ({"StreamArn": stream_arn} if stream_arn else {})
        return cls(ref=name, attributes=attributes)

    @classmethod
    def queue(cls, url: str, arn: str) -> PhysicalResource:
        return cls(ref=url, attributes={"Arn": arn, "QueueUrl": url, "QueueName": arn.rsplit(":", 1)[-1]})

    @classmethod
    def named(cls, name: str, arn: str | None = None) -> PhysicalResource:
        return cls(ref=name, attributes={"Arn": arn} if arn else {})


# ---------------------------------------------------------------------------------------------- template


class Template:
    """A parsed SAM template and the views of it the local stack needs."""

    def __init__(self, document: Mapping[str, Any], base_dir: Path) -> None:
        self.document = document
        self.base_dir = base_dir

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return dict(self.document["Resources"])

    def resources_of_type(self, resource_type: str) -> Iterator[tuple[str, dict[str, Any]]]:
        for logical_id, resource in self.resources.items():
            if resource.get("Type") == resource_type:
                yield logical_id, resource.get("Properties") or {}

    @property
    def parameter_defaults(self) -> dict[str, Any]:
        return {
            name: spec["Default"] for name, spec in (self.document.get("Parameters") or {}).items() if "Default" in spec
        }

    @property
    def tables(self) -> list[TableSpec]:
        return [_table_spec(logical_id, props) for logical_id, props in self.resources_of_type("AWS::DynamoDB::Table")]

    @property
    def queues(self) -> list[QueueSpec]:
        """Every queue, dead-letter queues before the queues that redrive to them (creation order)."""
        specs = {
            logical_id: _queue_spec(logical_id, props)
            for logical_id, props in self.resources_of_type("AWS::SQS::Queue")
        }
        ordered: list[QueueSpec] = []

        def visit(spec: QueueSpec, path: tuple[str, ...]) -> None:
            if spec in ordered:
                return
            if spec.logical_id in path:
                raise TemplateError(f"redrive cycle through {spec.logical_id}")
            target = spec.redrive_target_logical_id
            if target is not None:
                if target not in specs:
                    raise TemplateError(f"{spec.logical_id} redrives to unknown queue {target}")
                visit(specs[target], (*path, spec.logical_id))
            ordered.append(spec)

        for spec in specs.values():
            visit(spec, ())
        return ordered

    @property
    def schedule_groups(self) -> list[str]:
        return [logical_id for logical_id, _ in self.resources_of_type("AWS::Scheduler::ScheduleGroup")]

    @property
    def functions(self) -> list[FunctionSpec]:
        defaults = self._function_globals()
        specs = []
        for logical_id, props in self.resources_of_type("AWS::Serverless::Function"):
            merged = defaults | props
            specs.append(
                FunctionSpec(
                    logical_id=logical_id,
                    code_path=(self.base_dir / str(merged["CodeUri"])).resolve(),
                    handler=str(merged["Handler"]),
                    timeout_seconds=int(merged.get("Timeout", 3)),
                    memory_mb=int(merged.get("MemorySize", 128)),
                )
            )
        return specs

    @property
    def event_source_mappings(self) -> list[EventSourceSpec]:
        specs = []
        for function_id, props in self.resources_of_type("AWS::Serverless::Function"):
            for name, event in (props.get("Events") or {}).items():
                if event.get("Type") in ("DynamoDB", "SQS"):
                    specs.append(_event_source_spec(function_id, name, event["Type"], event.get("Properties") or {}))
        return specs

    @property
    def http_routes(self) -> list[HttpRoute]:
        routes = []
        for function_id, props in self.resources_of_type("AWS::Serverless::Function"):
            for event in (props.get("Events") or {}).values():
                if event.get("Type") not in ("HttpApi", "Api"):
                    continue
                event_props = event.get("Properties") or {}
                api = event_props.get("ApiId") or event_props.get("RestApiId")
                routes.append(
                    HttpRoute(
                        method=str(event_props.get("Method", "ANY")).upper(),
                        path=str(event_props.get("Path", "$default")),
                        function_logical_id=function_id,
                        api_logical_id=_ref_target(api) if api is not None else None,
                    )
                )
        return routes

    def function_environment(
        self,
        physical: Mapping[str, PhysicalResource],
        function_logical_id: str | None = None,
        *,
        parameters: Mapping[str, Any] | None = None,
        stack_name: str = LOCAL_STACK_NAME,
        region: str = LOCAL_REGION,
        account_id: str = LOCAL_ACCOUNT_ID,
    ) -> dict[str, str]:
        """The environment a function sees: Globals, then the function's own variables, resolved.

        `physical` maps logical ids to what they are called in the running stack; `parameters` override the
        template's parameter defaults.
        """
        variables: dict[str, Any] = dict(((self._function_globals().get("Environment") or {}).get("Variables")) or {})
        if function_logical_id is not None:
            props = dict(self.resources_of_type("AWS::Serverless::Function")).get(function_logical_id)
            if props is None:
                raise TemplateError(f"no function {function_logical_id} in the template")
            variables |= (props.get("Environment") or {}).get("Variables") or {}

        resolver = _Resolver(
            self,
            physical,
            self.parameter_defaults | dict(parameters or {}),
            {
                "AWS::Region": region,
                "AWS::AccountId": account_id,
                "AWS::StackName": stack_name,
                "AWS::Partition": "aws",
                "AWS::URLSuffix": "amazonaws.com",
            },
        )
        environment: dict[str, str] = {}
        for name, raw in variables.items():
            value = resolver.resolve(raw)
            if value is _NO_VALUE:
                continue
            if not isinstance(value, str):
                raise TemplateError(f"environment variable {name} does not resolve to a string: {value!r}")
            environment[name] = value
        return environment

    def _function_globals(self) -> dict[str, Any]:
        return dict(((self.document.get("Globals") or {}).get("Function")) or {})


def load_template(path: Path | str | None = None) -> Template:
    """Parse a SAM template (by default the repository's infra/template.yaml)."""
    template_path = Path(path) if path is not None else default_template_path()
    return Template(parse_template_text(template_path.read_text(encoding="utf-8")), template_path.parent)


# ---------------------------------------------------------------------------------------------- helpers


def _table_spec(logical_id: str, props: Mapping[str, Any]) -> TableSpec:
    stream = props.get("StreamSpecification") or {}
    ttl = props.get("TimeToLiveSpecification") or {}
    try:
        return TableSpec(
            logical_id=logical_id,
            key_schema=[dict(key) for key in props["KeySchema"]],
            attribute_definitions=[dict(attribute) for attribute in props["AttributeDefinitions"]],
            billing_mode=str(props.get("BillingMode", "PROVISIONED")),
            stream_view_type=stream.get("StreamViewType"),
            ttl_attribute=ttl.get("AttributeName") if ttl.get("Enabled", False) else None,
            global_secondary_indexes=[dict(index) for index in props.get("GlobalSecondaryIndexes") or []],
        )
    except KeyError as missing:
        raise TemplateError(f"table {logical_id} has no {missing}") from missing


def _queue_spec(logical_id: str, props: Mapping[str, Any]) -> QueueSpec:
    attributes = {name: _attribute_text(props[name]) for name in _QUEUE_ATTRIBUTE_PROPERTIES if name in props}
    redrive = props.get("RedrivePolicy")
    if redrive is None:
        return QueueSpec(logical_id=logical_id, attributes=attributes)
    return QueueSpec(
        logical_id=logical_id,
        attributes=attributes,
        redrive_target_logical_id=_get_att_target(redrive["deadLetterTargetArn"], "Arn"),
        max_receive_count=int(redrive["maxReceiveCount"]),
    )


def _attribute_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        raise TemplateError(f"queue attributes must be literals locally, not {value!r}")
    return str(value)


def _event_source_spec(function_id: str, name: str, source_type: str, props: Mapping[str, Any]) -> EventSourceSpec:
    if source_type == "DynamoDB":
        source = _get_att_target(props["Stream"], "StreamArn")
        default_batch_size = 100
    else:
        source = _get_att_target(props["Queue"], "Arn")
        default_batch_size = 10
    on_failure = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
    patterns = [
        json.loads(entry["Pattern"]) if isinstance(entry["Pattern"], str) else dict(entry["Pattern"])
        for entry in (props.get("FilterCriteria") or {}).get("Filters") or []
    ]
    return EventSourceSpec(
        function_logical_id=function_id,
        name=name,
        source_type=source_type,
        source_logical_id=source,
        batch_size=int(props.get("BatchSize", default_batch_size)),
        maximum_batching_window_seconds=int(props.get("MaximumBatchingWindowInSeconds", 0)),
        starting_position=props.get("StartingPosition"),
        report_batch_item_failures="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
        bisect_batch_on_function_error=bool(props.get("BisectBatchOnFunctionError", False)),
        maximum_retry_attempts=_optional_int(props.get("MaximumRetryAttempts")),
        maximum_record_age_seconds=_optional_int(props.get("MaximumRecordAgeInSeconds")),
        on_failure_logical_id=_get_att_target(on_failure, "Arn") if on_failure is not None else None,
        filter_patterns=patterns,
    )


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _get_att_target(value: Any, attribute: str) -> str:
    """The logical id in {"Fn::GetAtt": [id, attribute]}; the local stack only follows references."""
    if isinstance(value, dict) and isinstance(value.get("Fn::GetAtt"), list):
        logical_id, actual = value["Fn::GetAtt"]
        if actual == attribute:
            return str(logical_id)
    raise TemplateError(f"expected !GetAtt <resource>.{attribute}, got {value!r}")


def _ref_target(value: Any) -> str:
    if isinstance(value, dict) and isinstance(value.get("Ref"), str):
        return value["Ref"]
    raise TemplateError(f"expected !Ref <resource>, got {value!r}")


# Lambda event filtering (the subset worth mirroring locally): lists of literals, prefix, exists, anything-but.
def _matches_pattern(pattern: Mapping[str, Any], data: Any) -> bool:
    if not isinstance(data, Mapping):
        return False
    for key, expected in pattern.items():
        if isinstance(expected, Mapping):
            if not _matches_pattern(expected, data.get(key)):
                return False
        elif isinstance(expected, list):
            if not _matches_any(expected, key in data, data.get(key)):
                return False
        else:
            raise TemplateError(f"filter pattern values are lists or objects, got {expected!r}")
    return True


def _matches_any(rules: Sequence[Any], present: bool, value: Any) -> bool:
    candidates = value if isinstance(value, list) else [value]
    for rule in rules:
        if isinstance(rule, Mapping):
            if _matches_rule(rule, present, candidates):
                return True
        elif present and rule in candidates:
            return True
    return False


def _matches_rule(rule: Mapping[str, Any], present: bool, candidates: Sequence[Any]) -> bool:
    if "exists" in rule:
        return bool(rule["exists"]) == present
    if "prefix" in rule:
        return present and any(isinstance(item, str) and item.startswith(rule["prefix"]) for item in candidates)
    if "anything-but" in rule:
        excluded = rule["anything-but"]
        excluded = excluded if isinstance(excluded, list) else [excluded]
        return present and all(item not in excluded for item in candidates)
    raise TemplateError(f"filter rule not mirrored locally: {dict(rule)!r}")


def _with_json_body(record: Mapping[str, Any]) -> dict[str, Any]:
    # Lambda matches SQS filter patterns on "body" as JSON when the body is JSON.
    copy = dict(record)
    body = copy.get("body")
    if isinstance(body, str):
        with contextlib.suppress(ValueError):
            copy["body"] = json.loads(body)
    return copy


# ---------------------------------------------------------------------------------------------- intrinsics


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


_NO_VALUE: Final = _NoValue()


class _Resolver:
    """Evaluates the intrinsic functions an environment uses, against a running stack's names."""

    def __init__(
        self,
        template: Template,
        physical: Mapping[str, PhysicalResource],
        parameters: Mapping[str, Any],
        pseudo: Mapping[str, str],
    ) -> None:
        self._template = template
        self._physical = physical
        self._parameters = parameters
        self._pseudo = pseudo

    def resolve(self, value: Any) -> Any:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        if isinstance(value, str):
            return value
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if isinstance(value, dict) and len(value) == 1:
            ((function, argument),) = value.items()
            handlers = {
                "Ref": self._ref,
                "Fn::GetAtt": self._fn_getatt,
                "Fn::Sub": self._fn_sub,
                "Fn::Join": self._fn_join,
                "Fn::Select": self._fn_select,
                "Fn::Split": self._fn_split,
                "Fn::If": self._fn_if,
            }
            if function in handlers:
                return handlers[function](argument)
        raise TemplateError(f"cannot resolve {value!r} locally")

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self._pseudo:
            return self._pseudo[name]
        parameters = self._template.document.get("Parameters") or {}
        if name in parameters:
            if name not in self._parameters:
                raise TemplateError(f"parameter {name} has no default and no value")
            value = self._parameters[name]
            if "List" in str(parameters[name].get("Type", "")) and isinstance(value, str):
                return [item.strip() for item in value.split(",")]
            return self.resolve(value)
        return self._resource(name).ref

    def _fn_getatt(self, argument: Sequence[str]) -> str:
        logical_id, attribute = argument
        attributes = self._resource(logical_id).attributes
        if attribute not in attributes:
            raise TemplateError(f"no {attribute} given for {logical_id}")
        return attributes[attribute]

    def _fn_sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        local = {name: self.resolve(raw) for name, raw in variables.items()}

        def substitute(match: re.Match[str]) -> str:
            expression = match.group(1)
            if expression.startswith("!"):
                return "${" + expression[1:] + "}"
            if expression in local:
                return str(local[expression])
            if "." in expression and not expression.startswith("AWS::"):
                logical_id, attribute = expression.split(".", 1)
                return self._fn_getatt([logical_id, attribute])
            resolved = self._ref(expression)
            if not isinstance(resolved, str):
                raise TemplateError(f"${{{expression}}} is not a string in !Sub")
            return resolved

        return _SUB_VARIABLE.sub(substitute, text)

    def _fn_join(self, argument: Sequence[Any]) -> str:
        delimiter, items = argument
        return str(delimiter).join(str(item) for item in self.resolve(items))

    def _fn_select(self, argument: Sequence[Any]) -> Any:
        index, items = argument
        return self.resolve(items)[int(self.resolve(index))]

    def _fn_split(self, argument: Sequence[Any]) -> list[str]:
        delimiter, text = argument
        return str(self.resolve(text)).split(delimiter)

    def _fn_if(self, argument: Sequence[Any]) -> Any:
        condition, when_true, when_false = argument
        return self.resolve(when_true if self._condition(condition) else when_false)

    def _condition(self, name: str) -> bool:
        conditions = self._template.document.get("Conditions") or {}
        if name not in conditions:
            raise TemplateError(f"no condition {name}")
        return self._truth(conditions[name])

    def _truth(self, expression: Any) -> bool:
        if not isinstance(expression, dict) or len(expression) != 1:
            raise TemplateError(f"not a condition: {expression!r}")
        ((function, argument),) = expression.items()
        if function == "Condition":
            return self._condition(argument)
        if function == "Fn::Equals":
            left, right = (self.resolve(item) for item in argument)
            return bool(left == right)
        if function == "Fn::Not":
            return not self._truth(argument[0])
        if function == "Fn::And":
            return all(self._truth(item) for item in argument)
        if function == "Fn::Or":
            return any(self._truth(item) for item in argument)
        raise TemplateError(f"condition function {function} not mirrored locally")

    def _resource(self, logical_id: str) -> PhysicalResource:
        if logical_id not in self._physical:
            known = "a resource" if logical_id in self._template.resources else "nothing in the template"
            raise TemplateError(f"{logical_id} ({known}) has no physical resource in this stack")
        return self._physical[logical_id]
