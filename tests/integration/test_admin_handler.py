"""The admin API in one process: API Gateway HTTP API events (as the AWS_IAM authorizer passes them) into
admin_handler.handler, ConfigTable on moto. Simulation is checked against the `footprint simulate` CLI."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import admin_handler
from footprint.adapters.steps import DynamoStepLog
from footprint.engine import RecordStep
from footprint.services import admin as admin_service
from footprint.services.admin_api import MAX_BODY_BYTES
from footprint_local.cli import main as footprint_cli
from tests.api_gateway import HttpResult, http_api_event, http_result
from tests.integration.conftest import Tables
from tests.lambda_context import lambda_context

ROOT = Path(__file__).resolve().parents[2]
SERVICES_YAML = (ROOT / "journeys" / "services-consult.yaml").read_text(encoding="utf-8")
EXAMPLE_EVENTS = ROOT / "journeys" / "examples" / "services-consult.jsonl"
CALLER_ARN = "arn:aws:iam::123456789012:user/marketing-ops"


def iam_authorizer() -> dict[str, Any]:
    """What API Gateway's AWS_IAM authorizer adds to requestContext once the SigV4 signature checks out."""
    return {
        "iam": {
            "accessKey": "AKIAIOSFODNN7EXAMPLE",
            "accountId": "123456789012",
            "callerId": "AIDACKCEVSQ6C2EXAMPLE",
            "cognitoIdentity": None,
            "principalOrgId": None,
            "userArn": CALLER_ARN,
            "userId": "AIDACKCEVSQ6C2EXAMPLE",
        }
    }


def admin_event(
    method: str,
    route: str,
    body: Any = None,
    *,
    path_parameters: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    content_type: str | None = "application/yaml",
    base64_encoded: bool = False,
) -> dict[str, Any]:
    """A request to ``route`` (the template's path, ``{name}`` segments filled from ``path_parameters``)."""
    path = route.format(**(path_parameters or {}))
    event = http_api_event(
        path, body, method=method, content_type=content_type, base64_encoded=base64_encoded, headers=sigv4_headers()
    )
    event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {route}"
    event["requestContext"]["authorizer"] = iam_authorizer()
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if query:
        event["queryStringParameters"] = dict(query)
        event["rawQueryString"] = "&".join(f"{name}={value}" for name, value in query.items())
    return event


def sigv4_headers() -> dict[str, str]:
    return {
        "authorization": "AWS4-HMAC-SHA256 "
        "Credential=AKIAIOSFODNN7EXAMPLE/20261123/us-east-1/execute-api/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=0123456789abcdef",
        "x-amz-date": "20261123T090000Z",
        "user-agent": "awscurl/0.36",
    }


@dataclass
class AdminApi:
    module: ModuleType
    tables: Tables

    def call(self, method: str, route: str, body: Any = None, **options: Any) -> HttpResult:
        response = self.module.handler(admin_event(method, route, body, **options), lambda_context("AdminFunction"))
        return http_result(response)

    def config_item(self, item_id: str) -> str | None:
        item = self.tables.client.get_item(TableName=self.tables.config, Key={"id": {"S": item_id}}).get("Item")
        return item["value"]["S"] if item else None

    def active_index(self) -> dict[str, int]:
        raw = self.config_item("journeys/active")
        return json.loads(raw) if raw else {}


@pytest.fixture
def admin(tables: Tables, monkeypatch: pytest.MonkeyPatch) -> AdminApi:
    # The channels the template turns on by default (email from SenderEmail, web push from VapidSecretName).
    monkeypatch.setenv("SENDER_EMAIL", "noreply@example.com")
    monkeypatch.setenv("VAPID_SECRET_NAME", "footprint/vapid")
    return AdminApi(admin_handler, tables)  # `tables` gives every test fresh moto and fresh wiring


def assert_error(result: HttpResult, status: int, code: str) -> list[dict[str, str]]:
    assert result.status == status, result.body
    assert result.headers["content-type"] == "application/json"
    assert set(result.body) == {"error"}
    assert set(result.body["error"]) == {"code", "reason", "errors"}
    assert result.body["error"]["code"] == code, result.body
    assert result.body["error"]["reason"]
    errors: list[dict[str, str]] = result.body["error"]["errors"]
    assert all(set(error) == {"location", "message"} for error in errors)
    return errors


def other_version(yaml_text: str, version: int) -> str:
    return yaml_text.replace("\nversion: 1\n", f"\nversion: {version}\n")


# ------------------------------------------------------------------------------------------- validate


def test_validate_summarises_a_valid_journey_and_stores_nothing(admin: AdminApi) -> None:
    result = admin.call("POST", "/admin/journeys/validate", SERVICES_YAML)

    assert result.status == 200
    assert result.body["valid"] is True
    journey = result.body["journey"]
    assert (journey["id"], journey["version"], journey["status"]) == ("services-consult", 1, "active")
    assert journey["nodes"] > 5
    assert admin.config_item("journey/services-consult/v1") is None


def test_validate_answers_422_with_one_line_per_problem(admin: AdminApi) -> None:
    broken = SERVICES_YAML.replace("version: 1", "version: 0").replace("stage_model: ACCSR", "stage_model: [ACCSR]")

    errors = assert_error(admin.call("POST", "/admin/journeys/validate", broken), 422, "invalid_journey")

    assert {error["location"] for error in errors} == {"body.version", "body.stage_model"}


def test_each_problem_of_the_journey_graph_is_its_own_line(admin: AdminApi) -> None:
    broken = SERVICES_YAML.replace("next: consult_form", "next: no_such_node").replace(
        "next: onsite_offer", "next: nor_this_one"
    )

    errors = assert_error(admin.call("POST", "/admin/journeys/validate", broken), 422, "invalid_journey")

    assert any("no_such_node" in error["message"] for error in errors), errors
    assert any("nor_this_one" in error["message"] for error in errors), errors
    assert all("\n" not in error["message"] for error in errors), errors
    assert {error["location"] for error in errors} == {"body"}


@pytest.mark.parametrize(
    ("body", "expected_location"),
    [
        ("id: [unclosed\n", "body"),  # YAML syntax
        ("", "body"),
        ("just a sentence", "body"),
        ("- a\n- list\n", "body"),
    ],
)
def test_validate_refuses_what_is_not_a_journey_with_422(admin: AdminApi, body: str, expected_location: str) -> None:
    errors = assert_error(admin.call("POST", "/admin/journeys/validate", body), 422, "invalid_journey")

    assert errors
    assert errors[0]["location"] == expected_location


def test_a_base64_encoded_yaml_body_is_read_like_text(admin: AdminApi) -> None:
    result = admin.call("POST", "/admin/journeys/validate", SERVICES_YAML.encode(), base64_encoded=True)

    assert result.status == 200
    assert result.body["journey"]["name"].startswith("Khách đọc sản phẩm")


def test_a_body_that_is_not_utf8_is_a_400(admin: AdminApi) -> None:
    result = admin.call("POST", "/admin/journeys/validate", b"id: caf\xe9\n", base64_encoded=True)

    assert_error(result, 400, "invalid_encoding")


def test_a_body_over_256_kb_is_a_413(admin: AdminApi) -> None:
    padded = SERVICES_YAML + "#" * (MAX_BODY_BYTES - len(SERVICES_YAML.encode()) + 1)

    assert_error(admin.call("POST", "/admin/journeys", padded), 413, "request_too_large")
    assert admin.call("POST", "/admin/journeys/validate", padded[:-1]).status == 200  # the limit itself passes


# ------------------------------------------------------------------------------------------- publish, list


def test_publish_stores_the_version_and_activates_it(admin: AdminApi) -> None:
    result = admin.call("POST", "/admin/journeys", SERVICES_YAML)

    assert result.status == 201
    assert result.body["journey"]["id"] == "services-consult"
    assert result.body["state"] == {
        "id": "services-consult",
        "status": "active",
        "active_version": 1,
        "versions": [1],
    }
    assert admin.config_item("journey/services-consult/v1") == SERVICES_YAML
    assert admin.active_index() == {"services-consult": 1}


def test_publishing_the_same_version_again_is_harmless_but_other_content_is_a_409(admin: AdminApi) -> None:
    assert admin.call("POST", "/admin/journeys", SERVICES_YAML).status == 201
    assert admin.call("POST", "/admin/journeys", SERVICES_YAML).status == 201

    changed = SERVICES_YAML.replace("version: 1", "version: 1\ndescription: something else", 1)
    errors = assert_error(admin.call("POST", "/admin/journeys", changed), 409, "version_exists")

    assert errors == []
    assert admin.config_item("journey/services-consult/v1") == SERVICES_YAML


def test_publishing_an_invalid_journey_stores_nothing(admin: AdminApi) -> None:
    broken = SERVICES_YAML.replace("next: consult_form", "next: no_such_node")

    assert_error(admin.call("POST", "/admin/journeys", broken), 422, "invalid_journey")

    assert admin.config_item("journey/services-consult/v1") is None
    assert admin.active_index() == {}


CART_YAML = (ROOT / "journeys" / "cart-abandonment.yaml").read_text(encoding="utf-8")


def test_a_journey_on_a_channel_this_stack_cannot_send_is_refused_at_validate_and_publish(admin: AdminApi) -> None:
    # The template's defaults: SMS and Zalo ZNS off (SmsProvider and ZaloZnsSecretName empty).
    for route in ("/admin/journeys/validate", "/admin/journeys"):
        result = admin.call("POST", route, CART_YAML)
        [error] = assert_error(result, 422, "channel_not_configured")

        assert result.body["error"]["reason"] == "this stack cannot send zalo_zns"
        assert error["location"] == "body.nodes.zalo_reminder.channel"
        assert "set ZaloZnsSecretName" in error["message"]
    assert admin.active_index() == {}


def test_once_the_stack_sends_zns_the_same_journey_is_published(
    admin: AdminApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZALO_ZNS_SECRET_NAME", "footprint/zalo")

    assert admin.call("POST", "/admin/journeys", CART_YAML).status == 201
    assert admin.active_index() == {"cart-abandonment": 1}


def test_list_shows_every_journey_its_versions_and_where_new_visitors_go(admin: AdminApi) -> None:
    assert admin.call("GET", "/admin/journeys").body == {"journeys": []}
    admin.call("POST", "/admin/journeys", SERVICES_YAML)
    admin.call("POST", "/admin/journeys", other_version(SERVICES_YAML, 2).replace("status: active", "status: draft"))
    welcome = (ROOT / "journeys" / "welcome-first-visit.yaml").read_text(encoding="utf-8")
    admin.call("POST", "/admin/journeys", welcome.replace("status: active", "status: paused"))

    result = admin.call("GET", "/admin/journeys", content_type=None)

    assert result.status == 200
    assert result.body["journeys"] == [
        {"id": "services-consult", "status": "active", "active_version": 1, "versions": [1, 2]},
        {"id": "welcome-first-visit", "status": "paused", "active_version": None, "versions": [1]},
    ]


# ------------------------------------------------------------------------------------------- pause, resume


def test_pause_stops_new_entries_and_resume_picks_the_latest_or_a_given_version(admin: AdminApi) -> None:
    admin.call("POST", "/admin/journeys", SERVICES_YAML)
    admin.call("POST", "/admin/journeys", other_version(SERVICES_YAML, 2))
    journey = {"journey_id": "services-consult"}

    paused = admin.call("POST", "/admin/journeys/{journey_id}/pause", path_parameters=journey)
    assert (paused.status, paused.body["status"], paused.body["active_version"]) == (200, "paused", None)
    assert admin.active_index() == {}
    again = admin.call("POST", "/admin/journeys/{journey_id}/pause", path_parameters=journey)
    assert (again.status, again.body["status"]) == (200, "paused")  # pausing is idempotent

    pinned = admin.call("POST", "/admin/journeys/{journey_id}/resume", path_parameters=journey, query={"version": "1"})
    assert (pinned.status, pinned.body["active_version"]) == (200, 1)
    assert admin.active_index() == {"services-consult": 1}

    latest = admin.call("POST", "/admin/journeys/{journey_id}/resume", path_parameters=journey)
    assert (latest.status, latest.body["status"], latest.body["active_version"]) == (200, "active", 2)
    assert admin.active_index() == {"services-consult": 2}


@pytest.mark.parametrize("action", ["pause", "resume"])
def test_an_unknown_journey_is_a_404(admin: AdminApi, action: str) -> None:
    admin.call("POST", "/admin/journeys", SERVICES_YAML)

    result = admin.call("POST", f"/admin/journeys/{{journey_id}}/{action}", path_parameters={"journey_id": "nope"})

    assert_error(result, 404, "unknown_journey")
    assert admin.active_index() == {"services-consult": 1}


def test_resuming_a_version_that_was_never_published_is_a_404_and_a_bad_version_a_400(admin: AdminApi) -> None:
    admin.call("POST", "/admin/journeys", SERVICES_YAML)
    route, journey = "/admin/journeys/{journey_id}/resume", {"journey_id": "services-consult"}

    assert_error(admin.call("POST", route, path_parameters=journey, query={"version": "7"}), 404, "unknown_version")
    for bad in ("abc", "0", "-1", "1.5"):
        result = admin.call("POST", route, path_parameters=journey, query={"version": bad})
        assert_error(result, 400, "invalid_version")
    assert admin.active_index() == {"services-consult": 1}


# ------------------------------------------------------------------------------------------- simulate


def cli_timeline(*extra: str) -> list[dict[str, Any]]:
    out = io.StringIO()
    journey = str(ROOT / "journeys" / "services-consult.yaml")
    assert footprint_cli(["simulate", journey, str(EXAMPLE_EVENTS), "--json", *extra], out=out) == 0
    return [json.loads(line) for line in out.getvalue().splitlines()]


def example_events() -> list[dict[str, Any]]:
    return [json.loads(line) for line in EXAMPLE_EVENTS.read_text(encoding="utf-8").splitlines() if line.strip()]


def simulate(admin: AdminApi, request: Any) -> HttpResult:
    return admin.call("POST", "/admin/journeys/simulate", request, content_type="application/json")


def test_simulate_answers_the_same_timeline_as_the_cli(admin: AdminApi) -> None:
    result = simulate(admin, {"journey": SERVICES_YAML, "events": example_events(), "until": "30d"})

    assert result.status == 200
    expected = cli_timeline("--until", "30d")
    assert result.body["timeline"] == expected
    assert [entry["channel"] for entry in expected if entry["outcome"] == "sent"] == [
        "onsite_form",
        "onsite_push",
        "web_push",
        "web_push",
    ]
    assert result.body["summary"] == {"steps": len(expected), "sent": 4, "converted": 0}
    assert result.body["journey"]["id"] == "services-consult"
    assert admin.active_index() == {}  # simulating publishes nothing


def test_simulate_accepts_the_events_file_as_json_lines_text(admin: AdminApi) -> None:
    text = EXAMPLE_EVENTS.read_text(encoding="utf-8")

    result = simulate(admin, {"journey": SERVICES_YAML, "events": text, "until": "2d"})

    assert result.status == 200
    assert result.body["timeline"] == cli_timeline("--until", "2d")
    assert result.body["timeline"] != cli_timeline("--until", "30d")  # until matters


@pytest.mark.parametrize(
    ("request_body", "status", "code", "location"),
    [
        ("{not json", 400, "invalid_json", None),
        ({"journey": SERVICES_YAML}, 400, "invalid_body", "events"),
        ({"journey": SERVICES_YAML, "events": [], "extra": 1}, 400, "invalid_body", "extra"),
        ({"journey": "id: [", "events": []}, 422, "invalid_journey", "journey"),
        ({"journey": SERVICES_YAML, "events": [{"at": "2026-11-23T02:00:00Z"}]}, 422, "invalid_events", "events[0]"),
        ({"journey": SERVICES_YAML, "events": [{"event": "x"}, "oops"]}, 422, "invalid_events", "events[1]"),
        ({"journey": SERVICES_YAML, "events": [{"event": "x", "after": "soon"}]}, 422, "invalid_events", "events[0]"),
        ({"journey": SERVICES_YAML, "events": '{"event": "x"}\n{"at": 5'}, 422, "invalid_events", "events line 2"),
        ({"journey": SERVICES_YAML, "events": [], "until": "forever"}, 422, "invalid_until", "until"),
        ({"journey": SERVICES_YAML, "events": [], "until": "1000d"}, 422, "invalid_until", "until"),
        ({"journey": SERVICES_YAML, "events": [], "start": "tomorrow"}, 422, "invalid_start", "start"),
    ],
)
def test_simulate_refuses_bad_requests_with_4xx(
    admin: AdminApi, request_body: Any, status: int, code: str, location: str | None
) -> None:
    errors = assert_error(simulate(admin, request_body), status, code)

    if location is not None:
        assert [error["location"] for error in errors][:1] == [location], errors


@pytest.mark.parametrize("limit", ["MAX_SIMULATED_INPUTS", "MAX_TIMELINE_ENTRIES"])
def test_simulate_bounds_the_work_of_one_request(admin: AdminApi, monkeypatch: pytest.MonkeyPatch, limit: str) -> None:
    crowd = [
        {"after": f"{index}s", "visitor": f"v{index}", "event": "product_viewed", "properties": {"dwell_seconds": 16}}
        for index in range(30)
    ]
    request = {"journey": SERVICES_YAML, "events": crowd}
    assert simulate(admin, request).status == 200
    monkeypatch.setattr(admin_service, limit, 50)  # the real limits take thousands of visitors to reach

    assert_error(simulate(admin, request), 422, "simulation_too_large")


# ------------------------------------------------------------------------------------------- report

REPORT = "/admin/journeys/{journey_id}/report"
T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def record_steps(tables: Tables, *steps: tuple[str, str, str, int, int]) -> None:
    """(enrollment, node, outcome, version, minutes after T0) into StepsTable, as evaluate records them."""
    log = DynamoStepLog(tables.client, tables.steps, timedelta(days=400))
    for enrollment_id, node_id, outcome, version, minutes in steps:
        log.record(
            RecordStep(
                key=f"{enrollment_id}.{node_id}.1.{outcome}",
                at=T0 + timedelta(minutes=minutes),
                profile_id=f"p-{enrollment_id}",
                journey_id="services-consult",
                journey_version=version,
                enrollment_id=enrollment_id,
                node_id=node_id,
                outcome=outcome,
            )
        )


def test_report_answers_the_funnel_of_the_recorded_steps(admin: AdminApi) -> None:
    admin.call("POST", "/admin/journeys", SERVICES_YAML)
    record_steps(
        admin.tables,
        ("e1", "viewed_without_cart", "entered", 1, 0),
        ("e1", "consult_form", "sent", 1, 0),
        ("e1", "await_form_response", "converted", 1, 5),
        ("e2", "viewed_without_cart", "entered", 1, 60),
        ("e2", "consult_form", "sent", 1, 60),
    )

    result = admin.call("GET", REPORT, path_parameters={"journey_id": "services-consult"})
    later = admin.call(
        "GET",
        REPORT,
        path_parameters={"journey_id": "services-consult"},
        query={"version": "1", "since": "2026-03-02T02:30:00Z", "until": "2026-03-02T04:00:00Z"},
    )

    assert result.status == 200, result.body
    body = result.body
    assert (body["entered"], body["converted"], body["conversion_rate"], body["version"]) == (2, 1, 0.5, 1)
    assert [node["node_id"] for node in body["nodes"]][:3] == [
        "viewed_without_cart",
        "consult_form",
        "await_form_response",
    ]
    assert body["nodes"][1]["sent"] == 2
    assert body["main_path"][0] == {
        "from_node": "viewed_without_cart",
        "to_node": "consult_form",
        "visited": 2,
        "went_on": 2,
        "dropped": 0,
        "in_progress": 0,
        "drop_off_rate": 0.0,
    }
    assert later.status == 200, later.body
    assert (later.body["entered"], later.body["converted"], later.body["since"]) == (1, 0, "2026-03-02T02:30:00Z")


def test_report_of_a_journey_never_published_is_a_404(admin: AdminApi) -> None:
    assert_error(admin.call("GET", REPORT, path_parameters={"journey_id": "nobody"}), 404, "unknown_journey")


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"since": "yesterday"}, "invalid_since"),
        ({"until": "2026-13-01"}, "invalid_until"),
        ({"since": "2026-03-02T00:00:00Z", "until": "2026-03-01T00:00:00Z"}, "invalid_window"),
        ({"version": "0"}, "invalid_version"),
    ],
)
def test_report_refuses_a_bad_query_with_400(admin: AdminApi, query: dict[str, str], code: str) -> None:
    admin.call("POST", "/admin/journeys", SERVICES_YAML)

    assert_error(admin.call("GET", REPORT, path_parameters={"journey_id": "services-consult"}, query=query), 400, code)


# ------------------------------------------------------------------------------------------- robustness


def test_an_unknown_route_is_a_json_404(admin: AdminApi) -> None:
    assert_error(admin.call("DELETE", "/admin/journeys"), 404, "not_found")
    assert_error(admin.call("GET", "/admin/journeys/validate"), 404, "not_found")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    route=st.sampled_from(["/admin/journeys/validate", "/admin/journeys/simulate", "/admin/journeys"]),
    body=st.one_of(
        st.text(max_size=200),
        st.binary(max_size=64),
        json_values.map(json.dumps),
        st.fixed_dictionaries(
            {"journey": st.sampled_from([SERVICES_YAML, "id: x"]), "events": st.lists(json_values, max_size=3)},
            optional={"until": json_values, "start": json_values},
        ).map(json.dumps),
    ),
)
def test_no_body_makes_the_admin_api_fail_with_a_5xx(admin: AdminApi, route: str, body: str | bytes) -> None:
    encoded = isinstance(body, bytes)
    result = admin.call("POST", route, body, base64_encoded=encoded)

    assert result.status < 500, result.body
    if result.status >= 400:
        assert set(result.body["error"]) == {"code", "reason", "errors"}


def test_a_json_body_may_arrive_base64_encoded(admin: AdminApi) -> None:
    request = json.dumps({"journey": SERVICES_YAML, "events": example_events()}).encode()

    result = admin.call("POST", "/admin/journeys/simulate", request, base64_encoded=True)

    assert result.status == 200
    assert result.body["summary"]["sent"] == 4


def test_validate_and_publish_refuse_a_template_that_would_not_render(admin: AdminApi) -> None:
    broken = SERVICES_YAML.replace("{{ trigger.name | default:", "{{ trigger.nam | default:", 1).replace(
        'body: "Để lại', 'body: "{{ profile.nmae }} Để lại', 1
    )

    for path in ("/admin/journeys/validate", "/admin/journeys"):
        errors = assert_error(admin.call("POST", path, broken), 422, "invalid_journey")
        assert errors == [
            {"location": "body.nodes.consult_form.content.body", "message": errors[0]["message"]},
        ]
        assert "unknown variable profile.nmae" in errors[0]["message"]
    assert admin.config_item("journey/services-consult/v1") is None
