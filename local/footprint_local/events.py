"""The events the Lambda service would hand to Footprint's functions, built from local inputs.

Each builder produces the documented shape for one event source (API Gateway HTTP API payload v2,
DynamoDB Streams, SQS), so the handlers run on exactly what they will get in AWS.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from footprint_local.aws import ACCOUNT_ID, REGION

# Content types API Gateway passes through as text; anything else arrives base64-encoded.
_TEXT_CONTENT_TYPES = (
    "text/",
    "application/json",
    "application/javascript",
    "application/xml",
    "application/x-www-form-urlencoded",
)


@dataclass(frozen=True)
class HttpRequest:
    """An HTTP request as the local API server received it."""

    method: str
    raw_path: str
    raw_query: str
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str
    protocol: str = "HTTP/1.1"


def route_key(method: str, path: str) -> str:
    """``POST /v1/track``; the ``$default`` route's key is just ``$default``."""
    return path if path == "$default" else f"{method} {path}"


def route_parameters(method: str, path: str, request_method: str, request_path: str) -> dict[str, str] | None:
    """The path parameters when the route ``method path`` serves this request, else None.

    Paths may hold ``{name}`` segments and a final greedy ``{name+}``; ``$default`` serves everything.
    """
    if path == "$default":
        return {}
    if method not in ("ANY", request_method.upper()):
        return None
    route_parts = path.strip("/").split("/")
    path_parts = request_path.strip("/").split("/")
    parameters: dict[str, str] = {}
    for index, part in enumerate(route_parts):
        if part.startswith("{") and part.endswith("+}"):
            parameters[part[1:-2]] = "/".join(path_parts[index:])
            return parameters if len(path_parts) > index else None
        if index >= len(path_parts):
            return None
        if part.startswith("{") and part.endswith("}"):
            parameters[part[1:-1]] = path_parts[index]
        elif part != path_parts[index]:
            return None
    return parameters if len(path_parts) == len(route_parts) else None


def route_specificity(method: str, path: str) -> tuple[int, int, int]:
    """Sort key: API Gateway prefers exact paths, then parameters, then greedy paths, then $default."""
    if path == "$default":
        return (3, 0, 0)
    greedy = int("+}" in path)
    parameters = path.count("{")
    return (greedy, parameters, int(method == "ANY"))


@dataclass(frozen=True)
class CorsPolicy:
    """An HTTP API's CORS configuration, applied the way API Gateway applies it."""

    allow_origins: tuple[str, ...] = ()
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = None
    allow_credentials: bool = False

    @classmethod
    def from_configuration(cls, configuration: Mapping[str, Any]) -> CorsPolicy:
        """From a resolved CorsConfiguration (``AllowOrigins``) or ``x-amazon-apigateway-cors`` (``allowOrigins``)."""
        keys = {str(name).lower(): value for name, value in configuration.items()}

        def strings(name: str) -> tuple[str, ...]:
            values = keys.get(name.lower()) or ()
            return tuple(str(value) for value in ([values] if isinstance(values, str) else values))

        max_age = keys.get("maxage")
        return cls(
            allow_origins=strings("AllowOrigins"),
            allow_methods=tuple(method.upper() for method in strings("AllowMethods")),
            allow_headers=tuple(header.lower() for header in strings("AllowHeaders")),
            expose_headers=strings("ExposeHeaders"),
            max_age=int(max_age) if max_age is not None else None,
            allow_credentials=str(keys.get("allowcredentials", False)).lower() == "true",
        )

    def allows_origin(self, origin: str) -> bool:
        return any(allowed == "*" or fnmatch.fnmatchcase(origin, allowed) for allowed in self.allow_origins)

    def allowed_origin_header(self, origin: str) -> str:
        return "*" if "*" in self.allow_origins and not self.allow_credentials else origin

    def preflight_headers(self, origin: str, method: str, request_headers: str) -> dict[str, str]:
        """Headers of the automatic answer to an OPTIONS preflight (empty when not allowed)."""
        if not origin or not self.allows_origin(origin):
            return {}
        if self.allow_methods and "*" not in self.allow_methods and method.upper() not in self.allow_methods:
            return {}
        headers = {"access-control-allow-origin": self.allowed_origin_header(origin)}
        if self.allow_methods:
            headers["access-control-allow-methods"] = ",".join(self.allow_methods)
        if self.allow_headers:
            if "*" in self.allow_headers:
                headers["access-control-allow-headers"] = request_headers or "*"
            else:
                headers["access-control-allow-headers"] = ",".join(self.allow_headers)
        if self.max_age is not None:
            headers["access-control-max-age"] = str(self.max_age)
        if self.allow_credentials:
            headers["access-control-allow-credentials"] = "true"
        return headers

    def response_headers(self, origin: str) -> dict[str, str]:
        """CORS headers API Gateway adds to an integration's response (it ignores the integration's)."""
        if not origin or not self.allows_origin(origin):
            return {}
        headers = {"access-control-allow-origin": self.allowed_origin_header(origin)}
        if self.expose_headers:
            headers["access-control-expose-headers"] = ",".join(self.expose_headers)
        if self.allow_credentials:
            headers["access-control-allow-credentials"] = "true"
        return headers


def http_api_event(
    request: HttpRequest,
    route_key: str,
    path_parameters: dict[str, str],
    *,
    now: datetime,
    domain_name: str,
) -> dict[str, Any]:
    """An API Gateway HTTP API event, payload format 2.0."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers:
        lower = name.lower()
        if lower == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        # Repeated headers are joined with commas, as API Gateway does.
        headers[lower] = f"{headers[lower]},{value}" if lower in headers else value
    # API Gateway sets these itself (whatever the client sent): the local server speaks plain http.
    headers["x-forwarded-proto"] = "http"
    headers["x-forwarded-for"] = request.source_ip
    request_id = base64.urlsafe_b64encode(uuid.uuid4().bytes[:12]).decode().rstrip("=")
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": request.raw_path,
        "rawQueryString": request.raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": "local",
            "domainName": domain_name,
            "domainPrefix": domain_name.split(".", maxsplit=1)[0],
            "http": {
                "method": request.method.upper(),
                "path": request.raw_path,
                "protocol": request.protocol,
                "sourceIp": request.source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if request.raw_query:
        query: dict[str, str] = {}
        for name, value in parse_qsl(request.raw_query, keep_blank_values=True):
            query[name] = f"{query[name]},{value}" if name in query else value
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = path_parameters
    if request.body:
        if _is_text(headers.get("content-type", ""), request.body):
            event["body"] = request.body.decode("utf-8")
        else:
            event["body"] = base64.b64encode(request.body).decode("ascii")
            event["isBase64Encoded"] = True
    return event


def _is_text(content_type: str, body: bytes) -> bool:
    content_type = content_type.lower()
    if content_type and not (content_type.startswith(_TEXT_CONTENT_TYPES) or "+json" in content_type):
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    cookies: list[str] = field(default_factory=list)
    body: bytes = b""


def http_response(result: Any) -> HttpResponse:
    """Interpret a handler's return value as API Gateway does for payload format 2.0."""
    if isinstance(result, dict) and "statusCode" in result:
        headers = {str(name).lower(): str(value) for name, value in (result.get("headers") or {}).items()}
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers[str(name).lower()] = ",".join(str(value) for value in values)
        raw_body = result.get("body")
        body_text = "" if raw_body is None else str(raw_body)
        body = base64.b64decode(body_text) if result.get("isBase64Encoded") else body_text.encode("utf-8")
        return HttpResponse(
            status=int(result["statusCode"]),
            headers=headers,
            cookies=[str(cookie) for cookie in result.get("cookies") or []],
            body=body,
        )
    # Anything else is taken as a JSON body with status 200.
    body_text = result if isinstance(result, str) else json.dumps(result)
    return HttpResponse(status=200, headers={"content-type": "application/json"}, body=body_text.encode())


def dynamodb_stream_record(record: Mapping[str, Any], stream_arn: str) -> dict[str, Any]:
    """A record from dynamodbstreams.get_records, in the shape Lambda delivers it."""
    image = dict(record["dynamodb"])
    created = image.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        # boto3 parses the timestamp; Lambda delivers epoch seconds.
        image["ApproximateCreationDateTime"] = int(created.timestamp())
    return {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.get("awsRegion", REGION),
        "dynamodb": image,
        "eventSourceARN": stream_arn,
    }


def sqs_record(message: Mapping[str, Any], queue_arn: str) -> dict[str, Any]:
    """A message from sqs.receive_message, in the shape Lambda delivers it."""
    attributes = {str(name): str(value) for name, value in (message.get("Attributes") or {}).items()}
    message_attributes: dict[str, Any] = {}
    for name, attribute in (message.get("MessageAttributes") or {}).items():
        converted: dict[str, Any] = {
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": attribute.get("DataType", "String"),
        }
        if "StringValue" in attribute:
            converted["stringValue"] = attribute["StringValue"]
        if "BinaryValue" in attribute:
            converted["binaryValue"] = base64.b64encode(attribute["BinaryValue"]).decode("ascii")
        message_attributes[name] = converted
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }
