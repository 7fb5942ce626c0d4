"""What SAM deploys: infra/template.yaml translated offline to CloudFormation, its wiring checked.

The SAM translator runs here without AWS (the managed-policy loader is a stub), so these tests see the
event source mappings, roles and API that `sam deploy` would create, not just the SAM shorthand.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint_file
from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform

from footprint.settings import Settings
from footprint_local.template import load_template, parse_template_text
from tests.routes import ADMIN_ROUTES as ALL_ADMIN_ROUTES
from tests.routes import V1_PATHS

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "infra" / "template.yaml"
ADMIN_ROUTES = {(method.lower(), path) for method, path in ALL_ADMIN_ROUTES}  # OpenAPI's lower-case methods
FOURTEEN_DAYS = 14 * 24 * 3600
# Managed policies SAM attaches for logging, tracing and polling streams/queues; anything else is a change
# worth a review.
EXPECTED_MANAGED_POLICIES = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
    "arn:aws:iam::aws:policy/service-role/AWSLambdaDynamoDBExecutionRole",
    "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole",
}
READ_ONLY_ACTION = re.compile(r"^[a-z0-9-]+:(Get|List|Describe|Query|Scan|BatchGet|ConditionCheck)")
TABLE_WRITE_ACTIONS = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}


class OfflineManagedPolicyLoader(ManagedPolicyLoader):
    """The template names no managed policy itself, so the translator never needs IAM to look one up."""

    def __init__(self) -> None:
        pass

    def load(self) -> dict[str, str]:
        return {}


@pytest.fixture(scope="module")
def resources() -> dict[str, dict[str, Any]]:
    document = copy.deepcopy(load_template(TEMPLATE_PATH).document)
    # `sam deploy` uploads code first; the translator only accepts S3 locations.
    for resource in document["Resources"].values():
        properties = resource.get("Properties") or {}
        for code_property in ("CodeUri", "ContentUri"):
            if code_property in properties:
                properties[code_property] = "s3://footprint-artifacts/code.zip"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")  # the translator builds ARNs for a partition
        translated = transform(document, {}, OfflineManagedPolicyLoader())
    return dict(translated["Resources"])


# ------------------------------------------------------------------------------------------- helpers


def of_type(resources: dict[str, dict[str, Any]], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource.get("Properties", {})
        for logical_id, resource in resources.items()
        if resource["Type"] == resource_type
    }


def get_att_target(value: Any) -> str:
    assert isinstance(value, dict), value
    assert "Fn::GetAtt" in value, value
    return str(value["Fn::GetAtt"][0])


def event_source_mappings(resources: dict[str, dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """(source logical id, function logical id) -> mapping properties."""
    return {
        (get_att_target(props["EventSourceArn"]), props["FunctionName"]["Ref"]): props
        for props in of_type(resources, "AWS::Lambda::EventSourceMapping").values()
    }


def role_statements(role: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for policy in role.get("Policies", []):
        yield from unconditional(policy["PolicyDocument"]["Statement"])


def unconditional(statements: list[Any]) -> Iterator[dict[str, Any]]:
    """Statements, a conditional one (Fn::If on a parameter) counted as granted: the worst case."""
    for statement in statements:
        if "Fn::If" in statement:
            yield from (branch for branch in statement["Fn::If"][1:] if "Effect" in branch)
        else:
            yield statement


def all_statements(resources: dict[str, dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for logical_id, role in of_type(resources, "AWS::IAM::Role").items():
        for statement in role_statements(role):
            yield logical_id, statement
    for policy_type in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for logical_id, policy in of_type(resources, policy_type).items():
            for statement in unconditional(policy["PolicyDocument"]["Statement"]):
                yield logical_id, statement


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def referenced_ids(expression: Any) -> set[str]:
    """Logical ids (and parameters) an IAM resource expression points at."""
    if isinstance(expression, list):
        return set().union(*(referenced_ids(item) for item in expression)) if expression else set()
    if not isinstance(expression, dict):
        return set()
    if "Ref" in expression:
        return {expression["Ref"]}
    if "Fn::GetAtt" in expression:
        return {expression["Fn::GetAtt"][0]}
    if "Fn::Sub" in expression:
        text, variables = (
            (expression["Fn::Sub"], {}) if isinstance(expression["Fn::Sub"], str) else expression["Fn::Sub"]
        )
        names = {name.split(".")[0] for name in re.findall(r"\$\{([^}!]+)\}", text)}
        return (names - set(variables) - {"AWS::Partition", "AWS::Region", "AWS::AccountId"}) | referenced_ids(
            list(variables.values())
        )
    return set().union(*(referenced_ids(value) for value in expression.values()))


def grants(role: dict[str, Any], action: str) -> set[str]:
    """Logical ids the role may perform `action` on."""
    targets: set[str] = set()
    for statement in role_statements(role):
        if statement["Effect"] == "Allow" and action in as_list(statement["Action"]):
            targets |= referenced_ids(statement["Resource"])
    return targets


# ------------------------------------------------------------------------------------------- event sources


def test_the_events_stream_isolates_poison_records_and_passes_only_inserts(
    resources: dict[str, dict[str, Any]],
) -> None:
    stream = event_source_mappings(resources)[("EventsTable", "EvaluateFunction")]

    assert stream["EventSourceArn"] == {"Fn::GetAtt": ["EventsTable", "StreamArn"]}
    assert stream["StartingPosition"] in {"TRIM_HORIZON", "LATEST"}
    assert stream["BisectBatchOnFunctionError"] is True
    assert 0 <= stream["MaximumRetryAttempts"] <= 10
    assert 60 <= stream["MaximumRecordAgeInSeconds"] <= 24 * 3600
    assert stream["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert stream["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["EvaluateFailureQueue", "Arn"]}
    assert [filter_["Pattern"] for filter_ in stream["FilterCriteria"]["Filters"]] == ['{"eventName": ["INSERT"]}']


def test_evaluate_may_park_failed_batches_in_its_failure_queue(resources: dict[str, dict[str, Any]]) -> None:
    assert "EvaluateFailureQueue" in grants(resources["EvaluateFunctionRole"]["Properties"], "sqs:SendMessage")


def test_queue_consumers_report_batch_item_failures(resources: dict[str, dict[str, Any]]) -> None:
    queues = of_type(resources, "AWS::SQS::Queue")
    queue_mappings = {key: props for key, props in event_source_mappings(resources).items() if key[0] in queues}

    assert set(queue_mappings) == {("TimersQueue", "EvaluateFunction"), ("SendQueue", "SendFunction")}
    for key, mapping in queue_mappings.items():
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"], key
        assert 1 <= mapping["BatchSize"] <= 10, key


def test_consumed_queues_redrive_to_dead_letter_queues_and_outlast_their_consumer(
    resources: dict[str, dict[str, Any]],
) -> None:
    queues = of_type(resources, "AWS::SQS::Queue")
    functions = of_type(resources, "AWS::Lambda::Function")

    for queue_id, function_id in event_source_mappings(resources):
        if queue_id not in queues:
            continue
        queue = queues[queue_id]
        dead_letter_queue = queues[get_att_target(queue["RedrivePolicy"]["deadLetterTargetArn"])]
        assert 1 <= queue["RedrivePolicy"]["maxReceiveCount"] <= 10, queue_id
        assert dead_letter_queue["MessageRetentionPeriod"] == FOURTEEN_DAYS, queue_id
        assert queue["VisibilityTimeout"] >= 6 * functions[function_id]["Timeout"], queue_id


def test_queues_are_encrypted_and_dead_letters_kept_fourteen_days(resources: dict[str, dict[str, Any]]) -> None:
    queues = of_type(resources, "AWS::SQS::Queue")

    assert all(queue["SqsManagedSseEnabled"] is True for queue in queues.values())
    assert all("QueueName" not in queue for queue in queues.values())
    for dead_letter_id in (
        "SendDeadLetterQueue",
        "TimersDeadLetterQueue",
        "EvaluateFailureQueue",
        "SchedulerDeadLetterQueue",
    ):
        assert queues[dead_letter_id]["MessageRetentionPeriod"] == FOURTEEN_DAYS


# ------------------------------------------------------------------------------------------- tables


def test_tables_are_on_demand_recoverable_encrypted_and_expire_items(resources: dict[str, dict[str, Any]]) -> None:
    tables = of_type(resources, "AWS::DynamoDB::Table")

    assert set(tables) == {
        "EventsTable",
        "ProfilesTable",
        "ConfigTable",
        "MessagesTable",
        "IdempotencyTable",
        "StepsTable",
    }
    for logical_id, table in tables.items():
        assert table["BillingMode"] == "PAY_PER_REQUEST", logical_id
        assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}, logical_id
        assert table["SSESpecification"]["SSEEnabled"] is True, logical_id
        assert table["TimeToLiveSpecification"]["Enabled"] is True, logical_id
        assert "TableName" not in table, logical_id
    assert tables["IdempotencyTable"]["TimeToLiveSpecification"]["AttributeName"] == "expiration"
    assert tables["EventsTable"]["TimeToLiveSpecification"]["AttributeName"] == "expires_at"
    assert tables["StepsTable"]["TimeToLiveSpecification"]["AttributeName"] == "expires_at"
    assert tables["EventsTable"]["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}


# ------------------------------------------------------------------------------------------- IAM


def test_no_statement_grants_every_action_or_writes_to_every_resource(resources: dict[str, dict[str, Any]]) -> None:
    for owner, statement in all_statements(resources):
        actions = as_list(statement["Action"])
        assert all(action != "*" and not action.endswith(":*") for action in actions), (owner, actions)
        writes = [action for action in actions if not READ_ONLY_ACTION.match(action)]
        if writes:
            assert "*" not in as_list(statement["Resource"]), (owner, writes)


def test_roles_carry_only_the_managed_policies_sam_needs(resources: dict[str, dict[str, Any]]) -> None:
    for logical_id, role in of_type(resources, "AWS::IAM::Role").items():
        managed = {arn if isinstance(arn, str) else str(arn) for arn in role.get("ManagedPolicyArns", [])}
        assert managed <= EXPECTED_MANAGED_POLICIES, logical_id


def test_each_function_writes_only_its_own_tables(resources: dict[str, dict[str, Any]]) -> None:
    tables = set(of_type(resources, "AWS::DynamoDB::Table"))

    def written_tables(role_id: str) -> set[str]:
        role = resources[role_id]["Properties"]
        return set().union(*(grants(role, action) for action in TABLE_WRITE_ACTIONS)) & tables

    assert written_tables("TrackFunctionRole") == {"EventsTable"}
    # Events are only read, from the stream; steps are only put, once each.
    assert written_tables("EvaluateFunctionRole") == {"ProfilesTable", "StepsTable"}
    assert grants(resources["EvaluateFunctionRole"]["Properties"], "dynamodb:PutItem") >= {"StepsTable"}
    assert "StepsTable" not in set().union(
        *(
            grants(resources["EvaluateFunctionRole"]["Properties"], action)
            for action in TABLE_WRITE_ACTIONS - {"dynamodb:PutItem"}
        )
    )
    # Send records the steps of messages it could not deliver, with PutItem only.
    # ...and keeps Zalo's OA token pair in one ConfigTable item.
    assert written_tables("SendFunctionRole") == {
        "MessagesTable",
        "IdempotencyTable",
        "ProfilesTable",
        "StepsTable",
        "ConfigTable",
    }
    send_role = resources["SendFunctionRole"]["Properties"]
    assert "StepsTable" not in set().union(
        *(grants(send_role, action) for action in TABLE_WRITE_ACTIONS - {"dynamodb:PutItem"})
    )
    assert written_tables("AdminFunctionRole") == {"ConfigTable"}


def test_the_admin_function_only_reads_scans_and_puts_journey_items_and_queries_steps(
    resources: dict[str, dict[str, Any]],
) -> None:
    role = resources["AdminFunctionRole"]["Properties"]
    statements = list(role_statements(role))

    assert {action for statement in statements for action in as_list(statement["Action"])} == {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Scan",
        "dynamodb:Query",
    }
    assert set().union(*(referenced_ids(statement["Resource"]) for statement in statements)) == {
        "ConfigTable",
        "StepsTable",
    }
    assert grants(role, "dynamodb:Query") == {"StepsTable"}


def test_evaluate_manages_schedules_of_its_group_and_passes_only_the_scheduler_role(
    resources: dict[str, dict[str, Any]],
) -> None:
    role = resources["EvaluateFunctionRole"]["Properties"]

    assert grants(role, "scheduler:CreateSchedule") == {"ScheduleGroup"}
    assert grants(role, "scheduler:DeleteSchedule") == {"ScheduleGroup"}
    assert grants(role, "iam:PassRole") == {"SchedulerRole"}
    pass_role = next(st for st in role_statements(role) if "iam:PassRole" in as_list(st["Action"]))
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}
    # SQSSendMessagePolicy grants sqs:SendMessage* on !GetAtt <Queue>.QueueName.
    assert grants(role, "sqs:SendMessage*") == {"SendQueue", "TimersQueue"}


def test_the_scheduler_role_only_delivers_wake_ups(resources: dict[str, dict[str, Any]]) -> None:
    role = resources["SchedulerRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]

    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    statements = list(role_statements(role))
    assert {action for statement in statements for action in as_list(statement["Action"])} == {"sqs:SendMessage"}
    assert grants(role, "sqs:SendMessage") == {"TimersQueue", "SchedulerDeadLetterQueue"}


def test_send_reads_only_its_channel_secrets_and_sends_only_as_the_sender(resources: dict[str, dict[str, Any]]) -> None:
    role = resources["SendFunctionRole"]["Properties"]

    assert grants(role, "secretsmanager:GetSecretValue") == {"VapidSecretName", "ZaloZnsSecretName"}
    assert grants(role, "ses:SendEmail") == {"SenderEmail"}
    config = next(st for st in role_statements(role) if "ConfigTable" in referenced_ids(st["Resource"]))
    assert config["Condition"] == {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["zalo_zns/oa_token"]}}
    ses = next(st for st in role_statements(role) if "ses:SendEmail" in as_list(st["Action"]))
    assert ses["Condition"] == {"StringEquals": {"ses:FromAddress": {"Ref": "SenderEmail"}}}


# ------------------------------------------------------------------------------------------- API and functions


def test_every_v1_path_is_a_post_route_to_the_track_function(resources: dict[str, dict[str, Any]]) -> None:
    body = resources["TrackingApi"]["Properties"]["Body"]
    permissions = of_type(resources, "AWS::Lambda::Permission")

    assert {path for path in body["paths"] if not path.startswith("/admin/")} == set(V1_PATHS)
    for path in V1_PATHS:
        integration = body["paths"][path]["post"]["x-amazon-apigateway-integration"]
        assert "${TrackFunction.Arn}" in integration["uri"]["Fn::Sub"], path
        assert integration["payloadFormatVersion"] == "2.0", path
        assert any(
            permission["FunctionName"] == {"Ref": "TrackFunction"}
            and permission["SourceArn"]["Fn::Sub"][0].endswith(f"/POST{path}")
            for permission in permissions.values()
        ), path


def test_admin_routes_need_iam_signatures_and_tracking_routes_need_none(
    resources: dict[str, dict[str, Any]],
) -> None:
    body = resources["TrackingApi"]["Properties"]["Body"]
    operations = {
        (method, path): operation for path, item in body["paths"].items() for method, operation in item.items()
    }
    permissions = of_type(resources, "AWS::Lambda::Permission")

    assert {route for route in operations if route[1].startswith("/admin/")} == ADMIN_ROUTES
    assert body["components"]["securitySchemes"]["AWS_IAM"]["x-amazon-apigateway-authtype"] == "awsSigv4"
    assert "security" not in body  # no default authorizer: each route says what it needs
    for (method, path), operation in operations.items():
        if (method, path) in ADMIN_ROUTES:
            assert operation["security"] == [{"AWS_IAM": []}], path
            assert "${AdminFunction.Arn}" in operation["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"], path
            assert any(
                permission["FunctionName"] == {"Ref": "AdminFunction"}
                # Path parameters become wildcards in the permission's source ARN.
                and permission["SourceArn"]["Fn::Sub"][0].endswith(f"/{method.upper()}{re.sub(r'{[^}]+}', '*', path)}")
                for permission in permissions.values()
            ), path
        else:
            # The tracking API is public: the function authenticates the write key itself.
            assert "security" not in operation, path


def test_the_stack_outputs_the_admin_api_url() -> None:
    outputs = load_template(TEMPLATE_PATH).document["Outputs"]

    assert outputs["AdminApiUrl"]["Value"]["Fn::Sub"].endswith("/admin")
    assert "${TrackingApi}" in outputs["AdminApiUrl"]["Value"]["Fn::Sub"]


def test_the_stack_outputs_every_table_name(resources: dict[str, dict[str, Any]]) -> None:
    # `footprint report --stack` and the other CLI commands find tables by these outputs.
    outputs = load_template(TEMPLATE_PATH).document["Outputs"]

    for logical_id in of_type(resources, "AWS::DynamoDB::Table"):
        assert outputs[f"{logical_id}Name"]["Value"] == {"Ref": logical_id}, logical_id


def test_cors_origins_come_from_the_parameter_and_paths_stay_at_v1(resources: dict[str, dict[str, Any]]) -> None:
    cors = resources["TrackingApi"]["Properties"]["Body"]["x-amazon-apigateway-cors"]
    stage = resources["TrackingApiApiGatewayDefaultStage"]["Properties"]

    # Left for CloudFormation to resolve into a list (the SAM transform would flatten it into one string).
    assert cors["allowOrigins"] == {"Ref": "AllowedOrigins"}
    assert set(cors["allowMethods"]) == {"POST", "OPTIONS"}
    assert {"content-type", "authorization"} <= set(cors["allowHeaders"])
    assert stage["StageName"] == "$default"
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0


def test_functions_share_the_layer_runtime_and_tracing(resources: dict[str, dict[str, Any]]) -> None:
    functions = of_type(resources, "AWS::Lambda::Function")
    (layer_id,) = of_type(resources, "AWS::Lambda::LayerVersion")

    assert set(functions) == {"TrackFunction", "EvaluateFunction", "SendFunction", "AdminFunction"}
    for logical_id, function in functions.items():
        assert function["Runtime"] == "python3.13", logical_id
        assert function["Architectures"] == ["arm64"], logical_id
        assert function["TracingConfig"] == {"Mode": "Active"}, logical_id
        assert function["Layers"] == [{"Ref": layer_id}], logical_id
    assert resources[layer_id]["Properties"]["CompatibleRuntimes"] == ["python3.13"]


def test_every_function_variable_is_a_setting_and_every_required_setting_is_set(
    resources: dict[str, dict[str, Any]],
) -> None:
    setting_names = {name.upper() for name in Settings.model_fields}
    required = {name.upper() for name, field in Settings.model_fields.items() if field.is_required()}

    for logical_id, function in of_type(resources, "AWS::Lambda::Function").items():
        variables = set(function["Environment"]["Variables"])
        own = {name for name in variables if not name.startswith("POWERTOOLS_")}
        assert own <= setting_names, (logical_id, own - setting_names)
        assert required <= own, (logical_id, required - own)
        assert {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"} <= variables, logical_id


# ------------------------------------------------------------------------------------------- linting


def test_cfn_lint_finds_nothing_including_informational_checks() -> None:
    matches = lint_file(TEMPLATE_PATH, config=ManualArgs(regions=["us-east-1"], include_checks=["I"]))

    assert [str(match) for match in matches] == []


def test_cfn_lint_would_catch_a_broken_reference(tmp_path: Path) -> None:
    broken = TEMPLATE_PATH.read_text(encoding="utf-8").replace(
        "!GetAtt TimersQueue.Arn", "!GetAtt TimersQueue.NoSuchAttribute"
    )
    parse_template_text(broken)  # still well-formed YAML: only the linter can tell
    broken_path = tmp_path / "template.yaml"
    broken_path.write_text(broken, encoding="utf-8")

    matches = lint_file(broken_path, config=ManualArgs(regions=["us-east-1"]))

    assert any("NoSuchAttribute" in str(match) for match in matches)
