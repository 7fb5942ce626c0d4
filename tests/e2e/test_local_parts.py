"""The local stack's pure parts (no moto, no threads): event shapes, routing, CORS, schedules, imports.

They live next to the stack's end-to-end tests because they only exist for the local stack.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest

from footprint_local.events import (
    CorsPolicy,
    HttpRequest,
    http_api_event,
    http_response,
    route_parameters,
    sqs_record,
)
from footprint_local.lambdas import HandlerUnavailableError, LambdaFunction
from footprint_local.pumps import schedule_due_time

NOW = datetime(2026, 3, 2, 1, 0, 30, tzinfo=UTC)


def request(**overrides: object) -> HttpRequest:
    fields: dict[str, object] = {
        "method": "POST",
        "raw_path": "/v1/track",
        "raw_query": "",
        "headers": [("Content-Type", "application/json"), ("Origin", "http://localhost:3000")],
        "body": b'{"event": "product_viewed"}',
        "source_ip": "127.0.0.1",
    }
    return HttpRequest(**(fields | overrides))  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ schedules


def test_an_at_expression_is_due_at_its_local_time_in_utc() -> None:
    assert schedule_due_time("at(2026-03-02T08:00:00)", "Asia/Ho_Chi_Minh") == datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    assert schedule_due_time("at(2026-03-02T08:00:00)", None) == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def test_recurring_expressions_are_not_one_time_schedules() -> None:
    assert schedule_due_time("rate(5 minutes)", "UTC") is None
    assert schedule_due_time("cron(0 8 * * ? *)", "UTC") is None


# ------------------------------------------------------------------------------------------ routing


@pytest.mark.parametrize(
    ("route", "method", "path", "expected"),
    [
        (("POST", "/v1/track"), "POST", "/v1/track", {}),
        (("POST", "/v1/track"), "GET", "/v1/track", None),
        (("POST", "/v1/track"), "POST", "/v1/track/more", None),
        (("ANY", "/v1/{kind}"), "PUT", "/v1/page", {"kind": "page"}),
        (("POST", "/v1/{proxy+}"), "POST", "/v1/a/b", {"proxy": "a/b"}),
        (("POST", "/v1/{proxy+}"), "POST", "/v1", None),
        (("ANY", "$default"), "GET", "/anything", {}),
    ],
)
def test_routes_match_like_api_gateway(
    route: tuple[str, str], method: str, path: str, expected: dict[str, str] | None
) -> None:
    assert route_parameters(*route, method, path) == expected


# ------------------------------------------------------------------------------------------ CORS

CORS = CorsPolicy.from_configuration(
    {
        "allowOrigins": ["http://localhost:*", "https://shop.example.com"],
        "allowMethods": ["POST", "OPTIONS"],
        "allowHeaders": ["content-type", "authorization"],
        "maxAge": 600,
    }
)


def test_a_preflight_from_an_allowed_origin_gets_the_configured_headers() -> None:
    headers = CORS.preflight_headers("http://localhost:3000", "POST", "content-type")

    assert headers == {
        "access-control-allow-origin": "http://localhost:3000",
        "access-control-allow-methods": "POST,OPTIONS",
        "access-control-allow-headers": "content-type,authorization",
        "access-control-max-age": "600",
    }


def test_other_origins_and_methods_get_no_cors_headers() -> None:
    assert CORS.preflight_headers("https://evil.example.net", "POST", "") == {}
    assert CORS.preflight_headers("https://shop.example.com", "DELETE", "") == {}
    assert CORS.response_headers("https://evil.example.net") == {}
    assert CORS.response_headers("https://shop.example.com") == {
        "access-control-allow-origin": "https://shop.example.com"
    }


# ------------------------------------------------------------------------------------------ event shapes


def test_an_http_api_event_has_the_payload_v2_shape() -> None:
    event = http_api_event(
        request(
            raw_query="a=1&a=2&b=",
            headers=[("X-Thing", "one"), ("x-thing", "two"), ("Cookie", "c1=1; c2=2"), ("Content-Type", "text/plain")],
            body="Váy".encode(),
        ),
        "POST /v1/track",
        {},
        now=NOW,
        domain_name="127.0.0.1:4000",
    )

    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /v1/track"
    assert event["rawPath"] == "/v1/track"
    assert event["rawQueryString"] == "a=1&a=2&b="
    assert event["queryStringParameters"] == {"a": "1,2", "b": ""}
    assert event["headers"] == {
        "x-thing": "one,two",
        "content-type": "text/plain",
        # as API Gateway adds them: the settings route answers analytics.js with the scheme it was asked on
        "x-forwarded-proto": "http",
        "x-forwarded-for": event["requestContext"]["http"]["sourceIp"],
    }
    assert event["cookies"] == ["c1=1", "c2=2"]
    assert event["requestContext"]["http"] == {
        "method": "POST",
        "path": "/v1/track",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "",
    }
    assert event["requestContext"]["timeEpoch"] == int(NOW.timestamp() * 1000)
    assert event["body"] == "Váy"
    assert event["isBase64Encoded"] is False


def test_a_binary_body_arrives_base64_encoded() -> None:
    body = b"\x1f\x8b\x08\x00binary"
    event = http_api_event(
        request(headers=[("Content-Type", "application/octet-stream")], body=body),
        "POST /v1/batch",
        {},
        now=NOW,
        domain_name="127.0.0.1:4000",
    )

    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body


def test_handler_results_become_responses_like_api_gateway_makes_them() -> None:
    full = http_response({"statusCode": 201, "headers": {"X-A": "1"}, "body": "ok", "cookies": ["s=1"]})
    encoded = http_response(
        {"statusCode": 200, "body": base64.b64encode(b"\x00\x01").decode(), "isBase64Encoded": True}
    )
    bare = http_response({"success": True})

    assert (full.status, full.headers, full.body, full.cookies) == (201, {"x-a": "1"}, b"ok", ["s=1"])
    assert encoded.body == b"\x00\x01"
    assert (bare.status, bare.body) == (200, b'{"success": true}')


def test_an_sqs_message_becomes_a_lambda_record() -> None:
    record = sqs_record(
        {
            "MessageId": "m-1",
            "ReceiptHandle": "r-1",
            "Body": "{}",
            "MD5OfBody": "99914b932bd37a50b983c5e7c90ae93b",
            "Attributes": {"ApproximateReceiveCount": "2"},
            "MessageAttributes": {"kind": {"DataType": "String", "StringValue": "wake_up"}},
        },
        "arn:aws:sqs:us-east-1:123456789012:q",
    )

    assert record["messageId"] == "m-1"
    assert record["attributes"] == {"ApproximateReceiveCount": "2"}
    assert record["messageAttributes"] == {
        "kind": {"stringValue": "wake_up", "stringListValues": [], "binaryListValues": [], "dataType": "String"}
    }
    assert (record["eventSource"], record["eventSourceARN"]) == ("aws:sqs", "arn:aws:sqs:us-east-1:123456789012:q")


# ------------------------------------------------------------------------------------------ functions


def a_function(code_dir: Path, handler: str) -> LambdaFunction:
    return LambdaFunction(
        logical_id="ProbeFunction",
        physical_name="footprint-local-ProbeFunction",
        arn="arn:aws:lambda:us-east-1:123456789012:function:footprint-local-ProbeFunction",
        code_dir=code_dir,
        handler=handler,
    )


def test_a_handler_module_not_written_yet_leaves_the_function_missing(tmp_path: Path) -> None:
    function = a_function(tmp_path, "probe_missing_handler.handler")

    assert function.state == "missing"
    with pytest.raises(HandlerUnavailableError):
        function.invoke({})


def test_a_handler_is_called_across_a_json_boundary(tmp_path: Path) -> None:
    (tmp_path / "probe_json_handler.py").write_text(
        "def handler(event, context):\n"
        "    if event.get('bad'):\n"
        "        return {1, 2}\n"
        "    if event.get('boom'):\n"
        "        raise RuntimeError('boom')\n"
        "    return {'seen': event, 'function': context.function_name}\n"
    )
    function = a_function(tmp_path, "probe_json_handler.handler")
    try:
        ok = function.invoke({"at": (1, 2)})
        not_json = function.invoke({"bad": True})
        raised = function.invoke({"boom": True})
    finally:
        function.unload()

    assert ok.payload == {"seen": {"at": [1, 2]}, "function": "footprint-local-ProbeFunction"}
    assert not_json.failed
    assert raised.failed
    assert raised.error == "RuntimeError: boom"
