"""The template loader reads the real infra/template.yaml the way the local stack needs it."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from footprint.settings import Settings
from footprint_local.template import (
    LOCAL_ACCOUNT_ID,
    LOCAL_REGION,
    PhysicalResource,
    Template,
    TemplateError,
    default_template_path,
    load_template,
    parse_template_text,
)
from tests.routes import ADMIN_ROUTES, BROWSER_ROUTES, EMAIL_ROUTES, V1_PATHS

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "infra" / "template.yaml"


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template(TEMPLATE_PATH)


def local_physical_resources(template: Template) -> dict[str, PhysicalResource]:
    """Names a local stack could give every resource the environment refers to."""
    arn = f"arn:aws:{{service}}:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:{{name}}"
    physical = {
        table.logical_id: PhysicalResource.table(
            f"local-{table.logical_id}",
            arn.format(service="dynamodb", name=f"table/local-{table.logical_id}"),
            stream_arn=arn.format(service="dynamodb", name=f"table/local-{table.logical_id}/stream/1"),
        )
        for table in template.tables
    }
    physical |= {
        queue.logical_id: PhysicalResource.queue(
            f"http://localhost:5000/{LOCAL_ACCOUNT_ID}/local-{queue.logical_id}",
            arn.format(service="sqs", name=f"local-{queue.logical_id}"),
        )
        for queue in template.queues
    }
    physical |= {
        logical_id: PhysicalResource.named(arn.format(service="secretsmanager", name=f"secret:local-{logical_id}"))
        for logical_id, _ in template.resources_of_type("AWS::SecretsManager::Secret")
    }
    physical["ScheduleGroup"] = PhysicalResource.named("footprint-local")
    physical["EmailConfigurationSet"] = PhysicalResource.named("footprint-local-EmailConfigurationSet")
    physical["TrackingApi"] = PhysicalResource.named("footprint-local-TrackingApi")
    physical["SchedulerRole"] = PhysicalResource.named(
        "scheduler", f"arn:aws:iam::{LOCAL_ACCOUNT_ID}:role/footprint-local-scheduler"
    )
    return physical


# ------------------------------------------------------------------------------------------- tables


def test_the_default_path_is_the_repository_template() -> None:
    assert default_template_path() == TEMPLATE_PATH


def test_every_table_of_the_contract_is_declared_with_its_keys(template: Template) -> None:
    keys = {
        table.logical_id: [(key["AttributeName"], key["KeyType"]) for key in table.key_schema]
        for table in template.tables
    }

    assert keys == {
        "EventsTable": [("pk", "HASH"), ("sk", "RANGE")],
        "ProfilesTable": [("pk", "HASH"), ("sk", "RANGE")],
        "ConfigTable": [("id", "HASH")],
        "MessagesTable": [("pk", "HASH"), ("sk", "RANGE")],
        "IdempotencyTable": [("id", "HASH")],
        "StepsTable": [("pk", "HASH"), ("sk", "RANGE")],
    }
    for table in template.tables:
        assert {attribute["AttributeType"] for attribute in table.attribute_definitions} == {"S"}
        assert table.billing_mode == "PAY_PER_REQUEST"


def test_only_the_events_table_streams_and_every_table_expires_items(template: Template) -> None:
    tables = {table.logical_id: table for table in template.tables}

    assert {logical_id: table.stream_view_type for logical_id, table in tables.items()} == {
        "EventsTable": "NEW_IMAGE",
        "ProfilesTable": None,
        "ConfigTable": None,
        "MessagesTable": None,
        "IdempotencyTable": None,
        "StepsTable": None,
    }
    assert tables["IdempotencyTable"].ttl_attribute == "expiration"
    assert {tables[name].ttl_attribute for name in tables if name != "IdempotencyTable"} == {"expires_at"}


def test_create_table_arguments_carry_the_stream_only_where_declared(template: Template) -> None:
    tables = {table.logical_id: table for table in template.tables}

    events = tables["EventsTable"].create_table_kwargs("local-events")
    config = tables["ConfigTable"].create_table_kwargs("local-config")

    assert events["TableName"] == "local-events"
    assert events["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    assert events["BillingMode"] == "PAY_PER_REQUEST"
    assert "StreamSpecification" not in config
    assert config["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]


# ------------------------------------------------------------------------------------------- queues


def test_queues_come_after_the_dead_letter_queues_they_redrive_to(template: Template) -> None:
    order = [queue.logical_id for queue in template.queues]

    assert set(order) == {
        "SendQueue",
        "SendDeadLetterQueue",
        "TimersQueue",
        "TimersDeadLetterQueue",
        "EvaluateFailureQueue",
        "EvaluatePoisonQueue",
        "SchedulerDeadLetterQueue",
        "EmailFeedbackQueue",
        "EmailFeedbackDeadLetterQueue",
    }
    assert order.index("SendDeadLetterQueue") < order.index("SendQueue")
    assert order.index("EmailFeedbackDeadLetterQueue") < order.index("EmailFeedbackQueue")
    assert order.index("TimersDeadLetterQueue") < order.index("TimersQueue")


def test_work_queues_redrive_to_their_dead_letter_queue_after_five_receives(template: Template) -> None:
    queues = {queue.logical_id: queue for queue in template.queues}

    assert (queues["SendQueue"].redrive_target_logical_id, queues["SendQueue"].max_receive_count) == (
        "SendDeadLetterQueue",
        5,
    )
    assert (queues["TimersQueue"].redrive_target_logical_id, queues["TimersQueue"].max_receive_count) == (
        "TimersDeadLetterQueue",
        5,
    )
    assert queues["SendDeadLetterQueue"].attributes["MessageRetentionPeriod"] == str(14 * 24 * 3600)


def test_queue_attributes_are_create_queue_strings_with_the_redrive_policy(template: Template) -> None:
    send_queue = next(queue for queue in template.queues if queue.logical_id == "SendQueue")
    dead_letter_arn = f"arn:aws:sqs:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:send-dlq"

    attributes = send_queue.create_queue_attributes(dead_letter_arn)

    assert all(isinstance(value, str) for value in attributes.values())
    assert attributes["SqsManagedSseEnabled"] == "true"
    assert json.loads(attributes["RedrivePolicy"]) == {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": 5}
    with pytest.raises(TemplateError):
        send_queue.create_queue_attributes()


def test_queue_visibility_covers_six_times_its_consumer_timeout(template: Template) -> None:
    queues = {queue.logical_id: queue for queue in template.queues}
    timeouts = {function.logical_id: function.timeout_seconds for function in template.functions}

    for source in template.event_source_mappings:
        if source.source_type == "SQS":
            visibility = int(queues[source.source_logical_id].attributes["VisibilityTimeout"])
            assert visibility >= 6 * timeouts[source.function_logical_id], source.source_logical_id


def test_the_schedule_group_is_declared(template: Template) -> None:
    assert template.schedule_groups == ["ScheduleGroup"]


# ------------------------------------------------------------------------------------------- functions


def test_functions_point_at_their_code_folders(template: Template) -> None:
    functions = {function.logical_id: function for function in template.functions}

    assert {name: (spec.code_path, spec.handler) for name, spec in functions.items()} == {
        "TrackFunction": (REPO_ROOT / "functions" / "track", "track_handler.handler"),
        "EvaluateFunction": (REPO_ROOT / "functions" / "evaluate", "evaluate_handler.handler"),
        "SendFunction": (REPO_ROOT / "functions" / "send", "send_handler.handler"),
        "AdminFunction": (REPO_ROOT / "functions" / "admin", "admin_handler.handler"),
        "EmailLinksFunction": (REPO_ROOT / "functions" / "email_links", "email_links_handler.handler"),
        "EmailFeedbackFunction": (REPO_ROOT / "functions" / "email_feedback", "email_feedback_handler.handler"),
    }


def test_evaluate_reads_only_inserts_from_the_events_stream(template: Template) -> None:
    stream = next(source for source in template.event_source_mappings if source.source_type == "DynamoDB")

    assert (stream.function_logical_id, stream.source_logical_id) == ("EvaluateFunction", "EventsTable")
    assert stream.filter_patterns == [{"eventName": ["INSERT"]}]
    assert stream.report_batch_item_failures
    assert stream.bisect_batch_on_function_error
    assert stream.on_failure_logical_id == "EvaluateFailureQueue"
    assert stream.accepts({"eventName": "INSERT", "dynamodb": {"NewImage": {}}})
    assert not stream.accepts({"eventName": "MODIFY", "dynamodb": {"NewImage": {}}})
    assert not stream.accepts({"eventName": "REMOVE", "dynamodb": {}})


def test_queues_feed_evaluate_and_send_with_partial_batch_responses(template: Template) -> None:
    sqs_sources = {
        (source.source_logical_id, source.function_logical_id): source
        for source in template.event_source_mappings
        if source.source_type == "SQS"
    }

    assert set(sqs_sources) == {
        ("TimersQueue", "EvaluateFunction"),
        ("SendQueue", "SendFunction"),
        ("EmailFeedbackQueue", "EmailFeedbackFunction"),
    }
    for source in sqs_sources.values():
        assert source.report_batch_item_failures
        assert 1 <= source.batch_size <= 10
        assert source.accepts({"body": "{}"})  # no filter: everything passes


def test_every_v1_path_is_a_post_route_of_the_track_function(template: Template) -> None:
    routes = {
        (route.method, route.path): route
        for route in template.http_routes
        if not route.path.startswith("/admin/") and (route.method, route.path) not in EMAIL_ROUTES
    }

    assert set(routes) == {("POST", path) for path in V1_PATHS} | BROWSER_ROUTES
    assert {(route.function_logical_id, route.api_logical_id) for route in routes.values()} == {
        ("TrackFunction", "TrackingApi")
    }


def test_admin_routes_go_to_the_admin_function_on_the_same_api(template: Template) -> None:
    routes = {(route.method, route.path): route for route in template.http_routes if route.path.startswith("/admin/")}

    assert set(routes) == ADMIN_ROUTES
    assert {(route.function_logical_id, route.api_logical_id) for route in routes.values()} == {
        ("AdminFunction", "TrackingApi")
    }
    assert {
        (route.method, route.path) for route in template.http_routes
    } == ADMIN_ROUTES | BROWSER_ROUTES | EMAIL_ROUTES | {("POST", path) for path in V1_PATHS}


def test_email_link_routes_go_to_the_email_links_function_on_the_same_api(template: Template) -> None:
    routes = {
        (route.method, route.path): route for route in template.http_routes if route.path.startswith("/v1/email/")
    }

    assert set(routes) == EMAIL_ROUTES
    assert {(route.function_logical_id, route.api_logical_id) for route in routes.values()} == {
        ("EmailLinksFunction", "TrackingApi")
    }


def test_only_admin_routes_ask_for_the_iam_authorizer(template: Template) -> None:
    # The local stack has no IAM and serves every route alike; what guards /admin in AWS is this property.
    authorizers = {
        (event["Properties"]["Method"], event["Properties"]["Path"]): (event["Properties"].get("Auth") or {}).get(
            "Authorizer"
        )
        for _, function in template.resources_of_type("AWS::Serverless::Function")
        for event in (function.get("Events") or {}).values()
        if event["Type"] == "HttpApi"
    }

    assert {route for route, authorizer in authorizers.items() if authorizer == "AWS_IAM"} == ADMIN_ROUTES
    assert {authorizer for route, authorizer in authorizers.items() if route not in ADMIN_ROUTES} == {None}


# ------------------------------------------------------------------------------------------- environment


def test_the_environment_resolves_against_the_local_resources(template: Template) -> None:
    physical = local_physical_resources(template)

    environment = template.function_environment(physical, "EvaluateFunction", parameters={"Stage": "local"})

    assert environment["STAGE"] == "local"
    assert environment["EVENTS_TABLE"] == "local-EventsTable"
    assert environment["SEND_QUEUE_URL"] == physical["SendQueue"].ref
    assert environment["TIMERS_QUEUE_ARN"] == physical["TimersQueue"].attributes["Arn"]
    assert environment["SCHEDULE_GROUP"] == "footprint-local"
    assert environment["SCHEDULER_ROLE_ARN"] == physical["SchedulerRole"].attributes["Arn"]
    assert environment["SCHEDULER_DEAD_LETTER_ARN"] == physical["SchedulerDeadLetterQueue"].attributes["Arn"]
    assert environment["SENDER_EMAIL"] == ""  # the parameter's default: email off until it is set
    assert environment["POWERTOOLS_SERVICE_NAME"] == "footprint"


@pytest.mark.parametrize(("tracing", "disabled"), [(None, "true"), ("PassThrough", "true"), ("Active", "false")])
def test_the_trace_switch_follows_the_tracing_parameter(template: Template, tracing: str | None, disabled: str) -> None:
    parameters = {} if tracing is None else {"Tracing": tracing}

    environment = template.function_environment(local_physical_resources(template), parameters=parameters)

    # footprint.tracing creates Powertools' Tracer only when this is false.
    assert environment["POWERTOOLS_TRACE_DISABLED"] == disabled


def test_the_environment_configures_settings_completely(template: Template, monkeypatch: pytest.MonkeyPatch) -> None:
    environment = template.function_environment(local_physical_resources(template))
    for name in list(Settings.model_fields):
        monkeypatch.delenv(name.upper(), raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    settings = Settings.from_environment()  # as in Lambda

    own_variables = {name for name in environment if not name.startswith("POWERTOOLS_")}
    required = {name.upper() for name, field in Settings.model_fields.items() if field.is_required()}
    assert own_variables <= {name.upper() for name in Settings.model_fields}
    assert required <= own_variables
    assert settings.profiles_table == "local-ProfilesTable"
    assert settings.config_cache_seconds == 60


# Variables a single function reads on top of the global ones.
# Only send writes links, so only send is told the API's public URL; the functions that decide on
# marketing are told the consent policy.
OWN_ENVIRONMENT = {
    "SendFunction": {
        "MESSAGING_POLICY": "{}",
        "CONSENT_POLICY": "{}",
        "PUBLIC_API_URL": "https://footprint-local-TrackingApi.execute-api.us-east-1.amazonaws.com",
    },
    "EvaluateFunction": {"CONSENT_POLICY": "{}"},
    "AdminFunction": {"CONSENT_POLICY": "{}"},
}


def test_every_function_gets_the_global_environment_and_its_own(template: Template) -> None:
    physical = local_physical_resources(template)
    global_environment = template.function_environment(physical)

    for function in template.functions:
        own = OWN_ENVIRONMENT.get(function.logical_id, {})
        assert template.function_environment(physical, function.logical_id) == global_environment | own


def test_a_resource_without_a_physical_name_is_an_error(template: Template) -> None:
    physical = local_physical_resources(template)
    del physical["MessagesTable"]

    with pytest.raises(TemplateError, match="MessagesTable"):
        template.function_environment(physical)


def test_an_unknown_function_is_an_error(template: Template) -> None:
    with pytest.raises(TemplateError, match="NoSuchFunction"):
        template.function_environment(local_physical_resources(template), "NoSuchFunction")


# ------------------------------------------------------------------------------------------- parsing


SAMPLE = textwrap.dedent(
    """
    Parameters:
      Stage: {Type: String, Default: dev}
      Origins: {Type: CommaDelimitedList, Default: "https://a.example,https://b.example"}
      Email: {Type: String, Default: team@shop.example}
    Conditions:
      IsProd: !Equals [!Ref Stage, prod]
      IsNotProd: !Not [!Condition IsProd]
    Globals:
      Function:
        Environment:
          Variables:
            WHERE: !Sub "${AWS::StackName}-${Stage}@${AWS::Region}/${AWS::AccountId}"
            QUEUE_ARN: !Sub "arn:${Queue.Arn}"
            LITERAL: !Sub "${!NotAVariable}"
            VARS: !Sub ["${Domain}/x", {Domain: !Select [1, !Split ["@", !Ref Email]]}]
            ORIGINS: !Join [";", !Ref Origins]
            LEVEL: !If [IsProd, WARNING, DEBUG]
            ONLY_IN_PROD: !If [IsProd, "yes", !Ref AWS::NoValue]
            DEV: !If [IsNotProd, true, false]
            NUMBER: 42
    Resources:
      Queue:
        Type: AWS::SQS::Queue
        Properties:
          RedrivePolicy: {deadLetterTargetArn: !GetAtt Dlq.Arn, maxReceiveCount: 3}
      Dlq:
        Type: AWS::SQS::Queue
      Fn:
        Type: AWS::Serverless::Function
        Properties:
          CodeUri: ../functions/x
          Handler: app.handler
          Environment:
            Variables:
              NUMBER: "7"
    """
)


def test_short_tags_become_long_form_intrinsics() -> None:
    document = parse_template_text(SAMPLE)
    queue = document["Resources"]["Queue"]["Properties"]
    conditions = document["Conditions"]

    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["Dlq", "Arn"]}
    assert conditions["IsProd"] == {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}
    assert conditions["IsNotProd"] == {"Fn::Not": [{"Condition": "IsProd"}]}


def test_an_unknown_tag_is_rejected() -> None:
    with pytest.raises(TemplateError, match="!Bogus"):
        parse_template_text("Resources:\n  X: !Bogus value\n")


def test_intrinsics_resolve_with_parameters_conditions_and_pseudo_parameters(tmp_path: Path) -> None:
    template = Template(parse_template_text(SAMPLE), tmp_path)
    physical = {"Queue": PhysicalResource.queue("http://q", "arn:aws:sqs:us-east-1:123456789012:q")}

    dev = template.function_environment(physical, stack_name="stack")
    prod = template.function_environment(physical, "Fn", parameters={"Stage": "prod"}, region="eu-west-1")

    assert dev["WHERE"] == f"stack-dev@{LOCAL_REGION}/{LOCAL_ACCOUNT_ID}"
    assert dev["QUEUE_ARN"] == "arn:arn:aws:sqs:us-east-1:123456789012:q"
    assert dev["LITERAL"] == "${NotAVariable}"
    assert dev["VARS"] == "shop.example/x"
    assert dev["ORIGINS"] == "https://a.example;https://b.example"
    assert (dev["LEVEL"], prod["LEVEL"]) == ("DEBUG", "WARNING")
    assert "ONLY_IN_PROD" not in dev
    assert prod["ONLY_IN_PROD"] == "yes"
    assert (dev["DEV"], prod["DEV"]) == ("true", "false")
    assert (dev["NUMBER"], prod["NUMBER"]) == ("42", "7")  # the function's own variable wins
    assert prod["WHERE"].endswith("@eu-west-1/123456789012")


def test_function_code_is_found_relative_to_the_template(tmp_path: Path) -> None:
    template = Template(parse_template_text(SAMPLE), tmp_path / "infra")

    (function,) = template.functions

    assert function.code_path == (tmp_path / "functions" / "x").resolve()


@pytest.mark.parametrize(
    ("pattern", "record", "expected"),
    [
        ({"eventName": ["INSERT"]}, {"eventName": "INSERT"}, True),
        ({"eventName": ["INSERT"]}, {}, False),
        (
            {"dynamodb": {"NewImage": {"type": {"S": ["track"]}}}},
            {"dynamodb": {"NewImage": {"type": {"S": "track"}}}},
            True,
        ),
        (
            {"dynamodb": {"NewImage": {"type": {"S": ["track"]}}}},
            {"dynamodb": {"NewImage": {"type": {"S": "page"}}}},
            False,
        ),
        ({"eventName": [{"prefix": "INS"}]}, {"eventName": "INSERT"}, True),
        ({"eventName": [{"anything-but": ["REMOVE"]}]}, {"eventName": "MODIFY"}, True),
        ({"eventName": [{"anything-but": ["REMOVE"]}]}, {"eventName": "REMOVE"}, False),
        ({"userIdentity": [{"exists": False}]}, {"eventName": "REMOVE"}, True),
        ({"userIdentity": [{"exists": True}]}, {"eventName": "REMOVE"}, False),
    ],
)
def test_stream_filter_patterns_follow_lambda_semantics(
    pattern: dict[str, object], record: dict[str, object], expected: bool
) -> None:
    document = parse_template_text(SAMPLE)
    document["Resources"]["Fn"]["Properties"]["Events"] = {
        "Stream": {
            "Type": "DynamoDB",
            "Properties": {
                "Stream": {"Fn::GetAtt": ["Table", "StreamArn"]},
                "FilterCriteria": {"Filters": [{"Pattern": json.dumps(pattern)}]},
            },
        }
    }

    (source,) = Template(document, Path()).event_source_mappings

    assert source.accepts(record) is expected


def test_sqs_filter_patterns_match_inside_a_json_body() -> None:
    document = parse_template_text(SAMPLE)
    document["Resources"]["Fn"]["Properties"]["Events"] = {
        "Wakeups": {
            "Type": "SQS",
            "Properties": {
                "Queue": {"Fn::GetAtt": ["Queue", "Arn"]},
                "FilterCriteria": {"Filters": [{"Pattern": '{"body": {"kind": ["wake"]}}'}]},
            },
        }
    }

    (source,) = Template(document, Path()).event_source_mappings

    assert source.accepts({"body": '{"kind": "wake"}'})
    assert not source.accepts({"body": '{"kind": "other"}'})
    assert not source.accepts({"body": "not json"})
