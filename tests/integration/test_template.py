"""What SAM deploys: infra/template.yaml translated offline to CloudFormation, its wiring checked.

The SAM translator runs here without AWS (the managed-policy loader is a stub), so these tests see the
event source mappings, roles and API that `sam deploy` would create, not just the SAM shorthand.
"""

from __future__ import annotations

import copy
import fnmatch
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint_file
from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform

from footprint.adapters.channels.webhook import JOURNEY_SECRETS_PREFIX
from footprint.adapters.channels.zalo_tokens import TOKEN_ITEM_ID
from footprint.adapters.journey_catalog import ACTIVE_INDEX, version_parameter
from footprint.adapters.profiles_store import profile_to_item
from footprint.models import keys
from footprint.models.channels import STACK_PARAMETERS, ChannelSettings
from footprint.models.consent import OPT_IN, ConsentPolicy
from footprint.models.profile import Profile
from footprint.settings import Settings
from footprint_local.template import load_template, parse_template_text
from tests.builders import T0
from tests.routes import ADMIN_ROUTES as ALL_ADMIN_ROUTES
from tests.routes import BROWSER_ROUTES, EMAIL_ROUTES, V1_PATHS

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "infra" / "template.yaml"
ADMIN_ROUTES = {(method.lower(), path) for method, path in ALL_ADMIN_ROUTES}  # OpenAPI's lower-case methods
FOURTEEN_DAYS = 14 * 24 * 3600
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


def test_evaluate_parks_poison_records_in_its_own_queue_named_in_its_settings(
    resources: dict[str, dict[str, Any]],
) -> None:
    queue = resources["EvaluatePoisonQueue"]["Properties"]
    variables = resources["EvaluateFunction"]["Properties"]["Environment"]["Variables"]

    assert variables["EVALUATE_POISON_QUEUE_URL"] == {"Ref": "EvaluatePoisonQueue"}
    assert "evaluate_poison_queue_url" in Settings.model_fields
    assert queue["MessageRetentionPeriod"] == FOURTEEN_DAYS
    assert "RedrivePolicy" not in queue  # nothing consumes it: records wait there for a redrive
    # Only evaluate may send to it.
    senders = {
        role_id
        for role_id, role in of_type(resources, "AWS::IAM::Role").items()
        if "EvaluatePoisonQueue" in grants(role, "sqs:SendMessage")
    }
    assert senders == {"EvaluateFunctionRole"}


def test_queue_consumers_report_batch_item_failures(resources: dict[str, dict[str, Any]]) -> None:
    queues = of_type(resources, "AWS::SQS::Queue")
    queue_mappings = {key: props for key, props in event_source_mappings(resources).items() if key[0] in queues}

    assert set(queue_mappings) == {
        ("TimersQueue", "EvaluateFunction"),
        ("SendQueue", "SendFunction"),
        ("EmailFeedbackQueue", "EmailFeedbackFunction"),
    }
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
        "EmailFeedbackDeadLetterQueue",
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


def label(expression: Any) -> str:
    """A resource expression as a readable, exact name: "*", "EventsTable.Arn", or a !Sub's text."""
    if isinstance(expression, str):
        return expression
    if "Ref" in expression:
        return str(expression["Ref"])
    if "Fn::GetAtt" in expression:
        return ".".join(expression["Fn::GetAtt"])
    if "Fn::Sub" in expression:
        sub = expression["Fn::Sub"]
        return str(sub if isinstance(sub, str) else sub[0])
    raise AssertionError(f"unexpected resource expression {expression}")


def allowed(role: dict[str, Any]) -> dict[str, set[str]]:
    """Every action the role allows, with the resources it allows it on."""
    found: dict[str, set[str]] = {}
    for statement in role_statements(role):
        if statement["Effect"] == "Deny":
            # The only Deny narrows SMS to phone numbers (test_sms_may_go_to_phone_numbers_only_never_to_a_topic).
            assert statement.get("Sid") == "NoTopicPublish", statement
            continue
        for action in as_list(statement["Action"]):
            found.setdefault(action, set()).update(label(item) for item in as_list(statement["Resource"]))
    return found


def conditions(role: dict[str, Any], action: str, resource: str) -> list[dict[str, Any]]:
    """The Condition of each statement allowing ``action`` on ``resource`` ({} for none)."""
    return [
        statement.get("Condition", {})
        for statement in role_statements(role)
        if action in as_list(statement["Action"]) and resource in {label(r) for r in as_list(statement["Resource"])}
    ]


def leading_keys(role: dict[str, Any], action: str, resource: str) -> list[str]:
    """The partition-key patterns ``action`` on ``resource`` is held to; fails if any grant is unconditioned."""
    patterns: list[str] = []
    for condition in conditions(role, action, resource):
        found = [
            condition[operator]["dynamodb:LeadingKeys"]
            for operator in ("ForAllValues:StringLike", "ForAllValues:StringEquals")
            if "dynamodb:LeadingKeys" in condition.get(operator, {})
        ]
        assert found, (action, resource, condition)
        patterns += [pattern for keys_ in found for pattern in keys_]
    return patterns


# AWS takes only "*" for these (X-Ray has no resource-level permissions); traces are written only with the Tracing
# parameter Active (the grant is conditional, counted here as granted). Nothing else may name "*": metrics are EMF
# log lines (no cloudwatch:PutMetricData), logs go to each function's own log group.
# sns:Publish to a phone number has no ARN; send's grant has a Deny on every topic beside it.
ACTIONS_ONLY_AWS_SCOPES_TO_STAR = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "sns:Publish"}


def logs_and_traces(function: str) -> dict[str, set[str]]:
    own_log_group = {f"{function}LogGroup.Arn"}
    return {
        "logs:CreateLogStream": own_log_group,
        "logs:PutLogEvents": own_log_group,
        "xray:PutTraceSegments": {"*"},
        "xray:PutTelemetryRecords": {"*"},
    }


SCHEDULES = "arn:${AWS::Partition}:scheduler:${AWS::Region}:${AWS::AccountId}:schedule/${ScheduleGroup}/*"
SES_IDENTITIES = {
    "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:configuration-set/${EmailConfigurationSet}",
    "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/${SenderEmail}",
    "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/${SenderDomain}",
}
VAPID_SECRET = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${VapidSecretName}-??????"
ZALO_SECRET = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${ZaloZnsSecretName}-??????"
SMS_RELAY_SECRET = (
    "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${SmsProviderSecretName}-??????"
)
ZNS_RELAY_SECRET = (
    "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${ZaloZnsProviderSecretName}-??????"
)
# The signing secrets webhook steps name (content.secret), and only those.
JOURNEY_WEBHOOK_SECRETS = (
    f"arn:${{AWS::Partition}}:secretsmanager:${{AWS::Region}}:${{AWS::AccountId}}:secret:{JOURNEY_SECRETS_PREFIX}*"
)
QUEUE_CONSUMER = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")

# Each function's permissions: exactly the calls its adapters make (grep them: boto3 calls, Powertools Parameters
# and idempotency), on exactly the stack's own resources. A new call is a change here, reviewed.
FUNCTION_PERMISSIONS: dict[str, dict[str, set[str]]] = {
    "TrackFunction": {
        **logs_and_traces("TrackFunction"),
        "dynamodb:BatchWriteItem": {"EventsTable.Arn"},  # events_store: the request's one write
        # sources and active journeys (Powertools Parameters); outbox: the onsite message being acknowledged.
        "dynamodb:GetItem": {"ConfigTable.Arn", "MessagesTable.Arn"},
        # quota_counter: ADD to the day's counter; outbox: a shown message leaves the onsite inbox.
        "dynamodb:UpdateItem": {"ConfigTable.Arn", "MessagesTable.Arn"},
        "dynamodb:BatchGetItem": {"ProfilesTable.Arn"},  # profiles_store: the visitor's alias and profile
        "dynamodb:Query": {"${MessagesTable.Arn}/index/OnsiteInbox"},  # outbox: the visitor's pending messages
    },
    "EvaluateFunction": {
        **logs_and_traces("EvaluateFunction"),
        # The stream event source mapping (Lambda polls with the function's role).
        "dynamodb:DescribeStream": {"EventsTable.StreamArn"},
        "dynamodb:GetRecords": {"EventsTable.StreamArn"},
        "dynamodb:GetShardIterator": {"EventsTable.StreamArn"},
        "dynamodb:ListStreams": {"${EventsTable.Arn}/stream/*"},
        **{action: {"TimersQueue.Arn"} for action in QUEUE_CONSUMER},
        # send_queue and timers; the stream mapping's on-failure destination; poison_queue (SendMessageBatch).
        "sqs:SendMessage": {"SendQueue.Arn", "TimersQueue.Arn", "EvaluateFailureQueue.Arn", "EvaluatePoisonQueue.Arn"},
        # profiles_store, enrollments_store (TransactWriteItems needs PutItem per Put); journey_catalog.
        "dynamodb:BatchGetItem": {"ProfilesTable.Arn"},
        "dynamodb:GetItem": {"ProfilesTable.Arn", "ConfigTable.Arn"},
        "dynamodb:Query": {"ProfilesTable.Arn"},
        "dynamodb:PutItem": {"ProfilesTable.Arn", "StepsTable.Arn"},
        "dynamodb:UpdateItem": {"ProfilesTable.Arn"},
        # message_suppressed for a send the engine skipped, on the visitor's timeline.
        "dynamodb:BatchWriteItem": {"EventsTable.Arn"},
        "scheduler:CreateSchedule": {SCHEDULES},
        "scheduler:DeleteSchedule": {SCHEDULES},
        "iam:PassRole": {"SchedulerRole.Arn"},
    },
    "SendFunction": {
        **logs_and_traces("SendFunction"),
        **{action: {"SendQueue.Arn"} for action in QUEUE_CONSUMER},
        # send_queue.SqsRetryLater: a message that may pass later backs off (and honours Retry-After).
        "sqs:ChangeMessageVisibility": {"SendQueue.Arn"},
        # outbox (claim, take over, mark the call, settle, release), Powertools idempotency, profiles_store (read,
        # drop gone subscriptions); with ZaloZnsSecretName set, zalo_tokens (the OA's token item in ConfigTable).
        "dynamodb:GetItem": {"MessagesTable.Arn", "IdempotencyTable.Arn", "ConfigTable.Arn"},
        # steps: a send that failed or was skipped is a journey step (conditional PutItem, once).
        "dynamodb:PutItem": {"MessagesTable.Arn", "IdempotencyTable.Arn", "ProfilesTable.Arn", "StepsTable.Arn"},
        "dynamodb:DeleteItem": {"MessagesTable.Arn", "IdempotencyTable.Arn"},
        "dynamodb:UpdateItem": {"MessagesTable.Arn", "IdempotencyTable.Arn", "ConfigTable.Arn"},
        "dynamodb:BatchGetItem": {"ProfilesTable.Arn"},
        # the outcome of each message (message_sent, _failed, _suppressed) on the visitor's timeline.
        "dynamodb:BatchWriteItem": {"EventsTable.Arn"},
        "ses:SendEmail": SES_IDENTITIES,
        "ses:SendRawEmail": SES_IDENTITIES,
        # the link key (EmailLinkSecret, generated by the stack), VAPID keys, the Zalo app, the webhook key and the
        # keys webhook steps name; with a relay in use and its secret named, the SMS relay's and the ZNS relay's tokens.
        "secretsmanager:GetSecretValue": {
            "EmailLinkSecret",
            VAPID_SECRET,
            ZALO_SECRET,
            "WebhookSigningSecret",
            JOURNEY_WEBHOOK_SECRETS,
            SMS_RELAY_SECRET,
            ZNS_RELAY_SECRET,
        },
        # with SmsProvider=sns: SMS to phone numbers (topics denied).
        "sns:Publish": {"*"},
    },
    "AdminFunction": {
        **logs_and_traces("AdminFunction"),
        # journey_catalog (versions, the active index, the list of versions); steps (funnel reports);
        # source_keys (write keys); person_data (one person's items: export, deletion, tombstones).
        "dynamodb:GetItem": {"ConfigTable.Arn", "ProfilesTable.Arn", "MessagesTable.Arn"},
        "dynamodb:PutItem": {"ConfigTable.Arn", "ProfilesTable.Arn"},
        "dynamodb:Scan": {"ConfigTable.Arn"},
        "dynamodb:Query": {"StepsTable.Arn", "ProfilesTable.Arn", "EventsTable.Arn", "MessagesTable.Arn"},
        "dynamodb:BatchWriteItem": {"ProfilesTable.Arn", "EventsTable.Arn", "StepsTable.Arn", "MessagesTable.Arn"},
        "scheduler:DeleteSchedule": {SCHEDULES},
        "sqs:SendMessage": {"SendQueue.Arn"},  # transactional: POST /admin/messages
    },
    "EmailLinksFunction": {
        **logs_and_traces("EmailLinksFunction"),
        "secretsmanager:GetSecretValue": {"EmailLinkSecret"},  # secrets.SecretKey: verifies link tokens
        "dynamodb:BatchGetItem": {"ProfilesTable.Arn"},  # profiles_store: the link's profile and its identity
        "dynamodb:GetItem": {"MessagesTable.Arn"},  # outbox.get: a click's message and its links
        "dynamodb:BatchWriteItem": {"EventsTable.Arn"},  # events_store: unsubscribed, message_clicked
    },
    "EmailFeedbackFunction": {
        **logs_and_traces("EmailFeedbackFunction"),
        **{action: {"EmailFeedbackQueue.Arn"} for action in QUEUE_CONSUMER},
        "dynamodb:BatchGetItem": {"ProfilesTable.Arn"},  # profiles_store: the tagged profile
        "dynamodb:BatchWriteItem": {"EventsTable.Arn"},  # events_store: message_delivered, _bounced, ...
    },
}


def test_each_function_has_its_own_role_with_exactly_the_permissions_its_code_uses(
    resources: dict[str, dict[str, Any]],
) -> None:
    functions = of_type(resources, "AWS::Lambda::Function")

    assert set(functions) == set(FUNCTION_PERMISSIONS)
    for function_id, function in functions.items():
        role_id = f"{function_id}Role"
        assert function["Role"] == {"Fn::GetAtt": [role_id, "Arn"]}, function_id
        role = resources[role_id]["Properties"]
        (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Principal"] == {"Service": "lambda.amazonaws.com"}, function_id
        assert allowed(role) == FUNCTION_PERMISSIONS[function_id], function_id


def test_no_role_carries_a_managed_policy(resources: dict[str, dict[str, Any]]) -> None:
    # SAM's generated roles would: AWSLambdaBasicExecutionRole, AWSXrayWriteOnlyAccess and, for the event
    # sources, AWSLambdaDynamoDBExecutionRole and AWSLambdaSQSQueueExecutionRole, all on Resource "*".
    for logical_id, role in of_type(resources, "AWS::IAM::Role").items():
        assert role.get("ManagedPolicyArns", []) == [], logical_id
    assert of_type(resources, "AWS::IAM::ManagedPolicy") == {}
    assert of_type(resources, "AWS::IAM::Policy") == {}


def test_only_x_ray_is_granted_on_every_resource_and_no_action_is_a_wildcard(
    resources: dict[str, dict[str, Any]],
) -> None:
    for owner, statement in all_statements(resources):
        actions = as_list(statement["Action"])
        assert all("*" not in action for action in actions), (owner, actions)
        if "*" in as_list(statement["Resource"]):
            assert as_list(statement["Resource"]) == ["*"], owner
            assert set(actions) <= ACTIONS_ONLY_AWS_SCOPES_TO_STAR, (owner, actions)
            assert "Condition" not in statement, owner


def test_tracing_is_a_parameter_off_by_default_that_also_turns_on_the_tracer_and_its_grant(
    resources: dict[str, dict[str, Any]],
) -> None:
    document = load_template(TEMPLATE_PATH).document
    parameter = document["Parameters"]["Tracing"]
    variables = document["Globals"]["Function"]["Environment"]["Variables"]

    assert parameter["Default"] == "PassThrough"
    assert set(parameter["AllowedValues"]) == {"PassThrough", "Active"}
    assert document["Globals"]["Function"]["Tracing"] == {"Ref": "Tracing"}
    assert document["Conditions"]["TracingActive"] == {"Fn::Equals": [{"Ref": "Tracing"}, "Active"]}
    # footprint.tracing reads it: Powertools' Tracer (and the X-Ray SDK) only when tracing is Active.
    assert variables["POWERTOOLS_TRACE_DISABLED"] == {"Fn::If": ["TracingActive", "false", "true"]}
    for function_id in FUNCTION_PERMISSIONS:
        role = resources[f"{function_id}Role"]["Properties"]
        for policy in role["Policies"]:
            for statement in policy["PolicyDocument"]["Statement"]:
                granted = statement["Fn::If"][1] if "Fn::If" in statement else statement
                if any(action.startswith("xray:") for action in as_list(granted["Action"])):
                    assert statement["Fn::If"][0] == "TracingActive", function_id
                    assert statement["Fn::If"][2] == {"Ref": "AWS::NoValue"}, function_id


def test_sms_may_go_to_phone_numbers_only_never_to_a_topic(resources: dict[str, dict[str, Any]]) -> None:
    # Publishing to a phone number has no resource ARN (AWS requires "*"), so a Deny on every topic
    # narrows the grant to direct SMS.
    statements = {st.get("Sid"): st for st in role_statements(resources["SendFunctionRole"]["Properties"])}
    allow, deny = statements["PublishSmsToPhoneNumbers"], statements["NoTopicPublish"]
    assert (allow["Effect"], allow["Action"], allow["Resource"]) == ("Allow", ["sns:Publish"], "*")
    assert (deny["Effect"], deny["Action"]) == ("Deny", ["sns:Publish"])
    assert deny["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:sns:*:*:*"}
    assert not any(
        "sns:Publish" in as_list(st["Action"]) for owner, st in all_statements(resources) if owner != "SendFunctionRole"
    )


def test_each_function_writes_only_its_own_tables(resources: dict[str, dict[str, Any]]) -> None:
    tables = {f"{table}.Arn" for table in of_type(resources, "AWS::DynamoDB::Table")}

    permissions_of = {
        function_id: allowed(resources[f"{function_id}Role"]["Properties"]) for function_id in FUNCTION_PERMISSIONS
    }

    def written(function_id: str) -> set[str]:
        permissions = permissions_of[function_id]
        return set().union(*(permissions.get(action, set()) for action in TABLE_WRITE_ACTIONS)) & tables

    # ConfigTable: quota counters only; MessagesTable: the onsite inbox attribute only.
    assert written("TrackFunction") == {"EventsTable.Arn", "ConfigTable.Arn", "MessagesTable.Arn"}
    # EventsTable: the outcome events of skipped sends only (BatchWriteItem, as the tracking API).
    assert written("EvaluateFunction") == {"ProfilesTable.Arn", "StepsTable.Arn", "EventsTable.Arn"}
    # Steps with PutItem only, like evaluate: a step is written once and never changed. ConfigTable: Zalo's OA
    # token item only.
    assert written("SendFunction") == {
        "EventsTable.Arn",
        "MessagesTable.Arn",
        "IdempotencyTable.Arn",
        "ProfilesTable.Arn",
        "StepsTable.Arn",
        "ConfigTable.Arn",
    }
    for function_id in ("EvaluateFunction", "SendFunction"):
        assert all(
            "StepsTable.Arn" not in permissions_of[function_id].get(action, set())
            for action in TABLE_WRITE_ACTIONS - {"dynamodb:PutItem"}
        )
    # Admin writes other tables only to delete a person (data rights) and leave their tombstones.
    assert written("AdminFunction") == {
        "ConfigTable.Arn",
        "ProfilesTable.Arn",
        "EventsTable.Arn",
        "StepsTable.Arn",
        "MessagesTable.Arn",
    }
    # Email links and feedback record events only, like the tracking API.
    assert written("EmailLinksFunction") == {"EventsTable.Arn"}
    assert written("EmailFeedbackFunction") == {"EventsTable.Arn"}

    # No function deletes or batch-writes what its code never deletes or batch-writes.
    def holders(action: str) -> set[str]:
        return {function_id for function_id, permissions in permissions_of.items() if action in permissions}

    assert holders("dynamodb:DeleteItem") == {"SendFunction"}
    assert permissions_of["SendFunction"]["dynamodb:DeleteItem"] == {"MessagesTable.Arn", "IdempotencyTable.Arn"}
    # Admin batch-deletes one person's items (data rights); send and evaluate write outcome events only.
    assert permissions_of["SendFunction"]["dynamodb:BatchWriteItem"] == {"EventsTable.Arn"}
    assert permissions_of["EvaluateFunction"]["dynamodb:BatchWriteItem"] == {"EventsTable.Arn"}
    assert holders("dynamodb:BatchWriteItem") == {
        "SendFunction",
        "EvaluateFunction",
        "TrackFunction",
        "EmailLinksFunction",
        "EmailFeedbackFunction",
        "AdminFunction",
    }
    assert holders("dynamodb:Scan") == {"AdminFunction"}


def test_config_table_items_are_reachable_only_by_their_kind_of_key(resources: dict[str, dict[str, Any]]) -> None:
    track = resources["TrackFunctionRole"]["Properties"]
    evaluate = resources["EvaluateFunctionRole"]["Properties"]
    admin = resources["AdminFunctionRole"]["Properties"]
    send = resources["SendFunctionRole"]["Properties"]
    config = "ConfigTable.Arn"
    journey_ids = [version_parameter("welcome", 3), ACTIVE_INDEX]

    # Sources, and the active journeys whose dwell thresholds the settings route lists.
    assert_keys_match(
        leading_keys(track, "dynamodb:GetItem", config),
        [keys.source_parameter("wk-1"), *journey_ids],
        [keys.quota_counter("shop", T0.date()), TOKEN_ITEM_ID],
    )
    assert_keys_match(
        leading_keys(track, "dynamodb:UpdateItem", config),
        [keys.quota_counter("shop", T0.date())],
        [keys.source_parameter("wk-1"), *journey_ids],
    )
    for role in (evaluate, admin):
        assert_keys_match(leading_keys(role, "dynamodb:GetItem", config), journey_ids, [keys.source_parameter("k")])
    # Admin publishes journeys and manages write keys, never a quota counter or a token.
    assert_keys_match(
        leading_keys(admin, "dynamodb:PutItem", config),
        [*journey_ids, keys.source_parameter("k")],
        [keys.quota_counter("shop", T0.date()), TOKEN_ITEM_ID],
    )
    for action in ("dynamodb:GetItem", "dynamodb:UpdateItem"):
        assert_keys_match(
            leading_keys(send, action, config), [TOKEN_ITEM_ID], [keys.source_parameter("k"), *journey_ids]
        )
    # A Scan names no key: the one grant without a key condition (journey ids, source keys).
    assert conditions(admin, "dynamodb:Scan", config) == [{}]


def test_send_reads_and_writes_only_profile_items(resources: dict[str, dict[str, Any]]) -> None:
    role = resources["SendFunctionRole"]["Properties"]
    profile_pk = keys.profile_key("p-1")["pk"]
    others = [
        keys.alias_key("shop", "anon", "a-1")["pk"],
        keys.alias_key("shop", "user", "u-1")["pk"],
        keys.applied_marker_key("shop", "a-1", "m-1")["pk"],
    ]

    for action in ("dynamodb:BatchGetItem", "dynamodb:PutItem"):
        assert_keys_match(leading_keys(role, action, "ProfilesTable.Arn"), [profile_pk], others)
    # Enrollments share the profile's partition key; the put is held to the profile item's attributes too.
    assert keys.enrollment_key("p-1", "welcome")["pk"] == profile_pk
    (put,) = conditions(role, "dynamodb:PutItem", "ProfilesTable.Arn")
    attributes = set(put["ForAllValues:StringEquals"]["dynamodb:Attributes"])
    assert attributes == set(profile_to_item(fully_populated_profile()))
    enrollment_only = {"enrollment_id", "journey_id", "status", "current_node", "unsettled_effects"}
    assert not attributes & enrollment_only


def assert_keys_match(patterns: list[str], allowed_keys: list[str], refused_keys: list[str]) -> None:
    """IAM's StringLike: ``*`` is any run of characters, ``?`` one; the patterns have no ``[``."""
    assert patterns, "no key condition"
    assert all("[" not in pattern for pattern in patterns)
    for key in allowed_keys:
        assert any(fnmatch.fnmatchcase(key, pattern) for pattern in patterns), (key, patterns)
    for key in refused_keys:
        assert not any(fnmatch.fnmatchcase(key, pattern) for pattern in patterns), (key, patterns)


def fully_populated_profile() -> Profile:
    """A profile with every optional item attribute present (merged, identified, seen)."""
    return Profile(profile_id="p-1", source_id="shop", user_id="u-1", merged_into="p-2", last_seen_at=T0, revision=3)


def test_the_event_sources_poll_with_the_function_role(resources: dict[str, dict[str, Any]]) -> None:
    # Lambda reads the stream and the queues with the function's own role: each mapping's source is in it.
    for (source_id, function_id), mapping in event_source_mappings(resources).items():
        permissions = allowed(resources[f"{function_id}Role"]["Properties"])
        source = label(mapping["EventSourceArn"])
        readers = ("dynamodb:GetRecords",) if source.endswith("StreamArn") else QUEUE_CONSUMER
        assert all(source in permissions[action] for action in readers), (source_id, function_id)


def test_evaluate_manages_schedules_of_its_group_and_passes_only_the_scheduler_role(
    resources: dict[str, dict[str, Any]],
) -> None:
    role = resources["EvaluateFunctionRole"]["Properties"]

    assert grants(role, "scheduler:CreateSchedule") == {"ScheduleGroup"}
    assert grants(role, "scheduler:DeleteSchedule") == {"ScheduleGroup"}
    assert grants(role, "iam:PassRole") == {"SchedulerRole"}
    pass_role = next(st for st in role_statements(role) if "iam:PassRole" in as_list(st["Action"]))
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}
    assert grants(role, "sqs:SendMessage") == {
        "SendQueue",
        "TimersQueue",
        "EvaluateFailureQueue",
        "EvaluatePoisonQueue",
    }


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

    channel_secrets = {
        "EmailLinkSecret",
        "VapidSecretName",
        "ZaloZnsSecretName",
        "WebhookSigningSecret",
        "SmsProviderSecretName",
        "ZaloZnsProviderSecretName",
    }
    assert grants(role, "secretsmanager:GetSecretValue") == channel_secrets
    # One wildcard: the secrets webhook steps name, under their own prefix (footprint.adapters.channels.webhook).
    readable = allowed(role)["secretsmanager:GetSecretValue"]
    assert {name for name in readable if name.endswith("*")} == {JOURNEY_WEBHOOK_SECRETS}
    assert grants(role, "ses:SendEmail") == {"SenderEmail", "EmailConfigurationSet"}
    ses = next(st for st in role_statements(role) if "ses:SendEmail" in as_list(st["Action"]))
    assert ses["Condition"] == {"StringEquals": {"ses:FromAddress": {"Ref": "SenderEmail"}}}


def granted_secrets(resources: dict[str, dict[str, Any]], parameters: dict[str, str]) -> set[str]:
    """The secret parameters SendFunction may read once deployed with ``parameters`` (the rest at their defaults)."""
    document = load_template(TEMPLATE_PATH).document
    values = {name: str(spec.get("Default", "")) for name, spec in document["Parameters"].items()} | parameters

    def holds(expression: dict[str, Any]) -> bool:
        ((function, argument),) = expression.items()
        match function:
            case "Condition":
                return holds(document["Conditions"][argument])
            case "Fn::Equals":
                left, right = (values[item["Ref"]] if isinstance(item, dict) else item for item in argument)
                return bool(left == right)
            case "Fn::Not":
                return not holds(argument[0])
            case "Fn::And":
                return all(holds(item) for item in argument)
        raise AssertionError(f"condition function {function} not evaluated here")

    statements = resources["SendFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    granted: set[str] = set()
    for written in statements:
        statement = written
        if "Fn::If" in written:
            condition, when_true, when_false = written["Fn::If"]
            statement = when_true if holds(document["Conditions"][condition]) else when_false
        if isinstance(statement, dict) and "secretsmanager:GetSecretValue" in as_list(statement.get("Action")):
            granted |= referenced_ids(statement["Resource"])
    return granted & set(document["Parameters"])


RELAYS = {"SmsProviderUrl": "https://relay.example/sms", "ZaloZnsProviderUrl": "https://relay.example/zns"}
RELAY_TOKENS = {"SmsProviderSecretName": "footprint/sms-relay", "ZaloZnsProviderSecretName": "footprint/zns-relay"}


@pytest.mark.parametrize(
    ("parameters", "secrets"),
    [
        ({}, {"VapidSecretName"}),
        (RELAY_TOKENS, {"VapidSecretName"}),  # a token without its relay is never read
        (RELAYS, {"VapidSecretName"}),  # relays without tokens
        (RELAYS | RELAY_TOKENS, {"VapidSecretName", "SmsProviderSecretName", "ZaloZnsProviderSecretName"}),
        (
            RELAYS | RELAY_TOKENS | {"SmsProvider": "relay"},
            {"VapidSecretName", "SmsProviderSecretName", "ZaloZnsProviderSecretName"},
        ),
        # SNS and the Zalo app win over the relays (send_wiring), so their tokens are not read.
        (
            RELAYS | RELAY_TOKENS | {"SmsProvider": "sns", "ZaloZnsSecretName": "footprint/zalo"},
            {"VapidSecretName", "ZaloZnsSecretName"},
        ),
    ],
)
def test_send_may_read_a_relay_token_only_when_it_uses_that_relay(
    resources: dict[str, dict[str, Any]], parameters: dict[str, str], secrets: set[str]
) -> None:
    assert granted_secrets(resources, parameters) == secrets


def test_every_sms_and_zns_relay_parameter_reaches_send_and_admin(resources: dict[str, dict[str, Any]]) -> None:
    functions = of_type(resources, "AWS::Lambda::Function")
    # admin refuses journeys on channels send cannot deliver (Settings.unconfigured_channels): it reads the same.
    for function_id in ("SendFunction", "AdminFunction"):
        variables = functions[function_id]["Environment"]["Variables"]
        for parameter in ("SmsProvider", *RELAYS, *RELAY_TOKENS, "ZaloZnsSecretName"):
            variable = re.sub(r"(?<!^)(?=[A-Z])", "_", parameter).upper()
            assert variables[variable] == {"Ref": parameter}, (function_id, variable)


# ------------------------------------------------------------------------------------------- API and functions


def test_every_v1_path_is_a_post_route_to_the_track_function(resources: dict[str, dict[str, Any]]) -> None:
    body = resources["TrackingApi"]["Properties"]["Body"]
    permissions = of_type(resources, "AWS::Lambda::Permission")

    browser_paths = {path for _, path in BROWSER_ROUTES} | {path for _, path in EMAIL_ROUTES}
    assert {path for path in body["paths"] if not path.startswith("/admin/")} == set(V1_PATHS) | browser_paths
    for path in V1_PATHS:
        integration = body["paths"][path]["post"]["x-amazon-apigateway-integration"]
        assert "${TrackFunction.Arn}" in integration["uri"]["Fn::Sub"], path
        assert integration["payloadFormatVersion"] == "2.0", path
        assert any(
            permission["FunctionName"] == {"Ref": "TrackFunction"}
            and permission["SourceArn"]["Fn::Sub"][0].endswith(f"/POST{path}")
            for permission in permissions.values()
        ), path


def test_the_visitor_routes_go_to_the_track_function(resources: dict[str, dict[str, Any]]) -> None:
    body = resources["TrackingApi"]["Properties"]["Body"]
    permissions = of_type(resources, "AWS::Lambda::Permission")

    for method, path in BROWSER_ROUTES:
        operation = body["paths"][path][method.lower()]
        assert "${TrackFunction.Arn}" in operation["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"], path
        assert "security" not in operation, path
        assert any(
            permission["FunctionName"] == {"Ref": "TrackFunction"}
            and permission["SourceArn"]["Fn::Sub"][0].endswith(f"/{method}{re.sub(r'{[^}]+}', '*', path)}")
            for permission in permissions.values()
        ), path


def test_the_onsite_inbox_is_a_sparse_index_track_reads_and_only_empties(resources: dict[str, dict[str, Any]]) -> None:
    table = resources["MessagesTable"]["Properties"]
    track = resources["TrackFunctionRole"]["Properties"]

    (index,) = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "OnsiteInbox"
    assert index["KeySchema"] == [
        {"AttributeName": "onsite_inbox", "KeyType": "HASH"},
        {"AttributeName": "sent_at", "KeyType": "RANGE"},
    ]
    assert {"AttributeName": "onsite_inbox", "AttributeType": "S"} in table["AttributeDefinitions"]
    # track takes a shown message out of the inbox and can change nothing else of what send recorded.
    (update,) = conditions(track, "dynamodb:UpdateItem", "MessagesTable.Arn")
    assert set(update["ForAllValues:StringEquals"]["dynamodb:Attributes"]) == {"pk", "sk", "onsite_inbox", "shown_at"}
    assert_keys_match(
        leading_keys(track, "dynamodb:BatchGetItem", "ProfilesTable.Arn"),
        [keys.alias_key("shop", "anon", "a-1")["pk"], keys.profile_key("p-1")["pk"]],
        [keys.applied_marker_key("shop", "a-1", "m-1")["pk"]],
    )


def test_push_endpoints_on_loopback_are_refused_unless_a_parameter_says_so() -> None:
    document = load_template(TEMPLATE_PATH).document
    parameter = document["Parameters"]["AllowLoopbackDestinations"]
    variables = document["Globals"]["Function"]["Environment"]["Variables"]

    assert parameter["Default"] == "false"
    assert variables["ALLOW_LOOPBACK_DESTINATIONS"] == {"Ref": "AllowLoopbackDestinations"}
    assert variables["VAPID_PUBLIC_KEY"] == {"Ref": "VapidPublicKey"}


def test_email_link_routes_are_public_routes_of_the_email_links_function(resources: dict[str, dict[str, Any]]) -> None:
    body = resources["TrackingApi"]["Properties"]["Body"]

    for method, path in EMAIL_ROUTES:
        operation = body["paths"][path][method.lower()]
        assert "security" not in operation, path  # opened from an email: no login, the token is the proof
        assert "${EmailLinksFunction.Arn}" in operation["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"], path


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
    assert set(cors["allowMethods"]) == {"GET", "POST", "OPTIONS"}
    # analytics.js retries carry X-Retry-Count; RudderStack's browser SDK sends AnonymousId and SentAt.
    assert {"content-type", "authorization", "x-retry-count", "anonymousid", "sentat"} <= set(cors["allowHeaders"])
    assert stage["StageName"] == "$default"
    # A 429's Retry-After is readable by the page that sent the request.
    assert "retry-after" in {header.lower() for header in cors["exposeHeaders"]}


def test_stage_throttling_comes_from_parameters_with_bounded_defaults(resources: dict[str, dict[str, Any]]) -> None:
    settings = resources["TrackingApiApiGatewayDefaultStage"]["Properties"]["DefaultRouteSettings"]
    parameters = load_template(TEMPLATE_PATH).document["Parameters"]

    assert settings["ThrottlingRateLimit"] == {"Ref": "ApiThrottlingRateLimit"}
    assert settings["ThrottlingBurstLimit"] == {"Ref": "ApiThrottlingBurstLimit"}
    assert 0 < parameters["ApiThrottlingRateLimit"]["Default"] <= parameters["ApiThrottlingBurstLimit"]["Default"]


def test_reserved_concurrency_is_a_parameter_per_function_unset_by_default(
    resources: dict[str, dict[str, Any]],
) -> None:
    document = load_template(TEMPLATE_PATH).document
    parameters, template_conditions = document["Parameters"], document["Conditions"]

    for function_id, function in of_type(resources, "AWS::Lambda::Function").items():
        name = function_id.removesuffix("Function")
        parameter, condition = f"{name}ReservedConcurrency", f"{name}HasReservedConcurrency"
        assert function["ReservedConcurrentExecutions"] == {
            "Fn::If": [condition, {"Ref": parameter}, {"Ref": "AWS::NoValue"}]
        }, function_id
        # -1 (the default) leaves the property out; 0 is a real setting (the function is switched off).
        assert parameters[parameter]["Default"] == -1, function_id
        assert parameters[parameter]["MinValue"] == -1, function_id
        assert template_conditions[condition] == {"Fn::Not": [{"Fn::Equals": [{"Ref": parameter}, "-1"]}]}


def test_functions_share_the_layer_runtime_and_tracing(resources: dict[str, dict[str, Any]]) -> None:
    functions = of_type(resources, "AWS::Lambda::Function")
    (layer_id,) = of_type(resources, "AWS::Lambda::LayerVersion")

    assert set(functions) == {
        "TrackFunction",
        "EvaluateFunction",
        "SendFunction",
        "AdminFunction",
        "EmailLinksFunction",
        "EmailFeedbackFunction",
    }
    for logical_id, function in functions.items():
        assert function["Runtime"] == "python3.13", logical_id
        assert function["Architectures"] == ["arm64"], logical_id
        assert function["TracingConfig"] == {"Mode": {"Ref": "Tracing"}}, logical_id
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


def test_the_cli_reads_each_channel_setting_from_the_parameter_the_functions_get_it_from(
    resources: dict[str, dict[str, Any]],
) -> None:
    # footprint validate/publish --stack build ChannelSettings from a stack's parameters (STACK_PARAMETERS);
    # admin and send build it from their environment (Settings.channel_settings).
    assert set(STACK_PARAMETERS) == set(ChannelSettings.model_fields) <= set(Settings.model_fields)
    for logical_id, function in of_type(resources, "AWS::Lambda::Function").items():
        variables = function["Environment"]["Variables"]
        for field, parameter in STACK_PARAMETERS.items():
            assert variables[field.upper()] == {"Ref": parameter}, (logical_id, field)


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


def test_email_functions_read_only_profile_items(resources: dict[str, dict[str, Any]]) -> None:
    profile_pk = keys.profile_key("p-1")["pk"]
    others = [keys.alias_key("shop", "anon", "a-1")["pk"], keys.applied_marker_key("shop", "a-1", "m-1")["pk"]]
    for function_id in ("EmailLinksFunction", "EmailFeedbackFunction"):
        role = resources[f"{function_id}Role"]["Properties"]
        assert_keys_match(leading_keys(role, "dynamodb:BatchGetItem", "ProfilesTable.Arn"), [profile_pk], others)


def test_ses_events_of_the_stacks_configuration_set_reach_the_feedback_queue(
    resources: dict[str, dict[str, Any]],
) -> None:
    (destination,) = of_type(resources, "AWS::SES::ConfigurationSetEventDestination").values()
    assert destination["ConfigurationSetName"] == {"Ref": "EmailConfigurationSet"}
    event_destination = destination["EventDestination"]
    assert set(event_destination["MatchingEventTypes"]) == {"delivery", "bounce", "complaint", "open"}
    assert event_destination["EventBridgeDestination"]["EventBusArn"]["Fn::Sub"].endswith(":event-bus/default")

    rule = resources["EmailFeedbackRule"]["Properties"]
    assert rule["EventPattern"]["source"] == ["aws.ses"]
    assert rule["EventPattern"]["detail"]["mail"]["tags"]["ses:configuration-set"] == [{"Ref": "EmailConfigurationSet"}]
    assert [target["Arn"] for target in rule["Targets"]] == [{"Fn::GetAtt": ["EmailFeedbackQueue", "Arn"]}]

    policy = resources["EmailFeedbackQueuePolicy"]["Properties"]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["EmailFeedbackRule", "Arn"]}}}


def test_every_function_is_told_the_configuration_set_and_the_link_key(resources: dict[str, dict[str, Any]]) -> None:
    send = of_type(resources, "AWS::Lambda::Function")["SendFunction"]["Environment"]["Variables"]
    assert send["SES_CONFIGURATION_SET"] == {"Ref": "EmailConfigurationSet"}
    assert send["EMAIL_LINK_SECRET_NAME"] == {"Ref": "EmailLinkSecret"}
    assert "PUBLIC_API_URL" in send
    fields = set(Settings.model_fields)
    assert {"ses_configuration_set", "email_link_secret_name", "public_api_url"} <= fields
    secret = resources["EmailLinkSecret"]["Properties"]["GenerateSecretString"]
    assert secret["PasswordLength"] >= 32


def test_the_consent_policy_reaches_every_function_that_decides_on_marketing(
    resources: dict[str, dict[str, Any]],
) -> None:
    functions = of_type(resources, "AWS::Lambda::Function")
    deciders = {
        logical_id
        for logical_id, function in functions.items()
        if function["Environment"]["Variables"].get("CONSENT_POLICY") == {"Ref": "ConsentPolicy"}
    }
    # evaluate (journeys), send (its recheck), admin (the send API); not tracking or the email routes.
    assert deciders == {"EvaluateFunction", "SendFunction", "AdminFunction"}
    # {} is opt-in on email, SMS and ZNS for every source.
    default = load_template(TEMPLATE_PATH).document["Parameters"]["ConsentPolicy"]["Default"]
    assert ConsentPolicy.model_validate_json(default) == ConsentPolicy()
    assert ConsentPolicy().for_source("any") == OPT_IN
